//! Tags that explain themselves: for a photo and a label, the score and what it was measured
//! against, the margin, the label that came next, the prompt that matched best, and whether
//! learning made the difference.

use std::fmt;

use super::Library;
use crate::domain::{Mode, TagSource};
use crate::error::{Error, Result};
use crate::tagging::{EmbeddingMatrix, TagPlan};

/// Why a photo has (or has not) a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Explanation {
    pub label: String,
    pub mode: Mode,
    /// Whether a threshold label's score is its own probability (a sigmoid-trained model,
    /// SigLIP) rather than a cosine.
    pub probability: bool,
    /// The score under the label's mode (cosine, or a probability).
    pub score: f32,
    pub threshold: f32,
    /// For top-k labels: k, and where the label ranks on this photo.
    pub top_k: Option<TopKRank>,
    /// Whether automatic tagging gives the label.
    pub passes: bool,
    /// The best-scoring other label of the same mode on this photo, with its score.
    pub runner_up: Option<(String, f32)>,
    /// The label's prompt closest to the photo, with its cosine.
    pub best_prompt: Option<(String, f32)>,
    /// When the label learned from decisions: whether its prompts alone would give it.
    pub zero_shot_passes: Option<bool>,
    /// A person's decision on the pair, if any.
    pub decision: Option<TagSource>,
}

/// Where a top-k label ranks on a photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopKRank {
    /// How many best labels it tags.
    pub k: u32,
    /// Its rank among every enabled label by cosine (1 = best).
    pub rank: usize,
    /// How many labels are enabled.
    pub of: usize,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.mode {
            Mode::Threshold if self.probability => "probability",
            Mode::Threshold => "cosine",
            Mode::Contrast => "probability against its negative prompt",
            Mode::TopK => "probability among the vocabulary",
        };
        let compare = if self.score >= self.threshold {
            "≥"
        } else {
            "<"
        };
        write!(
            f,
            "{what} {:.3} {compare} threshold {:.3} (margin {:+.3})",
            self.score,
            self.threshold,
            self.score - self.threshold
        )?;
        if let Some(TopKRank { k, rank, of }) = self.top_k {
            let verdict = if rank <= k as usize {
                "within"
            } else {
                "outside"
            };
            write!(
                f,
                ", rank {rank} of {of} enabled labels by cosine ({verdict} the best {k})"
            )?;
        }
        if let Some((prompt, cosine)) = &self.best_prompt {
            write!(f, "; best prompt {prompt:?} ({cosine:.3})")?;
        }
        if let Some((label, score)) = &self.runner_up {
            write!(f, "; runner-up {label} ({score:.3})")?;
        }
        match self.zero_shot_passes {
            Some(true) => write!(
                f,
                "; learned from decisions (the prompts alone give it too)"
            )?,
            Some(false) => write!(
                f,
                "; learned from decisions (the prompts alone would not give it)"
            )?,
            None => {}
        }
        match self.decision {
            Some(TagSource::Accepted) => write!(f, "; accepted by you"),
            Some(TagSource::Manual) => write!(f, "; added by you"),
            Some(TagSource::Rejected) => write!(f, "; rejected by you"),
            _ => Ok(()),
        }
    }
}

impl Library {
    /// Why photo `image_id` has (or has not) label `label_id`. `None` when the photo has no
    /// embedding or the label is disabled.
    pub fn explain(&mut self, image_id: i64, label_id: i64) -> Result<Option<Explanation>> {
        let label = self
            .store
            .label(label_id)?
            .ok_or_else(|| Error::invalid(format!("no label with id {label_id}")))?;
        let Some(vector) = self.matrix()?.vector(image_id)? else {
            return Ok(None);
        };
        let single = EmbeddingMatrix::from_rows(vec![(image_id, vector.clone())])?;
        let plan = self.plan()?.clone();
        let Some(index) = plan.labels.iter().position(|l| l.label.id == label_id) else {
            return Ok(None);
        };
        let block = plan.score_block(&single)?;
        let scores = &block.scores;
        let assigned: Vec<i64> = plan
            .assign(&single)?
            .into_iter()
            .map(|a| a.label_id)
            .collect();
        let score = scores[index];
        let mode = label.mode;
        // A top-k label ranks among every enabled label (by cosine); the others among the labels
        // of their own mode, whose scores compare.
        let rank = match block.ranks.get(index) {
            Some(&rank) if rank != u32::MAX => rank as usize + 1,
            _ => {
                1 + plan
                    .labels
                    .iter()
                    .zip(scores)
                    .filter(|(l, s)| l.label.mode == mode && **s > score)
                    .count()
            }
        };
        let runner_up = plan
            .labels
            .iter()
            .zip(scores)
            .filter(|(l, _)| l.label.id != label_id && l.label.mode == mode)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(l, s)| (l.label.name.clone(), *s));
        let templates = self.store.templates()?;
        let prompts = label.prompts(&templates);
        let vectors = self.text_embeddings(&prompts)?;
        let cosine = |a: &[f32]| a.iter().zip(&vector).map(|(x, y)| x * y).sum::<f32>();
        let best_prompt = prompts
            .iter()
            .filter_map(|p| vectors.get(p).map(|v| (p.clone(), cosine(v))))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let prepared = &plan.labels[index];
        let zero_shot_passes = if prepared.learned {
            let zero_shot = crate::domain::Label {
                learned: None,
                threshold: label
                    .learned
                    .as_ref()
                    .map_or(label.threshold, |l| l.zero_shot_threshold),
                ..label.clone()
            };
            let model = self.model.id()?;
            let texts = TagPlan::texts(std::slice::from_ref(&zero_shot), &templates);
            let vectors = self.text_embeddings(&texts)?;
            let alone = TagPlan::new(vec![zero_shot], &templates, &vectors, plan.logits(), &model)?;
            Some(!alone.assign(&single)?.is_empty())
        } else {
            None
        };
        Ok(Some(Explanation {
            label: label.name.clone(),
            mode,
            probability: plan.logit_bias.is_some(),
            score,
            threshold: label.threshold,
            top_k: (mode == Mode::TopK).then_some(TopKRank {
                k: label.top_k,
                rank,
                of: plan.labels.iter().filter(|l| l.label.enabled).count(),
            }),
            passes: assigned.contains(&label_id),
            runner_up,
            best_prompt,
            zero_shot_passes,
            decision: self
                .store
                .tag(image_id, label_id)?
                .map(|t| t.0)
                .filter(|s| s.is_personal()),
        }))
    }
}
