//! Routing a chat to an agent: a visitor's request, the agent's status, routing passes and the
//! offers they make, accept (with the agent joining the transcript), deny and close. Pairs with
//! `redis::routing`.

use super::hub::{ConnId, Follower};
use super::{
    clean_optional, identity, now_ms, plausible_email, ChatAccess, ChatError, ChatRequest,
    ChatResult, Party, Service,
};
use crate::config::valid_name;
use crate::protocol::{AgentStatus, ErrorCode, ServerFrame};
use crate::redis::{Offer, Opening};

/// How an agent takes a chat: accepting its offer (`accept.lua`), or picking it from the
/// Waiting list (`pick.lua`).
#[derive(Clone, Copy)]
pub(super) enum Take {
    Offer,
    Waiting,
}

impl Service {
    pub async fn request_chat(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        req: ChatRequest,
    ) -> ChatResult<(ChatAccess, ServerFrame, String)> {
        let ChatRequest {
            name,
            email,
            question,
            queue,
        } = req;
        let Party::Visitor { id: visitor } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only visitors request chats",
            ));
        };
        let name = clean_optional(name, 100, "name", false)?;
        let email = clean_optional(email, 254, "email", false)?;
        if let Some(e) = &email {
            if !plausible_email(e) {
                return Err(ChatError::new(
                    ErrorCode::InvalidField,
                    "email is not a valid address",
                ));
            }
        }
        let question = clean_optional(
            question,
            self.settings.limits.max_message_chars,
            "question",
            true,
        )?;
        let queue = queue.unwrap_or_else(|| self.settings.chat.default_queue.clone());
        if !valid_name(&queue) {
            return Err(ChatError::new(
                ErrorCode::InvalidField,
                "queue must be 1-64 of a-z, 0-9, '-', '_'",
            ));
        }
        if !self.store.queue_exists(&queue).await? {
            return Err(ChatError::new(
                ErrorCode::NotFound,
                format!("no queue named {queue}"),
            ));
        }
        let chat_id = identity::new_id();
        let now = now_ms();
        // Follow the new chat before it exists anywhere: any node may route it and an agent
        // may accept it before this call returns, and the visitor must see that live.
        let channel = self.chat_channel(&chat_id);
        self.hub.follow(&channel, conn, f.clone()).await?;
        let timer = self
            .metrics
            .redis_latency
            .with_label_values(&["request"])
            .start_timer();
        let r = match self
            .redis
            .request(
                &chat_id,
                visitor,
                &queue,
                name.as_deref().unwrap_or(""),
                email.as_deref().unwrap_or(""),
                question.as_deref().unwrap_or(""),
                now,
                self.settings.chat.offer_timeout_ms,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.hub.unfollow(&channel, conn).await;
                return Err(e.into());
            }
        };
        timer.observe_duration();
        if r.chat_id != chat_id {
            // The visitor already has a live chat: follow that one instead.
            self.hub.unfollow(&channel, conn).await;
        }
        if r.state == "active" {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                format!("chat {} is already running; resume it", r.chat_id),
            ));
        }
        if r.state == "invited" {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                format!(
                    "invitation {} is pending; accept or decline it first",
                    r.chat_id
                ),
            ));
        }
        if r.created {
            self.metrics.chats_requested.inc();
            // Shown in the site-visitors list as typed: it links to no contact.
            self.visitor_typed(visitor, name.as_deref(), email.as_deref())
                .await;
        }
        self.hub
            .follow(&self.chat_channel(&r.chat_id), conn, f)
            .await?;
        self.positions.watch(&r.queue, &r.chat_id, conn, r.position);
        // The request ran its queue's routing pass itself: tell the agents it offered to.
        self.tell_offers(r.offers).await;
        let position = self.positions.current(&r.chat_id).unwrap_or(r.position);
        let access = ChatAccess {
            display_name: name.unwrap_or_else(|| "Visitor".into()),
            state: r.state.clone(),
            queue: r.queue.clone(),
            read_only: false,
        };
        Ok((
            access,
            ServerFrame::Queued {
                chat_id: r.chat_id.clone(),
                estimated_wait_ms: self.estimated_wait(&r.queue).await,
                queue: r.queue,
                position,
            },
            r.chat_id,
        ))
    }

    /// Sets availability; every connection of the agent is told through its channel. Name,
    /// capacity and queues come from the agent's record in the store (an admin may have
    /// changed them since the connection opened); from the connection only when the store
    /// cannot be read.
    pub async fn set_status(&self, party: &Party, status: AgentStatus) -> ChatResult<()> {
        let Party::Agent {
            id,
            name,
            max_chats,
            queues,
            ..
        } = party
        else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only agents have a status",
            ));
        };
        let (name, max_chats, queues) = match self.store.agent(*id).await {
            Ok(Some(a)) if !a.disabled => (a.display_name, a.max_chats, a.queues),
            Ok(_) => {
                return Err(ChatError::new(
                    ErrorCode::Forbidden,
                    "this agent is disabled or deleted",
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "agent record unreadable; status set with the connection's settings");
                (name.clone(), *max_chats, queues.clone())
            }
        };
        self.redis
            .set_agent_status(
                &id.to_string(),
                status.as_str(),
                max_chats,
                &queues.join(","),
                &name,
                now_ms(),
            )
            .await?;
        if status == AgentStatus::Available {
            for q in &queues {
                self.route(q).await;
            }
        }
        let frame = ServerFrame::Status {
            status,
            reason: None,
        };
        self.tell(&party.user_key(), &frame).await;
        Ok(())
    }

    /// Offers the queue's waiting chats to its available agents (a pass looks at up to
    /// `redis::ROUTE_BATCH` of them). Every request runs one; passes are not folded together
    /// like position refreshes: measured, folding made each request wait for the pass before
    /// it and doubled request-to-offer times in an 8,000-request burst.
    pub async fn route(&self, queue: &str) {
        let offers = {
            let _timer = self
                .metrics
                .redis_latency
                .with_label_values(&["route"])
                .start_timer();
            match self
                .redis
                .route(queue, now_ms(), self.settings.chat.offer_timeout_ms)
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    self.metrics.redis_errors.inc();
                    tracing::warn!(queue, error = %e, "routing failed; the sweep retries");
                    return;
                }
            }
        };
        self.tell_offers(offers).await;
        // Positions: the script published "queue changed" when it offered anything, and every
        // node's listener refreshes its own waiting visitors from that (coalesced), off this path.
    }

    /// Sends fresh offers to their agents, on whichever node each agent is connected. One
    /// routing pass may offer dozens of chats: they are told side by side (the commands
    /// pipeline on the pooled connections) rather than one after another, which queued the
    /// last offers of a burst behind the first.
    async fn tell_offers(&self, offers: Vec<Offer>) {
        futures_util::future::join_all(offers.into_iter().map(|o| self.tell_offer(o))).await;
    }

    async fn tell_offer(&self, o: Offer) {
        self.metrics.offers.inc();
        if o.created > 0 {
            let waited = (now_ms() - o.created).max(0) as f64 / 1000.0;
            self.metrics.request_to_offer.observe(waited);
        }
        let agent = format!("a:{}", o.agent);
        self.tell(&agent, &self.offer_frame(o)).await;
    }

    /// The frame an agent sees for an offer; it expires `chat.offer_timeout_ms` after it was made
    /// (an offer without a time, which a routing record never lacks, counts from now).
    pub(super) fn offer_frame(&self, o: Offer) -> ServerFrame {
        let offered_at = if o.offered_at > 0 {
            o.offered_at
        } else {
            now_ms()
        };
        ServerFrame::Offer {
            chat_id: o.chat,
            queue: o.queue,
            name: o.name,
            email: o.email,
            email_verified: o.email_verified,
            question: o.question,
            expires_at: offered_at + self.settings.chat.offer_timeout_ms as i64,
        }
    }

    pub async fn accept(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        chat: &str,
    ) -> ChatResult<ChatAccess> {
        self.take_chat(party, conn, f, chat, Take::Offer).await
    }

    /// An agent takes a chat, as `how` says; the transcript side follows.
    pub(super) async fn take_chat(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        chat: &str,
        how: Take,
    ) -> ChatResult<ChatAccess> {
        let Party::Agent { id, name, .. } = party else {
            let only = match how {
                Take::Offer => "only agents accept chats",
                Take::Waiting => "only agents pick requests",
            };
            return Err(ChatError::new(ErrorCode::Forbidden, only));
        };
        let now = now_ms();
        let aid = id.to_string();
        // The script is the authorisation (the offer is this agent's, or the request is still
        // waiting in one of its queues): the connection follows the chat only once it has
        // succeeded, so a refused take relays nothing of someone else's chat. Following before
        // the transcript's join still shows the join entry live.
        let a = match how {
            Take::Offer => self.redis.accept(chat, &aid, now, self.lease()).await?,
            Take::Waiting => self.redis.pick(chat, &aid, now, self.lease()).await?,
        };
        self.hub.follow(&self.chat_channel(chat), conn, f).await?;
        if a.fresh {
            self.metrics
                .request_to_accept
                .observe((now - a.created).max(0) as f64 / 1000.0);
        }
        let opening = Opening::from_accepted(&a, name);
        self.join_transcript(chat, &aid, &opening, now).await?;
        let _ = self
            .redis
            .timer_done(&format!("join:{chat}"), now + self.lease() as i64)
            .await;
        self.tell(
            &party.user_key(),
            &ServerFrame::OfferRevoked {
                chat_id: chat.into(),
                reason: "accepted".into(),
            },
        )
        .await;
        Ok(ChatAccess {
            display_name: name.clone(),
            state: "active".into(),
            queue: a.queue,
            read_only: false,
        })
    }

    /// Transcript side of an accept (idempotent): the question, then "X joined the chat".
    pub(crate) async fn apply_join(
        &self,
        chat: &str,
        agent: &str,
        agent_name: &str,
        at: i64,
    ) -> ChatResult<()> {
        let r = self.redis.chat_record(chat).await?;
        let opening = Opening::from_record(&r, agent_name);
        self.join_transcript(chat, agent, &opening, at).await
    }

    /// Writes the question and "X joined the chat" to the transcript (idempotent).
    async fn join_transcript(
        &self,
        chat: &str,
        agent: &str,
        opening: &Opening,
        at: i64,
    ) -> ChatResult<()> {
        let joined = format!("{} joined the chat", opening.agent_name);
        self.redis
            .chat_join(chat, agent, &joined, at, opening)
            .await?;
        Ok(())
    }

    /// Refuses an offer; every connection of the agent is told (`offer_revoked`, `denied`).
    pub async fn deny(&self, party: &Party, chat: &str) -> ChatResult<()> {
        let Party::Agent { id, .. } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only agents deny chats",
            ));
        };
        let c = &self.settings.chat;
        let queue = self
            .redis
            .offer_missed(
                chat,
                &id.to_string(),
                now_ms(),
                c.offer_timeout_ms,
                false,
                c.deny_reset_ms,
            )
            .await?
            .queue;
        self.metrics.denials.inc();
        self.tell(
            &party.user_key(),
            &ServerFrame::OfferRevoked {
                chat_id: chat.into(),
                reason: "denied".into(),
            },
        )
        .await;
        self.route(&queue).await;
        Ok(())
    }

    /// Ends a request on offer to this agent without talking. Only for offers: a running chat
    /// is ended with `end`.
    pub async fn close(&self, party: &Party, chat: &str) -> ChatResult<()> {
        let access = self.authorise(party, chat).await?;
        if access.state != "offered" {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                "close applies to a chat on offer; end a running chat with end",
            ));
        }
        self.end(party, chat).await
    }
}
