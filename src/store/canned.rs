//! Canned responses: short texts agents insert into a chat, shared (admin-managed) or
//! personal (one agent's own). Who may see or change one is decided by the caller; this
//! module enforces the field rules and the per-scope shortcut uniqueness, and searches.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{is_unique_violation, now_ms, Call, Store, StoreError};

const MAX_TITLE: usize = 100;
const MAX_SHORTCUT: usize = 32;
const MAX_TEXT: usize = 4000;
/// Most responses one search returns.
pub const CANNED_SEARCH_LIMIT: i64 = 50;
/// Most words in one search; each becomes one `LIKE` in a fixed statement.
pub const MAX_SEARCH_WORDS: usize = 8;
/// Longest search string, in characters.
pub const MAX_SEARCH_CHARS: usize = 200;

/// Who sees a canned response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CannedScope {
    /// Every agent sees it; only admins change it.
    Shared,
    /// Only its owner sees and changes it.
    Personal,
}

impl CannedScope {
    pub fn as_str(self) -> &'static str {
        match self {
            CannedScope::Shared => "shared",
            CannedScope::Personal => "personal",
        }
    }
}

/// A stored canned response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedResponse {
    pub id: i64,
    pub scope: CannedScope,
    /// The owning agent of a personal response; `None` for shared ones.
    pub owner_id: Option<i64>,
    pub title: String,
    pub shortcut: String,
    /// May hold placeholders (`{visitor_name}`, …), filled in when rendered for a chat.
    pub text: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The editable fields of a canned response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedFields {
    /// 1 to 100 characters, not blank, no control characters (stored trimmed).
    pub title: String,
    /// 1 to 32 of `a-z 0-9 _ -`.
    pub shortcut: String,
    /// 1 to 4000 characters, not blank; line breaks and tabs allowed.
    pub text: String,
}

/// True for 1 to 32 characters of `[a-z0-9_-]`.
pub fn valid_shortcut(s: &str) -> bool {
    (1..=MAX_SHORTCUT).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks the fields; returns them with the title trimmed.
fn validate(f: &CannedFields) -> Result<CannedFields, StoreError> {
    let invalid = |m: &str| Err(StoreError::Invalid(m.to_string()));
    let title = f.title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE {
        return invalid("title must be 1 to 100 characters");
    }
    if title.chars().any(char::is_control) {
        return invalid("title must not contain control characters");
    }
    if !valid_shortcut(&f.shortcut) {
        return invalid("shortcut must be 1 to 32 characters of a-z, 0-9, _ and - (without the /)");
    }
    if f.text.trim().is_empty() || f.text.chars().count() > MAX_TEXT {
        return invalid("text must be 1 to 4000 characters, not only spaces");
    }
    if f.text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return invalid("text must not contain control characters other than line breaks and tabs");
    }
    Ok(CannedFields {
        title: title.to_string(),
        shortcut: f.shortcut.clone(),
        text: f.text.clone(),
    })
}

/// The lowercased haystack that word search runs `LIKE` over.
fn search_text(f: &CannedFields) -> String {
    format!("{}\n{}\n{}", f.title, f.shortcut, f.text).to_lowercase()
}

/// `%word%` for `LIKE … ESCAPE '\'`.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// What a search asks for, already lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CannedQuery {
    /// Everything visible.
    All,
    /// Shortcuts starting with this (the console's `/gre`, without the slash).
    ShortcutPrefix(String),
    /// Every word must appear in the title, shortcut or text.
    Words(Vec<String>),
}

impl CannedQuery {
    /// Parses the `q` of a search: `/prefix` searches shortcuts, anything else words.
    pub fn parse(q: &str) -> Result<CannedQuery, StoreError> {
        if q.chars().count() > MAX_SEARCH_CHARS {
            return Err(StoreError::Invalid(format!(
                "q must be at most {MAX_SEARCH_CHARS} characters"
            )));
        }
        let q = q.trim().to_lowercase();
        if let Some(prefix) = q.strip_prefix('/') {
            return Ok(CannedQuery::ShortcutPrefix(prefix.trim().to_string()));
        }
        let words: Vec<String> = q.split_whitespace().map(str::to_string).collect();
        if words.len() > MAX_SEARCH_WORDS {
            return Err(StoreError::Invalid(format!(
                "q must have at most {MAX_SEARCH_WORDS} words"
            )));
        }
        Ok(if words.is_empty() {
            CannedQuery::All
        } else {
            CannedQuery::Words(words)
        })
    }
}

fn canned_from_row(row: &AnyRow) -> Result<CannedResponse, StoreError> {
    let scope: String = row.try_get("scope")?;
    let scope = match scope.as_str() {
        "shared" => CannedScope::Shared,
        "personal" => CannedScope::Personal,
        other => {
            return Err(StoreError::Invalid(format!(
                "stored canned response has scope {other:?}"
            )))
        }
    };
    Ok(CannedResponse {
        id: row.try_get("id")?,
        scope,
        owner_id: row.try_get("owner_id")?,
        title: row.try_get("title")?,
        shortcut: row.try_get("shortcut")?,
        text: row.try_get("text")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn shortcut_taken(f: &CannedFields, scope: CannedScope) -> StoreError {
    StoreError::Conflict(format!(
        "the {} shortcut {:?} is taken",
        scope.as_str(),
        f.shortcut
    ))
}

impl Store {
    /// Creates a canned response. `owner` is the agent of a personal one and must be `None`
    /// for a shared one. A shortcut already used in the same scope (and, for personal ones,
    /// by the same owner) is a `Conflict`.
    pub fn create_canned<'a>(
        &'a self,
        scope: CannedScope,
        owner: Option<i64>,
        fields: &'a CannedFields,
    ) -> Call<'a, CannedResponse> {
        self.bounded(async move {
            let f = validate(fields)?;
            if (scope == CannedScope::Personal) != owner.is_some() {
                return Err(StoreError::Invalid(
                    "a personal canned response needs an owner and a shared one has none".into(),
                ));
            }
            let now = now_ms();
            let inserted = sqlx::query(
                "INSERT INTO canned_responses \
             (scope, owner_id, title, shortcut, text, title_key, search, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            )
            .bind(scope.as_str())
            .bind(owner)
            .bind(f.title.as_str())
            .bind(f.shortcut.as_str())
            .bind(f.text.as_str())
            .bind(f.title.to_lowercase())
            .bind(search_text(&f))
            .bind(now)
            .fetch_one(&self.pool)
            .await;
            let id: i64 = match inserted {
                Ok(row) => row.try_get("id")?,
                Err(e) if is_unique_violation(&e) => return Err(shortcut_taken(&f, scope)),
                Err(e) => return Err(e.into()),
            };
            Ok(CannedResponse {
                id,
                scope,
                owner_id: owner,
                title: f.title,
                shortcut: f.shortcut,
                text: f.text,
                created_at: now,
                updated_at: now,
            })
        })
    }

    /// The canned response if `agent` may see it: shared, or personal and theirs.
    pub fn visible_canned<'a>(&'a self, id: i64, agent: i64) -> Call<'a, Option<CannedResponse>> {
        self.bounded(async move {
            let row = sqlx::query(
                "SELECT id, scope, owner_id, title, shortcut, text, created_at, updated_at \
             FROM canned_responses WHERE id = $1 AND (scope = 'shared' OR owner_id = $2)",
            )
            .bind(id)
            .bind(agent)
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(canned_from_row).transpose()
        })
    }

    /// Replaces the title, shortcut and text (scope and owner never change); `NotFound` if
    /// the response is gone, `Conflict` if the new shortcut is taken in its scope.
    pub fn update_canned<'a>(
        &'a self,
        id: i64,
        fields: &'a CannedFields,
    ) -> Call<'a, CannedResponse> {
        self.bounded(async move {
        let f = validate(fields)?;
        let updated = sqlx::query(
            "UPDATE canned_responses \
             SET title = $1, shortcut = $2, text = $3, title_key = $4, search = $5, updated_at = $6 \
             WHERE id = $7 \
             RETURNING id, scope, owner_id, title, shortcut, text, created_at, updated_at",
        )
        .bind(f.title.as_str())
        .bind(f.shortcut.as_str())
        .bind(f.text.as_str())
        .bind(f.title.to_lowercase())
        .bind(search_text(&f))
        .bind(now_ms())
        .bind(id)
        .fetch_optional(&self.pool)
        .await;
        match updated {
            Ok(Some(row)) => canned_from_row(&row),
            Ok(None) => Err(StoreError::NotFound),
            Err(e) if is_unique_violation(&e) => {
                let scope = match self.canned_by_id(id).await? {
                    Some(c) => c.scope,
                    None => return Err(StoreError::NotFound),
                };
                Err(shortcut_taken(&f, scope))
            }
            Err(e) => Err(e.into()),
        }
    })
    }

    async fn canned_by_id(&self, id: i64) -> Result<Option<CannedResponse>, StoreError> {
        let row = sqlx::query(
            "SELECT id, scope, owner_id, title, shortcut, text, created_at, updated_at \
             FROM canned_responses WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(canned_from_row).transpose()
    }

    /// Deletes a canned response; `NotFound` if it is already gone.
    pub fn delete_canned<'a>(&'a self, id: i64) -> Call<'a, ()> {
        self.bounded(async move {
            let done = sqlx::query("DELETE FROM canned_responses WHERE id = $1")
                .bind(id)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
    }

    /// The responses `agent` sees (shared ones and their own personal ones) that match `q`,
    /// at most [`CANNED_SEARCH_LIMIT`]. Order: a shortcut equal to the query first (a
    /// personal one before the shared one it shadows), then shortcuts starting with it,
    /// then the rest; within each, by title (lowercased, code-point order), then id.
    pub fn search_canned<'a>(
        &'a self,
        agent: i64,
        q: &'a CannedQuery,
    ) -> Call<'a, Vec<CannedResponse>> {
        self.bounded(async move {
            // One fixed statement: unused word slots match everything.
            let (prefix, words, exact) = match q {
                CannedQuery::All => (String::new(), &[][..], String::new()),
                CannedQuery::ShortcutPrefix(p) => (p.clone(), &[][..], p.clone()),
                CannedQuery::Words(w) => (w[0].clone(), &w[..], w.join(" ")),
            };
            if words.len() > MAX_SEARCH_WORDS {
                return Err(StoreError::Invalid(format!(
                    "q must have at most {MAX_SEARCH_WORDS} words"
                )));
            }
            let shortcut_filter = match q {
                CannedQuery::ShortcutPrefix(p) => format!("{}%", escape_like(p)),
                _ => "%".to_string(),
            };
            let mut query = sqlx::query(
                "SELECT id, scope, owner_id, title, shortcut, text, created_at, updated_at \
             FROM canned_responses \
             WHERE (scope = 'shared' OR owner_id = $1) \
               AND shortcut LIKE $2 ESCAPE '\\' \
               AND search LIKE $3 ESCAPE '\\' AND search LIKE $4 ESCAPE '\\' \
               AND search LIKE $5 ESCAPE '\\' AND search LIKE $6 ESCAPE '\\' \
               AND search LIKE $7 ESCAPE '\\' AND search LIKE $8 ESCAPE '\\' \
               AND search LIKE $9 ESCAPE '\\' AND search LIKE $10 ESCAPE '\\' \
             ORDER BY CASE \
                 WHEN shortcut = $11 AND scope = 'personal' THEN 0 \
                 WHEN shortcut = $11 THEN 1 \
                 WHEN shortcut LIKE $12 ESCAPE '\\' THEN 2 \
                 ELSE 3 END, \
               title_key, id \
             LIMIT $13",
            )
            .bind(agent)
            .bind(shortcut_filter);
            for i in 0..MAX_SEARCH_WORDS {
                query = query.bind(match words.get(i) {
                    Some(w) => format!("%{}%", escape_like(w)),
                    None => "%".to_string(),
                });
            }
            let rows = query
                .bind(exact)
                .bind(format!("{}%", escape_like(&prefix)))
                .bind(CANNED_SEARCH_LIMIT)
                .fetch_all(&self.pool)
                .await?;
            rows.iter().map(canned_from_row).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(title: &str, shortcut: &str, text: &str) -> CannedFields {
        CannedFields {
            title: title.into(),
            shortcut: shortcut.into(),
            text: text.into(),
        }
    }

    #[test]
    fn field_rules() {
        assert!(validate(&fields("Hi", "hi", "Hello")).is_ok());
        assert_eq!(validate(&fields("  Hi  ", "hi", "x")).unwrap().title, "Hi");
        assert!(validate(&fields(" ", "hi", "x")).is_err());
        assert!(validate(&fields(&"t".repeat(101), "hi", "x")).is_err());
        assert!(validate(&fields(&"é".repeat(100), "hi", "x")).is_ok());
        assert!(validate(&fields("Hi", "", "x")).is_err());
        assert!(validate(&fields("Hi", "Hi", "x")).is_err());
        assert!(validate(&fields("Hi", "/hi", "x")).is_err());
        assert!(validate(&fields("Hi", "h i", "x")).is_err());
        assert!(validate(&fields("Hi", &"a".repeat(33), "x")).is_err());
        assert!(validate(&fields("Hi", "a-b_9", "x")).is_ok());
        assert!(validate(&fields("Hi", "hi", "")).is_err());
        assert!(validate(&fields("Hi", "hi", "\n ")).is_err());
        assert!(validate(&fields("Hi", "hi", &"x".repeat(4001))).is_err());
        assert!(validate(&fields("Hi", "hi", "a\nb\tc")).is_ok());
        assert!(validate(&fields("Hi", "hi", "a\u{7}")).is_err());
    }

    #[test]
    fn queries() {
        assert_eq!(CannedQuery::parse("").unwrap(), CannedQuery::All);
        assert_eq!(CannedQuery::parse("  ").unwrap(), CannedQuery::All);
        assert_eq!(
            CannedQuery::parse("/GRE").unwrap(),
            CannedQuery::ShortcutPrefix("gre".into())
        );
        assert_eq!(
            CannedQuery::parse("Refund  Policy").unwrap(),
            CannedQuery::Words(vec!["refund".into(), "policy".into()])
        );
        assert!(CannedQuery::parse("a b c d e f g h i").is_err());
        assert!(CannedQuery::parse(&"a".repeat(201)).is_err());
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }
}
