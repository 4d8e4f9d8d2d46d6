//! SigLIP checkpoints equal the reference implementation (transformers' SiglipModel, its
//! tokenizer used with `padding="max_length"`, SiglipImageProcessor) on the tiny fixture model.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Tensor};
use cliptag::imaging::{self, preprocess};
use cliptag::model::config::PreprocessConfig;
use cliptag::model::{Embedder, Engine, Family, ModelFiles, Tokenizer};
use serde_json::Value;

use crate::support::*;

fn tiny_siglip() -> PathBuf {
    fixtures().join("tiny-siglip")
}

/// The tiny SigLIP in f32, whatever this CPU embeds in by default: the reference is f32's.
fn engine() -> Engine {
    let files = ModelFiles::from_dir(&tiny_siglip()).expect("the tiny SigLIP folder is complete");
    cliptag::model::matmul::loading_in(cliptag::model::matmul::Precision::F32, || {
        Engine::from_files(&files, "tiny-siglip".into())
    })
    .expect("the tiny SigLIP model loads")
}

fn reference() -> HashMap<String, Tensor> {
    load_tensors(&tiny_siglip().join("reference.safetensors"))
}

fn info() -> Value {
    serde_json::from_str(&std::fs::read_to_string(tiny_siglip().join("reference.json")).unwrap())
        .unwrap()
}

fn ids(reference: &HashMap<String, Tensor>) -> Vec<Vec<u32>> {
    reference["input_ids"]
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap()
}

#[test]
fn a_siglip_folder_loads_as_siglip() {
    let engine = engine();
    assert_eq!(engine.family(), Family::Siglip);
    assert_eq!(engine.dim(), 48);
    let config = engine.preprocess_config();
    assert_eq!(config.fixed_size, Some((96, 96)));
    assert!(!config.do_center_crop);
    assert_eq!(config.mean, [0.5; 3]);
    let info = info();
    let scale = info["logit_scale_exp"].as_f64().unwrap() as f32;
    let bias = info["logit_bias"].as_f64().unwrap() as f32;
    assert!((engine.logit_scale() - scale).abs() < 1e-5);
    assert_eq!(engine.logit_bias(), Some(bias));
    assert_eq!(tiny_engine().logit_bias(), None, "CLIP has no bias");
}

#[test]
fn token_ids_equal_transformers_for_multilingual_prompts() {
    let engine = engine();
    let Tokenizer::Siglip(tokenizer) = engine.tokenizer() else {
        panic!("a SigLIP model gets the SigLIP tokenizer");
    };
    let cases: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(tiny_siglip().join("tokenizer_cases.json")).unwrap(),
    )
    .unwrap();
    assert!(cases.len() >= 16);
    let mut mismatches = Vec::new();
    let mut byte_fallbacks = 0;
    let mut truncated = 0;
    for case in &cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids_max_length_64"].clone()).unwrap();
        let got = tokenizer.encode_padded(text).unwrap();
        if got != want {
            mismatches.push(format!("{text:?}:\n  got  {got:?}\n  want {want:?}"));
        }
        assert_eq!(got.len(), 64, "{text:?}");
        // Bytes fall back to <0x..> pieces, ids 3 to 258 in this vocabulary.
        byte_fallbacks += usize::from(want.iter().any(|id| (3..259).contains(id)));
        let untruncated = tokenizer.encode(text).unwrap();
        if untruncated.len() > 64 {
            truncated += 1;
            assert_eq!(
                *got.last().unwrap(),
                1,
                "the end token stays at the end when cut"
            );
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    assert!(byte_fallbacks >= 4, "the cases exercise byte fallback");
    assert!(truncated >= 1, "the cases include an over-long prompt");
}

#[test]
fn prompts_are_lower_cased_as_siglip_was_trained() {
    let engine = engine();
    let Tokenizer::Siglip(tokenizer) = engine.tokenizer() else {
        panic!("a SigLIP model gets the SigLIP tokenizer");
    };
    assert_eq!(
        tokenizer.encode("A Photo Of A DOG").unwrap(),
        tokenizer.encode("a photo of a dog").unwrap()
    );
    assert_eq!(tokenizer.pad_id(), 0, "the vocabulary's <pad>");
}

#[test]
fn embeddings_from_the_reference_inputs_match() {
    let reference = reference();
    let engine = engine();
    let raw = engine.image_features(&reference["pixel_values"]).unwrap();
    let diff = max_abs_diff(&rows(&raw), &rows(&reference["image_embeds_raw"]));
    assert!(diff <= 1e-4, "raw image features differ by {diff}");
    let images = engine
        .embed_pixel_tensor(&reference["pixel_values"])
        .unwrap();
    let diff = max_abs_diff(&images, &rows(&reference["image_embeds"]));
    assert!(diff <= 1e-4, "image embeddings differ by {diff}");

    let ids = ids(&reference);
    let raw = engine.text_features(&ids).unwrap();
    let diff = max_abs_diff(&rows(&raw), &rows(&reference["text_embeds_raw"]));
    assert!(diff <= 1e-4, "raw text features differ by {diff}");
    let texts = engine.embed_token_rows(&ids).unwrap();
    let diff = max_abs_diff(&texts, &rows(&reference["text_embeds"]));
    assert!(diff <= 1e-4, "text embeddings differ by {diff}");

    // The prompts through cliptag's own tokenizer give the same embeddings.
    let prompts: Vec<String> = serde_json::from_value(info()["prompts"].clone()).unwrap();
    let ours = engine.embed_texts(&prompts).unwrap();
    let diff = max_abs_diff(&ours, &rows(&reference["text_embeds"]));
    assert!(diff <= 1e-4, "embed_texts differs by {diff}");

    // Logits with the model's scale and bias.
    let want = rows(&reference["logits_per_image"]);
    let (scale, bias) = (engine.logit_scale(), engine.logit_bias().unwrap());
    let mut worst = 0.0f32;
    for (image, want_row) in images.iter().zip(&want) {
        for (text, want) in texts.iter().zip(want_row) {
            let cos: f32 = image.iter().zip(text).map(|(a, b)| a * b).sum();
            worst = worst.max((scale * cos + bias - want).abs());
        }
    }
    assert!(worst <= 1e-3, "logits differ by {worst}");
    eprintln!(
        "SigLIP parity from the reference inputs: image embeddings within {:.2e}, text within \
         {:.2e}, logits within {worst:.2e}",
        max_abs_diff(&images, &rows(&reference["image_embeds"])),
        max_abs_diff(&texts, &rows(&reference["text_embeds"])),
    );
}

#[test]
fn the_text_tower_refuses_rows_that_are_not_padded() {
    let engine = engine();
    let error = engine.text_features(&[vec![5, 1]]).unwrap_err().to_string();
    assert!(error.contains("64"), "{error}");
}

/// Each fixture photo embedded by cliptag under `config`, with its cosine to the reference.
fn photo_cosines(engine: &Engine, config: &PreprocessConfig) -> Vec<(String, f32)> {
    let reference = reference();
    let want = rows(&reference["image_embeds"]);
    let files: Vec<String> = serde_json::from_value(info()["images"].clone()).unwrap();
    files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            let decoded = imaging::decode_file(&fixtures().join("images").join(file), None)
                .expect("the fixture photo decodes");
            let pixels = preprocess(&decoded.image, config);
            let got = engine.embed_images(&[pixels]).unwrap().remove(0);
            (file.clone(), cosine(&got, &want[i]))
        })
        .collect()
}

#[test]
fn photos_embed_like_the_reference_and_other_preprocessing_does_not() {
    let engine = engine();
    let ours = engine.preprocess_config().clone();
    let cosines = photo_cosines(&engine, &ours);
    for (file, cos) in &cosines {
        assert!(*cos >= 0.9995, "{file}: cosine {cos}");
    }
    let lowest = |c: &[(String, f32)]| c.iter().map(|(_, c)| *c).fold(1.0f32, f32::min);
    eprintln!(
        "SigLIP photos: lowest cosine to the reference {:.6}",
        lowest(&cosines)
    );
    // A centre crop of the shortest-edge resize (CLIP's way) instead of the fixed resize.
    let cropped = PreprocessConfig {
        fixed_size: None,
        shortest_edge: 96,
        do_center_crop: true,
        ..ours.clone()
    };
    // CLIP's mean and deviation instead of SigLIP's 0.5.
    let clip_norm = PreprocessConfig {
        mean: PreprocessConfig::default().mean,
        std: PreprocessConfig::default().std,
        ..ours.clone()
    };
    for (what, config) in [("centre crop", cropped), ("CLIP's mean/std", clip_norm)] {
        let cosines = photo_cosines(&engine, &config);
        eprintln!("  with {what}: lowest {:.6}", lowest(&cosines));
        let below = cosines.iter().filter(|(_, cos)| *cos < 0.9995).count();
        assert!(
            below >= 1,
            "with {what} every photo still reaches 0.9995: the check cannot tell"
        );
    }
}

#[test]
fn embed_command_works_for_a_siglip_folder() {
    let dir = tiny_siglip();
    let photo = fixtures().join("images/astronaut.jpg");
    // Compared with the f32 engine and reference, whatever this CPU embeds in by default.
    let output = cliptag_with_env(
        &[
            "embed",
            "--model",
            dir.to_str().unwrap(),
            "--text",
            "a photo of a dog",
            photo.to_str().unwrap(),
        ],
        &[("CLIPTAG_PRECISION", "f32")],
    );
    assert!(output.status.success(), "{output:?}");
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 2);
    let text: Vec<f32> = serde_json::from_value(lines[0]["embedding"].clone()).unwrap();
    let image: Vec<f32> = serde_json::from_value(lines[1]["embedding"].clone()).unwrap();
    assert_eq!((text.len(), image.len()), (48, 48));
    let engine = engine();
    let want = engine
        .embed_texts(&["a photo of a dog".to_string()])
        .unwrap()
        .remove(0);
    assert!(max_abs(&text, &want) < 1e-6);
    let norm: f32 = image.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    let reference = rows(&reference()["image_embeds"]);
    assert!(cosine(&image, &reference[0]) >= 0.9995, "astronaut.jpg");

    let output = cliptag_ok(&["tokenize", "--model", dir.to_str().unwrap(), "Ein Hund"]);
    let lines = json_lines(&output.stdout);
    let ids: Vec<u32> = serde_json::from_value(lines[0]["ids"].clone()).unwrap();
    assert_eq!(
        ids.last(),
        Some(&1),
        "ends with </s>, untruncated and unpadded"
    );
    assert!(ids.len() < 64);
}

/// A folder of five fixture photos under `dir`.
fn five_photos(dir: &std::path::Path) -> PathBuf {
    let photos = dir.join("photos");
    std::fs::create_dir(&photos).unwrap();
    for file in [
        "astronaut.jpg",
        "coffee.jpg",
        "rocket.jpg",
        "motorcycle.jpg",
        "chelsea.png",
    ] {
        std::fs::copy(fixtures().join("images").join(file), photos.join(file)).unwrap();
    }
    photos
}

fn open_library(db: &std::path::Path, model: &std::path::Path) -> cliptag::library::Library {
    cliptag::library::Library::open(
        db,
        cliptag::library::LibraryOptions {
            model: Some(model.to_str().unwrap().to_string()),
            ..Default::default()
        },
    )
    .unwrap()
}

fn index(library: &mut cliptag::library::Library, dir: &std::path::Path) -> u64 {
    let summary = library
        .index(
            &[dir.to_path_buf()],
            small_batches(),
            cliptag::library::RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    assert!(
        summary.tagging_error.is_none(),
        "{:?}",
        summary.tagging_error
    );
    summary.indexed
}

#[test]
fn switching_between_clip_and_siglip_keeps_decisions_labels_and_each_models_thresholds() {
    use cliptag::domain::{Decision, Mode, TagSource};
    let dir = tempfile::tempdir().unwrap();
    let photos = five_photos(dir.path());
    let db = dir.path().join("lib.sqlite");
    let store = || cliptag::store::Store::open(&db).unwrap();
    let auto_tags = || store().auto_tags(None).unwrap();

    // CLIP first: cosines, the default vocabulary's cosine thresholds.
    let mut library = open_library(&db, &tiny_clip());
    assert_eq!(index(&mut library, &photos), 5);
    assert!(!library.probability_scores().unwrap());
    let mut edited = library
        .labels()
        .unwrap()
        .into_iter()
        .find(|l| l.mode == Mode::Threshold)
        .expect("the default vocabulary has threshold labels");
    edited.threshold = 0.123;
    library.update_label(edited.clone()).unwrap();
    let contrast_before: Vec<(i64, f32)> = library
        .labels()
        .unwrap()
        .iter()
        .filter(|l| l.mode != Mode::Threshold)
        .map(|l| (l.id, l.threshold))
        .collect();
    let image = store().images().unwrap()[0].id;
    library.decide(image, edited.id, Decision::Apply).unwrap();
    let rejected = library.labels().unwrap()[1].id;
    library.decide(image, rejected, Decision::Reject).unwrap();
    let decisions_kept = || {
        let source = |label| store().tag(image, label).unwrap().map(|t| t.0);
        assert_eq!(source(edited.id), Some(TagSource::Accepted));
        assert_eq!(source(rejected), Some(TagSource::Rejected));
    };
    let clip_tags = auto_tags();
    let labels_of = |library: &cliptag::library::Library| {
        library
            .labels()
            .unwrap()
            .into_iter()
            .map(|l| (l.id, l.name))
            .collect::<Vec<_>>()
    };
    let clip_labels = labels_of(&library);
    drop(library);

    // SigLIP: every photo embedded again; thresholds become probabilities.
    let mut library = open_library(&db, &tiny_siglip());
    assert_eq!(
        index(&mut library, &photos),
        5,
        "each photo embedded by SigLIP"
    );
    assert!(library.probability_scores().unwrap());
    assert_eq!(
        labels_of(&library),
        clip_labels,
        "the same labels, ids kept"
    );
    for label in library.labels().unwrap() {
        match label.mode {
            Mode::Threshold => assert_eq!(label.threshold, 0.1, "{}", label.name),
            _ => assert!(contrast_before.contains(&(label.id, label.threshold))),
        }
    }
    let siglip_tags = auto_tags();
    assert_ne!(siglip_tags, clip_tags, "tags come from the new model");
    for ((_, label), score) in &siglip_tags {
        assert!((0.0..=1.0).contains(score), "label {label}: score {score}");
    }
    let report = library.retag(true).unwrap();
    assert!(
        report.added.is_empty() && report.removed.is_empty(),
        "stored tags equal a full recomputation under SigLIP: {report:?}"
    );
    decisions_kept();
    let mut under_siglip = library.label_named(&edited.name).unwrap();
    under_siglip.threshold = 0.2;
    library.update_label(under_siglip).unwrap();
    drop(library);

    // Back to CLIP: nothing embedded again, its thresholds and tags come back exactly.
    let mut library = open_library(&db, &tiny_clip());
    assert_eq!(
        index(&mut library, &photos),
        0,
        "CLIP's embeddings were kept"
    );
    assert!(!library.probability_scores().unwrap());
    assert_eq!(library.label_named(&edited.name).unwrap().threshold, 0.123);
    assert_eq!(labels_of(&library), clip_labels);
    // The same pairs with the same scores (to rounding: indexing scores batch by batch, a
    // re-tag all photos at once).
    let again = auto_tags();
    let mut pairs: Vec<_> = again.keys().collect();
    let mut want: Vec<_> = clip_tags.keys().collect();
    pairs.sort();
    want.sort();
    assert_eq!(pairs, want, "CLIP's own tags again");
    for (pair, score) in &again {
        assert!((score - clip_tags[pair]).abs() < 1e-5, "{pair:?}");
    }
    decisions_kept();
    drop(library);

    // And SigLIP once more: the threshold set under it returns.
    let mut library = open_library(&db, &tiny_siglip());
    assert_eq!(index(&mut library, &photos), 0);
    assert_eq!(library.label_named(&edited.name).unwrap().threshold, 0.2);
    assert!(library.retag(true).unwrap().added.is_empty());
}

#[test]
fn the_model_window_switches_the_library_to_siglip_and_back() {
    use crate::app::{app_harness, has_label, indexed_library, step_until, type_into};
    use egui_kittest::kittest::Queryable;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    let store = || cliptag::store::Store::open(&db).unwrap();
    let clip_id = store().setting("model").unwrap().unwrap();
    let photos = store().embedded_ids(&clip_id).unwrap();
    assert!(!photos.is_empty());
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the library", |h| {
        h.state().snapshot.photos > 0
    });
    harness.get_by_label("Model…").click();
    step_until(&mut harness, "the model window", |h| {
        has_label(h, "This library tags with")
    });
    assert!(has_label(&harness, "SigLIP 2 B/32-256"));
    assert!(has_label(&harness, "about 1.5 GB download"));
    assert!(has_label(&harness, "cosines"));
    type_into(
        &mut harness,
        "Or a folder or hub id:",
        tiny_siglip().to_str().unwrap(),
    );
    harness.get_by_label("Switch to this model").click();
    step_until(&mut harness, "the library re-embedded by SigLIP", |h| {
        let app = h.state();
        app.snapshot.probability_scores
            && app.snapshot.model_name.contains("tiny-siglip")
            && !app.link.indexing
            && app
                .link
                .last_summary
                .as_ref()
                .is_some_and(|s| s.indexed as usize == photos.len())
    });
    assert!(has_label(&harness, "probabilities"));
    let siglip_id = store().setting("model").unwrap().unwrap();
    assert_ne!(siglip_id, clip_id);
    assert_eq!(store().embedded_ids(&siglip_id).unwrap(), photos);
    assert_eq!(
        store().embedded_ids(&clip_id).unwrap(),
        photos,
        "CLIP's embeddings are kept"
    );

    // And back: nothing to embed, cosines again.
    harness
        .get_by_label("OpenAI CLIP ViT-B/32 (default)")
        .click();
    harness.step();
    // The radio button picked the hub's default; a typed folder is what this machine has.
    harness.get_by_label("Or a folder or hub id:").focus();
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness
        .get_by_label("Or a folder or hub id:")
        .type_text(tiny_clip().to_str().unwrap());
    harness.step();
    harness.get_by_label("Switch to this model").click();
    step_until(&mut harness, "the library back on CLIP", |h| {
        let app = h.state();
        !app.snapshot.probability_scores
            && !app.link.indexing
            && app
                .link
                .last_summary
                .as_ref()
                .is_some_and(|s| s.indexed == 0)
    });
    assert_eq!(store().setting("model").unwrap().unwrap(), clip_id);
}

#[test]
fn a_cancelled_switch_keeps_the_old_models_tags_until_a_later_run_finishes_it() {
    use cliptag::domain::Mode;
    use cliptag::library::{Library, Retag, RunControl};
    let dir = tempfile::tempdir().unwrap();
    let photos = five_photos(dir.path());
    let db = dir.path().join("lib.sqlite");
    let auto_tags = || {
        cliptag::store::Store::open(&db)
            .unwrap()
            .auto_tags(None)
            .unwrap()
    };
    let mut library = open_library(&db, &tiny_clip());
    index(&mut library, &photos);
    // Every photo decided on, so that some are re-embedded before the switch is cancelled.
    let decided_label = library.labels().unwrap()[3].clone();
    let images: Vec<i64> = cliptag::store::Store::open(&db)
        .unwrap()
        .images()
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    for image in &images {
        library
            .decide(*image, decided_label.id, cliptag::domain::Decision::Apply)
            .unwrap();
    }
    let clip_scores: Vec<Option<f32>> = library
        .tags(&[])
        .unwrap()
        .into_iter()
        .filter(|t| t.label_id == decided_label.id)
        .map(|t| t.score)
        .collect();
    let clip_tags = auto_tags();
    assert!(!clip_tags.is_empty());
    drop(library);

    // Opened with SigLIP: a switch already, before any photo is embedded by it.
    let mut library = open_library(&db, &tiny_siglip());
    assert!(library.switching().unwrap());
    let mut early = library.labels().unwrap()[0].clone();
    early.prompts = vec!["a photo of the moon".into()];
    let (_, retag) = library.update_label(early).unwrap();
    assert_eq!(retag, Retag::AfterSwitch);
    assert_eq!(auto_tags(), clip_tags);

    // The switching run, cancelled after one batch of 4.
    let control = RunControl::default();
    let mut run = library
        .start_index(
            std::slice::from_ref(&photos),
            small_batches(),
            control.clone(),
            &mut |_| {},
        )
        .unwrap();
    assert!(library.switching().unwrap());
    library.index_step(&mut run, &mut |_| {}).unwrap();
    control.cancel();
    while library.index_step(&mut run, &mut |_| {}).unwrap() {}
    let first = library.finish_index(run, &mut |_| {});
    assert!(first.cancelled);
    assert!(first.indexed >= 1 && first.indexed < 5, "{}", first.indexed);
    // The tags listed are the old model's, decided ones too: each with the score stored with
    // it (the old model's), no new-model score mixed in.
    let store = cliptag::store::Store::open(&db).unwrap();
    for t in library.tags(&[]).unwrap() {
        if t.label_id == decided_label.id {
            let stored = store.tag(t.image_id, t.label_id).unwrap().unwrap().1;
            assert_eq!(t.score, stored, "{}", t.path.display());
        }
    }
    assert!(clip_scores.iter().all(Option::is_some), "{clip_scores:?}");
    assert_eq!(auto_tags(), clip_tags, "the old model's tags, untouched");

    // An edit meanwhile is stored; the tags wait for the switch, and a re-tag is refused.
    let mut edited = library
        .labels()
        .unwrap()
        .into_iter()
        .find(|l| l.mode == Mode::Threshold)
        .unwrap();
    edited.threshold = 0.3;
    let (_, retag) = library.update_label(edited.clone()).unwrap();
    assert_eq!(retag, Retag::AfterSwitch);
    assert_eq!(auto_tags(), clip_tags);
    let refused = library.retag(false).unwrap_err().to_string();
    assert!(refused.contains("switching"), "{refused}");
    drop(library);
    // Lists and explanations say which model they describe meanwhile.
    let db_arg = db.to_str().unwrap();
    for args in [&["vocab", "list"][..], &["tags", "--explain"][..]] {
        let output = cliptag_ok(&[args, &["--db", db_arg]].concat());
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(
            said.contains("the library is switching from"),
            "{args:?}: {said}"
        );
    }

    // Reopened without --model (as after a crash): the next run finishes the switch.
    let mut library = Library::open(&db, Default::default()).unwrap();
    assert!(library.switching().unwrap());
    let rest = index(&mut library, &photos);
    assert_eq!(first.indexed + rest, 5, "nothing embedded twice");
    assert!(!library.switching().unwrap());
    let siglip_tags = auto_tags();
    assert_ne!(siglip_tags, clip_tags);
    for ((_, label), score) in &siglip_tags {
        assert!((0.0..=1.0).contains(score));
        if *label == edited.id {
            assert!(*score >= 0.3, "the edit made meanwhile applies");
        }
    }
    let report = library.retag(true).unwrap();
    assert!(report.added.is_empty() && report.removed.is_empty());
}

#[test]
fn vocabulary_files_say_what_their_thresholds_were_set_for() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::copy(
        fixtures().join("images/coffee.jpg"),
        photos.join("coffee.jpg"),
    )
    .unwrap();
    let db = dir.path().join("lib.sqlite");
    let db = db.to_str().unwrap();
    let siglip = tiny_siglip();
    cliptag_ok(&[
        "index",
        "--db",
        db,
        "--model",
        siglip.to_str().unwrap(),
        photos.to_str().unwrap(),
    ]);
    // Exported from a SigLIP library: probabilities.
    let exported = dir.path().join("vocabulary.toml");
    cliptag_ok(&["vocab", "export", "--db", db, exported.to_str().unwrap()]);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("[thresholds_for]"), "{text}");
    assert!(text.contains("scores = \"probability\""));
    // A file of cosine thresholds imported into it: its threshold labels start at 0.1.
    let clip_file = dir.path().join("clip.toml");
    std::fs::write(
        &clip_file,
        "[thresholds_for]\nmodel = \"openai/clip-vit-base-patch32\"\nscores = \"cosine\"\n\
         [[label]]\nname = \"Espresso\"\nthreshold = 0.27\n",
    )
    .unwrap();
    let output = cliptag_ok(&["vocab", "import", "--db", db, clip_file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("1 thresholds were set for the other kind"),
        "{said}"
    );
    let listed =
        String::from_utf8_lossy(&cliptag_ok(&["vocab", "list", "--db", db]).stdout).into_owned();
    let espresso = listed
        .lines()
        .find(|l| l.starts_with("Espresso\t"))
        .expect("imported");
    assert!(
        espresso.contains("\t0.1\t") || espresso.contains("\t0.100"),
        "{espresso}"
    );
    // A file of probabilities keeps them.
    let siglip_file = dir.path().join("siglip.toml");
    std::fs::write(
        &siglip_file,
        "[thresholds_for]\nmodel = \"google/siglip2-base-patch32-256\"\nscores = \"probability\"\n\
         [[label]]\nname = \"Latte\"\nthreshold = 0.27\n",
    )
    .unwrap();
    cliptag_ok(&["vocab", "import", "--db", db, siglip_file.to_str().unwrap()]);
    let listed =
        String::from_utf8_lossy(&cliptag_ok(&["vocab", "list", "--db", db]).stdout).into_owned();
    let latte = listed.lines().find(|l| l.starts_with("Latte\t")).unwrap();
    assert!(latte.contains("0.27"), "{latte}");
}

#[test]
fn reduced_size_jpeg_decoding_keeps_enough_pixels_for_a_fixed_size_resize() {
    // A tall panorama-like 12-megapixel photo: with a fixed-size resize both sides shrink, so
    // the reduced decode must keep both at least the model's size.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tall.jpg");
    image::open(fixtures().join("images/astronaut.jpg"))
        .unwrap()
        .resize_exact(1500, 8000, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .save(&path)
        .unwrap();
    let engine = engine();
    let mut config = engine.preprocess_config().clone();
    // A processor that is wider than tall asks for more than its height.
    config.fixed_size = Some((160, 96));
    assert_eq!(config.min_short_side(), 160);
    let reduced = imaging::decode_file(&path, Some(config.min_short_side())).unwrap();
    assert!(reduced.reduced());
    assert!(reduced.image.width() >= 160 && reduced.image.height() >= 96);
    let config = engine.preprocess_config();
    let full = imaging::decode_file(&path, None).unwrap();
    let reduced = imaging::decode_file(&path, Some(config.min_short_side())).unwrap();
    assert!(reduced.reduced() && reduced.image.width() < 1500);
    let a = preprocess(&full.image, config);
    let b = reduced.preprocess(config);
    assert_eq!((b.width, b.height), (96, 96));
    let embeddings = engine.embed_images(&[a, b]).unwrap();
    let cos = cosine(&embeddings[0], &embeddings[1]);
    assert!(cos >= 0.9995, "reduced decoding moved the embedding: {cos}");
}

/// What a label learned is kept per model: under SigLIP a label learned under CLIP starts from
/// SigLIP's own threshold and has nothing to reset there, learning under SigLIP leaves CLIP's
/// learning alone, switching back brings CLIP's learning and learned threshold back exactly, and
/// a vocabulary file carries both (imported into a CLIP library, the CLIP learning is scored).
#[test]
fn what_a_label_learned_belongs_to_its_model() {
    use cliptag::domain::{Decision, Mode};
    let dir = tempfile::tempdir().unwrap();
    let photos = five_photos(dir.path());
    let db = dir.path().join("lib.sqlite");
    let images = || {
        cliptag::store::Store::open(&db)
            .unwrap()
            .images()
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    let teach = |library: &mut cliptag::library::Library, name: &str| {
        let label = library.label_named(name).unwrap();
        let ids = images();
        for (i, id) in ids.iter().enumerate().take(4) {
            let decision = if i < 2 {
                Decision::Apply
            } else {
                Decision::Reject
            };
            library.decide(*id, label.id, decision).unwrap();
        }
        library.learn(name, false).unwrap().label
    };

    let mut library = open_library(&db, &tiny_clip());
    index(&mut library, &photos);
    let name = library
        .labels()
        .unwrap()
        .into_iter()
        .find(|l| l.mode == Mode::Threshold)
        .unwrap()
        .name;
    let under_clip = teach(&mut library, &name);
    let clip_learning = under_clip.learned.clone().expect("learned under CLIP");
    drop(library);

    let mut library = open_library(&db, &tiny_siglip());
    index(&mut library, &photos);
    let label = library.label_named(&name).unwrap();
    assert_eq!(label.learned, None, "CLIP's direction is not SigLIP's");
    // Kept with the threshold it learned under CLIP.
    let clip_elsewhere = cliptag::domain::Learned {
        threshold: Some(under_clip.threshold),
        ..clip_learning.clone()
    };
    assert_eq!(label.learned_elsewhere, vec![clip_elsewhere.clone()]);
    assert_eq!(label.threshold, 0.1, "SigLIP's own starting probability");
    let reset = library.reset_learning(&name);
    assert!(
        reset.is_err_and(|e| e.to_string().contains("learned nothing to reset")),
        "a reset under SigLIP must not erase what the label learned under CLIP"
    );
    let under_siglip = teach(&mut library, &name);
    let siglip_learning = under_siglip.learned.clone().expect("learned under SigLIP");
    assert_eq!(siglip_learning.zero_shot_threshold, 0.1);
    assert!((0.0..=1.0).contains(&under_siglip.threshold));
    assert_eq!(under_siglip.learned_elsewhere, vec![clip_elsewhere.clone()]);
    let file = dir.path().join("vocabulary.toml");
    library.export_vocabulary(&file).unwrap();
    drop(library);

    let mut library = open_library(&db, &tiny_clip());
    assert_eq!(index(&mut library, &photos), 0);
    let label = library.label_named(&name).unwrap();
    assert_eq!(
        label.learned,
        Some(clip_learning.clone()),
        "CLIP's learning is back"
    );
    assert_eq!(label.threshold, under_clip.threshold);
    let siglip_elsewhere = cliptag::domain::Learned {
        threshold: Some(under_siglip.threshold),
        ..siglip_learning.clone()
    };
    assert_eq!(label.learned_elsewhere, vec![siglip_elsewhere.clone()]);
    let dry = library.retag(true).unwrap();
    assert!(dry.added.is_empty() && dry.removed.is_empty(), "{dry:?}");
    drop(library);

    // The file carries both; a CLIP library that imports it scores CLIP's learning.
    let other = dir.path().join("other.sqlite");
    let mut fresh = open_library(&other, &tiny_clip());
    index(&mut fresh, &photos);
    fresh.import_vocabulary(&file).unwrap();
    let imported = fresh.label_named(&name).unwrap();
    assert_eq!(imported.learned, Some(clip_learning));
    assert_eq!(
        imported.threshold, under_clip.threshold,
        "CLIP's learned threshold with it"
    );
    assert_eq!(imported.learned_elsewhere, vec![siglip_elsewhere]);
}

/// Photos renamed while the library switches models keep their records: decisions and the
/// other model's embeddings follow the content, not the names. And a photo moved over another
/// known name takes its record there, the other's record kept as missing with its decisions.
#[test]
fn records_follow_their_content_through_a_switch_and_a_move_over_another_name() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for name in ["chelsea.png", "camera.png", "coffee.jpg"] {
        std::fs::copy(fixtures().join("images").join(name), photos.join(name)).unwrap();
    }
    let db = dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    let (clip, siglip) = (tiny_clip(), tiny_siglip());
    cliptag_ok(&[
        "index",
        "--db",
        db_arg,
        "--model",
        clip.to_str().unwrap(),
        photos.to_str().unwrap(),
    ]);
    cliptag_ok(&["vocab", "add", "Cat", "--db", db_arg]);
    let at = |name: &str| photos.join(name).to_str().unwrap().to_string();
    cliptag_ok(&["tag", "add", "--db", db_arg, &at("chelsea.png"), "Cat"]);
    cliptag_ok(&["tag", "reject", "--db", db_arg, &at("camera.png"), "Cat"]);
    let store = || cliptag::store::Store::open(&db).unwrap();
    let clip_id = store().setting("model").unwrap().unwrap();
    let vector_of = |name: &str| {
        let s = store();
        let row = s
            .image_by_path(&photos.join(name).canonicalize().unwrap())
            .unwrap()
            .unwrap();
        s.embedding(row.id, &clip_id).unwrap().unwrap()
    };
    let (cat, camera) = (vector_of("chelsea.png"), vector_of("camera.png"));
    let cat_source = |name: &str| {
        let output = cliptag_ok(&["tags", "--db", db_arg, &at(name)]);
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .find(|l| l.split('\t').nth(1) == Some("Cat"))
            .map(|l| l.rsplit('\t').next().unwrap().to_string())
    };

    // Swap the two names, then switch to SigLIP.
    std::fs::rename(photos.join("chelsea.png"), photos.join("aside")).unwrap();
    std::fs::rename(photos.join("camera.png"), photos.join("chelsea.png")).unwrap();
    std::fs::rename(photos.join("aside"), photos.join("camera.png")).unwrap();
    let output = cliptag_ok(&[
        "index",
        "--db",
        db_arg,
        "--model",
        siglip.to_str().unwrap(),
        photos.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("moved 2"), "{said}");
    assert_eq!(
        cat_source("camera.png").as_deref(),
        Some("accepted"),
        "the cat is camera.png now"
    );
    assert_eq!(cat_source("chelsea.png").as_deref(), Some("rejected"));
    // CLIP's embeddings followed too: back on CLIP nothing is embedded and each name has its
    // content's vector.
    let output = cliptag_ok(&[
        "index",
        "--db",
        db_arg,
        "--model",
        clip.to_str().unwrap(),
        photos.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("unchanged 3"));
    assert_eq!(vector_of("camera.png"), cat);
    assert_eq!(vector_of("chelsea.png"), camera);

    // `mv camera.png coffee.jpg`: the cat's record moves to coffee.jpg; coffee's own record is
    // kept as missing, replaced by another photo.
    std::fs::rename(photos.join("camera.png"), photos.join("coffee.jpg")).unwrap();
    let output = cliptag_ok(&["index", "--db", db_arg, photos.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("moved 1") && said.contains("missing 0"),
        "{said}"
    );
    assert_eq!(cat_source("coffee.jpg").as_deref(), Some("accepted"));
    let files = String::from_utf8(cliptag_ok(&["files", "--db", db_arg]).stdout).unwrap();
    assert!(files.contains("replaced by another photo"), "{files}");
}

#[test]
fn embedding_a_first_vocabulary_says_how_far_it_got() {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let photos = five_photos(dir.path());
    let mut library = open_library(&dir.path().join("lib.sqlite"), &tiny_siglip());
    let said: Arc<Mutex<Vec<cliptag::library::ModelStatus>>> = Arc::default();
    let into = said.clone();
    library.on_model_status(Box::new(move |status| into.lock().unwrap().push(status)));
    let templates = library.templates().unwrap();
    let labels: Vec<_> = library
        .labels()
        .unwrap()
        .into_iter()
        .filter(|l| l.enabled)
        .collect();
    let prompts = cliptag::tagging::TagPlan::texts(&labels, &templates).len();
    assert!(prompts > 64, "the default vocabulary has {prompts} prompts");
    assert_eq!(index(&mut library, &photos), 5);

    let said = said.lock().unwrap();
    let steps: Vec<usize> = said
        .iter()
        .filter_map(|status| match status {
            cliptag::library::ModelStatus::Loading(text) => text
                .strip_prefix("embedding the vocabulary: ")?
                .strip_suffix(&format!(" of {prompts} prompts"))?
                .parse()
                .ok(),
            _ => None,
        })
        .collect();
    // A report before each block of prompts, from none done to the last block.
    assert_eq!(steps.first(), Some(&0), "{said:?}");
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert!(steps.len() >= prompts / 64, "{steps:?}");
    assert!(*steps.last().unwrap() < prompts, "{steps:?}");
    // Then how long it took, and the model stands ready again.
    let finished = format!("embedded the vocabulary's {prompts} prompts in ");
    assert!(
        said.iter().any(
            |s| matches!(s, cliptag::library::ModelStatus::Loading(t) if t.starts_with(&finished))
        ),
        "{said:?}"
    );
    let last_progress = said
        .iter()
        .rposition(|s| matches!(s, cliptag::library::ModelStatus::Loading(t) if t.starts_with("embedding the vocabulary")))
        .unwrap();
    assert!(
        said[last_progress..]
            .iter()
            .any(|s| matches!(s, cliptag::library::ModelStatus::Ready(_))),
        "{said:?}"
    );
}
