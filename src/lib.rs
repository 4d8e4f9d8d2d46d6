//! cliptag: tags a folder of photos with CLIP zero-shot scores against a person's own vocabulary.
//!
//! One library core (`library::Library`) serves both faces: the headless command line (`cli`)
//! calls it directly, and the desktop app (`app`, the only module that knows egui) talks to a
//! worker thread (`worker`) that owns one. Below the core: `store` (the only module that speaks
//! SQL), `model` (CLIP), `imaging` (decoding), `tagging` (pure: vectors in, tags out) and
//! `export`; `domain` holds what a person sees (labels, tags, photo states).

pub mod about;
pub mod app;
pub mod bench;
pub mod cli;
pub mod domain;
pub mod error;
pub mod export;
pub mod imaging;
pub mod library;
pub mod log;
pub mod model;
pub mod paths;
pub mod store;
pub mod tagging;
pub mod worker;

pub use error::{Error, Result};
