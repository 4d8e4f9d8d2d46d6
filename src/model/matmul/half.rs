//! The reduced-precision product `C += X Wᵀ` in IEEE half precision, for CPUs with AVX-512 FP16.
//!
//! One `vfmadd231ph` does 32 multiply-adds where the f32 kernel's does 16, at the same rate on
//! the cores that have it (Sapphire Rapids and later), so the product runs up to twice as fast.
//! BF16's dot product (`vdpbf16ps`) was measured at 0.37–0.49× the f32 FMA rate on such a
//! core (a register-only loop, two runs), so it is not used. Half precision keeps 11 significant bits but only reaches 65504, and sums in half
//! precision lose bits as they grow, so:
//!
//! - the weights are scaled by a power of two (exact) so that the largest is at most 1, and each
//!   block of 12 rows of X so that its largest value is at most 2⁸; the output is scaled back;
//! - each lane sums at most 128 products in half precision (one block of 256 inputs, taken in
//!   pairs) before the sum is widened to f32 and added to C, so it stays below 2¹⁵ whatever the
//!   values;
//! - the inputs go in pairs: a 32-bit broadcast of `(x[k], x[k+1])` meets a weight register that
//!   holds `(w[k][j], w[k+1][j])` for 16 columns `j`, and the two lanes of each column are added
//!   when the sum is widened.
//!
//! Embeddings through it stay within cosine 0.999 of the f32 ones (a test checks every fixture
//! photo); it is off unless asked for (`CLIPTAG_PRECISION=f16`).

use rayon::prelude::*;

use super::{SendPtr, column_masks, for_tiles, split_panels};

/// Inputs a block covers (even, so that pairs never straddle blocks).
const KC: usize = 256;
/// Rows of X one kernel call covers.
const MR: usize = 12;
/// Output columns in a panel.
const NR: usize = 32;
/// Each row block is scaled so that its largest magnitude is at most `2^INPUT_LOG2`.
const INPUT_LOG2: i32 = 8;

/// A weight matrix `[outputs, inputs]` in half precision, in panels for the FP16 kernel.
pub struct PackedHalf {
    inputs: usize,
    outputs: usize,
    /// What the product is multiplied by to undo the weights' scaling.
    weight_unscale: f32,
    /// For each block of `KC` inputs in turn, every panel's slice of it: `kc / 2` (rounded up)
    /// pair rows of 64 halves, column `j`'s pair at `2j, 2j + 1` (zeros past the last output
    /// and the last input).
    data: Vec<u16>,
}

/// Whether this CPU runs the half-precision kernel.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512fp16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The power of two that brings `largest` (a magnitude) to at most `2^log2`, and 1 when there is
/// nothing to scale (zero, or not finite: infinities and NaNs then pass through as they are).
fn scale_for(largest: f32, log2: i32) -> f32 {
    if largest == 0.0 || !largest.is_finite() {
        return 1.0;
    }
    let exponent = largest.log2().ceil() as i32;
    2f32.powi((log2 - exponent).clamp(-100, 100))
}

impl PackedHalf {
    pub fn new(weight: &[f32], inputs: usize, outputs: usize) -> PackedHalf {
        assert_eq!(
            weight.len(),
            inputs * outputs,
            "weight is not outputs × inputs"
        );
        let largest = weight.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let scale = scale_for(largest, 0);
        let panels = outputs.div_ceil(NR);
        let pairs = inputs.div_ceil(2);
        let mut data = vec![0u16; panels * pairs * 2 * NR];
        for k0 in (0..inputs).step_by(KC) {
            let kc = KC.min(inputs - k0);
            for p in 0..panels {
                let panel = &mut data[block_start(k0, p, kc, panels)..][..kc.div_ceil(2) * 2 * NR];
                for j in 0..NR.min(outputs - p * NR) {
                    let row = &weight[(p * NR + j) * inputs + k0..][..kc];
                    for (k, w) in row.iter().enumerate() {
                        panel[(k / 2) * 2 * NR + 2 * j + k % 2] = to_half(w * scale);
                    }
                }
            }
        }
        PackedHalf {
            inputs,
            outputs,
            weight_unscale: 1.0 / scale,
            data,
        }
    }

    /// `dst += x Wᵀ` for `x` of `rows × inputs` and `dst` of `rows × outputs`, row-major, with
    /// the output panels shared among `threads` threads of the current pool.
    pub fn multiply_add(&self, x: &[f32], dst: &mut [f32], threads: usize) {
        let (k, n) = (self.inputs, self.outputs);
        assert!(k > 0 && x.len().is_multiple_of(k), "input width is not {k}");
        let rows = x.len() / k;
        assert_eq!(dst.len(), rows * n, "output is not rows × {n}");
        let blocks = rows.div_ceil(MR);
        let pairs = k.div_ceil(2);
        // The rows in half precision, in blocks of MR rows, each block's pairs `(x[k], x[k+1])`
        // as one u32 per row, k-major; block `b`'s slice of inputs from `k0` starts at
        // `(k0 / 2 · blocks + b · ⌈kc / 2⌉) · MR`. Each block gets its own scale.
        let mut packed_rows = vec![0u32; blocks * MR * pairs];
        let mut unscale = vec![0.0f32; blocks];
        let rows_out = SendPtr(packed_rows.as_mut_ptr());
        unscale
            .par_iter_mut()
            .enumerate()
            .for_each_init(Vec::new, |halves, (block, unscale)| {
                let first = block * MR;
                let count = MR.min(rows - first);
                let block_rows = &x[first * k..(first + count) * k];
                let largest = block_rows.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let scale = scale_for(largest, INPUT_LOG2);
                *unscale = self.weight_unscale / scale;
                for k0 in (0..k).step_by(KC) {
                    let kc = KC.min(k - k0);
                    let kp = kc.div_ceil(2);
                    let start = (k0 / 2 * blocks + block * kp) * MR;
                    // SAFETY: blocks write disjoint `kp · MR` runs of `packed_rows`.
                    let chunk =
                        unsafe { std::slice::from_raw_parts_mut(rows_out.at(start), kp * MR) };
                    for r in 0..count {
                        halves.clear();
                        halves.resize(kp * 2, 0u16);
                        convert(&block_rows[r * k + k0..][..kc], scale, halves);
                        for (p, pair) in halves.chunks_exact(2).enumerate() {
                            chunk[p * MR + r] = u32::from(pair[0]) | (u32::from(pair[1]) << 16);
                        }
                    }
                }
            });
        let panels = n.div_ceil(NR);
        let out = SendPtr(dst.as_mut_ptr());
        let (packed_rows, unscale) = (&packed_rows[..], &unscale[..]);
        split_panels(panels, threads, |range| {
            for_tiles(k, rows, KC, MR, range, |k0, kc, p, r0, r| {
                let kp = kc.div_ceil(2);
                let block = r0 / MR;
                let b = self.data[block_start(k0, p, kc, panels)..].as_ptr();
                let a = packed_rows[(k0 / 2 * blocks + block * kp) * MR..].as_ptr();
                let cols = NR.min(n - p * NR);
                // SAFETY: `a` holds `kp` groups of MR pairs, `b` `kp` rows of 2·NR halves, and
                // the destination `r` rows of `cols` values `n` apart, all in bounds; each part
                // writes only its own panels' columns.
                unsafe {
                    let c = out.at(r0 * n + p * NR);
                    run_kernel(r, a, b, kp, c, n, cols, unscale[block]);
                }
            });
        });
    }
}

/// Where panel `p`'s slice of the inputs from `k0` (`kc` of them) starts in `PackedHalf::data`.
fn block_start(k0: usize, p: usize, kc: usize, panels: usize) -> usize {
    (k0 * panels + p * kc.div_ceil(2) * 2) * NR
}

/// `values · scale` in half precision into `out` (at least as long), rounding to nearest even.
fn convert(values: &[f32], scale: f32, out: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F.
        return unsafe { convert_avx512(values, scale, out) };
    }
    for (o, v) in out.iter_mut().zip(values) {
        *o = to_half(v * scale);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn convert_avx512(values: &[f32], scale: f32, out: &mut [u16]) {
    use std::arch::x86_64::*;
    let s = _mm512_set1_ps(scale);
    let mut chunks = values.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        // SAFETY: 16 values in, 16 halves out, both in bounds.
        unsafe {
            let v = _mm512_mul_ps(_mm512_loadu_ps(chunk.as_ptr()), s);
            let h = _mm512_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(v);
            _mm256_storeu_si256(out[at..at + 16].as_mut_ptr().cast(), h);
        }
        at += 16;
    }
    for (o, v) in out[at..].iter_mut().zip(chunks.remainder()) {
        *o = to_half(v * scale);
    }
}

/// `x` in IEEE half precision, rounded to nearest even (overflow to infinity, NaN kept NaN).
pub fn to_half(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exponent == 0xff {
        return sign | 0x7c00 | if mantissa != 0 { 0x200 } else { 0 };
    }
    let e = exponent - 127 + 15;
    let round = |q: u32, rest: u32, half: u32| {
        if rest > half || (rest == half && q & 1 == 1) {
            q + 1
        } else {
            q
        }
    };
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // A subnormal half: the value is m · 2⁻²⁴.
        let shift = (14 - e) as u32;
        if shift > 24 {
            return sign;
        }
        let full = mantissa | 0x80_0000;
        let q = round(full >> shift, full & ((1 << shift) - 1), 1 << (shift - 1));
        return sign | q as u16;
    }
    let q = round(
        ((e as u32) << 10) | (mantissa >> 13),
        mantissa & 0x1fff,
        0x1000,
    );
    // A carry out of the mantissa raises the exponent, up to infinity: still the right value.
    sign | q as u16
}

/// The f32 value of half-precision `h`.
pub fn from_half(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exponent = i32::from((h >> 10) & 0x1f);
    let mantissa = f32::from(h & 0x3ff);
    sign * match exponent {
        0 => mantissa * 2f32.powi(-24),
        0x1f if mantissa == 0.0 => f32::INFINITY,
        0x1f => f32::NAN,
        e => (1.0 + mantissa / 1024.0) * 2f32.powi(e - 15),
    }
}

/// Dispatches to the kernel instance for `r` rows.
#[allow(clippy::too_many_arguments)]
unsafe fn run_kernel(
    r: usize,
    a: *const u32,
    b: *const u16,
    pairs: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    unscale: f32,
) {
    macro_rules! rows {
        ($($n:literal)*) => {
            match r {
                $($n => unsafe { avx512fp16::<$n>(a, b, pairs, c, ldc, cols, unscale) },)*
                _ => unreachable!("kernel rows"),
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    rows!(1 2 3 4 5 6 7 8 9 10 11 12);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (r, a, b, pairs, c, ldc, cols, unscale);
}

/// `R` rows (of a 12-row block) × 32 columns: 2·R accumulators of 16 column pairs, summed in
/// half precision over one block of inputs, then widened, their pairs added, scaled back and
/// added to C.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512fp16")]
unsafe fn avx512fp16<const R: usize>(
    a: *const u32,
    b: *const u16,
    pairs: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    unscale: f32,
) {
    use std::arch::x86_64::*;
    // SAFETY: as this function's own contract.
    let acc = unsafe { accumulate::<R>(a, b, pairs) };
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let scale = _mm512_set1_ps(unscale);
    let masks = column_masks(cols);
    for (r, acc) in acc.iter().enumerate() {
        for (h, (sums, mask)) in acc.iter().zip(masks).enumerate() {
            let v = _mm512_castph_si512(*sums);
            let low = _mm512_cvtph_ps(_mm512_castsi512_si256(v));
            let high = _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<1>(v));
            let columns = _mm512_add_ps(
                _mm512_permutex2var_ps(low, evens, high),
                _mm512_permutex2var_ps(low, odds, high),
            );
            // SAFETY: row `r`'s columns `16h ..` under `mask` are in bounds.
            unsafe {
                let row = c.add(r * ldc + 16 * h);
                let sum = _mm512_fmadd_ps(columns, scale, _mm512_maskz_loadu_ps(mask, row));
                _mm512_mask_storeu_ps(row, mask, sum);
            }
        }
    }
}

/// The half-precision sums of [`avx512fp16`]. A function of its own: inlined, the widening
/// that follows made LLVM keep nine of the 24 accumulators on the stack, which halved the
/// kernel's speed.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512fp16")]
#[inline(never)]
unsafe fn accumulate<const R: usize>(
    a: *const u32,
    b: *const u16,
    pairs: usize,
) -> [[std::arch::x86_64::__m512h; 2]; R] {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ph(); 2]; R];
    for p in 0..pairs {
        // SAFETY (all loads): in bounds per `run_kernel`'s contract.
        let b0 = _mm512_castsi512_ph(unsafe { _mm512_loadu_si512(b.add(p * 64).cast()) });
        let b1 = _mm512_castsi512_ph(unsafe { _mm512_loadu_si512(b.add(p * 64 + 32).cast()) });
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm512_castsi512_ph(_mm512_set1_epi32(unsafe { *a.add(p * MR + r) } as i32));
            acc[0] = _mm512_fmadd_ph(av, b0, acc[0]);
            acc[1] = _mm512_fmadd_ph(av, b1, acc[1]);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_to_half_rounds_to_nearest_even() {
        for (x, want) in [
            (0.0f32, 0x0000u16),
            (-0.0, 0x8000),
            (1.0, 0x3c00),
            (-2.0, 0xc000),
            (65504.0, 0x7bff),
            (65520.0, 0x7c00), // halfway to the next step rounds to even: infinity
            (1e6, 0x7c00),
            (f32::INFINITY, 0x7c00),
            (6.103_515_6e-5, 0x0400), // the smallest normal
            (5.960_464_5e-8, 0x0001), // the smallest subnormal
            (2.980_232_2e-8, 0x0000), // half of it rounds to even: zero
            (1.0 + 1.0 / 2048.0, 0x3c00),
            (1.0 + 3.0 / 2048.0, 0x3c02),
        ] {
            assert_eq!(to_half(x), want, "{x}");
        }
        assert!(from_half(to_half(f32::NAN)).is_nan());
        // Every representable half comes back as itself.
        for h in (0..0x7c00u16).chain(0x8000..0xfc00) {
            assert_eq!(to_half(from_half(h)), h, "{h:#06x}");
        }
    }

    #[test]
    fn the_vector_conversion_agrees_with_the_scalar_one() {
        let values: Vec<f32> = (0..4000)
            .map(|i| ((i as f32) * 0.7391).sin() * 10f32.powi(i % 13 - 8))
            .collect();
        let mut fast = vec![0u16; values.len()];
        convert(&values, 0.75, &mut fast);
        for (v, f) in values.iter().zip(&fast) {
            assert_eq!(*f, to_half(v * 0.75), "{v}");
        }
    }

    fn values(n: usize, seed: u64, magnitude: f32) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5) * magnitude
            })
            .collect()
    }

    /// The product against a plain f64 one, each output within `tolerance` of the sum of its
    /// terms' magnitudes.
    fn check(rows: usize, inputs: usize, outputs: usize, x_size: f32, w_size: f32) {
        let x = values(rows * inputs, 1, x_size);
        let w = values(outputs * inputs, 2, w_size);
        let start = values(rows * outputs, 3, 1.0);
        let packed = PackedHalf::new(&w, inputs, outputs);
        for threads in [1, 3] {
            let mut got = start.clone();
            packed.multiply_add(&x, &mut got, threads);
            for i in 0..rows {
                for o in 0..outputs {
                    let terms = (0..inputs)
                        .map(|k| f64::from(x[i * inputs + k]) * f64::from(w[o * inputs + k]));
                    let want = f64::from(start[i * outputs + o]) + terms.clone().sum::<f64>();
                    let size: f64 = terms.map(f64::abs).sum();
                    let g = f64::from(got[i * outputs + o]);
                    assert!(
                        (g - want).abs() <= 4e-3 * size + 1e-6,
                        "{rows}×{inputs}×{outputs} (x ~{x_size}, w ~{w_size}), {threads} threads: \
                         [{i}, {o}] = {g}, want {want} (terms' magnitudes {size})"
                    );
                }
            }
        }
    }

    #[test]
    fn the_half_kernel_computes_the_product_at_every_edge() {
        if !supported() {
            eprintln!("no AVX-512 FP16 on this CPU: the f32 kernel is used");
            return;
        }
        // Row counts across the 12-row and 240-row blocks, widths across the 32-column panels,
        // depths odd and across the 256-input block.
        for (rows, inputs, outputs) in [
            (1, 1, 1),
            (5, 7, 3),
            (13, 33, 17),
            (50, 300, 48),
            (97, 257, 65),
            (250, 521, 100),
        ] {
            check(rows, inputs, outputs, 2.0, 0.1);
        }
    }

    #[test]
    fn values_beyond_half_precisions_range_are_scaled_into_it() {
        if !supported() {
            return;
        }
        // Inputs up to 10⁵ overflow half precision (65504) unscaled, and products of 10⁵ by
        // weights of 10 overflow any half sum; inputs of 10⁻⁶ are below its normal range.
        check(30, 600, 40, 2e5, 20.0);
        check(30, 600, 40, 2e-6, 1e-4);
    }
}
