//! The flush worker every node runs: reads flush jobs from the Redis stream's consumer group,
//! writes each decided chat's transcript to the SQL store (idempotent on the chat id), deletes
//! a trashed chat's files, then removes the chat's Redis keys and acknowledges. Jobs a dead node left unacknowledged are
//! taken over after `flush.claim_idle_ms`.
//!
//! Throughput: the jobs of one read (at most `flush.batch`) are flushed together. Their chats
//! are read from Redis concurrently and written in transactions of up to [`SQL_BATCH`] chats
//! (one commit, so one WAL flush, for all of them) that run concurrently within the store's
//! pool (`store.max_connections`); the finished jobs are acknowledged together, a failed one
//! stays pending and is retried. A transaction commits all its chats or none, and one that
//! meets a chat already written falls back to one transaction per chat, so each chat id is
//! written exactly once.
//!
//! Every SQL call is bounded (`store.*_timeout_ms`): a chat whose rows another transaction
//! holds (a node frozen mid-flush) fails its lock wait, stays pending and is retried after
//! `flush.claim_idle_ms`, while the rest of the batch is written.

use super::consumer::{consume, Pace, StreamWork};
use super::{now_ms, Service};
use crate::store::{timeout_kind, FlushOutcome, StoreError, TranscriptEntry, TranscriptRecord};
use futures_util::future::join_all;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

/// Chats written to SQL in one transaction (one commit, so one WAL flush, for all of them).
pub const SQL_BATCH: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error(transparent)]
    Redis(#[from] crate::redis::RedisError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Files(#[from] crate::store::FilesError),
    #[error("webhook event: {0}")]
    Hook(String),
}

/// The flush jobs of the `{f}` stream, for `consumer::consume`.
struct FlushJobs<'a> {
    svc: &'a Service,
    consumer: String,
    batch: usize,
}

impl StreamWork for FlushJobs<'_> {
    type Item = (String, String);

    async fn claim(&self) -> Result<Vec<(String, String)>, crate::redis::RedisError> {
        let idle = self.svc.settings.flush.claim_idle_ms;
        self.svc
            .redis
            .claim_stale_flush_jobs(&self.consumer, idle, self.batch)
            .await
    }

    async fn read(&self, block_ms: u64) -> Result<Vec<(String, String)>, crate::redis::RedisError> {
        self.svc
            .redis
            .read_flush_jobs(&self.consumer, self.batch, block_ms)
            .await
    }

    async fn handle(&self, jobs: Vec<(String, String)>) {
        finish_jobs(self.svc, jobs).await
    }
}

pub async fn run(svc: Arc<Service>, stop: watch::Receiver<bool>) {
    let work = FlushJobs {
        svc: &svc,
        consumer: svc.node.clone(),
        batch: svc.settings.flush.batch.max(1),
    };
    let pace = Pace {
        what: "flush",
        claim_idle_ms: svc.settings.flush.claim_idle_ms,
        block_ms: 500,
    };
    consume(&work, pace, || svc.metrics.redis_errors.inc(), stop).await
}

/// Runs a batch of jobs to completion, or leaves a job pending for a retry: reads every chat
/// from Redis at once, writes them in SQL transactions of up to [`SQL_BATCH`] chats (run
/// concurrently; the store's pool bounds them), forgets the written chats in Redis and
/// acknowledges the finished jobs together.
pub async fn finish_jobs(svc: &Service, jobs: Vec<(String, String)>) {
    if jobs.is_empty() {
        return;
    }
    let started = Instant::now();
    // One flush per chat, whatever the number of jobs naming it.
    let mut chats: Vec<(String, Vec<String>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (job, chat) in jobs {
        match index.get(&chat) {
            Some(&i) => chats[i].1.push(job),
            None => {
                index.insert(chat.clone(), chats.len());
                chats.push((chat, vec![job]));
            }
        }
    }
    // Futures collected in loops and joined: stream combinators over borrowing closures would
    // make the worker's future not `Send` for every lifetime, which `tokio::spawn` needs.
    let mut reading = Vec::with_capacity(chats.len());
    for (chat, _) in &chats {
        reading.push(read_chat(svc, chat));
    }
    let reads = join_all(reading).await;

    let mut outcomes: Vec<Option<Result<&'static str, FlushError>>> = Vec::new();
    let mut records = Vec::new();
    let mut record_of = Vec::new();
    for (i, read) in reads.into_iter().enumerate() {
        outcomes.push(match read {
            Ok(Read::Gone) => Some(Ok("gone")),
            Ok(Read::NotDecided) => Some(Ok("not_decided")),
            Ok(Read::Ready(record)) => {
                records.push(*record);
                record_of.push(i);
                None
            }
            Err(e) => Some(Err(e)),
        });
    }
    let mut writing = Vec::new();
    for chunk in records.chunks(SQL_BATCH) {
        writing.push(svc.store.write_transcripts(chunk));
    }
    let written = join_all(writing).await.into_iter().flatten();
    let mut forgetting = Vec::with_capacity(records.len());
    for (w, record) in written.zip(&records) {
        forgetting.push(forget_written(svc, w, record));
    }
    let forgotten = join_all(forgetting).await;
    for (i, result) in record_of.into_iter().zip(forgotten) {
        outcomes[i] = Some(result);
    }

    let elapsed = started.elapsed().as_secs_f64();
    let mut done = Vec::new();
    for ((chat, jobs), outcome) in chats.into_iter().zip(outcomes) {
        match outcome.expect("every chat has an outcome") {
            Ok(outcome) => {
                svc.metrics.flush_duration.observe(elapsed);
                svc.metrics.flush_jobs.with_label_values(&[outcome]).inc();
                done.extend(jobs);
            }
            Err(FlushError::Store(e)) if timeout_kind(&e) == Some("lock") => {
                // Another transaction (a frozen or cut-off node's, until the database ends
                // it) holds this chat's rows: not a failure, the job is simply retried.
                svc.metrics.flush_jobs.with_label_values(&["locked"]).inc();
                tracing::info!(chat, error = %e, "chat locked by another transaction; it stays pending and is retried");
            }
            Err(e) => {
                svc.metrics.flush_jobs.with_label_values(&["failed"]).inc();
                tracing::warn!(chat, error = %e, "flush failed; it stays pending and is retried");
            }
        }
    }
    if done.is_empty() {
        return;
    }
    if let Err(e) = svc.redis.ack_flush_jobs(&done).await {
        tracing::warn!(jobs = done.len(), error = %e, "ack failed; the jobs will be retried and found done");
    }
}

/// A chat as the flush finds it in Redis.
enum Read {
    Gone,
    NotDecided,
    Ready(Box<TranscriptRecord>),
}

impl Service {
    /// The whole transcript of `chat` as it stands in Redis, as stored entries.
    pub(super) async fn live_transcript(
        &self,
        chat: &str,
    ) -> Result<Vec<TranscriptEntry>, crate::redis::RedisError> {
        Ok(self
            .redis
            .entries_all_after(chat, "")
            .await?
            .into_iter()
            .map(transcript_entry)
            .collect())
    }
}

pub(super) fn transcript_entry(e: crate::protocol::Entry) -> TranscriptEntry {
    let internal = e.is_internal();
    TranscriptEntry {
        seq: e.seq,
        kind: if e.kind == crate::protocol::EntryKind::System {
            "system".into()
        } else {
            "message".into()
        },
        author: e.author,
        name: e.name,
        text: e.text,
        at: e.at,
        internal,
        event: e.event,
        data: e.data,
    }
}

/// A chat's routing record and transcript, read from Redis.
async fn read_chat(svc: &Service, chat: &str) -> Result<Read, FlushError> {
    // The record and the transcript side by side.
    let (r, entries, agents) = tokio::try_join!(
        svc.redis.chat_record(chat),
        svc.redis.entries_all_after(chat, ""),
        svc.redis.chat_agents(chat)
    )?;
    if r.is_empty() {
        return Ok(Read::Gone);
    }
    if r.get("state").map(String::as_str) != Some("decided") {
        return Ok(Read::NotDecided);
    }
    let g = |k: &str| r.get(k).cloned().unwrap_or_default();
    let num = |k: &str| r.get(k).and_then(|s| s.parse::<i64>().ok());
    let entries = entries.into_iter().map(transcript_entry).collect();
    let opt = |k: &str| r.get(k).filter(|v| !v.is_empty()).cloned();
    let verified = super::email_verified(&r);
    Ok(Read::Ready(Box::new(TranscriptRecord {
        chat_id: chat.to_string(),
        visitor_id: g("visitor"),
        contact_name: opt("name"),
        // Only an e-mail the site vouched for finds or creates a contact.
        contact_email: opt("email").filter(|_| verified),
        visitor_email: opt("email"),
        email_verified: verified && opt("email").is_some(),
        agents,
        question: opt("question"),
        queue: g("queue"),
        agent_id: num("agent"),
        started_at: num("created").unwrap_or(0),
        accepted_at: num("accepted"),
        ended_at: num("ended").unwrap_or_else(now_ms),
        end_reason: g("end_reason"),
        decision: g("decision"),
        interaction_id: num("interaction"),
        decided_by: num("decided_by"),
        decided_at: num("decided_at").unwrap_or_else(now_ms),
        entries,
    })))
}

/// Removes a written chat's keys from Redis, after a trashed chat's files are deleted from the
/// file storage and its `interaction.decided` webhook event is emitted (a failure of either leaves
/// the job pending: the write, the deletion and the event are idempotent). Returns the outcome
/// label.
async fn forget_written(
    svc: &Service,
    written: Result<FlushOutcome, StoreError>,
    record: &TranscriptRecord,
) -> Result<&'static str, FlushError> {
    let written = written?;
    let outcome = match written {
        FlushOutcome::Written { .. } => "written",
        FlushOutcome::AlreadyWritten { .. } => "already_written",
    };
    if record.decision == "trash" {
        svc.delete_chat_files(&record.entries).await?;
    }
    svc.hook_decided(record, &written)
        .await
        .map_err(|e| FlushError::Hook(e.message))?;
    let chat = record.chat_id.as_str();
    tokio::try_join!(
        svc.redis.forget_transcript(chat),
        svc.redis.forget_routing(chat)
    )?;
    Ok(outcome)
}

/// Flushes one decided chat at once, outside the stream (an erasure needs the chat in SQL
/// before it deletes the contact's rows); the chat's job in the stream later finds it gone.
pub(crate) async fn flush_now(svc: &Service, chat: &str) -> Result<&'static str, FlushError> {
    match read_chat(svc, chat).await? {
        Read::Gone => Ok("gone"),
        Read::NotDecided => Ok("not_decided"),
        Read::Ready(record) => {
            let written = svc.store.write_transcript(&record).await;
            forget_written(svc, written, &record).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::transcript_entry;
    use crate::protocol::{Entry, EntryKind};

    fn entry(event: &str) -> Entry {
        Entry {
            seq: "1-0".into(),
            kind: EntryKind::Message,
            author: "supervisor".into(),
            author_id: String::new(),
            name: "Sue".into(),
            text: "psst".into(),
            at: 1,
            client_msg_id: "w".into(),
            event: event.into(),
            data: None,
        }
    }

    /// The stored transcript and webhook payloads mark a whisper internal, nothing else.
    #[test]
    fn whispers_are_marked_internal_in_stored_entries() {
        let w = serde_json::to_value(transcript_entry(entry("whisper"))).unwrap();
        assert_eq!(w["internal"], true);
        let m = serde_json::to_value(transcript_entry(entry(""))).unwrap();
        assert!(m.get("internal").is_none(), "{m}");
    }
}
