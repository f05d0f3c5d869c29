//! Data-protection requests about one contact: export everything stored about it, or erase
//! it. The contact is found in SQL; its live state in Redis by its visitor id and by the
//! e-mail its live visits and chats carry. Both actions are recorded in the audit log with
//! counts only.
//!
//! The export is one JSON document; files are listed with their metadata and a link to the
//! usual download endpoint (an admin's token opens it) rather than packed into an archive:
//! the document stays small whatever the files weigh, no archive is built in memory, and
//! each file keeps its safe download headers.
//!
//! An erasure first closes the contact's live chats (ended, kept, flushed at once, without
//! webhook events) and waits until no flush job names them, so that nothing in Redis is
//! written back to SQL after the deletion; then deletes the files, then the SQL rows in one
//! transaction, then the visits, presence and the visitor's own rate-limit counters.
//! Every step is idempotent: a failed erasure is run again.

use super::audit::Actor;
use super::{flush, now_ms, ChatError, ChatResult, Service};
use crate::protocol::{Decision, ErrorCode, ServerFrame};
use crate::redis::ChatRecord;
use crate::store::{Contact, FilesError, MessageRecord, TranscriptEntry};
use serde_json::{json, Value};

/// The reason a chat closed for an erasure shows.
pub const ERASED: &str = "Closed for a data erasure request";
/// Longest wait for the flush jobs of the chats an erasure closed (see `wait_for_flush_jobs`).
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A live chat of the contact, as Redis holds it.
struct LiveChat {
    id: String,
    record: ChatRecord,
}

fn file_ids<'a>(entries: impl Iterator<Item = &'a TranscriptEntry>) -> Vec<String> {
    let mut ids: Vec<String> = entries
        .filter(|e| e.event == "file")
        .filter_map(|e| e.data.as_ref()?.get("id")?.as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn message_files(messages: &[MessageRecord]) -> Vec<String> {
    file_ids(messages.iter().flat_map(|m| m.entries.iter()))
}

fn storage_unavailable(e: FilesError) -> ChatError {
    tracing::warn!(error = %e, "file storage failure during a data-protection request");
    ChatError::new(
        ErrorCode::Unavailable,
        "the file storage is unavailable, retry",
    )
}

impl Service {
    async fn contact_or_404(&self, id: i64) -> ChatResult<Contact> {
        self.store
            .contact(id)
            .await?
            .ok_or_else(|| ChatError::new(ErrorCode::NotFound, "no such contact"))
    }

    /// The visitor ids behind a contact: its own, and those of live visits with its e-mail.
    async fn contact_visitors(&self, c: &Contact) -> ChatResult<Vec<String>> {
        let mut ids: Vec<String> = c.visitor_id.iter().cloned().collect();
        if let Some(email) = &c.email {
            ids.extend(self.redis.visitors_with_email(email).await?);
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Chats Redis still holds for these visitors or this e-mail: live, in wrap-up, or waiting
    /// for their flush.
    async fn live_chats_of(&self, c: &Contact, visitors: &[String]) -> ChatResult<Vec<LiveChat>> {
        let mut candidates = self.redis.unflushed_chats().await?;
        for v in visitors {
            candidates.extend(self.redis.visitor_chats(v).await?);
        }
        candidates.sort();
        candidates.dedup();
        let email = c.email.as_deref().map(str::to_lowercase);
        let mut out = Vec::new();
        for id in candidates {
            let record = self.redis.chat_record(&id).await?;
            let visitor = record.get("visitor").map(String::as_str).unwrap_or("");
            let chat_email = record.get("email").map(|e| e.trim().to_lowercase());
            let ours = visitors.iter().any(|v| v == visitor)
                || (email.is_some() && chat_email.as_deref() == email.as_deref());
            if ours && !record.is_empty() {
                out.push(LiveChat { id, record });
            }
        }
        Ok(out)
    }

    /// Everything stored about the contact, as one JSON document (see the module's note).
    pub async fn export_contact(&self, actor: &Actor, id: i64) -> ChatResult<Value> {
        let contact = self.contact_or_404(id).await?;
        let visitors = self.contact_visitors(&contact).await?;
        let interactions = self.store.interactions_of_contact(id).await?;
        let messages = self.store.messages_of_contact(id).await?;
        let offline_messages = self.store.offline_messages_of_contact(id).await?;
        let mut visits = Vec::new();
        for v in &visitors {
            if let Some((record, pages)) = self.redis.visit_raw(v).await? {
                let pages: Vec<Value> = pages
                    .iter()
                    .map(|p| serde_json::from_str(p).unwrap_or(Value::Null))
                    .collect();
                visits.push(json!({ "visitor_id": v, "record": record, "pages": pages }));
            }
        }
        let mut live = Vec::new();
        let mut live_entries = Vec::new();
        for chat in self.live_chats_of(&contact, &visitors).await? {
            let transcript: Vec<TranscriptEntry> = self
                .redis
                .entries_all_after(&chat.id, "")
                .await?
                .into_iter()
                .map(flush::transcript_entry)
                .collect();
            live_entries.extend(transcript.iter().cloned());
            live.push(
                json!({ "chat_id": chat.id, "record": chat.record, "transcript": transcript }),
            );
        }
        let mut file_list = message_files(&messages);
        file_list.extend(file_ids(live_entries.iter()));
        file_list.sort();
        file_list.dedup();
        let mut files = Vec::new();
        for f in &file_list {
            files.push(match self.files.meta(f).await {
                Ok(meta) => json!({ "meta": meta, "download": format!("/api/files/{f}") }),
                Err(FilesError::NotFound) => json!({ "meta": { "id": f }, "missing": true }),
                Err(e) => return Err(storage_unavailable(e)),
            });
        }
        let counts = json!({
            "interactions": interactions.len(),
            "messages": messages.len(),
            "offline_messages": offline_messages.len(),
            "files": files.len(),
            "visits": visits.len(),
            "live_chats": live.len(),
        });
        self.audit(actor, "contact.export", &format!("contact:{id}"), counts)
            .await?;
        Ok(json!({
            "format": "switchboard.contact-export.v1",
            "exported_at": now_ms(),
            "contact": contact,
            "visitor_ids": visitors,
            "interactions": interactions,
            "messages": messages,
            "offline_messages": offline_messages,
            "files": files,
            "live": { "visits": visits, "chats": live },
        }))
    }

    /// Erases the contact everywhere (see the module's note); returns the counts it recorded.
    pub async fn erase_contact(&self, actor: &Actor, id: i64) -> ChatResult<Value> {
        let contact = self.contact_or_404(id).await?;
        let visitors = self.contact_visitors(&contact).await?;
        let live = self.live_chats_of(&contact, &visitors).await?;
        let mut closed = Vec::new();
        for chat in &live {
            self.close_for_erasure(chat).await?;
            closed.push(chat.id.clone());
        }
        self.wait_for_flush_jobs(&closed).await?;
        let messages = self.store.messages_of_contact(id).await?;
        let files = message_files(&messages);
        for f in &files {
            self.files.remove(f).await.map_err(storage_unavailable)?;
        }
        let rows = self.store.erase_contact(id).await?;
        let stray_events = self.store.erase_events_of_chats(&closed).await?;
        // No rating or transcript e-mail of an erased chat any more.
        for chat in messages.iter().map(|m| &m.chat_id).chain(&closed) {
            self.redis.forget_after_chat(chat).await?;
        }
        let mut visits = 0;
        for v in &visitors {
            if self.redis.visit_raw(v).await?.is_some() {
                visits += 1;
            }
            self.visitor_left(v).await?;
            self.redis.forget_visitor_presence(v).await?;
            self.redis
                .forget_visitor_limits(v, &super::limits::VISITOR_RATES)
                .await?;
        }
        let detail = json!({
            "contacts": rows.contacts,
            "messages": rows.messages,
            "offline_messages": rows.offline_messages,
            "interactions": rows.interactions,
            "files": files.len(),
            "webhook_events": rows.webhook_events + stray_events,
            "live_chats_closed": closed.len(),
            "visits": visits,
        });
        self.audit(
            actor,
            "contact.erase",
            &format!("contact:{id}"),
            detail.clone(),
        )
        .await?;
        Ok(detail)
    }

    /// Waits until no flush job names these chats any more. A flush worker that took one
    /// before the chat was stored here acknowledges it only after its own write, so once the
    /// jobs are gone no write of these chats can land after the deletion.
    async fn wait_for_flush_jobs(&self, chats: &[String]) -> ChatResult<()> {
        if chats.is_empty() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + FLUSH_WAIT;
        loop {
            let pending = self.redis.unflushed_chats().await?;
            if !chats.iter().any(|c| pending.contains(c)) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ChatError::new(
                    ErrorCode::Unavailable,
                    "a chat of the contact is still being stored, retry",
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Ends a live chat (its parties are told), keeps it, and writes it to SQL at once, with
    /// its webhook events suppressed.
    async fn close_for_erasure(&self, chat: &LiveChat) -> ChatResult<()> {
        let id = chat.id.as_str();
        self.redis.mute_hooks(id).await?;
        let state = chat.record.get("state").cloned().unwrap_or_default();
        if matches!(state.as_str(), "queued" | "offered" | "active" | "invited") {
            match self.end_as(id, "system", "", ERASED, ERASED).await {
                Ok(()) => {}
                // Ended meanwhile by someone else: carry on from its new state.
                Err(e) if e.code == ErrorCode::WrongState => {}
                Err(e) => return Err(e),
            }
        }
        let r = self.redis.chat_record(id).await?;
        if r.get("state").map(String::as_str) == Some("ended") {
            let decided = self
                .redis
                .decide(id, "", "keep", None, now_ms(), self.lease())
                .await;
            if decided.is_ok() {
                if let Some(agent) = r.get("agent") {
                    let frame = ServerFrame::Decided {
                        chat_id: id.into(),
                        decision: Decision::Keep,
                    };
                    self.tell(&format!("a:{agent}"), &frame).await;
                }
            }
        }
        match flush::flush_now(self, id).await {
            Ok("not_decided") => Err(ChatError::new(
                ErrorCode::Unavailable,
                "a chat of the contact could not be closed yet, retry",
            )),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(chat = id, error = %e, "erasure: flushing a live chat failed");
                Err(ChatError::new(
                    ErrorCode::Unavailable,
                    "a live chat could not be stored before the erasure, retry",
                ))
            }
        }
    }
}
