//! Tags out: CSV (a table per image, a long table per tag, or exiftool's import form) and XMP
//! sidecars, from the tags the library core gathers. Photos themselves are never opened for
//! writing.

pub mod csv;
pub mod xmp;

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::TagRow;

/// Writes `bytes` to `path` through a temporary file in the same folder that is renamed into
/// place, so a reader (or a crash) never sees half a file and a failure leaves the old file as
/// it was.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::io(
            &dir,
            std::io::Error::new(std::io::ErrorKind::NotFound, "folder does not exist"),
        ));
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} is not a file name", path.display())))?;
    let temp = dir.join(format!(
        ".{}.cliptag-{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        file.write_all(bytes).map_err(|e| Error::io(&temp, e))?;
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        std::fs::rename(&temp, path).map_err(|e| Error::io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

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
