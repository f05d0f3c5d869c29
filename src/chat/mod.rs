//! The chat domain: what visitors and agents can do, the follow-ups that complete each
//! transition (see the outbox timers in `docs/design-redis.md`), routing, queue positions,
//! timers, presence and the flush. Connections call [`Service`]; it speaks to Redis and the store.

pub mod canned;
pub mod flush;
pub mod gauges;
pub mod hub;
pub mod identity;
mod invitations;
pub mod listener;
mod messages;
mod positions;
mod presence;
pub mod resync;
mod rounds;
pub mod timers;
mod transfer;
pub mod visitors;

use crate::config::{valid_name, Settings};
use crate::metrics::Metrics;
use crate::protocol::{AgentStatus, ChatSummary, Decision, Entry, ErrorCode, ServerFrame};
use crate::redis::{Offer, Opening, RedisError, RedisLayer};
use crate::store::{FileStore, Store, StoreError};
use hub::{ConnId, Encoded, Follower, Hub, Out};
use identity::Tokens;
use std::sync::Arc;

pub use presence::Presence;

/// System texts written into transcripts.
pub const VISITOR_CLOSED_BROWSER: &str = "Visitor has closed the browser";
pub const CUSTOMER_REJECTED: &str = "Customer Rejected";
pub const VISITOR_ENDED: &str = "Visitor ended the chat";
pub const AGENT_ENDED: &str = "Agent ended the chat";
pub const AGENT_CLOSED: &str = "Closed by agent";

/// A refused operation: the wire code and a message for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatError {
    pub code: ErrorCode,
    pub message: String,
}

impl ChatError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ChatError {
        ChatError {
            code,
            message: message.into(),
        }
    }
}

impl From<RedisError> for ChatError {
    fn from(e: RedisError) -> ChatError {
        match e {
            RedisError::Refused(r) => match r.as_str() {
                "forbidden" => ChatError::new(ErrorCode::Forbidden, "not your chat"),
                "not_found" => ChatError::new(ErrorCode::NotFound, "no such chat"),
                "already" => ChatError::new(ErrorCode::WrongState, "the chat has already ended"),
                _ => ChatError::new(
                    ErrorCode::WrongState,
                    "the chat is not in a state that allows this",
                ),
            },
            other => {
                tracing::warn!(error = %other, "redis failure");
                ChatError::new(ErrorCode::Unavailable, "redis is unavailable, retry")
            }
        }
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> ChatError {
        match e {
            StoreError::NotFound => ChatError::new(ErrorCode::NotFound, "not found"),
            StoreError::Invalid(m) => ChatError::new(ErrorCode::InvalidField, m),
            StoreError::Conflict(m) => ChatError::new(ErrorCode::WrongState, m),
            other => {
                tracing::warn!(error = %other, "store failure");
                ChatError::new(ErrorCode::Unavailable, "the store is unavailable, retry")
            }
        }
    }
}

pub type ChatResult<T> = Result<T, ChatError>;

/// Who a connection belongs to, as the domain needs it.
#[derive(Debug, Clone)]
pub enum Party {
    Visitor {
        id: String,
    },
    Agent {
        id: i64,
        name: String,
        max_chats: i64,
        queues: Vec<String>,
    },
}

impl Party {
    pub fn role(&self) -> &'static str {
        match self {
            Party::Visitor { .. } => "visitor",
            Party::Agent { .. } => "agent",
        }
    }
    pub fn actor(&self) -> String {
        match self {
            Party::Visitor { id } => id.clone(),
            Party::Agent { id, .. } => id.to_string(),
        }
    }
    /// The party's own channel key (`v:ID` / `a:ID`).
    pub fn user_key(&self) -> String {
        match self {
            Party::Visitor { id } => format!("v:{id}"),
            Party::Agent { id, .. } => format!("a:{id}"),
        }
    }
}

/// The pre-chat form of a visitor's request.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    pub name: Option<String>,
    pub email: Option<String>,
    pub question: Option<String>,
    pub queue: Option<String>,
}

/// Where a connection comes from, as the edge saw it.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's IP: the peer, or X-Forwarded-For when the peer is a trusted proxy.
    pub ip: String,
    /// ISO country code from the configured trusted header, when set.
    pub country: String,
}

/// What a connection may see of one chat once authorised.
#[derive(Debug, Clone)]
pub struct ChatAccess {
    /// The name this party writes under in the transcript.
    pub display_name: String,
    pub state: String,
    pub queue: String,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct Service {
    pub settings: Arc<Settings>,
    pub redis: RedisLayer,
    pub store: Store,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub tokens: Tokens,
    pub node: String,
    pub presence: Presence,
    positions: positions::Positions,
    /// Position refreshes, folded per queue during bursts.
    refresh_rounds: rounds::Rounds,
    /// The site-visitors list: this node's watching agents and its batch of changes.
    pub visitors: visitors::SiteVisitors,
    /// Set when the node drains: readiness fails so the load balancer stops sending traffic.
    pub draining: std::sync::atomic::AtomicBool,
    /// Chat file attachments (directory or S3), used by the files API.
    pub files: FileStore,
}

impl Service {
    pub fn new(
        settings: Arc<Settings>,
        redis: RedisLayer,
        store: Store,
        files: FileStore,
        metrics: Arc<Metrics>,
        node: String,
    ) -> Arc<Service> {
        let hub = Arc::new(Hub::new(redis.clone(), metrics.clone()));
        let tokens = Tokens::new(
            &settings.auth.token_secret,
            settings.auth.visitor_token_ttl_seconds,
            settings.auth.agent_session_ttl_seconds,
        );
        Arc::new(Service {
            presence: Presence::new(&settings),
            positions: positions::Positions::default(),
            refresh_rounds: rounds::Rounds::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
            visitors: visitors::SiteVisitors::new(&settings),
            settings,
            redis,
            store,
            files,
            hub,
            metrics,
            tokens,
            node,
        })
    }

    fn lease(&self) -> u64 {
        self.settings.chat.timer_lease_ms
    }

    pub(crate) fn chat_channel(&self, chat: &str) -> String {
        self.redis.keys.chat_channel(chat)
    }

    /// Sends a frame to every connection of one agent or visitor, on any node.
    pub(crate) async fn tell(&self, user_key: &str, frame: &ServerFrame) {
        let payload = serde_json::to_string(frame).expect("server frames serialise");
        if let Err(e) = self
            .redis
            .publish(&self.redis.keys.user_channel(user_key), payload)
            .await
        {
            self.metrics.redis_errors.inc();
            tracing::warn!(error = %e, "could not publish to a user channel");
        }
    }

    // ---- connection lifecycle ----

    /// Registers a new connection: follows its own channel and marks it present.
    pub async fn connected(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
    ) -> ChatResult<Vec<ServerFrame>> {
        self.hub
            .follow(&self.redis.keys.user_channel(&party.user_key()), conn, f)
            .await?;
        self.presence.arrive(self, party).await;
        let (chats, offers) = self.live_chats(party).await?;
        let mut frames = vec![ServerFrame::Welcome {
            version: crate::protocol::PROTOCOL_VERSION,
            role: party.role().into(),
            id: party.actor(),
            node: self.node.clone(),
            chats,
            ping_interval_ms: self.settings.limits.ping_interval_ms,
        }];
        if let Party::Agent { id, .. } = party {
            frames.push(ServerFrame::Status {
                status: self.agent_status(*id).await?,
            });
            // An offer made while the agent had no connection is shown again.
            frames.extend(offers);
        }
        Ok(frames)
    }

    /// Unregisters a connection; `followed` are the chats it followed.
    pub async fn disconnected(&self, party: &Party, conn: ConnId, followed: Vec<String>) {
        for chat in followed {
            self.positions.forget_conn(&chat, conn);
            self.hub.unfollow(&self.chat_channel(&chat), conn).await;
        }
        self.hub
            .unfollow(&self.redis.keys.user_channel(&party.user_key()), conn)
            .await;
        self.presence.leave(self, party).await;
    }

    /// The party's live chats, and for an agent the offer frames of those on offer to it.
    async fn live_chats(&self, party: &Party) -> ChatResult<(Vec<ChatSummary>, Vec<ServerFrame>)> {
        let ids = match party {
            Party::Visitor { id } => self.redis.visitor_chats(id).await?,
            Party::Agent { id, .. } => self.redis.agent_chats(&id.to_string()).await?,
        };
        let mut out = Vec::new();
        let mut offers = Vec::new();
        for chat_id in ids {
            let r = self.redis.chat_record(&chat_id).await?;
            let Some(state) = r.get("state") else {
                continue;
            };
            if state == "decided" {
                continue;
            }
            // An invitation is not a chat yet for its visitor (it comes as `invitation`).
            if state == "invited" && matches!(party, Party::Visitor { .. }) {
                continue;
            }
            if state == "offered" {
                offers.push(self.offer_frame(Offer::from_record(&chat_id, &r)));
            }
            out.push(ChatSummary {
                state: state.clone(),
                queue: r.get("queue").cloned().unwrap_or_default(),
                agent_id: r.get("agent").cloned().unwrap_or_default(),
                chat_id,
            });
        }
        Ok((out, offers))
    }

    /// The agent's current status as stored in Redis (offline when unknown).
    pub async fn agent_status(&self, agent: i64) -> ChatResult<AgentStatus> {
        let r = self.redis.agent_record(&agent.to_string()).await?;
        Ok(r.get("status")
            .and_then(|s| AgentStatus::parse(s))
            .unwrap_or(AgentStatus::Offline))
    }

    // ---- visitor ----

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
            self.visitor_identified(visitor, name.as_deref(), email.as_deref())
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
        };
        Ok((
            access,
            ServerFrame::Queued {
                chat_id: r.chat_id.clone(),
                queue: r.queue,
                position,
            },
            r.chat_id,
        ))
    }

    // ---- both sides ----

    /// Authorises `party` for `chat` from its routing record.
    pub async fn authorise(&self, party: &Party, chat: &str) -> ChatResult<ChatAccess> {
        let r = self.redis.chat_record(chat).await?;
        let Some(state) = r.get("state").cloned() else {
            return Err(ChatError::new(ErrorCode::NotFound, "no such live chat"));
        };
        let field = |k: &str| r.get(k).map(String::as_str).unwrap_or("");
        let display_name = match party {
            Party::Visitor { id } => {
                if field("visitor") != id {
                    return Err(ChatError::new(ErrorCode::Forbidden, "not your chat"));
                }
                let n = field("name");
                if n.is_empty() {
                    "Visitor".to_string()
                } else {
                    n.to_string()
                }
            }
            Party::Agent { id, name, .. } => {
                let me = id.to_string();
                if field("agent") != me && field("offered_to") != me {
                    return Err(ChatError::new(
                        ErrorCode::Forbidden,
                        "this chat is not assigned to you",
                    ));
                }
                name.clone()
            }
        };
        Ok(ChatAccess {
            display_name,
            state,
            queue: field("queue").to_string(),
        })
    }

    /// Follows a chat and returns what came after `last_seq`. The caller delivers the
    /// returned entries, then live ones with a greater sequence.
    pub async fn resume(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        chat: &str,
        last_seq: &str,
    ) -> ChatResult<(ChatAccess, Vec<Entry>)> {
        if !last_seq.is_empty() && hub::Seq::parse(last_seq).is_none() {
            return Err(ChatError::new(
                ErrorCode::BadSequence,
                "last_seq must be a sequence number like 1700000000000-0",
            ));
        }
        let access = self.authorise(party, chat).await?;
        if access.state == "invited" && matches!(party, Party::Visitor { .. }) {
            return Err(ChatError::new(
                ErrorCode::WrongState,
                "accept the invitation first",
            ));
        }
        if !last_seq.is_empty() {
            let last = self.redis.last_seq(chat).await?;
            if hub::Seq::parse(&last).unwrap_or_default()
                < hub::Seq::parse(last_seq).unwrap_or_default()
            {
                return Err(ChatError::new(
                    ErrorCode::BadSequence,
                    "last_seq is ahead of the chat",
                ));
            }
        }
        // Subscribe before reading history: anything appended meanwhile arrives live and the
        // connection drops what the replay already delivered.
        self.hub.follow(&self.chat_channel(chat), conn, f).await?;
        if access.state == "queued" || access.state == "offered" {
            if let Party::Visitor { .. } = party {
                self.positions.watch(&access.queue, chat, conn, 0);
                self.queue_changed(&access.queue).await;
            }
        }
        let entries = self.redis.entries_all_after(chat, last_seq).await?;
        Ok((access, entries))
    }

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

    /// Transcript side of an end (idempotent): the end system message.
    async fn apply_end(&self, chat: &str) -> ChatResult<()> {
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
        Ok(())
    }

    /// Queues the flush job of a decided chat (after making sure its transcript is closed).
    pub(crate) async fn apply_flush(&self, chat: &str) -> ChatResult<()> {
        self.apply_end(chat).await?;
        self.redis.enqueue_flush(chat).await?;
        Ok(())
    }

    // ---- agent ----

    /// Sets availability; every connection of the agent is told through its channel.
    pub async fn set_status(&self, party: &Party, status: AgentStatus) -> ChatResult<()> {
        let Party::Agent {
            id,
            name,
            max_chats,
            queues,
        } = party
        else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only agents have a status",
            ));
        };
        self.redis
            .set_agent_status(
                &id.to_string(),
                status.as_str(),
                *max_chats,
                &queues.join(","),
                name,
                now_ms(),
            )
            .await?;
        if status == AgentStatus::Available {
            for q in queues {
                self.route(q).await;
            }
        }
        let frame = ServerFrame::Status { status };
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
    fn offer_frame(&self, o: Offer) -> ServerFrame {
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
        let Party::Agent { id, name, .. } = party else {
            return Err(ChatError::new(
                ErrorCode::Forbidden,
                "only agents accept chats",
            ));
        };
        let now = now_ms();
        // Follow first so the join entry arrives live.
        let channel = self.chat_channel(chat);
        let was_following = self.hub.is_following(&channel, conn);
        self.hub.follow(&channel, conn, f).await?;
        let a = match self
            .redis
            .accept(chat, &id.to_string(), now, self.lease())
            .await
        {
            Ok(a) => a,
            Err(e) => {
                if !was_following {
                    self.hub.unfollow(&channel, conn).await;
                }
                return Err(e.into());
            }
        };
        if a.fresh {
            self.metrics
                .request_to_accept
                .observe((now - a.created).max(0) as f64 / 1000.0);
        }
        let opening = Opening::from_accepted(&a, name);
        self.join_transcript(chat, &id.to_string(), &opening, now)
            .await?;
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
        let (queue, _) = self
            .redis
            .requeue(
                chat,
                &id.to_string(),
                now_ms(),
                self.settings.chat.offer_timeout_ms,
            )
            .await?;
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

    /// Interactions of the contact behind `chat`, for "add to an existing interaction".
    pub async fn contact_interactions(
        &self,
        party: &Party,
        chat: &str,
    ) -> ChatResult<Vec<crate::store::Interaction>> {
        self.authorise(party, chat).await?;
        let r = self.redis.chat_record(chat).await?;
        let visitor = r.get("visitor").cloned().unwrap_or_default();
        let email = r.get("email").filter(|e| !e.is_empty()).cloned();
        match self.store.contact_for(&visitor, email.as_deref()).await? {
            Some(c) => Ok(self.store.interactions_of_contact(c.id).await?),
            None => Ok(vec![]),
        }
    }

    // ---- queue positions ----

    async fn refresh_positions(&self, queue: &str) {
        if !self.positions.has_watchers(queue) {
            return;
        }
        let members = match self.redis.queue_members(queue).await {
            Ok(m) => m,
            Err(_) => return,
        };
        for (chat, position) in self.positions.update(queue, &members) {
            let frame = Arc::new(Encoded::new(ServerFrame::Queued {
                chat_id: chat.clone(),
                queue: queue.to_string(),
                position,
            }));
            self.hub
                .deliver(&self.chat_channel(&chat), Out::Frame(frame));
        }
    }

    /// Called by the hub's listener when a queue changed somewhere in the cluster. Changes
    /// that arrive while a refresh runs are folded into one more round (`rounds::Rounds`).
    pub async fn queue_changed(&self, queue: &str) {
        if !self.refresh_rounds.begin(queue) {
            return;
        }
        loop {
            self.refresh_positions(queue).await;
            if !self.refresh_rounds.end(queue) {
                break;
            }
        }
    }
}

/// Trims an optional field; empty becomes None. Line breaks and tabs are allowed only where
/// `multiline` (the question), other control characters never.
fn clean_optional(
    v: Option<String>,
    max: usize,
    field: &str,
    multiline: bool,
) -> ChatResult<Option<String>> {
    let allowed = |c: char| multiline && (c == '\n' || c == '\t' || c == '\r');
    match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => Err(ChatError::new(
            if multiline {
                ErrorCode::MessageTooLong
            } else {
                ErrorCode::InvalidField
            },
            format!("{field} is over {max} characters"),
        )),
        Some(s) if s.chars().any(|c| c.is_control() && !allowed(c)) => Err(ChatError::new(
            ErrorCode::InvalidField,
            format!("{field} contains control characters"),
        )),
        other => Ok(other),
    }
}

fn plausible_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_optional_fields() {
        assert!(plausible_email("a@b.co"));
        for bad in ["a", "@b.co", "a@b", "a b@c.d", "a@.x", "a@b@c.d"] {
            assert!(!plausible_email(bad), "{bad}");
        }
        assert_eq!(
            clean_optional(Some("  ".into()), 5, "x", false).unwrap(),
            None
        );
        assert!(clean_optional(Some("toolong".into()), 5, "x", false).is_err());
        assert!(clean_optional(Some("a\u{0}b".into()), 5, "x", true).is_err());
    }
}
