//! Incremental, crash-safe indexing, one batch at a time: walk the folders, work out what
//! changed, decode on a small pool of threads while the encoder runs, and write each batch in one
//! transaction. The caller drives the batches ([`Library::index_step`]), so the app's worker
//! answers a person's commands between two of them.
//!
//! A kill at any moment loses at most the batch in flight: files are recorded as `pending` before
//! any work starts, each batch's embeddings, statuses and automatic tags commit together, and the
//! next run picks up every file that is still pending. The model is loaded only when a photo
//! must be embedded: re-indexing an unchanged, touched, moved or copied photo does not need it.

mod batch;
pub(super) mod lock;
mod plan;
mod pool;
mod renames;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;

use super::{Library, RunControl};
use crate::error::{Error, Result};
use crate::library::walk::{FoundFile, walk};
use plan::{KnownMaps, split_error};
use pool::{DecodePool, Decoding, Done, Job, Outcome};

/// How indexing runs.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Images per encoder batch (and per transaction).
    pub batch_size: usize,
    /// Threads decoding and preprocessing ahead of the encoder.
    pub decode_threads: usize,
    /// Decode large JPEGs (DCT scaling) and HEICs at a reduced size instead of full size.
    pub reduced_jpeg: bool,
    /// How long a batch waits to fill once it holds a photo to embed: photos that decode
    /// slowly (a HEIC takes about a second a thread) are then embedded, stored and shown a
    /// few at a time, not after a whole batch of them.
    pub batch_wait: Duration,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            batch_size: 16,
            decode_threads: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, 4),
            reduced_jpeg: true,
            batch_wait: Duration::from_secs(2),
        }
    }
}

/// What a running job (indexing, a full re-tag) is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Walking the folders.
    Scanning,
    /// Decoding and embedding images.
    Indexing,
    /// A full re-tag scoring every photo (`done` and `total` count photos).
    Scoring,
    /// A full re-tag writing what changed (`done` and `total` count tags).
    WritingTags,
    /// A vocabulary import embedding its prompts before it commits (`done` and `total` count
    /// prompts).
    EmbeddingPrompts,
    /// Finished (or cancelled).
    Done,
}

/// A progress report, sent at most about ten times a second.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub stage: Stage,
    /// Files handled so far in this stage.
    pub done: u64,
    /// Files to handle in this stage (while scanning: found so far).
    pub total: u64,
    /// Images per second over the run so far.
    pub rate: f64,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IndexSummary {
    /// Files decoded and embedded.
    pub indexed: u64,
    /// Files skipped because their size and modification time did not change.
    pub unchanged: u64,
    /// Files recognised by content at a new path; they kept their id, embedding and tags.
    pub moved: u64,
    /// Exact copies of an indexed file, given its embedding without re-encoding.
    pub duplicates: u64,
    /// Files that vanished since the last run (kept, with their tags, as missing).
    pub missing: u64,
    /// A person's decisions given back to photos of a folder once removed from the library.
    pub restored: u64,
    /// Files or folders that could not be read or decoded.
    pub failed: u64,
    /// The first failures, with their reasons.
    pub failures: Vec<(PathBuf, String)>,
    /// Whether the run was cancelled before it finished.
    pub cancelled: bool,
    /// Why photos were embedded but not tagged (they are tagged by the next re-tag).
    pub tagging_error: Option<String>,
    /// The arithmetic photos were embedded in (`f32`, `bf16`, `f16`); `None` when none was.
    pub precision: Option<&'static str>,
    /// Where the time went.
    pub timings: Timings,
}

/// Time spent in each part of indexing. Decoding and preprocessing run on several threads at
/// once, so their totals can exceed the wall-clock time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    /// Reading, hashing and decoding files (summed over decode threads).
    pub decode: Duration,
    /// Resizing and normalising decoded images (summed over decode threads).
    pub preprocess: Duration,
    /// The image encoder.
    pub encode: Duration,
    /// Writing batches (and their automatic tags) to the database.
    pub store: Duration,
    /// Waiting for the decode threads with nothing to encode.
    pub waiting: Duration,
    /// The whole run.
    pub wall: Duration,
}

/// How many failures a summary lists by name.
const LISTED_FAILURES: usize = 20;

impl IndexSummary {
    pub(super) fn fail(&mut self, path: &Path, reason: String) {
        self.failed += 1;
        if self.failures.len() < LISTED_FAILURES {
            self.failures.push((path.to_path_buf(), reason));
        }
    }
}

/// A run of indexing in progress (see [`Library::start_index`]).
pub struct IndexRun {
    options: IndexOptions,
    control: RunControl,
    /// The model the photos are embedded with.
    model: String,
    summary: IndexSummary,
    started: Instant,
    throttle: Throttle,
    total: u64,
    handled: u64,
    /// Jobs not yet given to a pool.
    waiting: Vec<Job>,
    /// Jobs whose bytes turned out changed in a pool that could not decode them.
    deferred: Vec<Job>,
    pool: Option<DecodePool>,
    known: KnownMaps,
    finished: bool,
    /// The library moves from another model to this run's: photos are embedded without
    /// touching their tags, and every tag follows the new model at once when the run finishes.
    switching: bool,
    /// This run's hold on the library's index lock, released when the run ends.
    _lock: lock::IndexLock,
}

impl IndexRun {
    /// What the run has done so far.
    pub fn summary(&self) -> &IndexSummary {
        &self.summary
    }

    fn rate(&self) -> f64 {
        self.summary.indexed as f64 / self.started.elapsed().as_secs_f64().max(1e-9)
    }

    fn report(&mut self, report: &mut dyn FnMut(&Progress), stage: Stage, force: bool) {
        let progress = Progress {
            stage,
            done: self.handled,
            total: self.total,
            rate: self.rate(),
        };
        self.throttle.report(report, progress, force);
    }
}

impl Library {
    /// Starts indexing `roots` (folders, remembered as the library's): walks them and records
    /// what changed. Progress goes to `report`, at most about ten times a second.
    pub fn start_index(
        &mut self,
        roots: &[PathBuf],
        options: IndexOptions,
        control: RunControl,
        report: &mut dyn FnMut(&Progress),
    ) -> Result<IndexRun> {
        let started = Instant::now();
        let index_lock = lock::IndexLock::take(self.store.path())?;
        let mut summary = IndexSummary::default();
        let mut throttle = Throttle::default();
        let mut canonical_roots = Vec::new();
        for root in roots {
            let canonical = root.canonicalize().map_err(|e| Error::io(root, e))?;
            if !canonical.is_dir() {
                return Err(Error::invalid(format!(
                    "{} is not a folder",
                    root.display()
                )));
            }
            canonical_roots.push(canonical);
        }
        let mut found: Vec<FoundFile> = Vec::new();
        // Folders whose photos the library keeps as they were, unseen rather than missing.
        let mut unseen: Vec<PathBuf> = Vec::new();
        for root in &canonical_roots {
            self.store.add_root(root)?;
            let stop = control.clone();
            let walked = walk(root, &move || stop.is_cancelled());
            for error in walked.errors {
                let (path, reason) = split_error(error, root);
                summary.fail(&path, reason);
            }
            unseen.extend(walked.unreadable);
            if walked.files.is_empty() && !control.is_cancelled() {
                // An empty folder where the library has photos is far more often a drive's bare
                // mount point than a folder emptied on purpose.
                let known = self.store.count_present_under(root)?;
                if known > 0 {
                    summary.fail(
                        root,
                        format!(
                            "this folder is empty now, yet {known} photo{} of the library {} \
                             indexed from it (an unplugged drive's mount point?): kept as they \
                             were, not marked missing",
                            if known == 1 { "" } else { "s" },
                            if known == 1 { "was" } else { "were" },
                        ),
                    );
                    unseen.push(root.clone());
                }
            }
            found.extend(walked.files);
            let progress = Progress {
                stage: Stage::Scanning,
                done: found.len() as u64,
                total: found.len() as u64,
                rate: 0.0,
            };
            throttle.report(report, progress, false);
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found.dedup_by(|a, b| a.path == b.path);
        let mut run = IndexRun {
            options,
            control,
            model: String::new(),
            summary,
            started,
            throttle,
            total: 0,
            handled: 0,
            waiting: Vec::new(),
            deferred: Vec::new(),
            pool: None,
            known: KnownMaps::default(),
            finished: false,
            switching: false,
            _lock: index_lock,
        };
        if run.control.is_cancelled() {
            run.finished = true;
            return Ok(run);
        }
        run.model = match self.model.id() {
            Ok(model) => model,
            Err(error) => {
                // Photos first: without a model the photos found are still registered, as
                // waiting for tags, so the library lists them and a later run (or choosing a
                // model) embeds them.
                let model = self.store.setting(super::MODEL_ID)?.unwrap_or_default();
                plan::plan(
                    &mut self.store,
                    &canonical_roots,
                    &unseen,
                    &found,
                    &model,
                    false,
                    &mut run.summary,
                )?;
                self.scores.matrix = None;
                let waiting = self.store.pending_count()?;
                let advice = self.model.advice(&error);
                if waiting == 0 {
                    return Err(Error::invalid(advice));
                }
                return Err(Error::WaitingForModel { waiting, advice });
            }
        };
        let stored = self.store.setting(super::MODEL_ID)?;
        if stored.as_deref() != Some(run.model.as_str()) {
            if let Some(from) = stored.as_deref()
                && self.store.has_embeddings()?
            {
                self.store.set_setting(super::SWITCHING_FROM, from)?;
            }
            self.remember_model(&run.model)?;
            self.scores = super::ScoreCache::default();
        } else if self.store.setting(super::MODEL_SOURCE)? != Some(self.model.source.stored()) {
            // The same model found elsewhere (a moved folder): remember where it is now.
            self.remember_model(&run.model)?;
        }
        run.switching = self.store.setting(super::SWITCHING_FROM)?.is_some();
        let exact = self.model.exact()
            && crate::model::matmul::chosen_precision(true) == crate::model::matmul::Precision::F32;
        let planned = plan::plan(
            &mut self.store,
            &canonical_roots,
            &unseen,
            &found,
            &run.model,
            exact,
            &mut run.summary,
        )?;
        if planned.statuses_changed {
            self.scores.matrix = None;
            self.scores.columns.clear();
        }
        run.total = planned.jobs.len() as u64;
        run.waiting = planned.jobs;
        run.known = planned.known;
        run.finished = run.waiting.is_empty();
        run.report(report, Stage::Indexing, true);
        Ok(run)
    }

    /// Decodes, embeds and stores one batch; returns whether there is more to do. Stops early,
    /// after storing what it has, when the run is cancelled.
    pub fn index_step(
        &mut self,
        run: &mut IndexRun,
        report: &mut dyn FnMut(&Progress),
    ) -> Result<bool> {
        if run.finished {
            return Ok(false);
        }
        if run.pool.is_none() && !self.start_pool(run)? {
            run.finished = true;
            return Ok(false);
        }
        let batch_size = run.options.batch_size.max(1);
        let mut batch: Vec<Done> = Vec::with_capacity(batch_size);
        let mut ready = 0;
        let mut drained = false;
        let filling = Instant::now();
        // Fill a batch: `batch_size` images for the encoder, or a bounded number of others, or
        // what has come once the first image to embed has waited `batch_wait`.
        while ready < batch_size && batch.len() < 8 * batch_size && !run.control.is_cancelled() {
            if ready > 0 && filling.elapsed() >= run.options.batch_wait {
                break;
            }
            let pool = run.pool.as_ref().expect("started above. This is a bug.");
            let waited = Instant::now();
            let received = pool.results.recv_timeout(Duration::from_millis(100));
            run.summary.timings.waiting += waited.elapsed();
            match received {
                Ok(done) => {
                    run.summary.timings.decode += done.decode;
                    run.summary.timings.preprocess += done.preprocess;
                    ready += usize::from(matches!(done.outcome, Outcome::Ready { .. }));
                    batch.push(done);
                }
                Err(RecvTimeoutError::Timeout) => run.report(report, Stage::Indexing, false),
                Err(RecvTimeoutError::Disconnected) => {
                    drained = true;
                    break;
                }
            }
        }
        if drained && let Some(pool) = run.pool.take() {
            pool.stop();
        }
        if !batch.is_empty() {
            self.store_batch(run, batch)?;
        }
        run.report(report, Stage::Indexing, false);
        let nothing_left = run.pool.is_none() && run.waiting.is_empty() && run.deferred.is_empty();
        if run.control.is_cancelled() || nothing_left {
            run.finished = true;
        }
        Ok(!run.finished)
    }

    /// Ends a run (finished or not) and returns what it did.
    pub fn finish_index(
        &mut self,
        mut run: IndexRun,
        report: &mut dyn FnMut(&Progress),
    ) -> IndexSummary {
        if let Some(pool) = run.pool.take() {
            pool.stop();
        }
        run.summary.cancelled = run.control.is_cancelled();
        if run.switching && run.finished && !run.summary.cancelled {
            // Every photo has the new model's embedding now: its tags replace the old model's
            // in one re-tag (a person's decisions stay as they are).
            match self.retag_from_embeddings(false, &RunControl::default(), &mut |_| {}) {
                Ok(_) => {
                    if let Err(error) = self.store.delete_setting(super::SWITCHING_FROM) {
                        run.summary.tagging_error.get_or_insert(error.to_string());
                    }
                }
                Err(error) => {
                    run.summary.tagging_error.get_or_insert(error.to_string());
                }
            }
        }
        // Tags that owe a re-tag — the vocabulary was edited by another program during this run,
        // or an edit was killed before its own re-tag — are brought up to the vocabulary now.
        let owed = self
            .store
            .vocabulary_generation()
            .is_ok_and(|(n, tagged)| n != tagged);
        if owed && !run.summary.cancelled && !self.switching().unwrap_or(true) {
            self.vocabulary_changed();
            if let Err(error) =
                self.retag_from_embeddings(false, &RunControl::default(), &mut |_| {})
            {
                run.summary.tagging_error.get_or_insert(error.to_string());
            }
        }
        self.trim_thumbnails();
        run.summary.timings.wall = run.started.elapsed();
        run.report(report, Stage::Done, true);
        run.summary
    }

    /// Indexes `roots` from start to finish.
    pub fn index(
        &mut self,
        roots: &[PathBuf],
        options: IndexOptions,
        control: RunControl,
        report: &mut dyn FnMut(&Progress),
    ) -> Result<IndexSummary> {
        let mut run = self.start_index(roots, options, control, report)?;
        while self.index_step(&mut run, report)? {}
        Ok(self.finish_index(run, report))
    }

    /// Starts a decode pool on the waiting jobs (or the deferred ones); false when none are left.
    fn start_pool(&mut self, run: &mut IndexRun) -> Result<bool> {
        let jobs = if !run.waiting.is_empty() {
            std::mem::take(&mut run.waiting)
        } else if !run.deferred.is_empty() {
            std::mem::take(&mut run.deferred)
        } else {
            return Ok(false);
        };
        // Files expected unchanged are only hashed; the model's preprocessing (its small files)
        // is read only if some file may need decoding.
        let preprocess = if jobs.iter().any(|j| j.expect.is_none()) {
            Some(Arc::new(self.model.preprocess()?))
        } else {
            None
        };
        let decoding = Decoding {
            preprocess,
            reduced_jpeg: run.options.reduced_jpeg,
            thumbnails: self.thumbnails.is_some(),
            known: Arc::new(run.known.hashes()),
        };
        run.pool = Some(DecodePool::start(
            jobs,
            run.options.decode_threads,
            2 * run.options.batch_size.max(1),
            decoding,
            run.control.clone(),
        ));
        Ok(true)
    }
}

/// Progress reports at most ten a second, plus the ones that must not be dropped.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn report(&mut self, report: &mut dyn FnMut(&Progress), progress: Progress, force: bool) {
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if force || due {
            self.last = Some(Instant::now());
            report(&progress);
        }
    }
}
