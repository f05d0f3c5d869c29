//! Agent sessions and the control messages on an agent's channel.
//!
//! An agent token names the agent's session version; it is valid only while that is the
//! agent's current version. The store holds the version (the source of truth) and Redis a copy
//! every node reads: one GET per agent request (HTTP) and per socket opened. A logout, a
//! password reset, disabling or deleting the agent raises the version in the store, then in
//! Redis with a script that never lowers it (a node refilling a missing copy from the store
//! cannot bring an older version back) and that publishes `revoked` on the agent's channel in
//! the same step: every node closes the agent's sockets there with 4401. Redis without a copy
//! (expired, or lost) is refilled from the store; Redis unreachable falls back to the store.
//!
//! The agent's channel also carries `changed` (an admin changed the agent: its sockets close
//! with 4409 and reconnect with the new settings) and `unfollow` (the agent no longer holds a
//! chat: every connection of the agent stops following it).

use super::hub::{Encoded, Out};
use super::{ChatError, ChatResult, Service};
use crate::protocol::{close_codes, ErrorCode, ServerFrame};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A control message on an agent's channel, applied by every node to its own connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case")]
pub enum Control {
    /// The agent's sessions ended: close its connections with 4401.
    Revoked,
    /// The agent's record changed: close its connections with 4409 so each reconnects with it.
    Changed,
    /// The agent no longer holds the chat: its connections stop following it and are told.
    Unfollow { chat_id: String, reason: String },
}

impl Control {
    fn payload(&self) -> String {
        serde_json::to_string(self).expect("control messages serialise")
    }

    /// Whether a payload on a user channel is a control message (they start with this key;
    /// frames start with `{"type"`).
    pub fn is_control(payload: &[u8]) -> bool {
        payload.starts_with(b"{\"control\"")
    }
}

/// Why an agent's sessions ended (the `reason` label of the revocation counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Logout,
    Password,
    Disabled,
    Deleted,
    /// An admin signed the agent out everywhere.
    Admin,
}

impl Ending {
    pub fn label(self) -> &'static str {
        match self {
            Ending::Logout => "logout",
            Ending::Password => "password",
            Ending::Disabled => "disabled",
            Ending::Deleted => "deleted",
            Ending::Admin => "admin",
        }
    }
}

impl Service {
    /// Whether `session` is the agent's current session version (and the agent exists and is
    /// enabled). Redis first; without a copy there, the store (and the copy is refilled).
    pub async fn agent_session_valid(&self, agent: i64, session: u64) -> ChatResult<bool> {
        let valid = match self.redis.agent_session(agent).await {
            Ok(Some(current)) => current == session,
            Ok(None) => self.session_from_store(agent, session, true).await?,
            Err(e) => {
                self.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "session check falls back to the store");
                self.session_from_store(agent, session, false).await?
            }
        };
        if !valid {
            self.metrics.sessions_refused.inc();
        }
        Ok(valid)
    }

    async fn session_from_store(&self, agent: i64, session: u64, refill: bool) -> ChatResult<bool> {
        let Some(s) = self.store.agent_session(agent).await? else {
            return Ok(false);
        };
        if refill {
            if let Err(e) = self
                .redis
                .raise_agent_session(agent, s.version, self.session_ttl_ms(), None)
                .await
            {
                tracing::warn!(error = %e, "session copy not written to redis");
            }
        }
        Ok(!s.disabled && s.version == session)
    }

    /// Redis keeps a copy at least as long as a token lives, so an expired copy never
    /// outlives the tokens it refused.
    fn session_ttl_ms(&self) -> u64 {
        self.settings
            .auth
            .agent_session_ttl_seconds
            .saturating_mul(1000)
    }

    /// Makes `version` (already raised in the store) the agent's session version in Redis and
    /// closes the agent's sockets on every node. A failure here leaves tokens of the old
    /// version valid where Redis still has it: the caller reports it, and doing the same
    /// change again raises the version again.
    pub(crate) async fn sessions_ended(
        &self,
        agent: i64,
        version: u64,
        why: Ending,
    ) -> ChatResult<()> {
        self.redis
            .raise_agent_session(
                agent,
                version,
                self.session_ttl_ms(),
                Some(&Control::Revoked.payload()),
            )
            .await
            .map_err(|e| {
                tracing::warn!(agent, error = %e, "sessions ended in the store but not in redis");
                ChatError::new(
                    ErrorCode::Unavailable,
                    "saved, but Redis could not be told: sessions stay valid until this is done again",
                )
            })?;
        self.metrics
            .sessions_revoked
            .with_label_values(&[why.label()])
            .inc();
        tracing::info!(agent, reason = why.label(), "agent sessions ended");
        Ok(())
    }

    /// Tells every node holding the agent's sockets to apply `control` to them.
    pub(crate) async fn control(&self, agent: &str, control: &Control) -> ChatResult<()> {
        let channel = self.redis.keys.user_channel(&format!("a:{agent}"));
        self.redis.publish(&channel, control.payload()).await?;
        Ok(())
    }

    /// A control message arrived on `channel` (an agent's own channel): applied to this
    /// node's connections of that agent.
    pub async fn on_control(self: &Arc<Self>, channel: &str, payload: &[u8]) {
        let control = match serde_json::from_slice::<Control>(payload) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable control message dropped");
                return;
            }
        };
        match control {
            Control::Revoked => self.end_sockets(channel, close_codes::UNAUTHORIZED, "revoked"),
            Control::Changed => self.end_sockets(channel, close_codes::AGENT_CHANGED, "changed"),
            Control::Unfollow { chat_id, reason } => {
                let chat_channel = self.chat_channel(&chat_id);
                for conn in self.hub.followers_of(channel) {
                    self.hub.unfollow(&chat_channel, conn).await;
                }
                let frame = ServerFrame::ChatUnfollowed { chat_id, reason };
                self.hub
                    .deliver(channel, Out::Frame(Arc::new(Encoded::new(frame))));
            }
        }
    }

    fn end_sockets(&self, channel: &str, code: u16, why: &str) {
        let n = self.hub.end_followers(channel, code);
        self.metrics
            .agent_sockets_closed
            .with_label_values(&[why])
            .inc_by(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages_are_told_apart_from_frames() {
        for c in [
            Control::Revoked,
            Control::Changed,
            Control::Unfollow {
                chat_id: "c".into(),
                reason: "transferred".into(),
            },
        ] {
            let p = c.payload();
            assert!(Control::is_control(p.as_bytes()), "{p}");
            assert_eq!(serde_json::from_str::<Control>(&p).unwrap(), c);
        }
        let frame = serde_json::to_string(&ServerFrame::Pong { nonce: None }).unwrap();
        assert!(!Control::is_control(frame.as_bytes()));
    }
}
