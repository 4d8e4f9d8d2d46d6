//! CLIP's two towers in candle, shaped entirely by [`ClipConfig`] and loaded from Hugging Face
//! `CLIPModel` weights.
//!
//! cliptag owns this code instead of using candle-transformers' `clip` module because that module
//! knows only QuickGELU, hand-built configs and a fixed pooling rule, and because the encoder's
//! hot loop is where indexing time goes: the attention projections run as one fused QKV matrix
//! product, the attention scale is folded into the query weights, and activations stay as
//! `[batch·tokens, width]` matrices so every linear layer is one plain GEMM.

use candle_core::{D, Tensor};

use crate::error::{Error, Result};
use crate::model::config::{Activation, ClipConfig, EncoderConfig, TextConfig};
pub use crate::model::weights::{
    MemoryWeights, PthWeights, SafetensorsWeights, WeightSource, random_weights, tensor_shapes,
};
use crate::model::{fused, kernels, layer_norm};

/// Loads a linear layer's weight `[out, in]` (and bias) into a fused kernel.
pub(crate) fn load_linear(
    w: &dyn WeightSource,
    prefix: &str,
    out: usize,
    inp: usize,
    bias: bool,
    activation: Option<Activation>,
) -> Result<fused::Linear> {
    let weight = w.tensor(&format!("{prefix}.weight"), &[out, inp])?;
    let bias = if bias {
        Some(
            w.tensor(&format!("{prefix}.bias"), &[out])?
                .to_vec1::<f32>()?,
        )
    } else {
        None
    };
    Ok(fused::Linear::new(
        weight.flatten_all()?.to_vec1::<f32>()?,
        bias,
        inp,
        out,
        activation,
    ))
}

/// A linear layer's weight `[out, in]` and bias as they are, for layers fused before packing.
fn load_raw(
    w: &dyn WeightSource,
    prefix: &str,
    out: usize,
    inp: usize,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let weight = w.tensor(&format!("{prefix}.weight"), &[out, inp])?;
    let bias = w.tensor(&format!("{prefix}.bias"), &[out])?;
    Ok((
        weight.flatten_all()?.to_vec1::<f32>()?,
        bias.to_vec1::<f32>()?,
    ))
}

/// A block's MLP, `fc2(act(fc1(x)))`, with the activation applied inside `fc1`.
pub(crate) fn load_mlp(
    w: &dyn WeightSource,
    prefix: &str,
    c: &EncoderConfig,
) -> Result<(fused::Linear, fused::Linear)> {
    let (d, i) = (c.hidden_size, c.intermediate_size);
    Ok((
        load_linear(w, &format!("{prefix}.fc1"), i, d, true, Some(c.hidden_act))?,
        load_linear(w, &format!("{prefix}.fc2"), d, i, true, None)?,
    ))
}

/// A layer norm read from the checkpoint, run on [`layer_norm::LayerNorm`].
pub(crate) struct LayerNorm(layer_norm::LayerNorm);

impl LayerNorm {
    pub(crate) fn load(w: &dyn WeightSource, prefix: &str, dim: usize, eps: f64) -> Result<Self> {
        let weight = w
            .tensor(&format!("{prefix}.weight"), &[dim])?
            .to_vec1::<f32>()?;
        let bias = w
            .tensor(&format!("{prefix}.bias"), &[dim])?
            .to_vec1::<f32>()?;
        Ok(LayerNorm(layer_norm::LayerNorm::new(
            weight, bias, eps as f32,
        )?))
    }

    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.0.forward(x)
    }
}

/// One pre-norm transformer block.
struct EncoderLayer {
    layer_norm1: LayerNorm,
    /// q, k and v projections stacked into one `[3·width, width]` matrix; the query rows carry
    /// the attention scale `1/√head_dim`.
    qkv: fused::Linear,
    out_proj: fused::Linear,
    layer_norm2: LayerNorm,
    /// With the activation applied in place.
    fc1: fused::Linear,
    fc2: fused::Linear,
    heads: usize,
}

impl EncoderLayer {
    fn load(w: &dyn WeightSource, prefix: &str, c: &EncoderConfig) -> Result<Self> {
        let d = c.hidden_size;
        let scale = ((d / c.num_attention_heads) as f32).powf(-0.5);
        let attn = format!("{prefix}.self_attn");
        let q = load_raw(w, &format!("{attn}.q_proj"), d, d)?;
        let k = load_raw(w, &format!("{attn}.k_proj"), d, d)?;
        let v = load_raw(w, &format!("{attn}.v_proj"), d, d)?;
        let mut weight: Vec<f32> = q.0.iter().map(|x| x * scale).collect();
        weight.extend_from_slice(&k.0);
        weight.extend_from_slice(&v.0);
        let (fc1, fc2) = load_mlp(w, &format!("{prefix}.mlp"), c)?;
        let mut bias: Vec<f32> = q.1.iter().map(|x| x * scale).collect();
        bias.extend(&k.1);
        bias.extend(&v.1);
        Ok(EncoderLayer {
            layer_norm1: LayerNorm::load(w, &format!("{prefix}.layer_norm1"), d, c.layer_norm_eps)?,
            qkv: fused::Linear::new(weight, Some(bias), d, 3 * d, None),
            out_proj: load_linear(w, &format!("{attn}.out_proj"), d, d, true, None)?,
            layer_norm2: LayerNorm::load(w, &format!("{prefix}.layer_norm2"), d, c.layer_norm_eps)?,
            fc1,
            fc2,
            heads: c.num_attention_heads,
        })
    }

    /// `x` is `[batch·tokens, width]`; with `causal`, each token attends only to itself and
    /// earlier tokens. With `keep`, only those rows of the output are computed and returned, in
    /// its order: every token is still attended to, but the output projection and the MLP,
    /// which work row by row, run on the kept rows alone.
    fn forward(
        &self,
        x: &Tensor,
        batch: usize,
        tokens: usize,
        causal: bool,
        keep: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let h = self.layer_norm1.forward(x)?;
        let qkv = fused::linear(&h, &self.qkv, None)?;
        let attended = qkv.apply_op1_no_bwd(&fused::Attention {
            batch,
            tokens,
            heads: self.heads,
            causal,
        })?;
        let (attended, x) = match keep {
            Some(rows) => (attended.index_select(rows, 0)?, x.index_select(rows, 0)?),
            None => (attended, x.clone()),
        };
        let x = fused::linear(&attended, &self.out_proj, Some(&x))?;
        let h = self.layer_norm2.forward(&x)?;
        let h = fused::linear(&h, &self.fc1, None)?;
        fused::linear(&h, &self.fc2, Some(&x))
    }
}

pub(crate) struct Encoder {
    layers: Vec<EncoderLayer>,
}

impl Encoder {
    pub(crate) fn load(w: &dyn WeightSource, prefix: &str, c: &EncoderConfig) -> Result<Self> {
        let layers = (0..c.num_hidden_layers)
            .map(|i| EncoderLayer::load(w, &format!("{prefix}.encoder.layers.{i}"), c))
            .collect::<Result<Vec<_>>>()?;
        Ok(Encoder { layers })
    }

    pub(crate) fn forward(
        &self,
        x: &Tensor,
        batch: usize,
        tokens: usize,
        causal: bool,
    ) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = layer.forward(&x, batch, tokens, causal, None)?;
        }
        Ok(x)
    }

    /// The final hidden states of `rows` alone (indices into `x`'s `batch·tokens` rows), as
    /// [`Self::forward`] followed by `index_select(rows)` would return them.
    ///
    /// A tower that pools one token per input needs the other tokens' last states for nothing:
    /// their keys and values feed the last layer's attention, but their own pass through its
    /// output projection and MLP is dropped. For ViT-B/32 that is 49 of 50 rows of three of
    /// the last layer's four products, about 6 % of the image encoder's arithmetic.
    pub(crate) fn forward_pooled(
        &self,
        x: &Tensor,
        batch: usize,
        tokens: usize,
        causal: bool,
        rows: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let Some((last, before)) = self.layers.split_last() else {
            return x.index_select(rows, 0);
        };
        let mut x = x.clone();
        for layer in before {
            x = layer.forward(&x, batch, tokens, causal, None)?;
        }
        last.forward(&x, batch, tokens, causal, Some(rows))
    }
}

struct VisionTower {
    /// The patch convolution as a linear layer over each patch's `channels·patch·patch` values.
    patch_embedding: fused::Linear,
    class_embedding: Tensor,
    position_embedding: Tensor,
    pre_layrnorm: LayerNorm,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    projection: fused::Linear,
    patch: usize,
    grid: usize,
    channels: usize,
}

impl VisionTower {
    fn load(w: &dyn WeightSource, config: &ClipConfig) -> Result<Self> {
        let v = &config.vision;
        let d = v.encoder.hidden_size;
        let p = v.patch_size;
        let patch_weight = w
            .tensor(
                "vision_model.embeddings.patch_embedding.weight",
                &[d, v.num_channels, p, p],
            )?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let patch_embedding =
            fused::Linear::new(patch_weight, None, v.num_channels * p * p, d, None);
        Ok(VisionTower {
            patch_embedding,
            class_embedding: w.tensor("vision_model.embeddings.class_embedding", &[d])?,
            position_embedding: w.tensor(
                "vision_model.embeddings.position_embedding.weight",
                &[v.num_positions(), d],
            )?,
            pre_layrnorm: LayerNorm::load(
                w,
                "vision_model.pre_layrnorm",
                d,
                v.encoder.layer_norm_eps,
            )?,
            encoder: Encoder::load(w, "vision_model", &v.encoder)?,
            post_layernorm: LayerNorm::load(
                w,
                "vision_model.post_layernorm",
                d,
                v.encoder.layer_norm_eps,
            )?,
            projection: load_linear(
                w,
                "visual_projection",
                config.projection_dim,
                d,
                false,
                None,
            )?,
            patch: p,
            grid: v.grid(),
            channels: v.num_channels,
        })
    }

    /// `pixels` is `[batch, channels, size, size]`; returns unnormalised `[batch, projection]`.
    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let batch = pixels.dim(0)?;
        let (p, g, c) = (self.patch, self.grid, self.channels);
        let width = self.class_embedding.dim(0)?;
        // The stride-p convolution is a matrix product over non-overlapping patches.
        let patches = pixels
            .reshape((batch, c, g, p, g, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((batch * g * g, c * p * p))?;
        let patches =
            fused::linear(&patches, &self.patch_embedding, None)?.reshape((batch, g * g, width))?;
        let class = self
            .class_embedding
            .reshape((1, 1, width))?
            .broadcast_as((batch, 1, width))?;
        let tokens = g * g + 1;
        let x = Tensor::cat(&[&class, &patches], 1)?
            .broadcast_add(&self.position_embedding)?
            .reshape((batch * tokens, width))?;
        let x = self.pre_layrnorm.forward(&x)?;
        let class_rows =
            Tensor::arange_step(0u32, (batch * tokens) as u32, tokens as u32, x.device())?;
        let pooled = self
            .encoder
            .forward_pooled(&x, batch, tokens, false, &class_rows)?;
        let pooled = self.post_layernorm.forward(&pooled)?;
        fused::linear(&pooled, &self.projection, None)
    }
}

/// What CLIP's and SigLIP's text towers share: token and position embeddings, the encoder and
/// the final layer norm, under the same names in both checkpoints.
pub(crate) struct TextBody {
    token_embedding: Tensor,
    position_embedding: Tensor,
    encoder: Encoder,
    final_layer_norm: LayerNorm,
}

impl TextBody {
    pub(crate) fn load(w: &dyn WeightSource, t: &TextConfig) -> Result<Self> {
        let d = t.encoder.hidden_size;
        Ok(TextBody {
            token_embedding: w.tensor(
                "text_model.embeddings.token_embedding.weight",
                &[t.vocab_size, d],
            )?,
            position_embedding: w.tensor(
                "text_model.embeddings.position_embedding.weight",
                &[t.max_position_embeddings, d],
            )?,
            encoder: Encoder::load(w, "text_model", &t.encoder)?,
            final_layer_norm: LayerNorm::load(
                w,
                "text_model.final_layer_norm",
                d,
                t.encoder.layer_norm_eps,
            )?,
        })
    }

    /// Runs `ids` (equally long rows of `tokens`, checked by the caller) through the encoder
    /// and returns the final-normed hidden state at position `pool(row)` of each row.
    pub(crate) fn pooled(
        &self,
        ids: &[Vec<u32>],
        tokens: usize,
        causal: bool,
        pool: impl Fn(&[u32]) -> usize,
    ) -> candle_core::Result<Tensor> {
        let batch = ids.len();
        let vocab = self.token_embedding.dim(0)?;
        if let Some(bad) = ids.iter().flatten().find(|id| **id as usize >= vocab) {
            candle_core::bail!("token id {bad} is outside the model's vocabulary of {vocab}");
        }
        let width = self.token_embedding.dim(1)?;
        let device = self.token_embedding.device();
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let flat = Tensor::from_vec(flat, batch * tokens, device)?;
        let x = self
            .token_embedding
            .embedding(&flat)?
            .reshape((batch, tokens, width))?
            .broadcast_add(&self.position_embedding.narrow(0, 0, tokens)?)?
            .reshape((batch * tokens, width))?;
        // Layer norm works token by token, so pooling first gives the same result for less work.
        let rows: Vec<u32> = ids
            .iter()
            .enumerate()
            .map(|(b, row)| (b * tokens + pool(row)) as u32)
            .collect();
        let rows = Tensor::from_vec(rows, batch, device)?;
        let pooled = self
            .encoder
            .forward_pooled(&x, batch, tokens, causal, &rows)?;
        self.final_layer_norm.forward(&pooled)
    }
}

struct TextTower {
    body: TextBody,
    projection: fused::Linear,
    /// transformers' pooling rule: `argmax(input_ids)` for legacy configs (eos id 2), else the
    /// first occurrence of this id.
    pool_token: Option<u32>,
    max_positions: usize,
}

impl TextTower {
    fn load(w: &dyn WeightSource, config: &ClipConfig) -> Result<Self> {
        let t = &config.text;
        let d = t.encoder.hidden_size;
        let pool_token = match t.eos_token_id {
            None | Some(2) => None,
            Some(id) => Some(u32::try_from(id).map_err(|_| {
                Error::invalid(format!("text_config.eos_token_id {id} is not a token id"))
            })?),
        };
        Ok(TextTower {
            body: TextBody::load(w, t)?,
            projection: load_linear(w, "text_projection", config.projection_dim, d, false, None)?,
            pool_token,
            max_positions: t.max_position_embeddings,
        })
    }

    fn pool_position(&self, ids: &[u32]) -> usize {
        let first_max = |ids: &[u32]| {
            let mut best = 0;
            for (i, id) in ids.iter().enumerate() {
                if *id > ids[best] {
                    best = i;
                }
            }
            best
        };
        match self.pool_token {
            Some(eos) => ids
                .iter()
                .position(|id| *id == eos)
                .unwrap_or_else(|| first_max(ids)),
            None => first_max(ids),
        }
    }

    /// `ids` are equally long rows of token ids (padded, at most the model's context); returns
    /// unnormalised `[rows, projection]`.
    fn forward(&self, ids: &[Vec<u32>]) -> candle_core::Result<Tensor> {
        let tokens = ids.first().map_or(0, Vec::len);
        if tokens == 0 || tokens > self.max_positions || ids.iter().any(|r| r.len() != tokens) {
            candle_core::bail!(
                "text input must be equally long rows of 1 to {} tokens",
                self.max_positions
            );
        }
        let pooled = self
            .body
            .pooled(ids, tokens, true, |row| self.pool_position(row))?;
        fused::linear(&pooled, &self.projection, None)
    }
}

/// A loaded CLIP model: both towers and the learned temperature.
pub struct ClipModel {
    config: ClipConfig,
    vision: VisionTower,
    text: TextTower,
    logit_scale: f32,
}

impl ClipModel {
    /// Builds the model for `config` from `weights`, checking every tensor's shape.
    pub fn load(config: ClipConfig, weights: &dyn WeightSource) -> Result<Self> {
        let logit_scale = weights.tensor("logit_scale", &[])?.to_scalar::<f32>()?;
        Ok(ClipModel {
            vision: VisionTower::load(weights, &config)?,
            text: TextTower::load(weights, &config)?,
            config,
            logit_scale,
        })
    }

    /// A model for `config` with random weights (a model's speed does not depend on its weight
    /// values, so benchmarks use these).
    pub fn random(config: ClipConfig, seed: u64) -> Result<Self> {
        let weights = random_weights(&config, seed)?;
        let model = Self::load(config, &weights)?;
        drop(weights);
        kernels::release_free_memory();
        Ok(model)
    }

    /// The model's shape.
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }

    /// The arithmetic its linear layers multiply in (all are packed alike at load).
    pub fn precision(&self) -> crate::model::matmul::Precision {
        self.vision.projection.precision()
    }

    /// `exp(logit_scale)`: the factor that turns cosine similarities into logits.
    pub fn logit_scale_exp(&self) -> f32 {
        self.logit_scale.exp()
    }

    /// Unnormalised image features for `[batch, 3, size, size]` pixel values.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        let batch = pixels.dim(0)?;
        Ok(kernels::run_split(batch, |part| {
            self.vision
                .forward(&pixels.narrow(0, part.start, part.len())?)
        })?)
    }

    /// Unnormalised text features for equally long rows of token ids.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        Ok(kernels::run_split(ids.len(), |part| {
            self.text.forward(&ids[part])
        })?)
    }
}

/// Divides each row of `x` by its L2 norm.
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    Ok(x.broadcast_div(&norm)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn pooling_inside_the_last_layer_gives_the_rows_the_full_pass_gives() {
        let config = ClipConfig::from_json(
            r#"{"text_config": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                "num_attention_heads": 2, "vocab_size": 100, "max_position_embeddings": 16},
                "vision_config": {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 3,
                "num_attention_heads": 4, "image_size": 64, "patch_size": 16}}"#,
        )
        .unwrap();
        let weights = random_weights(&config, 3).unwrap();
        let encoder = Encoder::load(&weights, "vision_model", &config.vision.encoder).unwrap();
        let (batch, tokens, width) = (3, 17, 48);
        let x = Tensor::randn(0f32, 1.0, (batch * tokens, width), &Device::Cpu).unwrap();
        // Rows out of order and not one per input: the pooled pass must follow `rows` exactly.
        let rows = Tensor::new(
            &[tokens as u32 + 5, 0, 2 * tokens as u32 + 16, 1],
            &Device::Cpu,
        )
        .unwrap();
        for causal in [false, true] {
            let full = encoder.forward(&x, batch, tokens, causal).unwrap();
            let want = full.index_select(&rows, 0).unwrap();
            let got = encoder
                .forward_pooled(&x, batch, tokens, causal, &rows)
                .unwrap();
            assert_eq!(got.dims(), want.dims());
            let diff = (got - &want)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-5, "causal {causal}: rows differ by {diff}");
        }
    }
}
