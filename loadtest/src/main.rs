//! `switchboard-loadtest`: the load generator for Switchboard clusters. Scenarios: `idle`
//! (connections held), `chat` (messages both ways at a fixed rate), `ramp` (rate stepped up
//! until p99 passes a bound), `storm` (mass drop and resume), `flush` (ended chats written to
//! PostgreSQL), `site` (browsing visitors, agents watching the site-visitors list, a few
//! chats), `floor` (the machine's own loopback round trip, no server involved), plus
//! `agents` to create the load-test agents. Connects only to the loopback
//! targets it is given; every scenario is bounded in time and count. Progress goes to stderr,
//! the summary to stdout, the full report to `--json FILE`.
//!
//! Layout: `cli` (the command line), `net` (targets, sockets), `wire` (the WebSocket client),
//! `frames` (the hot path's frames), `sender` (the paced sender thread), `setup` (HTTP calls),
//! `stats` (counters, histograms, /proc sampling), `idle`, `chat` (chat, ramp and storm),
//! `flush`, `floor`.
//!
//! `--peer socketio` and `--peer relay` point `chat`, `ramp` and `idle` at the Socket.IO peer
//! or the bare relay of the benchmarks instead (`loadtest/peers/`), measured the same way.
//!
//! Every measured window reports the CPU each process spent per delivered message, the load
//! generator's own included (`cpu_us_per_message`), and what else the machine did meanwhile.
#![forbid(unsafe_code)]

mod chat;
mod cli;
mod floor;
mod flush;
mod frames;
mod idle;
mod net;
mod sender;
mod setup;
mod site;
mod socketio;
mod stats;
mod wire;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{Cli, Enc, Scenario};
use serde_json::{json, Value};
use stats::Proc;
use std::time::Duration;
use switchboard::protocol::Encoding;

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .map(|v| v.trim().to_string());
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_total": mem,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").ok().map(|s| s.trim().to_string()),
    })
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    }
    .expect("runtime");
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let targets = net::parse_targets(&cli.targets)?;
    let nofile = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    let encoding = match cli.encoding {
        Enc::Json => Encoding::Json,
        Enc::Msgpack => Encoding::MsgPack,
    };
    if !cli.node_pids.is_empty() && cli.node_pids.len() != targets.len() {
        bail!(
            "--node-pids needs one PID per target ({} targets)",
            targets.len()
        );
    }
    let nodes: Vec<Option<Proc>> = (0..targets.len())
        .map(|i| {
            cli.node_pids.get(i).map(|&pid| Proc {
                name: format!("node{i}"),
                pid,
            })
        })
        .collect();
    let mut procs: Vec<Proc> = nodes.iter().flatten().cloned().collect();
    if let Some(pid) = cli.redis_pid {
        procs.push(Proc {
            name: "redis".into(),
            pid,
        });
    }
    procs.push(stats::self_proc());
    if cli.peer != net::Peer::Switchboard
        && !matches!(
            cli.scenario,
            Scenario::Chat { .. } | Scenario::Ramp { .. } | Scenario::Idle { .. }
        )
    {
        bail!(
            "--peer {} runs the chat, ramp and idle scenarios only",
            cli.peer.name()
        );
    }
    let net = net::Net::new(encoding, cli.peer, cli.source_addrs);
    let (name, params): (&str, Value) = match &cli.scenario {
        Scenario::Agents { count, .. } => ("agents", json!({ "count": count })),
        Scenario::Idle {
            connections,
            hold_secs,
            shared_token,
            ..
        } => (
            "idle",
            json!({ "connections": connections, "hold_secs": hold_secs, "shared_token": shared_token }),
        ),
        Scenario::Chat {
            c,
            rate,
            duration,
            warmup,
        } => (
            "chat",
            json!({ "agents": c.agents, "visitors": c.visitors, "rate": rate, "duration": duration, "warmup": warmup, "text_bytes": c.text_bytes }),
        ),
        Scenario::Ramp {
            c,
            start_rate,
            factor,
            step_secs,
            p99_bound_ms,
            ..
        } => (
            "ramp",
            json!({ "agents": c.agents, "visitors": c.visitors, "start_rate": start_rate, "factor": factor, "step_secs": step_secs, "p99_bound_ms": p99_bound_ms, "text_bytes": c.text_bytes }),
        ),
        Scenario::Storm { c, count, rate, .. } => (
            "storm",
            json!({ "agents": c.agents, "visitors": c.visitors, "count": count, "rate": rate }),
        ),
        Scenario::Flush {
            c, messages, rate, ..
        } => (
            "flush",
            json!({ "agents": c.agents, "visitors": c.visitors, "messages": messages, "rate": rate, "text_bytes": c.text_bytes }),
        ),
        Scenario::Site {
            visitors,
            page_every,
            watchers,
            rows,
            view,
            chats,
            chat_rate,
            duration,
            ..
        } => (
            "site",
            json!({ "visitors": visitors, "page_every": page_every, "watchers": watchers, "rows": rows, "view": view, "chats": chats, "chat_rate": chat_rate, "duration": duration }),
        ),
        Scenario::Floor {
            rate,
            duration,
            bytes,
        } => (
            "floor",
            json!({ "rate": rate, "duration": duration, "bytes": bytes }),
        ),
    };
    let encoding_name = match cli.peer {
        net::Peer::Switchboard | net::Peer::Relay => format!("{encoding:?}").to_lowercase(),
        net::Peer::Socketio => "socketio-text".to_string(),
    };
    eprintln!(
        "switchboard-loadtest {name}: {} targets {} encoding {encoding_name}, open-file limit {nofile}",
        cli.peer.name(),
        cli.targets,
    );
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let work = scenario(&cli, &targets, net, &nodes, &procs);
    let (result, timed_out) =
        match tokio::time::timeout(Duration::from_secs(cli.max_seconds), work).await {
            Ok(r) => (r?, false),
            Err(_) => (json!({ "error": "the run passed --max-seconds" }), true),
        };
    let report = json!({
        "tool": "switchboard-loadtest",
        "scenario": name,
        "peer": cli.peer.name(),
        "params": params,
        "targets": cli.targets,
        "encoding": encoding_name,
        "started_unix": started,
        "open_file_limit": nofile,
        "machine": machine(),
        "timed_out": timed_out,
        "result": result,
    });
    println!("{}", human(name, &report["result"]));
    if let Some(path) = &cli.json {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}

async fn scenario(
    cli: &Cli,
    targets: &[net::Target],
    net: net::Net,
    nodes: &[Option<Proc>],
    procs: &[Proc],
) -> Result<Value> {
    Ok(match &cli.scenario {
        Scenario::Agents {
            admin_user,
            admin_password,
            count,
            prefix,
            password,
            max_chats,
            parallel,
        } => {
            let t = std::time::Instant::now();
            let (created, existing) = setup::create_agents(
                &targets[0],
                admin_user,
                admin_password,
                prefix,
                *count,
                password,
                *max_chats,
                *parallel,
            )
            .await?;
            json!({ "created": created, "already_there": existing, "seconds": t.elapsed().as_secs_f64() })
        }
        Scenario::Idle {
            connections,
            hold_secs,
            parallel,
            shared_token,
            offset,
        } => {
            let others: Vec<Proc> = procs
                .iter()
                .filter(|p| !nodes.iter().flatten().any(|n| n.pid == p.pid))
                .cloned()
                .collect();
            idle::run(
                net,
                targets,
                nodes,
                &others,
                &idle::IdleOpts {
                    connections: *connections,
                    hold: Duration::from_secs(*hold_secs),
                    parallel: *parallel,
                    shared_token: *shared_token,
                    offset: *offset,
                },
            )
            .await
        }
        Scenario::Chat {
            c,
            rate,
            duration,
            warmup,
        } => {
            let r = chat::start(net, targets, &c.opts()).await;
            r.label("warmup");
            r.set_rate(*rate);
            tokio::time::sleep(Duration::from_secs_f64(*warmup)).await;
            r.reset_total();
            r.label("measure");
            let win = chat::window(&r, *rate, *duration, procs).await;
            r.label("drain");
            let integrity = r.quiesce(Duration::from_secs(10)).await;
            let setup = r.setup.clone();
            let chats = r.chats;
            let teardown = r.finish().await;
            json!({ "chats": chats, "setup": setup, "window": win, "integrity": integrity, "teardown": teardown })
        }
        Scenario::Ramp {
            c,
            start_rate,
            factor,
            step_secs,
            p99_bound_ms,
            max_rate,
            max_steps,
        } => {
            let r = chat::start(net, targets, &c.opts()).await;
            let mut steps = Vec::new();
            let mut held: Option<Value> = None;
            let mut rate = *start_rate;
            for i in 0..*max_steps {
                if rate > *max_rate {
                    break;
                }
                r.label(&format!("ramp step {} at {rate:.0}/s", i + 1));
                // One second to settle at the new rate, then the measured step.
                r.set_rate(rate);
                tokio::time::sleep(Duration::from_secs(1)).await;
                let s = chat::window(&r, rate, *step_secs, procs).await;
                let p99 = s["latency"]["p99_ms"].as_f64().unwrap_or(f64::MAX);
                let delivered = s["delivered_rate"].as_f64().unwrap_or(0.0);
                let ok = p99 <= *p99_bound_ms
                    && delivered >= 0.95 * rate
                    && s["new_errors"].as_u64() == Some(0);
                let mut s = s;
                s["held"] = json!(ok);
                eprintln!(
                    "step {}: rate {rate:.0}/s delivered {delivered:.0}/s p99 {p99:.2} ms -> {}",
                    i + 1,
                    if ok { "held" } else { "NOT held" }
                );
                steps.push(s.clone());
                if !ok {
                    break;
                }
                held = Some(s);
                rate *= factor;
            }
            r.label("drain");
            let integrity = r.quiesce(Duration::from_secs(15)).await;
            let setup = r.setup.clone();
            let chats = r.chats;
            let teardown = r.finish().await;
            json!({
                "chats": chats,
                "setup": setup,
                "p99_bound_ms": p99_bound_ms,
                "highest_rate_held": held.as_ref().map(|h| h["target_rate"].clone()),
                "highest_step_held": held,
                "steps": steps,
                "integrity": integrity,
                "teardown": teardown,
            })
        }
        Scenario::Storm {
            c,
            count,
            rate,
            warmup,
            after,
            timeout_secs,
        } => {
            let r = chat::start(net, targets, &c.opts()).await;
            let s = chat::storm(
                &r,
                &chat::StormOpts {
                    count: *count,
                    rate: *rate,
                    warmup: *warmup,
                    after: *after,
                    timeout: Duration::from_secs(*timeout_secs),
                },
                procs,
            )
            .await;
            r.label("drain");
            let integrity = r.quiesce(Duration::from_secs(15)).await;
            let setup = r.setup.clone();
            let chats = r.chats;
            let teardown = r.finish().await;
            json!({ "chats": chats, "setup": setup, "storm": s, "integrity": integrity, "teardown": teardown })
        }
        Scenario::Flush {
            c,
            messages,
            rate,
            store_url,
            timeout_secs,
            poll_ms,
        } => {
            let o = flush::FlushOpts {
                messages: *messages,
                rate: *rate,
                store_url: store_url.clone(),
                timeout: Duration::from_secs(*timeout_secs),
                poll: Duration::from_millis((*poll_ms).max(1)),
            };
            flush::run(net, targets, &c.opts(), &o, procs).await?
        }
        Scenario::Site {
            visitors,
            page_every,
            watchers,
            rows,
            view,
            arrivals_per_s,
            watcher_offset,
            chats,
            chat_agents,
            chat_rate,
            warmup,
            duration,
            connect_parallel,
            agent_prefix,
            agent_password,
            setup_timeout_secs,
        } => {
            let o = site::SiteOpts {
                visitors: *visitors,
                page_every: *page_every,
                watchers: *watchers,
                in_view: rows == "in_view",
                view: *view,
                arrivals_per_s: *arrivals_per_s,
                watcher_offset: *watcher_offset,
                chats: *chats,
                chat_agents: *chat_agents,
                chat_rate: *chat_rate,
                warmup: warmup.unwrap_or(*page_every),
                duration: *duration,
                connect_parallel: *connect_parallel,
                agent_prefix: agent_prefix.clone(),
                agent_password: agent_password.clone(),
                setup_timeout: Duration::from_secs(*setup_timeout_secs),
            };
            site::run(net, targets, nodes, procs, &o).await?
        }
        Scenario::Floor {
            rate,
            duration,
            bytes,
        } => {
            let o = floor::FloorOpts {
                rate: *rate,
                // A blocking thread outlives the --max-seconds timeout: it gets the bound itself.
                duration: duration.min(cli.max_seconds as f64),
                bytes: *bytes,
            };
            tokio::task::spawn_blocking(move || floor::run(&o)).await??
        }
    })
}

/// A short human summary of a result.
fn human(name: &str, r: &Value) -> String {
    let lat = |v: &Value| {
        format!(
            "p50 {} / p90 {} / p99 {} / max {} ms",
            v["p50_ms"], v["p90_ms"], v["p99_ms"], v["max_ms"]
        )
    };
    let integ = |i: &Value| {
        format!("sent {} delivered {} lost {} duplicated {} out-of-order {} refused {} errors {} closed {}", i["sent"], i["delivered_unique"], i["lost"], i["duplicated"], i["out_of_order"], i["refused_by_server"], i["errors"], i["closed"])
    };
    let setup = |s: &Value| {
        if s["peer"].is_string() {
            return format!(
                "pairs in their rooms {} of {}; connect {}",
                s["chats_started"],
                s["pairs_requested"],
                lat(&s["connect_latency"])
            );
        }
        format!(
            "chats started {} of {} queued; request->offer {}; request->chat_started {}",
            s["chats_started"],
            s["chats_queued"],
            lat(&s["request_to_offer"]),
            lat(&s["request_to_chat_started"])
        )
    };
    match name {
        "idle" => {
            let mut s = format!(
                "idle: {} connected, {} failed, {}/s, connect {}\n",
                r["connected"],
                r["failed"],
                r["connect_rate_per_s"],
                lat(&r["connect_latency"])
            );
            for n in r["nodes"].as_array().into_iter().flatten() {
                s += &format!(
                    "  {} open {} rss {} -> {} KiB, {} B/conn (slope {} B/conn)\n",
                    n["target"],
                    n["open_connections"],
                    n["rss_before_kib"],
                    n["rss_held_kib"],
                    n["bytes_per_connection_end_minus_start"],
                    n["bytes_per_connection_slope"]
                );
            }
            s
        }
        "chat" => format!(
            "chat: {}\n  rate {} -> delivered {}/s; latency {}\n  from the actual send {}\n  {}\n  cpu % of one core {}\n  cpu us per message {}\n  context switches per message {}\n  machine {}",
            setup(&r["setup"]),
            r["window"]["target_rate"],
            r["window"]["delivered_rate"],
            lat(&r["window"]["latency"]),
            lat(&r["window"]["latency_from_send"]),
            integ(&r["integrity"]),
            r["window"]["cpu_percent_of_one_core"],
            r["window"]["cpu_us_per_message"],
            r["window"]["context_switches_per_message"],
            r["window"]["machine"]
        ),
        "ramp" => {
            let mut s = format!("ramp: {}\n", setup(&r["setup"]));
            for st in r["steps"].as_array().into_iter().flatten() {
                s += &format!(
                    "  {} /s -> {} /s, {}, held {}; cpu us/msg system {} loadtest {}\n",
                    st["target_rate"],
                    st["delivered_rate"],
                    lat(&st["latency"]),
                    st["held"],
                    st["cpu_us_per_message"]["system"],
                    st["cpu_us_per_message"]["loadtest"]
                );
            }
            s += &format!(
                "  highest rate held (p99 <= {} ms): {}\n  {}",
                r["p99_bound_ms"],
                r["highest_rate_held"],
                integ(&r["integrity"])
            );
            s
        }
        "storm" => format!(
            "storm: {}\n  dropped {} resumed {} in {} s (resume {})\n  {}",
            setup(&r["setup"]),
            r["storm"]["dropped"],
            r["storm"]["resumed"],
            r["storm"]["seconds_until_all_resumed"],
            lat(&r["storm"]["resume_time"]),
            integ(&r["integrity"])
        ),
        "flush" => flush::human(r),
        "site" => format!(
            "site: {} visitors ({} connected), {} watching agents ({} ready, rows {}, views of {} rows set by {}, {} visitors in some view), a page view every {} s\n  window {} s: {} page views ({}/s); page view -> shown {}\n  shown {} of {} expected ({} not shown, {} skipped); {} bytes/s per watching agent\n  cpu % of one core {} (nodes + redis {})\n  machine {}\n  nodes {}\n  chats {}",
            r["visitors"], r["visitors_connected"], r["watchers"], r["watchers_ready"], r["rows"].as_str().unwrap_or(""), r["view_rows"], r["views_set"], r["visitors_in_some_view"], r["page_every_s"],
            r["window"]["seconds"], r["window"]["page_views"], r["window"]["page_views_per_s"], lat(&r["window"]["page_view_to_shown"]),
            r["window"]["shown"], r["window"]["expected"], r["window"]["not_shown"], r["window"]["skipped_views"], r["window"]["bytes_per_s_per_watcher"],
            r["window"]["cpu_percent_of_one_core"], r["window"]["nodes_and_redis_percent_of_one_core"],
            r["window"]["machine"], r["nodes"],
            r["chats"]["window"]["latency"]
        ),
        "floor" => format!(
            "floor: {} round trips of {} bytes over loopback at {}/s\n  round trip {}\n  wake-up lateness {}",
            r["round_trips"],
            r["bytes"],
            r["rate"],
            lat(&r["round_trip"]),
            lat(&r["wake_up_lateness"])
        ),
        _ => serde_json::to_string_pretty(r).unwrap_or_default(),
    }
}
