//! Queries on `tags`: automatic tags, replaced by every re-tag, and a person's decisions, which
//! only the person changes.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use super::{Store, path_from_bytes};
use crate::domain::TagSource;
use crate::error::{Error, Result};

/// One tag with the names a listing needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    pub image_id: i64,
    pub path: PathBuf,
    pub label_id: i64,
    pub label: String,
    pub score: Option<f32>,
    pub source: TagSource,
}

impl Store {
    pub(super) fn parse_source(&self, text: &str) -> Result<TagSource> {
        TagSource::parse(text).map_err(|e| Error::store(&self.path, format!("damaged tag: {e}")))
    }

    /// Every tag (rejections included), ordered by path and label.
    pub fn tags(&self) -> Result<Vec<TagRow>> {
        self.tags_where("1 = 1", &[])
    }

    /// The tags of one image.
    pub fn tags_of(&self, image_id: i64) -> Result<Vec<TagRow>> {
        self.tags_where("t.image_id = ?1", &[&image_id])
    }

    fn tags_where(&self, condition: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<TagRow>> {
        let sql = format!(
            "SELECT t.image_id, i.path, t.label_id, l.name, t.score, t.source
             FROM tags t JOIN images i ON i.id = t.image_id JOIN labels l ON l.id = t.label_id
             WHERE {condition} ORDER BY i.path, l.name COLLATE NOCASE"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.map(|r| {
            let (image_id, path, label_id, label, score, source) = r.map_err(|e| self.err(e))?;
            Ok(TagRow {
                image_id,
                path: path_from_bytes(path),
                label_id,
                label,
                score: score.map(|s| s as f32),
                source: self.parse_source(&source)?,
            })
        })
        .collect()
    }

    /// Every tag as `(image, label, source)`, in storage order.
    pub fn tag_sources(&self) -> Result<Vec<(i64, i64, TagSource)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT image_id, label_id, source FROM tags")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.map(|r| {
            let (image, label, source) = r.map_err(|e| self.err(e))?;
            Ok((image, label, self.parse_source(&source)?))
        })
        .collect()
    }

    /// Every tag of one label, as `(image, source)`.
    pub fn tags_for_label(&self, label_id: i64) -> Result<Vec<(i64, TagSource)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT image_id, source FROM tags WHERE label_id = ?1")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([label_id], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.map(|r| {
            let (image, source) = r.map_err(|e| self.err(e))?;
            Ok((image, self.parse_source(&source)?))
        })
        .collect()
    }

    /// The tag a person or the tagger put on `(image, label)`, if any.
    pub fn tag(&self, image_id: i64, label_id: i64) -> Result<Option<(TagSource, Option<f32>)>> {
        let row: Option<(String, Option<f64>)> = self
            .conn
            .query_row(
                "SELECT source, score FROM tags WHERE image_id = ?1 AND label_id = ?2",
                [image_id, label_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        row.map(|(source, score)| Ok((self.parse_source(&source)?, score.map(|s| s as f32))))
            .transpose()
    }

    /// Records a person's decision on `(image, label)`: `Some(source)` sets it (accepted,
    /// rejected or manual), `None` clears it so that automatic tagging decides again.
    pub fn set_decision(
        &mut self,
        image_id: i64,
        label_id: i64,
        decision: Option<TagSource>,
    ) -> Result<()> {
        self.set_decisions(&[(image_id, label_id, decision)])
    }

    /// Several decisions as [`Store::set_decision`] records one, in one durable transaction:
    /// all of them reach the disk before this returns, or none.
    pub fn set_decisions(&mut self, decisions: &[(i64, i64, Option<TagSource>)]) -> Result<()> {
        self.set_decisions_recorded(decisions, &[], &[], None)
    }

    /// Several decisions as [`Store::set_decisions`] records them, the steps of the library's
    /// history they make (for undo), and the automatic tags of pairs handed back to automatic
    /// tagging (made under `basis`), all in one durable transaction: a kill in between never
    /// leaves a cleared pair without the tag automatic tagging gives it.
    pub fn set_decisions_recorded(
        &mut self,
        decisions: &[(i64, i64, Option<TagSource>)],
        steps: &[super::history::NewStep],
        auto: &[(i64, i64, f32)],
        basis: Option<super::Basis>,
    ) -> Result<()> {
        if decisions.iter().any(|d| d.2 == Some(TagSource::Auto)) {
            return Err(Error::invalid("a person's decision cannot be `auto`"));
        }
        self.durable(|tx| {
            for &(image_id, label_id, decision) in decisions {
                // Checked again here: another program may have taken the photo (its folder
                // removed, or pruned) or the label out since the caller looked.
                let (photo, label): (bool, bool) = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM images WHERE id = ?1),
                            EXISTS (SELECT 1 FROM labels WHERE id = ?2)",
                    params![image_id, label_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                if !photo {
                    return Err(Error::invalid(format!(
                        "photo #{image_id} is no longer in the library (its folder was removed, \
                         or it was pruned, meanwhile): nothing was decided"
                    )));
                }
                if !label {
                    return Err(Error::invalid(format!(
                        "label #{label_id} is no longer in the vocabulary (removed meanwhile): \
                         nothing was decided"
                    )));
                }
                super::history::set(tx, image_id, label_id, decision)?;
            }
            super::history::record(tx, steps)?;
            put_auto(tx, auto, basis)
        })
    }

    /// How many of a person's decisions the label holds (those kept for a removed folder's
    /// return included).
    pub fn decisions_on_label(&self, label_id: i64) -> Result<usize> {
        self.conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM tags WHERE label_id = ?1 AND source != 'auto')
                      + (SELECT COUNT(*) FROM kept_decisions WHERE label_id = ?1)",
                [label_id],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(|e| self.err(e))
    }

    /// Writes automatic tags for pairs that no decision holds (a decision written meanwhile
    /// wins), in one transaction.
    pub fn put_auto_tags(
        &mut self,
        auto: &[(i64, i64, f32)],
        basis: Option<super::Basis>,
    ) -> Result<()> {
        self.write(|tx| put_auto(tx, auto, basis))
    }

    /// Automatic tags of the given labels (all labels for `None`), as `(image, label) → score`.
    pub fn auto_tags(&self, label_ids: Option<&[i64]>) -> Result<HashMap<(i64, i64), f32>> {
        let mut out = HashMap::new();
        let mut collect =
            |stmt: &mut rusqlite::Statement<'_>, args: &[&dyn rusqlite::ToSql]| -> Result<()> {
                let rows = stmt
                    .query_map(args, |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, Option<f64>>(2)?,
                        ))
                    })
                    .map_err(|e| self.err(e))?;
                for row in rows {
                    let (image, label, score) = row.map_err(|e| self.err(e))?;
                    out.insert((image, label), score.unwrap_or(0.0) as f32);
                }
                Ok(())
            };
        match label_ids {
            None => {
                let mut stmt = self
                    .conn
                    .prepare("SELECT image_id, label_id, score FROM tags WHERE source = 'auto'")
                    .map_err(|e| self.err(e))?;
                collect(&mut stmt, &[])?;
            }
            Some(ids) => {
                let mut stmt = self
                    .conn
                    .prepare_cached(
                        "SELECT image_id, label_id, score FROM tags WHERE label_id = ?1 AND source = 'auto'",
                    )
                    .map_err(|e| self.err(e))?;
                for id in ids {
                    collect(&mut stmt, &[id])?;
                }
            }
        }
        Ok(out)
    }

    /// Every person's decision, as `(image, label)` pairs (automatic tagging leaves these alone).
    pub fn decided_pairs(&self) -> Result<HashSet<(i64, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT image_id, label_id FROM tags WHERE source != 'auto'")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// Writes a re-tag's difference in one transaction: automatic tags removed, and added or
    /// re-scored as `(image, label, score)`; a person's decisions are never touched.
    ///
    /// Many tags at once (a first re-tag, a model switch) are written with the by-label index
    /// dropped and built again afterwards, in the same transaction: one sort instead of a
    /// scattered index insert per tag.
    pub fn apply_tag_change(
        &mut self,
        remove: &[(i64, i64)],
        upsert: &[(i64, i64, f32)],
        basis: super::Basis,
    ) -> Result<()> {
        self.apply_tag_change_watched(remove, upsert, basis, &mut |_, _| true)
    }

    /// [`Store::apply_tag_change`], calling `each(tags written, tags to write)` every
    /// [`TAGS_PER_LOOK`] tags; when it returns false the transaction is rolled back (no tag
    /// changed) and the call fails with [`Error::Cancelled`].
    pub fn apply_tag_change_watched(
        &mut self,
        remove: &[(i64, i64)],
        upsert: &[(i64, i64, f32)],
        basis: super::Basis,
        each: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<()> {
        let bulk = upsert.len() >= BULK_TAGS;
        let total = remove.len() + upsert.len();
        let mut look = |done: usize| {
            if done.is_multiple_of(TAGS_PER_LOOK) && !each(done, total) {
                return Err(Error::Cancelled);
            }
            Ok(())
        };
        self.write(|tx| {
            // Tags computed from a whole vocabulary that another program has changed since
            // would overwrite the tags that program's re-tag wrote.
            if let super::Basis::Whole { n, .. } = basis {
                let now: i64 =
                    tx.query_row("SELECT n FROM vocabulary_generation", [], |r| r.get(0))?;
                if now != n {
                    return Err(Error::VocabularyMoved);
                }
            }
            if bulk {
                tx.execute_batch("DROP INDEX tags_label")?;
            }
            let mut delete = tx.prepare_cached(
                "DELETE FROM tags WHERE image_id = ?1 AND label_id = ?2 AND source = 'auto'",
            )?;
            for (done, (image, label)) in remove.iter().enumerate() {
                look(done)?;
                delete.execute([image, label])?;
            }
            let mut put = tx.prepare_cached(
                "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, ?3, 'auto')
                 ON CONFLICT (image_id, label_id) DO UPDATE SET score = excluded.score
                 WHERE source = 'auto'",
            )?;
            for (done, (image, label, score)) in upsert.iter().enumerate() {
                look(remove.len() + done)?;
                put.execute(params![image, label, f64::from(*score)])?;
            }
            if bulk {
                // As migration 0002 made it.
                tx.execute_batch(TAGS_LABEL_INDEX)?;
            }
            super::follow(tx, basis)?;
            Ok(())
        })
    }
}

/// How many tags a watched write writes between looks at its watcher.
pub const TAGS_PER_LOOK: usize = 16_384;

/// From this many tags written at once the by-label index is built after the writes.
pub const BULK_TAGS: usize = 100_000;

/// The by-label index of tags, exactly as migration 0002 creates it.
const TAGS_LABEL_INDEX: &str = "CREATE INDEX tags_label ON tags (label_id, source)";

/// Writes automatic tags of pairs no decision holds (a decision cleared, an undo), inside the
/// transaction that cleared them, and records what they agree with.
pub(super) fn put_auto(
    tx: &rusqlite::Transaction<'_>,
    auto: &[(i64, i64, f32)],
    basis: Option<super::Basis>,
) -> Result<()> {
    if auto.is_empty() {
        return Ok(());
    }
    let mut put = tx.prepare_cached(
        "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, ?3, 'auto')
         ON CONFLICT (image_id, label_id) DO UPDATE SET score = excluded.score
         WHERE source = 'auto'",
    )?;
    for (image, label, score) in auto {
        put.execute(params![image, label, f64::from(*score)])?;
    }
    if let Some(basis) = basis {
        super::follow(tx, basis)?;
    }
    Ok(())
}
