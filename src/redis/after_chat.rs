//! The after-chat ticket (`{a:CHAT}`): set when a chat that an agent joined ends, it says which
//! visitor may rate the chat or have its transcript e-mailed, and expires at the end of
//! `chat.after_chat_window_ms`. It outlives the chat's own keys (the flush forgets those), so
//! the rules hold whether or not the transcript has been written to SQL yet.

use super::{RedisLayer, Result};
use fred::prelude::*;
use fred::types::Expiration;
use serde::{Deserialize, Serialize};

/// Who may act on an ended chat, and what the actions need to know about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AfterChat {
    pub visitor: String,
    pub queue: String,
    /// The agent who had the chat when it ended (none: it ended before anyone joined).
    pub agent: Option<i64>,
    pub ended_at: i64,
}

impl RedisLayer {
    /// Sets the ticket of `chat` to expire `ttl_ms` from now (one `SET ... PX`; setting it again
    /// with the same end time changes nothing a visitor can see).
    pub async fn set_after_chat(&self, chat: &str, t: &AfterChat, ttl_ms: u64) -> Result<()> {
        let body = serde_json::to_string(t).expect("tickets serialise");
        let _: () = self
            .client()
            .set(
                self.keys.after_chat(chat),
                body,
                Some(Expiration::PX(ttl_ms.max(1) as i64)),
                None,
                false,
            )
            .await?;
        Ok(())
    }

    /// The ticket of `chat`, if it has one that has not expired.
    pub async fn after_chat(&self, chat: &str) -> Result<Option<AfterChat>> {
        let v: Option<String> = self.client().get(self.keys.after_chat(chat)).await?;
        Ok(v.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Removes the ticket of `chat` (an erasure: its visitor may no longer act on it).
    pub async fn forget_after_chat(&self, chat: &str) -> Result<()> {
        let _: i64 = self.client().del(self.keys.after_chat(chat)).await?;
        Ok(())
    }
}
