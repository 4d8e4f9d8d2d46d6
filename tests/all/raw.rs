//! Camera RAW files, tagged from the JPEG previews their cameras embed: each container's preview
//! found and embedded like the reference pipeline, turned by the RAW's own orientation, indexed,
//! listed and exported like any JPEG, broken ones refused with a reason naming the file.

use std::path::PathBuf;

use cliptag::imaging::{self, preprocess, raw};
use cliptag::model::Embedder;
use serde_json::Value;

use crate::indexing::photo_folder;
use crate::support::*;

fn raw_dir() -> PathBuf {
    fixtures().join("raw")
}

/// The fixtures' manifest: each file, its expected outcome, and (for good ones) display size
/// and orientation, or (for broken ones) words its reason must contain.
fn manifest() -> Vec<Value> {
    let text = std::fs::read_to_string(raw_dir().join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&text).unwrap();
    manifest["files"].as_array().unwrap().clone()
}

fn name(entry: &Value) -> &str {
    entry["file"].as_str().unwrap()
}

fn expected(outcome: &str) -> Vec<Value> {
    manifest()
        .into_iter()
        .filter(|e| e["expected"] == outcome)
        .collect()
}

fn embed(engine: &cliptag::model::Engine, image: &image::RgbImage) -> Vec<f32> {
    engine
        .embed_images(&[preprocess(image, engine.preprocess_config())])
        .unwrap()
        .remove(0)
}

#[test]
fn every_raw_fixture_embeds_its_preview_like_the_reference() {
    let reference = load_tensors(&raw_dir().join("reference.safetensors"));
    let engine = tiny_engine();
    let good = expected("ok");
    // CR2, CR3, DNG, NEF, RW2 and RAF, and three turned by their orientation.
    assert!(good.len() >= 9, "{} good fixtures", good.len());
    for entry in &good {
        let path = raw_dir().join(name(entry));
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            raw::recognise(&bytes, false).is_some(),
            "{}: not recognised as a RAW by its content",
            name(entry)
        );
        for reduce in [None, Some(224)] {
            let decoded = imaging::decode_file(&path, reduce)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let size = entry["display_size"].as_array().unwrap();
            let want = (
                size[0].as_u64().unwrap() as u32,
                size[1].as_u64().unwrap() as u32,
            );
            assert_eq!(decoded.display_size, want, "{}: display size", name(entry));
            let got = embed(&engine, &decoded.image);
            let want = rows(&reference[name(entry)].unsqueeze(0).unwrap()).remove(0);
            let cos = cosine(&got, &want);
            assert!(
                cos >= 0.999,
                "{} ({reduce:?}): cosine {cos} to the reference",
                name(entry)
            );
        }
    }
}

#[test]
fn a_raw_is_turned_by_its_own_orientation_once() {
    let reference = load_tensors(&raw_dir().join("reference.safetensors"));
    let engine = tiny_engine();
    // The DNG's preview carries an EXIF orientation of its own (3) that must not count; the
    // CR3's orientation is in its CMT1 block; the RAF's is in its preview's EXIF.
    let turned: Vec<Value> = expected("ok")
        .into_iter()
        .filter(|e| e["orientation"] != 1)
        .collect();
    assert!(turned.len() >= 3, "{turned:?}");
    for entry in &turned {
        let decoded = imaging::decode_file(&raw_dir().join(name(entry)), None).unwrap();
        let want = rows(&reference[name(entry)].unsqueeze(0).unwrap()).remove(0);
        let got = embed(&engine, &decoded.image);
        assert!(cosine(&got, &want) >= 0.999);
        // Upright as a person sees it, not only as the tags say: closer to the photo the preview
        // was made from than any other turn of it is.
        let source = fixtures()
            .join("images")
            .join(entry["upright"].as_str().unwrap());
        let source = imaging::decode_file(&source, None).unwrap().image;
        let (width, height) = decoded.display_size;
        let source = imaging::preprocess::resize(
            &source,
            width,
            height,
            cliptag::model::config::Resample::Lanczos,
        );
        let upright = embed(&engine, &source);
        let close = cosine(&got, &upright);
        assert!(
            close >= 0.99,
            "{}: cosine {close} to its photo",
            name(entry)
        );
        for image in [
            image::imageops::rotate90(&decoded.image),
            image::imageops::rotate180(&decoded.image),
            image::imageops::rotate270(&decoded.image),
        ] {
            let other = cosine(&embed(&engine, &image), &upright);
            assert!(
                other < close,
                "{}: a further turn is closer to its photo",
                name(entry)
            );
        }
        for (turn, image) in [
            ("a quarter", image::imageops::rotate90(&decoded.image)),
            ("a half", image::imageops::rotate180(&decoded.image)),
            ("three quarters", image::imageops::rotate270(&decoded.image)),
        ] {
            let cos = cosine(&embed(&engine, &image), &want);
            assert!(
                cos < 0.999,
                "{} turned {turn} further: cosine {cos}",
                name(entry)
            );
        }
    }
}

#[test]
fn broken_and_preview_less_raws_fail_with_a_reason_naming_the_file() {
    let broken = expected("error");
    assert!(broken.len() >= 4);
    for entry in &broken {
        let path = raw_dir().join(name(entry));
        let error = match imaging::decode_file(&path, Some(224)) {
            Ok(d) => panic!("{} decoded as {:?}", name(entry), d.display_size),
            Err(e) => e.to_string(),
        };
        let reason = entry["reason"].as_str().unwrap();
        assert!(
            error.contains(name(entry)) && error.contains("camera RAW") && error.contains(reason),
            "{}: {error} (should say {reason:?})",
            name(entry)
        );
    }
    // Every cut of each good RAW, from its first bytes to one byte short, decodes or fails
    // cleanly: never a panic, never a photo from a truncated preview.
    for entry in expected("ok") {
        let whole = std::fs::read(raw_dir().join(name(&entry))).unwrap();
        for cut in (0..whole.len()).step_by(whole.len() / 61 + 1) {
            if let Ok(d) = imaging::decode_bytes(&whole[..cut], Some(224)) {
                // Only a cut past the preview (into sensor data that is not read) still decodes.
                assert!(d.display_size.0 > 0, "{}: {cut}", name(&entry));
            }
        }
    }
}

#[test]
fn a_plain_tiff_stays_a_tiff_and_a_raw_is_found_by_content_or_name() {
    // A TIFF the image crate writes (a scan, an export) is not a RAW, whatever it shows.
    let dir = tempfile::tempdir().unwrap();
    let tiff = dir.path().join("scan.tif");
    image::RgbImage::from_pixel(300, 240, image::Rgb([10, 120, 200]))
        .save(&tiff)
        .unwrap();
    let bytes = std::fs::read(&tiff).unwrap();
    assert_eq!(raw::recognise(&bytes, false), None);
    assert_eq!(
        imaging::decode_file(&tiff, None).unwrap().display_size,
        (300, 240)
    );
    // Named like a RAW, it is looked into as one; with neither sensor data nor a preview in it,
    // it is read as the TIFF it is.
    let named = dir.path().join("scan.nef");
    std::fs::copy(&tiff, &named).unwrap();
    assert_eq!(
        imaging::decode_file(&named, None).unwrap().display_size,
        (300, 240)
    );
    // A RAW renamed `.jpg` is still read as the RAW it is.
    let misnamed = dir.path().join("DSC_0001.jpg");
    std::fs::copy(raw_dir().join("nikon.nef"), &misnamed).unwrap();
    assert_eq!(
        imaging::decode_file(&misnamed, Some(224))
            .unwrap()
            .display_size,
        (320, 480)
    );
}

#[test]
fn cli_indexes_a_folder_of_raws_and_a_raw_jpeg_pair_shares_one_adobe_sidecar() {
    let entries = manifest();
    let files: Vec<PathBuf> = entries.iter().map(|e| raw_dir().join(name(e))).collect();
    let dir = photo_folder(&files);
    // A RAW+JPEG shooter's pair, named as the camera names them.
    std::fs::rename(
        dir.path().join("canon.cr2"),
        dir.path().join("IMG_0001.CR2"),
    )
    .unwrap();
    std::fs::copy(
        fixtures().join("images/astronaut.jpg"),
        dir.path().join("IMG_0001.JPG"),
    )
    .unwrap();
    let shown = |file: &str| match file {
        "canon.cr2" => "IMG_0001.CR2".to_string(),
        other => other.to_string(),
    };
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    let stderr = index_with_tiny(&db, dir.path());
    let good = entries.iter().filter(|e| e["expected"] == "ok").count();
    assert!(
        stderr.contains(&format!("indexed {},", good + 1))
            && stderr.contains(&format!("failed {}", entries.len() - good)),
        "{stderr}"
    );
    let listing = files_listing(&db);
    assert_eq!(listing.len(), entries.len() + 1, "{listing:?}");
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
            assert!(
                reason.contains(entry["reason"].as_str().unwrap()),
                "{file}: {reason}"
            );
        }
    }

    // One keyword on each photo of the pair: Adobe's naming gives them one sidecar, which holds
    // both.
    let root = dir.path().canonicalize().unwrap();
    for (photo, label) in [("IMG_0001.CR2", "Trip/Moon"), ("IMG_0001.JPG", "Studio")] {
        cliptag_ok(&["vocab", "add", "--db", db_arg, label]);
        cliptag_ok(&[
            "tag",
            "add",
            "--db",
            db_arg,
            root.join(photo).to_str().unwrap(),
            label,
        ]);
    }
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    cliptag_ok(&[
        "export",
        "--db",
        db_arg,
        "--xmp",
        "--xmp-naming",
        "replaced",
    ]);
    let xmp = std::fs::read_to_string(root.join("IMG_0001.xmp")).unwrap();
    for keyword in [
        "<rdf:li>Moon</rdf:li>",
        "Trip|Moon",
        "<rdf:li>Studio</rdf:li>",
    ] {
        assert!(xmp.contains(keyword), "no {keyword} in:\n{xmp}");
    }
    assert!(!root.join("IMG_0001.CR2.xmp").exists());
    // The photos themselves are never written.
    for (path, bytes) in before {
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{}", path.display());
    }
    let csv = db_dir.path().join("tags.csv");
    cliptag_ok(&["export", "--db", db_arg, "--csv", csv.to_str().unwrap()]);
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(
        csv.lines()
            .any(|l| l.contains("IMG_0001.CR2") && l.contains("Trip/Moon")),
        "{csv}"
    );
}

#[test]
fn a_moved_raw_keeps_its_id_and_a_thumbnail_is_made_from_its_preview() {
    let dir = photo_folder(&[raw_dir().join("rotated.dng"), raw_dir().join("nikon.nef")]);
    let root = dir.path().canonicalize().unwrap();
    let mut library = TestLibrary::tiny();
    assert_eq!(library.index(&root).indexed, 2);
    let store = library.store();
    let before = store
        .image_by_path(&root.join("rotated.dng"))
        .unwrap()
        .unwrap();
    // Stored at its displayed size, upright.
    assert_eq!((before.width, before.height), (Some(480), Some(320)));
    std::fs::create_dir(root.join("2024")).unwrap();
    std::fs::rename(root.join("rotated.dng"), root.join("2024/DSC_0001.DNG")).unwrap();
    let second = library.index(&root);
    assert_eq!((second.moved, second.indexed), (1, 0), "{second:?}");
    let after = store
        .image_by_path(&root.join("2024/DSC_0001.DNG"))
        .unwrap()
        .unwrap();
    assert_eq!(after.id, before.id);
    let thumbnail = cliptag::library::ThumbnailReader::uncached()
        .thumbnail(&root.join("2024/DSC_0001.DNG"), None, 256)
        .expect("a thumbnail from the preview");
    assert_eq!((thumbnail.width(), thumbnail.height()), (256, 170));
}

#[test]
fn raw_formats_cliptag_cannot_read_are_listed_with_a_reason_not_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    // The start of a Canon CRW (a CIFF heap) and of a Sigma X3F.
    std::fs::write(root.join("CRW_0001.CRW"), b"II\x1a\0\0\0HEAPCCDR\0\0\x01\0").unwrap();
    std::fs::write(root.join("SDIM0001.X3F"), b"FOVb\0\0\x02\0\0\0\0\0\0\0\0\0").unwrap();
    std::fs::copy(raw_dir().join("nikon.nef"), root.join("DSC_0001.NEF")).unwrap();
    let mut library = TestLibrary::tiny();
    let summary = library.index(&root);
    assert_eq!((summary.indexed, summary.failed), (1, 2), "{summary:?}");
    let store = library.store();
    for (file, format) in [("CRW_0001.CRW", "Canon CRW"), ("SDIM0001.X3F", "Sigma X3F")] {
        let row = store.image_by_path(&root.join(file)).unwrap().unwrap();
        let reason = row.error.unwrap_or_default();
        assert!(
            reason.contains(format) && reason.contains("not supported yet"),
            "{file}: {reason}"
        );
    }
}

/// A JPEG of `width`×`height`.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&image)
        .unwrap();
    out
}

/// A little-endian TIFF laid out as a NEF: IFD0 (Make NIKON) with one SubIFD per preview, each a
/// `JPEGInterchangeFormat` pair, and a SubIFD of sensor data (a colour filter array).
fn nef_with(previews: &[Vec<u8>]) -> Vec<u8> {
    let entry = |tag: u16, kind: u16, count: u32, value: u32| {
        let mut e = tag.to_le_bytes().to_vec();
        e.extend_from_slice(&kind.to_le_bytes());
        e.extend_from_slice(&count.to_le_bytes());
        e.extend_from_slice(&value.to_le_bytes());
        e
    };
    let ifd = |entries: Vec<Vec<u8>>| {
        let mut out = (entries.len() as u16).to_le_bytes().to_vec();
        entries.iter().for_each(|e| out.extend_from_slice(e));
        out.extend_from_slice(&0u32.to_le_bytes());
        out
    };
    let sub_count = previews.len() as u32 + 1;
    // IFD0 (2 entries) at 8, then the previews' SubIFDs (2 entries each), the sensor's (1), the
    // pointer array, the maker's name, the JPEGs.
    let ifd0_at = 8u32;
    let subs_at = ifd0_at + 2 + 12 * 2 + 4;
    let sub_size = 2 + 12 * 2 + 4;
    let sensor_at = subs_at + sub_size * previews.len() as u32;
    let array_at = sensor_at + 2 + 12 + 4;
    let make_at = array_at + 4 * sub_count;
    let make = b"NIKON CORPORATION\0";
    let mut jpeg_at = make_at + make.len() as u32;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&ifd0_at.to_le_bytes());
    out.extend(ifd(vec![
        entry(0x010F, 2, make.len() as u32, make_at),
        entry(0x014A, 4, sub_count, array_at),
    ]));
    let mut array = Vec::new();
    for (i, preview) in previews.iter().enumerate() {
        array.extend_from_slice(&(subs_at + sub_size * i as u32).to_le_bytes());
        out.extend(ifd(vec![
            entry(0x0201, 4, 1, jpeg_at),
            entry(0x0202, 4, 1, preview.len() as u32),
        ]));
        jpeg_at += preview.len() as u32;
    }
    array.extend_from_slice(&sensor_at.to_le_bytes());
    out.extend(ifd(vec![entry(0x0106, 3, 1, 32803)]));
    out.extend(array);
    out.extend_from_slice(make);
    previews.iter().for_each(|p| out.extend_from_slice(p));
    out
}

#[test]
fn a_thin_preview_larger_in_area_gives_way_to_one_that_can_be_tagged() {
    let bytes = nef_with(&[jpeg(4000, 40), jpeg(480, 320)]);
    assert_eq!(raw::recognise(&bytes, false), Some(raw::Kind::Nef));
    let decoded = imaging::decode_bytes(&bytes, Some(224)).unwrap();
    assert_eq!(decoded.display_size, (480, 320));
    // Alone, the thin one is named as too small.
    let thin = nef_with(&[jpeg(4000, 40)]);
    let error = imaging::decode_bytes(&thin, Some(224)).err().unwrap();
    assert!(error.contains("4000×40, too small to tag"), "{error}");
}

#[test]
fn a_raw_cut_off_before_its_preview_says_it_is_truncated() {
    let whole = nef_with(&[jpeg(480, 320)]);
    let preview_at = whole.len() - jpeg(480, 320).len();
    for cut in [preview_at, preview_at + 10, whole.len() - 100] {
        let error = imaging::decode_bytes(&whole[..cut], Some(224))
            .err()
            .unwrap();
        assert!(error.contains("truncated"), "cut at {cut}: {error}");
    }
}
