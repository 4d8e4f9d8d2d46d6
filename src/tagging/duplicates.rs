//! Near-duplicate groups: photos whose embeddings are at least `threshold` similar, connected
//! through such pairs. A small library compares every pair; a large one compares only the pairs
//! that random-hyperplane hashing puts in one bucket of some table (similar embeddings fall on
//! the same side of most hyperplanes), so the work grows with the library instead of its square.
//! Every pair is decided by its cosine, half precision first and exactly where that is too close
//! to call, so a group never holds photos the exact comparison would not connect.

use half::f16;

use super::kernels::dots_f16;
use super::matrix::EmbeddingMatrix;
use crate::error::Result;

/// Up to this many photos every pair is compared (about a minute at 100k on two cores would be
/// too slow; 20k pairs up in seconds).
pub const EXACT_UP_TO: usize = 20_000;

/// How a large library is hashed.
#[derive(Debug, Clone, Copy)]
pub struct Hashing {
    /// Hash tables; a pair is compared when it shares a bucket in any of them.
    pub tables: usize,
    /// Hyperplanes per table (at most 32); `None`: chosen from the threshold.
    pub bits: Option<usize>,
    pub seed: u64,
}

impl Default for Hashing {
    fn default() -> Self {
        Hashing {
            tables: 80,
            bits: None,
            seed: 0x5EED_D0B1,
        }
    }
}

impl Hashing {
    /// Hyperplanes per table for `threshold`: as many as keep a pair at the threshold in one
    /// table's bucket with probability at least 0.12 (two photos at cosine c fall on the same
    /// side of a random hyperplane with probability 1 − arccos(c)/π), so that with 80 tables
    /// such a pair is missed with probability below 4·10⁻⁵, and pairs that are merely alike
    /// rarely share a bucket.
    fn bits_for(&self, threshold: f32) -> usize {
        if let Some(bits) = self.bits {
            return bits.clamp(1, 32);
        }
        let same_side = 1.0 - f64::from(threshold.clamp(-1.0, 1.0)).acos() / std::f64::consts::PI;
        if same_side >= 1.0 {
            return 24;
        }
        ((0.12f64.ln() / same_side.ln()).floor() as usize).clamp(10, 24)
    }
}

/// The groups of `images` whose embeddings are at least `threshold` similar, largest first
/// (ids ascending within a group); singletons are left out.
pub fn near_duplicates(images: &EmbeddingMatrix, threshold: f32) -> Result<Vec<Vec<i64>>> {
    if images.len() <= EXACT_UP_TO {
        exact(images, threshold)
    } else {
        hashed(images, threshold, Hashing::default())
    }
}

/// Every pair compared, in blocks of rows (memory stays at one block of scores).
pub fn exact(images: &EmbeddingMatrix, threshold: f32) -> Result<Vec<Vec<i64>>> {
    let n = images.len();
    let mut sets = Sets::new(n);
    const BLOCK: usize = 512;
    for start in (0..n).step_by(BLOCK) {
        let end = (start + BLOCK).min(n);
        let scores = images.with_exact(start..end, |block| {
            let queries: Vec<&[f32]> = block.chunks_exact(images.dim()).collect();
            images.similarities(0..n, &queries)
        })?;
        let width = end - start;
        for i in 0..n {
            for (k, j) in (start..end).enumerate() {
                if j > i && scores[i * width + k] >= threshold {
                    sets.join(i, j);
                }
            }
        }
    }
    Ok(sets.groups(images.ids()))
}

/// The pairs that share a bucket of some hash table compared (see the module's description).
pub fn hashed(images: &EmbeddingMatrix, threshold: f32, hashing: Hashing) -> Result<Vec<Vec<i64>>> {
    let (n, dim) = (images.len(), images.dim());
    let bits = hashing.bits_for(threshold);
    let keys = bucket_keys(images, hashing.tables, bits, hashing.seed)?;
    let mut sets = Sets::new(n);
    // How far a half-precision cosine of two rows can be off: each value rounded by at most
    // 2⁻¹¹ of itself, and the f32 sums' rounding (see `EmbeddingMatrix::approximate`).
    let norm = f64::from(images.max_norm());
    let error = (norm
        * norm
        * (2.0 * 2f64.powi(-11) + 2f64.powi(-22) + 2.0 * dim as f64 * 2f64.powi(-24))
        * 1.01
        + 1e-6) as f32;
    let mut row = vec![0.0f32; dim];
    let mut score = [0.0f32; 1];
    let mut order: Vec<u64> = Vec::with_capacity(n);
    for table in keys.chunks_exact(n) {
        order.clear();
        order.extend(
            table
                .iter()
                .enumerate()
                .map(|(i, key)| (u64::from(*key) << 32) | i as u64),
        );
        order.sort_unstable();
        for bucket in order.chunk_by(|a, b| a >> 32 == b >> 32) {
            if bucket.len() < 2 {
                continue;
            }
            for (k, a) in bucket.iter().enumerate() {
                let i = (a & 0xFFFF_FFFF) as usize;
                half::slice::HalfFloatSliceExt::convert_to_f32_slice(
                    images.compact_row(i),
                    &mut row,
                );
                for b in &bucket[k + 1..] {
                    let j = (b & 0xFFFF_FFFF) as usize;
                    if sets.find(i) == sets.find(j) {
                        continue;
                    }
                    let similar = if images.compact_ok() {
                        dots_f16(images.compact_row(j), dim, &row, &mut score);
                        if score[0] >= threshold + error {
                            true
                        } else if score[0] < threshold - error {
                            false
                        } else {
                            exact_pair(images, i, j)? >= threshold
                        }
                    } else {
                        exact_pair(images, i, j)? >= threshold
                    };
                    if similar {
                        sets.join(i, j);
                    }
                }
            }
        }
    }
    Ok(sets.groups(images.ids()))
}

/// The exact cosine of rows `i` and `j`.
fn exact_pair(images: &EmbeddingMatrix, i: usize, j: usize) -> Result<f32> {
    let a = images.with_exact(i..i + 1, |v| Ok(v.to_vec()))?;
    Ok(images.exact_dots(&[j], &a)?[0])
}

/// Each row's bucket in each table (`tables × rows`, table-major): the signs of its projections
/// on `bits` random hyperplanes through the library's mean embedding (so that what all photos
/// share does not put them all on one side).
fn bucket_keys(
    images: &EmbeddingMatrix,
    tables: usize,
    bits: usize,
    seed: u64,
) -> Result<Vec<u32>> {
    use candle_core::{Device, Tensor};
    let (n, dim) = (images.len(), images.dim());
    let mut mean = vec![0.0f64; dim];
    for r in 0..n {
        for (m, x) in mean.iter_mut().zip(images.compact_row(r)) {
            *m += f64::from(x.to_f32());
        }
    }
    let mean: Vec<f32> = mean.iter().map(|m| (m / n.max(1) as f64) as f32).collect();
    let planes = tables * bits;
    let mut rng = SplitMix(seed);
    let normals: Vec<f32> = (0..planes * dim).map(|_| rng.normal()).collect();
    let normals = Tensor::from_vec(normals, (planes, dim), &Device::Cpu)?;
    let mut keys = vec![0u32; tables * n];
    let mut centred = Vec::new();
    for rows in images.blocks() {
        centred.clear();
        for r in rows.clone() {
            centred.extend(
                images
                    .compact_row(r)
                    .iter()
                    .zip(&mean)
                    .map(|(x, m)| f16::to_f32(*x) - m),
            );
        }
        let block = Tensor::from_slice(&centred, (rows.len(), dim), &Device::Cpu)?;
        let projections: Vec<f32> = block.matmul(&normals.t()?)?.flatten_all()?.to_vec1()?;
        for (k, r) in rows.enumerate() {
            let signs = &projections[k * planes..(k + 1) * planes];
            for t in 0..tables {
                let mut key = 0u32;
                for (b, p) in signs[t * bits..(t + 1) * bits].iter().enumerate() {
                    key |= u32::from(*p > 0.0) << b;
                }
                keys[t * n + r] = key;
            }
        }
    }
    Ok(keys)
}

/// Disjoint sets of rows (union–find with path halving).
struct Sets {
    parent: Vec<u32>,
}

impl Sets {
    fn new(n: usize) -> Self {
        Sets {
            parent: (0..n as u32).collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] as usize != i {
            self.parent[i] = self.parent[self.parent[i] as usize];
            i = self.parent[i] as usize;
        }
        i
    }

    fn join(&mut self, i: usize, j: usize) {
        let (a, b) = (self.find(i), self.find(j));
        if a != b {
            self.parent[a] = b as u32;
        }
    }

    /// The sets of more than one row, as ids, largest first.
    fn groups(mut self, ids: &[i64]) -> Vec<Vec<i64>> {
        let mut groups: std::collections::HashMap<usize, Vec<i64>> =
            std::collections::HashMap::new();
        for (i, id) in ids.iter().enumerate() {
            let root = self.find(i);
            groups.entry(root).or_default().push(*id);
        }
        let mut groups: Vec<Vec<i64>> = groups.into_values().filter(|g| g.len() > 1).collect();
        for g in &mut groups {
            g.sort_unstable();
        }
        groups.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        groups
    }
}

/// A small deterministic generator for the hyperplanes.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn normal(&mut self) -> f32 {
        let u1 = ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let u2 = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tagging::scoring::normalize;

    /// `n` random unit vectors with `groups` planted groups of two to four near-copies (cosines
    /// 0.96 to 0.995 with their original), in shuffled positions.
    pub(crate) fn planted(n: usize, groups: usize, dim: usize, seed: u64) -> EmbeddingMatrix {
        let mut rng = SplitMix(seed);
        let mut rows: Vec<Vec<f32>> = Vec::with_capacity(n);
        let random = |rng: &mut SplitMix| {
            let mut v: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            normalize(&mut v);
            v
        };
        for g in 0..groups {
            let original = random(&mut rng);
            for _ in 0..(1 + g % 3) {
                // original·cos + noise·sin, noise orthogonal enough in many dimensions.
                let cos = 0.96 + 0.035 * ((rng.next() % 1000) as f32 / 1000.0);
                let noise = random(&mut rng);
                let mut copy: Vec<f32> = original
                    .iter()
                    .zip(&noise)
                    .map(|(o, e)| o * cos + e * (1.0 - cos * cos).sqrt())
                    .collect();
                normalize(&mut copy);
                rows.push(copy);
            }
            rows.push(original);
        }
        while rows.len() < n {
            rows.push(random(&mut rng));
        }
        for i in (1..rows.len()).rev() {
            rows.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        EmbeddingMatrix::from_rows(
            rows.into_iter()
                .enumerate()
                .map(|(i, v)| (i as i64, v))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn hashing_finds_the_groups_every_pair_finds() {
        let images = planted(6000, 150, 128, 1);
        let want = exact(&images, 0.95).unwrap();
        assert_eq!(want.len(), 150, "the planted groups, and no others");
        assert_eq!(hashed(&images, 0.95, Hashing::default()).unwrap(), want);
        // With a threshold the planted copies straddle, the groups still match.
        let want = exact(&images, 0.975).unwrap();
        assert_eq!(hashed(&images, 0.975, Hashing::default()).unwrap(), want);
    }

    #[test]
    fn too_few_tables_can_miss_but_never_invent_a_pair() {
        // One table of many hyperplanes misses pairs; what it finds is still only true pairs.
        let images = planted(3000, 100, 64, 2);
        let want = exact(&images, 0.95).unwrap();
        let sparse = hashed(
            &images,
            0.95,
            Hashing {
                tables: 1,
                bits: Some(24),
                seed: 3,
            },
        )
        .unwrap();
        assert!(sparse.len() < want.len());
        for group in &sparse {
            assert!(
                want.iter().any(|w| group.iter().all(|id| w.contains(id))),
                "{group:?} is not within an exact group"
            );
        }
    }
}
