//! What a supervisor (role `supervisor` or `admin`) does to chats that are not theirs: follow
//! one read-only, whisper to its agent (an internal entry the visitor never receives), and take
//! it over (the chat moves to them; the previous agent is told). Every call checks the role on
//! the node; the monitor is in `monitor`.

use super::audit::Actor;
use super::hub::{ConnId, Follower};
use super::messages::check_client_msg_id;
use super::sessions::Control;
use super::{now_ms, ChatAccess, ChatError, ChatResult, Party, Service};
use crate::protocol::{ErrorCode, ServerFrame};
use crate::redis::Append;
use serde_json::json;

/// The refusal every supervisor action gives an agent (documented in docs/protocol.md).
pub(super) fn not_a_supervisor() -> ChatError {
    ChatError::new(
        ErrorCode::Forbidden,
        "only supervisors and admins may do this",
    )
}

impl Service {
    /// Read-only access for a supervisor to any chat that is still live.
    pub(super) async fn authorise_read_only(
        &self,
        party: &Party,
        chat: &str,
    ) -> ChatResult<ChatAccess> {
        let Party::Agent { name, .. } = party else {
            return Err(not_a_supervisor());
        };
        if !party.is_supervisor() {
            return Err(not_a_supervisor());
        }
        let r = self.redis.chat_record(chat).await?;
        let Some(state) = r.get("state").cloned() else {
            return Err(ChatError::new(ErrorCode::NotFound, "no such live chat"));
        };
        self.metrics
            .supervisor_actions
            .with_label_values(&["follow"])
            .inc();
        Ok(ChatAccess {
            display_name: name.clone(),
            state,
            queue: r.get("queue").cloned().unwrap_or_default(),
            read_only: true,
        })
    }

    /// A note to the chat's agent: an internal transcript entry (event `whisper`, author
    /// `supervisor`) delivered to the chat's agent and supervisors, never to the visitor.
    pub async fn whisper(
        &self,
        party: &Party,
        chat: &str,
        client_msg_id: &str,
        text: &str,
    ) -> ChatResult<ServerFrame> {
        let Party::Agent { id, name, .. } = party else {
            return Err(not_a_supervisor());
        };
        if !party.is_supervisor() {
            return Err(not_a_supervisor());
        }
        check_client_msg_id(client_msg_id)?;
        self.check_text(text)?;
        let r = self.redis.chat_record(chat).await?;
        match r.get("state").map(String::as_str) {
            None => return Err(ChatError::new(ErrorCode::NotFound, "no such live chat")),
            Some("active") => {}
            Some(_) => {
                return Err(ChatError::new(
                    ErrorCode::WrongState,
                    "whispers go to running chats only",
                ))
            }
        }
        if r.get("agent") == Some(&id.to_string()) {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                "this chat is yours: write to the visitor instead",
            ));
        }
        let actor = id.to_string();
        let frame = self
            .append(
                chat,
                Append {
                    role: "supervisor",
                    actor: &actor,
                    name,
                    client_msg_id,
                    text,
                    event: "whisper",
                    ..Default::default()
                },
            )
            .await?;
        self.metrics
            .supervisor_actions
            .with_label_values(&["whisper"])
            .inc();
        Ok(frame)
    }

    /// Moves a running chat to the supervisor (one script, like a transfer): the transcript
    /// says they joined, the previous agent's connections stop following it and are told
    /// (`chat_unfollowed`, reason `taken_over`), the action is audit-logged. This connection
    /// follows the chat with full access from here.
    pub async fn take_over(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        chat: &str,
    ) -> ChatResult<(ChatAccess, ServerFrame)> {
        let Party::Agent { id, name, .. } = party else {
            return Err(not_a_supervisor());
        };
        if !party.is_supervisor() {
            return Err(not_a_supervisor());
        }
        let now = now_ms();
        let lease = self.lease();
        let me = id.to_string();
        let (previous, queue) = self.redis.take_over(chat, &me, now, lease).await?;
        self.apply_join(chat, &me, name, now).await?;
        let _ = self
            .redis
            .timer_done(&format!("join:{chat}"), now + lease as i64)
            .await;
        self.hub.follow(&self.chat_channel(chat), conn, f).await?;
        let unfollow = Control::Unfollow {
            chat_id: chat.to_string(),
            reason: "taken_over".into(),
        };
        if let Err(e) = self.control(&previous, &unfollow).await {
            tracing::warn!(error = %e.message, "the previous agent was not told of the take-over");
        }
        self.metrics
            .supervisor_actions
            .with_label_values(&["take_over"])
            .inc();
        let previous_name = self.agent_display_name(&previous).await;
        let detail = json!({ "queue": queue, "from_agent": previous.parse::<i64>().ok() });
        let username = match self.store.agent(*id).await {
            Ok(Some(a)) => a.username,
            _ => name.clone(),
        };
        if let Err(e) = self
            .audit(
                &Actor::agent(*id, &username),
                "chat.take_over",
                &format!("chat:{chat}"),
                detail,
            )
            .await
        {
            // The chat has moved already; a missing audit row is logged by `audit`.
            tracing::warn!(error = %e.message, "take-over done but not audit-logged");
        }
        let access = ChatAccess {
            display_name: name.clone(),
            state: "active".into(),
            queue,
            read_only: false,
        };
        Ok((
            access,
            ServerFrame::ChatAssigned {
                chat_id: chat.into(),
                from_agent_name: previous_name,
                note: String::new(),
            },
        ))
    }
}
