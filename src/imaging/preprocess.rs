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

/// Applies `config` to an upright RGB image.
pub fn preprocess(image: &RgbImage, config: &PreprocessConfig) -> Pixels {
    let (width, height) = (image.width(), image.height());
    let (resized_w, resized_h) = if config.do_resize {
        config
            .fixed_size
            .unwrap_or_else(|| resized_size(width, height, config.shortest_edge))
    } else {
        (width, height)
    };
    let (out_w, out_h) = if config.do_center_crop {
        (config.crop_width, config.crop_height)
    } else {
        (resized_w, resized_h)
    };
    // transformers' centre crop: offsets floor((size − crop) / 2), zero padding where the image
    // is smaller than the crop.
    let left = (i64::from(resized_w) - i64::from(out_w)).div_euclid(2);
    let top = (i64::from(resized_h) - i64::from(out_h)).div_euclid(2);

    if config.do_resize && left >= 0 && top >= 0 {
        // Resample only the part the crop keeps. Filter taps still reach into the rest of the
        // image, so the pixels equal those of a full resize followed by the crop; a 4000×20
        // panorama no longer becomes a 44800×224 intermediate (and a 60000×1 strip no longer
        // asks for gigabytes).
        let sx = f64::from(width) / f64::from(resized_w);
        let sy = f64::from(height) / f64::from(resized_h);
        let window = (
            left as f64 * sx,
            top as f64 * sy,
            f64::from(out_w) * sx,
            f64::from(out_h) * sy,
        );
        let cropped = resize_window(image, window, out_w, out_h, config.resample);
        return normalise(&cropped, 0, 0, out_w, out_h, config);
    }
    let resized;
    let source = if config.do_resize {
        resized = resize(image, resized_w, resized_h, config.resample);
        &resized
    } else {
        image
    };
    normalise(source, left, top, out_w, out_h, config)
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
}
