//! Switchboard connections of the chat scenarios: agents log in, clean up and go available;
//! visitors take a session and request a chat; then each connection's task reads its socket,
//! answers offers and ends, drops and resumes in a storm, and tells the sender thread how many
//! live chats the connection sends for.

use super::peer::{Link, Peer, Proto, Step};
use super::{phase, wait_until, World, AGENT, ROLE, VISITOR};
use crate::net::{Incoming, Target, Ws};
use crate::setup;
use crate::stats::{hist, summary};
use crate::wire::In;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::protocol::{AgentStatus, ClientFrame, Decision, ServerFrame};

async fn welcome(ws: &mut Ws) -> anyhow::Result<ServerFrame> {
    match tokio::time::timeout(Duration::from_secs(15), ws.recv()).await {
        Ok(Incoming::Frame(f @ ServerFrame::Welcome { .. })) => Ok(f),
        Ok(Incoming::Frame(f)) => anyhow::bail!("expected welcome, got {f:?}"),
        Ok(Incoming::Closed(c)) => anyhow::bail!("closed before welcome ({c})"),
        Ok(Incoming::Undecodable(e)) => anyhow::bail!("undecodable welcome: {e}"),
        Err(_) => anyhow::bail!("no welcome within 15 s"),
    }
}

/// Connects the agent, cleans up chats left by an earlier run, goes available.
async fn agent_connect(w: &World, i: usize) -> anyhow::Result<Ws> {
    let target = &w.agent_targets[i % w.agent_targets.len()];
    let token = {
        let _g = w.login_gate.acquire().await;
        setup::login(
            &w.http,
            target,
            &format!("{}{i}", w.agent_prefix),
            &w.agent_password,
        )
        .await?
    };
    let mut ws = w
        .net
        .ws(target, &format!("/ws/agent?token={token}"))
        .await?;
    if let ServerFrame::Welcome { chats, .. } = welcome(&mut ws).await? {
        for c in chats {
            if c.state != "ended" {
                ws.send(&ClientFrame::End {
                    chat_id: c.chat_id.clone(),
                })?;
            }
            ws.send(&ClientFrame::Decide {
                chat_id: c.chat_id,
                decision: Decision::Trash,
                interaction_id: None,
            })?;
        }
    }
    ws.send(&ClientFrame::SetStatus {
        status: AgentStatus::Available,
    })?;
    Ok(ws)
}

/// Connects a visitor; a reconnect passes the token it already has (same identity, so it may
/// resume its chat).
async fn visitor_connect(w: &World, target: &Target, token: &mut String) -> anyhow::Result<Ws> {
    if token.is_empty() {
        *token = setup::visitor_token(&w.http, target).await?;
    }
    let mut ws = w
        .net
        .ws(target, &format!("/ws/visitor?token={token}"))
        .await?;
    welcome(&mut ws).await?;
    Ok(ws)
}

/// Live chats the connection sends for now (none while it resumes or ends).
fn weight(p: &Peer, teardown: bool) -> usize {
    if p.wr.is_none() || p.resuming.is_some() || teardown {
        0
    } else {
        p.live()
    }
}

async fn connection(w: Arc<World>, role: usize, idx: usize) {
    let mut ctrl = w.ctrl.subscribe();
    let mut token = String::new();
    let enc = w.net.encoding;
    let link = Arc::new(Link(Mutex::new(Peer::new(
        w.clone(),
        role,
        Proto::Switchboard(enc),
    ))));
    let ws = if role == AGENT {
        match agent_connect(&w, idx).await {
            Ok(ws) => ws,
            Err(e) => return w.stats.connect_error(&e),
        }
    } else {
        let permit = w.connect_gate.acquire().await;
        let target = &w.visitor_targets[idx % w.visitor_targets.len()];
        let ws = match visitor_connect(&w, target, &mut token).await {
            Ok(ws) => ws,
            Err(e) => return w.stats.connect_error(&e),
        };
        link.0.lock().unwrap().requested_at = Some(Instant::now());
        if let Err(e) = ws.send(&ClientFrame::RequestChat {
            name: Some(format!("Load visitor {idx}")),
            email: None,
            question: Some("load test".into()),
            queue: None,
        }) {
            return w.stats.connect_error(&e);
        }
        drop(permit);
        ws
    };
    let Ws { mut rd, wr, .. } = ws;
    link.0.lock().unwrap().wr = Some(wr);
    w.stats.connected.inc();
    let slot = w.sender.add(link.clone(), phase(idx, role));

    let mut c = *ctrl.borrow_and_update();
    let mut storm_seen = c.storm_epoch;
    let mut teardown_sent = false;
    let mut sending = 0;
    // A visitor that has not seen `chat_started` this long after its request replays the chat
    // (`resume` from the start), as a real widget would after a reload. Counted: see
    // `started_via_resume` in the report.
    let recover_at = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut recovered = role == AGENT;
    let mut closed = None;
    loop {
        tokio::select! {
            changed = ctrl.changed() => {
                if changed.is_err() { break; }
                c = *ctrl.borrow_and_update();
                if c.stop { break; }
                if c.teardown && !teardown_sent && role == VISITOR {
                    teardown_sent = true;
                    let p = link.0.lock().unwrap();
                    for lc in p.chats.iter().filter(|lc| lc.live) {
                        let _ = p.send(&ClientFrame::End { chat_id: lc.id.clone() });
                    }
                }
                if role == VISITOR && c.storm_epoch != storm_seen && idx < c.storm_count {
                    storm_seen = c.storm_epoch;
                    // Drop the socket (no close handshake), then reconnect to the next node.
                    link.0.lock().unwrap().wr = None;
                    drop(rd);
                    let since = Instant::now();
                    let home = idx % w.visitor_targets.len();
                    let target = w.all_targets[(home + c.storm_epoch as usize) % w.all_targets.len()].clone();
                    let mut attempt = 0;
                    let ws = loop {
                        match visitor_connect(&w, &target, &mut token).await {
                            Ok(ws) => break ws,
                            Err(e) => {
                                attempt += 1;
                                if attempt > 20 { w.stats.connect_error(&e); w.sender.remove(slot); return; }
                                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                            }
                        }
                    };
                    rd = ws.rd;
                    let mut p = link.0.lock().unwrap();
                    p.wr = Some(ws.wr);
                    p.resuming = Some(since);
                    let resumes: Vec<ClientFrame> = p.chats.iter().map(|lc| ClientFrame::Resume {
                        chat_id: lc.id.clone(),
                        last_seq: format!("{}-{}", lc.last_seq.0, lc.last_seq.1),
                    }).collect();
                    for f in &resumes {
                        let _ = p.send(f);
                    }
                    // Resend what was not acknowledged: the server stores each client message id once.
                    p.resend_pending();
                }
            }
            _ = tokio::time::sleep_until(recover_at), if !recovered => {
                recovered = true;
                let mut p = link.0.lock().unwrap();
                if let Some(i) = p.chats.iter().position(|lc| !lc.live) {
                    w.started_via_resume.inc();
                    p.recovering = Some(p.chats[i].last_seq);
                    let f = ClientFrame::Resume { chat_id: p.chats[i].id.clone(), last_seq: String::new() };
                    let _ = p.send(&f);
                }
            }
            msg = rd.recv() => {
                let step = match msg {
                    In::Binary(b) | In::Text(b) => link.0.lock().unwrap().on_payload(b),
                    In::Closed(code) => Step::Closed(code),
                };
                match step {
                    Step::Hot => continue,
                    Step::Changed | Step::Pong => {}
                    Step::Reply(r) => { let _ = link.0.lock().unwrap().send(&r); }
                    Step::Closed(code) => { closed = Some(code); break; }
                }
            }
        }
        let now = weight(&link.0.lock().unwrap(), c.teardown);
        if now != sending {
            sending = now;
            w.sender.weight(slot, now as f64);
        }
    }
    w.sender.remove(slot);
    link.0.lock().unwrap().wr = None;
    match closed {
        Some(code) => w.stats.closed.add(code, ROLE[role]),
        None => rd.close().await,
    }
}

/// Brings up agents, then visitors, until every chat has started (or the setup timeout
/// passes); the connection tasks and the set-up report.
pub async fn start(
    w: &Arc<World>,
    o: &super::ChatOpts,
) -> (Vec<tokio::task::JoinHandle<()>>, Value) {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..o.agents {
        tasks.push(tokio::spawn(connection(w.clone(), AGENT, i)));
    }
    let w2 = w.clone();
    let agents = o.agents as u64;
    wait_until("agents available", o.setup_timeout, || {
        w2.agents_ready.get() + w2.stats.connect_failed.get() >= agents
    })
    .await;
    let agents_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let arrivals_from = tokio::time::Instant::now();
    for i in 0..o.visitors {
        let w = w.clone();
        let arrival = (o.request_rate > 0.0)
            .then(|| arrivals_from + Duration::from_secs_f64(i as f64 / o.request_rate));
        tasks.push(tokio::spawn(async move {
            if let Some(at) = arrival {
                tokio::time::sleep_until(at).await;
            }
            connection(w, VISITOR, i).await
        }));
    }
    let visitors = o.visitors as u64;
    wait_until("chats started", o.setup_timeout, || {
        w2.started.get() + w2.stats.connect_failed.get() + w2.stats.closed.total() >= visitors
    })
    .await;
    let chats_s = t.elapsed().as_secs_f64();
    let mut offer_lat = hist();
    {
        let req = w.requested.lock().unwrap();
        for (chat, at) in w.offered.lock().unwrap().iter() {
            if let Some(r) = req.get(chat) {
                let _ =
                    offer_lat.record((at.saturating_duration_since(*r).as_micros() as u64).max(1));
            }
        }
    }
    let setup = json!({
        "agents_ready": w.agents_ready.get(),
        "agents_seconds": (agents_s * 100.0).round() / 100.0,
        "chats_queued": w.queued.get(),
        "chats_started": w.started.get(),
        "chats_offered": w.offered.lock().unwrap().len(),
        "offered_twice": w.offered_twice.get(),
        "visitors_without_chat_started_after_2s_recovered_by_resume": w.started_via_resume.get(),
        "chat_started_frames": { "visitor": w.started_frames[VISITOR].get(), "agent": w.started_frames[AGENT].get() },
        "joined_entries": { "visitor": w.joined_entries[VISITOR].get(), "agent": w.joined_entries[AGENT].get() },
        "visitors_requested": visitors,
        "chats_seconds": (chats_s * 100.0).round() / 100.0,
        "request_rate_per_s": ((w.started.get() as f64 / chats_s.max(1e-3)) * 10.0).round() / 10.0,
        "request_to_offer": summary(&offer_lat),
        "request_to_chat_started": summary(&w.accept_lat.lock().unwrap()),
        "connect_failed": w.stats.connect_failed.get(),
        "connect_errors": json!(*w.stats.connect_errors.lock().unwrap()),
        "setup_errors": w.setup_errors.json(),
        "errors_during_setup": w.stats.errors.json(),
    });
    (tasks, setup)
}
