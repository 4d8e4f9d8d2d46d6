//! The library core: one [`Library`] owns the store, the lazily loaded model and the score caches,
//! and offers every operation a person can ask for (index, re-tag, vocabulary edits, decisions,
//! preview, photo detail, search, similar, duplicates, export). The command line calls it
//! directly; the app's worker thread owns one and turns commands into calls. Nothing either face
//! does is written twice.

mod control;
mod decisions;
mod explain;
mod export;
mod folders;
mod gallery;
mod history;
pub mod index;
mod learn;
mod model;
mod prompts;
mod queries;
mod snapshot;
mod tags;
mod thumbnails;
mod vocabulary;
pub mod walk;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::domain::Label;
use crate::error::Result;
use crate::model::{Embedder, ModelSpec, hub};
use crate::store::{Store, ThumbnailCache, VectorFile};
use crate::tagging::{EmbeddingMatrix, TagPlan};
pub use control::{RunControl, RunState};
pub use explain::{Explanation, TopKRank};
pub use export::{CsvExport, ExportReport, ExportRequest};
pub use folders::{
    FolderCounts, RemovedFolder, count, removed_folder_summary, removed_label_words,
};
pub use gallery::{GalleryQuery, GalleryReader};
pub use history::{
    Change, Direction, HistoryChange, HistoryReport, LabelChange, history_summary, label_edit_words,
};
pub use index::{IndexOptions, IndexRun, IndexSummary, Progress, Stage, Timings};
pub use learn::LearnReport;
pub use model::{ClipLoader, FixedLoader, ModelLoader, ModelStatus};
use model::{Loaded, ModelSlot};
pub use queries::{Match, PruneReport, prune_summary};
pub use snapshot::{ImageEntry, LabelEntry, LibrarySnapshot};
pub use tags::{Histogram, ImageDetail, LabelScore, Preview, Retag};
pub use thumbnails::ThumbnailReader;
pub use vocabulary::{GroupEdit, ImportSummary, in_group};

/// The BLAKE3 hash of `bytes`, in hex: how a moved or renamed file is recognised.
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// Where the library database lives unless `--db` says otherwise: the platform's data folder
/// (`~/.local/share/cliptag/library.sqlite` on Linux). It belongs on a local disk: SQLite's
/// write-ahead log does not work on network file systems.
pub fn default_db_path() -> PathBuf {
    crate::paths::data_dir()
        .map(|dir| dir.join("library.sqlite"))
        .unwrap_or_else(|| PathBuf::from("cliptag-library.sqlite"))
}

/// Settings keys describing the library's model.
const MODEL_ID: &str = "model";
const MODEL_SOURCE: &str = "model_source";
const MODEL_NAME: &str = "model_name";
/// `f32` where a person asked for exact arithmetic; anything else (or nothing): the fastest
/// precision the CPU runs.
const PRECISION: &str = "precision";
/// Set while the library switches models (from the first indexing run with the new model): the
/// model it switched from. Kept until a run has embedded every photo with the new model and
/// re-tagged them, so a cancel or a crash midway resumes the switch instead of mixing two
/// models' tags.
const SWITCHING_FROM: &str = "switching_from";

/// How a library is opened.
pub struct LibraryOptions {
    /// A model other than the library's own (`--model`): a hub repo id or a local folder.
    pub model: Option<String>,
    /// Finds and loads models.
    pub loader: Box<dyn ModelLoader>,
}

impl Default for LibraryOptions {
    fn default() -> Self {
        LibraryOptions {
            model: None,
            loader: Box::new(ClipLoader),
        }
    }
}

/// Scores that depend on the library's embeddings and vocabulary, kept between operations.
#[derive(Default)]
struct ScoreCache {
    /// Every embedding of the library's model; kept up to date while indexing.
    matrix: Option<EmbeddingMatrix>,
    /// The prepared vocabulary; `None` when the vocabulary changed.
    plan: Option<TagPlan>,
    /// The vocabulary generation the plan was made from (see [`Store::vocabulary_generation`]).
    plan_generation: i64,
    /// Per label: the label its column was computed for, and every photo's score (previews,
    /// and the label-local re-tag).
    columns: HashMap<i64, (Label, crate::tagging::LabelColumn)>,
    /// The database's embedding generation the matrix holds (see
    /// [`Store::embedding_generation`]): a matrix of another generation is read again.
    generation: i64,
    /// How many times the embeddings were read from the database (or the file beside it).
    matrix_loads: u64,
    /// Where they were read from the last time.
    source: Option<EmbeddingsSource>,
    /// The database's `data_version` the plan was made at: another process's commit (a
    /// `cliptag` command beside the app) changes it, and the plan is made again from what the
    /// store holds.
    data_version: Option<i64>,
}

/// Where the library's embeddings were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbeddingsSource {
    /// The embeddings file beside the database, current and sound.
    File,
    /// The database, writing the embeddings file anew.
    DatabaseToFile,
    /// The database, the exact vectors kept in memory (an in-memory library, or no file could
    /// be written).
    Database,
}

/// A photo library: its database, its model and its vocabulary.
pub struct Library {
    store: Store,
    model: ModelSlot,
    scores: ScoreCache,
    /// The thumbnail cache beside the database (none for an in-memory library, or where it
    /// cannot be opened: thumbnails are then made from the photos each time).
    thumbnails: Option<ThumbnailCache>,
    /// Why the library has no thumbnail cache, where opening one failed.
    thumbnail_problem: Option<String>,
    /// The embeddings file beside the database (none for an in-memory library: its exact
    /// vectors stay in memory).
    vectors: Option<PathBuf>,
    /// The embeddings file being read on a thread of its own ([`Library::preload_embeddings`]).
    preload: Option<Preload>,
}

/// A read of the embeddings file in flight: the matrix and the generation it was read at, or
/// nothing where the file was not current.
type Preload = std::thread::JoinHandle<Option<(EmbeddingMatrix, i64)>>;

impl Library {
    /// Opens (creating if needed) the library at `db`; a new one gets the default vocabulary.
    pub fn open(db: &Path, options: LibraryOptions) -> Result<Self> {
        let mut library = Self::with_store(Store::open(db)?, options)?;
        match ThumbnailCache::of_library(db) {
            Ok(cache) => library.thumbnails = Some(cache),
            Err(e) => library.thumbnail_problem = Some(e.to_string()),
        }
        static FORGET: std::sync::Once = std::sync::Once::new();
        FORGET.call_once(|| {
            crate::store::thumbnails::forget_gone_libraries();
        });
        library.vectors = Some(crate::store::vectors_path(db));
        // Another program's writes are noticed from the moment the library is open, not from
        // the first time something is tagged.
        library.notice_outside_writes()?;
        Ok(library)
    }

    /// Why no thumbnail cache could be opened (thumbnails are then made from the photos each
    /// time they are shown).
    pub fn thumbnail_problem(&self) -> Option<&str> {
        self.thumbnail_problem.as_deref()
    }

    /// The thumbnail cache, where the library has one.
    pub fn thumbnail_cache(&self) -> Option<&ThumbnailCache> {
        self.thumbnails.as_ref()
    }

    /// Cleans the thumbnail cache of photos the library no longer holds and keeps it within
    /// its bound.
    pub fn trim_thumbnails(&mut self) {
        if let Some(cache) = &mut self.thumbnails
            && let Ok(keep) = self.store.content_hashes()
        {
            let _ = cache.trim(&keep);
        }
    }

    /// A library on an already open store (an in-memory one in tests and benchmarks).
    pub fn with_store(mut store: Store, options: LibraryOptions) -> Result<Self> {
        if store.read_only().is_none() {
            vocabulary::seed_default(&mut store)?;
        }
        let stored_id = store.setting(MODEL_ID)?;
        let (source, id) = match (&options.model, stored_id) {
            (Some(model), _) => (ModelSpec::parse(model), None),
            (None, Some(id)) => {
                let source = match store.setting(MODEL_SOURCE)? {
                    Some(source) => ModelSpec::from_stored(&source),
                    // Libraries from before model identities named the model by its source.
                    None => ModelSpec::from_stored(&id),
                };
                (source, Some(id))
            }
            (None, None) => (ModelSpec::parse(hub::DEFAULT_MODEL), None),
        };
        let name = match (&id, store.setting(MODEL_NAME)?) {
            (Some(_), Some(name)) => name,
            _ => source.name(),
        };
        let mut model = ModelSlot::new(options.loader, source, id, name);
        model.set_exact(store.setting(PRECISION)?.as_deref() == Some("f32"));
        Ok(Library {
            store,
            model,
            scores: ScoreCache::default(),
            thumbnails: None,
            thumbnail_problem: None,
            vectors: None,
            preload: None,
        })
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The model's name as people know it.
    pub fn model_name(&self) -> &str {
        &self.model.name
    }

    /// Where the model comes from.
    pub fn model_source(&self) -> &ModelSpec {
        &self.model.source
    }

    /// The model's id, finding out what a newly chosen model is first.
    pub fn model_id(&mut self) -> Result<String> {
        self.model.id()
    }

    /// Tells `observer` whenever the model's status changes (loading, ready, failed).
    pub fn on_model_status(&mut self, observer: Box<dyn FnMut(ModelStatus) + Send>) {
        self.model.set_observer(observer);
    }

    /// Switches to another model (`Some`), or forgets a model that failed to load so that the
    /// next use tries again (`None`). Photos are embedded with the new model when indexed.
    pub fn switch_model(&mut self, model: Option<&str>) {
        if let Some(model) = model {
            self.model.switch(ModelSpec::parse(model));
            self.scores = ScoreCache::default();
        }
        self.model.unload();
    }

    /// Whether the library asks for exact f32 arithmetic rather than the fastest precision the
    /// CPU runs.
    pub fn exact_precision(&self) -> bool {
        self.model.exact()
    }

    /// Asks for exact f32 arithmetic (`true`) or the fastest precision the CPU runs, from now
    /// on; photos already embedded keep their embeddings.
    pub fn set_exact_precision(&mut self, exact: bool) -> Result<()> {
        self.store
            .set_setting(PRECISION, if exact { "f32" } else { "auto" })?;
        self.use_exact_precision(exact);
        Ok(())
    }

    /// [`Library::set_exact_precision`] for this session only, the library's setting left as it
    /// is (the command line stores it once the run it was given to has run).
    pub fn use_exact_precision(&mut self, exact: bool) {
        let before = self.model.precision();
        self.model.set_exact(exact);
        if self.model.precision() != before {
            // The prepared vocabulary's prompts were embedded in the other precision.
            self.scores.plan = None;
        }
    }

    /// The precision photos are embedded in now (`CLIPTAG_PRECISION` over the library's
    /// setting).
    pub fn precision(&self) -> crate::model::matmul::Precision {
        self.model.precision()
    }

    /// Whether the library is switching to its model: photos are being embedded by it, and the
    /// tags stay the previous model's until that is done.
    ///
    /// A library opened with another model than its own (`--model`, or the app's Model window)
    /// counts as switching from then on, before any photo is embedded: until a run has embedded
    /// them all, nothing re-tags them from a part of the library.
    /// The models of an unfinished switch, from and to (their ids, and the new one's name where
    /// known), read from the library alone; `None` when no switch is under way.
    pub fn unfinished_switch(&self) -> Result<Option<(String, String)>> {
        let Some(from) = self.store.setting(SWITCHING_FROM)? else {
            return Ok(None);
        };
        let to = match self.store.setting(MODEL_NAME)? {
            Some(name) if !name.is_empty() => name,
            _ => self.store.setting(MODEL_ID)?.unwrap_or_default(),
        };
        Ok(Some((from, to)))
    }

    pub fn switching(&mut self) -> Result<bool> {
        if self.store.setting(SWITCHING_FROM)?.is_some() {
            return Ok(true);
        }
        let Some(stored) = self.store.setting(MODEL_ID)? else {
            return Ok(false);
        };
        if !self.store.has_embeddings()? {
            return Ok(false);
        }
        Ok(self.model.id()? != stored)
    }

    /// Whether threshold labels score as probabilities (the library's model is sigmoid-trained,
    /// SigLIP) rather than as cosines; what their thresholds mean.
    pub fn probability_scores(&self) -> Result<bool> {
        Ok(self.store.logit_bias()?.is_some())
    }

    /// Loads the model now (the app's Retry), reporting through the status observer.
    pub fn load_model(&mut self) -> Result<()> {
        self.engine().map(|_| ())
    }

    /// How many times the library's embeddings were read from the database since it was opened:
    /// once, then kept up to date as photos are indexed.
    pub fn matrix_loads(&self) -> u64 {
        self.scores.matrix_loads
    }

    /// Drops everything prepared in memory (the tagging plan, the embeddings matrix, score
    /// columns), to be made again from the store: after a failure that may have left them half
    /// updated.
    pub fn forget_prepared(&mut self) {
        self.scores = ScoreCache::default();
        self.preload = None;
    }

    /// Whether another process (or another connection) committed to the library since this one
    /// last looked; if so, what was prepared from the vocabulary is dropped, to be made again
    /// from what the store holds now.
    pub fn notice_outside_writes(&mut self) -> Result<bool> {
        let version = self.store.data_version()?;
        let changed = self.scores.data_version.is_some_and(|seen| seen != version);
        if changed {
            self.scores.plan = None;
            self.scores.columns.clear();
        }
        self.scores.data_version = Some(version);
        Ok(changed)
    }

    /// Whether the database has commits waiting for a checkpoint (see [`Library::checkpoint`]).
    pub fn checkpoint_due(&self) -> bool {
        self.store.checkpoint_due()
    }

    /// Copies the database's write-ahead log into its file: done when the library is idle, so
    /// that edits return as soon as their own writes are committed.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.store.checkpoint()
    }

    /// Where the library's embeddings were last read from (`None`: not yet).
    pub fn embeddings_source(&self) -> Option<EmbeddingsSource> {
        self.scores.source
    }

    /// The loaded model, loading it first; remembers what loading taught about the model.
    fn engine(&mut self) -> Result<Arc<dyn Embedder>> {
        let (engine, loaded) = self.model.embedder()?;
        // A read-only library is read as it is: what loading taught is not written back.
        if self.store.read_only().is_some() {
            return Ok(engine);
        }
        if let Loaded::Renamed { old } = loaded {
            self.store.rename_model(&old, engine.model_id())?;
            self.remember_model(engine.model_id())?;
        }
        let (scale, bias) = (engine.logit_scale(), engine.logit_bias());
        let id = engine.model_id();
        if self.store.thresholds_model()?.as_deref() != Some(id)
            || (self.store.logit_scale()? - scale).abs() > f32::EPSILON
            || self.store.logit_bias()? != bias
        {
            self.adopt_scoring(id, scale, bias)?;
        }
        Ok(engine)
    }

    /// Scores with `model` from now on: its scale and bias, and the thresholds the labels had
    /// under it (see [`Store::adopt_model_scoring`]).
    fn adopt_scoring(&mut self, model: &str, scale: f32, bias: Option<f32>) -> Result<()> {
        let default = crate::domain::Mode::Threshold.default_threshold_in(bias.is_some());
        self.store
            .adopt_model_scoring(model, scale, bias, default)?;
        self.vocabulary_changed();
        Ok(())
    }

    /// Stores which model the library uses.
    fn remember_model(&mut self, id: &str) -> Result<()> {
        let source = self.model.source.stored();
        let name = self.model.name.clone();
        self.store
            .set_settings(&[(MODEL_ID, id), (MODEL_SOURCE, &source), (MODEL_NAME, &name)])?;
        // A model the library scored with before: its scale, bias and thresholds come back
        // without loading it.
        if let Some((scale, bias)) = self.store.model_scoring(id)? {
            self.adopt_scoring(id, scale, bias)?;
        }
        Ok(())
    }

    /// The model id under which the library's embeddings are stored, if it has any: a library
    /// with nothing embedded needs no model to be found (or downloaded) to know that.
    fn embedding_model(&mut self) -> Result<Option<String>> {
        if let Some(id) = self.model.known_id() {
            return Ok(Some(id));
        }
        if !self.store.has_embeddings()? {
            return Ok(None);
        }
        self.model.id().map(Some)
    }

    /// Every embedding of the library's model, read once and then kept (read again if the
    /// database's embeddings changed behind it).
    fn matrix(&mut self) -> Result<&EmbeddingMatrix> {
        let generation = self.store.embedding_generation()?;
        if self.scores.matrix.is_some() && self.scores.generation != generation {
            self.scores.matrix = None;
            self.scores.columns.clear();
        }
        // A read started at opening is waited for rather than started again, and kept where
        // nothing changed the embeddings since it began.
        if let Some(preload) = self.preload.take()
            && let Ok(Some((matrix, read_at))) = preload.join()
            && self.scores.matrix.is_none()
            && read_at == generation
        {
            self.scores.source = Some(EmbeddingsSource::File);
            self.scores.matrix_loads += 1;
            self.scores.generation = generation;
            self.scores.columns.clear();
            self.scores.matrix = Some(matrix);
        }
        if self.scores.matrix.is_none() {
            let (matrix, source) = self.load_matrix(generation)?;
            self.scores.source = Some(source);
            self.scores.matrix_loads += 1;
            self.scores.generation = generation;
            self.scores.matrix = Some(matrix);
        }
        Ok(self
            .scores
            .matrix
            .as_ref()
            .expect("filled just above. This is a bug."))
    }

    /// Starts reading the embeddings file on a thread of its own, so that the first edit,
    /// preview or search after opening a large library finds them in memory (a million photos
    /// take seconds to read); what needs them meanwhile waits for that read instead of making
    /// another. Only a current, sound file is read so (a rebuild from the database waits for the
    /// first need), and a read that the embeddings changed under is dropped when it is taken.
    pub fn preload_embeddings(&mut self) -> Result<()> {
        if self.scores.matrix.is_some() || self.preload.is_some() {
            return Ok(());
        }
        let (Some(path), Some(model)) = (self.vectors.clone(), self.embedding_model()?) else {
            return Ok(());
        };
        let generation = self.store.embedding_generation()?;
        self.preload = std::thread::Builder::new()
            .name("cliptag-embeddings".into())
            .spawn(move || {
                crate::model::kernels::flush_denormals_on_this_thread();
                let file = VectorFile::open_current(&path, &model, generation).ok()??;
                let matrix = EmbeddingMatrix::on_file(Box::new(file)).ok()?;
                Some((matrix, generation))
            })
            .ok();
        Ok(())
    }

    /// Whether a read started by [`Library::preload_embeddings`] has finished (or none runs).
    pub fn preload_finished(&self) -> bool {
        self.preload.as_ref().is_none_or(|p| p.is_finished())
    }

    /// The library's embeddings at the database's `generation`: from the file beside the
    /// database where it is current and sound, else from the database (writing the file anew).
    /// Where no file can be written the exact vectors stay in memory.
    fn load_matrix(&mut self, generation: i64) -> Result<(EmbeddingMatrix, EmbeddingsSource)> {
        let Some(model) = self.embedding_model()? else {
            return Ok((EmbeddingMatrix::default(), EmbeddingsSource::Database));
        };
        if let Some(path) = self.vectors.clone() {
            if let Ok(Some(file)) = VectorFile::open_current(&path, &model, generation)
                && let Ok(matrix) = EmbeddingMatrix::on_file(Box::new(file))
            {
                return Ok((matrix, EmbeddingsSource::File));
            }
            if let Some(dim) = self.store.embedding_width(&model)?
                && let Ok(file) = VectorFile::create(&path, &model, dim)
            {
                let mut matrix = EmbeddingMatrix::on_file(Box::new(file))?;
                self.fill(&mut matrix, &model)?;
                matrix.commit(generation)?;
                return Ok((matrix, EmbeddingsSource::DatabaseToFile));
            }
        }
        let mut matrix = EmbeddingMatrix::default();
        self.fill(&mut matrix, &model)?;
        Ok((matrix, EmbeddingsSource::Database))
    }

    /// Adds every stored embedding of `model` to `matrix`, one at a time.
    fn fill(&self, matrix: &mut EmbeddingMatrix, model: &str) -> Result<()> {
        self.store
            .each_embedding(model, &mut |id, vector| matrix.upsert(id, vector))
    }

    /// The prepared vocabulary (enabled labels), embedding only prompts not seen before.
    fn plan(&mut self) -> Result<&TagPlan> {
        self.notice_outside_writes()?;
        if self.scores.plan.is_none() {
            // Read before the labels: a writer in between makes the plan newer than its
            // generation says, which only ever leaves a re-tag owed, never one skipped.
            let generation = self.store.vocabulary_generation()?.0;
            let labels: Vec<Label> = self
                .store
                .labels()?
                .into_iter()
                .filter(|l| l.enabled)
                .collect();
            let templates = self.store.templates()?;
            let texts = TagPlan::texts(&labels, &templates);
            let vectors = if texts.is_empty() {
                HashMap::new()
            } else {
                self.text_embeddings(&texts)?
            };
            let model = self.model.id()?;
            let logits = crate::tagging::Logits {
                scale: self.store.logit_scale()?,
                bias: self.store.logit_bias()?,
            };
            let plan = TagPlan::new(labels, &templates, &vectors, logits, &model)?;
            self.scores.plan = Some(plan);
            self.scores.plan_generation = generation;
        }
        Ok(self
            .scores
            .plan
            .as_ref()
            .expect("filled just above. This is a bug."))
    }

    /// The vocabulary changed: what was computed from it is stale.
    fn vocabulary_changed(&mut self) {
        self.scores.plan = None;
        self.scores.columns.clear();
    }
}
