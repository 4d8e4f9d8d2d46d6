//! Schema migrations: `migrations/NNNN_*.sql`, embedded in the binary, applied in order, the
//! schema version kept in `PRAGMA user_version`.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

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
    (
        "0003_embeddings_inline",
        include_str!("../../migrations/0003_embeddings_inline.sql"),
    ),
    (
        "0004_path_bytes",
        include_str!("../../migrations/0004_path_bytes.sql"),
    ),
    (
        "0005_sidecar_keywords",
        include_str!("../../migrations/0005_sidecar_keywords.sql"),
    ),
    (
        "0006_learned_labels",
        include_str!("../../migrations/0006_learned_labels.sql"),
    ),
    (
        "0007_model_thresholds",
        include_str!("../../migrations/0007_model_thresholds.sql"),
    ),
    (
        "0008_embedding_generation",
        include_str!("../../migrations/0008_embedding_generation.sql"),
    ),
    (
        "0009_file_identity",
        include_str!("../../migrations/0009_file_identity.sql"),
    ),
    (
        "0010_vocabulary_generation",
        include_str!("../../migrations/0010_vocabulary_generation.sql"),
    ),
    (
        "0011_learning_per_model",
        include_str!("../../migrations/0011_learning_per_model.sql"),
    ),
    (
        "0012_history",
        include_str!("../../migrations/0012_history.sql"),
    ),
    (
        "0013_kept_decisions",
        include_str!("../../migrations/0013_kept_decisions.sql"),
    ),
    (
        "0014_vocabulary_history",
        include_str!("../../migrations/0014_vocabulary_history.sql"),
    ),
    (
        "0015_embedding_precision",
        include_str!("../../migrations/0015_embedding_precision.sql"),
    ),
];

/// The schema version this cliptag writes.
pub const LATEST_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| Error::store(path, format!("not a cliptag library database: {e}")))
}

/// What a cliptag library says it is in its header (`PRAGMA application_id`): "CLPT".
pub const APPLICATION_ID: i32 = 0x434C_5054;

/// Tables every cliptag library has had since its first schema: a database holding them but no
/// application id was made by a cliptag from before the id (and is stamped once).
const OWN_TABLES: [&str; 3] = ["settings", "roots", "images"];

/// Whether the database at `conn` is a cliptag library (or empty); anything else is refused
/// before cliptag writes a byte to it: another program's SQLite file must never gain cliptag's
/// tables or be switched to write-ahead logging. Returns whether the header still needs the id.
pub fn check_identity(conn: &Connection, path: &Path) -> Result<bool> {
    let fail =
        |e: rusqlite::Error| Error::store(path, format!("not a cliptag library database: {e}"));
    let id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(fail)?;
    if id == APPLICATION_ID {
        return Ok(false);
    }
    if id != 0 {
        return Err(Error::store(
            path,
            format!(
                "not a cliptag library: this SQLite database belongs to another program \
                 (application id {id:#x}); it was left untouched"
            ),
        ));
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(fail)?;
    let own = OWN_TABLES.iter().all(|t| tables.iter().any(|n| n == t));
    if tables.is_empty() || (own && version(conn, path)? >= 1) {
        return Ok(true);
    }
    let mut shown: Vec<&str> = tables.iter().map(String::as_str).take(5).collect();
    if tables.len() > shown.len() {
        shown.push("…");
    }
    Err(Error::store(
        path,
        format!(
            "not a cliptag library: this SQLite database holds other tables ({}); it was left \
             untouched",
            shown.join(", ")
        ),
    ))
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
///
/// Foreign keys are off while migrating (SQLite ignores the switch inside a transaction): a
/// migration that rebuilds a table must not cascade into the tables that point at it. Each
/// migration ends with a foreign key check instead.
pub fn migrate_to(conn: &mut Connection, path: &Path, target: i64) -> Result<()> {
    check_version(conn, path)?;
    if version(conn, path)? >= target {
        return Ok(());
    }
    conn.pragma_update(None, "foreign_keys", "OFF")
        .map_err(|e| Error::store(path, e.to_string()))?;
    for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
        let to = index as i64 + 1;
        if to > target {
            break;
        }
        let fail = |e: rusqlite::Error| Error::store(path, format!("migration {name} failed: {e}"));
        // The version is read again under the write lock: another process opening the same
        // library may have applied this migration meanwhile.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let current: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(fail)?;
        if to <= current {
            continue;
        }
        tx.execute_batch(sql).map_err(fail)?;
        let dangling: Option<String> = tx
            .query_row("PRAGMA foreign_key_check", [], |r| r.get(0))
            .optional()
            .map_err(fail)?;
        if let Some(table) = dangling {
            return Err(Error::store(
                path,
                format!("migration {name} left rows in {table} that point nowhere"),
            ));
        }
        tx.pragma_update(None, "user_version", to).map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    Ok(())
}
