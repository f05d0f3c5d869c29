//! The `idle` scenario: open N visitor connections round-robin over the targets, hold them, and
//! report the connect rate, failures and each node's resident memory per connection (the
//! slope of VmRSS against the node's open connections, sampled as they grow).
//!
//! Switchboard visitors take a session over HTTP, open `/ws/visitor` and wait for `welcome`.
//! Relay visitors (`--peer relay`) open `/ws/visitor` with no session and wait for `welcome`.
//! Socket.IO visitors (`--peer socketio`) connect with `{role: "visitor", room: "idle-<i>"}`:
//! each joins a room of its own, as a waiting visitor holds a channel of its own in ours.

use crate::net::{Incoming, Net, Peer, Target, Ws};
use crate::setup;
use crate::socketio;
use crate::stats::{hist, summary, CpuWindow, Proc, Stats};
use anyhow::Result;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::protocol::ServerFrame;
use tokio::sync::{watch, Semaphore};

/// One held connection.
enum Held {
    Switchboard(Ws),
    SocketIo(socketio::Conn),
}

impl Held {
    /// Waits until the server closes the connection (answering Socket.IO pings meanwhile);
    /// the close code.
    async fn closed(&mut self) -> u16 {
        match self {
            Held::Switchboard(ws) => loop {
                if let Incoming::Closed(code) = ws.recv().await {
                    return code;
                }
            },
            Held::SocketIo(c) => c.hold().await,
        }
    }

    async fn close(self) {
        match self {
            Held::Switchboard(ws) => ws.close().await,
            Held::SocketIo(c) => c.close().await,
        }
    }
}

/// A Switchboard visitor connection, up to its `welcome`.
async fn visitor(
    net: &Net,
    http: &reqwest::Client,
    target: &Target,
    shared: Option<String>,
) -> Result<Ws> {
    // The relay has no sessions: its visitor socket is open to anyone.
    let path = if net.peer == Peer::Relay {
        "/ws/visitor".to_string()
    } else {
        let token = match shared {
            Some(t) => t,
            None => setup::visitor_token(http, target).await?,
        };
        format!("/ws/visitor?token={token}")
    };
    let mut ws = net.ws(target, &path).await?;
    match tokio::time::timeout(Duration::from_secs(15), ws.recv()).await {
        Ok(Incoming::Frame(ServerFrame::Welcome { .. })) => Ok(ws),
        Ok(Incoming::Closed(c)) => anyhow::bail!("closed {c} before welcome"),
        Err(_) => anyhow::bail!("no welcome in 15 s"),
        _ => anyhow::bail!("unexpected first frame"),
    }
}

pub struct IdleOpts {
    pub connections: usize,
    pub hold: Duration,
    pub parallel: usize,
    /// Reuse one visitor token per target instead of one session per connection.
    pub shared_token: bool,
    pub offset: usize,
}

/// Least-squares slope of y against x.
fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
    let (mx, my) = (sx / n, sy / n);
    let num: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let den: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    (den > 0.0).then(|| num / den)
}

pub async fn run(
    net: Net,
    targets: &[Target],
    nodes: &[Option<Proc>],
    others: &[Proc],
    o: &IdleOpts,
) -> Value {
    let net = Arc::new(net);
    let stats = Arc::new(Stats::default());
    let http = setup::http_client();
    let per_node = Arc::new(
        (0..targets.len())
            .map(|_| AtomicUsize::new(0))
            .collect::<Vec<_>>(),
    );
    let connect_lat = Arc::new(Mutex::new(hist()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let gate = Arc::new(Semaphore::new(o.parallel.max(1)));
    let mut shared_tokens = Vec::new();
    if o.shared_token && net.peer == Peer::Switchboard {
        for t in targets {
            shared_tokens.push(setup::visitor_token(&http, t).await.ok());
        }
    }
    // Baseline memory before any connection.
    let mut samples: Vec<Vec<(f64, f64)>> = vec![vec![]; targets.len()];
    for (i, p) in nodes.iter().enumerate() {
        if let Some(kib) = p.as_ref().and_then(|p| p.rss_kib()) {
            samples[i].push((0.0, kib as f64));
        }
    }
    let baseline: Vec<Option<u64>> = nodes
        .iter()
        .map(|p| p.as_ref().and_then(|p| p.rss_kib()))
        .collect();
    let cpu = CpuWindow::start(
        &nodes
            .iter()
            .flatten()
            .cloned()
            .chain(others.iter().cloned())
            .collect::<Vec<_>>(),
    );
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(o.connections);
    for k in 0..o.connections {
        let i = k + o.offset;
        let ti = i % targets.len();
        let (net, stats, http, per_node, lat, gate, mut stop) = (
            net.clone(),
            stats.clone(),
            http.clone(),
            per_node.clone(),
            connect_lat.clone(),
            gate.clone(),
            stop_rx.clone(),
        );
        let target = targets[ti].clone();
        let shared = shared_tokens.get(ti).cloned().flatten();
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let t = Instant::now();
            let conn = match net.peer {
                Peer::Switchboard | Peer::Relay => visitor(&net, &http, &target, shared)
                    .await
                    .map(Held::Switchboard),
                Peer::Socketio => {
                    let auth = json!({ "role": "visitor", "room": format!("idle-{i}") });
                    socketio::Conn::open(&net, &target, &auth, Duration::from_secs(15))
                        .await
                        .map(Held::SocketIo)
                }
            };
            let mut conn = match conn {
                Ok(c) => c,
                Err(e) => return stats.connect_error(&e),
            };
            let _ = lat
                .lock()
                .unwrap()
                .record((t.elapsed().as_micros() as u64).max(1));
            drop(permit);
            stats.connected.inc();
            per_node[ti].fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                _ = stop.changed() => {}
                code = conn.closed() => {
                    stats.closed.add(code, "idle connection closed");
                    per_node[ti].fetch_sub(1, Ordering::Relaxed);
                    return;
                }
            }
            conn.close().await;
        }));
    }
    // Sample memory while connections grow, and report progress.
    let mut last = 0;
    let total = o.connections as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let done = stats.connected.get() + stats.connect_failed.get();
        for (i, p) in nodes.iter().enumerate() {
            if let Some(kib) = p.as_ref().and_then(|p| p.rss_kib()) {
                samples[i].push((per_node[i].load(Ordering::Relaxed) as f64, kib as f64));
            }
        }
        if done / 1000 != last / 1000 || done >= total {
            eprintln!(
                "[{:>5.1}s] idle connected={} failed={} of {}",
                t0.elapsed().as_secs_f64(),
                stats.connected.get(),
                stats.connect_failed.get(),
                total
            );
        }
        last = done;
        if done >= total || t0.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    let connect_s = t0.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    eprintln!(
        "holding {} connections for {:?}",
        stats.connected.get(),
        o.hold
    );
    let hold_start = Instant::now();
    while hold_start.elapsed() < o.hold {
        tokio::time::sleep(Duration::from_secs(1)).await;
        eprintln!(
            "[{:>5.1}s] holding: open={} closed={}",
            t0.elapsed().as_secs_f64(),
            per_node
                .iter()
                .map(|a| a.load(Ordering::Relaxed))
                .sum::<usize>(),
            stats.closed.total()
        );
    }
    let mut node_reports = Vec::new();
    for (i, p) in nodes.iter().enumerate() {
        let open = per_node[i].load(Ordering::Relaxed);
        let end = p.as_ref().and_then(|p| p.rss_kib());
        if let Some(kib) = end {
            samples[i].push((open as f64, kib as f64));
        }
        let growth = match (baseline[i], end) {
            (Some(b), Some(e)) if open > 0 => {
                Some(((e as f64 - b as f64) * 1024.0 / open as f64).round())
            }
            _ => None,
        };
        node_reports.push(json!({
            "target": targets[i].base,
            "pid": p.as_ref().map(|p| p.pid),
            "open_connections": open,
            "rss_before_kib": baseline[i],
            "rss_held_kib": end,
            "bytes_per_connection_end_minus_start": growth,
            "bytes_per_connection_slope": slope(&samples[i]).map(|s| (s * 1024.0).round()),
            "samples": samples[i].len(),
        }));
    }
    let client_rss = crate::stats::self_proc().rss_kib();
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    json!({
        "connections_requested": o.connections,
        "connected": stats.connected.get(),
        "failed": stats.connect_failed.get(),
        "failures": json!(*stats.connect_errors.lock().unwrap()),
        "closed_while_held": stats.closed.json(),
        "connect_seconds": (connect_s * 100.0).round() / 100.0,
        "connect_rate_per_s": ((stats.connected.get() as f64 / connect_s) * 10.0).round() / 10.0,
        "connect_latency": summary(&connect_lat.lock().unwrap()),
        "hold_seconds": o.hold.as_secs_f64(),
        "nodes": node_reports,
        "client_rss_kib": client_rss,
        "cpu_percent_of_one_core_while_connecting": cpu,
    })
}
