//! Ending a chat and what follows it: the end itself (visitor, agent, close, grace timer), the
//! transcript's end message, the agent's decision and the flush job it queues.

use super::{
    now_ms, ChatError, ChatResult, Party, Service, AGENT_CLOSED, AGENT_ENDED, CUSTOMER_REJECTED,
    VISITOR_ENDED,
};
use crate::protocol::{Decision, ErrorCode, ServerFrame};
use crate::redis::{Opening, RedisError};

impl Service {
    /// Ends a chat on behalf of a visitor or an agent.
    pub async fn end(&self, party: &Party, chat: &str) -> ChatResult<()> {
        let (by, reason_active, reason_waiting) = match party {
            Party::Visitor { .. } => ("visitor", VISITOR_ENDED, CUSTOMER_REJECTED),
            Party::Agent { .. } => ("agent", AGENT_ENDED, AGENT_CLOSED),
        };
        self.end_as(chat, by, &party.actor(), reason_active, reason_waiting)
            .await
    }

    /// The one path every end takes (visitor, agent, close, grace timer).
    pub async fn end_as(
        &self,
        chat: &str,
        by: &str,
        actor: &str,
        reason_active: &str,
        reason_waiting: &str,
    ) -> ChatResult<()> {
        self.end_in_state(chat, by, actor, reason_active, reason_waiting, "")
            .await
    }

    /// `end_as`, refused (wrong state) unless the chat is in `only_state` ("" = any live state).
    pub(crate) async fn end_in_state(
        &self,
        chat: &str,
        by: &str,
        actor: &str,
        reason_active: &str,
        reason_waiting: &str,
        only_state: &str,
    ) -> ChatResult<()> {
        let now = now_ms();
        let ended = self
            .redis
            .end(
                chat,
                by,
                actor,
                reason_active,
                reason_waiting,
                now,
                self.lease(),
                self.settings.chat.decision_timeout_ms,
                only_state,
            )
            .await?;
        self.metrics.chats_ended.with_label_values(&[by]).inc();
        self.visitor_chats_changed(&ended.visitor).await;
        self.positions.forget_chat(chat);
        let leased = now + self.lease() as i64;
        self.apply_end(chat).await?;
        let _ = self.redis.timer_done(&format!("end:{chat}"), leased).await;
        if ended.previous_state != "active" {
            if ended.previous_state == "invited" {
                self.invitation_ended(chat, by, &ended).await;
            } else if !ended.agent.is_empty() {
                let reason = if by == "agent" {
                    "closed"
                } else {
                    "customer_rejected"
                };
                self.tell(
                    &format!("a:{}", ended.agent),
                    &ServerFrame::OfferRevoked {
                        chat_id: chat.into(),
                        reason: reason.into(),
                    },
                )
                .await;
            }
            self.apply_flush(chat).await?;
            let _ = self
                .redis
                .timer_done(&format!("flush:{chat}"), leased)
                .await;
        }
        self.route(&ended.queue).await;
        Ok(())
    }

    /// Transcript side of an end (idempotent): the end system message, the after-chat ticket
    /// (rating, transcript by e-mail), then the `chat.ended` webhook event (once per chat).
    pub(super) async fn apply_end(&self, chat: &str) -> ChatResult<()> {
        let r = self.redis.chat_record(chat).await?;
        if r.is_empty() {
            return Ok(());
        }
        let g = |k: &str| r.get(k).cloned().unwrap_or_default();
        let at = r
            .get("ended")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(now_ms);
        let opening = Opening::from_record(&r, "");
        self.redis
            .chat_end(chat, &g("ended_by"), &g("end_reason"), at, &opening)
            .await?;
        self.open_after_chat(chat, &r, at).await?;
        self.hook_chat_ended(chat, &r).await
    }

    /// Queues the flush job of a decided chat (after making sure its transcript is closed).
    pub(crate) async fn apply_flush(&self, chat: &str) -> ChatResult<()> {
        self.apply_end(chat).await?;
        self.redis.enqueue_flush(chat).await?;
        Ok(())
    }

    pub async fn decide(
        &self,
        party: &Party,
        chat: &str,
        decision: Decision,
        interaction: Option<i64>,
    ) -> ChatResult<ServerFrame> {
        let Party::Agent { id, .. } = party else {
            return Err(ChatError::new(ErrorCode::Forbidden, "only agents decide"));
        };
        match (decision, interaction) {
            (Decision::Keep, _) => {
                return Err(ChatError::new(
                    ErrorCode::InvalidField,
                    "decision must be create, add or trash",
                ))
            }
            (Decision::Add, None) => {
                return Err(ChatError::new(
                    ErrorCode::InvalidField,
                    "decision add needs interaction_id",
                ))
            }
            (Decision::Add, Some(iid)) => {
                let allowed = self.contact_interactions(party, chat).await?;
                if !allowed.iter().any(|i| i.id == iid) {
                    return Err(ChatError::new(
                        ErrorCode::NotFound,
                        "no such interaction for this contact",
                    ));
                }
            }
            _ => {}
        }
        let now = now_ms();
        self.redis
            .decide(
                chat,
                &id.to_string(),
                decision.as_str(),
                interaction.filter(|_| decision == Decision::Add),
                now,
                self.lease(),
            )
            .await
            .map_err(|e| match e {
                RedisError::Refused(r) if r == "already" => {
                    ChatError::new(ErrorCode::WrongState, "the chat was already decided")
                }
                other => other.into(),
            })?;
        self.apply_flush(chat).await?;
        let _ = self
            .redis
            .timer_done(&format!("flush:{chat}"), now + self.lease() as i64)
            .await;
        Ok(ServerFrame::Decided {
            chat_id: chat.into(),
            decision,
        })
    }

    /// Interactions of the contact behind `chat`, for "add to an existing interaction": the
    /// contact of the e-mail the site vouched for, else of the visitor id.
    pub async fn contact_interactions(
        &self,
        party: &Party,
        chat: &str,
    ) -> ChatResult<Vec<crate::store::Interaction>> {
        self.authorise(party, chat).await?;
        let r = self.redis.chat_record(chat).await?;
        let visitor = r.get("visitor").cloned().unwrap_or_default();
        // A typed e-mail proves nothing: only one the site vouched for names the contact.
        let email = r
            .get("email")
            .filter(|e| !e.is_empty() && super::email_verified(&r))
            .cloned();
        match self.store.contact_for(&visitor, email.as_deref()).await? {
            Some(c) => Ok(self.store.interactions_of_contact(c.id).await?),
            None => Ok(vec![]),
        }
    }
}
