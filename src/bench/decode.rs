//! Decoding alone, on one thread: each format's decoders timed on the bench's photos.

use std::path::PathBuf;
use std::time::Instant;

use super::{Report, median};
use crate::imaging;
use crate::model::PreprocessConfig;

/// Decoding alone, one thread: for JPEGs and HEICs, reduced-size decoding against a full decode.
/// Returns the milliseconds per photo, decoding and preprocessing, of the way the indexer
/// decodes this format (the last mode timed).
pub(super) fn decode_times(
    format: &str,
    photos: &[PathBuf],
    report: &Report,
) -> anyhow::Result<f64> {
    let config = PreprocessConfig::default();
    let sample: Vec<&PathBuf> = photos.iter().take(8).collect();
    let modes: &[(&str, Option<u32>)] = if format == "JPEG" {
        &[
            ("full decode", None),
            ("reduced-size decode", Some(config.min_short_side())),
        ]
    } else if format == "RAW" {
        // The largest embedded JPEG, decoded at a reduced size as a JPEG photo is.
        &[("embedded preview", Some(config.min_short_side()))]
    } else {
        // Every HEVC sample is decoded either way; the reduced decode skips the in-loop
        // filters and converts to RGB at a reduced size.
        &[
            ("full decode", None),
            ("reduced-size decode", Some(config.min_short_side())),
        ]
    };
    let mut indexer_ms = 0.0;
    for &(what, reduce) in modes {
        let (mut decode, mut preprocess) = (Vec::new(), Vec::new());
        for path in &sample {
            let started = Instant::now();
            let decoded = imaging::decode_file(path, reduce)?;
            let decoded_at = started.elapsed();
            decoded.preprocess(&config);
            decode.push(decoded_at.as_secs_f64() * 1e3);
            preprocess.push((started.elapsed() - decoded_at).as_secs_f64() * 1e3);
        }
        let (d, p) = (median(&mut decode), median(&mut preprocess));
        indexer_ms = d + p;
        report.line(
            format!(
                "  {format} {what}: {d:.1} ms + preprocess {p:.1} ms per photo (one thread, median of {})",
                sample.len()
            ),
            serde_json::json!({"what": "decode", "format": format, "mode": what, "decode_ms": d, "preprocess_ms": p}),
        );
    }
    if format == "JPEG" {
        // The same reduction by jpeg-decoder alone (what cliptag used before its own decoder).
        let mut times = Vec::new();
        for path in &sample {
            let bytes = std::fs::read(path)?;
            let started = Instant::now();
            let mut decoder = jpeg_decoder::Decoder::new(std::io::Cursor::new(&bytes));
            decoder.read_info()?;
            let info = decoder
                .info()
                .ok_or_else(|| anyhow::anyhow!("no frame header"))?;
            let short = info.width.min(info.height);
            let want = |len: u16| {
                (f64::from(len) * f64::from(2 * config.min_short_side()) / f64::from(short)).ceil()
                    as u16
            };
            decoder.scale(want(info.width), want(info.height))?;
            decoder.decode()?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let d = median(&mut times);
        report.line(
            format!("  JPEG reduced-size decode by jpeg-decoder alone: {d:.1} ms per photo (one thread)"),
            serde_json::json!({"what": "decode", "format": format, "mode": "jpeg-decoder reduced", "decode_ms": d}),
        );
    }
    Ok(indexer_ms)
}
