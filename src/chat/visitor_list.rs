//! The site-visitors list as agents receive it: pages of the list (`watch_visitors`,
//! `list_visitors`), one visitor's page history (`visitor_history`), and the live changes.
//!
//! Changes reach a node as batches from every node (`visitors::flush_visitor_changes`). The
//! node keeps only the latest change per visitor until its next delivery (every
//! `DELIVER_EVERY`), encodes that one `visitors_changed` frame once and hands it to each local
//! watcher that has the bytes for it in its budget (`abuse.visitor_list_bytes_per_second`,
//! bursts of twice that). A watcher over budget gets one `visitors_stale` instead and nothing
//! more until it reads the list again: it is never queued for, so a flood of page views costs
//! a watching agent at most its budget.

use super::hub::{ConnId, Encoded, Follower, Out};
use super::visitors::site_visitor;
use super::{ChatError, ChatResult, Party, Service};
use crate::config::Settings;
use crate::protocol::{Encoding, ErrorCode, PageSeen, ServerFrame, SiteVisitor, VisitorChange};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often a node hands the changes it collected to its watchers.
pub const DELIVER_EVERY: Duration = Duration::from_millis(500);
/// Visitors with a pending change a node holds between two deliveries; beyond it the changes
/// are dropped and every watcher is told to read the list again.
const MAX_PENDING: usize = 50_000;
/// Records read at once for a page of the list (pipelined on the pool).
const PAGE_CONCURRENCY: usize = 256;

/// One watching connection of this node.
struct Watcher {
    follower: Follower,
    /// Bytes it may still be sent now; refilled at the budget's rate up to twice of it.
    tokens: f64,
    refilled: Instant,
    /// Told `visitors_stale`: gets no changes until it reads the list again.
    stale: bool,
}

pub struct VisitorList {
    watchers: Mutex<HashMap<ConnId, Watcher>>,
    /// Latest change per visitor since the last delivery.
    pending: Mutex<HashMap<String, VisitorChange>>,
    /// The pending changes overflowed: every watcher is stale.
    overflowed: std::sync::atomic::AtomicBool,
    bytes_per_second: f64,
}

impl VisitorList {
    pub fn new(s: &Settings) -> VisitorList {
        VisitorList {
            watchers: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            overflowed: std::sync::atomic::AtomicBool::new(false),
            bytes_per_second: s.abuse.visitor_list_bytes_per_second as f64,
        }
    }

    fn burst(&self) -> f64 {
        self.bytes_per_second * 2.0
    }

    /// Registers a watcher, or makes a stale one live again (its budget is kept: reading the
    /// list again does not buy more bytes of changes).
    fn watch(&self, conn: ConnId, follower: Follower) {
        let mut w = self.watchers.lock().unwrap();
        let burst = self.burst();
        w.entry(conn)
            .and_modify(|w| w.stale = false)
            .or_insert_with(|| Watcher {
                follower,
                tokens: burst,
                refilled: Instant::now(),
                stale: false,
            });
    }

    fn unwatch(&self, conn: ConnId) {
        self.watchers.lock().unwrap().remove(&conn);
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
            let newer = match (old, &c.visitor) {
                (
                    Some(VisitorChange {
                        visitor: Some(old), ..
                    }),
                    Some(new),
                ) => new.last_seen >= old.last_seen,
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
        let changes: Vec<VisitorChange> = std::mem::take(&mut *self.pending.lock().unwrap())
            .into_values()
            .collect();
        let overflowed = self.overflowed.swap(false, Ordering::Relaxed);
        if changes.is_empty() && !overflowed {
            return;
        }
        let frame = Arc::new(Encoded::new(ServerFrame::VisitorsChanged { changes }));
        let size = frame.bytes(Encoding::Json).len() as f64;
        let stale = Arc::new(Encoded::new(ServerFrame::VisitorsStale));
        let now = Instant::now();
        let (rate, burst) = (self.bytes_per_second, self.burst());
        let mut watchers = self.watchers.lock().unwrap();
        for w in watchers.values_mut() {
            let elapsed = now.duration_since(w.refilled).as_secs_f64();
            w.tokens = (w.tokens + elapsed * rate).min(burst);
            w.refilled = now;
            if w.stale {
                svc.metrics.visitor_list_dropped.inc();
                continue;
            }
            if overflowed || size > w.tokens {
                w.stale = true;
                svc.metrics.visitor_list_dropped.inc();
                w.follower.push(Out::Frame(stale.clone()));
                continue;
            }
            w.tokens -= size;
            svc.metrics.visitor_list_bytes.inc_by(size as u64);
            if !w.follower.push(Out::Frame(frame.clone())) {
                svc.metrics.slow_consumers.inc();
            }
        }
    }
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

/// A list cursor: the `last_seen` and id of the last visitor of a page.
fn parse_cursor(c: &str) -> ChatResult<(i64, &str)> {
    c.split_once(':')
        .and_then(|(s, id)| Some((s.parse().ok()?, id)))
        .filter(|(_, id)| !id.is_empty() && id.len() <= 64)
        .ok_or_else(|| ChatError::new(ErrorCode::InvalidField, "after is not a list cursor"))
}

fn only_agents(party: &Party) -> ChatResult<()> {
    match party {
        Party::Agent { .. } => Ok(()),
        Party::Visitor { .. } => Err(ChatError::new(
            ErrorCode::Forbidden,
            "only agents watch the site visitors",
        )),
    }
}

impl Service {
    /// Starts (or restarts) the list for this connection: the first page, then changes.
    pub async fn watch_visitors(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        limit: Option<u32>,
    ) -> ChatResult<ServerFrame> {
        only_agents(party)?;
        // Follow first: a change made while the page is read arrives as a change after it.
        let channel = self.redis.keys.visitors_channel();
        self.hub.follow(&channel, conn, f.clone()).await?;
        self.visitor_list.watch(conn, f);
        match self.visitors_page(None, limit).await {
            Ok(frame) => Ok(frame),
            Err(e) => {
                self.unwatch_visitors(conn).await;
                Err(e)
            }
        }
    }

    /// The page of the list after `after` (a `next` cursor of an earlier page).
    pub async fn list_visitors(
        &self,
        party: &Party,
        after: &str,
        limit: Option<u32>,
    ) -> ChatResult<ServerFrame> {
        only_agents(party)?;
        let cursor = parse_cursor(after)?;
        self.visitors_page(Some((cursor, after)), limit).await
    }

    async fn visitors_page(
        &self,
        after: Option<((i64, &str), &str)>,
        limit: Option<u32>,
    ) -> ChatResult<ServerFrame> {
        let max = self.settings.abuse.visitors_page_size;
        let limit = limit.unwrap_or(max).clamp(1, max) as usize;
        let (ids, total) = tokio::join!(
            self.redis.visitors_after(after.map(|(c, _)| c), limit),
            self.redis.visitor_count(),
        );
        let ids = ids?;
        let next = match ids.last() {
            Some((id, seen)) if ids.len() == limit => format!("{seen}:{id}"),
            _ => String::new(),
        };
        let mut visitors: Vec<SiteVisitor> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(PAGE_CONCURRENCY) {
            let records = futures_util::future::join_all(
                chunk.iter().map(|(id, _)| self.redis.visitor_record(id)),
            )
            .await;
            for ((id, _), r) in chunk.iter().zip(records) {
                // None: left between the two reads.
                if let Some(r) = r? {
                    visitors.push(site_visitor(id, &r));
                }
            }
        }
        Ok(ServerFrame::VisitorsSnapshot {
            visitors,
            after: after.map(|(_, raw)| raw.to_string()).unwrap_or_default(),
            next,
            total: total?,
        })
    }

    /// One visitor's page history, oldest first (at most `abuse.visitor_pages_kept`).
    pub async fn visitor_history(&self, party: &Party, visitor: &str) -> ChatResult<ServerFrame> {
        only_agents(party)?;
        if visitor.is_empty() || visitor.len() > 64 {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "visitor_id must be 1-64 characters",
            ));
        }
        let (pages, record) = tokio::join!(
            self.redis.visitor_pages(visitor),
            self.redis.visitor_record(visitor),
        );
        if record?.is_none() {
            return Err(ChatError::new(
                ErrorCode::NotFound,
                "no such visitor on the site",
            ));
        }
        Ok(ServerFrame::VisitorHistory {
            visitor_id: visitor.to_string(),
            pages: pages?
                .iter()
                .filter_map(|p| serde_json::from_str::<PageSeen>(p).ok())
                .collect(),
        })
    }

    /// Stops the site-visitors list for this connection (also on every disconnect).
    pub async fn unwatch_visitors(&self, conn: ConnId) {
        self.visitor_list.unwatch(conn);
        let channel = self.redis.keys.visitors_channel();
        if self.hub.is_following(&channel, conn) {
            self.hub.unfollow(&channel, conn).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, seen: i64) -> VisitorChange {
        VisitorChange {
            kind: "page".into(),
            visitor_id: id.into(),
            visitor: Some(SiteVisitor {
                visitor_id: id.into(),
                last_seen: seen,
                ..Default::default()
            }),
        }
    }

    fn list(bytes_per_second: u32) -> VisitorList {
        let mut s = Settings::defaults();
        s.abuse.visitor_list_bytes_per_second = bytes_per_second;
        VisitorList::new(&s)
    }

    #[test]
    fn pending_changes_keep_the_latest_per_visitor() {
        let l = list(20_000);
        l.watch(1, Follower::new(8));
        let mut arrive = change("b", 1);
        arrive.kind = "arrive".into();
        l.receive(vec![change("a", 5), arrive]);
        l.receive(vec![change("a", 3), change("b", 2)]);
        let p = l.pending.lock().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p["a"].visitor.as_ref().unwrap().last_seen, 5);
        assert_eq!(p["b"].visitor.as_ref().unwrap().last_seen, 2);
        assert_eq!(p["b"].kind, "arrive");
    }

    #[test]
    fn nothing_is_kept_without_watchers() {
        let l = list(20_000);
        l.receive(vec![change("a", 5)]);
        assert!(l.pending.lock().unwrap().is_empty());
    }

    #[test]
    fn cursors_parse() {
        assert_eq!(parse_cursor("17:abc").unwrap(), (17, "abc"));
        for bad in ["", "x:abc", "17:", "17"] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}
