//! HEIC/HEIF photos, as iPhones save them: decoded like libheif decodes them for display,
//! embedded like the reference pipeline, indexed, listed and exported like any JPEG, and broken
//! ones refused with a reason.

use std::path::PathBuf;

use cliptag::domain::ImageStatus;
use cliptag::imaging::{self, preprocess};
use cliptag::model::Embedder;
use serde_json::Value;
use sha2::Digest;

use crate::indexing::photo_folder;
use crate::support::*;

fn heic_dir() -> PathBuf {
    fixtures().join("heic")
}

/// The fixtures' manifest: each file, its expected outcome and (for good ones) display size.
fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(heic_dir().join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    manifest["files"].as_array().unwrap().clone()
}

fn files_expected(outcome: &str) -> Vec<Value> {
    manifest()
        .into_iter()
        .filter(|e| e["expected"] == outcome)
        .collect()
}

fn name(entry: &Value) -> &str {
    entry["file"].as_str().unwrap()
}

#[test]
fn every_good_heic_decodes_to_libheifs_pixels_and_embeds_like_the_reference() {
    let reference = load_tensors(&heic_dir().join("reference.safetensors"));
    let engine = tiny_engine();
    let good = files_expected("ok");
    assert!(
        good.len() >= 6,
        "the manifest lists {} good files",
        good.len()
    );
    for entry in &good {
        let path = heic_dir().join(name(entry));
        let decoded =
            imaging::decode_file(&path, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let size = entry["display_size"].as_array().unwrap();
        let want_size = (size[0].as_u64().unwrap(), size[1].as_u64().unwrap());
        assert_eq!(
            (
                u64::from(decoded.display_size.0),
                u64::from(decoded.display_size.1)
            ),
            want_size,
            "{}: display size",
            name(entry)
        );
        assert_eq!(
            (
                u64::from(decoded.image.width()),
                u64::from(decoded.image.height())
            ),
            want_size,
            "{}: a HEIC is decoded at its full size",
            name(entry)
        );
        // HEVC decoding is exact, and the conversion to RGB follows libheif's: every pixel is
        // the one pillow-heif shows.
        let digest = sha2::Sha256::digest(decoded.image.as_raw());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            entry["rgb_sha256"].as_str().unwrap(),
            "{}: the pixels differ from libheif's",
            name(entry)
        );
        let pixels = preprocess(&decoded.image, engine.preprocess_config());
        let got = engine.embed_images(&[pixels]).unwrap().remove(0);
        let want = rows(&reference[name(entry)].unsqueeze(0).unwrap()).remove(0);
        let cos = cosine(&got, &want);
        assert!(
            cos >= 0.999,
            "{}: cosine {cos} to the reference",
            name(entry)
        );
    }
}

#[test]
fn a_rotated_heic_is_turned_once_not_twice() {
    // pillow-heif stores EXIF orientation 6 as an `irot` and leaves the EXIF tag at 6: the file
    // is 300×400 as coded (the cat on its side) and 400×300 as shown, upright. Applying the EXIF
    // tag as well would turn it a second time.
    let decoded = imaging::decode_file(&heic_dir().join("rotated.heic"), None).unwrap();
    assert_eq!(decoded.display_size, (400, 300));
    // The reference check above tells orientations apart: the photo turned any other way is
    // further from libheif's than the limit allows.
    let engine = tiny_engine();
    let reference = load_tensors(&heic_dir().join("reference.safetensors"));
    let want = rows(&reference["rotated.heic"].unsqueeze(0).unwrap()).remove(0);
    let embed = |image: &image::RgbImage| {
        engine
            .embed_images(&[preprocess(image, engine.preprocess_config())])
            .unwrap()
            .remove(0)
    };
    assert!(cosine(&embed(&decoded.image), &want) >= 0.999);
    for (turn, image) in [
        ("a quarter", image::imageops::rotate90(&decoded.image)),
        ("a half", image::imageops::rotate180(&decoded.image)),
        ("three quarters", image::imageops::rotate270(&decoded.image)),
    ] {
        let cos = cosine(&embed(&image), &want);
        assert!(cos < 0.999, "turned {turn} further: cosine {cos}");
    }
}

#[test]
fn broken_heics_fail_with_a_reason_and_never_panic() {
    let broken = files_expected("error");
    assert!(broken.len() >= 4);
    for entry in &broken {
        let path = heic_dir().join(name(entry));
        let error = match imaging::decode_file(&path, None) {
            Ok(d) => panic!("{} decoded as {:?}", name(entry), d.display_size),
            Err(e) => e.to_string(),
        };
        assert!(
            error.contains(name(entry)) && error.contains("HEIF") && !error.contains("panicked"),
            "{}: {error}",
            name(entry)
        );
    }
    let reasons: Vec<String> = ["truncated.heic", "missing_tile.heic", "bad_hevc.heic"]
        .iter()
        .map(|f| {
            imaging::decode_file(&heic_dir().join(f), None)
                .err()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(reasons[0].contains("ends early"), "{}", reasons[0]);
    assert!(reasons[1].contains("missing"), "{}", reasons[1]);
    assert!(reasons[2].contains("does not decode"), "{}", reasons[2]);

    // Every cut of a grid photo, from its first bytes to one byte short, is refused cleanly.
    let grid = std::fs::read(heic_dir().join("grid.heic")).unwrap();
    for cut in (0..grid.len()).step_by(grid.len() / 97 + 1) {
        if let Ok(d) = imaging::decode_bytes(&grid[..cut], None) {
            panic!(
                "{cut} of {} bytes decoded as {:?}",
                grid.len(),
                d.display_size
            );
        }
    }
    assert!(imaging::decode_bytes(&grid[..grid.len() - 1], None).is_err());
}

#[test]
fn a_heic_is_recognised_by_its_content_not_its_name() {
    let bytes = std::fs::read(heic_dir().join("mono.heic")).unwrap();
    assert!(imaging::is_photo(&bytes));
    let dir = tempfile::tempdir().unwrap();
    let misnamed = dir.path().join("from-the-phone.jpg");
    std::fs::write(&misnamed, &bytes).unwrap();
    let decoded = imaging::decode_file(&misnamed, Some(224)).unwrap();
    assert_eq!(decoded.display_size, (256, 256));
}

#[test]
fn cli_indexes_lists_tags_and_exports_a_folder_of_heics() {
    let entries = manifest();
    let files: Vec<PathBuf> = entries.iter().map(|e| heic_dir().join(name(e))).collect();
    let dir = photo_folder(&files);
    // As an iPhone names them, upper case, beside the fixtures.
    std::fs::rename(
        dir.path().join("grid.heic"),
        dir.path().join("IMG_0001.HEIC"),
    )
    .unwrap();
    let shown = |file: &str| {
        if file == "grid.heic" {
            "IMG_0001.HEIC".to_string()
        } else {
            file.to_string()
        }
    };
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    let stderr = index_with_tiny(&db, dir.path());
    let good = entries.iter().filter(|e| e["expected"] == "ok").count();
    assert!(
        stderr.contains(&format!("indexed {good},"))
            && stderr.contains(&format!("failed {}", entries.len() - good)),
        "{stderr}"
    );

    let listing = files_listing(&db);
    assert_eq!(listing.len(), entries.len(), "{listing:?}");
    for entry in &entries {
        let file = shown(name(entry));
        let (_, status, reason) = listing
            .iter()
            .find(|(f, _, _)| *f == file)
            .unwrap_or_else(|| panic!("{file} is not listed: {listing:?}"));
        if entry["expected"] == "ok" {
            assert_eq!((status.as_str(), reason.as_str()), ("ok", ""), "{file}");
        } else {
            assert_eq!(status, "error", "{file}");
            assert!(reason.starts_with("damaged HEIF file"), "{file}: {reason}");
        }
    }

    // A person's tag on the iPhone photo, then CSV and both sidecar namings.
    let photo = dir.path().canonicalize().unwrap().join("IMG_0001.HEIC");
    cliptag_ok(&["vocab", "add", "--db", db_arg, "Holiday/Beach"]);
    cliptag_ok(&[
        "tag",
        "add",
        "--db",
        db_arg,
        photo.to_str().unwrap(),
        "Holiday/Beach",
    ]);
    let csv = db_dir.path().join("tags.csv");
    cliptag_ok(&["export", "--db", db_arg, "--csv", csv.to_str().unwrap()]);
    let csv = std::fs::read_to_string(&csv).unwrap();
    let row = csv
        .lines()
        .find(|l| l.contains("IMG_0001.HEIC"))
        .unwrap_or_else(|| panic!("no row for the HEIC:\n{csv}"));
    assert!(row.contains("Holiday/Beach"), "{row}");

    for (flag, sidecar) in [
        ("appended", "IMG_0001.HEIC.xmp"),
        ("replaced", "IMG_0001.xmp"),
    ] {
        cliptag_ok(&["export", "--db", db_arg, "--xmp", "--xmp-naming", flag]);
        let xmp = std::fs::read_to_string(dir.path().join(sidecar))
            .unwrap_or_else(|e| panic!("{sidecar}: {e}"));
        assert!(xmp.contains("<rdf:li>Beach</rdf:li>"), "{xmp}");
        assert!(xmp.contains("Holiday|Beach"), "{xmp}");
    }
    // The photo itself is untouched.
    assert_eq!(
        std::fs::read(&photo).unwrap(),
        std::fs::read(heic_dir().join("grid.heic")).unwrap()
    );
}

#[test]
fn a_moved_heic_keeps_its_id_and_embedding() {
    let dir = photo_folder(&[heic_dir().join("grid.heic"), heic_dir().join("mono.heic")]);
    let root = dir.path().canonicalize().unwrap();
    let mut library = TestLibrary::tiny();
    assert_eq!(library.index(&root).indexed, 2);
    let store = library.store();
    let before = store
        .image_by_path(&root.join("grid.heic"))
        .unwrap()
        .unwrap();
    let vector = store.embedding(before.id, "tiny").unwrap().unwrap();

    std::fs::create_dir(root.join("2024")).unwrap();
    std::fs::rename(root.join("grid.heic"), root.join("2024/IMG_0001.HEIC")).unwrap();
    let second = library.index(&root);
    assert_eq!((second.moved, second.indexed), (1, 0), "{second:?}");
    let after = store
        .image_by_path(&root.join("2024/IMG_0001.HEIC"))
        .unwrap()
        .unwrap();
    assert_eq!((after.id, after.status), (before.id, ImageStatus::Ok));
    assert_eq!(store.embedding(after.id, "tiny").unwrap().unwrap(), vector);
}

#[test]
fn heics_an_older_cliptag_could_not_read_are_indexed_on_the_next_run() {
    let dir = photo_folder(&[
        heic_dir().join("grid.heic"),
        heic_dir().join("truncated.heic"),
    ]);
    let root = dir.path().canonicalize().unwrap();
    let other = photo_folder(&[heic_dir().join("mono.heic")]);
    let other_root = other.path().canonicalize().unwrap();
    let mut library = TestLibrary::tiny();
    library.index(&root);
    library.index(&other_root);
    // As a library indexed before cliptag read HEIC: every HEIC failed as "not an image".
    {
        let db = rusqlite::Connection::open(library.db()).unwrap();
        db.execute(
            "UPDATE images SET status = 'error', error = 'not an image'",
            [],
        )
        .unwrap();
        db.execute("DELETE FROM embeddings", []).unwrap();
        db.execute(
            "UPDATE settings SET value = '1: JPEG PNG WebP GIF BMP TIFF' WHERE key = 'decoders'",
            [],
        )
        .unwrap();
    }
    let store = library.store();
    let again = library.index(&root);
    assert_eq!((again.indexed, again.failed), (1, 1), "{again:?}");
    let (grid, truncated, mono) = (
        store
            .image_by_path(&root.join("grid.heic"))
            .unwrap()
            .unwrap(),
        store
            .image_by_path(&root.join("truncated.heic"))
            .unwrap()
            .unwrap(),
        store
            .image_by_path(&other_root.join("mono.heic"))
            .unwrap()
            .unwrap(),
    );
    assert_eq!(grid.status, ImageStatus::Ok);
    assert_eq!(truncated.status, ImageStatus::Error);
    assert!(truncated.error.unwrap().contains("ends early"));
    // The other folder's HEIC waits for its folder's next run, and is indexed then.
    assert_eq!(mono.status, ImageStatus::Pending);
    assert_eq!(library.index(&other_root).indexed, 1);
    // Once tried with these decoders, a failure is not tried again while the file is unchanged.
    let third = library.index(&root);
    assert_eq!(
        (third.indexed, third.failed, third.unchanged),
        (0, 0, 2),
        "{third:?}"
    );
}

/// How far, on average, the reduced pixels are from the means of the full decode's blocks they
/// would cover were the reduced image's first block `lead` full pixels before the photo: the
/// block of pixel `i` is `[i·scale − lead, (i+1)·scale − lead)` along each side, cut to the photo.
fn block_error(full: &image::RgbImage, reduced: &imaging::Decoded, lead: (u32, u32)) -> f64 {
    let s = reduced.scale;
    let span = |i: u32, lead: u32, len: u32| {
        let start = (i * s).saturating_sub(lead);
        let end = ((i + 1) * s).saturating_sub(lead).min(len);
        start..end
    };
    let (w, h) = reduced.image.dimensions();
    let mut total = 0f64;
    for y in 0..h {
        for x in 0..w {
            let (mut sum, mut n) = ([0f64; 3], 0f64);
            for fy in span(y, lead.1, full.height()) {
                for fx in span(x, lead.0, full.width()) {
                    let p = full.get_pixel(fx, fy).0;
                    for c in 0..3 {
                        sum[c] += f64::from(p[c]);
                    }
                    n += 1.0;
                }
            }
            let got = reduced.image.get_pixel(x, y).0;
            total += (0..3)
                .map(|c| (f64::from(got[c]) - sum[c] / n.max(1.0)).abs())
                .sum::<f64>()
                / 3.0;
        }
    }
    total / f64::from(w * h)
}

#[test]
fn a_reduced_heic_decode_is_the_full_decode_in_blocks_turned_as_the_photo_is() {
    for entry in files_expected("ok") {
        let path = heic_dir().join(name(&entry));
        let full = imaging::decode_file(&path, None).unwrap();
        let short = full.display_size.0.min(full.display_size.1);
        // A model this small makes every fixture decode at an eighth of its size.
        let reduced = imaging::decode_file(&path, Some(short / 16)).unwrap();
        assert_eq!(reduced.scale, 8, "{}", name(&entry));
        assert_eq!(reduced.display_size, full.display_size, "{}", name(&entry));
        let s = reduced.scale;
        assert_eq!(
            reduced.image.dimensions(),
            (
                (full.display_size.0 + reduced.lead.0).div_ceil(s),
                (full.display_size.1 + reduced.lead.1).div_ceil(s)
            ),
            "{}: lead {:?}",
            name(&entry),
            reduced.lead
        );
        // Each reduced pixel is its block's mean, but for the in-loop filters the reduced
        // decode skips and rounding; and the blocks lie where the decode says they do: no
        // other placement fits better.
        let error = block_error(&full.image, &reduced, reduced.lead);
        assert!(
            error < 2.0,
            "{}: reduced pixels differ from the full decode's blocks by {error:.2} levels on average",
            name(&entry)
        );
        for lx in 0..s {
            for ly in 0..s {
                let other = block_error(&full.image, &reduced, (lx, ly));
                assert!(
                    error <= other,
                    "{}: blocks placed with lead {:?} fit worse ({error:.3}) than with {:?} ({other:.3})",
                    name(&entry),
                    reduced.lead,
                    (lx, ly)
                );
            }
        }
    }
}

#[test]
fn a_large_heic_decodes_reduced_for_indexing_and_keeps_its_embedding() {
    // A 4-megapixel photo as an iPhone stores one: 512×512 tiles, 4:2:0.
    let source = image::open(fixtures().join("images/astronaut.jpg"))
        .unwrap()
        .resize_exact(2304, 1792, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let bytes = heifer::encode_rgb8(
        source.width(),
        source.height(),
        source.as_raw(),
        &heifer::EncodeOptions {
            quality: 80,
            max_threads: 0,
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("IMG_0001.HEIC");
    std::fs::write(&path, bytes).unwrap();

    let engine = tiny_engine();
    let config = engine.preprocess_config();
    let full = imaging::decode_file(&path, None).unwrap();
    let reduced = imaging::decode_file(&path, Some(config.min_short_side())).unwrap();
    assert!(!full.reduced());
    assert_eq!(reduced.scale, 4, "the short side 1792 is 4 × 448");
    assert_eq!(reduced.display_size, (2304, 1792));
    assert_eq!(reduced.image.dimensions(), (576, 448));
    let a = imaging::preprocess(&full.image, config);
    let b = reduced.preprocess(config);
    let embeddings = engine.embed_images(&[a, b]).unwrap();
    let cos = cosine(&embeddings[0], &embeddings[1]);
    assert!(
        cos >= 0.9995,
        "reduced decoding moved the embedding: cosine {cos}"
    );
}

#[test]
fn grid_tiles_decoded_on_idle_cores_give_the_same_pixels() {
    let path = heic_dir().join("grid.heic");
    let alone = imaging::decode_file(&path, None).unwrap();
    let before = imaging::heif::helpers_started();
    // Three idle cores for its six tiles. Other tests running meanwhile may borrow them too;
    // this one only needs some helper to have started while it decoded.
    imaging::lend_spare_threads(3);
    let mut helped = false;
    for _ in 0..20 {
        let shared = imaging::decode_file(&path, None).unwrap();
        assert_eq!(shared.image.as_raw(), alone.image.as_raw());
        let reduced = imaging::decode_file(&path, Some(40)).unwrap();
        assert_eq!(reduced.scale, 8);
        helped = imaging::heif::helpers_started() > before;
        if helped {
            break;
        }
    }
    imaging::withdraw_spare_threads(3);
    assert!(helped, "no tile was decoded on an idle core");
}
