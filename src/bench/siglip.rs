//! SigLIP 2 beside ViT-B/32: the image and text encoders of `siglip2-base-patch32-256` and
//! `siglip2-base-patch16-224` with random weights, timed in interleaved rounds against CLIP's
//! ViT-B/32 (machines drift, so only ratios measured side by side mean anything), then end-to-end
//! indexing of the generated JPEGs with each.

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::{BenchArgs, Report, median, random_engine, throughput, tokenizer_path};
use crate::model::config::{SiglipConfig, VisionConfig};
use crate::model::{
    Embedder, Engine, PreprocessConfig, SiglipModel, SiglipTokenizer, Tokenizer, Towers,
};

/// Floating-point operations of one image through a SigLIP vision tower: the patch embedding,
/// every layer, and the attention-pooling head (one query over all patches, then its MLP).
pub fn siglip_vision_flops(v: &VisionConfig) -> f64 {
    let (d, i) = (
        v.encoder.hidden_size as f64,
        v.encoder.intermediate_size as f64,
    );
    let t = (v.grid() * v.grid()) as f64;
    let patch = (v.patch_size * v.patch_size * v.num_channels) as f64;
    let layer = 2.0 * t * d * (4.0 * d + 2.0 * i) + 4.0 * t * t * d;
    let head = 2.0 * t * d * 2.0 * d + 4.0 * t * d + 2.0 * d * d + 4.0 * d * i;
    2.0 * t * patch * d + v.encoder.num_hidden_layers as f64 * layer + head
}

/// A SigLIP engine with random weights and SigLIP's own preprocessing at its image size.
fn siglip_engine(config: SiglipConfig, name: &str) -> anyhow::Result<Engine> {
    let size = config.vision.image_size as u32;
    let tokenizer = SiglipTokenizer::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-siglip/tokenizer.json"),
        config.text.max_position_embeddings,
        config.pad_token_id,
    )?;
    Ok(Engine::from_parts(
        Towers::Siglip(SiglipModel::random(config, 11)?),
        Tokenizer::Siglip(tokenizer),
        PreprocessConfig::siglip(size),
        name.into(),
    ))
}

pub(super) fn siglip_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let clip = Arc::new(random_engine(&tokenizer_path(args))?);
    let clip_flops = super::model::vision_flops(&crate::model::ClipConfig::vit_base_patch32());
    let mut models: Vec<(&str, Arc<Engine>, f64, usize)> =
        vec![("ViT-B/32 (CLIP)", clip, clip_flops, 224)];
    for (name, config) in [
        (
            "SigLIP 2 B/32-256",
            SiglipConfig::siglip2_base_patch32_256(),
        ),
        (
            "SigLIP 2 B/16-224",
            SiglipConfig::siglip2_base_patch16_224(),
        ),
    ] {
        let flops = siglip_vision_flops(&config.vision);
        let size = config.vision.image_size;
        models.push((name, Arc::new(siglip_engine(config, name)?), flops, size));
    }
    for (name, _, flops, size) in &models {
        println!(
            "{name}: {:.2} GFLOP per {size}×{size} image, random weights",
            flops / 1e9
        );
    }
    const ROUNDS: usize = 3;
    println!("image encoders, {ROUNDS} interleaved rounds, median images/s:");
    for &batch in &args.batches {
        let mut rates = vec![Vec::new(); models.len()];
        for _ in 0..ROUNDS {
            for (k, (_, engine, _, size)) in models.iter().enumerate() {
                let pixels = Tensor::randn(0f32, 1.0, (batch, 3, *size, *size), &Device::Cpu)?;
                rates[k].push(throughput(args.seconds / ROUNDS as f64, batch, || {
                    engine.image_features(&pixels)?;
                    Ok(())
                })?);
            }
        }
        let medians: Vec<f64> = rates.iter_mut().map(|r| median(r)).collect();
        for (k, (name, _, flops, _)) in models.iter().enumerate() {
            report.line(
                format!(
                    "  batch {batch:>3} {name:<18} {:>7.2} images/s  {:>6.1} GFLOP/s  {:.2}× ViT-B/32's time per image",
                    medians[k],
                    medians[k] * flops / 1e9,
                    medians[0] / medians[k]
                ),
                serde_json::json!({"what": "siglip_image_encoder", "model": name, "batch": batch, "images_per_s": medians[k], "time_vs_vit_b32": medians[0] / medians[k]}),
            );
        }
    }
    if !args.no_text {
        println!(
            "text encoders, {} prompts (CLIP padded to the longest, 8 tokens; SigLIP to 64):",
            args.prompts
        );
        let prompts: Vec<String> = (0..args.prompts)
            .map(|p| format!("a photo of a thing {p}."))
            .collect();
        for (name, engine, _, _) in &models {
            let rate = throughput(args.seconds / ROUNDS as f64, prompts.len(), || {
                engine.embed_texts(&prompts)?;
                Ok(())
            })?;
            report.line(
                format!("  {name:<18} {rate:>8.1} prompts/s"),
                serde_json::json!({"what": "siglip_text_encoder", "model": name, "prompts_per_s": rate}),
            );
        }
    }
    let dir = super::photos::photo_folder(args)?;
    println!("end to end, the JPEG folder:");
    for (name, engine, _, _) in &models {
        println!(" {name}:");
        let engine: Arc<dyn Embedder> = engine.clone();
        super::library::end_to_end(args, "JPEG", &dir, &engine, None, report)?;
    }
    Ok(())
}
