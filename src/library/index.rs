//! Incremental, crash-safe indexing: walk the folders, work out what changed, decode on a small
//! pool of threads while the encoder runs, and write each batch in one transaction.
//!
//! A kill at any moment loses at most the batch in flight: files are recorded as `pending` before
//! any work starts, each batch's embeddings, statuses and automatic tags commit together, and the
//! next run picks up every file that is still pending.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::error::{Error, Result};
use crate::imaging::{self, Pixels};
use crate::library::content_hash;
use crate::library::walk::{FoundFile, walk};
use crate::model::{Embedder, PreprocessConfig};
use crate::store::images::write;
use crate::store::{ImageRow, ImageStatus, NewImage, Store};
use crate::tagging::TagPlan;

/// How indexing runs.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// Images per encoder batch (and per transaction).
    pub batch_size: usize,
    /// Threads decoding and preprocessing ahead of the encoder.
    pub decode_threads: usize,
    /// Decode large JPEGs at a reduced size (DCT scaling) instead of full size.
    pub reduced_jpeg: bool,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            batch_size: 16,
            decode_threads: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(1, 4),
            reduced_jpeg: true,
        }
    }
}

/// What indexing is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Walking the folders.
    Scanning,
    /// Decoding and embedding images.
    Indexing,
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
    /// Files or folders that could not be read or decoded.
    pub failed: u64,
    /// The first failures, with their reasons.
    pub failures: Vec<(PathBuf, String)>,
    /// Whether the run was cancelled before it finished.
    pub cancelled: bool,
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
    fn fail(&mut self, path: &Path, reason: String) {
        self.failed += 1;
        if self.failures.len() < LISTED_FAILURES {
            self.failures.push((path.to_path_buf(), reason));
        }
    }
}

/// Callbacks of a running index.
pub trait IndexHooks {
    /// A throttled progress report.
    fn progress(&mut self, _progress: &Progress) {}

    /// Called between batches with the store free: the app's worker handles commands here (a
    /// vocabulary edit may replace the tag plan).
    fn between_batches(&mut self, _store: &mut Store, _plan: &mut Option<TagPlan>) -> Result<()> {
        Ok(())
    }
}

/// Hooks that do nothing.
pub struct NoHooks;
impl IndexHooks for NoHooks {}

/// Indexes folders into a store with one embedder.
pub struct Indexer<'a> {
    pub store: &'a mut Store,
    pub embedder: &'a dyn Embedder,
    pub options: IndexOptions,
    /// Set from any thread to stop within one batch.
    pub cancel: Arc<AtomicBool>,
    /// Automatic tagging applied to each batch as it is stored.
    pub plan: Option<TagPlan>,
}

/// A file to decode and embed.
struct Job {
    image_id: i64,
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
    /// First seen in this run (so it may be a moved file).
    new: bool,
}

/// What the decode pool made of a job.
enum Outcome {
    /// Preprocessed and ready for the encoder.
    Ready {
        hash: String,
        pixels: Pixels,
        display: (u32, u32),
    },
    /// Its content is already known (a move or an exact copy); no decoding was done.
    Known { hash: String },
    /// Unreadable or undecodable.
    Failed {
        hash: Option<String>,
        reason: String,
    },
}

struct Done {
    job: Job,
    outcome: Outcome,
    decode: Duration,
    preprocess: Duration,
}

/// Rows of embedded images known by content hash, for recognising moves and copies.
struct KnownContent {
    /// Missing images with an embedding: a new file with the same hash is the same photo moved.
    missing: HashMap<String, i64>,
    /// Every image with an embedding for this model: a new file with the same hash is a copy.
    embedded: HashMap<String, i64>,
}

impl Indexer<'_> {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Indexes `roots` (folders), incrementally.
    pub fn run(&mut self, roots: &[PathBuf], hooks: &mut dyn IndexHooks) -> Result<IndexSummary> {
        let started = Instant::now();
        let mut summary = IndexSummary::default();
        let mut throttle = Throttle::new();

        // 1. Scan.
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
        for root in &canonical_roots {
            self.store.add_root(root)?;
            let cancel = self.cancel.clone();
            let walked = walk(root, &move || cancel.load(Ordering::Relaxed));
            for error in walked.errors {
                let (path, reason) = split_error(error);
                summary.fail(&path, reason);
            }
            found.extend(walked.files);
            throttle.report(
                hooks,
                Stage::Scanning,
                found.len() as u64,
                found.len() as u64,
                0.0,
                false,
            );
        }
        if self.cancelled() {
            summary.cancelled = true;
            return Ok(summary);
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        found.dedup_by(|a, b| a.path == b.path);

        // 2. Work out what changed, and record it before any slow work starts.
        let model = self.embedder.model_id().to_string();
        let (jobs, known) = self.plan_jobs(&canonical_roots, &found, &model, &mut summary)?;
        self.store.set_setting("model", &model)?;

        // 3. Decode on the pool, embed and store in batches.
        let total = jobs.len() as u64;
        throttle.report(hooks, Stage::Indexing, 0, total, 0.0, true);
        if !jobs.is_empty() {
            self.process(
                jobs,
                known,
                &model,
                &mut summary,
                hooks,
                &mut throttle,
                started,
            )?;
        }
        summary.cancelled = self.cancelled();
        summary.timings.wall = started.elapsed();
        let elapsed = started.elapsed().as_secs_f64().max(1e-9);
        let handled = summary.indexed + summary.moved + summary.duplicates + summary.failed;
        throttle.report(
            hooks,
            Stage::Done,
            handled,
            total,
            summary.indexed as f64 / elapsed,
            true,
        );
        Ok(summary)
    }

    /// Compares what is on disk with the database; returns the files to process.
    fn plan_jobs(
        &mut self,
        roots: &[PathBuf],
        found: &[FoundFile],
        model: &str,
        summary: &mut IndexSummary,
    ) -> Result<(Vec<Job>, KnownContent)> {
        let under_roots = |path: &Path| roots.iter().any(|r| path.starts_with(r));
        let known: HashMap<PathBuf, ImageRow> = self
            .store
            .images()?
            .into_iter()
            .map(|row| (row.path.clone(), row))
            .collect();
        let embedded_ids = self.embedded_ids(model)?;
        let seen: HashSet<&Path> = found.iter().map(|f| f.path.as_path()).collect();

        let mut jobs = Vec::new();
        let mut vanished = Vec::new();
        for row in known.values() {
            if row.status != ImageStatus::Missing
                && under_roots(&row.path)
                && !seen.contains(row.path.as_path())
            {
                vanished.push(row.id);
            }
        }
        summary.missing = vanished.len() as u64;

        let jobs = self.store.transaction(|tx| {
            write::mark_missing(tx, &vanished)?;
            for file in found {
                let job = |image_id, new| Job {
                    image_id,
                    path: file.path.clone(),
                    size: file.size,
                    mtime_ns: file.mtime_ns,
                    new,
                };
                match known.get(&file.path) {
                    None => {
                        let image = NewImage {
                            path: &file.path,
                            size: file.size,
                            mtime_ns: file.mtime_ns,
                        };
                        match write::insert_pending(tx, &image) {
                            Ok(id) => jobs.push(job(id, true)),
                            Err(error) => {
                                let (path, reason) = split_error(error);
                                summary.fail(&path, reason);
                            }
                        }
                    }
                    Some(row) => {
                        let same = row.size == file.size && row.mtime_ns == file.mtime_ns;
                        let has_embedding = embedded_ids.contains(&row.id);
                        match row.status {
                            ImageStatus::Ok | ImageStatus::Missing if same && has_embedding => {
                                if row.status == ImageStatus::Missing {
                                    tx.execute(
                                        "UPDATE images SET status = 'ok' WHERE id = ?1",
                                        [row.id],
                                    )?;
                                }
                                summary.unchanged += 1;
                            }
                            ImageStatus::Error if same => {
                                summary.unchanged += 1;
                            }
                            _ => {
                                write::mark_changed(tx, row.id, file.size, file.mtime_ns)?;
                                jobs.push(job(row.id, false));
                            }
                        }
                    }
                }
            }
            Ok(jobs)
        })?;

        let mut missing = HashMap::new();
        let mut embedded = HashMap::new();
        let mut stmt = self
            .store
            .conn()
            .prepare(
                "SELECT i.id, i.hash, i.status FROM images i
                 JOIN embeddings e ON e.image_id = i.id AND e.model = ?1
                 WHERE i.hash IS NOT NULL AND i.status IN ('ok', 'missing')",
            )
            .map_err(|e| self.store.err(e))?;
        let rows = stmt
            .query_map([model], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.store.err(e))?;
        for row in rows {
            let (id, hash, status) = row.map_err(|e| self.store.err(e))?;
            if status == "missing" {
                missing.insert(hash.clone(), id);
            }
            embedded.entry(hash).or_insert(id);
        }
        Ok((jobs, KnownContent { missing, embedded }))
    }

    fn embedded_ids(&self, model: &str) -> Result<HashSet<i64>> {
        let mut stmt = self
            .store
            .conn()
            .prepare("SELECT image_id FROM embeddings WHERE model = ?1")
            .map_err(|e| self.store.err(e))?;
        let rows = stmt
            .query_map([model], |r| r.get::<_, i64>(0))
            .map_err(|e| self.store.err(e))?;
        rows.map(|r| r.map_err(|e| self.store.err(e))).collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn process(
        &mut self,
        jobs: Vec<Job>,
        mut known: KnownContent,
        model: &str,
        summary: &mut IndexSummary,
        hooks: &mut dyn IndexHooks,
        throttle: &mut Throttle,
        started: Instant,
    ) -> Result<()> {
        let total = jobs.len() as u64;
        let batch_size = self.options.batch_size.max(1);
        let known_hashes: Arc<HashSet<String>> = Arc::new(
            known
                .missing
                .keys()
                .chain(known.embedded.keys())
                .cloned()
                .collect(),
        );
        let pool = DecodePool::start(
            jobs,
            self.options.decode_threads.max(1),
            2 * batch_size,
            self.embedder.preprocess_config().clone(),
            self.options.reduced_jpeg,
            known_hashes,
            self.cancel.clone(),
        );

        let mut handled = 0u64;
        let mut batch: Vec<Done> = Vec::with_capacity(batch_size);
        let mut ready = 0usize;
        let mut finished = false;
        while !finished {
            // Fill a batch: `batch_size` images for the encoder, or a bounded number of others.
            loop {
                if self.cancelled() {
                    finished = true;
                    break;
                }
                let waited = Instant::now();
                let received = pool.results.recv_timeout(Duration::from_millis(100));
                summary.timings.waiting += waited.elapsed();
                match received {
                    Ok(done) => {
                        summary.timings.decode += done.decode;
                        summary.timings.preprocess += done.preprocess;
                        if matches!(done.outcome, Outcome::Ready { .. }) {
                            ready += 1;
                        }
                        batch.push(done);
                        if ready >= batch_size || batch.len() >= 8 * batch_size {
                            break;
                        }
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                        throttle.report(
                            hooks,
                            Stage::Indexing,
                            handled,
                            total,
                            rate(summary, started),
                            false,
                        );
                    }
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                        finished = true;
                        break;
                    }
                }
            }
            if batch.is_empty() {
                continue;
            }
            handled += batch.len() as u64;
            self.store_batch(std::mem::take(&mut batch), &mut known, model, summary)?;
            ready = 0;
            throttle.report(
                hooks,
                Stage::Indexing,
                handled,
                total,
                rate(summary, started),
                false,
            );
            if !finished {
                hooks.between_batches(self.store, &mut self.plan)?;
            }
        }
        pool.stop();
        Ok(())
    }

    /// Embeds the batch's ready images and writes the whole batch in one transaction.
    fn store_batch(
        &mut self,
        batch: Vec<Done>,
        known: &mut KnownContent,
        model: &str,
        summary: &mut IndexSummary,
    ) -> Result<()> {
        let pixels: Vec<Pixels> = batch
            .iter()
            .filter_map(|d| match &d.outcome {
                Outcome::Ready { pixels, .. } => Some(pixels.clone()),
                _ => None,
            })
            .collect();
        let encoding = Instant::now();
        let mut vectors = if pixels.is_empty() {
            Vec::new()
        } else {
            self.embedder.embed_images(&pixels)?
        }
        .into_iter();
        summary.timings.encode += encoding.elapsed();
        drop(pixels);

        // Decide moves and copies here, in order, so that one vanished photo moves only once.
        enum Write {
            Embedded {
                id: i64,
                hash: String,
                display: (u32, u32),
                vector: Vec<f32>,
            },
            Copy {
                id: i64,
                hash: String,
                from: i64,
            },
            Move {
                from: i64,
                pending: i64,
                path: PathBuf,
                size: u64,
                mtime_ns: i64,
            },
            Failed {
                id: i64,
                hash: Option<String>,
                reason: String,
            },
            /// A changed file whose content is what was indexed before (touched, or copied back).
            Same {
                id: i64,
            },
        }
        let mut writes = Vec::with_capacity(batch.len());
        for Done { job, outcome, .. } in batch {
            match outcome {
                Outcome::Ready { hash, display, .. } => {
                    let vector = vectors
                        .next()
                        .ok_or_else(|| Error::invalid("the encoder returned too few embeddings"))?;
                    writes.push(Write::Embedded {
                        id: job.image_id,
                        hash,
                        display,
                        vector,
                    });
                }
                Outcome::Known { hash } => {
                    if job.new
                        && let Some(from) = known.missing.remove(&hash)
                    {
                        writes.push(Write::Move {
                            from,
                            pending: job.image_id,
                            path: job.path,
                            size: job.size,
                            mtime_ns: job.mtime_ns,
                        });
                    } else {
                        match known.embedded.get(&hash).copied() {
                            Some(from) if from != job.image_id => writes.push(Write::Copy {
                                id: job.image_id,
                                hash,
                                from,
                            }),
                            _ => writes.push(Write::Same { id: job.image_id }),
                        }
                    }
                }
                Outcome::Failed { hash, reason } => {
                    summary.fail(&job.path, reason.clone());
                    writes.push(Write::Failed {
                        id: job.image_id,
                        hash,
                        reason,
                    });
                }
            }
        }

        let plan = self.plan.as_ref();
        let storing = Instant::now();
        let counts = self.store.transaction(|tx| {
            let (mut indexed, mut moved, mut copies, mut same) = (0, 0, 0, 0);
            let mut tagged: Vec<(i64, Vec<f32>)> = Vec::new();
            for write in writes {
                match write {
                    Write::Embedded {
                        id,
                        hash,
                        display,
                        vector,
                    } => {
                        write::record_ok(tx, id, &hash, display, model, &vector)?;
                        tagged.push((id, vector));
                        indexed += 1;
                    }
                    Write::Copy { id, hash, from } => {
                        let vector: Vec<u8> = tx.query_row(
                            "SELECT vector FROM embeddings WHERE image_id = ?1 AND model = ?2",
                            rusqlite::params![from, model],
                            |r| r.get(0),
                        )?;
                        let (w, h): (Option<u32>, Option<u32>) = tx.query_row(
                            "SELECT width, height FROM images WHERE id = ?1",
                            [from],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )?;
                        let vector = crate::store::blob_to_vector(&vector).unwrap_or_default();
                        write::record_ok(
                            tx,
                            id,
                            &hash,
                            (w.unwrap_or(0), h.unwrap_or(0)),
                            model,
                            &vector,
                        )?;
                        tagged.push((id, vector));
                        copies += 1;
                    }
                    Write::Move {
                        from,
                        pending,
                        path,
                        size,
                        mtime_ns,
                    } => {
                        write::record_move(tx, from, pending, &path, size, mtime_ns)?;
                        moved += 1;
                    }
                    Write::Failed { id, hash, reason } => {
                        write::record_error(tx, id, hash.as_deref(), &reason)?;
                    }
                    Write::Same { id } => {
                        tx.execute(
                            "UPDATE images SET status = 'ok', error = NULL WHERE id = ?1",
                            [id],
                        )?;
                        same += 1;
                    }
                }
            }
            if let Some(plan) = plan {
                plan.tag_images(tx, &tagged)?;
            }
            Ok((indexed, moved, copies, same))
        })?;
        summary.timings.store += storing.elapsed();
        summary.indexed += counts.0;
        summary.moved += counts.1;
        summary.duplicates += counts.2;
        summary.unchanged += counts.3;
        Ok(())
    }
}

fn rate(summary: &IndexSummary, started: Instant) -> f64 {
    summary.indexed as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// Splits an error into the path it names (if any) and the reason.
fn split_error(error: Error) -> (PathBuf, String) {
    match error {
        Error::Io { path, source } => (path, source.to_string()),
        Error::Image { path, reason } => (path, reason),
        other => (PathBuf::new(), other.to_string()),
    }
}

/// Progress reports at most ten a second, plus the ones that must not be dropped.
struct Throttle {
    last: Option<Instant>,
}

impl Throttle {
    fn new() -> Self {
        Throttle { last: None }
    }

    fn report(
        &mut self,
        hooks: &mut dyn IndexHooks,
        stage: Stage,
        done: u64,
        total: u64,
        rate: f64,
        force: bool,
    ) {
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(100));
        if force || due {
            self.last = Some(Instant::now());
            hooks.progress(&Progress {
                stage,
                done,
                total,
                rate,
            });
        }
    }
}

/// Threads that read, hash, decode and preprocess files ahead of the encoder.
struct DecodePool {
    results: Receiver<Done>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl DecodePool {
    fn start(
        jobs: Vec<Job>,
        threads: usize,
        queue: usize,
        preprocess: PreprocessConfig,
        reduced_jpeg: bool,
        known: Arc<HashSet<String>>,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        let (job_tx, job_rx) = bounded::<Job>(jobs.len().max(1));
        for job in jobs {
            job_tx
                .send(job)
                .expect("the job queue holds every job and its receiver is alive. This is a bug.");
        }
        drop(job_tx);
        let (result_tx, results) = bounded::<Done>(queue.max(1));
        let stop = Arc::new(AtomicBool::new(false));
        let preprocess = Arc::new(preprocess);
        let threads = (0..threads)
            .map(|i| {
                let (job_rx, result_tx) = (job_rx.clone(), result_tx.clone());
                let (stop, cancel, known, preprocess) = (
                    stop.clone(),
                    cancel.clone(),
                    known.clone(),
                    preprocess.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("cliptag-decode-{i}"))
                    .spawn(move || {
                        decode_loop(
                            job_rx,
                            result_tx,
                            &stop,
                            &cancel,
                            &known,
                            &preprocess,
                            reduced_jpeg,
                        )
                    })
                    .expect("spawning a decode thread")
            })
            .collect();
        DecodePool {
            results,
            stop,
            threads,
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock threads waiting to send.
        drop(self.results);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn decode_loop(
    jobs: Receiver<Job>,
    results: Sender<Done>,
    stop: &AtomicBool,
    cancel: &AtomicBool,
    known: &HashSet<String>,
    preprocess: &PreprocessConfig,
    reduced_jpeg: bool,
) {
    while let Ok(job) = jobs.recv() {
        if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
            return;
        }
        let (outcome, decode, preprocess) = decode_job(&job, known, preprocess, reduced_jpeg);
        if results
            .send(Done {
                job,
                outcome,
                decode,
                preprocess,
            })
            .is_err()
        {
            return;
        }
    }
}

/// Reads, hashes, decodes and preprocesses one file; returns the outcome and the time spent
/// decoding and preprocessing.
fn decode_job(
    job: &Job,
    known: &HashSet<String>,
    preprocess: &PreprocessConfig,
    reduced_jpeg: bool,
) -> (Outcome, Duration, Duration) {
    let started = Instant::now();
    let bytes = match std::fs::read(&job.path) {
        Ok(bytes) => bytes,
        Err(e) => {
            let outcome = Outcome::Failed {
                hash: None,
                reason: e.to_string(),
            };
            return (outcome, started.elapsed(), Duration::ZERO);
        }
    };
    let hash = content_hash(&bytes);
    if known.contains(&hash) {
        return (Outcome::Known { hash }, started.elapsed(), Duration::ZERO);
    }
    let reduce_to = reduced_jpeg.then_some(preprocess.shortest_edge);
    match imaging::decode_bytes(&bytes, reduce_to) {
        Ok(decoded) => {
            drop(bytes);
            let decode = started.elapsed();
            let display = decoded.display_size;
            let pixels = imaging::preprocess(&decoded.image, preprocess);
            let outcome = Outcome::Ready {
                hash,
                pixels,
                display,
            };
            (outcome, decode, started.elapsed() - decode)
        }
        Err(reason) => (
            Outcome::Failed {
                hash: Some(hash),
                reason,
            },
            started.elapsed(),
            Duration::ZERO,
        ),
    }
}
