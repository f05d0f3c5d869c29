//! A chat's transcript on its `{c:ID}` slot: the agent joining, appended entries, the end
//! message, and the reads a resume or a flush makes. Pairs with `lua/chat_common.lua` and the
//! scripts it heads, and with the chat modules that write it (`messages`, the join in
//! `routing`, the end in `ending`) or read it (`access`, `flush`).

use super::routing::{Accepted, ChatRecord};
use super::{refusal, RedisLayer, Result};
use crate::protocol::Entry;
use bytes::{BufMut, Bytes, BytesMut};
use fred::prelude::*;
use std::collections::HashMap;

/// A participant's entry to append to a transcript.
#[derive(Debug, Clone, Default)]
pub struct Append<'a> {
    /// `visitor`, `agent` or `supervisor` (whispers only).
    pub role: &'static str,
    pub actor: &'a str,
    pub name: &'a str,
    pub client_msg_id: &'a str,
    pub text: &'a str,
    /// A system entry (a pushed page) rather than a message.
    pub system: bool,
    /// "" for text, else `link`, `file`, `push_page` or `whisper`.
    pub event: &'a str,
    pub data: Option<serde_json::Value>,
}

/// How much one chat's transcript holds (`abuse.transcript_max_*`), counted over participant
/// entries; the agent may write `agent_reserve_*` more (see `lua/chat_send.lua`).
#[derive(Debug, Clone)]
pub struct TranscriptCaps {
    pub max_entries: u64,
    pub max_bytes: u64,
    pub agent_reserve_entries: u64,
    pub agent_reserve_bytes: u64,
    /// Text of the system entry written when the visitor first meets the cap.
    pub full_text: &'static str,
}

/// What the transcript side needs from the routing record: who the visitor is and the
/// question that opens the transcript, with the time it was asked.
#[derive(Debug, Clone, Default)]
pub struct Opening {
    pub visitor: String,
    pub visitor_name: String,
    pub question: String,
    pub asked_at: i64,
    /// The accepted agent's display name ("" before an accept).
    pub agent_name: String,
}

impl Opening {
    /// How the transcript names a visitor who gave `name` ("" when none).
    pub fn visitor_name(name: &str) -> String {
        if name.is_empty() {
            "Visitor".into()
        } else {
            name.to_string()
        }
    }

    /// What the accept script returned (no second read of the chat).
    pub fn from_accepted(a: &Accepted, agent_name: &str) -> Opening {
        Opening {
            visitor: a.visitor.clone(),
            visitor_name: Opening::visitor_name(&a.name),
            question: a.question.clone(),
            asked_at: a.created,
            agent_name: agent_name.to_string(),
        }
    }

    pub fn from_record(r: &ChatRecord, agent_name: &str) -> Opening {
        let g = |k: &str| r.get(k).cloned().unwrap_or_default();
        Opening {
            visitor: g("visitor"),
            visitor_name: Opening::visitor_name(&g("name")),
            question: g("question"),
            asked_at: r.get("created").and_then(|c| c.parse().ok()).unwrap_or(0),
            agent_name: agent_name.to_string(),
        }
    }
}

/// Transcript entries read per request when a whole transcript is read (resume, flush).
const TRANSCRIPT_PAGE: u64 = 1000;

impl RedisLayer {
    pub async fn chat_join(
        &self,
        chat: &str,
        agent: &str,
        joined: &str,
        at: i64,
        o: &Opening,
    ) -> Result<bool> {
        let n: i64 = self
            .on_transcript(
                &self.scripts.chat_join,
                chat,
                vec![
                    o.visitor.clone(),
                    agent.into(),
                    o.agent_name.clone(),
                    o.question.clone(),
                    o.visitor_name.clone(),
                    at.to_string(),
                    joined.into(),
                    o.asked_at.to_string(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Appends a participant's entry; returns (seq, stored now). Refused: `wrong_state`,
    /// `forbidden`, `cap_reached` (the transcript is at its cap for this role).
    pub async fn chat_append(
        &self,
        chat: &str,
        a: &Append<'_>,
        now: i64,
        caps: &TranscriptCaps,
    ) -> Result<(String, bool)> {
        let data = a.data.as_ref().map(|d| d.to_string()).unwrap_or_default();
        // The keys, the strings and the packed entry are slices of one buffer (one allocation
        // where each would take its own); numbers and fixed words go as values that need no
        // copy. The arguments are built again only if Redis lost the script (fred's own
        // reload path clones every argument).
        let strings = [
            chat,
            a.actor,
            a.name,
            a.client_msg_id,
            a.text,
            a.event,
            &data,
        ];
        let key_bytes = 4 * (self.keys.prefix_len() + chat.len() + 8);
        let string_bytes: usize = strings.iter().map(|s| s.len()).sum();
        let mut buf =
            BytesMut::with_capacity(key_bytes + 2 * string_bytes + a.role.len() + HEAD_OVERHEAD);
        let keys = self.keys.chat_append_keys(chat, &mut buf);
        let [chat_arg, actor, name, client_msg_id, text, event, data_arg] = strings.map(|s| {
            buf.extend_from_slice(s.as_bytes());
            Value::Bytes(buf.split().freeze())
        });
        let head = published_head(chat, a, now, &data, &mut buf);
        let args = || -> Vec<Value> {
            vec![
                chat_arg.clone(),
                Value::from_static_str(a.role),
                actor.clone(),
                name.clone(),
                client_msg_id.clone(),
                text.clone(),
                Value::Integer(now),
                Value::from_static_str(if a.system { "system" } else { "message" }),
                event.clone(),
                data_arg.clone(),
                Value::Integer(caps.max_entries as i64),
                Value::Integer(caps.max_bytes as i64),
                Value::Integer(caps.agent_reserve_entries as i64),
                Value::Integer(caps.agent_reserve_bytes as i64),
                Value::from_static_str(caps.full_text),
                Value::Bytes(head.clone()),
            ]
        };
        let keys = || -> Vec<Key> { keys.iter().cloned().map(Key::from).collect() };
        let script = &self.scripts.chat_send;
        // On the subscriber's connection, like `on_transcript` (it publishes too).
        let answer: std::result::Result<(String, i64), fred::error::Error> = match self
            .appender
            .evalsha(script.sha1().clone(), keys(), args())
            .await
        {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                script.load(&self.appender).await?;
                self.appender
                    .evalsha(script.sha1().clone(), keys(), args())
                    .await
            }
            other => other,
        };
        let (seq, new) = answer.map_err(refusal)?;
        Ok((seq, new == 1))
    }

    /// Closes the transcript with the end message (idempotent).
    pub async fn chat_end(
        &self,
        chat: &str,
        by: &str,
        reason: &str,
        at: i64,
        o: &Opening,
    ) -> Result<bool> {
        let n: i64 = self
            .on_transcript(
                &self.scripts.chat_end,
                chat,
                vec![
                    by.into(),
                    reason.into(),
                    at.to_string(),
                    o.visitor.clone(),
                    o.question.clone(),
                    o.visitor_name.clone(),
                    o.asked_at.to_string(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Transcript entries after `after` (exclusive; "" = from the start), at most `count`.
    pub async fn entries_after(&self, chat: &str, after: &str, count: u64) -> Result<Vec<Entry>> {
        let start = if after.is_empty() {
            "-".to_string()
        } else {
            format!("({after}")
        };
        let rows: Vec<(String, HashMap<String, String>)> = self
            .client()
            .xrange_values(self.keys.log(chat), start, "+", Some(count))
            .await?;
        Ok(rows
            .into_iter()
            .map(|(id, f)| entry_from_fields(id, f))
            .collect())
    }

    /// Every entry after `after` ("" = from the start), read in pages of `TRANSCRIPT_PAGE`.
    pub async fn entries_all_after(&self, chat: &str, after: &str) -> Result<Vec<Entry>> {
        let mut entries = Vec::new();
        let mut after = after.to_string();
        loop {
            let page = self.entries_after(chat, &after, TRANSCRIPT_PAGE).await?;
            let full = page.len() as u64 == TRANSCRIPT_PAGE;
            if let Some(last) = page.last() {
                after = last.seq.clone();
            }
            entries.extend(page);
            if !full {
                return Ok(entries);
            }
        }
    }

    /// The last sequence number of a chat ("" when empty).
    pub async fn last_seq(&self, chat: &str) -> Result<String> {
        let rows: Vec<(String, HashMap<String, String>)> = self
            .client()
            .xrevrange_values(self.keys.log(chat), "+", "-", Some(1))
            .await?;
        Ok(rows.into_iter().next().map(|r| r.0).unwrap_or_default())
    }

    pub async fn forget_transcript(&self, chat: &str) -> Result<()> {
        let k = &self.keys;
        let _: i64 = self
            .client()
            .del(vec![k.log(chat), k.meta(chat), k.cmid(chat)])
            .await?;
        Ok(())
    }

    /// Writes "X left the chat" (event `left`) while `agent` is the chat's agent on the
    /// transcript side; false when it was not (nothing written).
    pub async fn chat_leave(&self, chat: &str, agent: &str, name: &str, at: i64) -> Result<bool> {
        let n: i64 = self
            .on_transcript(
                &self.scripts.chat_leave,
                chat,
                vec![
                    agent.into(),
                    name.into(),
                    format!("{name} left the chat"),
                    at.to_string(),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Withdraws the transcript-side assignment (a chat sent back to a queue): the agent who
    /// let it go can no longer write into it.
    /// The agents who joined the chat, in order (`agents` of its meta hash).
    pub async fn chat_agents(&self, chat: &str) -> Result<Vec<i64>> {
        let list: Option<String> = self.client().hget(self.keys.meta(chat), "agents").await?;
        Ok(list
            .unwrap_or_default()
            .split(',')
            .filter_map(|a| a.parse().ok())
            .collect())
    }

    pub async fn chat_release(&self, chat: &str) -> Result<()> {
        let _: i64 = self.client().hdel(self.keys.meta(chat), "agent").await?;
        Ok(())
    }
}

/// The entry as the node's followers decode it (`chat::listener`'s `Published`), but for its
/// sequence number: a MessagePack map of eleven entries of which these are the first ten.
/// `chat_send.lua` appends the eleventh (`seq`, known once the entry is stored) and publishes
/// it, so Redis, which every node shares, does not pack the entry itself.
/// Room for the packed entry's keys, headers, number and fixed words beside its strings.
const HEAD_OVERHEAD: usize = 128;

/// The entry as the script publishes it but for its `seq`, packed into `buf` and split off it.
fn published_head(chat: &str, a: &Append<'_>, at: i64, data: &str, buf: &mut BytesMut) -> Bytes {
    #[derive(serde::Serialize)]
    struct Head<'a> {
        chat_id: &'a str,
        kind: &'a str,
        author: &'a str,
        name: &'a str,
        text: &'a str,
        at: i64,
        client_msg_id: &'a str,
        event: &'a str,
        data: &'a str,
        author_id: &'a str,
    }
    let head = Head {
        chat_id: chat,
        kind: if a.system { "system" } else { "message" },
        author: a.role,
        name: a.name,
        text: a.text,
        at,
        client_msg_id: a.client_msg_id,
        event: a.event,
        data,
        author_id: if a.role == "agent" { a.actor } else { "" },
    };
    rmp_serde::encode::write_named(&mut (&mut *buf).writer(), &head)
        .expect("a map of strings and a number encodes");
    let mut packed = buf.split();
    // A fixmap of ten entries (0x8a) becomes one of eleven (0x8b): the script adds `seq`.
    debug_assert_eq!(packed[0], 0x8a);
    packed[0] = 0x8b;
    packed.freeze()
}

/// Builds an entry from a stream record's fields (see `chat_common.lua`).
fn entry_from_fields(seq: String, mut f: HashMap<String, String>) -> Entry {
    let kind = if f.get("k").map(String::as_str) == Some("system") {
        crate::protocol::EntryKind::System
    } else {
        crate::protocol::EntryKind::Message
    };
    Entry {
        seq,
        kind,
        author: f.remove("a").unwrap_or_default(),
        author_id: f.remove("i").unwrap_or_default(),
        name: f.remove("n").unwrap_or_default(),
        text: f.remove("t").unwrap_or_default(),
        at: f.get("at").and_then(|s| s.parse().ok()).unwrap_or(0),
        client_msg_id: f.remove("m").unwrap_or_default(),
        event: f.remove("e").unwrap_or_default(),
        data: f
            .remove("d")
            .filter(|d| !d.is_empty())
            .and_then(|d| serde_json::from_str(&d).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `chat_send.lua` publishes: the node's head with `seq` appended as a fixstr.
    #[test]
    fn published_head_with_seq_is_the_whole_entry() {
        let a = Append {
            role: "agent",
            actor: "ag-1",
            name: "Ann",
            client_msg_id: "m1",
            text: &"é".repeat(200),
            event: "link",
            ..Default::default()
        };
        let mut bytes = published_head(
            "c-1",
            &a,
            1_700_000_000_123,
            r#"{"url":"x"}"#,
            &mut BytesMut::new(),
        )
        .to_vec();
        let seq = "1700000000123-0";
        bytes.extend_from_slice(b"\xa3seq");
        bytes.push(0xa0 + seq.len() as u8);
        bytes.extend_from_slice(seq.as_bytes());
        let m: HashMap<String, serde_json::Value> = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(m.len(), 11);
        assert_eq!(m["seq"], seq);
        assert_eq!(m["chat_id"], "c-1");
        assert_eq!(m["kind"], "message");
        assert_eq!(m["author"], "agent");
        assert_eq!(m["author_id"], "ag-1");
        assert_eq!(m["text"], "é".repeat(200));
        assert_eq!(m["at"], 1_700_000_000_123_i64);
        assert_eq!(m["data"], r#"{"url":"x"}"#);
    }
}
