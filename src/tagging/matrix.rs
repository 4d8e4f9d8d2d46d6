//! The library's image embeddings, as rows of one matrix. Every vector is kept twice: in half
//! precision in memory, for the passes that read the whole library for one query (one label's
//! column, a search: half the bytes of f32, and memory bandwidth is what bounds them), and
//! exactly (f32), in memory or in a file beside the database, for full scoring and for the few
//! photos whose tag or rank a half-precision score cannot settle. Decisions are always those the
//! exact vectors give: a half-precision score comes with a bound on how far it can be off.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

use candle_core::{Device, Tensor};
use half::f16;
use rayon::prelude::*;

use super::kernels::{dot, dots_f16};
use crate::error::{Error, Result};

/// Exact rows kept outside memory, in the matrix's row order (see `store::VectorFile`).
pub trait RowFile: Send + Sync + fmt::Debug {
    /// Reads rows `first..` into `out` (a whole number of rows), which must be those of the
    /// images `ids` (a file changed behind the matrix is an error, not someone else's vector).
    fn read(&self, first: usize, ids: &[i64], out: &mut [f32]) -> Result<()>;
    /// Appends a row.
    fn push(&mut self, id: i64, vector: &[f32]) -> Result<()>;
    /// Overwrites row `row`.
    fn set(&mut self, row: usize, id: i64, vector: &[f32]) -> Result<()>;
    /// Moves the last row into `row` and drops the last.
    fn swap_remove(&mut self, row: usize) -> Result<()>;
    /// Hands every row to `each`, in order.
    fn scan(&self, each: &mut dyn FnMut(i64, &[f32]) -> Result<()>) -> Result<()>;
    /// Records that the rows are what the library database held at its embedding `generation`.
    fn commit(&mut self, generation: i64) -> Result<()>;
}

/// Where the exact rows are.
#[derive(Debug)]
enum Exact {
    Memory(Vec<f32>),
    File(Box<dyn RowFile>),
}

/// Every stored image embedding of one model.
#[derive(Debug)]
pub struct EmbeddingMatrix {
    ids: Vec<i64>,
    dim: usize,
    /// Row of each id.
    rows: HashMap<i64, usize>,
    /// Every row in half precision.
    compact: Vec<f16>,
    exact: Exact,
    /// No row is longer than this (an upper bound: removing rows does not lower it).
    max_norm: f32,
    /// Whether every value fits half precision (finite, within ±65504). Where one does not,
    /// every score is computed from the exact rows.
    compact_ok: bool,
}

impl Default for EmbeddingMatrix {
    fn default() -> Self {
        EmbeddingMatrix {
            ids: Vec::new(),
            dim: 0,
            rows: HashMap::new(),
            compact: Vec::new(),
            exact: Exact::Memory(Vec::new()),
            max_norm: 0.0,
            compact_ok: true,
        }
    }
}

/// Scores of every row against one query from the half-precision rows.
#[derive(Debug, Clone)]
pub struct Approximate {
    /// Per row, in row order.
    pub scores: Vec<f32>,
    /// No score lies further than this from the one the exact rows give (0 when they gave it).
    pub error: f32,
}

/// Rows per block of full scoring: the block's scores stay small (8192 × 300 labels = 10 MB).
pub const BLOCK_ROWS: usize = 8192;
/// Rows per parallel task of the row-by-row passes.
const ROWS_PER_TASK: usize = 4096;
/// Up to this many queries are scored row by row instead of by a matrix product.
const DIRECT_QUERIES: usize = 4;

impl EmbeddingMatrix {
    /// Builds the matrix, in memory, from `(image id, vector)` pairs with distinct ids, all of
    /// one width.
    pub fn from_rows(rows: Vec<(i64, Vec<f32>)>) -> Result<Self> {
        let mut matrix = EmbeddingMatrix::default();
        if let Some((_, first)) = rows.first() {
            matrix.dim = first.len();
            matrix.ids.reserve(rows.len());
            matrix.compact.reserve(rows.len() * matrix.dim);
            if let Exact::Memory(data) = &mut matrix.exact {
                data.reserve(rows.len() * first.len());
            }
        }
        for (id, vector) in rows {
            matrix.upsert(id, &vector)?;
        }
        Ok(matrix)
    }

    /// A matrix whose exact rows live in `file`, starting from the rows it holds.
    pub fn on_file(file: Box<dyn RowFile>) -> Result<Self> {
        let mut matrix = EmbeddingMatrix::default();
        file.scan(&mut |id, vector| matrix.adopt(id, vector))?;
        matrix.exact = Exact::File(file);
        Ok(matrix)
    }

    /// Records, where the exact rows live in a file, that they are what the library database
    /// held at its embedding `generation`.
    pub fn commit(&mut self, generation: i64) -> Result<()> {
        match &mut self.exact {
            Exact::Memory(_) => Ok(()),
            Exact::File(file) => file.commit(generation),
        }
    }

    /// Adds image `id`'s vector, or replaces it if the image is there already.
    pub fn upsert(&mut self, id: i64, vector: &[f32]) -> Result<()> {
        self.check_width(id, vector)?;
        match self.rows.get(&id).copied() {
            Some(row) => {
                match &mut self.exact {
                    Exact::Memory(data) => {
                        data[row * self.dim..(row + 1) * self.dim].copy_from_slice(vector)
                    }
                    Exact::File(file) => file.set(row, id, vector)?,
                }
                self.note(vector);
                for (c, x) in self.compact[row * self.dim..(row + 1) * self.dim]
                    .iter_mut()
                    .zip(vector)
                {
                    *c = f16::from_f32(*x);
                }
            }
            None => {
                match &mut self.exact {
                    Exact::Memory(data) => data.extend_from_slice(vector),
                    Exact::File(file) => file.push(id, vector)?,
                }
                self.append(id, vector);
            }
        }
        Ok(())
    }

    /// Adds the next row of a file that holds it already (loading the file): only its
    /// half-precision copy is kept in memory.
    fn adopt(&mut self, id: i64, vector: &[f32]) -> Result<()> {
        self.check_width(id, vector)?;
        if self.rows.contains_key(&id) {
            return Err(Error::invalid(format!(
                "image {id} has two rows in the embeddings file"
            )));
        }
        // The exact row stays in the file.
        self.append(id, vector);
        Ok(())
    }

    fn check_width(&mut self, id: i64, vector: &[f32]) -> Result<()> {
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
        Ok(())
    }

    fn append(&mut self, id: i64, vector: &[f32]) {
        self.rows.insert(id, self.ids.len());
        self.ids.push(id);
        self.note(vector);
        self.compact
            .extend(vector.iter().map(|x| f16::from_f32(*x)));
    }

    /// Keeps the bounds the half-precision scores' error depends on.
    fn note(&mut self, vector: &[f32]) {
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        self.max_norm = self.max_norm.max(norm);
        if !vector.iter().all(|x| x.is_finite() && x.abs() <= 65504.0) || !norm.is_finite() {
            self.compact_ok = false;
        }
    }

    /// Takes image `id` out (the last row moves into its place).
    pub fn remove(&mut self, id: i64) -> Result<()> {
        let Some(row) = self.rows.remove(&id) else {
            return Ok(());
        };
        let (dim, last) = (self.dim, self.ids.len() - 1);
        match &mut self.exact {
            Exact::Memory(data) => {
                data.copy_within(last * dim..(last + 1) * dim, row * dim);
                data.truncate(last * dim);
            }
            Exact::File(file) => file.swap_remove(row)?,
        }
        if row != last {
            let moved = self.ids[last];
            self.ids[row] = moved;
            self.compact
                .copy_within(last * dim..(last + 1) * dim, row * dim);
            self.rows.insert(moved, row);
        }
        self.ids.pop();
        self.compact.truncate(last * dim);
        Ok(())
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

    /// The row of image `id`.
    pub fn row_of(&self, id: i64) -> Option<usize> {
        self.rows.get(&id).copied()
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Row `i` in half precision.
    pub fn compact_row(&self, i: usize) -> &[f16] {
        &self.compact[i * self.dim..(i + 1) * self.dim]
    }

    /// Whether the half-precision rows hold every value (see [`EmbeddingMatrix::approximate`]).
    pub fn compact_ok(&self) -> bool {
        self.compact_ok
    }

    /// No row is longer than this.
    pub fn max_norm(&self) -> f32 {
        self.max_norm
    }

    /// Image `id`'s exact vector.
    pub fn vector(&self, id: i64) -> Result<Option<Vec<f32>>> {
        let Some(row) = self.row_of(id) else {
            return Ok(None);
        };
        self.with_exact(row..row + 1, |v| Ok(Some(v.to_vec())))
    }

    /// The rows in blocks of [`BLOCK_ROWS`], for passes that score the whole library.
    pub fn blocks(&self) -> impl Iterator<Item = Range<usize>> + use<> {
        let n = self.len();
        (0..n)
            .step_by(BLOCK_ROWS)
            .map(move |start| start..(start + BLOCK_ROWS).min(n))
    }

    /// Runs `f` on the exact rows `rows`, one after another in one slice.
    pub fn with_exact<R>(
        &self,
        rows: Range<usize>,
        f: impl FnOnce(&[f32]) -> Result<R>,
    ) -> Result<R> {
        let (dim, count) = (self.dim, rows.len());
        match &self.exact {
            Exact::Memory(data) => f(&data[rows.start * dim..rows.end * dim]),
            Exact::File(file) => {
                let mut buffer = vec![0.0f32; count * dim];
                file.read(rows.start, &self.ids[rows.clone()], &mut buffer)?;
                f(&buffer)
            }
        }
    }

    fn check_queries(&self, queries: &[&[f32]]) -> Result<()> {
        match queries.iter().find(|q| q.len() != self.dim) {
            Some(bad) => Err(Error::invalid(format!(
                "a query of {} values against embeddings of {}",
                bad.len(),
                self.dim
            ))),
            None => Ok(()),
        }
    }

    /// Exact cosine similarity of the images in `rows` with each of `queries` (normalised
    /// vectors), as a `rows × queries` row-major matrix.
    pub fn similarities(&self, rows: Range<usize>, queries: &[&[f32]]) -> Result<Vec<f32>> {
        if rows.is_empty() || queries.is_empty() {
            return Ok(Vec::new());
        }
        self.check_queries(queries)?;
        let (dim, m) = (self.dim, queries.len());
        let count = rows.len();
        if matches!(self.exact, Exact::File(_)) && count > BLOCK_ROWS {
            // Rows in a file are read a block at a time.
            let mut out = Vec::with_capacity(count * m);
            for start in rows.clone().step_by(BLOCK_ROWS) {
                let end = (start + BLOCK_ROWS).min(rows.end);
                out.extend(self.similarities(start..end, queries)?);
            }
            return Ok(out);
        }
        self.with_exact(rows, |data| {
            if m <= DIRECT_QUERIES {
                // A few queries: one pass over the rows in place. Handing them to a matrix
                // product would first copy them all.
                let mut out = vec![0.0f32; count * m];
                out.par_chunks_mut(ROWS_PER_TASK * m)
                    .zip(data.par_chunks(ROWS_PER_TASK * dim))
                    .for_each(|(scores, rows)| {
                        for (scores, row) in scores.chunks_mut(m).zip(rows.chunks_exact(dim)) {
                            for (score, query) in scores.iter_mut().zip(queries) {
                                *score = dot(row, query);
                            }
                        }
                    });
                return Ok(out);
            }
            let images = Tensor::from_slice(data, (count, dim), &Device::Cpu)?;
            let mut flat = Vec::with_capacity(m * dim);
            for q in queries {
                flat.extend_from_slice(q);
            }
            let queries = Tensor::from_vec(flat, (m, dim), &Device::Cpu)?;
            Ok(images.matmul(&queries.t()?)?.flatten_all()?.to_vec1()?)
        })
    }

    /// Every image's cosine with `query` from the half-precision rows, with the bound on their
    /// error: one pass over half the bytes of the exact rows.
    pub fn approximate(&self, query: &[f32]) -> Result<Approximate> {
        self.check_queries(&[query])?;
        if !self.compact_ok {
            return Ok(Approximate {
                scores: self.similarities(0..self.len(), &[query])?,
                error: 0.0,
            });
        }
        let dim = self.dim;
        let mut scores = vec![0.0f32; self.len()];
        scores
            .par_chunks_mut(ROWS_PER_TASK)
            .zip(self.compact.par_chunks(ROWS_PER_TASK * dim))
            .for_each(|(out, rows)| dots_f16(rows, dim, query, out));
        Ok(Approximate {
            scores,
            error: self.error_bound(query),
        })
    }

    /// How far a half-precision cosine with `query` can lie from the exact one: rounding each
    /// value to half precision errs by at most 2⁻¹¹ of it (2⁻²⁵ below half precision's normal
    /// range), and the two sums of `dim` products in f32 by at most `dim`·2⁻²⁴ of their
    /// magnitudes each.
    fn error_bound(&self, query: &[f32]) -> f32 {
        let l2 = query
            .iter()
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            .sqrt();
        let l1: f64 = query.iter().map(|x| f64::from(x.abs())).sum();
        let relative = 2f64.powi(-11) + 2.0 * self.dim as f64 * 2f64.powi(-24);
        let bound =
            l2 * f64::from(self.max_norm) * relative * (1.0 + 2f64.powi(-11)) + l1 * 2f64.powi(-25);
        // A margin for the bound's own rounding.
        (bound * 1.01 + 1e-7) as f32
    }

    /// Exact cosines of `query` with the images in `rows` (row numbers).
    pub fn exact_dots(&self, rows: &[usize], query: &[f32]) -> Result<Vec<f32>> {
        self.check_queries(&[query])?;
        let dim = self.dim;
        match &self.exact {
            Exact::Memory(data) => Ok(rows
                .par_iter()
                .map(|r| dot(&data[r * dim..(r + 1) * dim], query))
                .collect()),
            Exact::File(file) => rows
                .par_iter()
                .map_init(
                    || vec![0.0f32; dim],
                    |buffer, r| {
                        file.read(*r, &self.ids[*r..*r + 1], buffer)?;
                        Ok(dot(buffer, query))
                    },
                )
                .collect(),
        }
    }
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
        m.remove(2).unwrap();
        assert_eq!(m.ids(), &[1, 3]);
        assert_eq!(m.vector(1).unwrap(), Some(vec![0.0, -1.0]));
        assert_eq!(m.vector(3).unwrap(), Some(vec![0.6, 0.8]));
        assert!(!m.contains(2));
        assert!(m.upsert(4, &[1.0]).is_err(), "a vector of another width");
        // The half-precision rows moved with the exact ones.
        let approx = m.approximate(&[0.0, 1.0]).unwrap();
        assert!((approx.scores[0] + 1.0).abs() <= approx.error);
        assert!((approx.scores[1] - 0.8).abs() <= approx.error);
    }

    fn lcg(seed: &mut u32) -> f32 {
        *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (*seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }

    #[test]
    fn a_few_queries_score_like_the_matrix_product() {
        // 37 values per row: the eight-lane loop's tail is exercised too.
        let mut seed = 7u32;
        let rows: Vec<(i64, Vec<f32>)> = (0..9000)
            .map(|i| (i, (0..37).map(|_| lcg(&mut seed)).collect()))
            .collect();
        let matrix = EmbeddingMatrix::from_rows(rows).unwrap();
        let queries: Vec<Vec<f32>> = (0..6)
            .map(|_| (0..37).map(|_| lcg(&mut seed)).collect())
            .collect();
        let all: Vec<&[f32]> = queries.iter().map(Vec::as_slice).collect();
        // Six queries go through the matrix product, three row by row.
        let product = matrix.similarities(0..9000, &all).unwrap();
        let direct = matrix.similarities(0..9000, &all[..3]).unwrap();
        assert_eq!(direct.len(), 9000 * 3);
        for i in 0..9000 {
            for q in 0..3 {
                let (a, b) = (direct[i * 3 + q], product[i * 6 + q]);
                assert!((a - b).abs() < 1e-5, "row {i} query {q}: {a} vs {b}");
            }
        }
        // A range of rows scores like those rows of the whole.
        let part = matrix.similarities(100..200, &all[..1]).unwrap();
        assert_eq!(
            part,
            direct[300..600]
                .iter()
                .step_by(3)
                .copied()
                .collect::<Vec<_>>()
        );
        assert!(
            matrix.similarities(0..9000, &[&[1.0, 2.0]]).is_err(),
            "a query of another width"
        );
    }

    #[test]
    fn half_precision_scores_stay_within_their_bound() {
        // Unit vectors of 512 values, as a model's embeddings are, and a few of other lengths.
        let mut seed = 11u32;
        let rows: Vec<(i64, Vec<f32>)> = (0..3000)
            .map(|i| {
                let mut v: Vec<f32> = (0..512).map(|_| lcg(&mut seed)).collect();
                let scale = if i % 100 == 0 { 3.0 } else { 1.0 };
                super::super::scoring::normalize(&mut v);
                (i, v.into_iter().map(|x| x * scale).collect())
            })
            .collect();
        let matrix = EmbeddingMatrix::from_rows(rows).unwrap();
        let mut query: Vec<f32> = (0..512).map(|_| lcg(&mut seed)).collect();
        super::super::scoring::normalize(&mut query);
        let approx = matrix.approximate(&query).unwrap();
        let exact = matrix.similarities(0..3000, &[&query]).unwrap();
        let worst = approx
            .scores
            .iter()
            .zip(&exact)
            .map(|(a, e)| (a - e).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= approx.error, "{worst} > {}", approx.error);
        assert!(approx.error < 2e-3, "the bound is useful: {}", approx.error);
        assert!(worst > 0.0, "half precision differs from f32 somewhere");
        let rows: Vec<usize> = vec![5, 17, 2999];
        let dots = matrix.exact_dots(&rows, &query).unwrap();
        for (r, d) in rows.iter().zip(dots) {
            assert!((d - exact[*r]).abs() < 1e-6);
        }
    }

    #[test]
    fn values_beyond_half_precision_are_scored_exactly() {
        let matrix =
            EmbeddingMatrix::from_rows(vec![(1, vec![1e6, 0.0]), (2, vec![0.0, 1.0])]).unwrap();
        let approx = matrix.approximate(&[1.0, 0.0]).unwrap();
        assert_eq!((approx.scores, approx.error), (vec![1e6, 0.0], 0.0));
    }
}
