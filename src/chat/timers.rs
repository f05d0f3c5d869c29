//! The timer loop every node runs: claims due timers from Redis (at-least-once, with a lease)
//! and runs their handlers, beats presence (`chat::presence`, whose handlers re-check a
//! party's presence before acting), and sweeps queues that still have waiting chats (so a node
//! that died between two steps never leaves a request stuck).

use super::{now_ms, Service};
use crate::protocol::{Decision, ServerFrame};
use crate::redis::RedisError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const SWEEP_EVERY_MS: i64 = 1_000;

pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let poll = Duration::from_millis(svc.settings.chat.timer_poll_ms);
    let heartbeat_ms = svc.presence.heartbeat_ms() as i64;
    let (mut last_sweep, mut last_beat) = (0i64, 0i64);
    // A failed beat is tried again at the next poll: after an outage the node re-asserts
    // its connections as soon as Redis takes writes again.
    let mut beat_ok = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = stop.changed() => return,
        }
        let now = now_ms();
        if !beat_ok || now - last_beat >= heartbeat_ms {
            last_beat = now;
            beat_ok = svc.presence.heartbeat(&svc).await;
        }
        fire_due(&svc).await;
        if now - last_sweep >= SWEEP_EVERY_MS {
            last_sweep = now;
            if let Ok(queues) = svc.redis.busy_queues().await {
                for q in queues {
                    svc.route(&q).await;
                }
            }
        }
    }
}

async fn fire_due(svc: &Service) {
    let due = match svc
        .redis
        .claim_timers(now_ms(), svc.settings.chat.timer_lease_ms, 100)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            svc.metrics.redis_errors.inc();
            tracing::warn!(error = %e, "claiming timers failed");
            return;
        }
    };
    for (member, leased) in due {
        let Some((kind, id)) = member.split_once(':') else {
            continue;
        };
        svc.metrics.timers_fired.with_label_values(&[kind]).inc();
        match fire(svc, kind, id).await {
            Ok(()) => {
                let _ = svc.redis.timer_done(&member, leased).await;
            }
            // Left in the set: it fires again when the lease runs out.
            Err(e) => {
                tracing::warn!(timer = %member, error = ?e, "timer handler failed; will retry")
            }
        }
    }
}

async fn fire(svc: &Service, kind: &str, id: &str) -> Result<(), super::ChatError> {
    match kind {
        "offer" => svc.offer_timed_out(id).await,
        "invite" => svc.invitation_expired(id).await,
        "grace" => svc.visitor_grace_over(id).await,
        "agentgone" | "unroutable" => svc.agent_absent(kind, id).await,
        "join" => {
            let r = svc.redis.chat_record(id).await?;
            let g = |k: &str| r.get(k).cloned().unwrap_or_default();
            if g("state") != "active" {
                return Ok(());
            }
            let agent_name = svc.agent_display_name(&g("agent")).await;
            let at = g("accepted").parse().unwrap_or_else(|_| now_ms());
            svc.apply_join(id, &g("agent"), &agent_name, at).await
        }
        "end" => svc.apply_end(id).await,
        super::offline::OFFLINE_HOOK_TIMER => svc.offline_hook_due(id).await,
        "wrapup" => match svc
            .redis
            .decide(
                id,
                "",
                "keep",
                None,
                now_ms(),
                svc.settings.chat.timer_lease_ms,
            )
            .await
        {
            Ok(()) => {
                let agent = svc.redis.chat_record(id).await?.get("agent").cloned();
                if let Some(agent) = agent {
                    let frame = ServerFrame::Decided {
                        chat_id: id.into(),
                        decision: Decision::Keep,
                    };
                    svc.tell(&format!("a:{agent}"), &frame).await;
                }
                svc.apply_flush(id).await
            }
            Err(RedisError::Refused(_)) => Ok(()),
            Err(e) => Err(e.into()),
        },
        "flush" => {
            if svc.redis.chat_record(id).await?.is_empty() {
                return Ok(());
            }
            svc.apply_flush(id).await
        }
        other => {
            tracing::warn!(kind = other, "unknown timer kind dropped");
            Ok(())
        }
    }
}
