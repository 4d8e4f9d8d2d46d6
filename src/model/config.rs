//! The model's shape, read from a Hugging Face `config.json` (`CLIPModel` or `SiglipModel`); the
//! image preprocessing parameters live in [`super::preprocess_config`] and are re-exported here.
//!
//! In a CLIP config, structural fields (sizes, layer and head counts, patch and image size) are
//! required: a config that lacks one is refused with the field's name rather than silently given a
//! default that would only fail later as a shape mismatch. Fields that transformers itself
//! defaults and that real checkpoints sometimes omit (`hidden_act`, `layer_norm_eps`,
//! `num_channels`, `projection_dim`) take transformers' defaults. SigLIP's hub configs are sparse
//! by design (transformers' defaults are the base model's), so every SigLIP field has its default.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
pub use crate::model::preprocess_config::{PreprocessConfig, Resample};

/// The MLP activation of an encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `x * sigmoid(1.702 x)`, used by OpenAI's checkpoints.
    QuickGelu,
    /// The exact GELU, `x * Φ(x)` with the error function, used by LAION's checkpoints.
    Gelu,
    /// GELU's tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
}

impl Activation {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "quick_gelu" => Some(Activation::QuickGelu),
            "gelu" => Some(Activation::Gelu),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Some(Activation::GeluTanh),
            _ => None,
        }
    }

    /// The activation's value at `x`, in double precision: the definition the model's kernels are
    /// tested against.
    pub fn reference(self, x: f64) -> f64 {
        match self {
            Activation::QuickGelu => x / (1.0 + (-1.702 * x).exp()),
            Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            Activation::GeluTanh => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
        }
    }
}

/// The error function to double precision: its Taylor series near zero, a continued fraction for
/// the complement beyond (the usual short approximations are only good to about 1e-7).
fn erf(x: f64) -> f64 {
    if x.abs() < 2.0 {
        let mut sum = x;
        let mut term = x;
        let x2 = x * x;
        for n in 1..200 {
            let n = f64::from(n);
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let ax = x.abs();
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (ax + f);
        }
        let erfc = (-ax * ax).exp() / std::f64::consts::PI.sqrt() / (ax + f);
        if x > 0.0 { 1.0 - erfc } else { erfc - 1.0 }
    }
}

/// One transformer tower's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

/// The text tower's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TextConfig {
    pub encoder: EncoderConfig,
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    /// transformers pools at `argmax(input_ids)` when this is 2 (the legacy value that OpenAI's
    /// configs carry) and at the first end token otherwise.
    pub eos_token_id: Option<i64>,
}

/// The vision tower's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub encoder: EncoderConfig,
    pub image_size: usize,
    pub patch_size: usize,
    pub num_channels: usize,
}

impl VisionConfig {
    /// Refuses shapes cliptag cannot run: patches that do not tile the image, or other than
    /// three colour channels.
    fn check(&self) -> std::result::Result<(), String> {
        if !self.image_size.is_multiple_of(self.patch_size) {
            return Err(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            ));
        }
        if self.num_channels != 3 {
            return Err(format!(
                "vision_config.num_channels is {}; only RGB (3) models are supported",
                self.num_channels
            ));
        }
        Ok(())
    }

    /// Patches per side of the input image.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }

    /// Tokens in the vision sequence: one per patch plus the class token.
    pub fn num_positions(&self) -> usize {
        self.grid() * self.grid() + 1
    }
}

/// A whole CLIP model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipConfig {
    pub text: TextConfig,
    pub vision: VisionConfig,
    /// Width of the shared embedding space.
    pub projection_dim: usize,
}

#[derive(Deserialize)]
struct RawEncoder {
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    hidden_act: Option<String>,
    layer_norm_eps: Option<f64>,
    // text only
    vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    eos_token_id: Option<i64>,
    // vision only
    image_size: Option<usize>,
    patch_size: Option<usize>,
    num_channels: Option<usize>,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    text_config: Option<RawEncoder>,
    vision_config: Option<RawEncoder>,
    projection_dim: Option<usize>,
}

#[derive(Deserialize)]
struct RawSiglipEncoder {
    #[serde(flatten)]
    common: RawEncoder,
    projection_size: Option<usize>,
    vision_use_head: Option<bool>,
    pad_token_id: Option<i64>,
}

#[derive(Deserialize)]
struct RawSiglipConfig {
    text_config: Option<RawSiglipEncoder>,
    vision_config: Option<RawSiglipEncoder>,
}

fn required(
    value: Option<usize>,
    section: &str,
    field: &str,
) -> std::result::Result<usize, String> {
    match value {
        Some(0) => Err(format!("{section}.{field} is 0")),
        Some(v) => Ok(v),
        None => Err(format!("{section} has no `{field}`")),
    }
}

fn encoder(raw: &RawEncoder, section: &str) -> std::result::Result<EncoderConfig, String> {
    let hidden_act = match &raw.hidden_act {
        None => Activation::QuickGelu,
        Some(name) => Activation::parse(name).ok_or_else(|| {
            format!("{section}.hidden_act `{name}` is not supported (quick_gelu, gelu, gelu_new)")
        })?,
    };
    let config = EncoderConfig {
        hidden_size: required(raw.hidden_size, section, "hidden_size")?,
        intermediate_size: required(raw.intermediate_size, section, "intermediate_size")?,
        num_hidden_layers: required(raw.num_hidden_layers, section, "num_hidden_layers")?,
        num_attention_heads: required(raw.num_attention_heads, section, "num_attention_heads")?,
        hidden_act,
        layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-5),
    };
    if !config
        .hidden_size
        .is_multiple_of(config.num_attention_heads)
    {
        return Err(format!(
            "{section}.hidden_size {} is not divisible by num_attention_heads {}",
            config.hidden_size, config.num_attention_heads
        ));
    }
    Ok(config)
}

/// Which family a checkpoint belongs to, from `model_type` in its `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI's CLIP and its descendants (`model_type: clip`): softmax-trained, scored by cosine.
    Clip,
    /// Google's SigLIP and SigLIP 2 (`model_type: siglip`): sigmoid-trained, so each label gets
    /// its own probability `sigmoid(scale · cos + bias)`.
    Siglip,
}

impl Family {
    /// The family of the model whose `config.json` is `text`.
    pub fn of_json(text: &str) -> std::result::Result<Self, String> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| format!("not a valid model config: {e}"))?;
        match raw.model_type.as_deref() {
            None | Some("clip") => Ok(Family::Clip),
            Some("siglip") => Ok(Family::Siglip),
            Some(other) => Err(format!(
                "model_type `{other}` is not supported (cliptag reads `clip` and `siglip` \
                 checkpoints)"
            )),
        }
    }
}

/// A checkpoint's shape, whichever family it is.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Clip(ClipConfig),
    Siglip(SiglipConfig),
}

impl ModelConfig {
    /// Reads and checks a `config.json` of either family.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text).map_err(|reason| Error::model(path, reason))
    }

    /// Parses and checks the text of a `config.json` of either family.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        Ok(match Family::of_json(text)? {
            Family::Clip => ModelConfig::Clip(ClipConfig::from_json(text)?),
            Family::Siglip => ModelConfig::Siglip(SiglipConfig::from_json(text)?),
        })
    }

    pub fn family(&self) -> Family {
        match self {
            ModelConfig::Clip(_) => Family::Clip,
            ModelConfig::Siglip(_) => Family::Siglip,
        }
    }

    /// The vision tower's shape.
    pub fn vision(&self) -> &VisionConfig {
        match self {
            ModelConfig::Clip(c) => &c.vision,
            ModelConfig::Siglip(c) => &c.vision,
        }
    }
}

/// A SigLIP or SigLIP 2 model's shape (`SiglipModel`; the fixed-resolution SigLIP 2 checkpoints
/// are of this kind too). The hub's configs are sparse, so every field missing takes
/// transformers' default for `SiglipTextConfig` / `SiglipVisionConfig` (base size, patch 16,
/// 224 pixels, 64 text positions, `gelu_pytorch_tanh`, layer norm ε 1e-6).
#[derive(Debug, Clone, PartialEq)]
pub struct SiglipConfig {
    pub text: TextConfig,
    pub vision: VisionConfig,
    /// `text_config.pad_token_id` where the config gives one.
    pub pad_token_id: Option<u32>,
}

fn siglip_encoder(raw: &RawEncoder, section: &str) -> std::result::Result<EncoderConfig, String> {
    let filled = RawEncoder {
        hidden_size: Some(raw.hidden_size.unwrap_or(768)),
        intermediate_size: Some(raw.intermediate_size.unwrap_or(3072)),
        num_hidden_layers: Some(raw.num_hidden_layers.unwrap_or(12)),
        num_attention_heads: Some(raw.num_attention_heads.unwrap_or(12)),
        hidden_act: Some(
            raw.hidden_act
                .clone()
                .unwrap_or_else(|| "gelu_pytorch_tanh".into()),
        ),
        layer_norm_eps: Some(raw.layer_norm_eps.unwrap_or(1e-6)),
        vocab_size: None,
        max_position_embeddings: None,
        eos_token_id: None,
        image_size: None,
        patch_size: None,
        num_channels: None,
    };
    encoder(&filled, section)
}

impl SiglipConfig {
    /// Parses and checks the text of a SigLIP `config.json`.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let raw: RawSiglipConfig =
            serde_json::from_str(text).map_err(|e| format!("not a valid SigLIP config: {e}"))?;
        let raw_text = raw.text_config.ok_or("no `text_config` section")?;
        let raw_vision = raw.vision_config.ok_or("no `vision_config` section")?;
        let text = TextConfig {
            encoder: siglip_encoder(&raw_text.common, "text_config")?,
            vocab_size: raw_text.common.vocab_size.unwrap_or(32000),
            max_position_embeddings: raw_text.common.max_position_embeddings.unwrap_or(64),
            eos_token_id: raw_text.common.eos_token_id,
        };
        let vision = VisionConfig {
            encoder: siglip_encoder(&raw_vision.common, "vision_config")?,
            image_size: raw_vision.common.image_size.unwrap_or(224),
            patch_size: raw_vision.common.patch_size.unwrap_or(16),
            num_channels: raw_vision.common.num_channels.unwrap_or(3),
        };
        for (value, field) in [
            (text.vocab_size, "text_config.vocab_size"),
            (
                text.max_position_embeddings,
                "text_config.max_position_embeddings",
            ),
            (vision.image_size, "vision_config.image_size"),
            (vision.patch_size, "vision_config.patch_size"),
        ] {
            if value == 0 {
                return Err(format!("{field} is 0"));
            }
        }
        vision.check()?;
        if raw_vision.vision_use_head == Some(false) {
            return Err(
                "vision_config.vision_use_head is false: the model has no pooled image embedding"
                    .into(),
            );
        }
        let projection = raw_text.projection_size.unwrap_or(text.encoder.hidden_size);
        if projection != vision.encoder.hidden_size {
            return Err(format!(
                "text_config.projection_size {projection} differs from the image embedding's \
                 width (vision_config.hidden_size {})",
                vision.encoder.hidden_size
            ));
        }
        let pad_token_id = raw_text
            .pad_token_id
            .map(|id| {
                u32::try_from(id)
                    .map_err(|_| format!("text_config.pad_token_id {id} is not a token id"))
            })
            .transpose()?;
        Ok(SiglipConfig {
            text,
            vision,
            pad_token_id,
        })
    }

    /// Width of the shared embedding space: the vision tower's (SigLIP has no image projection).
    pub fn embedding_dim(&self) -> usize {
        self.vision.encoder.hidden_size
    }

    /// SigLIP 2 base with 32-pixel patches at 256 pixels (`google/siglip2-base-patch32-256`).
    pub fn siglip2_base_patch32_256() -> Self {
        Self::base(256, 32)
    }

    /// SigLIP 2 base with 16-pixel patches at 224 pixels (`google/siglip2-base-patch16-224`).
    pub fn siglip2_base_patch16_224() -> Self {
        Self::base(224, 16)
    }

    fn base(image_size: usize, patch_size: usize) -> Self {
        let encoder = EncoderConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            hidden_act: Activation::GeluTanh,
            layer_norm_eps: 1e-6,
        };
        SiglipConfig {
            text: TextConfig {
                encoder: encoder.clone(),
                vocab_size: 256_000,
                max_position_embeddings: 64,
                eos_token_id: Some(1),
            },
            vision: VisionConfig {
                encoder,
                image_size,
                patch_size,
                num_channels: 3,
            },
            pad_token_id: Some(0),
        }
    }
}

impl ClipConfig {
    /// Reads and checks a `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text).map_err(|reason| Error::model(path, reason))
    }

    /// Parses and checks the text of a `config.json`; the error says which field is wrong.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let raw: RawConfig =
            serde_json::from_str(text).map_err(|e| format!("not a valid CLIP config: {e}"))?;
        let raw_text = raw.text_config.ok_or("no `text_config` section")?;
        let raw_vision = raw.vision_config.ok_or("no `vision_config` section")?;
        let text = TextConfig {
            encoder: encoder(&raw_text, "text_config")?,
            vocab_size: required(raw_text.vocab_size, "text_config", "vocab_size")?,
            max_position_embeddings: required(
                raw_text.max_position_embeddings,
                "text_config",
                "max_position_embeddings",
            )?,
            eos_token_id: raw_text.eos_token_id,
        };
        let vision = VisionConfig {
            encoder: encoder(&raw_vision, "vision_config")?,
            image_size: required(raw_vision.image_size, "vision_config", "image_size")?,
            patch_size: required(raw_vision.patch_size, "vision_config", "patch_size")?,
            num_channels: raw_vision.num_channels.unwrap_or(3),
        };
        vision.check()?;
        let projection_dim = match raw.projection_dim {
            Some(0) => return Err("projection_dim is 0".into()),
            Some(d) => d,
            None => 512,
        };
        Ok(ClipConfig {
            text,
            vision,
            projection_dim,
        })
    }

    /// OpenAI's ViT-B/32 (`openai/clip-vit-base-patch32`), used to generate benchmark models.
    pub fn vit_base_patch32() -> Self {
        ClipConfig {
            text: TextConfig {
                encoder: EncoderConfig {
                    hidden_size: 512,
                    intermediate_size: 2048,
                    num_hidden_layers: 12,
                    num_attention_heads: 8,
                    hidden_act: Activation::QuickGelu,
                    layer_norm_eps: 1e-5,
                },
                vocab_size: 49408,
                max_position_embeddings: 77,
                eos_token_id: Some(2),
            },
            vision: VisionConfig {
                encoder: EncoderConfig {
                    hidden_size: 768,
                    intermediate_size: 3072,
                    num_hidden_layers: 12,
                    num_attention_heads: 12,
                    hidden_act: Activation::QuickGelu,
                    layer_norm_eps: 1e-5,
                },
                image_size: 224,
                patch_size: 32,
                num_channels: 3,
            },
            projection_dim: 512,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // Values from Abramowitz & Stegun table 7.1.
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (-1.0, -0.842_700_792_949_714_9),
        ] {
            assert!(
                (erf(x) - want).abs() < 1e-13,
                "erf({x}) = {} want {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn missing_structural_field_is_named() {
        let text = r#"{"text_config": {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "vocab_size": 10, "max_position_embeddings": 77},
            "vision_config": {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "image_size": 32}}"#;
        let err = ClipConfig::from_json(text).unwrap_err();
        assert!(err.contains("patch_size"), "{err}");
    }
}
