//! Reduced-size JPEG decoding through cliptag's coefficient-skipping decoder: the pixels of
//! jpeg-decoder's scaled decode in every form it takes, a decline for the forms it leaves to
//! jpeg-decoder, and no panic on damaged data.

use std::io::Cursor;
use std::path::PathBuf;

use cliptag::imaging::{self, jpeg, scaled_jpeg};

use crate::indexing::{Rng, mutate};
use crate::support::*;

fn forms() -> PathBuf {
    fixtures().join("jpeg-forms")
}

/// Every file of `jpeg-forms/` the decoder takes, with whether it is grey.
const TAKEN: [(&str, bool); 9] = [
    ("s444.jpg", false),
    ("s422.jpg", false),
    ("s420.jpg", false),
    ("s420_restart.jpg", false),
    ("s444_restart_rows.jpg", false),
    ("s420_q100.jpg", false),
    ("big_s420_restart.jpg", false),
    ("grey.jpg", true),
    ("grey_restart.jpg", true),
];

/// jpeg-decoder's decode of `bytes` with each block reduced to `n × n` pixels.
fn jpeg_decoder_scaled(bytes: &[u8], n: usize) -> (usize, usize, Vec<u8>) {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().unwrap();
    let info = decoder.info().unwrap();
    let width = (usize::from(info.width) * n).div_ceil(8);
    let height = (usize::from(info.height) * n).div_ceil(8);
    let got = decoder.scale(width as u16, height as u16).unwrap();
    assert_eq!(
        (usize::from(got.0), usize::from(got.1)),
        (width, height),
        "jpeg-decoder chose another scale"
    );
    (width, height, decoder.decode().unwrap())
}

#[test]
fn reduced_decoding_gives_jpeg_decoder_s_pixels_in_every_form() {
    for (name, grey) in TAKEN {
        let bytes = std::fs::read(forms().join(name)).unwrap();
        for n in [1, 2, 4] {
            let ours = scaled_jpeg::decode(&bytes, n)
                .unwrap_or_else(|| panic!("{name} at {n}/8 was declined"));
            let (width, height, theirs) = jpeg_decoder_scaled(&bytes, n);
            assert_eq!(
                (ours.width as usize, ours.height as usize),
                (width, height),
                "{name} at {n}/8"
            );
            assert_eq!(ours.components, if grey { 1 } else { 3 }, "{name}");
            assert_eq!(ours.data.len(), theirs.len(), "{name} at {n}/8");
            if grey {
                assert!(ours.data == theirs, "{name} at {n}/8: grey pixels differ");
                continue;
            }
            // jpeg-decoder converts colour with SIMD code that rounds some values the other
            // way; everything before (coefficients, IDCT, upsampling) must agree exactly.
            let differing = ours
                .data
                .iter()
                .zip(&theirs)
                .filter(|(a, b)| a != b)
                .count();
            let largest = ours
                .data
                .iter()
                .zip(&theirs)
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap_or(0);
            assert!(
                largest <= 1 && differing * 50 < theirs.len(),
                "{name} at {n}/8: {differing} of {} values differ, by up to {largest}",
                theirs.len()
            );
        }
    }
}

#[test]
fn forms_left_to_jpeg_decoder_are_declined() {
    for path in [
        forms().join("progressive.jpg"),
        fixtures().join("odd-images/cmyk.jpg"),
        fixtures().join("odd-images/truncated_60pct.jpg"),
        fixtures().join("images/camera.png"),
    ] {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            scaled_jpeg::decode(&bytes, 2).is_none(),
            "{} was not declined",
            path.display()
        );
    }
    // A scale that is not a reduction.
    let bytes = std::fs::read(forms().join("s420.jpg")).unwrap();
    assert!(scaled_jpeg::decode(&bytes, 8).is_none());
}

#[test]
fn indexing_decodes_a_large_baseline_jpeg_by_skipping_coefficients() {
    let bytes = std::fs::read(forms().join("big_s420_restart.jpg")).unwrap();
    // 1800×1000 with a short side of at least 448: 1/2 scale.
    let scaled = jpeg::decode_reduced(&bytes, 448).unwrap().unwrap();
    assert!(scaled.skipped_coefficients);
    let (width, height, theirs) = jpeg_decoder_scaled(&bytes, 4);
    assert_eq!(scaled.image.dimensions(), (width as u32, height as u32));
    let largest = scaled
        .image
        .as_raw()
        .iter()
        .zip(&theirs)
        .map(|(a, b)| a.abs_diff(*b))
        .max();
    assert_eq!(largest, Some(1));
}

#[test]
fn the_coefficient_decoder_survives_damaged_data() {
    let seeds: Vec<Vec<u8>> = TAKEN
        .iter()
        .map(|(name, _)| std::fs::read(forms().join(name)).unwrap())
        .collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (cases, mut decoded) = (3000, 0);
    for case in 0..cases {
        let bytes = mutate(&mut rng, &seeds[case % seeds.len()]);
        let n = [1, 2, 4][case % 3];
        // A panic fails the test: damaged data must be declined or decoded, never crash.
        if let Some(image) = scaled_jpeg::decode(&bytes, n) {
            assert_eq!(
                image.data.len(),
                image.width as usize * image.height as usize * image.components
            );
            decoded += 1;
        }
    }
    // Many mutations leave a decodable file (the entropy-coded data has no checksum): 420 of
    // the 3000 when this was written.
    assert!(decoded > cases / 10, "only {decoded} of {cases} decoded");
    eprintln!("{cases} mutated files: {decoded} decoded by skipping coefficients");
}

/// Arithmetic-coded JPEGs (sequential and progressive) decode, at full and at reduced size, to
/// the pixels of their Huffman-coded twin (jpegtran changes only the entropy coding), and index.
#[test]
fn arithmetic_coded_jpegs_decode_like_their_huffman_coded_twin() {
    let twin = imaging::decode_file(&forms().join("s420.jpg"), None).unwrap();
    for name in ["arithmetic.jpg", "arithmetic_progressive.jpg"] {
        let decoded = imaging::decode_file(&forms().join(name), None).unwrap();
        assert_eq!(decoded.display_size, twin.display_size, "{name}");
        let (a, b) = (decoded.image.as_raw(), twin.image.as_raw());
        assert_eq!(a.len(), b.len());
        // libjpeg and the image crate's decoder round their IDCT and upsampling differently.
        let mean = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len() as f64;
        assert!(mean < 1.5, "{name}: mean difference {mean} levels");
        let reduced = imaging::decode_file(&forms().join(name), Some(60)).unwrap();
        assert_eq!(reduced.scale, 2, "{name}: {}", reduced.image.width());
        assert_eq!(reduced.display_size, twin.display_size);
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["arithmetic.jpg", "arithmetic_progressive.jpg"] {
        std::fs::copy(forms().join(name), dir.path().join(name)).unwrap();
    }
    let mut library = TestLibrary::tiny();
    let summary = library.index(dir.path());
    assert_eq!((summary.indexed, summary.failed), (2, 0), "{summary:?}");
    // A library an older cliptag indexed, which called them damaged, reads them on its next run.
    {
        let db = rusqlite::Connection::open(library.db()).unwrap();
        db.execute(
            "UPDATE images SET status = 'error', \
             error = 'damaged JPEG: unsupported JPEG feature: ArithmeticEntropyCoding'",
            [],
        )
        .unwrap();
        db.execute("DELETE FROM embeddings", []).unwrap();
        db.execute(
            "UPDATE settings SET value = '2: JPEG PNG WebP GIF BMP TIFF, HEIC/HEIF' \
             WHERE key = 'decoders'",
            [],
        )
        .unwrap();
    }
    let again = library.index(dir.path());
    assert_eq!((again.indexed, again.failed), (2, 0), "{again:?}");
}

/// A photo gets one verdict whichever way it is read: where a reduced-size decoder refuses a
/// damaged file that the full decode (what `embed` uses) reads, the indexer reads it in full
/// instead of calling it damaged.
#[test]
fn a_file_the_reduced_decoder_refuses_gets_the_full_decode_s_verdict() {
    let seed = std::fs::read(forms().join("progressive.jpg")).unwrap();
    let scan = seed.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap() + 20;
    let mut rng = Rng(0x5eed_1234);
    let mut found = 0;
    for _ in 0..400 {
        // A few bytes of the scans changed: the kind of damage a bad card or copy leaves.
        let mut bytes = seed.clone();
        for _ in 0..1 + rng.below(20) {
            let at = scan + rng.below(bytes.len() - scan - 2);
            bytes[at] = rng.next() as u8;
        }
        let reduced_refuses = !matches!(jpeg::decode_reduced(&bytes, 120), Ok(Some(_)));
        let full = imaging::decode_bytes(&bytes, None);
        if !reduced_refuses || full.is_err() {
            continue;
        }
        found += 1;
        let indexed = imaging::decode_bytes(&bytes, Some(60));
        assert!(indexed.is_ok(), "{:?}", indexed.err());
    }
    assert!(
        found > 0,
        "no damage the reduced decoder refuses and the full decode reads"
    );
    eprintln!("{found} damaged files read in full");
}

/// Arithmetic-coded files that libjpeg finds corrupt (it warns and would decode on into noise)
/// are damaged, with libjpeg's reason, the same way at full and reduced size; a CMYK one is not
/// supported yet. Nothing panics or prints.
#[test]
fn damaged_arithmetic_jpegs_are_called_damaged_whichever_way_they_are_read() {
    let cmyk = imaging::decode_file(&forms().join("arithmetic_cmyk.jpg"), None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        cmyk.contains("arithmetic-coded CMYK JPEG is not supported yet"),
        "{cmyk}"
    );
    let seed = std::fs::read(forms().join("arithmetic.jpg")).unwrap();
    let scan = seed.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap() + 20;
    let mut rng = Rng(0xa417);
    let mut corrupt = 0;
    for _ in 0..200 {
        let mut bytes = seed.clone();
        for _ in 0..1 + rng.below(6) {
            let at = scan + rng.below(bytes.len() - scan - 2);
            bytes[at] = rng.next() as u8;
        }
        let full = imaging::decode_bytes(&bytes, None);
        let reduced = imaging::decode_bytes(&bytes, Some(60));
        assert_eq!(
            full.as_ref().err(),
            reduced.as_ref().err(),
            "two verdicts on one file"
        );
        if let Err(reason) = full {
            assert!(reason.starts_with("damaged JPEG: "), "{reason}");
            corrupt += usize::from(reason.contains("Corrupt JPEG data"));
        }
    }
    assert!(corrupt > 0, "no corruption was reported");
    eprintln!("{corrupt} of 200 damaged copies called corrupt");
}
