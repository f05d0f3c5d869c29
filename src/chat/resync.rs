//! Keeps this node's pub/sub subscriptions whole when its subscriber connection to Redis comes
//! back after a drop (failover, restart, network blip), and makes the local clients catch up on
//! what was published meanwhile.
//!
//! A re-established connection follows nothing, and entries published while it was down never
//! arrive. So: mark a lapse of the subscription generation at once (before anything is
//! subscribed again: every live entry that arrives during the lapse reaches a connection only
//! through a read of its chat's stream, `chat::delivery`), subscribe again to every channel the
//! node follows, end the lapse, then tell the local connections to catch up (`Out::CatchUp`)
//! so what was missed reaches them even if their chat stays quiet. Clients stay connected and
//! see no gap. If subscribing again fails (Redis busy, refused by an ACL), the connections
//! still catch up with what the streams hold, and the node keeps trying with a growing pause;
//! the lapse ends only with a success, after which they are told once more.
//!
//! Reconnects that arrive together (on a Redis Cluster, one per master whose connection
//! dropped) are handled as one: one round of subscribing and one catch-up per connection.

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
        svc.hub.generation.lapse_begins();
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

/// Subscribes again until it succeeds, telling the connections to catch up after the first
/// attempt and again after a late success. A new reconnect meanwhile starts the round over (after
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
                svc.hub.generation.lapse_ends();
                tracing::warn!(
                    channels,
                    "subscriber connection to Redis re-established and subscribed again; local connections catch up from the streams"
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
                    // The connections catch up now rather than wait, possibly long, without
                    // live traffic.
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

/// Tells every local connection to catch up from the streams: live traffic may have been
/// missed (`cause`: `lagged` or `reconnected`). The generation moved on before.
pub(super) fn resync(svc: &Service, cause: &str) {
    svc.metrics.resyncs.with_label_values(&[cause]).inc();
    svc.hub.catch_up_all();
}
