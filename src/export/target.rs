//! Where an export may write. A CSV or a vocabulary file goes to a new path or replaces a regular
//! file; a named pipe or `-` (standard output) is written through. Anything else (a device, a
//! folder, a socket) is refused, and so are the library's own files and the photos: an export must
//! never destroy what it was asked to describe.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What an export writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A new file, or a regular file replaced atomically (through a link where it is one).
    File(PathBuf),
    /// A named pipe, written through and never replaced.
    Pipe(PathBuf),
    /// Standard output (`-`).
    Stdout,
}

impl Target {
    /// What `path` is as an export target; refuses what is neither a regular file, a new path, a
    /// named pipe nor `-`, saying why.
    pub fn of(path: &Path) -> Result<Self> {
        if path.as_os_str() == "-" {
            return Ok(Target::Stdout);
        }
        // Links are followed: what matters is what would be written.
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Target::File(path.to_path_buf()));
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        let kind = meta.file_type();
        if kind.is_file() {
            return Ok(Target::File(path.to_path_buf()));
        }
        if kind.is_dir() {
            return Err(refused(path, "it is a folder; give a file name"));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if kind.is_fifo() {
                return Ok(Target::Pipe(path.to_path_buf()));
            }
            if kind.is_char_device() || kind.is_block_device() {
                return Err(refused(path, "it is a device, not a file"));
            }
        }
        Err(refused(path, "it is not a regular file"))
    }

    /// Writes `bytes` to the target: a file atomically (the old one stays where the write
    /// fails, a full disk included), a pipe or standard output through, every byte flushed.
    pub fn write(&self, bytes: &[u8]) -> Result<()> {
        match self {
            Target::File(path) => super::write_atomically(path, bytes),
            Target::Pipe(path) => {
                let mut pipe = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| Error::io(path, e))?;
                pipe.write_all(bytes).map_err(|e| Error::io(path, e))?;
                pipe.flush().map_err(|e| Error::io(path, e))
            }
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::io("standard output", e))
            }
        }
    }

    /// Whether the target is a file that `path` names too (the same file, through any link or
    /// spelling). False for files that do not exist.
    pub fn is_same_file(&self, other: &Path) -> bool {
        match self {
            Target::File(path) | Target::Pipe(path) => same_file(path, other),
            Target::Stdout => false,
        }
    }

    /// The path written, for messages (`-` for standard output).
    pub fn display(&self) -> String {
        match self {
            Target::File(path) | Target::Pipe(path) => path.display().to_string(),
            Target::Stdout => "standard output".into(),
        }
    }
}

/// Whether `a` and `b` name one existing file, or one path where neither exists yet.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => identity(&a) == identity(&b),
        (Err(_), Err(_)) => match (resolved(a), resolved(b)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

/// An absolute path with its folder's links resolved, for a file that may not exist yet.
pub fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    let name = absolute.file_name()?;
    let folder = absolute.parent()?.canonicalize().ok()?;
    Some(folder.join(name))
}

#[cfg(unix)]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn identity(meta: &std::fs::Metadata) -> (u64, u64) {
    // Without inode numbers, size and modification time stand in; paths are compared as well.
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64);
    (meta.len(), modified)
}

/// The refusal for writing `path`.
pub fn refused(path: &Path, why: &str) -> Error {
    Error::invalid(format!("refusing to write {}: {why}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn new_paths_and_files_are_files_pipes_are_written_through_and_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("tags.csv");
        assert_eq!(Target::of(&new).unwrap(), Target::File(new.clone()));
        std::fs::write(&new, "old").unwrap();
        assert_eq!(Target::of(&new).unwrap(), Target::File(new.clone()));
        assert_eq!(Target::of(Path::new("-")).unwrap(), Target::Stdout);
        let error = Target::of(dir.path()).unwrap_err().to_string();
        assert!(error.contains("it is a folder"), "{error}");
        let error = Target::of(Path::new("/dev/null")).unwrap_err().to_string();
        assert!(error.contains("it is a device"), "{error}");
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        let error = Target::of(&link).unwrap_err().to_string();
        assert!(error.contains("it is a device"), "{error}");
    }

    #[test]
    fn one_file_is_the_same_through_a_link_and_another_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("library.sqlite");
        std::fs::write(&file, "x").unwrap();
        let link = dir.path().join("other-name");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(same_file(&file, &link));
        assert!(same_file(&file, &dir.path().join("./library.sqlite")));
        assert!(!same_file(&file, &dir.path().join("else")));
        let wal = dir.path().join("library.sqlite-wal");
        assert!(same_file(
            &wal,
            &dir.path().join(".").join("library.sqlite-wal")
        ));
    }
}
