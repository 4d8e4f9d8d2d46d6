//! The app's log (`~/.local/state/cliptag/cliptag.log` on Linux): every error the window shows
//! and every panic, with the time, so that a problem report can say what happened after the
//! status bar has moved on. Written on a thread of its own: the window never waits for the disk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The log is started again (the old one kept as `cliptag.log.old`) past this size.
const LIMIT_BYTES: u64 = 1 << 20;

static WRITER: OnceLock<Option<crossbeam_channel::Sender<String>>> = OnceLock::new();

/// Appends `line` to the log, with the time; nothing happens where there is no state folder.
pub fn record(line: impl Into<String>) {
    let writer = WRITER.get_or_init(|| {
        let path = crate::paths::log_file()?;
        let (tx, rx) = crossbeam_channel::unbounded::<String>();
        std::thread::Builder::new()
            .name("cliptag-log".into())
            .spawn(move || {
                for line in rx {
                    append(&path, &line);
                }
            })
            .ok()?;
        Some(tx)
    });
    if let Some(tx) = writer {
        let _ = tx.send(stamped(&line.into()));
    }
}

/// Logs panics (a bug in cliptag) before the default report on stderr, written at once: the
/// process may be ending.
pub fn record_panics() {
    let Some(path) = crate::paths::log_file() else {
        return;
    };
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        append(
            &path,
            &stamped(&format!(
                "panic in thread {}: {info}",
                thread.name().unwrap_or("unnamed")
            )),
        );
        default(info);
    }));
}

fn stamped(line: &str) -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{} {line}", utc(seconds))
}

/// `seconds` since the Unix epoch as an ISO 8601 UTC time.
fn utc(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let rest = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn append(path: &Path, line: &str) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if std::fs::metadata(path).is_ok_and(|m| m.len() > LIMIT_BYTES) {
        let mut old = path.as_os_str().to_os_string();
        old.push(".old");
        let _ = std::fs::rename(path, PathBuf::from(old));
    }
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{}", line.replace('\n', " / "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_in_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_796_601_599), "2026-12-06T23:59:59Z");
    }

    #[test]
    fn the_log_keeps_within_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cliptag.log");
        std::fs::write(&path, vec![b'x'; LIMIT_BYTES as usize + 1]).unwrap();
        append(&path, "first\nline");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "first / line\n");
        assert!(dir.path().join("cliptag.log.old").exists());
    }
}
