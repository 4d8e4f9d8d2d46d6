//! Thumbnails as the app's gallery reads them: from the library's thumbnail cache on disk
//! (filled while indexing), else decoded from the photo and added to that cache. The app owns
//! one reader per loader thread and never opens the library's files itself.

use std::path::Path;

use crate::imaging;
use crate::model::config::Resample;
use crate::store::ThumbnailCache;
use crate::store::thumbnails::{THUMBNAIL_SIZE, make_thumbnail};

/// Reads (and fills) the thumbnail cache of one library.
pub struct ThumbnailReader {
    /// `None` where the cache cannot be opened: every thumbnail is then decoded from its photo.
    cache: Option<ThumbnailCache>,
}

impl ThumbnailReader {
    /// The reader of the thumbnail cache of the library at `db`.
    pub fn open(db: &Path) -> Self {
        ThumbnailReader {
            cache: ThumbnailCache::of_library(db).ok(),
        }
    }

    /// A reader with no cache: every thumbnail is decoded from its photo.
    pub fn uncached() -> Self {
        ThumbnailReader { cache: None }
    }

    /// The photo at `path` as a thumbnail whose longest side is at most `size`: for a grid size
    /// and a known content `hash`, the cached one (without reading the photo), else decoded
    /// (and cached for the next time). `None` where the photo cannot be read.
    pub fn thumbnail(
        &mut self,
        path: &Path,
        hash: Option<&str>,
        size: u32,
    ) -> Option<image::RgbImage> {
        match (&mut self.cache, hash) {
            (Some(cache), Some(hash)) if size <= THUMBNAIL_SIZE => cached(cache, hash, path, size),
            _ => decoded(path, size),
        }
    }
}

fn cached(
    cache: &mut ThumbnailCache,
    hash: &str,
    path: &Path,
    size: u32,
) -> Option<image::RgbImage> {
    if let Ok(Some(jpeg)) = cache.get(hash)
        && let Ok(image) = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
    {
        return Some(image.to_rgb8());
    }
    let decoded = imaging::decode_file(path, Some(size / 2)).ok()?;
    let jpeg = make_thumbnail(&decoded.image)?;
    // A cache that cannot be written still shows the thumbnail.
    let _ = cache.put(hash, jpeg.clone());
    Some(
        image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .ok()?
            .to_rgb8(),
    )
}

fn decoded(path: &Path, size: u32) -> Option<image::RgbImage> {
    let decoded = imaging::decode_file(path, Some(size / 2)).ok()?;
    let (w, h) = (decoded.image.width(), decoded.image.height());
    let scale = (size as f32 / w.max(h) as f32).min(1.0);
    let (tw, th) = (
        ((w as f32 * scale) as u32).max(1),
        ((h as f32 * scale) as u32).max(1),
    );
    Some(imaging::preprocess::resize(
        &decoded.image,
        tw,
        th,
        Resample::Bilinear,
    ))
}
