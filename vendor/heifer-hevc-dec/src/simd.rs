//! Run-time choice of vector width for the decoder's integer loops (a change made for cliptag).
//!
//! The crate is built for baseline x86-64 (SSE2), which has no 32-bit vector multiply, minimum or
//! maximum, so the inverse transforms and the clipping after them run mostly in scalar code.
//! Where the CPU has AVX2, the same Rust is compiled a second time with it enabled and chosen at
//! run time; the arithmetic is the same integer arithmetic, so the samples are identical.

/// Whether this CPU runs AVX2 (asked once).
#[inline]
pub(crate) fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A DCT matrix `m` (`[input][output]`) with its inputs in pairs, for `vpmaddwd`: row `p` holds
/// `(m[2p][i], m[2p + 1][i])` for each output `i` (up to 32 outputs, 16 pairs of inputs).
pub(crate) type Pairs = [[i16; 64]; 16];

/// [`Pairs`] of an `N`×`N` matrix whose entries fit in 16 bits (the DCT's are at most 90).
pub(crate) const fn pairs<const N: usize>(m: &[[i32; N]; N]) -> Pairs {
    let mut out = [[0i16; 64]; 16];
    let mut p = 0;
    while p < N / 2 {
        let mut i = 0;
        while i < N {
            out[p][2 * i] = m[2 * p][i] as i16;
            out[p][2 * i + 1] = m[2 * p + 1][i] as i16;
            i += 1;
        }
        p += 1;
    }
    out
}

/// The 2-D inverse DCT of an `N`×`N` block (`N` of 8, 16 or 32) whose non-zero coefficients lie
/// in its top-left `rows`×`cols` corner, as `recon::inverse_2d` computes it: a column pass
/// rounded by 7 bits and clipped to 16 bits, then a row pass rounded by `bd_shift` bits.
///
/// Each 1-D pass multiplies two inputs at a time: `vpmaddwd` adds the products of a pair of
/// 16-bit inputs with a pair of matrix entries into 32 bits, eight outputs per instruction.
/// The inputs are 16-bit (the scaled coefficients are clipped to 16 bits before the transform,
/// and so is the column pass's output) and the entries at most 90, so every sum is the same
/// exact integer the scalar loop forms, and the samples are identical. Pairs of zero inputs
/// are skipped, as the scalar loop skips zeros.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) fn inverse_dct_avx2<const N: usize>(
    pairs: &Pairs,
    d: &[i32],
    rows: usize,
    cols: usize,
    bd_shift: i32,
    out: &mut [i32],
) {
    use std::arch::x86_64::*;
    assert!(matches!(N, 8 | 16 | 32) && d.len() >= N * N && out.len() >= N * N);
    let (rows, cols) = (rows.min(N), cols.min(N));
    let vectors = N / 8;
    // One 1-D pass over `$lines` lines of `$terms` inputs each, `$input(line, j)` reading input
    // `j`; `$finish(line, v, sums)` takes each line's eight outputs from `8v`.
    macro_rules! pass {
        ($lines:expr, $terms:expr, $input:expr, $finish:expr) => {
            for line in 0..$lines {
                let mut acc = [_mm256_setzero_si256(); 4];
                for p in 0..$terms.div_ceil(2) {
                    let low: i32 = $input(line, 2 * p);
                    let high: i32 = if 2 * p + 1 < $terms {
                        $input(line, 2 * p + 1)
                    } else {
                        0
                    };
                    let pair = u32::from(low as u16) | (u32::from(high as u16) << 16);
                    if pair == 0 {
                        continue;
                    }
                    let both = _mm256_set1_epi32(pair as i32);
                    for (v, acc) in acc.iter_mut().enumerate().take(vectors) {
                        let m = &pairs[p][16 * v..16 * v + 16];
                        // SAFETY: `m` is 16 values of 16 bits.
                        #[allow(unsafe_code)]
                        let m = unsafe { _mm256_loadu_si256(m.as_ptr().cast()) };
                        *acc = _mm256_add_epi32(*acc, _mm256_madd_epi16(m, both));
                    }
                }
                for (v, acc) in acc.iter().enumerate().take(vectors) {
                    $finish(line, v, *acc);
                }
            }
        };
    }
    // Column pass over the first `cols` columns, stored transposed: `columns[x][y]`.
    let mut columns = [[0i32; 32]; 32];
    let (low, high) = (_mm256_set1_epi32(-32768), _mm256_set1_epi32(32767));
    let round = _mm256_set1_epi32(64);
    pass!(
        cols,
        rows,
        |x: usize, j: usize| d[j * N + x],
        |x: usize, v: usize, sums| {
            let g = _mm256_srai_epi32::<7>(_mm256_add_epi32(sums, round));
            let g = _mm256_max_epi32(_mm256_min_epi32(g, high), low);
            let o = &mut columns[x][8 * v..8 * v + 8];
            // SAFETY: `o` is 8 values of 32 bits.
            #[allow(unsafe_code)]
            unsafe {
                _mm256_storeu_si256(o.as_mut_ptr().cast(), g)
            };
        }
    );
    // Row pass: row `y`'s inputs are `columns[x][y]` for the first `cols` columns.
    let round = _mm256_set1_epi32(1 << (bd_shift - 1));
    let shift = _mm_cvtsi32_si128(bd_shift);
    pass!(
        N,
        cols,
        |y: usize, x: usize| columns[x][y],
        |y: usize, v: usize, sums| {
            let r = _mm256_sra_epi32(_mm256_add_epi32(sums, round), shift);
            let o = &mut out[y * N + 8 * v..y * N + 8 * v + 8];
            // SAFETY: `o` is 8 values of 32 bits.
            #[allow(unsafe_code)]
            unsafe {
                _mm256_storeu_si256(o.as_mut_ptr().cast(), r)
            };
        }
    );
}
