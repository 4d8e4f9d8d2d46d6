//! The command line: headless access to everything the app does, over the same library core.
//! This module is argument parsing; `run` calls the core and prints.

mod model;
mod run;
mod tsv;
mod vocab;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::domain::Mode;
use crate::export::csv::CsvForm;
use crate::export::xmp::SidecarNaming;
use crate::library::IndexOptions;
use crate::model::hub;
pub use run::run;

#[derive(Parser)]
#[command(
    name = "cliptag",
    version = crate::about::VERSION_LINE,
    // `cliptag ~/Pictures/Holiday` opens the app on that folder; a word that names a command is
    // the command, also after global options (`cliptag --db lib.sqlite vocab list`).
    subcommand_precedence_over_arg = true,
    about = "Tag a folder of photos with CLIP, using your own words"
)]
pub struct Cli {
    /// The library database (default: the platform's data folder).
    #[arg(long, global = true, value_name = "FILE")]
    pub db: Option<PathBuf>,
    /// Threads for the app's model and scoring (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub threads: Option<u16>,
    /// Folders or photos to add to the library and open in the app (as the file manager's
    /// "Open with" passes them).
    #[arg(value_name = "PATH")]
    pub open: Vec<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `--threads`, offered by the commands that run the model or score the library, and only
/// those.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct Threads {
    /// Threads for the model's kernels and for scoring (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub threads: Option<u16>,
}

/// [`Threads`] for a command whose subcommands all take it (`vocab`).
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct SharedThreads {
    /// Threads for the model's kernels and for scoring (default: one per core).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub threads: Option<u16>,
}

/// The folders and photos named on the command line (or by the file manager), as full paths; one
/// that does not exist is an error before any window opens.
pub fn paths_to_open(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    paths
        .iter()
        .map(|path| std::fs::canonicalize(path).map_err(|e| crate::Error::io(path, e).into()))
        .collect()
}

impl Cli {
    /// Whether the command (or the app, without one) runs the model or scores the library.
    pub fn takes_threads(&self) -> bool {
        matches!(
            self.command,
            None | Some(
                Command::Index { .. }
                    | Command::Retag { .. }
                    | Command::Search { .. }
                    | Command::Similar { .. }
                    | Command::Duplicates { .. }
                    | Command::Embed { .. }
                    | Command::Vocab { .. }
                    | Command::Bench(_)
            )
        )
    }

    /// The threads asked for, on the command line before the subcommand (the app) or after it.
    pub fn threads(&self) -> Option<u16> {
        let of_command = match &self.command {
            Some(
                Command::Index { threads, .. }
                | Command::Retag { threads, .. }
                | Command::Search { threads, .. }
                | Command::Similar { threads, .. }
                | Command::Duplicates { threads, .. }
                | Command::Embed { threads, .. },
            ) => threads.threads,
            Some(Command::Vocab { threads, .. }) => threads.threads,
            Some(Command::Bench(args)) => args.threads.threads,
            _ => None,
        };
        of_command.or(self.threads)
    }
}

/// `index --precision`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// bf16 where this CPU runs it faster than f32, else f32.
    Auto,
    /// Exact f32 arithmetic.
    F32,
}

#[derive(Subcommand)]
pub enum Command {
    /// Index folders and tag their photos (incremental; progress on stderr).
    Index {
        #[command(flatten)]
        model: ModelArg,
        #[command(flatten)]
        threads: Threads,
        /// Images per encoder batch (1-1024).
        #[arg(long, default_value_t = IndexOptions::default().batch_size as u16,
              value_parser = clap::value_parser!(u16).range(1..=1024))]
        batch_size: u16,
        /// Threads decoding photos ahead of the encoder (1-64).
        #[arg(long, default_value_t = IndexOptions::default().decode_threads as u16,
              value_parser = clap::value_parser!(u16).range(1..=64))]
        decode_threads: u16,
        /// Decode large JPEGs and HEICs at full size instead of the faster reduced size.
        #[arg(long)]
        full_decode: bool,
        /// The arithmetic photos are embedded in, remembered by the library: `auto` (the
        /// faster one this CPU runs: bf16 with AMX or on AMD's AVX-512 BF16, else f32) or `f32`
        /// (exact, slower where bf16 runs). CLIPTAG_PRECISION=f32|bf16|f16 overrides both.
        #[arg(long, value_enum)]
        precision: Option<PrecisionArg>,
        /// Folders to index.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Recompute automatic tags from stored embeddings (the image encoder is not run).
    Retag {
        #[command(flatten)]
        threads: Threads,
        /// Report what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Edit the tag vocabulary.
    Vocab {
        #[command(flatten)]
        threads: SharedThreads,
        #[command(subcommand)]
        action: VocabAction,
    },
    /// Print tags as TSV: path, label, score, source (and why, with --explain).
    Tags {
        /// Add a column saying why: the score against the threshold, the margin, the best
        /// prompt, the runner-up label, and what learning changed.
        #[arg(long)]
        explain: bool,
        /// Only these photos.
        paths: Vec<PathBuf>,
    },
    /// Record a person's decision on one photo's tag.
    Tag {
        #[command(subcommand)]
        action: TagAction,
    },
    /// Undo the last decision or label edit (the app's and the command line's, one history).
    Undo,
    /// Redo the last step undone.
    Redo,
    /// Print every known file as TSV: path, status (ok/error/missing/pending), reason.
    Files,
    /// Print the library's folders as TSV: folder, photos, indexed, waiting, problems; or take
    /// one out of the library.
    Folders {
        #[command(subcommand)]
        action: Option<FolderAction>,
    },
    /// Remove the photos missing from disk from the library, with their tags and decisions
    /// (prints each, and how many decisions go with it).
    Prune {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the photos that best match a text, as TSV: path, score.
    Search {
        /// How many photos to print, best first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        threads: Threads,
        /// What to look for, in words ("a dog on the beach").
        text: String,
    },
    /// Print the photos most like the given ones, as TSV: path, score.
    Similar {
        /// How many photos to print, most alike first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        threads: Threads,
        /// Photos of the library to find others like.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print groups of near-duplicate photos, one group per paragraph.
    Duplicates {
        #[command(flatten)]
        threads: Threads,
        /// Minimum cosine similarity of two photos in a group.
        #[arg(long, default_value_t = 0.95)]
        threshold: f32,
    },
    /// Write tags to a CSV file or to XMP sidecars.
    Export(ExportArgs),
    /// Print L2-normalised embeddings as JSON lines: {"input", "kind", "embedding"}.
    Embed {
        #[command(flatten)]
        threads: Threads,
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
        #[arg(long, value_enum, default_value_t = Mode::Threshold)]
        mode: Mode,
        /// Threshold (cosine for threshold mode, or its probability with a SigLIP model;
        /// probability for contrast and topk).
        #[arg(long, allow_negative_numbers = true)]
        threshold: Option<f32>,
        /// k for topk mode (default 1).
        #[arg(long)]
        top_k: Option<u32>,
        /// A photo of what the label means (repeatable): the label learns from these examples.
        #[arg(long = "example", value_name = "PATH")]
        examples: Vec<PathBuf>,
    },
    /// Remove a label and its tags.
    Remove { label: String },
    /// Re-fit LABEL from the person's accepts and rejects (from stored embeddings; decisions
    /// stay as they are). Prints what changes; applies it unless --dry-run.
    Learn {
        /// Report what would change without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Forget what LABEL learned: its prompts and earlier threshold come back.
        #[arg(long, conflicts_with = "dry_run")]
        reset: bool,
        label: String,
    },
    /// Switch on or off, rename or move every label of a group (`Animals` holds `Animals/Cat`
    /// and `Animals/Pets/Dog`); labels keep their decisions.
    Group {
        group: String,
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Print the prompt templates, or replace them (`--set` repeated, `{}` is the label).
    Templates {
        #[arg(long = "set", value_name = "TEMPLATE")]
        set: Vec<String>,
    },
    /// Merge a vocabulary file (TOML) into the library.
    Import { file: PathBuf },
    /// Write the vocabulary to a file (TOML).
    Export { file: PathBuf },
}

#[derive(Subcommand)]
pub enum GroupAction {
    /// Use every label of the group for tagging.
    Enable,
    /// Use none of them.
    Disable,
    /// Rename the group, or move it under another: `Pets` to `Animals/Pets`.
    Rename {
        to: String,
        /// Merge into TO where that group exists (labels of the same name become one).
        #[arg(long)]
        merge: bool,
    },
}

#[derive(Subcommand)]
pub enum FolderAction {
    /// Take DIR and its photos out of the library (the files stay on disk). The decisions you
    /// made on its photos are kept and come back when the folder, or a copy of it, is indexed
    /// again.
    Remove { dir: PathBuf },
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
    #[arg(long, value_enum, default_value_t = CsvForm::Wide)]
    pub form: CsvForm,
    /// Write paths relative to the library folder that holds each photo.
    #[arg(long)]
    pub relative: bool,
    /// Write XMP sidecars beside the photos.
    #[arg(long)]
    pub xmp: bool,
    /// Sidecar names: photo.jpg.xmp (digiKam, darktable) or photo.xmp (Adobe).
    #[arg(long, value_enum, default_value_t = SidecarNaming::Appended)]
    pub xmp_naming: SidecarNaming,
}
