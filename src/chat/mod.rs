//! The chat domain: what visitors and agents can do, the follow-ups that complete each
//! transition (see the outbox timers in `docs/design-redis.md`), routing, queue positions,
//! timers, presence and the flush; around the chats: outgoing webhooks, data protection
//! (export, erasure, retention) and the audit log; for supervisors the live monitor and
//! whisper / take-over (`monitor`, `supervise`). Connections call [`Service`]; it speaks to
//! Redis and the store.
//! This module holds the service's state, its construction, the connection lifecycle and the
//! shared types; each concern's operations are in the module named for it.

mod access;
mod after_chat;
mod agents;
pub mod appearance;
pub mod audit;
pub mod availability;
pub mod canned;
mod consumer;
pub mod delivery;
mod ending;
pub mod epoch;
mod files;
pub mod flush;
pub mod gauges;
pub mod hours;
pub mod hub;
pub mod identity;
mod invitations;
pub mod limits;
pub mod listener;
pub mod mail;
mod messages;
pub mod monitor;
mod offline;
pub mod panel;
mod positions;
mod presence;
pub mod privacy;
mod queues;
pub mod resync;
pub mod retention;
mod rounds;
mod routing;
pub mod sessions;
mod supervise;
pub mod timers;
mod transfer;
pub mod visitor_list;
mod visitor_pages;
pub mod visitors;
pub mod webhooks;

use crate::config::Settings;
use crate::metrics::Metrics;
use crate::protocol::{AgentStatus, ChatSummary, ErrorCode, ServerFrame};
use crate::redis::{Offer, RedisError, RedisLayer, TranscriptCaps};
use crate::store::{FileStore, Store, StoreError};
use hub::{ConnId, Follower, Hub};
use identity::Tokens;
use std::sync::Arc;

pub use offline::LeftMessage;
pub use presence::Presence;
pub use transfer::TransferTo;

/// System texts written into transcripts.
pub const VISITOR_CLOSED_BROWSER: &str = "Visitor has closed the browser";
pub const CUSTOMER_REJECTED: &str = "Customer Rejected";
pub const VISITOR_ENDED: &str = "Visitor ended the chat";
pub const AGENT_ENDED: &str = "Agent ended the chat";
pub const AGENT_CLOSED: &str = "Closed by agent";
pub const TRANSCRIPT_FULL: &str =
    "This chat has reached its size limit: the visitor cannot write any more.";

/// Entries and bytes an agent may still write into a transcript at its cap, to tell the
/// visitor and end the chat.
pub const AGENT_RESERVE_ENTRIES: u64 = 20;
pub const AGENT_RESERVE_BYTES: u64 = 64 * 1024;

/// A refused operation: the wire code and a message for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatError {
    pub code: ErrorCode,
    pub message: String,
    /// For a limit: when the same request may succeed (`retry_after_ms`, HTTP `Retry-After`).
    pub retry_after_ms: Option<u64>,
}

impl ChatError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ChatError {
        ChatError {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// A refusal by a limit, retryable after `retry_after_ms`.
    pub fn limited(code: ErrorCode, message: impl Into<String>, retry_after_ms: u64) -> ChatError {
        ChatError {
            retry_after_ms: Some(retry_after_ms.max(1)),
            ..ChatError::new(code, message)
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
                "full" => ChatError::new(ErrorCode::WrongState, "you have no free capacity"),
                "limited" => ChatError::new(ErrorCode::RateLimited, "too many; try again later"),
                "no_queue" => ChatError::new(ErrorCode::NotFound, "no such queue (it was renamed)"),
                "cap_reached" => ChatError::new(
                    ErrorCode::TranscriptFull,
                    "the transcript of this chat is full; no more entries can be written",
                ),
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
#[derive(Debug, Clone, PartialEq)]
pub enum Party {
    Visitor {
        id: String,
    },
    Agent {
        id: i64,
        name: String,
        max_chats: i64,
        queues: Vec<String>,
        /// The session version of the token the connection or request came with.
        session: u64,
        /// Role `supervisor` or `admin` when the connection opened (a role change closes the
        /// agent's sockets with 4409): may watch the monitor, open any running chat
        /// read-only, whisper and take chats over.
        supervisor: bool,
    },
}

impl Party {
    /// An agent as its store record describes it, under the token's session version.
    pub fn agent(a: &crate::store::Agent, session: u64) -> Party {
        Party::Agent {
            id: a.id,
            name: a.display_name.clone(),
            max_chats: a.max_chats,
            queues: a.queues.clone(),
            session,
            supervisor: a.role == "supervisor" || a.role == "admin",
        }
    }
    /// Whether this party may supervise (monitor, read-only follow, whisper, take over).
    pub fn is_supervisor(&self) -> bool {
        matches!(
            self,
            Party::Agent {
                supervisor: true,
                ..
            }
        )
    }
    pub fn role(&self) -> &'static str {
        match self {
            Party::Visitor { .. } => "visitor",
            Party::Agent { .. } => "agent",
        }
    }
    /// The visitor's id or the agent's id as text (borrowed for a visitor).
    pub fn actor(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Party::Visitor { id } => id.as_str().into(),
            Party::Agent { id, .. } => id.to_string().into(),
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
    /// The browser's User-Agent header, cut to `BROWSER_CHARS` ("" when none).
    pub browser: String,
}

/// Characters of a User-Agent kept for the agent's visitor panel.
pub const BROWSER_CHARS: usize = 200;

/// What a connection may see of one chat once authorised.
#[derive(Debug, Clone)]
pub struct ChatAccess {
    /// The name this party writes under in the transcript.
    pub display_name: String,
    pub state: String,
    pub queue: String,
    /// A supervisor following a chat that is not theirs: sees everything (whispers included),
    /// writes nothing until they take it over.
    pub read_only: bool,
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
    /// The site-visitors list: this node's batch of changes to publish.
    pub visitors: visitors::SiteVisitors,
    /// The site-visitors list: this node's watching agents and the changes coming to them.
    pub visitor_list: visitor_list::VisitorList,
    /// Set when the node drains: readiness fails so the load balancer stops sending traffic.
    pub draining: std::sync::atomic::AtomicBool,
    /// Chat file attachments (directory or S3), used by the files API.
    pub files: FileStore,
    /// Queues' open state for watching visitors, settings and wait estimates on this node.
    availability: availability::Availability,
    /// Limits on clients held across the cluster (identities, sockets, requests, frames).
    pub limits: Arc<limits::Limits>,
    /// What one transcript may hold, handed to the append script.
    transcript_caps: TranscriptCaps,
    /// The widget's appearance as this node last read it (see `appearance`).
    appearance: appearance::Cached,
    /// Redis's epoch as this node last read it (`chat::epoch`).
    pub epoch: epoch::Epoch,
    /// The supervisors' monitor: this node's watchers and the snapshot they share.
    monitor: monitor::Monitor,
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
        let limits = Arc::new(limits::Limits::new(
            redis.clone(),
            metrics.clone(),
            &settings.abuse,
            &node,
        ));
        let transcript_caps = TranscriptCaps {
            max_entries: settings.abuse.transcript_max_entries as u64,
            max_bytes: settings.abuse.transcript_max_bytes,
            agent_reserve_entries: AGENT_RESERVE_ENTRIES,
            agent_reserve_bytes: AGENT_RESERVE_BYTES,
            full_text: TRANSCRIPT_FULL,
        };
        Arc::new(Service {
            limits,
            transcript_caps,
            appearance: appearance::Cached::default(),
            epoch: epoch::Epoch::default(),
            presence: Presence::new(&settings, &node),
            positions: positions::Positions::default(),
            refresh_rounds: rounds::Rounds::default(),
            draining: std::sync::atomic::AtomicBool::new(false),
            visitors: visitors::SiteVisitors::new(&settings),
            availability: availability::Availability::default(),
            visitor_list: visitor_list::VisitorList::new(&settings),
            monitor: monitor::Monitor::default(),
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
            .follow(
                &self.redis.keys.user_channel(&party.user_key()),
                conn,
                f.clone(),
            )
            .await?;
        if let Party::Agent { id, session, .. } = party {
            // Checked again now that the connection follows the agent's channel: sessions that
            // end from here on close it through that channel; one that ended since the
            // handshake was checked closes it now.
            if !self.agent_session_valid(*id, *session).await? {
                f.end_with(crate::protocol::close_codes::UNAUTHORIZED);
            }
        }
        self.presence.arrive(self, party).await;
        let (chats, offers) = self.live_chats(party).await?;
        let mut frames = vec![ServerFrame::Welcome {
            version: crate::protocol::PROTOCOL_VERSION,
            role: party.role().into(),
            id: party.actor().into_owned(),
            node: self.node.clone(),
            chats,
            ping_interval_ms: self.settings.limits.ping_interval_ms,
            epoch: self.epoch.current(),
        }];
        if let Party::Agent { id, .. } = party {
            frames.push(ServerFrame::Status {
                status: self.agent_status(*id).await?,
                reason: None,
            });
            // An offer made while the agent had no connection is shown again.
            frames.extend(offers);
            frames.extend(self.agent_queues_connected(party, conn, &f).await?);
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
        self.availability_disconnected(party, conn).await;
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

/// Whether a chat's e-mail came from the site's signed identify (`email_verified` of its
/// routing record); a typed one is shown, never matched to a contact.
pub(crate) fn email_verified(record: &crate::redis::ChatRecord) -> bool {
    record.get("email_verified").map(String::as_str) == Some("1")
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
