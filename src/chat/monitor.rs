//! The supervisors' live monitor: every waiting request and running chat of the cluster, the
//! agents with status and load, and per-queue figures.
//!
//! The state lives in Redis (routing records, queues, the agents' chat sets, the last hour's
//! accepts and missed offers) and the store (agents and queues). A node with watchers reads it
//! once every `chat.monitor_interval_ms`, however many supervisors watch there; it compares
//! the result with the previous read and hands every watcher the same `monitor_changed`
//! frame, encoded once. Times are absolute, so a quiet chat yields no change. A new watcher gets
//! the node's latest snapshot (read on the spot when nobody watched).
//!
//! Each watcher has a byte budget (`chat.monitor_bytes_per_second`, bursts of twice that), as
//! the site-visitors list does: a change that does not fit is skipped for that watcher, which
//! is then behind and gets the whole monitor again (`monitor_snapshot`) at the first round its
//! budget is positive, so a busy cluster costs a watcher at most its budget on average and it
//! never applies a change to the wrong state.

use super::hub::{ConnId, Encoded, Follower, Out};
use super::supervise::not_a_supervisor;
use super::{now_ms, ChatResult, Party, Service};
use crate::protocol::{
    Encoding, MonitorAgent, MonitorChanges, MonitorChat, MonitorQueue, MonitorSnapshot, ServerFrame,
};
use crate::redis::MonitorRead;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// One watching connection of this node.
struct Watcher {
    follower: Follower,
    /// Bytes it may be sent now; refilled at the budget's rate up to twice of it. May go
    /// below zero after a whole snapshot: the watcher then waits longer.
    tokens: f64,
    refilled: Instant,
    /// Skipped a change: gets the whole monitor next instead of changes.
    behind: bool,
}

#[derive(Default)]
pub struct Monitor {
    watchers: Mutex<HashMap<ConnId, Watcher>>,
    /// The snapshot every watcher on this node has applied. Held while a read is compared
    /// and delivered, and while a watcher joins, so a new watcher's snapshot and the changes
    /// it receives next always follow on from each other.
    last: tokio::sync::Mutex<Option<Arc<MonitorSnapshot>>>,
}

impl Monitor {
    fn watcher_count(&self) -> usize {
        self.watchers.lock().unwrap().len()
    }
}

impl Service {
    /// Starts sending the monitor to this connection: the snapshot now, changes after.
    pub async fn watch_monitor(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
    ) -> ChatResult<ServerFrame> {
        if !party.is_supervisor() {
            return Err(not_a_supervisor());
        }
        let mut last = self.monitor.last.lock().await;
        let snapshot = match last.as_ref() {
            // Kept current by the node's reads while anyone watches.
            Some(s) if self.monitor.watcher_count() > 0 => s.clone(),
            _ => {
                let s = Arc::new(self.read_monitor().await?);
                *last = Some(s.clone());
                s
            }
        };
        let n = {
            let mut w = self.monitor.watchers.lock().unwrap();
            w.insert(
                conn,
                Watcher {
                    follower: f,
                    tokens: self.settings.chat.monitor_bytes_per_second as f64 * 2.0,
                    refilled: Instant::now(),
                    behind: false,
                },
            );
            w.len()
        };
        self.metrics.monitor_watchers.set(n as i64);
        drop(last);
        Ok(ServerFrame::MonitorSnapshot(Box::new((*snapshot).clone())))
    }

    /// Stops sending the monitor to this connection (also when it closes).
    pub fn unwatch_monitor(&self, conn: ConnId) {
        let n = {
            let mut w = self.monitor.watchers.lock().unwrap();
            if w.remove(&conn).is_none() {
                return;
            }
            w.len()
        };
        self.metrics.monitor_watchers.set(n as i64);
    }

    /// Reads the whole monitor from the store and Redis.
    async fn read_monitor(&self) -> ChatResult<MonitorSnapshot> {
        let started = std::time::Instant::now();
        let now = now_ms();
        let max = self.settings.chat.monitor_max_chats as usize;
        let agents = self.enabled_agents().await?;
        let mut queues: BTreeSet<String> = self.store.queues().await?.into_iter().collect();
        queues.extend(self.redis.known_queues().await?);
        let queues: Vec<String> = queues.into_iter().collect();
        let ids: Vec<i64> = agents.iter().map(|a| a.id).collect();
        let read = self.redis.monitor_read(&ids, &queues, now, max).await?;
        let mut snapshot = build(now, &agents, &queues, read);
        snapshot.chats.truncate(max);
        self.metrics
            .monitor_refresh
            .observe(started.elapsed().as_secs_f64());
        Ok(snapshot)
    }

    /// One round: read, compare with what the watchers have, send them the difference.
    async fn monitor_round(&self) {
        let mut last = self.monitor.last.lock().await;
        if self.monitor.watcher_count() == 0 {
            *last = None;
            return;
        }
        let now = match self.read_monitor().await {
            Ok(s) => s,
            Err(e) => {
                self.metrics.monitor_refresh_failures.inc();
                tracing::warn!(error = %e.message, "monitor read failed; watchers keep the last state");
                return;
            }
        };
        let changes = last.as_deref().map(|before| diff(before, &now));
        // No earlier read: every watcher gets the whole monitor.
        let first = changes.is_none();
        let now = Arc::new(now);
        *last = Some(now.clone());
        let change = changes
            .filter(|c| !c.is_empty())
            .map(|c| Arc::new(Encoded::new(ServerFrame::MonitorChanged(Box::new(c)))));
        // The whole monitor, encoded once if any watcher needs it (behind, or no earlier read).
        let whole = std::sync::OnceLock::new();
        let whole = || {
            whole
                .get_or_init(|| {
                    Arc::new(Encoded::new(ServerFrame::MonitorSnapshot(Box::new(
                        (*now).clone(),
                    ))))
                })
                .clone()
        };
        let rate = self.settings.chat.monitor_bytes_per_second as f64;
        let instant = Instant::now();
        let mut watchers = self.monitor.watchers.lock().unwrap();
        for w in watchers.values_mut() {
            let elapsed = instant.duration_since(w.refilled).as_secs_f64();
            w.tokens = (w.tokens + elapsed * rate).min(rate * 2.0);
            w.refilled = instant;
            let frame = if w.behind || first {
                if w.tokens <= 0.0 {
                    continue;
                }
                w.behind = false;
                whole()
            } else if let Some(c) = &change {
                if c.bytes(Encoding::Json).len() as f64 > w.tokens {
                    w.behind = true;
                    self.metrics.monitor_skipped.inc();
                    continue;
                }
                c.clone()
            } else {
                continue;
            };
            let size = frame.bytes(Encoding::Json).len();
            w.tokens -= size as f64;
            self.metrics.monitor_bytes.inc_by(size as u64);
            if !w.follower.push(Out::Frame(frame)) {
                self.metrics.slow_consumers.inc();
            }
        }
    }
}

/// The node's monitor loop: a round every `chat.monitor_interval_ms` while anyone watches.
pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(svc.settings.chat.monitor_interval_ms);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => svc.monitor_round().await,
            _ = stop.changed() => return,
        }
    }
}

/// Live chat states the monitor lists: waiting (`queued`, `offered`) and running (`active`,
/// `ended` while its agent decides).
fn listed(state: &str) -> bool {
    matches!(state, "queued" | "offered" | "active" | "ended")
}

fn waiting(state: &str) -> bool {
    matches!(state, "queued" | "offered")
}

/// Turns the raw reads into the monitor's rows.
fn build(
    now: i64,
    agents: &[crate::store::Agent],
    queues: &[String],
    read: MonitorRead,
) -> MonitorSnapshot {
    let num = |r: &HashMap<String, String>, k: &str| r.get(k).and_then(|v| v.parse::<i64>().ok());
    let mut chats: Vec<MonitorChat> = read
        .chats
        .iter()
        .filter(|(_, r)| r.get("state").is_some_and(|s| listed(s)))
        .map(|(id, r)| {
            let state = r.get("state").cloned().unwrap_or_default();
            let holder = if state == "offered" {
                "offered_to"
            } else {
                "agent"
            };
            MonitorChat {
                chat_id: id.clone(),
                queue: r.get("queue").cloned().unwrap_or_default(),
                visitor_id: r.get("visitor").cloned().unwrap_or_default(),
                name: r.get("name").cloned().unwrap_or_default(),
                agent_id: num(r, holder),
                requested_at: num(r, "created").unwrap_or(0),
                accepted_at: num(r, "accepted"),
                last_visitor_at: read.visitor_last.get(id).copied(),
                rating: r.get("rating").and_then(|v| v.parse().ok()),
                state,
            }
        })
        .collect();
    chats.sort_by(|a, b| {
        (!waiting(&a.state), a.requested_at, &a.chat_id).cmp(&(
            !waiting(&b.state),
            b.requested_at,
            &b.chat_id,
        ))
    });
    let agents = agents
        .iter()
        .map(|a| {
            let r = read.agents.get(&a.id);
            let field = |k: &str| r.and_then(|r| r.get(k));
            MonitorAgent {
                agent_id: a.id,
                name: a.display_name.clone(),
                role: a.role.clone(),
                status: field("status").cloned().unwrap_or_else(|| "offline".into()),
                load: field("load").and_then(|v| v.parse().ok()).unwrap_or(0),
                max_chats: field("max")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.max_chats.max(0) as u64),
                unroutable: field("unroutable").is_some_and(|v| v == "1"),
            }
        })
        .collect();
    let queues = queues
        .iter()
        .map(|q| {
            let queued = read.waiting.get(q).map(|w| w.1).unwrap_or(0);
            let offered = chats
                .iter()
                .filter(|c| c.state == "offered" && &c.queue == q)
                .count() as u64;
            let oldest = chats
                .iter()
                .filter(|c| waiting(&c.state) && &c.queue == q)
                .map(|c| c.requested_at)
                .min();
            let mut waits = read.accepted.get(q).cloned().unwrap_or_default();
            waits.sort_unstable();
            MonitorQueue {
                queue: q.clone(),
                waiting: queued + offered,
                oldest_request_at: oldest,
                accepted_last_hour: waits.len() as u64,
                median_accept_ms: (!waits.is_empty()).then(|| waits[waits.len() / 2]),
                missed_offers_last_hour: read.missed.get(q).copied().unwrap_or(0),
            }
        })
        .collect();
    MonitorSnapshot {
        at: now,
        chats,
        total_chats: read.total_chats,
        agents,
        queues,
    }
}

/// What changed from `before` to `now`, row by row.
fn diff(before: &MonitorSnapshot, now: &MonitorSnapshot) -> MonitorChanges {
    let old: HashMap<&str, &MonitorChat> = before
        .chats
        .iter()
        .map(|c| (c.chat_id.as_str(), c))
        .collect();
    let new: HashMap<&str, &MonitorChat> =
        now.chats.iter().map(|c| (c.chat_id.as_str(), c)).collect();
    let old_agents: HashMap<i64, &MonitorAgent> =
        before.agents.iter().map(|a| (a.agent_id, a)).collect();
    let old_queues: HashMap<&str, &MonitorQueue> = before
        .queues
        .iter()
        .map(|q| (q.queue.as_str(), q))
        .collect();
    let mut removed: Vec<String> = old
        .keys()
        .filter(|id| !new.contains_key(*id))
        .map(|id| id.to_string())
        .collect();
    removed.sort();
    MonitorChanges {
        at: now.at,
        chats: now
            .chats
            .iter()
            .filter(|c| old.get(c.chat_id.as_str()) != Some(c))
            .cloned()
            .collect(),
        removed,
        total_chats: now.total_chats,
        agents: now
            .agents
            .iter()
            .filter(|a| old_agents.get(&a.agent_id) != Some(a))
            .cloned()
            .collect(),
        queues: now
            .queues
            .iter()
            .filter(|q| old_queues.get(q.queue.as_str()) != Some(q))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(id: &str, state: &str, at: i64) -> MonitorChat {
        MonitorChat {
            chat_id: id.into(),
            state: state.into(),
            queue: "general".into(),
            requested_at: at,
            ..Default::default()
        }
    }

    #[test]
    fn diff_lists_changed_new_and_removed_rows_only() {
        let before = MonitorSnapshot {
            at: 1,
            chats: vec![chat("a", "active", 1), chat("b", "queued", 2)],
            total_chats: 2,
            ..Default::default()
        };
        let same = MonitorSnapshot {
            at: 2,
            ..before.clone()
        };
        assert!(diff(&before, &same).is_empty());
        let now = MonitorSnapshot {
            at: 3,
            chats: vec![chat("b", "offered", 2), chat("c", "queued", 3)],
            total_chats: 2,
            ..Default::default()
        };
        let d = diff(&before, &now);
        assert_eq!(d.removed, vec!["a".to_string()]);
        let ids: Vec<&str> = d.chats.iter().map(|c| c.chat_id.as_str()).collect();
        assert_eq!(ids, vec!["b", "c"]);
    }
}
