//! The command line: headless access to everything the app does, over the same library core.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::export::csv::CsvForm;
use crate::export::xmp::SidecarNaming;
use crate::export::{self, PathStyle};
use crate::imaging;
use crate::library::{self, IndexOptions, IndexSummary, Indexer, Progress, Stage};
use crate::model::{self, ClipEngine, Embedder, ModelSpec, hub};
use crate::store::{Store, TagSource};
use crate::tagging::{self, EmbeddingMatrix, Label, Mode, TagPlan, search, vocabulary_file};

#[derive(Parser)]
#[command(
    name = "cliptag",
    version,
    about = "Tag a folder of photos with CLIP, using your own words"
)]
pub struct Cli {
    /// The library database (default: the platform's data folder).
    #[arg(long, global = true, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Threads for the model's kernels (default: one per core).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Index folders and tag their photos (incremental; progress on stderr).
    Index {
        #[command(flatten)]
        model: ModelArg,
        /// Images per encoder batch.
        #[arg(long, default_value_t = IndexOptions::default().batch_size)]
        batch_size: usize,
        /// Threads decoding photos ahead of the encoder.
        #[arg(long, default_value_t = IndexOptions::default().decode_threads)]
        decode_threads: usize,
        /// Decode large JPEGs at full size instead of the faster reduced size.
        #[arg(long)]
        full_decode: bool,
        /// Folders to index.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Recompute automatic tags from stored embeddings (the image encoder is not run).
    Retag {
        /// Report what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Edit the tag vocabulary.
    Vocab {
        #[command(subcommand)]
        action: VocabAction,
    },
    /// Print tags as TSV: path, label, score, source.
    Tags {
        /// Only these photos.
        paths: Vec<PathBuf>,
    },
    /// Record a person's decision on one photo's tag.
    Tag {
        #[command(subcommand)]
        action: TagAction,
    },
    /// Print every known file as TSV: path, status (ok/error/missing/pending), reason.
    Files,
    /// Print the photos that best match a text, as TSV: path, score.
    Search {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        text: String,
    },
    /// Print the photos most like the given ones, as TSV: path, score.
    Similar {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print groups of near-duplicate photos, one group per paragraph.
    Duplicates {
        /// Minimum cosine similarity of two photos in a group.
        #[arg(long, default_value_t = 0.95)]
        threshold: f32,
    },
    /// Write tags to a CSV file or to XMP sidecars.
    Export(ExportArgs),
    /// Print L2-normalised embeddings as JSON lines: {"input", "kind", "embedding"}.
    Embed {
        /// A Hugging Face repo id (org/name[@revision]) or a local model folder.
        #[arg(long, default_value = hub::DEFAULT_MODEL)]
        model: String,
        /// A text to embed (repeatable).
        #[arg(long = "text")]
        texts: Vec<String>,
        /// Image files to embed.
        images: Vec<PathBuf>,
    },
    /// Print token ids as JSON lines: {"text", "ids"} (with start and end tokens, untruncated).
    Tokenize {
        /// A Hugging Face repo id (org/name[@revision]) or a local model folder.
        #[arg(long, default_value = hub::DEFAULT_MODEL)]
        model: String,
        /// The texts to tokenize.
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Measure throughput with full-size, randomly initialised ViT-B/32 weights.
    Bench(crate::bench::BenchArgs),
}

#[derive(Args)]
pub struct ModelArg {
    /// A Hugging Face repo id (org/name[@revision]) or a local model folder (default: the
    /// library's model, or openai/clip-vit-base-patch32 for a new library).
    #[arg(long)]
    pub model: Option<String>,
}

#[derive(Subcommand)]
pub enum VocabAction {
    /// List the labels as TSV: name, mode, threshold, enabled, prompts.
    List,
    /// Add a label.
    Add {
        label: String,
        /// A prompt describing the label (repeatable; default: the templates).
        #[arg(long = "prompt")]
        prompts: Vec<String>,
        /// The opposite prompt, for contrast mode.
        #[arg(long)]
        negative: Option<String>,
        #[arg(long, value_enum, default_value_t = ModeArg::Threshold)]
        mode: ModeArg,
        /// Threshold (cosine for threshold mode, probability for contrast and topk).
        #[arg(long, allow_negative_numbers = true)]
        threshold: Option<f32>,
        /// k for topk mode.
        #[arg(long, default_value_t = 1)]
        top_k: u32,
    },
    /// Remove a label and its tags.
    Remove { label: String },
    /// Merge a vocabulary file (TOML) into the library.
    Import { file: PathBuf },
    /// Write the vocabulary to a file (TOML).
    Export { file: PathBuf },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Threshold,
    Contrast,
    Topk,
}

impl From<ModeArg> for Mode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Threshold => Mode::Threshold,
            ModeArg::Contrast => Mode::Contrast,
            ModeArg::Topk => Mode::TopK,
        }
    }
}

#[derive(Subcommand)]
pub enum TagAction {
    /// Put LABEL on the photo (accepting the automatic tag if there is one).
    Add { path: PathBuf, label: String },
    /// Say LABEL does not apply; automatic tagging will never put it back.
    Reject { path: PathBuf, label: String },
    /// Forget the decision; automatic tagging decides again.
    Clear { path: PathBuf, label: String },
}

#[derive(Args)]
pub struct ExportArgs {
    /// Write a CSV file here.
    #[arg(long, value_name = "FILE", required_unless_present = "xmp")]
    pub csv: Option<PathBuf>,
    /// The CSV's shape: one row per image, one per tag, or exiftool's import form.
    #[arg(long, value_enum, default_value_t = FormArg::Wide)]
    pub form: FormArg,
    /// Write paths relative to the library folder that holds each photo.
    #[arg(long)]
    pub relative: bool,
    /// Write XMP sidecars beside the photos.
    #[arg(long)]
    pub xmp: bool,
    /// Sidecar names: photo.jpg.xmp (digiKam, darktable) or photo.xmp (Adobe).
    #[arg(long, value_enum, default_value_t = NamingArg::Appended)]
    pub xmp_naming: NamingArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FormArg {
    Wide,
    Long,
    Exiftool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum NamingArg {
    Appended,
    Replaced,
}

/// Runs a parsed command line; `None` as the command means the desktop app.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db = cli.db.clone().unwrap_or_else(library::default_db_path);
    let Some(command) = cli.command else {
        bail!("no subcommand given");
    };
    match command {
        Command::Index {
            model,
            batch_size,
            decode_threads,
            full_decode,
            dirs,
        } => {
            let options = IndexOptions {
                batch_size,
                decode_threads,
                reduced_jpeg: !full_decode,
            };
            index(&db, model.model.as_deref(), options, &dirs)
        }
        Command::Retag { dry_run } => retag(&db, dry_run),
        Command::Vocab { action } => vocab(&db, action),
        Command::Tags { paths } => tags(&db, &paths),
        Command::Tag { action } => tag(&db, action),
        Command::Files => files(&db),
        Command::Search { limit, text } => search_text(&db, &text, limit),
        Command::Similar { limit, paths } => similar(&db, &paths, limit),
        Command::Duplicates { threshold } => duplicates(&db, threshold),
        Command::Export(args) => export_tags(&db, &args),
        Command::Embed {
            model,
            texts,
            images,
        } => embed(&model, &texts, &images),
        Command::Tokenize { model, texts } => tokenize(&model, &texts),
        Command::Bench(args) => crate::bench::run(&args),
    }
}

/// Download progress on stderr, one line per file.
pub fn print_download(name: &str, done: u64, total: u64) {
    if done == 0 {
        eprintln!("downloading {name} ({:.1} MB)…", total as f64 / 1e6);
    } else if done == total {
        eprintln!("downloaded {name}");
    }
}

fn open(db: &Path) -> anyhow::Result<Store> {
    Ok(library::open_library(db)?)
}

/// Loads the model only when something actually needs it.
struct LazyModel {
    spec: ModelSpec,
    engine: Option<ClipEngine>,
}

impl LazyModel {
    fn new(spec: ModelSpec) -> Self {
        LazyModel { spec, engine: None }
    }

    fn get(&mut self) -> crate::Result<&ClipEngine> {
        if self.engine.is_none() {
            self.engine = Some(ClipEngine::load(&self.spec, &mut print_download)?);
        }
        Ok(self
            .engine
            .as_ref()
            .expect("loaded just above. This is a bug."))
    }

    fn encoder(&mut self) -> impl FnMut(&[String]) -> crate::Result<Vec<Vec<f32>>> + '_ {
        move |texts: &[String]| self.get()?.embed_texts(texts)
    }
}

fn index(
    db: &Path,
    model: Option<&str>,
    options: IndexOptions,
    dirs: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let mut store = open(db)?;
    let spec = match model {
        Some(m) => ModelSpec::parse(m),
        None => library::library_model(&store)?,
    };
    let engine = ClipEngine::load(&spec, &mut print_download)?;
    tagging::set_logit_scale(&store, engine.logit_scale())?;
    let mut encode = |texts: &[String]| engine.embed_texts(texts);
    let (plan, _) = TagPlan::prepare(&mut store, engine.model_id(), &mut encode)?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>9} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        )
        .expect("a valid progress template. This is a bug.")
        .progress_chars("=> "),
    );
    struct BarHooks(indicatif::ProgressBar);
    impl library::index::IndexHooks for BarHooks {
        fn progress(&mut self, p: &Progress) {
            match p.stage {
                Stage::Scanning => self.0.set_message("scanning"),
                Stage::Indexing => self.0.set_message("indexing"),
                Stage::Done => self.0.set_message("done"),
            }
            self.0.set_length(p.total);
            self.0.set_position(p.done);
        }
    }
    let mut hooks = BarHooks(bar.clone());
    let mut indexer = Indexer {
        store: &mut store,
        embedder: &engine,
        options,
        cancel: Arc::new(AtomicBool::new(false)),
        plan: (!plan.labels.is_empty()).then_some(plan),
    };
    let summary = indexer.run(dirs, &mut hooks)?;
    bar.finish_and_clear();
    print_summary(&summary);
    Ok(ExitCode::SUCCESS)
}

fn print_summary(s: &IndexSummary) {
    eprintln!(
        "indexed {}, unchanged {}, moved {}, copies {}, missing {}, failed {}",
        s.indexed, s.unchanged, s.moved, s.duplicates, s.missing, s.failed
    );
    if !s.failures.is_empty() {
        eprintln!("failures:");
        for (path, reason) in &s.failures {
            eprintln!("  {}: {reason}", path.display());
        }
        if s.failed as usize > s.failures.len() {
            eprintln!(
                "  … and {} more (cliptag files lists them all)",
                s.failed as usize - s.failures.len()
            );
        }
    }
}

/// The library's embeddings under its model.
fn library_matrix(store: &Store) -> anyhow::Result<(ModelSpec, EmbeddingMatrix)> {
    let spec = library::library_model(store)?;
    let matrix = EmbeddingMatrix::from_rows(store.embeddings(&spec.id())?);
    Ok((spec, matrix))
}

fn retag(db: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let mut store = open(db)?;
    let (spec, matrix) = library_matrix(&store)?;
    let mut model = LazyModel::new(spec.clone());
    let (plan, stats) = TagPlan::prepare(&mut store, &spec.id(), &mut model.encoder())?;
    let report = tagging::retag(&mut store, &plan, &matrix, dry_run)?;
    let verb = if dry_run { "would add" } else { "added" };
    let verb_removed = if dry_run { "would remove" } else { "removed" };
    eprintln!(
        "{verb} {}, {verb_removed} {}, kept {} automatic tags over {} photos; {} decisions left alone; {} prompts embedded",
        report.total_added(),
        report.total_removed(),
        report.kept,
        matrix.len(),
        report.decided,
        stats.embedded
    );
    let mut names: Vec<&String> = report.added.keys().chain(report.removed.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = std::io::stdout().lock();
    for name in names {
        writeln!(
            out,
            "{name}\t+{}\t-{}",
            report.added.get(name).unwrap_or(&0),
            report.removed.get(name).unwrap_or(&0)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn find_label(store: &Store, name: &str) -> anyhow::Result<Label> {
    store.label_by_name(name)?.with_context(|| {
        format!("no label {name:?} in the vocabulary (cliptag vocab list shows them)")
    })
}

fn vocab(db: &Path, action: VocabAction) -> anyhow::Result<ExitCode> {
    let mut store = open(db)?;
    let model = library::library_model(&store)?.id();
    let mut out = std::io::stdout().lock();
    let changed = match action {
        VocabAction::List => {
            for l in store.labels()? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    l.name,
                    l.mode.as_str(),
                    l.threshold,
                    if l.enabled { "enabled" } else { "disabled" },
                    l.prompts.join(" | ")
                )?;
            }
            false
        }
        VocabAction::Add {
            label,
            prompts,
            negative,
            mode,
            threshold,
            top_k,
        } => {
            let mode = Mode::from(mode);
            let new = Label {
                id: 0,
                name: label,
                prompts,
                negative,
                mode,
                threshold: threshold.unwrap_or_else(|| mode.default_threshold(&model)),
                top_k,
                enabled: true,
            };
            let added = store.add_label(new)?;
            eprintln!("added {:?}", added.name);
            true
        }
        VocabAction::Remove { label } => {
            let found = find_label(&store, &label)?;
            store.remove_label(found.id)?;
            eprintln!("removed {:?} and its tags", found.name);
            true
        }
        VocabAction::Import { file } => {
            let summary = vocabulary_file::import_file(&mut store, &file, &model)?;
            eprintln!(
                "imported {}: {} added, {} updated",
                file.display(),
                summary.added,
                summary.updated
            );
            true
        }
        VocabAction::Export { file } => {
            let n = vocabulary_file::export_file(&store, &file)?;
            eprintln!("wrote {n} labels to {}", file.display());
            false
        }
    };
    if changed {
        retag_after_edit(&mut store)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// After a vocabulary edit, brings automatic tags up to date if the library has embeddings.
fn retag_after_edit(store: &mut Store) -> anyhow::Result<()> {
    let (spec, matrix) = library_matrix(store)?;
    if matrix.is_empty() {
        return Ok(());
    }
    let mut model = LazyModel::new(spec.clone());
    let (plan, _) = TagPlan::prepare(store, &spec.id(), &mut model.encoder())?;
    let report = tagging::retag(store, &plan, &matrix, false)?;
    eprintln!(
        "re-tagged {} photos: {} tags added, {} removed",
        matrix.len(),
        report.total_added(),
        report.total_removed()
    );
    Ok(())
}

/// The known image at `path` (as given, or canonicalised).
fn find_image(store: &Store, path: &Path) -> anyhow::Result<crate::store::ImageRow> {
    if let Some(row) = store.image_by_path(path)? {
        return Ok(row);
    }
    let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    store.image_by_path(&canonical)?.with_context(|| {
        format!(
            "{}: not in the library (index its folder first)",
            path.display()
        )
    })
}

fn tags(db: &Path, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let store = open(db)?;
    let rows = if paths.is_empty() {
        store.tags()?
    } else {
        let mut rows = Vec::new();
        for path in paths {
            rows.extend(store.tags_of(find_image(&store, path)?.id)?);
        }
        rows
    };
    let mut out = std::io::stdout().lock();
    for t in rows {
        let score = t.score.map(|s| format!("{s:.4}")).unwrap_or_default();
        writeln!(
            out,
            "{}\t{}\t{score}\t{}",
            t.path,
            t.label,
            t.source.as_str()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn tag(db: &Path, action: TagAction) -> anyhow::Result<ExitCode> {
    let mut store = open(db)?;
    let (path, label, decision) = match action {
        TagAction::Add { path, label } => (path, label, Some(TagSource::Manual)),
        TagAction::Reject { path, label } => (path, label, Some(TagSource::Rejected)),
        TagAction::Clear { path, label } => (path, label, None),
    };
    let image = find_image(&store, &path)?;
    let label = find_label(&store, &label)?;
    let decision = match decision {
        // Adding a tag the tagger already gave confirms it.
        Some(TagSource::Manual)
            if matches!(store.tag(image.id, label.id)?, Some((TagSource::Auto, _))) =>
        {
            Some(TagSource::Accepted)
        }
        other => other,
    };
    store.set_decision(image.id, label.id, decision)?;
    if decision.is_none() {
        // Let automatic tagging decide this pair again right away.
        let spec = library::library_model(&store)?;
        let mut model = LazyModel::new(spec.clone());
        let (plan, _) = TagPlan::prepare(&mut store, &spec.id(), &mut model.encoder())?;
        tagging::retag_pair(&store, &plan, &spec.id(), image.id, label.id)?;
    }
    let what = match decision {
        Some(TagSource::Accepted) => "accepted",
        Some(TagSource::Manual) => "added",
        Some(TagSource::Rejected) => "rejected",
        _ => "cleared",
    };
    eprintln!("{what} {:?} on {}", label.name, image.path.display());
    Ok(ExitCode::SUCCESS)
}

fn files(db: &Path) -> anyhow::Result<ExitCode> {
    let store = open(db)?;
    let mut out = std::io::stdout().lock();
    for image in store.images()? {
        let reason = image.error.unwrap_or_default().replace(['\t', '\n'], " ");
        writeln!(
            out,
            "{}\t{}\t{reason}",
            image.path.display(),
            image.status.as_str()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_matches(store: &Store, matches: &[(i64, f32)]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for (id, score) in matches {
        if let Some(image) = store.image(*id)? {
            writeln!(out, "{}\t{score:.4}", image.path.display())?;
        }
    }
    Ok(())
}

fn search_text(db: &Path, text: &str, limit: usize) -> anyhow::Result<ExitCode> {
    let mut store = open(db)?;
    let (spec, matrix) = library_matrix(&store)?;
    let mut model = LazyModel::new(spec.clone());
    let (_, vectors) = tagging::text_embeddings(
        &mut store,
        &spec.id(),
        &[text.to_string()],
        &mut model.encoder(),
    )?;
    let matches = search::nearest(&matrix, &vectors[0], limit)?;
    print_matches(&store, &matches)?;
    Ok(ExitCode::SUCCESS)
}

fn similar(db: &Path, paths: &[PathBuf], limit: usize) -> anyhow::Result<ExitCode> {
    let store = open(db)?;
    let (_, matrix) = library_matrix(&store)?;
    let ids = paths
        .iter()
        .map(|p| find_image(&store, p).map(|row| row.id))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let matches = search::more_like(&matrix, &ids, limit)?;
    print_matches(&store, &matches)?;
    Ok(ExitCode::SUCCESS)
}

fn duplicates(db: &Path, threshold: f32) -> anyhow::Result<ExitCode> {
    let store = open(db)?;
    let (_, matrix) = library_matrix(&store)?;
    let mut out = std::io::stdout().lock();
    for group in search::near_duplicates(&matrix, threshold)? {
        for id in group {
            if let Some(image) = store.image(id)? {
                writeln!(out, "{}", image.path.display())?;
            }
        }
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn export_tags(db: &Path, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let store = open(db)?;
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &args.csv {
        let form = match args.form {
            FormArg::Wide => CsvForm::Wide,
            FormArg::Long => CsvForm::Long,
            FormArg::Exiftool => CsvForm::Exiftool,
        };
        let style = if args.relative {
            PathStyle::Relative
        } else {
            PathStyle::Absolute
        };
        let rows = export::csv::export(&store, path, form, style)?;
        eprintln!("wrote {rows} rows to {}", path.display());
    }
    if args.xmp {
        let naming = match args.xmp_naming {
            NamingArg::Appended => SidecarNaming::Appended,
            NamingArg::Replaced => SidecarNaming::Replaced,
        };
        let report = export::xmp::export(&store, naming)?;
        eprintln!(
            "XMP sidecars: {} written, {} already up to date, {} failed",
            report.written,
            report.unchanged,
            report.failed.len()
        );
        for (path, reason) in &report.failed {
            eprintln!("  {}: {reason}", path.display());
        }
        if !report.failed.is_empty() {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

fn embed(model: &str, texts: &[String], images: &[PathBuf]) -> anyhow::Result<ExitCode> {
    if texts.is_empty() && images.is_empty() {
        bail!("nothing to embed: give --text TEXT or image files");
    }
    let spec = ModelSpec::parse(model);
    let engine = ClipEngine::load(&spec, &mut print_download)?;
    let mut out = std::io::stdout().lock();
    let mut failed = 0;
    if !texts.is_empty() {
        for (text, embedding) in texts.iter().zip(engine.embed_texts(texts)?) {
            write_embedding(&mut out, text, "text", &embedding)?;
        }
    }
    for path in images {
        // The exact reference path: no reduced-size decoding.
        let pixels = imaging::decode_file(path, None)
            .map(|decoded| imaging::preprocess(&decoded.image, engine.preprocess_config()));
        match pixels {
            Ok(pixels) => {
                let embedding = engine
                    .embed_images(std::slice::from_ref(&pixels))?
                    .pop()
                    .context("the model returned no embedding")?;
                write_embedding(&mut out, &path.display().to_string(), "image", &embedding)?;
            }
            Err(error) => {
                eprintln!("cliptag: {error}");
                failed += 1;
            }
        }
    }
    out.flush()?;
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn write_embedding(
    out: &mut impl Write,
    input: &str,
    kind: &str,
    embedding: &[f32],
) -> anyhow::Result<()> {
    let line = serde_json::json!({ "input": input, "kind": kind, "embedding": embedding });
    writeln!(out, "{line}")?;
    Ok(())
}

fn tokenize(model: &str, texts: &[String]) -> anyhow::Result<ExitCode> {
    let spec = ModelSpec::parse(model);
    let config_path = hub::resolve_file(&spec, "config.json", &mut print_download)?;
    let config = model::ClipConfig::from_file(&config_path)?;
    let tokenizer_path = hub::resolve_file(&spec, "tokenizer.json", &mut print_download)?;
    let tokenizer =
        model::ClipTokenizer::from_file(&tokenizer_path, config.text.max_position_embeddings)?;
    let mut out = std::io::stdout().lock();
    for text in texts {
        let ids = tokenizer.encode(text)?;
        writeln!(out, "{}", serde_json::json!({ "text": text, "ids": ids }))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
