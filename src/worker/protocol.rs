//! What the app and the worker say to each other. The UI sends [`Command`]s and reads [`Event`]s;
//! state that only matters in its latest form (progress, the library snapshot) is shared
//! through [`Shared`] instead of queued, so a window that is not drawing (minimised) never makes
//! a queue grow.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use crate::export::PathStyle;
use crate::export::csv::CsvForm;
use crate::export::xmp::SidecarNaming;
use crate::library::{IndexSummary, Progress};
use crate::store::{ImageStatus, TagSource};
use crate::tagging::Label;

/// A request to the worker.
#[derive(Debug, Clone)]
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
    ImportVocabulary(PathBuf),
    ExportVocabulary(PathBuf),
    /// How many photos an edited (not yet saved) label would tag, and what would change.
    PreviewLabel(Label),
    /// A person's decision on one photo's tag; `None` hands it back to automatic tagging.
    SetDecision {
        image_id: i64,
        label_id: i64,
        decision: Option<TagSource>,
    },
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
    Shutdown,
}

/// What to export.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    pub csv: Option<(PathBuf, CsvForm, PathStyle)>,
    pub xmp: Option<SidecarNaming>,
}

/// Where the model stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    /// Not needed yet.
    NotLoaded,
    /// Being downloaded or loaded; the text says what is happening.
    Loading(String),
    /// Ready; the model's id.
    Ready(String),
    /// Could not be loaded; the reason, and what the person can do about it.
    Failed(String),
}

/// A discrete happening the UI should show.
#[derive(Debug, Clone)]
pub enum Event {
    Model(ModelStatus),
    IndexStarted,
    IndexFinished(IndexSummary),
    Preview(Preview),
    SearchResults {
        query: String,
        results: Vec<(i64, f32)>,
    },
    Detail(ImageDetail),
    /// Something finished that the person asked for.
    Done(String),
    /// Something failed; the text says what and why.
    Error(String),
}

/// What an edited label would do.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub label_id: i64,
    pub threshold: f32,
    pub mode: crate::tagging::Mode,
    /// Photos it would tag.
    pub count: usize,
    /// Automatic tags it would add and remove, compared with now.
    pub added: usize,
    pub removed: usize,
}

/// One photo's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetail {
    pub image_id: i64,
    /// Every enabled label: its name and id, the score under its mode, whether that passes its
    /// threshold, and any tag on the photo.
    pub scores: Vec<LabelScore>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelScore {
    pub label_id: i64,
    pub name: String,
    pub score: f32,
    pub passes: bool,
    pub tag: Option<TagSource>,
}

/// One photo as the gallery needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEntry {
    pub id: i64,
    pub path: PathBuf,
    pub status: ImageStatus,
    pub error: Option<String>,
    /// Tags on the photo (rejections included, marked as such).
    pub tags: Vec<(i64, TagSource)>,
}

/// A label with the number of photos it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelEntry {
    pub label: Label,
    pub count: usize,
}

/// The library as the UI shows it, replaced as a whole when it changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LibrarySnapshot {
    /// Increases with every snapshot.
    pub version: u64,
    pub images: Vec<ImageEntry>,
    pub labels: Vec<LabelEntry>,
    pub roots: Vec<PathBuf>,
    pub templates: Vec<String>,
}

/// State shared between the UI and the worker, latest value only.
#[derive(Default)]
pub struct Shared {
    /// Set by the UI to stop indexing within one batch.
    pub cancel: AtomicBool,
    /// Set by the UI to hold indexing between batches.
    pub paused: AtomicBool,
    pub progress: Mutex<Option<Progress>>,
    pub snapshot: Mutex<Option<Arc<LibrarySnapshot>>>,
}
