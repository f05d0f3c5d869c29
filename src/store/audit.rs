//! The audit log of admin and supervisor actions: who did what to which target, when, with a
//! JSON detail of kinds and counts (never the data an action touched or erased).

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_ms, Call, Store};

/// One recorded action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    /// The agent who acted; `None` for the system (retention, an endpoint disabled after
    /// repeated failures).
    pub actor_id: Option<i64>,
    /// The actor's username at the time, or `system`.
    pub actor: String,
    /// What was done, e.g. `webhook.create`, `contact.erase`, `agent.create`.
    pub action: String,
    /// What it was done to, e.g. `webhook:3`, `contact:17`; empty when nothing in particular.
    pub target: String,
    pub detail: serde_json::Value,
}

/// What a caller records; the store adds the id and the time.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: serde_json::Value,
}

fn entry_from_row(row: &AnyRow) -> Result<AuditEntry, sqlx::Error> {
    let detail: String = row.try_get("detail")?;
    Ok(AuditEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        actor_id: row.try_get("actor_id")?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}

impl Store {
    pub fn record_audit<'a>(&'a self, e: &'a NewAuditEntry) -> Call<'a, i64> {
        self.bounded(async move {
            let row = sqlx::query(
                "INSERT INTO audit_log (at, actor_id, actor, action, target, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(now_ms())
            .bind(e.actor_id)
            .bind(e.actor.as_str())
            .bind(e.action.as_str())
            .bind(e.target.as_str())
            .bind(e.detail.to_string())
            .fetch_one(&self.pool)
            .await?;
            Ok(row.try_get("id")?)
        })
    }

    /// Newest first: at most `limit` entries with an id below `before`, of one action if given.
    pub fn audit_entries<'a>(
        &'a self,
        before: Option<i64>,
        limit: i64,
        action: Option<&'a str>,
    ) -> Call<'a, Vec<AuditEntry>> {
        self.bounded(async move {
            let rows = sqlx::query(
                "SELECT id, at, actor_id, actor, action, target, detail FROM audit_log \
                 WHERE id < $1 AND ($2 = '' OR action = $2) ORDER BY id DESC LIMIT $3",
            )
            .bind(before.unwrap_or(i64::MAX))
            .bind(action.unwrap_or(""))
            .bind(limit.clamp(1, 500))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(entry_from_row).collect::<Result<_, _>>()?)
        })
    }
}
