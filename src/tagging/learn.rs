//! Learning a label from a person's decisions, on stored embeddings alone.
//!
//! The label's direction moves toward its accepted photos and away from its rejected ones
//! (Rocchio's relevance feedback: `normalize(prompt + w · (mean(accepted) − mean(rejected)))`),
//! and its cosine threshold is re-fitted to separate the two. The weight `w` is chosen among a
//! few by how well each agrees with the decisions measured leave-one-out (each decided photo
//! predicted by a label learned from the others), so a handful of decisions moves a label a
//! little and many move it far; a prompt that means nothing to the model is outweighed by its
//! examples. Decisions themselves are never changed: they stay the person's, whatever the label
//! learns.

use crate::tagging::scoring::normalize;

/// The weights of the examples against the prompt that learning chooses among.
const WEIGHTS: [f32; 6] = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0];
/// How far below the lowest accepted photo (or above the highest rejected one) a threshold set by
/// one kind of decision alone is placed.
const MARGIN: f32 = 0.01;
/// How far one or two decisions of one kind alone may move a threshold.
const ONE_KIND_STEP: f32 = 0.05;

/// How well a label agrees with the decisions it is measured on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Agreement {
    pub correct: usize,
    pub total: usize,
}

impl Agreement {
    /// The share of decisions the label agrees with (1 when there are none).
    pub fn rate(self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// A learned label.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// The learned direction (unit length).
    pub direction: Vec<f32>,
    /// The re-fitted cosine threshold.
    pub threshold: f32,
    /// The weight of the examples against the prompt.
    pub weight: f32,
    /// Agreement of the learned label with the decisions, leave-one-out.
    pub agreement: Agreement,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn mean(vectors: &[&[f32]], dim: usize) -> Option<Vec<f32>> {
    if vectors.is_empty() {
        return None;
    }
    let mut sum = vec![0.0f32; dim];
    for v in vectors {
        for (s, x) in sum.iter_mut().zip(v.iter()) {
            *s += x;
        }
    }
    let n = vectors.len() as f32;
    Some(sum.into_iter().map(|s| s / n).collect())
}

/// `normalize(prompt + weight · (mean(positives) − mean(negatives)))`.
fn direction(prompt: &[f32], positives: &[&[f32]], negatives: &[&[f32]], weight: f32) -> Vec<f32> {
    let dim = prompt.len();
    let mut d = prompt.to_vec();
    if let Some(p) = mean(positives, dim) {
        for (x, m) in d.iter_mut().zip(p) {
            *x += weight * m;
        }
    }
    if let Some(n) = mean(negatives, dim) {
        for (x, m) in d.iter_mut().zip(n) {
            *x -= weight * m;
        }
    }
    normalize(&mut d);
    if d.iter().all(|x| *x == 0.0) {
        return prompt.to_vec();
    }
    d
}

/// The cosine threshold that best separates `positives` (at or above) from `negatives` (below),
/// in the middle of the widest of the best gaps; with one kind alone, just past its extreme.
pub fn fit_threshold(positives: &[f32], negatives: &[f32], current: f32) -> f32 {
    match (positives.is_empty(), negatives.is_empty()) {
        (true, true) => return current,
        // One kind alone says where the label's photos are, not where others begin: the
        // threshold moves only as far as the decided photos' own spread, so that one odd
        // accepted photo cannot lower it until it tags nearly everything (the person's decision
        // keeps that photo tagged anyway).
        (false, true) => {
            let lowest = positives.iter().copied().fold(f32::INFINITY, f32::min);
            return current.min((lowest - MARGIN).max(spread_floor(positives, current)));
        }
        (true, false) => {
            let highest = negatives.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let negated: Vec<f32> = negatives.iter().map(|s| -s).collect();
            return current.max((highest + MARGIN).min(-spread_floor(&negated, -current)));
        }
        _ => {}
    }
    let mut scores: Vec<(f32, bool)> = positives
        .iter()
        .map(|s| (*s, true))
        .chain(negatives.iter().map(|s| (*s, false)))
        .collect();
    scores.sort_by(|a, b| a.0.total_cmp(&b.0));
    // A threshold between sorted scores i-1 and i tags scores[i..]: count what it gets right.
    let mut best = (0usize, f32::NEG_INFINITY, current);
    let mut correct = positives.len(); // threshold below everything: every positive right
    for i in 0..=scores.len() {
        if i > 0 {
            correct = if scores[i - 1].1 {
                correct - 1
            } else {
                correct + 1
            };
        }
        let low = if i == 0 {
            scores[0].0 - 2.0 * MARGIN
        } else {
            scores[i - 1].0
        };
        let high = if i == scores.len() {
            scores[i - 1].0 + 2.0 * MARGIN
        } else {
            scores[i].0
        };
        if i > 0 && i < scores.len() && high <= low {
            continue; // equal scores cannot be split
        }
        let gap = high - low;
        if correct > best.0 || (correct == best.0 && gap > best.1) {
            best = (correct, gap, (low + high) / 2.0);
        }
    }
    best.2.clamp(-1.0, 1.0)
}

/// How low decisions of one kind may move a threshold from `current`: three robust standard
/// deviations (1.4826 median absolute deviations, which one odd photo does not inflate) below
/// their median, where nearly all photos like them score; with fewer than three of them (no
/// spread to speak of) at most `ONE_KIND_STEP` below `current`.
fn spread_floor(scores: &[f32], current: f32) -> f32 {
    if scores.len() < 3 {
        return current - ONE_KIND_STEP;
    }
    let median = |values: &mut Vec<f32>| {
        values.sort_by(|a, b| a.total_cmp(b));
        let n = values.len();
        if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        }
    };
    let middle = median(&mut scores.to_vec());
    let deviation = 1.4826 * median(&mut scores.iter().map(|s| (s - middle).abs()).collect());
    middle - 3.0 * deviation
}

fn fit_with(
    prompt: &[f32],
    positives: &[&[f32]],
    negatives: &[&[f32]],
    weight: f32,
    current: f32,
) -> (Vec<f32>, f32) {
    let d = direction(prompt, positives, negatives, weight);
    let pos: Vec<f32> = positives.iter().map(|v| dot(&d, v)).collect();
    let neg: Vec<f32> = negatives.iter().map(|v| dot(&d, v)).collect();
    (d.clone(), fit_threshold(&pos, &neg, current))
}

/// Leave-one-out agreement of learning with `weight`, and how far apart the held-out accepted and
/// rejected photos score (the difference of their mean scores over their pooled deviation; 0
/// without both kinds).
fn leave_one_out(
    prompt: &[f32],
    positives: &[&[f32]],
    negatives: &[&[f32]],
    weight: f32,
    current: f32,
) -> (Agreement, f32) {
    let mut agreement = Agreement::default();
    let (mut held_pos, mut held_neg) = (Vec::new(), Vec::new());
    for (held, is_positive) in positives
        .iter()
        .enumerate()
        .map(|(i, _)| (i, true))
        .chain(negatives.iter().enumerate().map(|(i, _)| (i, false)))
    {
        let (pos, neg) = if is_positive {
            (others(positives, Some(held)), others(negatives, None))
        } else {
            (others(positives, None), others(negatives, Some(held)))
        };
        let (d, t) = fit_with(prompt, &pos, &neg, weight, current);
        let vector = if is_positive {
            positives[held]
        } else {
            negatives[held]
        };
        let score = dot(&d, vector);
        if is_positive {
            held_pos.push(score - t);
        } else {
            held_neg.push(score - t);
        }
        agreement.total += 1;
        agreement.correct += usize::from((score >= t) == is_positive);
    }
    (agreement, separation(&held_pos, &held_neg))
}

/// `list` without its item `skip`.
fn others<'a>(list: &[&'a [f32]], skip: Option<usize>) -> Vec<&'a [f32]> {
    list.iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != skip)
        .map(|(_, v)| *v)
        .collect()
}

/// `(mean(a) − mean(b)) / pooled standard deviation`: how well two sets of scores stand apart,
/// whatever the scale of the scores.
fn separation(a: &[f32], b: &[f32]) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    let (ma, mb) = (mean(a), mean(b));
    let spread: f32 = a.iter().map(|x| (x - ma).powi(2)).sum::<f32>()
        + b.iter().map(|x| (x - mb).powi(2)).sum::<f32>();
    let pooled = (spread / (a.len() + b.len()) as f32).sqrt();
    (ma - mb) / (pooled + 1e-6)
}

/// How well the label as it stands (direction `prompt`, threshold `current`) agrees with the
/// decisions.
pub fn agreement(
    prompt: &[f32],
    positives: &[&[f32]],
    negatives: &[&[f32]],
    current: f32,
) -> Agreement {
    let correct = positives
        .iter()
        .filter(|v| dot(prompt, v) >= current)
        .count()
        + negatives
            .iter()
            .filter(|v| dot(prompt, v) < current)
            .count();
    Agreement {
        correct,
        total: positives.len() + negatives.len(),
    }
}

/// Learns a label from its decided photos' embeddings, starting from its prompt direction and
/// threshold.
pub fn learn(prompt: &[f32], positives: &[&[f32]], negatives: &[&[f32]], current: f32) -> Fit {
    // The weight whose label agrees with the most decisions left out; among equals, the one that
    // keeps the left-out accepted and rejected photos furthest apart; among those, the smaller
    // weight, nearer what the prompt says.
    let mut best: Option<(Agreement, f32, f32)> = None;
    for weight in WEIGHTS {
        let (agreement, apart) = leave_one_out(prompt, positives, negatives, weight, current);
        let better = best.is_none_or(|(b, b_apart, _)| {
            agreement.correct > b.correct
                || (agreement.correct == b.correct && apart > b_apart + 1e-3)
        });
        if better {
            best = Some((agreement, apart, weight));
        }
    }
    let (agreement, _, weight) = best.expect("at least one weight is tried. This is a bug.");
    let (direction, threshold) = fit_with(prompt, positives, negatives, weight, current);
    Fit {
        direction,
        threshold,
        weight,
        agreement,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_splits_the_decisions_in_their_widest_gap() {
        assert!((fit_threshold(&[0.5, 0.6], &[0.1, 0.2], 0.9) - 0.35).abs() < 1e-6);
        // One negative among the positives: the best split still gets three of four right.
        let t = fit_threshold(&[0.5, 0.6, 0.15], &[0.3], 0.0);
        assert!(t > 0.3 && t < 0.5, "{t}");
        // Accepts alone lower the threshold just enough; rejects alone raise it.
        assert!((fit_threshold(&[0.2], &[], 0.3) - 0.25).abs() < 1e-6);
        assert!((fit_threshold(&[0.27], &[], 0.3) - 0.26).abs() < 1e-6);
        assert!((fit_threshold(&[], &[0.4], 0.3) - 0.35).abs() < 1e-6);
        assert!((fit_threshold(&[], &[0.32], 0.3) - 0.33).abs() < 1e-6);
    }

    #[test]
    fn examples_outweigh_a_prompt_that_means_nothing() {
        // The prompt points nowhere near either group; the accepted group lies along x.
        let prompt = [0.0, 0.0, 1.0];
        let a: Vec<Vec<f32>> = (0..5)
            .map(|i| {
                let mut v = vec![1.0, 0.1 * i as f32, 0.05];
                normalize(&mut v);
                v
            })
            .collect();
        let b: Vec<Vec<f32>> = (0..5)
            .map(|i| {
                let mut v = vec![0.1 * i as f32, 1.0, 0.05];
                normalize(&mut v);
                v
            })
            .collect();
        let pos: Vec<&[f32]> = a.iter().map(Vec::as_slice).collect();
        let neg: Vec<&[f32]> = b.iter().map(Vec::as_slice).collect();
        let before = agreement(&prompt, &pos, &neg, 0.26);
        let fit = learn(&prompt, &pos, &neg, 0.26);
        assert_eq!(
            fit.agreement,
            Agreement {
                correct: 10,
                total: 10
            },
            "{fit:?}"
        );
        assert!(before.correct <= 5, "{before:?}");
        assert!(fit.weight > 0.0);
    }

    /// Accepted photos alone, one of them far below the others: the threshold goes no lower than
    /// where nearly all photos like them score, not down to the odd one (which would tag nearly
    /// every photo of a library).
    #[test]
    fn one_odd_accepted_photo_does_not_drag_the_threshold_down() {
        let accepted = [0.31, 0.33, 0.30, 0.32, 0.34, 0.29, 0.31, 0.33, 0.32, -0.365];
        let threshold = fit_threshold(&accepted, &[], 0.3);
        assert!(threshold > 0.2, "{threshold}");
        assert!(threshold <= 0.29 - MARGIN + 1e-6, "{threshold}");
        let rejected: Vec<f32> = accepted.iter().map(|s| -s).collect();
        let threshold = fit_threshold(&[], &rejected, -0.3);
        assert!(threshold < -0.2, "{threshold}");
    }
}
