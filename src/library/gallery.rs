//! The gallery's own view of a library: which photos a filter shows and the rows on screen,
//! read on a connection of its own beside the [`Library`](super::Library) that writes. The app
//! pages through the library with it instead of holding every photo.

use std::path::Path;

use super::ImageEntry;
use crate::error::Result;
pub use crate::store::GalleryQuery;
use crate::store::Store;

/// Reads what the gallery shows from an open library's database.
pub struct GalleryReader {
    store: Store,
}

impl GalleryReader {
    /// Opens the library at `db` for reading; the library must have been opened (and so its
    /// schema brought up to date) by a [`Library`](super::Library) first.
    pub fn open(db: &Path) -> Result<Self> {
        Ok(GalleryReader {
            store: Store::open_reader(db)?,
        })
    }

    /// The photos `query` shows, in order: by path, or in the order of `query.within`.
    pub fn ids(&self, query: &GalleryQuery) -> Result<Vec<i64>> {
        self.store.gallery_ids(query)
    }

    /// These photos with their tags, in the order asked; photos no longer known are left out.
    pub fn entries(&self, ids: &[i64]) -> Result<Vec<ImageEntry>> {
        Ok(self
            .store
            .gallery_rows(ids)?
            .into_iter()
            .map(|(row, tags)| ImageEntry::new(row, tags))
            .collect())
    }
}
