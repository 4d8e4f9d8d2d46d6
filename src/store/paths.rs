//! Paths as the database keeps them: the file system's own bytes, so that a file whose name is
//! not valid UTF-8 (an old camera's card, a Windows share mounted with another code page) is
//! indexed like any other. Shown to a person, such a name is written lossily.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

/// The bytes of `path` as the database stores them.
#[cfg(unix)]
pub fn path_bytes(path: &Path) -> Cow<'_, [u8]> {
    use std::os::unix::ffi::OsStrExt;
    Cow::Borrowed(path.as_os_str().as_bytes())
}

/// The bytes of `path` as the database stores them.
#[cfg(not(unix))]
pub fn path_bytes(path: &Path) -> Cow<'_, [u8]> {
    // Windows names are UTF-16; the rare unpaired surrogate is written lossily.
    match path.to_string_lossy() {
        Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
        Cow::Owned(text) => Cow::Owned(text.into_bytes()),
    }
}

/// The path stored as `bytes`.
#[cfg(unix)]
pub fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(bytes))
}

/// The path stored as `bytes`.
#[cfg(not(unix))]
pub fn path_from_bytes(bytes: Vec<u8>) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_utf8_round_trip() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"/photos/caf\xe9.jpg"));
        assert_eq!(path_from_bytes(path_bytes(path).into_owned()), path);
    }
}
