//! Data protection in SQL: finding a contact and everything stored about it (for an export),
//! erasing it in one transaction, and the retention purges, each in bounded batches.

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::transcripts::contact_from_row;
use super::{Call, Contact, Store};

/// What an erasure removed from SQL (counts only: the audit log records these).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ErasedRows {
    pub offline_messages: u64,
    pub messages: u64,
    pub interactions: u64,
    pub webhook_events: u64,
    pub contacts: u64,
}

/// What one purge batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Rows deleted.
    pub rows: u64,
    /// The batch was full: older rows may be left.
    pub more: bool,
}

/// A kind of stored data with its own retention, purged oldest first in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurgeKind {
    /// Chat Messages (transcripts) by end time; an interaction left without any message goes
    /// with its last one.
    Transcripts,
    /// Delivery attempts and the stored event bodies of outgoing webhooks.
    WebhookLog,
    AuditLog,
    /// Offline messages by creation time, each with its interaction unless a chat was added
    /// to it.
    OfflineMessages,
}

/// What an erasure deletes, children before parents (the order every backend's foreign keys
/// allow): the webhook event bodies of the contact's chats, its offline messages, its
/// Messages, its interactions, the contact. Each takes the contact id as `$1`.
const ERASE_STEPS: [&str; 6] = [
    "DELETE FROM webhook_events WHERE chat_id IN \
     (SELECT chat_id FROM messages WHERE contact_id = $1)",
    // Ratings carry the visitor's comment; they go with the contact's chats.
    "DELETE FROM chat_ratings WHERE chat_id IN \
     (SELECT chat_id FROM messages WHERE contact_id = $1)",
    "DELETE FROM offline_messages WHERE interaction_id IN \
     (SELECT id FROM interactions WHERE contact_id = $1)",
    "DELETE FROM messages WHERE contact_id = $1",
    "DELETE FROM interactions WHERE contact_id = $1",
    "DELETE FROM contacts WHERE id = $1",
];

impl Store {
    pub fn contact<'a>(&'a self, id: i64) -> Call<'a, Option<Contact>> {
        self.bounded(async move {
            let row = sqlx::query(
                "SELECT id, visitor_id, email, name, created_at FROM contacts WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
            Ok(row.as_ref().map(contact_from_row).transpose()?)
        })
    }

    /// Contacts with this e-mail (case-insensitive) or this visitor id, at most 100.
    pub fn find_contacts<'a>(
        &'a self,
        email: Option<&'a str>,
        visitor_id: Option<&'a str>,
    ) -> Call<'a, Vec<Contact>> {
        self.bounded(async move {
            let email = email.map(|e| e.trim().to_lowercase()).unwrap_or_default();
            let visitor = visitor_id.map(str::trim).unwrap_or_default();
            let rows = sqlx::query(
                "SELECT id, visitor_id, email, name, created_at FROM contacts \
                 WHERE ($1 <> '' AND email = $1) OR ($2 <> '' AND visitor_id = $2) \
                 ORDER BY id LIMIT 100",
            )
            .bind(email)
            .bind(visitor)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(contact_from_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// Erases the contact and every row about it in one transaction (`ERASE_STEPS`).
    /// Idempotent: erasing an erased contact removes nothing.
    pub fn erase_contact<'a>(&'a self, contact_id: i64) -> Call<'a, ErasedRows> {
        self.bounded(async move {
            let mut tx = self.begin_write().await?;
            let mut n = [0u64; ERASE_STEPS.len()];
            for (count, sql) in n.iter_mut().zip(ERASE_STEPS) {
                *count = sqlx::query(sql)
                    .bind(contact_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            let [webhook_events, _ratings, offline_messages, messages, interactions, contacts] = n;
            Ok(ErasedRows {
                offline_messages,
                messages,
                interactions,
                webhook_events,
                contacts,
            })
        })
    }

    /// Webhook event bodies of chats that never reached a Message (a request that was erased
    /// while live); returns how many went.
    pub fn erase_events_of_chats<'a>(&'a self, chats: &'a [String]) -> Call<'a, u64> {
        self.bounded(async move {
            let mut n = 0;
            for chat in chats {
                n += sqlx::query("DELETE FROM webhook_events WHERE chat_id = $1")
                    .bind(chat.as_str())
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            }
            Ok(n)
        })
    }

    /// Deletes at most `limit` rows of `kind` (of each table the kind spans) older than
    /// `cutoff` (ms), oldest first, in one transaction.
    pub fn purge_batch<'a>(&'a self, kind: PurgeKind, cutoff: i64, limit: i64) -> Call<'a, Purged> {
        self.bounded(async move {
            let mut tx = self.begin_write().await?;
            let full = |n: u64| n >= limit as u64;
            let purged = match kind {
                PurgeKind::Transcripts => {
                    // A chat's rating (with the visitor's comment) goes with its transcript:
                    // the same oldest Messages as the batch below, in the same transaction.
                    sqlx::query(
                        "DELETE FROM chat_ratings WHERE chat_id IN (SELECT chat_id FROM messages \
                         WHERE ended_at < $1 ORDER BY id LIMIT $2)",
                    )
                    .bind(cutoff)
                    .bind(limit)
                    .execute(&mut *tx)
                    .await?;
                    let n =
                        delete_with_interactions(&mut tx, "messages", "ended_at", cutoff, limit)
                            .await?;
                    Purged {
                        rows: n,
                        more: full(n),
                    }
                }
                PurgeKind::OfflineMessages => {
                    let n = delete_with_interactions(
                        &mut tx,
                        "offline_messages",
                        "created_at",
                        cutoff,
                        limit,
                    )
                    .await?;
                    Purged {
                        rows: n,
                        more: full(n),
                    }
                }
                PurgeKind::WebhookLog => {
                    let deliveries =
                        delete_older(&mut tx, "webhook_deliveries", "at", cutoff, limit).await?;
                    let events =
                        delete_older(&mut tx, "webhook_events", "created_at", cutoff, limit)
                            .await?;
                    Purged {
                        rows: deliveries + events,
                        more: full(deliveries) || full(events),
                    }
                }
                PurgeKind::AuditLog => {
                    let n = delete_older(&mut tx, "audit_log", "at", cutoff, limit).await?;
                    Purged {
                        rows: n,
                        more: full(n),
                    }
                }
            };
            tx.commit().await?;
            Ok(purged)
        })
    }
}

/// Deletes up to `limit` rows of `table` (Messages or offline messages, which name their
/// interaction) whose time column `at` is before `cutoff`, oldest first, each with the
/// interaction it leaves without any chat or offline message.
async fn delete_with_interactions(
    tx: &mut Transaction<'static, Any>,
    table: &'static str,
    at: &'static str,
    cutoff: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT id, interaction_id FROM {table} WHERE {at} < $1 ORDER BY id LIMIT $2"
    )))
    .bind(cutoff)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    let delete = format!("DELETE FROM {table} WHERE id = $1");
    let mut n = 0;
    for row in &rows {
        n += sqlx::query(sqlx::AssertSqlSafe(delete.as_str()))
            .bind(row.try_get::<i64, _>("id")?)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        if let Some(i) = row.try_get::<Option<i64>, _>("interaction_id")? {
            delete_unused_interaction(tx, i).await?;
        }
    }
    Ok(n)
}

/// Deletes an interaction that no chat and no offline message belongs to any more. Only
/// interactions that held what was purged are passed here: others (kept for their own
/// reasons) are never taken along.
async fn delete_unused_interaction(
    tx: &mut Transaction<'static, Any>,
    id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM interactions WHERE id = $1 \
         AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.interaction_id = $1) \
         AND NOT EXISTS (SELECT 1 FROM offline_messages o WHERE o.interaction_id = $1)",
    )
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes up to `limit` rows of `table` whose time column `at` is before `cutoff`, oldest
/// first (every table purged this way has an `id` key).
async fn delete_older(
    tx: &mut Transaction<'static, Any>,
    table: &'static str,
    at: &'static str,
    cutoff: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let sql = format!(
        "DELETE FROM {table} WHERE id IN \
         (SELECT id FROM {table} WHERE {at} < $1 ORDER BY {at}, id LIMIT $2)"
    );
    Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(cutoff)
        .bind(limit)
        .execute(&mut **tx)
        .await?
        .rows_affected())
}
