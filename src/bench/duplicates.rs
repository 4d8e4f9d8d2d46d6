//! Near-duplicate groups of a large library: hashing against comparing every pair, on random
//! embeddings with planted near-copies.

use std::time::Instant;

use super::{BenchArgs, Lcg, Report, random_unit_vectors, reset_peak_rss};
use crate::tagging::EmbeddingMatrix;

/// Near-duplicate groups of `--library` random embeddings among which 1 % of the photos are
/// planted groups of two to four near-copies (cosines 0.96 to 0.995 with their original), found
/// by hashing; beside every pair compared where that takes minutes, not hours (up to 200k).
pub(super) fn duplicates_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    use crate::tagging::duplicates;
    let (n, dim) = (args.library, 512);
    let mut rng = Lcg(17);
    let mut fresh = random_unit_vectors(dim, 23);
    let mut rows: Vec<(i64, Vec<f32>)> = Vec::with_capacity(n);
    let mut planted: Vec<Vec<i64>> = Vec::new();
    while rows.len() < n / 100 {
        let original = fresh.next().expect("endless");
        let mut group = Vec::new();
        for _ in 0..1 + rng.next() % 3 {
            let cos = 0.96 + 0.035 * (rng.next() % 1000) as f32 / 1000.0;
            let noise = fresh.next().expect("endless");
            let mut copy: Vec<f32> = original
                .iter()
                .zip(&noise)
                .map(|(o, e)| o * cos + e * (1.0 - cos * cos).sqrt())
                .collect();
            crate::tagging::scoring::normalize(&mut copy);
            group.push(rows.len() as i64);
            rows.push((rows.len() as i64, copy));
        }
        group.push(rows.len() as i64);
        rows.push((rows.len() as i64, original));
        planted.push(group);
    }
    while rows.len() < n {
        rows.push((rows.len() as i64, fresh.next().expect("endless")));
    }
    // Shuffled, so that planted copies are not neighbours in the matrix.
    for i in (1..rows.len()).rev() {
        let j = rng.next() as usize % (i + 1);
        rows.swap(i, j);
    }
    let matrix = EmbeddingMatrix::from_rows(rows)?;
    for g in &mut planted {
        g.sort_unstable();
    }
    planted.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
    reset_peak_rss();
    let started = Instant::now();
    let found = duplicates::hashed(&matrix, 0.95, duplicates::Hashing::default())?;
    let hashed_s = started.elapsed().as_secs_f64();
    let rss = super::peak_rss_mib().unwrap_or(0.0);
    report.line(
        format!(
            "near-duplicate groups (cosine ≥ 0.95) among {n} photos by hashing: {} groups in {hashed_s:.1} s; the {} planted groups found exactly: {} (peak RSS {rss:.0} MiB, the matrix in memory included)",
            found.len(),
            planted.len(),
            found == planted
        ),
        serde_json::json!({"what": "duplicates_hashed", "images": n, "groups": found.len(), "planted": planted.len(), "same_as_planted": found == planted, "seconds": hashed_s}),
    );
    if n <= 200_000 {
        let started = Instant::now();
        let exact = duplicates::exact(&matrix, 0.95)?;
        let exact_s = started.elapsed().as_secs_f64();
        report.line(
            format!(
                "  every pair compared: {} groups in {exact_s:.1} s; the same groups: {}",
                exact.len(),
                exact == found
            ),
            serde_json::json!({"what": "duplicates_exact", "images": n, "groups": exact.len(), "same_as_hashed": exact == found, "seconds": exact_s}),
        );
    }
    Ok(())
}
