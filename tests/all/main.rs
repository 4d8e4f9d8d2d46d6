//! cliptag's integration tests, in one binary to keep link time down.

mod allocation;
mod support;

mod engine;
mod indexing;
mod naive_clip;
mod store;
