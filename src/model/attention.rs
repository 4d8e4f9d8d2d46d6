//! Multi-head attention over the fused `[batch·tokens, 3·width]` q|k|v projection, as a candle
//! custom op: q, k and v are read straight out of the projection and each head's output is
//! written where the next projection reads it, with no transposes in between.
//!
//! A head's products are small (ViT-B/32 has 50 tokens of 64 values per head), too small for
//! the `gemm` crate's packing to pay off, and its softmax ran one `exp` at a time. Where the CPU
//! has AVX-512F and the head width is a multiple of 16, each head runs on a kernel of its own
//! instead: K is transposed once into a scratch block, each query row's scores are summed in
//! registers (16 keys per register, up to 64 at a time), the softmax runs 16 lanes at a time, and
//! the weighted sum of V rows is kept in registers too. Elsewhere the `gemm` crate runs both
//! products.

use crate::model::kernels::Detected;
use candle_core::{CpuStorage, CustomOp1, Layout, Shape};
use rayon::prelude::*;

use crate::model::fused::{contiguous, exp};
use crate::model::matmul::SendPtr;

/// Multi-head attention over a fused `[batch·tokens, 3·width]` q|k|v matrix (q already scaled),
/// producing `[batch·tokens, width]`.
pub struct Attention {
    pub batch: usize,
    pub tokens: usize,
    pub heads: usize,
    /// Each token sees only itself and earlier tokens (the text tower).
    pub causal: bool,
}

/// How one head is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadKernel {
    /// cliptag's own (head width a multiple of 16), with the proof that this CPU has AVX-512F:
    /// only [`head_kernel`] makes one.
    Avx512(Detected),
    /// Both products through the `gemm` crate.
    Gemm,
}

/// The kernel heads `head_width` values wide run on, on this CPU.
pub fn head_kernel(head_width: usize) -> HeadKernel {
    match Detected::avx512f() {
        Some(avx512) if head_width > 0 && head_width.is_multiple_of(LANES) => {
            HeadKernel::Avx512(avx512)
        }
        _ => HeadKernel::Gemm,
    }
}

/// Values in one 512-bit register.
const LANES: usize = 16;

/// Where one head of one image reads and writes.
#[derive(Clone, Copy)]
struct Head<'a> {
    qkv: &'a [f32],
    /// Offsets into `qkv` of the head's first query, key and value.
    q: usize,
    k: usize,
    v: usize,
    /// Values from one token's row to the next in `qkv` (3·width).
    stride: usize,
    tokens: usize,
    width: usize,
    causal: bool,
}

impl Head<'_> {
    fn visible(&self, row: usize) -> usize {
        if self.causal { row + 1 } else { self.tokens }
    }
}

impl Attention {
    /// The attention output for `qkv`, each head on `kernel`.
    pub fn run(&self, qkv: &[f32], kernel: HeadKernel) -> candle_core::Result<Vec<f32>> {
        let (b, t, h) = (self.batch, self.tokens, self.heads);
        if b * t == 0 || !qkv.len().is_multiple_of(3 * b * t) {
            candle_core::bail!("attention: input is not [batch·tokens, 3·width]");
        }
        let width = qkv.len() / (b * t) / 3;
        if h == 0 || !width.is_multiple_of(h) {
            candle_core::bail!("attention: width {width} is not divisible by {h} heads");
        }
        let dh = width / h;
        if matches!(kernel, HeadKernel::Avx512(_)) && !dh.is_multiple_of(LANES) {
            candle_core::bail!("attention: heads {dh} wide do not fit the 16-lane kernel");
        }
        let stride = 3 * width;
        let mut out = vec![0.0f32; b * t * width];
        let out_ptr = SendPtr(out.as_mut_ptr());
        (0..b * h)
            .into_par_iter()
            .for_each_init(Vec::new, |scratch, job| {
                let (batch, head) = (job / h, job % h);
                let base = batch * t * stride + head * dh;
                let job = Head {
                    qkv,
                    q: base,
                    k: base + width,
                    v: base + 2 * width,
                    stride,
                    tokens: t,
                    width: dh,
                    causal: self.causal,
                };
                // SAFETY: each job writes only its own t × dh block of `out`: rows batch·t.., columns
                // head·dh.., `width` apart. The 16-lane kernel holds the proof that this CPU has
                // AVX-512F, and its heads are a whole number of lanes wide (checked above).
                unsafe {
                    let dst = out_ptr.at(batch * t * width + head * dh);
                    match kernel {
                        #[cfg(target_arch = "x86_64")]
                        HeadKernel::Avx512(_) => head_avx512(&job, scratch, dst, width),
                        _ => head_gemm(&job, scratch, dst, width),
                    }
                }
            });
        Ok(out)
    }
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "cliptag-attention"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = contiguous(storage, layout, "attention")?;
        let width = qkv.len() / (self.batch * self.tokens).max(1) / 3;
        let out = self.run(qkv, head_kernel(width / self.heads.max(1)))?;
        Ok((
            CpuStorage::F32(out),
            Shape::from((self.batch * self.tokens, width)),
        ))
    }
}

/// One head through the `gemm` crate: scores `Q Kᵀ`, a softmax per row, then `P V` into `out`
/// (rows `out_stride` apart).
///
/// # Safety
/// `out` must address `tokens` rows of `width` values, `out_stride` apart.
unsafe fn head_gemm(job: &Head, scores: &mut Vec<f32>, out: *mut f32, out_stride: usize) {
    let (t, dh, stride) = (job.tokens, job.width, job.stride as isize);
    scores.clear();
    scores.resize(t * t, 0.0);
    // SAFETY: q, k and v address t rows of dh values `stride` apart inside qkv; scores is t×t.
    unsafe {
        gemm::gemm(
            t,
            t,
            dh,
            scores.as_mut_ptr(),
            1,
            t as isize,
            false,
            job.qkv[job.q..].as_ptr(),
            1,
            stride,
            job.qkv[job.k..].as_ptr(),
            stride,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    for (i, row) in scores.chunks_mut(t).enumerate() {
        let visible = job.visible(i);
        softmax_in_place(&mut row[..visible]);
        row[visible..].fill(0.0);
    }
    // SAFETY: as this function's contract, and v as above.
    unsafe {
        gemm::gemm(
            t,
            dh,
            t,
            out,
            1,
            out_stride as isize,
            false,
            scores.as_ptr(),
            1,
            t as isize,
            job.qkv[job.v..].as_ptr(),
            1,
            stride,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn softmax_in_place(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0.0;
    for x in row.iter_mut() {
        *x = exp(*x - max);
        total += *x;
    }
    let scale = 1.0 / total;
    for x in row.iter_mut() {
        *x *= scale;
    }
}

/// One head on AVX-512F; `job.width` is a multiple of 16. Query rows go two at a time, so that
/// each register of Kᵀ or V loaded serves both and eight sums are in flight.
///
/// # Safety
/// The CPU has AVX-512F, and `out` addresses `tokens` rows of `width` values, `out_stride` apart.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn head_avx512(job: &Head, scratch: &mut Vec<f32>, out: *mut f32, out_stride: usize) {
    use std::arch::x86_64::*;
    let (t, dh) = (job.tokens, job.width);
    // Kᵀ, each of its dh rows padded with zeros to a whole number of registers, then two rows
    // of scores.
    let padded = t.next_multiple_of(LANES);
    scratch.clear();
    scratch.resize(dh * padded + ROWS * padded, 0.0);
    let (kt, scores) = scratch.split_at_mut(dh * padded);
    // Kᵀ's rows gathered 16 keys at a time (a scalar loop over each value took a third of
    // the head's time). Every index read is below the last key's end, checked here once.
    let last_key_end = job.k + (t - 1) * job.stride + dh;
    assert!(last_key_end <= job.qkv.len() && job.stride <= (i32::MAX as usize) / LANES);
    let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let key_starts = _mm512_mullo_epi32(lane, _mm512_set1_epi32(job.stride as i32));
    for j in (0..t).step_by(LANES) {
        let mask: __mmask16 = if t - j >= LANES {
            0xFFFF
        } else {
            (1 << (t - j)) - 1
        };
        let first = job.qkv[job.k + j * job.stride..].as_ptr();
        for (d, row) in kt.chunks_exact_mut(padded).enumerate() {
            // SAFETY: lane `l` (enabled only for keys `j + l < t`) reads value `d < dh` of
            // key `j + l`, below `last_key_end`; `row` holds `padded` values, and `j + 16` is
            // at most `padded`.
            unsafe {
                let keys = _mm512_mask_i32gather_ps::<4>(
                    _mm512_setzero_ps(),
                    mask,
                    key_starts,
                    first.add(d).cast(),
                );
                _mm512_storeu_ps(row.as_mut_ptr().add(j), keys);
            }
        }
    }
    let block = Block { job, kt, padded };
    let whole = t / ROWS * ROWS;
    for i in (0..whole).step_by(ROWS) {
        // SAFETY: as this function's contract.
        unsafe { block.rows::<ROWS>(i, scores, out, out_stride) };
    }
    for i in whole..t {
        // SAFETY: as this function's contract.
        unsafe { block.rows::<1>(i, scores, out, out_stride) };
    }
}

/// Query rows taken together.
const ROWS: usize = 4;

/// What the query rows of one head share: the head and its Kᵀ (`padded` values a row).
struct Block<'a> {
    job: &'a Head<'a>,
    kt: &'a [f32],
    padded: usize,
}

#[cfg(target_arch = "x86_64")]
impl Block<'_> {
    /// Rows `i .. i + R` of the output: their scores into `scores` (R rows of `padded`), the
    /// softmax, and the weighted sums into `out`.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `out` addresses the head's output rows, `out_stride` apart.
    #[target_feature(enable = "avx512f")]
    unsafe fn rows<const R: usize>(
        &self,
        i: usize,
        scores: &mut [f32],
        out: *mut f32,
        out_stride: usize,
    ) {
        let job = self.job;
        let padded = self.padded;
        // The last row sees the most keys; the others' scores past what they see are zeroed
        // after their softmax, so the weighted sums can run over the same keys.
        let seen = job.visible(i + R - 1);
        let columns = seen.next_multiple_of(LANES);
        let queries: [&[f32]; R] =
            std::array::from_fn(|r| &job.qkv[job.q + (i + r) * job.stride..][..job.width]);
        let mut j = 0;
        while j + 4 * LANES <= columns {
            self.scores::<R, 4>(&queries, j, scores);
            j += 4 * LANES;
        }
        match (columns - j) / LANES {
            3 => self.scores::<R, 3>(&queries, j, scores),
            2 => self.scores::<R, 2>(&queries, j, scores),
            1 => self.scores::<R, 1>(&queries, j, scores),
            _ => {}
        }
        for r in 0..R {
            let row = &mut scores[r * padded..][..seen];
            let visible = job.visible(i + r);
            softmax_avx512(&mut row[..visible]);
            row[visible..].fill(0.0);
        }
        let weights: [&[f32]; R] = std::array::from_fn(|r| &scores[r * padded..][..seen]);
        let mut d = 0;
        // SAFETY: `out` addresses the head's rows (this function's contract), so row `i` is
        // inside them.
        let out = unsafe { out.add(i * out_stride) };
        while d + 4 * LANES <= job.width {
            // SAFETY: the weights are `seen` keys long and `out` holds rows i .. i + R of the
            // head's width, `out_stride` apart; values d .. d + 64 lie within that width.
            unsafe { self.weighted::<R, 4>(&weights, d, out, out_stride) };
            d += 4 * LANES;
        }
        // SAFETY: as above, for the last 16, 32 or 48 values of the width.
        unsafe {
            match (job.width - d) / LANES {
                3 => self.weighted::<R, 3>(&weights, d, out, out_stride),
                2 => self.weighted::<R, 2>(&weights, d, out, out_stride),
                1 => self.weighted::<R, 1>(&weights, d, out, out_stride),
                _ => {}
            }
        }
    }

    /// The R queries' scores for keys `j0 .. j0 + 16·C`, kept in R·C registers over the head
    /// width. Safe: every bound it relies on is asserted.
    #[target_feature(enable = "avx512f")]
    fn scores<const R: usize, const C: usize>(
        &self,
        queries: &[&[f32]; R],
        j0: usize,
        scores: &mut [f32],
    ) {
        use std::arch::x86_64::*;
        let (kt, padded) = (self.kt, self.padded);
        let width = self.job.width;
        assert!(j0 + C * LANES <= padded && kt.len() >= width * padded);
        assert!(scores.len() >= R * padded && queries.iter().all(|q| q.len() == width));
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        for d in 0..width {
            let row = kt[d * padded + j0..].as_ptr();
            // SAFETY: the asserts above keep `row + 16c .. + 16` inside Kᵀ's row d.
            let keys: [__m512; C] =
                std::array::from_fn(|c| unsafe { _mm512_loadu_ps(row.add(c * LANES)) });
            for (acc, query) in acc.iter_mut().zip(queries) {
                let q = _mm512_set1_ps(query[d]);
                for (acc, keys) in acc.iter_mut().zip(&keys) {
                    *acc = _mm512_fmadd_ps(q, *keys, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (c, acc) in acc.iter().enumerate() {
                // SAFETY: asserted above.
                unsafe {
                    _mm512_storeu_ps(scores[r * padded + j0 + c * LANES..].as_mut_ptr(), *acc)
                };
            }
        }
    }

    /// Values `d0 .. d0 + 16·C` of the R rows' weighted sums of V rows, kept in R·C registers
    /// over the keys, stored to `out` (rows `out_stride` apart).
    ///
    /// # Safety
    /// The CPU has AVX-512F, and `out` addresses R rows of at least `d0 + 16·C` values,
    /// `out_stride` apart, that no other thread uses meanwhile.
    #[target_feature(enable = "avx512f")]
    unsafe fn weighted<const R: usize, const C: usize>(
        &self,
        weights: &[&[f32]; R],
        d0: usize,
        out: *mut f32,
        out_stride: usize,
    ) {
        use std::arch::x86_64::*;
        let job = self.job;
        let keys = weights[0].len();
        assert!(d0 + C * LANES <= job.width && keys <= job.tokens);
        assert!(weights.iter().all(|w| w.len() == keys));
        let mut acc = [[_mm512_setzero_ps(); C]; R];
        for j in 0..keys {
            let value = job.qkv[job.v + j * job.stride + d0..][..C * LANES].as_ptr();
            // SAFETY: the slice above holds 16·C values.
            let values: [__m512; C] =
                std::array::from_fn(|c| unsafe { _mm512_loadu_ps(value.add(c * LANES)) });
            for (acc, weights) in acc.iter_mut().zip(weights) {
                let w = _mm512_set1_ps(weights[j]);
                for (acc, values) in acc.iter_mut().zip(&values) {
                    *acc = _mm512_fmadd_ps(w, *values, *acc);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (c, acc) in acc.iter().enumerate() {
                // SAFETY: `out` holds R rows of `d0 + 16·C` values (this function's contract).
                unsafe { _mm512_storeu_ps(out.add(r * out_stride + d0 + c * LANES), *acc) };
            }
        }
    }
}

/// A softmax over `row` in place, 16 lanes at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn softmax_avx512(row: &mut [f32]) {
    use std::arch::x86_64::*;
    let lanes = |n: usize| -> u16 { if n >= LANES { 0xFFFF } else { (1u16 << n) - 1 } };
    let mut max = _mm512_set1_ps(f32::NEG_INFINITY);
    for start in (0..row.len()).step_by(LANES) {
        let mask = lanes(row.len() - start);
        // SAFETY: the mask covers only values inside `row`.
        let v = unsafe { _mm512_mask_loadu_ps(max, mask, row[start..].as_ptr()) };
        max = _mm512_max_ps(max, v);
    }
    let max = _mm512_reduce_max_ps(max);
    // Vectorised by the compiler: `exp` is plain arithmetic, inlined here.
    for x in row.iter_mut() {
        *x = exp(*x - max);
    }
    let mut total = _mm512_setzero_ps();
    for start in (0..row.len()).step_by(LANES) {
        let mask = lanes(row.len() - start);
        // SAFETY: as above.
        total = _mm512_add_ps(total, unsafe {
            _mm512_maskz_loadu_ps(mask, row[start..].as_ptr())
        });
    }
    let scale = 1.0 / _mm512_reduce_add_ps(total);
    for x in row.iter_mut() {
        *x *= scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    /// Attention computed plainly in f64, one query at a time.
    fn reference(op: &Attention, qkv: &[f32]) -> Vec<f64> {
        let (b, t, h) = (op.batch, op.tokens, op.heads);
        let width = qkv.len() / (b * t) / 3;
        let dh = width / h;
        let at = |image: usize, token: usize, part: usize, head: usize, d: usize| {
            f64::from(qkv[(image * t + token) * 3 * width + part * width + head * dh + d])
        };
        let mut out = vec![0.0; b * t * width];
        for image in 0..b {
            for head in 0..h {
                for i in 0..t {
                    let visible = if op.causal { i + 1 } else { t };
                    let scores: Vec<f64> = (0..visible)
                        .map(|j| {
                            (0..dh)
                                .map(|d| at(image, i, 0, head, d) * at(image, j, 1, head, d))
                                .sum()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let weights: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = weights.iter().sum();
                    for d in 0..dh {
                        let sum: f64 = (0..visible)
                            .map(|j| weights[j] * at(image, j, 2, head, d))
                            .sum();
                        out[(image * t + i) * width + head * dh + d] = sum / total;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_head_kernel_matches_plain_attention() {
        let mut kernels = vec![HeadKernel::Gemm];
        match head_kernel(64) {
            own @ HeadKernel::Avx512(_) => kernels.push(own),
            HeadKernel::Gemm => {
                eprintln!("SKIPPED in part: no AVX-512F, only the gemm kernel runs")
            }
        }
        // Tokens across the 16-key registers and the 64-key groups (ViT-B/32's 50, the text
        // tower's 77); head widths across the 64-value groups.
        for (batch, tokens, heads, dh, causal) in [
            (1, 1, 1, 16, false),
            (2, 7, 3, 48, false),
            (2, 50, 2, 64, false),
            (1, 77, 2, 64, true),
            (3, 17, 1, 128, true),
            (1, 65, 2, 80, false),
        ] {
            let op = Attention {
                batch,
                tokens,
                heads,
                causal,
            };
            let qkv = values(batch * tokens * 3 * heads * dh, (tokens * dh) as u64);
            let want = reference(&op, &qkv);
            for &kernel in &kernels {
                let got = op.run(&qkv, kernel).unwrap();
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (f64::from(*g) - w).abs() <= 1e-4 * (1.0 + w.abs()),
                        "{kernel:?} {batch}×{tokens}×{heads}×{dh} causal {causal}: [{i}] = {g}, want {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_own_kernel_runs_where_the_cpu_has_avx512_and_the_width_allows() {
        #[cfg(target_arch = "x86_64")]
        let avx512 = std::arch::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let avx512 = false;
        assert_eq!(matches!(head_kernel(64), HeadKernel::Avx512(_)), avx512);
        assert_eq!(head_kernel(72), HeadKernel::Gemm);
        assert_eq!(head_kernel(0), HeadKernel::Gemm);
    }

    #[test]
    fn the_own_kernel_refuses_heads_that_are_not_whole_lanes_wide() {
        let HeadKernel::Avx512(proof) = head_kernel(64) else {
            eprintln!("SKIPPED: no AVX-512F on this CPU");
            return;
        };
        let op = Attention {
            batch: 1,
            tokens: 3,
            heads: 1,
            causal: false,
        };
        let error = op.run(&values(3 * 3 * 20, 1), HeadKernel::Avx512(proof));
        assert!(error.is_err());
    }
}
