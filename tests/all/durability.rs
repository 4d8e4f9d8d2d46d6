//! Decisions survive what ends a process, and the app's worker and a `cliptag` command writing
//! one library at the same time lose nothing of each other's.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use cliptag::domain::{Decision, TagSource};
use cliptag::store::Store;
use cliptag::worker::{Command, Done, Event};

use crate::indexing::{fixture_photos, photo_folder};
use crate::support::*;
use crate::worker::{answer, decision_library, decisions_stored, spawn};

const CHILD_DB: &str = "CLIPTAG_TEST_DECIDING_CHILD_DB";

/// The child process of `a_kill_after_the_acknowledgement_loses_no_decision`: a worker on the
/// library named in the environment, sent rejections ten at a time, printing each one the
/// worker acknowledges. It runs until it is killed.
#[test]
#[ignore = "run by a_kill_after_the_acknowledgement_loses_no_decision as its child process"]
fn deciding_child() {
    let Some(db) = std::env::var_os(CHILD_DB) else {
        return;
    };
    let db = PathBuf::from(db);
    let store = Store::open(&db).unwrap();
    let images: Vec<i64> = store.images().unwrap().iter().map(|i| i.id).collect();
    let labels: Vec<i64> = store.labels().unwrap().iter().map(|l| l.id).collect();
    drop(store);
    let worker = spawn(&db, Arc::new(tiny_engine()));
    let mut pairs = images
        .iter()
        .flat_map(|i| labels.iter().map(move |l| (*i, *l)));
    let mut out = std::io::stdout().lock();
    loop {
        for (image_id, label_id) in pairs.by_ref().take(10) {
            worker.send(Command::Decide {
                image_id,
                label_id,
                decision: Decision::Reject,
                continues: false,
            });
        }
        while let Some(event) = worker.try_event() {
            if let Event::Done {
                done: Done::Decided {
                    image_id, label_id, ..
                },
                ..
            } = event
            {
                use std::io::Write;
                writeln!(out, "acked {image_id} {label_id}").unwrap();
                out.flush().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A process killed with SIGKILL right after its worker acknowledged decisions loses none of
/// them, and leaves a database that passes SQLite's integrity check. Five kills, each after a
/// different number of acknowledgements.
#[cfg(unix)]
#[test]
fn a_kill_after_the_acknowledgement_loses_no_decision() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let (_photos, images, labels) = decision_library(&db, 20, 50);
    assert_eq!(images.len() * labels.len(), 1000);
    let mut acked_in_all = std::collections::BTreeSet::new();
    for (round, kill_after) in [1usize, 17, 60, 111, 150].into_iter().enumerate() {
        let mut child = Process::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "durability::deciding_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines {
            let line = line.unwrap();
            let Some(pair) = line.strip_prefix("acked ") else {
                continue;
            };
            let (image, label) = pair.split_once(' ').unwrap();
            acked.push((image.parse::<i64>().unwrap(), label.parse::<i64>().unwrap()));
            if acked.len() == kill_after {
                // SIGKILL: nothing in the child runs after it.
                child.kill().unwrap();
                break;
            }
        }
        child.wait().unwrap();
        assert_eq!(
            acked.len(),
            kill_after,
            "round {round}: the child ended early"
        );
        let store = Store::open(&db).unwrap();
        for (image_id, label_id) in &acked {
            assert_eq!(
                store.tag(*image_id, *label_id).unwrap().map(|t| t.0),
                Some(TagSource::Rejected),
                "round {round}: acknowledged rejection of {label_id} on {image_id} was lost"
            );
        }
        drop(store);
        acked_in_all.extend(acked);
        let conn = rusqlite::Connection::open(&db).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "round {round}");
    }
    // Every child starts from the first pair again, so later rounds re-decide earlier ones.
    assert!(decisions_stored(&db) >= acked_in_all.len());
}

/// The app's worker and a separate `cliptag` process on one library: the command imports labels
/// while the worker has its vocabulary prepared, the worker then indexes more photos (they get
/// the imported labels) and re-tags (removing none of the command's tags); both decide. At the
/// end `cliptag retag --dry-run` finds nothing to change and both decisions are there.
#[test]
fn the_app_s_worker_and_a_cliptag_command_on_one_library_lose_nothing() {
    let photos = fixture_photos();
    let first = photo_folder(&photos[..4]);
    let second = photo_folder(&photos[4..]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    index_with_tiny(&db, first.path());
    // The loader the app runs: the worker loads the model the library names, as the command does.
    let mut worker = cliptag::worker::spawn(
        db.clone(),
        None,
        Box::new(cliptag::library::ClipLoader),
        cliptag::worker::no_waker(),
    );
    let retag = worker.send(Command::Retag);
    assert!(matches!(answer(&worker, retag), Event::Done { .. }));

    let vocabulary = dir.path().join("more.toml");
    std::fs::write(
        &vocabulary,
        "[[label]]\nname = \"Everywhere\"\nthreshold = -1.0\n\n\
         [[label]]\nname = \"Anywhere\"\nthreshold = -1.0\n",
    )
    .unwrap();
    cliptag_ok(&[
        "vocab",
        "import",
        vocabulary.to_str().unwrap(),
        "--db",
        db_arg,
    ]);

    let index = worker.send(Command::Index {
        roots: vec![second.path().to_path_buf()],
    });
    let indexed = answer(&worker, index);
    assert!(matches!(indexed, Event::Done { .. }), "{indexed:?}");
    let store = Store::open(&db).unwrap();
    let everywhere = store
        .labels()
        .unwrap()
        .into_iter()
        .find(|l| l.name == "Everywhere")
        .unwrap();
    let images = store.images().unwrap();
    assert_eq!(images.len(), photos.len());
    for image in &images {
        assert!(
            store.tag(image.id, everywhere.id).unwrap().is_some(),
            "{} was not tagged with the command's label",
            image.path.display()
        );
    }

    // A decision from each side.
    let rejected = worker.send(Command::Decide {
        image_id: images[0].id,
        label_id: everywhere.id,
        decision: Decision::Reject,
        continues: false,
    });
    assert!(matches!(answer(&worker, rejected), Event::Done { .. }));
    let accepted: &Path = &images[1].path;
    cliptag_ok(&[
        "tag",
        "add",
        accepted.to_str().unwrap(),
        "Everywhere",
        "--db",
        db_arg,
    ]);
    let retag = worker.send(Command::Retag);
    match answer(&worker, retag) {
        Event::Done {
            done: Done::Retagged(report),
            ..
        } => assert_eq!(report.total_removed(), 0, "{report:?}"),
        other => panic!("{other:?}"),
    }
    assert!(worker.shutdown(Duration::from_secs(30)));

    let dry = cliptag_ok(&["retag", "--dry-run", "--db", db_arg]);
    let said = String::from_utf8_lossy(&dry.stderr);
    assert!(said.contains("would add 0, would remove 0,"), "{said}");
    assert_eq!(
        store.tag(images[0].id, everywhere.id).unwrap().map(|t| t.0),
        Some(TagSource::Rejected)
    );
    assert_eq!(
        store.tag(images[1].id, everywhere.id).unwrap().map(|t| t.0),
        Some(TagSource::Accepted)
    );
}
