//! Looking things up: the files and tags a library knows, photos by text, by example, and
//! groups of near-duplicates.

use std::path::{Path, PathBuf};

use super::Library;
use crate::error::{Error, Result};
use crate::store::{ImageRow, TagRow};
use crate::tagging::search;

/// A photo found by a search, with its cosine similarity to the query.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub image_id: i64,
    pub path: PathBuf,
    pub score: f32,
}

impl Library {
    /// Every known file, ordered by path.
    pub fn files(&self) -> Result<Vec<ImageRow>> {
        self.store.images()
    }

    /// The folders the person asked to index, in the order they were added.
    pub fn roots(&self) -> Result<Vec<PathBuf>> {
        self.store.roots()
    }

    /// The known photo at `path` (as given, or with links and `..` resolved).
    pub fn find_image(&self, path: &Path) -> Result<ImageRow> {
        if let Some(row) = self.store.image_by_path(path)? {
            return Ok(row);
        }
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        self.store.image_by_path(&canonical)?.ok_or_else(|| {
            Error::invalid(format!(
                "{}: not in the library (index its folder first)",
                path.display()
            ))
        })
    }

    /// Every tag (rejections included) of the photos at `paths`, or of every photo when `paths`
    /// is empty; ordered by path and label.
    pub fn tags(&self, paths: &[PathBuf]) -> Result<Vec<TagRow>> {
        if paths.is_empty() {
            return self.store.tags();
        }
        let mut rows = Vec::new();
        for path in paths {
            rows.extend(self.store.tags_of(self.find_image(path)?.id)?);
        }
        Ok(rows)
    }

    fn matches(&self, found: Vec<(i64, f32)>) -> Result<Vec<Match>> {
        let mut out = Vec::with_capacity(found.len());
        for (image_id, score) in found {
            if let Some(image) = self.store.image(image_id)? {
                out.push(Match {
                    image_id,
                    path: image.path,
                    score,
                });
            }
        }
        Ok(out)
    }

    /// The `limit` photos that best match `text`, best first.
    pub fn search(&mut self, text: &str, limit: usize) -> Result<Vec<Match>> {
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(Error::invalid("nothing to search for"));
        }
        if self.matrix()?.is_empty() {
            return Ok(Vec::new());
        }
        let query = self
            .text_embeddings(std::slice::from_ref(&text))?
            .remove(&text)
            .ok_or_else(|| Error::invalid("the text encoder returned no embedding"))?;
        let found = search::nearest(self.matrix()?, &query, limit)?;
        self.matches(found)
    }

    /// The `limit` photos most like the given ones (the mean of their embeddings), best first.
    pub fn similar(&mut self, image_ids: &[i64], limit: usize) -> Result<Vec<Match>> {
        let found = search::more_like(self.matrix()?, image_ids, limit)?;
        self.matches(found)
    }

    /// Groups of photos whose embeddings are at least `threshold` similar, largest first.
    pub fn duplicates(&mut self, threshold: f32) -> Result<Vec<Vec<ImageRow>>> {
        let groups = search::near_duplicates(self.matrix()?, threshold)?;
        groups
            .into_iter()
            .map(|group| {
                group
                    .into_iter()
                    .filter_map(|id| self.store.image(id).transpose())
                    .collect()
            })
            .collect()
    }
}
