//! The schema migrations, embedded in the binary, one SQL flavour per backend.

use std::borrow::Cow;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, SqlSafeStr};

use super::StoreError;

/// `(version, description, sql)`; versions and names follow sqlx-cli's file naming, so the
/// checksums match if an operator applies `migrations/<backend>/` with sqlx-cli.
type Embedded = (i64, &'static str, &'static str);

const SQLITE: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "canned",
        include_str!("../../migrations/sqlite/0002_canned.sql"),
    ),
    (
        3,
        "offline",
        include_str!("../../migrations/sqlite/0003_offline.sql"),
    ),
    (
        4,
        "access",
        include_str!("../../migrations/sqlite/0004_access.sql"),
    ),
    (
        5,
        "integrations",
        include_str!("../../migrations/sqlite/0005_integrations.sql"),
    ),
    (
        6,
        "search",
        include_str!("../../migrations/sqlite/0006_search.sql"),
    ),
    (
        7,
        "ratings",
        include_str!("../../migrations/sqlite/0007_ratings.sql"),
    ),
    (
        8,
        "appearance",
        include_str!("../../migrations/sqlite/0008_appearance.sql"),
    ),
    (
        9,
        "supervisor",
        include_str!("../../migrations/sqlite/0009_supervisor.sql"),
    ),
];

const POSTGRES: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "canned",
        include_str!("../../migrations/postgres/0002_canned.sql"),
    ),
    (
        3,
        "offline",
        include_str!("../../migrations/postgres/0003_offline.sql"),
    ),
    (
        4,
        "access",
        include_str!("../../migrations/postgres/0004_access.sql"),
    ),
    (
        5,
        "integrations",
        include_str!("../../migrations/postgres/0005_integrations.sql"),
    ),
    (
        6,
        "search",
        include_str!("../../migrations/postgres/0006_search.sql"),
    ),
    (
        7,
        "ratings",
        include_str!("../../migrations/postgres/0007_ratings.sql"),
    ),
    (
        8,
        "appearance",
        include_str!("../../migrations/postgres/0008_appearance.sql"),
    ),
    (
        9,
        "supervisor",
        include_str!("../../migrations/postgres/0009_supervisor.sql"),
    ),
];

fn migrator(sqlite: bool) -> Migrator {
    let list = if sqlite { SQLITE } else { POSTGRES };
    Migrator::with_migrations(
        list.iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Applies pending migrations. PostgreSQL serialises concurrent nodes with an advisory
/// lock; SQLite has no such lock, so a node that loses the race to a node starting at the
/// same moment fails its attempt and retries, then finds the migration applied.
///
/// `pool` is the store's pool on SQLite; on PostgreSQL a pool of its own without the store's
/// statement and lock bounds (a schema change may take long, and a node starting next to a
/// migrating one must wait for its lock).
pub(super) async fn run(pool: &AnyPool, sqlite: bool) -> Result<(), StoreError> {
    let migrator = migrator(sqlite);
    let mut attempt = 0;
    loop {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(e) if sqlite && attempt < 3 => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "migration attempt failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}
