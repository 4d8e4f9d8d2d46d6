//! The library's folders as a person manages them: what each holds, and removing one. Removing
//! takes a folder's photos out of the library (their files stay where they are) and keeps the
//! person's decisions on them by content, so that adding the folder again — or a copy of it
//! somewhere else — gives them back.

use std::path::{Path, PathBuf};

use super::Library;
use crate::error::{Error, Result};
pub use crate::store::{FolderCounts, RemovedFolder};

impl Library {
    /// Each of the library's folders with how many photos it holds, indexed, waiting and with
    /// problems.
    pub fn folders(&self) -> Result<Vec<FolderCounts>> {
        self.store.folder_counts()
    }

    /// Removes the library folder `folder` (as it was added, or any path naming the same
    /// folder) and the photos under it that no other library folder holds; a person's
    /// decisions on them are kept for when they come back. Refused while another cliptag
    /// indexes the library (its run would add the photos back).
    pub fn remove_folder(&mut self, folder: &Path) -> Result<RemovedFolder> {
        let _no_index = super::index::lock::IndexLock::take(self.store.path())?;
        let root = self.library_folder(folder)?;
        let removed = self.store.remove_root(&root)?;
        if removed.photos > 0 {
            self.scores.matrix = None;
            self.scores.columns.clear();
        }
        Ok(removed)
    }

    /// The stored library folder that `folder` names: the same path, or the same folder
    /// reached another way (a trailing slash, a relative path, a link).
    fn library_folder(&self, folder: &Path) -> Result<PathBuf> {
        let roots = self.store.roots()?;
        if let Some(root) = roots.iter().find(|root| root.as_path() == folder) {
            return Ok(root.clone());
        }
        // A folder gone from disk cannot be resolved, but a relative path to it still names it.
        if let Ok(absolute) = std::path::absolute(folder).map(|p| lexically_normal(&p))
            && let Some(root) = roots.iter().find(|root| root.as_path() == absolute)
        {
            return Ok(root.clone());
        }
        let canonical = folder.canonicalize().ok();
        if let Some(canonical) = &canonical
            && let Some(root) = roots.iter().find(|root| {
                root.as_path() == canonical.as_path()
                    || root.canonicalize().ok().as_deref() == Some(canonical.as_path())
            })
        {
            return Ok(root.clone());
        }
        let listed: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        Err(Error::invalid(if listed.is_empty() {
            format!(
                "{} is not one of the library's folders: it has none",
                folder.display()
            )
        } else {
            format!(
                "{} is not one of the library's folders ({})",
                folder.display(),
                listed.join(", ")
            )
        }))
    }
}

/// `path` with `.` and `..` resolved by their names alone (the folder may be gone from disk,
/// so nothing can be asked of the file system).
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `n` and the noun for it: "1 photo", "2 photos".
pub fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// What removing a label did, in words, as the command line and the app say it.
pub fn removed_label_words(name: &str, decisions: usize) -> String {
    match decisions {
        0 => format!("removed {name:?} and its tags"),
        n => format!(
            "removed {name:?}, its tags and the {} you made on it",
            count(n as u64, "decision", "decisions")
        ),
    }
}

/// What removing a folder did, in words, as the command line and the app say it.
pub fn removed_folder_summary(removed: &RemovedFolder) -> String {
    let mut text = format!(
        "removed {} from the library with its {}, the files staying on disk",
        removed.path.display(),
        count(removed.photos, "photo", "photos"),
    );
    if let Some(within) = &removed.within {
        text += &format!(
            "; its photos stay in the library as part of {}",
            within.display()
        );
    }
    match removed.decisions_kept {
        0 => {}
        1 => {
            text += "; the decision you made on them is kept and comes back when you add the \
                      folder again"
        }
        n => {
            text += &format!(
                "; the {n} decisions you made on them are kept and come back when you add the \
                 folder again"
            )
        }
    }
    if removed.decisions_carried > 0 {
        text += &format!(
            "; {} on photos gone from the folder moved to their copies that stay",
            count(removed.decisions_carried, "decision", "decisions")
        );
    }
    if removed.photos > 0 {
        text += "; Undo does not bring a folder back: add it again";
    }
    text
}
