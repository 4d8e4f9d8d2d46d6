//! cliptag's integration tests, in one binary to keep link time down.

mod allocation;
mod app;
mod app_editing;
mod app_keys;
mod app_surface;
mod support;

mod core;
mod durability;
mod engine;
mod export;
mod folders;
mod gallery;
mod heic;
mod history;
mod hub;
mod indexing;
mod jpeg_forms;
mod layout;
mod learning;
mod naive_clip;
mod oracle;
mod parity;
mod precision;
mod raw;
mod retag;
mod sidecars;
mod siglip;
mod store;
mod tagging;
mod thumbnails;
mod vectors;
mod worker;
