//! Labels that learn from a person's decisions: explicit (a person asks, and sees what changes),
//! from stored embeddings only, stored with the label so that re-indexing and re-tagging keep it,
//! and undone exactly by a reset.

use std::collections::HashSet;

use super::{Library, Retag};
use crate::domain::{Label, Learned, Mode, TagSource};
use crate::error::{Error, Result};
use crate::tagging::Logits;
use crate::tagging::learn::{self, Agreement};

/// What learning did (or, in a dry run, would do) to a label.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnReport {
    /// The label as learned.
    pub label: Label,
    pub threshold_before: f32,
    /// Accepted (and added) and rejected photos it learned from.
    pub positives: usize,
    pub negatives: usize,
    /// How well the label agreed with the decisions before learning, and how well the learned
    /// label does when each decision is predicted from the others.
    pub agreement_before: Agreement,
    pub agreement_after: Agreement,
    /// Automatic tags it adds and removes.
    pub added: usize,
    pub removed: usize,
    /// How the library's tags followed (`None` in a dry run).
    pub retag: Option<Retag>,
}

/// The embeddings of a label's accepted (and added) photos, and of its rejected ones.
struct Examples {
    positives: Vec<Vec<f32>>,
    negatives: Vec<Vec<f32>>,
}

impl Library {
    /// The embeddings of the photos a person decided on for `label`: accepted and added ones,
    /// then rejected ones. Photos not on disk (or not embedded) do not count.
    fn decided_examples(&mut self, label: &Label) -> Result<Examples> {
        let decisions = self.store.tags_for_label(label.id)?;
        if !decisions.iter().any(|(_, source)| source.is_personal()) {
            return Err(Error::invalid(format!(
                "{:?} has no decisions to learn from: accept or reject some of its photos first",
                label.name
            )));
        }
        let matrix = self.matrix()?;
        let (mut positives, mut negatives) = (Vec::new(), Vec::new());
        for (image, source) in decisions {
            let Some(vector) = matrix.vector(image)? else {
                continue;
            };
            match source {
                TagSource::Accepted | TagSource::Manual => positives.push(vector),
                TagSource::Rejected => negatives.push(vector),
                TagSource::Auto => {}
            }
        }
        if positives.is_empty() && negatives.is_empty() {
            return Err(Error::invalid(format!(
                "{:?}'s decisions are all on photos that are missing or not indexed: nothing to \
                 learn from",
                label.name
            )));
        }
        Ok(Examples {
            positives,
            negatives,
        })
    }

    /// Learns the label called `name` from the person's accepts and rejects: its direction moves
    /// toward the accepted photos and away from the rejected ones, and its threshold is re-fitted
    /// to them. Applies it (and re-tags) unless `dry_run`. Decisions are never changed.
    pub fn learn(&mut self, name: &str, dry_run: bool) -> Result<LearnReport> {
        let stored = self.label_named(name)?;
        if stored.mode != Mode::Threshold {
            return Err(Error::invalid(format!(
                "{:?} is a {} label; learning fits a cosine direction and threshold, so switch it \
                 to threshold mode first",
                stored.name,
                stored.mode.as_str()
            )));
        }
        let Examples {
            positives,
            negatives,
        } = self.decided_examples(&stored)?;
        // Learning starts again from the prompts each time, so it never feeds on itself.
        let zero_shot_threshold = stored
            .learned
            .as_ref()
            .map_or(stored.threshold, |l| l.zero_shot_threshold);
        let zero_shot = Label {
            learned: None,
            threshold: zero_shot_threshold,
            ..stored.clone()
        };
        let prompt = self.prepare(&zero_shot)?.positive;
        let pos: Vec<&[f32]> = positives.iter().map(Vec::as_slice).collect();
        let neg: Vec<&[f32]> = negatives.iter().map(Vec::as_slice).collect();
        let current = self.prepare(&stored)?.positive;
        // Learning fits a cosine; a sigmoid-trained model's thresholds are probabilities, a
        // monotonic function of the cosine, so they convert both ways exactly.
        let logits = Logits {
            scale: self.store.logit_scale()?,
            bias: self.store.logit_bias()?,
        };
        let agreement_before =
            learn::agreement(&current, &pos, &neg, logits.cosine_of(stored.threshold));
        let fit = learn::learn(&prompt, &pos, &neg, logits.cosine_of(zero_shot_threshold));
        let label = Label {
            threshold: logits.score_of(fit.threshold),
            learned: Some(Learned {
                model: self.model.id()?,
                direction: fit.direction,
                zero_shot_threshold,
                positives: positives.len() as u32,
                negatives: negatives.len() as u32,
                threshold: None,
            }),
            ..stored.clone()
        };
        let preview = self.preview(&label)?;
        let mut report = LearnReport {
            threshold_before: stored.threshold,
            positives: positives.len(),
            negatives: negatives.len(),
            agreement_before,
            agreement_after: fit.agreement,
            added: preview.added,
            removed: preview.removed,
            retag: None,
            label: label.clone(),
        };
        if !dry_run {
            let (label, retag) = self.update_label(label)?;
            report.label = label;
            report.retag = Some(retag);
        }
        Ok(report)
    }

    /// Forgets what the label called `name` learned: its prompts and its threshold before
    /// learning come back, exactly.
    pub fn reset_learning(&mut self, name: &str) -> Result<(Label, Retag)> {
        let stored = self.label_named(name)?;
        let Some(learned) = stored.learned.clone() else {
            return Err(Error::invalid(format!(
                "{:?} has learned nothing to reset",
                stored.name
            )));
        };
        self.update_label(Label {
            threshold: learned.zero_shot_threshold,
            learned: None,
            ..stored
        })
    }

    /// A new label learned from example photos alone (their ids): it tags photos like them.
    /// The examples are recorded as accepted, so learning again later starts from them.
    pub fn add_label_from_examples(
        &mut self,
        label: Label,
        examples: &[i64],
    ) -> Result<(Label, Retag)> {
        let matrix = self.matrix()?;
        let mut vectors = Vec::new();
        for id in examples {
            if let Some(vector) = matrix.vector(*id)? {
                vectors.push(vector);
            }
        }
        if vectors.is_empty() {
            return Err(Error::invalid(format!(
                "none of the {} example photos for {:?} is indexed",
                examples.len(),
                label.name
            )));
        }
        let (label, added) = self.add_label(label)?;
        let unique: HashSet<i64> = examples.iter().copied().collect();
        for image in &unique {
            if self.matrix()?.contains(*image) {
                self.store
                    .set_decision(*image, label.id, Some(TagSource::Manual))?;
            }
        }
        let report = self.learn(&label.name, false)?;
        // What adding the label and learning it did together: the tags the new label has.
        let retag = match (added, report.retag.unwrap_or(Retag::NothingIndexed)) {
            (Retag::Done(first), Retag::Done(second)) => Retag::Done(first.then(&second)),
            (_, learned) => learned,
        };
        Ok((report.label, retag))
    }
}
