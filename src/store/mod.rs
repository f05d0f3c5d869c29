//! The durable SQL store: agents (and their sessions), queues, contacts, interactions and chat transcripts,
//! on SQLite (the default) or PostgreSQL, with its migrations embedded in the binary.
//!
//! One Rust code path serves both backends through the sqlx `Any` driver rather than an
//! enum of pools: the two schemas differ only in DDL (`migrations/{sqlite,postgres}`), and
//! every statement here sits in the subset both accept (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING`). `Any` cannot decode SQLite integers as `bool` nor bind JSON, so flags are
//! read through `row::flag` and transcripts are stored as JSON text.
//!
//! History search uses each backend's full-text index (`search`).
//!
//! Chat file attachments are not in SQL: [`FileStore`] keeps them in a directory or S3.

mod accounts;
mod agents;
mod appearance;
mod audit;
mod bounds;
mod canned;
mod files;
mod migrate;
mod model;
mod offline;
mod privacy;
mod ratings;
mod row;
mod search;
mod transcripts;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sqlx::any::{install_default_drivers, AnyPoolOptions};
use sqlx::{Any, AnyPool, Transaction};

pub use accounts::AgentSession;
pub use agents::QUEUE_CACHE_TTL;
pub use appearance::Appearance;
pub use audit::{AuditEntry, NewAuditEntry};
pub use bounds::{timeout_kind, Call, StoreFuture, Timeouts};
pub use canned::{
    valid_shortcut, CannedFields, CannedQuery, CannedResponse, CannedScope, CANNED_SEARCH_LIMIT,
};
pub use files::{valid_file_id, FileMeta, FileStore, FilesError};
pub use model::{
    Agent, AgentChanges, Contact, FlushOutcome, Interaction, MessageRecord, NewAgent,
    TranscriptEntry, TranscriptRecord,
};
pub use offline::{NewOfflineMessage, OfflineMessage, QueueSettings};
pub use privacy::{ErasedRows, PurgeKind, Purged};
pub use ratings::Rating;
pub use search::{HistoryCursor, HistoryPage, HistoryQuery, HistoryRow, MAX_SEARCH_WORDS};
pub use webhooks::{Delivery, EndpointChange, Failures, StoredEvent, WebhookEndpoint};

/// Errors callers branch on; everything else from the database is `Db`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (e.g. the username is taken).
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// The input breaks a documented rule; retrying will not help.
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database gave no answer within the node's bound on one call (connect + statement
    /// timeout): it is unreachable or black-holes packets.
    #[error("the store did not answer within {0:?}")]
    Unanswered(Duration),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Invalid(
                "store url must start with sqlite: or postgres://".into(),
            ))
        }
    }
}

/// A handle on the SQL store; cloning it is cheap (it shares one pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Queue names seen in the store and when (see `queue_exists`).
    known_queues: Arc<RwLock<HashMap<String, Instant>>>,
    timeouts: Timeouts,
    /// Calls that ran into a bound, by kind (see `bounds`).
    timeouts_total: prometheus::IntCounterVec,
}

impl Store {
    /// Connects with the default bounds (`config/default.toml`).
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Store::connect_with(url, max_connections, Timeouts::default()).await
    }

    /// Connects, switches SQLite to WAL (so several nodes or pools can share one file) and
    /// applies the embedded migrations. Every pooled connection gets the session bounds of
    /// `timeouts`; on PostgreSQL the migrations run on a connection of their own without them
    /// (a schema change may legitimately take long, or wait for another node's migration lock).
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        timeouts: Timeouts,
    ) -> Result<Store, StoreError> {
        let backend = Backend::from_url(url)?;
        install_default_drivers();
        let session = match backend {
            Backend::Sqlite => timeouts.sqlite_session(),
            Backend::Postgres => timeouts.postgres_session(),
        };
        let session: Arc<str> = session.into();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(timeouts.connect)
            .after_connect(move |conn, _meta| {
                // busy_timeout and the PostgreSQL limits are per connection; SQLite's
                // journal_mode=WAL persists in the file and is set once below, because
                // changing it cannot wait on busy_timeout.
                let session = session.clone();
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(session.to_string()))
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        let store = Store {
            pool,
            backend,
            known_queues: Arc::default(),
            timeouts,
            timeouts_total: bounds::uncounted(),
        };
        if backend == Backend::Sqlite {
            store.enable_wal().await?;
            migrate::run(&store.pool, true).await?;
        } else {
            let unbounded = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(timeouts.connect)
                .connect(url)
                .await?;
            let migrated = migrate::run(&unbounded, false).await;
            unbounded.close().await;
            migrated?;
        }
        Ok(store)
    }

    pub fn ping<'a>(&'a self) -> Call<'a, ()> {
        self.bounded(async {
            sqlx::query("SELECT 1").execute(&self.pool).await?;
            Ok(())
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    async fn enable_wal(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            match sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_optional(&self.pool)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt < 20 && is_transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so a concurrent writer waits on busy_timeout instead of failing
    /// when it upgrades a stale read snapshot.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }
}

/// Errors worth retrying the whole transaction for: a lost uniqueness race, a serialization
/// failure or deadlock (PostgreSQL), a busy or locked database (SQLite).
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || matches!(
                    db.code().as_deref(),
                    Some("40001" | "40P01" | "5" | "6" | "261" | "262" | "517" | "773")
                )
        }
        _ => false,
    }
}

/// True when the error is a unique-constraint violation.
fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Now, in Unix milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
