//! The reduced-precision products `C += X Wᵀ` in 16-bit formats, on CPUs with AVX-512 FP16 or
//! AVX-512 BF16 (checked at run time).
//!
//! Both take the inputs in pairs: a 32-bit broadcast of `(x[k], x[k+1])` meets a weight register
//! that holds `(w[k][j], w[k+1][j])` for 16 columns `j`, so one instruction does 32
//! multiply-adds where the f32 kernel's `vfmadd231ps` does 16.
//!
//! - **bfloat16** ([`Format::Bf16`], `vdpbf16ps`): each f32 lane adds its column's two products
//!   to a sum kept in f32. BF16 keeps f32's range and 8 significant bits, so nothing is scaled.
//!   On AMD Zen 4 a register-only loop of it ran at 1.84–2.18× the f32 FMA rate (three runs);
//!   on an Emerald Rapids core it ran at 0.37–0.49×, so there half precision is the one to take.
//! - **IEEE half precision** ([`Format::F16`], `vfmadd231ph`): 32 half-precision lanes, at twice
//!   the f32 rate on the cores that have it (Sapphire Rapids and later). It keeps 11 significant
//!   bits but only reaches 65504, and sums in half precision lose bits as they grow, so:
//!   - the weights are scaled by a power of two (exact) so that the largest is at most 1, and
//!     each block of 12 rows of X so that its largest value is at most 2⁸; the output is scaled
//!     back;
//!   - each lane sums at most 128 products in half precision (one block of 256 inputs, taken in
//!     pairs) before the sum is widened to f32, its two lanes per column added, and added to C,
//!     so it stays below 2¹⁵ whatever the values.
//!
//! Embeddings through either stay within cosine 0.999 of the f32 ones (a test checks every
//! fixture photo); they are off unless asked for (`CLIPTAG_PRECISION=bf16` or `f16`).

use rayon::prelude::*;

use super::convert::{convert, to_bf16, to_half};
use super::lines::Lines;
use super::{Around, Output, SendPtr, column_masks, for_tiles, into_fresh, rows_of, split_panels};

/// Inputs a block covers (even, so that pairs never straddle blocks).
const KC: usize = 256;
/// Rows of X one kernel call covers.
const MR: usize = 12;
/// Output columns in a panel.
const NR: usize = 32;
/// Each row block is scaled so that its largest magnitude is at most `2^INPUT_LOG2`.
const INPUT_LOG2: i32 = 8;

/// A 16-bit format the reduced-precision product runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// IEEE half precision, summed in half precision per block (AVX-512 FP16).
    F16,
    /// bfloat16, summed in f32 (AVX-512 BF16).
    Bf16,
}

impl Format {
    /// Whether this CPU runs this format's kernel.
    pub fn supported(self) -> bool {
        crate::model::kernels::Detected::avx512_half(self).is_some()
    }

    /// `x` in this format, rounded to nearest even.
    pub fn round(self, x: f32) -> u16 {
        match self {
            Format::F16 => to_half(x),
            Format::Bf16 => to_bf16(x),
        }
    }

    /// The power of two that brings values as large as `largest` into the range this format's
    /// sums stay safe in: at most `2^log2` for half precision; 1 for bfloat16, which has f32's
    /// range.
    fn scale_for(self, largest: f32, log2: i32) -> f32 {
        match self {
            Format::F16 => scale_for(largest, log2),
            Format::Bf16 => 1.0,
        }
    }
}

/// A weight matrix `[outputs, inputs]` in a 16-bit format, in panels for its kernel.
pub struct PackedHalf {
    format: Format,
    /// That this CPU runs `format`'s kernel: only then is a `PackedHalf` made.
    _runs: crate::model::kernels::Detected,
    inputs: usize,
    outputs: usize,
    /// What the product is multiplied by to undo the weights' scaling.
    weight_unscale: f32,
    /// Whether the product runs on AMX tiles (bfloat16, inputs a multiple of 32).
    amx: bool,
    /// For each block of `KC` inputs in turn, every panel's slice of it: `kc / 2` (rounded up)
    /// pair rows of 64 halves, column `j`'s pair at `2j, 2j + 1` (zeros past the last output
    /// and the last input).
    data: Lines<u16>,
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
    /// The weights packed for `format`'s fastest kernel on this CPU: AMX tiles for bfloat16
    /// where [`amx_fits`] says so, the AVX-512 kernels elsewhere; `None` where this CPU does not
    /// run `format` at all.
    pub fn new(
        format: Format,
        weight: &[f32],
        inputs: usize,
        outputs: usize,
    ) -> Option<PackedHalf> {
        Self::with_amx(format, weight, inputs, outputs, true)
    }

    /// As [`PackedHalf::new`], with the AMX kernel taken or not as `amx` says (where it cannot
    /// run, it is not taken).
    pub fn with_amx(
        format: Format,
        weight: &[f32],
        inputs: usize,
        outputs: usize,
        amx: bool,
    ) -> Option<PackedHalf> {
        let runs = crate::model::kernels::Detected::avx512_half(format)?;
        assert_eq!(
            weight.len(),
            inputs * outputs,
            "weight is not outputs × inputs"
        );
        let largest = weight.iter().fold(0.0f32, |m, w| m.max(w.abs()));
        let scale = format.scale_for(largest, 0);
        let panels = outputs.div_ceil(NR);
        let pairs = inputs.div_ceil(2);
        let mut data = Lines::zeroed(panels * pairs * 2 * NR);
        for k0 in (0..inputs).step_by(KC) {
            let kc = KC.min(inputs - k0);
            for p in 0..panels {
                let panel = &mut data[block_start(k0, p, kc, panels)..][..kc.div_ceil(2) * 2 * NR];
                for j in 0..NR.min(outputs - p * NR) {
                    let row = &weight[(p * NR + j) * inputs + k0..][..kc];
                    for (k, w) in row.iter().enumerate() {
                        panel[(k / 2) * 2 * NR + 2 * j + k % 2] = format.round(w * scale);
                    }
                }
            }
        }
        Some(PackedHalf {
            format,
            _runs: runs,
            inputs,
            outputs,
            weight_unscale: 1.0 / scale,
            amx: amx && format == Format::Bf16 && amx_fits(inputs),
            data,
        })
    }

    /// The format the product runs in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the product runs on AMX tiles.
    pub fn uses_amx(&self) -> bool {
        self.amx
    }

    /// The address the packed weights start at.
    #[cfg(test)]
    pub(super) fn data_start(&self) -> usize {
        self.data.as_ptr() as usize
    }

    /// `x Wᵀ` added to what `around` starts each output row with, then finished by it, each
    /// column range on the thread that computes it; returns the `rows × outputs` output.
    pub fn multiply_into(&self, x: &[f32], threads: usize, around: &Around) -> Vec<f32> {
        into_fresh(rows_of(x, self.inputs), self.outputs, |out| {
            self.product(x, out, threads, around)
        })
    }

    fn product(&self, x: &[f32], out: Output, threads: usize, around: &Around) {
        let (k, n, rows) = (self.inputs, self.outputs, out.rows);
        #[cfg(target_arch = "x86_64")]
        if self.amx {
            return self.product_amx(x, out, threads, around);
        }
        let blocks = rows.div_ceil(MR);
        let pairs = k.div_ceil(2);
        // The rows in half precision, in blocks of MR rows, each block's pairs `(x[k], x[k+1])`
        // as one u32 per row, k-major; block `b`'s slice of inputs from `k0` starts at
        // `(k0 / 2 · blocks + b · ⌈kc / 2⌉) · MR`. Each block gets its own scale.
        let mut packed_rows = Lines::<u32>::zeroed(blocks * MR * pairs);
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
                let scale = self.format.scale_for(largest, INPUT_LOG2);
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
                        convert(self.format, &block_rows[r * k + k0..][..kc], scale, halves);
                        for (p, pair) in halves.chunks_exact(2).enumerate() {
                            chunk[p * MR + r] = u32::from(pair[0]) | (u32::from(pair[1]) << 16);
                        }
                    }
                }
            });
        let panels = n.div_ceil(NR);
        let (packed_rows, unscale) = (&packed_rows[..], &unscale[..]);
        split_panels(panels, NR, out, threads, around, |range| {
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
                    let c = out.at.at(r0 * n + p * NR);
                    run_kernel(self.format, r, a, b, kp, c, n, cols, unscale[block]);
                }
            });
        });
    }
}

/// Where panel `p`'s slice of the inputs from `k0` (`kc` of them) starts in `PackedHalf::data`.
fn block_start(k0: usize, p: usize, kc: usize, panels: usize) -> usize {
    (k0 * panels + p * kc.div_ceil(2) * 2) * NR
}

/// Dispatches to `format`'s kernel instance for `r` rows.
///
/// # Safety
/// The CPU runs `format`'s kernel (a [`PackedHalf`] of it exists); `r` is at most 12; `a`
/// holds `pairs` groups of 12 input pairs, `b` `pairs` rows of 32 column pairs, and `c`
/// addresses `r` rows of `cols` (at most 32) values `ldc` apart that no other thread uses
/// meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn run_kernel(
    format: Format,
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
            match (format, r) {
                // SAFETY: as this function's contract.
                $((Format::F16, $n) => unsafe { avx512fp16::<$n>(a, b, pairs, c, ldc, cols, unscale) },)*
                // SAFETY: as this function's contract.
                $((Format::Bf16, $n) => unsafe { avx512bf16::<$n>(a, b, pairs, c, ldc, cols) },)*
                _ => unreachable!("kernel rows"),
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    rows!(1 2 3 4 5 6 7 8 9 10 11 12);
    // No CPU of another architecture detects these formats, so no `PackedHalf` exists there.
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (r, a, b, pairs, c, ldc, cols, unscale);
        unreachable!("{format:?} weights were packed on a CPU that is not x86-64")
    }
}

/// `R` rows (of a 12-row block) × 32 columns: 2·R accumulators of 16 column pairs, summed in
/// half precision over one block of inputs, then widened, their pairs added, scaled back and
/// added to C.
///
/// # Safety
/// The CPU has AVX-512 FP16 and BW, and the pointers are as [`run_kernel`]'s contract says.
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
///
/// # Safety
/// The CPU has AVX-512 FP16 and BW; `a` holds `pairs` groups of 12 input pairs and `b`
/// `pairs` rows of 32 column pairs.
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
        // SAFETY: `b` holds `pairs` rows of 64 halves (the contract), and `p < pairs`.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_si512(b.add(p * 64).cast()),
                _mm512_loadu_si512(b.add(p * 64 + 32).cast()),
            )
        };
        let (b0, b1) = (_mm512_castsi512_ph(b0), _mm512_castsi512_ph(b1));
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `a` holds `pairs` groups of 12 pairs (the contract), and `r < R <= 12`.
            let pair = unsafe { *a.add(p * MR + r) };
            let av = _mm512_castsi512_ph(_mm512_set1_epi32(pair as i32));
            acc[0] = _mm512_fmadd_ph(av, b0, acc[0]);
            acc[1] = _mm512_fmadd_ph(av, b1, acc[1]);
        }
    }
    acc
}

/// `R` rows (of a 12-row block) × 32 columns in bfloat16: 2·R f32 accumulators of 16 columns,
/// each `vdpbf16ps` adding a column's two products (inputs `k` and `k + 1`) to its lane; the
/// sums are added to C. Nothing is scaled: bfloat16 has f32's range.
///
/// # Safety
/// The CPU has AVX-512 BF16 and BW, and the pointers are as [`run_kernel`]'s contract says.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn avx512bf16<const R: usize>(
    a: *const u32,
    b: *const u16,
    pairs: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for p in 0..pairs {
        // SAFETY: `b` holds `pairs` rows of 64 halves (the contract), and `p < pairs`;
        // `__m512bh` and `__m512i` are the same 512 bits.
        let (b0, b1) = unsafe {
            (
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(b.add(p * 64).cast())),
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                    b.add(p * 64 + 32).cast(),
                )),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `a` holds `pairs` groups of 12 pairs (the contract), and `r < R <= 12`;
            // the transmute is between two 512-bit vectors.
            let av: __m512bh =
                unsafe { std::mem::transmute(_mm512_set1_epi32(*a.add(p * MR + r) as i32)) };
            acc[0] = _mm512_dpbf16_ps(acc[0], av, b0);
            acc[1] = _mm512_dpbf16_ps(acc[1], av, b1);
        }
    }
    let masks = column_masks(cols);
    for (r, acc) in acc.iter().enumerate() {
        for (h, (sums, mask)) in acc.iter().zip(masks).enumerate() {
            // SAFETY: row `r`'s columns `16h ..` under `mask` are in bounds.
            unsafe {
                let row = c.add(r * ldc + 16 * h);
                let sum = _mm512_add_ps(*sums, _mm512_maskz_loadu_ps(mask, row));
                _mm512_mask_storeu_ps(row, mask, sum);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod tiles;
#[cfg(not(target_arch = "x86_64"))]
/// Whether a bfloat16 product over `inputs` inputs runs on AMX tiles here: never off x86-64.
pub fn amx_fits(_inputs: usize) -> bool {
    false
}
#[cfg(target_arch = "x86_64")]
pub use tiles::amx_fits;

#[cfg(test)]
#[path = "half_tests.rs"]
mod tests;
