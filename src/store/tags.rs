//! Queries on `tags`: automatic tags, replaced by every re-tag, and a person's decisions, which
//! only the person changes.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::error::{Error, Result};

/// Where a tag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagSource {
    /// Computed from the label's scores.
    Auto,
    /// A person confirmed an automatic tag.
    Accepted,
    /// A person said the label does not apply; it never comes back automatically.
    Rejected,
    /// A person added the tag by hand.
    Manual,
}

impl TagSource {
    /// The word stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            TagSource::Auto => "auto",
            TagSource::Accepted => "accepted",
            TagSource::Rejected => "rejected",
            TagSource::Manual => "manual",
        }
    }

    /// Reads the stored word.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "auto" => Some(TagSource::Auto),
            "accepted" => Some(TagSource::Accepted),
            "rejected" => Some(TagSource::Rejected),
            "manual" => Some(TagSource::Manual),
            _ => None,
        }
    }

    /// Whether the tag puts the label on the image (everything but a rejection).
    pub fn applies(self) -> bool {
        self != TagSource::Rejected
    }

    /// Whether a person made this decision.
    pub fn is_personal(self) -> bool {
        self != TagSource::Auto
    }
}

/// One tag with the names a listing needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TagRow {
    pub image_id: i64,
    pub path: String,
    pub label_id: i64,
    pub label: String,
    pub score: Option<f32>,
    pub source: TagSource,
}

impl Store {
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
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(args, |r| {
                Ok(TagRow {
                    image_id: r.get(0)?,
                    path: r.get(1)?,
                    label_id: r.get(2)?,
                    label: r.get(3)?,
                    score: r.get::<_, Option<f64>>(4)?.map(|s| s as f32),
                    source: TagSource::parse(&r.get::<_, String>(5)?).unwrap_or(TagSource::Auto),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// The tag a person or the tagger put on `(image, label)`, if any.
    pub fn tag(&self, image_id: i64, label_id: i64) -> Result<Option<(TagSource, Option<f32>)>> {
        self.conn
            .query_row(
                "SELECT source, score FROM tags WHERE image_id = ?1 AND label_id = ?2",
                [image_id, label_id],
                |r| {
                    Ok((
                        TagSource::parse(&r.get::<_, String>(0)?).unwrap_or(TagSource::Auto),
                        r.get::<_, Option<f64>>(1)?.map(|s| s as f32),
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records a person's decision on `(image, label)`: `Some(source)` sets it (accepted,
    /// rejected or manual), `None` clears it so that automatic tagging decides again.
    pub fn set_decision(
        &mut self,
        image_id: i64,
        label_id: i64,
        decision: Option<TagSource>,
    ) -> Result<()> {
        if decision == Some(TagSource::Auto) {
            return Err(Error::invalid("a person's decision cannot be `auto`"));
        }
        self.durable(|tx| {
            match decision {
                Some(source) => {
                    tx.execute(
                        "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, NULL, ?3)
                         ON CONFLICT (image_id, label_id) DO UPDATE SET source = excluded.source",
                        params![image_id, label_id, source.as_str()],
                    )?;
                }
                None => {
                    tx.execute(
                        "DELETE FROM tags WHERE image_id = ?1 AND label_id = ?2 AND source != 'auto'",
                        params![image_id, label_id],
                    )?;
                }
            }
            Ok(())
        })
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
    pub fn decided_pairs(&self) -> Result<std::collections::HashSet<(i64, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT image_id, label_id FROM tags WHERE source != 'auto'")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }
}
