//! From reduced coefficients to pixels, as jpeg-decoder computes them: the reduced inverse
//! DCTs, chroma upsampling and YCbCr to RGB.

use super::{Frame, Plane, max_sampling};

fn clamp(x: i32) -> u8 {
    x.clamp(0, 255) as u8
}

/// jpeg-decoder's reduced inverse DCTs (from stb_image), on dequantised coefficients.
pub(super) fn idct(c: &[i32; 16], n: usize, out: &mut [u8], stride: usize) {
    match n {
        1 => out[0] = clamp(c[0].wrapping_add(128 * 8) / 8),
        2 => {
            const SCALE_BITS: u32 = 3;
            let (s00, s01, s10, s11) = (c[0], c[1], c[2], c[3]);
            let round = (1 << (SCALE_BITS - 1)) + (128 << SCALE_BITS);
            let x0 = s00.wrapping_add(s10).wrapping_add(round);
            let x2 = s00.wrapping_sub(s10).wrapping_add(round);
            let x1 = s01.wrapping_add(s11);
            let x3 = s01.wrapping_sub(s11);
            out[0] = clamp(x0.wrapping_add(x1) >> SCALE_BITS);
            out[1] = clamp(x0.wrapping_sub(x1) >> SCALE_BITS);
            out[stride] = clamp(x2.wrapping_add(x3) >> SCALE_BITS);
            out[stride + 1] = clamp(x2.wrapping_sub(x3) >> SCALE_BITS);
        }
        _ => idct4(c, out, stride),
    }
}

fn f2f(x: f32) -> i32 {
    (x * 4096.0 + 0.5) as i32
}

fn idct4(c: &[i32; 16], out: &mut [u8], stride: usize) {
    const CONST_BITS: u32 = 12;
    const PASS1_BITS: u32 = 2;
    const FINAL_BITS: u32 = CONST_BITS + PASS1_BITS + 3;
    let mut temp = [0i32; 16];
    for i in 0..4 {
        let (s0, s1, s2, s3) = (c[i], c[4 + i], c[8 + i], c[12 + i]);
        let x0 = s0.wrapping_add(s2) << PASS1_BITS;
        let x2 = s0.wrapping_sub(s2) << PASS1_BITS;
        let p1 = s1.wrapping_add(s3).wrapping_mul(f2f(0.541_196_1));
        let t0 = p1
            .wrapping_add(s3.wrapping_mul(f2f(-1.847_759_1)))
            .wrapping_add(512)
            >> (CONST_BITS - PASS1_BITS);
        let t2 = p1
            .wrapping_add(s1.wrapping_mul(f2f(0.765_366_87)))
            .wrapping_add(512)
            >> (CONST_BITS - PASS1_BITS);
        temp[i] = x0.wrapping_add(t2);
        temp[12 + i] = x0.wrapping_sub(t2);
        temp[4 + i] = x2.wrapping_add(t0);
        temp[8 + i] = x2.wrapping_sub(t0);
    }
    for i in 0..4 {
        let (s0, s1, s2, s3) = (
            temp[i * 4],
            temp[i * 4 + 1],
            temp[i * 4 + 2],
            temp[i * 4 + 3],
        );
        let x0 = s0.wrapping_add(s2) << CONST_BITS;
        let x2 = s0.wrapping_sub(s2) << CONST_BITS;
        let p1 = s1.wrapping_add(s3).wrapping_mul(f2f(0.541_196_1));
        let t0 = p1.wrapping_add(s3.wrapping_mul(f2f(-1.847_759_1)));
        let t2 = p1.wrapping_add(s1.wrapping_mul(f2f(0.765_366_87)));
        let round = (1 << (FINAL_BITS - 1)) + (128 << FINAL_BITS);
        let x0 = x0.wrapping_add(round);
        let x2 = x2.wrapping_add(round);
        let row = &mut out[i * stride..i * stride + 4];
        row[0] = clamp(x0.wrapping_add(t2) >> FINAL_BITS);
        row[3] = clamp(x0.wrapping_sub(t2) >> FINAL_BITS);
        row[1] = clamp(x2.wrapping_add(t0) >> FINAL_BITS);
        row[2] = clamp(x2.wrapping_sub(t0) >> FINAL_BITS);
    }
}

/// The output image: the planes upsampled to full resolution and converted to RGB, row by row,
/// as jpeg-decoder does.
pub(super) fn assemble(frame: &Frame, planes: Vec<Plane>, n: usize) -> (usize, usize, Vec<u8>) {
    let width = (frame.width * n).div_ceil(8);
    let height = (frame.height * n).div_ceil(8);
    if planes.len() == 1 {
        let plane = &planes[0];
        let mut out = Vec::with_capacity(width * height);
        for y in 0..height {
            out.extend_from_slice(&plane.data[y * plane.stride..][..width]);
        }
        return (width, height, out);
    }
    let (hmax, vmax) = max_sampling(&frame.components);
    let line = planes.iter().map(|p| p.width).max().unwrap_or(0) * hmax + 2;
    let mut lines = vec![vec![0u8; line.max(width)]; 3];
    let mut out = vec![0u8; width * height * 3];
    for (y, row) in out.chunks_exact_mut(width * 3).enumerate() {
        for ((c, plane), buffer) in frame.components.iter().zip(&planes).zip(&mut lines) {
            upsample_row(plane, (c.h, c.v), (hmax, vmax), width, y, buffer);
        }
        let (ys, cbs, crs) = (&lines[0][..width], &lines[1][..width], &lines[2][..width]);
        for (((pixel, &y), &cb), &cr) in row.chunks_exact_mut(3).zip(ys).zip(cbs).zip(crs) {
            let (r, g, b) = ycbcr_to_rgb(y, cb, cr);
            pixel.copy_from_slice(&[r, g, b]);
        }
    }
    (width, height, out)
}

/// jpeg-decoder's upsampling of one output row of a component: a copy, or its "fancy" triangle
/// filter for 2× across or 2× both ways (the forms `decode_inner` accepts).
fn upsample_row(
    plane: &Plane,
    (h, v): (usize, usize),
    (hmax, vmax): (usize, usize),
    out_width: usize,
    row: usize,
    out: &mut [u8],
) {
    let (h1, v1) = (h == hmax, v == vmax);
    let (input, width, height) = (&plane.data, plane.width, plane.height);
    let stride = plane.stride;
    // Triangle filter rows: the near one and the one on the other side of the sample.
    let near = row / 2;
    let far = if row.is_multiple_of(2) {
        near.saturating_sub(1)
    } else {
        (near + 1).min(height.saturating_sub(1))
    };
    if h1 && v1 {
        out[..out_width].copy_from_slice(&input[row * stride..][..out_width]);
    } else if hmax == 2 * h && v1 {
        let input = &input[row * stride..];
        if width == 1 {
            out[0] = input[0];
            out[1] = input[0];
            return;
        }
        out[0] = input[0];
        out[1] = ((u32::from(input[0]) * 3 + u32::from(input[1]) + 2) >> 2) as u8;
        for i in 1..width - 1 {
            let sample = 3 * u32::from(input[i]) + 2;
            out[i * 2] = ((sample + u32::from(input[i - 1])) >> 2) as u8;
            out[i * 2 + 1] = ((sample + u32::from(input[i + 1])) >> 2) as u8;
        }
        out[(width - 1) * 2] =
            ((u32::from(input[width - 1]) * 3 + u32::from(input[width - 2]) + 2) >> 2) as u8;
        out[(width - 1) * 2 + 1] = input[width - 1];
    } else {
        // 2× in both directions, the only other form the frame check lets through.
        let (near, far) = (&input[near * stride..], &input[far * stride..]);
        if width == 1 {
            let value = ((3 * u32::from(near[0]) + u32::from(far[0]) + 2) >> 2) as u8;
            out[0] = value;
            out[1] = value;
            return;
        }
        let mut t1 = 3 * u32::from(near[0]) + u32::from(far[0]);
        out[0] = ((t1 + 2) >> 2) as u8;
        for i in 1..width {
            let t0 = t1;
            t1 = 3 * u32::from(near[i]) + u32::from(far[i]);
            out[i * 2 - 1] = ((3 * t0 + t1 + 8) >> 4) as u8;
            out[i * 2] = ((3 * t1 + t0 + 8) >> 4) as u8;
        }
        out[width * 2 - 1] = ((t1 + 2) >> 2) as u8;
    }
}

/// jpeg-decoder's fixed-point YCbCr to RGB.
#[inline(always)]
fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> (u8, u8, u8) {
    const SHIFT: i32 = 20;
    fn f(x: f32) -> i32 {
        (x * (1 << SHIFT) as f32 + 0.5) as i32
    }
    let y = i32::from(y) * (1 << SHIFT) + (1 << (SHIFT - 1));
    let cb = i32::from(cb) - 128;
    let cr = i32::from(cr) - 128;
    let fix = |v: i32| (v >> SHIFT).clamp(0, 255) as u8;
    (
        fix(y + f(1.402) * cr),
        fix(y - f(0.34414) * cb - f(0.71414) * cr),
        fix(y + f(1.772) * cb),
    )
}
