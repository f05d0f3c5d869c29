//! Pairs, for the servers without agents, queues or offers: the Socket.IO peer and the bare
//! relay. Visitor `i` (on the visitor targets) and agent `i` (on the agent targets) join chat
//! `i`: Socket.IO clients connect with `{role, room: i}`; relay clients open `/ws/ROLE` and
//! `resume` chat `i` (which subscribes their node to it). Both sides send once both joined.

use super::peer::{Link, Peer, Proto, Step};
use super::{phase, wait_until, ChatOpts, World, AGENT, ROLE, VISITOR};
use crate::net::{Incoming, Peer as ServerKind, Target, Ws};
use crate::socketio;
use crate::stats::summary;
use crate::wire::{In, Reader, Writer};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::protocol::{ClientFrame, ServerFrame};

/// Opens a relay socket and joins chat `id`: `welcome`, then `resume` answered by `resumed`.
async fn relay_join(w: &World, target: &Target, role: usize, id: &str) -> Result<Ws> {
    let mut ws = w.net.ws(target, &format!("/ws/{}", ROLE[role])).await?;
    let mut welcomed = false;
    loop {
        match ws.recv().await {
            Incoming::Frame(ServerFrame::Welcome { .. }) if !welcomed => {
                welcomed = true;
                ws.send(&ClientFrame::Resume {
                    chat_id: id.to_string(),
                    last_seq: String::new(),
                })?;
            }
            Incoming::Frame(ServerFrame::Resumed { .. }) if welcomed => return Ok(ws),
            Incoming::Frame(f) => bail!("unexpected frame while joining: {f:?}"),
            Incoming::Closed(c) => bail!("closed while joining ({c})"),
            Incoming::Undecodable(e) => bail!("undecodable frame while joining: {e}"),
        }
    }
}

/// One side of pair `idx`.
async fn pair_connection(w: Arc<World>, role: usize, idx: usize) {
    let mut ctrl = w.ctrl.subscribe();
    let id = idx.to_string();
    let shared = w.chat(&id);
    let targets = if role == VISITOR {
        &w.visitor_targets
    } else {
        &w.agent_targets
    };
    let target = targets[idx % targets.len()].clone();
    let opened: Result<(Reader, Arc<Writer>, Proto)> = {
        let _permit = w.connect_gate.acquire().await;
        let t = Instant::now();
        let r = async {
            Ok(match w.peer {
                ServerKind::Socketio => {
                    let auth = json!({ "role": ROLE[role], "room": id });
                    let c = socketio::Conn::open(&w.net, &target, &auth, Duration::from_secs(15))
                        .await?;
                    (c.rd, c.wr, Proto::SocketIo)
                }
                _ => {
                    let join = relay_join(&w, &target, role, &id);
                    let ws = tokio::time::timeout(Duration::from_secs(15), join)
                        .await
                        .map_err(|_| anyhow::anyhow!("no join within 15 s"))??;
                    (ws.rd, ws.wr, Proto::Switchboard(ws.enc))
                }
            })
        }
        .await;
        if r.is_ok() {
            let us = (t.elapsed().as_micros() as u64).max(1);
            let _ = w.connect_lat.lock().unwrap().record(us);
        }
        r
    };
    let (mut rd, wr, proto) = match opened {
        Ok(o) => o,
        Err(e) => return w.stats.connect_error(&e),
    };
    w.stats.connected.inc();
    if shared.joined.fetch_add(1, Ordering::Relaxed) == 1 {
        w.started.inc();
    }
    let mut peer = Peer::new(w.clone(), role, proto);
    let i = peer.local(&id);
    peer.chats[i].live = true;
    peer.wr = Some(wr.clone());
    let link = Arc::new(Link(Mutex::new(peer)));
    let slot = w.sender.add(link.clone(), phase(idx, role));
    w.pairs.lock().unwrap().push((slot, shared));
    let mut closed = None;
    loop {
        tokio::select! {
            changed = ctrl.changed() => {
                if changed.is_err() || ctrl.borrow_and_update().stop { break; }
            }
            msg = rd.recv() => {
                let step = match msg {
                    In::Binary(b) | In::Text(b) => link.0.lock().unwrap().on_payload(b),
                    In::Closed(code) => Step::Closed(code),
                };
                match step {
                    Step::Pong => { let _ = wr.text(b"3"); }
                    Step::Closed(code) => { closed = Some(code); break; }
                    Step::Hot | Step::Changed | Step::Reply(_) => {}
                }
            }
        }
    }
    w.sender.remove(slot);
    link.0.lock().unwrap().wr = None;
    match closed {
        Some(code) => w.stats.closed.add(code, ROLE[role]),
        None => {
            if proto == Proto::SocketIo {
                let _ = wr.text(b"41");
            }
            rd.close().await
        }
    }
}

/// Both sides of every pair connect (agent and visitor of a pair one after the other) and
/// join their chat; then every side whose pair is complete may send.
pub async fn start(w: &Arc<World>, o: &ChatOpts) -> (Vec<tokio::task::JoinHandle<()>>, Value) {
    let t = Instant::now();
    let pairs = o.visitors;
    let mut tasks = Vec::with_capacity(2 * pairs);
    for i in 0..pairs {
        tasks.push(tokio::spawn(pair_connection(w.clone(), AGENT, i)));
        tasks.push(tokio::spawn(pair_connection(w.clone(), VISITOR, i)));
    }
    let w2 = w.clone();
    let sides = 2 * pairs as u64;
    wait_until("pairs connected", o.setup_timeout, || {
        w2.stats.connected.get() + w2.stats.connect_failed.get() >= sides
    })
    .await;
    for (slot, shared) in w.pairs.lock().unwrap().iter() {
        if shared.joined.load(Ordering::Relaxed) >= 2 {
            w.sender.weight(*slot, 1.0);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let setup = json!({
        "peer": w.peer.name(),
        "pairs_requested": pairs,
        "chats_started": w.started.get(),
        "sides_connected": w.stats.connected.get(),
        "connect_failed": w.stats.connect_failed.get(),
        "connect_errors": json!(*w.stats.connect_errors.lock().unwrap()),
        "connect_latency": summary(&w.connect_lat.lock().unwrap()),
        "chats_seconds": (secs * 100.0).round() / 100.0,
        "connect_rate_per_s": ((w.stats.connected.get() as f64 / secs.max(1e-3)) * 10.0).round() / 10.0,
        "errors_during_setup": w.stats.errors.json(),
    });
    (tasks, setup)
}
