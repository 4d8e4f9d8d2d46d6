//! Looking things up: the files and tags a library knows, photos by text, by example, and
//! groups of near-duplicates.

use std::collections::{HashMap, HashSet};
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
        // While a switch of model is unfinished, every tag listed is still the old model's:
        // decided tags keep the score they were stored with rather than mix in the new model's.
        if decided.is_empty() || self.unfinished_switch().is_ok_and(|s| s.is_some()) {
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
    ///
    /// The disk is looked at now, not only what the last index saw: a photo is removed only
    /// where its file is gone (not unreadable) from a library folder that is there and not
    /// empty. Photos of a folder that cannot be reached or is empty (an unplugged drive, an
    /// unmounted share, its bare mount point) are kept, and so are photos marked missing whose
    /// files have come back. Decisions on a removed photo of which an identical copy stays in
    /// the library (the same content under another name) move to that copy. Refused while an
    /// index runs: the index may be about to find a missing photo under its new name.
    pub fn prune(&mut self, dry_run: bool) -> Result<PruneReport> {
        let _no_index = super::index::lock::IndexLock::take(self.store.path())?;
        let roots = self.store.roots()?;
        let rows = self.store.images()?;
        // What is on disk now, for every record.
        let on_disk: Vec<Option<bool>> = rows
            .iter()
            .map(|row| match std::fs::symlink_metadata(&row.path) {
                Ok(_) => Some(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(false),
                Err(_) => None,
            })
            .collect();
        // A folder none of whose photos is left looks like an unplugged drive (or its bare mount
        // point, or a share not mounted): its photos are kept. So is every photo of a library
        // folder that is gone or holds nothing.
        let mut alive: HashSet<PathBuf> = HashSet::new();
        for (row, there) in rows.iter().zip(&on_disk) {
            if *there == Some(true)
                && let Some(parent) = row.path.parent()
            {
                alive.insert(parent.to_path_buf());
            }
        }
        let mut report = PruneReport::default();
        let mut gone = Vec::new();
        let mut present: HashMap<String, i64> = HashMap::new();
        for (row, there) in rows.into_iter().zip(on_disk) {
            match there {
                Some(false) => {
                    let root = roots
                        .iter()
                        .filter(|root| row.path.starts_with(root))
                        .max_by_key(|root| root.as_os_str().len());
                    let parent = row.path.parent().map(Path::to_path_buf);
                    let root_there = root.is_none_or(|r| {
                        std::fs::read_dir(r).is_ok_and(|mut entries| entries.next().is_some())
                    });
                    match parent {
                        Some(parent) if !root_there || !alive.contains(&parent) => {
                            let folder = root.cloned().filter(|_| !root_there).unwrap_or(parent);
                            if !report.unreachable.contains(&folder) {
                                report.unreachable.push(folder);
                            }
                            report.kept_unreachable += 1;
                        }
                        _ => gone.push(row),
                    }
                }
                Some(true) if row.status == crate::domain::ImageStatus::Missing => report.back += 1,
                Some(true) => {
                    if let Some(hash) = &row.hash
                        && row.status == crate::domain::ImageStatus::Ok
                    {
                        present.entry(hash.clone()).or_insert(row.id);
                    }
                }
                None => {}
            }
        }
        let copy_of: HashMap<i64, i64> = gone
            .iter()
            .filter_map(|row| {
                let copy = row.hash.as_ref().and_then(|h| present.get(h))?;
                Some((row.id, *copy))
            })
            .collect();
        let gone = self.store.with_decisions(gone)?;
        if dry_run {
            // What would move: the decisions of photos with a copy that has none of its own.
            for (row, _) in &gone {
                let Some(copy) = copy_of.get(&row.id) else {
                    continue;
                };
                for tag in self.store.tags_of(row.id)? {
                    let on_copy = self.store.tag(*copy, tag.label_id)?;
                    if tag.source.is_personal() && !on_copy.is_some_and(|(s, _)| s.is_personal()) {
                        report.carried += 1;
                    }
                }
            }
            let total: usize = gone.iter().map(|(_, d)| d).sum();
            report.decisions_gone = total.saturating_sub(report.carried);
        } else if !gone.is_empty() {
            let ids: Vec<i64> = gone.iter().map(|(row, _)| row.id).collect();
            let (went, moved) = self.store.forget_images_keeping_decisions(&ids, &copy_of)?;
            report.decisions_gone = went;
            report.carried = moved;
            self.scores.matrix = None;
            self.scores.columns.clear();
        }
        report.removed = gone
            .into_iter()
            .map(|(row, decisions)| (row.path, decisions))
            .collect();
        Ok(report)
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

/// What `prune` removed (or would), and what it kept.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PruneReport {
    /// The photos gone from disk, each with how many of a person's decisions went with it.
    pub removed: Vec<(PathBuf, usize)>,
    /// Photos kept because their library folder cannot be reached now.
    pub kept_unreachable: usize,
    /// Those folders.
    pub unreachable: Vec<PathBuf>,
    /// Photos marked missing by the last index whose files are there again (the next index
    /// picks them up).
    pub back: usize,
    /// Decisions moved to an identical copy of a removed photo instead of going with it.
    pub carried: usize,
    /// Decisions that went with the removed photos (or would go).
    pub decisions_gone: usize,
}

impl PruneReport {
    /// The decisions that went (or would go) with the removed photos, not counting those moved
    /// to an identical copy.
    pub fn decisions(&self) -> usize {
        self.decisions_gone
    }
}

/// `report` in words, as the command line and the app say it.
pub fn prune_summary(report: &PruneReport, dry_run: bool) -> String {
    let plural = |n: usize, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    let photos = report.removed.len();
    let mut text = format!(
        "{} {} and the {} you made on {}",
        if dry_run { "would remove" } else { "removed" },
        plural(photos, "missing photo", "missing photos"),
        plural(report.decisions(), "decision", "decisions"),
        if photos == 1 { "it" } else { "them" }
    );
    if report.carried > 0 {
        text += &format!(
            "; {} {} to identical copies that stay",
            plural(report.carried, "decision", "decisions"),
            if dry_run { "would move" } else { "moved" }
        );
    }
    if report.kept_unreachable > 0 {
        let folders: Vec<String> = report
            .unreachable
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        text += &format!(
            "; kept {} in {} that cannot be reached or where none of its photos is left ({}): an unplugged drive's photos stay",
            plural(report.kept_unreachable, "photo", "photos"),
            if folders.len() == 1 {
                "a folder"
            } else {
                "folders"
            },
            folders.join(", ")
        );
    }
    if report.back > 0 {
        text += &format!(
            "; {} marked missing {} back on disk: the next index picks {} up",
            plural(report.back, "photo", "photos"),
            if report.back == 1 { "is" } else { "are" },
            if report.back == 1 { "it" } else { "them" }
        );
    }
    text
}
