//! The tagger, pure: vectors and label definitions in, scores and tags out. It knows no SQL and
//! no files; the library core feeds it stored embeddings and cached prompt embeddings, so editing
//! the vocabulary never runs the image encoder.

pub mod diff;
pub mod duplicates;
mod kernels;
pub mod learn;
pub mod matrix;
pub mod scoring;
pub mod search;
pub mod vocabulary_file;

use std::collections::HashMap;

use crate::domain::Label;
use crate::error::{Error, Result};
pub use diff::{RetagReport, TagChange, retag_change};
pub use scoring::{Assignment, EmbeddingMatrix, LabelColumn, Logits, PreparedLabel};

/// Everything needed to turn image embeddings into automatic tags.
#[derive(Debug, Clone)]
pub struct TagPlan {
    /// Enabled labels with their embeddings.
    pub labels: Vec<PreparedLabel>,
    pub logit_scale: f32,
    /// The model's logit bias (SigLIP); `None` for CLIP.
    pub logit_bias: Option<f32>,
}

impl TagPlan {
    /// Every text `labels` need embedded (their prompts and negative prompts), sorted, once each.
    pub fn texts(labels: &[Label], templates: &[String]) -> Vec<String> {
        let mut texts: Vec<String> = labels.iter().flat_map(|l| l.prompts(templates)).collect();
        texts.extend(labels.iter().filter_map(|l| l.negative.clone()));
        texts.sort();
        texts.dedup();
        texts
    }

    /// The plan for `labels` under `model`, given the embedding of every text
    /// [`TagPlan::texts`] named. A label that learned from decisions in `model`'s space is scored
    /// against its learned direction; the others against the mean of their prompts.
    pub fn new(
        labels: Vec<Label>,
        templates: &[String],
        texts: &HashMap<String, Vec<f32>>,
        logits: impl Into<Logits>,
        model: &str,
    ) -> Result<Self> {
        let logits = logits.into();
        let embedding = |text: &str| {
            texts
                .get(text)
                .cloned()
                .ok_or_else(|| Error::invalid(format!("no embedding for the prompt {text:?}")))
        };
        let labels = labels
            .into_iter()
            .map(|label| {
                let positive = label
                    .prompts(templates)
                    .iter()
                    .map(|p| embedding(p))
                    .collect::<Result<Vec<_>>>()?;
                let negative = label.negative.as_deref().map(embedding).transpose()?;
                let zero_shot = scoring::mean_direction(&positive);
                let learned = label
                    .learned_for(model)
                    .map(|l| l.direction.clone())
                    .filter(|d| d.len() == zero_shot.len());
                Ok(PreparedLabel {
                    learned: learned.is_some(),
                    positive: learned.unwrap_or(zero_shot),
                    negative,
                    label,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TagPlan {
            labels,
            logit_scale: logits.scale,
            logit_bias: logits.bias,
        })
    }

    /// The plan with `label` in place of the stored label of the same id (or added to it): what
    /// tagging would do if the person applied an edit.
    pub fn with_label(&self, label: PreparedLabel) -> Self {
        let mut labels: Vec<PreparedLabel> = self
            .labels
            .iter()
            .filter(|l| l.label.id != label.label.id)
            .cloned()
            .collect();
        if label.label.enabled {
            labels.push(label);
        }
        TagPlan {
            labels,
            logit_scale: self.logit_scale,
            logit_bias: self.logit_bias,
        }
    }

    /// How this plan turns cosines into logits.
    pub fn logits(&self) -> Logits {
        Logits {
            scale: self.logit_scale,
            bias: self.logit_bias,
        }
    }

    /// Whether any label's tags depend on the other labels (top-k ranks the whole vocabulary).
    pub fn has_topk(&self) -> bool {
        self.labels
            .iter()
            .any(|l| l.label.mode == crate::domain::Mode::TopK)
    }

    /// The automatic tags of `images` under this plan, scored from their exact rows a block at
    /// a time (memory stays at one block's scores, whatever the library's size).
    pub fn assign(&self, images: &EmbeddingMatrix) -> Result<Vec<Assignment>> {
        self.assign_watched(images, &mut |_, _| true)
    }

    /// [`TagPlan::assign`], calling `each(photos scored, photos)` after every block; when it
    /// returns false the scoring stops with [`Error::Cancelled`](crate::Error::Cancelled).
    pub fn assign_watched(
        &self,
        images: &EmbeddingMatrix,
        each: &mut dyn FnMut(usize, usize) -> bool,
    ) -> Result<Vec<Assignment>> {
        let mut out = Vec::new();
        for rows in images.blocks() {
            let block = scoring::score_block(images, rows.clone(), &self.labels, self.logits())?;
            out.extend(scoring::assign(
                &images.ids()[rows.clone()],
                &self.labels,
                &block,
            ));
            if !each(rows.end, images.len()) {
                return Err(crate::Error::Cancelled);
            }
        }
        Ok(out)
    }

    /// Every label's score for each image, as an `images × labels` row-major matrix (for a few
    /// images: one photo's detail).
    pub fn scores(&self, images: &EmbeddingMatrix) -> Result<Vec<f32>> {
        scoring::scores(images, 0..images.len(), &self.labels, self.logits())
    }

    /// Every label's score for each image, with the top-k labels' ranks.
    pub fn score_block(&self, images: &EmbeddingMatrix) -> Result<scoring::Block> {
        scoring::score_block(images, 0..images.len(), &self.labels, self.logits())
    }

    /// The score of label `label_id` on every image, and its automatic tags, a block at a time.
    pub fn column_and_tags(
        &self,
        images: &EmbeddingMatrix,
        label_id: i64,
    ) -> Result<(Vec<f32>, Vec<Assignment>)> {
        let Some(j) = self.labels.iter().position(|l| l.label.id == label_id) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let width = self.labels.len();
        let (mut column, mut tags) = (Vec::with_capacity(images.len()), Vec::new());
        for rows in images.blocks() {
            let block = scoring::score_block(images, rows.clone(), &self.labels, self.logits())?;
            column.extend(block.scores.iter().skip(j).step_by(width));
            tags.extend(
                scoring::assign(&images.ids()[rows], &self.labels, &block)
                    .into_iter()
                    .filter(|a| a.label_id == label_id),
            );
        }
        Ok((column, tags))
    }
}
