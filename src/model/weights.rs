//! Where a CLIP model's tensors come from (a safetensors file, a PyTorch checkpoint, or tensors
//! made in memory), the names and shapes transformers' `CLIPModel` gives them, and random weights
//! of those shapes for benchmarks.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::model::config::{ClipConfig, EncoderConfig};

/// Where a model's tensors come from: a safetensors file, or tensors made in memory.
pub trait WeightSource {
    /// The tensor called `name`, as f32, checked to have `shape`.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor>;
}

/// Refuses a checkpoint tensor whose shape differs from what config.json implies.
fn check_shape(path: &Path, name: &str, found: &[usize], want: &[usize]) -> Result<()> {
    if found == want {
        return Ok(());
    }
    Err(Error::model(
        path,
        format!("tensor `{name}` has shape {found:?}, but config.json implies {want:?}"),
    ))
}

/// Weights memory-mapped from a `model.safetensors` file.
pub struct SafetensorsWeights {
    path: PathBuf,
    file: candle_core::safetensors::MmapedSafetensors,
}

impl SafetensorsWeights {
    /// Maps `path` and reads its header; a truncated or corrupt file is refused here.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::model(path, "file not found"));
        }
        // SAFETY: the file is mapped read-only; cliptag never writes model files, and the
        // safetensors header is validated against the file's length before any tensor is read.
        let file = unsafe { candle_core::safetensors::MmapedSafetensors::new(path) }
            .map_err(|e| Error::model(path, format!("not a valid safetensors file: {e}")))?;
        Ok(SafetensorsWeights {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl WeightSource for SafetensorsWeights {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let view = self
            .file
            .get(name)
            .map_err(|_| Error::model(&self.path, format!("has no tensor `{name}`")))?;
        check_shape(&self.path, name, view.shape(), shape)?;
        let tensor = self
            .file
            .load(name, &Device::Cpu)
            .map_err(|e| Error::model(&self.path, format!("cannot read tensor `{name}`: {e}")))?;
        Ok(tensor.to_dtype(DType::F32)?)
    }
}

/// Weights from a PyTorch `pytorch_model.bin` (the zip format of `torch.save`), for checkpoints
/// that were never converted to safetensors.
pub struct PthWeights {
    path: PathBuf,
    file: candle_core::pickle::PthTensors,
}

impl PthWeights {
    /// Reads the archive's index of tensors.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::model(path, "file not found"));
        }
        let file = candle_core::pickle::PthTensors::new(path, None)
            .map_err(|e| Error::model(path, format!("not a readable PyTorch checkpoint: {e}")))?;
        Ok(PthWeights {
            path: path.to_path_buf(),
            file,
        })
    }
}

impl WeightSource for PthWeights {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self
            .file
            .get(name)
            .map_err(|e| Error::model(&self.path, format!("cannot read tensor `{name}`: {e}")))?
            .ok_or_else(|| Error::model(&self.path, format!("has no tensor `{name}`")))?;
        check_shape(&self.path, name, tensor.dims(), shape)?;
        Ok(tensor.to_dtype(DType::F32)?)
    }
}

/// Tensors held in memory, e.g. randomly initialised weights for benchmarks.
pub struct MemoryWeights(pub HashMap<String, Tensor>);

impl WeightSource for MemoryWeights {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let tensor = self
            .0
            .get(name)
            .ok_or_else(|| Error::invalid(format!("no tensor `{name}`")))?;
        if tensor.dims() != shape {
            return Err(Error::invalid(format!(
                "tensor `{name}` has shape {:?}, expected {shape:?}",
                tensor.dims()
            )));
        }
        Ok(tensor.to_dtype(DType::F32)?)
    }
}

/// The tensors of one tower's transformer layers, with their shapes (the same names in CLIP and
/// SigLIP checkpoints).
pub(crate) fn encoder_shapes(
    shapes: &mut Vec<(String, Vec<usize>)>,
    prefix: &str,
    e: &EncoderConfig,
) {
    let (d, i) = (e.hidden_size, e.intermediate_size);
    for layer in 0..e.num_hidden_layers {
        let p = format!("{prefix}.encoder.layers.{layer}");
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            shapes.push((format!("{p}.self_attn.{proj}.weight"), vec![d, d]));
            shapes.push((format!("{p}.self_attn.{proj}.bias"), vec![d]));
        }
        for norm in ["layer_norm1", "layer_norm2"] {
            shapes.push((format!("{p}.{norm}.weight"), vec![d]));
            shapes.push((format!("{p}.{norm}.bias"), vec![d]));
        }
        shapes.push((format!("{p}.mlp.fc1.weight"), vec![i, d]));
        shapes.push((format!("{p}.mlp.fc1.bias"), vec![i]));
        shapes.push((format!("{p}.mlp.fc2.weight"), vec![d, i]));
        shapes.push((format!("{p}.mlp.fc2.bias"), vec![d]));
    }
}

/// Every tensor a `CLIPModel` checkpoint holds for `config`, with its shape. Used to generate
/// random models and to check checkpoints.
pub fn tensor_shapes(config: &ClipConfig) -> Vec<(String, Vec<usize>)> {
    let mut shapes = Vec::new();
    let t = &config.text;
    let v = &config.vision;
    encoder_shapes(&mut shapes, "text_model", &t.encoder);
    encoder_shapes(&mut shapes, "vision_model", &v.encoder);
    let (td, vd) = (t.encoder.hidden_size, v.encoder.hidden_size);
    let p = v.patch_size;
    shapes.extend([
        (
            "text_model.embeddings.token_embedding.weight".into(),
            vec![t.vocab_size, td],
        ),
        (
            "text_model.embeddings.position_embedding.weight".into(),
            vec![t.max_position_embeddings, td],
        ),
        ("text_model.final_layer_norm.weight".into(), vec![td]),
        ("text_model.final_layer_norm.bias".into(), vec![td]),
        (
            "text_projection.weight".into(),
            vec![config.projection_dim, td],
        ),
        ("vision_model.embeddings.class_embedding".into(), vec![vd]),
        (
            "vision_model.embeddings.patch_embedding.weight".into(),
            vec![vd, v.num_channels, p, p],
        ),
        (
            "vision_model.embeddings.position_embedding.weight".into(),
            vec![v.num_positions(), vd],
        ),
        ("vision_model.pre_layrnorm.weight".into(), vec![vd]),
        ("vision_model.pre_layrnorm.bias".into(), vec![vd]),
        ("vision_model.post_layernorm.weight".into(), vec![vd]),
        ("vision_model.post_layernorm.bias".into(), vec![vd]),
        (
            "visual_projection.weight".into(),
            vec![config.projection_dim, vd],
        ),
        ("logit_scale".into(), vec![]),
    ]);
    shapes
}

/// Random weights for `config`, drawn like transformers' initialiser (normal, std 0.02; layer
/// norms at one), in a `MemoryWeights`.
pub fn random_weights(config: &ClipConfig, seed: u64) -> Result<MemoryWeights> {
    random_weights_of(tensor_shapes(config), seed, |name| {
        (name == "logit_scale").then_some(LOGIT_SCALE_INIT)
    })
}

/// Random tensors of `shapes`: normal with std 0.02, layer norms at one and zero, and the
/// scalars `constant` names filled with its value.
pub(crate) fn random_weights_of(
    shapes: Vec<(String, Vec<usize>)>,
    seed: u64,
    constant: impl Fn(&str) -> Option<f32>,
) -> Result<MemoryWeights> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut map = HashMap::new();
    for (name, shape) in shapes {
        let count: usize = shape.iter().product();
        let values: Vec<f32> = if let Some(value) = constant(&name) {
            vec![value; count]
        } else if name.contains("layer_norm")
            || name.contains("layrnorm")
            || name.contains("layernorm")
        {
            if name.ends_with(".weight") {
                vec![1.0; count]
            } else {
                vec![0.0; count]
            }
        } else {
            // Box–Muller: rand's normal distribution lives in another crate.
            (0..count)
                .map(|_| {
                    let u1: f32 = rng.random::<f32>().max(f32::MIN_POSITIVE);
                    let u2: f32 = rng.random();
                    0.02 * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
                })
                .collect()
        };
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu)?;
        map.insert(name, tensor);
    }
    Ok(MemoryWeights(map))
}

/// transformers' `logit_scale_init_value`, ln(1/0.07).
const LOGIT_SCALE_INIT: f32 = 2.6592;
