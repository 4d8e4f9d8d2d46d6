//! SigLIP's and SigLIP 2's two towers, loaded from Hugging Face `SiglipModel` weights, on the
//! same fused encoder as CLIP.
//!
//! What differs from CLIP: the patch convolution has a bias and there is no class token or
//! pre-norm; the image embedding is an attention-pooling head (one learned probe attends over all
//! patch tokens, then a residual MLP) with no projection after it; the text tower attends in both
//! directions, without a mask, and pools the *last* position (a pad token, since prompts are
//! padded to the full 64 positions) through a linear head; and the model carries a learned bias
//! beside its scale, because it was trained with a per-pair sigmoid instead of a softmax.

use candle_core::Tensor;

use crate::error::{Error, Result};
use crate::model::clip::{Encoder, LayerNorm, TextBody, load_linear, load_mlp};
use crate::model::config::{EncoderConfig, SiglipConfig};
use crate::model::fused;
use crate::model::kernels;
use crate::model::weights::{MemoryWeights, WeightSource, random_weights_of};

/// The attention-pooling head: `probe` attends over the tokens, then `x + mlp(layernorm(x))`.
struct PoolingHead {
    /// The probe's query, `probe · W_qᵀ + b_q`, already scaled by `1/√head_dim` (it does not
    /// depend on the image).
    query: Vec<f32>,
    /// Key and value projections stacked into one `[2·width, width]` matrix.
    kv: fused::Linear,
    out_proj: fused::Linear,
    layernorm: LayerNorm,
    fc1: fused::Linear,
    fc2: fused::Linear,
    heads: usize,
}

impl PoolingHead {
    fn load(w: &dyn WeightSource, prefix: &str, c: &EncoderConfig) -> Result<Self> {
        let d = c.hidden_size;
        let probe = w
            .tensor(&format!("{prefix}.probe"), &[1, 1, d])?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let in_weight = w
            .tensor(&format!("{prefix}.attention.in_proj_weight"), &[3 * d, d])?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let in_bias = w
            .tensor(&format!("{prefix}.attention.in_proj_bias"), &[3 * d])?
            .to_vec1::<f32>()?;
        let scale = ((d / c.num_attention_heads) as f32).powf(-0.5);
        let (fc1, fc2) = load_mlp(w, &format!("{prefix}.mlp"), c)?;
        let query = (0..d)
            .map(|o| {
                let row = &in_weight[o * d..(o + 1) * d];
                let dot: f32 = row.iter().zip(&probe).map(|(a, b)| a * b).sum();
                (dot + in_bias[o]) * scale
            })
            .collect();
        Ok(PoolingHead {
            query,
            kv: fused::Linear::new(
                in_weight[d * d..].to_vec(),
                Some(in_bias[d..].to_vec()),
                d,
                2 * d,
                None,
            ),
            out_proj: load_linear(w, &format!("{prefix}.attention.out_proj"), d, d, true, None)?,
            layernorm: LayerNorm::load(w, &format!("{prefix}.layernorm"), d, c.layer_norm_eps)?,
            fc1,
            fc2,
            heads: c.num_attention_heads,
        })
    }

    /// `x` is `[batch·tokens, width]`; returns `[batch, width]`.
    fn forward(&self, x: &Tensor, batch: usize, tokens: usize) -> candle_core::Result<Tensor> {
        let d = self.query.len();
        let hd = d / self.heads;
        let kv = fused::linear(x, &self.kv, None)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let mut attended = vec![0.0f32; batch * d];
        let mut weights = vec![0.0f32; tokens];
        for b in 0..batch {
            let rows = &kv[b * tokens * 2 * d..(b + 1) * tokens * 2 * d];
            for h in 0..self.heads {
                let q = &self.query[h * hd..(h + 1) * hd];
                let mut max = f32::NEG_INFINITY;
                for (t, w) in weights.iter_mut().enumerate() {
                    let k = &rows[t * 2 * d + h * hd..t * 2 * d + (h + 1) * hd];
                    *w = q.iter().zip(k).map(|(a, b)| a * b).sum();
                    max = max.max(*w);
                }
                let mut sum = 0.0;
                for w in weights.iter_mut() {
                    *w = (*w - max).exp();
                    sum += *w;
                }
                let out = &mut attended[b * d + h * hd..b * d + (h + 1) * hd];
                for (t, w) in weights.iter().enumerate() {
                    let v = &rows[t * 2 * d + d + h * hd..t * 2 * d + d + (h + 1) * hd];
                    for (o, v) in out.iter_mut().zip(v) {
                        *o += w / sum * v;
                    }
                }
            }
        }
        let attended = Tensor::from_vec(attended, (batch, d), x.device())?;
        let x = fused::linear(&attended, &self.out_proj, None)?;
        let h = self.layernorm.forward(&x)?;
        let h = fused::linear(&h, &self.fc1, None)?;
        fused::linear(&h, &self.fc2, Some(&x))
    }
}

struct VisionTower {
    /// The patch convolution as a linear layer over `channels·patch·patch` values, with its bias.
    patch_embedding: fused::Linear,
    position_embedding: Tensor,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    head: PoolingHead,
    patch: usize,
    grid: usize,
    channels: usize,
    width: usize,
}

impl VisionTower {
    fn load(w: &dyn WeightSource, config: &SiglipConfig) -> Result<Self> {
        let v = &config.vision;
        let d = v.encoder.hidden_size;
        let p = v.patch_size;
        let g = v.grid();
        let weight = w
            .tensor(
                "vision_model.embeddings.patch_embedding.weight",
                &[d, v.num_channels, p, p],
            )?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let bias = w
            .tensor("vision_model.embeddings.patch_embedding.bias", &[d])?
            .to_vec1::<f32>()?;
        let eps = v.encoder.layer_norm_eps;
        Ok(VisionTower {
            patch_embedding: fused::Linear::new(
                weight,
                Some(bias),
                v.num_channels * p * p,
                d,
                None,
            ),
            position_embedding: w.tensor(
                "vision_model.embeddings.position_embedding.weight",
                &[g * g, d],
            )?,
            encoder: Encoder::load(w, "vision_model", &v.encoder)?,
            post_layernorm: LayerNorm::load(w, "vision_model.post_layernorm", d, eps)?,
            head: PoolingHead::load(w, "vision_model.head", &v.encoder)?,
            patch: p,
            grid: g,
            channels: v.num_channels,
            width: d,
        })
    }

    /// `pixels` is `[batch, channels, size, size]`; returns unnormalised `[batch, width]`.
    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let batch = pixels.dim(0)?;
        let (p, g, c, d) = (self.patch, self.grid, self.channels, self.width);
        let patches = pixels
            .reshape((batch, c, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((batch * g * g, c * p * p))?;
        let tokens = g * g;
        let x = fused::linear(&patches, &self.patch_embedding, None)?
            .reshape((batch, tokens, d))?
            .broadcast_add(&self.position_embedding)?
            .reshape((batch * tokens, d))?;
        let x = self.encoder.forward(&x, batch, tokens, false)?;
        let x = self.post_layernorm.forward(&x)?;
        self.head.forward(&x, batch, tokens)
    }
}

struct TextTower {
    body: TextBody,
    head: fused::Linear,
    positions: usize,
}

impl TextTower {
    fn load(w: &dyn WeightSource, config: &SiglipConfig) -> Result<Self> {
        let t = &config.text;
        let d = t.encoder.hidden_size;
        Ok(TextTower {
            body: TextBody::load(w, t)?,
            head: load_linear(w, "text_model.head", config.embedding_dim(), d, true, None)?,
            positions: t.max_position_embeddings,
        })
    }

    /// `ids` are rows of exactly the model's number of positions (the tokenizer pads them);
    /// returns unnormalised `[rows, width]`.
    fn forward(&self, ids: &[Vec<u32>]) -> candle_core::Result<Tensor> {
        let tokens = self.positions;
        if ids.is_empty() || ids.iter().any(|r| r.len() != tokens) {
            candle_core::bail!(
                "SigLIP text input must be rows of exactly {tokens} token ids (padded), as the \
                 text tower pools the last position"
            );
        }
        // Both directions, no mask, pooled at the last position.
        let pooled = self.body.pooled(ids, tokens, false, |_| tokens - 1)?;
        fused::linear(&pooled, &self.head, None)
    }
}

/// A loaded SigLIP model: both towers, the learned scale and the learned bias.
pub struct SiglipModel {
    config: SiglipConfig,
    vision: VisionTower,
    text: TextTower,
    logit_scale: f32,
    logit_bias: f32,
}

impl SiglipModel {
    /// Builds the model for `config` from `weights`, checking every tensor's shape.
    pub fn load(config: SiglipConfig, weights: &dyn WeightSource) -> Result<Self> {
        let scalar = |name: &str| -> Result<f32> {
            let values = weights.tensor(name, &[1])?.to_vec1::<f32>()?;
            values
                .first()
                .copied()
                .filter(|v| v.is_finite())
                .ok_or_else(|| Error::invalid(format!("`{name}` is not a finite number")))
        };
        Ok(SiglipModel {
            vision: VisionTower::load(weights, &config)?,
            text: TextTower::load(weights, &config)?,
            logit_scale: scalar("logit_scale")?,
            logit_bias: scalar("logit_bias")?,
            config,
        })
    }

    /// A model for `config` with random weights (for benchmarks: speed does not depend on the
    /// weights' values).
    pub fn random(config: SiglipConfig, seed: u64) -> Result<Self> {
        let weights = random_weights(&config, seed)?;
        let model = Self::load(config, &weights)?;
        drop(weights);
        kernels::release_free_memory();
        Ok(model)
    }

    /// The model's shape.
    pub fn config(&self) -> &SiglipConfig {
        &self.config
    }

    /// The arithmetic its linear layers multiply in (all are packed alike at load).
    pub fn precision(&self) -> crate::model::matmul::Precision {
        self.vision.head.kv.precision()
    }

    /// `exp(logit_scale)`.
    pub fn logit_scale_exp(&self) -> f32 {
        self.logit_scale.exp()
    }

    /// The learned bias added to every scaled cosine.
    pub fn logit_bias(&self) -> f32 {
        self.logit_bias
    }

    /// Unnormalised image features for `[batch, 3, size, size]` pixel values.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        let batch = pixels.dim(0)?;
        Ok(kernels::run_split(batch, |part| {
            self.vision
                .forward(&pixels.narrow(0, part.start, part.len())?)
        })?)
    }

    /// Unnormalised text features for rows of token ids padded to the model's positions.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        Ok(kernels::run_split(ids.len(), |part| {
            self.text.forward(&ids[part])
        })?)
    }
}

/// Every tensor a `SiglipModel` checkpoint holds for `config`, with its shape.
pub fn tensor_shapes(config: &SiglipConfig) -> Vec<(String, Vec<usize>)> {
    let mut shapes = Vec::new();
    crate::model::weights::encoder_shapes(&mut shapes, "text_model", &config.text.encoder);
    crate::model::weights::encoder_shapes(&mut shapes, "vision_model", &config.vision.encoder);
    let t = &config.text;
    let v = &config.vision;
    let (td, vd, vi) = (
        t.encoder.hidden_size,
        v.encoder.hidden_size,
        v.encoder.intermediate_size,
    );
    let p = v.patch_size;
    let g = v.grid();
    let e = config.embedding_dim();
    for (name, shape) in [
        (
            "text_model.embeddings.token_embedding.weight",
            vec![t.vocab_size, td],
        ),
        (
            "text_model.embeddings.position_embedding.weight",
            vec![t.max_position_embeddings, td],
        ),
        ("text_model.final_layer_norm.weight", vec![td]),
        ("text_model.final_layer_norm.bias", vec![td]),
        ("text_model.head.weight", vec![e, td]),
        ("text_model.head.bias", vec![e]),
        (
            "vision_model.embeddings.patch_embedding.weight",
            vec![vd, v.num_channels, p, p],
        ),
        ("vision_model.embeddings.patch_embedding.bias", vec![vd]),
        (
            "vision_model.embeddings.position_embedding.weight",
            vec![g * g, vd],
        ),
        ("vision_model.post_layernorm.weight", vec![vd]),
        ("vision_model.post_layernorm.bias", vec![vd]),
        ("vision_model.head.probe", vec![1, 1, vd]),
        (
            "vision_model.head.attention.in_proj_weight",
            vec![3 * vd, vd],
        ),
        ("vision_model.head.attention.in_proj_bias", vec![3 * vd]),
        ("vision_model.head.attention.out_proj.weight", vec![vd, vd]),
        ("vision_model.head.attention.out_proj.bias", vec![vd]),
        ("vision_model.head.layernorm.weight", vec![vd]),
        ("vision_model.head.layernorm.bias", vec![vd]),
        ("vision_model.head.mlp.fc1.weight", vec![vi, vd]),
        ("vision_model.head.mlp.fc1.bias", vec![vi]),
        ("vision_model.head.mlp.fc2.weight", vec![vd, vi]),
        ("vision_model.head.mlp.fc2.bias", vec![vd]),
        ("logit_scale", vec![1]),
        ("logit_bias", vec![1]),
    ] {
        shapes.push((name.to_string(), shape));
    }
    shapes
}

/// Random weights for `config` (normal, std 0.02; layer norms at one; SigLIP's initial scale
/// ln 10 and bias −10).
pub fn random_weights(config: &SiglipConfig, seed: u64) -> Result<MemoryWeights> {
    random_weights_of(tensor_shapes(config), seed, |name| match name {
        "logit_scale" => Some(10f32.ln()),
        "logit_bias" => Some(-10.0),
        _ => None,
    })
}
