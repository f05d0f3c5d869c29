//! The retention job: every `retention.interval_ms` one node (whichever takes the `retention`
//! lease in Redis) deletes what is older than each kind's window, oldest first, in batches of
//! `retention.batch`, renewing the lease after every batch; a node that loses the lease (it
//! stalled past it) stops at once. Counted in `switchboard_retention_purged_total{kind}`;
//! a run that deleted anything leaves an audit entry.

use super::audit::Actor;
use super::{now_ms, ChatResult, Service};
use crate::redis::LeaseMode;
use crate::store::PurgeKind;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

const LEASE: &str = "retention";
const DAY_MS: i64 = 86_400_000;
/// Pause between two batches, so a long purge leaves the store room for live traffic.
const BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    /// False when another node held the lease: this one did nothing.
    pub ran: bool,
    /// (kind, rows or files deleted, batches) for each kind with a window.
    pub kinds: Vec<(String, u64, u32)>,
}

impl PurgeReport {
    pub fn purged(&self, kind: &str) -> u64 {
        self.kinds
            .iter()
            .filter(|(k, _, _)| k == kind)
            .map(|(_, n, _)| *n)
            .sum()
    }

    pub fn batches(&self, kind: &str) -> u32 {
        self.kinds
            .iter()
            .filter(|(k, _, _)| k == kind)
            .map(|(_, _, b)| *b)
            .sum()
    }
}

/// What a kind's batch deletes.
#[derive(Clone, Copy)]
enum Target {
    Sql(PurgeKind),
    Files,
}

pub async fn run(svc: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_millis(svc.settings.retention.interval_ms);
    loop {
        // The first run waits one interval: nodes starting together do not race for the lease.
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = purge_once(&svc).await {
            svc.metrics
                .retention_runs
                .with_label_values(&["failed"])
                .inc();
            tracing::warn!(error = %e.message, "retention run failed; tried again next interval");
        }
    }
}

/// One run, if this node gets the lease.
pub async fn purge_once(svc: &Service) -> ChatResult<PurgeReport> {
    let r = &svc.settings.retention;
    let holder = svc.node.as_str();
    if !svc
        .redis
        .lease(LEASE, holder, r.lease_ms, LeaseMode::Take)
        .await?
    {
        svc.metrics
            .retention_runs
            .with_label_values(&["skipped"])
            .inc();
        return Ok(PurgeReport::default());
    }
    let outcome = purge_all(svc).await;
    let _ = svc
        .redis
        .lease(LEASE, holder, r.lease_ms, LeaseMode::Release)
        .await;
    let report = outcome?;
    svc.metrics
        .retention_runs
        .with_label_values(&["done"])
        .inc();
    let total: u64 = report.kinds.iter().map(|(_, n, _)| n).sum();
    if total > 0 {
        let detail: serde_json::Map<String, serde_json::Value> = report
            .kinds
            .iter()
            .map(|(k, n, _)| (k.clone(), json!(n)))
            .collect();
        svc.audit(&Actor::system(), "retention.purge", "", detail.into())
            .await?;
    }
    Ok(report)
}

async fn purge_all(svc: &Service) -> ChatResult<PurgeReport> {
    let r = &svc.settings.retention;
    let kinds = [
        (
            "transcripts",
            r.transcripts_days,
            Target::Sql(PurgeKind::Transcripts),
        ),
        ("files", r.files_days, Target::Files),
        (
            "offline_messages",
            r.offline_messages_days,
            Target::Sql(PurgeKind::OfflineMessages),
        ),
        (
            "webhook_log",
            r.webhook_log_days,
            Target::Sql(PurgeKind::WebhookLog),
        ),
        ("audit", r.audit_days, Target::Sql(PurgeKind::AuditLog)),
    ];
    let mut report = PurgeReport {
        ran: true,
        kinds: Vec::new(),
    };
    for (name, days, target) in kinds {
        if days == 0 {
            continue;
        }
        let cutoff = now_ms() - i64::from(days) * DAY_MS;
        let (rows, batches, lease_held) = purge_kind(svc, name, target, cutoff).await?;
        report.kinds.push((name.to_string(), rows, batches));
        if !lease_held {
            tracing::warn!("retention lease lost (this node stalled); stopping the run");
            break;
        }
    }
    Ok(report)
}

/// Batches of one kind until nothing older is left; returns (deleted, batches, lease held).
async fn purge_kind(
    svc: &Service,
    name: &str,
    target: Target,
    cutoff: i64,
) -> ChatResult<(u64, u32, bool)> {
    let r = &svc.settings.retention;
    let (mut total, mut batches) = (0u64, 0u32);
    loop {
        let (rows, more) = match target {
            Target::Sql(kind) => {
                let p = svc
                    .store
                    .purge_batch(kind, cutoff, i64::from(r.batch))
                    .await?;
                (p.rows, p.more)
            }
            Target::Files => {
                let ids = svc
                    .files
                    .stored_before(cutoff, r.batch as usize)
                    .await
                    .map_err(files_unavailable)?;
                for id in &ids {
                    svc.files.remove(id).await.map_err(files_unavailable)?;
                }
                (ids.len() as u64, ids.len() >= r.batch as usize)
            }
        };
        batches += 1;
        total += rows;
        svc.metrics
            .retention_purged
            .with_label_values(&[name])
            .inc_by(rows);
        let held = svc
            .redis
            .lease(LEASE, &svc.node, r.lease_ms, LeaseMode::Renew)
            .await?;
        if !held || !more {
            return Ok((total, batches, held));
        }
        tokio::time::sleep(BETWEEN_BATCHES).await;
    }
}

fn files_unavailable(e: crate::store::FilesError) -> super::ChatError {
    tracing::warn!(error = %e, "retention: file storage failure");
    super::ChatError::new(
        crate::protocol::ErrorCode::Unavailable,
        "the file storage is unavailable",
    )
}
