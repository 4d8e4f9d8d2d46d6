//! The CLIP engine: `config.json` → model, tokenizer, preprocessing, hub download, and the
//! [`Embedder`] trait the rest of cliptag talks to.

pub mod clip;
pub mod config;
pub mod fused;
pub mod hub;
pub mod identity;
pub mod kernels;
pub mod tokenizer;
pub mod weights;

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::imaging::Pixels;
pub use clip::ClipModel;
pub use config::{ClipConfig, PreprocessConfig};
pub use hub::{ModelFiles, ModelSpec};
pub use identity::ModelIdentity;
pub use tokenizer::ClipTokenizer;

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
    /// One normalised embedding per preprocessed image.
    fn embed_images(&self, images: &[Pixels]) -> Result<Vec<Vec<f32>>>;
    /// One normalised embedding per text.
    fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// How the model in `files` wants its images, read from its small files alone (no weights).
pub fn preprocess_of(files: &ModelFiles) -> Result<PreprocessConfig> {
    preprocess_config(files, &ClipConfig::from_file(&files.config)?)
}

fn preprocess_config(files: &ModelFiles, config: &ClipConfig) -> Result<PreprocessConfig> {
    let image_size = config.vision.image_size as u32;
    let preprocess = match &files.preprocessor {
        Some(path) => PreprocessConfig::from_file(path, image_size)?,
        None => PreprocessConfig::for_image_size(image_size),
    };
    if preprocess.do_center_crop
        && (preprocess.crop_width != image_size || preprocess.crop_height != image_size)
    {
        let path = files.preprocessor.as_deref().unwrap_or(&files.config);
        return Err(Error::model(
            path,
            format!(
                "crops to {}×{} but the model takes {image_size}×{image_size} images",
                preprocess.crop_width, preprocess.crop_height
            ),
        ));
    }
    Ok(preprocess)
}

/// How many prompts go through the text tower at once.
const TEXT_BATCH: usize = 64;

/// A CLIP model with its tokenizer and preprocessing.
pub struct ClipEngine {
    model: ClipModel,
    tokenizer: ClipTokenizer,
    preprocess: PreprocessConfig,
    model_id: String,
}

impl ClipEngine {
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
        let config = ClipConfig::from_file(&files.config)?;
        let preprocess = preprocess_config(files, &config)?;
        let tokenizer =
            ClipTokenizer::from_file(&files.tokenizer, config.text.max_position_embeddings)?;
        let model = if files.weights.extension().is_some_and(|e| e == "bin") {
            ClipModel::load(config, &clip::PthWeights::open(&files.weights)?)?
        } else {
            ClipModel::load(config, &clip::SafetensorsWeights::open(&files.weights)?)?
        };
        Ok(ClipEngine {
            model,
            tokenizer,
            preprocess,
            model_id,
        })
    }

    /// An engine around an already built model (for benchmarks with random weights).
    pub fn from_parts(
        model: ClipModel,
        tokenizer: ClipTokenizer,
        preprocess: PreprocessConfig,
        model_id: String,
    ) -> Self {
        ClipEngine {
            model,
            tokenizer,
            preprocess,
            model_id,
        }
    }

    /// The model itself.
    pub fn model(&self) -> &ClipModel {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
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
        let features = self.model.image_features(pixels)?;
        Ok(clip::l2_normalize(&features)?.to_vec2()?)
    }

    /// Normalised embeddings for rows of token ids (equally long).
    pub fn embed_token_rows(&self, rows: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let features = self.model.text_features(rows)?;
        Ok(clip::l2_normalize(&features)?.to_vec2()?)
    }
}

impl Embedder for ClipEngine {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dim(&self) -> usize {
        self.model.config().projection_dim
    }

    fn preprocess_config(&self) -> &PreprocessConfig {
        &self.preprocess
    }

    fn logit_scale(&self) -> f32 {
        self.model.logit_scale_exp()
    }

    fn embed_images(&self, images: &[Pixels]) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.model.config().vision.image_size as u32;
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
