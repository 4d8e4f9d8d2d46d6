//! The worker: every answer names its request, a failure says which operation failed and why,
//! pause holds the indexer (not only a flag), and closing never waits for a busy encoder.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cliptag::domain::{ImageStatus, Label};
use cliptag::library::{FixedLoader, GalleryQuery};
use cliptag::model::Embedder;
use cliptag::store::Store;
use cliptag::worker::{
    self, Command, Done, Event, GalleryAnswer, GalleryRequest, Operation, RequestId, WorkerHandle,
};

use crate::support::*;

fn slow(delay: Duration) -> Arc<Watched> {
    Arc::new(Watched {
        delay,
        ..Watched::new()
    })
}

pub(crate) fn spawn(db: &Path, engine: Arc<dyn Embedder>) -> WorkerHandle {
    worker::spawn(
        db.to_path_buf(),
        None,
        Box::new(FixedLoader::new(engine)),
        worker::no_waker(),
    )
}

/// Events until one answers `request` with more than a start (or the time runs out); the
/// events before it are dropped.
pub(crate) fn answer(worker: &WorkerHandle, request: RequestId) -> Event {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match worker.try_event() {
            Some(event @ (Event::Done { .. } | Event::Failed { .. })) => {
                let named = match &event {
                    Event::Done { request, .. } | Event::Failed { request, .. } => *request,
                    _ => unreachable!(),
                };
                if named == request {
                    return event;
                }
            }
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    panic!("no answer to {request:?}");
}

pub(crate) fn jpegs(count: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..count {
        let image = image::RgbImage::from_fn(80, 60, |x, y| {
            image::Rgb([(x * 3 + i * 7) as u8, (y * 5) as u8, (x ^ y ^ i) as u8])
        });
        image.save(dir.path().join(format!("{i:03}.jpg"))).unwrap();
    }
    dir
}

fn indexed(db: &Path) -> usize {
    Store::open(db)
        .unwrap()
        .images()
        .unwrap()
        .iter()
        .filter(|i| i.status == ImageStatus::Ok)
        .count()
}

#[test]
fn answers_name_their_request_and_failures_say_what_failed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let worker = spawn(&db, Arc::new(tiny_engine()));
    let added = worker.send(Command::AddLabel(Label::new("Sunsets", "tiny")));
    let duplicate = worker.send(Command::AddLabel(Label::new("animals/dog", "tiny")));
    assert_ne!(added, duplicate);
    match answer(&worker, added) {
        Event::Done {
            done: Done::LabelAdded { label, .. },
            ..
        } => assert_eq!(label.name, "Sunsets"),
        other => panic!("{other:?}"),
    }
    match answer(&worker, duplicate) {
        Event::Failed { failure, .. } => {
            assert_eq!(
                failure.operation,
                Operation::AddLabel {
                    name: "animals/dog".into()
                }
            );
            assert!(
                failure
                    .reason
                    .contains("already has a label \"Animals/Dog\""),
                "{failure}"
            );
            assert!(
                failure
                    .to_string()
                    .starts_with("adding the label \"animals/dog\" failed")
            );
        }
        other => panic!("{other:?}"),
    }
    // A failure about a file names the file.
    let missing = dir.path().join("no-such-vocabulary.toml");
    let import = worker.send(Command::ImportVocabulary(missing.clone()));
    match answer(&worker, import) {
        Event::Failed { failure, .. } => {
            assert_eq!(failure.path.as_deref(), Some(missing.as_path()));
            assert_eq!(
                failure.operation,
                Operation::ImportVocabulary { path: missing }
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pause_holds_the_indexer_and_resume_lets_it_finish() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = jpegs(48);
    // Slow enough that the two batches left after the first cannot both pass before the pause,
    // even with every core busy with other tests (at 40 ms a batch, they once did).
    let engine = slow(Duration::from_millis(150));
    let worker = spawn(&db, engine.clone());
    let request = worker.send(Command::Index {
        roots: vec![photos.path().to_path_buf()],
    });
    let started = Instant::now();
    while worker.progress().is_none_or(|p| p.done < 16) {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.control().pause();
    // The batch in the encoder when the person paused is finished and stored; then nothing.
    std::thread::sleep(Duration::from_millis(400));
    let (held, batches) = (indexed(&db), engine.batches());
    assert!(held < 48, "it finished before the pause");
    // The worker still answers while paused.
    let search = worker.send(Command::Search {
        text: "a photo".into(),
        limit: 5,
    });
    assert!(matches!(answer(&worker, search), Event::Done { .. }));
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(indexed(&db), held, "photos were stored while paused");
    assert_eq!(engine.batches(), batches, "the encoder ran while paused");

    worker.control().resume();
    match answer(&worker, request) {
        Event::Done {
            done: Done::Indexed(summary),
            ..
        } => assert_eq!(
            (summary.indexed, summary.cancelled),
            (48, false),
            "{summary:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(indexed(&db), 48);
}

#[test]
fn closing_does_not_wait_for_a_busy_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = jpegs(8);
    let engine = slow(Duration::from_secs(6));
    let mut worker = spawn(&db, engine.clone());
    worker.send(Command::Index {
        roots: vec![photos.path().to_path_buf()],
    });
    let started = Instant::now();
    while !engine.started.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the encoder never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let closing = Instant::now();
    let ended = worker.shutdown(Duration::from_secs(1));
    let took = closing.elapsed();
    assert!(
        !ended,
        "the worker cannot have ended inside a six-second batch"
    );
    assert!(
        took < Duration::from_secs(3),
        "closing waited {took:?} for the encoder"
    );
    // Nothing of the batch in flight was committed, and the database is sound.
    assert_eq!(indexed(&db), 0);
    assert_eq!(Store::open(&db).unwrap().integrity_check().unwrap(), "ok");
}

#[test]
fn the_snapshot_carries_counts_and_the_gallery_reader_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = crate::indexing::photo_folder(&[
        fixtures().join("images/coffee.jpg"),
        fixtures().join("images/rocket.jpg"),
        fixtures().join("odd-images/truncated_60pct.jpg"),
    ]);
    let worker = spawn(&db, Arc::new(tiny_engine()));
    let request = worker.send(Command::Index {
        roots: vec![photos.path().to_path_buf()],
    });
    assert!(matches!(answer(&worker, request), Event::Done { .. }));
    let deadline = Instant::now() + Duration::from_secs(30);
    let snapshot = loop {
        if let Some(snapshot) = worker.take_snapshot()
            && snapshot.photos == 3
        {
            break snapshot;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot of the indexed library"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(snapshot.indexed, 2);
    assert_eq!(snapshot.problems, 1);
    assert_eq!(snapshot.problem_files.len(), 1);
    assert!(
        snapshot.problem_files[0]
            .path
            .ends_with("truncated_60pct.jpg")
    );

    // The gallery reader answers on its own connection: the photos by path, then their rows.
    let reader_answer = || loop {
        if let Some(answer) = worker.try_gallery() {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "the gallery reader did not answer"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    worker.ask_gallery(GalleryRequest::View {
        query: GalleryQuery::default(),
        version: snapshot.version,
    });
    let GalleryAnswer::View(view) = reader_answer() else {
        panic!("the reader answered rows to a view");
    };
    assert_eq!(view.version, snapshot.version);
    assert_eq!(view.ids.len(), 3);
    let mut asked = view.ids.to_vec();
    asked.push(9999);
    worker.ask_gallery(GalleryRequest::Rows {
        ids: asked.clone(),
        version: snapshot.version,
    });
    let GalleryAnswer::Rows {
        asked: echoed,
        entries,
        ..
    } = reader_answer()
    else {
        panic!("the reader answered a view to rows");
    };
    assert_eq!(echoed, asked);
    let names: Vec<_> = entries
        .iter()
        .map(|e| e.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["coffee.jpg", "rocket.jpg", "truncated_60pct.jpg"]);
    assert_eq!(
        entries.iter().map(|e| e.id).collect::<Vec<_>>(),
        view.ids.to_vec(),
        "rows come in the order asked, and the unknown id is left out"
    );
}

#[test]
fn an_idle_worker_copies_its_commits_into_the_database_file() {
    // Commits go to the write-ahead log; the database file itself takes them at a checkpoint,
    // which no commit makes on its own (an edit returns without it) and the idle worker makes.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let worker = spawn(&db, Arc::new(tiny_engine()));
    let added = worker.send(Command::AddLabel(Label::new("Sunsets", "tiny")));
    assert!(matches!(answer(&worker, added), Event::Done { .. }));
    // Until then the database file holds at most its first page; the schema and the default
    // vocabulary take many more.
    let deadline = Instant::now() + Duration::from_secs(15);
    let size = || std::fs::metadata(&db).map_or(0, |m| m.len());
    while size() <= 16 * 1024 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        size() > 16 * 1024,
        "no checkpoint while the worker was idle: {}",
        size()
    );
    let labels =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
            .query_row(
                "SELECT COUNT(*) FROM labels WHERE name = 'Sunsets'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap();
    assert_eq!(labels, 1);
}

#[test]
fn a_retag_in_the_app_shows_progress_and_cancels_leaving_the_tags() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    // Large enough that a re-tag takes a good part of a second: 120,000 tags to write.
    drop(crate::retag::untagged_library(&db, 60_000));
    let worker = spawn(&db, Arc::new(tiny_engine()));
    let request = worker.send(Command::Retag);
    let deadline = Instant::now() + Duration::from_secs(60);
    let progress = loop {
        if let Some(progress) = worker.progress() {
            break progress;
        }
        assert!(Instant::now() < deadline, "the re-tag showed no progress");
        std::thread::sleep(Duration::from_micros(200));
    };
    assert!(matches!(
        progress.stage,
        cliptag::library::Stage::Scoring | cliptag::library::Stage::WritingTags
    ));
    worker.control().cancel();
    match answer(&worker, request) {
        Event::Done {
            done: Done::Retagged(report),
            ..
        } => assert!(report.cancelled, "{report:?}"),
        other => panic!("{other:?}"),
    }
    assert!(
        worker.progress().is_none(),
        "progress still shown after the re-tag"
    );
    assert_eq!(Store::open(&db).unwrap().auto_tags(None).unwrap().len(), 0);
    // The switch is ready again: the next re-tag runs to the end.
    let again = worker.send(Command::Retag);
    match answer(&worker, again) {
        Event::Done {
            done: Done::Retagged(report),
            ..
        } => assert_eq!((report.cancelled, report.total_added()), (false, 120_000)),
        other => panic!("{other:?}"),
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_worker_runs_below_the_ui_thread_s_priority() {
    // Alone, so that every worker thread it reads is its own (another test's worker, just
    // started, has not lowered its priority yet).
    if !alone_in_a_process("worker::the_worker_runs_below_the_ui_thread_s_priority") {
        return;
    }
    // Every task of this process named so, with its niceness (field 19 of its stat line, after
    // the name in parentheses).
    fn niceness_of(name: &str) -> Vec<i64> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap();
            let after_name = &stat[stat.rfind(')').unwrap() + 2..];
            // Fields from the third on: state is 3, nice is 19.
            let nice: i64 = after_name.split(' ').nth(19 - 3).unwrap().parse().unwrap();
            found.push(nice);
        }
        found
    }
    let ours = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let ours: i64 = ours[ours.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let worker = spawn(&dir.path().join("lib.sqlite"), Arc::new(tiny_engine()));
    // Once it has answered, it has set its priority.
    let added = worker.send(Command::AddLabel(Label::new("Sunsets", "tiny")));
    assert!(matches!(answer(&worker, added), Event::Done { .. }));
    // Every thread of this process named so is this worker's (it may run a helper thread of
    // the same name beside it): each runs below this thread.
    let workers = niceness_of("cliptag-worker");
    assert!(!workers.is_empty(), "no worker thread found");
    assert!(
        workers.iter().all(|n| *n > ours),
        "{workers:?} against {ours}"
    );
}

/// A library of `photos` indexed photos and `labels` strict labels (they tag nothing by
/// themselves), made beside the worker; returns the photo and label ids.
pub(crate) fn decision_library(
    db: &Path,
    photos: u32,
    labels: usize,
) -> (tempfile::TempDir, Vec<i64>, Vec<i64>) {
    let dir = jpegs(photos);
    let (mut library, _) = open_with(db, Arc::new(tiny_engine()));
    for label in library.labels().unwrap() {
        library.remove_label(label.id).unwrap();
    }
    library
        .index(
            &[dir.path().to_path_buf()],
            small_batches(),
            cliptag::library::RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    let label_ids = (0..labels)
        .map(|i| {
            library
                .add_label(Label {
                    threshold: 1.0,
                    ..Label::new(&format!("Label {i}"), "tiny")
                })
                .unwrap()
                .0
                .id
        })
        .collect();
    drop(library);
    let store = Store::open(db).unwrap();
    let image_ids = store.images().unwrap().iter().map(|i| i.id).collect();
    (dir, image_ids, label_ids)
}

pub(crate) fn decisions_stored(db: &Path) -> usize {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT COUNT(*) FROM tags WHERE source IN ('rejected', 'accepted', 'manual')",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap() as usize
}

/// 500 decisions sent as fast as a person's keys can send them are all answered and stored, and
/// a shutdown right after sending another 500 stores those too before the worker ends.
#[test]
fn every_decision_sent_is_stored_even_when_the_app_closes_right_after() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let (_photos, images, labels) = decision_library(&db, 20, 50);
    let pairs: Vec<(i64, i64)> = images
        .iter()
        .flat_map(|i| labels.iter().map(move |l| (*i, *l)))
        .collect();
    assert_eq!(pairs.len(), 1000);
    let mut worker = spawn(&db, Arc::new(tiny_engine()));
    let decide = |(image_id, label_id): (i64, i64)| Command::Decide {
        image_id,
        label_id,
        decision: cliptag::domain::Decision::Reject,
        continues: false,
    };
    let requests: Vec<RequestId> = pairs[..500]
        .iter()
        .map(|p| worker.send(decide(*p)))
        .collect();
    for request in requests {
        match answer(&worker, request) {
            Event::Done {
                done: Done::Decided { .. },
                ..
            } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(decisions_stored(&db), 500);
    for pair in &pairs[500..] {
        worker.send(decide(*pair));
    }
    assert!(
        worker.shutdown(Duration::from_secs(30)),
        "the worker did not end"
    );
    assert_eq!(decisions_stored(&db), 1000);
}

/// A panic inside the worker (here in the encoder, standing for any bug) fails the index it was
/// running, named with its folders, and the worker goes on: the next index finishes.
#[test]
fn a_panic_in_the_worker_fails_its_run_by_folder_and_the_worker_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = jpegs(6);
    let engine = Arc::new(Watched {
        panic_on: Some(1),
        ..Watched::new()
    });
    let worker = spawn(&db, engine);
    let roots = vec![photos.path().to_path_buf()];
    let request = worker.send(Command::Index {
        roots: roots.clone(),
    });
    match answer(&worker, request) {
        Event::Failed { failure, .. } => {
            assert_eq!(
                failure.operation,
                Operation::Index {
                    roots: roots.clone()
                }
            );
            assert!(
                failure.reason.contains("internal error") && failure.reason.contains("panicked"),
                "{failure}"
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    let request = worker.send(Command::Index { roots });
    match answer(&worker, request) {
        Event::Done {
            done: Done::Indexed(summary),
            ..
        } => assert_eq!(summary.indexed + summary.unchanged, 6, "{summary:?}"),
        other => panic!("expected the second run to finish, got {other:?}"),
    }
}
