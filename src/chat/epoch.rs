//! Noticing that Redis lost its data, and saying so. Redis keeps a random epoch
//! (`redis::epoch`); every node reads it at start, every `redis.epoch_check_ms` and whenever
//! its subscriber connection comes back. A different value means the live state of every chat
//! is gone (a restart without persistence, a flush): each client of a live chat on this node
//! gets `chat_lost` for each of its chats, then close 4410 (every agent connection is closed
//! with 4410 too, its status being gone), and the node adopts the new epoch.
//! Clients carry the epoch from `welcome` / `resumed`, so a client can tell as well.

use super::hub::{Encoded, Out};
use super::Service;
use crate::protocol::{close_codes, ServerFrame};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// What a client is told about each of its chats.
pub const LOST_MESSAGE: &str = "the service lost its live state";

/// The epoch this node last read.
#[derive(Default)]
pub struct Epoch(Mutex<String>);

impl Epoch {
    pub fn current(&self) -> String {
        self.0.lock().unwrap().clone()
    }

    /// Takes `now`; true when it differs from a value read before (not the first read).
    fn adopt(&self, now: &str) -> bool {
        let mut known = self.0.lock().unwrap();
        let changed = !known.is_empty() && *known != now;
        *known = now.to_string();
        changed
    }
}

impl Service {
    /// Reads (or writes, on an empty Redis) the epoch; on a change, ends every live chat's
    /// clients on this node. Returns whether it changed.
    pub async fn check_epoch(&self) -> Result<bool, crate::redis::RedisError> {
        let candidate = super::identity::new_id();
        let now = self.redis.epoch(&candidate).await?;
        if !self.epoch.adopt(&now) {
            return Ok(false);
        }
        self.metrics.redis_state_lost.inc();
        // Agents without a chat too: their status and routing are gone with the rest, and the
        // console shows what the new connection's `status` says.
        let ended = self.hub.end_chats(
            |channel| self.redis.keys.chat_of_channel(channel),
            |channel| {
                self.redis
                    .keys
                    .user_of_channel(channel)
                    .is_some_and(|u| u.starts_with("a:"))
            },
            |chat| {
                Out::Frame(Arc::new(Encoded::new(ServerFrame::ChatLost {
                    chat_id: chat.to_string(),
                    message: LOST_MESSAGE.to_string(),
                })))
            },
            close_codes::STATE_LOST,
        );
        tracing::error!(
            epoch = %now,
            connections = ended,
            "Redis's epoch changed: Redis lost its data; every live chat on this node ended (chat_lost, 4410)"
        );
        Ok(true)
    }
}

/// Checks the epoch every `redis.epoch_check_ms` and when the subscriber connection comes back.
pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let mut reconnects = svc.redis.subscriber_reconnects();
    let mut every = tokio::time::interval(Duration::from_millis(svc.settings.redis.epoch_check_ms));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            r = reconnects.recv() => {
                if matches!(r, Err(broadcast::error::RecvError::Closed)) {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
        if let Err(e) = svc.check_epoch().await {
            tracing::debug!(error = %e, "epoch check failed; next time");
        }
    }
}
