//! A library's thumbnail cache, in cliptag's cache folder: filled while indexing, keyed by
//! content so a moved photo keeps its thumbnail, cleaned of photos that changed, read by the app
//! first, and moved there from beside a library that an earlier cliptag made.

use std::collections::HashSet;

use cliptag::library::ThumbnailReader;
use cliptag::store::ThumbnailCache;

use crate::indexing::{fixture_photos, photo_folder};
use crate::support::*;

#[test]
fn indexing_fills_the_cache_and_the_app_reads_it() {
    let photos = fixture_photos();
    let dir = photo_folder(&photos[..4]);
    let root = dir.path().canonicalize().unwrap();
    let mut library = TestLibrary::tiny();
    assert_eq!(library.index(&root).indexed, 4);
    let store = library.store();
    let hashes: HashSet<String> = store
        .images()
        .unwrap()
        .into_iter()
        .filter_map(|row| row.hash)
        .collect();
    assert_eq!(hashes.len(), 4);
    let cache = ThumbnailCache::of_library(&library.db()).unwrap();
    let (count, bytes) = cache.usage().unwrap();
    assert_eq!(count, 4, "one thumbnail per indexed photo");
    for hash in &hashes {
        let jpeg = cache.get(hash).unwrap().expect("cached while indexing");
        let image = image::load_from_memory(&jpeg).unwrap();
        assert!(image.width().max(image.height()) <= 256);
    }
    eprintln!("4 thumbnails, {bytes} bytes");

    // The app's loader takes the cached one without reading the photo: here the photo's path
    // leads nowhere, and the thumbnail still comes.
    let mut reader = ThumbnailReader::open(&library.db());
    let hash = hashes.iter().next().unwrap();
    let shown = reader
        .thumbnail(&root.join("not-there.jpg"), Some(hash), 256)
        .expect("the cached thumbnail");
    assert!(shown.width().max(shown.height()) <= 256);
    // A photo not cached yet is decoded, and cached for the next time.
    let fresh = root.join(photos[0].file_name().unwrap());
    assert!(
        reader
            .thumbnail(&fresh, Some("not-indexed-yet"), 256)
            .is_some()
    );
    assert!(cache.get("not-indexed-yet").unwrap().is_some());

    // A moved photo keeps its thumbnail; an edited one gets a new one, and the old goes.
    let moved = photos[1].file_name().unwrap();
    std::fs::create_dir(root.join("sub")).unwrap();
    std::fs::rename(root.join(moved), root.join("sub").join(moved)).unwrap();
    let edited = root.join(photos[2].file_name().unwrap());
    let old_hash = store.image_by_path(&edited).unwrap().unwrap().hash.unwrap();
    let mut image = image::open(&edited).unwrap().to_rgb8();
    image.put_pixel(0, 0, image::Rgb([255, 0, 255]));
    image::imageops::flip_horizontal_in_place(&mut image);
    image
        .save_with_format(&edited, image::ImageFormat::Png)
        .unwrap();
    let second = library.index(&root);
    assert_eq!((second.moved, second.indexed), (1, 1), "{second:?}");
    let new_hash = store.image_by_path(&edited).unwrap().unwrap().hash.unwrap();
    assert_ne!(new_hash, old_hash);
    assert!(cache.get(&new_hash).unwrap().is_some());
    assert!(
        cache.get(&old_hash).unwrap().is_none(),
        "the edited photo's old thumbnail"
    );
    assert!(
        cache.get("not-indexed-yet").unwrap().is_none(),
        "a thumbnail of no photo in the library"
    );
    assert_eq!(cache.usage().unwrap().0, 4);
}

/// A library made before the cache folder kept its thumbnails beside the database; the next
/// opening moves them into the cache folder, with what the cache's write-ahead log still held,
/// and leaves nothing beside the library.
#[test]
fn a_library_keeps_its_thumbnails_when_they_move_to_the_cache_folder() {
    use cliptag::store::thumbnails::{beside_path, cache_path};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.sqlite");
    drop(cliptag::store::Store::open(&db).unwrap());
    let new = cache_path(&db);
    let cache_dir = cliptag::paths::cache_dir().unwrap().join("thumbnails");
    assert!(new.starts_with(&cache_dir), "{}", new.display());
    assert!(!new.exists());

    // The library as an earlier cliptag left it: the cache beside it, one thumbnail folded into
    // the database and one still in the write-ahead log.
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(16, 12, image::Rgb([200, 30, 30]))
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let old = beside_path(&db);
    ThumbnailCache::open(&old)
        .unwrap()
        .put("in-the-database", jpeg.clone())
        .unwrap();
    let mut held = ThumbnailCache::open(&old).unwrap();
    held.put("only-in-the-log", jpeg.clone()).unwrap();
    let wal = std::path::PathBuf::from(format!("{}-wal", old.display()));
    let saved = (std::fs::read(&old).unwrap(), std::fs::read(&wal).unwrap());
    // Closing folds the log in; the copies put back are what a crash would have left.
    drop(held);
    std::fs::write(&old, &saved.0).unwrap();
    std::fs::write(&wal, &saved.1).unwrap();

    let moved = ThumbnailCache::of_library(&db).unwrap();
    assert_eq!(moved.path(), new.as_path());
    assert_eq!(moved.usage().unwrap().0, 2, "every thumbnail came along");
    assert_eq!(moved.get("only-in-the-log").unwrap(), Some(jpeg.clone()));
    assert!(
        !old.exists() && !wal.exists(),
        "nothing is left beside the library"
    );
    drop(moved);
    // The library opens on it, and the app's loader finds the thumbnails there.
    let library = cliptag::library::Library::open(&db, Default::default()).unwrap();
    assert_eq!(library.thumbnail_cache().unwrap().path(), new.as_path());
    let mut reader = ThumbnailReader::open(&db);
    let shown = reader
        .thumbnail(
            &dir.path().join("not-there.jpg"),
            Some("in-the-database"),
            256,
        )
        .expect("the moved thumbnail");
    assert_eq!((shown.width(), shown.height()), (16, 12));
    assert!(!old.exists());
}

/// The cache of a library in the temporary folder goes once the library is gone; a library that
/// is still there keeps its own.
#[test]
fn the_caches_of_libraries_that_are_gone_are_removed() {
    use cliptag::store::thumbnails::{cache_path, forget_gone_libraries};
    let kept = tempfile::tempdir().unwrap();
    let gone = tempfile::tempdir().unwrap();
    let mut caches = Vec::new();
    for dir in [&kept, &gone] {
        let db = dir.path().join("lib.sqlite");
        drop(cliptag::store::Store::open(&db).unwrap());
        ThumbnailCache::of_library(&db)
            .unwrap()
            .put("h", vec![1])
            .unwrap();
        caches.push(cache_path(&db));
    }
    assert!(caches.iter().all(|c| c.exists()));
    drop(gone);
    assert!(forget_gone_libraries() >= 1);
    assert!(caches[0].exists(), "the library that is still there");
    assert!(!caches[1].exists(), "the library that is gone");
}

/// A cache left beside a library after an earlier opening made an empty one in the cache folder
/// (the old one could not be read then) is still moved: its thumbnails are copied in.
#[test]
fn an_old_cache_is_moved_into_an_empty_new_one() {
    use cliptag::store::thumbnails::{beside_path, cache_path};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    drop(cliptag::store::Store::open(&db).unwrap());
    drop(ThumbnailCache::of_library(&db).unwrap());
    let old = beside_path(&db);
    let mut cache = ThumbnailCache::open(&old).unwrap();
    cache.put("a", vec![1]).unwrap();
    cache.put("b", vec![2]).unwrap();
    drop(cache);

    let moved = ThumbnailCache::of_library(&db).unwrap();
    assert_eq!(moved.path(), cache_path(&db).as_path());
    assert_eq!(moved.get("b").unwrap(), Some(vec![2]));
    assert_eq!(moved.usage().unwrap().0, 2);
    assert!(!old.exists());

    // Once the cache folder's copy holds thumbnails, an old copy that turns up again is left
    // where it is, untouched.
    let mut stale = ThumbnailCache::open(&old).unwrap();
    stale.put("c", vec![3]).unwrap();
    drop(stale);
    drop(moved);
    let again = ThumbnailCache::of_library(&db).unwrap();
    assert_eq!(again.get("c").unwrap(), None);
    assert!(old.exists());
}

/// Looking for caches of libraries that are gone leaves nothing beside the caches it reads.
#[test]
fn looking_for_gone_libraries_writes_nothing_beside_their_caches() {
    use cliptag::store::thumbnails::{cache_path, forget_gone_libraries};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    drop(cliptag::store::Store::open(&db).unwrap());
    ThumbnailCache::of_library(&db)
        .unwrap()
        .put("h", vec![1])
        .unwrap();
    let cache = cache_path(&db);
    let shm = std::path::PathBuf::from(format!("{}-shm", cache.display()));
    let wal = std::path::PathBuf::from(format!("{}-wal", cache.display()));
    assert!(
        !shm.exists() && !wal.exists(),
        "closed caches keep no journal"
    );
    forget_gone_libraries();
    assert!(cache.exists());
    assert!(
        !shm.exists() && !wal.exists(),
        "the scan left journal files"
    );
}

/// Where no thumbnail cache can be kept (the cache folder and the place beside the library are
/// both someone else's), indexing still works and says so.
#[test]
fn indexing_says_when_thumbnails_cannot_be_kept() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // A file where the cache folder would be, and a person's file beside the library.
    std::fs::write(home.join(".cache"), "mine").unwrap();
    let db = dir.path().join("lib.sqlite");
    std::fs::write(cliptag::store::thumbnails::beside_path(&db), "notes").unwrap();
    let photos = photo_folder(&fixture_photos()[..2]);
    let run = crate::support::cliptag_with_env(
        &[
            "index",
            "--db",
            db.to_str().unwrap(),
            "--model",
            crate::support::tiny_clip().to_str().unwrap(),
            photos.path().to_str().unwrap(),
        ],
        &[("HOME", home.to_str().unwrap()), ("XDG_CACHE_HOME", "")],
    );
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{said}");
    assert!(said.contains("thumbnails will not be kept"), "{said}");
    assert_eq!(
        std::fs::read_to_string(home.join(".cache")).unwrap(),
        "mine"
    );
    assert_eq!(
        std::fs::read_to_string(cliptag::store::thumbnails::beside_path(&db)).unwrap(),
        "notes"
    );
}
