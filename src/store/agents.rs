//! Agents, their argon2id passwords, and the routing queues they serve.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{is_unique_violation, now_ms, Agent, Call, NewAgent, Store, StoreError};

const MAX_USERNAME: usize = 64;
const MAX_DISPLAY_NAME: usize = 128;
const MIN_PASSWORD: usize = 8;
/// Bounds the hashing work one request can ask for.
const MAX_PASSWORD: usize = 1024;
const MAX_QUEUE_NAME: usize = 64;
const MAX_CHATS: i64 = 100;
const ROLES: [&str; 3] = ["agent", "supervisor", "admin"];

/// True for 1 to 64 characters of `[a-z0-9_-]`.
/// How long a node trusts that a queue name it found still exists.
pub const QUEUE_CACHE_TTL: Duration = Duration::from_secs(60);

pub(super) fn valid_queue_name(name: &str) -> bool {
    (1..=MAX_QUEUE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Checks a new agent and returns its display name and its sorted, de-duplicated queues.
pub(super) fn validate(a: &NewAgent) -> Result<(String, Vec<String>), StoreError> {
    let username_len = a.username.chars().count();
    if username_len == 0 || username_len > MAX_USERNAME {
        return invalid("username must be 1 to 64 characters");
    }
    if a.username
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return invalid("username must not contain spaces or control characters");
    }
    let display_name = match a.display_name.trim() {
        "" => a.username.clone(),
        d => d.to_string(),
    };
    check_display_name(&display_name)?;
    check_password(&a.password)?;
    check_max_chats(a.max_chats)?;
    check_role(&a.role)?;
    Ok((display_name, checked_queues(&a.queues)?))
}

fn invalid<T>(m: &str) -> Result<T, StoreError> {
    Err(StoreError::Invalid(m.to_string()))
}

pub(super) fn check_display_name(name: &str) -> Result<(), StoreError> {
    if name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
        return invalid("display name must be at most 128 characters, without control characters");
    }
    Ok(())
}

pub(super) fn check_password(password: &str) -> Result<(), StoreError> {
    if password.chars().count() < MIN_PASSWORD {
        return invalid("password must be at least 8 characters");
    }
    if password.len() > MAX_PASSWORD {
        return invalid("password must be at most 1024 bytes");
    }
    Ok(())
}

pub(super) fn check_max_chats(max_chats: i64) -> Result<(), StoreError> {
    if !(1..=MAX_CHATS).contains(&max_chats) {
        return invalid("max_chats must be 1 to 100");
    }
    Ok(())
}

pub(super) fn check_role(role: &str) -> Result<(), StoreError> {
    if !ROLES.contains(&role) {
        return invalid("role must be agent, supervisor or admin");
    }
    Ok(())
}

/// The queues checked, sorted and de-duplicated.
pub(super) fn checked_queues(queues: &[String]) -> Result<Vec<String>, StoreError> {
    let mut queues = queues.to_vec();
    if let Some(bad) = queues.iter().find(|q| !valid_queue_name(q)) {
        return Err(StoreError::Invalid(format!(
            "queue name {bad:?} must be 1 to 64 characters of a-z, 0-9, _ and -"
        )));
    }
    queues.sort();
    queues.dedup();
    Ok(queues)
}

pub(super) fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Invalid(format!("password cannot be hashed: {e}")))
}

fn password_matches(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "stored password hash does not parse");
            false
        }
    }
}

/// A real hash to verify against when the username is unknown, so that answer takes as
/// long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password("switchboard-no-such-agent").expect("hashing a constant password")
    })
}

/// Runs CPU-heavy hashing off the async workers.
pub(super) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("password hashing task did not run: {e}"),
    }
}

/// Makes `queues` the agent's queues (creating those that do not exist yet), inside `tx`.
pub(super) async fn link_queues(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    agent: i64,
    queues: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM agent_queues WHERE agent_id = $1")
        .bind(agent)
        .execute(&mut **tx)
        .await?;
    for q in queues {
        sqlx::query(
            "INSERT INTO queues (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(q.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        sqlx::query("INSERT INTO agent_queues (agent_id, queue) VALUES ($1, $2)")
            .bind(agent)
            .bind(q.as_str())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub(super) fn agent_from_row(row: &AnyRow, queues: Vec<String>) -> Result<Agent, sqlx::Error> {
    Ok(Agent {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        role: row.try_get("role")?,
        max_chats: row.try_get("max_chats")?,
        queues,
        created_at: row.try_get("created_at")?,
        disabled: super::row::flag(row, "disabled")?,
    })
}

impl Store {
    /// Creates an agent, and any of its queues that do not exist yet.
    pub fn create_agent<'a>(&'a self, a: &'a NewAgent) -> Call<'a, Agent> {
        self.bounded(async move {
        let (display_name, queues) = validate(a)?;
        let taken = || StoreError::Conflict(format!("username {:?} is taken", a.username));
        // Cheap early answer; the unique index below is what actually decides.
        if sqlx::query("SELECT id FROM agents WHERE username = $1")
            .bind(a.username.as_str())
            .fetch_optional(&self.pool)
            .await?
            .is_some()
        {
            return Err(taken());
        }
        let password = a.password.clone();
        let hash = blocking(move || hash_password(&password)).await?;
        let now = now_ms();

        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO agents (username, display_name, password_hash, role, max_chats, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(a.username.as_str())
        .bind(display_name.as_str())
        .bind(hash.as_str())
        .bind(a.role.as_str())
        .bind(a.max_chats)
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get("id")?,
            Err(e) if is_unique_violation(&e) => return Err(taken()),
            Err(e) => return Err(e.into()),
        };
        link_queues(&mut tx, id, &queues, now).await?;
        tx.commit().await?;
        Ok(Agent {
            id,
            username: a.username.clone(),
            display_name,
            role: a.role.clone(),
            max_chats: a.max_chats,
            queues,
            created_at: now,
            disabled: false,
        })
    })
    }

    /// The agent when the password is right; `None` for a wrong password or an unknown
    /// username (which costs the same hashing work, so timing does not tell them apart).
    pub fn verify_password<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
    ) -> Call<'a, Option<Agent>> {
        self.bounded(async move {
            let row = sqlx::query("SELECT id, password_hash FROM agents WHERE username = $1")
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
            let (id, hash) = match row {
                Some(row) => (
                    Some(row.try_get::<i64, _>("id")?),
                    Some(row.try_get::<String, _>("password_hash")?),
                ),
                None => (None, None),
            };
            let password = password.to_string();
            let matches = blocking(move || {
                let hash = hash.as_deref().unwrap_or_else(|| dummy_hash());
                password_matches(&password, hash)
            })
            .await;
            match id {
                Some(id) if matches => self.agent(id).await,
                _ => Ok(None),
            }
        })
    }

    pub fn agent<'a>(&'a self, id: i64) -> Call<'a, Option<Agent>> {
        self.bounded(async move {
        let Some(row) = sqlx::query(
            "SELECT id, username, display_name, role, max_chats, created_at, disabled FROM agents WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let queues = sqlx::query_scalar::<_, String>(
            "SELECT queue FROM agent_queues WHERE agent_id = $1 ORDER BY queue",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some(agent_from_row(&row, queues)?))
    })
    }

    /// All agents, by id.
    pub fn agents<'a>(&'a self) -> Call<'a, Vec<Agent>> {
        self.bounded(async move {
        let rows = sqlx::query(
            "SELECT id, username, display_name, role, max_chats, created_at, disabled FROM agents ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut queues: HashMap<i64, Vec<String>> = HashMap::new();
        for row in sqlx::query("SELECT agent_id, queue FROM agent_queues ORDER BY agent_id, queue")
            .fetch_all(&self.pool)
            .await?
        {
            queues
                .entry(row.try_get("agent_id")?)
                .or_default()
                .push(row.try_get("queue")?);
        }
        let mut agents = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            agents.push(agent_from_row(row, queues.remove(&id).unwrap_or_default())?);
        }
        Ok(agents)
    })
    }

    pub fn agent_count<'a>(&'a self) -> Call<'a, i64> {
        self.bounded(async move {
            Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM agents")
                .fetch_one(&self.pool)
                .await?)
        })
    }

    /// All queue names, sorted.
    pub fn queues<'a>(&'a self) -> Call<'a, Vec<String>> {
        self.bounded(async move {
            Ok(
                sqlx::query_scalar::<_, String>("SELECT name FROM queues ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?,
            )
        })
    }

    /// Whether a queue of this name exists. A name found is remembered for
    /// [`QUEUE_CACHE_TTL`], so a chat request need not ask the database each time; an unknown
    /// name is looked up again each time, so a queue created on another node is usable at once.
    /// A queue renamed on another node may still be found here for that long: the routing
    /// state refuses its old name meanwhile (`redis::queues`).
    pub fn queue_exists<'a>(&'a self, name: &'a str) -> Call<'a, bool> {
        self.bounded(async move {
            let fresh = |at: &Instant| at.elapsed() < QUEUE_CACHE_TTL;
            if self
                .known_queues
                .read()
                .unwrap()
                .get(name)
                .is_some_and(fresh)
            {
                return Ok(true);
            }
            let found = sqlx::query_scalar::<_, String>("SELECT name FROM queues WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
                .is_some();
            let mut known = self.known_queues.write().unwrap();
            if found {
                known.insert(name.to_string(), Instant::now());
            } else {
                known.remove(name);
            }
            Ok(found)
        })
    }

    /// Creates the queue unless it exists; `Invalid` unless 1 to 64 of `[a-z0-9_-]`.
    pub fn ensure_queue<'a>(&'a self, name: &'a str) -> Call<'a, ()> {
        self.bounded(async move {
            check_queue_name(name)?;
            sqlx::query(
            "INSERT INTO queues (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
            Ok(())
        })
    }

    /// Creates a new queue; `Conflict` when one of that name exists, `Invalid` for a bad name.
    pub fn create_queue<'a>(&'a self, name: &'a str) -> Call<'a, ()> {
        self.bounded(async move {
            check_queue_name(name)?;
            let n = sqlx::query(
                "INSERT INTO queues (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now_ms())
            .execute(&self.pool)
            .await?
            .rows_affected();
            if n == 0 {
                return Err(StoreError::Conflict(format!("a queue named {name} exists")));
            }
            Ok(())
        })
    }

    /// Renames a queue in one transaction: the queue (settings kept), the agents' memberships
    /// and the offline messages move to `new`; transcripts keep the name their chat had.
    /// `NotFound` without `old`, `Conflict` when `new` exists, `Invalid` for a bad name.
    pub fn rename_queue<'a>(&'a self, old: &'a str, new: &'a str) -> Call<'a, ()> {
        self.bounded(async move {
            check_queue_name(new)?;
            let mut tx = self.begin_write().await?;
            let copied = sqlx::query(
                "INSERT INTO queues (name, created_at, offline_text, business_hours) \
                 SELECT $1, created_at, offline_text, business_hours FROM queues WHERE name = $2",
            )
            .bind(new)
            .bind(old)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!("a queue named {new} exists"))
                } else {
                    e.into()
                }
            })?
            .rows_affected();
            if copied == 0 {
                return Err(StoreError::NotFound);
            }
            for sql in [
                "UPDATE agent_queues SET queue = $1 WHERE queue = $2",
                "UPDATE offline_messages SET queue = $1 WHERE queue = $2",
            ] {
                sqlx::query(sql)
                    .bind(new)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM queues WHERE name = $1")
                .bind(old)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            self.known_queues.write().unwrap().remove(old);
            Ok(())
        })
    }
}

fn check_queue_name(name: &str) -> Result<(), StoreError> {
    if valid_queue_name(name) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "queue name {name:?} must be 1 to 64 characters of a-z, 0-9, _ and -"
        )))
    }
}
