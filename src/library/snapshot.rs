//! The library as the app shows it: the vocabulary with counts, and what the status bar and
//! problems window need, computed once per change rather than per frame.

use std::collections::HashMap;
use std::path::PathBuf;

use super::Library;
use crate::domain::{ImageStatus, Label, TagSource};
use crate::error::Result;
use crate::store::{ImageRow, PROBLEMS_LISTED, Store};

/// One photo as the gallery needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEntry {
    pub id: i64,
    pub path: PathBuf,
    pub status: ImageStatus,
    pub error: Option<String>,
    /// BLAKE3 of its bytes, hex (keys its cached thumbnail).
    pub hash: Option<String>,
    /// Width and height as displayed, once it has been read (a camera RAW's are its preview's).
    pub size: Option<(u32, u32)>,
    /// Tags on the photo (rejections included, marked as such).
    pub tags: Vec<(i64, TagSource)>,
}

/// A label with the number of photos it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelEntry {
    pub label: Label,
    pub count: usize,
}

/// The library as the UI shows it, replaced as a whole when it changes. It carries counts and
/// the vocabulary, never the photos themselves: the gallery asks for the rows it shows
/// ([`GalleryReader`](super::GalleryReader)), so a snapshot of a million photos is as small as
/// one of ten.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LibrarySnapshot {
    /// Increases with every snapshot.
    pub version: u64,
    pub labels: Vec<LabelEntry>,
    pub roots: Vec<PathBuf>,
    /// The same folders with what each holds, for the Folders window.
    pub folders: Vec<super::FolderCounts>,
    pub templates: Vec<String>,
    /// How many files the library knows, whatever their state.
    pub photos: usize,
    /// How many photos are indexed.
    pub indexed: usize,
    /// How many photos wait to be indexed (found, not yet embedded and tagged).
    pub waiting: usize,
    /// Photos tagged with any label of each group, by the group's name in lower case
    /// (`animals/pets` counts `Animals/Pets`, `Animals/Pets/Dog`…).
    pub groups: HashMap<String, usize>,
    /// How many files could not be read or went missing.
    pub problems: usize,
    /// The first of them by path (at most [`PROBLEMS_LISTED`]), for the problems window.
    pub problem_files: Vec<ImageEntry>,
    /// Whether threshold labels score as probabilities (a SigLIP model) rather than cosines.
    pub probability_scores: bool,
    /// The library's model, as people know it.
    pub model_name: String,
    /// Where the model comes from (a hub repository or a folder).
    pub model_source: Option<crate::model::hub::ModelSpec>,
    /// How many steps of the person's decisions can be undone, and redone.
    pub history: (i64, i64),
    /// The arithmetic photos are embedded in now.
    pub precision: crate::model::matmul::Precision,
    /// Whether the library asks for exact f32 rather than the fastest precision the CPU runs.
    pub exact_precision: bool,
}

impl ImageEntry {
    /// A stored photo with its tags, as the app shows it.
    pub fn new(row: ImageRow, tags: Vec<(i64, TagSource)>) -> Self {
        ImageEntry {
            id: row.id,
            path: row.path,
            status: row.status,
            error: row.error,
            hash: row.hash,
            size: row.width.zip(row.height),
            tags,
        }
    }
}

impl Library {
    /// The library as the app shows it, numbered `version`: one pass over the tags for the
    /// counts, nothing per photo kept.
    pub fn snapshot(&self, version: u64) -> Result<LibrarySnapshot> {
        let labels = self.store.labels()?;
        let (counts, groups) = tag_counts(&self.store, &labels)?;
        let labels = labels
            .into_iter()
            .map(|label| LabelEntry {
                count: counts.get(&label.id).copied().unwrap_or(0),
                label,
            })
            .collect();
        let statuses = self.store.status_counts()?;
        let of = |status: ImageStatus| {
            statuses
                .iter()
                .filter(|(s, _)| *s == status)
                .map(|(_, n)| *n as usize)
                .sum::<usize>()
        };
        let (problem_rows, problems) = self.store.problem_images(PROBLEMS_LISTED)?;
        Ok(LibrarySnapshot {
            version,
            photos: statuses.iter().map(|(_, n)| *n as usize).sum(),
            indexed: of(ImageStatus::Ok),
            waiting: of(ImageStatus::Pending),
            problems,
            problem_files: problem_rows
                .into_iter()
                .map(|row| ImageEntry::new(row, Vec::new()))
                .collect(),
            labels,
            roots: self.store.roots()?,
            folders: self.store.folder_counts()?,
            templates: self.store.templates()?,
            groups,
            probability_scores: self.store.logit_bias()?.is_some(),
            model_name: self.model.name.clone(),
            model_source: Some(self.model.source.clone()),
            history: self.store.history_depth()?,
            precision: self.model.precision(),
            exact_precision: self.model.exact(),
        })
    }
}

/// Photos tagged with each label, and with any label of each group: a photo tagged
/// `Animals/Cat` and `Animals/Dog` counts once in `animals`. One pass over the tags, photo by
/// photo.
fn tag_counts(
    store: &Store,
    labels: &[Label],
) -> Result<(HashMap<i64, usize>, HashMap<String, usize>)> {
    // Each label's groups: `Animals/Pets/Dog` is in `animals` and `animals/pets` (and a label
    // named as a group counts in it), as positions in `names`.
    let mut names: Vec<String> = Vec::new();
    let mut position: HashMap<String, usize> = HashMap::new();
    let groups_of: HashMap<i64, Vec<usize>> = labels
        .iter()
        .map(|label| {
            let name = label.name.to_lowercase();
            let groups = name
                .match_indices('/')
                .map(|(i, _)| name[..i].to_string())
                .chain(std::iter::once(name.clone()))
                .map(|group| {
                    *position.entry(group.clone()).or_insert_with(|| {
                        names.push(group);
                        names.len() - 1
                    })
                })
                .collect();
            (label.id, groups)
        })
        .collect();
    let mut labels: HashMap<i64, usize> = HashMap::new();
    let mut groups = vec![0usize; names.len()];
    let mut seen: Vec<usize> = Vec::new();
    let mut current = None;
    let mut count_photo = |seen: &mut Vec<usize>| {
        for &group in seen.iter() {
            groups[group] += 1;
        }
        seen.clear();
    };
    store.each_applied_tag(|image, label| {
        if current != Some(image) {
            count_photo(&mut seen);
            current = Some(image);
        }
        *labels.entry(label).or_default() += 1;
        for &group in groups_of.get(&label).into_iter().flatten() {
            if !seen.contains(&group) {
                seen.push(group);
            }
        }
    })?;
    count_photo(&mut seen);
    let groups = names
        .into_iter()
        .zip(groups)
        .filter(|(_, count)| *count > 0)
        .collect();
    Ok((labels, groups))
}
