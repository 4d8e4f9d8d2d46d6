//! One indexer at a time per library: two runs over the same folders would both find the same
//! new files and race to record them. The lock is an advisory lock on a small file beside the
//! database, which the system releases when the process ends however it ends.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How often, and how far apart, a busy lock is asked for again.
const LOCK_TRIES: u32 = 50;
const LOCK_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

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
            // A lock released a moment ago can still be held for a few milliseconds: a process
            // forked by another thread (an exiftool, a file opener, a test's child) shares every
            // open file until it runs its program. So a busy lock is asked again for a second
            // before it counts as another cliptag's.
            let mut tries = 0;
            let taken = loop {
                // SAFETY: flock only reads the descriptor, which `file` keeps open.
                let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                tries += 1;
                if taken == 0 || tries >= LOCK_TRIES {
                    break taken;
                }
                std::thread::sleep(LOCK_RETRY);
            };
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
    fn a_lock_a_forked_child_still_shares_is_taken_once_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lib.sqlite");
        let first = IndexLock::take(&db).unwrap();
        // A copy of the locked file, as a child between its fork and its exec holds one, let go
        // of shortly after the run that held the lock finished.
        let shared = first._file.as_ref().unwrap().try_clone().unwrap();
        drop(first);
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(shared);
        });
        assert!(IndexLock::take(&db).is_ok());
        releaser.join().unwrap();
    }

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
