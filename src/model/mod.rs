//! The model engine: `config.json` → a CLIP or SigLIP model, its tokenizer, preprocessing, hub
//! download, and the [`Embedder`] trait the rest of cliptag talks to.

pub mod attention;
pub mod clip;
pub mod config;
pub mod fused;
pub mod hub;
pub mod identity;
pub mod kernels;
pub mod layer_norm;
pub mod matmul;
pub mod preprocess_config;
pub mod siglip;
pub mod tokenizer;
pub mod weights;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::imaging::Pixels;
pub use clip::ClipModel;
pub use config::{ClipConfig, Family, ModelConfig, PreprocessConfig, SiglipConfig};
pub use hub::{ModelFiles, ModelSpec};
pub use identity::ModelIdentity;
pub use siglip::SiglipModel;
pub use tokenizer::{ClipTokenizer, SiglipTokenizer, Tokenizer};

/// What indexing and tagging need from a model: L2-normalised embeddings of images and texts in
/// one shared space. The worker is written against this trait so that it can be tested with
/// counting or failing embedders.
pub trait Embedder: Send + Sync {
    /// A stable name stored with every embedding, so vectors of different models never mix.
    fn model_id(&self) -> &str;
    /// Width of the embeddings.
    fn dim(&self) -> usize;
    /// How images must be preprocessed for [`Embedder::embed_images`].
    fn preprocess_config(&self) -> &PreprocessConfig;
    /// `exp(logit_scale)`: the factor that turns cosine similarities into logits.
    fn logit_scale(&self) -> f32;
    /// The bias a sigmoid-trained model (SigLIP) adds to every scaled cosine; `None` for
    /// softmax-trained models (CLIP), whose logits only compare with each other.
    fn logit_bias(&self) -> Option<f32> {
        None
    }
    /// One normalised embedding per preprocessed image.
    fn embed_images(&self, images: &[Pixels]) -> Result<Vec<Vec<f32>>>;
    /// One normalised embedding per text.
    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
    /// The arithmetic its embeddings are computed in (stored with each photo's embedding).
    fn precision(&self) -> matmul::Precision {
        matmul::Precision::F32
    }
}

/// How the model in `files` wants its images, read from its small files alone (no weights).
pub fn preprocess_of(files: &ModelFiles) -> Result<PreprocessConfig> {
    preprocess_config(files, &ModelConfig::from_file(&files.config)?)
}

fn preprocess_config(files: &ModelFiles, config: &ModelConfig) -> Result<PreprocessConfig> {
    let image_size = config.vision().image_size as u32;
    let defaults = PreprocessConfig::defaults(config.family(), image_size);
    let preprocess = match &files.preprocessor {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
            PreprocessConfig::from_json_over(&text, defaults)
                .map_err(|reason| Error::model(path, reason))?
        }
        None => defaults,
    };
    let path = files.preprocessor.as_deref().unwrap_or(&files.config);
    let out = if preprocess.do_center_crop {
        Some((preprocess.crop_width, preprocess.crop_height))
    } else {
        preprocess.fixed_size.filter(|_| preprocess.do_resize)
    };
    if let Some((out_w, out_h)) = out
        && (out_w != image_size || out_h != image_size)
    {
        return Err(Error::model(
            path,
            format!("makes {out_w}×{out_h} images but the model takes {image_size}×{image_size}"),
        ));
    }
    Ok(preprocess)
}

/// Either family's two towers.
// Built once per loaded model and never moved in a hot path: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Towers {
    Clip(ClipModel),
    Siglip(SiglipModel),
}

impl Towers {
    fn image_size(&self) -> usize {
        match self {
            Towers::Clip(m) => m.config().vision.image_size,
            Towers::Siglip(m) => m.config().vision.image_size,
        }
    }

    fn dim(&self) -> usize {
        match self {
            Towers::Clip(m) => m.config().projection_dim,
            Towers::Siglip(m) => m.config().embedding_dim(),
        }
    }
}

/// How many prompts go through the text tower at once.
const TEXT_BATCH: usize = 64;

/// A model of either family with its tokenizer and preprocessing.
pub struct Engine {
    towers: Towers,
    tokenizer: Tokenizer,
    preprocess: PreprocessConfig,
    model_id: String,
}

impl Engine {
    /// Loads the model `spec` names, downloading it into the Hugging Face cache if needed;
    /// returns it with what it is.
    pub fn load(
        spec: &ModelSpec,
        progress: hub::DownloadProgress<'_>,
    ) -> Result<(Self, ModelIdentity)> {
        let (identity, files) = ModelIdentity::find(spec, progress)?;
        Ok((Self::from_files(&files, identity.id.clone())?, identity))
    }

    /// Loads a model from its files; `model_id` is stored with the embeddings it makes.
    pub fn from_files(files: &ModelFiles, model_id: String) -> Result<Self> {
        let config = ModelConfig::from_file(&files.config)?;
        let preprocess = preprocess_config(files, &config)?;
        let tokenizer = tokenizer_for(&files.tokenizer, &config)?;
        let weights: Box<dyn clip::WeightSource> =
            if files.weights.extension().is_some_and(|e| e == "bin") {
                Box::new(clip::PthWeights::open(&files.weights)?)
            } else {
                Box::new(clip::SafetensorsWeights::open(&files.weights)?)
            };
        let towers = match config {
            ModelConfig::Clip(config) => Towers::Clip(ClipModel::load(config, weights.as_ref())?),
            ModelConfig::Siglip(config) => {
                Towers::Siglip(SiglipModel::load(config, weights.as_ref())?)
            }
        };
        // The weights as read are dropped; what their copies took goes back to the system.
        drop(weights);
        kernels::release_free_memory();
        Ok(Engine {
            towers,
            tokenizer,
            preprocess,
            model_id,
        })
    }

    /// An engine around an already built model (for benchmarks with random weights).
    pub fn from_parts(
        towers: Towers,
        tokenizer: Tokenizer,
        preprocess: PreprocessConfig,
        model_id: String,
    ) -> Self {
        Engine {
            towers,
            tokenizer,
            preprocess,
            model_id,
        }
    }

    /// The arithmetic the encoders' linear layers multiply in.
    pub fn precision(&self) -> matmul::Precision {
        match &self.towers {
            Towers::Clip(m) => m.precision(),
            Towers::Siglip(m) => m.precision(),
        }
    }

    /// The model's family.
    pub fn family(&self) -> Family {
        match self.towers {
            Towers::Clip(_) => Family::Clip,
            Towers::Siglip(_) => Family::Siglip,
        }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Unnormalised image features for `[batch, 3, size, size]` pixel values.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        match &self.towers {
            Towers::Clip(m) => m.image_features(pixels),
            Towers::Siglip(m) => m.image_features(pixels),
        }
    }

    /// Unnormalised text features for rows of token ids as the tokenizer makes them.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        match &self.towers {
            Towers::Clip(m) => m.text_features(ids),
            Towers::Siglip(m) => m.text_features(ids),
        }
    }

    /// Stacks preprocessed images into a `[batch, 3, h, w]` tensor.
    pub fn pixel_tensor(images: &[Pixels]) -> Result<Tensor> {
        let first = images
            .first()
            .ok_or_else(|| Error::invalid("no images to embed"))?;
        let (w, h) = (first.width as usize, first.height as usize);
        if images
            .iter()
            .any(|p| p.width as usize != w || p.height as usize != h)
        {
            return Err(Error::invalid("images in one batch differ in size"));
        }
        let mut flat = Vec::with_capacity(images.len() * 3 * w * h);
        for image in images {
            flat.extend_from_slice(&image.data);
        }
        Ok(Tensor::from_vec(
            flat,
            (images.len(), 3, h, w),
            &Device::Cpu,
        )?)
    }

    /// Normalised embeddings for a `[batch, 3, h, w]` pixel tensor.
    pub fn embed_pixel_tensor(&self, pixels: &Tensor) -> Result<Vec<Vec<f32>>> {
        let features = self.image_features(pixels)?;
        Ok(clip::l2_normalize(&features)?.to_vec2()?)
    }

    /// Normalised embeddings for rows of token ids.
    pub fn embed_token_rows(&self, rows: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let features = self.text_features(rows)?;
        Ok(clip::l2_normalize(&features)?.to_vec2()?)
    }
}

/// The tokenizer `config`'s family uses, from `tokenizer.json` at `path`.
pub fn tokenizer_for(path: &std::path::Path, config: &ModelConfig) -> Result<Tokenizer> {
    Ok(match config {
        ModelConfig::Clip(c) => Tokenizer::Clip(ClipTokenizer::from_file(
            path,
            c.text.max_position_embeddings,
        )?),
        ModelConfig::Siglip(c) => Tokenizer::Siglip(SiglipTokenizer::from_file(
            path,
            c.text.max_position_embeddings,
            c.pad_token_id,
        )?),
    })
}

impl Embedder for Engine {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn precision(&self) -> matmul::Precision {
        Engine::precision(self)
    }

    fn dim(&self) -> usize {
        self.towers.dim()
    }

    fn preprocess_config(&self) -> &PreprocessConfig {
        &self.preprocess
    }

    fn logit_scale(&self) -> f32 {
        match &self.towers {
            Towers::Clip(m) => m.logit_scale_exp(),
            Towers::Siglip(m) => m.logit_scale_exp(),
        }
    }

    fn logit_bias(&self) -> Option<f32> {
        match &self.towers {
            Towers::Clip(_) => None,
            Towers::Siglip(m) => Some(m.logit_bias()),
        }
    }

    fn embed_images(&self, images: &[Pixels]) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.towers.image_size() as u32;
        if let Some(bad) = images.iter().find(|p| p.width != size || p.height != size) {
            return Err(Error::invalid(format!(
                "image is {}×{} after preprocessing; the model takes {size}×{size}",
                bad.width, bad.height
            )));
        }
        self.embed_pixel_tensor(&Self::pixel_tensor(images)?)
    }

    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(TEXT_BATCH) {
            let rows = self.tokenizer.encode_batch(chunk)?;
            out.extend(self.embed_token_rows(&rows)?);
        }
        Ok(out)
    }
}
