//! Reduced precision (`CLIPTAG_PRECISION=bf16` or `f16`): each taken only where the CPU has its
//! AVX-512 extension (BF16, FP16), with embeddings within cosine 0.999 of f32's on every fixture
//! photo; f32 everywhere else.

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

const REDUCED: [Precision; 2] = [Precision::Bf16, Precision::F16];

#[test]
fn a_reduced_precision_is_taken_only_where_the_cpu_runs_it() {
    for precision in REDUCED {
        let want = if precision.runs() {
            precision
        } else {
            Precision::F32
        };
        assert_eq!(tiny_engine_in(precision).precision(), want);
    }
    assert_eq!(tiny_engine_in(Precision::F32).precision(), Precision::F32);
}

#[test]
fn reduced_precision_embeds_every_fixture_photo_within_cosine_0999_of_f32() {
    let full = tiny_engine_in(Precision::F32);
    let photos = fixture_pixels(&full);
    assert!(
        photos.len() >= 12,
        "only {} fixture images decode",
        photos.len()
    );
    let pixels: Vec<_> = photos.iter().map(|(_, p)| p.clone()).collect();
    let want = full.embed_images(&pixels).unwrap();
    let prompts = ["a photo of a cat.", "a photo of a mountain lake at dawn."];
    let prompts: Vec<String> = prompts.iter().map(|p| p.to_string()).collect();
    let want_texts = full.embed_texts(&prompts).unwrap();
    for precision in REDUCED {
        let reduced = tiny_engine_in(precision);
        let got = reduced.embed_images(&pixels).unwrap();
        let mut report = Vec::new();
        for (((name, _), w), g) in photos.iter().zip(&want).zip(&got) {
            let cos = cosine(g, w);
            report.push(format!("{precision:?} {name}: {cos:.6}"));
            assert!(cos >= 0.999, "{name}: cosine {cos}\n{}", report.join("\n"));
            if reduced.precision() == Precision::F32 {
                // The fallback is f32 itself.
                assert_eq!(g, w, "{name}");
            }
        }
        if reduced.precision() == precision {
            // The reduced path ran: its embeddings are not f32's to the last bit.
            assert!(got != want, "{precision:?} gave f32's embeddings exactly");
        }
        eprintln!("{}", report.join("\n"));
        let got = reduced.embed_texts(&prompts).unwrap();
        for (w, g) in want_texts.iter().zip(&got) {
            let cos = cosine(g, w);
            assert!(cos >= 0.999, "{precision:?} text cosine {cos}");
        }
    }
}

#[test]
fn cliptag_precision_reaches_the_command_line() {
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
    let full = embedding("f32");
    for (name, precision) in [("bf16", Precision::Bf16), ("f16", Precision::F16)] {
        let reduced = embedding(name);
        assert!(cosine(&reduced, &full) >= 0.999, "{name}");
        assert_eq!(reduced != full, precision.runs(), "{name}");
    }
}
