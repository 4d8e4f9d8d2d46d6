//! The library as the app shows it: every photo with its tags, the vocabulary with counts, and
//! what the status bar and problems window need, computed once per change rather than per frame.

use std::collections::HashMap;
use std::path::PathBuf;

use super::Library;
use crate::domain::{ImageStatus, Label, TagSource};
use crate::error::Result;

/// One photo as the gallery needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEntry {
    pub id: i64,
    pub path: PathBuf,
    pub status: ImageStatus,
    pub error: Option<String>,
    /// BLAKE3 of its bytes, hex (keys its cached thumbnail).
    pub hash: Option<String>,
    /// Tags on the photo (rejections included, marked as such).
    pub tags: Vec<(i64, TagSource)>,
}

/// A label with the number of photos it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelEntry {
    pub label: Label,
    pub count: usize,
}

/// The library as the UI shows it, replaced as a whole when it changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LibrarySnapshot {
    /// Increases with every snapshot.
    pub version: u64,
    pub images: Vec<ImageEntry>,
    pub labels: Vec<LabelEntry>,
    pub roots: Vec<PathBuf>,
    pub templates: Vec<String>,
    /// How many photos are indexed.
    pub indexed: usize,
    /// Photos tagged with any label of each group, by the group's name in lower case
    /// (`animals/pets` counts `Animals/Pets`, `Animals/Pets/Dog`…).
    pub groups: HashMap<String, usize>,
    /// Positions in `images` of the files that could not be read or went missing.
    pub problems: Vec<usize>,
    /// Position in `images` of each photo id.
    pub positions: HashMap<i64, usize>,
    /// Whether threshold labels score as probabilities (a SigLIP model) rather than cosines.
    pub probability_scores: bool,
    /// The library's model, as people know it.
    pub model_name: String,
}

impl LibrarySnapshot {
    /// The photo with this id.
    pub fn image(&self, image_id: i64) -> Option<&ImageEntry> {
        self.positions.get(&image_id).map(|i| &self.images[*i])
    }
}

impl Library {
    /// The whole library as the app shows it, numbered `version`.
    pub fn snapshot(&self, version: u64) -> Result<LibrarySnapshot> {
        let mut tags: HashMap<i64, Vec<(i64, TagSource)>> = HashMap::new();
        let mut counts: HashMap<i64, usize> = HashMap::new();
        for (image, label, source) in self.store.tag_sources()? {
            if source.applies() {
                *counts.entry(label).or_default() += 1;
            }
            tags.entry(image).or_default().push((label, source));
        }
        let images: Vec<ImageEntry> = self
            .store
            .images()?
            .into_iter()
            .map(|row| ImageEntry {
                tags: tags.remove(&row.id).unwrap_or_default(),
                id: row.id,
                path: row.path,
                status: row.status,
                error: row.error,
                hash: row.hash,
            })
            .collect();
        let labels = self.store.labels()?;
        let groups = group_counts(&labels, &images);
        let labels = labels
            .into_iter()
            .map(|label| LabelEntry {
                count: counts.get(&label.id).copied().unwrap_or(0),
                label,
            })
            .collect();
        Ok(LibrarySnapshot {
            version,
            indexed: images
                .iter()
                .filter(|i| i.status == ImageStatus::Ok)
                .count(),
            problems: (0..images.len())
                .filter(|i| images[*i].status.is_problem())
                .collect(),
            positions: images.iter().enumerate().map(|(i, e)| (e.id, i)).collect(),
            images,
            labels,
            roots: self.store.roots()?,
            templates: self.store.templates()?,
            groups,
            probability_scores: self.store.logit_bias()?.is_some(),
            model_name: self.model.name.clone(),
        })
    }
}

/// Photos tagged with any label of each group: a photo tagged `Animals/Cat` and `Animals/Dog`
/// counts once in `animals`.
fn group_counts(labels: &[Label], images: &[ImageEntry]) -> HashMap<String, usize> {
    // Each label's groups: `Animals/Pets/Dog` is in `animals` and `animals/pets` (and a label
    // named as a group counts in it).
    let groups_of: HashMap<i64, Vec<String>> = labels
        .iter()
        .map(|label| {
            let name = label.name.to_lowercase();
            let groups = name
                .match_indices('/')
                .map(|(i, _)| name[..i].to_string())
                .chain(std::iter::once(name.clone()))
                .collect();
            (label.id, groups)
        })
        .collect();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut seen: Vec<&str> = Vec::new();
    for image in images {
        seen.clear();
        for (label, source) in &image.tags {
            if !source.applies() {
                continue;
            }
            for group in groups_of.get(label).into_iter().flatten() {
                if !seen.contains(&group.as_str()) {
                    seen.push(group);
                }
            }
        }
        for group in &seen {
            *counts.entry(group).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .map(|(group, count)| (group.to_string(), count))
        .collect()
}
