//! The writes of one indexing transaction: files recorded as pending, embeddings, statuses, moves
//! and the automatic tags of freshly embedded photos.

use std::path::Path;

use rusqlite::{Transaction, params};

use super::{blob_to_vector, now, path_bytes, vector_to_blob};
use crate::error::{Error, Result};
use crate::store::NewImage;

/// One open write transaction of indexing (see [`super::Store::batch`]).
pub struct Batch<'a, 'c> {
    tx: &'a Transaction<'c>,
    /// Whether any decisions wait for a removed folder's photos, asked once per batch: most
    /// libraries have none, and their photos need no look for them.
    kept: std::cell::Cell<Option<bool>>,
}

impl<'a, 'c> Batch<'a, 'c> {
    pub(super) fn new(tx: &'a Transaction<'c>) -> Self {
        Batch {
            tx,
            kept: std::cell::Cell::new(None),
        }
    }

    /// Inserts a newly seen file as pending; returns its id.
    pub fn insert_pending(&self, image: &NewImage<'_>) -> Result<i64> {
        self.tx.execute(
            "INSERT INTO images (path, size, mtime_ns, status, first_seen)
             VALUES (?1, ?2, ?3, 'pending', ?4)",
            params![
                path_bytes(image.path).as_ref(),
                image.size as i64,
                image.mtime_ns,
                now()
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// Records an already embedded photo as indexed (imports, benchmarks, tests); returns its id.
    pub fn insert_embedded(
        &self,
        image: &NewImage<'_>,
        hash: &str,
        model: &str,
        vector: &[f32],
    ) -> Result<i64> {
        let id = self.insert_pending(image)?;
        self.record_ok(id, hash, (0, 0), (model, None), vector)?;
        Ok(id)
    }

    /// [`super::Store::embedding_generation`] as this transaction sees it.
    pub fn embedding_generation(&self) -> Result<i64> {
        Ok(self
            .tx
            .query_row("SELECT n FROM embedding_generation", [], |r| r.get(0))?)
    }

    /// Stores a setting in the same transaction as the batch's other writes.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        super::set_setting(self.tx, key, value)?;
        Ok(())
    }

    /// Marks every file that failed to index pending again (the decoders have changed);
    /// returns how many.
    pub fn retry_failed(&self) -> Result<usize> {
        Ok(self.tx.execute(
            "UPDATE images SET status = 'pending', error = NULL WHERE status = 'error'",
            [],
        )?)
    }

    /// Marks a changed file pending with its new fingerprint.
    pub fn mark_changed(&self, image_id: i64, size: u64, mtime_ns: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE images SET size = ?2, mtime_ns = ?3, status = 'pending', error = NULL
             WHERE id = ?1",
            params![image_id, size as i64, mtime_ns],
        )?;
        Ok(())
    }

    /// A file whose fingerprint changed but whose bytes are the ones indexed (touched, restored
    /// from a backup): it keeps its embedding and tags and takes the new fingerprint.
    pub fn mark_same_content(&self, image_id: i64, size: u64, mtime_ns: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE images SET size = ?2, mtime_ns = ?3, status = 'ok', error = NULL WHERE id = ?1",
            params![image_id, size as i64, mtime_ns],
        )?;
        Ok(())
    }

    /// A file that went missing and is back, unchanged.
    pub fn mark_found(&self, image_id: i64) -> Result<()> {
        self.tx.execute(
            "UPDATE images SET status = 'ok', error = NULL WHERE id = ?1",
            [image_id],
        )?;
        Ok(())
    }

    /// Records a successfully indexed file and its embedding by `model` in `precision` (`None`:
    /// not known), and gives it back the decisions a person made on the same photo before its
    /// folder was removed from the library (a decision made on this record meanwhile stays).
    /// Returns how many came back.
    pub fn record_ok(
        &self,
        image_id: i64,
        hash: &str,
        size: (u32, u32),
        (model, precision): (&str, Option<&str>),
        vector: &[f32],
    ) -> Result<usize> {
        self.tx.execute(
            "UPDATE images SET hash = ?2, width = ?3, height = ?4, status = 'ok', error = NULL,
             last_indexed = ?5 WHERE id = ?1",
            params![image_id, hash, size.0, size.1, now()],
        )?;
        self.tx.execute(
            "INSERT INTO embeddings (image_id, model, dim, vector, precision)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (image_id, model) DO UPDATE SET dim = excluded.dim,
                 vector = excluded.vector, precision = excluded.precision",
            params![
                image_id,
                model,
                vector.len() as i64,
                vector_to_blob(vector),
                precision
            ],
        )?;
        let restored = self.restore_kept(image_id, hash)?;
        Ok(restored)
    }

    /// Gives `image_id` the decisions kept from a removed photo with its content: the one that
    /// was at its path, else one of its name, else the only one; those are then used up, so
    /// that each copy of a photo gets back the decisions of one removed copy. Returns how many.
    fn restore_kept(&self, image_id: i64, hash: &str) -> Result<usize> {
        let any = match self.kept.get() {
            Some(any) => any,
            None => {
                let any: bool =
                    self.tx
                        .query_row("SELECT EXISTS (SELECT 1 FROM kept_decisions)", [], |r| {
                            r.get(0)
                        })?;
                self.kept.set(Some(any));
                any
            }
        };
        if !any {
            return Ok(0);
        }
        let here: Vec<u8> =
            self.tx
                .query_row("SELECT path FROM images WHERE id = ?1", [image_id], |r| {
                    r.get(0)
                })?;
        let kept: Vec<Vec<u8>> = self
            .tx
            .prepare_cached(
                "SELECT DISTINCT path FROM kept_decisions
                 WHERE hash = ?1 OR (hash IS NULL AND path = ?2) ORDER BY path",
            )?
            .query_map(params![hash, here], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        if kept.is_empty() {
            return Ok(0);
        }
        let name = |bytes: &[u8]| {
            super::path_from_bytes(bytes.to_vec())
                .file_name()
                .map(|n| n.to_os_string())
        };
        // Under another name, only the one removed photo with this content: among several, which
        // one this is cannot be told.
        let Some(chosen) = kept
            .iter()
            .find(|path| **path == here)
            .or_else(|| kept.iter().find(|path| name(path) == name(&here)))
            .or_else(|| (kept.len() == 1).then(|| &kept[0]))
        else {
            return Ok(0);
        };
        let restored = self
            .tx
            .prepare_cached(
                "INSERT INTO tags (image_id, label_id, score, source)
                 SELECT ?1, label_id, NULL, source FROM kept_decisions WHERE path = ?2
                 ON CONFLICT (image_id, label_id) DO UPDATE SET source = excluded.source
                     WHERE tags.source = 'auto'",
            )?
            .execute(params![image_id, chosen])?;
        self.tx
            .prepare_cached("DELETE FROM kept_decisions WHERE path = ?1")?
            .execute([chosen])?;
        Ok(restored)
    }

    /// Records `image_id` as an exact copy of the indexed `from`: same embedding, same size.
    /// Returns the embedding.
    pub fn record_copy(
        &self,
        image_id: i64,
        hash: &str,
        from: i64,
        model: &str,
    ) -> Result<(Vec<f32>, usize)> {
        type Row = (Vec<u8>, Option<u32>, Option<u32>, Option<String>);
        let (blob, width, height, precision): Row = self.tx.query_row(
            "SELECT e.vector, i.width, i.height, e.precision
             FROM embeddings e JOIN images i ON i.id = e.image_id
             WHERE e.image_id = ?1 AND e.model = ?2",
            params![from, model],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let vector = blob_to_vector(&blob)
            .ok_or_else(|| Error::invalid(format!("the embedding of image {from} is damaged")))?;
        let size = (width.unwrap_or(0), height.unwrap_or(0));
        let restored =
            self.record_ok(image_id, hash, size, (model, precision.as_deref()), &vector)?;
        Ok((vector, restored))
    }

    /// Records a file that could not be indexed, with the reason.
    pub fn record_error(&self, image_id: i64, hash: Option<&str>, reason: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE images SET hash = COALESCE(?2, hash), status = 'error', error = ?3,
             last_indexed = ?4 WHERE id = ?1",
            params![image_id, hash, reason, now()],
        )?;
        // A file that broke keeps no embedding from an earlier, readable version.
        self.tx
            .execute("DELETE FROM embeddings WHERE image_id = ?1", [image_id])?;
        Ok(())
    }

    /// Records the file system identity (inode) of the file at `path`.
    pub fn set_inode_at(&self, path: &Path, inode: Option<u64>) -> Result<()> {
        self.tx.execute(
            "UPDATE images SET inode = ?2 WHERE path = ?1",
            params![path_bytes(path).as_ref(), inode.map(|n| n as i64)],
        )?;
        Ok(())
    }

    /// Gives a record another path (within a transaction that moves several records at once).
    pub fn set_path(&self, image_id: i64, path: &Path) -> Result<()> {
        self.tx.execute(
            "UPDATE images SET path = ?2 WHERE id = ?1",
            params![image_id, path_bytes(path).as_ref()],
        )?;
        Ok(())
    }

    /// Removes the record of a file first seen in this run (it turned out to be a known photo).
    pub fn forget_pending(&self, image_id: i64) -> Result<()> {
        self.tx
            .execute("DELETE FROM images WHERE id = ?1", [image_id])?;
        Ok(())
    }

    /// A record whose file now holds another known photo: kept as missing under `path` (no file
    /// has it), with its embedding, tags and decisions.
    pub fn mark_replaced(&self, image_id: i64, path: &Path) -> Result<()> {
        self.tx.execute(
            "UPDATE images SET path = ?2, status = 'missing', error = NULL WHERE id = ?1",
            params![image_id, path_bytes(path).as_ref()],
        )?;
        Ok(())
    }

    /// Moves a known image (its id, embedding and tags) to a new path, dropping the pending row
    /// that the new path got when it was first seen.
    pub fn record_move(
        &self,
        image_id: i64,
        pending_id: Option<i64>,
        new_path: &Path,
        size: u64,
        mtime_ns: i64,
    ) -> Result<()> {
        if let Some(pending_id) = pending_id {
            self.forget_pending(pending_id)?;
        }
        self.tx.execute(
            "UPDATE images SET path = ?2, size = ?3, mtime_ns = ?4, status = 'ok', error = NULL
             WHERE id = ?1",
            params![
                image_id,
                path_bytes(new_path).as_ref(),
                size as i64,
                mtime_ns
            ],
        )?;
        Ok(())
    }

    /// Marks files that vanished from disk.
    pub fn mark_missing(&self, image_ids: &[i64]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("UPDATE images SET status = 'missing' WHERE id = ?1")?;
        for id in image_ids {
            stmt.execute([id])?;
        }
        Ok(())
    }

    /// Replaces the automatic tags of `image_ids` with `tags` (`(image, label, score)`); a
    /// person's decisions on these images stay as they are.
    pub fn replace_auto_tags(
        &self,
        image_ids: &[i64],
        tags: &[(i64, i64, f32)],
        basis: super::Basis,
    ) -> Result<()> {
        let mut clear = self
            .tx
            .prepare_cached("DELETE FROM tags WHERE image_id = ?1 AND source = 'auto'")?;
        for id in image_ids {
            clear.execute([id])?;
        }
        let mut insert = self.tx.prepare_cached(
            "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, ?3, 'auto')
             ON CONFLICT (image_id, label_id) DO NOTHING",
        )?;
        for (image, label, score) in tags {
            insert.execute(params![image, label, f64::from(*score)])?;
        }
        super::follow(self.tx, basis)?;
        Ok(())
    }
}
