//! The webhook delivery worker every node runs. Events come from the stream's consumer group
//! (`consumer::consume`): each is stored once in SQL (its exact body), sent to every enabled
//! endpoint that wants its type, and settled in one script: failed deliveries go to the retry
//! set, the entry is acknowledged. Retries are claimed from that set under a lease, like
//! timers, and sent again with exponential backoff and jitter until `webhooks.retry_for_ms`
//! after the event. Every attempt is a row of the endpoint's delivery log; an endpoint that
//! fails `webhooks.disable_after_failures` attempts in a row is disabled.
//!
//! At least once: a node that dies mid-delivery leaves its entry pending (another node takes
//! it over after `webhooks.claim_idle_ms` and skips endpoints the log shows delivered) or its
//! retry leased (it comes due again when the lease runs out). Receivers deduplicate on
//! `Switchboard-Event-Id`.

use super::send::{Attempt, Outcome, Request, Sender};
use crate::chat::audit::Actor;
use crate::chat::consumer::{consume, Pace, StreamWork};
use crate::chat::{now_ms, Service};
use crate::redis::{ClaimedRetry, RedisError};
use crate::store::{Delivery, StoredEvent, WebhookEndpoint};
use futures_util::future::join_all;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often each node looks for due retries.
const RETRY_POLL: Duration = Duration::from_millis(250);
/// How often each node writes the wanted types from SQL to Redis and samples its gauges.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);
/// Longest wait of a read for new events.
const BLOCK_MS: u64 = 250;

/// A delivery waiting in the retry set: `ENDPOINT|ATTEMPT|SINCE|EVENT`, where ATTEMPT is the
/// number of the attempt to make and SINCE the time retries count from (the event's time, or
/// a redelivery's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryMember {
    pub endpoint: i64,
    pub attempt: i64,
    pub since: i64,
    pub event: String,
}

impl RetryMember {
    pub fn encode(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.endpoint, self.attempt, self.since, self.event
        )
    }

    pub fn decode(s: &str) -> Option<RetryMember> {
        let mut parts = s.splitn(4, '|');
        Some(RetryMember {
            endpoint: parts.next()?.parse().ok()?,
            attempt: parts.next()?.parse().ok()?,
            since: parts.next()?.parse().ok()?,
            event: parts.next()?.to_string(),
        })
    }
}

/// The pause before attempt `attempt + 1`: `retry_base_ms` doubled per attempt made, capped
/// at `retry_max_delay_ms`, then scaled by a random factor in [0.5, 1) so that retries of many
/// events failing together spread out.
pub fn backoff_ms(w: &crate::config::Webhooks, attempt: i64, jitter: f64) -> i64 {
    let doublings = (attempt - 1).clamp(0, 40) as u32;
    let full = w
        .retry_base_ms
        .saturating_mul(1u64 << doublings.min(40))
        .min(w.retry_max_delay_ms);
    (full as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as i64
}

/// An event as read from the stream.
struct Event {
    stored: StoredEvent,
    chat_id: Option<String>,
}

fn parse_event(body: &str) -> Option<Event> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(Event {
        stored: StoredEvent {
            id: v["id"].as_str()?.to_string(),
            event_type: v["type"].as_str()?.to_string(),
            created_at: v["created_at"].as_i64().unwrap_or_else(now_ms),
            body: body.to_string(),
        },
        chat_id: v["data"]["chat_id"].as_str().map(str::to_string),
    })
}

pub async fn run(svc: Arc<Service>, stop: watch::Receiver<bool>) {
    let sender = match Sender::new(&svc.settings.webhooks) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "webhook HTTP client unusable; no webhooks from this node");
            return;
        }
    };
    let events = Events {
        svc: &svc,
        sender: &sender,
        consumer: svc.node.clone(),
    };
    let pace = Pace {
        what: "webhooks",
        claim_idle_ms: svc.settings.webhooks.claim_idle_ms,
        block_ms: BLOCK_MS,
    };
    tokio::join!(
        consume(
            &events,
            pace,
            || svc.metrics.redis_errors.inc(),
            stop.clone()
        ),
        retries(&svc, &sender, stop.clone()),
        upkeep(&svc, stop),
    );
}

/// The event stream, for `consumer::consume`. Items: (entry id, body, taken over).
struct Events<'a> {
    svc: &'a Service,
    sender: &'a Sender,
    consumer: String,
}

impl StreamWork for Events<'_> {
    type Item = (String, String, bool);

    async fn claim(&self) -> Result<Vec<Self::Item>, RedisError> {
        let w = &self.svc.settings.webhooks;
        let claimed = self
            .svc
            .redis
            .claim_stale_hook_events(&self.consumer, w.claim_idle_ms, w.batch)
            .await?;
        Ok(claimed.into_iter().map(|(id, b)| (id, b, true)).collect())
    }

    async fn read(&self, block_ms: u64) -> Result<Vec<Self::Item>, RedisError> {
        let w = &self.svc.settings.webhooks;
        let read = self
            .svc
            .redis
            .read_hook_events(&self.consumer, w.batch, block_ms)
            .await?;
        Ok(read.into_iter().map(|(id, b)| (id, b, false)).collect())
    }

    async fn handle(&self, items: Vec<Self::Item>) {
        let mut work = Vec::with_capacity(items.len());
        for (entry, body, claimed) in &items {
            work.push(self.event(entry, body, *claimed));
        }
        join_all(work).await;
    }

    /// Nothing wanted and nothing waiting: no endpoint is registered (the usual case).
    async fn idle(&self) -> bool {
        let r = &self.svc.redis;
        matches!(r.hooks_wanted_at_all().await, Ok(false))
            && matches!(r.hook_backlog().await, Ok((0, _)))
    }
}

impl Events<'_> {
    /// One event to every endpoint that wants it; left pending (taken over later) when the
    /// store cannot be read or written.
    async fn event(&self, entry: &str, body: &str, claimed: bool) {
        let svc = self.svc;
        let Some(ev) = parse_event(body) else {
            tracing::warn!(entry, "undecodable webhook event dropped");
            let _ = svc.redis.settle_hook_event(entry, &[]).await;
            return;
        };
        let endpoints = match svc.store.endpoints().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "webhook endpoints unreadable; the event waits");
                return;
            }
        };
        let targets: Vec<WebhookEndpoint> = endpoints
            .into_iter()
            .filter(|e| e.wants(&ev.stored.event_type))
            .collect();
        if !targets.is_empty() {
            if let Err(e) = svc
                .store
                .save_event(&ev.stored, ev.chat_id.as_deref())
                .await
            {
                tracing::warn!(error = %e, "webhook event not stored; it waits");
                return;
            }
        }
        let mut sends = Vec::with_capacity(targets.len());
        for ep in &targets {
            sends.push(self.first_attempt(ep, &ev.stored, claimed));
        }
        let retries: Vec<(String, i64)> = join_all(sends).await.into_iter().flatten().collect();
        if let Err(e) = svc.redis.settle_hook_event(entry, &retries).await {
            // Left pending: taken over later; endpoints logged as delivered are skipped.
            svc.metrics.redis_errors.inc();
            tracing::warn!(entry, error = %e, "webhook event not settled; it will be taken over");
        }
    }

    /// The first attempt for one endpoint; for an event taken over from a dead node, the
    /// attempt after those its log shows (none if one succeeded).
    async fn first_attempt(
        &self,
        ep: &WebhookEndpoint,
        ev: &StoredEvent,
        claimed: bool,
    ) -> Option<(String, i64)> {
        let attempt = if claimed {
            match self.svc.store.attempts(&ev.id, ep.id).await {
                Ok((_, true)) => return None,
                Ok((n, false)) => n + 1,
                Err(_) => 1,
            }
        } else {
            1
        };
        deliver(self.svc, self.sender, ep, ev, attempt, ev.created_at).await
    }
}

/// One attempt with its log row, metric and failure count; returns the retry to schedule
/// (member, due), if any.
async fn deliver(
    svc: &Service,
    sender: &Sender,
    ep: &WebhookEndpoint,
    ev: &StoredEvent,
    attempt: i64,
    since: i64,
) -> Option<(String, i64)> {
    let w = &svc.settings.webhooks;
    let a: Attempt = sender
        .send(&Request {
            url: &ep.url,
            secret: &ep.secret,
            event_id: &ev.id,
            event_type: &ev.event_type,
            body: &ev.body,
            attempt,
        })
        .await;
    let now = now_ms();
    let due = now + backoff_ms(w, attempt, rand::random::<f64>());
    let out_of_time = due > since.saturating_add(w.retry_for_ms as i64);
    let (outcome, retry) = match a.outcome {
        Outcome::Delivered => ("delivered", false),
        _ if out_of_time => ("given_up", false),
        Outcome::Failed => ("failed", true),
        Outcome::Refused => ("refused", true),
    };
    log_attempt(svc, ep.id, ev, attempt, outcome, &a).await;
    let mut disabled = false;
    if a.outcome == Outcome::Delivered {
        if let Err(e) = svc.store.endpoint_succeeded(ep.id).await {
            tracing::warn!(endpoint = ep.id, error = %e, "could not clear failure count");
        }
    } else {
        disabled = failed(svc, ep, a.error.as_deref().unwrap_or("failed")).await;
    }
    // The attempt that disabled the endpoint schedules nothing more (a redelivery can).
    (retry && !disabled).then(|| {
        let next = RetryMember {
            endpoint: ep.id,
            attempt: attempt + 1,
            since,
            event: ev.id.clone(),
        };
        (next.encode(), due)
    })
}

async fn log_attempt(
    svc: &Service,
    endpoint: i64,
    ev: &StoredEvent,
    attempt: i64,
    outcome: &str,
    a: &Attempt,
) {
    svc.metrics
        .webhook_deliveries
        .with_label_values(&[outcome])
        .inc();
    let row = Delivery {
        id: 0,
        endpoint_id: endpoint,
        event_id: ev.id.clone(),
        event_type: ev.event_type.clone(),
        attempt,
        at: now_ms(),
        outcome: outcome.to_string(),
        status: a.status.map(i64::from),
        error: a.error.clone(),
        duration_ms: a.duration_ms,
        node: svc.node.clone(),
    };
    if let Err(e) = svc.store.record_delivery(&row).await {
        tracing::warn!(endpoint, event = %ev.id, error = %e, "delivery not logged");
    }
}

/// Counts a failed attempt; the one that reaches the threshold disables the endpoint, which
/// is logged, audited and taken out of the wanted types. True when this one disabled it.
async fn failed(svc: &Service, ep: &WebhookEndpoint, error: &str) -> bool {
    let w = &svc.settings.webhooks;
    let reason = format!(
        "{} failed attempts in a row; last: {error}",
        w.disable_after_failures
    );
    match svc
        .store
        .endpoint_failed(ep.id, i64::from(w.disable_after_failures), &reason)
        .await
    {
        Ok(f) if f.disabled_now => {
            tracing::warn!(endpoint = ep.id, url = %ep.url, "webhook endpoint disabled after repeated failures");
            let _ = svc
                .audit(
                    &Actor::system(),
                    "webhook.disabled",
                    &format!("webhook:{}", ep.id),
                    serde_json::json!({ "consecutive_failures": f.consecutive }),
                )
                .await;
            if let Err(e) = svc.sync_hook_types().await {
                tracing::warn!(error = %e.message, "wanted webhook types not updated");
            }
            if let Ok(n) = svc.store.failed_endpoints().await {
                svc.metrics.webhook_endpoints_disabled.set(n);
            }
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::warn!(endpoint = ep.id, error = %e, "failure not counted");
            false
        }
    }
}

/// The retry loop: due retries claimed under a lease and attempted side by side.
async fn retries(svc: &Service, sender: &Sender, mut stop: watch::Receiver<bool>) {
    let w = &svc.settings.webhooks;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RETRY_POLL) => {}
            _ = stop.changed() => return,
        }
        let due = match svc
            .redis
            .claim_hook_retries(now_ms(), w.claim_idle_ms, w.batch)
            .await
        {
            Ok(d) => d,
            Err(e) => {
                svc.metrics.redis_errors.inc();
                tracing::warn!(error = %e, "claiming webhook retries failed");
                continue;
            }
        };
        let mut work = Vec::with_capacity(due.len());
        for c in &due {
            work.push(retry(svc, sender, c));
        }
        join_all(work).await;
    }
}

async fn retry(svc: &Service, sender: &Sender, c: &ClaimedRetry) {
    let Some(m) = RetryMember::decode(&c.member) else {
        tracing::warn!(member = %c.member, "undecodable webhook retry dropped");
        let _ = svc.redis.hook_retry_done(c).await;
        return;
    };
    // A store that cannot be read leaves the claim to run out: it comes due again.
    let (ep, ev) = match tokio::try_join!(svc.store.endpoint(m.endpoint), svc.store.event(&m.event))
    {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "webhook retry waits for the store");
            return;
        }
    };
    let next = match (ep, ev) {
        (Some(ep), Some(ev)) if ep.enabled => {
            deliver(svc, sender, &ep, &ev, m.attempt, m.since).await
        }
        (Some(ep), Some(ev)) => {
            let a = Attempt {
                outcome: Outcome::Failed,
                status: None,
                error: Some("the endpoint is disabled".into()),
                duration_ms: 0,
            };
            log_attempt(svc, ep.id, &ev, m.attempt, "dropped", &a).await;
            None
        }
        // Deleted endpoint, or an event erased or past retention: nothing to send.
        _ => {
            svc.metrics
                .webhook_deliveries
                .with_label_values(&["dropped"])
                .inc();
            None
        }
    };
    let settled = match next {
        Some((member, due)) => svc
            .redis
            .hook_retry_again(c, &member, due)
            .await
            .map(|_| ()),
        None => svc.redis.hook_retry_done(c).await,
    };
    if let Err(e) = settled {
        svc.metrics.redis_errors.inc();
        tracing::warn!(error = %e, "webhook retry not settled; it comes due again");
    }
}

/// Keeps Redis's wanted types in line with SQL (after a Redis that lost its data, or a
/// change whose write to Redis failed) and samples the gauges.
async fn upkeep(svc: &Service, mut stop: watch::Receiver<bool>) {
    loop {
        if let Err(e) = svc.sync_hook_types().await {
            tracing::debug!(error = %e.message, "wanted webhook types not synchronised");
        }
        if let Ok(n) = svc.store.failed_endpoints().await {
            svc.metrics.webhook_endpoints_disabled.set(n);
        }
        if let Ok((events, retries)) = svc.redis.hook_backlog().await {
            let g = &svc.metrics.webhook_pending;
            g.with_label_values(&["events"]).set(events as i64);
            g.with_label_values(&["retries"]).set(retries as i64);
        }
        tokio::select! {
            _ = tokio::time::sleep(UPKEEP_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_round_trip() {
        let m = RetryMember {
            endpoint: 3,
            attempt: 2,
            since: 1_700_000_000_000,
            event: "evt_ab|c_ended".into(),
        };
        assert_eq!(RetryMember::decode(&m.encode()), Some(m));
        assert_eq!(RetryMember::decode("x|1|2|e"), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut w = crate::config::Settings::defaults().webhooks;
        w.retry_base_ms = 1_000;
        w.retry_max_delay_ms = 10_000;
        assert_eq!(backoff_ms(&w, 1, 1.0), 1_000);
        assert_eq!(backoff_ms(&w, 1, 0.0), 500);
        assert_eq!(backoff_ms(&w, 3, 1.0), 4_000);
        assert_eq!(backoff_ms(&w, 10, 1.0), 10_000);
        assert_eq!(backoff_ms(&w, 1_000, 0.0), 5_000);
    }
}
