//! The encoders' matrix products `C += X Wᵀ` against weights packed once, when the model loads.
//!
//! Every linear layer multiplies the activations by the same weight matrix on every call; the
//! `gemm` crate repacks that matrix each time and, built without its AVX-512 kernels (they halved
//! batch-1 speed on AMD Zen 4), uses half the vector width an AVX-512 core has. Here the weights
//! are laid out at load in panels of `NR` output columns, and the rows of X are copied once per
//! call into blocks the kernel reads in order. The kernel is chosen at run time from the CPU:
//! 512-bit (12 rows × 32 columns of accumulators) where AVX-512F exists, 256-bit (6 × 16) where
//! AVX2 and FMA do, and the `gemm` crate on anything older. `CLIPTAG_KERNEL=avx512|avx2|gemm`
//! picks one by hand (for benchmarks; a kernel the CPU lacks falls back to the default).
use std::sync::OnceLock;

pub mod amx;
pub mod convert;
pub mod half;
mod lines;
mod precision;
mod split;

use lines::Lines;
pub use precision::{
    Cpu, Precision, chosen_precision, load_precision, loading_in, precision_override,
    requested_precision,
};
pub use split::{Around, Finish};
use split::{Output, into_fresh, rows_of, split_panels};

use rayon::prelude::*;

use crate::model::kernels::Detected;

/// A vector kernel for the packed product, holding the proof that this CPU runs it: made only by
/// [`Kernel::avx512`] and [`Kernel::avx2`], which ask the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    Avx512(Detected),
    Avx2(Detected),
}

impl Kernel {
    /// The 512-bit kernel, where this CPU has AVX-512F.
    pub fn avx512() -> Option<Kernel> {
        Detected::avx512f().map(Kernel::Avx512)
    }

    /// The 256-bit kernel, where this CPU has AVX2 and FMA.
    pub fn avx2() -> Option<Kernel> {
        Detected::avx2_fma().map(Kernel::Avx2)
    }

    /// Rows of X one kernel call covers.
    fn rows(self) -> usize {
        match self {
            Kernel::Avx512(_) => 12,
            Kernel::Avx2(_) => 6,
        }
    }

    /// Output columns in a panel.
    fn columns(self) -> usize {
        match self {
            Kernel::Avx512(_) => 32,
            Kernel::Avx2(_) => 16,
        }
    }
}

/// The kernel this process uses: `CLIPTAG_KERNEL` if set and supported, else the widest this
/// CPU runs; `None` means the `gemm` crate.
///
/// On a CPU with AVX2 and FMA but no AVX-512 the 256-bit kernel beats the `gemm` crate, which
/// repacks the weights on every call. Measured on a Zen 4 with the kernel picked by hand (its
/// 256-bit and 512-bit FMA throughput are the same), in the two of three alternating rounds
/// where neither ran slow: 1.37–1.42× at batch 1, 1.02–1.14× at batch 8, 1.07–1.11× at batch
/// 32, and 0.89–1.01× the 512-bit kernel's rate.
pub fn kernel() -> Option<Kernel> {
    static CHOSEN: OnceLock<Option<Kernel>> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let wanted = std::env::var("CLIPTAG_KERNEL").ok();
        let detected = Kernel::avx512().or_else(Kernel::avx2);
        match wanted.as_deref() {
            Some("gemm") => None,
            Some("avx2") => Kernel::avx2().or(detected),
            Some("avx512") => Kernel::avx512().or(detected),
            _ => detected,
        }
    })
}

/// Inputs a block of the product covers: a panel's slice of weights (`KC × NR`) stays in L1
/// while the kernel passes over the rows.
const KC: usize = 256;
/// Rows a block of the product covers: their slice of inputs (`MC × KC`) stays in L2.
const MC: usize = 240;

/// A weight matrix `[outputs, inputs]` (PyTorch's layout) in panels for one kernel.
pub struct Packed {
    kernel: Kernel,
    inputs: usize,
    outputs: usize,
    /// For each block of `KC` inputs in turn, every panel's slice of it: panel `p` holds
    /// outputs `p·NR …` as rows of `NR` values, one per input (zeros past the last output). A
    /// thread's panels for one block are thus one run of memory, read front to back.
    data: Lines<f32>,
}

impl Packed {
    /// `weight` packed for `kernel`, which (holding its proof of detection) runs on this CPU.
    pub fn new(kernel: Kernel, weight: &[f32], inputs: usize, outputs: usize) -> Packed {
        assert_eq!(
            weight.len(),
            inputs * outputs,
            "weight is not outputs × inputs"
        );
        let nr = kernel.columns();
        let panels = outputs.div_ceil(nr);
        let mut data = Lines::zeroed(panels * inputs * nr);
        for k0 in (0..inputs).step_by(KC) {
            let kc = KC.min(inputs - k0);
            for p in 0..panels {
                let panel = &mut data[block_start(k0, p, kc, panels, nr)..][..kc * nr];
                for j in 0..nr.min(outputs - p * nr) {
                    let row = &weight[(p * nr + j) * inputs + k0..][..kc];
                    for (k, w) in row.iter().enumerate() {
                        panel[k * nr + j] = *w;
                    }
                }
            }
        }
        Packed {
            kernel,
            inputs,
            outputs,
            data,
        }
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
        let (nr, mr) = (self.kernel.columns(), self.kernel.rows());
        let panels = n.div_ceil(nr);
        // The rows, copied once (the threads share the copy) in blocks of the kernel's rows,
        // each block k-major: the kernel then reads them front to back, free of the cache-set
        // conflicts that rows a power of two apart have. Block `b`'s slice of inputs from `k0`
        // starts at `(k0 · blocks + b · kc) · mr`.
        let blocks = rows.div_ceil(mr);
        // Every value is written below (the last block's missing rows as zeros), so the buffer
        // is not zeroed first: that pass cost as much as a fifth of the copy itself.
        let len = blocks * mr * k;
        let fill = |spare: &mut [std::mem::MaybeUninit<f32>]| {
            let rows_out = SendPtr(spare.as_mut_ptr());
            (0..blocks).into_par_iter().for_each(|block| {
                let first = block * mr;
                let count = mr.min(rows - first);
                for k0 in (0..k).step_by(KC) {
                    let kc = KC.min(k - k0);
                    let start = (k0 * blocks + block * kc) * mr;
                    // SAFETY: blocks write disjoint `kc · mr` runs of the buffer.
                    let chunk =
                        unsafe { std::slice::from_raw_parts_mut(rows_out.at(start), kc * mr) };
                    if count < mr {
                        chunk.fill(std::mem::MaybeUninit::new(0.0));
                    }
                    for r in 0..count {
                        let source = &x[(first + r) * k + k0..][..kc];
                        for (group, v) in chunk.chunks_exact_mut(mr).zip(source) {
                            group[r] = std::mem::MaybeUninit::new(*v);
                        }
                    }
                }
            });
        };
        // SAFETY: the blocks' runs cover `0..len` (each `k0` block holds `blocks · kc · mr`
        // values, `kc` summing to `k`), and `fill` writes every value of each run.
        let packed_rows = unsafe { Lines::filled_by(len, fill) };
        let packed_rows = &packed_rows[..];
        split_panels(panels, nr, out, threads, around, |range| {
            let end = range.end;
            for_tiles(k, rows, KC, mr, range, |k0, kc, p, r0, r| {
                let b = self.data[block_start(k0, p, kc, panels, nr)..].as_ptr();
                let cols = nr.min(n - p * nr);
                let a = packed_rows[(k0 * blocks + r0 / mr * kc) * mr..].as_ptr();
                // The next panel's slice of weights follows this one; while this panel's
                // tiles run, each brings in its share of it.
                let next = if p + 1 < end {
                    let m0 = r0 / MC * MC;
                    let tiles = MC.min(rows - m0).div_ceil(mr);
                    // SAFETY: panel `p + 1` exists, so its `kc · nr` values follow `b`'s.
                    Prefetch::share(unsafe { b.add(kc * nr) }, kc * nr, (r0 - m0) / mr, tiles)
                } else {
                    Prefetch::NONE
                };
                // SAFETY: `a` holds `kc` groups of `mr` values, `b` `kc` rows of `nr`, and the
                // destination `r` rows of `cols` values `n` apart, all in bounds; each part
                // writes only its own panels' columns. The kernel was detected on this CPU.
                unsafe {
                    let c = out.at.at(r0 * n + p * nr);
                    run_kernel(self.kernel, r, a, b, kc, c, n, cols, next);
                }
            });
        });
    }
}

/// Walks the tiles of a product over panels `range`, blocked so that a panel's slice of weights
/// (`kc_block` inputs) stays in L1 while the rows pass over it, and `MC` rows' slice of inputs
/// in L2: `tile(k0, kc, panel, first_row, rows)` for each kernel call, `rows` at most `mr`.
fn for_tiles(
    inputs: usize,
    rows: usize,
    kc_block: usize,
    mr: usize,
    range: std::ops::Range<usize>,
    mut tile: impl FnMut(usize, usize, usize, usize, usize),
) {
    for k0 in (0..inputs).step_by(kc_block) {
        let kc = kc_block.min(inputs - k0);
        for m0 in (0..rows).step_by(MC) {
            let mc = MC.min(rows - m0);
            for p in range.clone() {
                for r0 in (m0..m0 + mc).step_by(mr) {
                    tile(k0, kc, p, r0, mr.min(m0 + mc - r0));
                }
            }
        }
    }
}

/// Where panel `p`'s slice of the inputs from `k0` (`kc` of them) starts in `Packed::data`.
fn block_start(k0: usize, p: usize, kc: usize, panels: usize, nr: usize) -> usize {
    (k0 * panels + p * kc) * nr
}

/// A raw pointer that may cross threads: each thread writes a disjoint part of the buffer.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
// SAFETY: the threads that share it write disjoint regions of values that may be sent between
// threads (`T: Send`); every place that makes one says which region each thread writes.
unsafe impl<T: Send> Send for SendPtr<T> {}
// SAFETY: as for `Send`: shared, it only hands out the pointer, and each thread writes its own
// region.
unsafe impl<T: Send> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer `offset` values on (a method, so closures capture the `Send` wrapper).
    ///
    /// # Safety
    /// `offset` must stay within the buffer.
    pub(crate) unsafe fn at(self, offset: usize) -> *mut T {
        // SAFETY: the caller keeps `offset` within the buffer.
        unsafe { self.0.add(offset) }
    }
}

/// Cache lines (16 floats each) of weights a kernel call asks the CPU to load into L2, one per
/// step of its loop over the inputs, so that the loads spread over the call.
///
/// A panel's slice of weights comes from memory once per product and then serves every tile
/// of rows. Without this, the first tile of each panel waits for it: at batch 1 (50 rows, 9
/// tiles of the 6-row kernel) that tile needs its weights faster than one core reads memory.
/// Measured in one process, alternating: the 256-bit kernel 1.13× at batch 1 on one thread,
/// 1.02–1.04× at batch 4 to 32; the 512-bit kernel, whose tiles are four times as long, 1.02×
/// at batch 1.
#[derive(Clone, Copy)]
struct Prefetch {
    at: *const f32,
    lines: usize,
}

impl Prefetch {
    const NONE: Prefetch = Prefetch {
        at: std::ptr::null(),
        lines: 0,
    };

    /// Tile `tile` of `tiles`' share of the `values` floats from `at`: an equal run of lines.
    /// A kernel call prefetches at most one line per input it steps over, so a share longer
    /// than the call is cut short (a panel of one tile then brings in the first `kc` lines).
    fn share(at: *const f32, values: usize, tile: usize, tiles: usize) -> Prefetch {
        let lines = values / 16;
        let (from, to) = (tile * lines / tiles, (tile + 1) * lines / tiles);
        Prefetch {
            // The address is only prefetched, never read, so `wrapping_add` suffices.
            at: at.wrapping_add(from * 16),
            lines: to - from,
        }
    }
}

/// The store masks for a 32-column tile's two 16-lane halves when only `cols` columns exist.
fn column_masks(cols: usize) -> [u16; 2] {
    let lanes = |n: usize| if n >= 16 { 0xFFFF } else { (1u16 << n) - 1 };
    [lanes(cols), lanes(cols.saturating_sub(16))]
}

/// Dispatches to the kernel instance for `r` rows.
///
/// # Safety
/// `r` is at most the kernel's rows; `a` holds `kc` groups of the kernel's rows of values
/// (packed as [`Packed::product`] packs them), `b` `kc` rows of its columns, and `c` addresses
/// `r` rows of `cols` (at most the kernel's columns) values `ldc` apart that no other thread
/// uses meanwhile. `next` may point anywhere: it is only prefetched.
#[allow(clippy::too_many_arguments)]
unsafe fn run_kernel(
    kernel: Kernel,
    r: usize,
    a: *const f32,
    b: *const f32,
    kc: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    next: Prefetch,
) {
    macro_rules! rows {
        ($f:ident, $($n:literal)*) => {
            match r {
                // SAFETY: the kernel's proof says the CPU has its instructions; the pointers
                // are as this function's contract says.
                $($n => unsafe { $f::<$n>(a, b, kc, c, ldc, cols, next) },)*
                _ => unreachable!("kernel rows"),
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    match kernel {
        Kernel::Avx512(_) => rows!(avx512, 1 2 3 4 5 6 7 8 9 10 11 12),
        Kernel::Avx2(_) => rows!(avx2, 1 2 3 4 5 6),
    }
    // No CPU of another architecture detects these kernels, so no `Kernel` exists there.
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (r, a, b, kc, c, ldc, cols, next);
        unreachable!("{kernel:?} was detected on a CPU that is not x86-64")
    }
}

/// `R` rows (of a 12-row packed block) × 32 columns: 2·R accumulators of 16 floats.
///
/// # Safety
/// The CPU has AVX-512F, and the pointers are as [`run_kernel`]'s contract says (12-row groups,
/// 32-column rows).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512<const R: usize>(
    a: *const f32,
    b: *const f32,
    kc: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    next: Prefetch,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for k in 0..kc {
        if k < next.lines {
            _mm_prefetch::<_MM_HINT_T1>(next.at.wrapping_add(k * 16) as *const i8);
        }
        // SAFETY: `b` holds `kc` rows of 32 values (the contract), and `k < kc`.
        let (b0, b1) = unsafe {
            (
                _mm512_loadu_ps(b.add(k * 32)),
                _mm512_loadu_ps(b.add(k * 32 + 16)),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `a` holds `kc` groups of 12 values (the contract), and `r < R <= 12`.
            let av = _mm512_set1_ps(unsafe { *a.add(k * 12 + r) });
            acc[0] = _mm512_fmadd_ps(av, b0, acc[0]);
            acc[1] = _mm512_fmadd_ps(av, b1, acc[1]);
        }
    }
    let [low, high] = column_masks(cols);
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: `c` addresses R rows `ldc` apart, and the masks cover only the row's `cols`
        // values (the contract).
        unsafe {
            let row = c.add(r * ldc);
            let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(low, row), acc[0]);
            _mm512_mask_storeu_ps(row, low, sum);
            // Wrapping: with 16 columns or fewer this half is masked off entirely and its
            // address may lie past the buffer.
            let row = row.wrapping_add(16);
            let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(high, row), acc[1]);
            _mm512_mask_storeu_ps(row, high, sum);
        }
    }
}

/// `R` rows (of a 6-row packed block) × 16 columns: 2·R accumulators of 8 floats.
///
/// # Safety
/// The CPU has AVX2 and FMA, and the pointers are as [`run_kernel`]'s contract says (6-row
/// groups, 16-column rows).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<const R: usize>(
    a: *const f32,
    b: *const f32,
    kc: usize,
    c: *mut f32,
    ldc: usize,
    cols: usize,
    next: Prefetch,
) {
    use std::arch::x86_64::*;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    for k in 0..kc {
        if k < next.lines {
            _mm_prefetch::<_MM_HINT_T1>(next.at.wrapping_add(k * 16) as *const i8);
        }
        // SAFETY: `b` holds `kc` rows of 16 values (the contract), and `k < kc`.
        let (b0, b1) = unsafe {
            (
                _mm256_loadu_ps(b.add(k * 16)),
                _mm256_loadu_ps(b.add(k * 16 + 8)),
            )
        };
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: `a` holds `kc` groups of 6 values (the contract), and `r < R <= 6`.
            let av = _mm256_set1_ps(unsafe { *a.add(k * 6 + r) });
            acc[0] = _mm256_fmadd_ps(av, b0, acc[0]);
            acc[1] = _mm256_fmadd_ps(av, b1, acc[1]);
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: `c` addresses R rows `ldc` apart (the contract); the row is only offset here.
        let row = unsafe { c.add(r * ldc) };
        if cols == 16 {
            // SAFETY: a full tile: the row holds 16 values.
            unsafe {
                _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), acc[0]));
                let row = row.add(8);
                _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), acc[1]));
            }
        } else {
            let mut sums = [0.0f32; 16];
            // SAFETY: `sums` holds the 16 values stored.
            unsafe {
                _mm256_storeu_ps(sums.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(sums.as_mut_ptr().add(8), acc[1]);
            }
            for (j, s) in sums.iter().take(cols).enumerate() {
                // SAFETY: `j < cols`, and the row holds `cols` values.
                unsafe { *row.add(j) += s };
            }
        }
    }
}

#[cfg(test)]
mod tests;
