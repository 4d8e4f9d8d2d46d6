//! Names swapped, rotated or shuffled among known photos (`IMG_0001` ↔ `IMG_0002` after a
//! re-sort, a date-based renamer): a photo's record (its embedding, tags and the person's
//! decisions) follows its content to its new name, decided for every file of the run together
//! before any photo is embedded.
//!
//! Photo by photo, a swap looks like two edits: each name's new content is "known" (it is the
//! other photo's), and copying the other record's embedding onto each in turn left both holding
//! the same vector. Here the run first hashes the changed files that could hold a known photo's
//! old content (those whose size is one of the changed photos' old sizes, so an ordinary edit
//! costs nothing) and moves each record whose old content turns up under another name there.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::pool::Job;
use crate::error::Result;
use crate::library::content_hash;
use crate::store::{ImageRow, Store};

/// A changed photo's record as it was before this run: its content hash and size.
pub(super) struct Before {
    pub hash: String,
    pub size: u64,
}

/// Moves the records of photos whose old content now lies under another name of this run to
/// that name; returns the jobs left to do and how many records moved. `before` holds, per
/// record of a changed photo with an embedding, what it was.
pub(super) fn follow_content(
    store: &mut Store,
    jobs: Vec<Job>,
    before: &HashMap<i64, Before>,
    embedded: &HashSet<i64>,
) -> Result<(Vec<Job>, Vec<i64>)> {
    let owner: HashMap<&str, i64> = before
        .iter()
        .map(|(id, b)| (b.hash.as_str(), *id))
        .collect();
    if owner.is_empty() {
        return Ok((jobs, Vec::new()));
    }
    let sizes: HashSet<u64> = before.values().map(|b| b.size).collect();
    // Destination job index → the record whose content it holds. Each record moves once (to the
    // first name holding its content; any other is a copy, found later as one).
    let mut moves: Vec<(usize, i64)> = Vec::new();
    let mut moving: HashSet<i64> = HashSet::new();
    for (index, job) in jobs.iter().enumerate() {
        if !sizes.contains(&job.size) {
            continue;
        }
        // A file that cannot be read now fails later, in the pool, with its reason.
        let Ok(bytes) = std::fs::read(&job.path) else {
            continue;
        };
        let hash = content_hash(&bytes);
        if job.expect.as_deref() == Some(hash.as_str()) {
            continue;
        }
        if let Some(&record) = owner.get(hash.as_str())
            && record != job.image_id
            && moving.insert(record)
        {
            moves.push((index, record));
        }
    }
    if moves.is_empty() {
        return Ok((jobs, Vec::new()));
    }

    let job_of: HashMap<i64, usize> = jobs
        .iter()
        .enumerate()
        .map(|(index, job)| (job.image_id, index))
        .collect();
    let destinations: HashSet<usize> = moves.iter().map(|(index, _)| *index).collect();
    // A record that moved without an embedding by the model indexing now (a switch of model
    // under way) is embedded at its new name.
    let mut to_embed: HashMap<usize, Job> = moves
        .iter()
        .filter(|(_, record)| !embedded.contains(record))
        .map(|&(index, record)| {
            let job = Job {
                image_id: record,
                new: false,
                expect: None,
                ..jobs[index].clone()
            };
            (index, job)
        })
        .collect();
    let mut replaced: HashMap<usize, Job> = HashMap::new();
    store.batch(|b| {
        // Paths are unique: every moving record first steps aside.
        for &record in &moving {
            b.set_path(record, &parked(record))?;
        }
        for &(index, _) in &moves {
            let job = &jobs[index];
            if moving.contains(&job.image_id) {
                continue;
            }
            // The record the destination had, whose own content is gone from it.
            if job.new {
                b.forget_pending(job.image_id)?;
            } else {
                b.mark_replaced(job.image_id, &replaced_path(&job.path, job.image_id))?;
            }
        }
        for &(index, record) in &moves {
            let job = &jobs[index];
            b.record_move(record, None, &job.path, job.size, job.mtime_ns)?;
        }
        // A name a record left that no other record took holds something else now: a new photo.
        for &record in &moving {
            let Some(&index) = job_of.get(&record) else {
                continue;
            };
            if destinations.contains(&index) {
                continue;
            }
            let job = &jobs[index];
            let image_id = b.insert_pending(&crate::store::NewImage {
                path: &job.path,
                size: job.size,
                mtime_ns: job.mtime_ns,
            })?;
            replaced.insert(
                index,
                Job {
                    image_id,
                    new: true,
                    expect: None,
                    ..job.clone()
                },
            );
        }
        Ok(())
    })?;
    let vacated: HashSet<usize> = moving
        .iter()
        .filter_map(|r| job_of.get(r).copied())
        .collect();
    let left = jobs
        .into_iter()
        .enumerate()
        .filter_map(|(index, job)| {
            if destinations.contains(&index) {
                to_embed.remove(&index)
            } else if vacated.contains(&index) {
                replaced.remove(&index)
            } else {
                Some(job)
            }
        })
        .collect();
    Ok((left, moves.iter().map(|(_, record)| *record).collect()))
}

/// A path no file can have, for a record between two names inside one transaction.
fn parked(record: i64) -> PathBuf {
    PathBuf::from(format!("\0cliptag: moving record {record}"))
}

/// Where a record whose file now holds another known photo is kept: listed as missing, its
/// decisions kept, found again (and moved there) if its content comes back under any name.
fn replaced_path(path: &Path, record: i64) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(" (replaced by another photo; record {record})"));
    PathBuf::from(name)
}

/// Records whose stored embedding is another photo's: two records with different content hashes
/// and the very same vector, as an older cliptag left them after a swap of names. Their photos
/// are embedded again.
pub(super) fn shared_vectors(store: &Store, model: &str, rows: &[ImageRow]) -> Result<Vec<i64>> {
    let hashes: HashMap<i64, &str> = rows
        .iter()
        .filter_map(|r| r.hash.as_deref().map(|h| (r.id, h)))
        .collect();
    let mut by_vector: HashMap<[u8; 32], Vec<i64>> = HashMap::new();
    store.each_embedding(model, &mut |id, vector| {
        let mut hasher = blake3::Hasher::new();
        for x in vector {
            hasher.update(&x.to_le_bytes());
        }
        by_vector
            .entry(*hasher.finalize().as_bytes())
            .or_default()
            .push(id);
        Ok(())
    })?;
    let mut suspects = Vec::new();
    for ids in by_vector.into_values().filter(|ids| ids.len() > 1) {
        let distinct: HashSet<Option<&&str>> = ids.iter().map(|id| hashes.get(id)).collect();
        if distinct.len() > 1 {
            suspects.extend(ids);
        }
    }
    suspects.sort_unstable();
    Ok(suspects)
}
