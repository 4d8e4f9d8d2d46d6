//! The worker thread: a message loop around one [`Library`] (and so the model and the SQLite
//! connection, opened inside the thread). It runs one indexing batch at a time and answers
//! commands between batches, so a vocabulary edit, a decision or a cancel takes effect within
//! one batch. It wakes the UI through a callback, so it runs with or without a GUI.

mod decisions;
mod folders;
mod gallery;
mod handle;
mod outbox;
pub mod protocol;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError, unbounded};

use crate::error::Error;
use crate::library::{
    IndexOptions, IndexRun, Library, LibraryOptions, ModelLoader, Progress, RunControl, RunState,
};
use handle::Shared;
pub use handle::WorkerHandle;
use outbox::Outbox;
pub use protocol::*;

/// Wakes the UI when there is something new (in the app: `ctx.request_repaint()`).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// A waker that does nothing (headless use).
pub fn no_waker() -> Waker {
    Arc::new(|| {})
}

/// How often a snapshot is rebuilt while indexing.
const SNAPSHOT_INTERVAL: Duration = Duration::from_millis(1500);
/// How long a paused run waits for a command before looking at its switch again.
const PAUSED_POLL: Duration = Duration::from_millis(50);
/// How often an idle worker looks for writes by other programs.
const OUTSIDE_POLL: Duration = Duration::from_secs(1);
/// The most queued decisions stored in one transaction.
const MAX_DECISIONS_AT_ONCE: usize = 1000;
/// How many decided photos' details are sent back after a run of decisions (the panel shows one).
const MAX_DETAILS_AFTER_DECISIONS: usize = 4;
/// How long the worker waits with nothing asked of it before it checkpoints the database.
const IDLE_CHECKPOINT: Duration = Duration::from_secs(2);

/// Starts the worker on the library at `db`; `model` overrides the library's model.
pub fn spawn(
    db: PathBuf,
    model: Option<String>,
    loader: Box<dyn ModelLoader>,
    waker: Waker,
) -> WorkerHandle {
    // Unbounded: commands come from a person's actions, and every event answers one of them
    // (or reports the model's status), so neither queue outgrows what a person asked for.
    let (request_tx, request_rx) = unbounded();
    let (event_tx, event_rx) = unbounded();
    // The gallery's requests are one a frame at most and its answers one per request.
    let (gallery_tx, gallery_rx) = unbounded();
    let (answer_tx, answer_rx) = unbounded();
    let shared = Arc::new(Shared::default());
    let control = RunControl::default();
    let (thread_shared, thread_control) = (shared.clone(), control.clone());
    let thread = std::thread::Builder::new()
        .name("cliptag-worker".into())
        .spawn(move || {
            crate::model::kernels::flush_denormals_on_this_thread();
            yield_to_the_ui();
            let outbox = Outbox {
                events: event_tx,
                waker,
            };
            let mut library = match Library::open(&db, LibraryOptions { model, loader }) {
                Ok(library) => library,
                Err(error) => {
                    outbox.fail(RequestId(u64::MAX), Operation::Open { db }, &error);
                    return;
                }
            };
            gallery::spawn(db, gallery_rx, answer_tx, outbox.clone());
            let model_outbox = outbox.clone();
            library.on_model_status(Box::new(move |status| {
                model_outbox.send(Event::Model(status));
            }));
            let mut worker = Worker {
                library,
                outbox,
                requests: request_rx,
                control: thread_control,
                shared: thread_shared,
                run: None,
                queued: None,
                snapshot_version: 0,
                snapshot_due: true,
                last_snapshot: None,
                snapshot_cost: Duration::ZERO,
                next: std::collections::VecDeque::new(),
            };
            worker.run();
        })
        .expect("spawning the worker thread");
    WorkerHandle {
        requests: Some(request_tx),
        events: event_rx,
        gallery: Some(gallery_tx),
        gallery_answers: answer_rx,
        shared,
        control,
        next_request: AtomicU64::new(1),
        thread: Some(thread),
    }
}

/// Lowers this thread's scheduling priority (and so that of every thread it starts: the
/// indexer's decoders, the encoder's pool, the embeddings read-ahead), so that on a machine with
/// two cores the UI thread gets one whenever it has a frame to draw, however busy the worker is.
/// Where the system has no per-thread priority this does nothing.
fn yield_to_the_ui() {
    #[cfg(target_os = "linux")]
    {
        // On Linux a priority set for "this process" (0) is the calling thread's own.
        // SAFETY: setpriority only reads its arguments; failure leaves the priority as it was.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, BACKGROUND_NICE);
        }
    }
}

/// The worker's niceness: below the UI, above nothing else on the machine in particular.
#[cfg(target_os = "linux")]
const BACKGROUND_NICE: libc::c_int = 10;

/// The running index, the request that started it and the folders it was asked for.
struct ActiveRun {
    request: RequestId,
    run: IndexRun,
    roots: Vec<PathBuf>,
}

struct Worker {
    library: Library,
    outbox: Outbox,
    requests: Receiver<(RequestId, Command)>,
    control: RunControl,
    shared: Arc<Shared>,
    run: Option<ActiveRun>,
    /// Folders asked for while an index ran, indexed when it finishes (under the first such
    /// request).
    queued: Option<(RequestId, Vec<PathBuf>)>,
    snapshot_version: u64,
    snapshot_due: bool,
    last_snapshot: Option<Instant>,
    /// How long the last snapshot took to build.
    snapshot_cost: Duration,
    /// Commands taken from the queue ahead of their turn (while gathering decisions), handled
    /// before any newer one.
    next: std::collections::VecDeque<(RequestId, Command)>,
}

impl Worker {
    fn run(&mut self) {
        self.publish_snapshot();
        // Read while the person looks at the gallery; the first edit then finds them.
        let _ = self.library.preload_embeddings();
        loop {
            if let Some((request, command)) = self.next.pop_front() {
                let operation = command.operation();
                self.contained(request, operation, |worker| worker.handle(request, command));
                continue;
            }
            let next = match (&self.run, self.control.get()) {
                // Idle with commits waiting for a checkpoint: one is made once nothing has
                // been asked for a moment.
                (None, _) if self.library.checkpoint_due() => {
                    match self.requests.recv_timeout(IDLE_CHECKPOINT) {
                        Ok(request) => Ok(Some(request)),
                        Err(RecvTimeoutError::Timeout) => {
                            let _ = self.library.checkpoint();
                            Ok(None)
                        }
                        Err(RecvTimeoutError::Disconnected) => Err(()),
                    }
                }
                // Idle: every moment the library is looked at for another program's writes.
                (None, _) => match self.requests.recv_timeout(OUTSIDE_POLL) {
                    Ok(request) => Ok(Some(request)),
                    Err(RecvTimeoutError::Timeout) => {
                        if self.library.notice_outside_writes().unwrap_or(false) {
                            self.snapshot_due = true;
                            self.outbox.send(Event::ChangedOutside);
                        }
                        Ok(None)
                    }
                    Err(RecvTimeoutError::Disconnected) => Err(()),
                },
                (Some(_), RunState::Paused) => match self.requests.recv_timeout(PAUSED_POLL) {
                    Ok(request) => Ok(Some(request)),
                    Err(RecvTimeoutError::Timeout) => Ok(None),
                    Err(RecvTimeoutError::Disconnected) => Err(()),
                },
                (Some(_), _) => match self.requests.try_recv() {
                    Ok(request) => Ok(Some(request)),
                    Err(TryRecvError::Empty) => Ok(None),
                    Err(TryRecvError::Disconnected) => Err(()),
                },
            };
            match next {
                // The handle is gone: the app is closing. A running index is dropped as it
                // stands; its finished batches are committed.
                Err(()) => return,
                Ok(Some((request, command))) => {
                    let operation = command.operation();
                    self.contained(request, operation, |worker| worker.handle(request, command));
                }
                Ok(None) if self.control.is_paused() || self.run.is_none() => {}
                Ok(None) => {
                    let (request, roots) = self
                        .run
                        .as_ref()
                        .map(|a| (a.request, a.roots.clone()))
                        .expect("running. This is a bug.");
                    self.contained(request, Operation::Index { roots }, Worker::step);
                }
            }
            if self.snapshot_due && self.run.is_none() {
                self.publish_snapshot();
            }
        }
    }

    fn handle(&mut self, request: RequestId, command: Command) {
        if self
            .shared
            .closing
            .load(std::sync::atomic::Ordering::SeqCst)
            && !command.is_persons_edit()
        {
            return;
        }
        let operation = command.operation();
        let outbox = self.outbox.clone();
        let fail = |error: &Error| outbox.fail(request, operation.clone(), error);
        let library = &mut self.library;
        match command {
            Command::Index { roots } => self.index(request, roots),
            Command::Update => match library.roots() {
                Ok(roots) if roots.is_empty() => fail(&Error::invalid(
                    "the library has no folders yet: open a folder first",
                )),
                Ok(roots) => self.index(request, roots),
                Err(error) => fail(&error),
            },
            Command::Retag => {
                // The switch is the running index's when one runs (a cancel stops both).
                let idle = self.run.is_none();
                if idle {
                    self.control.reset();
                }
                let (shared, waker) = (self.shared.clone(), self.outbox.waker.clone());
                let result = library.retag_watched(false, &self.control, &mut |progress| {
                    shared.progress.set(Some(progress));
                    waker();
                });
                if idle {
                    self.shared.progress.set(None);
                    self.control.reset();
                }
                match result {
                    Ok(report) => {
                        self.snapshot_due = true;
                        outbox.done(request, Done::Retagged(report));
                    }
                    Err(error) => fail(&error),
                }
            }
            Command::AddLabel(label) => match library.add_label(label) {
                Ok((label, retag)) => {
                    self.snapshot_due = true;
                    outbox.done(request, Done::LabelAdded { label, retag });
                }
                Err(error) => fail(&error),
            },
            Command::UpdateLabel(label) => match library.update_label(label) {
                Ok((label, retag)) => {
                    self.snapshot_due = true;
                    outbox.done(request, Done::LabelUpdated { label, retag });
                }
                Err(error) => fail(&error),
            },
            Command::RemoveLabel { label_id } => match library.remove_label(label_id) {
                Ok((name, decisions, retag)) => {
                    self.snapshot_due = true;
                    outbox.done(
                        request,
                        Done::LabelRemoved {
                            name,
                            decisions,
                            retag,
                        },
                    );
                }
                Err(error) => fail(&error),
            },
            Command::EditGroup { group, edit } => match library.edit_group(&group, &edit) {
                Ok((labels, retag)) => {
                    self.snapshot_due = true;
                    outbox.done(
                        request,
                        Done::GroupEdited {
                            group,
                            edit,
                            labels,
                            retag,
                        },
                    );
                }
                Err(error) => fail(&error),
            },
            Command::SetTemplates(templates) => match library.set_templates(&templates) {
                Ok((templates, retag)) => {
                    self.snapshot_due = true;
                    outbox.done(request, Done::TemplatesSet { templates, retag });
                }
                Err(error) => fail(&error),
            },
            Command::ImportVocabulary(path) => {
                // As a re-tag: the switch is the running index's when one runs.
                let idle = self.run.is_none();
                if idle {
                    self.control.reset();
                }
                let (shared, waker) = (self.shared.clone(), self.outbox.waker.clone());
                let result =
                    library.import_vocabulary_watched(&path, &self.control, &mut |progress| {
                        shared.progress.set(Some(progress));
                        waker();
                    });
                if idle {
                    self.shared.progress.set(None);
                    self.control.reset();
                }
                match result {
                    Ok((summary, retag)) => {
                        self.snapshot_due = true;
                        let done = Done::VocabularyImported {
                            path,
                            summary,
                            retag,
                        };
                        outbox.done(request, done);
                    }
                    Err(error) => fail(&error),
                }
            }
            Command::ExportVocabulary(path) => match library.export_vocabulary(&path) {
                Ok(labels) => outbox.done(request, Done::VocabularyExported { path, labels }),
                Err(error) => fail(&error),
            },
            Command::PreviewLabel(label) => {
                // Only the newest of several queued previews of one label matters (a slider
                // being dragged); the others are answered by it.
                let (label, others) = self.newest_preview(label);
                match self.library.preview(&label) {
                    Ok(preview) => outbox.done(request, Done::Preview(Box::new(preview))),
                    Err(error) => fail(&error),
                }
                for (request, command) in others {
                    self.handle(request, command);
                }
            }
            Command::Learn { label } => match library.learn(&label, false) {
                Ok(report) => {
                    self.snapshot_due = true;
                    outbox.done(request, Done::Learned(Box::new(report)));
                }
                Err(error) => fail(&error),
            },
            Command::ResetLearning { label } => match library.reset_learning(&label) {
                Ok((label, retag)) => {
                    self.snapshot_due = true;
                    outbox.done(request, Done::LearningReset { label, retag });
                }
                Err(error) => fail(&error),
            },
            Command::AddLabelFromExamples { label, image_ids } => {
                match library.add_label_from_examples(label, &image_ids) {
                    Ok((label, retag)) => {
                        self.snapshot_due = true;
                        outbox.done(request, Done::LabelAdded { label, retag });
                    }
                    Err(error) => fail(&error),
                }
            }
            Command::Decide {
                image_id,
                label_id,
                decision,
                continues,
            } => self.decide(request, (image_id, label_id, decision), continues),
            Command::History(direction) => self.undo_or_redo(request, direction),
            Command::Search { text, limit } => match library.search(&text, limit) {
                Ok(matches) => outbox.done(
                    request,
                    Done::Found {
                        query: text,
                        matches,
                    },
                ),
                Err(error) => fail(&error),
            },
            Command::MoreLike { image_ids, limit } => match library.similar(&image_ids, limit) {
                Ok(matches) => {
                    let query = "more like this".to_string();
                    outbox.done(request, Done::Found { query, matches });
                }
                Err(error) => fail(&error),
            },
            Command::Detail { image_id } => match library.detail(image_id) {
                Ok(detail) => outbox.done(request, Done::Detail(detail)),
                Err(error) => fail(&error),
            },
            Command::Export(export) => match library.export(&export) {
                Ok(report) => outbox.done(request, Done::Exported(report)),
                Err(error) => fail(&error),
            },
            Command::Prune { dry_run } => self.prune(request, dry_run),
            Command::RemoveFolder(path) => self.remove_folder(request, &path),
            Command::LoadModel(model) => {
                library.switch_model(model.as_deref());
                match library.load_model() {
                    Ok(()) => outbox.done(request, Done::ModelLoaded),
                    Err(error) => fail(&error),
                }
                self.snapshot_due = true;
            }
            Command::SetPrecision { exact } => {
                match library.set_exact_precision(exact) {
                    Ok(()) => outbox.done(request, Done::PrecisionSet),
                    Err(error) => fail(&error),
                }
                self.snapshot_due = true;
            }
        }
    }

    /// The newest queued preview of `label`'s label, and the other commands that were queued.
    fn newest_preview(
        &mut self,
        mut label: crate::domain::Label,
    ) -> (crate::domain::Label, Vec<(RequestId, Command)>) {
        let mut others = Vec::new();
        while let Ok((request, command)) = self.requests.try_recv() {
            match command {
                Command::PreviewLabel(newer) if newer.id == label.id => label = newer,
                other => others.push((request, other)),
            }
        }
        (label, others)
    }

    /// Starts indexing `roots`, or keeps them for when the running index finishes.
    fn index(&mut self, request: RequestId, roots: Vec<PathBuf>) {
        if self.run.is_some() {
            let queued = self.queued.get_or_insert_with(|| (request, Vec::new()));
            queued.1.extend(roots.iter().cloned());
            self.outbox.done(request, Done::Queued { roots });
            return;
        }
        // A photo dropped on the window stands for its folder.
        let roots: Vec<PathBuf> = roots
            .into_iter()
            .map(|r| match r.parent() {
                Some(parent) if r.is_file() => parent.to_path_buf(),
                _ => r,
            })
            .collect();
        self.control.reset();
        let operation = Operation::Index {
            roots: roots.clone(),
        };
        self.outbox.send(Event::Started {
            request,
            operation: operation.clone(),
        });
        let shared = self.shared.clone();
        let waker = self.outbox.waker.clone();
        let mut report = move |p: &Progress| {
            shared.progress.set(Some(p.clone()));
            waker();
        };
        let started = self.library.start_index(
            &roots,
            IndexOptions::default(),
            self.control.clone(),
            &mut report,
        );
        match started {
            Ok(run) => {
                self.run = Some(ActiveRun {
                    request,
                    run,
                    roots,
                })
            }
            Err(error) => {
                self.shared.progress.set(None);
                self.outbox.fail(request, operation, &error);
            }
        }
        self.snapshot_due = true;
    }

    /// Runs one batch of the running index; finishes it when it is done.
    fn step(&mut self) {
        let Some(active) = self.run.as_mut() else {
            return;
        };
        let shared = self.shared.clone();
        let waker = self.outbox.waker.clone();
        let mut report = move |p: &Progress| {
            shared.progress.set(Some(p.clone()));
            waker();
        };
        let result = self.library.index_step(&mut active.run, &mut report);
        match result {
            Ok(true) => {
                // On a large library a snapshot takes a while to build: space them so that they
                // never take more than a tenth of the indexing time.
                let interval = SNAPSHOT_INTERVAL.max(10 * self.snapshot_cost);
                if self.last_snapshot.is_none_or(|t| t.elapsed() >= interval) {
                    self.publish_snapshot();
                }
            }
            Ok(false) => {
                let active = self.run.take().expect("running. This is a bug.");
                let summary = self.library.finish_index(active.run, &mut report);
                self.end_run(active.request, active.roots, Ok(summary));
            }
            Err(error) => {
                let active = self.run.take().expect("running. This is a bug.");
                let _ = self.library.finish_index(active.run, &mut report);
                self.end_run(active.request, active.roots, Err(error));
            }
        }
    }

    fn end_run(
        &mut self,
        request: RequestId,
        roots: Vec<PathBuf>,
        result: crate::Result<crate::library::IndexSummary>,
    ) {
        self.shared.progress.set(None);
        match result {
            Ok(summary) => self.outbox.done(request, Done::Indexed(summary)),
            Err(error) => {
                let operation = Operation::Index { roots };
                self.outbox.fail(request, operation, &error);
            }
        }
        self.snapshot_due = true;
        if let Some((request, roots)) = self.queued.take() {
            self.index(request, roots);
        }
    }

    /// Rebuilds the library snapshot for the UI.
    fn publish_snapshot(&mut self) {
        let started = Instant::now();
        let result = self.library.snapshot(self.snapshot_version + 1);
        self.snapshot_cost = started.elapsed();
        match result {
            Ok(snapshot) => {
                self.snapshot_version += 1;
                self.shared.snapshot.set(Some(Arc::new(snapshot)));
                (self.outbox.waker)();
            }
            Err(error) => {
                let operation = Operation::Open {
                    db: self.library.path().to_path_buf(),
                };
                self.outbox.fail(RequestId(0), operation, &error);
            }
        }
        self.snapshot_due = false;
        self.last_snapshot = Some(Instant::now());
    }
}
