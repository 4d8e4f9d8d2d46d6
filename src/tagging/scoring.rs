//! Scores to tags: CLIP's zero-shot classifier, per label, over stored image embeddings.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::domain::{Label, Mode};
use crate::error::{Error, Result};

/// Every stored image embedding of one model, as rows of one matrix.
#[derive(Debug, Clone, Default)]
pub struct EmbeddingMatrix {
    ids: Vec<i64>,
    dim: usize,
    data: Vec<f32>,
    /// Row of each id.
    rows: HashMap<i64, usize>,
}

impl EmbeddingMatrix {
    /// Builds the matrix from `(image id, vector)` pairs with distinct ids, all of one width.
    pub fn from_rows(rows: Vec<(i64, Vec<f32>)>) -> Result<Self> {
        let mut matrix = EmbeddingMatrix {
            dim: rows.first().map_or(0, |(_, v)| v.len()),
            ..EmbeddingMatrix::default()
        };
        matrix.ids.reserve(rows.len());
        matrix.data.reserve(rows.len() * matrix.dim);
        for (id, vector) in rows {
            matrix.upsert(id, &vector)?;
        }
        Ok(matrix)
    }

    /// Adds image `id`'s vector, or replaces it if the image is there already.
    pub fn upsert(&mut self, id: i64, vector: &[f32]) -> Result<()> {
        if self.ids.is_empty() {
            self.dim = vector.len();
        }
        if vector.len() != self.dim {
            return Err(Error::invalid(format!(
                "the embedding of image {id} has {} values where the others have {}",
                vector.len(),
                self.dim
            )));
        }
        match self.rows.get(&id) {
            Some(&row) => self.data[row * self.dim..(row + 1) * self.dim].copy_from_slice(vector),
            None => {
                self.rows.insert(id, self.ids.len());
                self.ids.push(id);
                self.data.extend_from_slice(vector);
            }
        }
        Ok(())
    }

    /// Takes image `id` out (the last row moves into its place).
    pub fn remove(&mut self, id: i64) {
        let Some(row) = self.rows.remove(&id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if row != last {
            let moved = self.ids[last];
            self.ids[row] = moved;
            self.data
                .copy_within(last * self.dim..(last + 1) * self.dim, row * self.dim);
            self.rows.insert(moved, row);
        }
        self.ids.pop();
        self.data.truncate(last * self.dim);
    }

    /// The image of each row.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether image `id` has a row.
    pub fn contains(&self, id: i64) -> bool {
        self.rows.contains_key(&id)
    }

    /// Image `id`'s vector.
    pub fn vector(&self, id: i64) -> Option<&[f32]> {
        self.rows.get(&id).map(|row| self.row(*row))
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The vector of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Cosine similarity of every image with each of `queries` (normalised vectors), as an
    /// `images × queries` row-major matrix.
    pub fn similarities(&self, queries: &[&[f32]]) -> Result<Vec<f32>> {
        if self.is_empty() || queries.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(bad) = queries.iter().find(|q| q.len() != self.dim) {
            return Err(Error::invalid(format!(
                "a query of {} values against embeddings of {}",
                bad.len(),
                self.dim
            )));
        }
        if queries.len() <= DIRECT_QUERIES {
            // A few queries (one label's column, a search): one pass over the rows in place.
            // Handing the matrix to a matrix product would first copy all of it.
            let m = queries.len();
            let mut out = vec![0.0f32; self.len() * m];
            out.par_chunks_mut(ROWS_PER_TASK * m)
                .enumerate()
                .for_each(|(task, chunk)| {
                    for (r, scores) in chunk.chunks_mut(m).enumerate() {
                        let row = self.row(task * ROWS_PER_TASK + r);
                        for (score, query) in scores.iter_mut().zip(queries) {
                            *score = dot(row, query);
                        }
                    }
                });
            return Ok(out);
        }
        let images = Tensor::from_slice(&self.data, (self.len(), self.dim), &Device::Cpu)?;
        let mut flat = Vec::with_capacity(queries.len() * self.dim);
        for q in queries {
            flat.extend_from_slice(q);
        }
        let queries = Tensor::from_vec(flat, (queries.len(), self.dim), &Device::Cpu)?;
        Ok(images.matmul(&queries.t()?)?.flatten_all()?.to_vec1()?)
    }
}

/// Up to this many queries are scored row by row instead of by a matrix product.
const DIRECT_QUERIES: usize = 4;
/// Rows per parallel task of the row-by-row scoring.
const ROWS_PER_TASK: usize = 4096;

/// The dot product of two equally long vectors, in eight lanes so the compiler vectorises it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (head_a, tail_a) = a.split_at(a.len() - a.len() % 8);
    let (head_b, tail_b) = b.split_at(head_a.len());
    for (ca, cb) in head_a.chunks_exact(8).zip(head_b.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += ca[i] * cb[i];
        }
    }
    let tail: f32 = tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

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
    labels: &[PreparedLabel],
    logits: impl Into<Logits>,
) -> Result<Vec<f32>> {
    let logits = logits.into();
    let logit_scale = logits.scale;
    let m = labels.len();
    let directions: Vec<&[f32]> = labels.iter().map(|l| l.positive.as_slice()).collect();
    let mut cos = images.similarities(&directions)?;
    let negatives: Vec<(usize, &[f32])> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.label.enabled && l.label.mode == Mode::Contrast)
        .filter_map(|(j, l)| l.negative.as_deref().map(|n| (j, n)))
        .collect();
    let neg_cos = if negatives.is_empty() {
        Vec::new()
    } else {
        images.similarities(&negatives.iter().map(|(_, n)| *n).collect::<Vec<_>>())?
    };
    let has_topk = labels
        .iter()
        .any(|l| l.label.enabled && l.label.mode == Mode::TopK);
    let enabled: Vec<usize> = (0..m).filter(|j| labels[*j].label.enabled).collect();
    let mut probs = vec![0.0f32; m];
    for i in 0..images.len() {
        let row = &mut cos[i * m..(i + 1) * m];
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
    Ok(cos)
}

/// The automatic tags `scores` gives: threshold and contrast labels where the score reaches the
/// threshold; top-k labels where the label ranks within its k best and reaches its threshold.
pub fn assign(
    images: &EmbeddingMatrix,
    labels: &[PreparedLabel],
    scores: &[f32],
) -> Vec<Assignment> {
    let m = labels.len();
    let mut out = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    let topk: Vec<usize> = (0..m)
        .filter(|j| labels[*j].label.enabled && labels[*j].label.mode == Mode::TopK)
        .collect();
    for (i, image_id) in images.ids().iter().enumerate() {
        let row = &scores[i * m..(i + 1) * m];
        if !topk.is_empty() {
            order.clear();
            order.extend((0..m).filter(|j| labels[*j].label.enabled));
            order.sort_by(|a, b| row[*b].total_cmp(&row[*a]));
        }
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
                let rank = order.iter().position(|o| *o == j).unwrap_or(usize::MAX);
                if rank >= label.top_k as usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_replaced_and_removed_by_id() {
        let mut m =
            EmbeddingMatrix::from_rows(vec![(1, vec![1.0, 0.0]), (2, vec![0.0, 1.0])]).unwrap();
        m.upsert(3, &[0.6, 0.8]).unwrap();
        m.upsert(1, &[0.0, -1.0]).unwrap();
        m.remove(2);
        assert_eq!(m.ids(), &[1, 3]);
        assert_eq!(m.vector(1), Some(&[0.0, -1.0][..]));
        assert_eq!(m.vector(3), Some(&[0.6, 0.8][..]));
        assert!(!m.contains(2));
        assert!(m.upsert(4, &[1.0]).is_err(), "a vector of another width");
    }

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
            let s = scores(&images, &labels, 100.0).unwrap();
            assert_eq!(
                assign(&images, &labels, &s).len(),
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
        let s = scores(&images, &labels, logits).unwrap();
        // sigmoid(10 · 1 − 5) and sigmoid(10 · 0.6 − 5).
        let want = [1.0 / (1.0 + (-5.0f32).exp()), 1.0 / (1.0 + (-1.0f32).exp())];
        assert!((s[0] - want[0]).abs() < 1e-6 && (s[1] - want[1]).abs() < 1e-6);
        assert_eq!(assign(&images, &labels, &s).len(), 2);
        // The probability at 0.5 is where scale · cos + bias = 0: cos 0.5.
        assert!((logits.cosine_of(0.5) - 0.5).abs() < 1e-6);
        for cos in [-0.9f32, -0.2, 0.0, 0.3, 0.7] {
            assert!((logits.cosine_of(logits.score_of(cos)) - cos).abs() < 1e-4);
        }
        assert_eq!(logits.cosine_of(0.0), -1.0);
        assert_eq!(logits.cosine_of(1.0), 1.0);
        // A CLIP model scores the same labels by their cosines.
        let s = scores(&images, &labels, 10.0).unwrap();
        assert_eq!(s, vec![1.0, 0.6]);
        assert_eq!(Logits::from(10.0).cosine_of(0.3), 0.3);
    }

    #[test]
    fn a_few_queries_score_like_the_matrix_product() {
        // 37 values per row: the eight-lane loop's tail is exercised too.
        let mut seed = 7u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let rows: Vec<(i64, Vec<f32>)> = (0..9000)
            .map(|i| (i, (0..37).map(|_| next()).collect()))
            .collect();
        let matrix = EmbeddingMatrix::from_rows(rows).unwrap();
        let queries: Vec<Vec<f32>> = (0..6).map(|_| (0..37).map(|_| next()).collect()).collect();
        let all: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        // Six queries go through the matrix product, three row by row.
        let product = matrix.similarities(&all).unwrap();
        let direct = matrix.similarities(&all[..3]).unwrap();
        assert_eq!(direct.len(), 9000 * 3);
        for i in 0..9000 {
            for q in 0..3 {
                let (a, b) = (direct[i * 3 + q], product[i * 6 + q]);
                assert!((a - b).abs() < 1e-5, "row {i} query {q}: {a} vs {b}");
            }
        }
        assert!(
            matrix.similarities(&[&[1.0, 2.0]]).is_err(),
            "a query of another width"
        );
    }
}
