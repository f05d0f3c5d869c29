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
//! connections: set-up, storm, teardown), `pairs` (Socket.IO and relay pairs).

mod conn;
mod pairs;
mod peer;

use crate::net::{Net, Peer as ServerKind, Target};
use crate::sender::Sender;
use crate::setup;
use crate::stats::{hist, p_ms, summary, ByCode, Counter, CpuWindow, Lat, Proc, Stats};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
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

/// Polls `f` every 50 ms until it holds (true) or `timeout` passes (false, said on stderr).
pub async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
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
/// with the Socket.IO peer or the relay, both sides of every pair.
pub async fn start(net: Net, targets: &[Target], o: &ChatOpts) -> Running {
    let w = World::new(net, targets, o);
    let label = Arc::new(Mutex::new("setup".to_string()));
    let progress = progress(w.clone(), label.clone());
    let (tasks, setup) = match w.peer {
        ServerKind::Switchboard => conn::start(&w, o).await,
        ServerKind::Socketio | ServerKind::Relay => pairs::start(&w, o).await,
    };
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
        self.w.sender.rate(hz);
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
    let per_message = cpu.us_per(d1 - d0);
    let machine = cpu.machine();
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
        "cpu_us_per_message": per_message,
        "context_switches_per_message": switches,
        "machine": machine,
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
