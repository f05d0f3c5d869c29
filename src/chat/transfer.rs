//! Handing a running chat to another agent or back to a queue. The receiving agent resumes
//! the chat and sees its whole history; concurrent-chat limits hold on both sides. The
//! transcript says who left and who joined; the internal note stays on the routing record,
//! out of every path that reaches the visitor.

use super::sessions::Control;
use super::{now_ms, ChatError, ChatResult, Party, Service};
use crate::chat::hub::ConnId;
use crate::config::valid_name;
use crate::protocol::{ErrorCode, ServerFrame};
use crate::redis::{Handover, RedisError};

/// Longest internal note of a transfer, in characters.
pub const NOTE_MAX_CHARS: usize = 1000;

/// Where a chat goes: exactly one of `agent` and `queue`, with an optional note.
#[derive(Debug, Clone, Default)]
pub struct TransferTo {
    pub agent: Option<i64>,
    pub queue: Option<String>,
    pub note: String,
}

impl Service {
    pub async fn transfer(
        &self,
        party: &Party,
        conn: ConnId,
        chat: &str,
        target: TransferTo,
    ) -> ChatResult<()> {
        let Party::Agent { id, name, .. } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only agents transfer chats",
            ));
        };
        let note = target.note.trim();
        if note.chars().count() > NOTE_MAX_CHARS
            || note
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
        {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                format!("note must be at most {NOTE_MAX_CHARS} characters of text"),
            ));
        }
        let (to, queue) = match (target.agent, target.queue) {
            (Some(a), None) => (a.to_string(), String::new()),
            (None, Some(q)) => {
                if !valid_name(&q) || !self.store.queue_exists(&q).await? {
                    return Err(ChatError::new(
                        ErrorCode::NotFound,
                        format!("no queue named {q}"),
                    ));
                }
                (String::new(), q)
            }
            _ => {
                return Err(ChatError::new(
                    ErrorCode::InvalidField,
                    "give exactly one of to_agent and to_queue",
                ))
            }
        };
        let now = now_ms();
        let lease = self.settings.chat.timer_lease_ms;
        let me = id.to_string();
        let handover = Handover {
            from: &me,
            to: &to,
            to_queue: &queue,
            note,
            by: name,
        };
        let (kind, queue) = self
            .redis
            .transfer(chat, &handover, now, lease)
            .await
            .map_err(|e| match e {
                RedisError::Refused(r) if r == "unavailable" => ChatError::new(
                    ErrorCode::WrongState,
                    "that agent is not available or has no free capacity",
                ),
                other => other.into(),
            })?;
        // Cross-slot follow-up: if the node dies here the chat is transferred all the same
        // (the `join:` timer writes the join), only the "left" line is missing.
        if let Err(e) = self.redis.chat_leave(chat, &me, name, now).await {
            self.metrics.redis_errors.inc();
            tracing::warn!(error = %e, "the transfer's left entry was not written");
        }
        if kind == "agent" {
            let target_name = self.agent_display_name(&to).await;
            self.apply_join(chat, &to, &target_name, now).await?;
            let _ = self
                .redis
                .timer_done(&format!("join:{chat}"), now + lease as i64)
                .await;
            self.tell(
                &format!("a:{to}"),
                &ServerFrame::ChatAssigned {
                    chat_id: chat.into(),
                    from_agent_name: name.clone(),
                    note: note.to_string(),
                },
            )
            .await;
        } else {
            self.redis.chat_release(chat).await?;
            self.route(&queue).await;
        }
        self.hub.unfollow(&self.chat_channel(chat), conn).await;
        // The agent's other connections (other tabs, other nodes) stop following it too.
        let unfollow = Control::Unfollow {
            chat_id: chat.to_string(),
            reason: "transferred".into(),
        };
        if let Err(e) = self.control(&me, &unfollow).await {
            tracing::warn!(error = %e.message, "the agent's other connections were not told of the transfer");
        }
        Ok(())
    }
}
