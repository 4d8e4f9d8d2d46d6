//! Finding a model's files: a local folder, or a Hugging Face repository downloaded once into the
//! standard Hugging Face cache (`HF_HOME`, default `~/.cache/huggingface`), offline when
//! `HF_HUB_OFFLINE` is set.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The model cliptag uses unless told otherwise.
pub const DEFAULT_MODEL: &str = "openai/clip-vit-base-patch32";

/// The commit of [`DEFAULT_MODEL`] cliptag is tested against; pinned so that a later upload to
/// the hub cannot silently change every score in a library.
pub const DEFAULT_REVISION: &str = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268";

/// The files a model needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
    /// Absent in some folders; OpenAI's preprocessing is used then.
    pub preprocessor: Option<PathBuf>,
}

const REQUIRED: [&str; 2] = ["config.json", "tokenizer.json"];
/// Weights in the order they are looked for: safetensors, else a PyTorch checkpoint.
const WEIGHTS: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];
const OPTIONAL: &str = "preprocessor_config.json";

impl ModelFiles {
    /// The files in a local model folder; a missing required file is named.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::model(dir, "model folder not found"));
        }
        let needs =
            "it needs config.json, model.safetensors (or pytorch_model.bin) and tokenizer.json";
        for name in REQUIRED {
            if !dir.join(name).is_file() {
                return Err(Error::model(
                    dir,
                    format!("model folder has no {name} ({needs})"),
                ));
            }
        }
        let weights = WEIGHTS
            .iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
            .ok_or_else(|| {
                Error::model(
                    dir,
                    format!("model folder has no model.safetensors ({needs})"),
                )
            })?;
        let preprocessor = dir.join(OPTIONAL);
        Ok(ModelFiles {
            config: dir.join("config.json"),
            weights,
            tokenizer: dir.join("tokenizer.json"),
            preprocessor: preprocessor.is_file().then_some(preprocessor),
        })
    }
}

/// How a `--model` argument is read: a path to an existing folder, or `org/name[@revision]`.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelSpec {
    Local(PathBuf),
    Hub { repo: String, revision: String },
}

impl ModelSpec {
    /// Reads a `--model` argument.
    pub fn parse(text: &str) -> Self {
        let path = Path::new(text);
        if path.is_dir() || text.starts_with('.') || text.starts_with('/') || text.contains('\\') {
            return ModelSpec::Local(path.to_path_buf());
        }
        let (repo, revision) = match text.split_once('@') {
            Some((repo, revision)) => (repo.to_string(), revision.to_string()),
            None if text == DEFAULT_MODEL => (text.to_string(), DEFAULT_REVISION.to_string()),
            None => (text.to_string(), "main".to_string()),
        };
        ModelSpec::Hub { repo, revision }
    }

    /// The spec a stored [`ModelSpec::id`] stands for.
    pub fn from_id(id: &str) -> Self {
        match id.strip_prefix("local:") {
            Some(path) => ModelSpec::Local(PathBuf::from(path)),
            None => Self::parse(id),
        }
    }

    /// A stable name for the model, stored with a library's embeddings so that vectors of
    /// different models are never compared.
    pub fn id(&self) -> String {
        match self {
            ModelSpec::Local(dir) => {
                let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
                format!("local:{}", dir.display())
            }
            ModelSpec::Hub { repo, revision } => format!("{repo}@{revision}"),
        }
    }
}

/// Download progress of one file: `(file name, bytes done, bytes in all)`.
pub type DownloadProgress<'a> = &'a mut dyn FnMut(&str, u64, u64);

/// Whether `HF_HUB_OFFLINE` asks for the cache only (as huggingface_hub reads it).
pub fn offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

/// The model's files, downloading what the cache lacks (unless offline).
pub fn resolve(spec: &ModelSpec, progress: DownloadProgress<'_>) -> Result<ModelFiles> {
    match spec {
        ModelSpec::Local(dir) => ModelFiles::from_dir(dir),
        ModelSpec::Hub { .. } => {
            let [config, tokenizer] = REQUIRED;
            let config = resolve_file(spec, config, progress)?;
            let tokenizer = resolve_file(spec, tokenizer, progress)?;
            let weights = match fetch(spec, WEIGHTS[0], progress)? {
                Some(path) => path,
                // Older uploads only have the PyTorch checkpoint.
                None => resolve_file(spec, WEIGHTS[1], progress)?,
            };
            Ok(ModelFiles {
                config,
                weights,
                tokenizer,
                preprocessor: fetch(spec, OPTIONAL, progress)?,
            })
        }
    }
}

/// One required file of the model, downloading it if the cache lacks it (unless offline).
pub fn resolve_file(
    spec: &ModelSpec,
    name: &str,
    progress: DownloadProgress<'_>,
) -> Result<PathBuf> {
    if let ModelSpec::Local(dir) = spec {
        let path = dir.join(name);
        return if path.is_file() {
            Ok(path)
        } else if dir.is_dir() {
            Err(Error::model(dir, format!("model folder has no {name}")))
        } else {
            Err(Error::model(dir, "model folder not found"))
        };
    }
    fetch(spec, name, progress)?.ok_or_else(|| Error::Hub {
        model: spec.id(),
        reason: if offline() {
            format!(
                "{name} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; \
                     download it once with network access or pass --model with a local folder",
                cache_dir().display()
            )
        } else {
            format!("the repository has no {name}")
        },
    })
}

/// A hub file from the cache or the network; `None` when it does not exist (or is not cached
/// while offline).
fn fetch(spec: &ModelSpec, name: &str, progress: DownloadProgress<'_>) -> Result<Option<PathBuf>> {
    match spec {
        ModelSpec::Local(dir) => {
            let path = dir.join(name);
            Ok(path.is_file().then_some(path))
        }
        ModelSpec::Hub { repo, revision } => {
            if let Some(path) = cached_file(repo, revision, name) {
                return Ok(Some(path));
            }
            if offline() {
                return Ok(None);
            }
            download(repo, revision, name, progress)
        }
    }
}

/// The Hugging Face hub cache folder.
pub fn cache_dir() -> PathBuf {
    hf_hub::Cache::from_env().path().clone()
}

/// A file from the cache in huggingface_hub's layout, shared with Python tools:
/// `models--org--name/snapshots/<commit>/<file>`, the commit read from `refs/<revision>` unless
/// the revision is a commit itself.
fn cached_file(repo: &str, revision: &str, name: &str) -> Option<PathBuf> {
    let folder = cache_dir().join(format!("models--{}", repo.replace('/', "--")));
    let commit = if revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()) {
        revision.to_string()
    } else {
        std::fs::read_to_string(folder.join("refs").join(revision))
            .ok()?
            .trim()
            .to_string()
    };
    let path = folder.join("snapshots").join(commit).join(name);
    path.is_file().then_some(path)
}

struct Progress<'a, 'b> {
    name: String,
    done: u64,
    total: u64,
    report: &'a mut DownloadProgress<'b>,
}

impl hf_hub::api::Progress for Progress<'_, '_> {
    fn init(&mut self, size: usize, _filename: &str) {
        self.total = size as u64;
        self.done = 0;
        (self.report)(&self.name, 0, self.total);
    }

    fn update(&mut self, size: usize) {
        self.done += size as u64;
        (self.report)(&self.name, self.done, self.total);
    }

    fn finish(&mut self) {
        (self.report)(&self.name, self.total, self.total);
    }
}

/// Downloads one file; `Ok(None)` when the repository does not have it.
fn download(
    repo: &str,
    revision: &str,
    name: &str,
    mut progress: DownloadProgress<'_>,
) -> Result<Option<PathBuf>> {
    use hf_hub::api::sync::{ApiBuilder, ApiError};
    let hub_error = |reason: String| Error::Hub {
        model: format!("{repo}@{revision}"),
        reason,
    };
    let api = ApiBuilder::from_env()
        .with_progress(false)
        .build()
        .map_err(|e| hub_error(format!("cannot reach the Hugging Face hub: {e}")))?;
    let api_repo = api.repo(hf_hub::Repo::with_revision(
        repo.to_string(),
        hf_hub::RepoType::Model,
        revision.to_string(),
    ));
    let reporter = Progress {
        name: name.to_string(),
        done: 0,
        total: 0,
        report: &mut progress,
    };
    match api_repo.download_with_progress(name, reporter) {
        Ok(path) => Ok(Some(path)),
        Err(ApiError::RequestError(e)) if matches!(*e, ureq::Error::Status(404, _)) => Ok(None),
        Err(e) => Err(hub_error(format!("downloading {name} failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_model_is_pinned() {
        assert_eq!(
            ModelSpec::parse(DEFAULT_MODEL),
            ModelSpec::Hub {
                repo: DEFAULT_MODEL.into(),
                revision: DEFAULT_REVISION.into()
            }
        );
        assert_eq!(
            ModelSpec::parse("laion/CLIP-ViT-B-32-laion2B-s34B-b79K@abc"),
            ModelSpec::Hub {
                repo: "laion/CLIP-ViT-B-32-laion2B-s34B-b79K".into(),
                revision: "abc".into()
            }
        );
        assert!(matches!(
            ModelSpec::parse("./models/clip"),
            ModelSpec::Local(_)
        ));
    }
}
