//! Conversions from f32 to the 16-bit formats the reduced-precision product runs in (IEEE half
//! precision and bfloat16), rounding to nearest even: vector ones where the CPU has them, and
//! the scalar ones they must agree with.

use super::half::Format;

/// `values · scale` in `format` into `out` (at least as long), rounding to nearest even.
pub fn convert(format: Format, values: &[f32], scale: f32, out: &mut [u16]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        match format {
            // SAFETY: the CPU has AVX-512F.
            Format::F16 if has!("avx512f") => return unsafe { convert_avx512(values, scale, out) },
            Format::Bf16 if has!("avx512f") && has!("avx512bf16") => {
                // SAFETY: the CPU has AVX-512F and AVX-512 BF16.
                return unsafe { convert_bf16_avx512(values, scale, out) };
            }
            _ => {}
        }
    }
    for (o, v) in out.iter_mut().zip(values) {
        *o = format.round(v * scale);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn convert_avx512(values: &[f32], scale: f32, out: &mut [u16]) {
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

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
fn convert_bf16_avx512(values: &[f32], scale: f32, out: &mut [u16]) {
    use std::arch::x86_64::*;
    let s = _mm512_set1_ps(scale);
    let mut chunks = values.chunks_exact(16);
    let mut at = 0;
    for chunk in &mut chunks {
        // SAFETY: 16 values in, 16 bfloat16s out, both in bounds; `__m256bh` and `__m256i` are
        // the same 256 bits.
        unsafe {
            let v = _mm512_mul_ps(_mm512_loadu_ps(chunk.as_ptr()), s);
            let h: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(v));
            _mm256_storeu_si256(out[at..at + 16].as_mut_ptr().cast(), h);
        }
        at += 16;
    }
    for (o, v) in out[at..].iter_mut().zip(chunks.remainder()) {
        *o = to_bf16(v * scale);
    }
}

/// `x` in bfloat16 (f32's upper 16 bits), rounded to nearest even; NaN stays NaN.
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) as u16) | 0x40;
    }
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// The f32 value of bfloat16 `h`.
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
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
        for format in [Format::F16, Format::Bf16] {
            let mut fast = vec![0u16; values.len()];
            convert(format, &values, 0.75, &mut fast);
            for (v, f) in values.iter().zip(&fast) {
                assert_eq!(*f, format.round(v * 0.75), "{format:?} {v}");
            }
        }
    }

    #[test]
    fn conversion_to_bf16_rounds_to_nearest_even() {
        for (x, want) in [
            (0.0f32, 0x0000u16),
            (-0.0, 0x8000),
            (1.0, 0x3f80),
            (-2.0, 0xc000),
            (1.0 + 1.0 / 256.0, 0x3f80), // halfway, to the even neighbour below
            (1.0 + 3.0 / 256.0, 0x3f82), // halfway, to the even neighbour above
            (1.0 + 1.5 / 256.0, 0x3f81),
            (f32::MAX, 0x7f80), // rounds up past the largest bfloat16: infinity
            (f32::INFINITY, 0x7f80),
            (f32::NEG_INFINITY, 0xff80),
        ] {
            assert_eq!(to_bf16(x), want, "{x}");
        }
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        // A NaN whose payload sits only in the low bits must not round to infinity.
        assert!(from_bf16(to_bf16(f32::from_bits(0x7f80_0001))).is_nan());
        for h in (0..0x7f80u16).chain(0x8000..0xff80) {
            assert_eq!(to_bf16(from_bf16(h)), h, "{h:#06x}");
        }
    }
}
