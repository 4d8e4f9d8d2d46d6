//! What a model is, as opposed to where it lies: an id made from its config and its weights, so
//! that moving a model folder keeps a library's embeddings, and a changed model never shares an
//! id with the one it replaced.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::hub::{self, ModelFiles, ModelSpec};

/// The prefix of ids made from a model's content (older libraries named a model by its path).
const PREFIX: &str = "clip:";

/// A model's id, the name people see, and where it was found (hub revisions pinned to commits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelIdentity {
    pub id: String,
    pub name: String,
    pub source: ModelSpec,
}

impl ModelIdentity {
    /// The identity of the model in `files`, found through `source`.
    pub fn of_files(files: &ModelFiles, source: ModelSpec) -> Result<Self> {
        let config = std::fs::read(&files.config).map_err(|e| Error::io(&files.config, e))?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"cliptag model\0config\0");
        hasher.update(&config);
        hasher.update(b"\0weights\0");
        hasher.update(weights_digest(&files.weights)?.as_bytes());
        if let Some(preprocessor) = &files.preprocessor {
            // The same weights preprocessed differently give other vectors.
            let bytes = std::fs::read(preprocessor).map_err(|e| Error::io(preprocessor, e))?;
            hasher.update(b"\0preprocessor\0");
            hasher.update(&bytes);
        }
        let hex = hasher.finalize().to_hex();
        Ok(ModelIdentity {
            id: format!("{PREFIX}{}", &hex[..32]),
            name: source.name(),
            source,
        })
    }

    /// Finds the model `spec` names (downloading it if needed) and tells what it is.
    pub fn find(
        spec: &ModelSpec,
        progress: hub::DownloadProgress<'_>,
    ) -> Result<(Self, ModelFiles)> {
        let (source, files) = hub::resolve(spec, progress)?;
        Ok((Self::of_files(&files, source)?, files))
    }
}

/// Whether `id` was made from a model's content (rather than the path-based names that libraries
/// written before model identities used).
pub fn is_content_id(id: &str) -> bool {
    id.starts_with(PREFIX)
}

/// The SHA-256 of the weights: the hub names a downloaded large file by it (free to read, and
/// checked when it was downloaded); a file in a folder is read through once. The same weights
/// from the hub or from a folder are one model.
fn weights_digest(path: &Path) -> Result<String> {
    match hub::blob_name(path).filter(|n| n.len() == 64) {
        Some(sha256) => Ok(sha256),
        None => hub::sha256_file(path),
    }
}
