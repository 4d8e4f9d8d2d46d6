//! A deliberately plain CLIP forward pass in double precision, written from the transformers
//! definition with loops only: an independent reference for configurations (other sizes, patch
//! 16, GELU) that the Python reference fixtures do not cover.

use std::collections::HashMap;

use candle_core::{DType, Tensor};
use cliptag::model::config::{ClipConfig, EncoderConfig};

pub struct NaiveClip<'a> {
    pub weights: &'a HashMap<String, Tensor>,
    pub config: &'a ClipConfig,
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .expect("an f64 tensor")
}

impl NaiveClip<'_> {
    fn w(&self, name: &str) -> Vec<f64> {
        values(
            self.weights
                .get(name)
                .unwrap_or_else(|| panic!("no tensor {name}")),
        )
    }

    fn linear(&self, prefix: &str, x: &[f64], bias: bool) -> Vec<f64> {
        let w = self.w(&format!("{prefix}.weight"));
        let inp = x.len();
        let out = w.len() / inp;
        let b = if bias {
            self.w(&format!("{prefix}.bias"))
        } else {
            vec![0.0; out]
        };
        (0..out)
            .map(|o| b[o] + (0..inp).map(|i| w[o * inp + i] * x[i]).sum::<f64>())
            .collect()
    }

    fn layer_norm(&self, prefix: &str, x: &[f64], eps: f64) -> Vec<f64> {
        let g = self.w(&format!("{prefix}.weight"));
        let b = self.w(&format!("{prefix}.bias"));
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - mean) / (var + eps).sqrt() * g[i] + b[i])
            .collect()
    }

    fn encoder(
        &self,
        prefix: &str,
        c: &EncoderConfig,
        mut h: Vec<Vec<f64>>,
        causal: bool,
    ) -> Vec<Vec<f64>> {
        let heads = c.num_attention_heads;
        let dh = c.hidden_size / heads;
        let scale = (dh as f64).powf(-0.5);
        let t = h.len();
        for layer in 0..c.num_hidden_layers {
            let p = format!("{prefix}.encoder.layers.{layer}");
            let normed: Vec<Vec<f64>> = h
                .iter()
                .map(|x| self.layer_norm(&format!("{p}.layer_norm1"), x, c.layer_norm_eps))
                .collect();
            let q: Vec<Vec<f64>> = normed
                .iter()
                .map(|x| {
                    self.linear(&format!("{p}.self_attn.q_proj"), x, true)
                        .iter()
                        .map(|v| v * scale)
                        .collect()
                })
                .collect();
            let k: Vec<Vec<f64>> = normed
                .iter()
                .map(|x| self.linear(&format!("{p}.self_attn.k_proj"), x, true))
                .collect();
            let v: Vec<Vec<f64>> = normed
                .iter()
                .map(|x| self.linear(&format!("{p}.self_attn.v_proj"), x, true))
                .collect();
            let mut attended = vec![vec![0.0; c.hidden_size]; t];
            for head in 0..heads {
                let r = head * dh..(head + 1) * dh;
                for i in 0..t {
                    let visible = if causal { i + 1 } else { t };
                    let scores: Vec<f64> = (0..visible)
                        .map(|j| r.clone().map(|d| q[i][d] * k[j][d]).sum())
                        .collect();
                    let max = scores.iter().cloned().fold(f64::MIN, f64::max);
                    let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = exps.iter().sum();
                    for d in r.clone() {
                        attended[i][d] = (0..visible).map(|j| exps[j] / total * v[j][d]).sum();
                    }
                }
            }
            for i in 0..t {
                let o = self.linear(&format!("{p}.self_attn.out_proj"), &attended[i], true);
                for d in 0..c.hidden_size {
                    h[i][d] += o[d];
                }
                let x = self.layer_norm(&format!("{p}.layer_norm2"), &h[i], c.layer_norm_eps);
                let mid: Vec<f64> = self
                    .linear(&format!("{p}.mlp.fc1"), &x, true)
                    .into_iter()
                    .map(|v| c.hidden_act.reference(v))
                    .collect();
                let o = self.linear(&format!("{p}.mlp.fc2"), &mid, true);
                for d in 0..c.hidden_size {
                    h[i][d] += o[d];
                }
            }
        }
        h
    }

    /// Unnormalised image features of one `[3, size, size]` image.
    pub fn image_features(&self, pixels: &[f64]) -> Vec<f64> {
        let v = &self.config.vision;
        let (p, g, size) = (v.patch_size, v.grid(), v.image_size);
        let d = v.encoder.hidden_size;
        let conv = self.w("vision_model.embeddings.patch_embedding.weight");
        let pos = self.w("vision_model.embeddings.position_embedding.weight");
        let mut tokens = vec![self.w("vision_model.embeddings.class_embedding")];
        for gy in 0..g {
            for gx in 0..g {
                let token = (0..d)
                    .map(|o| {
                        let mut sum = 0.0;
                        for c in 0..3 {
                            for py in 0..p {
                                for px in 0..p {
                                    let pixel = pixels
                                        [c * size * size + (gy * p + py) * size + gx * p + px];
                                    sum += conv[((o * 3 + c) * p + py) * p + px] * pixel;
                                }
                            }
                        }
                        sum
                    })
                    .collect();
                tokens.push(token);
            }
        }
        let tokens: Vec<Vec<f64>> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                let x: Vec<f64> = t
                    .iter()
                    .enumerate()
                    .map(|(j, v)| v + pos[i * d + j])
                    .collect();
                self.layer_norm("vision_model.pre_layrnorm", &x, v.encoder.layer_norm_eps)
            })
            .collect();
        let h = self.encoder("vision_model", &v.encoder, tokens, false);
        let pooled = self.layer_norm(
            "vision_model.post_layernorm",
            &h[0],
            v.encoder.layer_norm_eps,
        );
        self.linear("visual_projection", &pooled, false)
    }

    /// Unnormalised text features of one row of ids, pooled at its first maximum id.
    pub fn text_features(&self, ids: &[u32]) -> Vec<f64> {
        let t = &self.config.text;
        let d = t.encoder.hidden_size;
        let emb = self.w("text_model.embeddings.token_embedding.weight");
        let pos = self.w("text_model.embeddings.position_embedding.weight");
        let tokens: Vec<Vec<f64>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (0..d)
                    .map(|j| emb[*id as usize * d + j] + pos[i * d + j])
                    .collect()
            })
            .collect();
        let h = self.encoder("text_model", &t.encoder, tokens, true);
        let mut at = 0;
        for (i, id) in ids.iter().enumerate() {
            if *id > ids[at] {
                at = i;
            }
        }
        let pooled = self.layer_norm(
            "text_model.final_layer_norm",
            &h[at],
            t.encoder.layer_norm_eps,
        );
        self.linear("text_projection", &pooled, false)
    }
}
