//! Half precision (`CLIPTAG_PRECISION=f16`): taken only where the CPU has AVX-512 FP16, with
//! embeddings within cosine 0.999 of f32's on every fixture photo; f32 everywhere else.

use cliptag::imaging::{self, preprocess};
use cliptag::model::matmul::{self, Precision};
use cliptag::model::{Embedder, Engine, ModelFiles};

use crate::support::*;

fn tiny_engine_in(precision: Precision) -> Engine {
    let files = ModelFiles::from_dir(&tiny_clip()).unwrap();
    matmul::loading_in(precision, || Engine::from_files(&files, "tiny".into())).unwrap()
}

/// Every fixture photo and odd image, decoded and preprocessed for `engine`.
fn fixture_pixels(engine: &Engine) -> Vec<(String, imaging::Pixels)> {
    let mut paths = Vec::new();
    for folder in ["images", "odd-images"] {
        for entry in std::fs::read_dir(fixtures().join(folder)).unwrap() {
            let path = entry.unwrap().path();
            if !path
                .extension()
                .is_some_and(|e| e == "json" || e == "safetensors")
            {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .filter_map(|path| {
            let decoded = imaging::decode_file(path, None).ok()?;
            Some((
                path.display().to_string(),
                preprocess(&decoded.image, engine.preprocess_config()),
            ))
        })
        .collect()
}

#[test]
fn half_precision_is_taken_only_where_the_cpu_runs_it() {
    let half = tiny_engine_in(Precision::F16);
    let want = if matmul::half_runs() {
        Precision::F16
    } else {
        Precision::F32
    };
    assert_eq!(half.precision(), want);
    assert_eq!(tiny_engine_in(Precision::F32).precision(), Precision::F32);
}

#[test]
fn half_precision_embeds_every_fixture_photo_within_cosine_0999_of_f32() {
    let full = tiny_engine_in(Precision::F32);
    let half = tiny_engine_in(Precision::F16);
    let photos = fixture_pixels(&full);
    assert!(
        photos.len() >= 12,
        "only {} fixture images decode",
        photos.len()
    );
    let pixels: Vec<_> = photos.iter().map(|(_, p)| p.clone()).collect();
    let want = full.embed_images(&pixels).unwrap();
    let got = half.embed_images(&pixels).unwrap();
    let mut report = Vec::new();
    for (((name, _), w), g) in photos.iter().zip(&want).zip(&got) {
        let cos = cosine(g, w);
        report.push(format!("{name}: {cos:.6}"));
        assert!(cos >= 0.999, "{name}: cosine {cos}\n{}", report.join("\n"));
        if half.precision() == Precision::F32 {
            // The fallback is f32 itself.
            assert_eq!(g, w, "{name}");
        }
    }
    if half.precision() == Precision::F16 {
        // The half-precision path ran: its embeddings are not f32's to the last bit.
        assert!(got != want, "half precision gave f32's embeddings exactly");
    }
    eprintln!("{}", report.join("\n"));
    let prompts = ["a photo of a cat.", "a photo of a mountain lake at dawn."];
    let prompts: Vec<String> = prompts.iter().map(|p| p.to_string()).collect();
    let want = full.embed_texts(&prompts).unwrap();
    let got = half.embed_texts(&prompts).unwrap();
    for (w, g) in want.iter().zip(&got) {
        assert!(cosine(g, w) >= 0.999, "text cosine {}", cosine(g, w));
    }
}

#[test]
fn cliptag_precision_f16_reaches_the_command_line() {
    let model = tiny_clip();
    let image = fixtures().join("images/chelsea.png");
    let args = [
        "embed",
        "--model",
        model.to_str().unwrap(),
        image.to_str().unwrap(),
    ];
    let embedding = |precision: &str| -> Vec<f32> {
        let output = cliptag_with_env(&args, &[("CLIPTAG_PRECISION", precision)]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines = json_lines(&output.stdout);
        serde_json::from_value(lines[0]["embedding"].clone()).unwrap()
    };
    let (full, half) = (embedding("f32"), embedding("f16"));
    assert!(cosine(&half, &full) >= 0.999);
    assert_eq!(half != full, matmul::half_runs());
}
