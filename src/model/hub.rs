//! Finding a model's files: a local folder, or a Hugging Face repository downloaded once into the
//! standard Hugging Face cache (the layout Python's `huggingface_hub` reads: `blobs/`,
//! `snapshots/<commit>/`, `refs/`), offline when `HF_HUB_OFFLINE` is set.
//!
//! A branch (`main`) is resolved to the commit it points at, and every file of one model comes
//! from that one commit: a library remembers the commit, so a later upload to the branch can
//! never slip another model's vectors in beside its own.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::error::{Error, Result};

/// The model cliptag uses unless told otherwise.
pub const DEFAULT_MODEL: &str = "openai/clip-vit-base-patch32";

/// The commit of [`DEFAULT_MODEL`] cliptag is tested against; pinned so that a later upload to
/// the hub cannot silently change every score in a library.
pub const DEFAULT_REVISION: &str = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268";

/// Times a dropped download is resumed before giving up.
const RETRIES: usize = 3;

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
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// The spec a library stored with [`ModelSpec::stored`] (or, in libraries from before model
    /// identities, as the model's id).
    pub fn from_stored(text: &str) -> Self {
        match text.strip_prefix("local:") {
            Some(path) => ModelSpec::Local(PathBuf::from(path)),
            None => Self::parse(text),
        }
    }

    /// How a library remembers where its model comes from.
    pub fn stored(&self) -> String {
        match self {
            ModelSpec::Local(dir) => {
                let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
                format!("local:{}", dir.display())
            }
            ModelSpec::Hub { repo, revision } => format!("{repo}@{revision}"),
        }
    }

    /// A short name for people: the repository, or the folder's name.
    pub fn name(&self) -> String {
        match self {
            ModelSpec::Local(dir) => dir
                .canonicalize()
                .unwrap_or_else(|_| dir.clone())
                .file_name()
                .map_or_else(
                    || dir.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                ),
            ModelSpec::Hub { repo, .. } => repo.clone(),
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::Local(dir) => write!(f, "{}", dir.display()),
            ModelSpec::Hub { repo, revision } => write!(f, "{repo}@{revision}"),
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

/// The Hugging Face hub cache folder, found as huggingface_hub finds it: `HF_HUB_CACHE`, else
/// `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
pub fn cache_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("HF_HUB_CACHE") {
        return dir;
    }
    if let Some(home) = var("HF_HOME") {
        return home.join("hub");
    }
    let cache = var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("huggingface").join("hub")
}

/// A model's files, and its spec with the revision resolved to a commit.
pub fn resolve(
    spec: &ModelSpec,
    progress: DownloadProgress<'_>,
) -> Result<(ModelSpec, ModelFiles)> {
    let (repo, revision) = match spec {
        ModelSpec::Local(dir) => return Ok((spec.clone(), ModelFiles::from_dir(dir)?)),
        ModelSpec::Hub { repo, revision } => (repo, revision),
    };
    let hub = Hub::new(repo, revision)?;
    let commit = hub.commit(progress)?;
    let config = hub.required(&commit, REQUIRED[0], progress)?;
    let tokenizer = hub.required(&commit, REQUIRED[1], progress)?;
    let weights = match hub.fetch(&commit, WEIGHTS[0], progress)? {
        Some(path) => path,
        // Older uploads only have the PyTorch checkpoint.
        None => hub.required(&commit, WEIGHTS[1], progress)?,
    };
    let files = ModelFiles {
        config,
        weights,
        tokenizer,
        preprocessor: hub.fetch(&commit, OPTIONAL, progress)?,
    };
    let pinned = ModelSpec::Hub {
        repo: repo.clone(),
        revision: commit,
    };
    Ok((pinned, files))
}

/// One required file of the model, downloading it if the cache lacks it (unless offline).
pub fn resolve_file(
    spec: &ModelSpec,
    name: &str,
    progress: DownloadProgress<'_>,
) -> Result<PathBuf> {
    match spec {
        ModelSpec::Local(dir) => {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else if dir.is_dir() {
                Err(Error::model(dir, format!("model folder has no {name}")))
            } else {
                Err(Error::model(dir, "model folder not found"))
            }
        }
        ModelSpec::Hub { repo, revision } => {
            let hub = Hub::new(repo, revision)?;
            let commit = hub.commit(progress)?;
            hub.required(&commit, name, progress)
        }
    }
}

/// Whether `revision` is a full commit hash rather than a branch or tag.
fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit())
}

/// One repository on the hub, through the cache.
struct Hub<'a> {
    repo: &'a str,
    revision: &'a str,
    /// `models--org--name` in the cache.
    folder: PathBuf,
}

impl<'a> Hub<'a> {
    fn new(repo: &'a str, revision: &'a str) -> Result<Self> {
        if repo.split('/').count() != 2 || repo.split('/').any(str::is_empty) {
            return Err(Error::Hub {
                model: repo.to_string(),
                reason: "not a Hugging Face repository id (org/name) nor an existing folder".into(),
            });
        }
        Ok(Hub {
            repo,
            revision,
            folder: cache_dir().join(format!("models--{}", repo.replace('/', "--"))),
        })
    }

    fn error(&self, reason: impl Into<String>) -> Error {
        Error::Hub {
            model: format!("{}@{}", self.repo, self.revision),
            reason: reason.into(),
        }
    }

    /// The commit the revision names: itself if it is one; else what the hub says now (the
    /// download of `config.json` records it in `refs/`), or offline what the cache last saw.
    fn commit(&self, progress: DownloadProgress<'_>) -> Result<String> {
        if is_commit(self.revision) {
            return Ok(self.revision.to_string());
        }
        if !offline() {
            self.download(REQUIRED[0], progress)?
                .ok_or_else(|| self.error("the repository has no config.json"))?;
        }
        let cached_ref = std::fs::read_to_string(self.folder.join("refs").join(self.revision));
        match cached_ref {
            Ok(commit) if is_commit(commit.trim()) => Ok(commit.trim().to_string()),
            _ if offline() => Err(self.error(format!(
                "revision {} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; \
                 download it once with network access or pass --model with a local folder",
                self.revision,
                cache_dir().display()
            ))),
            _ => Err(self.error(format!(
                "the hub did not say which commit {} is",
                self.revision
            ))),
        }
    }

    /// `name` at `commit`, or an error saying why it cannot be had.
    fn required(
        &self,
        commit: &str,
        name: &str,
        progress: DownloadProgress<'_>,
    ) -> Result<PathBuf> {
        self.fetch(commit, name, progress)?.ok_or_else(|| {
            self.error(if offline() {
                format!(
                    "{name} is not in the Hugging Face cache ({}) and HF_HUB_OFFLINE is set; \
                     download it once with network access or pass --model with a local folder",
                    cache_dir().display()
                )
            } else {
                format!("the repository has no {name}")
            })
        })
    }

    /// `name` at `commit` from the cache, else downloaded; `None` when the repository does not
    /// have it (or, offline, the cache lacks it).
    fn fetch(
        &self,
        commit: &str,
        name: &str,
        progress: DownloadProgress<'_>,
    ) -> Result<Option<PathBuf>> {
        let cached = self.folder.join("snapshots").join(commit).join(name);
        if cached.is_file() {
            return Ok(Some(cached));
        }
        if offline() {
            return Ok(None);
        }
        let Some(path) = self.download(name, progress)? else {
            return Ok(None);
        };
        if path != cached {
            return Err(self.error(format!(
                "the repository changed while {name} was downloading (it is no longer at commit \
                 {commit}); run again"
            )));
        }
        Ok(Some(path))
    }

    /// Downloads `name` at the revision into the cache; `None` when the repository lacks it.
    fn download(&self, name: &str, mut progress: DownloadProgress<'_>) -> Result<Option<PathBuf>> {
        use hf_hub::api::sync::{ApiBuilder, ApiError};
        let mut builder = ApiBuilder::from_cache(hf_hub::Cache::new(cache_dir()))
            .with_progress(false)
            .with_retries(RETRIES);
        if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
            builder = builder.with_endpoint(endpoint.trim_end_matches('/').to_string());
        }
        if let Some(token) = std::env::var("HF_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
        {
            builder = builder.with_token(Some(token.trim().to_string()));
        }
        let api = builder
            .build()
            .map_err(|e| self.error(format!("cannot reach the Hugging Face hub: {e}")))?;
        let repo = api.repo(hf_hub::Repo::with_revision(
            self.repo.to_string(),
            hf_hub::RepoType::Model,
            self.revision.to_string(),
        ));
        let reporter = Progress {
            name: name.to_string(),
            done: 0,
            total: 0,
            report: &mut progress,
        };
        let path = match repo.download_with_progress(name, reporter) {
            Ok(path) => path,
            Err(ApiError::RequestError(e)) => {
                return match *e {
                    ureq::Error::Status(404, _) => Ok(None),
                    ureq::Error::Status(401 | 403, _) => Err(self.error(format!(
                        "the hub refused {name}: the repository is gated or private; accept its \
                         terms on huggingface.co and set HF_TOKEN (or run `huggingface-cli login`)"
                    ))),
                    other => Err(self.error(format!("downloading {name} failed: {other}"))),
                };
            }
            Err(e) => return Err(self.error(format!("downloading {name} failed: {e}"))),
        };
        self.verify(&path, name)?;
        // hf-hub leaves its lock file beside the blob; Python's huggingface_hub keeps its locks
        // elsewhere and would see a stray file.
        if let Some(blob) = blob_name(&path) {
            let _ = std::fs::remove_file(self.folder.join("blobs").join(format!("{blob}.lock")));
        }
        Ok(Some(path))
    }

    /// Checks a downloaded large file against the SHA-256 the hub names it by; a file that does
    /// not match (a dropped connection resumed wrongly) is removed from the cache.
    fn verify(&self, path: &Path, name: &str) -> Result<()> {
        let Some(expected) = blob_name(path).filter(|n| n.len() == 64) else {
            return Ok(());
        };
        let actual = sha256_file(path)?;
        if actual == expected {
            return Ok(());
        }
        let blob = self.folder.join("blobs").join(&expected);
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(&blob);
        Err(self.error(format!(
            "the download of {name} is damaged (SHA-256 {actual}, the hub says {expected}); it was \
             removed from the cache: run again"
        )))
    }
}

/// The name of the cache blob a snapshot file points at (for large files, their SHA-256).
pub fn blob_name(path: &Path) -> Option<String> {
    std::fs::read_link(path)
        .ok()?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
}

/// The SHA-256 of a file's bytes, in hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
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

    #[test]
    fn stored_specs_read_back() {
        let hub = ModelSpec::parse("org/model@0123456789abcdef0123456789abcdef01234567");
        assert_eq!(ModelSpec::from_stored(&hub.stored()), hub);
        assert_eq!(
            ModelSpec::from_stored("local:/models/clip"),
            ModelSpec::Local("/models/clip".into())
        );
    }
}
