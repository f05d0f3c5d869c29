//! The `site` scenario: the load of a website rather than of chats. V visitor connections
//! spread over the targets, each reporting a page view every P seconds (paced by the sender
//! thread, like chat messages); W agents on the agent targets watching the site-visitors list
//! (`watch_visitors`); C chats running at a low total rate (the chat scenario's machinery).
//!
//! Watchers watch as the console does (`--rows in_view`): they read every page of compact
//! rows, keep the list's membership from the arrivals and leaves, and once every visitor is
//! on the site each names a window of K rows (`view_visitors`, `--view`) of the list sorted
//! as the console sorts it, the windows spread evenly over the list. `--rows full` watches
//! with whole records for every visitor (the first page only) to compare.
//!
//! Each page view's URL carries the visitor's index, the view's number and its scheduled time
//! (`https://shop.example/p/IDX/N?t=MICROS`), so every watching agent measures page view ->
//! shown for the visitors it gets whole records of (all, or those in its view), and finds the
//! views of those it never saw. Reported over a measured window: that latency (p50/p99), the
//! bytes per second each watching agent receives (everything), the CPU of each node, Redis
//! and the load generator, each node's memory, and anything dropped or closed.

mod watchers;

use crate::chat::{self, ChatOpts};
use crate::net::{Incoming, Net, Target, Ws};
use crate::sender::{Paced, Sender};
use crate::setup;
use crate::stats::{hist, summary, Counter, CpuWindow, Proc, Stats};
use crate::wire::{In, Writer, OP_BINARY, OP_TEXT};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::protocol::{Encoding, ServerFrame};
use tokio::sync::{watch, Semaphore};
use watchers::{watcher, Watching};

pub struct SiteOpts {
    pub visitors: usize,
    /// Watch with `rows: "in_view"` (and a view of `view` rows each), else `full`.
    pub in_view: bool,
    pub view: usize,
    pub page_every: f64,
    pub watchers: usize,
    /// Index of the first watching agent (`{prefix}{first}`); chat agents start at 0.
    pub watcher_offset: usize,
    pub chats: usize,
    pub chat_agents: usize,
    pub chat_rate: f64,
    pub warmup: f64,
    pub duration: f64,
    pub connect_parallel: usize,
    /// Visitors that start browsing per second (0: as fast as they connect).
    pub arrivals_per_s: f64,
    pub agent_prefix: String,
    pub agent_password: String,
    pub setup_timeout: Duration,
}

/// What the site's visitors and watchers share.
struct Site {
    t0: Instant,
    enc: Encoding,
    stats: Stats,
    /// Page views written, and those scheduled inside the measured window.
    views_sent: Counter,
    views_in_window: Counter,
    /// The measured window, in microseconds since `t0` (end `u64::MAX` while it runs).
    window: Mutex<(u64, u64)>,
    watchers_ready: Counter,
    /// Page view -> shown to a watching agent, for views scheduled in the window.
    shown_lat: Mutex<Histogram<u64>>,
    /// (watcher, view) pairs seen for views scheduled in the window.
    shown_in_window: Counter,
    /// Views a watcher never saw while it saw a later view of the same visitor.
    skipped: Counter,
    bytes_to_watchers: AtomicU64,
    /// Per visitor: its views scheduled in the window, and the watchers that have it in view
    /// (`in_view`), so the views each watcher should see are known.
    views_of: Vec<AtomicU64>,
    viewers_of: Vec<AtomicU32>,
    /// Watchers whose view reply came.
    views_set: Counter,
    /// `visitors_stale` frames received by watchers, and those before the window (read the
    /// list again before naming their view).
    stale: Counter,
    rewatched: Counter,
}

impl Site {
    fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.t0).as_micros() as u64
    }

    fn in_window(&self, us: u64) -> bool {
        let (a, b) = *self.window.lock().unwrap();
        us >= a && us <= b
    }
}

#[derive(Serialize)]
struct PageViewRef<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
    title: &'a str,
}

/// One visitor's page views, fired by the sender thread.
struct Viewer {
    site: Arc<Site>,
    idx: usize,
    st: Mutex<ViewerState>,
}

struct ViewerState {
    wr: Option<Arc<Writer>>,
    n: u64,
    url: String,
    title: String,
}

impl Paced for Viewer {
    fn fire(&self, due: Instant) {
        let mut st = self.st.lock().unwrap();
        let ViewerState { wr, n, url, title } = &mut *st;
        let Some(w) = wr else { return };
        *n += 1;
        let due_us = self.site.micros(due);
        url.clear();
        let _ = write!(url, "https://shop.example/p/{}/{n}?t={due_us}", self.idx);
        title.clear();
        let _ = write!(title, "Page {n}");
        let enc = self.site.enc;
        let f = PageViewRef {
            kind: "page_view",
            url,
            title,
        };
        let r = match enc {
            Encoding::Json => w.frame(OP_TEXT, |b| {
                serde_json::to_writer(b, &f).expect("serialises")
            }),
            Encoding::MsgPack => w.frame(OP_BINARY, |b| {
                rmp_serde::encode::write_named(b, &f).expect("serialises")
            }),
        };
        if r.is_err() {
            *wr = None;
            return;
        }
        self.site.views_sent.inc();
        if self.site.in_window(due_us) {
            self.site.views_in_window.inc();
            self.site.views_of[self.idx].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What every visitor's and watcher's task gets.
#[derive(Clone)]
struct Ctx {
    site: Arc<Site>,
    net: Arc<Net>,
    http: reqwest::Client,
    stop: watch::Receiver<bool>,
    /// Agent logins at once (each an argon2 verification on the node).
    login_gate: Arc<Semaphore>,
    /// Visitor connections being set up at once.
    connect_gate: Arc<Semaphore>,
    /// Set once every visitor is on the site: `in_view` watchers name their view then.
    view_now: watch::Receiver<bool>,
}

/// A browsing visitor: a session, the socket, the first page view; then the sender thread
/// sends one every `page_every` seconds until told to stop.
async fn visitor(cx: Ctx, target: Target, idx: usize, sender: Sender) {
    let Ctx {
        site,
        net,
        http,
        mut stop,
        connect_gate,
        ..
    } = cx;
    let opened = async {
        let _permit = connect_gate.acquire().await;
        let token = setup::visitor_token(&http, &target).await?;
        let mut ws = net
            .ws(&target, &format!("/ws/visitor?token={token}"))
            .await?;
        match tokio::time::timeout(Duration::from_secs(15), ws.recv()).await {
            Ok(Incoming::Frame(ServerFrame::Welcome { .. })) => Ok::<Ws, anyhow::Error>(ws),
            _ => anyhow::bail!("no welcome"),
        }
    };
    let Ws { mut rd, wr, .. } = match opened.await {
        Ok(ws) => ws,
        Err(e) => return site.stats.connect_error(&e),
    };
    site.stats.connected.inc();
    let v = Arc::new(Viewer {
        site: site.clone(),
        idx,
        st: Mutex::new(ViewerState {
            wr: Some(wr.clone()),
            n: 0,
            url: String::with_capacity(64),
            title: String::with_capacity(16),
        }),
    });
    // The page the visitor is on when the widget connects.
    v.fire(Instant::now());
    let slot = sender.add(v.clone(), (idx as f64 * 0.618_033_988_7) % 1.0);
    sender.weight(slot, 1.0);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            msg = rd.recv() => {
                if let In::Closed(code) = msg {
                    site.stats.closed.add(code, "visitor");
                    sender.remove(slot);
                    return;
                }
            }
        }
    }
    sender.remove(slot);
    v.st.lock().unwrap().wr = None;
    drop(wr);
    rd.close().await;
}

/// Resident memory of each node, in KiB.
fn rss(nodes: &[Option<Proc>]) -> Vec<Option<u64>> {
    nodes
        .iter()
        .map(|p| p.as_ref().and_then(Proc::rss_kib))
        .collect()
}

pub async fn run(
    net: Net,
    targets: &[Target],
    nodes: &[Option<Proc>],
    procs: &[Proc],
    o: &SiteOpts,
) -> anyhow::Result<Value> {
    let enc = net.encoding;
    let net = Arc::new(net);
    let http = setup::http_client();
    let site = Arc::new(Site {
        t0: Instant::now(),
        enc,
        stats: Stats::default(),
        views_sent: Counter::default(),
        views_in_window: Counter::default(),
        window: Mutex::new((u64::MAX, u64::MAX)),
        watchers_ready: Counter::default(),
        shown_lat: Mutex::new(hist()),
        shown_in_window: Counter::default(),
        skipped: Counter::default(),
        bytes_to_watchers: AtomicU64::new(0),
        views_of: (0..o.visitors).map(|_| AtomicU64::new(0)).collect(),
        viewers_of: (0..o.visitors).map(|_| AtomicU32::new(0)).collect(),
        views_set: Counter::default(),
        stale: Counter::default(),
        rewatched: Counter::default(),
    });
    let (view_tx, view_rx) = watch::channel(false);
    let rss_start = rss(nodes);
    let (stop_tx, stop_rx) = watch::channel(false);
    let half = targets.len() / 2;
    let agent_targets = if targets.len() > 1 {
        &targets[half..]
    } else {
        targets
    };

    // Chats first, then the watchers, then the visitors.
    let chat_run = if o.chats > 0 {
        let copts = ChatOpts {
            agents: o.chat_agents.max(1),
            visitors: o.chats,
            agent_prefix: o.agent_prefix.clone(),
            agent_password: o.agent_password.clone(),
            text_bytes: 250,
            setup_timeout: o.setup_timeout,
            login_parallel: 4,
            connect_parallel: o.connect_parallel,
            request_rate: 0.0,
            placement_split: true,
        };
        let own = Net::new(enc, net.peer, 8);
        Some(chat::start(own, targets, &copts).await)
    } else {
        None
    };
    // Page views get a sender thread of their own: a sender has one base rate, and the
    // chats' is another.
    let sender = Sender::start();
    if let Some(r) = &chat_run {
        r.set_rate(o.chat_rate);
    }

    let t = Instant::now();
    let cx = Ctx {
        site: site.clone(),
        net: net.clone(),
        http: http.clone(),
        stop: stop_rx,
        login_gate: Arc::new(Semaphore::new(4)),
        connect_gate: Arc::new(Semaphore::new(o.connect_parallel.max(1))),
        view_now: view_rx,
    };
    let mut tasks = Vec::new();
    for i in 0..o.watchers {
        tasks.push(tokio::spawn(watcher(
            cx.clone(),
            agent_targets[i % agent_targets.len()].clone(),
            format!("{}{}", o.agent_prefix, o.watcher_offset + i),
            o.agent_password.clone(),
            o.visitors,
            Watching {
                in_view: o.in_view,
                k: o.view,
                nth: i,
                of: o.watchers,
            },
        )));
    }
    let s2 = site.clone();
    let watchers = o.watchers as u64;
    chat::wait_until("watching agents", o.setup_timeout, || {
        s2.watchers_ready.get() + s2.stats.connect_failed.get() >= watchers
    })
    .await;
    let watchers_s = t.elapsed().as_secs_f64();
    let rss_watching = rss(nodes);

    let t = Instant::now();
    sender.rate(1.0 / o.page_every);
    for i in 0..o.visitors {
        if o.arrivals_per_s > 0.0 {
            let due = t + Duration::from_secs_f64(i as f64 / o.arrivals_per_s);
            tokio::time::sleep_until(due.into()).await;
        }
        tasks.push(tokio::spawn(visitor(
            cx.clone(),
            targets[i % targets.len()].clone(),
            i,
            sender.clone(),
        )));
    }
    let all = watchers + o.visitors as u64;
    let mut last_print = Instant::now();
    chat::wait_until("visitors", o.setup_timeout, || {
        let done = s2.stats.connected.get() + s2.stats.connect_failed.get();
        if last_print.elapsed() > Duration::from_secs(2) {
            last_print = Instant::now();
            eprintln!("site: {done} of {all} connected or failed");
        }
        done >= all
    })
    .await;
    let visitors_s = t.elapsed().as_secs_f64();
    eprintln!(
        "site: {} visitors connected in {visitors_s:.1} s; warming up {} s",
        s2.stats.connected.get() - s2.watchers_ready.get().min(watchers),
        o.warmup
    );
    // Every visitor is on the site: the watchers name their views (arrivals still on their
    // way are at most a publish and a delivery period late).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    let _ = view_tx.send(true);
    if o.in_view {
        // Watchers made stale by the arrivals read the list again first: wait for every
        // view, so the window measures the site, not the reads.
        chat::wait_until("views named", o.setup_timeout, || {
            s2.views_set.get() >= s2.watchers_ready.get().min(watchers)
        })
        .await;
    }
    let views_s = t.elapsed().as_secs_f64();
    eprintln!("site: views named in {views_s:.1} s");
    tokio::time::sleep(Duration::from_secs_f64(o.warmup)).await;

    // The measured window.
    let rss_before = rss(nodes);
    let closed0 = site.stats.closed.total();
    *site.window.lock().unwrap() = (site.micros(Instant::now()), u64::MAX);
    site.shown_lat.lock().unwrap().reset();
    let b0 = site.bytes_to_watchers.load(Ordering::Relaxed);
    let cpu = CpuWindow::start(procs);
    let chat_win = async {
        match &chat_run {
            Some(r) => Some(chat::window(r, o.chat_rate, o.duration, procs).await),
            None => {
                tokio::time::sleep(Duration::from_secs_f64(o.duration)).await;
                None
            }
        }
    };
    let chat_win = chat_win.await;
    let dt = o.duration;
    {
        let mut w = site.window.lock().unwrap();
        w.1 = site.micros(Instant::now());
    }
    let bytes = site.bytes_to_watchers.load(Ordering::Relaxed) - b0;
    let cpu_pct = cpu.finish();
    let machine = cpu.machine();
    let views = site.views_in_window.get();
    let rss_end = rss(nodes);
    // Views of the window's last moments: up to two flush periods and the way to the agents.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let shown = site.shown_in_window.get();
    let expected = if o.in_view {
        (0..o.visitors)
            .map(|i| {
                site.views_of[i].load(Ordering::Relaxed)
                    * site.viewers_of[i].load(Ordering::Relaxed) as u64
            })
            .sum()
    } else {
        views * site.watchers_ready.get().min(watchers)
    };
    let in_some_view = site
        .viewers_of
        .iter()
        .filter(|n| n.load(Ordering::Relaxed) > 0)
        .count();
    let lat = summary(&site.shown_lat.lock().unwrap());
    let node_cpu: f64 = nodes
        .iter()
        .flatten()
        .filter_map(|p| cpu_pct[format!("{}({})", p.name, p.pid)].as_f64())
        .sum();
    let redis_cpu = procs
        .iter()
        .find(|p| p.name == "redis")
        .and_then(|p| cpu_pct[format!("{}({})", p.name, p.pid)].as_f64())
        .unwrap_or(0.0);
    let watching = site.watchers_ready.get().min(watchers).max(1);
    let nodes_json: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "target": targets[i].base,
                "pid": p.as_ref().map(|p| p.pid),
                "rss_start_kib": rss_start[i],
                "rss_watching_kib": rss_watching[i],
                "rss_window_start_kib": rss_before[i],
                "rss_window_end_kib": rss_end[i],
            })
        })
        .collect();
    let integrity = match &chat_run {
        Some(r) => Some(r.quiesce(Duration::from_secs(10)).await),
        None => None,
    };
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let teardown = match chat_run {
        Some(r) => Some(r.finish().await),
        None => None,
    };
    Ok(json!({
        "visitors": o.visitors,
        "visitors_connected": site.stats.connected.get().saturating_sub(watching),
        "visitors_seconds": (visitors_s * 10.0).round() / 10.0,
        "watchers": o.watchers,
        "watchers_ready": site.watchers_ready.get(),
        "watchers_seconds": (watchers_s * 10.0).round() / 10.0,
        "connect_failed": site.stats.connect_failed.get(),
        "connect_errors": json!(*site.stats.connect_errors.lock().unwrap()),
        "page_every_s": o.page_every,
        "arrivals_per_s": o.arrivals_per_s,
        "rows": if o.in_view { "in_view" } else { "full" },
        "view_rows": if o.in_view { o.view } else { 0 },
        "views_set": site.views_set.get(),
        "stale_frames": site.stale.get(),
        "rewatched_before_window": site.rewatched.get(),
        "views_seconds": (views_s * 10.0).round() / 10.0,
        "visitors_in_some_view": if o.in_view { in_some_view } else { o.visitors },
        "window": {
            "seconds": dt,
            "page_views": views,
            "page_views_per_s": ((views as f64 / dt) * 10.0).round() / 10.0,
            "page_view_to_shown": lat,
            "shown": shown,
            "expected": expected,
            "not_shown": expected.saturating_sub(shown),
            "skipped_views": site.skipped.get(),
            "bytes_per_s_per_watcher": (bytes as f64 / dt / watching as f64).round(),
            "cpu_percent_of_one_core": cpu_pct,
            "nodes_and_redis_percent_of_one_core": ((node_cpu + redis_cpu) * 10.0).round() / 10.0,
            "closed_during": site.stats.closed.total() - closed0,
            "machine": machine,
        },
        "nodes": nodes_json,
        "closed": site.stats.closed.json(),
        "undecodable": site.stats.undecodable.get(),
        "chats": chat_win.map(|w| json!({ "window": w, "integrity": integrity, "teardown": teardown })),
    }))
}
