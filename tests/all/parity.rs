//! The parity sweep: photos whose geometry or orientation is easy to get wrong (reduced-size
//! decoding that rounds, two EXIF blocks that disagree, a PNG's EXIF after its pixels, a HEIC
//! turned by `irot`), each embedded by `embed` and by the indexer and compared with the
//! reference pipeline's embedding of the whole photo (tests/fixtures/parity/make.py).

use std::path::PathBuf;

use cliptag::imaging;
use cliptag::model::Embedder;
use serde_json::Value;

use crate::support::*;

fn parity_dir() -> PathBuf {
    fixtures().join("parity")
}

/// Each file of the sweep with the size it is shown at, as the reference pipeline saw it.
fn manifest() -> Vec<(String, (u32, u32))> {
    let text = std::fs::read_to_string(parity_dir().join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let size = e["display_size"].as_array().unwrap();
            (
                e["file"].as_str().unwrap().to_string(),
                (
                    size[0].as_u64().unwrap() as u32,
                    size[1].as_u64().unwrap() as u32,
                ),
            )
        })
        .collect()
}

fn reference(name: &str) -> Vec<f32> {
    let tensors = load_tensors(&parity_dir().join("reference.safetensors"));
    rows(&tensors[name].unsqueeze(0).unwrap()).remove(0)
}

/// Cosine 0.999 tells a one-pixel shift of the crop or a wrong turn from the reference with the
/// tiny model; resampling differences stay above it.
const LIMIT: f32 = 0.999;

/// What `embed` computes: the whole photo, decoded at full size.
#[test]
fn embed_sees_every_photo_of_the_sweep_as_the_reference_does() {
    let engine = tiny_engine();
    let mut wrong = Vec::new();
    let mut worst = (f32::MAX, String::new());
    for (name, shown) in manifest() {
        let decoded = imaging::decode_file(&parity_dir().join(&name), None).unwrap();
        let got = engine
            .embed_images(&[decoded.preprocess(engine.preprocess_config())])
            .unwrap()
            .remove(0);
        let cos = cosine(&got, &reference(&name));
        if cos < worst.0 {
            worst = (cos, name.clone());
        }
        if decoded.display_size != shown || cos < LIMIT {
            wrong.push(format!(
                "{name}: shown {:?} (reference {shown:?}), cosine {cos}",
                decoded.display_size
            ));
        }
    }
    eprintln!("embed: lowest cosine {} ({})", worst.0, worst.1);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// What the indexer stores: large JPEGs decoded at a reduced size, the vector compared with the
/// reference's for the whole photo. The reduced decode is checked to happen, so that the sweep
/// tests what it names.
#[test]
fn the_indexer_stores_every_photo_of_the_sweep_as_the_reference_sees_it() {
    let engine = tiny_engine();
    let files = manifest();
    let reduced = files
        .iter()
        .filter(|(name, _)| {
            imaging::decode_file(
                &parity_dir().join(name),
                Some(engine.preprocess_config().min_short_side()),
            )
            .unwrap()
            .reduced()
        })
        .count();
    assert!(reduced >= 10, "only {reduced} files decode reduced");

    let mut library = TestLibrary::tiny();
    let summary = library.index(&parity_dir());
    assert_eq!(
        (summary.indexed, summary.failed),
        (files.len() as u64, 0),
        "{summary:?}"
    );
    let store = library.store();
    let mut wrong = Vec::new();
    let mut worst = (f32::MAX, "");
    for (name, _) in &files {
        let path = parity_dir().join(name).canonicalize().unwrap();
        let row = store.image_by_path(&path).unwrap().unwrap();
        let stored = store.embedding(row.id, "tiny").unwrap().unwrap();
        let cos = cosine(&stored, &reference(name));
        if cos < worst.0 {
            worst = (cos, name);
        }
        if cos < LIMIT {
            wrong.push(format!("{name}: cosine {cos}"));
        }
    }
    eprintln!("index: lowest cosine {} ({})", worst.0, worst.1);
    assert!(wrong.is_empty(), "{wrong:#?}");
}
