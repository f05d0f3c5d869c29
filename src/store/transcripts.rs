//! Contacts, interactions and chat transcripts, and the flush that writes an ended chat.

use std::time::Duration;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::row::flag;
use super::{
    is_transient, now_ms, Call, Contact, FlushOutcome, Interaction, MessageRecord, Store,
    StoreError, StoreFuture, TranscriptEntry, TranscriptRecord,
};

/// Longest subject taken from the visitor's first message, in characters.
const SUBJECT_CHARS: usize = 120;
/// Attempts at the flush transaction when it loses a race it can win on retry.
const FLUSH_ATTEMPTS: u32 = 4;
const DECISIONS: [&str; 4] = ["create", "add", "trash", "keep"];

macro_rules! contact_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, visitor_id, email, name, created_at FROM contacts ",
            $tail
        )
    };
}

macro_rules! interaction_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, contact_id, subject, created_by, created_at, auto_kept FROM interactions ",
            $tail
        )
    };
}

macro_rules! message_sql {
    ($tail:literal) => {
        concat!(
            "SELECT id, chat_id, interaction_id, contact_id, agent_id, queue, started_at, \
             accepted_at, ended_at, end_reason, decision, decided_by, decided_at, trashed, \
             visitor_name, visitor_email, email_verified, agents, entries FROM messages ",
            $tail
        )
    };
}

/// E-mail addresses match case-insensitively and without surrounding blanks.
fn normalize_email(email: Option<&str>) -> Option<String> {
    email
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

/// The question, else the visitor's first message cut to 120 characters, else the chat id.
fn subject_for(t: &TranscriptRecord) -> String {
    if let Some(q) = non_empty(t.question.as_deref()) {
        return q.to_string();
    }
    t.entries
        .iter()
        .filter(|e| e.kind == "message" && e.author == "visitor")
        .find_map(|e| non_empty(Some(&e.text)))
        .map(|text| text.chars().take(SUBJECT_CHARS).collect())
        .unwrap_or_else(|| format!("Chat {}", t.chat_id))
}

pub(super) fn contact_from_row(row: &AnyRow) -> Result<Contact, sqlx::Error> {
    Ok(Contact {
        id: row.try_get("id")?,
        visitor_id: row.try_get("visitor_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn interaction_from_row(row: &AnyRow) -> Result<Interaction, sqlx::Error> {
    Ok(Interaction {
        id: row.try_get("id")?,
        contact_id: row.try_get("contact_id")?,
        subject: row.try_get("subject")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        auto_kept: flag(row, "auto_kept")?,
    })
}

fn interactions_from_rows(rows: &[AnyRow]) -> Result<Vec<Interaction>, sqlx::Error> {
    rows.iter().map(interaction_from_row).collect()
}

/// Agent ids stored comma-separated (`messages.agents`).
fn parse_agents(s: &str) -> Vec<i64> {
    s.split(',').filter_map(|a| a.trim().parse().ok()).collect()
}

fn message_from_row(row: &AnyRow) -> Result<MessageRecord, sqlx::Error> {
    let entries: String = row.try_get("entries")?;
    let entries: Vec<TranscriptEntry> =
        serde_json::from_str(&entries).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(MessageRecord {
        id: row.try_get("id")?,
        chat_id: row.try_get("chat_id")?,
        interaction_id: row.try_get("interaction_id")?,
        contact_id: row.try_get("contact_id")?,
        agent_id: row.try_get("agent_id")?,
        queue: row.try_get("queue")?,
        started_at: row.try_get("started_at")?,
        accepted_at: row.try_get("accepted_at")?,
        ended_at: row.try_get("ended_at")?,
        end_reason: row.try_get("end_reason")?,
        decision: row.try_get("decision")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        trashed: flag(row, "trashed")?,
        visitor_name: row.try_get("visitor_name")?,
        visitor_email: row.try_get("visitor_email")?,
        email_verified: flag(row, "email_verified")?,
        agents: parse_agents(&row.try_get::<String, _>("agents")?),
        entries,
    })
}

/// Finds or creates the chat's contact and fills in what it did not know yet.
///
/// With an e-mail: the contact with that e-mail; else this visitor's contact that has no
/// e-mail yet (it gains this one); else a new contact. Without: this visitor's first
/// contact, else a new one. The inserts are upserts on unique indexes, so concurrent
/// flushes for one person meet on one row (or lose a race and are retried).
async fn upsert_contact(
    tx: &mut Transaction<'static, Any>,
    t: &TranscriptRecord,
) -> Result<i64, sqlx::Error> {
    let visitor_id = non_empty(Some(&t.visitor_id));
    let name = non_empty(t.contact_name.as_deref());
    let now = now_ms();
    let Some(email) = normalize_email(t.contact_email.as_deref()) else {
        let Some(visitor_id) = visitor_id else {
            let row = sqlx::query(
                "INSERT INTO contacts (visitor_id, email, name, created_at) \
                 VALUES (NULL, NULL, $1, $2) RETURNING id",
            )
            .bind(name)
            .bind(now)
            .fetch_one(&mut **tx)
            .await?;
            return row.try_get("id");
        };
        if let Some(row) =
            sqlx::query("SELECT id FROM contacts WHERE visitor_id = $1 ORDER BY id LIMIT 1")
                .bind(visitor_id)
                .fetch_optional(&mut **tx)
                .await?
        {
            let id: i64 = row.try_get("id")?;
            sqlx::query("UPDATE contacts SET name = COALESCE(name, $1) WHERE id = $2")
                .bind(name)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            return Ok(id);
        }
        let row = sqlx::query(
            "INSERT INTO contacts (visitor_id, email, name, created_at) VALUES ($1, NULL, $2, $3) \
             ON CONFLICT (visitor_id) WHERE email IS NULL \
             DO UPDATE SET name = COALESCE(contacts.name, excluded.name) RETURNING id",
        )
        .bind(visitor_id)
        .bind(name)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
        return row.try_get("id");
    };

    if let Some(row) = sqlx::query("SELECT id FROM contacts WHERE email = $1")
        .bind(email.as_str())
        .fetch_optional(&mut **tx)
        .await?
    {
        let id: i64 = row.try_get("id")?;
        sqlx::query(
            "UPDATE contacts SET name = COALESCE(name, $1), visitor_id = COALESCE(visitor_id, $2) \
             WHERE id = $3",
        )
        .bind(name)
        .bind(visitor_id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
        return Ok(id);
    }
    if let Some(visitor_id) = visitor_id {
        if let Some(row) = sqlx::query(
            "SELECT id FROM contacts WHERE visitor_id = $1 AND email IS NULL ORDER BY id LIMIT 1",
        )
        .bind(visitor_id)
        .fetch_optional(&mut **tx)
        .await?
        {
            let id: i64 = row.try_get("id")?;
            sqlx::query("UPDATE contacts SET email = $1, name = COALESCE(name, $2) WHERE id = $3")
                .bind(email.as_str())
                .bind(name)
                .bind(id)
                .execute(&mut **tx)
                .await?;
            return Ok(id);
        }
    }
    let row = sqlx::query(
        "INSERT INTO contacts (visitor_id, email, name, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (email) DO UPDATE SET \
         visitor_id = COALESCE(contacts.visitor_id, excluded.visitor_id), \
         name = COALESCE(contacts.name, excluded.name) RETURNING id",
    )
    .bind(visitor_id)
    .bind(email.as_str())
    .bind(name)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    row.try_get("id")
}

async fn insert_interaction(
    tx: &mut Transaction<'static, Any>,
    t: &TranscriptRecord,
    contact_id: i64,
) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "INSERT INTO interactions (contact_id, subject, created_by, created_at, auto_kept) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(contact_id)
    .bind(subject_for(t))
    .bind(t.decided_by)
    .bind(t.decided_at)
    .bind(t.decision == "keep")
    .fetch_one(&mut **tx)
    .await?;
    row.try_get("id")
}

impl Store {
    /// The contact for this e-mail if one is given, else for this visitor id.
    pub fn contact_for<'a>(
        &'a self,
        visitor_id: &'a str,
        email: Option<&'a str>,
    ) -> Call<'a, Option<Contact>> {
        self.bounded(async move {
            let row = match normalize_email(email) {
                Some(email) => {
                    sqlx::query(contact_sql!("WHERE email = $1"))
                        .bind(email)
                        .fetch_optional(&self.pool)
                        .await?
                }
                None if visitor_id.trim().is_empty() => None,
                None => {
                    sqlx::query(contact_sql!("WHERE visitor_id = $1 ORDER BY id LIMIT 1"))
                        .bind(visitor_id.trim())
                        .fetch_optional(&self.pool)
                        .await?
                }
            };
            Ok(row.as_ref().map(contact_from_row).transpose()?)
        })
    }

    /// The contact's interactions, newest first.
    pub fn interactions_of_contact<'a>(&'a self, contact_id: i64) -> Call<'a, Vec<Interaction>> {
        self.bounded(async move {
            let rows = sqlx::query(interaction_sql!(
                "WHERE contact_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(contact_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(interactions_from_rows(&rows)?)
        })
    }

    /// Every Message (chat transcript) of the contact, oldest first (an export, an erasure).
    pub fn messages_of_contact<'a>(&'a self, contact_id: i64) -> Call<'a, Vec<MessageRecord>> {
        self.bounded(async move {
            let rows = sqlx::query(message_sql!(
                "WHERE contact_id = $1 ORDER BY started_at, id"
            ))
            .bind(contact_id)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .iter()
                .map(message_from_row)
                .collect::<Result<_, _>>()?)
        })
    }

    /// An interaction with its messages, oldest chat first.
    pub fn interaction<'a>(
        &'a self,
        id: i64,
    ) -> Call<'a, Option<(Interaction, Vec<MessageRecord>)>> {
        self.bounded(async move {
            let Some(row) = sqlx::query(interaction_sql!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
            else {
                return Ok(None);
            };
            let interaction = interaction_from_row(&row)?;
            let messages = sqlx::query(message_sql!(
                "WHERE interaction_id = $1 ORDER BY started_at, id"
            ))
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(message_from_row)
            .collect::<Result<_, _>>()?;
            Ok(Some((interaction, messages)))
        })
    }

    pub fn message_by_chat<'a>(&'a self, chat_id: &'a str) -> Call<'a, Option<MessageRecord>> {
        self.bounded(async move {
            let row = sqlx::query(message_sql!("WHERE chat_id = $1"))
                .bind(chat_id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(row.as_ref().map(message_from_row).transpose()?)
        })
    }

    /// The newest interactions, at most `limit` (clamped to 0..=1000).
    pub fn recent_interactions<'a>(&'a self, limit: i64) -> Call<'a, Vec<Interaction>> {
        self.bounded(async move {
            let rows = sqlx::query(interaction_sql!(
                "ORDER BY created_at DESC, id DESC LIMIT $1"
            ))
            .bind(limit.clamp(0, 1000))
            .fetch_all(&self.pool)
            .await?;
            Ok(interactions_from_rows(&rows)?)
        })
    }

    /// Writes an ended chat in one transaction, at most once per chat id: a second call,
    /// even a concurrent one from another node, writes nothing and says `AlreadyWritten`.
    pub fn write_transcript<'a>(&'a self, t: &'a TranscriptRecord) -> Call<'a, FlushOutcome> {
        Box::pin(async move {
            let entries = prepare(t)?;
            self.write_prepared(t, &entries).await
        })
    }

    /// Writes several ended chats, each at most once per chat id, with one outcome per chat in
    /// the order given. They go in one transaction (one commit for all: the flush worker's
    /// batches); when that cannot be written as a whole (a chat already written, a lost race,
    /// a lock wait past `store.lock_timeout_ms`, any error) it is rolled back and each chat
    /// gets a transaction of its own.
    pub fn write_transcripts<'a>(
        &'a self,
        ts: &'a [TranscriptRecord],
    ) -> StoreFuture<'a, Vec<Result<FlushOutcome, StoreError>>> {
        Box::pin(async move {
            let mut out: Vec<Option<Result<FlushOutcome, StoreError>>> =
                ts.iter().map(|_| None).collect();
            let mut batch = Vec::with_capacity(ts.len());
            for (i, t) in ts.iter().enumerate() {
                match prepare(t) {
                    Ok(entries) => batch.push((i, entries)),
                    Err(e) => out[i] = Some(Err(e)),
                }
            }
            if batch.len() > 1 {
                // The same order of contacts in every batch, so that two batches sharing
                // contacts wait for each other instead of deadlocking.
                batch.sort_by_cached_key(|(i, _)| contact_key(&ts[*i]));
                match self.bounded(self.try_write_batch(ts, &batch)).await {
                    Ok(Some(written)) => {
                        for ((i, _), outcome) in batch.drain(..).zip(written) {
                            out[i] = Some(Ok(outcome));
                        }
                    }
                    Ok(None) => tracing::debug!(
                        chats = batch.len(),
                        "a chat of the batch was already written; one transaction per chat"
                    ),
                    Err(e) => tracing::debug!(
                        chats = batch.len(),
                        error = %e,
                        "batch flush failed; one transaction per chat"
                    ),
                }
            }
            for (i, entries) in batch {
                out[i] = Some(self.write_prepared(&ts[i], &entries).await);
            }
            out.into_iter()
                .map(|o| o.expect("every chat has an outcome"))
                .collect()
        })
    }

    fn write_prepared<'a>(
        &'a self,
        t: &'a TranscriptRecord,
        entries: &'a str,
    ) -> Call<'a, FlushOutcome> {
        Box::pin(async move {
            let mut attempt = 1;
            loop {
                match self.bounded(self.try_write_transcript(t, entries)).await {
                    Err(StoreError::Db(e)) if attempt < FLUSH_ATTEMPTS && is_transient(&e) => {
                        tracing::debug!(chat_id = %t.chat_id, error = %e, attempt, "flush transaction lost a race; retrying");
                        tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
                        attempt += 1;
                    }
                    result => return result,
                }
            }
        })
    }

    async fn try_write_transcript(
        &self,
        t: &TranscriptRecord,
        entries: &str,
    ) -> Result<FlushOutcome, StoreError> {
        let mut tx = self.begin_write().await?;
        match write_in(&mut tx, t, entries).await? {
            Some((message_id, interaction_id)) => {
                tx.commit().await?;
                Ok(FlushOutcome::Written {
                    message_id,
                    interaction_id,
                })
            }
            None => {
                let message_id =
                    sqlx::query_scalar::<_, i64>("SELECT id FROM messages WHERE chat_id = $1")
                        .bind(t.chat_id.as_str())
                        .fetch_one(&mut *tx)
                        .await?;
                tx.rollback().await?;
                Ok(FlushOutcome::AlreadyWritten { message_id })
            }
        }
    }

    /// All of `batch` (indexes into `ts` with their encoded entries) in one transaction, or
    /// nothing: `None` when one of the chats was already written.
    async fn try_write_batch(
        &self,
        ts: &[TranscriptRecord],
        batch: &[(usize, String)],
    ) -> Result<Option<Vec<FlushOutcome>>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut written = Vec::with_capacity(batch.len());
        for (i, entries) in batch {
            match write_in(&mut tx, &ts[*i], entries).await? {
                Some((message_id, interaction_id)) => written.push(FlushOutcome::Written {
                    message_id,
                    interaction_id,
                }),
                None => {
                    tx.rollback().await?;
                    return Ok(None);
                }
            }
        }
        tx.commit().await?;
        Ok(Some(written))
    }
}

/// Checks a transcript and encodes its entries.
fn prepare(t: &TranscriptRecord) -> Result<String, StoreError> {
    if t.chat_id.is_empty() {
        return Err(StoreError::Invalid("chat_id must not be empty".into()));
    }
    if !DECISIONS.contains(&t.decision.as_str()) {
        return Err(StoreError::Invalid(format!(
            "decision {:?} must be create, add, trash or keep",
            t.decision
        )));
    }
    serde_json::to_string(&t.entries)
        .map_err(|e| StoreError::Invalid(format!("transcript does not encode: {e}")))
}

/// What `upsert_contact` looks a transcript's contact up by first.
fn contact_key(t: &TranscriptRecord) -> (Option<String>, String, String) {
    (
        normalize_email(t.contact_email.as_deref()),
        t.visitor_id.trim().to_string(),
        t.chat_id.clone(),
    )
}

/// Writes one chat inside `tx`: contact, interaction, then the Message already pointing at
/// it (four statements for a new visitor; the Message's insert also indexes it for the history
/// search, by trigger). `None` when the chat is written already (a retry,
/// or another node that got there first): the Message insert claims the chat id, so a
/// concurrent flush of the same chat waits there for the other transaction and then inserts
/// nothing; the caller rolls back, which takes this call's contact and interaction changes
/// back too.
async fn write_in(
    tx: &mut Transaction<'static, Any>,
    t: &TranscriptRecord,
    entries: &str,
) -> Result<Option<(i64, Option<i64>)>, sqlx::Error> {
    let contact_id = upsert_contact(tx, t).await?;
    let interaction_id = match t.decision.as_str() {
        "trash" => None,
        "add" => {
            let owner = match t.interaction_id {
                Some(id) => {
                    sqlx::query_scalar::<_, i64>(
                        "SELECT contact_id FROM interactions WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?
                }
                None => None,
            };
            match t.interaction_id {
                Some(id) if owner == Some(contact_id) => Some(id),
                requested => {
                    tracing::warn!(
                        chat_id = %t.chat_id,
                        ?requested,
                        owner,
                        contact_id,
                        "cannot add chat to that interaction; creating a new one instead"
                    );
                    Some(insert_interaction(tx, t, contact_id).await?)
                }
            }
        }
        _ => Some(insert_interaction(tx, t, contact_id).await?),
    };
    let claimed = sqlx::query(
        "INSERT INTO messages (chat_id, interaction_id, contact_id, agent_id, queue, \
         started_at, accepted_at, ended_at, end_reason, decision, decided_by, decided_at, \
         trashed, visitor_email, email_verified, agents, entries, visitor_name) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18) \
         ON CONFLICT (chat_id) DO NOTHING RETURNING id",
    )
    .bind(t.chat_id.as_str())
    .bind(interaction_id)
    .bind(contact_id)
    .bind(t.agent_id)
    .bind(t.queue.as_str())
    .bind(t.started_at)
    .bind(t.accepted_at)
    .bind(t.ended_at)
    .bind(t.end_reason.as_str())
    .bind(t.decision.as_str())
    .bind(t.decided_by)
    .bind(t.decided_at)
    .bind(t.decision == "trash")
    .bind(non_empty(t.visitor_email.as_deref()))
    .bind(t.email_verified)
    .bind(
        t.agents
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(","),
    )
    .bind(entries)
    .bind(non_empty(t.contact_name.as_deref()))
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = claimed else {
        return Ok(None);
    };
    Ok(Some((row.try_get("id")?, interaction_id)))
}
