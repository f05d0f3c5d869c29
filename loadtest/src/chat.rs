//! The `chat`, `ramp` and `storm` scenarios. Agents (on the agent nodes) go available, visitors
//! (on the visitor nodes) request chats, agents accept every offer; then both sides of every
//! chat send messages at a controlled total rate. Each text carries a per-chat, per-side counter
//! with its scheduled and its actual send time, so the receiving side measures end-to-end latency
//! (both ways) and finds lost, duplicated and out-of-order messages.
//!
//! With the Socket.IO peer (`--peer socketio`) there are no agents, queues or offers: visitor
//! `i` (on the visitor targets) and agent `i` (on the agent targets) join room `chat-<i>`, and
//! from there the same pacing, texts, latency and loss accounting, windows and ramp apply.

use crate::net::{Incoming, Net, Peer as ServerKind, Target};
use crate::setup;
use crate::socketio;
use crate::stats::{hist, p_ms, summary, ByCode, Counter, CpuWindow, Lat, Proc, Stats};
use crate::ticker::Ticker;
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::protocol::{AgentStatus, ClientFrame, Decision, EntryKind, ServerFrame};
use tokio::sync::{watch, Notify, Semaphore};

const VISITOR: usize = 0;
const AGENT: usize = 1;
const ROLE: [&str; 2] = ["visitor", "agent"];

/// What the controller tells every connection task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Control {
    /// Messages per second that each side of each started chat sends (0: quiet).
    pub per_side_hz: f64,
    /// Bumped to make visitors with index below `storm_count` drop and reconnect.
    pub storm_epoch: u32,
    pub storm_count: usize,
    /// Visitors end their chats; agents decide on ended chats.
    pub teardown: bool,
    /// Close and exit.
    pub stop: bool,
}

/// What the receiver of one direction of one chat has seen.
#[derive(Default)]
struct RecvState {
    expected: u64,
    missing: HashSet<u64>,
    unique: u64,
    /// Counters the server refused with an error frame (not lost: never accepted).
    refused: HashSet<u64>,
}

#[derive(Default)]
struct ChatShared {
    /// Counters handed out per sending side (messages written to the socket).
    sent: [AtomicU64; 2],
    /// Sides connected to the room (Socket.IO pairs only).
    joined: AtomicU64,
    /// Indexed by the sending side.
    recv: [Mutex<RecvState>; 2],
}

pub struct World {
    pub net: Net,
    peer: ServerKind,
    visitor_targets: Vec<Target>,
    agent_targets: Vec<Target>,
    all_targets: Vec<Target>,
    http: reqwest::Client,
    pub stats: Stats,
    pub lat: Mutex<Lat>,
    chats: Mutex<HashMap<String, Arc<ChatShared>>>,
    requested: Mutex<HashMap<String, Instant>>,
    offered: Mutex<HashMap<String, Instant>>,
    accept_lat: Mutex<Histogram<u64>>,
    resume_lat: Mutex<Histogram<u64>>,
    /// Socket.IO pairs: WebSocket + open + connect acknowledged, per side.
    connect_lat: Mutex<Histogram<u64>>,
    agents_ready: Counter,
    /// Offers of a chat already offered (no agent denies in these scenarios: must stay 0).
    offered_twice: Counter,
    /// Visitors that had to `resume` to learn that their chat started.
    started_via_resume: Counter,
    /// Diagnostics, per role: `chat_started` frames and "joined" entries seen.
    started_frames: [Counter; 2],
    joined_entries: [Counter; 2],
    queued: Counter,
    started: Counter,
    resumed: Counter,
    ended: Counter,
    decided: Counter,
    setup_errors: ByCode,
    ctrl: watch::Sender<Control>,
    t0: Instant,
    pad: String,
    agent_prefix: String,
    agent_password: String,
    login_gate: Semaphore,
    connect_gate: Semaphore,
    /// What agents decide on an ended chat (`trash` unless a scenario sets another).
    decision: Mutex<Decision>,
    /// Wakes paced senders on time.
    ticker: Ticker,
}

#[derive(Debug, Clone)]
pub struct ChatOpts {
    pub agents: usize,
    pub visitors: usize,
    pub agent_prefix: String,
    pub agent_password: String,
    pub text_bytes: usize,
    pub setup_timeout: Duration,
    pub login_parallel: usize,
    pub connect_parallel: usize,
    /// Visitors arriving per second; 0: all at once (bounded by `connect_parallel`).
    pub request_rate: f64,
    /// `split`: visitors on the first half of the targets, agents on the second; `rr`: both everywhere.
    pub placement_split: bool,
}

fn micros(w: &World, at: Instant) -> u64 {
    at.saturating_duration_since(w.t0).as_micros() as u64
}

/// A stream id `ms-n` as a comparable pair.
fn seq(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A load-test text: `lt COUNTER SCHEDULED_MICROS SENT_MICROS padding`.
struct Stamp {
    counter: u64,
    scheduled_us: u64,
    sent_us: u64,
}

fn parse_text(t: &str) -> Option<Stamp> {
    let mut it = t.split(' ');
    if it.next()? != "lt" {
        return None;
    }
    Some(Stamp {
        counter: it.next()?.parse().ok()?,
        scheduled_us: it.next()?.parse().ok()?,
        sent_us: it.next()?.parse().ok()?,
    })
}

impl World {
    pub fn new(net: Net, targets: &[Target], o: &ChatOpts) -> Arc<World> {
        let (vt, at) = if o.placement_split && targets.len() > 1 {
            let half = targets.len() / 2;
            (targets[..half].to_vec(), targets[half..].to_vec())
        } else {
            (targets.to_vec(), targets.to_vec())
        };
        let (ctrl, _) = watch::channel(Control {
            per_side_hz: 0.0,
            storm_epoch: 0,
            storm_count: 0,
            teardown: false,
            stop: false,
        });
        Arc::new(World {
            peer: net.peer,
            net,
            visitor_targets: vt,
            agent_targets: at,
            all_targets: targets.to_vec(),
            http: setup::http_client(),
            stats: Stats::default(),
            lat: Mutex::new(Lat {
                total: hist(),
                step: hist(),
                second: hist(),
                step_from_send: hist(),
            }),
            chats: Mutex::new(HashMap::new()),
            requested: Mutex::new(HashMap::new()),
            offered: Mutex::new(HashMap::new()),
            accept_lat: Mutex::new(hist()),
            resume_lat: Mutex::new(hist()),
            connect_lat: Mutex::new(hist()),
            agents_ready: Counter::default(),
            offered_twice: Counter::default(),
            started_via_resume: Counter::default(),
            started_frames: Default::default(),
            joined_entries: Default::default(),
            queued: Counter::default(),
            started: Counter::default(),
            resumed: Counter::default(),
            ended: Counter::default(),
            decided: Counter::default(),
            setup_errors: ByCode::default(),
            ctrl,
            t0: Instant::now(),
            // Counter and two microsecond stamps take ~40 of the text's bytes.
            pad: "x".repeat(o.text_bytes.saturating_sub(50).max(1)),
            agent_prefix: o.agent_prefix.clone(),
            agent_password: o.agent_password.clone(),
            login_gate: Semaphore::new(o.login_parallel.max(1)),
            connect_gate: Semaphore::new(o.connect_parallel.max(1)),
            decision: Mutex::new(Decision::Trash),
            ticker: Ticker::start(),
        })
    }

    /// What agents decide on chats that end from now on.
    pub fn set_decision(&self, d: Decision) {
        *self.decision.lock().unwrap() = d;
    }

    /// `decided` frames agents have seen.
    pub fn decided_count(&self) -> u64 {
        self.decided.get()
    }

    /// Per chat id: messages both sides sent that the server did not refuse.
    pub fn accepted_per_chat(&self) -> HashMap<String, u64> {
        self.chats
            .lock()
            .unwrap()
            .iter()
            .map(|(id, c)| {
                let n = [VISITOR, AGENT]
                    .iter()
                    .map(|&dir| {
                        let refused = c.recv[dir].lock().unwrap().refused.len() as u64;
                        c.sent[dir].load(Ordering::Relaxed).saturating_sub(refused)
                    })
                    .sum();
                (id.clone(), n)
            })
            .collect()
    }

    fn chat(&self, id: &str) -> Arc<ChatShared> {
        self.chats
            .lock()
            .unwrap()
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn control(&self, f: impl FnOnce(&mut Control)) {
        self.ctrl.send_modify(f);
    }

    fn record_latency(&self, from_schedule_us: u64, from_send_us: u64) {
        let us = from_schedule_us.max(1);
        let mut l = self.lat.lock().unwrap();
        let _ = l.total.record(us);
        let _ = l.step.record(us);
        let _ = l.second.record(us);
        let _ = l.step_from_send.record(from_send_us.max(1));
    }

    /// Counts message `counter` of side `role` in `chat` as sent and returns its text, stamped
    /// with its scheduled send time `due` and the time it is written (now).
    fn outgoing(&self, chat: &ChatShared, role: usize, counter: u64, due: Instant) -> String {
        chat.sent[role].fetch_add(1, Ordering::Relaxed);
        self.stats.sent.inc();
        let now = micros(self, Instant::now());
        format!("lt {counter} {} {now} {}", micros(self, due), self.pad)
    }

    /// A message of side `dir` arrived at the other side.
    fn received(&self, chat: &ChatShared, dir: usize, stamp: Stamp) {
        self.stats.delivered.inc();
        let now = micros(self, Instant::now());
        self.record_latency(
            now.saturating_sub(stamp.scheduled_us),
            now.saturating_sub(stamp.sent_us),
        );
        let counter = stamp.counter;
        let mut st = chat.recv[dir].lock().unwrap();
        if counter == st.expected {
            st.expected += 1;
            st.unique += 1;
        } else if counter > st.expected {
            for c in st.expected..counter {
                st.missing.insert(c);
            }
            st.expected = counter + 1;
            st.unique += 1;
        } else if st.missing.remove(&counter) {
            st.unique += 1;
            self.stats.out_of_order.inc();
        } else {
            self.stats.duplicated.inc();
        }
    }

    /// (sent, unique delivered, refused, lost) over every chat and direction.
    fn tally(&self) -> (u64, u64, u64, u64) {
        let (mut sent, mut uniq, mut refused, mut lost) = (0, 0, 0, 0);
        for c in self.chats.lock().unwrap().values() {
            for dir in [VISITOR, AGENT] {
                let s = c.sent[dir].load(Ordering::Relaxed);
                let st = c.recv[dir].lock().unwrap();
                let refused_unseen = st
                    .refused
                    .iter()
                    .filter(|r| st.missing.contains(r) || **r >= st.expected)
                    .count() as u64;
                sent += s;
                uniq += st.unique;
                refused += refused_unseen;
                lost += s.saturating_sub(st.unique + refused_unseen);
            }
        }
        (sent, uniq, refused, lost)
    }
}

/// One chat as seen by one connection.
struct LocalChat {
    id: String,
    shared: Arc<ChatShared>,
    next_counter: u64,
    live: bool,
}

struct Pending {
    chat: String,
    cmid: String,
    text: String,
}

/// One connection's state: the visitor's single chat or the agent's several.
struct Peer {
    w: Arc<World>,
    role: usize,
    chats: Vec<LocalChat>,
    rr: usize,
    pending: VecDeque<Pending>,
    last_seq: HashMap<String, String>,
    requested_at: Option<Instant>,
    ready: bool,
    ended: bool,
    resuming: Option<(Instant, usize)>,
    /// A resume sent to recover a missed `chat_started`: its replay repeats entries up to this
    /// sequence, which were already counted.
    recovering: Option<(u64, u64)>,
}

enum Step {
    Go,
    Reply(ClientFrame),
}

impl Peer {
    fn live(&self) -> usize {
        self.chats.iter().filter(|c| c.live).count()
    }

    fn local(&mut self, id: &str) -> &mut LocalChat {
        if let Some(i) = self.chats.iter().position(|c| c.id == id) {
            return &mut self.chats[i];
        }
        let shared = self.w.chat(id);
        self.chats.push(LocalChat {
            id: id.to_string(),
            shared,
            next_counter: 0,
            live: false,
        });
        self.chats.last_mut().unwrap()
    }

    /// The next message to send (round-robin over live chats), stamped with its scheduled time.
    fn next_message(&mut self, due: Instant) -> Option<ClientFrame> {
        let n = self.chats.len();
        for k in 0..n {
            let i = (self.rr + k) % n;
            if !self.chats[i].live {
                continue;
            }
            self.rr = i + 1;
            let role = self.role;
            let c = &mut self.chats[i];
            let counter = c.next_counter;
            c.next_counter += 1;
            let text = self.w.outgoing(&c.shared, role, counter, due);
            let cmid = format!("{}{counter}", &ROLE[role][..1]);
            self.pending.push_back(Pending {
                chat: c.id.clone(),
                cmid: cmid.clone(),
                text: text.clone(),
            });
            return Some(ClientFrame::Send {
                chat_id: c.id.clone(),
                client_msg_id: cmid,
                text,
            });
        }
        None
    }

    fn on_frame(&mut self, f: ServerFrame) -> Step {
        let w = self.w.clone();
        match f {
            ServerFrame::Queued { chat_id, .. } => {
                let first = !self.chats.iter().any(|c| c.id == chat_id);
                self.local(&chat_id);
                if first {
                    w.queued.inc();
                    if let Some(t) = self.requested_at {
                        w.requested.lock().unwrap().insert(chat_id, t);
                    }
                }
            }
            ServerFrame::Offer { chat_id, .. } => {
                if w.offered
                    .lock()
                    .unwrap()
                    .insert(chat_id.clone(), Instant::now())
                    .is_some()
                {
                    w.offered_twice.inc();
                }
                self.local(&chat_id);
                return Step::Reply(ClientFrame::Accept { chat_id });
            }
            ServerFrame::ChatStarted { chat_id, .. } => {
                w.started_frames[self.role].inc();
                let c = self.local(&chat_id);
                if !c.live {
                    c.live = true;
                    if self.role == VISITOR {
                        w.started.inc();
                        if let Some(t) = self.requested_at {
                            let _ = w
                                .accept_lat
                                .lock()
                                .unwrap()
                                .record((t.elapsed().as_micros() as u64).max(1));
                        }
                    }
                }
            }
            ServerFrame::Entry { chat_id, entry } => {
                if let Some(upto) = self.recovering {
                    if seq(&entry.seq).unwrap_or_default() <= upto {
                        return Step::Go;
                    }
                }
                self.last_seq.insert(chat_id.clone(), entry.seq.clone());
                if entry.event == "joined" {
                    w.joined_entries[self.role].inc();
                }
                if entry.kind == EntryKind::Message && entry.author != ROLE[self.role] {
                    if let Some(stamp) = parse_text(&entry.text) {
                        let dir = 1 - self.role;
                        let shared = self.local(&chat_id).shared.clone();
                        w.received(&shared, dir, stamp);
                    }
                }
            }
            ServerFrame::Ack { client_msg_id, .. } => {
                w.stats.acked.inc();
                if let Some(i) = self.pending.iter().position(|p| p.cmid == client_msg_id) {
                    self.pending.remove(i);
                }
            }
            ServerFrame::ChatEnded { chat_id, .. } => {
                let c = self.local(&chat_id);
                c.live = false;
                if self.role == VISITOR {
                    w.ended.inc();
                    self.ended = true;
                } else {
                    return Step::Reply(ClientFrame::Decide {
                        chat_id,
                        decision: *w.decision.lock().unwrap(),
                        interaction_id: None,
                    });
                }
            }
            ServerFrame::Decided { .. } => w.decided.inc(),
            ServerFrame::Status { status } if status == AgentStatus::Available && !self.ready => {
                self.ready = true;
                w.agents_ready.inc();
            }
            ServerFrame::Resumed { .. } => {
                self.recovering = None;
                if let Some((since, _)) = self.resuming.take() {
                    let _ = w
                        .resume_lat
                        .lock()
                        .unwrap()
                        .record((since.elapsed().as_micros() as u64).max(1));
                    w.resumed.inc();
                }
            }
            ServerFrame::Error {
                code,
                message,
                reference,
                ..
            } => {
                if self.role == AGENT && !self.ready {
                    w.setup_errors.add(code, &message);
                    return Step::Go;
                }
                w.stats.errors.add(code, &message);
                if let Some(r) = reference {
                    if let Some(i) = self.pending.iter().position(|p| p.cmid == r) {
                        let p = self.pending.remove(i).unwrap();
                        if let Ok(counter) = p.cmid[1..].parse::<u64>() {
                            let shared = self.local(&p.chat).shared.clone();
                            shared.recv[self.role]
                                .lock()
                                .unwrap()
                                .refused
                                .insert(counter);
                        }
                    }
                }
            }
            // Welcome, offer_revoked, pong and frames these scenarios do not use.
            _ => {}
        }
        Step::Go
    }
}

async fn welcome(ws: &mut crate::net::Ws) -> anyhow::Result<ServerFrame> {
    match tokio::time::timeout(Duration::from_secs(15), ws.recv()).await {
        Ok(Incoming::Frame(f @ ServerFrame::Welcome { .. })) => Ok(f),
        Ok(Incoming::Frame(f)) => anyhow::bail!("expected welcome, got {f:?}"),
        Ok(Incoming::Closed(c)) => anyhow::bail!("closed before welcome ({c})"),
        Ok(Incoming::Undecodable(e)) => anyhow::bail!("undecodable welcome: {e}"),
        Err(_) => anyhow::bail!("no welcome within 15 s"),
    }
}

/// Connects the agent, cleans up chats left by an earlier run, goes available.
async fn agent_connect(w: &World, i: usize) -> anyhow::Result<crate::net::Ws> {
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
                })
                .await?;
            }
            ws.send(&ClientFrame::Decide {
                chat_id: c.chat_id,
                decision: Decision::Trash,
                interaction_id: None,
            })
            .await?;
        }
    }
    ws.send(&ClientFrame::SetStatus {
        status: AgentStatus::Available,
    })
    .await?;
    Ok(ws)
}

/// Connects a visitor; a reconnect passes the token it already has (same identity, so it may
/// resume its chat).
async fn visitor_connect(
    w: &World,
    target: &Target,
    token: &mut String,
) -> anyhow::Result<crate::net::Ws> {
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

/// When a connection sends next: `per_side_hz` for each of its live chats, the first send of
/// each connection spread over one interval, each later one exactly one interval after the
/// previous *scheduled* time (latency counts from that time, so a late sender is not excused).
/// Wake-ups come from the precise `Ticker`, not from tokio's millisecond timer.
struct Pacer {
    phase: f64,
    interval: Duration,
    due: Instant,
    ticker: Ticker,
    wake: Arc<Notify>,
}

impl Pacer {
    fn new(idx: usize, role: usize, ticker: &Ticker) -> Pacer {
        Pacer {
            phase: ((idx as f64 * 0.618_033_988_7) % 1.0) * if role == AGENT { 0.5 } else { 1.0 },
            interval: Duration::ZERO,
            due: Instant::now(),
            ticker: ticker.clone(),
            wake: Arc::new(Notify::new()),
        }
    }

    fn reschedule(&mut self, c: &Control, live: usize) {
        if c.per_side_hz <= 0.0 || live == 0 {
            self.interval = Duration::ZERO;
            self.due = Instant::now();
            return;
        }
        self.interval = Duration::from_secs_f64(1.0 / (c.per_side_hz * live as f64));
        self.due = Instant::now() + self.interval.mul_f64(self.phase);
        self.ticker.wake_at(self.due, &self.wake);
    }

    fn sending(&self) -> bool {
        !self.interval.is_zero()
    }

    /// Until the next send is due. Cancel-safe: a wake-up that comes while the caller is busy
    /// elsewhere is kept by the `Notify`.
    async fn due(&self) {
        while Instant::now() < self.due {
            self.wake.notified().await;
        }
    }

    /// The scheduled time of the send that is due now; moves on to the next one.
    fn advance(&mut self) -> Instant {
        let at = self.due;
        self.due += self.interval;
        self.ticker.wake_at(self.due, &self.wake);
        at
    }
}

async fn connection(w: Arc<World>, role: usize, idx: usize) {
    let mut ctrl = w.ctrl.subscribe();
    let mut token = String::new();
    let mut peer = Peer {
        w: w.clone(),
        role,
        chats: vec![],
        rr: 0,
        pending: VecDeque::new(),
        last_seq: HashMap::new(),
        requested_at: None,
        ready: false,
        ended: false,
        resuming: None,
        recovering: None,
    };
    let mut ws = if role == AGENT {
        match agent_connect(&w, idx).await {
            Ok(ws) => ws,
            Err(e) => return w.stats.connect_error(&e),
        }
    } else {
        let permit = w.connect_gate.acquire().await;
        let target = &w.visitor_targets[idx % w.visitor_targets.len()];
        let mut ws = match visitor_connect(&w, target, &mut token).await {
            Ok(ws) => ws,
            Err(e) => return w.stats.connect_error(&e),
        };
        peer.requested_at = Some(Instant::now());
        if let Err(e) = ws
            .send(&ClientFrame::RequestChat {
                name: Some(format!("Load visitor {idx}")),
                email: None,
                question: Some("load test".into()),
                queue: None,
            })
            .await
        {
            return w.stats.connect_error(&e);
        }
        drop(permit);
        ws
    };
    w.stats.connected.inc();

    let mut c = *ctrl.borrow_and_update();
    let mut storm_seen = c.storm_epoch;
    let mut teardown_sent = false;
    let mut pace = Pacer::new(idx, role, &w.ticker);
    let mut live_known = 0;
    // A visitor that has not seen `chat_started` this long after its request replays the chat
    // (`resume` from the start), as a real widget would after a reload. Counted: see
    // `started_via_resume` in the report.
    let recover_at = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut recovered = role == AGENT;
    loop {
        let live = peer.live();
        if live != live_known {
            live_known = live;
            pace.reschedule(&c, live);
        }
        let sending = pace.sending() && peer.resuming.is_none() && !c.teardown;
        tokio::select! {
            changed = ctrl.changed() => {
                if changed.is_err() { break; }
                c = *ctrl.borrow_and_update();
                if c.stop { break; }
                pace.reschedule(&c, peer.live());
                if c.teardown && !teardown_sent && role == VISITOR {
                    teardown_sent = true;
                    for lc in peer.chats.iter().filter(|lc| lc.live) {
                        let _ = ws.send(&ClientFrame::End { chat_id: lc.id.clone() }).await;
                    }
                }
                if role == VISITOR && c.storm_epoch != storm_seen && idx < c.storm_count {
                    storm_seen = c.storm_epoch;
                    // Drop the socket (no close handshake), then reconnect to the next node.
                    drop(ws);
                    let since = Instant::now();
                    let home = idx % w.visitor_targets.len();
                    let target = w.all_targets[(home + c.storm_epoch as usize) % w.all_targets.len()].clone();
                    let mut attempt = 0;
                    ws = loop {
                        match visitor_connect(&w, &target, &mut token).await {
                            Ok(ws) => break ws,
                            Err(e) => {
                                attempt += 1;
                                if attempt > 20 { w.stats.connect_error(&e); return; }
                                tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                            }
                        }
                    };
                    for lc in &peer.chats {
                        let last_seq = peer.last_seq.get(&lc.id).cloned().unwrap_or_default();
                        peer.resuming = Some((since, peer.chats.len()));
                        if ws.send(&ClientFrame::Resume { chat_id: lc.id.clone(), last_seq }).await.is_err() { break; }
                    }
                    // Resend what was not acknowledged: the server stores each client message id once.
                    let again: Vec<ClientFrame> = peer.pending.iter().map(|p| ClientFrame::Send { chat_id: p.chat.clone(), client_msg_id: p.cmid.clone(), text: p.text.clone() }).collect();
                    for f in again {
                        let _ = ws.send(&f).await;
                    }
                }
            }
            _ = tokio::time::sleep_until(recover_at), if !recovered => {
                recovered = true;
                if let Some(lc) = peer.chats.iter().find(|lc| !lc.live) {
                    w.started_via_resume.inc();
                    peer.recovering = Some(peer.last_seq.get(&lc.id).and_then(|q| seq(q)).unwrap_or_default());
                    let _ = ws.send(&ClientFrame::Resume { chat_id: lc.id.clone(), last_seq: String::new() }).await;
                }
            }
            _ = pace.due(), if sending => {
                let at = pace.advance();
                if let Some(f) = peer.next_message(at) {
                    if ws.send(&f).await.is_err() {
                        w.stats.closed.add(1006, "send failed");
                        break;
                    }
                }
            }
            msg = ws.recv() => match msg {
                Incoming::Frame(f) => match peer.on_frame(f) {
                    Step::Go => {}
                    Step::Reply(r) => { let _ = ws.send(&r).await; }
                },
                Incoming::Closed(code) => {
                    w.stats.closed.add(code, ROLE[role]);
                    return;
                }
                Incoming::Undecodable(_) => w.stats.undecodable.inc(),
            },
        }
    }
    let _ = peer.ended;
    ws.close().await;
}

/// Progress line every second until `done` flips.
fn progress(w: Arc<World>, label: Arc<Mutex<String>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let start = Instant::now();
        let (mut last_sent, mut last_del) = (0, 0);
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let (sent, del) = (w.stats.sent.get(), w.stats.delivered.get());
            let p99 = {
                let mut l = w.lat.lock().unwrap();
                let p = p_ms(&l.second, 0.99);
                l.second.reset();
                p
            };
            eprintln!(
                "[{:>4}s] {} conns={} fail={} agents_ready={} queued={} started={} sent/s={} delivered/s={} p99(1s)={:.2}ms errors={} closed={} resumed={} decided={}",
                start.elapsed().as_secs(),
                label.lock().unwrap(),
                w.stats.connected.get(),
                w.stats.connect_failed.get(),
                w.agents_ready.get(),
                w.queued.get(),
                w.started.get(),
                sent - last_sent,
                del - last_del,
                p99,
                w.stats.errors.total(),
                w.stats.closed.total(),
                w.resumed.get(),
                w.decided.get(),
            );
            last_sent = sent;
            last_del = del;
        }
    })
}

/// Whether the messages in flight have drained once the rate dropped to zero. Each sender
/// learns of the drop on its own, and one whose next send fell due at the same moment may
/// still send once more; a check that found everything delivered before that send was counted
/// reported it as lost. So everything sent must be delivered (or refused) and the count of
/// sent messages must have stood still for `DRAIN_SETTLE`.
#[derive(Default)]
struct Drained {
    since: Option<(Instant, u64)>,
}

const DRAIN_SETTLE: Duration = Duration::from_millis(250);

impl Drained {
    fn check(&mut self, sent: u64, accounted: u64, now: Instant) -> bool {
        if accounted < sent {
            self.since = None;
            return false;
        }
        match self.since {
            Some((at, n)) if n == sent => now.duration_since(at) >= DRAIN_SETTLE,
            _ => {
                self.since = Some((now, sent));
                false
            }
        }
    }
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() > deadline {
            eprintln!("timed out waiting for {what}");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    true
}

/// Handles of a running chat world.
pub struct Running {
    pub w: Arc<World>,
    label: Arc<Mutex<String>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    progress: tokio::task::JoinHandle<()>,
    pub setup: Value,
    pub chats: u64,
}

/// Brings up agents and visitors until every chat has started (or the setup timeout passes);
/// with the Socket.IO peer, both sides of every pair.
pub async fn start(net: Net, targets: &[Target], o: &ChatOpts) -> Running {
    let w = World::new(net, targets, o);
    let label = Arc::new(Mutex::new("setup".to_string()));
    let progress = progress(w.clone(), label.clone());
    if w.peer == ServerKind::Socketio {
        return start_pairs(w, o, label, progress).await;
    }
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
    Running::new(w, label, tasks, progress, setup)
}

/// One side of Socket.IO pair `idx`: the visitor on the visitor targets or the agent on the
/// agent targets, both in room `chat-<idx>`, sending `msg` events once both sides are in.
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
    let auth = json!({ "role": ROLE[role], "room": id });
    let mut ws = {
        let _permit = w.connect_gate.acquire().await;
        let t = Instant::now();
        match socketio::Conn::open(&w.net, &target, &auth, Duration::from_secs(15)).await {
            Ok(ws) => {
                let us = (t.elapsed().as_micros() as u64).max(1);
                let _ = w.connect_lat.lock().unwrap().record(us);
                ws
            }
            Err(e) => return w.stats.connect_error(&e),
        }
    };
    w.stats.connected.inc();
    if shared.joined.fetch_add(1, Ordering::Relaxed) == 1 {
        w.started.inc();
    }
    // A side sends only when its pair is complete (else nobody would receive).
    let live = |s: &ChatShared| usize::from(s.joined.load(Ordering::Relaxed) >= 2);
    let mut c = *ctrl.borrow_and_update();
    let mut pace = Pacer::new(idx, role, &w.ticker);
    pace.reschedule(&c, live(&shared));
    let mut counter = 0;
    loop {
        let sending = pace.sending() && !c.teardown;
        tokio::select! {
            changed = ctrl.changed() => {
                if changed.is_err() { break; }
                c = *ctrl.borrow_and_update();
                if c.stop { break; }
                pace.reschedule(&c, live(&shared));
            }
            _ = pace.due(), if sending => {
                let text = w.outgoing(&shared, role, counter, pace.advance());
                counter += 1;
                if ws.emit("msg", &text).await.is_err() {
                    w.stats.closed.add(1006, "send failed");
                    break;
                }
            }
            msg = ws.recv() => match msg {
                socketio::In::Event(name, args) if name == "msg" => {
                    match args.first().and_then(Value::as_str).and_then(parse_text) {
                        Some(stamp) => w.received(&shared, 1 - role, stamp),
                        None => w.stats.undecodable.inc(),
                    }
                }
                socketio::In::Event(..) => {}
                socketio::In::Ping => {
                    if ws.pong().await.is_err() {
                        w.stats.closed.add(1006, "pong failed");
                        break;
                    }
                }
                socketio::In::Closed(code) => {
                    w.stats.closed.add(code, ROLE[role]);
                    return;
                }
                socketio::In::Undecodable => w.stats.undecodable.inc(),
            },
        }
    }
    ws.close().await;
}

/// The Socket.IO set-up: both sides of every pair connect (agent and visitor of a pair one
/// after the other) and join their room.
async fn start_pairs(
    w: Arc<World>,
    o: &ChatOpts,
    label: Arc<Mutex<String>>,
    progress: tokio::task::JoinHandle<()>,
) -> Running {
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
    let secs = t.elapsed().as_secs_f64();
    let setup = json!({
        "peer": ServerKind::Socketio.name(),
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
    Running::new(w, label, tasks, progress, setup)
}

impl Running {
    fn new(
        w: Arc<World>,
        label: Arc<Mutex<String>>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
        progress: tokio::task::JoinHandle<()>,
        setup: Value,
    ) -> Running {
        let chats = w.started.get();
        Running {
            w,
            label,
            tasks,
            progress,
            setup,
            chats,
        }
    }

    pub fn label(&self, s: &str) {
        *self.label.lock().unwrap() = s.to_string();
    }

    /// Sets the total message rate (both directions of every started chat together).
    pub fn set_rate(&self, total: f64) {
        let hz = if self.chats == 0 {
            0.0
        } else {
            total / (2.0 * self.chats as f64)
        };
        self.w.control(|c| c.per_side_hz = hz);
    }

    pub fn reset_step(&self) {
        let mut l = self.w.lat.lock().unwrap();
        l.step.reset();
        l.step_from_send.reset();
    }

    pub fn reset_total(&self) {
        let mut l = self.w.lat.lock().unwrap();
        l.total.reset();
        l.step.reset();
        l.step_from_send.reset();
    }

    /// Stops sending and waits until everything sent was delivered (or `max` passes).
    pub async fn quiesce(&self, max: Duration) -> Value {
        self.set_rate(0.0);
        let w = self.w.clone();
        let t = Instant::now();
        let mut drained = Drained::default();
        wait_until("in-flight messages", max, || {
            let (sent, uniq, refused, _) = w.tally();
            drained.check(sent, uniq + refused, Instant::now())
        })
        .await;
        let (sent, uniq, refused, lost) = self.w.tally();
        json!({
            "drain_seconds": (t.elapsed().as_secs_f64() * 100.0).round() / 100.0,
            "sent": sent,
            "delivered_unique": uniq,
            "refused_by_server": refused,
            "lost": lost,
            "duplicated": self.w.stats.duplicated.get(),
            "out_of_order": self.w.stats.out_of_order.get(),
            "acked": self.w.stats.acked.get(),
            "errors": self.w.stats.errors.json(),
            "closed": self.w.stats.closed.json(),
            "undecodable": self.w.stats.undecodable.get(),
        })
    }

    /// Ends every chat, lets the agents decide, closes every socket (Socket.IO pairs: closes).
    pub async fn finish(self) -> Value {
        self.label("teardown");
        let t = Instant::now();
        if self.w.peer == ServerKind::Switchboard {
            self.w.control(|c| c.teardown = true);
            let w = self.w.clone();
            let chats = self.chats;
            wait_until("chats decided", Duration::from_secs(30), || {
                w.decided.get() >= chats
            })
            .await;
        }
        let teardown_s = t.elapsed().as_secs_f64();
        self.w.control(|c| c.stop = true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.progress.abort();
        json!({ "ended_seen_by_visitors": self.w.ended.get(), "decided": self.w.decided.get(), "seconds": (teardown_s * 100.0).round() / 100.0 })
    }
}

/// A measured window at a fixed total rate.
pub async fn window(r: &Running, rate: f64, secs: f64, procs: &[Proc]) -> Value {
    r.set_rate(rate);
    r.reset_step();
    let (s0, d0) = (r.w.stats.sent.get(), r.w.stats.delivered.get());
    let e0 = r.w.stats.errors.total() + r.w.stats.closed.total();
    let cpu = CpuWindow::start(procs);
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let dt = t.elapsed().as_secs_f64();
    let (s1, d1) = (r.w.stats.sent.get(), r.w.stats.delivered.get());
    let switches = cpu.switches_per(d1 - d0);
    let steal = cpu.steal_percent();
    let cpu = cpu.finish();
    let e1 = r.w.stats.errors.total() + r.w.stats.closed.total();
    let (lat, from_send) = {
        let l = r.w.lat.lock().unwrap();
        (summary(&l.step), summary(&l.step_from_send))
    };
    json!({
        "target_rate": rate,
        "seconds": (dt * 100.0).round() / 100.0,
        "sent_rate": (((s1 - s0) as f64 / dt) * 10.0).round() / 10.0,
        "delivered_rate": (((d1 - d0) as f64 / dt) * 10.0).round() / 10.0,
        "latency": lat,
        "latency_from_send": from_send,
        "new_errors": e1 - e0,
        "cpu_percent_of_one_core": cpu,
        "context_switches_per_message": switches,
        "steal_percent_of_one_core": steal,
    })
}

pub struct StormOpts {
    pub count: usize,
    pub rate: f64,
    pub warmup: f64,
    pub after: f64,
    pub timeout: Duration,
}

/// Drops `count` visitors at once; they reconnect to the next node and resume from their last
/// sequence number while agents keep sending.
pub async fn storm(r: &Running, o: &StormOpts, procs: &[Proc]) -> Value {
    r.label("warmup");
    r.set_rate(o.rate);
    tokio::time::sleep(Duration::from_secs_f64(o.warmup)).await;
    r.label("storm");
    let count = o.count.min(r.chats as usize);
    let before = r.w.resumed.get();
    let cpu = CpuWindow::start(procs);
    let t = Instant::now();
    r.w.control(|c| {
        c.storm_epoch += 1;
        c.storm_count = count;
    });
    let w = r.w.clone();
    let all = wait_until("resumes", o.timeout, || {
        w.resumed.get() - before >= count as u64
            || w.stats.connect_failed.get() > 0
                && w.resumed.get() - before + w.stats.connect_failed.get() >= count as u64
    })
    .await;
    let took = t.elapsed().as_secs_f64();
    let cpu = cpu.finish();
    r.label("after-storm");
    tokio::time::sleep(Duration::from_secs_f64(o.after)).await;
    json!({
        "dropped": count,
        "resumed": r.w.resumed.get() - before,
        "all_resumed": all,
        "seconds_until_all_resumed": (took * 1000.0).round() / 1000.0,
        "resume_time": summary(&r.w.resume_lat.lock().unwrap()),
        "rate_during": o.rate,
        "cpu_percent_of_one_core": cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drained_waits_for_a_late_send_after_everything_looked_delivered() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut d = Drained::default();
        assert!(!d.check(10, 8, ms(0)), "two still in flight");
        assert!(
            !d.check(10, 10, ms(50)),
            "all delivered, but not settled yet"
        );
        // A sender that had not seen the rate drop sends once more.
        assert!(!d.check(11, 10, ms(100)));
        assert!(!d.check(11, 11, ms(150)));
        assert!(
            !d.check(11, 11, ms(350)),
            "settling starts again from the last change"
        );
        assert!(d.check(11, 11, ms(400)));
    }

    #[test]
    fn drained_counts_refused_messages_as_accounted_for() {
        let t = Instant::now();
        let mut d = Drained::default();
        // 5 sent: 4 delivered + 1 refused by the server.
        assert!(!d.check(5, 4 + 1, t));
        assert!(d.check(5, 5, t + DRAIN_SETTLE));
    }
}
