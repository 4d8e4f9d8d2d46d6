//! cliptag: tags a folder of photos with CLIP zero-shot scores against a person's own vocabulary.
//!
//! The library core serves both the desktop app (`app`, the only module that knows egui) and the
//! headless command line. A worker thread owns the model and the SQLite store; the UI only sends
//! commands and reads events.

pub mod app;
pub mod bench;
pub mod cli;
pub mod error;
pub mod export;
pub mod imaging;
pub mod library;
pub mod model;
pub mod store;
pub mod tagging;
pub mod worker;

pub use error::{Error, Result};
