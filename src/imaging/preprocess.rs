//! Image preprocessing equal to transformers' `CLIPImageProcessor` (resize the shortest edge with
//! a bicubic filter, crop the centre) and `SiglipImageProcessor` (resize to a fixed size, no
//! crop), then rescale to [0, 1] and normalise per channel.

use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
use image::RgbImage;

use crate::model::config::{PreprocessConfig, Resample};

/// A preprocessed image: `[3, height, width]` f32 values, channels first.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub data: Vec<f32>,
    pub width: u32,
    pub height: u32,
}

/// The size the shortest-edge resize gives, as transformers computes it: the short side becomes
/// `edge` and the long side `int(edge · long / short)`, truncated.
pub fn resized_size(width: u32, height: u32, edge: u32) -> (u32, u32) {
    let scaled = |long: u32, short: u32| {
        ((u64::from(edge) * u64::from(long)) / u64::from(short)).max(1) as u32
    };
    if width <= height {
        (edge, scaled(height, width))
    } else {
        (scaled(width, height), edge)
    }
}

fn filter(resample: Resample) -> ResizeAlg {
    match resample {
        Resample::Nearest => ResizeAlg::Nearest,
        Resample::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
        // PIL's bicubic is the Keys cubic with a = −0.5, i.e. Catmull–Rom, with the support
        // widened by the downscale factor (antialiased), which is how fast_image_resize's
        // convolution works too.
        Resample::Bicubic => ResizeAlg::Convolution(FilterType::CatmullRom),
        Resample::Lanczos => ResizeAlg::Convolution(FilterType::Lanczos3),
    }
}

/// Where preprocessing puts an image: the size it is resized to, and the crop taken from that.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Geometry {
    resized: (u32, u32),
    out: (u32, u32),
    /// The crop's offset in the resized image; negative where the image is smaller than the crop
    /// (zero padding).
    left: i64,
    top: i64,
}

impl Geometry {
    fn of(width: u32, height: u32, config: &PreprocessConfig) -> Self {
        let resized = if config.do_resize {
            config
                .fixed_size
                .unwrap_or_else(|| resized_size(width, height, config.shortest_edge))
        } else {
            (width, height)
        };
        let out = if config.do_center_crop {
            (config.crop_width, config.crop_height)
        } else {
            resized
        };
        // transformers' centre crop: offsets floor((size − crop) / 2), zero padding where the
        // image is smaller than the crop.
        let left = (i64::from(resized.0) - i64::from(out.0)).div_euclid(2);
        let top = (i64::from(resized.1) - i64::from(out.1)).div_euclid(2);
        Geometry {
            resized,
            out,
            left,
            top,
        }
    }
}

/// Applies `config` to an upright RGB image.
pub fn preprocess(image: &RgbImage, config: &PreprocessConfig) -> Pixels {
    preprocess_scaled(image, (image.width(), image.height()), 1, (0, 0), config)
}

/// Applies `config` to an upright RGB image decoded at `1 / scale` of the photo's displayed size
/// `display` (a JPEG's reduced-size DCT decoding; `scale` is 1, 2, 4 or 8), whose first `lead`
/// displayed columns and rows lie before the photo (padding that orientation turned there).
///
/// The resize and the crop are those of the photo at its displayed size, as the reference
/// pipeline computes them from the full image; the reduced pixels only fill them in. A decoded
/// pixel `i` is the block of displayed pixels `[i·scale, (i+1)·scale)` (counted from the
/// padding), so a displayed position `x` is `(x + lead) / scale` in the decoded image, exactly. Deriving the geometry from the decoded size
/// instead shifts the crop by a pixel wherever the reduced size rounds (2250 / 4 → 563).
pub fn preprocess_scaled(
    image: &RgbImage,
    display: (u32, u32),
    scale: u32,
    lead: (u32, u32),
    config: &PreprocessConfig,
) -> Pixels {
    let scale = f64::from(scale.max(1));
    let lead = (f64::from(lead.0), f64::from(lead.1));
    let (width, height) = display;
    let Geometry {
        resized: (resized_w, resized_h),
        out: (out_w, out_h),
        left,
        top,
    } = Geometry::of(width, height, config);
    // The decoded image covers the displayed one, and a little more where the photo is not a
    // whole number of blocks wide: the last decoded pixel is then part padding.
    let inside = |(x, y, w, h): (f64, f64, f64, f64)| {
        let (x, y) = ((x + lead.0) / scale, (y + lead.1) / scale);
        let w = (w / scale).min(f64::from(image.width()) - x);
        let h = (h / scale).min(f64::from(image.height()) - y);
        (x, y, w, h)
    };

    if config.do_resize && left >= 0 && top >= 0 {
        // Resample only the part the crop keeps. Filter taps still reach into the rest of the
        // image, so the pixels equal those of a full resize followed by the crop; a 4000×20
        // panorama no longer becomes a 44800×224 intermediate (and a 60000×1 strip no longer
        // asks for gigabytes).
        let window = crop_window(
            (width, height),
            (resized_w, resized_h),
            (left as u32, top as u32),
            (out_w, out_h),
        );
        let cropped = resize_window(image, inside(window), out_w, out_h, config.resample);
        return normalise(&cropped, 0, 0, out_w, out_h, config);
    }
    let resized;
    let source = if config.do_resize {
        let whole = (0.0, 0.0, f64::from(width), f64::from(height));
        resized = if scale == 1.0 && lead == (0.0, 0.0) {
            resize(image, resized_w, resized_h, config.resample)
        } else {
            resize_window(image, inside(whole), resized_w, resized_h, config.resample)
        };
        &resized
    } else {
        image
    };
    normalise(source, left, top, out_w, out_h, config)
}

/// The part of a `width × height` image, in fractional source pixels `(left, top, width,
/// height)`, that becomes the crop `out` at `offset` of the image resized to `resized`.
///
/// Each edge is mapped on its own and clamped to the image: where the crop reaches the resized
/// image's edge (always on the short side), `out · (side / resized)` can come out a fraction of a
/// pixel past the source in floating point (`224 · (900 / 224) > 900`), and the resizer refuses a
/// window that leaves the image.
fn crop_window(
    (width, height): (u32, u32),
    (resized_w, resized_h): (u32, u32),
    (left, top): (u32, u32),
    (out_w, out_h): (u32, u32),
) -> (f64, f64, f64, f64) {
    let span = |side: u32, resized: u32, start: u32, out: u32| {
        let scale = f64::from(side) / f64::from(resized);
        let begin = (f64::from(start) * scale).min(f64::from(side));
        let end = if start + out >= resized {
            f64::from(side)
        } else {
            (f64::from(start + out) * scale).min(f64::from(side))
        };
        (begin, end - begin)
    };
    let (x, w) = span(width, resized_w, left, out_w);
    let (y, h) = span(height, resized_h, top, out_h);
    (x, y, w, h)
}

/// Crops `out_w × out_h` at (`left`, `top`) of `source` (zeros outside it) into normalised
/// channel-first floats.
fn normalise(
    source: &RgbImage,
    left: i64,
    top: i64,
    out_w: u32,
    out_h: u32,
    config: &PreprocessConfig,
) -> Pixels {
    let (src_w, src_h) = (i64::from(source.width()), i64::from(source.height()));
    let lut = channel_tables(config);
    let plane = (out_w * out_h) as usize;
    let mut data = vec![0.0f32; 3 * plane];
    let raw = source.as_raw();
    for y in 0..i64::from(out_h) {
        let sy = y + top;
        for x in 0..i64::from(out_w) {
            let sx = x + left;
            let inside = sy >= 0 && sx >= 0 && sy < src_h && sx < src_w;
            let at = y as usize * out_w as usize + x as usize;
            for (c, table) in lut.iter().enumerate() {
                let level = if inside {
                    raw[(sy * src_w + sx) as usize * 3 + c]
                } else {
                    0
                };
                data[c * plane + at] = table[level as usize];
            }
        }
    }
    Pixels {
        data,
        width: out_w,
        height: out_h,
    }
}

/// For each channel, the normalised value of every 8-bit level, computed as transformers does:
/// the rescale in double precision, then `(x − mean) / std` in single precision.
fn channel_tables(config: &PreprocessConfig) -> [[f32; 256]; 3] {
    let mut tables = [[0.0f32; 256]; 3];
    for (c, table) in tables.iter_mut().enumerate() {
        for (level, out) in table.iter_mut().enumerate() {
            let mut x = level as f64;
            if config.do_rescale {
                x *= config.rescale_factor;
            }
            let mut x = x as f32;
            if config.do_normalize {
                x = (x - config.mean[c]) / config.std[c];
            }
            *out = x;
        }
    }
    tables
}

/// Resizes the whole image with the given filter, 8 bits per channel between passes as PIL does.
pub fn resize(image: &RgbImage, width: u32, height: u32, resample: Resample) -> RgbImage {
    if image.width() == width && image.height() == height {
        return image.clone();
    }
    let whole = (
        0.0,
        0.0,
        f64::from(image.width()),
        f64::from(image.height()),
    );
    resize_window(image, whole, width, height, resample)
}

/// Resamples the window `(left, top, width, height)` of `image` (fractional source pixels) to
/// `width × height`.
///
/// fast_image_resize runs the vertical pass first on 8-bit pixels, PIL the horizontal one; the
/// order shows only on dithered, high-contrast photos, and running PIL's order as two calls costs
/// more than it gains (README, "Photos cliptag reads").
fn resize_window(
    image: &RgbImage,
    window: (f64, f64, f64, f64),
    width: u32,
    height: u32,
    resample: Resample,
) -> RgbImage {
    let src = images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        PixelType::U8x3,
    )
    .expect("an RgbImage's buffer holds width·height·3 bytes. This is a bug.");
    let mut dst = images::Image::new(width, height, PixelType::U8x3);
    let (left, top, w, h) = window;
    let options = ResizeOptions::new()
        .resize_alg(filter(resample))
        .crop(left, top, w, h);
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("source and destination are both U8x3 and non-empty. This is a bug.");
    RgbImage::from_raw(width, height, dst.into_vec())
        .expect("the destination holds width·height·3 bytes. This is a bug.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_size_truncates_like_transformers() {
        assert_eq!(resized_size(741, 500, 224), (331, 224));
        assert_eq!(resized_size(640, 427, 224), (335, 224));
        assert_eq!(resized_size(288, 512, 224), (224, 398));
        assert_eq!(resized_size(4000, 20, 224), (44800, 224));
        assert_eq!(resized_size(1, 1, 224), (224, 224));
    }

    #[test]
    fn crop_offsets_floor() {
        // motorcycle.jpg: 331 wide after resize, crop left must be 53 (not 54).
        let img = RgbImage::from_fn(331, 224, |x, _| image::Rgb([(x % 256) as u8, 0, 0]));
        let config = PreprocessConfig {
            do_resize: false,
            do_normalize: false,
            do_rescale: false,
            ..PreprocessConfig::default()
        };
        let px = preprocess(&img, &config);
        assert_eq!(px.data[0], 53.0);
    }

    fn clip() -> PreprocessConfig {
        PreprocessConfig::for_image_size(224)
    }

    /// Every window the resizer is given lies inside the image, for every size from 1×1 to
    /// 8000×8000 under CLIP's shortest-edge resize and crop and SigLIP's fixed-size resize.
    #[test]
    fn the_resize_window_stays_inside_every_image_size_up_to_8000() {
        for config in [
            clip(),
            PreprocessConfig::siglip(224),
            PreprocessConfig::siglip(384),
        ] {
            let mut outside = Vec::new();
            for width in 1..=8000u32 {
                for height in 1..=8000u32 {
                    let g = Geometry::of(width, height, &config);
                    if g.left < 0 || g.top < 0 {
                        continue;
                    }
                    let (x, y, w, h) = crop_window(
                        (width, height),
                        g.resized,
                        (g.left as u32, g.top as u32),
                        g.out,
                    );
                    let inside = x >= 0.0
                        && y >= 0.0
                        && w > 0.0
                        && h > 0.0
                        && x + w <= f64::from(width)
                        && y + h <= f64::from(height);
                    if !inside && outside.len() < 10 {
                        outside.push((width, height, (x, y, w, h)));
                    }
                }
            }
            assert!(
                outside.is_empty(),
                "{config:?}: windows outside the image: {outside:?}"
            );
        }
    }

    fn noise(width: u32, height: u32, seed: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed)
                .wrapping_mul(2_246_822_519);
            image::Rgb([(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8])
        })
    }

    /// The windowed resize gives the pixels of a plain resize of the whole image followed by the
    /// crop, for sizes whose window once ended past the image (a short side of 225, 232, 450,
    /// 900 or 907) and for random ones.
    #[test]
    fn the_windowed_resize_equals_a_full_resize_then_crop() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(36);
        let mut sizes: Vec<(u32, u32)> = [225, 232, 450, 900, 907]
            .into_iter()
            .flat_map(|short| [(short * 4 / 3, short), (short, short * 4 / 3)])
            .collect();
        sizes.extend((0..30).map(|_| (rng.random_range(1..1300), rng.random_range(1..1300))));
        for config in [clip(), PreprocessConfig::siglip(224)] {
            for &(width, height) in &sizes {
                let image = noise(width, height, width ^ height);
                let got = preprocess(&image, &config);
                let g = Geometry::of(width, height, &config);
                let full = resize(&image, g.resized.0, g.resized.1, config.resample);
                let want = normalise(&full, g.left, g.top, g.out.0, g.out.1, &config);
                assert_eq!((got.width, got.height), (want.width, want.height));
                // The window's filter taps start from the same source positions up to
                // floating-point rounding, which moves a pixel of this noise (the worst case:
                // every neighbour differs) by at most two 8-bit levels, and only a few of them.
                let step = 1.0 / 255.0 / config.std.iter().cloned().fold(f32::MAX, f32::min);
                let off: Vec<f32> = got
                    .data
                    .iter()
                    .zip(&want.data)
                    .map(|(a, b)| (a - b).abs())
                    .collect();
                let worst = off.iter().cloned().fold(0.0f32, f32::max);
                let moved = off.iter().filter(|d| **d > step * 0.01).count();
                assert!(
                    worst <= 2.0 * step * 1.01 && moved * 100 <= off.len(),
                    "{width}×{height} {config:?}: off by up to {worst} in {moved} of {} values \
                     (one level is {step})",
                    off.len()
                );
            }
        }
    }

    #[test]
    fn a_1200_by_900_photo_preprocesses_both_ways_up() {
        for (width, height) in [(1200, 900), (900, 1200)] {
            let pixels = preprocess(&noise(width, height, 7), &clip());
            assert_eq!((pixels.width, pixels.height), (224, 224));
        }
    }
}
