//! The worker thread: it alone owns the model and the SQLite connection (opened inside the
//! thread). It runs one indexing batch at a time and handles commands between batches, so a
//! vocabulary edit, a decision or a cancel takes effect within one batch. It wakes the UI through
//! a callback, so it runs with or without a GUI.

pub mod protocol;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::error::{Error, Result};
use crate::export;
use crate::library::index::IndexHooks;
use crate::library::{self, IndexOptions, Indexer, Progress};
use crate::model::{ClipEngine, Embedder, ModelSpec};
use crate::store::{Store, TagSource};
use crate::tagging::{self, EmbeddingMatrix, Label, Mode, TagPlan, search, vocabulary_file};
pub use protocol::*;

/// Wakes the UI when there is something new (in the app: `ctx.request_repaint()`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// Loads a model (replaceable in tests).
pub type ModelLoader =
    Box<dyn FnMut(&ModelSpec, &mut dyn FnMut(&str)) -> Result<Arc<dyn Embedder>> + Send>;

/// The default loader: a CLIP model from the hub or a folder.
pub fn clip_loader() -> ModelLoader {
    Box::new(|spec, say| {
        say("loading the model");
        let mut progress = |name: &str, done: u64, total: u64| {
            if total > 0 {
                say(&format!(
                    "downloading {name}: {:.0} of {:.0} MB",
                    done as f64 / 1e6,
                    total as f64 / 1e6
                ));
            }
        };
        Ok(Arc::new(ClipEngine::load(spec, &mut progress)?) as Arc<dyn Embedder>)
    })
}

/// The UI's handle on the worker.
pub struct WorkerHandle {
    commands: Sender<Command>,
    events: Receiver<Event>,
    pub shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerHandle {
    /// Sends a command (never blocks: commands come from a person's actions, a few a second).
    pub fn send(&self, command: Command) {
        // A worker that is gone has reported why through an event already.
        let _ = self.commands.send(command);
    }

    /// The next event, if any.
    pub fn try_event(&self) -> Option<Event> {
        self.events.try_recv().ok()
    }

    /// The latest library snapshot, if it changed since the last call.
    pub fn take_snapshot(&self) -> Option<Arc<LibrarySnapshot>> {
        self.shared.snapshot.lock().ok()?.take()
    }

    /// The latest progress report.
    pub fn progress(&self) -> Option<Progress> {
        self.shared.progress.lock().ok()?.clone()
    }

    /// Stops indexing within one batch.
    pub fn cancel(&self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
    }

    /// Holds or resumes indexing between batches.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::Relaxed);
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.shared.cancel.store(true, Ordering::Relaxed);
        self.shared.paused.store(false, Ordering::Relaxed);
        let _ = self.commands.send(Command::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the worker on the library at `db`. `model` overrides the library's model.
pub fn spawn(
    db: PathBuf,
    model: Option<String>,
    loader: ModelLoader,
    waker: Waker,
) -> WorkerHandle {
    let (command_tx, command_rx) = unbounded();
    // Unbounded, because the UI may not drain while minimised; every event is a person's request
    // answered or a run finished, so the queue stays small.
    let (event_tx, event_rx) = unbounded();
    let shared = Arc::new(Shared::default());
    let thread_shared = shared.clone();
    let thread = std::thread::Builder::new()
        .name("cliptag-worker".into())
        .spawn(move || {
            crate::model::kernels::flush_denormals_on_this_thread();
            let outbox = Outbox {
                events: event_tx,
                waker,
            };
            let mut store = match library::open_library(&db) {
                Ok(store) => store,
                Err(error) => {
                    outbox.send(Event::Error(format!("cannot open the library: {error}")));
                    return;
                }
            };
            let spec = match model {
                Some(m) => ModelSpec::parse(&m),
                None => library::library_model(&store)
                    .unwrap_or_else(|_| ModelSpec::parse(crate::model::hub::DEFAULT_MODEL)),
            };
            let mut state = State {
                shared: thread_shared,
                outbox,
                commands: command_rx,
                loader,
                spec,
                engine: None,
                matrix: None,
                plan: None,
                columns: HashMap::new(),
                deferred: Vec::new(),
                snapshot_version: 0,
                snapshot_due: false,
                last_snapshot: None,
                snapshot_cost: Duration::ZERO,
                shutdown: false,
            };
            state.publish_snapshot(&store);
            state.run(&mut store);
        })
        .expect("spawning the worker thread");
    WorkerHandle {
        commands: command_tx,
        events: event_rx,
        shared,
        thread: Some(thread),
    }
}

struct Outbox {
    events: Sender<Event>,
    waker: Waker,
}

impl Outbox {
    fn send(&self, event: Event) {
        let _ = self.events.send(event);
        (self.waker)();
    }
}

/// Everything the worker keeps besides the store (which the indexer borrows during a run).
struct State {
    shared: Arc<Shared>,
    outbox: Outbox,
    commands: Receiver<Command>,
    loader: ModelLoader,
    spec: ModelSpec,
    engine: Option<Arc<dyn Embedder>>,
    /// Every embedding of the library's model; `None` when stale.
    matrix: Option<EmbeddingMatrix>,
    /// The prepared vocabulary; `None` when stale.
    plan: Option<TagPlan>,
    /// Per label: the prompts its column was computed for, and every photo's score.
    columns: HashMap<i64, (Label, Vec<f32>)>,
    /// Commands that must wait for the running index to end.
    deferred: Vec<Command>,
    snapshot_version: u64,
    snapshot_due: bool,
    last_snapshot: Option<Instant>,
    /// How long the last snapshot took to build.
    snapshot_cost: Duration,
    shutdown: bool,
}

/// How often a snapshot is rebuilt while indexing.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(1500);

impl State {
    fn run(&mut self, store: &mut Store) {
        while !self.shutdown {
            let command = match self.deferred.pop() {
                Some(command) => command,
                None => match self.commands.recv() {
                    Ok(command) => command,
                    Err(_) => break,
                },
            };
            self.handle(store, command, false);
            if self.snapshot_due {
                self.publish_snapshot(store);
            }
        }
    }

    fn error(&self, what: &str, error: &Error) {
        self.outbox.send(Event::Error(format!("{what}: {error}")));
    }

    /// The model, loading it on first use.
    fn engine(&mut self) -> Result<Arc<dyn Embedder>> {
        if let Some(engine) = &self.engine {
            return Ok(engine.clone());
        }
        let outbox = &self.outbox;
        let mut say =
            |text: &str| outbox.send(Event::Model(ModelStatus::Loading(text.to_string())));
        match (self.loader)(&self.spec, &mut say) {
            Ok(engine) => {
                self.outbox.send(Event::Model(ModelStatus::Ready(
                    engine.model_id().to_string(),
                )));
                self.engine = Some(engine.clone());
                Ok(engine)
            }
            Err(error) => {
                let hint = match &self.spec {
                    ModelSpec::Hub { .. } => {
                        "check the network and retry, or choose a local model folder (config.json, \
                         model.safetensors, tokenizer.json)"
                    }
                    ModelSpec::Local(_) => {
                        "choose a folder with config.json, model.safetensors and tokenizer.json"
                    }
                };
                self.outbox.send(Event::Model(ModelStatus::Failed(format!(
                    "{error}. To fix: {hint}."
                ))));
                Err(error)
            }
        }
    }

    /// Embeds prompt texts, loading the model the first time any are needed.
    fn embed_texts(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        self.engine()?.embed_texts(texts)
    }

    fn model_id(&self) -> String {
        self.spec.id()
    }

    fn matrix(&mut self, store: &Store) -> Result<&EmbeddingMatrix> {
        if self.matrix.is_none() {
            self.matrix = Some(EmbeddingMatrix::from_rows(
                store.embeddings(&self.model_id())?,
            ));
        }
        Ok(self
            .matrix
            .as_ref()
            .expect("filled just above. This is a bug."))
    }

    /// The prepared vocabulary (text tower only for prompts not embedded before).
    fn plan(&mut self, store: &mut Store) -> Result<TagPlan> {
        if let Some(plan) = &self.plan {
            return Ok(plan.clone());
        }
        let model = self.model_id();
        let mut encode = |texts: &[String]| self.embed_texts(texts);
        let (plan, _) = TagPlan::prepare(store, &model, &mut encode)?;
        self.plan = Some(plan.clone());
        Ok(plan)
    }

    /// The vocabulary changed: forget what depended on it, re-tag, publish.
    fn vocabulary_changed(&mut self, store: &mut Store) {
        self.plan = None;
        self.retag(store);
    }

    fn retag(&mut self, store: &mut Store) {
        let result = (|| {
            let plan = self.plan(store)?;
            let matrix = self.matrix(store)?.clone();
            tagging::retag(store, &plan, &matrix, false)
        })();
        if let Err(error) = result {
            self.error("re-tagging failed", &error);
        }
        self.snapshot_due = true;
    }

    /// Handles one command; `indexing` says a run is in progress (the command came between two
    /// of its batches).
    fn handle(&mut self, store: &mut Store, command: Command, indexing: bool) {
        match command {
            Command::Index { .. } | Command::Update if indexing => self.deferred.insert(0, command),
            Command::Index { roots } => {
                // A photo dropped on the window stands for its folder.
                let roots: Vec<PathBuf> = roots
                    .into_iter()
                    .map(|r| match r.parent() {
                        Some(parent) if r.is_file() => parent.to_path_buf(),
                        _ => r,
                    })
                    .collect();
                self.index(store, &roots)
            }
            Command::Update => match store.roots() {
                Ok(roots) if roots.is_empty() => {
                    self.outbox
                        .send(Event::Error("no folders yet: open a folder first".into()));
                }
                Ok(roots) => self.index(store, &roots),
                Err(error) => self.error("cannot read the library's folders", &error),
            },
            Command::Retag => self.retag(store),
            Command::AddLabel(label) => match store.add_label(label) {
                Ok(label) => {
                    self.outbox
                        .send(Event::Done(format!("added {:?}", label.name)));
                    self.vocabulary_changed(store);
                }
                Err(error) => self.error("cannot add the label", &error),
            },
            Command::UpdateLabel(label) => match store.update_label(label) {
                Ok(_) => self.vocabulary_changed(store),
                Err(error) => self.error("cannot change the label", &error),
            },
            Command::RemoveLabel { label_id } => match store.remove_label(label_id) {
                Ok(()) => {
                    self.columns.remove(&label_id);
                    self.vocabulary_changed(store);
                }
                Err(error) => self.error("cannot remove the label", &error),
            },
            Command::ImportVocabulary(path) => {
                match vocabulary_file::import_file(store, &path, &self.model_id()) {
                    Ok(summary) => {
                        self.outbox.send(Event::Done(format!(
                            "imported {}: {} labels added, {} updated",
                            path.display(),
                            summary.added,
                            summary.updated
                        )));
                        self.vocabulary_changed(store);
                    }
                    Err(error) => self.error("cannot import the vocabulary", &error),
                }
            }
            Command::ExportVocabulary(path) => match vocabulary_file::export_file(store, &path) {
                Ok(n) => self.outbox.send(Event::Done(format!(
                    "wrote {n} labels to {}",
                    path.display()
                ))),
                Err(error) => self.error("cannot export the vocabulary", &error),
            },
            Command::PreviewLabel(label) => {
                // Only the newest of several queued previews matters (a slider being dragged).
                let mut label = label;
                let mut others = Vec::new();
                while let Ok(next) = self.commands.try_recv() {
                    match next {
                        Command::PreviewLabel(newer) if newer.id == label.id => label = newer,
                        other => others.push(other),
                    }
                }
                match self.preview(store, &label) {
                    Ok(preview) => self.outbox.send(Event::Preview(preview)),
                    Err(error) => self.error("cannot preview the label", &error),
                }
                for other in others {
                    self.handle(store, other, indexing);
                }
            }
            Command::SetDecision {
                image_id,
                label_id,
                decision,
            } => {
                let result = store
                    .set_decision(image_id, label_id, decision)
                    .and_then(|()| {
                        if decision.is_none() {
                            self.retag_one(store, image_id, label_id)
                        } else {
                            Ok(())
                        }
                    });
                match result {
                    Ok(()) => {
                        self.snapshot_due = true;
                        self.send_detail(store, image_id);
                    }
                    Err(error) => self.error("cannot record the decision", &error),
                }
            }
            Command::Search { text, limit } => {
                let result = (|| {
                    let model = self.model_id();
                    let mut encode = |texts: &[String]| self.embed_texts(texts);
                    let (_, vectors) = tagging::text_embeddings(
                        store,
                        &model,
                        std::slice::from_ref(&text),
                        &mut encode,
                    )?;
                    search::nearest(self.matrix(store)?, &vectors[0], limit)
                })();
                match result {
                    Ok(results) => self.outbox.send(Event::SearchResults {
                        query: text,
                        results,
                    }),
                    Err(error) => self.error("search failed", &error),
                }
            }
            Command::MoreLike { image_ids, limit } => {
                let result = self
                    .matrix(store)
                    .and_then(|m| search::more_like(m, &image_ids, limit));
                match result {
                    Ok(results) => self.outbox.send(Event::SearchResults {
                        query: "more like this".into(),
                        results,
                    }),
                    Err(error) => self.error("search failed", &error),
                }
            }
            Command::Detail { image_id } => self.send_detail(store, image_id),
            Command::Export(request) => self.export(store, &request),
            Command::LoadModel(model) => {
                if let Some(model) = model {
                    self.spec = ModelSpec::parse(&model);
                    self.matrix = None;
                    self.plan = None;
                    self.columns.clear();
                }
                self.engine = None;
                let _ = self.engine();
            }
            Command::Shutdown => {
                self.shutdown = true;
                self.shared.cancel.store(true, Ordering::Relaxed);
            }
        }
    }

    fn index(&mut self, store: &mut Store, roots: &[PathBuf]) {
        self.shared.cancel.store(false, Ordering::Relaxed);
        let engine = match self.engine() {
            Ok(engine) => engine,
            Err(error) => {
                self.error("cannot index without a model", &error);
                return;
            }
        };
        if let Err(error) = tagging::set_logit_scale(store, engine.logit_scale()) {
            self.error("cannot update the library", &error);
        }
        let plan = match self.plan(store) {
            Ok(plan) => Some(plan).filter(|p| !p.labels.is_empty()),
            Err(error) => {
                self.error("photos will be tagged after indexing", &error);
                None
            }
        };
        self.outbox.send(Event::IndexStarted);
        let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // The indexer watches its own flag; the hooks copy the UI's flag into it between batches
        // and while waiting, so that pausing and cancelling are both seen.
        let result = {
            let mut hooks = Hooks {
                state: self,
                cancel: cancel.clone(),
            };
            let mut indexer = Indexer {
                store,
                embedder: &*engine,
                options: IndexOptions::default(),
                cancel: cancel.clone(),
                plan,
            };
            let watcher = CancelWatcher::start(hooks.state.shared.clone(), cancel.clone());
            let result = indexer.run(roots, &mut hooks);
            watcher.stop();
            result
        };
        self.matrix = None;
        self.columns.clear();
        if let Ok(mut progress) = self.shared.progress.lock() {
            *progress = None;
        }
        match result {
            Ok(summary) => self.outbox.send(Event::IndexFinished(summary)),
            Err(error) => self.error("indexing stopped", &error),
        }
        self.shared.cancel.store(false, Ordering::Relaxed);
        self.snapshot_due = true;
    }

    /// Recomputes the automatic tag of one pair after a person cleared their decision.
    fn retag_one(&mut self, store: &mut Store, image_id: i64, label_id: i64) -> Result<()> {
        let plan = self.plan(store)?;
        tagging::retag_pair(store, &plan, &self.model_id(), image_id, label_id)
    }

    /// Every photo's score under `label` (cached per label while its prompts stay the same).
    fn column(&mut self, store: &mut Store, label: &Label) -> Result<Vec<f32>> {
        if let Some((cached, scores)) = self.columns.get(&label.id)
            && cached.prompts == label.prompts
            && cached.negative == label.negative
            && cached.mode == label.mode
            && label.mode != Mode::TopK
        {
            return Ok(scores.clone());
        }
        let model = self.model_id();
        let mut encode = |texts: &[String]| self.embed_texts(texts);
        let (single, _) = TagPlan::prepare_labels(store, &model, vec![label.clone()], &mut encode)?;
        let mut labels = single.labels;
        if label.mode == Mode::TopK {
            // Top-k probabilities depend on the whole enabled vocabulary.
            let mut vocabulary = self.plan(store)?.labels;
            vocabulary.retain(|l| l.label.id != label.id);
            let index = vocabulary.len();
            vocabulary.extend(labels);
            labels = vocabulary;
            let matrix = self.matrix(store)?;
            let scores = tagging::scoring::scores(matrix, &labels, single.logit_scale)?;
            let m = labels.len();
            return Ok((0..matrix.len()).map(|i| scores[i * m + index]).collect());
        }
        let matrix = self.matrix(store)?;
        let scores = tagging::scoring::scores(matrix, &labels, single.logit_scale)?;
        self.columns
            .insert(label.id, (label.clone(), scores.clone()));
        Ok(scores)
    }

    fn preview(&mut self, store: &mut Store, label: &Label) -> Result<Preview> {
        let scores = self.column(store, label)?;
        let ids = self.matrix(store)?.ids.clone();
        let passes = |s: f32| {
            s >= label.threshold && !(label.mode == Mode::Threshold && label.threshold >= 1.0)
        };
        let would: HashSet<i64> = ids
            .iter()
            .zip(&scores)
            .filter(|(_, s)| passes(**s))
            .map(|(id, _)| *id)
            .collect();
        let current: HashSet<i64> = store
            .auto_tags(Some(&[label.id]))?
            .into_keys()
            .map(|(image, _)| image)
            .collect();
        let decided: HashSet<i64> = store
            .decided_pairs()?
            .into_iter()
            .filter(|(_, l)| *l == label.id)
            .map(|(image, _)| image)
            .collect();
        let would_auto: HashSet<i64> = would.difference(&decided).copied().collect();
        Ok(Preview {
            label_id: label.id,
            threshold: label.threshold,
            mode: label.mode,
            count: would.len(),
            added: would_auto.difference(&current).count(),
            removed: current.difference(&would_auto).count(),
        })
    }

    fn send_detail(&mut self, store: &mut Store, image_id: i64) {
        let result = (|| {
            let vector = store.embedding(image_id, &self.model_id())?;
            let tags: HashMap<i64, TagSource> = store
                .tags_of(image_id)?
                .into_iter()
                .map(|t| (t.label_id, t.source))
                .collect();
            let plan = self.plan(store)?;
            let mut scores = Vec::new();
            if let Some(vector) = vector {
                let matrix = EmbeddingMatrix::from_rows(vec![(image_id, vector)]);
                let all = tagging::scoring::scores(&matrix, &plan.labels, plan.logit_scale)?;
                let assigned: HashSet<i64> = plan
                    .assign(&matrix)?
                    .into_iter()
                    .map(|a| a.label_id)
                    .collect();
                for (prepared, score) in plan.labels.iter().zip(all) {
                    scores.push(LabelScore {
                        label_id: prepared.label.id,
                        name: prepared.label.name.clone(),
                        score,
                        passes: assigned.contains(&prepared.label.id),
                        tag: tags.get(&prepared.label.id).copied(),
                    });
                }
            }
            // Tags of labels that are disabled still show.
            for (label_id, source) in &tags {
                if !scores.iter().any(|s| s.label_id == *label_id)
                    && let Some(label) = store.label(*label_id)?
                {
                    scores.push(LabelScore {
                        label_id: *label_id,
                        name: label.name,
                        score: f32::NAN,
                        passes: false,
                        tag: Some(*source),
                    });
                }
            }
            scores.sort_by(|a, b| b.score.total_cmp(&a.score));
            Ok::<_, Error>(ImageDetail { image_id, scores })
        })();
        match result {
            Ok(detail) => self.outbox.send(Event::Detail(detail)),
            Err(error) => self.error("cannot show the photo's scores", &error),
        }
    }

    fn export(&mut self, store: &Store, request: &ExportRequest) {
        if let Some((path, form, style)) = &request.csv {
            match export::csv::export(store, path, *form, *style) {
                Ok(rows) => self.outbox.send(Event::Done(format!(
                    "wrote {rows} rows to {}",
                    path.display()
                ))),
                Err(error) => self.error("CSV export failed", &error),
            }
        }
        if let Some(naming) = request.xmp {
            match export::xmp::export(store, naming) {
                Ok(report) if report.failed.is_empty() => self.outbox.send(Event::Done(format!(
                    "XMP sidecars: {} written, {} already up to date",
                    report.written, report.unchanged
                ))),
                Ok(report) => {
                    let (path, reason) = &report.failed[0];
                    self.outbox.send(Event::Error(format!(
                        "XMP sidecars: {} written, {} failed, e.g. {}: {reason}",
                        report.written,
                        report.failed.len(),
                        path.display()
                    )));
                }
                Err(error) => self.error("XMP export failed", &error),
            }
        }
    }

    /// Rebuilds the library snapshot for the UI.
    fn publish_snapshot(&mut self, store: &Store) {
        let started = Instant::now();
        let result = build_snapshot(store, self.snapshot_version + 1);
        self.snapshot_cost = started.elapsed();
        match result {
            Ok(snapshot) => {
                self.snapshot_version += 1;
                if let Ok(mut slot) = self.shared.snapshot.lock() {
                    *slot = Some(Arc::new(snapshot));
                }
                (self.outbox.waker)();
            }
            Err(error) => self.error("cannot read the library", &error),
        }
        self.snapshot_due = false;
        self.last_snapshot = Some(Instant::now());
    }
}

fn build_snapshot(store: &Store, version: u64) -> Result<LibrarySnapshot> {
    let mut tags: HashMap<i64, Vec<(i64, TagSource)>> = HashMap::new();
    let mut counts: HashMap<i64, usize> = HashMap::new();
    let mut stmt = store
        .conn()
        .prepare("SELECT image_id, label_id, source FROM tags")
        .map_err(|e| store.err(e))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(|e| store.err(e))?;
    for row in rows {
        let (image, label, source) = row.map_err(|e| store.err(e))?;
        let source = TagSource::parse(&source).unwrap_or(TagSource::Auto);
        if source.applies() {
            *counts.entry(label).or_default() += 1;
        }
        tags.entry(image).or_default().push((label, source));
    }
    let images = store
        .images()?
        .into_iter()
        .map(|row| ImageEntry {
            tags: tags.remove(&row.id).unwrap_or_default(),
            id: row.id,
            path: row.path,
            status: row.status,
            error: row.error,
        })
        .collect();
    let labels = store
        .labels()?
        .into_iter()
        .map(|label| LabelEntry {
            count: counts.get(&label.id).copied().unwrap_or(0),
            label,
        })
        .collect();
    Ok(LibrarySnapshot {
        version,
        images,
        labels,
        roots: store.roots()?,
        templates: tagging::templates(store)?,
    })
}

/// Copies the UI's cancel flag into the running indexer's, so cancel works even while a batch
/// waits for the decoder.
struct CancelWatcher {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl CancelWatcher {
    fn start(shared: Arc<Shared>, cancel: Arc<std::sync::atomic::AtomicBool>) -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::spawn(move || {
            while !thread_stop.load(Ordering::Relaxed) {
                if shared.cancel.load(Ordering::Relaxed) {
                    cancel.store(true, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        CancelWatcher { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

struct Hooks<'a> {
    state: &'a mut State,
    cancel: Arc<std::sync::atomic::AtomicBool>,
}

impl IndexHooks for Hooks<'_> {
    fn progress(&mut self, progress: &Progress) {
        if let Ok(mut slot) = self.state.shared.progress.lock() {
            *slot = Some(progress.clone());
        }
        (self.state.outbox.waker)();
    }

    fn between_batches(&mut self, store: &mut Store, plan: &mut Option<TagPlan>) -> Result<()> {
        // New embeddings landed: the cached matrix and score columns are stale.
        self.state.matrix = None;
        self.state.columns.clear();
        loop {
            while let Ok(command) = self.state.commands.try_recv() {
                let vocabulary_edit = matches!(
                    command,
                    Command::AddLabel(_)
                        | Command::UpdateLabel(_)
                        | Command::RemoveLabel { .. }
                        | Command::ImportVocabulary(_)
                        | Command::Retag
                );
                self.state.handle(store, command, true);
                if vocabulary_edit {
                    // The rest of this run tags with the edited vocabulary.
                    *plan = self.state.plan.clone().filter(|p| !p.labels.is_empty());
                }
            }
            if self.state.shutdown {
                self.cancel.store(true, Ordering::Relaxed);
            }
            // On a large library a snapshot takes a while to build: space them so that they
            // never take more than a tenth of the indexing time.
            let interval = SNAPSHOT_INTERVAL.max(10 * self.state.snapshot_cost);
            let due = self
                .state
                .last_snapshot
                .is_none_or(|t| t.elapsed() >= interval);
            if self.state.snapshot_due || due {
                self.state.publish_snapshot(store);
            }
            let paused = self.state.shared.paused.load(Ordering::Relaxed);
            if !paused
                || self.cancel.load(Ordering::Relaxed)
                || self.state.shared.cancel.load(Ordering::Relaxed)
            {
                break;
            }
            // Paused: keep answering commands while waiting.
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

/// A waker that does nothing (headless use).
pub fn no_waker() -> Waker {
    Arc::new(|| {})
}

/// Shares one loaded model between workers in tests.
pub fn shared_loader(engine: Arc<dyn Embedder>) -> ModelLoader {
    let engine = Mutex::new(engine);
    Box::new(move |_, _| {
        Ok(engine
            .lock()
            .map_err(|_| Error::invalid("poisoned"))?
            .clone())
    })
}
