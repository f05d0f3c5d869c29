//! The `flush` scenario: how fast ended chats reach the PostgreSQL store. N chats are opened
//! through the real protocol (the `chat` set-up), a few messages go both ways in each, then
//! every chat ends at once and its agent decides (`create`: a new interaction per chat). The
//! nodes' `switchboard_flush_jobs_total` counters are polled from `/metrics` until all N are
//! written; a final SQL check in the nodes' store finds every chat's Message with all the
//! messages its two sides sent.
//!
//! Per-chat time from the end-all instant to written comes from the counters: the k-th chat
//! counts as written at the first poll that saw k written (resolution: one poll interval), so
//! nothing extra runs against PostgreSQL while the nodes write.

use crate::chat::{self, ChatOpts};
use crate::net::{Net, Target};
use crate::stats::{hist, summary, CpuWindow, Proc};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgPool, Row};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use switchboard::protocol::Decision;

pub struct FlushOpts {
    /// Messages per chat before the end, both sides together.
    pub messages: u64,
    /// Total message rate while exchanging them.
    pub rate: f64,
    /// The nodes' PostgreSQL store (same URL, so the same database and schema).
    pub store_url: String,
    /// Longest wait from the end of all chats until all are written.
    pub timeout: Duration,
    pub poll: Duration,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

/// The store URL must name PostgreSQL on a loopback address, like every other target.
fn check_store_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .context("--store-url must be a postgres:// URL")?;
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let hostport = authority.rsplit('@').next().unwrap_or_default();
    let host = hostport
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(hostport);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if !loopback {
        bail!("--store-url: refusing host {host:?}; only 127.x.x.x or localhost");
    }
    Ok(())
}

/// `switchboard_flush_jobs_total` by outcome, summed over the nodes, plus the largest
/// `switchboard_flush_jobs_pending` any node reports.
async fn flush_counters(
    http: &reqwest::Client,
    targets: &[Target],
) -> (BTreeMap<String, u64>, u64) {
    let mut by = BTreeMap::new();
    let mut pending = 0;
    for t in targets {
        let Ok(resp) = http.get(format!("{}/metrics", t.base)).send().await else {
            continue;
        };
        let Ok(text) = resp.text().await else {
            continue;
        };
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("switchboard_flush_jobs_total{outcome=\"") {
                if let Some((outcome, v)) = rest.split_once("\"} ") {
                    let v = v.trim().parse::<f64>().unwrap_or(0.0) as u64;
                    *by.entry(outcome.to_string()).or_insert(0) += v;
                }
            } else if let Some(v) = line.strip_prefix("switchboard_flush_jobs_pending ") {
                pending = pending.max(v.trim().parse::<f64>().unwrap_or(0.0) as u64);
            }
        }
    }
    (by, pending)
}

fn delta(now: &BTreeMap<String, u64>, base: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    now.iter()
        .map(|(k, v)| (k.clone(), v.saturating_sub(*base.get(k).unwrap_or(&0))))
        .filter(|(_, v)| *v > 0)
        .collect()
}

/// CPU seconds of every `postgres` process (server, backends), summed.
fn postgres_cpu() -> (f64, usize) {
    let mut total = 0.0;
    let mut n = 0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return (0.0, 0);
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "postgres" {
            continue;
        }
        let p = Proc {
            name: "postgres".into(),
            pid,
        };
        if let Some(s) = p.cpu_seconds() {
            total += s;
            n += 1;
        }
    }
    (total, n)
}

/// The Messages of these chats in the store: per chat, its loadtest messages, decision,
/// interaction and times.
struct Written {
    lt_messages: u64,
    decision: String,
    has_interaction: bool,
    ended_at: i64,
    decided_at: i64,
}

async fn written_rows(pool: &PgPool, chats: &[String]) -> Result<BTreeMap<String, Written>> {
    let mut out = BTreeMap::new();
    for part in chats.chunks(1000) {
        let rows = sqlx::query(
            "SELECT chat_id, decision, interaction_id, ended_at, decided_at, entries \
             FROM messages WHERE chat_id = ANY($1)",
        )
        .bind(part)
        .fetch_all(pool)
        .await
        .context("reading the written transcripts")?;
        for r in rows {
            let entries: String = r.try_get("entries")?;
            let entries: Vec<Value> = serde_json::from_str(&entries).unwrap_or_default();
            let lt_messages = entries
                .iter()
                .filter(|e| {
                    e["kind"] == "message"
                        && e["text"].as_str().is_some_and(|t| t.starts_with("lt "))
                })
                .count() as u64;
            let interaction: Option<i64> = r.try_get("interaction_id")?;
            out.insert(
                r.try_get("chat_id")?,
                Written {
                    lt_messages,
                    decision: r.try_get("decision")?,
                    has_interaction: interaction.is_some(),
                    ended_at: r.try_get("ended_at")?,
                    decided_at: r.try_get("decided_at")?,
                },
            );
        }
    }
    Ok(out)
}

pub async fn run(
    net: Net,
    targets: &[Target],
    c: &ChatOpts,
    o: &FlushOpts,
    procs: &[Proc],
) -> Result<Value> {
    check_store_url(&o.store_url)?;
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&o.store_url)
        .await
        .context("connecting to the nodes' PostgreSQL store")?;
    let has_table: bool = sqlx::query_scalar("SELECT to_regclass('messages') IS NOT NULL")
        .fetch_one(&pool)
        .await?;
    if !has_table {
        bail!("no `messages` table at --store-url: is it the nodes' store?");
    }
    let http = crate::setup::http_client();

    // Chats, then messages both ways at a fixed total rate until each chat has about
    // `messages`.
    let r = chat::start(net, targets, c).await;
    let n = r.chats;
    if n == 0 {
        bail!("no chat started: {}", r.setup);
    }
    r.w.set_decision(Decision::Create);
    r.label("exchange");
    let exchange_s = (n as f64 * o.messages as f64 / o.rate.max(1.0)).max(0.5);
    r.set_rate(o.rate);
    tokio::time::sleep(Duration::from_secs_f64(exchange_s)).await;
    r.label("drain");
    r.quiesce(Duration::from_secs(15)).await;
    // A sender may still have had a send under way when the rate dropped to zero: settle, then
    // count again, so the per-chat expectations below include it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let integrity = r.quiesce(Duration::from_secs(15)).await;
    let expected = r.w.accepted_per_chat();
    let mut ids: Vec<String> = expected.keys().cloned().collect();
    ids.sort();

    // End everything at once; agents decide as their chat_ended arrives.
    let (base, _) = flush_counters(&http, targets).await;
    let w = r.w.clone();
    let setup = r.setup.clone();
    r.label("end all + flush");
    let cpu = CpuWindow::start(procs);
    let (pg0, _) = postgres_cpu();
    let load_before = crate::stats::loadavg();
    let ended_unix_ms = unix_ms();
    let t0 = Instant::now();
    let teardown = tokio::spawn(r.finish());

    let mut at_count: Vec<u64> = Vec::with_capacity(n as usize); // µs after t0, per chat
    let mut all_decided: Option<f64> = None;
    let mut first_written: Option<f64> = None;
    let mut all_written: Option<f64> = None;
    let mut pending_max = 0;
    let mut outcomes: BTreeMap<String, u64>;
    let mut last_report = Instant::now();
    let deadline = t0 + o.timeout;
    loop {
        tokio::time::sleep(o.poll).await;
        let (now, pending) = flush_counters(&http, targets).await;
        let at = t0.elapsed();
        pending_max = pending_max.max(pending);
        outcomes = delta(&now, &base);
        let written = *outcomes.get("written").unwrap_or(&0);
        if all_decided.is_none() && w.decided_count() >= n {
            all_decided = Some(at.as_secs_f64());
        }
        if written > 0 && first_written.is_none() {
            first_written = Some(at.as_secs_f64());
        }
        while (at_count.len() as u64) < written.min(n) {
            at_count.push(at.as_micros() as u64);
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            eprintln!(
                "[flush {:>5.1}s] decided {} / {n}, flushed {outcomes:?}, pending {pending}",
                at.as_secs_f64(),
                w.decided_count()
            );
        }
        if written >= n {
            all_written = Some(at.as_secs_f64());
            break;
        }
        if Instant::now() > deadline {
            eprintln!("timed out waiting for the flush: {outcomes:?}");
            break;
        }
    }
    let cpu = cpu.finish();
    let window_s = t0.elapsed().as_secs_f64().max(1e-3);
    let (pg1, pg_procs) = postgres_cpu();
    let teardown = match tokio::time::timeout(Duration::from_secs(60), teardown).await {
        Ok(Ok(v)) => v,
        _ => json!({ "error": "teardown did not finish" }),
    };
    // Outcomes may still move after the last chat (e.g. a retry finding it done).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (now, _) = flush_counters(&http, targets).await;
    let outcomes_after = delta(&now, &base);

    let mut lat = hist();
    for us in &at_count {
        let _ = lat.record((*us).max(1));
    }
    let written_n = at_count.len() as u64;
    let flushing_s = match (first_written, all_written) {
        (Some(a), Some(b)) if b > a => Some(b - a),
        _ => None,
    };

    // Every chat once in the store, with every message its two sides sent.
    let rows = written_rows(&pool, &ids).await?;
    let missing: Vec<&String> = ids.iter().filter(|id| !rows.contains_key(*id)).collect();
    let mut wrong_count = 0u64;
    let mut wrong_example = Value::Null;
    let (mut messages_expected, mut messages_written) = (0u64, 0u64);
    let mut decisions: BTreeMap<String, u64> = BTreeMap::new();
    let mut without_interaction = 0u64;
    let (mut ended_min, mut ended_max) = (i64::MAX, i64::MIN);
    let (mut decided_min, mut decided_max) = (i64::MAX, i64::MIN);
    for (id, want) in &expected {
        messages_expected += want;
        let Some(row) = rows.get(id) else { continue };
        messages_written += row.lt_messages;
        if row.lt_messages != *want {
            wrong_count += 1;
            if wrong_example.is_null() {
                wrong_example =
                    json!({ "chat_id": id, "sent": want, "in_transcript": row.lt_messages });
            }
        }
        *decisions.entry(row.decision.clone()).or_insert(0) += 1;
        if !row.has_interaction {
            without_interaction += 1;
        }
        ended_min = ended_min.min(row.ended_at);
        ended_max = ended_max.max(row.ended_at);
        decided_min = decided_min.min(row.decided_at);
        decided_max = decided_max.max(row.decided_at);
    }
    pool.close().await;
    let spread = |lo: i64, hi: i64| {
        (lo <= hi).then(|| json!({ "first_after_end_all_ms": lo - ended_unix_ms, "last_after_end_all_ms": hi - ended_unix_ms }))
    };

    Ok(json!({
        "chats": n,
        "setup": setup,
        "exchange": {
            "rate": o.rate,
            "seconds": round(exchange_s, 2),
            "messages_per_chat_target": o.messages,
            "integrity": integrity,
        },
        "flush": {
            "chats_written": written_n,
            "all_written": all_written.is_some(),
            "seconds_end_all_to_all_decided_seen": all_decided.map(|v| round(v, 3)),
            "seconds_end_all_to_first_written": first_written.map(|v| round(v, 3)),
            "seconds_end_all_to_all_written": all_written.map(|v| round(v, 3)),
            "chats_per_s": all_written.map(|s| round(n as f64 / s.max(1e-3), 1)),
            "chats_per_s_first_to_last_written": flushing_s.map(|s| round((n - 1) as f64 / s, 1)),
            "end_all_to_written": summary(&lat),
            "poll_ms": o.poll.as_millis() as u64,
            "outcomes": outcomes,
            "outcomes_after_teardown": outcomes_after,
            "pending_max": pending_max,
            "server_ended_at": spread(ended_min, ended_max),
            "server_decided_at": spread(decided_min, decided_max),
            "cpu_percent_of_one_core": cpu,
            "postgres_cpu_percent_of_one_core": round((pg1 - pg0) / window_s * 100.0, 1),
            "postgres_processes": pg_procs,
            "load_average_1m": { "at_end_all": load_before, "at_all_written": crate::stats::loadavg() },
        },
        "check": {
            "chats_in_store": rows.len(),
            "lost": missing.len(),
            "lost_examples": missing.iter().take(5).collect::<Vec<_>>(),
            "messages_sent": messages_expected,
            "messages_in_transcripts": messages_written,
            "chats_with_wrong_message_count": wrong_count,
            "wrong_message_count_example": wrong_example,
            "decisions": decisions,
            "without_interaction": without_interaction,
        },
        "teardown": teardown,
    }))
}

/// A short human summary of a `flush` result.
pub fn human(r: &Value) -> String {
    let f = &r["flush"];
    let c = &r["check"];
    let l = &f["end_all_to_written"];
    format!(
        "flush: {} chats; end-all -> all written {} s = {} chats/s (first->last written {} chats/s); load average {}\n  end-all -> written p50 {} / p99 {} / max {} ms; all decided seen after {} s\n  store: {} of {} chats, lost {}, messages {} of {} sent, wrong counts {}, decisions {}\n  cpu {} postgres {}",
        r["chats"],
        f["seconds_end_all_to_all_written"],
        f["chats_per_s"],
        f["chats_per_s_first_to_last_written"],
        f["load_average_1m"]["at_all_written"],
        l["p50_ms"],
        l["p99_ms"],
        l["max_ms"],
        f["seconds_end_all_to_all_decided_seen"],
        c["chats_in_store"],
        r["chats"],
        c["lost"],
        c["messages_in_transcripts"],
        c["messages_sent"],
        c["chats_with_wrong_message_count"],
        c["decisions"],
        f["cpu_percent_of_one_core"],
        f["postgres_cpu_percent_of_one_core"],
    )
}
