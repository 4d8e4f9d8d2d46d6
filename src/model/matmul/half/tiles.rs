//! The bfloat16 product on AMX tiles ([`crate::model::matmul::amx`]), for [`PackedHalf`]s whose inputs
//! come in whole tiles of 32: the rows converted into the tiles' layout, then each 32 × 32
//! block of sums accumulated in the tiles, with the next weights and sums brought into L2
//! while the current ones are multiplied.

use rayon::prelude::*;

use super::{KC, NR, PackedHalf, block_start};
use crate::model::matmul::amx::{BLOCK, STEP, Tiles, prefetch_rows, prefetch_sums};
use crate::model::matmul::convert::to_bf16;
use crate::model::matmul::lines::Lines;
use crate::model::matmul::{Around, Output, split_panels};

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
    pub(super) fn product_amx(&self, x: &[f32], out: Output, threads: usize, around: &Around) {
        let (k, n, rows) = (self.inputs, self.outputs, out.rows);
        // The rows in bfloat16, tile by tile: for each 32 rows, each step's 32 inputs of the
        // 32 rows (the two tiles a step loads) in 2 KiB of their own. A step then reads one
        // run of memory, which the next step's prefetch covers in 32 lines, where rows of the
        // whole width apart are 32 streams; padding rows stay zero.
        // Every value is written below, so the buffer is not zeroed first (a pass over up to
        // 1.4 MB per product).
        let len = rows.div_ceil(BLOCK) * BLOCK * k;
        let fill = |spare: &mut [std::mem::MaybeUninit<u16>]| {
            spare
                .par_chunks_mut(BLOCK * k)
                .zip(x.par_chunks(BLOCK * k))
                .for_each(|(tiles, rows)| {
                    let count = rows.len() / k;
                    for r in 0..BLOCK {
                        // Rows past the last are zeros.
                        let row = (r < count).then(|| &rows[r * k..][..k]);
                        row_into_tiles(row, r, k, tiles);
                    }
                })
        };
        // SAFETY: `fill` writes every one of the `len` values: each block of 32 rows, the rows
        // past the last one as zeros.
        let inputs = unsafe { Lines::filled_by(len, fill) };
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
fn row_into_tiles(
    row: Option<&[f32]>,
    r: usize,
    k: usize,
    tiles: &mut [std::mem::MaybeUninit<u16>],
) {
    assert!(k.is_multiple_of(STEP) && tiles.len() >= BLOCK * k && r < BLOCK);
    assert!(row.is_none_or(|row| row.len() == k));
    if std::arch::is_x86_feature_detected!("avx512bf16") {
        // SAFETY: the CPU has AVX-512 BF16 (and so AVX-512F); the sizes were checked above.
        return unsafe { row_into_tiles_avx512(row, r, k, tiles) };
    }
    row_into_tiles_scalar(row, r, k, tiles);
}

/// [`row_into_tiles`] one value at a time.
pub(super) fn row_into_tiles_scalar(
    row: Option<&[f32]>,
    r: usize,
    k: usize,
    tiles: &mut [std::mem::MaybeUninit<u16>],
) {
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
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn row_into_tiles_avx512(
    row: Option<&[f32]>,
    r: usize,
    k: usize,
    tiles: &mut [std::mem::MaybeUninit<u16>],
) {
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

impl PackedHalf {
    /// Asks for lines `lines` of panel `panel`'s weights for the inputs from `first` to be
    /// brought into L2 (a hint, as [`prefetch_rows`]): each step
    /// of 32 inputs is 32 lines, its 16 pair rows of 128 bytes.
    fn prefetch_weights(&self, panel: usize, first: usize, lines: std::ops::Range<usize>) {
        use std::arch::x86_64::{_MM_HINT_T1, _mm_prefetch};
        let (k, panels) = (self.inputs, self.outputs.div_ceil(NR));
        for line in lines {
            let t = first + line / 32 * STEP;
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
    inputs > 0 && inputs.is_multiple_of(STEP) && crate::model::matmul::amx::supported()
}
