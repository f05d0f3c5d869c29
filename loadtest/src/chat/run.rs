//! Running the scenarios on a set-up world: start (connections, chats), the measured windows
//! at a rate, the storm of drops and resumes, the progress line, and waiting for what was sent
//! to be accounted for.

use super::{conn, pairs, ChatOpts, World};
use crate::net::{Net, Peer as ServerKind, Target};
use crate::stats::{p_ms, summary, CpuWindow, Proc};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
