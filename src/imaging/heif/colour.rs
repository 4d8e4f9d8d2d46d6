//! YCbCr pictures to 8-bit RGB, as libheif converts them for display, and at a reduced size for
//! indexing.

use heifer::heifer_hevc_dec::recon::Frame;
use image::RgbImage;

/// How YCbCr samples map to RGB (ITU-T H.273).
#[derive(Clone, Copy)]
pub(super) struct Colour {
    pub matrix: u16,
    pub full_range: bool,
}

/// Writes the top-left `size` pixels of a decoded picture into `out` at `at`, in 8-bit RGB as
/// libheif converts for display: samples of more than 8 bits shifted down to 8 first, each
/// pixel's chroma from the chroma sample that covers it, fixed-point coefficients in 1/256.
pub(super) fn convert(
    frame: &Frame,
    colour: Colour,
    out: &mut RgbImage,
    at: (u32, u32),
    size: (u32, u32),
) -> Result<(), String> {
    let Placement {
        shift_y,
        shift_c,
        width,
        height,
        stride,
        out_stride,
        x0,
        y0,
    } = placement(frame, out, at, size, 1)?;
    let out = out.as_mut();
    let luma_row = |y: usize| &frame.planes[0][y * stride..y * stride + width];
    if frame.widths[1] == 0 || frame.heights[1] == 0 {
        // Monochrome: grey, range expanded where the range is limited.
        for y in 0..height {
            let start = (y0 + y) * out_stride + x0 * 3;
            let row = &mut out[start..start + width * 3];
            for (pixel, &v) in row.chunks_exact_mut(3).zip(luma_row(y)) {
                let v = expand_luma(i32::from(v >> shift_y), colour.full_range);
                pixel.copy_from_slice(&[v, v, v]);
            }
        }
        return Ok(());
    }
    let (cw, ch) = (frame.widths[1] as usize, frame.heights[1] as usize);
    let sx = (stride / cw).max(1);
    let sy = (frame.heights[0] as usize / ch).max(1);
    if (width - 1) / sx >= cw || (height - 1) / sy >= ch {
        return Err("damaged HEIF file: its chroma planes are too small".into());
    }
    let coefficients = Coefficients::new(colour);
    for y in 0..height {
        let start = (y0 + y) * out_stride + x0 * 3;
        let row = &mut out[start..start + width * 3];
        let c = (y / sy) * cw;
        let (cb_row, cr_row) = (&frame.planes[1][c..c + cw], &frame.planes[2][c..c + cw]);
        for (x, (pixel, &luma)) in row.chunks_exact_mut(3).zip(luma_row(y)).enumerate() {
            let cx = x / sx;
            let rgb = coefficients.rgb(
                i32::from(luma >> shift_y),
                i32::from(cb_row[cx] >> shift_c),
                i32::from(cr_row[cx] >> shift_c),
            );
            pixel.copy_from_slice(&rgb);
        }
    }
    Ok(())
}

/// Where a picture's `size` pixels go in `out` (at `at`, in `out`'s pixels, `scale` times
/// smaller), checked to fit, with the shifts that bring its samples to 8 bits.
struct Placement {
    shift_y: u8,
    shift_c: u8,
    width: usize,
    height: usize,
    /// Luma samples per row of the picture.
    stride: usize,
    /// Bytes per row of `out`.
    out_stride: usize,
    x0: usize,
    y0: usize,
}

fn placement(
    frame: &Frame,
    out: &RgbImage,
    at: (u32, u32),
    size: (u32, u32),
    scale: usize,
) -> Result<Placement, String> {
    let [luma_depth, chroma_depth] = frame.bit_depth;
    if !(8..=16).contains(&luma_depth) || !(8..=16).contains(&chroma_depth) {
        return Err(format!(
            "HEIF file cliptag cannot read yet: {luma_depth}-bit samples"
        ));
    }
    let (width, height) = (size.0 as usize, size.1 as usize);
    let stride = frame.widths[0] as usize;
    let (x0, y0) = (at.0 as usize, at.1 as usize);
    if width == 0
        || height == 0
        || width > stride
        || height > frame.heights[0] as usize
        || x0 + width.div_ceil(scale) > out.width() as usize
        || y0 + height.div_ceil(scale) > out.height() as usize
    {
        return Err("damaged HEIF file: a picture does not fit where it belongs".into());
    }
    Ok(Placement {
        shift_y: luma_depth - 8,
        shift_c: chroma_depth - 8,
        width,
        height,
        stride,
        out_stride: out.width() as usize * 3,
        x0,
        y0,
    })
}

/// YCbCr → RGB in 8 bits, with libheif's fixed-point coefficients.
struct Coefficients {
    /// The identity matrix: the planes are G, B and R.
    identity: bool,
    full_range: bool,
    r_cr: i32,
    g_cb: i32,
    g_cr: i32,
    b_cb: i32,
}

impl Coefficients {
    fn new(colour: Colour) -> Self {
        let (kr, kb) = match colour.matrix {
            1 => (0.2126, 0.0722),
            4 => (0.30, 0.11),
            7 => (0.212, 0.087),
            9 | 10 => (0.2627, 0.0593),
            _ => (0.299, 0.114), // 5, 6 and unspecified: BT.601
        };
        let kg = 1.0 - kr - kb;
        // Limited-range chroma spans 224 levels instead of 255.
        let range = if colour.full_range {
            1.0
        } else {
            255.0 / 224.0
        };
        let fixed = |c: f64| (c * range * 256.0).round() as i32;
        Coefficients {
            identity: colour.matrix == 0,
            full_range: colour.full_range,
            r_cr: fixed(2.0 * (1.0 - kr)),
            g_cb: fixed(-2.0 * kb * (1.0 - kb) / kg),
            g_cr: fixed(-2.0 * kr * (1.0 - kr) / kg),
            b_cb: fixed(2.0 * (1.0 - kb)),
        }
    }

    #[inline]
    fn rgb(&self, y: i32, cb: i32, cr: i32) -> [u8; 3] {
        let clamp = |v: i32| v.clamp(0, 255) as u8;
        if self.identity {
            return [clamp(cr), clamp(y), clamp(cb)];
        }
        let y = i32::from(expand_luma(y, self.full_range));
        let (cb, cr) = (cb - 128, cr - 128);
        [
            clamp(y + ((self.r_cr * cr + 128) >> 8)),
            clamp(y + ((self.g_cb * cb + self.g_cr * cr + 128) >> 8)),
            clamp(y + ((self.b_cb * cb + 128) >> 8)),
        ]
    }
}

/// An 8-bit luma sample on the full range.
fn expand_luma(v: i32, full_range: bool) -> u8 {
    if full_range {
        v.clamp(0, 255) as u8
    } else {
        (((v - 16) * 255 * 2 + 219) / (219 * 2)).clamp(0, 255) as u8
    }
}

/// Writes the top-left `size` pixels of a decoded picture into `out` at `at` (in `out`'s
/// pixels), `scale` times smaller along each side: each pixel of `out` is the mean of a
/// `scale`×`scale` block of luma samples (only those inside `size`) and of the chroma samples
/// under it, converted as [`convert`] converts. The conversion is affine, so this is the mean
/// of the block's RGB pixels but for rounding and clamping; a twelfth or less of the work.
pub(super) fn convert_reduced(
    frame: &Frame,
    colour: Colour,
    out: &mut RgbImage,
    at: (u32, u32),
    size: (u32, u32),
    scale: u32,
) -> Result<(), String> {
    let s = scale.max(1) as usize;
    let Placement {
        shift_y,
        shift_c,
        width,
        height,
        stride,
        out_stride,
        x0,
        y0,
    } = placement(frame, out, at, size, s)?;
    let (out_w, out_h) = (width.div_ceil(s), height.div_ceil(s));
    let monochrome = frame.widths[1] == 0 || frame.heights[1] == 0;
    let (cw, ch) = (frame.widths[1] as usize, frame.heights[1] as usize);
    let (sx, sy) = if monochrome {
        (1, 1)
    } else {
        (
            (stride / cw).max(1),
            (frame.heights[0] as usize / ch).max(1),
        )
    };
    if !monochrome && ((width - 1) / sx >= cw || (height - 1) / sy >= ch) {
        return Err("damaged HEIF file: its chroma planes are too small".into());
    }
    let coefficients = Coefficients::new(colour);
    let out = out.as_mut();
    let mut sums = vec![0u32; out_w * 3];
    let mut counts = vec![0u32; out_w * 2];
    for oy in 0..out_h {
        sums.fill(0);
        counts.fill(0);
        let rows = oy * s..((oy + 1) * s).min(height);
        for y in rows.clone() {
            let luma = &frame.planes[0][y * stride..y * stride + width];
            for (ox, block) in luma.chunks(s).enumerate() {
                sums[ox * 3] += block.iter().map(|&v| u32::from(v >> shift_y)).sum::<u32>();
                counts[ox * 2] += block.len() as u32;
            }
        }
        if !monochrome {
            // The chroma rows and columns under the block's luma samples.
            let chroma_rows = rows.start / sy..(rows.end - 1) / sy + 1;
            let chroma_width = (width - 1) / sx + 1;
            let per_block = (s / sx).max(1);
            for c in chroma_rows {
                let start = c * cw;
                let cb = &frame.planes[1][start..start + chroma_width];
                let cr = &frame.planes[2][start..start + chroma_width];
                for (ox, (cb, cr)) in cb.chunks(per_block).zip(cr.chunks(per_block)).enumerate() {
                    sums[ox * 3 + 1] += cb.iter().map(|&v| u32::from(v >> shift_c)).sum::<u32>();
                    sums[ox * 3 + 2] += cr.iter().map(|&v| u32::from(v >> shift_c)).sum::<u32>();
                    counts[ox * 2 + 1] += cb.len() as u32;
                }
            }
        }
        let start = (y0 + oy) * out_stride + x0 * 3;
        let row = &mut out[start..start + out_w * 3];
        for (ox, pixel) in row.chunks_exact_mut(3).enumerate() {
            let mean = |sum: u32, count: u32| ((sum + count / 2) / count.max(1)) as i32;
            let y = mean(sums[ox * 3], counts[ox * 2]);
            if monochrome {
                let v = expand_luma(y, colour.full_range);
                pixel.copy_from_slice(&[v, v, v]);
            } else {
                let chroma = counts[ox * 2 + 1];
                let (cb, cr) = (
                    mean(sums[ox * 3 + 1], chroma),
                    mean(sums[ox * 3 + 2], chroma),
                );
                pixel.copy_from_slice(&coefficients.rgb(y, cb, cr));
            }
        }
    }
    Ok(())
}
