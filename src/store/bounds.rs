//! Time bounds on every SQL call, so one frozen node or an unanswering database never stalls
//! the others: the session limits each connection gets (PostgreSQL `statement_timeout`,
//! `lock_timeout`, `idle_in_transaction_session_timeout`; SQLite `busy_timeout`), the node's
//! own bound on each call (a black-holed database answers nothing, so no server-side limit
//! can fire), and the counter of calls that ran into one.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use prometheus::IntCounterVec;

use super::{Store, StoreError};

/// The `store.*_timeout_ms` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// PostgreSQL `statement_timeout` and `idle_in_transaction_session_timeout`.
    pub statement: Duration,
    /// PostgreSQL `lock_timeout`, SQLite `busy_timeout`.
    pub lock: Duration,
    /// Waiting for a pool connection, opening one included.
    pub connect: Duration,
}

impl Timeouts {
    pub fn from_settings(s: &crate::config::Store) -> Timeouts {
        Timeouts {
            statement: Duration::from_millis(s.statement_timeout_ms),
            lock: Duration::from_millis(s.lock_timeout_ms),
            connect: Duration::from_millis(s.connect_timeout_ms),
        }
    }

    /// The node's bound on one call: a connection, then statements that each end within
    /// `statement` on a server that answers. Past it the server is not answering at all.
    pub fn call(&self) -> Duration {
        self.connect + self.statement
    }

    /// What every new PostgreSQL connection runs first. Idle in a transaction is bounded like
    /// a statement: the flush runs its statements back to back, so only a frozen or cut-off
    /// node sits there that long, and ending its transaction frees the rows it locked.
    pub(super) fn postgres_session(&self) -> String {
        format!(
            "SET statement_timeout = {s}; SET lock_timeout = {l}; \
             SET idle_in_transaction_session_timeout = {s}",
            s = self.statement.as_millis(),
            l = self.lock.as_millis(),
        )
    }

    pub(super) fn sqlite_session(&self) -> String {
        format!("PRAGMA busy_timeout = {}", self.lock.as_millis())
    }
}

impl Default for Timeouts {
    /// The documented defaults (`config/default.toml`).
    fn default() -> Timeouts {
        Timeouts::from_settings(&crate::config::Settings::defaults().store)
    }
}

/// A store operation in flight: what every `Store` method returns (`.await` it).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A store call under the node's bound.
pub type Call<'a, T> = StoreFuture<'a, Result<T, StoreError>>;

/// A counter for a store no registry counts (tests, the command line); the node replaces it
/// with its `switchboard_store_timeouts_total` (`Store::counting_timeouts_in`).
pub(super) fn uncounted() -> IntCounterVec {
    IntCounterVec::new(
        prometheus::Opts::new("store_timeouts", "not registered"),
        &["kind"],
    )
    .expect("valid metric")
}

/// Which bound an error is, if any.
pub fn timeout_kind(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::Unanswered(_) => Some("call"),
        StoreError::Db(sqlx::Error::PoolTimedOut) => Some("acquire"),
        StoreError::Db(sqlx::Error::Database(db)) => match db.code().as_deref() {
            // lock_not_available; SQLite busy and locked, with their extended codes.
            Some("55P03" | "5" | "6" | "261" | "262" | "517" | "773") => Some("lock"),
            // query_canceled: what statement_timeout raises.
            Some("57014") => Some("statement"),
            Some("25P03") => Some("idle_transaction"),
            _ => None,
        },
        _ => None,
    }
}

impl Store {
    /// Runs one store call under the node's bound and counts the bound it ran into.
    ///
    /// Not an `async fn`, and boxed: the call's future borrows the caller's arguments, and
    /// only a future made and checked `Send` in a plain function keeps every caller `Send` for
    /// all lifetimes (what spawning a task that calls the store needs, with today's compiler).
    pub(super) fn bounded<'a, T: 'a>(
        &'a self,
        call: impl Future<Output = Result<T, StoreError>> + Send + 'a,
    ) -> Call<'a, T> {
        Box::pin(async move {
            let limit = self.timeouts.call();
            let result = match tokio::time::timeout(limit, call).await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Unanswered(limit)),
            };
            if let Err(e) = &result {
                if let Some(kind) = timeout_kind(e) {
                    self.timeouts_total.with_label_values(&[kind]).inc();
                }
            }
            result
        })
    }

    /// Counts the calls that run into a bound in `counter` (label `kind`: lock, statement,
    /// idle_transaction, acquire, call), from now on and in every clone made after.
    pub fn counting_timeouts_in(mut self, counter: IntCounterVec) -> Store {
        self.timeouts_total = counter;
        self
    }

    /// The bounds this store was opened with.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }
}
