//! Finding the photos in a person's folders.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::imaging::is_photo;

/// Extensions of the formats cliptag decodes.
const IMAGE_EXTENSIONS: [&str; 8] = ["jpg", "jpeg", "jpe", "png", "webp", "gif", "bmp", "tif"];
const MORE_IMAGE_EXTENSIONS: [&str; 4] = ["tiff", "heic", "heif", "hif"];

/// A candidate image file with its fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundFile {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    /// The file's identity on the file system (its inode; `None` where there is none).
    pub inode: Option<u64>,
}

/// A file's inode, which changes at a path when files swap names there.
#[cfg(unix)]
fn inode(metadata: &std::fs::Metadata) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    Some(metadata.ino())
}

/// Elsewhere no such number is read.
#[cfg(not(unix))]
fn inode(_metadata: &std::fs::Metadata) -> Option<u64> {
    None
}

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<FoundFile>,
    /// Folders or files that could not be read.
    pub errors: Vec<Error>,
    /// Folders whose list of files could not be read (wholly or in part): what the library
    /// knows under them is not missing, only unseen.
    pub unreadable: Vec<PathBuf>,
}

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

/// Whether `path` is an image file cliptag indexes: by its extension, or by its content when the
/// extension says nothing (a photo saved without one still counts). A file with an image
/// extension is always taken, so that a broken one is reported rather than silently skipped.
pub fn is_candidate(path: &Path) -> bool {
    match extension(path) {
        Some(ext)
            if IMAGE_EXTENSIONS.contains(&ext.as_str())
                || MORE_IMAGE_EXTENSIONS.contains(&ext.as_str())
                || crate::imaging::raw::is_raw_extension(&ext)
                || crate::imaging::raw::unsupported(&ext).is_some() =>
        {
            true
        }
        _ => sniff(path),
    }
}

fn sniff(path: &Path) -> bool {
    let mut head = [0u8; 32];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    is_photo(&head[..filled])
}

/// The modification time of `metadata` in nanoseconds since the Unix epoch.
pub fn mtime_ns(metadata: &std::fs::Metadata) -> i64 {
    metadata
        .modified()
        .ok()
        .and_then(|t| match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).ok(),
            Err(e) => i64::try_from(e.duration().as_nanos()).ok().map(|n| -n),
        })
        .unwrap_or(0)
}

/// Walks `root` for image files: hidden files and folders (names starting with `.`) are skipped,
/// symbolic links to files are followed, symbolic links to folders are not (so a link loop can
/// never trap the walk).
pub fn walk(root: &Path, stop: &dyn Fn() -> bool) -> Walk {
    let mut out = Walk::default();
    let mut stack = vec![root.to_path_buf()];
    let mut seen_dirs = HashSet::new();
    while let Some(dir) = stack.pop() {
        if stop() {
            break;
        }
        // A folder reached twice (bind mounts, hard-linked folders on some systems) is walked once.
        if let Ok(canonical) = dir.canonicalize()
            && !seen_dirs.insert(canonical)
        {
            continue;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                out.errors.push(Error::io(&dir, e));
                out.unreadable.push(dir);
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    out.errors.push(Error::io(&dir, e));
                    if !out.unreadable.contains(&dir) {
                        out.unreadable.push(dir.clone());
                    }
                    continue;
                }
            };
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                subdirs.push(path);
                continue;
            }
            // Follows a link to a file; a link to a folder reports as a folder here and is skipped.
            let metadata = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    if !file_type.is_symlink() {
                        out.errors.push(Error::io(&path, e));
                    }
                    continue;
                }
            };
            if !metadata.is_file() || !is_candidate(&path) {
                continue;
            }
            out.files.push(FoundFile {
                path,
                size: metadata.len(),
                mtime_ns: mtime_ns(&metadata),
                inode: inode(&metadata),
            });
        }
        subdirs.sort();
        stack.extend(subdirs.into_iter().rev());
    }
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    out
}
