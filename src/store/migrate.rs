//! Schema migrations: `migrations/NNNN_*.sql`, embedded in the binary, applied in order, the
//! schema version kept in `PRAGMA user_version`.

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Every migration, in order; migration `i` brings the schema to version `i + 1`.
pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_library",
        include_str!("../../migrations/0001_library.sql"),
    ),
    (
        "0002_vocabulary",
        include_str!("../../migrations/0002_vocabulary.sql"),
    ),
];

/// The schema version this cliptag writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

fn version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| Error::store(path, format!("not a cliptag library database: {e}")))
}

/// Refuses a database from a newer cliptag before anything touches it.
pub fn check_version(conn: &Connection, path: &Path) -> Result<()> {
    let found = version(conn, path)?;
    if found > LATEST_VERSION {
        return Err(Error::store(
            path,
            format!(
                "this library was written by a newer cliptag (schema version {found}; this one knows up to \
                 {LATEST_VERSION}); it was left untouched — update cliptag to open it"
            ),
        ));
    }
    Ok(())
}

/// Applies the migrations the database lacks, each in its own transaction.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    migrate_to(conn, path, LATEST_VERSION)
}

/// Applies migrations up to schema `target` (tests use this to build old databases).
pub fn migrate_to(conn: &mut Connection, path: &Path, target: i64) -> Result<()> {
    check_version(conn, path)?;
    let current = version(conn, path)?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let to = index as i64 + 1;
        if to <= current || to > target {
            continue;
        }
        let fail = |e: rusqlite::Error| Error::store(path, format!("migration {name} failed: {e}"));
        let tx = conn.transaction().map_err(fail)?;
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", to).map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    Ok(())
}
