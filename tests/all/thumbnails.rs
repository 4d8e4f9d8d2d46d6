//! The thumbnail cache beside a library: filled while indexing, keyed by content so a moved
//! photo keeps its thumbnail, cleaned of photos that changed, and read by the app first.

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
    let cache = ThumbnailCache::beside(&library.db()).unwrap();
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
