//! One indexer at a time per library: two runs over the same folders would both find the same
//! new files and race to record them. The lock is an advisory lock on a small file beside the
//! database, which the system releases when the process ends however it ends.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Held while a run indexes the library; dropping it lets the next one in.
#[derive(Debug)]
pub(crate) struct IndexLock {
    /// The open lock file: the lock lasts as long as it is open.
    _file: Option<std::fs::File>,
}

/// The lock file beside the library database `db`.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(".index-lock");
    PathBuf::from(name)
}

impl IndexLock {
    /// Takes the library's index lock, or says that another cliptag is indexing it. An
    /// in-memory library (no file) needs none; where the lock file cannot be made (a read-only
    /// folder) the run goes on without one, as writing will tell what is wrong.
    pub(crate) fn take(db: &Path) -> Result<Self> {
        if db.as_os_str() == ":memory:" {
            return Ok(IndexLock { _file: None });
        }
        // The database's real path: a link to it, or another spelling, takes the same lock.
        let real = db.canonicalize().unwrap_or_else(|_| db.to_path_buf());
        let path = lock_path(&real);
        let Ok(file) = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
        else {
            return Ok(IndexLock { _file: None });
        };
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock only reads the descriptor, which `file` keeps open.
            let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if taken != 0 {
                return Err(Error::invalid(format!(
                    "another cliptag is indexing the library {} (the app or a `cliptag index`): \
                     try again when it has finished",
                    db.display()
                )));
            }
        }
        Ok(IndexLock { _file: Some(file) })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_second_indexer_is_told_and_the_next_one_gets_in() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lib.sqlite");
        let first = IndexLock::take(&db).unwrap();
        let error = IndexLock::take(&db).unwrap_err().to_string();
        assert!(error.contains("another cliptag is indexing"), "{error}");
        drop(first);
        assert!(IndexLock::take(&db).is_ok());
    }
}
