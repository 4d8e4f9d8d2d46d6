//! The library database: SQLite with embedded migrations, WAL, and one connection per thread
//! that uses it (in the app, the worker thread alone). This is the only module that speaks SQL;
//! everything above it reads and writes the library through the typed methods here.

mod batch;
mod folders;
mod gallery;
pub mod history;
mod images;
mod labels;
mod migrate;
mod paths;
mod sidecars;
mod tags;
pub mod thumbnails;
pub mod vectors;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::error::{Error, Result};
pub use batch::Batch;
pub use folders::{FolderCounts, RemovedFolder};
pub use gallery::{GalleryQuery, PROBLEMS_LISTED};
pub use images::{EmbeddingRow, ImageRow, KnownContent, NewImage};
pub use migrate::{APPLICATION_ID, LATEST_VERSION, MIGRATIONS};
pub use paths::{path_bytes, path_from_bytes};
pub use tags::{BULK_TAGS, TAGS_PER_LOOK, TagRow};
pub use thumbnails::ThumbnailCache;
pub use vectors::{VectorFile, vectors_path};

/// How long a write waits for another writer (the app and a `cliptag` command on one library)
/// before it gives up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// An open library database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Whether commits are in the write-ahead log that no checkpoint has copied into the
    /// database file yet.
    checkpoint_due: bool,
    /// Why the library can only be read (a write-protected file or folder, read-only media), or
    /// `None` where it can be changed.
    read_only: Option<String>,
    /// The vocabulary generations before and after this connection's last durable write that
    /// changed the vocabulary (read inside its transaction, so no other writer's edit is
    /// counted in), for the label re-tag that follows it.
    last_vocabulary_edit: Option<(i64, i64)>,
}

/// What a write of automatic tags was computed from, so the library knows whether its tags
/// agree with its vocabulary (see `migrations/0010_vocabulary_generation.sql`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Every automatic tag, from vocabulary generation `n`, over the library as it was when
    /// the count of tag writes was `writes` (a full re-tag).
    Whole { n: i64, writes: i64 },
    /// Some tags (new photos, a decision cleared), from generation `n`.
    Part(i64),
    /// One label's tags right after its edit took the vocabulary from generation `before` to
    /// `after`.
    Edit { before: i64, after: i64 },
}

/// Records in `tx` what tags written from `basis` mean for their agreement with the vocabulary.
pub(crate) fn follow(tx: &Transaction<'_>, basis: Basis) -> rusqlite::Result<()> {
    match basis {
        Basis::Whole { n, writes } => tx.execute(
            "UPDATE vocabulary_generation SET tagged = ?1 WHERE n = ?1 AND writes = ?2",
            [n, writes],
        )?,
        Basis::Part(n) => tx.execute(
            "UPDATE vocabulary_generation SET tagged = -1 WHERE n != ?1",
            [n],
        )?,
        Basis::Edit { before, after } => tx.execute(
            "UPDATE vocabulary_generation SET tagged = CASE
                 WHEN n != ?2 THEN -1
                 WHEN tagged = ?1 THEN ?2
                 ELSE tagged END",
            [before, after],
        )?,
    };
    tx.execute("UPDATE vocabulary_generation SET writes = writes + 1", [])?;
    Ok(())
}

fn generation(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row("SELECT n FROM vocabulary_generation", [], |r| r.get(0))
}

/// A write-ahead log larger than this is checkpointed right after the commit that grew it.
const WAL_LIMIT_BYTES: u64 = 128 << 20;

/// Why an existing library at `path` can only be read: its file or its folder cannot be written
/// (permissions, read-only media). `None` where it can be written, or does not exist yet.
pub(crate) fn read_only_reason(path: &Path) -> Option<String> {
    if !path.exists() {
        return None;
    }
    if !writable(path) {
        return Some(format!(
            "{} cannot be written (read-only file or media)",
            path.display()
        ));
    }
    let absolute = std::path::absolute(path).ok()?;
    let folder = absolute.parent()?;
    if !writable(folder) {
        return Some(format!(
            "its folder {} cannot be written (read-only folder or media)",
            folder.display()
        ));
    }
    None
}

/// Whether this process may write `path` (a file, or a folder to make files in).
#[cfg(unix)]
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(name) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `name` is a NUL-terminated path that lives across the call.
    unsafe { libc::access(name.as_ptr(), libc::W_OK) == 0 }
}

/// Whether this process may write `path`.
#[cfg(not(unix))]
fn writable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.permissions().readonly())
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
        if let Some(why) = read_only_reason(path) {
            return Self::open_read_only(path, why);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let conn = Connection::open(path).map_err(|e| Error::store(path, e.to_string()))?;
        Self::setup(conn, path)
    }

    /// Opens an existing library that cannot be written: every read works, every write is
    /// refused with `why`. In a folder that cannot be written SQLite cannot keep its shared
    /// memory file beside the database, so the file is read as immutable.
    pub(crate) fn open_read_only(path: &Path, why: String) -> Result<Self> {
        let fail = |e: rusqlite::Error| Error::store(path, e.to_string());
        let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        let folder_writable = absolute.parent().is_some_and(writable);
        let mut uri = String::from("file:");
        for byte in crate::store::path_bytes(&absolute).iter() {
            match byte {
                b'?' | b'#' | b'%' => uri.push_str(&format!("%{byte:02X}")),
                _ => uri.push(*byte as char),
            }
        }
        uri.push_str(if folder_writable {
            "?mode=ro"
        } else {
            "?mode=ro&immutable=1"
        });
        let conn = Connection::open_with_flags(
            &uri,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_URI
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        if migrate::check_identity(&conn, path)? && migrate::version(&conn, path)? == 0 {
            return Err(Error::store(
                path,
                format!("there is no library here, and none can be made: {why}"),
            ));
        }
        migrate::check_version(&conn, path)?;
        if migrate::version(&conn, path)? < LATEST_VERSION {
            return Err(Error::store(
                path,
                format!(
                    "this library was written by an older cliptag and must be upgraded, but \
                     {why}"
                ),
            ));
        }
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            checkpoint_due: false,
            read_only: Some(why),
            last_vocabulary_edit: None,
        })
    }

    /// Why the library can only be read, if it can only be read.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// The refusal of a write to a read-only library.
    fn refuse_write(&self) -> Result<()> {
        match &self.read_only {
            Some(why) => Err(Error::store(
                &self.path,
                format!("this library can be read but not changed: {why}"),
            )),
            None => Ok(()),
        }
    }

    /// A private in-memory database, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Self> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| Error::store(path, e.to_string()))?;
        Self::setup(conn, path)
    }

    fn setup(mut conn: Connection, path: &Path) -> Result<Self> {
        let fail = |e: rusqlite::Error| Error::store(path, e.to_string());
        conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
        // Read the identity and the version before anything else, so that another program's
        // database, or a newer cliptag's, is left untouched.
        let stamp = migrate::check_identity(&conn, path)?;
        migrate::check_version(&conn, path)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        // Embeddings and automatic tags can be recomputed, so bulk writes need not reach the
        // disk platter before returning; a person's decisions use `durable` instead.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(fail)?;
        // SQLite would copy the log into the database file (a checkpoint) in the middle of
        // whichever commit crossed 1000 pages: editing one label of a large library rewrites
        // thousands of scattered tag pages, and that copy made up a third of the edit. The
        // library checkpoints when it is idle instead ([`Store::checkpoint`]), and after any
        // commit that leaves the log over `WAL_LIMIT_BYTES`; closing the last connection
        // checkpoints too.
        conn.pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(fail)?;
        migrate::migrate(&mut conn, path)?;
        if stamp {
            conn.pragma_update(None, "application_id", migrate::APPLICATION_ID)
                .map_err(fail)?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(fail)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            checkpoint_due: false,
            read_only: None,
            last_vocabulary_edit: None,
        })
    }

    /// How many writes of automatic tags the library has seen (see [`Basis::Whole`]).
    pub fn tag_writes(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT writes FROM vocabulary_generation", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The vocabulary's generation and the one every automatic tag agrees with (they differ
    /// where the tags owe a re-tag).
    pub fn vocabulary_generation(&self) -> Result<(i64, i64)> {
        self.conn
            .query_row("SELECT n, tagged FROM vocabulary_generation", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.err(e))
    }

    /// The generations before and after this connection's last vocabulary edit, once.
    pub fn take_last_vocabulary_edit(&mut self) -> Option<(i64, i64)> {
        self.last_vocabulary_edit.take()
    }

    /// Records that every automatic tag is what vocabulary generation `n` gives, where that is
    /// still the vocabulary (a full re-tag that found nothing to change).
    pub fn tags_agree_with(&mut self, n: i64, writes: i64) -> Result<()> {
        if self.vocabulary_generation()? == (n, n) {
            return Ok(());
        }
        self.write(|tx| Ok(follow(tx, Basis::Whole { n, writes })?))
    }

    /// Whether commits wait for a checkpoint ([`Store::checkpoint`]).
    pub fn checkpoint_due(&self) -> bool {
        self.checkpoint_due
    }

    /// Copies the write-ahead log into the database file and empties the log (what an idle
    /// library does). Where another connection still reads from the log, it waits for that
    /// reader up to the busy timeout, then copies what it can; the rest waits for the next
    /// checkpoint.
    pub fn checkpoint(&mut self) -> Result<()> {
        if self.read_only.is_some() {
            return Ok(());
        }
        // TRUNCATE leaves the log file empty, so its size says what waits for a checkpoint.
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        self.checkpoint_due = busy != 0;
        Ok(())
    }

    /// Checkpoints now if the write-ahead log has grown past its bound.
    fn bound_log(&mut self) {
        let mut wal = self.path.as_os_str().to_os_string();
        wal.push("-wal");
        let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
        if size > WAL_LIMIT_BYTES {
            // A checkpoint that cannot finish now is tried again after the next commit.
            let _ = self.checkpoint();
        }
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns a SQLite error into one that names the database.
    fn err(&self, error: rusqlite::Error) -> Error {
        Error::store(&self.path, error.to_string())
    }

    /// Runs `f` in one write transaction; it commits only if `f` succeeds.
    ///
    /// The transaction takes the write lock when it begins (`IMMEDIATE`): one that began as a
    /// reader could not become a writer while another connection writes, and would fail at once
    /// instead of waiting its turn.
    fn write<R>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
        self.refuse_write()?;
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::store(&path, e.to_string()))?;
        let result = f(&tx)?;
        tx.commit()
            .map_err(|e| Error::store(&path, e.to_string()))?;
        self.checkpoint_due = true;
        self.bound_log();
        Ok(result)
    }

    /// Like [`Store::write`], but the commit is flushed to disk before returning: for a person's
    /// decisions and vocabulary, which cannot be recomputed.
    fn durable<R>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<R>) -> Result<R> {
        self.refuse_write()?;
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        let mut edit = None;
        let result = self.write(|tx| {
            let before = generation(tx)?;
            let result = f(tx)?;
            let after = generation(tx)?;
            if after != before {
                edit = Some((before, after));
                // With no photo embedded there is nothing to tag: the tags agree with any
                // vocabulary (a new library's first one, seeded before its first index).
                let nothing_embedded: bool =
                    tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM embeddings)", [], |r| {
                        r.get(0)
                    })?;
                if nothing_embedded {
                    tx.execute(
                        "UPDATE vocabulary_generation SET tagged = n, writes = writes + 1",
                        [],
                    )?;
                }
            }
            Ok(result)
        });
        if result.is_ok() && edit.is_some() {
            self.last_vocabulary_edit = edit;
        }
        let restore = self
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.err(e));
        let result = result?;
        restore?;
        Ok(result)
    }

    /// Writes one batch of indexing results (embeddings, statuses, automatic tags) in one
    /// transaction: a crash loses the whole batch or nothing.
    pub fn batch<R>(&mut self, f: impl FnOnce(&Batch<'_, '_>) -> Result<R>) -> Result<R> {
        self.write(|tx| f(&Batch::new(tx)))
    }

    /// SQLite's `data_version`: it changes when another connection commits to the database.
    pub fn data_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "data_version", |r| r.get(0))
            .map_err(|e| self.err(e))
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
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        self.write(|tx| {
            set_setting(tx, key, value)?;
            Ok(())
        })
    }

    /// Forgets a setting (durably: settings describe what the library is).
    pub fn delete_setting(&mut self, key: &str) -> Result<()> {
        self.durable(|tx| {
            tx.execute("DELETE FROM settings WHERE key = ?1", [key])?;
            Ok(())
        })
    }

    /// Stores several settings at once, durably (they describe what the library is).
    pub fn set_settings(&mut self, entries: &[(&str, &str)]) -> Result<()> {
        self.durable(|tx| {
            for (key, value) in entries {
                set_setting(tx, key, value)?;
            }
            Ok(())
        })
    }

    /// The folders the person asked to index, in the order they were added.
    pub fn roots(&self) -> Result<Vec<PathBuf>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path FROM roots ORDER BY added_at, path")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map(path_from_bytes).map_err(|e| self.err(e)))
            .collect()
    }

    /// Remembers a folder to index.
    pub fn add_root(&mut self, root: &Path) -> Result<()> {
        let bytes = path_bytes(root);
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO roots (path, added_at) VALUES (?1, ?2)",
                rusqlite::params![bytes.as_ref(), now()],
            )?;
            Ok(())
        })
    }

    /// Runs `PRAGMA integrity_check`; `Ok("ok")` for a healthy database.
    pub fn integrity_check(&self) -> Result<String> {
        self.conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Re-keys every embedding and cached prompt embedding of model `old` to `new` (a library
    /// whose model was stored under an older kind of name).
    pub fn rename_model(&mut self, old: &str, new: &str) -> Result<()> {
        self.durable(|tx| {
            tx.execute(
                "UPDATE OR REPLACE embeddings SET model = ?2 WHERE model = ?1",
                [old, new],
            )?;
            tx.execute(
                "UPDATE OR REPLACE text_embeddings SET model = ?2 WHERE model = ?1",
                [old, new],
            )?;
            // What labels keep per model (thresholds, learning) is the renamed model's too.
            for table in ["label_thresholds", "label_learning", "model_scoring"] {
                tx.execute(
                    &format!("UPDATE OR REPLACE {table} SET model = ?2 WHERE model = ?1"),
                    [old, new],
                )?;
            }
            tx.execute(
                "UPDATE labels SET learned_model = ?2 WHERE learned_model = ?1",
                [old, new],
            )?;
            Ok(())
        })
    }
}

fn set_setting(tx: &Transaction<'_>, key: &str, value: &str) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
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
