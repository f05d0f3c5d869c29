//! Outgoing webhooks in SQL: the endpoints admins register, each event's exact body (kept for
//! retries and redeliveries) and the per-endpoint delivery log, one row per attempt.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::row::flag;
use super::{now_ms, Call, Store, StoreError};

/// An endpoint as admins see it. The secret is never serialized: it is shown once, when it
/// is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    pub id: i64,
    pub url: String,
    #[serde(skip_serializing, default)]
    pub secret: String,
    /// The event types sent to it.
    pub events: Vec<String>,
    pub description: String,
    pub enabled: bool,
    /// Failed attempts since the last success.
    pub consecutive_failures: i64,
    /// Why the system disabled it (repeated failures); `None` when an admin did or it is on.
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl WebhookEndpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.enabled && self.events.iter().any(|e| e == event_type)
    }
}

/// What an admin may change; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    /// Turning an endpoint on clears its failure count and the reason it was disabled.
    pub enabled: Option<bool>,
}

/// One delivery attempt in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first attempt; a redelivery counts on from the attempts before it.
    pub attempt: i64,
    pub at: i64,
    /// `delivered`, `failed` (retried), `given_up` (retries exhausted), `refused` (the
    /// address is not allowed) or `dropped` (the endpoint was disabled or deleted meanwhile).
    pub outcome: String,
    /// The HTTP status, when a response came.
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// The node that made the attempt.
    pub node: String,
}

/// An event as stored for retries: its type and the exact body sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub id: String,
    pub event_type: String,
    pub created_at: i64,
    pub body: String,
}

/// What recording a failed attempt did to the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub consecutive: i64,
    /// This failure reached the threshold and disabled the endpoint (only one caller sees it).
    pub disabled_now: bool,
}

macro_rules! endpoint_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, url, secret, events, description, enabled, consecutive_failures, \
             disabled_reason, created_at, updated_at FROM webhook_endpoints ",
            $tail
        )
    };
}

fn endpoint_from_row(row: &AnyRow) -> Result<WebhookEndpoint, sqlx::Error> {
    let events: String = row.try_get("events")?;
    Ok(WebhookEndpoint {
        id: row.try_get("id")?,
        url: row.try_get("url")?,
        secret: row.try_get("secret")?,
        events: split_events(&events),
        description: row.try_get("description")?,
        enabled: flag(row, "enabled")?,
        consecutive_failures: row.try_get("consecutive_failures")?,
        disabled_reason: row.try_get("disabled_reason")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        id: row.try_get("id")?,
        endpoint_id: row.try_get("endpoint_id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        attempt: row.try_get("attempt")?,
        at: row.try_get("at")?,
        outcome: row.try_get("outcome")?,
        status: row.try_get("status")?,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
        node: row.try_get("node")?,
    })
}

fn split_events(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

impl Store {
    pub fn create_endpoint<'a>(
        &'a self,
        url: &'a str,
        secret: &'a str,
        events: &'a [String],
        description: &'a str,
        enabled: bool,
    ) -> Call<'a, WebhookEndpoint> {
        self.bounded(async move {
            let now = now_ms();
            let row = sqlx::query(
                "INSERT INTO webhook_endpoints (url, secret, events, description, enabled, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
            )
            .bind(url)
            .bind(secret)
            .bind(events.join(","))
            .bind(description)
            .bind(enabled)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
            let id: i64 = row.try_get("id")?;
            self.endpoint(id).await?.ok_or(StoreError::NotFound)
        })
    }

    /// Applies `change` in one statement; `NotFound` when there is no such endpoint.
    pub fn update_endpoint<'a>(
        &'a self,
        id: i64,
        change: &'a EndpointChange,
    ) -> Call<'a, WebhookEndpoint> {
        self.bounded(async move {
            let reenable = change.enabled == Some(true);
            let done = sqlx::query(
                "UPDATE webhook_endpoints SET url = COALESCE($1, url), \
                 secret = COALESCE($2, secret), events = COALESCE($3, events), \
                 description = COALESCE($4, description), enabled = COALESCE($5, enabled), \
                 consecutive_failures = CASE WHEN $6 THEN 0 ELSE consecutive_failures END, \
                 disabled_reason = CASE WHEN $6 THEN NULL ELSE disabled_reason END, \
                 updated_at = $7 WHERE id = $8",
            )
            .bind(change.url.as_deref())
            .bind(change.secret.as_deref())
            .bind(change.events.as_ref().map(|e| e.join(",")))
            .bind(change.description.as_deref())
            .bind(change.enabled)
            .bind(reenable)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            self.endpoint(id).await?.ok_or(StoreError::NotFound)
        })
    }

    /// Deletes an endpoint and its delivery log; false when there was none.
    pub fn delete_endpoint<'a>(&'a self, id: i64) -> Call<'a, bool> {
        self.bounded(async move {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    pub fn endpoint<'a>(&'a self, id: i64) -> Call<'a, Option<WebhookEndpoint>> {
        self.bounded(async move {
            let row = sqlx::query(endpoint_sql!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.as_ref().map(endpoint_from_row).transpose()?)
        })
    }

    /// Every endpoint, oldest first.
    pub fn endpoints<'a>(&'a self) -> Call<'a, Vec<WebhookEndpoint>> {
        self.bounded(async move {
            let rows = sqlx::query(endpoint_sql!("ORDER BY id"))
                .fetch_all(&self.pool)
                .await?;
            Ok(rows
                .iter()
                .map(endpoint_from_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Stores an event's body once (a second call with the same id keeps the first).
    pub fn save_event<'a>(&'a self, e: &'a StoredEvent, chat_id: Option<&'a str>) -> Call<'a, ()> {
        self.bounded(async move {
            sqlx::query(
                "INSERT INTO webhook_events (id, type, chat_id, created_at, body) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(e.id.as_str())
            .bind(e.event_type.as_str())
            .bind(chat_id)
            .bind(e.created_at)
            .bind(e.body.as_str())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    pub fn event<'a>(&'a self, id: &'a str) -> Call<'a, Option<StoredEvent>> {
        self.bounded(async move {
            let row =
                sqlx::query("SELECT id, type, created_at, body FROM webhook_events WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
            let Some(row) = row else { return Ok(None) };
            Ok(Some(StoredEvent {
                id: row.try_get("id")?,
                event_type: row.try_get("type")?,
                created_at: row.try_get("created_at")?,
                body: row.try_get("body")?,
            }))
        })
    }

    pub fn record_delivery<'a>(&'a self, d: &'a Delivery) -> Call<'a, ()> {
        self.bounded(async move {
            sqlx::query(
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, attempt, at, \
                 outcome, status, error, duration_ms, node) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(d.endpoint_id)
            .bind(d.event_id.as_str())
            .bind(d.event_type.as_str())
            .bind(d.attempt)
            .bind(d.at)
            .bind(d.outcome.as_str())
            .bind(d.status)
            .bind(d.error.as_deref())
            .bind(d.duration_ms)
            .bind(d.node.as_str())
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    /// Attempts made so far at delivering `event` to `endpoint`, and whether one succeeded.
    pub fn attempts<'a>(&'a self, event: &'a str, endpoint: i64) -> Call<'a, (i64, bool)> {
        self.bounded(async move {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN outcome = 'delivered' THEN 1 ELSE 0 END), 0) \
                 AS ok FROM webhook_deliveries WHERE event_id = $1 AND endpoint_id = $2",
            )
            .bind(event)
            .bind(endpoint)
            .fetch_one(&self.pool)
            .await?;
            let n: i64 = row.try_get("n")?;
            let ok: i64 = row.try_get("ok")?;
            Ok((n, ok > 0))
        })
    }

    /// The endpoint's log, newest first: at most `limit` rows with an id below `before`.
    pub fn deliveries<'a>(
        &'a self,
        endpoint: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Call<'a, Vec<Delivery>> {
        self.bounded(async move {
            let rows = sqlx::query(
                "SELECT id, endpoint_id, event_id, event_type, attempt, at, outcome, status, error, \
                 duration_ms, node FROM webhook_deliveries WHERE endpoint_id = $1 AND id < $2 \
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(endpoint)
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit.clamp(1, 500))
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(delivery_from_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Counts a failed attempt; the one that reaches `threshold` on an enabled endpoint
    /// disables it (concurrent failures on several nodes: exactly one sees `disabled_now`).
    pub fn endpoint_failed<'a>(
        &'a self,
        id: i64,
        threshold: i64,
        reason: &'a str,
    ) -> Call<'a, Failures> {
        self.bounded(async move {
            let row = sqlx::query(
                "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 \
                 WHERE id = $1 RETURNING consecutive_failures",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound);
            };
            let consecutive: i64 = row.try_get("consecutive_failures")?;
            let mut disabled_now = false;
            if consecutive >= threshold {
                let done = sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = $1, disabled_reason = $2, updated_at = $3 \
                     WHERE id = $4 AND enabled = $5",
                )
                .bind(false)
                .bind(reason)
                .bind(now_ms())
                .bind(id)
                .bind(true)
                .execute(&self.pool)
                .await?;
                disabled_now = done.rows_affected() > 0;
            }
            Ok(Failures {
                consecutive,
                disabled_now,
            })
        })
    }

    /// A success clears the endpoint's failure count.
    pub fn endpoint_succeeded<'a>(&'a self, id: i64) -> Call<'a, ()> {
        self.bounded(async move {
            sqlx::query(
                "UPDATE webhook_endpoints SET consecutive_failures = 0 \
                 WHERE id = $1 AND consecutive_failures <> 0",
            )
            .bind(id)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    /// Endpoints the system disabled after repeated failures (the gauge).
    pub fn failed_endpoints<'a>(&'a self) -> Call<'a, i64> {
        self.bounded(async move {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n FROM webhook_endpoints WHERE disabled_reason IS NOT NULL",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(row.try_get("n")?)
        })
    }
}
