//! Proactive chat: an agent invites a visitor on the site. The invitation is a chat in state
//! `invited`, held by the inviting agent (it counts against the agent's capacity) until the
//! visitor accepts (the chat becomes active with that agent, like an accepted offer), declines,
//! or the `invite:ID` timer fires; a decline or an expiry ends it like a request that never
//! had an agent, so it still produces its Message (decision "keep").

use super::hub::{frames_for_entry, ConnId, Follower, LiveEntry, Out, Seq};
use super::{clean_optional, identity, now_ms, ChatAccess, ChatError, ChatResult, Party, Service};
use crate::protocol::{ErrorCode, ServerFrame};
use crate::redis::{Ended, RedisError};

/// End reasons written into the transcript.
pub const INVITATION_DECLINED: &str = "Invitation declined";
pub const INVITATION_EXPIRED: &str = "Invitation expired";

impl Service {
    pub async fn invite(
        &self,
        party: &Party,
        visitor: &str,
        message: Option<String>,
    ) -> ChatResult<()> {
        let Party::Agent {
            id,
            name,
            max_chats,
            ..
        } = party
        else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only agents invite visitors",
            ));
        };
        if visitor.is_empty() || visitor.len() > 64 || visitor.chars().any(char::is_control) {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "visitor_id must be 1-64 characters",
            ));
        }
        let message = clean_optional(
            message,
            self.settings.limits.max_message_chars,
            "message",
            true,
        )?
        .unwrap_or_default();
        let chat = identity::new_id();
        let now = now_ms();
        let invited = self
            .redis
            .invite(
                &chat,
                visitor,
                &id.to_string(),
                &self.settings.chat.default_queue,
                now,
                self.settings.chat.invitation_timeout_ms,
                &message,
                *max_chats,
            )
            .await
            .map_err(|e| match e {
                RedisError::Refused(r) if r == "gone" => {
                    ChatError::new(ErrorCode::NotFound, "the visitor has left the site")
                }
                RedisError::Refused(r) if r == "taken" => {
                    ChatError::new(ErrorCode::WrongState, "visitor already invited or chatting")
                }
                RedisError::Refused(r) if r == "unavailable" => ChatError::new(
                    ErrorCode::WrongState,
                    "you are at your limit of concurrent chats",
                ),
                other => other.into(),
            })?;
        self.metrics.invitations.with_label_values(&["sent"]).inc();
        if !message.is_empty() {
            // Cross-slot follow-up; if it is lost the chat simply opens without it.
            if let Err(e) = self
                .redis
                .chat_invite_message(&chat, &id.to_string(), name, &message, now)
                .await
            {
                self.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "invitation message not written to the transcript");
            }
        }
        self.tell(
            &format!("v:{visitor}"),
            &ServerFrame::Invitation {
                chat_id: chat,
                agent_name: name.clone(),
                message,
                expires_at: invited.expires_at,
            },
        )
        .await;
        self.visitor_chats_changed(visitor).await;
        Ok(())
    }

    /// Shows a pending invitation again (the visitor loaded another page).
    pub(crate) async fn retell_invitation(&self, visitor: &str, chat: &str) {
        let Ok(r) = self.redis.chat_record(chat).await else {
            return;
        };
        let g = |k: &str| r.get(k).cloned().unwrap_or_default();
        if g("state") != "invited" || g("visitor") != visitor {
            return;
        }
        let agent_name = self.agent_display_name(&g("agent")).await;
        self.tell(
            &format!("v:{visitor}"),
            &ServerFrame::Invitation {
                chat_id: chat.to_string(),
                agent_name,
                message: g("invitation"),
                expires_at: g("expires").parse().unwrap_or(0),
            },
        )
        .await;
    }

    pub async fn accept_invitation(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        chat: &str,
    ) -> ChatResult<ChatAccess> {
        let Party::Visitor { id: visitor } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only visitors accept invitations",
            ));
        };
        let now = now_ms();
        // Only this visitor's invitation may be followed (checked again by the script).
        self.authorise(party, chat)
            .await
            .map_err(|e| match e.code {
                ErrorCode::NotFound => ChatError::new(ErrorCode::NotFound, "no such invitation"),
                ErrorCode::Forbidden => ChatError::new(ErrorCode::Forbidden, "not your invitation"),
                _ => e,
            })?;
        // Follow before the script so the join entry arrives live.
        let channel = self.chat_channel(chat);
        let was_following = self.hub.is_following(&channel, conn);
        self.hub.follow(&channel, conn, f.clone()).await?;
        let accepted = match self
            .redis
            .accept_invitation(chat, visitor, now, self.lease())
            .await
        {
            Ok(a) => a,
            Err(e) => {
                if !was_following {
                    self.hub.unfollow(&channel, conn).await;
                }
                return Err(match e {
                    RedisError::Refused(r) if r == "not_found" => {
                        ChatError::new(ErrorCode::NotFound, "no such invitation")
                    }
                    RedisError::Refused(r) if r == "forbidden" => {
                        ChatError::new(ErrorCode::Forbidden, "not your invitation")
                    }
                    RedisError::Refused(r) if r == "wrong_state" => {
                        ChatError::new(ErrorCode::WrongState, "the invitation is no longer pending")
                    }
                    other => other.into(),
                });
            }
        };
        // The invitation message was written before this connection followed the chat: hand it
        // over first, so the visitor sees the transcript in order (the connection drops any
        // entry it already has).
        for entry in self.redis.entries_after(chat, "", 20).await? {
            let Some(seq) = Seq::parse(&entry.seq) else {
                continue;
            };
            let out = Out::Entry(std::sync::Arc::new(LiveEntry {
                seq,
                // Read from the stream itself: nothing before it can be missing.
                generation: 0,
                internal: entry.is_internal(),
                frames: frames_for_entry(chat, entry),
            }));
            f.push(out);
        }
        // The store names the agent: Redis knows a name only once the agent set a status.
        let agent_name = self.agent_display_name(&accepted.agent).await;
        self.apply_join(chat, &accepted.agent, &agent_name, now)
            .await?;
        let _ = self
            .redis
            .timer_done(&format!("join:{chat}"), now + self.lease() as i64)
            .await;
        if accepted.fresh {
            self.metrics
                .invitations
                .with_label_values(&["accepted"])
                .inc();
            self.tell(
                &format!("a:{}", accepted.agent),
                &ServerFrame::InvitationResult {
                    chat_id: chat.into(),
                    visitor_id: visitor.clone(),
                    result: "accepted".into(),
                },
            )
            .await;
        }
        let mut access = self.authorise(party, chat).await?;
        access.state = "active".into();
        access.queue = accepted.queue;
        Ok(access)
    }

    pub async fn decline_invitation(&self, party: &Party, chat: &str) -> ChatResult<()> {
        let Party::Visitor { id } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only visitors decline invitations",
            ));
        };
        self.end_in_state(
            chat,
            "visitor",
            id,
            INVITATION_DECLINED,
            INVITATION_DECLINED,
            "invited",
        )
        .await
        .map_err(|e| match e.code {
            ErrorCode::WrongState => {
                ChatError::new(ErrorCode::WrongState, "the invitation is no longer pending")
            }
            _ => e,
        })
    }

    /// The `invite:ID` timer: the visitor did not answer in time. Idempotent.
    pub async fn invitation_expired(&self, chat: &str) -> ChatResult<()> {
        match self
            .end_in_state(
                chat,
                "system",
                "",
                INVITATION_EXPIRED,
                INVITATION_EXPIRED,
                "invited",
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if matches!(e.code, ErrorCode::WrongState | ErrorCode::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// An invitation ended without being accepted (declined, expired, the visitor left, the
    /// agent withdrew it): the inviting agent is told what became of it, and the visitor, when
    /// someone else ended it, sees it go.
    pub(crate) async fn invitation_ended(&self, chat: &str, by: &str, ended: &Ended) {
        let result = match ended.reason.as_str() {
            INVITATION_DECLINED => "declined",
            INVITATION_EXPIRED => "expired",
            _ => "gone",
        };
        self.metrics.invitations.with_label_values(&[result]).inc();
        if !ended.agent.is_empty() {
            self.tell(
                &format!("a:{}", ended.agent),
                &ServerFrame::InvitationResult {
                    chat_id: chat.into(),
                    visitor_id: ended.visitor.clone(),
                    result: result.into(),
                },
            )
            .await;
        }
        if by != "visitor" && !ended.visitor.is_empty() {
            self.tell(
                &format!("v:{}", ended.visitor),
                &ServerFrame::ChatEnded {
                    chat_id: chat.into(),
                    by: by.into(),
                    reason: ended.reason.clone(),
                },
            )
            .await;
        }
    }
}
