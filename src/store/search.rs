//! History search: the filtered, keyset-paginated list of stored chats, through each
//! backend's full-text index. SQLite keeps the index in the FTS5 table `message_search`,
//! PostgreSQL in the `messages.search` tsvector (GIN index); triggers write it in the statement
//! that stores a Message and remove it with the row (`migrations/*/0006_search.sql`), so a chat
//! is found exactly while it is stored, whichever node version wrote it. Words match whole and
//! case-insensitively, all of them; never a `LIKE` scan.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::row::flag;
use super::{Backend, Call, Store, StoreError};

/// Most words a text (or name) filter may have; more are refused, not silently dropped.
pub const MAX_SEARCH_WORDS: usize = 10;

/// What the history list is filtered by; every filter is optional and they all apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Words that must all occur in the chat's messages, the visitor's name or e-mail.
    pub text: Option<String>,
    /// The chat's e-mail, compared case-insensitively and whole.
    pub email: Option<String>,
    /// Words that must all occur in the visitor's name.
    pub name: Option<String>,
    /// The agent who held the chat when it ended, by id.
    pub agent_id: Option<i64>,
    /// The same, by username.
    pub agent: Option<String>,
    pub queue: Option<String>,
    /// `create`, `add` or `keep` (trashed chats are not in the history).
    pub decision: Option<String>,
    /// Chats started at or after this time (ms).
    pub from: Option<i64>,
    /// Chats started before this time (ms).
    pub to: Option<i64>,
    /// Requests kept automatically that no agent ever accepted: `Some(true)` only those,
    /// `Some(false)` all others.
    pub empty: Option<bool>,
    /// Where the previous page ended (`HistoryPage::next`).
    pub after: Option<HistoryCursor>,
    /// Rows per page, 1 to 100.
    pub limit: i64,
}

/// A position in the history: rows come newest first by `(started_at, id)`, and a page
/// continues strictly after the last row of the one before, so rows stored meanwhile never
/// shift nor repeat a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryCursor {
    pub started_at: i64,
    pub id: i64,
}

impl HistoryCursor {
    /// The opaque text form clients send back (`started_at.id`).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.started_at, self.id)
    }

    pub fn decode(s: &str) -> Option<HistoryCursor> {
        let (at, id) = s.split_once('.')?;
        Some(HistoryCursor {
            started_at: at.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

/// One stored chat in the history list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// The Message id.
    pub id: i64,
    pub chat_id: String,
    pub interaction_id: i64,
    pub subject: String,
    pub visitor_name: Option<String>,
    pub visitor_email: Option<String>,
    /// `false` for an e-mail the visitor typed: only the site's signed identify verifies one.
    pub email_verified: bool,
    pub agent_id: Option<i64>,
    /// The agent's display name; `None` when no agent held the chat or the agent is deleted.
    pub agent_name: Option<String>,
    pub queue: String,
    pub decision: String,
    pub auto_kept: bool,
    pub started_at: i64,
    pub accepted_at: Option<i64>,
    pub ended_at: i64,
    /// From the request to the end of the chat, in ms.
    pub duration_ms: i64,
}

/// A page of the history and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub items: Vec<HistoryRow>,
    pub next: Option<String>,
}

/// The words of a search text: split on blanks, each kept only if it holds a letter or digit.
/// `Err` when there are more than `MAX_SEARCH_WORDS` or none at all.
pub fn search_words(text: &str) -> Result<Vec<&str>, StoreError> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    if words.is_empty() {
        return Err(StoreError::Invalid("the search has no words".into()));
    }
    if words.len() > MAX_SEARCH_WORDS {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_SEARCH_WORDS} words may be searched for"
        )));
    }
    Ok(words)
}

/// An FTS5 expression requiring every word, each as a quoted phrase (so no word can be read
/// as an operator); inside a phrase FTS5 splits a word the way it split the document.
fn fts5_all(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A value bound to a `$n` of the history query.
enum Bind {
    Int(i64),
    Text(String),
}

/// Builds the history query's WHERE clause with numbered placeholders.
#[derive(Default)]
struct Filters {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Filters {
    /// The next placeholder, bound to `value`.
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    fn add(&mut self, clause: String) {
        self.clauses.push(clause);
    }
}

fn history_row(row: &AnyRow) -> Result<HistoryRow, sqlx::Error> {
    let started_at: i64 = row.try_get("started_at")?;
    let ended_at: i64 = row.try_get("ended_at")?;
    Ok(HistoryRow {
        id: row.try_get("id")?,
        chat_id: row.try_get("chat_id")?,
        interaction_id: row.try_get("interaction_id")?,
        subject: row.try_get("subject")?,
        visitor_name: row.try_get("visitor_name")?,
        visitor_email: row.try_get("visitor_email")?,
        email_verified: flag(row, "email_verified")?,
        agent_id: row.try_get("agent_id")?,
        agent_name: row.try_get("agent_name")?,
        queue: row.try_get("queue")?,
        decision: row.try_get("decision")?,
        auto_kept: flag(row, "auto_kept")?,
        started_at,
        accepted_at: row.try_get("accepted_at")?,
        ended_at,
        duration_ms: (ended_at - started_at).max(0),
    })
}

impl Store {
    /// A page of stored chats (trashed ones excepted), newest first, filtered by `q`.
    pub fn search_history<'a>(&'a self, q: &'a HistoryQuery) -> Call<'a, HistoryPage> {
        self.bounded(async move {
            if !(1..=100).contains(&q.limit) {
                return Err(StoreError::Invalid("limit must be 1-100".into()));
            }
            let mut f = Filters::default();
            f.add("m.interaction_id IS NOT NULL".into());
            self.text_filters(q, &mut f)?;
            if let Some(email) = q.email.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
                let p = f.bind(Bind::Text(email.to_lowercase()));
                f.add(format!("lower(m.visitor_email) = {p}"));
            }
            if let Some(id) = q.agent_id {
                let p = f.bind(Bind::Int(id));
                f.add(format!("m.agent_id = {p}"));
            }
            if let Some(agent) = q.agent.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
                let p = f.bind(Bind::Text(agent.to_string()));
                f.add(format!(
                    "m.agent_id = (SELECT id FROM agents WHERE username = {p})"
                ));
            }
            if let Some(queue) = q.queue.as_deref().filter(|s| !s.is_empty()) {
                let p = f.bind(Bind::Text(queue.to_string()));
                f.add(format!("m.queue = {p}"));
            }
            if let Some(decision) = q.decision.as_deref().filter(|s| !s.is_empty()) {
                if !["create", "add", "keep"].contains(&decision) {
                    return Err(StoreError::Invalid(
                        "decision must be create, add or keep".into(),
                    ));
                }
                let p = f.bind(Bind::Text(decision.to_string()));
                f.add(format!("m.decision = {p}"));
            }
            if let Some(from) = q.from {
                let p = f.bind(Bind::Int(from));
                f.add(format!("m.started_at >= {p}"));
            }
            if let Some(to) = q.to {
                let p = f.bind(Bind::Int(to));
                f.add(format!("m.started_at < {p}"));
            }
            match q.empty {
                Some(true) => f.add("(m.decision = 'keep' AND m.accepted_at IS NULL)".into()),
                Some(false) => f.add("NOT (m.decision = 'keep' AND m.accepted_at IS NULL)".into()),
                None => {}
            }
            if let Some(c) = q.after {
                let at = f.bind(Bind::Int(c.started_at));
                let id = f.bind(Bind::Int(c.id));
                f.add(format!(
                    "(m.started_at < {at} OR (m.started_at = {at} AND m.id < {id}))"
                ));
            }
            // One row more than asked tells whether a next page exists.
            let limit = f.bind(Bind::Int(q.limit + 1));
            let sql = format!(
                "SELECT m.id, m.chat_id, m.interaction_id, i.subject, m.visitor_name, \
                 m.visitor_email, m.email_verified, m.agent_id, a.display_name AS agent_name, \
                 m.queue, m.decision, i.auto_kept, m.started_at, m.accepted_at, m.ended_at \
                 FROM messages m \
                 JOIN interactions i ON i.id = m.interaction_id \
                 LEFT JOIN agents a ON a.id = m.agent_id \
                 WHERE {} ORDER BY m.started_at DESC, m.id DESC LIMIT {limit}",
                f.clauses.join(" AND ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in f.binds {
                query = match b {
                    Bind::Int(v) => query.bind(v),
                    Bind::Text(v) => query.bind(v),
                };
            }
            let rows = query.fetch_all(&self.pool).await?;
            let mut items = rows
                .iter()
                .map(history_row)
                .collect::<Result<Vec<_>, _>>()?;
            let next = if items.len() as i64 > q.limit {
                items.truncate(q.limit as usize);
                items.last().map(|r| {
                    HistoryCursor {
                        started_at: r.started_at,
                        id: r.id,
                    }
                    .encode()
                })
            } else {
                None
            };
            Ok(HistoryPage { items, next })
        })
    }

    /// The full-text filters (`text`, `name`) through the backend's index.
    fn text_filters(&self, q: &HistoryQuery, f: &mut Filters) -> Result<(), StoreError> {
        let text = q.text.as_deref().filter(|s| !s.trim().is_empty());
        let name = q.name.as_deref().filter(|s| !s.trim().is_empty());
        match self.backend {
            Backend::Sqlite => {
                let mut parts = Vec::new();
                if let Some(text) = text {
                    parts.push(format!("({})", fts5_all(&search_words(text)?)));
                }
                if let Some(name) = name {
                    parts.push(format!("name : ({})", fts5_all(&search_words(name)?)));
                }
                if !parts.is_empty() {
                    let p = f.bind(Bind::Text(parts.join(" AND ")));
                    f.add(format!(
                        "m.id IN (SELECT rowid FROM message_search WHERE message_search MATCH {p})"
                    ));
                }
            }
            Backend::Postgres => {
                if let Some(text) = text {
                    let p = f.bind(Bind::Text(search_words(text)?.join(" ")));
                    f.add(format!("m.search @@ plainto_tsquery('simple', {p})"));
                }
                if let Some(name) = name {
                    let p = f.bind(Bind::Text(search_words(name)?.join(" ")));
                    f.add(format!(
                        "to_tsvector('simple', coalesce(m.visitor_name, '')) \
                         @@ plainto_tsquery('simple', {p})"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_phrases() {
        let words = search_words(r#"  order "late" -- NOT x*  "#).unwrap();
        assert_eq!(words, vec!["order", "\"late\"", "NOT", "x*"]);
        assert_eq!(fts5_all(&words), r#""order" """late""" "NOT" "x*""#);
    }

    #[test]
    fn empty_and_long_searches_are_refused() {
        assert!(search_words(" -- ** ").is_err());
        let many = "a ".repeat(MAX_SEARCH_WORDS + 1);
        assert!(search_words(&many).is_err());
    }

    #[test]
    fn cursor_round_trips_and_refuses_junk() {
        let c = HistoryCursor {
            started_at: 1_764_080_410_000,
            id: 42,
        };
        assert_eq!(HistoryCursor::decode(&c.encode()), Some(c));
        assert_eq!(HistoryCursor::decode("12"), None);
        assert_eq!(HistoryCursor::decode("x.1"), None);
    }
}
