//! The CLIP engine equals the reference implementation (transformers' CLIPModel,
//! CLIPImageProcessor and CLIPTokenizer) on the fixtures, and fails cleanly on bad input.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use cliptag::imaging::{self, preprocess};
use cliptag::model::clip::{ClipModel, MemoryWeights, tensor_shapes};
use cliptag::model::config::{Activation, ClipConfig};
use cliptag::model::{ClipTokenizer, Embedder, Engine, ModelFiles};
use serde_json::Value;

use crate::naive_clip::NaiveClip;
use crate::support::*;

/// The tiny CLIP in f32, whatever this CPU embeds in by default: the reference is f32's
/// (reduced precisions are held to theirs in `precision.rs`).
fn tiny_engine() -> Engine {
    let files = ModelFiles::from_dir(&tiny_clip()).expect("the tiny model folder is complete");
    cliptag::model::matmul::loading_in(cliptag::model::matmul::Precision::F32, || {
        Engine::from_files(&files, "tiny".into())
    })
    .expect("the tiny model loads")
}

fn reference_ids(reference: &HashMap<String, Tensor>) -> Vec<Vec<u32>> {
    reference["input_ids"]
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap()
}

#[test]
fn tokenizer_matches_every_reference_case() {
    let tokenizer = ClipTokenizer::from_file(&tiny_clip().join("tokenizer.json"), 77).unwrap();
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("clip-tokenizer/cases.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cases.len(), 101);
    let mut mismatches = Vec::new();
    for case in &cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let want_77: Vec<u32> = serde_json::from_value(case["ids_max_length_77"].clone()).unwrap();
        let got = tokenizer.encode(text).unwrap();
        let got_77 = tokenizer.encode_padded(text).unwrap();
        if got != want || got_77 != want_77 {
            mismatches.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn image_embeddings_from_reference_pixels_match_reference() {
    let reference = reference();
    let engine = tiny_engine();
    let raw = engine.image_features(&reference["pixel_values"]).unwrap();
    let raw_diff = max_abs_diff(&rows(&raw), &rows(&reference["image_embeds_raw"]));
    assert!(raw_diff <= 1e-4, "raw image features differ by {raw_diff}");
    let normed = engine
        .embed_pixel_tensor(&reference["pixel_values"])
        .unwrap();
    let diff = max_abs_diff(&normed, &rows(&reference["image_embeds"]));
    assert!(diff <= 1e-4, "image embeddings differ by {diff}");
}

#[test]
fn text_embeddings_from_reference_ids_match_reference() {
    let reference = reference();
    let engine = tiny_engine();
    let ids = reference_ids(&reference);
    let raw = engine.text_features(&ids).unwrap();
    let raw_diff = max_abs_diff(&rows(&raw), &rows(&reference["text_embeds_raw"]));
    assert!(raw_diff <= 1e-4, "raw text features differ by {raw_diff}");
    let normed = engine.embed_token_rows(&ids).unwrap();
    let diff = max_abs_diff(&normed, &rows(&reference["text_embeds"]));
    assert!(diff <= 1e-4, "text embeddings differ by {diff}");
}

#[test]
fn own_tokenizer_padded_to_longest_gives_reference_text_embeddings() {
    let reference = reference();
    let engine = tiny_engine();
    let prompts: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(tiny_clip().join("prompts.json")).unwrap())
            .unwrap();
    // Our own ids, padded to 77, are the reference ids.
    let ours: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| engine.tokenizer().encode_padded(p).unwrap())
        .collect();
    assert_eq!(ours, reference_ids(&reference));
    // Padding only to the longest prompt of a batch (here without the 77-token one) gives the
    // same embeddings.
    let short: Vec<String> = prompts[..7].to_vec();
    let rows_short = engine.tokenizer().encode_batch(&short).unwrap();
    assert!(
        rows_short[0].len() < 77,
        "the batch was padded to {}",
        rows_short[0].len()
    );
    let got = engine.embed_texts(&short).unwrap();
    let want = rows(&reference["text_embeds"]);
    let diff = max_abs_diff(&got, &want[..7]);
    assert!(diff <= 1e-4, "text embeddings differ by {diff}");
}

#[test]
fn logits_match_reference() {
    let reference = reference();
    let engine = tiny_engine();
    let images = Tensor::new(
        engine
            .embed_pixel_tensor(&reference["pixel_values"])
            .unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    let texts = Tensor::new(
        engine.embed_token_rows(&reference_ids(&reference)).unwrap(),
        &Device::Cpu,
    )
    .unwrap();
    assert!(
        (engine.logit_scale() - 14.284_856).abs() < 1e-4,
        "{}",
        engine.logit_scale()
    );
    let logits =
        (images.matmul(&texts.t().unwrap()).unwrap() * engine.logit_scale() as f64).unwrap();
    let diff = max_abs_diff(&rows(&logits), &rows(&reference["logits_per_image"]));
    assert!(diff <= 1e-3, "logits differ by {diff}");
}

/// (file, row in the reference tensor) for every fixture photo with reference pixel values.
fn reference_images() -> Vec<(std::path::PathBuf, Tensor)> {
    let reference = reference();
    let listing: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("images/images.json")).unwrap(),
    )
    .unwrap();
    let mut out: Vec<_> = listing
        .iter()
        .map(|entry| {
            let index = entry["reference_index"].as_u64().unwrap() as usize;
            (
                fixtures()
                    .join("images")
                    .join(entry["file"].as_str().unwrap()),
                reference["pixel_values"].get(index).unwrap(),
            )
        })
        .collect();
    for (name, tensor) in load_tensors(&fixtures().join("odd-images/reference.safetensors")) {
        out.push((
            fixtures().join("odd-images").join(name),
            tensor.get(0).unwrap(),
        ));
    }
    out
}

#[test]
fn own_preprocessing_matches_reference_pixels() {
    let engine = tiny_engine();
    let images = reference_images();
    assert_eq!(images.len(), 15);
    let mut report = Vec::new();
    for (path, want) in &images {
        let decoded = imaging::decode_file(path, None).unwrap();
        let pixels = preprocess(&decoded.image, engine.preprocess_config());
        let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(pixels.data.len(), want.len(), "{}", path.display());
        let diffs: Vec<f32> = pixels
            .data
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .collect();
        let max = diffs.iter().cloned().fold(0.0, f32::max);
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
        report.push(format!(
            "{}: max {max:.4} mean {mean:.5}",
            path.file_name().unwrap().to_string_lossy()
        ));
        assert!(max <= 0.13 && mean <= 0.008, "{}", report.join("\n"));
    }
    eprintln!("{}", report.join("\n"));
}

#[test]
fn image_files_embed_like_the_reference() {
    let reference = reference();
    let engine = tiny_engine();
    let want = rows(&reference["image_embeds"]);
    let listing: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("images/images.json")).unwrap(),
    )
    .unwrap();
    for entry in &listing {
        let path = fixtures()
            .join("images")
            .join(entry["file"].as_str().unwrap());
        let index = entry["reference_index"].as_u64().unwrap() as usize;
        let decoded = imaging::decode_file(&path, None).unwrap();
        let display = entry["display_size"].as_array().unwrap();
        assert_eq!(
            (decoded.display_size.0 as u64, decoded.display_size.1 as u64),
            (display[0].as_u64().unwrap(), display[1].as_u64().unwrap()),
            "{}",
            path.display()
        );
        let pixels = preprocess(&decoded.image, engine.preprocess_config());
        let got = engine.embed_images(&[pixels]).unwrap().remove(0);
        let cos = cosine(&got, &want[index]);
        assert!(cos >= 0.9998, "{}: cosine {cos}", path.display());
    }
}

#[test]
fn a_batch_split_among_threads_embeds_each_photo_as_it_would_alone() {
    let engine = tiny_engine();
    // 11 photos: on two threads 5 and 6, each thread's share taken in passes of at most 4.
    let pixels: Vec<_> = reference_images()
        .iter()
        .cycle()
        .take(11)
        .map(|(path, _)| {
            let decoded = imaging::decode_file(path, None).unwrap();
            preprocess(&decoded.image, engine.preprocess_config())
        })
        .collect();
    let together = engine.embed_images(&pixels).unwrap();
    for (i, p) in pixels.iter().enumerate() {
        let alone = engine
            .embed_images(std::slice::from_ref(p))
            .unwrap()
            .remove(0);
        assert!(max_abs(&together[i], &alone) <= 1e-5, "photo {i}");
    }
    let prompts: Vec<String> = ["a dog", "a cat", "a mountain lake"]
        .iter()
        .map(|p| format!("a photo of {p}."))
        .collect();
    let together = engine.embed_texts(&prompts).unwrap();
    for (i, p) in prompts.iter().enumerate() {
        let alone = engine
            .embed_texts(std::slice::from_ref(p))
            .unwrap()
            .remove(0);
        assert!(max_abs(&together[i], &alone) <= 1e-5, "prompt {i}");
    }
}

/// A model shaped unlike the fixture: other widths, patch 16, 64-pixel images, `act`.
fn second_config(act: &str) -> String {
    format!(
        r#"{{
  "architectures": ["CLIPModel"], "model_type": "clip", "projection_dim": 20,
  "logit_scale_init_value": 2.6592,
  "text_config": {{"hidden_size": 24, "intermediate_size": 40, "num_hidden_layers": 2,
    "num_attention_heads": 3, "max_position_embeddings": 77, "vocab_size": 49408,
    "hidden_act": "{act}", "layer_norm_eps": 1e-05, "eos_token_id": 2}},
  "vision_config": {{"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 3,
    "num_attention_heads": 4, "image_size": 64, "patch_size": 16, "num_channels": 3,
    "hidden_act": "{act}", "layer_norm_eps": 1e-05}}
}}"#
    )
}

/// Deterministic weights large enough that every nonlinearity matters.
fn spread_weights(config: &ClipConfig) -> HashMap<String, Tensor> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    };
    tensor_shapes(config)
        .into_iter()
        .map(|(name, shape)| {
            let count: usize = shape.iter().product();
            let (offset, spread) = if name == "logit_scale" {
                (2.6592, 0.0)
            } else if (name.contains("norm") || name.contains("layrnorm"))
                && name.ends_with("weight")
            {
                (1.0, 0.3)
            } else if name.ends_with("bias") {
                (0.0, 0.2)
            } else {
                (0.0, 0.6)
            };
            let values: Vec<f32> = (0..count)
                .map(|_| (offset + spread * next()) as f32)
                .collect();
            (name, Tensor::from_vec(values, shape, &Device::Cpu).unwrap())
        })
        .collect()
}

fn write_model(dir: &Path, config_json: &str, weights: &HashMap<String, Tensor>) {
    std::fs::write(dir.join("config.json"), config_json).unwrap();
    candle_core::safetensors::save(weights, dir.join("model.safetensors")).unwrap();
    std::fs::copy(
        tiny_clip().join("tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
}

#[test]
fn second_config_loads_and_each_activation_matches_its_definition() {
    let config = ClipConfig::from_json(&second_config("gelu")).unwrap();
    assert_eq!(config.vision.encoder.hidden_act, Activation::Gelu);
    let weights = spread_weights(&config);
    let pixels: Vec<f32> = (0..3 * 64 * 64)
        .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
        .collect();
    let pixel_tensor = Tensor::from_vec(pixels.clone(), (1, 3, 64, 64), &Device::Cpu).unwrap();
    let pixels64: Vec<f64> = pixels.iter().map(|v| *v as f64).collect();

    // The plain double-precision reference under each activation.
    let naive_image = |act: &str| -> Vec<f32> {
        let config = ClipConfig::from_json(&second_config(act)).unwrap();
        let naive = NaiveClip {
            weights: &weights,
            config: &config,
        };
        naive
            .image_features(&pixels64)
            .iter()
            .map(|v| *v as f32)
            .collect()
    };
    let want = [naive_image("gelu"), naive_image("quick_gelu")];
    let scale = want[0].iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let tolerance = 1e-4 * scale;
    let apart = max_abs(&want[0], &want[1]);
    assert!(
        apart > 50.0 * tolerance,
        "the two activations barely differ here ({apart})"
    );

    for (i, act) in ["gelu", "quick_gelu"].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        write_model(dir.path(), &second_config(act), &weights);
        let files = ModelFiles::from_dir(dir.path()).unwrap();
        let engine =
            cliptag::model::matmul::loading_in(cliptag::model::matmul::Precision::F32, || {
                Engine::from_files(&files, act.into())
            })
            .expect("the second config loads");
        let got = rows(&engine.image_features(&pixel_tensor).unwrap()).remove(0);
        let own = max_abs(&got, &want[i]);
        let other = max_abs(&got, &want[1 - i]);
        assert!(
            own <= tolerance,
            "{act}: image features differ from its definition by {own}"
        );
        assert!(
            other > 10.0 * tolerance,
            "{act}: also matches the other activation ({other})"
        );

        let config = ClipConfig::from_json(&second_config(act)).unwrap();
        let naive = NaiveClip {
            weights: &weights,
            config: &config,
        };
        let ids = engine
            .tokenizer()
            .encode_batch(&["a photo of a dog", "a red car"])
            .unwrap();
        let text = rows(&engine.text_features(&ids).unwrap());
        for (row, got_row) in ids.iter().zip(&text) {
            let want: Vec<f32> = naive.text_features(row).iter().map(|v| *v as f32).collect();
            let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = max_abs(got_row, &want);
            assert!(
                diff <= 1e-4 * scale,
                "{act}: text features differ by {diff}"
            );
        }
    }
}

#[test]
fn random_model_runs_any_batch_size() {
    // Every batch size gives each image the features it has alone: batching must not mix
    // images, drop rows or read padding.
    let config = ClipConfig::from_json(&second_config("quick_gelu")).unwrap();
    let model = ClipModel::load(config.clone(), &MemoryWeights(spread_weights(&config))).unwrap();
    let images = 5;
    let values: Vec<f32> = (0..images * 3 * 64 * 64)
        .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
        .collect();
    let pixels = Tensor::from_vec(values, (images, 3, 64, 64), &Device::Cpu).unwrap();
    let alone: Vec<Vec<f32>> = (0..images)
        .map(|i| {
            let one = model
                .image_features(&pixels.narrow(0, i, 1).unwrap())
                .unwrap();
            assert_eq!(one.dims(), &[1, 20]);
            one.squeeze(0).unwrap().to_vec1::<f32>().unwrap()
        })
        .collect();
    assert!(
        max_abs(&alone[0], &alone[1]) > 1e-3,
        "different images gave the same features"
    );
    for batch in [2, 3, 5] {
        let features = model
            .image_features(&pixels.narrow(0, 0, batch).unwrap())
            .unwrap();
        assert_eq!(features.dims(), &[batch, 20]);
        for (i, row) in rows(&features).iter().enumerate() {
            assert!(row.iter().all(|v| v.is_finite()));
            let diff = max_abs(row, &alone[i]);
            assert!(
                diff < 1e-4,
                "batch {batch}, image {i}: {diff} from the image alone"
            );
        }
    }
}

#[test]
fn cli_embed_prints_reference_embeddings() {
    let reference = reference();
    let model = tiny_clip();
    let image = fixtures().join("images/chelsea.png");
    // The reference is f32's, whatever this CPU embeds in by default.
    let output = cliptag_with_env(
        &[
            "embed",
            "--model",
            model.to_str().unwrap(),
            "--text",
            "a photo of a cat.",
            image.to_str().unwrap(),
        ],
        &[("CLIPTAG_PRECISION", "f32")],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["kind"], "text");
    assert_eq!(lines[0]["input"], "a photo of a cat.");
    assert_eq!(lines[1]["kind"], "image");
    let text: Vec<f32> = serde_json::from_value(lines[0]["embedding"].clone()).unwrap();
    let img: Vec<f32> = serde_json::from_value(lines[1]["embedding"].clone()).unwrap();
    let want_text = rows(&reference["text_embeds"]).remove(0);
    let want_img = rows(&reference["image_embeds"]).remove(1);
    assert!(max_abs(&text, &want_text) <= 1e-4);
    assert!(cosine(&img, &want_img) >= 0.9998);
}

#[test]
fn cli_tokenize_prints_untruncated_ids() {
    let model = tiny_clip();
    let long = "a very ".repeat(60);
    let output = cliptag(&[
        "tokenize",
        "--model",
        model.to_str().unwrap(),
        "a photo of a cat.",
        &long,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output.stdout);
    assert_eq!(lines[0]["text"], "a photo of a cat.");
    let ids: Vec<u32> = serde_json::from_value(lines[0]["ids"].clone()).unwrap();
    assert_eq!(ids.first(), Some(&49406));
    assert_eq!(ids.last(), Some(&49407));
    let long_ids: Vec<u32> = serde_json::from_value(lines[1]["ids"].clone()).unwrap();
    assert_eq!(
        long_ids.len(),
        122,
        "untruncated: 120 words plus start and end"
    );
}

/// A copy of the tiny model in a temporary folder, for breaking one file at a time.
fn model_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(tiny_clip().join(name), dir.path().join(name)).unwrap();
    }
    dir
}

#[test]
fn missing_model_folder_is_a_clean_error() {
    let output = cliptag(&["embed", "--model", "/no/such/model", "--text", "x"]);
    assert_clean_failure(&output, &["/no/such/model", "not found"]);
    let dir = model_copy();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let output = cliptag(&[
        "embed",
        "--model",
        dir.path().to_str().unwrap(),
        "--text",
        "x",
    ]);
    assert_clean_failure(&output, &["tokenizer.json"]);
}

#[test]
fn config_with_missing_fields_is_a_clean_error() {
    let dir = model_copy();
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let mut json: Value = serde_json::from_str(&config).unwrap();
    json["vision_config"]
        .as_object_mut()
        .unwrap()
        .remove("patch_size");
    std::fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
    let output = cliptag(&[
        "embed",
        "--model",
        dir.path().to_str().unwrap(),
        "--text",
        "x",
    ]);
    assert_clean_failure(&output, &["config.json", "patch_size"]);

    std::fs::write(dir.path().join("config.json"), "{\"text_config\": ").unwrap();
    let output = cliptag(&[
        "embed",
        "--model",
        dir.path().to_str().unwrap(),
        "--text",
        "x",
    ]);
    assert_clean_failure(&output, &["config.json", "not a valid model config"]);
}

#[test]
fn truncated_weights_are_a_clean_error() {
    let dir = model_copy();
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let output = cliptag(&[
        "embed",
        "--model",
        dir.path().to_str().unwrap(),
        "--text",
        "x",
    ]);
    assert_clean_failure(
        &output,
        &["model.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn weights_of_the_wrong_shape_are_a_clean_error() {
    let dir = model_copy();
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    let mut json: Value = serde_json::from_str(&config).unwrap();
    json["vision_config"]["intermediate_size"] = 65.into();
    std::fs::write(dir.path().join("config.json"), json.to_string()).unwrap();
    let output = cliptag(&[
        "embed",
        "--model",
        dir.path().to_str().unwrap(),
        "--text",
        "x",
    ]);
    assert_clean_failure(&output, &["model.safetensors", "fc1.weight", "[65, 32]"]);
}

#[test]
fn tokenizer_that_is_not_json_is_a_clean_error() {
    let dir = model_copy();
    std::fs::write(dir.path().join("tokenizer.json"), "this is not json").unwrap();
    let output = cliptag(&[
        "embed",
        "--model",
        dir.path().to_str().unwrap(),
        "--text",
        "x",
    ]);
    assert_clean_failure(&output, &["tokenizer.json", "not a valid tokenizer.json"]);
}

#[test]
fn unreadable_images_are_clean_errors_naming_the_file() {
    let model = tiny_clip();
    let odd = fixtures().join("odd-images");
    let good = fixtures().join("images/coffee.jpg");
    for (name, reason) in [
        ("zero_bytes.jpg", "empty file"),
        ("text_file.jpg", "not an image"),
        ("truncated_60pct.jpg", "truncated"),
        ("bomb_60000x60000.png", "60000×60000"),
    ] {
        let path = odd.join(name);
        let output = cliptag(&[
            "embed",
            "--model",
            model.to_str().unwrap(),
            path.to_str().unwrap(),
            good.to_str().unwrap(),
        ]);
        assert_clean_failure(&output, &[name, reason]);
        // The good image after it is still embedded.
        assert_eq!(json_lines(&output.stdout).len(), 1, "{name}");
    }
    let output = cliptag(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        "/no/such/photo.jpg",
    ]);
    assert_clean_failure(&output, &["/no/such/photo.jpg", "No such file"]);
}

#[test]
fn a_pytorch_checkpoint_loads_like_its_safetensors_twin() {
    // tests/fixtures/pth holds one tiny model saved both ways (see make.py there).
    let source = fixtures().join("pth");
    let mut features = Vec::new();
    for weights in ["model.safetensors", "pytorch_model.bin"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(source.join("config.json"), dir.path().join("config.json")).unwrap();
        std::fs::copy(source.join(weights), dir.path().join(weights)).unwrap();
        std::fs::copy(
            tiny_clip().join("tokenizer.json"),
            dir.path().join("tokenizer.json"),
        )
        .unwrap();
        let files = ModelFiles::from_dir(dir.path()).unwrap();
        assert!(files.weights.ends_with(weights));
        let engine = Engine::from_files(&files, weights.into()).expect("the checkpoint loads");
        let pixels = Tensor::ones((2, 3, 32, 32), DType::F32, &Device::Cpu).unwrap();
        features.push(rows(&engine.image_features(&pixels).unwrap()));
    }
    assert_eq!(features[0], features[1]);
    assert_eq!(features[0][0].len(), 8);
}
