//! What an erasure removes from Redis besides the chats and visits it ends through the usual
//! paths: a visitor's presence record, and the search for live visits under an e-mail.

use super::{RedisLayer, Result};
use fred::prelude::*;
use fred::types::scripts::Script;
use std::collections::HashMap;
use std::sync::LazyLock;

static MUTE: LazyLock<Script> =
    LazyLock::new(|| Script::from_lua(include_str!("lua/hooks_mute.lua")));

/// Flush jobs read at most while looking for a contact's chats.
const FLUSH_JOBS_READ: u64 = 10_000;

/// Visits read per round trip while searching by e-mail.
const SCAN_BATCH: usize = 256;

impl RedisLayer {
    /// Deletes a visitor's presence record and grace timer. A node still holding one of its
    /// connections writes both back at its next beat: an open connection is not stored data,
    /// and they go when the connection does.
    pub async fn forget_visitor_presence(&self, visitor: &str) -> Result<()> {
        let c = self.client();
        let _: i64 = c.del(self.keys.here(&format!("v:{visitor}"))).await?;
        let _: i64 = c
            .zrem(self.keys.timers(), format!("grace:{visitor}"))
            .await?;
        Ok(())
    }

    /// Drops the visitor's own rate-limit state: the `rates` named (`chat::limits`) and the
    /// hourly count of offline messages. Each key has its own hash tag, so one `DEL` each.
    pub async fn forget_visitor_limits(&self, visitor: &str, rates: &[&str]) -> Result<()> {
        let c = self.client();
        for name in rates {
            let _: i64 = c.del(self.keys.rate(name, visitor)).await?;
        }
        let _: i64 = c.del(self.keys.offline_limit("v", visitor)).await?;
        Ok(())
    }

    /// Visitors on the site now whose visit carries this e-mail (typed in the pre-chat form or
    /// identified), compared case-insensitively. Reads every visit: an admin's action, not a
    /// hot path.
    pub async fn visitors_with_email(&self, email: &str) -> Result<Vec<String>> {
        let email = email.trim().to_lowercase();
        if email.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<String> = self
            .client()
            .zrange(self.keys.visitors(), 0, -1, None, false, None, false)
            .await?;
        let mut out = Vec::new();
        for chunk in ids.chunks(SCAN_BATCH) {
            let reads = chunk.iter().map(|v| {
                self.client()
                    .hget::<Option<String>, _, _>(self.keys.visitor(v), "email")
            });
            let emails = futures_util::future::join_all(reads).await;
            for (v, e) in chunk.iter().zip(emails) {
                if e?.is_some_and(|e| e.trim().to_lowercase() == email) {
                    out.push(v.clone());
                }
            }
        }
        Ok(out)
    }

    /// A visit's record and page history as stored (for an export); None when not on the site.
    pub async fn visit_raw(
        &self,
        visitor: &str,
    ) -> Result<Option<(HashMap<String, String>, Vec<String>)>> {
        let Some(record) = self.visitor_record(visitor).await? else {
            return Ok(None);
        };
        Ok(Some((record.fields, self.visitor_pages(visitor).await?)))
    }

    /// Chats past their end and not yet flushed: those with a wrap-up, end or flush timer,
    /// and those named by a waiting flush job. With `visitor_chats` of a visitor, every chat
    /// of it Redis still holds.
    pub async fn unflushed_chats(&self) -> Result<Vec<String>> {
        let c = self.client();
        let timers: Vec<String> = c
            .zrange(self.keys.timers(), 0, -1, None, false, None, false)
            .await?;
        let mut chats: Vec<String> = timers
            .iter()
            .filter_map(|m| {
                let (kind, id) = m.split_once(':')?;
                matches!(kind, "wrapup" | "end" | "flush").then(|| id.to_string())
            })
            .collect();
        let jobs: Value = c
            .xrange(self.keys.flush_jobs(), "-", "+", Some(FLUSH_JOBS_READ))
            .await?;
        // An XRANGE reply is the entries part of an XAUTOCLAIM reply.
        let jobs = super::flush::claimed_entries(Value::Array(vec![Value::Null, jobs]), "chat");
        chats.extend(jobs.into_iter().map(|(_, chat)| chat));
        chats.sort();
        chats.dedup();
        Ok(chats)
    }

    /// Suppresses the node-built webhook events of a live chat (see `hooks_mute.lua`).
    pub async fn mute_hooks(&self, chat: &str) -> Result<()> {
        let _: i64 = MUTE
            .evalsha_with_reload(
                self.client(),
                vec![self.keys.chat(chat)],
                Vec::<String>::new(),
            )
            .await?;
        Ok(())
    }
}
