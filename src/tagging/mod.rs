//! Vocabulary, prompt templates, scores → tags, re-tagging, search and similar images.
//!
//! Tags are computed from stored image embeddings and cached prompt embeddings, so editing the
//! vocabulary never runs the image encoder, and runs the text encoder only on prompts it has not
//! seen before.

pub mod scoring;
pub mod search;
pub mod vocabulary;
pub mod vocabulary_file;

use std::collections::{HashMap, HashSet};

use rusqlite::{Transaction, params};

use crate::error::{Error, Result};
use crate::store::Store;
pub use scoring::{Assignment, EmbeddingMatrix, PreparedLabel};
pub use vocabulary::{Label, Mode};

/// Embeds prompt texts (the model's text tower, loaded only if some prompt is not cached).
pub type TextEncoder<'a> = &'a mut dyn FnMut(&[String]) -> Result<Vec<Vec<f32>>>;

/// The settings key of the prompt templates.
const TEMPLATES: &str = "templates";
/// The settings key of the model's `exp(logit_scale)`, kept so re-tagging needs no model.
const LOGIT_SCALE: &str = "logit_scale";

/// The library's prompt templates.
pub fn templates(store: &Store) -> Result<Vec<String>> {
    match store.setting(TEMPLATES)? {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| Error::store(store.path(), format!("stored templates are damaged: {e}"))),
        None => Ok(vocabulary::default_templates()),
    }
}

/// Replaces the library's prompt templates.
pub fn set_templates(store: &Store, templates: &[String]) -> Result<()> {
    let templates: Vec<String> = templates
        .iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if templates.is_empty() {
        return Err(Error::invalid("at least one prompt template is needed"));
    }
    let json = serde_json::to_string(&templates).expect("strings serialise. This is a bug.");
    store.set_setting(TEMPLATES, &json)
}

/// Remembers the model's logit scale.
pub fn set_logit_scale(store: &Store, logit_scale: f32) -> Result<()> {
    store.set_setting(LOGIT_SCALE, &logit_scale.to_string())
}

/// The stored logit scale (CLIP's trained value, 100, if none is stored yet).
pub fn logit_scale(store: &Store) -> Result<f32> {
    Ok(store
        .setting(LOGIT_SCALE)?
        .and_then(|s| s.parse().ok())
        .unwrap_or(100.0))
}

/// Everything needed to turn image embeddings into automatic tags.
#[derive(Debug, Clone)]
pub struct TagPlan {
    /// Enabled labels with their embeddings.
    pub labels: Vec<PreparedLabel>,
    pub logit_scale: f32,
}

/// How many prompt texts a plan had to embed (the rest came from the cache).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanStats {
    pub embedded: usize,
    pub cached: usize,
}

impl TagPlan {
    /// Prepares the enabled labels of the vocabulary, embedding only uncached prompts.
    pub fn prepare(
        store: &mut Store,
        model: &str,
        encoder: TextEncoder<'_>,
    ) -> Result<(Self, PlanStats)> {
        let labels: Vec<Label> = store.labels()?.into_iter().filter(|l| l.enabled).collect();
        Self::prepare_labels(store, model, labels, encoder)
    }

    /// Prepares the given labels.
    pub fn prepare_labels(
        store: &mut Store,
        model: &str,
        labels: Vec<Label>,
        encoder: TextEncoder<'_>,
    ) -> Result<(Self, PlanStats)> {
        let templates = templates(store)?;
        let prompts: Vec<Vec<String>> = labels.iter().map(|l| l.prompts(&templates)).collect();
        let mut texts: Vec<String> = prompts.iter().flatten().cloned().collect();
        texts.extend(labels.iter().filter_map(|l| l.negative.clone()));
        texts.sort();
        texts.dedup();
        let vectors = text_embeddings(store, model, &texts, encoder)?;
        let lookup: HashMap<&str, &Vec<f32>> = texts
            .iter()
            .map(String::as_str)
            .zip(vectors.1.iter())
            .collect();
        let prepared = labels
            .into_iter()
            .zip(prompts)
            .map(|(label, prompts)| {
                let positive: Vec<Vec<f32>> =
                    prompts.iter().map(|p| lookup[p.as_str()].clone()).collect();
                let negative = label.negative.as_ref().map(|n| lookup[n.as_str()].clone());
                PreparedLabel {
                    positive: scoring::mean_direction(&positive),
                    negative,
                    label,
                }
            })
            .collect();
        Ok((
            TagPlan {
                labels: prepared,
                logit_scale: logit_scale(store)?,
            },
            vectors.0,
        ))
    }

    /// Scores and assignments of `images` under this plan.
    pub fn assign(&self, images: &EmbeddingMatrix) -> Result<Vec<Assignment>> {
        let scores = scoring::scores(images, &self.labels, self.logit_scale)?;
        Ok(scoring::assign(images, &self.labels, &scores))
    }

    /// Replaces the automatic tags of freshly indexed images, inside the indexing transaction.
    /// A person's decisions on these images stay as they are.
    pub fn tag_images(&self, tx: &Transaction<'_>, images: &[(i64, Vec<f32>)]) -> Result<()> {
        if images.is_empty() {
            return Ok(());
        }
        let matrix = EmbeddingMatrix::from_rows(images.to_vec());
        let assignments = self.assign(&matrix)?;
        let mut clear =
            tx.prepare_cached("DELETE FROM tags WHERE image_id = ?1 AND source = 'auto'")?;
        for (id, _) in images {
            clear.execute([id])?;
        }
        let mut insert = tx.prepare_cached(
            "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, ?3, 'auto')
             ON CONFLICT (image_id, label_id) DO NOTHING",
        )?;
        for a in assignments {
            insert.execute(params![a.image_id, a.label_id, f64::from(a.score)])?;
        }
        Ok(())
    }
}

/// Embeddings of `texts`, from the cache where possible; returns how many were embedded.
pub fn text_embeddings(
    store: &mut Store,
    model: &str,
    texts: &[String],
    encoder: TextEncoder<'_>,
) -> Result<(PlanStats, Vec<Vec<f32>>)> {
    let cached = store.cached_text_embeddings(model, texts)?;
    let missing: Vec<String> = texts
        .iter()
        .zip(&cached)
        .filter(|(_, c)| c.is_none())
        .map(|(t, _)| t.clone())
        .collect();
    let stats = PlanStats {
        embedded: missing.len(),
        cached: texts.len() - missing.len(),
    };
    let mut fresh = HashMap::new();
    if !missing.is_empty() {
        let vectors = encoder(&missing)?;
        if vectors.len() != missing.len() {
            return Err(Error::invalid(
                "the text encoder returned too few embeddings",
            ));
        }
        let entries: Vec<(String, Vec<f32>)> = missing.into_iter().zip(vectors).collect();
        store.cache_text_embeddings(model, &entries)?;
        fresh.extend(entries);
    }
    let vectors = texts
        .iter()
        .zip(cached)
        .map(|(text, cached)| {
            cached
                .or_else(|| fresh.get(text).cloned())
                .unwrap_or_default()
        })
        .collect();
    Ok((stats, vectors))
}

/// Lets automatic tagging decide one `(image, label)` pair again (after a person cleared their
/// decision): the automatic tag is put back if the plan gives it.
pub fn retag_pair(
    store: &Store,
    plan: &TagPlan,
    model: &str,
    image_id: i64,
    label_id: i64,
) -> Result<()> {
    let Some(vector) = store.embedding(image_id, model)? else {
        return Ok(());
    };
    let matrix = EmbeddingMatrix::from_rows(vec![(image_id, vector)]);
    if let Some(a) = plan
        .assign(&matrix)?
        .into_iter()
        .find(|a| a.label_id == label_id)
    {
        store.conn().execute(
            "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, ?3, 'auto')
             ON CONFLICT (image_id, label_id) DO NOTHING",
            params![a.image_id, a.label_id, f64::from(a.score)],
        )?;
    }
    Ok(())
}

/// What a re-tag changed (or, in a dry run, would change).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetagReport {
    /// Automatic tags added, per label name.
    pub added: HashMap<String, u64>,
    /// Automatic tags removed, per label name.
    pub removed: HashMap<String, u64>,
    /// Automatic tags that stay.
    pub kept: u64,
    /// Tags a person decided, which re-tagging left alone.
    pub decided: u64,
}

impl RetagReport {
    /// Total automatic tags added.
    pub fn total_added(&self) -> u64 {
        self.added.values().sum()
    }

    /// Total automatic tags removed.
    pub fn total_removed(&self) -> u64 {
        self.removed.values().sum()
    }
}

/// Recomputes every automatic tag of the images in `images` from their stored embeddings and
/// writes the difference (unless `dry_run`). Tags of images outside `images` (missing files)
/// and a person's decisions are left alone.
pub fn retag(
    store: &mut Store,
    plan: &TagPlan,
    images: &EmbeddingMatrix,
    dry_run: bool,
) -> Result<RetagReport> {
    let names: HashMap<i64, String> = store
        .labels()?
        .into_iter()
        .map(|l| (l.id, l.name))
        .collect();
    let decided = store.decided_pairs()?;
    let in_scope: HashSet<i64> = images.ids.iter().copied().collect();
    let existing: HashMap<(i64, i64), f32> = store
        .auto_tags(None)?
        .into_iter()
        .filter(|((image, _), _)| in_scope.contains(image))
        .collect();
    let mut wanted: HashMap<(i64, i64), f32> = HashMap::new();
    let mut report = RetagReport {
        decided: decided
            .iter()
            .filter(|(image, _)| in_scope.contains(image))
            .count() as u64,
        ..RetagReport::default()
    };
    for a in plan.assign(images)? {
        if !decided.contains(&(a.image_id, a.label_id)) {
            wanted.insert((a.image_id, a.label_id), a.score);
        }
    }
    let name = |label: i64| {
        names
            .get(&label)
            .cloned()
            .unwrap_or_else(|| format!("#{label}"))
    };
    let mut add = Vec::new();
    let mut update = Vec::new();
    for (key, score) in &wanted {
        match existing.get(key) {
            None => {
                *report.added.entry(name(key.1)).or_default() += 1;
                add.push((*key, *score));
            }
            Some(old) => {
                report.kept += 1;
                if (old - score).abs() > 1e-6 {
                    update.push((*key, *score));
                }
            }
        }
    }
    let remove: Vec<(i64, i64)> = existing
        .keys()
        .filter(|k| !wanted.contains_key(k))
        .copied()
        .collect();
    for key in &remove {
        *report.removed.entry(name(key.1)).or_default() += 1;
    }
    if dry_run {
        return Ok(report);
    }
    store.transaction(|tx| {
        let mut delete = tx.prepare_cached("DELETE FROM tags WHERE image_id = ?1 AND label_id = ?2 AND source = 'auto'")?;
        for (image, label) in &remove {
            delete.execute([image, label])?;
        }
        let mut upsert = tx.prepare_cached(
            "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, ?3, 'auto')
             ON CONFLICT (image_id, label_id) DO UPDATE SET score = excluded.score WHERE source = 'auto'",
        )?;
        for ((image, label), score) in add.iter().chain(&update) {
            upsert.execute(params![image, label, f64::from(*score)])?;
        }
        Ok(())
    })?;
    Ok(report)
}
