//! Queries on the `images` and `embeddings` tables.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{Store, blob_to_vector, now, path_text, vector_to_blob};
use crate::error::{Error, Result};

/// Where a known file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStatus {
    /// Seen but not indexed yet (or changed since).
    Pending,
    /// Indexed; it has an embedding.
    Ok,
    /// Could not be read or decoded; the reason is kept.
    Error,
    /// Gone from disk; its tags are kept until the person purges it.
    Missing,
}

impl ImageStatus {
    /// The word stored in the database and printed by `cliptag files`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Pending => "pending",
            ImageStatus::Ok => "ok",
            ImageStatus::Error => "error",
            ImageStatus::Missing => "missing",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "ok" => ImageStatus::Ok,
            "error" => ImageStatus::Error,
            "missing" => ImageStatus::Missing,
            _ => ImageStatus::Pending,
        }
    }
}

/// One row of `images`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRow {
    pub id: i64,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub hash: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub status: ImageStatus,
    pub error: Option<String>,
    pub last_indexed: Option<i64>,
}

const COLUMNS: &str = "id, path, size, mtime_ns, hash, width, height, status, error, last_indexed";

fn image_row(r: &Row<'_>) -> rusqlite::Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        path: PathBuf::from(r.get::<_, String>(1)?),
        size: r.get::<_, i64>(2)? as u64,
        mtime_ns: r.get(3)?,
        hash: r.get(4)?,
        width: r.get(5)?,
        height: r.get(6)?,
        status: ImageStatus::parse(&r.get::<_, String>(7)?),
        error: r.get(8)?,
        last_indexed: r.get(9)?,
    })
}

/// A file found on disk, not yet in the database.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    pub path: &'a Path,
    pub size: u64,
    pub mtime_ns: i64,
}

impl Store {
    /// Every known file, ordered by path.
    pub fn images(&self) -> Result<Vec<ImageRow>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM images ORDER BY path"))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], image_row).map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// The known file at `path`.
    pub fn image_by_path(&self, path: &Path) -> Result<Option<ImageRow>> {
        let Some(text) = path.to_str() else {
            return Ok(None);
        };
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM images WHERE path = ?1"),
                [text],
                image_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The known file with this id.
    pub fn image(&self, image_id: i64) -> Result<Option<ImageRow>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM images WHERE id = ?1"),
                [image_id],
                image_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// How many files have each status.
    pub fn status_counts(&self) -> Result<Vec<(ImageStatus, u64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM images GROUP BY status")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    ImageStatus::parse(&r.get::<_, String>(0)?),
                    r.get::<_, i64>(1)? as u64,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// Every stored embedding of `model` of an indexed (`ok`) image, as (image id, vector), in
    /// storage order. (An `ORDER BY` here would sort 2 KiB rows through a temporary B-tree.)
    pub fn embeddings(&self, model: &str) -> Result<Vec<(i64, Vec<f32>)>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.image_id, e.vector FROM embeddings e JOIN images i ON i.id = e.image_id
                 WHERE e.model = ?1 AND i.status = 'ok'",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([model]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = row.get(0).map_err(|e| self.err(e))?;
            let blob = row
                .get_ref(1)
                .map_err(|e| self.err(e))?
                .as_blob()
                .map_err(|e| self.err(e.into()))?;
            let vector = blob_to_vector(blob).ok_or_else(|| {
                Error::store(&self.path, format!("embedding of image {id} is damaged"))
            })?;
            out.push((id, vector));
        }
        Ok(out)
    }

    /// The embedding of one image under `model`.
    pub fn embedding(&self, image_id: i64, model: &str) -> Result<Option<Vec<f32>>> {
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT vector FROM embeddings WHERE image_id = ?1 AND model = ?2",
                params![image_id, model],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(blob.and_then(|b| blob_to_vector(&b)))
    }
}

/// Writes used inside one indexing transaction.
pub(crate) mod write {
    use super::*;

    /// Inserts a newly seen file as pending; returns its id.
    pub fn insert_pending(tx: &Transaction<'_>, image: &NewImage<'_>) -> Result<i64> {
        tx.execute(
            "INSERT INTO images (path, size, mtime_ns, status, first_seen)
             VALUES (?1, ?2, ?3, 'pending', ?4)",
            params![
                path_text(image.path)?,
                image.size as i64,
                image.mtime_ns,
                now()
            ],
        )?;
        Ok(tx.last_insert_rowid())
    }

    /// Marks a changed file pending with its new fingerprint.
    pub fn mark_changed(
        tx: &Transaction<'_>,
        image_id: i64,
        size: u64,
        mtime_ns: i64,
    ) -> Result<()> {
        tx.execute(
            "UPDATE images SET size = ?2, mtime_ns = ?3, status = 'pending', error = NULL WHERE id = ?1",
            params![image_id, size as i64, mtime_ns],
        )?;
        Ok(())
    }

    /// Records a successfully indexed file and its embedding.
    pub fn record_ok(
        tx: &Transaction<'_>,
        image_id: i64,
        hash: &str,
        size: (u32, u32),
        model: &str,
        vector: &[f32],
    ) -> Result<()> {
        tx.execute(
            "UPDATE images SET hash = ?2, width = ?3, height = ?4, status = 'ok', error = NULL,
             last_indexed = ?5 WHERE id = ?1",
            params![image_id, hash, size.0, size.1, now()],
        )?;
        tx.execute(
            "INSERT INTO embeddings (image_id, model, dim, vector) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (image_id, model) DO UPDATE SET dim = excluded.dim, vector = excluded.vector",
            params![image_id, model, vector.len() as i64, vector_to_blob(vector)],
        )?;
        Ok(())
    }

    /// Records a file that could not be indexed, with the reason.
    pub fn record_error(
        tx: &Transaction<'_>,
        image_id: i64,
        hash: Option<&str>,
        reason: &str,
    ) -> Result<()> {
        tx.execute(
            "UPDATE images SET hash = COALESCE(?2, hash), status = 'error', error = ?3,
             last_indexed = ?4 WHERE id = ?1",
            params![image_id, hash, reason, now()],
        )?;
        // A file that broke keeps no embedding from an earlier, readable version.
        tx.execute("DELETE FROM embeddings WHERE image_id = ?1", [image_id])?;
        Ok(())
    }

    /// Moves a known image (its id, embedding and tags) to a new path, dropping the pending row
    /// that the new path got when it was first seen.
    pub fn record_move(
        tx: &Transaction<'_>,
        image_id: i64,
        pending_id: i64,
        new_path: &Path,
        size: u64,
        mtime_ns: i64,
    ) -> Result<()> {
        tx.execute("DELETE FROM images WHERE id = ?1", [pending_id])?;
        tx.execute(
            "UPDATE images SET path = ?2, size = ?3, mtime_ns = ?4, status = 'ok', error = NULL
             WHERE id = ?1",
            params![image_id, path_text(new_path)?, size as i64, mtime_ns],
        )?;
        Ok(())
    }

    /// Marks files that vanished from disk.
    pub fn mark_missing(tx: &Transaction<'_>, image_ids: &[i64]) -> Result<()> {
        let mut stmt = tx.prepare("UPDATE images SET status = 'missing' WHERE id = ?1")?;
        for id in image_ids {
            stmt.execute([id])?;
        }
        Ok(())
    }
}
