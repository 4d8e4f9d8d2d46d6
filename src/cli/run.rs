//! Running a parsed command line: open the library, call the core, print. Tables go to stdout
//! as TSV (see [`super::tsv`]); what happened goes to stderr.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::{Cli, Command, ExportArgs, FolderAction, TagAction, tsv};
use crate::domain::{Decision, TagSource};
use crate::export::PathStyle;
use crate::library::{
    self, CsvExport, Direction, ExportRequest, IndexOptions, IndexSummary, Library, LibraryOptions,
    Match, ModelStatus, Progress, Retag, RunControl, Stage, history_summary,
};

/// Runs a parsed command line (a subcommand; without one, `main` opens the app).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let db = cli.db.clone().unwrap_or_else(library::default_db_path);
    if cli.threads.is_some() && !cli.takes_threads() {
        bail!(
            "--threads does nothing for this command (it sizes the model's and the scoring's \
             threads: the app, index, retag, vocab, search, similar, duplicates, embed, bench)"
        );
    }
    let Some(command) = cli.command else {
        bail!("no subcommand given");
    };
    match command {
        Command::Index {
            model,
            threads: _,
            batch_size,
            decode_threads,
            full_decode,
            precision,
            dirs,
        } => {
            let options = IndexOptions {
                batch_size: batch_size.into(),
                decode_threads: decode_threads.into(),
                reduced_jpeg: !full_decode,
                ..IndexOptions::default()
            };
            index(&db, model.model, precision, options, &dirs)
        }
        Command::Retag { dry_run, .. } => retag(&db, dry_run),
        Command::Vocab { action, .. } => super::vocab::vocab(&db, action),
        Command::Tags { explain, paths } => tags(&db, &paths, explain),
        Command::Tag { action } => tag(&db, action),
        Command::Undo => history(&db, Direction::Undo),
        Command::Redo => history(&db, Direction::Redo),
        Command::Files => files(&db),
        Command::Folders { action } => folders(&db, action),
        Command::Prune { dry_run } => prune(&db, dry_run),
        Command::Search { limit, text, .. } => {
            let matches = open(&db, None)?.search(&text, limit)?;
            print_matches(&matches)
        }
        Command::Similar { limit, paths, .. } => {
            let mut library = open(&db, None)?;
            let ids = paths
                .iter()
                .map(|p| library.find_image(p).map(|row| row.id))
                .collect::<crate::Result<Vec<_>>>()?;
            print_matches(&library.similar(&ids, limit)?)
        }
        Command::Duplicates { threshold, .. } => duplicates(&db, threshold),
        Command::Export(args) => export_tags(&db, &args),
        Command::Embed {
            model,
            texts,
            images,
            ..
        } => super::model::embed(&model, &texts, &images),
        Command::Tokenize { model, texts } => super::model::tokenize(&model, &texts),
        Command::Bench(args) => crate::bench::run(&args),
    }
}

/// Opens the library, saying on stderr what the model is doing when it must be loaded.
/// Opens the library at `db` for a command that reads it or changes what it holds: it must exist
/// (a mistyped `--db` is an error, not a new empty library).
pub(super) fn open(db: &Path, model: Option<String>) -> anyhow::Result<Library> {
    if !db.exists() {
        bail!(
            "no cliptag library at {} (`cliptag index FOLDER` makes one; --db chooses another)",
            db.display()
        );
    }
    // An empty file is no library either: a command that only reads must not make it one.
    if db.metadata().is_ok_and(|m| m.is_file() && m.len() == 0) {
        bail!(
            "no cliptag library at {}: the file is empty (`cliptag index FOLDER` makes one; \
             --db chooses another)",
            db.display()
        );
    }
    create(db, model)
}

/// Opens the library at `db`, making it if there is none (indexing, adding to the vocabulary).
pub(super) fn create(db: &Path, model: Option<String>) -> anyhow::Result<Library> {
    let mut library = Library::open(
        db,
        LibraryOptions {
            model,
            ..LibraryOptions::default()
        },
    )?;
    library.on_model_status(Box::new(model_status_printer()));
    Ok(library)
}

/// Prints model status lines, download progress at most once a second per file.
fn model_status_printer() -> impl FnMut(ModelStatus) + Send {
    let mut last: Option<(String, Instant)> = None;
    move |status| {
        if let ModelStatus::Loading(text) = status {
            let file = text.split(':').next().unwrap_or_default().to_string();
            let due = last
                .as_ref()
                .is_none_or(|(f, at)| *f != file || at.elapsed() >= Duration::from_secs(1));
            if due {
                eprintln!("{text}");
                last = Some((file, Instant::now()));
            }
        }
    }
}

fn index(
    db: &Path,
    model: Option<String>,
    precision: Option<super::PrecisionArg>,
    options: IndexOptions,
    dirs: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let mut library = create(db, model)?;
    // Taken for this run at once, and kept by the library only once the run has run: a run
    // refused (another cliptag indexing, a folder that is not there) changes nothing.
    let exact = precision.map(|p| p == super::PrecisionArg::F32);
    let changes = exact.filter(|&exact| exact != library.exact_precision());
    if let Some(exact) = changes {
        library.use_exact_precision(exact);
    }
    if let (Some(exact), Some(forced)) = (exact, crate::model::matmul::precision_override()) {
        eprintln!(
            "CLIPTAG_PRECISION={} decides for this run; the library keeps `--precision {}` for the next",
            forced.name(),
            if exact { "f32" } else { "auto" }
        );
    }
    if let Some(why) = library.thumbnail_problem() {
        eprintln!("cliptag: thumbnails will not be kept: {why}");
    }
    let bar = progress_bar();
    let mut report = |p: &Progress| show_progress(&bar, p);
    let summary = library.index(dirs, options, RunControl::default(), &mut report)?;
    bar.finish_and_clear();
    if let Some(exact) = changes {
        library.set_exact_precision(exact)?;
        let fastest = crate::model::matmul::Precision::fastest().name();
        eprintln!(
            "{}",
            if exact {
                "this library embeds photos in exact f32 from now on (and photos embedded in bf16 or f16 again)".to_string()
            } else {
                format!(
                    "this library embeds photos in the fastest precision this CPU runs ({fastest}) from now on"
                )
            }
        );
    }
    print_summary(&summary);
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on standard error (hidden when it is not a terminal).
pub(super) fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>9} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
        )
        .expect("a valid progress template. This is a bug.")
        .progress_chars("=> "),
    );
    bar
}

pub(super) fn show_progress(bar: &indicatif::ProgressBar, p: &Progress) {
    bar.set_message(match p.stage {
        Stage::Scanning => "scanning",
        Stage::Indexing => "indexing",
        Stage::Scoring => "scoring",
        Stage::WritingTags => "writing",
        Stage::EmbeddingPrompts => "embedding prompts",
        Stage::Done => "done",
    });
    bar.set_length(p.total);
    bar.set_position(p.done);
}

/// Why photos were embedded in `precision`, where that is not plain f32 by default.
fn precision_note(precision: &str) -> &'static str {
    use crate::model::matmul::{Precision, precision_override};
    if let Some(forced) = precision_override() {
        if forced.name() == precision {
            " (CLIPTAG_PRECISION)"
        } else {
            " (CLIPTAG_PRECISION asks for another, which this CPU or the chosen kernel does not run)"
        }
    } else if precision == "f32" {
        ""
    } else if Precision::parse(precision) == Some(Precision::fastest()) {
        " (the fastest this CPU runs; `--precision f32` for exact f32)"
    } else {
        ""
    }
}

fn print_summary(s: &IndexSummary) {
    eprintln!(
        "indexed {}, unchanged {}, moved {}, copies {}, missing {}, failed {}",
        s.indexed, s.unchanged, s.moved, s.duplicates, s.missing, s.failed
    );
    if let Some(precision) = s.precision {
        eprintln!("embedded in {precision}{}", precision_note(precision));
    }
    if s.restored > 0 {
        eprintln!(
            "{} kept from a removed folder given back to its photos",
            crate::library::count(s.restored, "decision", "decisions")
        );
    }
    if let Some(reason) = &s.tagging_error {
        eprintln!("photos were embedded but not tagged ({reason}); `cliptag retag` tags them");
    }
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

fn retag(db: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let bar = progress_bar();
    let report = open(db, None)?.retag_watched(dry_run, &RunControl::default(), &mut |p| {
        show_progress(&bar, &p)
    })?;
    bar.finish_and_clear();
    let (verb, verb_removed) = if dry_run {
        ("would add", "would remove")
    } else {
        ("added", "removed")
    };
    eprintln!(
        "{verb} {}, {verb_removed} {}, kept {} automatic tags over {} photos; {} decisions left alone",
        report.total_added(),
        report.total_removed(),
        report.kept,
        report.photos,
        report.decided,
    );
    let mut names: Vec<&String> = report.added.keys().chain(report.removed.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = std::io::stdout().lock();
    for name in names {
        writeln!(
            out,
            "{}\t+{}\t-{}",
            tsv::field(name),
            report.added.get(name).unwrap_or(&0),
            report.removed.get(name).unwrap_or(&0)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Says how the tags followed a vocabulary edit.
pub(super) fn print_retag(retag: &Retag) {
    match retag {
        Retag::Done(report) => eprintln!(
            "re-tagged {} photos: {} tags added, {} removed",
            report.photos,
            report.total_added(),
            report.total_removed()
        ),
        Retag::NothingIndexed => {}
        Retag::AfterSwitch => eprintln!(
            "the library is switching models: the tags follow when `cliptag index` has embedded \
             every photo with the new one"
        ),
        Retag::Failed(reason) => {
            eprintln!(
                "the tags could not follow yet ({reason}); `cliptag retag` brings them up to date"
            )
        }
    }
}

fn tags(db: &Path, paths: &[PathBuf], explain: bool) -> anyhow::Result<ExitCode> {
    let mut library = open(db, None)?;
    if let Some((from, to)) = library.unfinished_switch()? {
        eprintln!(
            "the library is switching from {from} to {to}: the tags listed are still {from}'s{}",
            if explain {
                format!(", and their explanations give {to}'s scores")
            } else {
                String::new()
            }
        );
    }
    let rows = library.tags(paths)?;
    let mut out = std::io::stdout().lock();
    for t in rows {
        let score = t.score.map(|s| format!("{s:.4}")).unwrap_or_default();
        write!(
            out,
            "{}\t{}\t{score}\t{}",
            tsv::path(&t.path),
            tsv::field(&t.label),
            t.source.as_str()
        )?;
        if explain {
            let why = match library.explain(t.image_id, t.label_id)? {
                Some(explanation) => explanation.to_string(),
                None => "not scored (the label is disabled, or the photo has no embedding)".into(),
            };
            write!(out, "\t{}", tsv::field(&why))?;
        }
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn tag(db: &Path, action: TagAction) -> anyhow::Result<ExitCode> {
    let mut library = open(db, None)?;
    let (path, label, decision) = match action {
        TagAction::Add { path, label } => (path, label, Decision::Apply),
        TagAction::Reject { path, label } => (path, label, Decision::Reject),
        TagAction::Clear { path, label } => (path, label, Decision::Clear),
    };
    let image = library.find_image(&path)?;
    let label = library.label_named(&label)?;
    let before = library.tag_source(image.id, label.id)?;
    let what = match library.decide(image.id, label.id, decision)? {
        Some(TagSource::Accepted) => "accepted",
        Some(TagSource::Manual) => "added",
        Some(TagSource::Rejected) => "rejected",
        Some(TagSource::Auto) | None if !before.is_some_and(|s| s.is_personal()) => {
            eprintln!(
                "nothing to clear: you had made no decision on {:?} for {}",
                label.name,
                image.path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Some(TagSource::Auto) | None => "cleared",
    };
    eprintln!("{what} {:?} on {}", label.name, image.path.display());
    Ok(ExitCode::SUCCESS)
}

fn history(db: &Path, direction: Direction) -> anyhow::Result<ExitCode> {
    let mut library = open(db, None)?;
    match library.undo_or_redo(direction)? {
        Some(report) => eprintln!("{}", history_summary(&report)),
        None => eprintln!(
            "nothing to {}",
            match direction {
                Direction::Undo => "undo",
                Direction::Redo => "redo",
            }
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn prune(db: &Path, dry_run: bool) -> anyhow::Result<ExitCode> {
    let mut library = open(db, None)?;
    let report = library.prune(dry_run)?;
    let mut out = std::io::stdout().lock();
    for (path, decisions) in &report.removed {
        writeln!(out, "{}\t{decisions}", tsv::path(path))?;
    }
    out.flush()?;
    eprintln!("{}", crate::library::prune_summary(&report, dry_run));
    Ok(ExitCode::SUCCESS)
}

fn folders(db: &Path, action: Option<FolderAction>) -> anyhow::Result<ExitCode> {
    let mut library = open(db, None)?;
    match action {
        None => {
            let mut out = std::io::stdout().lock();
            for folder in library.folders()? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    tsv::path(&folder.path),
                    folder.photos,
                    folder.indexed,
                    folder.waiting,
                    folder.problems
                )?;
            }
            out.flush()?;
        }
        Some(FolderAction::Remove { dir }) => {
            let removed = library.remove_folder(&dir)?;
            eprintln!("{}", library::removed_folder_summary(&removed));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn files(db: &Path) -> anyhow::Result<ExitCode> {
    let library = open(db, None)?;
    let mut out = std::io::stdout().lock();
    for image in library.files()? {
        writeln!(
            out,
            "{}\t{}\t{}",
            tsv::path(&image.path),
            image.status.as_str(),
            tsv::field(image.error.as_deref().unwrap_or_default())
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_matches(matches: &[Match]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    for m in matches {
        writeln!(out, "{}\t{:.4}", tsv::path(&m.path), m.score)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn duplicates(db: &Path, threshold: f32) -> anyhow::Result<ExitCode> {
    if !(0.0..=1.0).contains(&threshold) {
        bail!("--threshold is a cosine similarity between 0 and 1 (got {threshold})");
    }
    let groups = open(db, None)?.duplicates(threshold)?;
    let mut out = std::io::stdout().lock();
    for group in groups {
        for image in group {
            writeln!(out, "{}", tsv::path(&image.path))?;
        }
        writeln!(out)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn export_tags(db: &Path, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let mut library = open(db, None)?;
    let request = ExportRequest {
        csv: args.csv.as_ref().map(|path| CsvExport {
            path: path.clone(),
            form: args.form,
            style: if args.relative {
                PathStyle::Relative
            } else {
                PathStyle::Absolute
            },
        }),
        xmp: args.xmp.then_some(args.xmp_naming),
    };
    let report = library.export(&request)?;
    let mut code = ExitCode::SUCCESS;
    if let Some(csv) = &report.csv {
        if csv.path.as_os_str() == "-" {
            eprintln!("wrote {} rows to standard output", csv.rows);
        } else {
            eprintln!("wrote {} rows to {}", csv.rows, csv.path.display());
        }
        if csv.lossy_names > 0 {
            eprintln!(
                "warning: {} photo name{} not valid UTF-8 and written with U+FFFD in its place: \
                 exiftool's import will not find {}",
                csv.lossy_names,
                if csv.lossy_names == 1 { " is" } else { "s are" },
                if csv.lossy_names == 1 { "it" } else { "them" }
            );
        }
        if let Some(command) = &csv.exiftool {
            eprintln!("to write these tags into the photos themselves, run:\n  {command}");
        }
    }
    if let Some(xmp) = &report.xmp {
        eprintln!(
            "XMP sidecars: {} written, {} already up to date, {} failed",
            xmp.written,
            xmp.unchanged,
            xmp.failed.len()
        );
        for (path, reason) in &xmp.failed {
            eprintln!("  {}: {reason}", path.display());
        }
        if !xmp.failed.is_empty() {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}
