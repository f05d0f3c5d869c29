//! Offline messages (interactions of kind `offline_message`) and the per-queue settings the
//! "nobody is there" experience reads: offline text and business hours.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{is_transient, now_ms, Call, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Longest interaction subject taken from an offline message, in characters.
const SUBJECT_CHARS: usize = 120;

/// What a visitor left; `uid` is chosen by the caller (idempotency key).
#[derive(Debug, Clone)]
pub struct NewOfflineMessage {
    pub uid: String,
    pub queue: String,
    pub visitor_id: String,
    pub name: String,
    /// As typed: stored on the message only, never matched to a contact.
    pub email: String,
    pub message: String,
    pub page_url: String,
    pub ip: String,
}

/// A stored offline message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineMessage {
    pub uid: String,
    pub interaction_id: i64,
    pub contact_id: i64,
    pub queue: String,
    pub visitor_id: String,
    pub name: String,
    pub email: String,
    pub message: String,
    pub page_url: String,
    pub ip: String,
    /// `open`, `claimed` or `done`.
    pub status: String,
    pub claimed_by: Option<i64>,
    pub claimed_at: Option<i64>,
    pub done_at: Option<i64>,
    pub notified_at: Option<i64>,
    pub created_at: i64,
}

/// A queue's settings for visitors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSettings {
    pub name: String,
    /// "" = the widget's default text.
    pub offline_text: String,
    /// JSON business hours, "" = none (see `chat::hours`).
    pub business_hours: String,
}

macro_rules! offline_sql {
    ($tail:literal) => {
        concat!(
            "SELECT o.uid, o.interaction_id, i.contact_id, o.queue, o.visitor_id, o.name, \
             o.email, o.message, o.page_url, o.ip, o.status, o.claimed_by, o.claimed_at, \
             o.done_at, o.notified_at, o.created_at \
             FROM offline_messages o JOIN interactions i ON i.id = o.interaction_id ",
            $tail
        )
    };
}

fn from_row(r: &AnyRow) -> Result<OfflineMessage, sqlx::Error> {
    Ok(OfflineMessage {
        uid: r.try_get("uid")?,
        interaction_id: r.try_get("interaction_id")?,
        contact_id: r.try_get("contact_id")?,
        queue: r.try_get("queue")?,
        visitor_id: r.try_get("visitor_id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        message: r.try_get("message")?,
        page_url: r.try_get("page_url")?,
        ip: r.try_get("ip")?,
        status: r.try_get("status")?,
        claimed_by: r.try_get("claimed_by")?,
        claimed_at: r.try_get("claimed_at")?,
        done_at: r.try_get("done_at")?,
        notified_at: r.try_get("notified_at")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Stores an offline message as a new interaction of the visitor's anonymous contact.
    /// Idempotent on `uid`: a retry returns the message stored the first time.
    pub fn create_offline_message<'a>(
        &'a self,
        m: &'a NewOfflineMessage,
    ) -> Call<'a, OfflineMessage> {
        self.bounded(async move {
            if let Some(found) = self.offline_message(&m.uid).await? {
                return Ok(found);
            }
            let mut attempt = 0;
            loop {
                match self.insert_offline_message(m).await {
                    Ok(()) => break,
                    Err(e) if attempt < 4 && is_transient(&e) => attempt += 1,
                    Err(e) => return Err(e.into()),
                }
            }
            self.offline_message(&m.uid)
                .await?
                .ok_or(StoreError::NotFound)
        })
    }

    async fn insert_offline_message(&self, m: &NewOfflineMessage) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        if sqlx::query("SELECT 1 FROM offline_messages WHERE uid = $1")
            .bind(m.uid.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .is_some()
        {
            return tx.commit().await;
        }
        // The visitor's anonymous contact (no e-mail): the typed e-mail is not an identity.
        let contact: i64 = sqlx::query(
            "INSERT INTO contacts (visitor_id, email, name, created_at) VALUES ($1, NULL, NULL, $2) \
             ON CONFLICT (visitor_id) WHERE email IS NULL \
             DO UPDATE SET visitor_id = excluded.visitor_id RETURNING id",
        )
        .bind(m.visitor_id.as_str())
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        let subject: String = m.message.chars().take(SUBJECT_CHARS).collect();
        let interaction: i64 = sqlx::query(
            "INSERT INTO interactions (contact_id, subject, created_by, created_at, kind) \
             VALUES ($1, $2, NULL, $3, 'offline_message') RETURNING id",
        )
        .bind(contact)
        .bind(subject)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .try_get("id")?;
        sqlx::query(
            "INSERT INTO offline_messages (uid, interaction_id, queue, visitor_id, name, email, \
             message, page_url, ip, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10)",
        )
        .bind(m.uid.as_str())
        .bind(interaction)
        .bind(m.queue.as_str())
        .bind(m.visitor_id.as_str())
        .bind(m.name.as_str())
        .bind(m.email.as_str())
        .bind(m.message.as_str())
        .bind(m.page_url.as_str())
        .bind(m.ip.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await
    }

    pub fn offline_message<'a>(&'a self, uid: &'a str) -> Call<'a, Option<OfflineMessage>> {
        self.bounded(async move {
            let row = sqlx::query(offline_sql!("WHERE o.uid = $1"))
                .bind(uid)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.as_ref().map(from_row).transpose()?)
        })
    }

    /// Every offline message of the contact, oldest first (an export).
    pub fn offline_messages_of_contact<'a>(
        &'a self,
        contact_id: i64,
    ) -> Call<'a, Vec<OfflineMessage>> {
        self.bounded(async move {
            let rows = sqlx::query(offline_sql!(
                "WHERE i.contact_id = $1 ORDER BY o.created_at, o.id"
            ))
            .bind(contact_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
        })
    }

    /// The inbox of `queues`: open and claimed messages, newest first, then (with `done`)
    /// the finished ones too. At most `limit`.
    pub fn inbox<'a>(
        &'a self,
        queues: &'a [String],
        done: bool,
        limit: i64,
    ) -> Call<'a, Vec<OfflineMessage>> {
        self.bounded(async move {
            let mut out = Vec::new();
            // One query per queue keeps the statement the same on both backends (no array binds).
            for q in queues {
                let sql = if done {
                    offline_sql!(
                        "WHERE o.queue = $1 ORDER BY o.created_at DESC, o.id DESC LIMIT $2"
                    )
                } else {
                    offline_sql!(
                        "WHERE o.queue = $1 AND o.status <> 'done' \
                         ORDER BY o.created_at DESC, o.id DESC LIMIT $2"
                    )
                };
                let rows = sqlx::query(sql)
                    .bind(q.as_str())
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                for r in &rows {
                    out.push(from_row(r)?);
                }
            }
            out.sort_by_key(|m| std::cmp::Reverse(m.created_at));
            out.truncate(limit.max(0) as usize);
            Ok(out)
        })
    }

    /// Claims an open message for `agent`: one conditional UPDATE, so of agents claiming at
    /// once on any nodes exactly one wins. `Conflict` when it is no longer open.
    pub fn claim_offline_message<'a>(
        &'a self,
        uid: &'a str,
        agent: i64,
    ) -> Call<'a, OfflineMessage> {
        self.change_status(
            "UPDATE offline_messages SET status = 'claimed', claimed_by = $2, claimed_at = $1 \
             WHERE uid = $3 AND status = 'open'",
            uid,
            agent,
            |m| format!("the message is already {}", m.status),
        )
    }

    /// Marks a message done: the claiming agent's, or an open one (claimed and finished at
    /// once). `Conflict` when another agent holds it or it is done already.
    pub fn finish_offline_message<'a>(
        &'a self,
        uid: &'a str,
        agent: i64,
    ) -> Call<'a, OfflineMessage> {
        self.change_status(
            "UPDATE offline_messages SET status = 'done', done_at = $1, \
             claimed_by = COALESCE(claimed_by, $2), claimed_at = COALESCE(claimed_at, $1) \
             WHERE uid = $3 AND (status = 'open' OR (status = 'claimed' AND claimed_by = $2))",
            uid,
            agent,
            |m| {
                if m.status == "done" {
                    "the message is already done".to_string()
                } else {
                    "another agent has claimed the message".to_string()
                }
            },
        )
    }

    /// A conditional status change (`sql` binds now, the agent, the uid), then the message as
    /// it stands: `Conflict` saying `refused(message)` when the condition did not hold.
    fn change_status<'a>(
        &'a self,
        sql: &'static str,
        uid: &'a str,
        agent: i64,
        refused: fn(&OfflineMessage) -> String,
    ) -> Call<'a, OfflineMessage> {
        self.bounded(async move {
            let n = sqlx::query(sql)
                .bind(now_ms())
                .bind(agent)
                .bind(uid)
                .execute(&self.pool)
                .await?
                .rows_affected();
            let m = self
                .offline_message(uid)
                .await?
                .ok_or(StoreError::NotFound)?;
            if n == 0 {
                return Err(StoreError::Conflict(refused(&m)));
            }
            Ok(m)
        })
    }

    /// Records that the notification went out (a retried job then sends nothing).
    pub fn mark_offline_notified<'a>(&'a self, uid: &'a str) -> Call<'a, ()> {
        self.bounded(async move {
            sqlx::query("UPDATE offline_messages SET notified_at = $1 WHERE uid = $2")
                .bind(now_ms())
                .bind(uid)
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    /// Every queue with its settings, by name.
    pub fn all_queue_settings(&self) -> Call<'_, Vec<QueueSettings>> {
        self.bounded(async move {
            let rows =
                sqlx::query("SELECT name, offline_text, business_hours FROM queues ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?;
            rows.iter()
                .map(|r| {
                    Ok(QueueSettings {
                        name: r.try_get("name")?,
                        offline_text: r.try_get("offline_text")?,
                        business_hours: r.try_get("business_hours")?,
                    })
                })
                .collect()
        })
    }

    pub fn queue_settings<'a>(&'a self, name: &'a str) -> Call<'a, Option<QueueSettings>> {
        self.bounded(async move {
            let row = sqlx::query(
                "SELECT name, offline_text, business_hours FROM queues WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
            Ok(match row {
                Some(r) => Some(QueueSettings {
                    name: r.try_get("name")?,
                    offline_text: r.try_get("offline_text")?,
                    business_hours: r.try_get("business_hours")?,
                }),
                None => None,
            })
        })
    }

    /// Sets a queue's offline text and business hours (already validated); `NotFound` when
    /// there is no such queue.
    pub fn set_queue_settings<'a>(&'a self, s: &'a QueueSettings) -> Call<'a, ()> {
        self.bounded(async move {
            let n = sqlx::query(
                "UPDATE queues SET offline_text = $1, business_hours = $2 WHERE name = $3",
            )
            .bind(s.offline_text.as_str())
            .bind(s.business_hours.as_str())
            .bind(s.name.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }
}
