//! Presence of this node's visitors and agents, and the timers that act on their absence.
//!
//! Each node writes to Redis how many connections of each party (`v:ID`, `a:ID`) it holds
//! (`here:X`, one field per node instance) and beats: every `heartbeat_ms` it re-asserts all of
//! them and pushes their "gone" timers on, so the timers fire only when nobody pushes them —
//! the party's last connection closed, or its node died. A timer re-checks before it acts: the
//! party is still present while a live node (one that beat within the node TTL) holds a
//! connection, and after a Redis outage nobody is judged until the nodes that were up have
//! beaten again (see `docs/design-redis.md`, "Presence"). Timers: `grace:V` ends the visitor's
//! chats, `agentgone:A` sets the agent offline, `unroutable:A` takes the agent out of routing
//! and its pending offers back.

use super::{
    now_ms, ChatError, ChatResult, Party, Service, CUSTOMER_REJECTED, VISITOR_CLOSED_BROWSER,
};
use crate::config::Settings;
use crate::protocol::{ErrorCode, ServerFrame};
use crate::redis::PresenceClock;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Parties written per beat script. Redis runs one script at a time and every other command
/// waits for it: a party costs it about 6-10 µs (its `here:` hash, its timers), so a batch of
/// 500 held every chat's messages back by 3-8 ms once a heartbeat. At 50 a script is done
/// within about half a millisecond; the batches go one after the other, so other commands run
/// between them.
const BEAT_BATCH: usize = 50;

pub struct Presence {
    /// This process's instance name: the node name and a random suffix, so a node restarted
    /// under the same name never passes for the one that died (whose connections are gone).
    node: String,
    state: Mutex<State>,
    visitor_grace_ms: i64,
    agent_grace_ms: i64,
    unroutable_ms: i64,
    heartbeat_ms: i64,
    clock: PresenceClock,
    /// The last beat failed: failures are retried every poll, logged once until one works.
    beat_failing: AtomicBool,
}

#[derive(Default)]
struct State {
    parties: HashMap<String, Local>,
    /// Generation of the last change: Redis keeps, per node, the count with the highest one,
    /// whatever order a beat and a connection's own write arrive in.
    next_gen: u64,
}

/// One party's connections on this node. An entry with `count` 0 is a leave Redis has not
/// been told of yet (the write failed); the next beat writes it, then it is dropped.
#[derive(Debug, Clone, Copy)]
struct Local {
    count: usize,
    gen: u64,
    left_at: i64,
}

impl Presence {
    pub fn new(s: &Settings, node: &str) -> Presence {
        let visitor_grace_ms = s.chat.visitor_grace_ms as i64;
        let agent_grace_ms = s.chat.agent_grace_ms as i64;
        // Well inside the shorter grace period, so a live party's timer never comes due.
        let heartbeat_ms = (visitor_grace_ms.min(agent_grace_ms) / 4).clamp(100, 5_000);
        let suffix = super::identity::new_id();
        Presence {
            node: format!("{node}/{}", suffix.get(..8).unwrap_or(&suffix)),
            state: Mutex::new(State::default()),
            visitor_grace_ms,
            agent_grace_ms,
            unroutable_ms: s.chat.agent_unroutable_ms as i64,
            heartbeat_ms,
            beat_failing: AtomicBool::new(false),
            clock: PresenceClock {
                node_ttl_ms: 3 * heartbeat_ms,
                // At least a second: a CPU-starved cluster whose beats run late must not pass
                // for an outage (harmless, but it holds the timers for nodes that died).
                gap_ms: (2 * heartbeat_ms).max(1_000),
                settle_ms: s.chat.presence_settle_ms as i64,
                here_ttl_ms: 2 * visitor_grace_ms.max(agent_grace_ms) + 3 * heartbeat_ms,
            },
        }
    }

    /// How often the node beats: a quarter of the shorter grace period, 0.1 to 5 s.
    pub fn heartbeat_ms(&self) -> u64 {
        self.heartbeat_ms as u64
    }

    /// The party's absence timers, due `at` + their delay: pushed on while it is connected
    /// here (`connected`), or counted from its last leave. `unroutable` waits for the node TTL
    /// too while connected, so it fires only once a dead node no longer counts.
    fn timers(&self, party: &str, at: i64, connected: bool) -> Vec<(String, i64)> {
        match party.split_once(':') {
            Some(("v", id)) => vec![(format!("grace:{id}"), at + self.visitor_grace_ms)],
            Some(("a", id)) => vec![
                (format!("agentgone:{id}"), at + self.agent_grace_ms),
                (
                    format!("unroutable:{id}"),
                    at + self.unroutable_ms + if connected { self.clock.node_ttl_ms } else { 0 },
                ),
            ],
            _ => vec![],
        }
    }

    /// When a timer that found its party still present fires again.
    fn rearm_ms(&self, kind: &str) -> i64 {
        match kind {
            "grace" => self.visitor_grace_ms,
            "agentgone" => self.agent_grace_ms,
            _ => self.clock.node_ttl_ms + self.unroutable_ms,
        }
    }

    /// Counts a connection opening (`+1`) or closing here; returns the new count and its
    /// generation.
    fn change(&self, party: &str, opened: bool, now: i64) -> (usize, u64) {
        let mut st = self.state.lock().unwrap();
        st.next_gen += 1;
        let gen = st.next_gen;
        let e = st.parties.entry(party.to_string()).or_insert(Local {
            count: 0,
            gen,
            left_at: now,
        });
        if opened {
            e.count += 1;
        } else {
            e.count = e.count.saturating_sub(1);
            if e.count == 0 {
                e.left_at = now;
            }
        }
        e.gen = gen;
        (e.count, gen)
    }

    /// Drops a party that left once Redis has its leave, unless it changed again meanwhile.
    fn forget_left(&self, party: &str, gen: u64) {
        let mut st = self.state.lock().unwrap();
        if st
            .parties
            .get(party)
            .is_some_and(|e| e.count == 0 && e.gen == gen)
        {
            st.parties.remove(party);
        }
    }

    pub async fn arrive(&self, svc: &Service, p: &Party) {
        let party = p.user_key();
        let now = now_ms();
        let (count, gen) = self.change(&party, true, now);
        let timers = self.timers(&party, now, true);
        match svc
            .redis
            .presence_set(&party, &self.node, count, gen, &self.clock, &timers)
            .await
        {
            // The agent's console is back before its absence ended: offer it work again.
            Ok((_, true)) => {
                if let Party::Agent { queues, .. } = p {
                    for q in queues {
                        svc.route(q).await;
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                svc.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "presence not written; the next beat writes it");
            }
        }
    }

    pub async fn leave(&self, svc: &Service, p: &Party) {
        let party = p.user_key();
        let now = now_ms();
        let (count, gen) = self.change(&party, false, now);
        // Counted from the moment the last local connection closed (a connection on another
        // node keeps the party present; that node's beats push the timers on).
        let timers = if count == 0 {
            self.timers(&party, now, false)
        } else {
            vec![]
        };
        match svc
            .redis
            .presence_set(&party, &self.node, count, gen, &self.clock, &timers)
            .await
        {
            Ok(_) if count == 0 => self.forget_left(&party, gen),
            Ok(_) => {}
            Err(e) => {
                svc.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "leave not written; the next beat writes it");
            }
        }
    }

    /// Re-asserts every party connected here (and the leaves not yet written), in batches,
    /// the last of which marks the node as beating. False if a batch failed: the caller tries
    /// again at its next poll rather than a whole interval later, so that after an outage the
    /// node is back as soon as Redis is.
    pub async fn heartbeat(&self, svc: &Service) -> bool {
        let snapshot: Vec<(String, Local)> = {
            let st = self.state.lock().unwrap();
            st.parties.iter().map(|(k, v)| (k.clone(), *v)).collect()
        };
        let batches: Vec<&[(String, Local)]> = if snapshot.is_empty() {
            vec![&[]]
        } else {
            snapshot.chunks(BEAT_BATCH).collect()
        };
        let n = batches.len();
        for (i, batch) in batches.into_iter().enumerate() {
            // Each batch at its own time: the last one must carry a time after any outage
            // another node noted while the earlier batches ran.
            let now = now_ms();
            let parties: Vec<(String, usize, u64)> = batch
                .iter()
                .map(|(p, l)| (p.clone(), l.count, l.gen))
                .collect();
            let timers: Vec<(String, i64)> = batch
                .iter()
                .flat_map(|(p, l)| {
                    if l.count > 0 {
                        self.timers(p, now, true)
                    } else {
                        self.timers(p, l.left_at, false)
                    }
                })
                .collect();
            match svc
                .redis
                .presence_beat(&self.node, now, &self.clock, i + 1 == n, &parties, &timers)
                .await
            {
                Ok(beat) => {
                    if beat.outage {
                        svc.metrics.presence_outages.inc();
                        tracing::warn!(
                            settle_ms = self.clock.settle_ms,
                            "no node could reach Redis for a while: presence timers wait until the nodes have re-asserted their connections"
                        );
                    }
                    for (p, l) in batch.iter().filter(|(_, l)| l.count == 0) {
                        self.forget_left(p, l.gen);
                    }
                }
                Err(e) => {
                    svc.metrics.redis_errors.inc();
                    if !self.beat_failing.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "presence heartbeat failed; retrying at every timer poll");
                    }
                    return false;
                }
            }
        }
        if self.beat_failing.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "presence heartbeat works again: this node's connections are re-asserted"
            );
        }
        true
    }

    /// Asks whether the party of a fired presence timer is gone (the script sets the timer
    /// again when it is not); counted by outcome.
    async fn recheck(&self, svc: &Service, kind: &str, party: &str) -> ChatResult<bool> {
        let member = format!("{kind}:{}", party.get(2..).unwrap_or(""));
        let outcome = svc
            .redis
            .presence_check(party, &member, now_ms(), &self.clock, self.rearm_ms(kind))
            .await?;
        svc.metrics
            .presence_rechecks
            .with_label_values(&[kind, outcome.as_str()])
            .inc();
        Ok(outcome == "gone")
    }
}

impl Service {
    /// `grace:V` fired: if the visitor has no connection on any live node, the visit is over
    /// and its chats end ("Visitor has closed the browser" / "Customer Rejected").
    pub(super) async fn visitor_grace_over(&self, visitor: &str) -> ChatResult<()> {
        if !self
            .presence
            .recheck(self, "grace", &format!("v:{visitor}"))
            .await?
        {
            return Ok(());
        }
        self.visitor_left(visitor).await?;
        for chat in self.redis.visitor_chats(visitor).await? {
            match self
                .end_as(
                    &chat,
                    "system",
                    "",
                    VISITOR_CLOSED_BROWSER,
                    CUSTOMER_REJECTED,
                )
                .await
            {
                Ok(()) => {}
                Err(e) if e.code == ErrorCode::WrongState || e.code == ErrorCode::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `unroutable:A` or `agentgone:A` fired: if no live node holds a console of the agent,
    /// take it out of routing (and its pending offers back, re-routed) or set it offline, in
    /// the script that decides it.
    pub(super) async fn agent_absent(&self, kind: &str, agent: &str) -> ChatResult<()> {
        let mode = if kind == "agentgone" {
            "offline"
        } else {
            "unroutable"
        };
        let p = &self.presence;
        let r = self
            .redis
            .agent_presence(
                agent,
                mode,
                &format!("{kind}:{agent}"),
                now_ms(),
                &p.clock,
                p.rearm_ms(kind),
            )
            .await
            .map_err(ChatError::from)?;
        self.metrics
            .presence_rechecks
            .with_label_values(&[kind, r.outcome.as_str()])
            .inc();
        if r.changed {
            tracing::info!(
                agent,
                change = mode,
                offers_revoked = r.revoked.len(),
                "agent has no console on any live node"
            );
        }
        let queues: BTreeSet<&str> = r.revoked.iter().map(|(_, q)| q.as_str()).collect();
        for (chat, _) in &r.revoked {
            let frame = ServerFrame::OfferRevoked {
                chat_id: chat.clone(),
                reason: "unroutable".into(),
            };
            self.tell(&format!("a:{agent}"), &frame).await;
        }
        for q in queues {
            self.route(q).await;
        }
        Ok(())
    }
}
