//! Scores to tags: CLIP's zero-shot classifier, per label, over stored image embeddings.

use std::ops::Range;

pub use super::matrix::EmbeddingMatrix;
use crate::domain::{Label, Mode};
use crate::error::Result;

/// A label with the embeddings its mode needs.
#[derive(Debug, Clone)]
pub struct PreparedLabel {
    pub label: Label,
    /// Mean of the prompt embeddings, re-normalised.
    pub positive: Vec<f32>,
    /// The negative prompt's embedding (contrast mode).
    pub negative: Option<Vec<f32>>,
    /// Whether `positive` is the direction the label learned from decisions.
    pub learned: bool,
}

/// One automatic tag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    pub image_id: i64,
    pub label_id: i64,
    /// The cosine (threshold mode) or probability (contrast and top-k modes) that decided it.
    pub score: f32,
}

/// Averages normalised prompt embeddings and re-normalises the mean.
pub fn mean_direction(vectors: &[Vec<f32>]) -> Vec<f32> {
    let dim = vectors.first().map_or(0, Vec::len);
    let mut mean = vec![0.0f32; dim];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += x;
        }
    }
    normalize(&mut mean);
    mean
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v {
            *x /= norm;
        }
    }
}

/// How a model turns cosines into logits: `scale · cos`, plus `bias` for sigmoid-trained models.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Logits {
    /// `exp(logit_scale)`.
    pub scale: f32,
    /// SigLIP's learned bias; `None` for CLIP.
    pub bias: Option<f32>,
}

impl From<f32> for Logits {
    /// A softmax-trained model's scale alone.
    fn from(scale: f32) -> Self {
        Logits { scale, bias: None }
    }
}

impl Logits {
    /// A threshold label's score for cosine `cos`: the cosine itself, or the probability.
    pub fn score_of(&self, cos: f32) -> f32 {
        let cos = cos.clamp(-1.0, 1.0);
        match self.bias {
            Some(bias) => 1.0 / (1.0 + (-(self.scale * cos + bias)).exp()),
            None => cos,
        }
    }

    /// The cosine where a threshold label's score is `score` (the inverse of
    /// [`Logits::score_of`]; probabilities of 0 and 1 map to the ends of the cosine range).
    pub fn cosine_of(&self, score: f32) -> f32 {
        match self.bias {
            None => score,
            Some(_) if score <= 0.0 => -1.0,
            Some(_) if score >= 1.0 => 1.0,
            Some(bias) => (((score / (1.0 - score)).ln() - bias) / self.scale).clamp(-1.0, 1.0),
        }
    }
}

/// The score each image gets for each enabled label under the label's mode, as an
/// `images × labels` row-major matrix (disabled labels score NaN).
///
/// threshold: the cosine, or for a sigmoid-trained model the label's own probability
/// `sigmoid(scale · cos + bias)`; contrast: `softmax(s · [pos, neg])` of the positive side;
/// top-k: the label's probability in `softmax(s · cosines)` over the enabled vocabulary.
pub fn scores(
    images: &EmbeddingMatrix,
    rows: Range<usize>,
    labels: &[PreparedLabel],
    logits: impl Into<Logits>,
) -> Result<Vec<f32>> {
    Ok(score_block(images, rows, labels, logits)?.scores)
}

/// A block of photos' scores, and where each top-k label ranks on each photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// `images × labels`, row-major, as [`scores`] gives them.
    pub scores: Vec<f32>,
    /// `images × labels`, row-major: a top-k label's rank on the photo among every enabled label
    /// by cosine (0 = best; ties go to the label listed first); `u32::MAX` for other labels.
    pub ranks: Vec<u32>,
}

/// [`scores`], with the top-k labels' ranks.
pub fn score_block(
    images: &EmbeddingMatrix,
    rows: Range<usize>,
    labels: &[PreparedLabel],
    logits: impl Into<Logits>,
) -> Result<Block> {
    let logits = logits.into();
    let logit_scale = logits.scale;
    let m = labels.len();
    let count = rows.len();
    let directions: Vec<&[f32]> = labels.iter().map(|l| l.positive.as_slice()).collect();
    let mut cos = images.similarities(rows.clone(), &directions)?;
    let negatives: Vec<(usize, &[f32])> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.label.enabled && l.label.mode == Mode::Contrast)
        .filter_map(|(j, l)| l.negative.as_deref().map(|n| (j, n)))
        .collect();
    let neg_cos = if negatives.is_empty() {
        Vec::new()
    } else {
        images.similarities(rows, &negatives.iter().map(|(_, n)| *n).collect::<Vec<_>>())?
    };
    let has_topk = labels
        .iter()
        .any(|l| l.label.enabled && l.label.mode == Mode::TopK);
    let enabled: Vec<usize> = (0..m).filter(|j| labels[*j].label.enabled).collect();
    let topk: Vec<usize> = enabled
        .iter()
        .copied()
        .filter(|j| labels[*j].label.mode == Mode::TopK)
        .collect();
    let mut ranks = vec![u32::MAX; if has_topk { count * m } else { 0 }];
    let mut probs = vec![0.0f32; m];
    for i in 0..count {
        let row = &mut cos[i * m..(i + 1) * m];
        // The classic zero-shot classifier: the k best labels of the whole enabled vocabulary
        // by cosine (the order of the softmax over all of them), whatever the others' modes.
        for &j in &topk {
            let mine = row[j];
            let above = enabled
                .iter()
                .filter(|&&l| row[l] > mine || (row[l] == mine && l < j))
                .count();
            ranks[i * m + j] = above as u32;
        }
        if has_topk {
            let max = enabled
                .iter()
                .map(|j| row[*j])
                .fold(f32::NEG_INFINITY, f32::max);
            let mut total = 0.0;
            for j in &enabled {
                probs[*j] = (logit_scale * (row[*j] - max)).exp();
                total += probs[*j];
            }
            for j in &enabled {
                probs[*j] /= total;
            }
        }
        for (k, (j, _)) in negatives.iter().enumerate() {
            let neg = neg_cos[i * negatives.len() + k];
            // softmax over two logits is the logistic function of their difference
            row[*j] = 1.0 / (1.0 + (-logit_scale * (row[*j] - neg)).exp());
        }
        for (j, label) in labels.iter().enumerate() {
            if !label.label.enabled {
                row[j] = f32::NAN;
            } else {
                match label.label.mode {
                    Mode::TopK => row[j] = probs[j],
                    Mode::Threshold => row[j] = logits.score_of(row[j]),
                    Mode::Contrast => {}
                }
            }
        }
    }
    Ok(Block { scores: cos, ranks })
}

/// The automatic tags a block of scores (of the images `ids`, in order) gives: threshold and
/// contrast labels where the score reaches the threshold; top-k labels where the label ranks
/// within the k best of the enabled vocabulary by cosine and its probability reaches the
/// threshold.
pub fn assign(ids: &[i64], labels: &[PreparedLabel], block: &Block) -> Vec<Assignment> {
    let m = labels.len();
    let scores = &block.scores;
    let mut out = Vec::new();
    for (i, image_id) in ids.iter().enumerate() {
        let row = &scores[i * m..(i + 1) * m];
        for (j, prepared) in labels.iter().enumerate() {
            let label = &prepared.label;
            let score = row[j];
            if !label.enabled || score.is_nan() || score < label.threshold {
                continue;
            }
            // The slider's ends mean "every image" and "none": cosines are clamped to [-1, 1]
            // and probabilities lie in [0, 1], so -1 passes everything, and 1 (reached only by
            // a prompt identical to the image) passes nothing.
            if label.mode == Mode::Threshold && label.threshold >= 1.0 {
                continue;
            }
            if label.mode == Mode::TopK {
                let rank = block.ranks.get(i * m + j).copied().unwrap_or(u32::MAX);
                if rank >= label.top_k {
                    continue;
                }
            }
            out.push(Assignment {
                image_id: *image_id,
                label_id: label.id,
                score,
            });
        }
    }
    out
}

/// One threshold or contrast label's score on every photo, from one pass over the
/// half-precision rows; photos whose tag those scores cannot settle get their exact scores when
/// a threshold asks ([`LabelColumn::assign`]), so the tags are those the exact rows give.
#[derive(Debug, Clone)]
pub struct LabelColumn {
    /// Per row: the label's score, exact where `exact` says so.
    pub scores: Vec<f32>,
    exact: Vec<bool>,
    /// Per row: the half-precision cosine with the label's direction, and with its negative
    /// prompt (contrast mode; empty otherwise).
    cos: Vec<f32>,
    neg: Vec<f32>,
    /// How far those cosines can lie from the exact ones.
    error: f32,
    logits: Logits,
    mode: Mode,
}

impl LabelColumn {
    /// The column of `label` (enabled, not top-k) over `images`.
    pub fn new(images: &EmbeddingMatrix, label: &PreparedLabel, logits: Logits) -> Result<Self> {
        let approx = images.approximate(&label.positive)?;
        let negative = match (&label.label.mode, &label.negative) {
            (Mode::Contrast, Some(negative)) => Some(images.approximate(negative)?),
            _ => None,
        };
        let error = approx.error.max(negative.as_ref().map_or(0.0, |n| n.error));
        let mut column = LabelColumn {
            scores: Vec::new(),
            exact: vec![error == 0.0; approx.scores.len()],
            cos: approx.scores,
            neg: negative.map(|n| n.scores).unwrap_or_default(),
            error,
            logits,
            mode: label.label.mode,
        };
        column.scores = (0..column.cos.len())
            .map(|i| column.score(column.cos[i], column.neg.get(i).copied()))
            .collect();
        Ok(column)
    }

    /// The label's score from its cosines, as [`scores`] computes it.
    fn score(&self, cos: f32, neg: Option<f32>) -> f32 {
        match (self.mode, neg) {
            (Mode::Contrast, Some(neg)) => 1.0 / (1.0 + (-self.logits.scale * (cos - neg)).exp()),
            (Mode::Contrast, None) => cos,
            _ => self.logits.score_of(cos),
        }
    }

    /// The highest score row `i` can have exactly (every score rises with its cosine and falls
    /// with its negative's).
    fn highest(&self, i: usize) -> f32 {
        let neg = self.neg.get(i).map(|n| n - self.error);
        self.score(self.cos[i] + self.error, neg)
    }

    /// The label's automatic tags over `images` (the matrix the column was made from) at its
    /// threshold: computes the exact scores of every photo that may reach it.
    pub fn assign(
        &mut self,
        images: &EmbeddingMatrix,
        label: &PreparedLabel,
    ) -> Result<Vec<Assignment>> {
        let threshold = label.label.threshold;
        if !label.label.enabled || (self.mode == Mode::Threshold && threshold >= 1.0) {
            return Ok(Vec::new());
        }
        // A margin for the rounding of the score functions themselves.
        let open: Vec<usize> = (0..self.cos.len())
            .filter(|&i| !self.exact[i] && self.highest(i) + 1e-6 >= threshold)
            .collect();
        if !open.is_empty() {
            let cos = images.exact_dots(&open, &label.positive)?;
            let neg = match (&label.negative, self.neg.is_empty()) {
                (Some(negative), false) => Some(images.exact_dots(&open, negative)?),
                _ => None,
            };
            for (k, &i) in open.iter().enumerate() {
                self.cos[i] = cos[k];
                if let Some(neg) = &neg {
                    self.neg[i] = neg[k];
                }
                self.scores[i] = self.score(cos[k], neg.as_ref().map(|n| n[k]));
                self.exact[i] = true;
            }
        }
        Ok(images
            .ids()
            .iter()
            .enumerate()
            .filter(|&(i, _)| self.exact[i] && self.scores[i] >= threshold)
            .map(|(i, id)| Assignment {
                image_id: *id,
                label_id: label.label.id,
                score: self.scores[i],
            })
            .collect())
    }

    /// How many photos have their exact score.
    pub fn exact_count(&self) -> usize {
        self.exact.iter().filter(|e| **e).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(id: i64, mode: Mode, threshold: f32) -> Label {
        Label {
            id,
            name: format!("l{id}"),
            prompts: vec![],
            negative: None,
            mode,
            threshold,
            top_k: 1,
            enabled: true,
            learned: None,
            learned_elsewhere: Vec::new(),
        }
    }

    #[test]
    fn mean_direction_is_unit_length() {
        let v = mean_direction(&[vec![1.0, 0.0], vec![0.0, 1.0]]);
        assert!((v[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((v[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn threshold_of_minus_one_tags_everything_and_one_nothing() {
        let images = EmbeddingMatrix::from_rows(vec![
            (1, vec![1.0, 0.0]),
            (2, vec![0.0, 1.0]),
            (3, vec![-1.0, 0.0]),
        ])
        .unwrap();
        for (threshold, want) in [(-1.0, 3), (0.5, 1), (1.0, 0)] {
            let labels = vec![PreparedLabel {
                label: label(7, Mode::Threshold, threshold),
                positive: vec![1.0, 0.0],
                negative: None,
                learned: false,
            }];
            let s = score_block(&images, 0..3, &labels, 100.0).unwrap();
            assert_eq!(
                assign(images.ids(), &labels, &s).len(),
                want,
                "threshold {threshold}"
            );
        }
    }

    #[test]
    fn a_sigmoid_model_scores_threshold_labels_as_probabilities() {
        let images =
            EmbeddingMatrix::from_rows(vec![(1, vec![1.0, 0.0]), (2, vec![0.6, 0.8])]).unwrap();
        let logits = Logits {
            scale: 10.0,
            bias: Some(-5.0),
        };
        let labels = vec![PreparedLabel {
            label: label(7, Mode::Threshold, 0.5),
            positive: vec![1.0, 0.0],
            negative: None,
            learned: false,
        }];
        let s = scores(&images, 0..2, &labels, logits).unwrap();
        // sigmoid(10 · 1 − 5) and sigmoid(10 · 0.6 − 5).
        let want = [1.0 / (1.0 + (-5.0f32).exp()), 1.0 / (1.0 + (-1.0f32).exp())];
        assert!((s[0] - want[0]).abs() < 1e-6 && (s[1] - want[1]).abs() < 1e-6);
        let block = score_block(&images, 0..2, &labels, logits).unwrap();
        assert_eq!(assign(images.ids(), &labels, &block).len(), 2);
        // The probability at 0.5 is where scale · cos + bias = 0: cos 0.5.
        assert!((logits.cosine_of(0.5) - 0.5).abs() < 1e-6);
        for cos in [-0.9f32, -0.2, 0.0, 0.3, 0.7] {
            assert!((logits.cosine_of(logits.score_of(cos)) - cos).abs() < 1e-4);
        }
        assert_eq!(logits.cosine_of(0.0), -1.0);
        assert_eq!(logits.cosine_of(1.0), 1.0);
        // A CLIP model scores the same labels by their cosines.
        let s = scores(&images, 0..2, &labels, 10.0).unwrap();
        assert_eq!(s, vec![1.0, 0.6]);
        assert_eq!(Logits::from(10.0).cosine_of(0.3), 0.3);
    }

    /// Photos whose cosine with the label lies on either side of its threshold, closer than
    /// half precision can tell apart, and photos far from it.
    fn near_threshold() -> (EmbeddingMatrix, Vec<f32>) {
        let mut rows = Vec::new();
        let mut cosines = Vec::new();
        for i in 0..2000i64 {
            let cos = match i % 4 {
                0 => 0.3 + (i as f32 - 1000.0) * 1e-7,
                1 => 0.3 + 1e-6 * (i % 7) as f32 - 3e-6,
                2 => -0.5 + i as f32 * 1e-4,
                _ => 0.9 - i as f32 * 1e-5,
            };
            let sin = (1.0 - cos * cos).sqrt();
            rows.push((i, vec![cos, sin * 0.6, sin * 0.8]));
            cosines.push(cos);
        }
        (EmbeddingMatrix::from_rows(rows).unwrap(), cosines)
    }

    #[test]
    fn a_label_column_tags_as_the_exact_rows_do() {
        let (images, _) = near_threshold();
        let logits = Logits {
            scale: 100.0,
            bias: None,
        };
        for (mode, threshold, negative) in [
            (Mode::Threshold, 0.3, None),
            (Mode::Threshold, 0.300_001, None),
            (Mode::Contrast, 0.5, Some(vec![0.3, 0.953_939_2, 0.0])),
        ] {
            let labels = vec![PreparedLabel {
                label: label(7, mode, threshold),
                positive: vec![1.0, 0.0, 0.0],
                negative,
                learned: false,
            }];
            let exact = score_block(&images, 0..images.len(), &labels, logits).unwrap();
            let want = assign(images.ids(), &labels, &exact);
            let mut column = LabelColumn::new(&images, &labels[0], logits).unwrap();
            let got = column.assign(&images, &labels[0]).unwrap();
            let pairs = |a: &[Assignment]| a.iter().map(|a| a.image_id).collect::<Vec<_>>();
            assert_eq!(pairs(&got), pairs(&want), "{mode:?} at {threshold}");
            for (g, w) in got.iter().zip(&want) {
                assert!((g.score - w.score).abs() < 1e-6);
            }
            // Only the photos that may pass were scored exactly: not the quarter far below.
            assert!(column.exact_count() <= images.len() * 3 / 4, "{mode:?}");
            // Moving the threshold on the same column settles the photos near the new one.
            let moved = PreparedLabel {
                label: label(7, mode, threshold - 0.2),
                ..labels[0].clone()
            };
            let exact = score_block(
                &images,
                0..images.len(),
                std::slice::from_ref(&moved),
                logits,
            )
            .unwrap();
            let want = assign(images.ids(), std::slice::from_ref(&moved), &exact);
            assert_eq!(
                pairs(&column.assign(&images, &moved).unwrap()),
                pairs(&want)
            );
        }
    }

    /// A top-k label whose prompt is the closest of all to a photo tags it, though the
    /// threshold labels beside it score cosines far above its probability.
    #[test]
    fn top_k_ranks_among_every_enabled_label_by_cosine() {
        let images = EmbeddingMatrix::from_rows(vec![(1, vec![1.0, 0.0, 0.0])]).unwrap();
        let prepared = |id, mode, threshold, positive: Vec<f32>| PreparedLabel {
            label: label(id, mode, threshold),
            positive,
            negative: None,
            learned: false,
        };
        let mut labels = vec![
            // Threshold labels with cosines 0.4 and 0.3 (well above any probability here).
            prepared(1, Mode::Threshold, 0.9, vec![0.4, 0.916_515, 0.0]),
            prepared(2, Mode::Threshold, 0.9, vec![0.3, 0.0, 0.953_939_2]),
            // The top-k label: cosine 0.487, the best of all.
            prepared(3, Mode::TopK, 0.0, vec![0.487, 0.873_4, 0.0]),
        ];
        let block = score_block(&images, 0..1, &labels, 100.0).unwrap();
        let tags = assign(images.ids(), &labels, &block);
        assert_eq!(tags.iter().map(|t| t.label_id).collect::<Vec<_>>(), vec![3]);
        assert_eq!(block.ranks[2], 0);
        // Second best by cosine: not among the best 1, but among the best 2.
        labels[2].positive = vec![0.35, 0.936_750_6, 0.0];
        let block = score_block(&images, 0..1, &labels, 100.0).unwrap();
        assert_eq!(block.ranks[2], 1);
        assert!(assign(images.ids(), &labels, &block).is_empty());
        labels[2].label.top_k = 2;
        assert_eq!(assign(images.ids(), &labels, &block).len(), 1);
        // A disabled label does not count.
        labels[0].label.enabled = false;
        labels[2].label.top_k = 1;
        let block = score_block(&images, 0..1, &labels, 100.0).unwrap();
        assert_eq!(assign(images.ids(), &labels, &block).len(), 1);
    }
}
