//! Tags from stored embeddings: re-tagging the library, what an edited label would do (the
//! preview), and one photo's scores (a person's decisions are in `decisions.rs`). The preview
//! and real tagging share one path (the tagger's `assign`), so what the slider says is what
//! applying does, in every mode.

use crate::store::Basis;
use std::collections::{HashMap, HashSet};

use std::time::{Duration, Instant};

use super::{Library, Progress, RunControl, Stage};
use crate::domain::{ImageStatus, Label, Mode, TagSource};
use crate::error::{Error, Result};
use crate::tagging::{
    Assignment, EmbeddingMatrix, LabelColumn, Logits, PreparedLabel, RetagReport, TagPlan,
    retag_change,
};

/// How the library's tags followed a vocabulary edit.
#[derive(Debug, Clone, PartialEq)]
pub enum Retag {
    /// Re-tagged from stored embeddings.
    Done(RetagReport),
    /// Nothing is indexed yet, so there was nothing to re-tag.
    NothingIndexed,
    /// The edit is stored, but the tags could not follow (the reason; typically the model is
    /// needed for new prompts and could not be loaded). They follow on the next re-tag.
    Failed(String),
    /// The edit is stored; the library is switching to another model, and its tags follow the
    /// edit when every photo has the new model's embedding.
    AfterSwitch,
}

/// What an edited label would do.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The label as edited (not stored).
    pub label: Label,
    /// Photos that would carry the label: automatic tags plus a person's tags that apply.
    pub count: usize,
    /// Automatic tags it would add and remove, compared with now.
    pub added: usize,
    pub removed: usize,
    /// The photos it would add the label to, and take it from (ids, ascending).
    pub would_add: Vec<i64>,
    pub would_remove: Vec<i64>,
    /// How the label's scores are spread over the library.
    pub histogram: Histogram,
}

/// Bins of one label's scores over the library, with where the person's decisions fall.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// The score range the bins cover.
    pub low: f32,
    pub high: f32,
    /// Photos per bin, `low` to `high` in equal steps.
    pub bins: Vec<u32>,
    /// Scores of the photos a person accepted (or added) and rejected.
    pub accepted: Vec<f32>,
    pub rejected: Vec<f32>,
}

/// Bins of a histogram.
const BINS: usize = 60;

/// How often a full re-tag reports its progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

impl Histogram {
    fn of(ids: &[i64], scores: &[f32], decided: &HashMap<i64, TagSource>, mode: Mode) -> Self {
        let finite = || scores.iter().copied().filter(|s| s.is_finite());
        let (mut low, mut high) = match mode {
            Mode::Threshold => (
                finite().fold(f32::INFINITY, f32::min),
                finite().fold(f32::NEG_INFINITY, f32::max),
            ),
            Mode::Contrast | Mode::TopK => (0.0, 1.0),
        };
        if !low.is_finite() || !high.is_finite() {
            return Histogram::default();
        }
        if high - low < 1e-3 {
            (low, high) = (low - 0.01, high + 0.01);
        }
        let mut bins = vec![0u32; BINS];
        let (mut accepted, mut rejected) = (Vec::new(), Vec::new());
        for (id, score) in ids.iter().zip(scores) {
            if !score.is_finite() {
                continue;
            }
            let at = (((score - low) / (high - low)) * BINS as f32) as usize;
            bins[at.min(BINS - 1)] += 1;
            match decided.get(id) {
                Some(TagSource::Rejected) => rejected.push(*score),
                Some(source) if source.applies() => accepted.push(*score),
                _ => {}
            }
        }
        Histogram {
            low,
            high,
            bins,
            accepted,
            rejected,
        }
    }
}

/// One photo's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetail {
    pub image_id: i64,
    /// Every enabled label, best first, and the labels of the photo's other tags.
    pub scores: Vec<LabelScore>,
    /// The arithmetic its embedding was computed in (`f32`, `bf16`, `f16`), where recorded.
    pub precision: Option<String>,
}

/// One label's score on one photo.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelScore {
    pub label_id: i64,
    pub name: String,
    /// The score under the label's mode (NaN for a disabled label's tag).
    pub score: f32,
    /// Whether automatic tagging gives the label.
    pub passes: bool,
    pub tag: Option<TagSource>,
    /// Why, for labels that tag the photo or that a person decided on.
    pub why: Option<String>,
}

impl Library {
    /// Recomputes every automatic tag of the indexed photos from their stored embeddings and
    /// writes the difference (unless `dry_run`). Missing photos' tags and a person's decisions
    /// are left alone.
    ///
    /// While the library switches models (photos not all embedded by the new one yet) only a
    /// dry run is allowed: the tags follow the new model once, when the switch is done.
    pub fn retag(&mut self, dry_run: bool) -> Result<RetagReport> {
        self.retag_watched(dry_run, &RunControl::default(), &mut |_| {})
    }

    /// [`Library::retag`] with progress and cancel: `progress` hears how many photos are scored
    /// and then how many tags are written, about ten times a second; a cancel through `control`
    /// stops it within one block of photos or of tags, and leaves every tag as it was (the
    /// writes are one transaction, rolled back).
    pub fn retag_watched(
        &mut self,
        dry_run: bool,
        control: &RunControl,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RetagReport> {
        if !dry_run && self.switching()? {
            return Err(Error::invalid(format!(
                "the library is switching to {}: its tags follow the new model when every photo \
                 is embedded by it (run `cliptag index`, or Update library in the app)",
                self.model.name
            )));
        }
        self.retag_from_embeddings(dry_run, control, progress)
    }

    /// [`Library::retag`] without the check, for the run that finishes a switch. Computed
    /// again (a few times at most) where another program changes the vocabulary meanwhile.
    pub(super) fn retag_from_embeddings(
        &mut self,
        dry_run: bool,
        control: &RunControl,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RetagReport> {
        let mut tries = 0;
        loop {
            match self.retag_once(dry_run, control, progress) {
                Err(Error::VocabularyMoved) if tries < 3 => {
                    tries += 1;
                    self.vocabulary_changed();
                }
                result => return result,
            }
        }
    }

    fn retag_once(
        &mut self,
        dry_run: bool,
        control: &RunControl,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<RetagReport> {
        // Read before the embeddings: tags another writer adds after this (new photos indexed
        // beside it) keep the re-tag from vouching for the whole library.
        let writes = self.store.tag_writes()?;
        if self.matrix()?.is_empty() {
            return Ok(RetagReport::default());
        }
        let started = Instant::now();
        // When progress was last reported, and for which stage (a new stage is reported at once).
        let mut last = None::<(Instant, Stage)>;
        let mut watch = |stage: Stage, done: usize, total: usize| {
            if control.is_cancelled() {
                return false;
            }
            let due = last.is_none_or(|(at, was)| was != stage || at.elapsed() >= PROGRESS_EVERY);
            if due || done == total {
                last = Some((Instant::now(), stage));
                progress(Progress {
                    stage,
                    done: done as u64,
                    total: total as u64,
                    rate: done as f64 / started.elapsed().as_secs_f64().max(1e-3),
                });
            }
            true
        };
        let cancelled = || RetagReport {
            cancelled: true,
            ..RetagReport::default()
        };
        self.plan()?;
        let (plan, matrix) = (
            self.scores
                .plan
                .as_ref()
                .expect("prepared above. This is a bug."),
            self.scores
                .matrix
                .as_ref()
                .expect("loaded above. This is a bug."),
        );
        let wanted = match plan.assign_watched(matrix, &mut |done, total| {
            watch(Stage::Scoring, done, total)
        }) {
            Err(Error::Cancelled) => return Ok(cancelled()),
            result => result?,
        };
        let in_scope: HashSet<i64> = matrix.ids().iter().copied().collect();
        let photos = matrix.len() as u64;
        let existing: HashMap<(i64, i64), f32> = self
            .store
            .auto_tags(None)?
            .into_iter()
            .filter(|((image, _), _)| in_scope.contains(image))
            .collect();
        let decided = self.store.decided_pairs()?;
        let names: HashMap<i64, String> = self
            .store
            .labels()?
            .into_iter()
            .map(|l| (l.id, l.name))
            .collect();
        let (mut report, change) = retag_change(&wanted, &existing, &decided, &names);
        report.decided = decided.iter().filter(|(i, _)| in_scope.contains(i)).count() as u64;
        report.photos = photos;
        let basis = Basis::Whole {
            n: self.scores.plan_generation,
            writes,
        };
        if !dry_run && !change.is_empty() {
            let written = self.store.apply_tag_change_watched(
                &change.remove,
                &change.upsert,
                basis,
                &mut |done, total| watch(Stage::WritingTags, done, total),
            );
            match written {
                Err(Error::Cancelled) => return Ok(cancelled()),
                result => result?,
            }
        } else if !dry_run && self.store.read_only().is_none() {
            self.store
                .tags_agree_with(self.scores.plan_generation, writes)?;
        }
        Ok(report)
    }

    /// Re-tags the library for one stored label whose tags depend on no other label (not top-k,
    /// and no enabled top-k label in the vocabulary): scores its column, or reuses it when only
    /// the threshold changed, and writes the difference to that label's automatic tags. The
    /// prepared vocabulary is kept, with this label replaced.
    pub(super) fn retag_label(&mut self, label: &Label) -> Result<RetagReport> {
        if self.matrix()?.is_empty() {
            return Ok(RetagReport::default());
        }
        let prepared = self.prepare(label)?;
        let wanted = if label.enabled {
            self.assigned(label, prepared.clone())?.0
        } else {
            Vec::new()
        };
        let matrix = self
            .scores
            .matrix
            .as_ref()
            .expect("loaded above. This is a bug.");
        let photos = matrix.len() as u64;
        let existing: HashMap<(i64, i64), f32> = self
            .store
            .auto_tags(Some(&[label.id]))?
            .into_iter()
            .filter(|((image, _), _)| matrix.contains(*image))
            .collect();
        let decided: HashSet<(i64, i64)> = self
            .store
            .tags_for_label(label.id)?
            .into_iter()
            .filter(|(_, source)| *source != TagSource::Auto)
            .map(|(image, _)| (image, label.id))
            .collect();
        let names = HashMap::from([(label.id, label.name.clone())]);
        let (mut report, change) = retag_change(&wanted, &existing, &decided, &names);
        report.decided = decided.iter().filter(|(i, _)| matrix.contains(*i)).count() as u64;
        report.photos = photos;
        // This label's tags are its vocabulary's; right after its own edit, the library's tags
        // agree with the edited vocabulary as far as they did with the one before.
        let edit = self.store.take_last_vocabulary_edit();
        let basis = match edit {
            Some((before, after)) => Basis::Edit { before, after },
            None => Basis::Part(self.store.vocabulary_generation()?.0),
        };
        if !change.is_empty() {
            self.store
                .apply_tag_change(&change.remove, &change.upsert, basis)?;
        } else {
            self.store.apply_tag_change(&[], &[], basis)?;
        }
        match (&self.scores.plan, edit) {
            (Some(plan), Some((before, after))) if self.scores.plan_generation == before => {
                self.scores.plan = Some(plan.with_label(prepared));
                self.scores.plan_generation = after;
            }
            (Some(plan), None) => self.scores.plan = Some(plan.with_label(prepared)),
            _ => self.scores.plan = None,
        }
        Ok(report)
    }

    /// `label` with its prompt embeddings, as the tagger takes it.
    pub(super) fn prepare(&mut self, label: &Label) -> Result<PreparedLabel> {
        let templates = self.store.templates()?;
        let texts = TagPlan::texts(std::slice::from_ref(label), &templates);
        let vectors = self.text_embeddings(&texts)?;
        let model = self.model.id()?;
        let plan = TagPlan::new(vec![label.clone()], &templates, &vectors, 1.0, &model)?;
        Ok(plan
            .labels
            .into_iter()
            .next()
            .expect("one label in, one prepared. This is a bug."))
    }

    /// The automatic tags `label` (edited, not stored) would get, and every photo's score under
    /// it (in the matrix's row order). Threshold and contrast labels need only their own column
    /// of scores (kept while the prompts stay the same; moving the threshold only settles the
    /// photos near it exactly); a top-k label ranks against the whole vocabulary.
    /// `prepared` is `label` with its prompt embeddings ([`Library::prepare`]).
    fn assigned(
        &mut self,
        label: &Label,
        prepared: PreparedLabel,
    ) -> Result<(Vec<Assignment>, Vec<f32>)> {
        if label.mode == Mode::TopK {
            let plan = self.plan()?.with_label(prepared);
            let (column, tags) = plan.column_and_tags(self.matrix()?, label.id)?;
            return Ok((tags, column));
        }
        let logits = Logits {
            scale: self.store.logit_scale()?,
            bias: self.store.logit_bias()?,
        };
        let same_column = |cached: &Label| {
            cached.prompts == label.prompts
                && cached.negative == label.negative
                && cached.mode == label.mode
                && cached.name == label.name
                && cached.learned == label.learned
        };
        // First the embeddings: reading them again (they changed) forgets the kept columns.
        self.matrix()?;
        let matrix = self
            .scores
            .matrix
            .as_ref()
            .expect("loaded above. This is a bug.");
        if !self
            .scores
            .columns
            .get(&label.id)
            .is_some_and(|(cached, _)| same_column(cached))
        {
            let column = LabelColumn::new(matrix, &prepared, logits)?;
            self.scores
                .columns
                .insert(label.id, (label.clone(), column));
        }
        let (_, column) = self
            .scores
            .columns
            .get_mut(&label.id)
            .expect("kept above. This is a bug.");
        let assigned = column.assign(matrix, &prepared)?;
        Ok((assigned, column.scores.clone()))
    }

    /// What `label` (an edited copy of a stored label, or a new one with id 0) would tag.
    pub fn preview(&mut self, label: &Label) -> Result<Preview> {
        let mut checked = label.clone();
        checked.validate()?;
        let (would, column) = if checked.enabled {
            let prepared = self.prepare(&checked)?;
            let (tags, column) = self.assigned(&checked, prepared)?;
            (tags.into_iter().map(|a| a.image_id).collect(), column)
        } else {
            (HashSet::new(), Vec::new())
        };
        let current: HashSet<i64> = self
            .store
            .auto_tags(Some(&[label.id]))?
            .into_keys()
            .map(|(image, _)| image)
            .collect();
        let mut decided = HashMap::new();
        let mut applied_by_person = 0;
        for (image, source) in self.store.tags_for_label(label.id)? {
            if source.is_personal() {
                decided.insert(image, source);
                applied_by_person += usize::from(source.applies());
            }
        }
        let would_auto: HashSet<i64> = would
            .iter()
            .filter(|id| !decided.contains_key(id))
            .copied()
            .collect();
        let mut would_add: Vec<i64> = would_auto.difference(&current).copied().collect();
        let mut would_remove: Vec<i64> = current.difference(&would_auto).copied().collect();
        would_add.sort_unstable();
        would_remove.sort_unstable();
        let histogram = Histogram::of(self.matrix()?.ids(), &column, &decided, checked.mode);
        Ok(Preview {
            count: would_auto.len() + applied_by_person,
            added: would_add.len(),
            removed: would_remove.len(),
            would_add,
            would_remove,
            histogram,
            label: checked,
        })
    }

    /// Every label's score on one photo, with the tags it has.
    pub fn detail(&mut self, image_id: i64) -> Result<ImageDetail> {
        let image = self
            .store
            .image(image_id)?
            .ok_or_else(|| Error::invalid(format!("no photo with id {image_id}")))?;
        let tags: HashMap<i64, TagSource> = self
            .store
            .tags_of(image_id)?
            .into_iter()
            .map(|t| (t.label_id, t.source))
            .collect();
        let mut scores = Vec::new();
        let vector = match image.status {
            ImageStatus::Ok => self.matrix()?.vector(image_id)?,
            _ => None,
        };
        if let Some(vector) = vector {
            let single = EmbeddingMatrix::from_rows(vec![(image_id, vector)])?;
            let plan = self.plan()?;
            let all = plan.scores(&single)?;
            let assigned: HashSet<i64> = plan
                .assign(&single)?
                .into_iter()
                .map(|a| a.label_id)
                .collect();
            for (prepared, score) in plan.labels.iter().zip(all) {
                scores.push(LabelScore {
                    label_id: prepared.label.id,
                    name: prepared.label.name.clone(),
                    score,
                    passes: assigned.contains(&prepared.label.id),
                    tag: tags.get(&prepared.label.id).copied(),
                    why: None,
                });
            }
        }
        // Tags of labels that are disabled (or of a photo without an embedding) still show.
        for (label_id, source) in &tags {
            if !scores.iter().any(|s| s.label_id == *label_id)
                && let Some(label) = self.store.label(*label_id)?
            {
                scores.push(LabelScore {
                    label_id: *label_id,
                    name: label.name,
                    score: f32::NAN,
                    passes: false,
                    tag: Some(*source),
                    why: None,
                });
            }
        }
        for score in scores.iter_mut().filter(|s| s.passes || s.tag.is_some()) {
            score.why = self
                .explain(image_id, score.label_id)?
                .map(|e| e.to_string());
        }
        scores.sort_by(|a, b| b.score.total_cmp(&a.score));
        let precision = match self.store.setting(super::MODEL_ID)? {
            Some(model) => self.store.embedding_precision(image_id, &model)?,
            None => None,
        };
        Ok(ImageDetail {
            image_id,
            scores,
            precision,
        })
    }
}
