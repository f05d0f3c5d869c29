//! Presence of this node's visitors and agents. While a party has a connection here, the node
//! keeps pushing its "gone" timer forward (`grace:V` for visitors, `agentgone:A` for agents);
//! when the last connection anywhere closes, or the node holding it dies, the timer fires
//! after the grace period: the visitor's chats end ("Visitor has closed the browser" /
//! "Customer Rejected"), the agent goes offline.

use super::{now_ms, Party, Service};
use crate::config::Settings;
use std::collections::HashMap;
use std::sync::Mutex;

pub struct Presence {
    /// timer member -> local connection count.
    local: Mutex<HashMap<String, usize>>,
    visitor_grace_ms: i64,
    agent_grace_ms: i64,
}

fn member(p: &Party) -> String {
    match p {
        Party::Visitor { id } => format!("grace:{id}"),
        Party::Agent { id, .. } => format!("agentgone:{id}"),
    }
}

impl Presence {
    pub fn new(s: &Settings) -> Presence {
        Presence {
            local: Mutex::new(HashMap::new()),
            visitor_grace_ms: s.chat.visitor_grace_ms as i64,
            agent_grace_ms: s.chat.agent_grace_ms as i64,
        }
    }

    fn grace(&self, m: &str) -> i64 {
        if m.starts_with("grace:") {
            self.visitor_grace_ms
        } else {
            self.agent_grace_ms
        }
    }

    /// How often the node re-announces its parties: well inside the shorter grace period.
    pub fn heartbeat_ms(&self) -> u64 {
        (self.visitor_grace_ms.min(self.agent_grace_ms) / 4).clamp(100, 5_000) as u64
    }

    pub async fn arrive(&self, svc: &Service, p: &Party) {
        let m = member(p);
        *self.local.lock().unwrap().entry(m.clone()).or_insert(0) += 1;
        let due = now_ms() + self.grace(&m);
        let _ = svc.redis.schedule(vec![(m, due)]).await;
    }

    pub async fn leave(&self, svc: &Service, p: &Party) {
        let m = member(p);
        {
            let mut local = self.local.lock().unwrap();
            if let Some(n) = local.get_mut(&m) {
                *n -= 1;
                if *n == 0 {
                    local.remove(&m);
                }
            }
        }
        // Counted from the moment the connection closed (another node's heartbeat pushes it
        // forward again if the party is still connected there).
        let due = now_ms() + self.grace(&m);
        let _ = svc.redis.schedule(vec![(m, due)]).await;
    }

    /// One ZADD for every party connected here.
    pub async fn heartbeat(&self, svc: &Service) {
        let now = now_ms();
        let batch: Vec<(String, i64)> = self
            .local
            .lock()
            .unwrap()
            .keys()
            .map(|m| (m.clone(), now + self.grace(m)))
            .collect();
        for chunk in batch.chunks(1000) {
            if let Err(e) = svc.redis.schedule(chunk.to_vec()).await {
                svc.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "presence heartbeat failed");
            }
        }
    }
}
