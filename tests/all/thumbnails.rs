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
