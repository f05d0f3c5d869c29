//! Handing a running chat to another agent or back to a queue. The receiving agent resumes
//! the chat and sees its whole history; concurrent-chat limits hold on both sides.

use super::sessions::Control;
use super::{now_ms, ChatError, ChatResult, Party, Service};
use crate::chat::hub::ConnId;
use crate::config::valid_name;
use crate::protocol::{ErrorCode, ServerFrame};
use crate::redis::RedisError;

impl Service {
    pub async fn transfer(
        &self,
        party: &Party,
        conn: ConnId,
        chat: &str,
        to_agent: Option<i64>,
        to_queue: Option<String>,
    ) -> ChatResult<()> {
        let Party::Agent { id, name, .. } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only agents transfer chats",
            ));
        };
        let (to, queue) = match (to_agent, to_queue) {
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
        let (kind, queue) = self
            .redis
            .transfer(chat, &id.to_string(), &to, &queue, now, lease)
            .await
            .map_err(|e| match e {
                RedisError::Refused(r) if r == "unavailable" => ChatError::new(
                    ErrorCode::WrongState,
                    "that agent is not available or has no free capacity",
                ),
                other => other.into(),
            })?;
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
        if let Err(e) = self.control(&id.to_string(), &unfollow).await {
            tracing::warn!(error = %e.message, "the agent's other connections were not told of the transfer");
        }
        Ok(())
    }
}
