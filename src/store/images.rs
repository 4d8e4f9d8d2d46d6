//! Reading the `images` and `embeddings` tables.

use std::collections::HashMap;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, params};

use super::{Store, blob_to_vector, path_bytes, path_from_bytes};
use crate::domain::ImageStatus;
use crate::error::{Error, Result};

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
    /// The file's identity on the file system (its inode), as last seen.
    pub inode: Option<u64>,
}

const COLUMNS: &str =
    "id, path, size, mtime_ns, hash, width, height, status, error, last_indexed, inode";

/// A row as stored; its status word is checked by [`RawImage::checked`].
struct RawImage {
    row: ImageRow,
    status: String,
}

fn image_row(r: &Row<'_>) -> rusqlite::Result<RawImage> {
    Ok(RawImage {
        row: ImageRow {
            id: r.get(0)?,
            path: path_from_bytes(r.get::<_, Vec<u8>>(1)?),
            size: r.get::<_, i64>(2)? as u64,
            mtime_ns: r.get(3)?,
            hash: r.get(4)?,
            width: r.get(5)?,
            height: r.get(6)?,
            status: ImageStatus::Pending,
            error: r.get(8)?,
            last_indexed: r.get(9)?,
            inode: r.get::<_, Option<i64>>(10)?.map(|n| n as u64),
        },
        status: r.get(7)?,
    })
}

impl RawImage {
    fn checked(mut self, store: &Store) -> Result<ImageRow> {
        self.row.status = ImageStatus::parse(&self.status).map_err(|e| {
            Error::store(
                &store.path,
                format!(
                    "image {} ({}) is damaged: {e}",
                    self.row.id,
                    self.row.path.display()
                ),
            )
        })?;
        Ok(self.row)
    }
}

/// One stored embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRow {
    pub image_id: i64,
    pub vector: Vec<f32>,
}

/// Images with an embedding of one model, by content hash: how a moved file or an exact copy is
/// recognised without decoding it.
#[derive(Debug, Clone, Default)]
pub struct KnownContent {
    /// `(image id, content hash, status)` of every embedded image with a known hash.
    pub rows: Vec<(i64, String, ImageStatus)>,
}

/// A file found on disk, not yet in the database.
#[derive(Debug, Clone)]
pub struct NewImage<'a> {
    pub path: &'a Path,
    pub size: u64,
    pub mtime_ns: i64,
}

impl Store {
    fn image_query(&self, condition: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<ImageRow>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM images WHERE {condition} ORDER BY path"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(args, image_row).map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))?.checked(self))
            .collect()
    }

    /// Every known file, ordered by path.
    pub fn images(&self) -> Result<Vec<ImageRow>> {
        self.image_query("1 = 1", &[])
    }

    /// The known file at `path`.
    pub fn image_by_path(&self, path: &Path) -> Result<Option<ImageRow>> {
        let bytes = path_bytes(path);
        Ok(self
            .image_query("path = ?1", &[&bytes.as_ref()])?
            .into_iter()
            .next())
    }

    /// The known file with this id.
    pub fn image(&self, image_id: i64) -> Result<Option<ImageRow>> {
        Ok(self
            .image_query("id = ?1", &[&image_id])?
            .into_iter()
            .next())
    }

    /// How many files have each status.
    pub fn status_counts(&self) -> Result<Vec<(ImageStatus, u64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM images GROUP BY status")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })
            .map_err(|e| self.err(e))?;
        rows.map(|r| {
            let (status, n) = r.map_err(|e| self.err(e))?;
            let status = ImageStatus::parse(&status).map_err(|e| self.store_damage(e))?;
            Ok((status, n))
        })
        .collect()
    }

    fn store_damage(&self, error: Error) -> Error {
        Error::store(&self.path, format!("damaged row: {error}"))
    }

    /// Every photo missing from disk, with how many decisions a person made on it.
    pub fn missing_with_decisions(&self) -> Result<Vec<(ImageRow, usize)>> {
        let missing = self.image_query("status = 'missing'", &[])?;
        self.with_decisions(missing)
    }

    /// How many photos under `folder` the library holds that are not marked missing.
    pub fn count_present_under(&self, folder: &Path) -> Result<u64> {
        Ok(self
            .image_query("status != 'missing'", &[])?
            .iter()
            .filter(|row| row.path.starts_with(folder))
            .count() as u64)
    }

    /// Each of `rows` with how many of a person's decisions it holds.
    pub fn with_decisions(&self, rows: Vec<ImageRow>) -> Result<Vec<(ImageRow, usize)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM tags WHERE image_id = ?1 AND source != 'auto'")
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let decisions: i64 = stmt
                .query_row([row.id], |r| r.get(0))
                .map_err(|e| self.err(e))?;
            out.push((row, decisions as usize));
        }
        Ok(out)
    }

    /// Forgets the photos `gone`, first giving each one's decisions to its identical copy
    /// (`copy_of`), where the copy has no decision of its own on that label; all in one write
    /// transaction, so that decisions read and written here are the ones stored when it began
    /// (a person's decision made meanwhile waits for it, and is never overwritten by it).
    /// Returns how many decisions went with the photos and how many moved to copies.
    pub fn forget_images_keeping_decisions(
        &mut self,
        gone: &[i64],
        copy_of: &HashMap<i64, i64>,
    ) -> Result<(usize, usize)> {
        self.write(|tx| {
            let mut decisions_of = tx.prepare_cached(
                "SELECT label_id, source FROM tags WHERE image_id = ?1 AND source != 'auto'",
            )?;
            let mut decided = tx.prepare_cached(
                "SELECT 1 FROM tags WHERE image_id = ?1 AND label_id = ?2 AND source != 'auto'",
            )?;
            let mut give = tx.prepare_cached(
                "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, NULL, ?3)
                 ON CONFLICT (image_id, label_id) DO UPDATE SET source = excluded.source",
            )?;
            let mut forget = tx.prepare_cached("DELETE FROM images WHERE id = ?1")?;
            let (mut went, mut moved) = (0, 0);
            for id in gone {
                let decisions: Vec<(i64, String)> = decisions_of
                    .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (label, source) in decisions {
                    let copy = copy_of.get(id).filter(|copy| {
                        !decided
                            .exists(rusqlite::params![copy, label])
                            .unwrap_or(true)
                    });
                    match copy {
                        Some(copy) => {
                            give.execute(rusqlite::params![copy, label, source])?;
                            moved += 1;
                        }
                        None => went += 1,
                    }
                }
                forget.execute([id])?;
            }
            Ok((went, moved))
        })
    }

    /// Forgets photos: their records, embeddings and tags (decisions included) go.
    pub fn forget_images(&mut self, image_ids: &[i64]) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached("DELETE FROM images WHERE id = ?1")?;
            for id in image_ids {
                stmt.execute([id])?;
            }
            Ok(())
        })
    }

    /// How many photos wait to be indexed.
    pub fn pending_count(&self) -> Result<u64> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM images WHERE status = 'pending'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    /// Whether any photo has an embedding (of any model).
    pub fn has_embeddings(&self) -> Result<bool> {
        self.conn
            .query_row("SELECT EXISTS (SELECT 1 FROM embeddings)", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// The width most of `model`'s embeddings have: the model's own. A vector of another width
    /// is damage, not a second model.
    pub fn embedding_width(&self, model: &str) -> Result<Option<usize>> {
        self.conn
            .query_row(
                "SELECT dim FROM embeddings WHERE model = ?1 GROUP BY dim ORDER BY COUNT(*) DESC, dim
                 LIMIT 1",
                [model],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .map(|dim| dim.map(|d| d.max(0) as usize))
            .map_err(|e| self.err(e))
    }

    /// Every stored embedding of `model` of an indexed (`ok`) image, in storage order. (An
    /// `ORDER BY` here would sort 2 KiB rows through a temporary B-tree.)
    ///
    /// A damaged vector (not a whole number of floats, or of another width than the rest) is an
    /// error naming the photo: tags computed without it would be silently wrong. Indexing the
    /// photo's folder again embeds it anew.
    pub fn embeddings(&self, model: &str) -> Result<Vec<EmbeddingRow>> {
        let mut out = Vec::new();
        self.each_embedding(model, &mut |image_id, vector| {
            out.push(EmbeddingRow {
                image_id,
                vector: vector.to_vec(),
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// [`Store::embeddings`] one at a time, handed to `each` (a million of them need not be in
    /// memory at once).
    pub fn each_embedding(
        &self,
        model: &str,
        each: &mut dyn FnMut(i64, &[f32]) -> Result<()>,
    ) -> Result<()> {
        let Some(width) = self.embedding_width(model)? else {
            return Ok(());
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.image_id, e.vector, i.path FROM embeddings e
                 JOIN images i ON i.id = e.image_id
                 WHERE e.model = ?1 AND i.status = 'ok'",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([model]).map_err(|e| self.err(e))?;
        let mut vector = Vec::with_capacity(width);
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let image_id: i64 = row.get(0).map_err(|e| self.err(e))?;
            let blob = row
                .get_ref(1)
                .map_err(|e| self.err(e))?
                .as_blob()
                .map_err(|e| self.err(e.into()))?;
            if blob.len() != 4 * width {
                let path = path_from_bytes(row.get(2).map_err(|e| self.err(e))?);
                return Err(Error::store(
                    &self.path,
                    format!(
                        "the embedding of image {image_id} ({}) is damaged: {} bytes where the \
                         model's {width} values take {}; index its folder again to embed it anew",
                        path.display(),
                        blob.len(),
                        4 * width
                    ),
                ));
            }
            vector.clear();
            vector.extend(
                blob.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
            each(image_id, &vector)?;
        }
        Ok(())
    }

    /// How many times what the embedding matrix holds has changed (see migration 0008): the
    /// embeddings file beside the database is current when it was written at this count.
    pub fn embedding_generation(&self) -> Result<i64> {
        self.conn
            .query_row("SELECT n FROM embedding_generation", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// Ids of the images that have a sound embedding of `model` (a damaged one does not count, so
    /// that indexing embeds the photo again).
    pub fn embedded_ids(&self, model: &str) -> Result<HashSet<i64>> {
        let Some(width) = self.embedding_width(model)? else {
            return Ok(HashSet::new());
        };
        let mut stmt = self
            .conn
            .prepare(
                "SELECT image_id FROM embeddings
                 WHERE model = ?1 AND dim = ?2 AND length(vector) = 4 * ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![model, width as i64], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// Images whose embedding by `model` was computed in a reduced precision (bf16, f16).
    pub fn embedded_in_reduced_precision(&self, model: &str) -> Result<HashSet<i64>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT image_id FROM embeddings
                 WHERE model = ?1 AND precision IS NOT NULL AND precision != 'f32'",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![model], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// The embedding of one image under `model`, if it has a sound one.
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
        let width = self.embedding_width(model)?;
        Ok(blob
            .and_then(|b| blob_to_vector(&b))
            .filter(|v| Some(v.len()) == width))
    }

    /// The arithmetic `image_id`'s embedding by `model` was computed in (`f32`, `bf16`, `f16`),
    /// where recorded.
    pub fn embedding_precision(&self, image_id: i64, model: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT precision FROM embeddings WHERE image_id = ?1 AND model = ?2",
                params![image_id, model],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map_err(|e| self.err(e))?
            .flatten())
    }

    /// The content hash of every photo the library holds (missing ones included: they may
    /// come back).
    pub fn content_hashes(&self) -> Result<std::collections::HashSet<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash FROM images WHERE hash IS NOT NULL")
            .map_err(|e| self.err(e))?;
        let hashes = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?;
        Ok(hashes)
    }

    /// Embedded images of `model` by content hash (pending ones included: a file whose time
    /// changed but whose bytes did not is still the photo that was embedded).
    pub fn known_content(&self, model: &str) -> Result<KnownContent> {
        let Some(width) = self.embedding_width(model)? else {
            return Ok(KnownContent::default());
        };
        // A damaged embedding does not make its content known: the photo is embedded again.
        let mut stmt = self
            .conn
            .prepare(
                "SELECT i.id, i.hash, i.status FROM images i
                 JOIN embeddings e ON e.image_id = i.id AND e.model = ?1
                 WHERE i.hash IS NOT NULL AND i.status IN ('ok', 'missing', 'pending')
                   AND e.dim = ?2 AND length(e.vector) = 4 * ?2
                 ORDER BY i.id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![model, width as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut known = KnownContent::default();
        for row in rows {
            let (id, hash, status) = row.map_err(|e| self.err(e))?;
            let status = ImageStatus::parse(&status).map_err(|e| self.store_damage(e))?;
            known.rows.push((id, hash, status));
        }
        Ok(known)
    }
}
