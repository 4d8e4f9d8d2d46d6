//! cliptag's integration tests, in one binary to keep link time down.

mod support;

mod engine;
mod naive_clip;
