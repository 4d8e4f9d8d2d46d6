//! `embed` and `tokenize`: the model's own outputs as JSON lines, for comparing cliptag with
//! other pipelines.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::imaging;
use crate::model::{self, Embedder, Engine, ModelSpec, hub};

/// Download progress on stderr, one line per file.
pub(super) fn print_download(name: &str, done: u64, total: u64) {
    if done == 0 {
        eprintln!("downloading {name} ({:.1} MB)…", total as f64 / 1e6);
    } else if done == total {
        eprintln!("downloaded {name}");
    }
}

pub(super) fn embed(model: &str, texts: &[String], images: &[PathBuf]) -> anyhow::Result<ExitCode> {
    if texts.is_empty() && images.is_empty() {
        bail!("nothing to embed: give --text TEXT or image files");
    }
    let spec = ModelSpec::parse(model);
    let (engine, _) = Engine::load(&spec, &mut print_download)?;
    if engine.precision() != crate::model::matmul::Precision::F32 {
        eprintln!(
            "cliptag: embedding in {}, the fastest this CPU runs, as indexing does \
             (CLIPTAG_PRECISION=f32 for exact f32)",
            engine.precision().name()
        );
    }
    // Photos are decoded one at a time: the other cores may decode a HEIC's tiles.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    imaging::lend_spare_threads(cores.saturating_sub(1));
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    if !texts.is_empty() {
        for (text, embedding) in texts.iter().zip(engine.embed_texts(texts)?) {
            write_embedding(&mut out, text, "text", &embedding)?;
        }
    }
    for path in images {
        // The exact reference path: no reduced-size decoding.
        let pixels = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            imaging::decode_file(path, None)
                .map(|decoded| decoded.preprocess(engine.preprocess_config()))
                .map_err(|error| error.to_string())
        }))
        .unwrap_or_else(|panic| {
            Err(format!(
                "{}: {}",
                path.display(),
                imaging::internal_error_reason(panic.as_ref())
            ))
        });
        match pixels {
            Ok(pixels) => {
                let embedding = engine
                    .embed_images(std::slice::from_ref(&pixels))?
                    .pop()
                    .context("the model returned no embedding")?;
                write_embedding(&mut out, &path.display().to_string(), "image", &embedding)?;
            }
            Err(error) => {
                eprintln!("cliptag: {error}");
                failed += 1;
            }
        }
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn write_embedding(
    out: &mut impl Write,
    input: &str,
    kind: &str,
    embedding: &[f32],
) -> anyhow::Result<()> {
    let line = serde_json::json!({ "input": input, "kind": kind, "embedding": embedding });
    writeln!(out, "{line}")?;
    Ok(())
}

pub(super) fn tokenize(model: &str, texts: &[String]) -> anyhow::Result<ExitCode> {
    let spec = ModelSpec::parse(model);
    let config_path = hub::resolve_file(&spec, "config.json", &mut print_download)?;
    let config = model::ModelConfig::from_file(&config_path)?;
    let tokenizer_path = hub::resolve_file(&spec, "tokenizer.json", &mut print_download)?;
    let tokenizer = model::tokenizer_for(&tokenizer_path, &config)?;
    let mut out = std::io::stdout().lock();
    for text in texts {
        let ids = tokenizer.encode(text)?;
        writeln!(out, "{}", serde_json::json!({ "text": text, "ids": ids }))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
