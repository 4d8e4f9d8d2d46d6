//! Dot products over stored embeddings, with the widest instructions the CPU has (chosen at run
//! time): f32 rows for exact scores, half-precision rows for passes over the whole library.

use half::f16;

/// The dot product of two equally long vectors, in eight lanes so the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (head_a, tail_a) = a.split_at(a.len() - a.len() % 8);
    let (head_b, tail_b) = b.split_at(head_a.len());
    for (ca, cb) in head_a.chunks_exact(8).zip(head_b.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += ca[i] * cb[i];
        }
    }
    let tail: f32 = tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// The dot product of each `dim`-wide half-precision row of `rows` with `query`, into `out`.
pub fn dots_f16(rows: &[f16], dim: usize, query: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if has_f16c() {
            // SAFETY: the CPU has AVX2, FMA and F16C.
            return unsafe { dots_f16_avx2(rows, dim, query, out) };
        }
    }
    for (row, out) in rows.chunks_exact(dim).zip(out) {
        *out = dot_f16_plain(row, query);
    }
}

/// Whether half-precision rows are converted by the CPU's F16C instructions.
pub fn has_f16c() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn dot_f16_plain(row: &[f16], query: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (head_a, tail_a) = row.split_at(row.len() - row.len() % 8);
    let (head_b, tail_b) = query.split_at(head_a.len());
    for (ca, cb) in head_a.chunks_exact(8).zip(head_b.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += ca[i].to_f32() * cb[i];
        }
    }
    let tail: f32 = tail_a.iter().zip(tail_b).map(|(x, y)| x.to_f32() * y).sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
fn dots_f16_avx2(rows: &[f16], dim: usize, query: &[f32], out: &mut [f32]) {
    for (row, out) in rows.chunks_exact(dim).zip(out) {
        *out = dot_f16_avx2(row, query);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[inline]
fn dot_f16_avx2(row: &[f16], query: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = row.len().min(query.len());
    let (a, b) = (row.as_ptr() as *const u16, query.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY: every load reads 8 values at i < n - 7 of slices at least n long.
    unsafe {
        while i + 32 <= n {
            for (k, acc) in acc.iter_mut().enumerate() {
                let at = i + 8 * k;
                let x = _mm256_cvtph_ps(_mm_loadu_si128(a.add(at) as *const __m128i));
                *acc = _mm256_fmadd_ps(x, _mm256_loadu_ps(b.add(at)), *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = _mm256_cvtph_ps(_mm_loadu_si128(a.add(i) as *const __m128i));
            acc[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(b.add(i)), acc[0]);
            i += 8;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
        let tail: f32 = (i..n).map(|j| row[j].to_f32() * query[j]).sum();
        lanes.iter().sum::<f32>() + tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_half_precision_kernels_agree_with_each_other() {
        // 77 values: the 32-wide loop, the 8-wide loop and the tail all run.
        let query: Vec<f32> = (0..77)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let row: Vec<f16> = (0..77)
            .map(|i| f16::from_f32(((i * 13 % 17) as f32 - 8.0) / 9.0))
            .collect();
        let exact: f32 = row.iter().zip(&query).map(|(a, b)| a.to_f32() * b).sum();
        let mut out = [0.0f32; 2];
        let two: Vec<f16> = row.iter().chain(&row).copied().collect();
        dots_f16(&two, 77, &query, &mut out);
        assert!((out[0] - exact).abs() < 1e-5 && (out[1] - exact).abs() < 1e-5);
        assert!((dot_f16_plain(&row, &query) - exact).abs() < 1e-5);
    }
}
