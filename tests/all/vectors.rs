//! The embeddings file beside the database: read when it is current and sound, rebuilt from the
//! database when it is missing, damaged or stale, and kept current by indexing.

use cliptag::library::{EmbeddingsSource, Library, Match};

use crate::indexing::{fixture_photos, photo_folder};
use crate::support::*;

fn search(library: &mut Library) -> Vec<(i64, f32)> {
    let found: Vec<Match> = library.search("a photo of a cat", 50).unwrap();
    found.into_iter().map(|m| (m.image_id, m.score)).collect()
}

fn reopen(db: &std::path::Path) -> Library {
    open_with(db, std::sync::Arc::new(tiny_engine())).0
}

#[test]
fn the_embeddings_file_is_read_when_current_and_rebuilt_when_not() {
    let mut lib = TestLibrary::tiny();
    let photos = photo_folder(&fixture_photos());
    lib.index(photos.path());
    let db = lib.db();
    let file = lib.dir.path().join("lib.sqlite.embeddings");
    let want = search(&mut lib.library);
    assert!(want.len() >= 5, "the fixture photos are found: {want:?}");
    assert_eq!(
        lib.library.embeddings_source(),
        Some(EmbeddingsSource::DatabaseToFile)
    );
    assert!(file.exists());
    drop(lib.library);

    // Reopened: the file is read, and searches find what they found.
    assert_reopened(&db, &want, EmbeddingsSource::File);

    // One bit of one stored vector flipped: its checksum fails, the file is rebuilt.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x10;
    std::fs::write(&file, &bytes).unwrap();
    assert_reopened(&db, &want, EmbeddingsSource::DatabaseToFile);
    assert_reopened(&db, &want, EmbeddingsSource::File);

    // Cut short, or gone: rebuilt too.
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    assert_reopened(&db, &want, EmbeddingsSource::DatabaseToFile);
    std::fs::remove_file(&file).unwrap();
    assert_reopened(&db, &want, EmbeddingsSource::DatabaseToFile);
}

/// The library at `db`, opened again, finds `want` with its embeddings read from `source`.
fn assert_reopened(db: &std::path::Path, want: &[(i64, f32)], source: EmbeddingsSource) {
    let mut library = reopen(db);
    assert_eq!(search(&mut library), want);
    assert_eq!(library.embeddings_source(), Some(source));
}

#[test]
fn indexing_keeps_the_file_current_and_other_writers_make_it_stale() {
    let mut lib = TestLibrary::tiny();
    let all = fixture_photos();
    let (first, rest) = all.split_at(all.len() / 2);
    let photos = photo_folder(first);
    lib.index(photos.path());
    let db = lib.db();
    let before = search(&mut lib.library);
    let loads = lib.library.matrix_loads();

    // Indexing more photos with the embeddings loaded: the file follows each batch.
    for file in rest {
        std::fs::copy(file, photos.path().join(file.file_name().unwrap())).unwrap();
    }
    lib.index(photos.path());
    let after = search(&mut lib.library);
    assert!(after.len() > before.len(), "{after:?} after {before:?}");
    assert_eq!(
        lib.library.matrix_loads(),
        loads,
        "no reload while indexing"
    );
    let mut reopened = reopen(&db);
    assert_eq!(search(&mut reopened), after);
    assert_eq!(reopened.embeddings_source(), Some(EmbeddingsSource::File));

    // Another library on the same database indexes a new photo: this one's embeddings are
    // stale, and it reads them again at its next search (from the file, which the indexing
    // library kept current).
    let extra = tempfile::tempdir().unwrap();
    crate::indexing::write_jpeg(&extra.path().join("new.jpg"), 320, 240, 99);
    lib.library
        .index(
            &[extra.path().to_path_buf()],
            small_batches(),
            cliptag::library::RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    let loads = reopened.matrix_loads();
    let with_new = search(&mut reopened);
    assert_eq!(with_new.len(), after.len() + 1);
    assert_eq!(reopened.matrix_loads(), loads + 1);
    assert_eq!(reopened.embeddings_source(), Some(EmbeddingsSource::File));
    assert_eq!(search(&mut lib.library), with_new);
    // And the truth is the database's: without the file, the same.
    drop(reopened);
    drop(lib.library);
    std::fs::remove_file(lib.dir.path().join("lib.sqlite.embeddings")).unwrap();
    assert!(!cliptag::store::vectors_path(&db).exists());
    let mut fresh = reopen(&db);
    assert_eq!(search(&mut fresh), with_new);
}

#[test]
fn a_kept_label_column_follows_embeddings_changed_by_another_library() {
    // The app keeps a label's column of scores while its slider moves; when another cliptag
    // indexes the same library meanwhile, the next preview scores the new photos too.
    let mut lib = TestLibrary::tiny();
    let photos = photo_folder(&fixture_photos());
    lib.index(photos.path());
    lib.clear_vocabulary();
    let (everything, _) = lib
        .library
        .add_label(cliptag::domain::Label {
            threshold: -1.0,
            ..cliptag::domain::Label::new("Everything", "")
        })
        .unwrap();
    let before = lib.library.preview(&everything).unwrap().count;
    let mut other = reopen(&lib.db());
    let extra = tempfile::tempdir().unwrap();
    crate::indexing::write_jpeg(&extra.path().join("new.jpg"), 320, 240, 98);
    other
        .index(
            &[extra.path().to_path_buf()],
            small_batches(),
            cliptag::library::RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    let moved = cliptag::domain::Label {
        threshold: -0.99,
        ..everything
    };
    assert_eq!(lib.library.preview(&moved).unwrap().count, before + 1);
}

#[test]
fn embeddings_read_ahead_at_opening_are_used_and_dropped_when_they_changed_meanwhile() {
    let mut lib = TestLibrary::tiny();
    let photos = photo_folder(&fixture_photos());
    lib.index(photos.path());
    let db = lib.db();
    let file = lib.dir.path().join("lib.sqlite.embeddings");
    let want = search(&mut lib.library);
    drop(lib.library);
    assert!(file.exists());

    // Read ahead, then the file deleted: the search uses what was read (no rebuild writes the
    // file again), once.
    let mut library = read_ahead(&db);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(search(&mut library), want);
    assert_eq!(library.embeddings_source(), Some(EmbeddingsSource::File));
    assert_eq!(library.matrix_loads(), 1);
    assert!(
        !file.exists(),
        "the embeddings were read again, not taken from the read ahead"
    );
    drop(library);
    assert_reopened(&db, &want, EmbeddingsSource::DatabaseToFile);

    // Read ahead, then a photo goes missing through another connection: what was read is
    // stale and dropped; the search reads the embeddings again and leaves the photo out.
    let mut library = read_ahead(&db);
    let gone = want[0].0;
    cliptag::store::Store::open(&db)
        .unwrap()
        .batch(|batch| batch.mark_missing(&[gone]))
        .unwrap();
    let found = search(&mut library);
    assert!(found.iter().all(|(id, _)| *id != gone), "{found:?}");
    assert_eq!(found, want[1..].to_vec());
    assert_eq!(
        library.embeddings_source(),
        Some(EmbeddingsSource::DatabaseToFile)
    );
}

/// The library at `db` opened again, with its embeddings read ahead to the end.
fn read_ahead(db: &std::path::Path) -> Library {
    let mut library = reopen(db);
    library.preload_embeddings().unwrap();
    while !library.preload_finished() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    library
}
