//! The flush worker every node runs: reads flush jobs from the Redis stream's consumer group,
//! writes each decided chat's transcript to the SQL store in one transaction (idempotent on the
//! chat id), then removes the chat's Redis keys and acknowledges. Jobs a dead node left
//! unacknowledged are taken over after `flush.claim_idle_ms`.

use super::{now_ms, Service};
use crate::store::{FlushOutcome, TranscriptEntry, TranscriptRecord};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    #[error(transparent)]
    Redis(#[from] crate::redis::RedisError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let consumer = svc.node.clone();
    let claim_every = (svc.settings.flush.claim_idle_ms / 2).max(100) as i64;
    let mut last_claim = 0i64;
    loop {
        if *stop.borrow() {
            return;
        }
        let mut jobs = Vec::new();
        if now_ms() - last_claim >= claim_every {
            last_claim = now_ms();
            match svc
                .redis
                .claim_stale_flush_jobs(
                    &consumer,
                    svc.settings.flush.claim_idle_ms,
                    svc.settings.flush.batch,
                )
                .await
            {
                Ok(j) => jobs.extend(j),
                Err(e) => tracing::warn!(error = %e, "claiming stale flush jobs failed"),
            }
        }
        let read = tokio::select! {
            r = svc.redis.read_flush_jobs(&consumer, svc.settings.flush.batch, 500) => r,
            _ = stop.changed() => return,
        };
        match read {
            Ok(j) => jobs.extend(j),
            Err(e) => {
                svc.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "reading flush jobs failed");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
        for (job, chat) in jobs {
            finish_job(&svc, &job, &chat).await;
        }
    }
}

/// Runs one job to completion or leaves it pending for a retry.
pub async fn finish_job(svc: &Service, job: &str, chat: &str) {
    let started = Instant::now();
    match flush_chat(svc, chat).await {
        Ok(outcome) => {
            svc.metrics
                .flush_duration
                .observe(started.elapsed().as_secs_f64());
            svc.metrics.flush_jobs.with_label_values(&[outcome]).inc();
            if let Err(e) = svc.redis.ack_flush_job(job).await {
                tracing::warn!(job, error = %e, "ack failed; the job will be retried and found done");
            }
        }
        Err(e) => {
            svc.metrics.flush_jobs.with_label_values(&["failed"]).inc();
            tracing::warn!(chat, error = %e, "flush failed; it stays pending and is retried");
        }
    }
}

/// Writes one chat and forgets it in Redis. Returns the outcome label.
async fn flush_chat(svc: &Service, chat: &str) -> Result<&'static str, FlushError> {
    let r = svc.redis.chat_record(chat).await?;
    if r.is_empty() {
        return Ok("gone");
    }
    if r.get("state").map(String::as_str) != Some("decided") {
        return Ok("not_decided");
    }
    let g = |k: &str| r.get(k).cloned().unwrap_or_default();
    let num = |k: &str| r.get(k).and_then(|s| s.parse::<i64>().ok());
    let mut entries = Vec::new();
    let mut after = String::new();
    loop {
        let page = svc.redis.entries_after(chat, &after, 1000).await?;
        let full = page.len() == 1000;
        if let Some(l) = page.last() {
            after = l.seq.clone();
        }
        entries.extend(page.into_iter().map(|e| TranscriptEntry {
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
            event: e.event,
            data: e.data,
        }));
        if !full {
            break;
        }
    }
    let opt = |k: &str| r.get(k).filter(|v| !v.is_empty()).cloned();
    let record = TranscriptRecord {
        chat_id: chat.to_string(),
        visitor_id: g("visitor"),
        contact_name: opt("name"),
        contact_email: opt("email"),
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
    };
    let outcome = match svc.store.write_transcript(&record).await? {
        FlushOutcome::Written { .. } => "written",
        FlushOutcome::AlreadyWritten { .. } => "already_written",
    };
    svc.redis.forget_transcript(chat).await?;
    svc.redis.forget_routing(chat).await?;
    Ok(outcome)
}
