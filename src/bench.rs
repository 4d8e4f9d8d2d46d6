//! `cliptag bench`: throughput with a full-size ViT-B/32 whose weights are drawn at random when
//! the benchmark starts (a model's speed does not depend on its weight values, so no download is
//! needed), plus indexing of generated 12 MP photos, re-tagging and search on 100k synthetic
//! embeddings, and the app's frame time on a 100k-photo library while indexing runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use clap::{Args, ValueEnum};

use crate::imaging;
use crate::library::index::NoHooks;
use crate::library::{IndexOptions, Indexer};
use crate::model::config::ClipConfig;
use crate::model::{ClipEngine, ClipModel, ClipTokenizer, Embedder, PreprocessConfig};
use crate::store::{Store, vector_to_blob};
use crate::tagging::{self, EmbeddingMatrix, Label, PreparedLabel, TagPlan, search};

/// What to measure.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum BenchPart {
    /// The image and text encoders alone.
    Model,
    /// The same through candle-transformers' `clip` module as shipped, for comparison.
    Baseline,
    /// Only generate the JPEG folder (for the side-by-side script).
    Photos,
    /// Decoding (reduced-size against full) and end-to-end indexing of 12 MP JPEGs.
    Index,
    /// Re-tagging 100k images against 300 labels.
    Retag,
    /// Text search over 100k images.
    Search,
    /// The app's frame time on a 100k-photo library while indexing runs.
    Ui,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// What to measure (repeatable).
    #[arg(long = "part", value_enum, default_values_t = [BenchPart::Model])]
    pub parts: Vec<BenchPart>,
    /// Image batch sizes to time.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 8, 32])]
    pub batches: Vec<usize>,
    /// Seconds to spend on each measurement (after one warm-up batch).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Prompts per text batch.
    #[arg(long, default_value_t = 64)]
    pub prompts: usize,
    /// Skip the text encoder in `model`.
    #[arg(long)]
    pub no_text: bool,
    /// Folder of JPEGs for `index` and `ui` (generated there if it holds none).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Photos to generate.
    #[arg(long, default_value_t = 32)]
    pub photos: usize,
    /// Images in the synthetic library of `retag`, `search` and `ui`.
    #[arg(long, default_value_t = 100_000)]
    pub library: usize,
    /// Labels for `retag`.
    #[arg(long, default_value_t = 300)]
    pub labels: usize,
    /// Images per encoder batch in `index` (default: the indexer's).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Decode threads in `index` (default: the indexer's).
    #[arg(long)]
    pub decode_threads: Option<usize>,
    /// A tokenizer.json for the text encoder (default: the test fixture's).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Print one JSON object per figure as well.
    #[arg(long)]
    pub json: bool,
}

/// Floating-point operations of one image through the vision tower (patch embedding, every
/// layer's projections, attention and MLP; the negligible norms and softmax left out).
pub fn vision_flops(config: &ClipConfig) -> f64 {
    let v = &config.vision;
    let (d, i) = (
        v.encoder.hidden_size as f64,
        v.encoder.intermediate_size as f64,
    );
    let t = v.num_positions() as f64;
    let patch = (v.patch_size * v.patch_size * v.num_channels) as f64;
    let layer = 2.0 * t * d * (4.0 * d + 2.0 * i) + 4.0 * t * t * d;
    2.0 * (t - 1.0) * patch * d
        + v.encoder.num_hidden_layers as f64 * layer
        + 2.0 * d * config.projection_dim as f64
}

/// Runs `step` (which handles `per_step` items) repeatedly for about `seconds` after a warm-up;
/// returns items per second.
fn throughput(
    seconds: f64,
    per_step: usize,
    mut step: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<f64> {
    step()?;
    let budget = Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut items = 0usize;
    while started.elapsed() < budget || items == 0 {
        step()?;
        items += per_step;
    }
    Ok(items as f64 / started.elapsed().as_secs_f64())
}

/// Token rows as short tag prompts have them (`a photo of a dog.`: 8 tokens with start and end),
/// or padded to the full 77-token context.
fn prompt_rows(count: usize, length: usize) -> Vec<Vec<u32>> {
    (0..count)
        .map(|p| {
            let mut row = vec![49406];
            row.extend((1..length - 1).map(|t| 320 + ((p * 31 + t * 7) % 20000) as u32));
            row.push(49407);
            row
        })
        .collect()
}

/// The process's peak resident memory so far, in MiB (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

struct Report {
    json: bool,
}

impl Report {
    fn line(&self, text: String, value: serde_json::Value) {
        println!("{text}");
        if self.json {
            println!("{value}");
        }
    }
}

/// A ViT-B/32 with random weights behind the [`Embedder`] trait.
fn random_engine(tokenizer: &Path) -> anyhow::Result<ClipEngine> {
    let config = ClipConfig::vit_base_patch32();
    let model = ClipModel::random(config, 7)?;
    let tokenizer = ClipTokenizer::from_file(tokenizer, 77)?;
    Ok(ClipEngine::from_parts(
        model,
        tokenizer,
        PreprocessConfig::default(),
        "random-vit-b32".into(),
    ))
}

fn tokenizer_path(args: &BenchArgs) -> PathBuf {
    args.tokenizer.clone().unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-clip/tokenizer.json")
    })
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let report = Report { json: args.json };
    let threads = candle_core::utils::get_num_threads();
    println!("cliptag bench: {threads} threads");
    for part in &args.parts {
        match part {
            BenchPart::Model => model_part(args, &report, false)?,
            BenchPart::Baseline => model_part(args, &report, true)?,
            BenchPart::Photos => {
                photo_folder(args)?;
            }
            BenchPart::Index => index_part(args, &report)?,
            BenchPart::Retag => retag_part(args, &report)?,
            BenchPart::Search => search_part(args, &report)?,
            BenchPart::Ui => ui_part(args, &report)?,
        }
    }
    if let Some(peak) = peak_rss_mib() {
        report.line(
            format!("peak RSS of the whole run: {peak:.0} MiB"),
            serde_json::json!({"what": "peak_rss", "mib": peak}),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn model_part(args: &BenchArgs, report: &Report, baseline: bool) -> anyhow::Result<()> {
    let config = ClipConfig::vit_base_patch32();
    let flops = vision_flops(&config);
    let started = Instant::now();
    let weights = crate::model::clip::random_weights(&config, 7)?;
    println!(
        "ViT-B/32, random weights drawn in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let engine = if baseline {
        "candle-transformers clip"
    } else {
        "cliptag"
    };
    println!(
        "{engine} image encoder ({:.2} GFLOP per image):",
        flops / 1e9
    );
    if baseline {
        use candle_transformers::models::clip;
        let vb = candle_nn::VarBuilder::from_tensors(weights.0.clone(), DType::F32, &Device::Cpu);
        let model = clip::ClipModel::new(vb, &clip::ClipConfig::vit_base_patch32())?;
        for &batch in &args.batches {
            let pixels = Tensor::randn(0f32, 1.0, (batch, 3, 224, 224), &Device::Cpu)?;
            let rate = throughput(args.seconds, batch, || {
                Device::Cpu.with_context(|| model.get_image_features(&pixels))?;
                Ok(())
            })?;
            report.line(
                format!("  batch {batch:>3}: {rate:>7.2} images/s  {:>6.1} GFLOP/s", rate * flops / 1e9),
                serde_json::json!({"what": "baseline_image_encoder", "batch": batch, "images_per_s": rate}),
            );
        }
        if !args.no_text {
            let ids = Tensor::new(prompt_rows(args.prompts, 77), &Device::Cpu)?;
            let rate = throughput(args.seconds, args.prompts, || {
                Device::Cpu.with_context(|| model.get_text_features(&ids))?;
                Ok(())
            })?;
            report.line(
                format!("  text, {} prompts padded to 77 tokens: {rate:>8.1} prompts/s", args.prompts),
                serde_json::json!({"what": "baseline_text_encoder", "tokens": 77, "prompts_per_s": rate}),
            );
        }
        return Ok(());
    }
    let model = ClipModel::load(config, &weights)?;
    for &batch in &args.batches {
        let pixels = Tensor::randn(0f32, 1.0, (batch, 3, 224, 224), &Device::Cpu)?;
        let rate = throughput(args.seconds, batch, || {
            model.image_features(&pixels)?;
            Ok(())
        })?;
        report.line(
            format!("  batch {batch:>3}: {rate:>7.2} images/s  {:>6.1} GFLOP/s", rate * flops / 1e9),
            serde_json::json!({"what": "image_encoder", "batch": batch, "images_per_s": rate, "gflops": rate * flops / 1e9}),
        );
    }
    if !args.no_text {
        println!("cliptag text encoder ({} prompts per batch):", args.prompts);
        for (what, length) in [("8-token tag prompts", 8), ("padded to 77 tokens", 77)] {
            let rows = prompt_rows(args.prompts, length);
            let rate = throughput(args.seconds, rows.len(), || {
                model.text_features(&rows)?;
                Ok(())
            })?;
            report.line(
                format!("  {what}: {rate:>8.1} prompts/s"),
                serde_json::json!({"what": "text_encoder", "tokens": length, "prompts_per_s": rate}),
            );
        }
    }
    Ok(())
}

/// A deterministic generator for synthetic photos and vectors.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    fn normal(&mut self) -> f32 {
        let u1 = (self.next() as f32 + 1.0) / (u32::MAX as f32 + 2.0);
        let u2 = self.next() as f32 / u32::MAX as f32;
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

/// A 12-megapixel photo-like JPEG: smooth colour fields, edges and sensor-like noise, so that
/// its size and decoding cost resemble a camera's.
fn write_photo(path: &Path, seed: u64, width: u32, height: u32) -> anyhow::Result<()> {
    let (fx, fy) = (1.0 + (seed % 5) as f32, 1.0 + (seed % 3) as f32);
    let mut noise = Lcg(seed ^ 0x5DEECE66D);
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
        let base = [
            128.0 + 90.0 * (fx * 6.3 * u + v * 2.0).sin(),
            128.0 + 80.0 * (fy * 5.1 * v - u).cos(),
            128.0 + 70.0 * ((u + v) * 9.0 + seed as f32).sin(),
        ];
        let edge = if ((x / 97) + (y / 131)) % 7 == 0 {
            40.0
        } else {
            0.0
        };
        let n = (noise.next() % 24) as f32 - 12.0;
        image::Rgb(base.map(|b| (b + edge + n).clamp(0.0, 255.0) as u8))
    });
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(file, 90).encode_image(&image)?;
    Ok(())
}

/// The folder of 12 MP JPEGs, generated if it holds none.
fn photo_folder(args: &BenchArgs) -> anyhow::Result<PathBuf> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("cliptag-bench-photos"));
    std::fs::create_dir_all(&dir)?;
    let existing = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        .count();
    if existing == 0 {
        println!(
            "generating {} 4000×3000 JPEGs in {} …",
            args.photos,
            dir.display()
        );
        for i in 0..args.photos {
            write_photo(
                &dir.join(format!("photo{i:04}.jpg")),
                i as u64 + 1,
                4000,
                3000,
            )?;
        }
    }
    Ok(dir)
}

fn index_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let dir = photo_folder(args)?;
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    photos.sort();
    let bytes: u64 = photos
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{} JPEGs, {:.1} MB on average",
        photos.len(),
        bytes as f64 / photos.len().max(1) as f64 / 1e6
    );

    // Decoding alone, one thread: reduced-size DCT decoding against a full decode.
    let config = PreprocessConfig::default();
    let sample: Vec<&PathBuf> = photos.iter().take(8).collect();
    for (what, reduce) in [
        ("full decode", None),
        ("reduced-size decode", Some(config.shortest_edge)),
    ] {
        let (mut decode, mut preprocess) = (Vec::new(), Vec::new());
        for path in &sample {
            let started = Instant::now();
            let decoded = imaging::decode_file(path, reduce)?;
            let decoded_at = started.elapsed();
            imaging::preprocess(&decoded.image, &config);
            decode.push(decoded_at.as_secs_f64() * 1e3);
            preprocess.push((started.elapsed() - decoded_at).as_secs_f64() * 1e3);
        }
        let (d, p) = (median(&mut decode), median(&mut preprocess));
        report.line(
            format!(
                "  {what}: {d:.1} ms + preprocess {p:.1} ms per photo (one thread, median of {})",
                sample.len()
            ),
            serde_json::json!({"what": "decode", "mode": what, "decode_ms": d, "preprocess_ms": p}),
        );
    }

    let engine = random_engine(&tokenizer_path(args))?;
    let db_dir = tempfile_dir("cliptag-bench-index")?;
    let mut store = Store::open(&db_dir.join("library.sqlite"))?;
    crate::tagging::vocabulary_file::seed_default(&mut store, engine.model_id())?;
    tagging::set_logit_scale(&store, engine.logit_scale())?;
    let started = Instant::now();
    let mut encode = |t: &[String]| engine.embed_texts(t);
    let (plan, stats) = TagPlan::prepare(&mut store, engine.model_id(), &mut encode)?;
    report.line(
        format!(
            "  default vocabulary: {} labels, {} prompts embedded in {:.1} s (once per library)",
            plan.labels.len(),
            stats.embedded,
            started.elapsed().as_secs_f64()
        ),
        serde_json::json!({"what": "vocabulary", "prompts": stats.embedded, "seconds": started.elapsed().as_secs_f64()}),
    );
    let defaults = IndexOptions::default();
    let options = IndexOptions {
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        decode_threads: args.decode_threads.unwrap_or(defaults.decode_threads),
        reduced_jpeg: true,
    };
    let (batch_size, decode_threads) = (options.batch_size, options.decode_threads);
    let mut indexer = Indexer {
        store: &mut store,
        embedder: &engine,
        options,
        cancel: Default::default(),
        plan: Some(plan),
    };
    let summary = indexer.run(std::slice::from_ref(&dir), &mut NoHooks)?;
    let t = summary.timings;
    let wall = t.wall.as_secs_f64();
    let rate = summary.indexed as f64 / wall;
    report.line(
        format!(
            "  end to end: {} photos in {wall:.1} s = {rate:.2} photos/s (batch {batch_size}, {decode_threads} decode threads)",
            summary.indexed,
        ),
        serde_json::json!({"what": "index", "photos": summary.indexed, "seconds": wall, "images_per_s": rate}),
    );
    let per = |d: Duration| d.as_secs_f64() * 1e3 / summary.indexed.max(1) as f64;
    report.line(
        format!(
            "  time per photo: decode {:.1} ms, preprocess {:.1} ms (on the decode threads), encode {:.1} ms, store {:.2} ms, encoder waiting {:.1} ms",
            per(t.decode),
            per(t.preprocess),
            per(t.encode),
            per(t.store),
            per(t.waiting)
        ),
        serde_json::json!({"what": "index_split_ms", "decode": per(t.decode), "preprocess": per(t.preprocess), "encode": per(t.encode), "store": per(t.store), "waiting": per(t.waiting)}),
    );
    let _ = std::fs::remove_dir_all(&db_dir);
    Ok(())
}

fn tempfile_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `n` random unit vectors of width `dim`.
fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|_| {
            let mut v: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
            crate::tagging::scoring::normalize(&mut v);
            v
        })
        .collect()
}

/// A library of `n` images with random embeddings in a database file.
fn synthetic_library(
    path: &Path,
    n: usize,
    dim: usize,
    model: &str,
    files: &[PathBuf],
) -> anyhow::Result<Store> {
    let mut store = Store::open(path)?;
    let vectors = random_vectors(n, dim, 11);
    store.transaction(|tx| {
        let mut image = tx.prepare("INSERT INTO images (id, path, size, mtime_ns, status, first_seen) VALUES (?1, ?2, 1, 1, 'ok', 0)")?;
        let mut embedding = tx.prepare("INSERT INTO embeddings (image_id, model, dim, vector) VALUES (?1, ?2, ?3, ?4)")?;
        for (i, v) in vectors.iter().enumerate() {
            let path = match files.get(i) {
                Some(file) => file.to_string_lossy().into_owned(),
                None => format!("/library/photo{i:06}.jpg"),
            };
            image.execute(rusqlite::params![i as i64 + 1, path])?;
            embedding.execute(rusqlite::params![i as i64 + 1, model, dim as i64, vector_to_blob(v)])?;
        }
        Ok(())
    })?;
    store.set_setting("model", model)?;
    store.set_setting("vocabulary_seeded", "1")?;
    Ok(store)
}

fn retag_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let dim = 512;
    let model = "synthetic";
    let dir = tempfile_dir("cliptag-bench-retag")?;
    let started = Instant::now();
    let mut store = synthetic_library(&dir.join("library.sqlite"), args.library, dim, model, &[])?;
    println!(
        "re-tag: {} images × {} labels (synthetic unit vectors; library built in {:.1} s)",
        args.library,
        args.labels,
        started.elapsed().as_secs_f64()
    );
    // Random directions in 512 dimensions have cosines of about ±0.044; 0.1 tags ~1 % of pairs,
    // several tags per photo, as a real vocabulary does.
    let directions = random_vectors(args.labels, dim, 5);
    let mut labels = Vec::new();
    for (i, _) in directions.iter().enumerate() {
        labels.push(store.add_label(Label {
            threshold: 0.1,
            ..Label::new(&format!("label {i:03}"), model)
        })?);
    }
    let plan = TagPlan {
        labels: labels
            .iter()
            .zip(&directions)
            .map(|(label, d)| PreparedLabel {
                label: label.clone(),
                positive: d.clone(),
                negative: None,
            })
            .collect(),
        logit_scale: 100.0,
    };
    let loading = Instant::now();
    let matrix = EmbeddingMatrix::from_rows(store.embeddings(model)?);
    let load_s = loading.elapsed().as_secs_f64();
    let mut compute = Vec::new();
    let mut tags = 0;
    for _ in 0..5 {
        let started = Instant::now();
        tags = plan.assign(&matrix)?.len();
        compute.push(started.elapsed().as_secs_f64());
    }
    let compute = median(&mut compute);
    report.line(
        format!("  scores and tags in memory: {:.0} ms ({tags} tags; loading the embeddings from SQLite: {:.0} ms, once)", compute * 1e3, load_s * 1e3),
        serde_json::json!({"what": "retag_compute", "seconds": compute, "tags": tags, "load_seconds": load_s}),
    );
    let started = Instant::now();
    tagging::retag(&mut store, &plan, &matrix, false)?;
    let first = started.elapsed().as_secs_f64();
    report.line(
        format!(
            "  first re-tag, writing all {tags} tags: {:.0} ms",
            first * 1e3
        ),
        serde_json::json!({"what": "retag_first", "seconds": first}),
    );
    // The everyday case: one label's threshold moved, everything recomputed, the difference written.
    let mut edited = plan.clone();
    edited.labels[0].label.threshold = 0.12;
    let started = Instant::now();
    let changes = tagging::retag(&mut store, &edited, &matrix, false)?;
    let edit = started.elapsed().as_secs_f64();
    report.line(
        format!(
            "  re-tag after editing one label (all {} × {} scored, {} tags removed): {:.0} ms",
            args.library,
            args.labels,
            changes.total_removed(),
            edit * 1e3
        ),
        serde_json::json!({"what": "retag_edit", "seconds": edit}),
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn search_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let rows: Vec<(i64, Vec<f32>)> = random_vectors(args.library, 512, 3)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v))
        .collect();
    let matrix = EmbeddingMatrix::from_rows(rows);
    let queries = random_vectors(21, 512, 9);
    let mut times = Vec::new();
    for q in &queries {
        let started = Instant::now();
        let found = search::nearest(&matrix, q, 100)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(found.len(), 100);
    }
    let med = median(&mut times);
    let worst = times.iter().cloned().fold(0.0, f64::max);
    report.line(
        format!("search over {} images: {med:.1} ms median, {worst:.1} ms worst (top 100, {} queries)", args.library, queries.len()),
        serde_json::json!({"what": "search", "images": args.library, "median_ms": med, "max_ms": worst}),
    );
    Ok(())
}

fn ui_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    use crate::app::{CliptagApp, Settings};
    use crate::worker::{self, Command};

    let photos_dir = photo_folder(args)?;
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&photos_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    photos.sort();
    let dir = tempfile_dir("cliptag-bench-ui")?;
    let db = dir.join("library.sqlite");
    // Hard links give every library entry a path of its own onto a real photo.
    let links = dir.join("library");
    std::fs::create_dir_all(&links)?;
    let entries: Vec<PathBuf> = (0..args.library)
        .map(|i| {
            let link = links.join(format!("photo{i:06}.jpg"));
            std::fs::hard_link(&photos[i % photos.len()], &link).map(|()| link)
        })
        .collect::<std::io::Result<_>>()?;
    let engine: Arc<dyn Embedder> = Arc::new(random_engine(&tokenizer_path(args))?);
    // A 100k-photo library whose entries point at the generated photos, so thumbnails really
    // decode; then the photos folder itself is indexed while the frames are timed.
    {
        let mut store =
            synthetic_library(&db, args.library, engine.dim(), engine.model_id(), &entries)?;
        crate::tagging::vocabulary_file::seed_default(&mut store, engine.model_id())?;
    }
    let ctx = egui::Context::default();
    let repaint = ctx.clone();
    let waker: worker::Waker = Arc::new(move || repaint.request_repaint());
    let mut app = CliptagApp::new(
        waker,
        Settings::default(),
        db.clone(),
        Some(engine.model_id().to_string()),
        worker::shared_loader(engine.clone()),
    );
    let size = egui::vec2(1280.0, 800.0);
    let frame = |app: &mut CliptagApp, events: Vec<egui::Event>| -> f64 {
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, size)),
            events,
            ..Default::default()
        };
        let started = Instant::now();
        let output = ctx.run_ui(input, |ui| app.ui_root(ui));
        let _ = ctx.tessellate(output.shapes, output.pixels_per_point);
        started.elapsed().as_secs_f64() * 1e3
    };
    // Wait for the library snapshot, then start indexing.
    let started = Instant::now();
    while app.snapshot.images.len() < args.library && started.elapsed() < Duration::from_secs(120) {
        frame(&mut app, Vec::new());
        std::thread::sleep(Duration::from_millis(20));
    }
    app.send(Command::Index {
        roots: vec![photos_dir.clone()],
    });
    let mut times = Vec::new();
    let mut while_indexing = 0;
    let started = Instant::now();
    let frames = 600;
    for i in 0..frames {
        // Scroll through the gallery, down then up, as a person skimming the library would.
        let delta = if (i / 150) % 2 == 0 { -120.0 } else { 120.0 };
        let events = vec![
            egui::Event::PointerMoved(egui::pos2(640.0, 400.0)),
            egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, delta),
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Wheel,
                modifiers: egui::Modifiers::NONE,
            },
        ];
        let ms = frame(&mut app, events);
        if app.indexing {
            while_indexing += 1;
            times.push(ms);
        }
        // A 60 Hz display: the rest of the frame is left to the other threads.
        let target = Duration::from_secs_f64((i + 1) as f64 / 60.0);
        if let Some(wait) = target.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    if times.is_empty() {
        anyhow::bail!("indexing was not running while the frames were timed");
    }
    let (med, p99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
    let max = times.iter().cloned().fold(0.0, f64::max);
    report.line(
        format!(
            "ui frame time with {} photos while indexing ({while_indexing} of {frames} frames): median {med:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
            app.snapshot.images.len()
        ),
        serde_json::json!({"what": "ui_frame_ms", "images": app.snapshot.images.len(), "frames": while_indexing, "median": med, "p99": p99, "max": max}),
    );
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
