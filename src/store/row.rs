//! Row decoding helpers shared by the store's queries.

use sqlx::any::AnyRow;
use sqlx::Row;

/// Reads a boolean flag: a BOOLEAN on PostgreSQL, an INTEGER 0/1 on SQLite (which `Any`
/// cannot decode as `bool`).
pub(super) fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(b) => Ok(b),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}
