//! The watching agents of the `site` scenario: how they read the list (pages, changes, the
//! view they name) and what they measure from the page URLs the records carry.

use super::{Ctx, Site};
use crate::net::{Incoming, Target, Ws};
use crate::setup;
use crate::wire::In;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Instant;
use switchboard::protocol::{ClientFrame, Encoding, ServerFrame};

/// `visitors_snapshot` / `visitors_changed`, seen through the page URLs they carry.
#[derive(Deserialize)]
struct ListRef<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    changes: Vec<ChangeRef<'a>>,
    #[serde(default, borrow)]
    visitors: Vec<VisitorRef<'a>>,
    #[serde(default, borrow)]
    next: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ChangeRef<'a> {
    #[serde(default, borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    visitor_id: Cow<'a, str>,
    #[serde(default, borrow)]
    visitor: Option<VisitorRef<'a>>,
}

#[derive(Deserialize)]
struct VisitorRef<'a> {
    #[serde(default, borrow)]
    visitor_id: Cow<'a, str>,
    #[serde(default)]
    started_at: i64,
    #[serde(default, borrow)]
    url: Cow<'a, str>,
    #[serde(default, borrow)]
    pages: Vec<PageRef<'a>>,
}

#[derive(Deserialize)]
struct PageRef<'a> {
    #[serde(default, borrow)]
    url: Cow<'a, str>,
}

/// (visitor index, view number, scheduled micros) of a load-test page URL.
fn parse_url(u: &str) -> Option<(usize, u64, u64)> {
    let rest = u.strip_prefix("https://shop.example/p/")?;
    let (idx, rest) = rest.split_once('/')?;
    let (n, t) = rest.split_once("?t=")?;
    Some((idx.parse().ok()?, n.parse().ok()?, t.parse().ok()?))
}

/// One watching agent's view of the list: the last view number seen per visitor.
struct Watcher {
    last: Vec<u64>,
    in_view: bool,
    /// `in_view`: the list's members (visitor id -> started_at), from the compact rows.
    members: HashMap<String, i64>,
    /// `in_view`: the visitors (by index) whose whole records came, i.e. those in its view.
    viewed: HashSet<usize>,
    /// Told `visitors_stale`: no changes come until it reads the list again.
    stale: bool,
    /// Its first read of the list is complete.
    ready: bool,
    /// Name the view once the list read now is complete: `(first row, rows)`.
    view_after_read: Option<(usize, usize)>,
}

impl Watcher {
    fn saw(&mut self, site: &Site, url: &str, now_us: u64) {
        let Some((idx, n, t)) = parse_url(url) else {
            return;
        };
        let Some(last) = self.last.get_mut(idx) else {
            return;
        };
        if n <= *last {
            return;
        }
        if *last > 0 && n > *last + 1 {
            site.skipped.add(n - *last - 1);
        }
        *last = n;
        if site.in_window(t) {
            site.shown_in_window.inc();
            let _ = site
                .shown_lat
                .lock()
                .unwrap()
                .record(now_us.saturating_sub(t).max(1));
        }
    }

    /// Reads a frame; returns what to send next: the next page of the list when there is one
    /// to read (`in_view`: every page, as the console reads them), or the view after it.
    fn on_frame(&mut self, site: &Site, payload: &[u8]) -> Option<ClientFrame> {
        let list: Option<ListRef> = match site.enc {
            Encoding::Json => serde_json::from_slice(payload).ok(),
            Encoding::MsgPack => rmp_serde::from_slice(payload).ok(),
        };
        let Some(list) = list else {
            site.stats.undecodable.inc();
            return None;
        };
        let now = site.micros(Instant::now());
        if self.in_view {
            for c in &list.changes {
                if c.kind == "leave" {
                    self.members.remove(c.visitor_id.as_ref());
                }
            }
            let rows = list
                .changes
                .iter()
                .filter_map(|c| c.visitor.as_ref())
                .chain(list.visitors.iter());
            for v in rows {
                if !v.visitor_id.is_empty() {
                    self.members.insert(v.visitor_id.to_string(), v.started_at);
                }
                if let Some((idx, ..)) = parse_url(&v.url) {
                    if idx < self.last.len() && self.viewed.insert(idx) {
                        site.viewers_of[idx].fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let records = list
            .changes
            .iter()
            .filter_map(|c| c.visitor.as_ref())
            .chain(list.visitors.iter());
        for v in records {
            for p in &v.pages {
                self.saw(site, &p.url, now);
            }
            self.saw(site, &v.url, now);
        }
        if list.kind == "visitors_stale" {
            self.stale = true;
            site.stale.inc();
        }
        if list.kind == "visitors_snapshot" {
            if self.in_view && !list.next.is_empty() {
                return Some(ClientFrame::ListVisitors {
                    after: list.next.to_string(),
                    limit: None,
                });
            }
            if !self.ready {
                self.ready = true;
                site.watchers_ready.inc();
            }
            if let Some((at, k)) = self.view_after_read.take() {
                return Some(self.view(at, k));
            }
        }
        None
    }

    /// Names its view: rows `[at, at + k)` of the list it holds.
    fn view(&self, at: usize, k: usize) -> ClientFrame {
        ClientFrame::ViewVisitors {
            ids: self.window(at, k),
        }
    }

    /// The ids of rows `[at, at + k)` of the list sorted as the console sorts it.
    fn window(&self, at: usize, k: usize) -> Vec<String> {
        let mut rows: Vec<(&i64, &String)> = self.members.iter().map(|(id, s)| (s, id)).collect();
        rows.sort();
        let at = at.min(rows.len().saturating_sub(k));
        rows.iter()
            .skip(at)
            .take(k)
            .map(|(_, id)| id.to_string())
            .collect()
    }
}

/// How a watcher watches: `in_view` with a window of `k` rows starting at row `at` (of
/// `of` rows the list is expected to hold), or `full`.
#[derive(Clone, Copy)]
pub(super) struct Watching {
    pub(super) in_view: bool,
    pub(super) k: usize,
    /// This watcher's index and the number of watchers: its window's place in the list.
    pub(super) nth: usize,
    pub(super) of: usize,
}

/// A watching agent: logs in, watches the list, reads it until told to stop.
pub(super) async fn watcher(
    cx: Ctx,
    target: Target,
    name: String,
    password: String,
    visitors: usize,
    how: Watching,
) {
    let Ctx {
        site,
        net,
        http,
        mut stop,
        login_gate,
        mut view_now,
        ..
    } = cx;
    let opened = async {
        let token = {
            let _g = login_gate.acquire().await;
            setup::login(&http, &target, &name, &password).await?
        };
        let mut ws = net.ws(&target, &format!("/ws/agent?token={token}")).await?;
        match ws.recv().await {
            Incoming::Frame(ServerFrame::Welcome { .. }) => {}
            _ => anyhow::bail!("no welcome"),
        }
        ws.send(&ClientFrame::WatchVisitors {
            limit: None,
            rows: how.in_view.then(|| "in_view".to_string()),
        })?;
        Ok::<Ws, anyhow::Error>(ws)
    };
    let mut ws = match opened.await {
        Ok(ws) => ws,
        Err(e) => return site.stats.connect_error(&e),
    };
    site.stats.connected.inc();
    let mut me = Watcher {
        last: vec![0; visitors],
        in_view: how.in_view,
        members: HashMap::new(),
        viewed: HashSet::new(),
        stale: false,
        ready: false,
        view_after_read: None,
    };
    let mut counted = ws.rd.bytes_in;
    let mut viewing = !how.in_view;
    loop {
        let next = tokio::select! {
            _ = stop.changed() => break,
            _ = view_now.changed(), if !viewing => {
                viewing = true;
                // The window's place among the visitors expected (the list may still miss
                // a few arrivals).
                let at = how.nth * visitors / how.of.max(1);
                Some(if me.stale {
                    // As the console does after `visitors_stale`: read the list again (the
                    // arrivals of every visitor connecting at once are over the budget).
                    me.stale = false;
                    me.members.clear();
                    me.view_after_read = Some((at, how.k));
                    site.rewatched.inc();
                    ClientFrame::WatchVisitors {
                        limit: None,
                        rows: Some("in_view".into()),
                    }
                } else {
                    me.view(at, how.k)
                })
            }
            msg = ws.rd.recv() => match msg {
                In::Text(p) | In::Binary(p) => {
                    let was = me.viewed.len();
                    let next = me.on_frame(&site, p);
                    if was == 0 && !me.viewed.is_empty() {
                        site.views_set.inc();
                    }
                    next
                }
                In::Closed(code) => {
                    site.stats.closed.add(code, "watching agent");
                    return;
                }
            },
        };
        if let Some(f) = next {
            if ws.send(&f).is_err() {
                break;
            }
        }
        site.bytes_to_watchers
            .fetch_add(ws.rd.bytes_in - counted, Ordering::Relaxed);
        counted = ws.rd.bytes_in;
    }
    ws.close().await;
}
