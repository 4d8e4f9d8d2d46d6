//! The library's one error type. Every error that comes from a file names that file, so a person
//! reading it on the command line or in the app knows what to fix.

use std::path::{Path, PathBuf};

/// Errors from cliptag's library core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or folder could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A model folder or one of its files is unusable (bad config, bad weights, bad tokenizer).
    #[error("{}: {reason}", path.display())]
    Model { path: PathBuf, reason: String },

    /// The model could not be downloaded or found in the Hugging Face cache.
    #[error("model {model}: {reason}")]
    Hub { model: String, reason: String },

    /// An image file could not be decoded.
    #[error("{}: {reason}", path.display())]
    Image { path: PathBuf, reason: String },

    /// The numeric engine failed; with valid inputs this is a bug.
    #[error("model computation failed: {0}")]
    Compute(#[from] candle_core::Error),

    /// The library database could not be opened, upgraded or queried.
    #[error("{}: {reason}", path.display())]
    Store { path: PathBuf, reason: String },

    /// A query on the library database failed inside a larger operation.
    #[error("library database: {0}")]
    Database(#[from] rusqlite::Error),

    /// A request that cannot be carried out as asked (an empty label, an unknown image, …).
    #[error("{0}")]
    Invalid(String),

    /// Indexing found photos and registered them, but no model was available to tag them: they
    /// wait, shown, for one.
    #[error("{waiting} photo{} registered and waiting for tags: {advice}", if *waiting == 1 { " is" } else { "s are" })]
    WaitingForModel { waiting: u64, advice: String },

    /// The work was cancelled by the person.
    #[error("cancelled")]
    Cancelled,

    /// Another program changed the vocabulary while automatic tags were computed from it: they
    /// are computed again rather than written stale.
    #[error("the vocabulary changed while the tags were computed from it")]
    VocabularyMoved,
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A model file at `path` is unusable for `reason`.
    pub fn model(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Model {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// The image at `path` cannot be used for `reason`.
    pub fn image(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Image {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// The database at `path` failed for `reason`.
    pub fn store(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::Store {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// A request that cannot be carried out.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Error::Invalid(reason.into())
    }

    /// The file or folder the error is about, if it names one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Error::Io { path, .. }
            | Error::Model { path, .. }
            | Error::Image { path, .. }
            | Error::Store { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// What a caught panic said (its message, where it carried one).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
