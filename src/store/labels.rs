//! Queries on `labels` and the prompt-embedding cache.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{Store, blob_to_vector, now, vector_to_blob};
use crate::error::{Error, Result};
use crate::tagging::vocabulary::{Label, Mode};

const COLUMNS: &str = "id, name, prompts, negative, mode, threshold, top_k, enabled";

fn label_row(r: &Row<'_>) -> rusqlite::Result<Label> {
    let prompts: String = r.get(2)?;
    let mode: String = r.get(4)?;
    Ok(Label {
        id: r.get(0)?,
        name: r.get(1)?,
        prompts: serde_json::from_str(&prompts).unwrap_or_default(),
        negative: r.get(3)?,
        mode: Mode::parse(&mode).unwrap_or_default(),
        threshold: r.get::<_, f64>(5)? as f32,
        top_k: r.get::<_, i64>(6)?.max(1) as u32,
        enabled: r.get::<_, i64>(7)? != 0,
    })
}

fn prompts_json(label: &Label) -> String {
    serde_json::to_string(&label.prompts).expect("a list of strings serialises. This is a bug.")
}

/// Inserts a (checked) label; returns its id.
pub(crate) fn insert_label(tx: &Transaction<'_>, label: &Label) -> Result<i64> {
    tx.execute(
        "INSERT INTO labels (name, prompts, negative, mode, threshold, top_k, enabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        params![
            label.name,
            prompts_json(label),
            label.negative,
            label.mode.as_str(),
            f64::from(label.threshold),
            i64::from(label.top_k),
            label.enabled,
            now()
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Replaces the fields of label `label_id` with `label`'s; whether such a label exists.
pub(crate) fn update_label_row(tx: &Transaction<'_>, label_id: i64, label: &Label) -> Result<bool> {
    let changed = tx.execute(
        "UPDATE labels SET name = ?2, prompts = ?3, negative = ?4, mode = ?5, threshold = ?6,
         top_k = ?7, enabled = ?8, updated_at = ?9 WHERE id = ?1",
        params![
            label_id,
            label.name,
            prompts_json(label),
            label.negative,
            label.mode.as_str(),
            f64::from(label.threshold),
            i64::from(label.top_k),
            label.enabled,
            now()
        ],
    )?;
    Ok(changed > 0)
}

impl Store {
    /// The whole vocabulary, ordered by name.
    pub fn labels(&self) -> Result<Vec<Label>> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM labels ORDER BY name COLLATE NOCASE"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], label_row).map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// The label called `name` (exactly, or ignoring case if no exact match).
    pub fn label_by_name(&self, name: &str) -> Result<Option<Label>> {
        let exact = self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM labels WHERE name = ?1"),
                [name.trim()],
                label_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if exact.is_some() {
            return Ok(exact);
        }
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM labels WHERE name = ?1 COLLATE NOCASE"),
                [name.trim()],
                label_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// The label with this id.
    pub fn label(&self, label_id: i64) -> Result<Option<Label>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM labels WHERE id = ?1"),
                [label_id],
                label_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Adds a label after checking it; a duplicate name is refused. Returns it with its id.
    pub fn add_label(&mut self, mut label: Label) -> Result<Label> {
        label.validate()?;
        if let Some(existing) = self.label_by_name(&label.name)? {
            return Err(Error::invalid(format!(
                "the vocabulary already has a label {:?}",
                existing.name
            )));
        }
        label.id = self.durable(|tx| insert_label(tx, &label))?;
        Ok(label)
    }

    /// Replaces a stored label's fields (rename included) after checking them.
    pub fn update_label(&mut self, mut label: Label) -> Result<Label> {
        label.validate()?;
        if let Some(existing) = self.label_by_name(&label.name)?
            && existing.id != label.id
        {
            return Err(Error::invalid(format!(
                "the vocabulary already has a label {:?}",
                existing.name
            )));
        }
        let changed = self.durable(|tx| update_label_row(tx, label.id, &label))?;
        if !changed {
            return Err(Error::invalid(format!("no label with id {}", label.id)));
        }
        Ok(label)
    }

    /// Removes a label and every tag it gave, a person's decisions included.
    pub fn remove_label(&mut self, label_id: i64) -> Result<()> {
        let changed =
            self.durable(|tx| Ok(tx.execute("DELETE FROM labels WHERE id = ?1", [label_id])?))?;
        if changed == 0 {
            return Err(Error::invalid(format!("no label with id {label_id}")));
        }
        Ok(())
    }

    /// Cached embeddings of `texts` under `model`; `None` where a text has none yet.
    pub fn cached_text_embeddings(
        &self,
        model: &str,
        texts: &[String],
    ) -> Result<Vec<Option<Vec<f32>>>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT vector FROM text_embeddings WHERE model = ?1 AND text = ?2")
            .map_err(|e| self.err(e))?;
        texts
            .iter()
            .map(|text| {
                let blob: Option<Vec<u8>> = stmt
                    .query_row(params![model, text], |r| r.get(0))
                    .optional()
                    .map_err(|e| self.err(e))?;
                Ok(blob.and_then(|b| blob_to_vector(&b)))
            })
            .collect()
    }

    /// Caches prompt embeddings.
    pub fn cache_text_embeddings(
        &mut self,
        model: &str,
        entries: &[(String, Vec<f32>)],
    ) -> Result<()> {
        self.transaction(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO text_embeddings (model, text, vector) VALUES (?1, ?2, ?3)
                 ON CONFLICT (model, text) DO UPDATE SET vector = excluded.vector",
            )?;
            for (text, vector) in entries {
                stmt.execute(params![model, text, vector_to_blob(vector)])?;
            }
            Ok(())
        })
    }
}
