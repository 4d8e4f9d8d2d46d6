//! The library database: migrations keep data, a newer database is refused untouched.

use cliptag::store::{LATEST_VERSION, MIGRATIONS, Store};
use rusqlite::Connection;

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
    let version: i64 = store
        .conn()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, LATEST_VERSION);
    const { assert!(LATEST_VERSION >= 2, "there is an upgrade to test") };
    assert_eq!(store.setting("model").unwrap().as_deref(), Some("tiny"));
    let images = store.images().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].hash.as_deref(), Some("abc"));
    assert_eq!(images[1].error.as_deref(), Some("damaged JPEG"));
    assert_eq!(store.embedding(1, "tiny").unwrap(), Some(vec![1.0, 0.0]));
    // The new tables work with the old rows.
    let label = store
        .add_label(cliptag::tagging::Label::new("Dog", "tiny"))
        .unwrap();
    store
        .set_decision(1, label.id, Some(cliptag::store::TagSource::Manual))
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
