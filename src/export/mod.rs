//! Tags out: CSV (a table per image, a long table per tag, or exiftool's import form) and XMP
//! sidecars, from the tags the library core gathers. Photos themselves are never opened for
//! writing.

pub mod csv;
pub mod target;
pub mod xmp;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::store::TagRow;

/// Writes `bytes` to `path` through a temporary file in the same folder that is renamed into
/// place, so a reader (or a crash) never sees half a file and a failure leaves the old file as
/// it was.
///
/// A file that exists keeps its permission bits and (where the process may set them) its owner
/// and group. A symbolic link is written through: its target is replaced, the link stays. The
/// file and its folder are flushed to disk before this returns. Temporary names are short
/// (`.cliptag-<process>-<n>.tmp`), whatever the length of the file's own name.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    // Write through a link: the file it points at is the one replaced.
    let target = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?
        }
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::io(
            &dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "folder does not exist"),
        ));
    }
    if target.file_name().is_none() {
        return Err(Error::invalid(format!(
            "{} is not a file name",
            path.display()
        )));
    }
    remove_stale_temporaries(&dir);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".cliptag-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let existing = std::fs::metadata(&target).ok();
    let result = (|| {
        let mut file = std::fs::File::create(&temp).map_err(|e| Error::io(path, e))?;
        file.write_all(bytes).map_err(|e| Error::io(path, e))?;
        if let Some(meta) = &existing {
            file.set_permissions(meta.permissions())
                .map_err(|e| Error::io(&temp, e))?;
            keep_owner(&temp, meta);
        }
        file.sync_all().map_err(|e| Error::io(path, e))?;
        std::fs::rename(&temp, &target).map_err(|e| Error::io(path, e))?;
        // The rename is durable only once the folder is flushed too.
        if let Ok(folder) = std::fs::File::open(&dir) {
            let _ = folder.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Gives `path` the owner and group `meta` names, where the process may (a person's own files
/// always; another user's only as root).
#[cfg(unix)]
fn keep_owner(path: &Path, meta: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let _ = std::os::unix::fs::chown(path, Some(meta.uid()), Some(meta.gid()));
}

#[cfg(not(unix))]
fn keep_owner(_path: &Path, _meta: &std::fs::Metadata) {}

/// How exported paths are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathStyle {
    /// As stored: absolute.
    #[default]
    Absolute,
    /// Relative to the library folder that holds the photo.
    Relative,
}

/// One photo's tags, ready for export.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageTags {
    pub path: PathBuf,
    /// Tags that apply (automatic, accepted, manual), ordered by label.
    pub tags: Vec<TagRow>,
}

/// `path` relative to the deepest root holding it, when asked for and possible.
pub fn styled_path(path: &Path, roots: &[PathBuf], style: PathStyle) -> String {
    if style == PathStyle::Relative {
        let p = path;
        if let Some(relative) = roots
            .iter()
            .filter(|r| p.starts_with(r))
            .max_by_key(|r| r.as_os_str().len())
            .and_then(|r| p.strip_prefix(r).ok())
        {
            return relative.to_string_lossy().into_owned();
        }
    }
    path.to_string_lossy().into_owned()
}

/// Removes, once per folder and process, the temporary files an earlier cliptag left in `dir`
/// when it was killed mid-write (`.cliptag-PID-N.tmp` of a process that no longer runs): they
/// are cliptag's own, never a person's, and would otherwise stay beside their photos for good.
fn remove_stale_temporaries(dir: &Path) {
    static CLEANED: std::sync::Mutex<Option<std::collections::HashSet<PathBuf>>> =
        std::sync::Mutex::new(None);
    {
        let mut cleaned = CLEANED.lock().unwrap_or_else(|p| p.into_inner());
        if !cleaned
            .get_or_insert_with(Default::default)
            .insert(dir.to_path_buf())
        {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(".cliptag-"))
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.split_once('-'))
            .filter(|(_, n)| n.chars().all(|c| c.is_ascii_digit()))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_runs(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id runs (on systems where that cannot be asked: assume it does).
fn process_runs(pid: u32) -> bool {
    #[cfg(target_os = "linux")]
    {
        Path::new("/proc").join(pid.to_string()).exists()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        true
    }
}
