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

/// The precision each photo's embedding was computed in, by file name.
fn stored_precisions(db: &std::path::Path) -> Vec<(String, Option<String>)> {
    let store = cliptag::store::Store::open(db).unwrap();
    let model = store.setting("model").unwrap().unwrap();
    let mut rows: Vec<_> = store
        .images()
        .unwrap()
        .into_iter()
        .filter(|row| row.status == cliptag::domain::ImageStatus::Ok)
        .map(|row| {
            let name = row.path.file_name().unwrap().to_string_lossy().into_owned();
            (name, store.embedding_precision(row.id, &model).unwrap())
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn the_library_records_the_precision_of_every_embedding_and_remembers_exact_f32() {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for name in ["chelsea.png", "camera.png"] {
        std::fs::copy(fixtures().join("images").join(name), photos.join(name)).unwrap();
    }
    let db = dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    let model = tiny_clip();
    let index = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["index", "--db", db_arg, "--model", model.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(photos.to_str().unwrap());
        let output = cliptag_with_env(&args, env);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    let of = |name: &str| {
        stored_precisions(&db)
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, p)| p)
    };

    // Asked for bf16 for one run: every photo embedded in that run says which it got.
    let bf16_env = [("CLIPTAG_PRECISION", "bf16")];
    let said = index(&[], &bf16_env);
    let bf16 = if Precision::Bf16.runs() {
        "bf16"
    } else {
        "f32"
    };
    assert!(said.contains(&format!("embedded in {bf16}")), "{said}");
    let precisions = stored_precisions(&db);
    assert_eq!(precisions.len(), 2, "{precisions:?}");
    for (name, precision) in &precisions {
        assert_eq!(precision.as_deref(), Some(bf16), "{name}");
    }

    // A copy of an indexed photo takes its embedding, and the precision that was computed in.
    std::fs::copy(
        fixtures().join("images/chelsea.png"),
        photos.join("again.png"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("images/coffee.jpg"),
        photos.join("coffee.jpg"),
    )
    .unwrap();
    let _ = index(&[], &bf16_env);
    assert_eq!(of("again.png").as_deref(), Some(bf16));
    assert_eq!(of("coffee.jpg").as_deref(), Some(bf16));

    // `--precision f32` is remembered by the library, and the photos embedded in a reduced
    // precision are embedded again, in f32 (`auto` lets the library's setting decide,
    // whatever the test's own environment says).
    let auto = [("CLIPTAG_PRECISION", "auto")];
    let said = index(&["--precision", "f32"], &auto);
    assert!(said.contains("exact f32 from now on"), "{said}");
    let again = if bf16 == "bf16" { 4 } else { 0 };
    assert!(said.contains(&format!("indexed {again},")), "{said}");
    for (name, precision) in stored_precisions(&db) {
        assert_eq!(precision.as_deref(), Some("f32"), "{name}");
    }
    // The prompts were embedded again in f32 too, beside those in bf16.
    let keys: Vec<String> = rusqlite::Connection::open(&db)
        .unwrap()
        .prepare("SELECT DISTINCT model FROM text_embeddings ORDER BY model")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let reduced_keys = keys.iter().filter(|k| k.ends_with("@bf16")).count();
    assert_eq!(
        (keys.len(), reduced_keys),
        if bf16 == "bf16" { (2, 1) } else { (1, 0) },
        "{keys:?}"
    );
    let library = cliptag::library::Library::open(&db, Default::default()).unwrap();
    assert!(library.exact_precision());
    if matmul::precision_override().is_none() {
        assert_eq!(library.precision(), Precision::F32);
    }
    drop(library);
    // While CLIPTAG_PRECISION asks for bf16, an exact library is not embedded again and again.
    let said = index(&[], &bf16_env);
    assert!(said.contains("indexed 0,"), "{said}");

    // `--precision auto` gives the choice back to the CPU; f32 photos stay as they are.
    let said = index(&["--precision", "auto"], &auto);
    assert!(said.contains("indexed 0,"), "{said}");
    let library = cliptag::library::Library::open(&db, Default::default()).unwrap();
    assert!(!library.exact_precision());
    if matmul::precision_override().is_none() {
        assert_eq!(library.precision(), Precision::fastest());
    }

    drop(library);

    // A run that cannot run (a folder that is not there) leaves the library's choice alone.
    let args = [
        "index",
        "--db",
        db_arg,
        "--precision",
        "f32",
        "/no/such/folder",
    ];
    let refused = cliptag_with_env(&args, &auto);
    assert!(!refused.status.success());
    let library = cliptag::library::Library::open(&db, Default::default()).unwrap();
    assert!(!library.exact_precision());
}
