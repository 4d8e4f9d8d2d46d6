//! Finding images: by a text query, by example ("more like this"), and near-duplicate groups.

use crate::error::Result;
use crate::tagging::scoring::{EmbeddingMatrix, normalize};

/// The `limit` images most similar to `query` (a normalised vector), best first, as
/// `(image id, cosine)`: exactly those the exact rows rank first.
///
/// One pass over the half-precision rows finds the `limit`-th best approximate cosine; every
/// photo that can beat it exactly (within twice the approximation's error) is scored exactly,
/// and those are ranked.
pub fn nearest(images: &EmbeddingMatrix, query: &[f32], limit: usize) -> Result<Vec<(i64, f32)>> {
    if images.is_empty() || limit == 0 || query.len() != images.dim() {
        return Ok(Vec::new());
    }
    let approx = images.approximate(query)?;
    if approx.error == 0.0 {
        return Ok(top(images.ids(), &approx.scores, limit));
    }
    let floor = kth_best(&approx.scores, limit) - 2.0 * approx.error;
    let candidates: Vec<usize> = (0..approx.scores.len())
        .filter(|&i| approx.scores[i] >= floor)
        .collect();
    let exact = images.exact_dots(&candidates, query)?;
    let ids: Vec<i64> = candidates.iter().map(|&i| images.ids()[i]).collect();
    Ok(top(&ids, &exact, limit))
}

/// The `k`-th best of `scores` (the worst, when there are fewer).
fn kth_best(scores: &[f32], k: usize) -> f32 {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    struct Score(f32);
    impl PartialEq for Score {
        fn eq(&self, other: &Self) -> bool {
            self.cmp(other).is_eq()
        }
    }
    impl Eq for Score {}
    impl PartialOrd for Score {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Score {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.0.total_cmp(&other.0)
        }
    }
    let mut best: BinaryHeap<Reverse<Score>> = BinaryHeap::with_capacity(k + 1);
    for &s in scores {
        if best.len() < k {
            best.push(Reverse(Score(s)));
        } else if best.peek().is_some_and(|w| s > w.0.0) {
            best.pop();
            best.push(Reverse(Score(s)));
        }
    }
    best.peek().map_or(f32::NEG_INFINITY, |w| w.0.0)
}

/// The best `limit` of `scores` (one per id), best first.
fn top(ids: &[i64], scores: &[f32], limit: usize) -> Vec<(i64, f32)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    let by_score = |a: &usize, b: &usize| {
        scores[*b]
            .total_cmp(&scores[*a])
            .then(ids[*a].cmp(&ids[*b]))
    };
    if order.len() > limit {
        order.select_nth_unstable_by(limit, by_score);
        order.truncate(limit);
    }
    order.sort_by(by_score);
    order.into_iter().map(|i| (ids[i], scores[i])).collect()
}

/// Images like the given ones: the mean of their embeddings as the query, the examples
/// themselves left out.
pub fn more_like(
    images: &EmbeddingMatrix,
    examples: &[i64],
    limit: usize,
) -> Result<Vec<(i64, f32)>> {
    let mut query = vec![0.0f32; images.dim()];
    let mut found = 0;
    let mut unique = examples.to_vec();
    unique.sort_unstable();
    unique.dedup();
    for id in unique {
        if let Some(vector) = images.vector(id)? {
            for (q, x) in query.iter_mut().zip(vector) {
                *q += x;
            }
            found += 1;
        }
    }
    if found == 0 {
        return Ok(Vec::new());
    }
    normalize(&mut query);
    let mut results = nearest(images, &query, limit + examples.len())?;
    results.retain(|(id, _)| !examples.contains(id));
    results.truncate(limit);
    Ok(results)
}

/// Groups of images whose embeddings are at least `threshold` similar (connected through such
/// pairs), largest group first; singletons are left out. See [`super::duplicates`].
pub fn near_duplicates(images: &EmbeddingMatrix, threshold: f32) -> Result<Vec<Vec<i64>>> {
    super::duplicates::near_duplicates(images, threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix() -> EmbeddingMatrix {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        EmbeddingMatrix::from_rows(vec![
            (1, vec![1.0, 0.0]),
            (2, vec![s, s]),
            (3, vec![0.0, 1.0]),
            (4, vec![0.999, 0.0447]),
        ])
        .unwrap()
    }

    #[test]
    fn nearest_ranks_by_cosine() {
        let got = nearest(&matrix(), &[1.0, 0.0], 2).unwrap();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![1, 4]);
    }

    #[test]
    fn the_half_precision_pass_ranks_as_the_exact_rows_do() {
        // Random unit vectors, and pairs that differ below half precision's resolution: the
        // ranking and the cosines are the exact ones all the same.
        let mut seed = 3u32;
        let mut next = || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let mut rows: Vec<(i64, Vec<f32>)> = Vec::new();
        for i in 0..4000 {
            let mut v: Vec<f32> = (0..64).map(|_| next()).collect();
            normalize(&mut v);
            if i % 2 == 1 {
                let mut twin = rows[i - 1].1.clone();
                twin[i % 64] += 1e-5 * (i as f32 % 3.0 - 1.0);
                normalize(&mut twin);
                v = twin;
            }
            rows.push((i as i64, v));
        }
        let queries: Vec<Vec<f32>> = rows.iter().step_by(397).map(|r| r.1.clone()).collect();
        let matrix = EmbeddingMatrix::from_rows(rows).unwrap();
        for query in &queries {
            let exact = matrix.similarities(0..matrix.len(), &[query]).unwrap();
            for limit in [1, 10, 100] {
                let want = top(matrix.ids(), &exact, limit);
                assert_eq!(nearest(&matrix, query, limit).unwrap(), want);
            }
        }
    }

    #[test]
    fn more_like_leaves_out_the_examples() {
        let got = more_like(&matrix(), &[1], 1).unwrap();
        assert_eq!(got[0].0, 4);
    }

    #[test]
    fn near_duplicates_group_close_vectors() {
        assert_eq!(near_duplicates(&matrix(), 0.99).unwrap(), vec![vec![1, 4]]);
    }
}
