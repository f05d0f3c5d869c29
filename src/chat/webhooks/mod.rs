//! Outgoing webhooks: the event types, the events the node builds itself (the routing scripts
//! append `chat.requested` and `chat.accepted` in the same step as the change, see
//! `redis/lua/events.lua`), the set of wanted types kept in Redis, the admin's operations
//! (`admin`), the address rules (`guard`), one signed attempt (`send`) and the delivery
//! worker every node runs (`worker`). Design: docs/design-redis.md#webhooks.

mod admin;
pub mod guard;
pub mod send;
pub mod worker;

pub use admin::{EndpointInput, NewSecret};

use super::{now_ms, ChatResult, Service};
use crate::redis::ChatRecord;
use crate::store::{FlushOutcome, TranscriptRecord};
use serde_json::{json, Value};

/// An event type endpoints can subscribe to, and whether anything emits it yet.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct EventType {
    pub name: &'static str,
    /// False for types defined ahead of the feature that will emit them.
    pub emitted: bool,
    pub description: &'static str,
}

pub const EVENT_TYPES: &[EventType] = &[
    EventType {
        name: "chat.requested",
        emitted: true,
        description: "A visitor asked for a chat (it joined its queue).",
    },
    EventType {
        name: "chat.accepted",
        emitted: true,
        description: "An agent accepted or picked a request, or a visitor accepted an agent's \
                      invitation.",
    },
    EventType {
        name: "chat.ended",
        emitted: true,
        description: "A chat ended; carries the whole transcript.",
    },
    EventType {
        name: "interaction.decided",
        emitted: true,
        description: "An ended chat was stored: created or added to an interaction, trashed or \
                      kept; carries the interaction and message ids.",
    },
    EventType {
        name: "offline_message.created",
        emitted: true,
        description: "A visitor left a message while nobody was there.",
    },
    EventType {
        name: "rating.submitted",
        emitted: true,
        description: "A visitor rated a chat.",
    },
];

pub fn valid_event_type(name: &str) -> bool {
    EVENT_TYPES.iter().any(|t| t.name == name)
}

/// The body an endpoint receives (and the signature covers): `{id, type, created_at, data}`.
fn event_body(id: &str, event_type: &str, created_at: i64, data: Value) -> String {
    json!({ "id": id, "type": event_type, "created_at": created_at, "data": data }).to_string()
}

/// Fields of an offline message for its `offline_message.created` event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OfflineMessageCreated {
    /// The message's unique id (also its event's idempotency key).
    pub uid: String,
    pub interaction_id: Option<i64>,
    pub queue: String,
    pub visitor_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub message: String,
    pub page_url: Option<String>,
    pub created_at: i64,
}

impl Service {
    /// Writes the wanted event types to Redis from the endpoints in SQL (after every change,
    /// and periodically from each node so a Redis that lost its data learns them again).
    pub async fn sync_hook_types(&self) -> ChatResult<()> {
        let endpoints = self.store.endpoints().await?;
        let mut counts: Vec<(String, i64)> = Vec::new();
        for t in EVENT_TYPES {
            let n = endpoints.iter().filter(|e| e.wants(t.name)).count() as i64;
            if n > 0 {
                counts.push((t.name.to_string(), n));
            }
        }
        self.redis.set_hook_types(&counts).await?;
        Ok(())
    }

    /// `chat.ended`, once per chat, from the transcript side of an end (`apply_end`, which
    /// the `end:ID` outbox timer repeats until it succeeds): the record and the whole
    /// transcript as it stands with its end entry.
    pub(crate) async fn hook_chat_ended(&self, chat: &str, r: &ChatRecord) -> ChatResult<()> {
        const TYPE: &str = "chat.ended";
        if !self.redis.hook_pending(TYPE, chat, "hook_ended").await? {
            return Ok(());
        }
        let transcript = self.live_transcript(chat).await?;
        let g = |k: &str| r.get(k).filter(|v| !v.is_empty()).cloned();
        let num = |k: &str| r.get(k).and_then(|v| v.parse::<i64>().ok());
        let ended_at = num("ended").unwrap_or_else(now_ms);
        let data = json!({
            "chat_id": chat,
            "queue": g("queue"),
            "visitor_id": g("visitor"),
            "agent_id": num("agent"),
            "name": g("name"),
            "email": g("email"),
            "question": g("question"),
            "requested_at": num("created"),
            "accepted_at": num("accepted"),
            "ended_at": ended_at,
            "ended_by": g("ended_by"),
            "end_reason": g("end_reason"),
            "transcript": transcript,
        });
        let id = format!("evt_{chat}_ended");
        let body = event_body(&id, TYPE, ended_at, data);
        self.redis
            .emit_hook(TYPE, &body, Some((chat, "hook_ended")))
            .await?;
        Ok(())
    }

    /// `interaction.decided`, once per chat, from the flush after the SQL commit and before
    /// the chat is forgotten in Redis (a flush retried after a crash emits it then).
    pub(crate) async fn hook_decided(
        &self,
        t: &TranscriptRecord,
        outcome: &FlushOutcome,
    ) -> ChatResult<()> {
        const TYPE: &str = "interaction.decided";
        if !self
            .redis
            .hook_pending(TYPE, &t.chat_id, "hook_decided")
            .await?
        {
            return Ok(());
        }
        let message_id = match outcome {
            FlushOutcome::Written { message_id, .. }
            | FlushOutcome::AlreadyWritten { message_id } => *message_id,
        };
        let stored = self.store.message_by_chat(&t.chat_id).await?;
        let data = json!({
            "chat_id": t.chat_id,
            "decision": t.decision,
            "interaction_id": stored.as_ref().and_then(|m| m.interaction_id),
            "message_id": message_id,
            "contact_id": stored.as_ref().map(|m| m.contact_id),
            "agent_id": t.agent_id,
            "decided_by": t.decided_by,
            "decided_at": t.decided_at,
            "queue": t.queue,
        });
        let id = format!("evt_{}_decided", t.chat_id);
        let body = event_body(&id, TYPE, t.decided_at, data);
        self.redis
            .emit_hook(TYPE, &body, Some((&t.chat_id, "hook_decided")))
            .await?;
        Ok(())
    }

    /// `offline_message.created`: call once the message is stored. Its id is the message's
    /// uid, so a retried call yields the same event id (receivers deduplicate on it).
    pub async fn hook_offline_message(&self, m: &OfflineMessageCreated) -> ChatResult<()> {
        const TYPE: &str = "offline_message.created";
        let id = format!("evt_{}_offline", m.uid);
        let data = serde_json::to_value(m).unwrap_or(Value::Null);
        let body = event_body(&id, TYPE, m.created_at, data);
        self.redis.emit_hook(TYPE, &body, None).await?;
        Ok(())
    }

    /// `rating.submitted`: call once a visitor's rating of a chat is stored (the chat id is
    /// the event's idempotency key: a chat is rated once).
    pub(crate) async fn hook_rating_submitted(&self, r: &crate::store::Rating) -> ChatResult<()> {
        const TYPE: &str = "rating.submitted";
        let id = format!("evt_{}_rated", r.chat_id);
        let data = json!({
            "chat_id": r.chat_id,
            "queue": r.queue,
            "agent_id": r.agent_id,
            "rating": r.rating,
            "comment": r.comment,
            "rated_at": r.rated_at,
        });
        let body = event_body(&id, TYPE, r.rated_at, data);
        // Exactly once by the store's key on the chat id, not by a flag on the chat record
        // (the flush may have forgotten that already).
        self.redis.emit_hook(TYPE, &body, None).await?;
        Ok(())
    }
}
