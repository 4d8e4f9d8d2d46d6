//! The thumbnail cache beside a library (`library.sqlite` → `library.sqlite.thumbnails`): small
//! JPEGs keyed by the photo's content hash, so that a library opens with its thumbnails at once
//! and a moved or renamed photo keeps its own. Filled while indexing and by the app as it shows
//! photos; bounded in size (the least recently used go first) and cleaned of photos the library
//! no longer holds. Losing it loses nothing: thumbnails are made again from the photos.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::now;
use crate::error::{Error, Result};

/// Longest side of a cached thumbnail, in pixels (the gallery's largest cells are 512 px wide on
/// a 2× display: 256 logical pixels of thumbnail look sharp up to 256-pixel cells).
pub const THUMBNAIL_SIZE: u32 = 256;
/// JPEG quality of cached thumbnails.
const QUALITY: u8 = 80;
/// The cache's default bound: about 50 000 thumbnails of about 10 KB.
pub const DEFAULT_LIMIT_BYTES: u64 = 512 << 20;
/// A thumbnail's last use is written at most this often (reading stays a read).
const TOUCH_EVERY_MS: i64 = 3_600_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS thumbnails (
    id    INTEGER PRIMARY KEY,
    -- BLAKE3 of the photo's bytes, hex, as the library's images.hash.
    hash  TEXT NOT NULL UNIQUE,
    jpeg  BLOB NOT NULL,
    bytes INTEGER NOT NULL,
    -- Milliseconds since the Unix epoch.
    used  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS thumbnails_used ON thumbnails (used);
-- The library whose thumbnails these are (its database's full path), so that the cache of a
-- library that is gone can be found and removed.
CREATE TABLE IF NOT EXISTS library (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    path TEXT NOT NULL
);
";

/// One connection to a library's thumbnail cache.
pub struct ThumbnailCache {
    conn: Connection,
    path: PathBuf,
    limit_bytes: u64,
}

/// Where the thumbnails of the library at `db` are cached: in cliptag's cache folder
/// (`~/.cache/cliptag/thumbnails/`), one file per library, named after the database's file name
/// and a hash of its full path, so that no two libraries share one.
pub fn cache_path(db: &Path) -> PathBuf {
    let full = full_path(db);
    let stem = full
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Only characters every file system takes, and not too many of them.
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let hash = blake3::hash(full.as_os_str().as_encoded_bytes()).to_hex();
    let name = format!("{stem}-{}.sqlite", &hash[..16]);
    match crate::paths::cache_dir() {
        Some(dir) => dir.join("thumbnails").join(name),
        // No home folder to hold a cache folder: beside the library, as before.
        None => beside_path(db),
    }
}

/// Where cliptag kept a library's thumbnails before they moved to the cache folder: beside the
/// database (`library.sqlite` → `library.sqlite.thumbnails`).
pub fn beside_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".thumbnails");
    PathBuf::from(name)
}

/// The database's path with links resolved, so that one library has one cache whichever path
/// leads to it (the file itself may not exist yet: then its folder's path and its name).
fn full_path(db: &Path) -> PathBuf {
    if let Ok(full) = std::fs::canonicalize(db) {
        return full;
    }
    let absolute = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
    match (absolute.parent(), absolute.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|d| d.join(name))
            .unwrap_or(absolute),
        _ => absolute,
    }
}

/// Why an old cache beside its library was not moved.
enum MoveFailed {
    /// The file there is another program's: it stays, untouched.
    NotOurs,
    /// It could not be copied or put in place: it is used where it is.
    Io,
}

/// Moves the cache at `old` (beside its library) to `new` in the cache folder: copied whole by
/// SQLite (with what its write-ahead log holds, across file systems), put in place by a rename,
/// and only then removed from beside the library. Where `new` exists but holds nothing (an
/// earlier opening could not read `old`), `old`'s thumbnails are copied into it. `old` is read
/// without writing to it, so a cache in a read-only folder moves too (and stays where it was).
fn move_cache(old: &Path, new: &Path) -> std::result::Result<(), MoveFailed> {
    let source = open_read_only(old).ok_or(MoveFailed::NotOurs)?;
    if !is_ours(&source) {
        return Err(MoveFailed::NotOurs);
    }
    let io = |_: std::io::Error| MoveFailed::Io;
    let dir = new.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    if new.exists() {
        let mut target = ThumbnailCache::open(new).map_err(|_| MoveFailed::Io)?;
        if target.usage().map_err(|_| MoveFailed::Io)?.0 > 0 {
            // Filled already: what was beside the library is an older copy.
            return Ok(());
        }
        drop(source);
        let tx = target.conn.transaction().map_err(|_| MoveFailed::Io)?;
        tx.execute("ATTACH DATABASE ?1 AS old", [sqlite_uri(old, "mode=ro")])
            .map_err(|_| MoveFailed::Io)?;
        tx.execute(
            "INSERT OR IGNORE INTO thumbnails (hash, jpeg, bytes, used)
             SELECT hash, jpeg, bytes, used FROM old.thumbnails",
            [],
        )
        .map_err(|_| MoveFailed::Io)?;
        tx.commit().map_err(|_| MoveFailed::Io)?;
        let _ = target.conn.execute("DETACH DATABASE old", []);
    } else {
        let mut partial = new.as_os_str().to_os_string();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let _ = std::fs::remove_file(&partial);
        source
            .execute("VACUUM INTO ?1", [partial.to_string_lossy()])
            .map_err(|_| MoveFailed::Io)?;
        drop(source);
        std::fs::rename(&partial, new).map_err(io)?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = old.as_os_str().to_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    Ok(())
}

/// Opens `path` for reading only, never writing beside it: normally (which reads what its
/// write-ahead log holds), else as immutable (a read-only folder where SQLite cannot make the
/// log's index).
fn open_read_only(path: &Path) -> Option<Connection> {
    if !path.is_file() {
        return None;
    }
    let read = |conn: Connection| {
        conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })
        .ok()
        .map(|_| conn)
    };
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .ok()
        .and_then(read)
        .or_else(|| {
            Connection::open_with_flags(
                sqlite_uri(path, "immutable=1"),
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            )
            .ok()
            .and_then(read)
        })
}

/// Whether the database open on `conn` is a thumbnail cache cliptag made.
fn is_ours(conn: &Connection) -> bool {
    let Ok(id) = conn.pragma_query_value(None, "application_id", |r| r.get::<_, i32>(0)) else {
        return false;
    };
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    id == CACHE_ID || (id == 0 && !tables.is_empty() && tables.iter().all(|t| t == "thumbnails"))
}

/// A `file:` URI for `path` with `query`, every byte outside the unreserved set escaped.
fn sqlite_uri(path: &Path, query: &str) -> String {
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            uri.push(b as char);
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push('?');
    uri.push_str(query);
    uri
}

/// How long the cache of a library that is gone is kept, in case its disk comes back.
const KEEP_GONE_LIBRARY: Duration = Duration::from_secs(30 * 24 * 3600);

/// Removes the thumbnail caches of libraries that are gone: those whose database has not
/// existed for a month, and at once those of libraries that lived in the temporary folder.
/// Returns how many went. A cache that cannot be read is left alone.
pub fn forget_gone_libraries() -> usize {
    let Some(dir) = crate::paths::cache_dir().map(|d| d.join("thumbnails")) else {
        return 0;
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let temporary = std::fs::canonicalize(std::env::temp_dir()).ok();
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "sqlite") {
            continue;
        }
        // Immutable: looking leaves no journal files beside another library's cache.
        let Ok(conn) = Connection::open_with_flags(
            sqlite_uri(&path, "immutable=1"),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
        ) else {
            continue;
        };
        let library: Option<String> = conn
            .query_row("SELECT path FROM library WHERE id = 1", [], |r| r.get(0))
            .ok();
        drop(conn);
        let Some(library) = library.map(PathBuf::from) else {
            continue;
        };
        // Only a database that is certainly not there is gone: one that cannot be looked at
        // (no permission, a drive that answers with an error) is kept.
        if !matches!(library.try_exists(), Ok(false)) {
            continue;
        }
        let idle = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        let was_temporary = temporary.as_ref().is_some_and(|t| library.starts_with(t));
        if was_temporary || idle > KEEP_GONE_LIBRARY {
            for suffix in ["", "-wal", "-shm"] {
                let mut name = path.as_os_str().to_os_string();
                name.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(name));
            }
            removed += 1;
        }
    }
    removed
}

/// What a thumbnail cache says it is in its header (`PRAGMA application_id`): "CLTH".
const CACHE_ID: i32 = 0x434C_5448;

impl ThumbnailCache {
    /// Opens (creating if needed) the thumbnail cache of the library database `db`, in the cache
    /// folder. A cache that an earlier cliptag kept beside the library is moved there first, so
    /// a library keeps its thumbnails; where it cannot be moved it is used where it is.
    pub fn of_library(db: &Path) -> Result<Self> {
        let path = cache_path(db);
        let old = beside_path(db);
        if path == old {
            return Self::open(&path);
        }
        // The worker's library and the app's thumbnail loader open the cache at the same time:
        // one of them moves it.
        static MOVING: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _moving = MOVING.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(dir) = path.parent()
            && std::fs::create_dir_all(dir).is_err()
        {
            // A cache folder that cannot be made (a read-only home): beside the library.
            return Self::open(&old);
        }
        if old.exists() {
            match move_cache(&old, &path) {
                Ok(()) => {}
                Err(MoveFailed::NotOurs) => {}
                Err(MoveFailed::Io) => return Self::open(&old),
            }
        }
        let cache = Self::open(&path)?;
        // Best effort: the cache says whose it is, so one whose library is gone can go too.
        let _ = cache.conn.execute(
            "INSERT OR REPLACE INTO library (id, path) VALUES (1, ?1)",
            [full_path(db).to_string_lossy()],
        );
        Ok(cache)
    }

    /// Opens (creating if needed) the cache at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let fail = |e: rusqlite::Error| Error::invalid(format!("{}: {e}", path.display()));
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(fail)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(fail)?;
        // Another program's database with this name is never written to.
        let id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(fail)?;
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
            .map_err(fail)?;
        let ours = id == CACHE_ID || (id == 0 && tables.iter().all(|t| t == "thumbnails"));
        if !ours {
            return Err(Error::invalid(format!(
                "{} is not cliptag's thumbnail cache: it was left alone",
                path.display()
            )));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(fail)?;
        if id != CACHE_ID {
            conn.pragma_update(None, "application_id", CACHE_ID)
                .map_err(fail)?;
        }
        // A lost thumbnail is made again: no fsync per write.
        conn.pragma_update(None, "synchronous", "OFF")
            .map_err(fail)?;
        conn.execute_batch(SCHEMA).map_err(fail)?;
        Ok(ThumbnailCache {
            conn,
            path: path.to_path_buf(),
            limit_bytes: DEFAULT_LIMIT_BYTES,
        })
    }

    /// Where the cache lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the bound [`ThumbnailCache::trim`] keeps the cache within.
    pub fn set_limit_bytes(&mut self, limit: u64) {
        self.limit_bytes = limit;
    }

    /// The thumbnail of the photo whose content hash is `hash`, as JPEG bytes.
    pub fn get(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let found: Option<(Vec<u8>, i64)> = self
            .conn
            .query_row(
                "SELECT jpeg, used FROM thumbnails WHERE hash = ?1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((jpeg, used)) = found else {
            return Ok(None);
        };
        let now = now();
        if now - used > TOUCH_EVERY_MS {
            // Best effort: another connection may hold the write lock.
            let _ = self.conn.execute(
                "UPDATE thumbnails SET used = ?2 WHERE hash = ?1",
                params![hash, now],
            );
        }
        Ok(Some(jpeg))
    }

    /// Stores thumbnails (content hash, JPEG bytes) in one transaction.
    pub fn put_many(&mut self, thumbnails: &[(String, Vec<u8>)]) -> Result<()> {
        if thumbnails.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO thumbnails (hash, jpeg, bytes, used) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (hash) DO UPDATE SET jpeg = excluded.jpeg,
                     bytes = excluded.bytes, used = excluded.used",
            )?;
            let now = now();
            for (hash, jpeg) in thumbnails {
                insert.execute(params![hash, jpeg, jpeg.len() as i64, now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores one thumbnail.
    pub fn put(&mut self, hash: &str, jpeg: Vec<u8>) -> Result<()> {
        self.put_many(&[(hash.to_string(), jpeg)])
    }

    /// How many thumbnails the cache holds, and their bytes.
    pub fn usage(&self) -> Result<(u64, u64)> {
        Ok(self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM thumbnails",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Removes the thumbnails of photos not in `keep` (content hashes the library still
    /// holds), then the least recently used ones beyond the size bound; returns how many went.
    pub fn trim(&mut self, keep: &HashSet<String>) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let mut removed = 0u64;
        {
            let stale: Vec<i64> = {
                let mut stmt = tx.prepare("SELECT id, hash FROM thumbnails")?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                let mut stale = Vec::new();
                for row in rows {
                    let (id, hash) = row?;
                    if !keep.contains(&hash) {
                        stale.push(id);
                    }
                }
                stale
            };
            let mut delete = tx.prepare_cached("DELETE FROM thumbnails WHERE id = ?1")?;
            for id in stale {
                removed += delete.execute([id])? as u64;
            }
            let total: i64 =
                tx.query_row("SELECT COALESCE(SUM(bytes), 0) FROM thumbnails", [], |r| {
                    r.get(0)
                })?;
            let mut excess = total - self.limit_bytes as i64;
            if excess > 0 {
                let mut stmt = tx.prepare("SELECT id, bytes FROM thumbnails ORDER BY used, id")?;
                let oldest: Vec<(i64, i64)> = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (id, bytes) in oldest {
                    if excess <= 0 {
                        break;
                    }
                    removed += delete.execute([id])? as u64;
                    excess -= bytes;
                }
            }
        }
        tx.commit()?;
        Ok(removed)
    }
}

/// A photo's cached thumbnail: its longest side at most [`THUMBNAIL_SIZE`], as JPEG.
pub fn make_thumbnail(image: &image::RgbImage) -> Option<Vec<u8>> {
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return None;
    }
    let scale = (THUMBNAIL_SIZE as f32 / w.max(h) as f32).min(1.0);
    let (tw, th) = (
        ((w as f32 * scale).round() as u32).max(1),
        ((h as f32 * scale).round() as u32).max(1),
    );
    let small = if (tw, th) == (w, h) {
        image.clone()
    } else {
        // An area average in one pass: a 12 MP HEIC (decoded whole) costs a few milliseconds,
        // where a filtered resize costs tens.
        image::imageops::thumbnail(image, tw, th)
    };
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, QUALITY)
        .encode_image(&small)
        .ok()?;
    Some(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg_of(bytes: usize) -> Vec<u8> {
        vec![0xAB; bytes]
    }

    #[test]
    fn the_cache_keeps_within_its_bound_and_forgets_photos_that_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = ThumbnailCache::open(&dir.path().join("cache.sqlite")).unwrap();
        let entries: Vec<(String, Vec<u8>)> =
            (0..10).map(|i| (format!("h{i}"), jpeg_of(1000))).collect();
        cache.put_many(&entries).unwrap();
        assert_eq!(cache.usage().unwrap(), (10, 10_000));
        assert_eq!(cache.get("h3").unwrap(), Some(jpeg_of(1000)));
        assert_eq!(cache.get("nope").unwrap(), None);

        // h0 and h1 are gone from the library; the rest must fit in 5 000 bytes.
        let keep: HashSet<String> = (2..10).map(|i| format!("h{i}")).collect();
        cache.set_limit_bytes(5_000);
        // h9 was used last: it stays; the least recently used go first.
        cache
            .conn
            .execute(
                "UPDATE thumbnails SET used = used + 10 WHERE hash = 'h9'",
                [],
            )
            .unwrap();
        let removed = cache.trim(&keep).unwrap();
        assert_eq!(removed, 5);
        let (count, bytes) = cache.usage().unwrap();
        assert_eq!((count, bytes), (5, 5_000));
        assert!(cache.get("h0").unwrap().is_none() && cache.get("h1").unwrap().is_none());
        assert!(cache.get("h9").unwrap().is_some());
    }

    #[test]
    fn thumbnails_are_small_jpegs_of_the_photo() {
        let image =
            image::RgbImage::from_fn(1000, 500, |x, _| image::Rgb([(x % 256) as u8, 90, 30]));
        let jpeg = make_thumbnail(&image).unwrap();
        let back = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (256, 128));
        let tiny = image::RgbImage::new(40, 30);
        let back = image::load_from_memory(&make_thumbnail(&tiny).unwrap()).unwrap();
        assert_eq!((back.width(), back.height()), (40, 30), "never enlarged");
    }
}
