//! The library database: SQLite with embedded migrations, WAL, and one connection per thread
//! that uses it (in the app, the worker thread alone).

pub(crate) mod images;
pub(crate) mod labels;
mod migrate;
mod tags;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::error::{Error, Result};
pub use images::{ImageRow, ImageStatus, NewImage};
pub use migrate::{LATEST_VERSION, MIGRATIONS};
pub use tags::{TagRow, TagSource};

/// An open library database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Milliseconds since the Unix epoch: the unit of every timestamp column.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// A database written by a newer cliptag is refused untouched.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Error::store(path, e.to_string()))?;
        Self::setup(conn, path)
    }

    /// A private in-memory database, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Self> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| Error::store(path, e.to_string()))?;
        Self::setup(conn, path)
    }

    fn setup(mut conn: Connection, path: &Path) -> Result<Self> {
        let fail = |e: rusqlite::Error| Error::store(path, e.to_string());
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(fail)?;
        // Read the version before anything else so that a newer database is left untouched.
        migrate::check_version(&conn, path)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail)?;
        // Embeddings and automatic tags can be recomputed, so bulk writes need not reach the
        // disk platter before returning; a person's decisions use `durable` instead.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        migrate::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw connection, for queries the store does not wrap.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Turns a SQLite error into one that names the database.
    pub fn err(&self, error: rusqlite::Error) -> Error {
        Error::store(&self.path, error.to_string())
    }

    /// Runs `f` in one transaction; it commits only if `f` succeeds.
    pub fn transaction<R>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction()
            .map_err(|e| Error::store(&path, e.to_string()))?;
        let result = f(&tx)?;
        tx.commit()
            .map_err(|e| Error::store(&path, e.to_string()))?;
        Ok(result)
    }

    /// Like [`Store::transaction`], but the commit is flushed to disk before returning: for a
    /// person's decisions and vocabulary, which cannot be recomputed.
    pub fn durable<R>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        let result = self.transaction(f);
        let restore = self
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.err(e));
        let result = result?;
        restore?;
        Ok(result)
    }

    /// A stored setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Stores a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The folders the person asked to index, in the order they were added.
    pub fn roots(&self) -> Result<Vec<PathBuf>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path FROM roots ORDER BY added_at, path")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map(PathBuf::from).map_err(|e| self.err(e)))
            .collect()
    }

    /// Remembers a folder to index.
    pub fn add_root(&self, root: &Path) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO roots (path, added_at) VALUES (?1, ?2)",
                rusqlite::params![path_text(root)?, now()],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Runs `PRAGMA integrity_check`; `Ok("ok")` for a healthy database.
    pub fn integrity_check(&self) -> Result<String> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }
}

/// A path as stored in the database. cliptag stores paths as text; a file name that is not valid
/// UTF-8 cannot be stored faithfully and is refused with a reason the person can act on.
pub fn path_text(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| {
        Error::image(
            path,
            "the file name is not valid UTF-8; rename the file to index it",
        )
    })
}

/// Encodes a vector as little-endian f32 bytes.
pub fn vector_to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Decodes little-endian f32 bytes; `None` if the length is not a whole number of floats.
pub fn blob_to_vector(blob: &[u8]) -> Option<Vec<f32>> {
    if !blob.len().is_multiple_of(4) {
        return None;
    }
    Some(
        blob.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}
