//! The photo library on disk: walking folders, fingerprints, and indexing what changed.

pub mod index;
pub mod walk;

pub use index::{IndexOptions, IndexSummary, Indexer, Progress, Stage, Timings};
pub use walk::{FoundFile, walk};

/// The BLAKE3 hash of `bytes`, in hex: how a moved or renamed file is recognised.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Where the library database lives unless `--db` says otherwise: the platform's data folder
/// (`~/.local/share/cliptag/library.sqlite` on Linux). It belongs on a local disk: SQLite's
/// write-ahead log does not work on network file systems.
pub fn default_db_path() -> std::path::PathBuf {
    directories::ProjectDirs::from("", "", "cliptag")
        .map(|dirs| dirs.data_dir().join("library.sqlite"))
        .unwrap_or_else(|| std::path::PathBuf::from("cliptag-library.sqlite"))
}

/// Opens a library database; a new one gets the default vocabulary.
pub fn open_library(path: &std::path::Path) -> crate::Result<crate::store::Store> {
    let mut store = crate::store::Store::open(path)?;
    let model = library_model(&store)?;
    crate::tagging::vocabulary_file::seed_default(&mut store, &model.id())?;
    Ok(store)
}

/// The model a library was indexed with (the default model for a new library).
pub fn library_model(store: &crate::store::Store) -> crate::Result<crate::model::ModelSpec> {
    Ok(match store.setting("model")? {
        Some(id) => crate::model::ModelSpec::from_id(&id),
        None => crate::model::ModelSpec::parse(crate::model::hub::DEFAULT_MODEL),
    })
}
