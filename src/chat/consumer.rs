//! The loop of a Redis stream consumer group every node runs (flush jobs, webhook events):
//! every half claim period take over what a node left unfinished for the claim period (it
//! died), read new entries (blocking a while when nothing was taken over), hand the batch to
//! the work, repeat. A failed read is logged and retried after a pause; the work decides
//! what to acknowledge, so an entry it leaves is taken over later (at least once).

use crate::redis::RedisError;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// What a consumer does with its group's entries.
pub(crate) trait StreamWork: Sync {
    type Item: Send;
    /// Entries another consumer left unacknowledged for the claim period.
    fn claim(&self) -> impl Future<Output = Result<Vec<Self::Item>, RedisError>> + Send;
    /// New entries for this consumer, waiting up to `block_ms` for some.
    fn read(
        &self,
        block_ms: u64,
    ) -> impl Future<Output = Result<Vec<Self::Item>, RedisError>> + Send;
    /// Works a batch to the end (acknowledging what it finished).
    fn handle(&self, items: Vec<Self::Item>) -> impl Future<Output = ()> + Send;
    /// True while there is nothing to consume at all (the loop then waits instead of reading).
    fn idle(&self) -> impl Future<Output = bool> + Send {
        async { false }
    }
}

/// How a consumer loop paces itself.
pub(crate) struct Pace {
    /// For logs.
    pub what: &'static str,
    pub claim_idle_ms: u64,
    /// Longest wait of a read for new entries.
    pub block_ms: u64,
}

/// Runs `work` until `stop` turns true; `on_error` counts a failed read.
pub(crate) async fn consume<W: StreamWork>(
    work: &W,
    pace: Pace,
    on_error: impl Fn(),
    mut stop: watch::Receiver<bool>,
) {
    let claim_every = Duration::from_millis((pace.claim_idle_ms / 2).max(100));
    let mut last_claim: Option<tokio::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if work.idle().await {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let mut items = Vec::new();
        if last_claim.is_none_or(|t| t.elapsed() >= claim_every) {
            last_claim = Some(tokio::time::Instant::now());
            match work.claim().await {
                Ok(i) => items.extend(i),
                Err(e) => {
                    tracing::warn!(error = %e, "{}: claiming stale entries failed", pace.what)
                }
            }
        }
        // Taken-over entries are worked on at once; otherwise wait for new ones.
        let block_ms = if items.is_empty() { pace.block_ms } else { 1 };
        let read = tokio::select! {
            r = work.read(block_ms) => r,
            _ = stop.changed() => return,
        };
        match read {
            Ok(i) => items.extend(i),
            Err(e) => {
                on_error();
                tracing::warn!(error = %e, "{}: reading new entries failed", pace.what);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        if !items.is_empty() {
            work.handle(items).await;
        }
    }
}
