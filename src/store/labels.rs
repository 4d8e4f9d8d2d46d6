//! The vocabulary: `labels`, the prompt templates and logit scale kept in `settings`, and the
//! prompt-embedding cache.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::{Store, blob_to_vector, now, set_setting, vector_to_blob};
use crate::domain::{Label, Learned, Mode, default_templates};
use crate::error::{Error, Result};

pub(super) const COLUMNS: &str = "id, name, prompts, negative, mode, threshold, top_k, enabled, \
                       learned_model, learned_direction, zero_shot_threshold, learned_positives, \
                       learned_negatives";
/// The settings key of the prompt templates.
const TEMPLATES: &str = "templates";
/// The settings key of the model's `exp(logit_scale)`, kept so re-tagging needs no model.
const LOGIT_SCALE: &str = "logit_scale";
/// The settings key of the model's logit bias (empty or absent: a model without one).
const LOGIT_BIAS: &str = "logit_bias";
/// The settings key of the model whose thresholds the labels hold.
const THRESHOLDS_MODEL: &str = "thresholds_model";

/// A label's row as stored, before its JSON and words are checked.
pub(super) struct RawLabel {
    id: i64,
    name: String,
    prompts: String,
    negative: Option<String>,
    mode: String,
    threshold: f64,
    top_k: i64,
    enabled: bool,
    learned_model: Option<String>,
    learned_direction: Option<Vec<u8>>,
    zero_shot_threshold: Option<f64>,
    learned_positives: Option<i64>,
    learned_negatives: Option<i64>,
}

pub(super) fn raw_label(r: &Row<'_>) -> rusqlite::Result<RawLabel> {
    Ok(RawLabel {
        id: r.get(0)?,
        name: r.get(1)?,
        prompts: r.get(2)?,
        negative: r.get(3)?,
        mode: r.get(4)?,
        threshold: r.get(5)?,
        top_k: r.get(6)?,
        enabled: r.get::<_, i64>(7)? != 0,
        learned_model: r.get(8)?,
        learned_direction: r.get(9)?,
        zero_shot_threshold: r.get(10)?,
        learned_positives: r.get(11)?,
        learned_negatives: r.get(12)?,
    })
}

impl RawLabel {
    /// The label, or an error naming the damaged row (never a silent default that the next edit
    /// would write back).
    pub(super) fn checked(self, library: &std::path::Path) -> Result<Label> {
        let damaged = |what: String| {
            Error::store(
                library,
                format!(
                    "label {} ({:?}) is damaged: {what}; remove it (`cliptag vocab remove {:?}`) or \
                     import it again from a vocabulary file",
                    self.id, self.name, self.name
                ),
            )
        };
        let prompts: Vec<String> = serde_json::from_str(&self.prompts)
            .map_err(|e| damaged(format!("its prompts are not a JSON list of texts ({e})")))?;
        let mode = Mode::parse(&self.mode).map_err(|e| damaged(e.to_string()))?;
        let learned = match (self.learned_model, self.learned_direction) {
            (Some(model), Some(blob)) => {
                let direction =
                    blob_to_vector(&blob)
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| {
                            damaged(format!(
                                "its learned direction is {} bytes, not whole f32 values",
                                blob.len()
                            ))
                        })?;
                Some(Learned {
                    model,
                    direction,
                    zero_shot_threshold: self.zero_shot_threshold.unwrap_or(self.threshold) as f32,
                    positives: self.learned_positives.unwrap_or(0).max(0) as u32,
                    negatives: self.learned_negatives.unwrap_or(0).max(0) as u32,
                    threshold: None,
                })
            }
            _ => None,
        };
        Ok(Label {
            learned,
            learned_elsewhere: Vec::new(),
            id: self.id,
            name: self.name,
            prompts,
            negative: self.negative,
            mode,
            threshold: self.threshold as f32,
            top_k: self.top_k.max(1) as u32,
            enabled: self.enabled,
        })
    }
}

fn prompts_json(label: &Label) -> String {
    serde_json::to_string(&label.prompts).expect("a list of strings serialises. This is a bug.")
}

/// Stores `label` under `id`, or a new id for `None`; returns the id.
pub(super) fn insert_row(
    tx: &Transaction<'_>,
    id: Option<i64>,
    label: &Label,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT INTO labels (id, name, prompts, negative, mode, threshold, top_k, enabled,
         created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
        params![
            id,
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
    let id = tx.last_insert_rowid();
    write_learned(tx, id, label)?;
    Ok(id)
}

/// Stores `label` again under the id it had (redoing its addition); whether its name was free.
pub(super) fn insert_label_as(
    tx: &Transaction<'_>,
    label_id: i64,
    label: &Label,
) -> rusqlite::Result<bool> {
    let taken: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM labels WHERE id = ?1 OR name = ?2 COLLATE NOCASE)",
        params![label_id, label.name],
        |r| r.get(0),
    )?;
    if !taken {
        insert_row(tx, Some(label_id), label)?;
    }
    Ok(!taken)
}

pub(super) fn update_label_row(
    tx: &Transaction<'_>,
    label_id: i64,
    label: &Label,
) -> rusqlite::Result<bool> {
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
    write_learned(tx, label_id, label)?;
    Ok(changed > 0)
}

/// Stores (or clears) what a label learned under the model scored with now, and keeps what it
/// learned under others.
fn write_learned(tx: &Transaction<'_>, label_id: i64, label: &Label) -> rusqlite::Result<()> {
    let learned = label.learned.as_ref();
    // The slot's model before this write: cleared (a reset), its learning goes for that model
    // only.
    let previous: Option<String> = tx
        .query_row(
            "SELECT learned_model FROM labels WHERE id = ?1",
            [label_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    if let (None, Some(model)) = (learned, &previous) {
        tx.execute(
            "DELETE FROM label_learning WHERE label_id = ?1 AND model = ?2",
            params![label_id, model],
        )?;
    }
    let mut keep = tx.prepare_cached(
        "INSERT OR REPLACE INTO label_learning
             (label_id, model, direction, zero_shot_threshold, positives, negatives)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for l in learned.into_iter().chain(&label.learned_elsewhere) {
        keep.execute(params![
            label_id,
            l.model,
            vector_to_blob(&l.direction),
            f64::from(l.zero_shot_threshold),
            i64::from(l.positives),
            i64::from(l.negatives),
        ])?;
    }
    // Another model's learned threshold (from a vocabulary file) waits with that model's
    // thresholds, for a switch to it.
    for l in &label.learned_elsewhere {
        if let Some(threshold) = l.threshold {
            tx.execute(
                "INSERT OR REPLACE INTO label_thresholds (label_id, model, threshold)
                 VALUES (?1, ?2, ?3)",
                params![label_id, l.model, f64::from(threshold)],
            )?;
        }
    }
    tx.execute(
        "UPDATE labels SET learned_model = ?2, learned_direction = ?3, zero_shot_threshold = ?4,
         learned_positives = ?5, learned_negatives = ?6 WHERE id = ?1",
        params![
            label_id,
            learned.map(|l| l.model.as_str()),
            learned.map(|l| vector_to_blob(&l.direction)),
            learned.map(|l| f64::from(l.zero_shot_threshold)),
            learned.map(|l| i64::from(l.positives)),
            learned.map(|l| i64::from(l.negatives)),
        ],
    )?;
    Ok(())
}

impl Store {
    fn label_query(&self, condition: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Label>> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM labels WHERE {condition} ORDER BY name COLLATE NOCASE, id"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map(args, raw_label).map_err(|e| self.err(e))?;
        let mut labels: Vec<Label> = rows
            .map(|r| r.map_err(|e| self.err(e))?.checked(&self.path))
            .collect::<Result<_>>()?;
        let mut elsewhere = self.learning_by_label()?;
        for label in &mut labels {
            let slot = label.learned.as_ref().map(|l| l.model.clone());
            label.learned_elsewhere = elsewhere
                .remove(&label.id)
                .unwrap_or_default()
                .into_iter()
                .filter(|l| Some(&l.model) != slot.as_ref())
                .collect();
        }
        Ok(labels)
    }

    /// Everything every label learned, under every model, by label.
    fn learning_by_label(&self) -> Result<HashMap<i64, Vec<Learned>>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT l.label_id, l.model, l.direction, l.zero_shot_threshold, l.positives,
                        l.negatives, t.threshold
                 FROM label_learning l
                 LEFT JOIN label_thresholds t ON t.label_id = l.label_id AND t.model = l.model
                 ORDER BY l.label_id, l.model",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, f64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<f64>>(6)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out: HashMap<i64, Vec<Learned>> = HashMap::new();
        for row in rows {
            let (label_id, model, blob, zero_shot, positives, negatives, threshold) =
                row.map_err(|e| self.err(e))?;
            // A damaged direction is left out here; the label's own slot reports damage.
            let Some(direction) = blob_to_vector(&blob).filter(|v| !v.is_empty()) else {
                continue;
            };
            out.entry(label_id).or_default().push(Learned {
                model,
                direction,
                zero_shot_threshold: zero_shot as f32,
                positives: positives.max(0) as u32,
                negatives: negatives.max(0) as u32,
                threshold: threshold.map(|t| t as f32),
            });
        }
        Ok(out)
    }

    /// The whole vocabulary, ordered by name.
    pub fn labels(&self) -> Result<Vec<Label>> {
        self.label_query("1 = 1", &[])
    }

    /// The label with this id.
    pub fn label(&self, label_id: i64) -> Result<Option<Label>> {
        Ok(self
            .label_query("id = ?1", &[&label_id])?
            .into_iter()
            .next())
    }

    /// The id and stored name of the label called `name` (exactly, or else ignoring case); the
    /// rest of the row is not read, so a damaged label can still be found and removed.
    pub fn label_id_by_name(&self, name: &str) -> Result<Option<(i64, String)>> {
        let name = name.trim();
        let find = |sql: &str| {
            self.conn
                .query_row(sql, [name], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(|e| self.err(e))
        };
        match find("SELECT id, name FROM labels WHERE name = ?1")? {
            Some(found) => Ok(Some(found)),
            None => find("SELECT id, name FROM labels WHERE name = ?1 COLLATE NOCASE ORDER BY id"),
        }
    }

    /// Stores a new label (checked by the caller); returns its id.
    pub fn insert_label(&mut self, label: &Label) -> Result<i64> {
        self.durable(|tx| Ok(insert_row(tx, None, label)?))
    }

    /// Replaces the fields of label `label.id`; whether such a label exists.
    pub fn update_label(&mut self, label: &Label) -> Result<bool> {
        self.durable(|tx| Ok(update_label_row(tx, label.id, label)?))
    }

    /// Removes a label and every tag it gave, a person's decisions included; whether it existed.
    pub fn remove_label(&mut self, label_id: i64) -> Result<bool> {
        self.durable(|tx| Ok(tx.execute("DELETE FROM labels WHERE id = ?1", [label_id])? > 0))
    }

    /// Merges labels into the vocabulary in one transaction: a label whose name (ignoring case)
    /// is known replaces that one, the others are added; `templates` replace the library's.
    /// Returns how many were added and how many replaced.
    pub fn import_vocabulary(
        &mut self,
        templates: Option<&[String]>,
        labels: &[Label],
    ) -> Result<(usize, usize)> {
        let templates_json =
            templates.map(|t| serde_json::to_string(t).expect("strings serialise. This is a bug."));
        self.durable(|tx| {
            let existing: HashMap<String, i64> = {
                let mut stmt = tx.prepare("SELECT id, name FROM labels")?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
                let mut map = HashMap::new();
                for row in rows {
                    let (id, name) = row?;
                    map.insert(name.to_lowercase(), id);
                }
                map
            };
            if let Some(json) = &templates_json {
                set_setting(tx, TEMPLATES, json)?;
            }
            let (mut added, mut updated) = (0, 0);
            for label in labels {
                match existing.get(&label.name.to_lowercase()) {
                    Some(id) => {
                        update_label_row(tx, *id, label)?;
                        updated += 1;
                    }
                    None => {
                        insert_row(tx, None, label)?;
                        added += 1;
                    }
                }
            }
            Ok((added, updated))
        })
    }

    /// The library's prompt templates (CLIP's defaults until a vocabulary file sets others).
    pub fn templates(&self) -> Result<Vec<String>> {
        match self.setting(TEMPLATES)? {
            Some(json) => serde_json::from_str(&json).map_err(|e| {
                Error::store(
                    &self.path,
                    format!("the stored prompt templates are damaged (not a JSON list: {e})"),
                )
            }),
            None => Ok(default_templates()),
        }
    }

    /// Replaces the library's prompt templates.
    pub fn set_templates(&mut self, templates: &[String]) -> Result<()> {
        let json = serde_json::to_string(templates).expect("strings serialise. This is a bug.");
        self.durable(|tx| Ok(set_setting(tx, TEMPLATES, &json).map(|_| ())?))
    }

    /// The stored logit scale (CLIP's trained value, 100, if none is stored yet).
    pub fn logit_scale(&self) -> Result<f32> {
        match self.setting(LOGIT_SCALE)? {
            None => Ok(100.0),
            Some(text) => text.parse().map_err(|_| {
                Error::store(
                    &self.path,
                    format!("the stored logit scale {text:?} is damaged (not a number)"),
                )
            }),
        }
    }

    /// Remembers the model's logit scale.
    pub fn set_logit_scale(&mut self, logit_scale: f32) -> Result<()> {
        self.set_setting(LOGIT_SCALE, &logit_scale.to_string())
    }

    /// The stored logit bias of a sigmoid-trained model (SigLIP); `None` for CLIP, whose scores
    /// are cosines.
    pub fn logit_bias(&self) -> Result<Option<f32>> {
        match self.setting(LOGIT_BIAS)?.as_deref() {
            None | Some("") => Ok(None),
            Some(text) => text.parse().map(Some).map_err(|_| {
                Error::store(
                    &self.path,
                    format!("the stored logit bias {text:?} is damaged (not a number)"),
                )
            }),
        }
    }

    /// The scale and bias `model` turns cosines into logits with, if it was ever loaded.
    pub fn model_scoring(&self, model: &str) -> Result<Option<(f32, Option<f32>)>> {
        self.conn
            .query_row(
                "SELECT logit_scale, logit_bias FROM model_scoring WHERE model = ?1",
                [model],
                |r| Ok((r.get::<_, f64>(0)? as f32, r.get::<_, Option<f64>>(1)?)),
            )
            .optional()
            .map(|found| found.map(|(scale, bias)| (scale, bias.map(|b| b as f32))))
            .map_err(|e| self.err(e))
    }

    /// The model whose thresholds the labels hold now, if the library knows.
    pub fn thresholds_model(&self) -> Result<Option<String>> {
        self.setting(THRESHOLDS_MODEL)
    }

    /// Makes `model` the one the library scores with, in one transaction: remembers its scale
    /// and bias (as the library's current ones and as `model`'s own), files every label's
    /// threshold under the model the labels held them for until now, and gives each label the
    /// threshold it had under `model` before. A threshold label `model` never saw gets
    /// `default` when the kind of score changes (cosine ↔ probability); otherwise it keeps its
    /// value. Returns how many labels' thresholds changed.
    pub fn adopt_model_scoring(
        &mut self,
        model: &str,
        logit_scale: f32,
        logit_bias: Option<f32>,
        default: f32,
    ) -> Result<usize> {
        let view_changed = self.logit_bias()?.is_some() != logit_bias.is_some();
        let previous = self.thresholds_model()?;
        self.durable(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO model_scoring (model, logit_scale, logit_bias)
                 VALUES (?1, ?2, ?3)",
                rusqlite::params![model, f64::from(logit_scale), logit_bias.map(f64::from)],
            )?;
            set_setting(tx, LOGIT_SCALE, &logit_scale.to_string())?;
            set_setting(
                tx,
                LOGIT_BIAS,
                &logit_bias.map(|b| b.to_string()).unwrap_or_default(),
            )?;
            let mut changed = 0;
            if previous.as_deref() != Some(model) {
                if let Some(previous) = &previous {
                    tx.execute(
                        "INSERT OR REPLACE INTO label_thresholds (label_id, model, threshold)
                         SELECT id, ?1, threshold FROM labels",
                        [previous],
                    )?;
                }
                changed += tx.execute(
                    "UPDATE labels SET threshold = (
                         SELECT t.threshold FROM label_thresholds t
                         WHERE t.label_id = labels.id AND t.model = ?1)
                     WHERE EXISTS (SELECT 1 FROM label_thresholds t
                                   WHERE t.label_id = labels.id AND t.model = ?1)",
                    [model],
                )?;
                if view_changed {
                    changed += tx.execute(
                        "UPDATE labels SET threshold = ?2
                         WHERE mode = 'threshold' AND NOT EXISTS (
                             SELECT 1 FROM label_thresholds t
                             WHERE t.label_id = labels.id AND t.model = ?1)",
                        rusqlite::params![model, f64::from(default)],
                    )?;
                }
                // What each label learned under this model comes back into its slot; a label
                // that learned nothing under it is scored by its prompts.
                tx.execute(
                    "UPDATE labels SET
                         learned_model = (SELECT l.model FROM label_learning l
                                          WHERE l.label_id = labels.id AND l.model = ?1),
                         learned_direction = (SELECT l.direction FROM label_learning l
                                              WHERE l.label_id = labels.id AND l.model = ?1),
                         zero_shot_threshold = (SELECT l.zero_shot_threshold FROM label_learning l
                                                WHERE l.label_id = labels.id AND l.model = ?1),
                         learned_positives = (SELECT l.positives FROM label_learning l
                                              WHERE l.label_id = labels.id AND l.model = ?1),
                         learned_negatives = (SELECT l.negatives FROM label_learning l
                                              WHERE l.label_id = labels.id AND l.model = ?1)",
                    [model],
                )?;
                set_setting(tx, THRESHOLDS_MODEL, model)?;
            }
            Ok(changed)
        })
    }

    /// Cached embeddings of `texts` under `model`; `None` where a text has none yet (or a damaged
    /// one, which is then embedded again and replaced).
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
                Ok(blob
                    .and_then(|b| blob_to_vector(&b))
                    .filter(|v| !v.is_empty()))
            })
            .collect()
    }

    /// Caches prompt embeddings.
    pub fn cache_text_embeddings(
        &mut self,
        model: &str,
        entries: &[(String, Vec<f32>)],
    ) -> Result<()> {
        self.write(|tx| {
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
