//! What the app and the worker say to each other. The UI sends [`Command`]s, each under a
//! [`RequestId`], and reads [`Event`]s that name the request they answer. State that only
//! matters in its latest form (progress, the library snapshot) is shared as a latest value
//! instead of queued, so a window that is not drawing (minimised) never makes a queue grow.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::domain::{Decision, Label, TagSource};
use crate::library::{
    Direction, ExportReport, ExportRequest, GalleryQuery, GroupEdit, HistoryReport, ImageDetail,
    ImageEntry, ImportSummary, IndexSummary, LearnReport, Match, ModelStatus, Preview, Retag,
};
use crate::tagging::RetagReport;

/// Names one request; its answer carries the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// A request to the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Index these folders (remembered as the library's folders) incrementally.
    Index {
        roots: Vec<PathBuf>,
    },
    /// Index the library's folders again.
    Update,
    /// Recompute every automatic tag from stored embeddings.
    Retag,
    AddLabel(Label),
    /// Replace a stored label (rename, prompts, mode, threshold, enabled).
    UpdateLabel(Label),
    RemoveLabel {
        label_id: i64,
    },
    /// Enable, disable, rename or move every label of a group at once.
    EditGroup {
        group: String,
        edit: GroupEdit,
    },
    ImportVocabulary(PathBuf),
    ExportVocabulary(PathBuf),
    /// Replace the prompt templates.
    SetTemplates(Vec<String>),
    /// How many photos an edited (not yet saved) label would tag, and what would change.
    PreviewLabel(Label),
    /// Re-fit the label called so from the person's decisions.
    Learn {
        label: String,
    },
    /// Forget what the label called so learned.
    ResetLearning {
        label: String,
    },
    /// A new label learned from example photos.
    AddLabelFromExamples {
        label: Label,
        image_ids: Vec<i64>,
    },
    /// A person's decision on one photo's tag. `continues` puts it in the same step of the
    /// library's history (one undo) as the decision sent before it: one decision on several
    /// picked photos.
    Decide {
        image_id: i64,
        label_id: i64,
        decision: Decision,
        continues: bool,
    },
    /// Undoes the last step of decisions, or redoes the last one undone.
    History(Direction),
    /// Photos that best match a text.
    Search {
        text: String,
        limit: usize,
    },
    /// Photos like the given ones.
    MoreLike {
        image_ids: Vec<i64>,
        limit: usize,
    },
    /// Every label's score on one photo.
    Detail {
        image_id: i64,
    },
    Export(ExportRequest),
    /// Load (or retry loading) the model; `Some` switches to another model.
    LoadModel(Option<String>),
    /// Embed in exact f32 (`true`) or the fastest precision the CPU runs, from the next photo
    /// embedded on.
    SetPrecision {
        exact: bool,
    },
    /// Remove the photos missing from disk, with their tags and decisions (with `dry_run`,
    /// only say which and what goes with them).
    Prune {
        dry_run: bool,
    },
    /// Take a folder and its photos out of the library, keeping the person's decisions on them
    /// for when the folder comes back.
    RemoveFolder(PathBuf),
}

impl Command {
    /// Whether the command records something a person decided or edited, which a closing app
    /// still stores (the rest — indexing, searches, previews, exports — is dropped on closing).
    pub fn is_persons_edit(&self) -> bool {
        matches!(
            self,
            Command::AddLabel(_)
                | Command::UpdateLabel(_)
                | Command::RemoveLabel { .. }
                | Command::EditGroup { .. }
                | Command::SetTemplates(_)
                | Command::Learn { .. }
                | Command::ResetLearning { .. }
                | Command::AddLabelFromExamples { .. }
                | Command::Decide { .. }
                | Command::History(_)
                | Command::Prune { dry_run: false }
                | Command::RemoveFolder(_)
        )
    }

    /// The operation this command asks for, as its answer names it.
    pub fn operation(&self) -> Operation {
        match self {
            Command::Index { roots } => Operation::Index {
                roots: roots.clone(),
            },
            Command::Update => Operation::Index { roots: Vec::new() },
            Command::Retag => Operation::Retag,
            Command::AddLabel(label) => Operation::AddLabel {
                name: label.name.clone(),
            },
            Command::UpdateLabel(label) => Operation::UpdateLabel {
                name: label.name.clone(),
            },
            Command::RemoveLabel { label_id } => Operation::RemoveLabel {
                label_id: *label_id,
            },
            Command::EditGroup { group, .. } => Operation::EditGroup {
                group: group.clone(),
            },
            Command::SetTemplates(_) => Operation::SetTemplates,
            Command::ImportVocabulary(path) => Operation::ImportVocabulary { path: path.clone() },
            Command::ExportVocabulary(path) => Operation::ExportVocabulary { path: path.clone() },
            Command::PreviewLabel(label) => Operation::Preview {
                label_id: label.id,
                name: label.name.clone(),
            },
            Command::Learn { label } | Command::ResetLearning { label } => Operation::Learn {
                name: label.clone(),
            },
            Command::AddLabelFromExamples { label, .. } => Operation::AddLabel {
                name: label.name.clone(),
            },
            Command::Decide {
                image_id, label_id, ..
            } => Operation::Decide {
                image_id: *image_id,
                label_id: *label_id,
            },
            Command::History(direction) => Operation::History(*direction),
            Command::Search { text, .. } => Operation::Search { text: text.clone() },
            Command::MoreLike { .. } => Operation::MoreLike,
            Command::Detail { image_id } => Operation::Detail {
                image_id: *image_id,
            },
            Command::Export(request) => Operation::Export {
                csv: request.csv.as_ref().map(|c| c.path.clone()),
            },
            Command::LoadModel(model) => Operation::LoadModel {
                model: model.clone(),
            },
            Command::SetPrecision { .. } => Operation::SetPrecision,
            Command::Prune { .. } => Operation::Prune,
            Command::RemoveFolder(path) => Operation::RemoveFolder { path: path.clone() },
        }
    }
}

/// Which operation an answer is about, with what it was about (a label, a file, a folder).
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// Indexing these folders (none: the library's own).
    Index {
        roots: Vec<PathBuf>,
    },
    Retag,
    AddLabel {
        name: String,
    },
    UpdateLabel {
        name: String,
    },
    RemoveLabel {
        label_id: i64,
    },
    EditGroup {
        group: String,
    },
    SetTemplates,
    ImportVocabulary {
        path: PathBuf,
    },
    ExportVocabulary {
        path: PathBuf,
    },
    Preview {
        label_id: i64,
        name: String,
    },
    Learn {
        name: String,
    },
    Decide {
        image_id: i64,
        label_id: i64,
    },
    History(Direction),
    Search {
        text: String,
    },
    MoreLike,
    Detail {
        image_id: i64,
    },
    Export {
        csv: Option<PathBuf>,
    },
    LoadModel {
        model: Option<String>,
    },
    SetPrecision,
    /// Opening the library itself (the worker could not start).
    Open {
        db: PathBuf,
    },
    /// Reading what the gallery shows.
    Gallery,
    /// The worker itself.
    Worker,
    /// Removing missing photos.
    Prune,
    RemoveFolder {
        path: PathBuf,
    },
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::Index { roots } if roots.is_empty() => write!(f, "updating the library"),
            Operation::Index { roots } => {
                let names: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
                write!(f, "indexing {}", names.join(", "))
            }
            Operation::Retag => write!(f, "re-tagging"),
            Operation::AddLabel { name } => write!(f, "adding the label {name:?}"),
            Operation::UpdateLabel { name } => write!(f, "changing the label {name:?}"),
            Operation::RemoveLabel { label_id } => write!(f, "removing label #{label_id}"),
            Operation::EditGroup { group } => write!(f, "changing the group {group:?}"),
            Operation::SetTemplates => write!(f, "changing the prompt templates"),
            Operation::ImportVocabulary { path } => {
                write!(f, "importing the vocabulary {}", path.display())
            }
            Operation::ExportVocabulary { path } => {
                write!(f, "exporting the vocabulary to {}", path.display())
            }
            Operation::Preview { name, .. } => write!(f, "previewing the label {name:?}"),
            Operation::Learn { name } => write!(f, "learning the label {name:?}"),
            Operation::Decide { image_id, label_id } => {
                write!(
                    f,
                    "recording a decision (photo #{image_id}, label #{label_id})"
                )
            }
            Operation::History(Direction::Undo) => write!(f, "undoing"),
            Operation::History(Direction::Redo) => write!(f, "redoing"),
            Operation::Search { text } => write!(f, "searching for {text:?}"),
            Operation::MoreLike => write!(f, "finding similar photos"),
            Operation::Detail { image_id } => write!(f, "scoring photo #{image_id}"),
            Operation::Export { csv: Some(path) } => write!(f, "exporting to {}", path.display()),
            Operation::Export { csv: None } => write!(f, "exporting XMP sidecars"),
            Operation::LoadModel { model: Some(model) } => write!(f, "loading the model {model}"),
            Operation::LoadModel { model: None } => write!(f, "loading the model"),
            Operation::SetPrecision => write!(f, "changing the precision photos are embedded in"),
            Operation::Open { db } => write!(f, "opening the library {}", db.display()),
            Operation::Gallery => write!(f, "reading the gallery"),
            Operation::Worker => write!(f, "running the background worker"),
            Operation::Prune => write!(f, "removing the missing photos"),
            Operation::RemoveFolder { path } => {
                write!(f, "removing the folder {} from the library", path.display())
            }
        }
    }
}

/// What finished.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    Indexed(IndexSummary),
    Retagged(RetagReport),
    LabelAdded {
        label: Label,
        retag: Retag,
    },
    LabelUpdated {
        label: Label,
        retag: Retag,
    },
    LabelRemoved {
        name: String,
        /// The person's decisions that went with it.
        decisions: usize,
        retag: Retag,
    },
    GroupEdited {
        group: String,
        edit: GroupEdit,
        labels: usize,
        retag: Retag,
    },
    TemplatesSet {
        templates: Vec<String>,
        retag: Retag,
    },
    VocabularyImported {
        path: PathBuf,
        summary: ImportSummary,
        retag: Retag,
    },
    VocabularyExported {
        path: PathBuf,
        labels: usize,
    },
    Preview(Box<Preview>),
    Learned(Box<LearnReport>),
    LearningReset {
        label: Label,
        retag: Retag,
    },
    Found {
        query: String,
        matches: Vec<Match>,
    },
    Detail(ImageDetail),
    Decided {
        image_id: i64,
        label_id: i64,
        tag: Option<TagSource>,
    },
    /// A step of the history undone or redone; `None` when there was none to go through.
    History {
        direction: Direction,
        report: Option<HistoryReport>,
    },
    Exported(ExportReport),
    ModelLoaded,
    PrecisionSet,
    /// A folder to index was kept for when the running index finishes.
    Queued {
        roots: Vec<PathBuf>,
    },
    /// Missing photos removed (or, in a dry run, that would be), with how many decisions went
    /// with them, and what was kept.
    Pruned {
        report: crate::library::PruneReport,
        dry_run: bool,
    },
    /// A folder taken out of the library.
    FolderRemoved(crate::library::RemovedFolder),
}

/// What failed and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub operation: Operation,
    /// The file the error is about, when it names one.
    pub path: Option<PathBuf>,
    /// The reason, in words.
    pub reason: String,
    /// The photos were found and registered and wait for a model: not a failure of theirs.
    pub waiting_for_model: bool,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.operation, self.reason)
    }
}

/// A discrete happening the UI should show.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The model's status changed.
    Model(ModelStatus),
    /// A long request began (indexing).
    Started {
        request: RequestId,
        operation: Operation,
    },
    /// A request finished.
    Done { request: RequestId, done: Done },
    /// A request failed.
    Failed {
        request: RequestId,
        failure: Failure,
    },
    /// Another program (a `cliptag` command, another window) changed the library; what the
    /// worker had prepared from it was dropped and the snapshot made anew.
    ChangedOutside,
}

/// What the gallery asks of its reader, which answers beside the worker (on a connection of
/// its own), so scrolling gets rows while an index or a re-tag runs.
#[derive(Debug, Clone, PartialEq)]
pub enum GalleryRequest {
    /// Which photos `query` shows, for the snapshot numbered `version`.
    View { query: GalleryQuery, version: u64 },
    /// The rows of these photos, for the snapshot numbered `version`.
    Rows { ids: Vec<i64>, version: u64 },
}

/// The photos a gallery query shows, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct GalleryView {
    pub query: GalleryQuery,
    /// The snapshot it was asked for (the rows are read as they are when it is answered).
    pub version: u64,
    pub ids: Arc<[i64]>,
}

/// The gallery reader's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum GalleryAnswer {
    View(GalleryView),
    /// The rows asked for under `version`; an id asked for and not among `entries` is no
    /// longer in the library.
    Rows {
        version: u64,
        asked: Vec<i64>,
        entries: Vec<ImageEntry>,
    },
}
