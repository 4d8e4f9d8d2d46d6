//! Editing the vocabulary: every edit is stored durably, then the library's automatic tags follow
//! it from stored embeddings (the image encoder never runs; the text encoder only for new prompts).

use std::path::Path;

use super::{Library, Progress, Retag, RunControl, Stage};
use crate::domain::{Label, Learned, Mode};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::tagging::vocabulary_file::{self, DEFAULT_VOCABULARY};

/// The largest vocabulary file read: far above any real vocabulary, far below a mistaken one.
const MAX_VOCABULARY_BYTES: u64 = 16 << 20;
/// The most labels a library keeps: each is embedded, scored on every photo and drawn in the
/// sidebar; a vocabulary file of a million labels is a mistake, not a vocabulary.
const MAX_LABELS: usize = 20_000;
/// Prompts embedded between two looks at the cancel switch.
const PROMPTS_AT_ONCE: usize = 64;

/// A change to every label of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupEdit {
    /// Use the group's labels for tagging, or not.
    Enable(bool),
    /// Rename the group, or move it under another (`Pets` → `Animals/Pets`).
    Rename(String),
}

/// Whether the label called `name` belongs to `group`: it is the group's own label or lies
/// under it.
pub fn in_group(name: &str, group: &str) -> bool {
    name.len() >= group.len()
        && name.is_char_boundary(group.len())
        && name[..group.len()].eq_ignore_ascii_case(group)
        && (name.len() == group.len() || name.as_bytes()[group.len()] == b'/')
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
    /// Threshold labels whose thresholds the file set for the other kind of score (cosine or
    /// probability), so they start at this library's default instead.
    pub thresholds_reset: usize,
}

impl ImportSummary {
    /// What the import did to thresholds, for people; `None` when it kept them all.
    pub fn thresholds_note(&self) -> Option<String> {
        (self.thresholds_reset > 0).then(|| {
            format!(
                "{} thresholds were set for the other kind of score (cosine or probability) and \
                 start at this library's default",
                self.thresholds_reset
            )
        })
    }
}

/// Gives a library that never had a vocabulary the default one (once: a person who deletes every
/// label is not given them back).
pub(super) fn seed_default(store: &mut Store) -> Result<()> {
    if store.setting("vocabulary_seeded")?.is_some() {
        return Ok(());
    }
    if store.labels()?.is_empty() {
        let vocabulary = vocabulary_file::parse(DEFAULT_VOCABULARY, "the default vocabulary", "")?;
        store.import_vocabulary(vocabulary.templates.as_deref(), &vocabulary.labels)?;
    }
    store.set_setting("vocabulary_seeded", "1")
}

impl Library {
    /// The whole vocabulary, ordered by name.
    pub fn labels(&self) -> Result<Vec<Label>> {
        self.store.labels()
    }

    /// The label called `name` (exactly, or else ignoring case).
    pub fn label_named(&self, name: &str) -> Result<Label> {
        let (id, _) = self.label_id_named(name)?;
        self.store
            .label(id)?
            .ok_or_else(|| Error::invalid(format!("no label {name:?} in the vocabulary")))
    }

    fn label_id_named(&self, name: &str) -> Result<(i64, String)> {
        self.store.label_id_by_name(name)?.ok_or_else(|| {
            Error::invalid(format!(
                "no label {name:?} in the vocabulary (cliptag vocab list shows them)"
            ))
        })
    }

    /// Embeds the prompts of every enabled label that are not cached yet (a new library's
    /// vocabulary, before its first photos); returns how many labels are ready.
    pub fn prepare_vocabulary(&mut self) -> Result<usize> {
        Ok(self.plan()?.labels.len())
    }

    /// The library's prompt templates.
    pub fn templates(&self) -> Result<Vec<String>> {
        self.store.templates()
    }

    /// Replaces the prompt templates (`a photo of a {}.`) of every label without prompts of
    /// its own, and re-tags. Empty lines are dropped; at least one template is needed.
    pub fn set_templates(&mut self, templates: &[String]) -> Result<(Vec<String>, Retag)> {
        let templates: Vec<String> = templates
            .iter()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect();
        if templates.is_empty() {
            return Err(Error::invalid(
                "at least one prompt template is needed, such as \"a photo of a {}.\"",
            ));
        }
        self.store.set_templates(&templates)?;
        Ok((templates, self.after_vocabulary_edit()))
    }

    /// A checked label whose name no other label has (ignoring case).
    fn checked(&self, mut label: Label) -> Result<Label> {
        label.validate()?;
        if let Some((id, name)) = self.store.label_id_by_name(&label.name)?
            && id != label.id
        {
            return Err(Error::invalid(format!(
                "the vocabulary already has a label {name:?}"
            )));
        }
        Ok(label)
    }

    /// Adds a label and tags the library with it; returns it with its id. One step of the
    /// library's history, as every label edit below: undo takes it back.
    pub fn add_label(&mut self, label: Label) -> Result<(Label, Retag)> {
        let mut label = self.checked(Label { id: 0, ..label })?;
        if self.store.labels()?.len() >= MAX_LABELS {
            return Err(Error::invalid(format!(
                "the vocabulary already holds {MAX_LABELS} labels, the most a library keeps"
            )));
        }
        label.id = self.store.insert_label_recorded(&label)?;
        let retag = self.after_label_edit(&label);
        Ok((label, retag))
    }

    /// Replaces a stored label (rename, prompts, mode, threshold, enabled) and re-tags.
    pub fn update_label(&mut self, label: Label) -> Result<(Label, Retag)> {
        let label = self.checked(label)?;
        if self
            .store
            .update_labels_recorded(std::slice::from_ref(&label))?
            == 0
        {
            return Err(Error::invalid(format!("no label with id {}", label.id)));
        }
        let retag = self.after_label_edit(&label);
        Ok((label, retag))
    }

    /// Changes every label of a group (`Animals` holds `Animals`, `Animals/Cat`,
    /// `Animals/Pets/Dog`…) at once, in one transaction and one re-tag; returns how many labels
    /// it changed. Labels keep their ids, so a renamed or moved group keeps every decision and
    /// what its labels learned.
    pub fn edit_group(&mut self, group: &str, edit: &GroupEdit) -> Result<(usize, Retag)> {
        let group = group.trim().trim_matches('/');
        let labels = self.store.labels()?;
        let members: Vec<&Label> = labels.iter().filter(|l| in_group(&l.name, group)).collect();
        if group.is_empty() || members.is_empty() {
            return Err(Error::invalid(format!(
                "no label in the group {group:?} (cliptag vocab list shows them)"
            )));
        }
        let changed: Vec<Label> = match edit {
            GroupEdit::Enable(enabled) => members
                .iter()
                .filter(|l| l.enabled != *enabled)
                .map(|l| Label {
                    enabled: *enabled,
                    ..(*l).clone()
                })
                .collect(),
            GroupEdit::Rename(to) => {
                let to = to.trim().trim_matches('/');
                if to.is_empty() {
                    return Err(Error::invalid("a group needs a name"));
                }
                let mut renamed: Vec<Label> = members
                    .iter()
                    .map(|l| Label {
                        name: format!("{to}{}", &l.name[group.len()..]),
                        ..(*l).clone()
                    })
                    .collect();
                // The new names must be free: not taken by a label outside the group, nor
                // two of them the same (ignoring case, as every label name).
                let mut taken: std::collections::HashSet<String> = labels
                    .iter()
                    .filter(|l| !in_group(&l.name, group))
                    .map(|l| l.name.to_lowercase())
                    .collect();
                for label in &mut renamed {
                    label.validate()?;
                    if !taken.insert(label.name.to_lowercase()) {
                        return Err(Error::invalid(format!(
                            "the vocabulary already has a label {:?}",
                            label.name
                        )));
                    }
                }
                renamed
            }
        };
        if changed.is_empty() {
            return Ok((0, Retag::Done(Default::default())));
        }
        self.store.update_labels_recorded(&changed)?;
        Ok((changed.len(), self.after_vocabulary_edit()))
    }

    /// Removes a label and every tag it gave, a person's decisions included; returns its name
    /// and how many of the person's decisions went with it.
    pub fn remove_label(&mut self, label_id: i64) -> Result<(String, usize, Retag)> {
        let name = self
            .store
            .label(label_id)
            .ok()
            .flatten()
            .map_or_else(|| format!("#{label_id}"), |l| l.name);
        let decisions = self.store.decisions_on_label(label_id)?;
        if !self.store.remove_label(label_id)? {
            return Err(Error::invalid(format!("no label with id {label_id}")));
        }
        Ok((name, decisions, self.after_vocabulary_edit()))
    }

    /// Removes the label called `name` (found even when its stored row is damaged).
    pub fn remove_label_named(&mut self, name: &str) -> Result<(String, usize, Retag)> {
        let (id, name) = self.label_id_named(name)?;
        let decisions = self.store.decisions_on_label(id)?;
        self.store.remove_label(id)?;
        Ok((name, decisions, self.after_vocabulary_edit()))
    }

    /// Merges a vocabulary file (TOML) into the library, all or nothing: labels with a known
    /// name are replaced, the others added.
    pub fn import_vocabulary(&mut self, path: &Path) -> Result<(ImportSummary, Retag)> {
        self.import_vocabulary_watched(path, &RunControl::default(), &mut |_| {})
    }

    /// [`Library::import_vocabulary`] that embeds the file's prompts before it commits, saying
    /// how far it got (`progress`, about ten times a second) and stopping at a cancel through
    /// `control`: until the prompts are embedded nothing of the file is stored, so a cancel, a
    /// failure or a kill leaves the vocabulary as it was (only the prompts' embeddings stay
    /// cached). Where the model cannot be loaded, the labels are stored and their tags follow
    /// once it can.
    pub fn import_vocabulary_watched(
        &mut self,
        path: &Path,
        control: &RunControl,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(ImportSummary, Retag)> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if !meta.is_file() {
            return Err(Error::invalid(format!(
                "{} is not a vocabulary file (not a regular file)",
                path.display()
            )));
        }
        if meta.len() > MAX_VOCABULARY_BYTES {
            return Err(Error::invalid(format!(
                "{} is {} MB: a vocabulary file is at most {} MB",
                path.display(),
                meta.len() >> 20,
                MAX_VOCABULARY_BYTES >> 20
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut vocabulary =
            vocabulary_file::parse(&text, &path.display().to_string(), self.model_name())?;
        // The file's own learning was fitted with the label's threshold in the file.
        for label in &mut vocabulary.labels {
            if let Some(learned) = &mut label.learned {
                learned.threshold.get_or_insert(label.threshold);
            }
        }
        let kind = vocabulary_file::ScoreKind::of(self.probability_scores()?);
        let thresholds_reset = vocabulary.fit_thresholds(kind);
        // What a label learned under the model the library scores with goes in its slot, with
        // the threshold it learned; what it learned under others is kept for them.
        let current = self.store.thresholds_model()?;
        for label in &mut vocabulary.labels {
            let mut all: Vec<Learned> = label.learned.take().into_iter().collect();
            all.append(&mut label.learned_elsewhere);
            let slot = all.iter().position(|l| Some(&l.model) == current.as_ref());
            label.learned = slot.map(|at| all.remove(at));
            if let Some(learned) = &mut label.learned
                && let Some(threshold) = learned.threshold.take()
            {
                label.threshold = threshold;
            }
            label.learned_elsewhere = all;
        }
        let known = self.store.labels()?.len();
        if known + vocabulary.labels.len() > MAX_LABELS {
            return Err(Error::invalid(format!(
                "{} holds {} labels; with the library's {known} that is more than the {MAX_LABELS} \
                 a library keeps (nothing was imported)",
                path.display(),
                vocabulary.labels.len()
            )));
        }
        self.embed_prompts_first(&vocabulary, control, progress)?;
        let (added, updated) = self
            .store
            .import_vocabulary(vocabulary.templates.as_deref(), &vocabulary.labels)?;
        Ok((
            ImportSummary {
                added,
                updated,
                thresholds_reset,
            },
            self.after_vocabulary_edit(),
        ))
    }

    /// Embeds the prompts an imported vocabulary's labels will use (those not embedded yet), a
    /// block at a time, reporting progress and stopping at a cancel.
    fn embed_prompts_first(
        &mut self,
        vocabulary: &vocabulary_file::Vocabulary,
        control: &RunControl,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<()> {
        let templates = match &vocabulary.templates {
            Some(templates) => templates.clone(),
            None => self.store.templates()?,
        };
        let enabled: Vec<Label> = vocabulary
            .labels
            .iter()
            .filter(|l| l.enabled)
            .cloned()
            .collect();
        let texts = crate::tagging::TagPlan::texts(&enabled, &templates);
        let Ok(model) = self.model.id() else {
            return Ok(());
        };
        let cached = self
            .store
            .cached_text_embeddings(&self.prompt_cache_key(&model), &texts)?;
        let missing: Vec<String> = texts
            .into_iter()
            .zip(cached)
            .filter(|(_, vector)| vector.is_none())
            .map(|(text, _)| text)
            .collect();
        let started = std::time::Instant::now();
        let total = missing.len() as u64;
        for (done, block) in missing.chunks(PROMPTS_AT_ONCE).enumerate() {
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let done = (done * PROMPTS_AT_ONCE) as u64;
            progress(Progress {
                stage: Stage::EmbeddingPrompts,
                done,
                total,
                rate: done as f64 / started.elapsed().as_secs_f64().max(1e-9),
            });
            if self.text_embeddings(block).is_err() {
                // No model now: the labels are stored, their tags follow when it can be had.
                return Ok(());
            }
        }
        Ok(())
    }

    /// Writes the vocabulary to a file (TOML) atomically; returns how many labels it holds.
    pub fn export_vocabulary(&self, path: &Path) -> Result<usize> {
        let labels = self.store.labels()?;
        let thresholds_for = vocabulary_file::ThresholdsFor {
            model: self.model.source.to_string(),
            scores: vocabulary_file::ScoreKind::of(self.probability_scores()?),
        };
        let text = vocabulary_file::render(&self.store.templates()?, &thresholds_for, &labels)?;
        self.export_target(path)?.write(text.as_bytes())?;
        Ok(labels.len())
    }

    /// Brings automatic tags up to date after `label` was added or changed (and stored). When
    /// no enabled label ranks against the vocabulary (top-k), no other label's tags can change:
    /// only this label's column is scored (or reused, when its prompts stayed the same) and only
    /// its tags are compared and written. Otherwise the whole library is re-tagged.
    pub(super) fn after_label_edit(&mut self, label: &Label) -> Retag {
        let local = match self.store.labels() {
            Ok(labels) => !labels.iter().any(|l| l.enabled && l.mode == Mode::TopK),
            Err(_) => false,
        };
        if !local || self.switching().unwrap_or(true) {
            return self.after_vocabulary_edit();
        }
        match self.retag_label(label) {
            Ok(report) if report.photos == 0 => Retag::NothingIndexed,
            Ok(report) => Retag::Done(report),
            Err(error) => {
                self.vocabulary_changed();
                Retag::Failed(error.to_string())
            }
        }
    }

    /// Brings automatic tags up to date after a vocabulary edit.
    pub(super) fn after_vocabulary_edit(&mut self) -> Retag {
        self.vocabulary_changed();
        if self.switching().unwrap_or(false) {
            return Retag::AfterSwitch;
        }
        match self.retag(false) {
            Ok(report) if report.photos == 0 => Retag::NothingIndexed,
            Ok(report) => Retag::Done(report),
            Err(error) => Retag::Failed(error.to_string()),
        }
    }
}
