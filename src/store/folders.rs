//! The library's folders: what each one holds, and taking one out of the library while keeping
//! a person's decisions on its photos for when they come back (`kept_decisions`).

use std::path::{Path, PathBuf};

use rusqlite::params;

use super::{Store, now, path_bytes, path_from_bytes};
use crate::error::{Error, Result};

/// One of the library's folders and what it holds. A photo under two nested folders counts in
/// both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderCounts {
    pub path: PathBuf,
    /// Every file the library knows under it, whatever its state.
    pub photos: u64,
    pub indexed: u64,
    /// Found and not yet embedded and tagged.
    pub waiting: u64,
    /// Unreadable, or gone from disk.
    pub problems: u64,
}

/// What removing a folder took out of the library.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemovedFolder {
    pub path: PathBuf,
    /// Photos that left the library (those also under another of its folders stay).
    pub photos: u64,
    /// A person's decisions on them, kept for when the photos come back.
    pub decisions_kept: u64,
    /// Decisions on photos gone from the folder on disk, given to an identical copy that stays
    /// in the library (the folder was renamed or moved, and the copy indexed already).
    pub decisions_carried: u64,
    /// Another library folder that holds this one: its photos stay, as part of that one.
    pub within: Option<PathBuf>,
}

/// The bounds of the byte range of every path strictly under `folder`: `folder/` up to, not
/// including, `folder0` (`'0'` follows `'/'`).
fn under(folder: &Path) -> (Vec<u8>, Vec<u8>) {
    let mut low = path_bytes(folder).into_owned();
    if low.last() != Some(&b'/') {
        low.push(b'/');
    }
    let mut high = low.clone();
    if let Some(last) = high.last_mut() {
        *last = b'0';
    }
    (low, high)
}

impl Store {
    /// Each of the library's folders with its counts, in the order they were added.
    pub fn folder_counts(&self) -> Result<Vec<FolderCounts>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT status, COUNT(*) FROM images WHERE path >= ?1 AND path < ?2
                 GROUP BY status",
            )
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for path in self.roots()? {
            let (low, high) = under(&path);
            let mut counts = FolderCounts {
                path,
                ..FolderCounts::default()
            };
            let rows = stmt
                .query_map(params![low, high], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .map_err(|e| self.err(e))?;
            for row in rows {
                let (status, n) = row.map_err(|e| self.err(e))?;
                counts.photos += n;
                match status.as_str() {
                    "ok" => counts.indexed += n,
                    "pending" => counts.waiting += n,
                    _ => counts.problems += n,
                }
            }
            out.push(counts);
        }
        Ok(out)
    }

    /// Takes the library folder `folder` (as stored) out of the library with every photo under
    /// it that no other library folder holds: their records, embeddings, tags and history go,
    /// and each decision a person made on them is kept by the photo's content, given back when
    /// the indexer meets the same photo again (see [`super::Batch::record_ok`]). One durable
    /// transaction: a crash keeps the folder whole or removes it whole. The files are not
    /// touched.
    pub fn remove_root(&mut self, folder: &Path) -> Result<RemovedFolder> {
        let roots = self.roots()?;
        if !roots.iter().any(|root| root == folder) {
            return Err(Error::invalid(format!(
                "{} is not one of the library's folders",
                folder.display()
            )));
        }
        let others: Vec<PathBuf> = roots.into_iter().filter(|r| r != folder).collect();
        let (low, high) = under(folder);
        let folder_bytes = path_bytes(folder).into_owned();
        self.durable(|tx| {
            let mut removed = RemovedFolder {
                path: folder.to_path_buf(),
                within: others
                    .iter()
                    .find(|other| folder.starts_with(other))
                    .cloned(),
                ..RemovedFolder::default()
            };
            let photos: Vec<(i64, Vec<u8>, Option<String>)> = tx
                .prepare("SELECT id, path, hash FROM images WHERE path >= ?1 AND path < ?2")?
                .query_map(params![low, high], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut copies = tx.prepare_cached(
                "SELECT id, path FROM images WHERE hash = ?1 AND status = 'ok' AND id != ?2",
            )?;
            let mut carry = tx.prepare_cached(
                "INSERT INTO tags (image_id, label_id, score, source)
                 SELECT ?2, label_id, NULL, source FROM tags
                 WHERE image_id = ?1 AND source != 'auto' AND true
                 ON CONFLICT (image_id, label_id) DO UPDATE SET source = excluded.source
                     WHERE tags.source = 'auto'",
            )?;
            let mut keep = tx.prepare_cached(
                "INSERT INTO kept_decisions (path, hash, label_id, source, folder, removed_at)
                 SELECT ?5, ?2, label_id, source, ?3, ?4 FROM tags
                 WHERE image_id = ?1 AND source != 'auto'
                 ON CONFLICT (path, label_id) DO UPDATE SET hash = excluded.hash,
                     source = excluded.source, folder = excluded.folder,
                     removed_at = excluded.removed_at",
            )?;
            let mut forget = tx.prepare_cached("DELETE FROM images WHERE id = ?1")?;
            let when = now();
            let photos: Vec<(i64, Vec<u8>, Option<String>)> = photos
                .into_iter()
                .filter(|(_, bytes, _)| {
                    let path = path_from_bytes(bytes.clone());
                    !others.iter().any(|other| path.starts_with(other))
                })
                .collect();
            // How many of the removed photos share each content: among several, which copy
            // took over which cannot be told but by its name.
            let mut removed_with: std::collections::HashMap<&str, usize> = Default::default();
            for hash in photos.iter().filter_map(|(_, _, hash)| hash.as_deref()) {
                *removed_with.entry(hash).or_default() += 1;
            }
            let mut taken: std::collections::HashSet<i64> = Default::default();
            for (id, bytes, hash) in &photos {
                let (id, path) = (*id, path_from_bytes(bytes.clone()));
                // Gone from disk, with an identical copy staying in the library (the folder
                // renamed, and the new name indexed already): the decisions go to the copy
                // rather than wait for a photo that will not come back.
                let gone = matches!(
                    std::fs::symlink_metadata(&path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound
                );
                // The copy of the same name, else the only copy where this was the only
                // removed photo with that content; each copy takes one photo's decisions.
                let copy = match (hash, gone) {
                    (Some(hash), true) => {
                        let candidates: Vec<(i64, PathBuf)> = copies
                            .query_map(params![hash, id], |r| {
                                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                            })?
                            .collect::<rusqlite::Result<Vec<_>>>()?
                            .into_iter()
                            .map(|(copy, other)| (copy, path_from_bytes(other)))
                            .filter(|(copy, other)| {
                                !taken.contains(copy)
                                    && (!other.starts_with(folder)
                                        || others.iter().any(|root| other.starts_with(root)))
                            })
                            .collect();
                        candidates
                            .iter()
                            .find(|(_, other)| other.file_name() == path.file_name())
                            .or_else(|| {
                                (candidates.len() == 1
                                    && removed_with.get(hash.as_str()) == Some(&1))
                                .then(|| &candidates[0])
                            })
                            .map(|(copy, _)| *copy)
                    }
                    _ => None,
                };
                if let Some(copy) = copy {
                    taken.insert(copy);
                    removed.decisions_carried += carry.execute(params![id, copy])? as u64;
                } else {
                    // A photo never read to the end has no hash: its decisions are kept by
                    // its path alone.
                    removed.decisions_kept +=
                        keep.execute(params![id, hash, folder_bytes, when, bytes])? as u64;
                }
                forget.execute([id])?;
                removed.photos += 1;
            }
            tx.execute("DELETE FROM roots WHERE path = ?1", [&folder_bytes])?;
            if removed.photos > 0 {
                super::history::record(
                    tx,
                    &[super::history::NewStep {
                        removed_folder: Some(folder.to_path_buf()),
                        ..Default::default()
                    }],
                )?;
            }
            Ok(removed)
        })
    }

    /// How many decisions are kept from removed folders, waiting for their photos.
    pub fn kept_decisions(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT COUNT(*) FROM kept_decisions", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }
}
