//! Indexing: every odd file gets its expected outcome, the decoder survives garbage, a kill loses
//! at most the batch in flight, and moved, edited and deleted files are recognised.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cliptag::domain::{Decision, ImageStatus, Label, TagSource};
use cliptag::imaging;
use cliptag::model::Embedder;
use cliptag::store::Store;
use rusqlite::Connection;
use serde_json::Value;

use crate::support::*;

/// Copies fixture files into a fresh folder.
pub fn photo_folder(files: &[PathBuf]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        std::fs::copy(file, dir.path().join(file.file_name().unwrap())).unwrap();
    }
    dir
}

pub fn fixture_photos() -> Vec<PathBuf> {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(fixtures().join("images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect();
    photos.sort();
    photos
}

fn status_of(store: &Store, path: &Path) -> (ImageStatus, Option<String>) {
    let row = store
        .image_by_path(&path.canonicalize().unwrap_or_else(|_| path.to_path_buf()))
        .unwrap()
        .unwrap_or_else(|| panic!("{} is not in the library", path.display()));
    (row.status, row.error)
}

#[test]
fn every_odd_image_gets_its_expected_outcome() {
    let manifest: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("odd-images/manifest.json")).unwrap(),
    )
    .unwrap();
    let files: Vec<PathBuf> = manifest
        .iter()
        .map(|e| {
            fixtures()
                .join("odd-images")
                .join(e["file"].as_str().unwrap())
        })
        .chain([fixtures().join("images/coffee.jpg")])
        .collect();
    let dir = photo_folder(&files);
    let mut library = TestLibrary::tiny();
    let summary = library.index(dir.path());
    let store = library.store();
    let expected_errors = manifest.iter().filter(|e| e["expected"] == "error").count();
    assert_eq!(summary.failed as usize, expected_errors, "{summary:?}");
    assert_eq!(
        summary.indexed as usize,
        files.len() - expected_errors,
        "{summary:?}"
    );
    for entry in &manifest {
        let name = entry["file"].as_str().unwrap();
        let (status, error) = status_of(&store, &dir.path().join(name));
        if entry["expected"] == "ok" {
            assert_eq!(status, ImageStatus::Ok, "{name}: {error:?}");
        } else {
            assert_eq!(status, ImageStatus::Error, "{name} should have failed");
            let reason = error.unwrap_or_default();
            assert!(
                reason.len() > 10 && !reason.contains("panicked"),
                "{name}: unreadable reason {reason:?}"
            );
        }
    }
    // The good photo beside them is indexed too.
    assert_eq!(
        status_of(&store, &dir.path().join("coffee.jpg")).0,
        ImageStatus::Ok
    );
    assert_eq!(
        store.embeddings("tiny").unwrap().len(),
        files.len() - expected_errors
    );
}

#[test]
fn odd_images_decode_upright_and_in_colour_order() {
    let manifest: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("odd-images/manifest.json")).unwrap(),
    )
    .unwrap();
    for entry in manifest.iter().filter(|e| e["expected"] == "ok") {
        let name = entry["file"].as_str().unwrap();
        let decoded =
            imaging::decode_file(&fixtures().join("odd-images").join(name), None).unwrap();
        let size = entry["display_size"].as_array().unwrap();
        let (w, h) = (
            size[0].as_u64().unwrap() as u32,
            size[1].as_u64().unwrap() as u32,
        );
        assert_eq!(
            (decoded.image.width(), decoded.image.height()),
            (w, h),
            "{name}"
        );
        // The mean colour of each cell of a 4×4 grid: orientation- and channel-sensitive.
        let want = entry["grid4x4_rgb_mean"].as_array().unwrap();
        let tolerance = if name == "cmyk.jpg" { 12.0 } else { 4.0 };
        for (cell, want) in want.iter().enumerate() {
            let (gx, gy) = ((cell % 4) as u32, (cell / 4) as u32);
            let (x0, x1) = (gx * w / 4, (gx + 1) * w / 4);
            let (y0, y1) = (gy * h / 4, (gy + 1) * h / 4);
            let mut sum = [0f64; 3];
            let mut n = 0f64;
            for y in y0..y1.max(y0 + 1).min(h) {
                for x in x0..x1.max(x0 + 1).min(w) {
                    let p = decoded.image.get_pixel(x, y);
                    for c in 0..3 {
                        sum[c] += p[c] as f64;
                    }
                    n += 1.0;
                }
            }
            for c in 0..3 {
                let got = sum[c] / n;
                let want = want[c].as_f64().unwrap();
                assert!(
                    (got - want).abs() <= tolerance,
                    "{name} cell {cell} channel {c}: {got:.1} vs {want:.1}"
                );
            }
        }
    }
}

/// A small deterministic generator for the fuzz test.
pub(crate) struct Rng(pub(crate) u64);
impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

pub(crate) fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    match rng.below(6) {
        0 => {
            // flip a few bytes, often in the header where sizes live
            for _ in 0..1 + rng.below(8) {
                let limit = if rng.below(2) == 0 {
                    64.min(bytes.len())
                } else {
                    bytes.len()
                };
                let i = rng.below(limit);
                bytes[i] = rng.next() as u8;
            }
        }
        1 => bytes.truncate(rng.below(bytes.len())),
        2 => {
            let at = rng.below(bytes.len());
            let junk: Vec<u8> = (0..rng.below(512)).map(|_| rng.next() as u8).collect();
            bytes.splice(at..at, junk);
        }
        3 => {
            let at = rng.below(bytes.len());
            let len = rng.below(bytes.len() - at);
            bytes.drain(at..at + len);
        }
        4 => {
            // Large sizes in every plausible size field of the first 200 bytes.
            for _ in 0..4 {
                let i = rng.below(200.min(bytes.len().saturating_sub(2)));
                bytes[i] = 0xFF;
                bytes[i + 1] = 0xF0;
            }
        }
        _ => bytes = (0..rng.below(4096)).map(|_| rng.next() as u8).collect(),
    }
    bytes
}

#[test]
fn decoder_survives_random_and_mutated_bytes() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for dir in ["images", "odd-images", "heic", "jpeg-forms", "raw"] {
        for entry in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(
                ext,
                "jpg"
                    | "png"
                    | "gif"
                    | "webp"
                    | "bmp"
                    | "tiff"
                    | "heic"
                    | "cr2"
                    | "cr3"
                    | "dng"
                    | "nef"
                    | "rw2"
                    | "raf"
            ) {
                let bytes = std::fs::read(&path).unwrap();
                if !bytes.is_empty() && bytes.len() < 300_000 {
                    seeds.push(bytes);
                }
            }
        }
    }
    let heif_seeds = seeds.iter().filter(|s| imaging::heif::is_heif(s)).count();
    assert!(heif_seeds >= 6, "{heif_seeds} HEIC seeds");
    let raw_seeds = seeds
        .iter()
        .filter(|s| imaging::raw::recognise(s, false).is_some())
        .count();
    assert!(raw_seeds >= 10, "{raw_seeds} camera RAW seeds");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cases = 1500;
    let mut decoded = 0;
    crate::allocation::track(|| {
        for case in 0..cases {
            let seed = &seeds[case % seeds.len()];
            let bytes = mutate(&mut rng, seed);
            let reduce = if case % 2 == 0 { Some(224) } else { None };
            // A panic would fail the test; `decode_bytes` must turn every failure into an error.
            if let Ok(image) = imaging::decode_bytes(&bytes, reduce) {
                assert!(image.image.width() > 0 && image.image.height() > 0);
                decoded += 1;
            }
        }
    });
    let largest = crate::allocation::largest();
    assert!(
        largest < 1 << 30,
        "a single allocation of {largest} bytes while decoding garbage"
    );
    eprintln!("{cases} mutated files: {decoded} still decoded, largest allocation {largest} bytes");
}

pub(crate) fn write_jpeg(path: &Path, width: u32, height: u32, seed: u32) {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let v = x.wrapping_mul(seed * 7 + 3) ^ y.wrapping_mul(seed * 13 + 5);
        image::Rgb([
            (v % 251) as u8,
            ((v / 3 + seed * 40) % 253) as u8,
            ((x + y + seed) % 256) as u8,
        ])
    });
    image.save(path).unwrap();
}

/// Indexed photos and when they were indexed (empty while the run has not created the schema).
fn ok_rows(db: &Path) -> HashMap<String, i64> {
    let conn = Connection::open(db).unwrap();
    let Ok(mut stmt) = conn.prepare("SELECT path, last_indexed FROM images WHERE status = 'ok'")
    else {
        return HashMap::new();
    };
    stmt.query_map([], |r| {
        let path: Vec<u8> = r.get(0)?;
        Ok((
            String::from_utf8_lossy(&path).into_owned(),
            r.get::<_, i64>(1)?,
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

#[test]
fn killed_indexing_loses_at_most_the_batch_in_flight() {
    const PHOTOS: u32 = 240;
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for i in 0..PHOTOS {
        write_jpeg(&photos.join(format!("img{i:03}.jpg")), 640, 480, i);
    }
    let db = dir.path().join("lib.sqlite");
    let model = tiny_clip();
    let args = [
        "index",
        "--db",
        db.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--batch-size",
        "4",
        "--decode-threads",
        "1",
        photos.to_str().unwrap(),
    ];
    let mut rng = Rng(42);
    let mut finished: HashMap<String, i64> = HashMap::new();
    let mut interrupted = 0;
    for round in 1..=5u32 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cliptag"))
            .args(args)
            .env("HF_HUB_OFFLINE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until this run has stored a few more batches, then kill it at a random moment.
        let target = finished.len() + (PHOTOS as usize / 8) + rng.below(8);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if db.exists() && ok_rows(&db).len() >= target {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(40) as u64));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        let _ = child.kill(); // SIGKILL on Unix
        let _ = child.wait();

        let conn = Connection::open(&db).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
        drop(conn);
        let now = ok_rows(&db);
        for (path, stamp) in &finished {
            assert_eq!(
                now.get(path),
                Some(stamp),
                "round {round}: {path} was indexed again"
            );
        }
        finished = now;
    }
    assert!(
        interrupted >= 3,
        "only {interrupted} of 5 runs were killed mid-way"
    );

    let before_final = finished.len();
    let output = cliptag(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let want = format!(
        "indexed {}, unchanged {before_final},",
        PHOTOS as usize - before_final
    );
    assert!(stderr.contains(&want), "expected {want:?} in:\n{stderr}");

    let conn = Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let (rows, distinct, ok): (i64, i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COUNT(DISTINCT path), SUM(status = 'ok') FROM images",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (rows, distinct, ok),
        (PHOTOS as i64, PHOTOS as i64, PHOTOS as i64)
    );
    let per_image: Vec<i64> = conn
        .prepare("SELECT COUNT(e.image_id) FROM images i LEFT JOIN embeddings e ON e.image_id = i.id GROUP BY i.id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(
        per_image.iter().all(|n| *n == 1),
        "embeddings per image: {per_image:?}"
    );
    let after = ok_rows(&db);
    for (path, stamp) in &finished {
        assert_eq!(
            after.get(path),
            Some(stamp),
            "{path} was indexed again by the final run"
        );
    }
}

#[test]
fn moved_and_renamed_files_keep_their_id_embedding_and_tags() {
    let photos = fixture_photos();
    let dir = photo_folder(&photos[..4]);
    let root = dir.path().canonicalize().unwrap();
    let mut library = TestLibrary::tiny();
    let first = library.index(&root);
    assert_eq!(first.indexed, 4);

    let name_a = photos[0].file_name().unwrap();
    let name_b = photos[1].file_name().unwrap();
    let store = library.store();
    let a = store.image_by_path(&root.join(name_a)).unwrap().unwrap();
    let b = store.image_by_path(&root.join(name_b)).unwrap().unwrap();
    let (label, _) = library
        .library
        .add_label(Label::new("Keep", "tiny"))
        .unwrap();
    library
        .library
        .decide(a.id, label.id, Decision::Apply)
        .unwrap();
    library
        .library
        .decide(b.id, label.id, Decision::Reject)
        .unwrap();
    let a_vector = store.embedding(a.id, "tiny").unwrap().unwrap();

    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::rename(root.join(name_a), root.join("sub").join(name_a)).unwrap();
    std::fs::rename(root.join(name_b), root.join("renamed.jpg")).unwrap();
    let second = library.index(&root);
    assert_eq!(
        (second.moved, second.indexed, second.unchanged),
        (2, 0, 2),
        "{second:?}"
    );

    let moved_a = store
        .image_by_path(&root.join("sub").join(name_a))
        .unwrap()
        .unwrap();
    let moved_b = store
        .image_by_path(&root.join("renamed.jpg"))
        .unwrap()
        .unwrap();
    assert_eq!((moved_a.id, moved_b.id), (a.id, b.id));
    assert_eq!(moved_a.status, ImageStatus::Ok);
    assert_eq!(store.embedding(a.id, "tiny").unwrap().unwrap(), a_vector);
    let kept = store.tag(a.id, label.id).unwrap().map(|t| t.0);
    assert!(
        kept.is_some_and(|t| t.is_personal() && t.applies()),
        "the decision on the moved photo: {kept:?}"
    );
    assert_eq!(
        store.tag(b.id, label.id).unwrap().map(|t| t.0),
        Some(TagSource::Rejected)
    );
    assert!(
        store.image_by_path(&root.join(name_a)).unwrap().is_none(),
        "the old path lingers"
    );
    assert_eq!(store.images().unwrap().len(), 4);
}

#[test]
fn edited_files_are_embedded_again_and_deleted_ones_marked_missing() {
    let photos = fixture_photos();
    let dir = photo_folder(&photos[..3]);
    let root = dir.path().canonicalize().unwrap();
    let mut library = TestLibrary::tiny();
    library.index(&root);
    let store = library.store();
    let edited = root.join(photos[0].file_name().unwrap());
    let deleted = root.join(photos[1].file_name().unwrap());
    let before = store.image_by_path(&edited).unwrap().unwrap();
    let old_vector = store.embedding(before.id, "tiny").unwrap().unwrap();
    let (label, _) = library
        .library
        .add_label(Label::new("Kept", "tiny"))
        .unwrap();
    let gone = store.image_by_path(&deleted).unwrap().unwrap();
    library
        .library
        .decide(gone.id, label.id, Decision::Reject)
        .unwrap();

    // Replace the photo's content (another picture, another size), stamped a minute later
    // rather than left to the clock's granularity.
    let was = std::fs::metadata(&edited).unwrap().modified().unwrap();
    write_jpeg(&edited, 300, 200, 7);
    std::fs::File::options()
        .write(true)
        .open(&edited)
        .unwrap()
        .set_modified(was + Duration::from_secs(60))
        .unwrap();
    std::fs::remove_file(&deleted).unwrap();
    let summary = library.index(&root);
    assert_eq!(
        (summary.indexed, summary.missing, summary.unchanged),
        (1, 1, 1),
        "{summary:?}"
    );

    let after = store.image_by_path(&edited).unwrap().unwrap();
    assert_eq!(after.id, before.id);
    assert_eq!((after.width, after.height), (Some(300), Some(200)));
    let new_vector = store.embedding(after.id, "tiny").unwrap().unwrap();
    assert!(
        cosine(&old_vector, &new_vector) < 0.999,
        "the embedding did not change"
    );
    let missing = store.image_by_path(&deleted).unwrap().unwrap();
    assert_eq!(missing.status, ImageStatus::Missing);
    assert_eq!(
        store.tag(gone.id, label.id).unwrap().map(|t| t.0),
        Some(TagSource::Rejected)
    );

    // Unchanged the next time.
    let again = library.index(&root);
    assert_eq!(
        (again.indexed, again.unchanged, again.missing),
        (0, 2, 0),
        "{again:?}"
    );
}

#[test]
fn exact_copies_reuse_the_embedding() {
    let photos = fixture_photos();
    let dir = photo_folder(&photos[..2]);
    let root = dir.path().canonicalize().unwrap();
    let mut library = TestLibrary::tiny();
    library.index(&root);
    std::fs::copy(&photos[0], root.join("copy.jpg")).unwrap();
    let summary = library.index(&root);
    assert_eq!((summary.duplicates, summary.indexed), (1, 0), "{summary:?}");
    let store = library.store();
    let original = store
        .image_by_path(&root.join(photos[0].file_name().unwrap()))
        .unwrap()
        .unwrap();
    let copy = store
        .image_by_path(&root.join("copy.jpg"))
        .unwrap()
        .unwrap();
    assert_ne!(original.id, copy.id);
    assert_eq!(
        store.embedding(original.id, "tiny").unwrap(),
        store.embedding(copy.id, "tiny").unwrap()
    );
}

#[test]
fn hidden_folders_and_symlink_loops_are_skipped() {
    let photos = fixture_photos();
    let dir = photo_folder(&photos[..1]);
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join(".thumbnails")).unwrap();
    std::fs::copy(&photos[1], root.join(".thumbnails/hidden.jpg")).unwrap();
    std::fs::create_dir(root.join("nested")).unwrap();
    std::fs::copy(&photos[2], root.join("nested/photo_without_extension")).unwrap();
    std::fs::write(root.join("nested/notes.txt"), "not a photo").unwrap();
    std::os::unix::fs::symlink(&root, root.join("nested/loop")).unwrap();
    let mut library = TestLibrary::tiny();
    let summary = library.index(&root);
    assert_eq!(summary.indexed, 2, "{summary:?}");
    let paths: Vec<PathBuf> = library
        .library
        .files()
        .unwrap()
        .into_iter()
        .map(|i| i.path)
        .collect();
    assert!(
        paths.contains(&root.join("nested/photo_without_extension")),
        "{paths:?}"
    );
}

#[test]
fn cli_index_lists_failures_and_still_succeeds() {
    let dir = photo_folder(&[
        fixtures().join("images/coffee.jpg"),
        fixtures().join("odd-images/truncated_60pct.jpg"),
    ]);
    let db = tempfile::tempdir().unwrap();
    let db = db.path().join("lib.sqlite");
    let model = tiny_clip();
    let output = cliptag(&[
        "index",
        "--db",
        db.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("indexed 1,") && stderr.contains("failed 1"),
        "{stderr}"
    );
    assert!(
        stderr.contains("truncated_60pct.jpg: damaged JPEG"),
        "{stderr}"
    );
    let files = cliptag(&["files", "--db", db.to_str().unwrap()]);
    let listing = String::from_utf8_lossy(&files.stdout);
    assert!(listing.contains("coffee.jpg\tok\t"), "{listing}");
    assert!(
        listing.contains("truncated_60pct.jpg\terror\tdamaged JPEG"),
        "{listing}"
    );

    let missing = cliptag(&[
        "index",
        "--db",
        db.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "/no/such/folder",
    ]);
    assert_clean_failure(&missing, &["/no/such/folder"]);
}

#[test]
fn reduced_size_jpeg_decoding_keeps_the_embedding() {
    // A 12-megapixel photo: the astronaut scaled up to 4000×3000.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jpg");
    let small = image::open(fixtures().join("images/astronaut.jpg")).unwrap();
    small
        .resize_exact(4000, 3000, image::imageops::FilterType::Triangle)
        .to_rgb8()
        .save(&path)
        .unwrap();
    let engine = tiny_engine();
    let full = imaging::decode_file(&path, None).unwrap();
    let reduced = imaging::decode_file(&path, Some(224)).unwrap();
    assert!(!full.reduced() && reduced.reduced());
    assert_eq!(reduced.display_size, (4000, 3000));
    assert!(
        reduced.image.height() >= 448 && reduced.image.height() < 1500,
        "{}",
        reduced.image.height()
    );
    let config = engine.preprocess_config();
    let a = imaging::preprocess(&full.image, config);
    let b = reduced.preprocess(config);
    let embeddings = engine.embed_images(&[a, b]).unwrap();
    let cos = cosine(&embeddings[0], &embeddings[1]);
    assert!(
        cos >= 0.9998,
        "reduced decoding moved the embedding: cosine {cos}"
    );
}

/// Photos whose short side is 900 once made the resize window end a fraction of a pixel past the
/// image; the panic left them waiting forever. Both ways up they index as ok, and the stored
/// vector is the one the photo's own pixels give.
#[test]
fn photos_of_1200_by_900_index_as_ok_both_ways_up() {
    let source = image::open(fixtures().join("images/chelsea.png"))
        .unwrap()
        .to_rgb8();
    let landscape =
        image::imageops::resize(&source, 1200, 900, image::imageops::FilterType::Triangle);
    let portrait = image::imageops::rotate90(&landscape);
    let dir = tempfile::tempdir().unwrap();
    landscape.save(dir.path().join("landscape.png")).unwrap();
    portrait.save(dir.path().join("portrait.png")).unwrap();

    let engine = tiny_engine();
    let mut library = TestLibrary::tiny();
    let summary = library.index(dir.path());
    assert_eq!((summary.indexed, summary.failed), (2, 0), "{summary:?}");
    let store = library.store();
    for (name, pixels) in [("landscape.png", &landscape), ("portrait.png", &portrait)] {
        let path = dir.path().join(name).canonicalize().unwrap();
        let row = store.image_by_path(&path).unwrap().unwrap();
        assert_eq!(row.status, ImageStatus::Ok, "{name}: {:?}", row.error);
        let stored = store.embedding(row.id, "tiny").unwrap().unwrap();
        let own = engine
            .embed_images(&[imaging::preprocess(pixels, engine.preprocess_config())])
            .unwrap()
            .pop()
            .unwrap();
        assert!(
            cosine(&stored, &own) > 0.9999,
            "{name}: {}",
            cosine(&stored, &own)
        );
    }
}

/// `embed` reports what it cannot embed and never panics; a 1200×900 PNG embeds.
#[test]
fn embed_takes_a_1200_by_900_png() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("wide.png");
    image::RgbImage::from_fn(1200, 900, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .save(&photo)
        .unwrap();
    let out = cliptag_ok(&[
        "embed",
        "--model",
        tiny_clip().to_str().unwrap(),
        photo.to_str().unwrap(),
    ]);
    assert_eq!(json_lines(&out.stdout).len(), 1);
}

/// Renames `names[i]` to `names[i + 1]` (and the last to the first) under `root`, as a renamer
/// that re-sorts photos does.
fn rotate_names(root: &Path, names: &[&str]) {
    let parked = root.join(".rotating");
    std::fs::rename(root.join(names[names.len() - 1]), &parked).unwrap();
    for i in (0..names.len() - 1).rev() {
        std::fs::rename(root.join(names[i]), root.join(names[i + 1])).unwrap();
    }
    std::fs::rename(parked, root.join(names[0])).unwrap();
}

/// Every record's vector is the one its file's content gives, and no two records share one.
fn assert_vectors_follow_content(library: &TestLibrary, root: &Path, names: &[&str]) {
    let engine = tiny_engine();
    let store = library.store();
    let mut seen: Vec<Vec<f32>> = Vec::new();
    for name in names {
        let row = store.image_by_path(&root.join(name)).unwrap().unwrap();
        assert_eq!(row.status, ImageStatus::Ok, "{name}");
        let stored = store.embedding(row.id, "tiny").unwrap().unwrap();
        let decoded = imaging::decode_file(&root.join(name), Some(224)).unwrap();
        let own = engine
            .embed_images(&[imaging::preprocess(
                &decoded.image,
                engine.preprocess_config(),
            )])
            .unwrap()
            .pop()
            .unwrap();
        assert!(
            cosine(&stored, &own) > 0.999,
            "{name}: {}",
            cosine(&stored, &own)
        );
        assert!(!seen.contains(&stored), "{name} shares its vector");
        seen.push(stored);
    }
}

/// Two photos' names swapped, and three rotated: each record (vector, tags, the person's
/// decisions) follows its content to the new name; nothing is copied.
#[test]
fn swapped_and_rotated_names_keep_each_photo_with_its_own_vector_and_decisions() {
    let photos = fixture_photos();
    let dir = photo_folder(&photos[..5]);
    let root = dir.path().canonicalize().unwrap();
    let names: Vec<String> = photos[..5]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut library = TestLibrary::tiny();
    library.index(&root);
    let store = library.store();
    let (label, _) = library
        .library
        .add_label(Label {
            threshold: 1.0,
            ..Label::new("Mine", "tiny")
        })
        .unwrap();
    let ids: Vec<i64> = names
        .iter()
        .map(|n| store.image_by_path(&root.join(n)).unwrap().unwrap().id)
        .collect();
    library
        .library
        .decide(ids[0], label.id, Decision::Apply)
        .unwrap();
    library
        .library
        .decide(ids[2], label.id, Decision::Reject)
        .unwrap();

    rotate_names(&root, &names[..2]);
    let swapped = library.index(&root);
    assert_eq!(
        (swapped.moved, swapped.duplicates, swapped.indexed),
        (2, 0, 0),
        "{swapped:?}"
    );
    assert_vectors_follow_content(&library, &root, &names);
    // The first photo's content is under the second name now, with its record.
    let row = store.image_by_path(&root.join(names[1])).unwrap().unwrap();
    assert_eq!(row.id, ids[0]);
    assert_eq!(
        store.tag(ids[0], label.id).unwrap().map(|t| t.0),
        Some(TagSource::Manual)
    );

    rotate_names(&root, &names[2..5]);
    let rotated = library.index(&root);
    assert_eq!(
        (rotated.moved, rotated.duplicates, rotated.indexed),
        (3, 0, 0),
        "{rotated:?}"
    );
    assert_vectors_follow_content(&library, &root, &names);
    let row = store.image_by_path(&root.join(names[3])).unwrap().unwrap();
    assert_eq!(row.id, ids[2]);
    assert_eq!(
        store.tag(ids[2], label.id).unwrap().map(|t| t.0),
        Some(TagSource::Rejected)
    );
    // A run after it finds nothing to do.
    let again = library.index(&root);
    assert_eq!(
        (again.unchanged, again.moved, again.indexed),
        (5, 0, 0),
        "{again:?}"
    );
    assert_eq!(store.images().unwrap().len(), 5);
}

/// A library an older cliptag left with one photo's vector on two records (after a swap) is
/// repaired on the next index: the photos are embedded again.
#[test]
fn a_library_whose_records_share_another_photos_vector_is_repaired() {
    let photos = fixture_photos();
    let dir = photo_folder(&photos[..3]);
    let root = dir.path().canonicalize().unwrap();
    let names: Vec<String> = photos[..3]
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut library = TestLibrary::tiny();
    library.index(&root);
    let store = library.store();
    let a = store.image_by_path(&root.join(names[0])).unwrap().unwrap();
    let b = store.image_by_path(&root.join(names[1])).unwrap().unwrap();
    drop(store);
    {
        let conn = Connection::open(library.db()).unwrap();
        conn.execute(
            "UPDATE embeddings SET vector = (SELECT vector FROM embeddings WHERE image_id = ?1)
             WHERE image_id = ?2",
            [a.id, b.id],
        )
        .unwrap();
        conn.execute(
            "DELETE FROM settings WHERE key = 'shared_vectors_checked'",
            [],
        )
        .unwrap();
    }
    // A library reopened, as after an upgrade.
    let (reopened, _) = open_with(&library.db(), std::sync::Arc::new(tiny_engine()));
    library.library = reopened;
    let summary = library.index(&root);
    assert_eq!(summary.indexed, 2, "{summary:?}");
    assert_vectors_follow_content(&library, &root, &names);
}

/// A 4 GB file named `.jpg` that is not an image (a sparse disk image) is refused from its first
/// bytes: indexing says why and goes on.
#[test]
fn a_huge_file_that_is_not_an_image_is_refused_from_its_first_bytes() {
    let dir = photo_folder(&fixture_photos()[..1]);
    let huge = dir.path().join("disk.jpg");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    // A 4 GB file that starts like a JPEG is refused by its size before it is read.
    let big = dir.path().join("big.jpg");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&big).unwrap();
        file.write_all(&[0xFF, 0xD8, 0xFF, 0xE0]).unwrap();
        file.set_len(4 << 30).unwrap();
    }
    let mut library = TestLibrary::tiny();
    let summary = library.index(dir.path());
    assert_eq!((summary.indexed, summary.failed), (1, 2), "{summary:?}");
    let (status, reason) = status_of(&library.store(), &huge);
    assert_eq!(status, ImageStatus::Error);
    assert!(reason.unwrap_or_default().contains("not an image"));
    let (status, reason) = status_of(&library.store(), &big);
    assert_eq!(status, ImageStatus::Error);
    let reason = reason.unwrap_or_default();
    assert!(reason.contains("too large to read as a photo"), "{reason}");
}

/// While one run indexes a library (the app), a `cliptag index` on it says that another cliptag
/// is indexing and changes nothing; once the run ends, the next one gets in.
#[test]
fn a_second_indexer_on_one_library_is_told_to_wait() {
    let photos = photo_folder(&fixture_photos()[..3]);
    let mut library = TestLibrary::tiny();
    let db = library.db();
    let run = library
        .library
        .start_index(
            &[photos.path().to_path_buf()],
            small_batches(),
            cliptag::library::RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    let model = tiny_clip();
    let args = [
        "index",
        "--db",
        db.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        photos.path().to_str().unwrap(),
    ];
    assert_clean_failure(&cliptag(&args), &["another cliptag is indexing"]);
    let summary = library.library.finish_index(run, &mut |_| {});
    assert_eq!(summary.failed, 0, "{summary:?}");
    cliptag_ok(&args);
}

/// Two photos of the same size and modification time swap names (a renamer that keeps times):
/// the files' identities changed, so the swap is found and each record follows its content.
#[test]
fn photos_of_equal_size_and_time_that_swap_names_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let stripes = image::RgbImage::from_fn(64, 64, |x, _| image::Rgb([(x * 4) as u8, 0, 200]));
    let checker = image::RgbImage::from_fn(64, 64, |x, y| {
        let on = ((x / 8) + (y / 8)) % 2 == 0;
        image::Rgb(if on { [255, 255, 255] } else { [0, 0, 0] })
    });
    stripes.save(root.join("x.bmp")).unwrap();
    checker.save(root.join("y.bmp")).unwrap();
    let when = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_836_800);
    for name in ["x.bmp", "y.bmp"] {
        let file = std::fs::File::options()
            .write(true)
            .open(root.join(name))
            .unwrap();
        file.set_modified(when).unwrap();
    }
    assert_eq!(
        std::fs::metadata(root.join("x.bmp")).unwrap().len(),
        std::fs::metadata(root.join("y.bmp")).unwrap().len()
    );
    let mut library = TestLibrary::tiny();
    library.index(&root);
    let store = library.store();
    let x = store.image_by_path(&root.join("x.bmp")).unwrap().unwrap();
    rotate_names(&root, &["x.bmp", "y.bmp"]);
    let swapped = library.index(&root);
    assert_eq!((swapped.moved, swapped.unchanged), (2, 0), "{swapped:?}");
    assert_eq!(
        store
            .image_by_path(&root.join("y.bmp"))
            .unwrap()
            .unwrap()
            .id,
        x.id
    );
    assert_vectors_follow_content(&library, &root, &["x.bmp", "y.bmp"]);
}

#[test]
fn a_photo_the_system_would_not_read_is_tried_again_and_a_broken_one_is_not() {
    let dir = photo_folder(&[
        fixtures().join("images/coffee.jpg"),
        fixtures().join("images/motorcycle.jpg"),
    ]);
    let root = dir.path().canonicalize().unwrap();
    let mut library = TestLibrary::tiny();
    assert_eq!(library.index(&root).indexed, 2);
    // What a run without permission to read coffee.jpg stored (tests may run as root, whom
    // `chmod` does not stop), and one that found motorcycle.jpg broken. Neither file changes
    // afterwards: `chmod` leaves the size and time as they were.
    let (coffee, motorcycle) = (root.join("coffee.jpg"), root.join("motorcycle.jpg"));
    {
        let store = library.store();
        let db = Connection::open(library.db()).unwrap();
        for (path, reason) in [
            (&coffee, "Permission denied (os error 13)"),
            (&motorcycle, "JPEG data ends early"),
        ] {
            let id = store.image_by_path(path).unwrap().unwrap().id;
            db.execute(
                "UPDATE images SET status = 'error', error = ?2 WHERE id = ?1",
                rusqlite::params![id, reason],
            )
            .unwrap();
            db.execute("DELETE FROM embeddings WHERE image_id = ?1", [id])
                .unwrap();
        }
    }
    let again = library.index(&root);
    assert_eq!((again.indexed, again.unchanged), (1, 1), "{again:?}");
    let store = library.store();
    assert_eq!(status_of(&store, &coffee), (ImageStatus::Ok, None));
    assert_eq!(
        status_of(&store, &motorcycle),
        (ImageStatus::Error, Some("JPEG data ends early".to_string()))
    );
}
