//! Counters, latency histograms (HdrHistogram, microseconds) and per-process CPU and memory
//! read from /proc, shared by every connection task of a scenario.

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub fn hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid bounds")
}

/// Percentiles of a histogram of microseconds, as milliseconds.
pub fn summary(h: &Histogram<u64>) -> Value {
    let ms = |v: u64| (v as f64 / 1000.0 * 1000.0).round() / 1000.0;
    if h.is_empty() {
        return json!({ "count": 0 });
    }
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p999_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
        "mean_ms": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
    })
}

pub fn p_ms(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

/// End-to-end latency from the *scheduled* send time, kept three ways: the whole measurement,
/// the current ramp step, and the last second (for the progress line); and, for the current
/// step, from the moment the frame was actually handed to the socket. The difference is the
/// sender's lag: tokio's timer wakes a sender up to a millisecond after its scheduled time, and
/// an overloaded load generator falls further behind.
pub struct Lat {
    pub total: Histogram<u64>,
    pub step: Histogram<u64>,
    pub second: Histogram<u64>,
    pub step_from_send: Histogram<u64>,
}

#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counts by a numeric code with the first message seen for it.
#[derive(Default)]
pub struct ByCode(Mutex<BTreeMap<u16, (u64, String)>>);

impl ByCode {
    pub fn add(&self, code: u16, msg: &str) {
        let mut m = self.0.lock().unwrap();
        let e = m
            .entry(code)
            .or_insert_with(|| (0, msg.chars().take(120).collect()));
        e.0 += 1;
    }
    pub fn total(&self) -> u64 {
        self.0.lock().unwrap().values().map(|v| v.0).sum()
    }
    pub fn json(&self) -> Value {
        let m = self.0.lock().unwrap();
        Value::Object(
            m.iter()
                .map(|(k, (n, msg))| (k.to_string(), json!({ "count": n, "example": msg })))
                .collect(),
        )
    }
}

#[derive(Default)]
pub struct Stats {
    pub connected: Counter,
    pub connect_failed: Counter,
    pub connect_errors: Mutex<BTreeMap<String, u64>>,
    /// Connections the server closed (or that dropped) while the test still wanted them.
    pub closed: ByCode,
    /// `error` frames from the server, by wire code.
    pub errors: ByCode,
    pub sent: Counter,
    pub acked: Counter,
    pub delivered: Counter,
    pub duplicated: Counter,
    pub out_of_order: Counter,
    pub undecodable: Counter,
}

impl Stats {
    pub fn connect_error(&self, e: &anyhow::Error) {
        self.connect_failed.inc();
        let key: String = format!("{e:#}").chars().take(100).collect();
        *self.connect_errors.lock().unwrap().entry(key).or_default() += 1;
    }
}

/// CPU and memory of one process, from /proc.
#[derive(Debug, Clone)]
pub struct Proc {
    pub name: String,
    pub pid: u32,
}

/// Clock ticks per second of /proc/PID/stat on Linux (USER_HZ, 100 on every mainstream arch).
const CLK_TCK: f64 = 100.0;

impl Proc {
    /// utime + stime in seconds.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        // The command name may hold spaces; fields after the closing parenthesis are fixed.
        let rest = &s[s.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let utime: f64 = f.get(11)?.parse().ok()?;
        let stime: f64 = f.get(12)?.parse().ok()?;
        Some((utime + stime) / CLK_TCK)
    }

    /// Context switches of all its threads so far (voluntary and not): about one per time a
    /// thread went to sleep and was woken, the cost that dominates a relay on loopback.
    /// Threads that ended are not counted.
    pub fn context_switches(&self) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid)).ok()?;
        let mut n = 0;
        for t in tasks.flatten() {
            let Ok(s) = std::fs::read_to_string(t.path().join("status")) else {
                continue;
            };
            n += s
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>();
        }
        Some(n)
    }

    /// Seconds each of its threads spent runnable but waiting for a CPU so far, by thread id
    /// (the second field of /proc/PID/task/TID/schedstat).
    pub fn runqueue_waits(&self) -> Vec<(u64, f64)> {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return Vec::new();
        };
        tasks
            .flatten()
            .filter_map(|t| {
                let tid = t.file_name().to_str()?.parse().ok()?;
                let s = std::fs::read_to_string(t.path().join("schedstat")).ok()?;
                let ns: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
                Some((tid, ns as f64 / 1e9))
            })
            .collect()
    }

    /// Resident set size in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

/// The machine's CPU time so far, from the `cpu` line of /proc/stat, in seconds over all CPUs:
/// (busy, steal). Busy is everything but idle, iowait and steal; steal is the time the
/// hypervisor gave to others while this virtual machine wanted it.
fn machine_seconds() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is within user).
    let busy = f.get(..7)?.iter().sum::<f64>() - f[3] - f[4];
    let steal = *f.get(7)?;
    Some((busy / CLK_TCK, steal / CLK_TCK))
}

fn steal_seconds() -> Option<f64> {
    machine_seconds().map(|m| m.1)
}

/// The one-minute load average.
pub fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU use (and context switches) of several processes over a window, and the machine's
/// stolen time over it.
pub struct CpuWindow {
    start: Instant,
    at_start: Vec<(Proc, Option<f64>)>,
    switches_at_start: Vec<Option<u64>>,
    steal_at_start: Option<f64>,
    machine_at_start: Option<(f64, f64)>,
    wait_at_start: HashMap<u64, f64>,
}

/// Run-queue wait of every thread of `procs`, in seconds, by thread id.
fn waited(procs: &[(Proc, Option<f64>)]) -> HashMap<u64, f64> {
    procs.iter().flat_map(|(p, _)| p.runqueue_waits()).collect()
}

impl CpuWindow {
    pub fn start(procs: &[Proc]) -> CpuWindow {
        CpuWindow {
            start: Instant::now(),
            at_start: procs.iter().map(|p| (p.clone(), p.cpu_seconds())).collect(),
            switches_at_start: procs.iter().map(Proc::context_switches).collect(),
            steal_at_start: steal_seconds(),
            machine_at_start: machine_seconds(),
            wait_at_start: HashMap::new(),
        }
        .with_wait()
    }

    fn with_wait(mut self) -> CpuWindow {
        self.wait_at_start = waited(&self.at_start);
        self
    }

    /// Percent of one core the hypervisor took away since `start` (200 = both cores of a
    /// 2-core machine): a busy host slows every process here, whatever they run, so a window
    /// with steal says more about the machine than about the system under test.
    pub fn steal_percent(&self) -> Option<f64> {
        let dt = self.start.elapsed().as_secs_f64().max(1e-3);
        let stolen = steal_seconds()? - self.steal_at_start?;
        Some((stolen / dt * 1000.0).round() / 10.0)
    }

    /// Context switches of each process since `start`, per unit of work (`units`: messages
    /// delivered in the window), with their sum under `"all"`. Unlike CPU percentages, these
    /// counts hardly move with the machine's load, so they compare two builds on a noisy box.
    pub fn switches_per(&self, units: u64) -> Value {
        let units = units.max(1) as f64;
        let mut out = serde_json::Map::new();
        let mut all = Some(0.0);
        for ((p, _), before) in self.at_start.iter().zip(&self.switches_at_start) {
            let per = match (before, p.context_switches()) {
                (Some(a), Some(b)) => Some(b.saturating_sub(*a) as f64 / units),
                _ => None,
            };
            all = all.zip(per).map(|(a, b)| a + b);
            out.insert(format!("{}({})", p.name, p.pid), json!(per.map(round2)));
        }
        out.insert("all".into(), json!(all.map(round2)));
        Value::Object(out)
    }

    /// CPU microseconds each process spent since `start` per unit of work (`units`: messages
    /// delivered), by name; `system` is the sum of all but the load generator (the nodes and
    /// Redis), `loadtest` the load generator's own, so every figure says what the client cost.
    pub fn us_per(&self, units: u64) -> Value {
        let units = units.max(1) as f64;
        let mut out = serde_json::Map::new();
        let mut system = Some(0.0);
        for (p, before) in &self.at_start {
            let us = match (before, p.cpu_seconds()) {
                (Some(a), Some(b)) => Some((b - a) * 1e6 / units),
                _ => None,
            };
            if p.name != SELF_NAME {
                system = system.zip(us).map(|(a, b)| a + b);
            }
            out.insert(p.name.clone(), json!(us.map(round2)));
        }
        out.insert("system".into(), json!(system.map(round2)));
        Value::Object(out)
    }

    /// What else the machine did meanwhile: its busy CPU in percent of one core (all
    /// processes, other users' included), the part of it that none of the measured processes
    /// account for, the stolen time, the load average at the end, and how long the measured
    /// processes were runnable but waited for a CPU (percent of the window, summed over their
    /// threads): the direct measure of how much other work, or each other, delayed them.
    pub fn machine(&self) -> Value {
        let dt = self.start.elapsed().as_secs_f64().max(1e-3);
        let busy = machine_seconds()
            .zip(self.machine_at_start)
            .map(|(b, a)| (b.0 - a.0) / dt * 100.0);
        let ours: Option<f64> = self
            .at_start
            .iter()
            .map(|(p, before)| Some(p.cpu_seconds()? - (*before)?))
            .sum::<Option<f64>>()
            .map(|s| s / dt * 100.0);
        // Per thread, so threads that started or ended meanwhile do not skew the sum (those
        // that ended are left out).
        let wait: f64 = waited(&self.at_start)
            .iter()
            .map(|(tid, w)| w - self.wait_at_start.get(tid).copied().unwrap_or(0.0))
            .sum::<f64>()
            / dt
            * 100.0;
        let wait = Some(wait);
        json!({
            "measured_processes_waiting_for_a_cpu_percent": wait.map(|v| (v * 10.0).round() / 10.0),
            "busy_percent_of_one_core": busy.map(|v| (v * 10.0).round() / 10.0),
            "others_percent_of_one_core": busy.zip(ours).map(|(b, o)| ((b - o).max(0.0) * 10.0).round() / 10.0),
            "steal_percent_of_one_core": self.steal_percent(),
            "loadavg_1m": loadavg(),
            "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        })
    }

    /// Percent of one core used by each process since `start` (200 = both cores of a 2-core box).
    pub fn finish(&self) -> Value {
        let dt = self.start.elapsed().as_secs_f64().max(1e-3);
        let mut out = serde_json::Map::new();
        for (p, before) in &self.at_start {
            let v = match (before, p.cpu_seconds()) {
                (Some(a), Some(b)) => json!(((b - a) / dt * 1000.0).round() / 10.0),
                _ => Value::Null,
            };
            out.insert(format!("{}({})", p.name, p.pid), v);
        }
        Value::Object(out)
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// The load generator's own name among the measured processes.
const SELF_NAME: &str = "loadtest";

pub fn self_proc() -> Proc {
    Proc {
        name: SELF_NAME.into(),
        pid: std::process::id(),
    }
}
