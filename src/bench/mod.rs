//! `cliptag bench`: throughput with a full-size ViT-B/32 whose weights are drawn at random when
//! the benchmark starts (a model's speed does not depend on its weight values, so no download is
//! needed), plus indexing of generated 12 MP photos, re-tagging and search on 100k synthetic
//! embeddings, and the app's frame time on a 100k-photo library while indexing runs.
//!
//! The benchmark drives the same public core the app and the command line use; its synthetic
//! data lives here, not in the library.

mod decisions;
mod decode;
mod duplicates;
mod learn;
mod library;
mod model;
mod photos;
mod precision;
mod siglip;
mod ui;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::model::config::ClipConfig;
use crate::model::{ClipModel, ClipTokenizer, Engine, PreprocessConfig, Tokenizer, Towers};

/// What to measure.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
pub enum BenchPart {
    /// The image and text encoders alone.
    Model,
    /// The same through candle-transformers' `clip` module as shipped, for comparison.
    Baseline,
    /// Only generate the JPEG folder (for the side-by-side script).
    Photos,
    /// Decoding (reduced-size against full) and end-to-end indexing of 12 MP JPEGs, then of
    /// 12 MP HEICs and of NEF-style camera RAWs made from them.
    Index,
    /// Re-tagging 100k images against 300 labels.
    Retag,
    /// Text search over 100k images.
    Search,
    /// Learning a label from decisions, on a synthetic library with a known ground truth.
    Learn,
    /// The app's frame time on a 100k-photo library while indexing runs.
    Ui,
    /// SigLIP 2 B/32-256 and B/16-224 beside ViT-B/32: encoders and end-to-end indexing.
    Siglip,
    /// Near-duplicate groups in a library of random embeddings with planted near-copies.
    Duplicates,
    /// A person's decisions stored by the app's worker: a burst, and one at a time.
    Decisions,
    /// Embeddings and default-vocabulary tags in bf16 and f16 against f32: the photos of
    /// `--dir` one by one, and `--photos` synthetic ones.
    Precision,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub threads: crate::cli::Threads,
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
    /// A model for `precision` (a hub id or a folder; default: ViT-B/32 with random weights).
    #[arg(long)]
    pub model: Option<String>,
    /// A tokenizer.json for the text encoder (default: the test fixture's).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Print one JSON object per figure as well.
    #[arg(long)]
    pub json: bool,
}

/// Runs `step` (which handles `per_step` items) repeatedly for about `seconds` after a warm-up;
/// returns items per second.
pub(super) fn throughput(
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

/// The process's peak resident memory so far, in MiB (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time this process has used so far, on all its threads (user and system).
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: `getrusage` only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The process's resident memory now, in MiB (Linux).
pub fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub(super) fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

pub(super) struct Report {
    json: bool,
}

impl Report {
    pub(super) fn line(&self, text: String, value: serde_json::Value) {
        println!("{text}");
        if self.json {
            println!("{value}");
        }
    }
}

/// A ViT-B/32 with random weights behind the [`Embedder`] trait.
pub(super) fn random_engine(tokenizer: &Path) -> anyhow::Result<Engine> {
    let config = ClipConfig::vit_base_patch32();
    let model = ClipModel::random(config, 7)?;
    let tokenizer = ClipTokenizer::from_file(tokenizer, 77)?;
    Ok(Engine::from_parts(
        Towers::Clip(model),
        Tokenizer::Clip(tokenizer),
        PreprocessConfig::default(),
        "random-vit-b32".into(),
    ))
}

pub(super) fn tokenizer_path(args: &BenchArgs) -> PathBuf {
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
            BenchPart::Model => model::model_part(args, &report, false)?,
            BenchPart::Baseline => model::model_part(args, &report, true)?,
            BenchPart::Photos => {
                photos::photo_folder(args)?;
            }
            BenchPart::Index => library::index_part(args, &report)?,
            BenchPart::Retag | BenchPart::Search => {
                // Both parts time one synthetic library, made once.
                let first = args
                    .parts
                    .iter()
                    .position(|p| matches!(p, BenchPart::Retag | BenchPart::Search));
                if args.parts.get(first.unwrap_or(0)) == Some(part) {
                    library::library_parts(args, &report)?;
                }
            }
            BenchPart::Learn => learn::learn_part(args, &report)?,
            BenchPart::Ui => ui::ui_part(args, &report)?,
            BenchPart::Siglip => siglip::siglip_part(args, &report)?,
            BenchPart::Duplicates => duplicates::duplicates_part(args, &report)?,
            BenchPart::Decisions => decisions::decisions_part(args, &report)?,
            BenchPart::Precision => precision::precision_part(args, &report)?,
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

/// A deterministic generator for synthetic photos and vectors.
pub(super) struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }

    pub fn normal(&mut self) -> f32 {
        let u1 = (self.next() as f32 + 1.0) / (u32::MAX as f32 + 2.0);
        let u2 = self.next() as f32 / u32::MAX as f32;
        (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
    }
}

pub(super) fn tempfile_dir(name: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `n` random unit vectors of width `dim`.
pub(super) fn random_vectors(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    random_unit_vectors(dim, seed).take(n).collect()
}

/// Random unit vectors of width `dim`, one at a time (a million of them need not be in memory
/// at once).
pub(super) fn random_unit_vectors(dim: usize, seed: u64) -> impl Iterator<Item = Vec<f32>> {
    let mut rng = Lcg(seed);
    std::iter::repeat_with(move || {
        let mut v: Vec<f32> = (0..dim).map(|_| rng.normal()).collect();
        crate::tagging::scoring::normalize(&mut v);
        v
    })
}

/// Starts the process's peak resident memory again from what it holds now (Linux), so that
/// a figure measures one part's work and not the making of its synthetic data.
pub(super) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
