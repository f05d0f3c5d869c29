//! The `chat`, `ramp` and `storm` scenarios. Agents (on the agent nodes) go available, visitors
//! (on the visitor nodes) request chats, agents accept every offer; then both sides of every
//! chat send messages at a controlled total rate. Each text carries a per-chat, per-side counter
//! with its scheduled and its actual send time, so the receiving side measures end-to-end latency
//! (both ways) and finds lost, duplicated and out-of-order messages.
//!
//! With the Socket.IO peer (`--peer socketio`) or the bare relay (`--peer relay`) there are no
//! agents, queues or offers: visitor `i` (on the visitor targets) and agent `i` (on the agent
//! targets) join chat `i` (`pairs`), and from there the same pacing, texts, latency and loss
//! accounting, windows and ramp apply.
//!
//! The paced sends are written by the sender thread (`crate::sender`) straight to the sockets;
//! each connection's task reads its socket and handles what arrives (`peer`), the hot frames
//! (`entry`, `ack`, a Socket.IO `msg`) without allocating.
//!
//! Layout: `peer` (one connection's state, sends and frame handling), `conn` (Switchboard
//! connections: set-up, storm, teardown), `pairs` (Socket.IO and relay pairs), `run` (start,
//! measured windows, storm).

mod conn;
mod pairs;
mod peer;
mod run;

pub use run::{start, storm, wait_until, window, StormOpts};

use crate::net::{Net, Peer as ServerKind, Target};
use crate::sender::Sender;
use crate::setup;
use crate::stats::{hist, ByCode, Counter, Lat, Stats};
use hdrhistogram::Histogram;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::protocol::Decision;
use tokio::sync::{watch, Semaphore};

const VISITOR: usize = 0;
const AGENT: usize = 1;
const ROLE: [&str; 2] = ["visitor", "agent"];

/// What the controller tells every connection task (the rate goes to the sender thread).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Control {
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
pub struct ChatShared {
    /// Counters handed out per sending side (messages written to the socket).
    sent: [AtomicU64; 2],
    /// Sides of a pair that joined the chat (Socket.IO and relay pairs only).
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
    /// Pairs: WebSocket + joining the chat, per side.
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
    /// Writes the paced messages.
    pub sender: Sender,
    /// Pairs: each side's sender slot and its chat, to start sending once both sides joined.
    pairs: Mutex<Vec<(usize, Arc<ChatShared>)>>,
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

/// Where side `role` of connection `idx` sends first within an interval: spread evenly, the
/// agents' in the first half, so the two sides of a chat do not send at the same moment.
fn phase(idx: usize, role: usize) -> f64 {
    ((idx as f64 * 0.618_033_988_7) % 1.0) * if role == AGENT { 0.5 } else { 1.0 }
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
            sender: Sender::start(),
            pairs: Mutex::new(Vec::new()),
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

    /// Writes the text of message `counter` into `out` (reused: no allocation once it has
    /// grown), stamped with its scheduled time and the time it is written (now).
    fn put_text(&self, out: &mut String, counter: u64, due_us: u64, sent_us: u64) {
        out.clear();
        let _ = write!(out, "lt {counter} {due_us} {sent_us} ");
        out.push_str(&self.pad);
    }

    /// Counts message of side `role` in `chat` as sent.
    fn count_sent(&self, chat: &ChatShared, role: usize) {
        chat.sent[role].fetch_add(1, Ordering::Relaxed);
        self.stats.sent.inc();
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
