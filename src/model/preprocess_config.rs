//! The image preprocessing parameters, read from `preprocessor_config.json`:
//! `CLIPImageProcessor`'s shortest-edge resize and centre crop, or `SiglipImageProcessor`'s
//! fixed-size resize, then rescale and normalise.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::config::Family;

/// How images are resized before the model sees them (PIL's resampling filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    Nearest,
    Bilinear,
    Bicubic,
    Lanczos,
}

/// An image processor's parameters: `CLIPImageProcessor`'s shortest-edge resize and centre crop,
/// or `SiglipImageProcessor`'s resize to a fixed size; then rescale and normalise.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    pub shortest_edge: u32,
    /// Resize to exactly this `(width, height)`, whatever the photo's shape, instead of
    /// scaling its shortest edge to `shortest_edge` (SigLIP's processor: `size` with `height`
    /// and `width`).
    pub fixed_size: Option<(u32, u32)>,
    pub crop_width: u32,
    pub crop_height: u32,
    pub resample: Resample,
    pub do_resize: bool,
    pub do_center_crop: bool,
    pub do_rescale: bool,
    pub rescale_factor: f64,
    pub do_normalize: bool,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for PreprocessConfig {
    /// OpenAI's CLIP preprocessing at 224 pixels.
    // The mean and deviation are OpenAI's published constants, digit for digit.
    #[allow(clippy::excessive_precision)]
    fn default() -> Self {
        PreprocessConfig {
            shortest_edge: 224,
            fixed_size: None,
            crop_width: 224,
            crop_height: 224,
            resample: Resample::Bicubic,
            do_resize: true,
            do_center_crop: true,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_54, 0.261_302_58, 0.275_777_11],
        }
    }
}

/// `size` and `crop_size` come either as a number or as a dictionary, depending on the
/// transformers version that wrote the file.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawSize {
    Number(u32),
    Map {
        shortest_edge: Option<u32>,
        height: Option<u32>,
        width: Option<u32>,
    },
}

#[derive(Deserialize)]
struct RawPreprocess {
    size: Option<RawSize>,
    crop_size: Option<RawSize>,
    resample: Option<u32>,
    do_resize: Option<bool>,
    do_center_crop: Option<bool>,
    do_rescale: Option<bool>,
    rescale_factor: Option<f64>,
    do_normalize: Option<bool>,
    image_mean: Option<Vec<f32>>,
    image_std: Option<Vec<f32>>,
}

impl PreprocessConfig {
    /// Reads a `preprocessor_config.json`; fields it lacks keep OpenAI's defaults at the model's
    /// image size.
    pub fn from_file(path: &Path, image_size: u32) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text, image_size).map_err(|reason| Error::model(path, reason))
    }

    /// OpenAI's preprocessing for a model whose input is `image_size` pixels square.
    pub fn for_image_size(image_size: u32) -> Self {
        PreprocessConfig {
            shortest_edge: image_size,
            crop_width: image_size,
            crop_height: image_size,
            ..Default::default()
        }
    }

    /// `SiglipImageProcessor`'s defaults for a model whose input is `image_size` pixels square:
    /// a bicubic resize to exactly that size (no crop), mean and deviation 0.5.
    pub fn siglip(image_size: u32) -> Self {
        PreprocessConfig {
            shortest_edge: image_size,
            fixed_size: Some((image_size, image_size)),
            crop_width: image_size,
            crop_height: image_size,
            do_center_crop: false,
            mean: [0.5; 3],
            std: [0.5; 3],
            ..Default::default()
        }
    }

    /// The defaults of `family`'s image processor at `image_size`.
    pub fn defaults(family: Family, image_size: u32) -> Self {
        match family {
            Family::Clip => Self::for_image_size(image_size),
            Family::Siglip => Self::siglip(image_size),
        }
    }

    /// The smallest the photo's shorter side may be before resizing so that no side is
    /// enlarged (what a reduced-size JPEG decode must keep).
    pub fn min_short_side(&self) -> u32 {
        match self.fixed_size {
            Some((w, h)) => w.max(h),
            None => self.shortest_edge,
        }
    }

    /// Parses the text of a `preprocessor_config.json` of a CLIP model.
    pub fn from_json(text: &str, image_size: u32) -> std::result::Result<Self, String> {
        Self::from_json_over(text, Self::for_image_size(image_size))
    }

    /// Parses the text of a `preprocessor_config.json`; what it does not say keeps `defaults`.
    pub fn from_json_over(text: &str, defaults: Self) -> std::result::Result<Self, String> {
        let raw: RawPreprocess = serde_json::from_str(text)
            .map_err(|e| format!("not a valid preprocessor config: {e}"))?;
        let mut config = defaults;
        match raw.size {
            Some(RawSize::Number(n)) => {
                config.shortest_edge = n;
                config.fixed_size = None;
            }
            Some(RawSize::Map {
                shortest_edge: Some(n),
                ..
            }) => {
                config.shortest_edge = n;
                config.fixed_size = None;
            }
            Some(RawSize::Map {
                height: Some(h),
                width: Some(w),
                ..
            }) => config.fixed_size = Some((w, h)),
            Some(RawSize::Map { .. }) => {
                return Err("`size` must give `shortest_edge`, or `height` and `width`".into());
            }
            None => {}
        }
        match raw.crop_size {
            Some(RawSize::Number(n)) => {
                config.crop_width = n;
                config.crop_height = n;
            }
            Some(RawSize::Map { height, width, .. }) => {
                config.crop_height = height.ok_or("`crop_size` has no `height`")?;
                config.crop_width = width.ok_or("`crop_size` has no `width`")?;
            }
            None => {}
        }
        if let Some(code) = raw.resample {
            config.resample = match code {
                0 => Resample::Nearest,
                1 => Resample::Lanczos,
                2 => Resample::Bilinear,
                3 => Resample::Bicubic,
                other => return Err(format!("resample filter {other} is not supported")),
            };
        }
        config.do_resize = raw.do_resize.unwrap_or(true);
        config.do_center_crop = raw.do_center_crop.unwrap_or(config.do_center_crop);
        config.do_rescale = raw.do_rescale.unwrap_or(true);
        config.rescale_factor = raw.rescale_factor.unwrap_or(1.0 / 255.0);
        config.do_normalize = raw.do_normalize.unwrap_or(true);
        if let Some(mean) = raw.image_mean {
            config.mean = mean
                .try_into()
                .map_err(|_| "`image_mean` must have 3 values".to_string())?;
        }
        if let Some(std) = raw.image_std {
            config.std = std
                .try_into()
                .map_err(|_| "`image_std` must have 3 values".to_string())?;
        }
        if config.std.contains(&0.0) {
            return Err("`image_std` has a zero".into());
        }
        if config.shortest_edge == 0
            || config.crop_width == 0
            || config.crop_height == 0
            || config.fixed_size.is_some_and(|(w, h)| w == 0 || h == 0)
        {
            return Err("image sizes must be positive".into());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocessor_config_in_both_layouts() {
        let old = r#"{"crop_size": 224, "size": 224, "resample": 3, "do_normalize": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}"#;
        let new = r#"{"crop_size": {"height": 224, "width": 224}, "size": {"shortest_edge": 224},
            "do_rescale": true, "rescale_factor": 0.00392156862745098, "resample": 3}"#;
        let a = PreprocessConfig::from_json(old, 224).unwrap();
        let b = PreprocessConfig::from_json(new, 224).unwrap();
        assert_eq!(a.shortest_edge, 224);
        assert_eq!(b.crop_height, 224);
        assert_eq!(a.mean, b.mean);
        assert_eq!(a.resample, Resample::Bicubic);
    }
}
