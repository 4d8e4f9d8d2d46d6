//! Finding images: by a text query, by example ("more like this"), and near-duplicate groups.

use crate::error::Result;
use crate::tagging::scoring::{EmbeddingMatrix, normalize};

/// The `limit` images most similar to `query` (a normalised vector), best first, as
/// `(image id, cosine)`.
pub fn nearest(images: &EmbeddingMatrix, query: &[f32], limit: usize) -> Result<Vec<(i64, f32)>> {
    if images.is_empty() || limit == 0 || query.len() != images.dim() {
        return Ok(Vec::new());
    }
    let scores = images.similarities(&[query])?;
    Ok(top(images.ids(), &scores, limit))
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
    for (i, id) in images.ids().iter().enumerate() {
        if examples.contains(id) {
            for (q, x) in query.iter_mut().zip(images.row(i)) {
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
/// pairs), largest group first; singletons are left out.
///
/// Compares every pair in blocks of rows, so memory stays at one block of scores; the work grows
/// with the square of the library (about a minute for 100k images on two cores).
pub fn near_duplicates(images: &EmbeddingMatrix, threshold: f32) -> Result<Vec<Vec<i64>>> {
    let n = images.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn find(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    const BLOCK: usize = 512;
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let queries: Vec<&[f32]> = (start..end).map(|i| images.row(i)).collect();
        let scores = images.similarities(&queries)?;
        let width = end - start;
        for i in 0..n {
            for (k, j) in (start..end).enumerate() {
                if j > i && scores[i * width + k] >= threshold {
                    let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                    if a != b {
                        parent[a] = b;
                    }
                }
            }
        }
    }
    let mut groups: std::collections::HashMap<usize, Vec<i64>> = std::collections::HashMap::new();
    for i in 0..n {
        let root = find(&mut parent, i);
        groups.entry(root).or_default().push(images.ids()[i]);
    }
    let mut groups: Vec<Vec<i64>> = groups.into_values().filter(|g| g.len() > 1).collect();
    for g in &mut groups {
        g.sort_unstable();
    }
    groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    Ok(groups)
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
    fn more_like_leaves_out_the_examples() {
        let got = more_like(&matrix(), &[1], 1).unwrap();
        assert_eq!(got[0].0, 4);
    }

    #[test]
    fn near_duplicates_group_close_vectors() {
        assert_eq!(near_duplicates(&matrix(), 0.99).unwrap(), vec![vec![1, 4]]);
    }
}
