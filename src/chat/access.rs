//! Who may see a chat: authorising a party from the chat's routing record, and resuming a chat
//! (history after a sequence number, then live entries). A supervisor may resume any live
//! chat read-only (`ChatAccess::read_only`); a visitor is never given an internal entry.

use super::hub::{self, ConnId, Follower};
use super::{ChatAccess, ChatError, ChatResult, Party, Service};
use crate::protocol::{Entry, ErrorCode};

impl Service {
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
            read_only: false,
        })
    }

    /// Authorises and follows a chat for a `resume` from `last_seq`. The caller then replays
    /// the history after `last_seq` a page at a time (`history_page`), then live entries with
    /// a greater sequence.
    pub async fn resume(
        &self,
        party: &Party,
        conn: ConnId,
        f: Follower,
        chat: &str,
        last_seq: &str,
    ) -> ChatResult<ChatAccess> {
        if !last_seq.is_empty() && hub::Seq::parse(last_seq).is_none() {
            return Err(ChatError::new(
                ErrorCode::BadSequence,
                "last_seq must be a sequence number like 1700000000000-0",
            ));
        }
        let access = match self.authorise(party, chat).await {
            // A supervisor may follow any live chat, read-only.
            Err(e) if e.code == ErrorCode::Forbidden && party.is_supervisor() => {
                self.authorise_read_only(party, chat).await?
            }
            other => other?,
        };
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
        // Subscribe before the connection reads history (`gateway::replay`): anything appended
        // meanwhile arrives live and the connection drops what the replay already delivered.
        self.hub.follow(&self.chat_channel(chat), conn, f).await?;
        if access.state == "queued" || access.state == "offered" {
            if let Party::Visitor { .. } = party {
                self.positions.watch(&access.queue, chat, conn, 0);
                self.queue_changed(&access.queue).await;
            }
        }
        Ok(access)
    }

    /// Up to `count` entries of a chat's stream after `after` (a stream id, "" for the start):
    /// one page of a replay or a catch-up.
    pub async fn history_page(
        &self,
        chat: &str,
        after: &str,
        count: u64,
    ) -> ChatResult<Vec<Entry>> {
        Ok(self.redis.entries_after(chat, after, count).await?)
    }
}
