//! The live changes of the site-visitors list as agents receive them (the pages, the view set
//! and a visitor's history: `visitor_pages`).
//!
//! Changes reach a node as batches from every node (`visitors::flush_visitor_changes`). The
//! node keeps only the latest change per visitor until its next delivery (every
//! `DELIVER_EVERY`) and hands them to each local watcher that has the bytes for them in its
//! budget (`abuse.visitor_list_bytes_per_second`, bursts of twice that). A watcher over budget
//! gets one `visitors_stale` instead and nothing more until it reads the list again: it is
//! never queued for, so a flood of page views costs a watching agent at most its budget.
//!
//! A `full` watcher gets every change with the whole record: one frame, encoded once for all
//! of them. An `in_view` watcher gets the list's membership (every `arrive` and `update` as a
//! compact row, every `leave`), also encoded once for all of them, and in a frame of its own the whole
//! records of the changed visitors in its view set, which it names with `view_visitors`.
//! Sending every watcher every record costs each one bytes in proportion to the site's page
//! views; the view set bounds that by what its console shows.

use super::hub::{ConnId, Encoded, Follower, Out};
use super::{ChatError, ChatResult, Service};
use crate::config::Settings;
use crate::protocol::{
    CompactVisitor, Encoding, ErrorCode, ServerFrame, VisitorChange, VisitorRow,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a node hands the changes it collected to its watchers.
pub const DELIVER_EVERY: Duration = Duration::from_millis(500);
/// Visitors with a pending change a node holds between two deliveries; beyond it the changes
/// are dropped and every watcher is told to read the list again.
const MAX_PENDING: usize = 50_000;

/// What the rows of a watcher's list carry (`watch_visitors` field `rows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    /// Every row and change the whole record.
    Full,
    /// Compact rows; whole records only for the visitors in the watcher's view set.
    InView,
}

impl Rows {
    pub fn parse(rows: Option<&str>) -> ChatResult<Rows> {
        match rows.unwrap_or("full") {
            "full" => Ok(Rows::Full),
            "in_view" => Ok(Rows::InView),
            _ => Err(ChatError::new(
                ErrorCode::InvalidField,
                "rows must be \"full\" or \"in_view\"",
            )),
        }
    }
}

/// One watching connection of this node.
struct Watcher {
    follower: Follower,
    /// Bytes it may still be sent now; refilled at the budget's rate up to twice of it.
    tokens: f64,
    refilled: Instant,
    /// Told `visitors_stale`: gets no changes until it reads the list again.
    stale: bool,
    rows: Rows,
    /// `in_view`: the visitors whose whole records it gets (at most `abuse.visitors_in_view`).
    view: HashSet<String>,
}

/// The frames of one delivery and their sizes in JSON (what the budget counts).
struct Sized {
    frame: Arc<Encoded>,
    size: f64,
}

impl Sized {
    fn new(frame: ServerFrame) -> Sized {
        let frame = Arc::new(Encoded::new(frame));
        let size = frame.bytes(Encoding::Json).len() as f64;
        Sized { frame, size }
    }
}

pub struct VisitorList {
    watchers: Mutex<HashMap<ConnId, Watcher>>,
    /// Latest change per visitor since the last delivery.
    pending: Mutex<HashMap<String, VisitorChange>>,
    /// The pending changes overflowed: every watcher is stale.
    overflowed: AtomicBool,
    bytes_per_second: f64,
}

impl VisitorList {
    pub fn new(s: &Settings) -> VisitorList {
        VisitorList {
            watchers: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            overflowed: AtomicBool::new(false),
            bytes_per_second: s.abuse.visitor_list_bytes_per_second as f64,
        }
    }

    fn burst(&self) -> f64 {
        self.bytes_per_second * 2.0
    }

    /// Registers a watcher, or makes a stale one live again (its budget is kept: reading the
    /// list again does not buy more bytes of changes). Its view set starts empty.
    pub(super) fn watch(&self, conn: ConnId, follower: Follower, rows: Rows) {
        let mut w = self.watchers.lock().unwrap();
        let burst = self.burst();
        w.entry(conn)
            .and_modify(|w| {
                w.stale = false;
                w.rows = rows;
                w.view.clear();
            })
            .or_insert_with(|| Watcher {
                follower,
                tokens: burst,
                refilled: Instant::now(),
                stale: false,
                rows,
                view: HashSet::new(),
            });
    }

    pub(super) fn unwatch(&self, conn: ConnId) {
        self.watchers.lock().unwrap().remove(&conn);
    }

    /// The rows this connection's pages carry (`full` when it does not watch).
    pub(super) fn rows_of(&self, conn: ConnId) -> Rows {
        self.watchers
            .lock()
            .unwrap()
            .get(&conn)
            .map_or(Rows::Full, |w| w.rows)
    }

    /// Replaces the view set of an `in_view` watcher.
    pub(super) fn set_view(&self, conn: ConnId, ids: HashSet<String>) -> ChatResult<()> {
        match self.watchers.lock().unwrap().get_mut(&conn) {
            Some(w) if w.rows == Rows::InView => {
                w.view = ids;
                Ok(())
            }
            _ => Err(ChatError::new(
                ErrorCode::WrongState,
                "view_visitors needs watch_visitors with rows \"in_view\" first",
            )),
        }
    }

    /// A batch of changes from some node: each replaces the visitor's pending change unless
    /// that one is newer (batches of different nodes may cross).
    pub fn receive(&self, changes: Vec<VisitorChange>) {
        if self.watchers.lock().unwrap().is_empty() {
            return;
        }
        let mut pending = self.pending.lock().unwrap();
        for c in changes {
            if pending.len() >= MAX_PENDING && !pending.contains_key(&c.visitor_id) {
                self.overflowed.store(true, Ordering::Relaxed);
                continue;
            }
            let old = pending.get(&c.visitor_id);
            let newer = match (old.and_then(|o| o.visitor.as_ref()), &c.visitor) {
                (Some(old), Some(new)) => new.last_seen() >= old.last_seen(),
                _ => true,
            };
            if newer {
                // A visit that arrived within this period is still an arrival to watchers.
                let arrived = old.is_some_and(|o| o.kind == "arrive") && c.kind != "leave";
                let mut c = c;
                if arrived {
                    c.kind = "arrive".into();
                }
                pending.insert(c.visitor_id.clone(), c);
            }
        }
    }

    /// Hands the pending changes to every watcher with the budget for them.
    fn deliver(&self, svc: &Service) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap());
        let overflowed = self.overflowed.swap(false, Ordering::Relaxed);
        if pending.is_empty() && !overflowed {
            return;
        }
        let stale = Arc::new(Encoded::new(ServerFrame::VisitorsStale));
        let now = Instant::now();
        let (rate, burst) = (self.bytes_per_second, self.burst());
        let mut watchers = self.watchers.lock().unwrap();
        let live = |rows| watchers.values().any(|w| w.rows == rows && !w.stale);
        let full = (live(Rows::Full) && !pending.is_empty()).then(|| {
            Sized::new(ServerFrame::VisitorsChanged {
                changes: pending.values().cloned().collect(),
            })
        });
        let membership = live(Rows::InView)
            .then(|| membership(&pending))
            .flatten()
            .map(Sized::new);
        for w in watchers.values_mut() {
            let elapsed = now.duration_since(w.refilled).as_secs_f64();
            w.tokens = (w.tokens + elapsed * rate).min(burst);
            w.refilled = now;
            if w.stale {
                svc.metrics.visitor_list_dropped.inc();
                continue;
            }
            let frames: Vec<&Sized>;
            let in_view;
            match w.rows {
                Rows::Full => frames = full.iter().collect(),
                Rows::InView => {
                    in_view = in_view_changes(&pending, &w.view).map(Sized::new);
                    frames = membership.iter().chain(in_view.iter()).collect();
                }
            }
            let size: f64 = frames.iter().map(|f| f.size).sum();
            if overflowed || size > w.tokens {
                w.stale = true;
                svc.metrics.visitor_list_dropped.inc();
                w.follower.push(Out::Frame(stale.clone()));
                continue;
            }
            w.tokens -= size;
            svc.metrics.visitor_list_bytes.inc_by(size as u64);
            for f in frames {
                if !w.follower.push(Out::Frame(f.frame.clone())) {
                    svc.metrics.slow_consumers.inc();
                }
            }
        }
    }
}

/// What every `in_view` watcher gets of a delivery: arrivals and updates as compact rows
/// (an update may flip `new`, which the list filters by; updates are rare next to page
/// views), and leaves.
fn membership(pending: &HashMap<String, VisitorChange>) -> Option<ServerFrame> {
    let changes: Vec<VisitorChange> = pending
        .values()
        .filter_map(|c| match (c.kind.as_str(), &c.visitor) {
            ("leave", _) => Some(c.clone()),
            ("arrive" | "update", Some(v)) => Some(VisitorChange {
                kind: c.kind.clone(),
                visitor_id: c.visitor_id.clone(),
                visitor: Some(VisitorRow::Compact(match v {
                    VisitorRow::Full(v) => CompactVisitor::from(v),
                    VisitorRow::Compact(v) => v.clone(),
                })),
            }),
            _ => None,
        })
        .collect();
    (!changes.is_empty()).then_some(ServerFrame::VisitorsChanged { changes })
}

/// The whole records of one `in_view` watcher's visitors that changed (leaves are in the
/// membership frame). Walks the view set: at most `abuse.visitors_in_view` lookups.
fn in_view_changes(
    pending: &HashMap<String, VisitorChange>,
    view: &HashSet<String>,
) -> Option<ServerFrame> {
    let changes: Vec<VisitorChange> = view
        .iter()
        .filter_map(|id| pending.get(id))
        .filter(|c| c.kind != "leave" && c.visitor.is_some())
        .cloned()
        .collect();
    (!changes.is_empty()).then_some(ServerFrame::VisitorsChanged { changes })
}

/// Background work of the list, run by every node: delivers collected changes to watchers.
pub async fn run(svc: Arc<Service>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(DELIVER_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => svc.visitor_list.deliver(&svc),
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SiteVisitor;

    fn change(kind: &str, id: &str, seen: i64) -> VisitorChange {
        VisitorChange {
            kind: kind.into(),
            visitor_id: id.into(),
            visitor: (kind != "leave").then(|| {
                VisitorRow::Full(SiteVisitor {
                    visitor_id: id.into(),
                    url: format!("https://example.com/{id}/{seen}"),
                    last_seen: seen,
                    ..Default::default()
                })
            }),
        }
    }

    fn list(bytes_per_second: u32) -> VisitorList {
        let mut s = Settings::defaults();
        s.abuse.visitor_list_bytes_per_second = bytes_per_second;
        VisitorList::new(&s)
    }

    fn pending(changes: Vec<VisitorChange>) -> HashMap<String, VisitorChange> {
        changes
            .into_iter()
            .map(|c| (c.visitor_id.clone(), c))
            .collect()
    }

    #[test]
    fn pending_changes_keep_the_latest_per_visitor() {
        let l = list(20_000);
        l.watch(1, Follower::new(8), Rows::Full);
        l.receive(vec![change("page", "a", 5), change("arrive", "b", 1)]);
        l.receive(vec![change("page", "a", 3), change("page", "b", 2)]);
        let p = l.pending.lock().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p["a"].visitor.as_ref().unwrap().last_seen(), 5);
        assert_eq!(p["b"].visitor.as_ref().unwrap().last_seen(), 2);
        assert_eq!(p["b"].kind, "arrive");
    }

    #[test]
    fn nothing_is_kept_without_watchers() {
        let l = list(20_000);
        l.receive(vec![change("page", "a", 5)]);
        assert!(l.pending.lock().unwrap().is_empty());
    }

    #[test]
    fn membership_is_compact_arrivals_and_updates_and_leaves() {
        let p = pending(vec![
            change("arrive", "a", 1),
            change("page", "b", 2),
            change("leave", "c", 0),
            change("update", "d", 3),
        ]);
        let Some(ServerFrame::VisitorsChanged { mut changes }) = membership(&p) else {
            panic!("no membership frame");
        };
        changes.sort_by(|x, y| x.visitor_id.cmp(&y.visitor_id));
        assert_eq!(changes.len(), 3);
        assert!(matches!(changes[0].visitor, Some(VisitorRow::Compact(_))));
        assert_eq!(changes[1].kind, "leave");
        assert!(matches!(changes[2].visitor, Some(VisitorRow::Compact(_))));
        assert!(membership(&pending(vec![change("page", "b", 2)])).is_none());
    }

    #[test]
    fn in_view_changes_are_whole_records_of_the_view_only() {
        let p = pending(vec![
            change("arrive", "a", 1),
            change("page", "b", 2),
            change("leave", "c", 0),
            change("page", "d", 4),
        ]);
        for view in [
            HashSet::from(["a".to_string(), "c".into(), "x".into()]),
            (0..10)
                .map(|i| i.to_string())
                .chain(["a".into(), "c".into()])
                .collect(),
        ] {
            let Some(ServerFrame::VisitorsChanged { changes }) = in_view_changes(&p, &view) else {
                panic!("no frame");
            };
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].visitor_id, "a");
            assert!(changes[0].visitor.as_ref().unwrap().full().is_some());
        }
        assert!(in_view_changes(&p, &HashSet::new()).is_none());
    }

    #[test]
    fn rows_parse() {
        assert_eq!(Rows::parse(None).unwrap(), Rows::Full);
        assert_eq!(Rows::parse(Some("in_view")).unwrap(), Rows::InView);
        assert!(Rows::parse(Some("all")).is_err());
    }
}
