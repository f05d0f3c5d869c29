//! Keeps this node's pub/sub subscriptions whole when its subscriber connection to Redis comes
//! back after a drop (failover, restart, network blip), and makes the local clients catch up on
//! what was published meanwhile.
//!
//! A re-established connection follows nothing, and entries published while it was down never
//! arrive. So: subscribe again to every channel the node follows, then close the local
//! connections (4408) so each resumes from its last sequence number (sequence numbers are not
//! contiguous, so a client cannot see the gap itself). If subscribing again fails (Redis busy,
//! refused by an ACL), the clients are still told to resume, and the node keeps trying with a
//! growing pause; once it succeeds it tells them once more, since whatever was published to a
//! channel in between reached nobody here.
//!
//! Reconnects that arrive together (on a Redis Cluster, one per master whose connection
//! dropped) are handled as one: one round of subscribing and one close per client.

use super::Service;
use crate::redis::Reconnects;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// How long to wait for more reconnects after the first before acting on all of them (fred
/// reconnects a cluster's connections together and reports each server: they come within a
/// millisecond of each other).
const SETTLE: Duration = Duration::from_millis(50);
/// First and longest pause between attempts to subscribe again.
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let mut reconnects = svc.redis.subscriber_reconnects();
    loop {
        tokio::select! {
            r = reconnects.recv() => {
                if matches!(r, Err(broadcast::error::RecvError::Closed)) {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
        if !settle(&mut reconnects, &mut stop).await {
            return;
        }
        if !subscribe_again(&svc, &mut reconnects, &mut stop).await {
            return;
        }
    }
}

/// Swallows the reconnects that follow within `SETTLE`; false when the node stops.
async fn settle(reconnects: &mut Reconnects, stop: &mut watch::Receiver<bool>) -> bool {
    let until = tokio::time::Instant::now() + SETTLE;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => return true,
            r = reconnects.recv() => if matches!(r, Err(broadcast::error::RecvError::Closed)) {
                return false;
            },
            _ = stop.changed() => return false,
        }
    }
}

/// Subscribes again until it succeeds, telling the clients to resume after the first attempt
/// and again after a late success. A new reconnect meanwhile starts the round over (after
/// settling). False when the node stops.
async fn subscribe_again(
    svc: &Service,
    reconnects: &mut Reconnects,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let mut pause = RETRY_FIRST;
    let mut failed_before = false;
    loop {
        match svc.redis.resubscribe().await {
            Ok(channels) => {
                tracing::warn!(
                    channels,
                    "subscriber connection to Redis re-established and subscribed again; closing local connections so they resume"
                );
                resync(svc, "reconnected");
                return true;
            }
            Err(e) => {
                svc.metrics.resubscribe_failures.inc();
                tracing::error!(
                    error = %e,
                    retry_in_ms = pause.as_millis() as u64,
                    "subscriber connection re-established but subscribing again failed; retrying"
                );
                if !failed_before {
                    // The clients resume now (their own follows subscribe what they need, or
                    // fail loudly) rather than wait, possibly long, without live traffic.
                    resync(svc, "reconnected");
                    failed_before = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            r = reconnects.recv() => {
                if matches!(r, Err(broadcast::error::RecvError::Closed)) || !settle(reconnects, stop).await {
                    return false;
                }
            }
            _ = stop.changed() => return false,
        }
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// Closes every local connection (4408) so each reconnects and resumes from its last sequence
/// number: live traffic may have been missed (`cause`: `lagged` or `reconnected`).
pub(super) fn resync(svc: &Service, cause: &str) {
    svc.metrics.resyncs.with_label_values(&[cause]).inc();
    svc.hub.kick_all();
}
