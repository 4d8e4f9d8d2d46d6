//! The image and text encoders alone, ours and candle-transformers' as shipped.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use super::{BenchArgs, Report, throughput};
use crate::model::ClipModel;
use crate::model::clip::MemoryWeights;
use crate::model::config::ClipConfig;
use crate::model::matmul::{self, Precision};

/// Floating-point operations of one image through the vision tower as cliptag runs it (patch
/// embedding, every layer's projections, attention and MLP; the negligible norms and softmax
/// left out). The last layer's output projection and MLP run on the class token alone, the
/// only row the tower's output is pooled from.
pub fn vision_flops(config: &ClipConfig) -> f64 {
    let v = &config.vision;
    let (d, i) = (
        v.encoder.hidden_size as f64,
        v.encoder.intermediate_size as f64,
    );
    let t = v.num_positions() as f64;
    let patch = (v.patch_size * v.patch_size * v.num_channels) as f64;
    let layer = 2.0 * t * d * (4.0 * d + 2.0 * i) + 4.0 * t * t * d;
    let pooled_away = 2.0 * (t - 1.0) * d * (d + 2.0 * i);
    2.0 * (t - 1.0) * patch * d + v.encoder.num_hidden_layers as f64 * layer - pooled_away
        + 2.0 * d * config.projection_dim as f64
}

/// Token rows as short tag prompts have them (`a photo of a dog.`: 8 tokens with start and end),
/// or padded to the full 77-token context.
pub(super) fn prompt_rows(count: usize, length: usize) -> Vec<Vec<u32>> {
    (0..count)
        .map(|p| {
            let mut row = vec![49406];
            row.extend((1..length - 1).map(|t| 320 + ((p * 31 + t * 7) % 20000) as u32));
            row.push(49407);
            row
        })
        .collect()
}

pub(super) fn model_part(args: &BenchArgs, report: &Report, baseline: bool) -> anyhow::Result<()> {
    let config = ClipConfig::vit_base_patch32();
    let flops = vision_flops(&config);
    let started = Instant::now();
    let weights = crate::model::clip::random_weights(&config, 7)?;
    println!(
        "ViT-B/32, random weights drawn in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let engine = if baseline {
        "candle-transformers clip"
    } else {
        "cliptag"
    };
    println!(
        "{engine} image encoder ({:.2} GFLOP per image):",
        flops / 1e9
    );
    if baseline {
        use candle_transformers::models::clip;
        let vb = candle_nn::VarBuilder::from_tensors(weights.0.clone(), DType::F32, &Device::Cpu);
        let model = clip::ClipModel::new(vb, &clip::ClipConfig::vit_base_patch32())?;
        for &batch in &args.batches {
            let pixels = Tensor::randn(0f32, 1.0, (batch, 3, 224, 224), &Device::Cpu)?;
            let rate = throughput(args.seconds, batch, || {
                Device::Cpu.with_context(|| model.get_image_features(&pixels))?;
                Ok(())
            })?;
            report.line(
                format!("  batch {batch:>3}: {rate:>7.2} images/s  {:>6.1} GFLOP/s", rate * flops / 1e9),
                serde_json::json!({"what": "baseline_image_encoder", "batch": batch, "images_per_s": rate}),
            );
        }
        if !args.no_text {
            let ids = Tensor::new(prompt_rows(args.prompts, 77), &Device::Cpu)?;
            let rate = throughput(args.seconds, args.prompts, || {
                Device::Cpu.with_context(|| model.get_text_features(&ids))?;
                Ok(())
            })?;
            report.line(
                format!("  text, {} prompts padded to 77 tokens: {rate:>8.1} prompts/s", args.prompts),
                serde_json::json!({"what": "baseline_text_encoder", "tokens": 77, "prompts_per_s": rate}),
            );
        }
        return Ok(());
    }
    let model = matmul::loading_in(Precision::F32, || ClipModel::load(config.clone(), &weights))?;
    let kernel = matmul::kernel();
    report.line(
        format!(
            "  linear layers: {}",
            kernel.map_or("the gemm crate".to_string(), |k| format!(
                "{k:?} kernel, weights packed at load"
            ))
        ),
        serde_json::json!({"what": "matrix_kernel", "kernel": kernel.map(|k| format!("{k:?}"))}),
    );
    let reduced = reduced_models(report, &config, &weights, &model)?;
    for &batch in &args.batches {
        let pixels = Tensor::randn(0f32, 1.0, (batch, 3, 224, 224), &Device::Cpu)?;
        let rate = image_rate(&model, args, &pixels)?;
        report.line(
            format!("  batch {batch:>3}: {rate:>7.2} images/s  {:>6.1} GFLOP/s", rate * flops / 1e9),
            serde_json::json!({"what": "image_encoder", "batch": batch, "images_per_s": rate, "gflops": rate * flops / 1e9}),
        );
        for (name, reduced) in &reduced {
            // Measured right after f32, batch by batch, so that the machine's drift between
            // the two stays small.
            let reduced_rate = image_rate(reduced, args, &pixels)?;
            report.line(
                format!("  batch {batch:>3}, {name}: {reduced_rate:>7.2} images/s, {:.2}× f32", reduced_rate / rate),
                serde_json::json!({"what": format!("image_encoder_{name}"), "batch": batch, "images_per_s": reduced_rate, "ratio_to_f32": reduced_rate / rate}),
            );
        }
    }
    drop(reduced);
    if !args.no_text {
        println!("cliptag text encoder ({} prompts per batch):", args.prompts);
        for (what, length) in [("8-token tag prompts", 8), ("padded to 77 tokens", 77)] {
            let rows = prompt_rows(args.prompts, length);
            let rate = throughput(args.seconds, rows.len(), || {
                model.text_features(&rows)?;
                Ok(())
            })?;
            report.line(
                format!("  {what}: {rate:>8.1} prompts/s"),
                serde_json::json!({"what": "text_encoder", "tokens": length, "prompts_per_s": rate}),
            );
        }
    }
    Ok(())
}

/// Images per second through `model` for `pixels`.
fn image_rate(model: &ClipModel, args: &BenchArgs, pixels: &Tensor) -> anyhow::Result<f64> {
    let batch = pixels.dim(0)?;
    throughput(args.seconds, batch, || {
        model.image_features(pixels)?;
        Ok(())
    })
}

/// The image encoder with its linear layers in each reduced precision this CPU runs (bf16, f16),
/// named as `CLIPTAG_PRECISION` names it, after reporting how far each one's embeddings are from
/// `f32_model`'s.
fn reduced_models(
    report: &Report,
    config: &ClipConfig,
    weights: &MemoryWeights,
    f32_model: &ClipModel,
) -> anyhow::Result<Vec<(&'static str, ClipModel)>> {
    // Photo-like inputs: smooth random fields, as preprocessed pixels are, not white noise.
    let pixels = (Tensor::randn(0f32, 1.0, (8, 3, 28, 28), &Device::Cpu)?
        .upsample_nearest2d(224, 224)?
        * 0.8)?;
    let reference = crate::model::clip::l2_normalize(&f32_model.image_features(&pixels)?)?;
    let mut models = Vec::new();
    // On CPUs with AMX, bfloat16 layers whose inputs fill whole tiles (all of ViT-B/32's) run
    // on the tiles; the others on AVX-512 BF16.
    let bf16_kernel = if crate::model::matmul::amx::supported() {
        "AMX"
    } else {
        "AVX-512 BF16"
    };
    for (name, precision, extension) in [
        ("bf16", Precision::Bf16, bf16_kernel),
        ("f16", Precision::F16, "AVX-512 FP16"),
    ] {
        if !precision.runs() {
            report.line(
                format!(
                    "  {name}: not on this CPU (no {extension}, or another kernel was chosen); \
                     CLIPTAG_PRECISION={name} runs f32 here"
                ),
                serde_json::json!({"what": "reduced_precision", "precision": name, "runs": false}),
            );
            continue;
        }
        let model = matmul::loading_in(precision, || ClipModel::load(config.clone(), weights))?;
        anyhow::ensure!(model.precision() == precision, "{name} was not taken");
        let got = crate::model::clip::l2_normalize(&model.image_features(&pixels)?)?;
        let cosines: Vec<f32> = (&reference * got)?.sum(1)?.to_vec1()?;
        let worst = cosines.iter().copied().fold(f32::INFINITY, f32::min);
        report.line(
            format!(
                "  {name} ({extension}) loaded; its embeddings against f32's, 8 images: lowest cosine {worst:.6}"
            ),
            serde_json::json!({"what": "reduced_precision", "precision": name, "runs": true, "kernel": extension, "lowest_cosine": worst}),
        );
        models.push((name, model));
    }
    Ok(models)
}

/// The process CPU time, in ms per image, that `engine` takes to embed batches of `batch`
/// images (the median of three batches, after one to warm up).
pub(super) fn encode_cpu_ms(
    engine: &dyn crate::model::Embedder,
    batch: usize,
) -> anyhow::Result<f64> {
    let config = engine.preprocess_config();
    let (width, height) = (config.crop_width, config.crop_height);
    let pixels: Vec<crate::imaging::Pixels> = (0..batch.max(1))
        .map(|i| crate::imaging::Pixels {
            data: (0..3 * width as usize * height as usize)
                .map(|j| ((i * 7 + j) % 251) as f32 / 125.0 - 1.0)
                .collect(),
            width,
            height,
        })
        .collect();
    engine.embed_images(&pixels)?;
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = super::process_cpu_seconds();
        engine.embed_images(&pixels)?;
        times.push((super::process_cpu_seconds() - started) * 1e3 / pixels.len() as f64);
    }
    Ok(super::median(&mut times))
}
