//! Working out what changed on disk since the last run, and recording it before any slow work
//! starts: new files as pending, changed ones pending again, vanished ones missing.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::IndexSummary;
use super::pool::Job;
use super::renames::{self, Before};
use crate::domain::ImageStatus;
use crate::error::{Error, Result};
use crate::imaging;
use crate::library::walk::FoundFile;
use crate::store::{ImageRow, NewImage, Store};

/// The settings key of the decoders that last indexed this library ([`imaging::DECODERS`]).
const DECODERS_KEY: &str = "decoders";
/// Set once the library was checked for records holding another photo's vector.
const VECTORS_CHECKED_KEY: &str = "shared_vectors_checked";

/// Photos known by content hash, for recognising moves and copies.
#[derive(Debug, Default)]
pub(super) struct KnownMaps {
    /// Missing photos with an embedding: a new file with the same hash is the same photo moved.
    pub missing: HashMap<String, i64>,
    /// Every photo with an embedding: a new file with the same hash is a copy.
    pub embedded: HashMap<String, i64>,
}

impl KnownMaps {
    /// Every hash the decode pool should recognise without decoding.
    pub fn hashes(&self) -> HashSet<String> {
        self.missing
            .keys()
            .chain(self.embedded.keys())
            .cloned()
            .collect()
    }
}

/// What planning found.
pub(super) struct Planned {
    pub jobs: Vec<Job>,
    pub known: KnownMaps,
    /// Whether any photo changed status here (went missing, or came back), so that a kept matrix
    /// of embeddings is stale.
    pub statuses_changed: bool,
}

/// Compares the files on disk under `roots` with the database, for `model`'s embeddings; what
/// is under `unseen` (folders that could not be read, or looked like a bare mount point) is
/// not marked missing.
pub(super) fn plan(
    store: &mut Store,
    roots: &[PathBuf],
    unseen: &[PathBuf],
    found: &[FoundFile],
    model: &str,
    exact: bool,
    summary: &mut IndexSummary,
) -> Result<Planned> {
    let under_roots = |path: &Path| {
        roots.iter().any(|r| path.starts_with(r)) && !unseen.iter().any(|u| path.starts_with(u))
    };
    let known: HashMap<PathBuf, ImageRow> = store
        .images()?
        .into_iter()
        .map(|row| (row.path.clone(), row))
        .collect();
    // Where the library asks for exact f32, a photo embedded in a reduced precision is embedded
    // again: it counts as not embedded by this model.
    let reduced = if exact {
        store.embedded_in_reduced_precision(model)?
    } else {
        HashSet::new()
    };
    let mut embedded_ids = store.embedded_ids(model)?;
    embedded_ids.retain(|id| !reduced.contains(id));
    let seen: HashSet<&Path> = found.iter().map(|f| f.path.as_path()).collect();
    let vanished: Vec<i64> = known
        .values()
        .filter(|row| {
            row.status != ImageStatus::Missing
                && under_roots(&row.path)
                && !seen.contains(row.path.as_path())
        })
        .map(|row| row.id)
        .collect();
    summary.missing = vanished.len() as u64;
    let mut statuses_changed = !vanished.is_empty();

    // Files that failed under older decoders are tried again, once.
    let retry_failed = store.setting(DECODERS_KEY)?.as_deref() != Some(imaging::DECODERS);
    // Once per library: records an older cliptag gave another photo's vector (after a swap of
    // names) are embedded again.
    let check_vectors = store.setting(VECTORS_CHECKED_KEY)?.is_none();
    let suspects: HashSet<i64> = if check_vectors {
        let rows: Vec<ImageRow> = known.values().cloned().collect();
        renames::shared_vectors(store, model, &rows)?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    };
    let mut before: HashMap<i64, Before> = HashMap::new();
    // A photo whose file vanished may have been moved over another known name (`mv a b`): its
    // content, found there, takes its record along.
    let vanished_set: HashSet<i64> = vanished.iter().copied().collect();
    // So may one an earlier run marked missing (killed before it could find the new name).
    for row in known.values() {
        let gone = vanished_set.contains(&row.id)
            || (row.status == ImageStatus::Missing && !seen.contains(row.path.as_path()));
        if let Some(hash) = &row.hash
            && gone
            && !suspects.contains(&row.id)
        {
            before.insert(
                row.id,
                Before {
                    hash: hash.clone(),
                    size: row.size,
                },
            );
        }
    }
    let jobs = store.batch(|batch| {
        batch.mark_missing(&vanished)?;
        if retry_failed {
            // Every failed file, under these folders or others, is pending again, in the same
            // transaction as the setting: a run killed after it still has them to index.
            statuses_changed |= batch.retry_failed()? > 0;
            batch.set_setting(DECODERS_KEY, imaging::DECODERS)?;
        }
        if check_vectors {
            batch.set_setting(VECTORS_CHECKED_KEY, "1")?;
        }
        let mut jobs = Vec::new();
        for file in found {
            let job = |image_id, new, expect| Job {
                image_id,
                path: file.path.clone(),
                size: file.size,
                mtime_ns: file.mtime_ns,
                new,
                expect,
            };
            let Some(row) = known.get(&file.path) else {
                let image = NewImage {
                    path: &file.path,
                    size: file.size,
                    mtime_ns: file.mtime_ns,
                };
                match batch.insert_pending(&image) {
                    Ok(id) => jobs.push(job(id, true, None)),
                    Err(error) => {
                        let (path, reason) = split_error(error, &file.path);
                        summary.fail(&path, reason);
                    }
                }
                continue;
            };
            let suspect = suspects.contains(&row.id);
            // Another file under the same name (names swapped) has another inode, whatever its
            // size and time.
            let same_file = row.inode.is_none() || file.inode.is_none() || row.inode == file.inode;
            let same =
                row.size == file.size && row.mtime_ns == file.mtime_ns && same_file && !suspect;
            let has_embedding = embedded_ids.contains(&row.id);
            match row.status {
                ImageStatus::Ok | ImageStatus::Missing if same && has_embedding => {
                    if row.status == ImageStatus::Missing {
                        batch.mark_found(row.id)?;
                        statuses_changed = true;
                    }
                    summary.unchanged += 1;
                }
                ImageStatus::Error if same && !retry_failed && !could_not_read(row) => {
                    summary.unchanged += 1
                }
                _ => {
                    batch.mark_changed(row.id, file.size, file.mtime_ns)?;
                    let expect = row.hash.clone().filter(|_| has_embedding && !suspect);
                    // Its content is known even where this model has not embedded it yet (a
                    // switch of model): names swapped meanwhile still move records.
                    if let Some(hash) = row.hash.clone().filter(|_| !suspect) {
                        before.insert(
                            row.id,
                            Before {
                                hash,
                                size: row.size,
                            },
                        );
                    }
                    jobs.push(job(row.id, false, expect));
                }
            }
        }
        Ok(jobs)
    })?;
    // Names swapped or rotated among these photos: records follow their content.
    let (jobs, moved_records) = renames::follow_content(store, jobs, &before, &embedded_ids)?;
    let moved = moved_records.len() as u64;
    summary.moved += moved;
    // A vanished photo found under another name was moved, not lost.
    summary.missing -= moved_records
        .iter()
        .filter(|r| vanished_set.contains(r))
        .count() as u64;
    statuses_changed |= moved > 0;
    // Each name's file identity as seen now (after any record moved), where it changed.
    let stale: Vec<&FoundFile> = found
        .iter()
        .filter(|f| known.get(&f.path).is_none_or(|row| row.inode != f.inode) || moved > 0)
        .collect();
    if !stale.is_empty() {
        store.batch(|b| {
            for file in &stale {
                b.set_inode_at(&file.path, file.inode)?;
            }
            Ok(())
        })?;
    }

    let mut maps = KnownMaps::default();
    // A suspect's stored vector is not its content's: nothing may be copied from it; nor from
    // one in a reduced precision where exact f32 is asked for.
    for (id, hash, status) in store.known_content(model)?.rows {
        if suspects.contains(&id) || reduced.contains(&id) {
            continue;
        }
        if status == ImageStatus::Missing {
            maps.missing.insert(hash.clone(), id);
        }
        maps.embedded.entry(hash).or_insert(id);
    }
    Ok(Planned {
        jobs,
        known: maps,
        statuses_changed,
    })
}

/// Splits an error into the path it names (else `fallback`) and the reason.
pub(super) fn split_error(error: Error, fallback: &Path) -> (PathBuf, String) {
    match error {
        Error::Io { path, source } => (path, source.to_string()),
        Error::Image { path, reason } => (path, reason),
        other => (fallback.to_path_buf(), other.to_string()),
    }
}

/// Whether a photo failed because the system would not let its file be read (no permission,
/// an I/O error), which a person fixes without touching the file: `chmod` leaves its size and
/// time as they were. Such a file is tried again on every run, which costs opening it; a photo
/// that was read and would not decode waits for the file or the decoders to change.
fn could_not_read(row: &ImageRow) -> bool {
    // The reason is the system's own message, which always ends in its error number.
    row.error
        .as_deref()
        .is_some_and(|reason| reason.contains("(os error "))
}
