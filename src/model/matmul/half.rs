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
    data: Vec<u16>,
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
        let mut data = vec![0u16; panels * pairs * 2 * NR];
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

impl PackedHalf {
    /// [`PackedHalf::product`] on AMX tiles: the rows in bfloat16 (padded with zero rows to a
    /// multiple of 32), then each 32 × 32 block of C read into the tiles, summed over a block
    /// of inputs and written back.
    ///
    /// The loops are blocked for the caches: for each block of up to [`AMX_INPUTS`] inputs,
    /// the rows are taken [`amx_rows`] at a time, so that their slice of inputs stays in L2
    /// while every panel of this thread passes over it, and each panel's slice of weights (at
    /// most 64 KiB) stays in L1 or L2 while the rows pass under it. C is read and written once
    /// per block of inputs, straight from and to the tiles.
    #[cfg(target_arch = "x86_64")]
    fn product_amx(&self, x: &[f32], out: Output, threads: usize, around: &Around) {
        use super::amx::{BLOCK, STEP, Tiles, prefetch_rows, prefetch_sums};
        let (k, n, rows) = (self.inputs, self.outputs, out.rows);
        // The rows in bfloat16, tile by tile: for each 32 rows, each step's 32 inputs of the
        // 32 rows (the two tiles a step loads) in 2 KiB of their own. A step then reads one
        // run of memory, which the next step's prefetch covers in 32 lines, where rows of the
        // whole width apart are 32 streams; padding rows stay zero.
        // Every value is written below, so the buffer is not zeroed first (a pass over up to
        // 1.4 MB per product).
        let len = rows.div_ceil(BLOCK) * BLOCK * k;
        let mut inputs: Vec<u16> = Vec::with_capacity(len);
        inputs.spare_capacity_mut()[..len]
            .par_chunks_mut(BLOCK * k)
            .zip(x.par_chunks(BLOCK * k))
            .for_each(|(tiles, rows)| {
                let count = rows.len() / k;
                for r in 0..BLOCK {
                    // Rows past the last are zeros.
                    let row = (r < count).then(|| &rows[r * k..][..k]);
                    row_into_tiles(row, r, k, tiles);
                }
            });
        // SAFETY: the loop above wrote every one of the `len` values: each block of 32 rows,
        // the rows past the last one as zeros.
        unsafe { inputs.set_len(len) };
        let panels = n.div_ceil(NR);
        let inputs = &inputs[..];
        // Where all the rows' inputs fit in L2 anyway (a few images), C goes through the tiles
        // once; otherwise once per block of inputs.
        let padded = rows.div_ceil(BLOCK) * BLOCK;
        let k_block = if 2 * padded * k <= AMX_L2 {
            k
        } else {
            AMX_INPUTS
        };
        let row_block = amx_rows(k_block);
        split_panels(panels, NR, out, threads, around, |range| {
            // SAFETY: `amx` is set only where `amx::supported()` said so.
            let mut tiles = unsafe { Tiles::start() };
            // Blocks of C that do not fill 32 × 32 (the last rows, a last narrow panel) pass
            // through this buffer, zero-padded.
            let mut partial = [[0.0f32; BLOCK]; BLOCK];
            for k_first in (0..k).step_by(k_block) {
                let k_end = (k_first + k_block).min(k);
                for m_first in (0..rows).step_by(row_block) {
                    let m_end = (m_first + row_block).min(rows);
                    for p in range.clone() {
                        let cols = NR.min(n - p * NR);
                        // The weights the next panel's pass reads (the next panel's, or
                        // the first one's for the next rows or block of inputs), brought
                        // into L2 a share per step of this panel's pass. Read once per pass
                        // of a few images, they come from memory, and the loop would
                        // otherwise wait for them.
                        let next_weights = if p + 1 < range.end {
                            Some((p + 1, k_first))
                        } else if m_end < rows {
                            Some((range.start, k_first))
                        } else if k_end < k {
                            Some((range.start, k_end))
                        } else {
                            None
                        };
                        let steps = (k_end - k_first) / STEP;
                        let slots = (m_end - m_first).div_ceil(BLOCK) * steps;
                        for r0 in (m_first..m_end).step_by(BLOCK) {
                            let whole = cols == NR && r0 + BLOCK <= rows;
                            // SAFETY: row `r0`, column `p · NR` is inside C.
                            let c = unsafe { out.at.at(r0 * n + p * NR) };
                            if whole {
                                // SAFETY: rows `r0 ..+ 32` and columns `p · NR ..+ 32` are in
                                // C; this thread alone writes panel `p`'s columns.
                                unsafe { tiles.load_from(c, 4 * n) };
                            } else {
                                for (r, block_row) in partial.iter_mut().enumerate() {
                                    block_row.fill(0.0);
                                    if r0 + r < rows {
                                        // SAFETY: row `r0 + r` has `cols` columns from `p · NR`.
                                        let row = unsafe {
                                            std::slice::from_raw_parts(c.add(r * n), cols)
                                        };
                                        block_row[..cols].copy_from_slice(row);
                                    }
                                }
                                // SAFETY: `partial` is 32 rows of 128 bytes.
                                unsafe { tiles.load_from(partial.as_ptr().cast(), 4 * BLOCK) };
                            }
                            // Rows `r0 ..+ 32`, tile by tile (`r0` is a multiple of 32).
                            let block_at = inputs[r0 * k..].as_ptr();
                            // A last block of 16 rows or fewer (8 of ViT-B/32's 200 rows in a
                            // pass of 4 images) takes only the products its rows need.
                            let half = rows - r0 <= BLOCK / 2;
                            // The block of sums after this one (the next rows of this panel,
                            // or the first rows of the next), brought into L2 a share per
                            // step: rows a whole output apart are no pattern the hardware
                            // prefetchers follow.
                            let next_sums = if r0 + BLOCK < m_end {
                                Some(c.wrapping_add(BLOCK * n).cast_const())
                            } else if p + 1 < range.end {
                                // SAFETY: row `m_first`, column `(p + 1) · NR` is inside C.
                                Some(unsafe { out.at.at(m_first * n + (p + 1) * NR) }.cast_const())
                            } else {
                                None
                            };
                            for t in (k_first..k_end).step_by(STEP) {
                                let step = (t - k_first) / STEP;
                                if let Some((panel, first)) = next_weights {
                                    let slot = (r0 - m_first) / BLOCK * steps + step;
                                    let lines = k_block.min(k - first) / STEP * 32;
                                    self.prefetch_weights(
                                        panel,
                                        first,
                                        slot * lines / slots..(slot + 1) * lines / slots,
                                    );
                                }
                                if let Some(at) = next_sums {
                                    let lines = 2 * BLOCK;
                                    prefetch_sums(
                                        at,
                                        4 * n,
                                        step * lines / steps..(step + 1) * lines / steps,
                                    );
                                }
                                let (k0, s) = (t / KC * KC, t % KC);
                                let kc = KC.min(k - k0);
                                let weights = &self.data[block_start(k0, p, kc, panels) + s * NR..];
                                let step_at = block_at.wrapping_add(t * BLOCK);
                                prefetch_rows(step_at.wrapping_add(BLOCK * STEP), 64);
                                let weights = weights[..16 * 2 * NR].as_ptr();
                                // SAFETY: `k` is a multiple of 32 (`amx_fits`), so the block
                                // of rows from `r0` holds step `t / 32`'s 32 rows of 64 bytes
                                // from `step_at`, and panel `p`'s slice of the block from `k0`
                                // 16 pair rows of 128 bytes from pair `s / 2`.
                                unsafe {
                                    if half {
                                        tiles.step_half(step_at, 64, weights);
                                    } else {
                                        tiles.step(step_at, 64, weights);
                                    }
                                }
                            }
                            if whole {
                                // SAFETY: as for the load above.
                                unsafe { tiles.store_to(c, 4 * n) };
                            } else {
                                tiles.store(&mut partial);
                                for (r, block_row) in partial.iter().enumerate().take(rows - r0) {
                                    // SAFETY: as for the copy in above.
                                    let row = unsafe {
                                        std::slice::from_raw_parts_mut(c.add(r * n), cols)
                                    };
                                    row.copy_from_slice(&block_row[..cols]);
                                }
                            }
                        }
                    }
                }
            }
        });
    }
}

/// Row `r` of a block of 32 rows (zeros for `None`) in bfloat16, into the block's tile layout:
/// step `s`'s 32 values at `(s · BLOCK + r) · STEP` of `tiles`.
#[cfg(target_arch = "x86_64")]
fn row_into_tiles(
    row: Option<&[f32]>,
    r: usize,
    k: usize,
    tiles: &mut [std::mem::MaybeUninit<u16>],
) {
    use super::amx::{BLOCK, STEP};
    assert!(k.is_multiple_of(STEP) && tiles.len() >= BLOCK * k && r < BLOCK);
    assert!(row.is_none_or(|row| row.len() == k));
    if std::arch::is_x86_feature_detected!("avx512bf16") {
        // SAFETY: the CPU has AVX-512 BF16 (and so AVX-512F); the sizes were checked above.
        return unsafe { row_into_tiles_avx512(row, r, k, tiles) };
    }
    row_into_tiles_scalar(row, r, k, tiles);
}

/// [`row_into_tiles`] one value at a time.
#[cfg(target_arch = "x86_64")]
fn row_into_tiles_scalar(
    row: Option<&[f32]>,
    r: usize,
    k: usize,
    tiles: &mut [std::mem::MaybeUninit<u16>],
) {
    use super::amx::{BLOCK, STEP};
    for s in 0..k / STEP {
        let to = &mut tiles[(s * BLOCK + r) * STEP..][..STEP];
        for (i, to) in to.iter_mut().enumerate() {
            to.write(row.map_or(0, |row| to_bf16(row[s * STEP + i])));
        }
    }
}

/// [`row_into_tiles`] 32 values per instruction, each step's straight to its place (converted
/// into a row buffer and then copied, a row took two passes).
///
/// # Safety
/// The CPU has AVX-512F and AVX-512 BF16; `k` is a multiple of 32, `row` (if any) holds `k`
/// values, and `tiles` `32 · k`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn row_into_tiles_avx512(
    row: Option<&[f32]>,
    r: usize,
    k: usize,
    tiles: &mut [std::mem::MaybeUninit<u16>],
) {
    use super::amx::{BLOCK, STEP};
    use std::arch::x86_64::*;
    for s in 0..k / STEP {
        // SAFETY: `row` holds `k` values and `tiles` `32 · k` (the contract), so step `s`'s
        // 32 values and their 64 bytes at `(s · 32 + r) · 32` are in bounds; `__m512bh` and
        // `__m512i` are the same 512 bits.
        unsafe {
            let values: __m512i = match row {
                Some(row) => std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(
                    _mm512_loadu_ps(row.as_ptr().add(s * STEP + 16)),
                    _mm512_loadu_ps(row.as_ptr().add(s * STEP)),
                )),
                None => _mm512_setzero_si512(),
            };
            let to = tiles.as_mut_ptr().add((s * BLOCK + r) * STEP);
            _mm512_storeu_si512(to.cast(), values);
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl PackedHalf {
    /// Asks for lines `lines` of panel `panel`'s weights for the inputs from `first` to be
    /// brought into L2 (a hint, as [`prefetch_rows`](super::amx::prefetch_rows)): each step
    /// of 32 inputs is 32 lines, its 16 pair rows of 128 bytes.
    fn prefetch_weights(&self, panel: usize, first: usize, lines: std::ops::Range<usize>) {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        let (k, panels) = (self.inputs, self.outputs.div_ceil(NR));
        for line in lines {
            let t = first + line / 32 * super::amx::STEP;
            let (k0, s) = (t / KC * KC, t % KC);
            let at = block_start(k0, panel, KC.min(k - k0), panels) + s * NR;
            let at = self.data.as_ptr().wrapping_add(at).cast::<i8>();
            // SAFETY: a prefetch never faults and reads nothing into the program.
            unsafe { _mm_prefetch::<_MM_HINT_T1>(at.wrapping_add(line % 32 * 64)) };
        }
    }
}

/// Inputs the AMX product sums over before C goes back to memory: a panel's slice of weights
/// for them (64 KiB) stays in L1 or L2 while the rows pass under it.
const AMX_INPUTS: usize = 1024;

/// The bytes of bfloat16 inputs the AMX product keeps in L2 at a time: half of a Sapphire
/// Rapids core's.
const AMX_L2: usize = 1 << 20;

/// Rows the AMX product takes at a time for a block of `inputs` inputs: as many whole tiles of
/// 32 as keep their bfloat16 inputs within [`AMX_L2`].
fn amx_rows(inputs: usize) -> usize {
    (AMX_L2 / (2 * inputs.max(1)) / 32).max(1) * 32
}

/// Whether a bfloat16 product over `inputs` inputs runs on AMX tiles here: the CPU and the
/// system allow them, and the inputs come in whole tiles of 32.
pub fn amx_fits(inputs: usize) -> bool {
    inputs > 0 && inputs.is_multiple_of(super::amx::STEP) && super::amx::supported()
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

#[cfg(test)]
#[path = "half_tests.rs"]
mod tests;
