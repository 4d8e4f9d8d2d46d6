//! Looking things up: the files and tags a library knows, photos by text, by example, and
//! groups of near-duplicates.

use std::collections::HashMap;
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
    pub fn tags(&mut self, paths: &[PathBuf]) -> Result<Vec<TagRow>> {
        let mut rows = if paths.is_empty() {
            self.store.tags()?
        } else {
            let mut rows = Vec::new();
            for path in paths {
                rows.extend(self.store.tags_of(self.find_image(path)?.id)?);
            }
            rows
        };
        self.rescore_decided(&mut rows);
        Ok(rows)
    }

    /// Gives the tags a person decided the label's score as it is now (an automatic tag's is
    /// current already): the stored one is the score of the moment of the decision, stale once
    /// the label's prompts or learning changed. Where the scores cannot be made now (no model for
    /// new prompts, a disabled label) the stored ones stay.
    pub(crate) fn rescore_decided(&mut self, rows: &mut [TagRow]) {
        let decided: Vec<usize> = (0..rows.len())
            .filter(|&i| rows[i].source.is_personal())
            .collect();
        if decided.is_empty() {
            return;
        }
        let mut images: Vec<i64> = decided.iter().map(|&i| rows[i].image_id).collect();
        images.sort_unstable();
        images.dedup();
        let scores = (|| -> Result<HashMap<(i64, i64), f32>> {
            let mut vectors = Vec::new();
            for id in &images {
                if let Some(vector) = self.matrix()?.vector(*id)? {
                    vectors.push((*id, vector));
                }
            }
            let mut out = HashMap::new();
            if vectors.is_empty() {
                return Ok(out);
            }
            let matrix = crate::tagging::EmbeddingMatrix::from_rows(vectors)?;
            let plan = self.plan()?;
            let scores = plan.scores(&matrix)?;
            let width = plan.labels.len();
            for (row, image_id) in matrix.ids().iter().enumerate() {
                for (j, prepared) in plan.labels.iter().enumerate() {
                    let score = scores[row * width + j];
                    if !score.is_nan() {
                        out.insert((*image_id, prepared.label.id), score);
                    }
                }
            }
            Ok(out)
        })();
        let Ok(scores) = scores else {
            return;
        };
        for i in decided {
            let row = &mut rows[i];
            if let Some(score) = scores.get(&(row.image_id, row.label_id)) {
                row.score = Some(*score);
            }
        }
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

    /// Removes the photos missing from disk from the library (with `dry_run`, only says which
    /// it would): each with how many of a person's decisions go with it. Their embeddings and
    /// tags go too; a photo that comes back later is indexed as a new one.
    pub fn prune(&mut self, dry_run: bool) -> Result<Vec<(PathBuf, usize)>> {
        let missing = self.store.missing_with_decisions()?;
        if !dry_run && !missing.is_empty() {
            let ids: Vec<i64> = missing.iter().map(|(row, _)| row.id).collect();
            self.store.forget_images(&ids)?;
            self.scores.matrix = None;
            self.scores.columns.clear();
        }
        Ok(missing
            .into_iter()
            .map(|(row, decisions)| (row.path, decisions))
            .collect())
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
