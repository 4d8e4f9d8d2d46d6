//! The library database: every migration applies and keeps data, a newer database is refused
//! untouched, two writers at once lose nothing, and damaged rows are reported by name.

use cliptag::domain::{Label, TagSource};
use cliptag::store::{LATEST_VERSION, MIGRATIONS, NewImage, Store};
use rusqlite::Connection;

use crate::support::*;

#[test]
fn a_first_version_database_upgrades_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO settings VALUES ('model', 'tiny');
             INSERT INTO roots VALUES ('/photos', 1);
             INSERT INTO images (id, path, size, mtime_ns, hash, width, height, status, error, first_seen, last_indexed)
               VALUES (1, '/photos/a.jpg', 10, 5, 'abc', 640, 480, 'ok', NULL, 1, 2),
                      (2, '/photos/b.jpg', 11, 6, NULL, NULL, NULL, 'error', 'damaged JPEG', 1, 2);
             INSERT INTO embeddings VALUES (1, 'tiny', 2, x'0000803F00000000');",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    const { assert!(LATEST_VERSION >= 2, "there is an upgrade to test") };
    assert_eq!(store.setting("model").unwrap().as_deref(), Some("tiny"));
    let images = store.images().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].hash.as_deref(), Some("abc"));
    assert_eq!(images[1].error.as_deref(), Some("damaged JPEG"));
    assert_eq!(store.embedding(1, "tiny").unwrap(), Some(vec![1.0, 0.0]));
    // The new tables work with the old rows.
    let label = store.insert_label(&Label::new("Dog", "tiny")).unwrap();
    store
        .set_decision(1, label, Some(TagSource::Manual))
        .unwrap();
    assert_eq!(store.tags().unwrap().len(), 1);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn a_database_from_a_newer_cliptag_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); INSERT INTO future VALUES (1);")
            .unwrap();
        conn.pragma_update(None, "user_version", LATEST_VERSION + 7)
            .unwrap();
        conn.pragma_update(None, "application_id", cliptag::store::APPLICATION_ID)
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let error = Store::open(&path).err().expect("refused").to_string();
    assert!(
        error.contains("newer cliptag") && error.contains("new.sqlite"),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
    let output = crate::support::cliptag(&["files", "--db", path.to_str().unwrap()]);
    crate::support::assert_clean_failure(&output, &["newer cliptag"]);
    assert_eq!(std::fs::read(&path).unwrap(), before, "the file changed");
}

#[test]
fn every_migration_file_is_applied_in_order() {
    let mut files: Vec<String> =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .map(|n| n.trim_end_matches(".sql").to_string())
            .collect();
    files.sort();
    let registered: Vec<String> = MIGRATIONS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(
        registered, files,
        "every file in migrations/ is registered, in order"
    );
    for (i, name) in files.iter().enumerate() {
        assert!(
            name.starts_with(&format!("{:04}_", i + 1)),
            "{name} is out of sequence"
        );
    }
    // A new library ends at the last version, with what the later migrations made.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("new.sqlite")).unwrap();
    assert_eq!(store.schema_version().unwrap(), files.len() as i64);
    drop(store);
    let conn = Connection::open(dir.path().join("new.sqlite")).unwrap();
    let columns = |table: &str| -> Vec<(String, String)> {
        conn.prepare(&format!("PRAGMA table_info({table})"))
            .unwrap()
            .query_map([], |r| Ok((r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // 0003: embeddings in a rowid table.
    assert!(columns("embeddings").iter().any(|(name, _)| name == "id"));
    // 0004: paths as bytes.
    assert!(columns("images").contains(&("path".into(), "BLOB".into())));
    assert!(columns("roots").contains(&("path".into(), "BLOB".into())));
}

#[test]
fn a_version_two_library_upgrades_with_its_tags_and_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        for (_, sql) in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO roots VALUES ('/photos', 1);
             INSERT INTO images (id, path, size, mtime_ns, hash, status, first_seen)
               VALUES (1, '/photos/a.jpg', 10, 5, 'abc', 'ok', 1);
             INSERT INTO embeddings VALUES (1, 'tiny', 2, x'0000803F00000000');
             INSERT INTO labels (id, name, threshold, created_at, updated_at) VALUES (3, 'Dog', 0.2, 1, 1);
             INSERT INTO tags VALUES (1, 3, NULL, 'accepted');",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), LATEST_VERSION);
    // Rebuilding the tables kept every row that points at them.
    assert_eq!(store.embedding(1, "tiny").unwrap(), Some(vec![1.0, 0.0]));
    assert_eq!(
        store.tag(1, 3).unwrap().map(|t| t.0),
        Some(TagSource::Accepted)
    );
    assert_eq!(
        store
            .image_by_path(std::path::Path::new("/photos/a.jpg"))
            .unwrap()
            .unwrap()
            .id,
        1
    );
    assert_eq!(
        store.roots().unwrap(),
        vec![std::path::PathBuf::from("/photos")]
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn two_writers_on_one_library_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    Store::open(&path).unwrap();
    const EACH: usize = 150;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                for i in 0..EACH {
                    // Each batch reads (the copy's source) before it writes, as indexing does.
                    let name = std::path::PathBuf::from(format!("/photos/w{w}/{i}.jpg"));
                    store
                        .batch(|batch| {
                            let image = NewImage {
                                path: &name,
                                size: 1,
                                mtime_ns: 1,
                            };
                            let id = batch.insert_embedded(&image, "h", "m", &[1.0, 0.0])?;
                            let copy = name.with_extension("copy.jpg");
                            let copy_id = batch.insert_pending(&NewImage {
                                path: &copy,
                                size: 1,
                                mtime_ns: 1,
                            })?;
                            batch.record_copy(copy_id, "h", id, "m")?;
                            Ok(())
                        })
                        .unwrap_or_else(|e| panic!("writer {w}, batch {i}: {e}"));
                    // An import reads the vocabulary, then writes to it, in one transaction.
                    let label = Label::new(&format!("writer {w} label {i}"), "m");
                    store
                        .import_vocabulary(None, &[label])
                        .unwrap_or_else(|e| panic!("writer {w}, import {i}: {e}"));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.images().unwrap().len(), 2 * 2 * EACH);
    assert_eq!(store.embeddings("m").unwrap().len(), 2 * 2 * EACH);
    assert_eq!(store.labels().unwrap().len(), 2 * EACH);
}

#[test]
fn a_write_that_reads_first_waits_for_another_writer_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    let mut store = Store::open(&path).unwrap();
    // Another writer (the app, while a `cliptag` command runs) holds the write lock for a while.
    let (began_tx, began) = std::sync::mpsc::channel();
    let other = {
        let path = path.clone();
        std::thread::spawn(move || {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("BEGIN IMMEDIATE; INSERT INTO settings VALUES ('other', 'writer');")
                .unwrap();
            began_tx.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(400));
            conn.execute_batch("COMMIT").unwrap();
        })
    };
    began.recv().unwrap();
    // An import reads the vocabulary, then writes it, in one transaction: begun as a reader it
    // would read a snapshot the other writer is about to make stale, and fail at its first write.
    store
        .import_vocabulary(None, &[Label::new("Dog", "m")])
        .expect("the import waits its turn");
    other.join().unwrap();
    assert_eq!(store.labels().unwrap().len(), 1);
    assert_eq!(store.setting("other").unwrap().as_deref(), Some("writer"));
}

#[test]
fn damaged_rows_are_reported_by_name_and_never_written_back() {
    let mut library = TestLibrary::tiny();
    library.clear_vocabulary();
    let photos = crate::indexing::photo_folder(&crate::indexing::fixture_photos()[..2]);
    library.index(photos.path());
    let (dog, _) = library
        .library
        .add_label(Label::new("Dog", "tiny"))
        .unwrap();
    drop(library.library);
    let db = library.dir.path().join("lib.sqlite");
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute(
            "UPDATE labels SET prompts = 'a dog, a puppy' WHERE id = ?1",
            [dog.id],
        )
        .unwrap();
    }
    let (mut reopened, _) = open_with(&db, std::sync::Arc::new(tiny_engine()));
    let error = reopened.labels().unwrap_err().to_string();
    assert!(
        error.contains(&format!("label {} (\"Dog\")", dog.id)) && error.contains("not a JSON list"),
        "{error}"
    );
    // Nothing rewrote the damaged text, and the label can still be removed by name.
    let stored: String = Connection::open(&db)
        .unwrap()
        .query_row("SELECT prompts FROM labels WHERE id = ?1", [dog.id], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(stored, "a dog, a puppy");
    reopened.remove_label_named("dog").unwrap();
    assert!(reopened.labels().unwrap().is_empty());

    // An embedding cut short is named, with its photo, instead of being left out in silence.
    let (image_id, path): (i64, Vec<u8>) = {
        let conn = Connection::open(&db).unwrap();
        let row = conn
            .query_row("SELECT id, path FROM images ORDER BY id LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        conn.execute(
            "UPDATE embeddings SET vector = substr(vector, 1, 40) WHERE image_id = ?1",
            [row.0],
        )
        .unwrap();
        row
    };
    drop(reopened);
    let (mut reopened, _) = open_with(&db, std::sync::Arc::new(tiny_engine()));
    let error = reopened
        .search("a photo of a cat", 3)
        .unwrap_err()
        .to_string();
    let path = String::from_utf8(path).unwrap();
    assert!(
        error.contains(&format!("image {image_id} ({path})")) && error.contains("damaged"),
        "{error}"
    );
    // Indexing the folder again embeds the photo anew, and search works.
    let summary = reopened
        .index(
            &[photos.path().to_path_buf()],
            small_batches(),
            Default::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(summary.indexed, 1, "{summary:?}");
    assert_eq!(reopened.search("a photo of a cat", 3).unwrap().len(), 2);
}

#[test]
fn commits_wait_for_a_checkpoint_instead_of_making_one() {
    // Over SQLite's 1000-page automatic checkpoint in one commit: the database file stays as
    // it was until the library checkpoints.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let mut store = Store::open(&db).unwrap();
    store.checkpoint().unwrap();
    let before = std::fs::metadata(&db).unwrap().len();
    insert_photos(&mut store, 3000, 512);
    assert!(store.checkpoint_due());
    assert_eq!(std::fs::metadata(&db).unwrap().len(), before);
    store.checkpoint().unwrap();
    assert!(!store.checkpoint_due());
    assert!(std::fs::metadata(&db).unwrap().len() > before + 3000 * 2048);
}

#[test]
fn a_bulk_tag_write_leaves_the_schema_and_every_tag_as_they_would_be() {
    // Over the bulk size the by-label index is dropped and built again in the transaction:
    // afterwards the schema is the migrations' and the tags are all there, found by label.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let mut store = Store::open(&db).unwrap();
    let schema = |db: &std::path::Path| -> Vec<(String, Option<String>)> {
        Connection::open(db)
            .unwrap()
            .prepare("SELECT name, sql FROM sqlite_master ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = schema(&db);
    let photos = cliptag::store::BULK_TAGS / 2 + 1;
    insert_photos(&mut store, photos, 4);
    store
        .import_vocabulary(None, &[Label::new("a", "m"), Label::new("b", "m")])
        .unwrap();
    let labels: Vec<i64> = store.labels().unwrap().iter().map(|l| l.id).collect();
    let ids: Vec<i64> = store.images().unwrap().iter().map(|i| i.id).collect();
    let upsert: Vec<(i64, i64, f32)> = ids
        .iter()
        .flat_map(|i| labels.iter().map(move |l| (*i, *l, 0.3)))
        .collect();
    assert!(upsert.len() >= cliptag::store::BULK_TAGS);
    let basis = cliptag::store::Basis::Part(store.vocabulary_generation().unwrap().0);
    store.apply_tag_change(&[], &upsert, basis).unwrap();
    assert_eq!(schema(&db), before);
    for label in &labels {
        assert_eq!(store.tags_for_label(*label).unwrap().len(), photos);
    }
    assert_eq!(store.auto_tags(None).unwrap().len(), upsert.len());
}

/// A library on read-only media (a read-only tmpfs where the test may mount one; else a
/// write-protected folder, which root could still write and so is skipped) answers every read
/// command, search included, and refuses a write with one sentence saying why.
#[test]
fn a_read_only_library_answers_reads_and_refuses_writes_in_one_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let photos = crate::indexing::photo_folder(&crate::indexing::fixture_photos()[..3]);
    let source = dir.path().join("lib.sqlite");
    index_with_tiny(&source, photos.path());
    let media = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64m", "tmpfs"])
        .arg(media.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let folder = media.path().join("library");
    std::fs::create_dir(&folder).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, folder.join(path.file_name().unwrap())).unwrap();
        }
    }
    let db = folder.join("lib.sqlite");
    if mounted {
        let remounted = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(media.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(remounted, "remounting read-only");
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::write(folder.join("probe"), b"x").is_ok() {
            eprintln!("neither a read-only mount nor a write-protected folder here: skipped");
            return;
        }
    }
    let run = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--db", db.to_str().unwrap()]);
        cliptag(&full)
    };
    let reads: [&[&str]; 5] = [
        &["files"],
        &["tags"],
        &["vocab", "list"],
        &["search", "a photo of a cat"],
        &["duplicates"],
    ];
    let mut failures = Vec::new();
    for args in reads {
        let output = run(args);
        if !output.status.success() {
            failures.push(format!(
                "{args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    let write = run(&["vocab", "add", "Newly added"]);
    if mounted {
        let _ = std::process::Command::new("umount")
            .arg(media.path())
            .status();
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_clean_failure(
        &write,
        &["can be read but not changed", "cannot be written"],
    );
}
