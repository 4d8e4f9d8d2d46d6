//! `cliptag bench`: throughput with a full-size ViT-B/32 whose weights are drawn at random when
//! the benchmark starts (a model's speed does not depend on its weight values, so no download is
//! needed), plus indexing, re-tagging and search on synthetic libraries.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use clap::{Args, ValueEnum};

use crate::model::ClipModel;
use crate::model::config::ClipConfig;

/// What to measure.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum BenchPart {
    /// The image and text encoders alone.
    Model,
    /// The same through candle-transformers' `clip` module as shipped, for comparison.
    Baseline,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure (repeatable).
    #[arg(long = "part", value_enum, default_values_t = [BenchPart::Model])]
    pub parts: Vec<BenchPart>,
    /// Image batch sizes to time.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
    pub batches: Vec<usize>,
    /// Seconds to spend on each measurement (after one warm-up batch).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Prompts per text batch.
    #[arg(long, default_value_t = 64)]
    pub prompts: usize,
}

/// Floating-point operations of one image through the vision tower (patch embedding, every
/// layer's projections, attention and MLP; the negligible norms and softmax left out).
pub fn vision_flops(config: &ClipConfig) -> f64 {
    let v = &config.vision;
    let (d, i) = (
        v.encoder.hidden_size as f64,
        v.encoder.intermediate_size as f64,
    );
    let t = v.num_positions() as f64;
    let patch = (v.patch_size * v.patch_size * v.num_channels) as f64;
    let layer = 2.0 * t * d * (4.0 * d + 2.0 * i) + 4.0 * t * t * d;
    2.0 * (t - 1.0) * patch * d
        + v.encoder.num_hidden_layers as f64 * layer
        + 2.0 * d * config.projection_dim as f64
}

/// Runs `step` (which handles `per_step` items) repeatedly for about `seconds` after a warm-up;
/// returns items per second.
fn throughput(
    seconds: f64,
    per_step: usize,
    mut step: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    step()?;
    let budget = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut items = 0usize;
    while started.elapsed() < budget || items == 0 {
        step()?;
        items += per_step;
    }
    Ok(items as f64 / started.elapsed().as_secs_f64())
}

/// Token rows as short tag prompts have them (`a photo of a dog.`: 8 tokens with start and end),
/// or padded to the full 77-token context.
fn prompt_rows(count: usize, length: usize) -> Vec<Vec<u32>> {
    (0..count)
        .map(|p| {
            let mut row = vec![49406];
            row.extend((1..length - 1).map(|t| 320 + ((p * 31 + t * 7) % 20000) as u32));
            row.push(49407);
            row
        })
        .collect()
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let config = ClipConfig::vit_base_patch32();
    let threads = candle_core::utils::get_num_threads();
    println!("cliptag bench: ViT-B/32 with random weights, {threads} threads");
    let started = Instant::now();
    let weights = crate::model::clip::random_weights(&config, 7)?;
    println!(
        "  random weights drawn in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let flops = vision_flops(&config);
    for part in &args.parts {
        match part {
            BenchPart::Model => {
                let model = ClipModel::load(config.clone(), &weights)?;
                println!("image encoder ({:.2} GFLOP per image):", flops / 1e9);
                for &batch in &args.batches {
                    let pixels = Tensor::randn(0f32, 1.0, (batch, 3, 224, 224), &Device::Cpu)?;
                    let rate = throughput(args.seconds, batch, || {
                        model.image_features(&pixels)?;
                        Ok(())
                    })?;
                    println!(
                        "  batch {batch:>3}: {rate:>7.2} images/s  {:>6.1} GFLOP/s",
                        rate * flops / 1e9
                    );
                }
                println!("text encoder ({} prompts per batch):", args.prompts);
                for (what, length) in [("8-token tag prompts", 8), ("padded to 77 tokens", 77)] {
                    let rows = prompt_rows(args.prompts, length);
                    let rate = throughput(args.seconds, rows.len(), || {
                        model.text_features(&rows)?;
                        Ok(())
                    })?;
                    println!("  {what}: {rate:>8.1} prompts/s");
                }
            }
            BenchPart::Baseline => {
                use candle_transformers::models::clip;
                let vb = candle_nn::VarBuilder::from_tensors(
                    weights.0.clone(),
                    DType::F32,
                    &Device::Cpu,
                );
                let model = clip::ClipModel::new(vb, &clip::ClipConfig::vit_base_patch32())?;
                println!("candle-transformers clip as shipped, image encoder:");
                for &batch in &args.batches {
                    let pixels = Tensor::randn(0f32, 1.0, (batch, 3, 224, 224), &Device::Cpu)?;
                    let rate = throughput(args.seconds, batch, || {
                        Device::Cpu.with_context(|| model.get_image_features(&pixels))?;
                        Ok(())
                    })?;
                    println!(
                        "  batch {batch:>3}: {rate:>7.2} images/s  {:>6.1} GFLOP/s",
                        rate * flops / 1e9
                    );
                }
                let rows = prompt_rows(args.prompts, 77);
                let ids = Tensor::new(rows, &Device::Cpu)?;
                let rate = throughput(args.seconds, args.prompts, || {
                    Device::Cpu.with_context(|| model.get_text_features(&ids))?;
                    Ok(())
                })?;
                println!("  text, padded to 77 tokens: {rate:>8.1} prompts/s");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
