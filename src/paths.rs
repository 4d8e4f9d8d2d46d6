//! Where cliptag keeps its files, as the desktop expects them (the XDG base directories on Linux,
//! their counterparts elsewhere):
//!
//! - settings (window layout, the last library) in the config folder (`~/.config/cliptag/`);
//! - the library database in the data folder (`~/.local/share/cliptag/`);
//! - thumbnails in the cache folder (`~/.cache/cliptag/`): they can always be made again, so
//!   backup tools that skip caches lose nothing;
//! - the log in the state folder (`~/.local/state/cliptag/`).
//!
//! The desktop finds cliptag's launcher, icon and window by one id, [`APP_ID`].

use std::path::PathBuf;

/// cliptag's application id: the name of its `.desktop` file, its icon and its metainfo, and the
/// window's app id (Wayland) and class (X11), so the desktop ties the window to its launcher.
pub const APP_ID: &str = "io.github.cliptag.Cliptag";

fn project() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("io.github", "cliptag", "cliptag")
}

/// Settings: `~/.config/cliptag` on Linux.
pub fn config_dir() -> Option<PathBuf> {
    project().map(|p| p.config_dir().to_path_buf())
}

/// The default library's folder: `~/.local/share/cliptag` on Linux.
pub fn data_dir() -> Option<PathBuf> {
    project().map(|p| p.data_dir().to_path_buf())
}

/// Thumbnails: `~/.cache/cliptag` on Linux.
pub fn cache_dir() -> Option<PathBuf> {
    project().map(|p| p.cache_dir().to_path_buf())
}

/// The log: `~/.local/state/cliptag` on Linux; the data folder where a platform has no state
/// folder.
pub fn state_dir() -> Option<PathBuf> {
    project().map(|p| p.state_dir().unwrap_or(p.data_dir()).to_path_buf())
}

/// The app's settings file. Before this folder layout the app kept it in the data folder; a
/// settings file found there is moved once, so nobody loses their layout or last library.
pub fn settings_file() -> Option<PathBuf> {
    let file = config_dir()?.join("app.ron");
    if !file.exists()
        && let Some(old) = data_dir().map(|d| d.join("app.ron"))
        && old.exists()
        && file
            .parent()
            .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
        && std::fs::rename(&old, &file).is_err()
    {
        // Another file system: copy, and keep the old one rather than lose it.
        let _ = std::fs::copy(&old, &file);
    }
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    Some(file)
}

/// The app's log: what went wrong in the worker and in the window, for a problem report.
pub fn log_file() -> Option<PathBuf> {
    state_dir().map(|d| d.join("cliptag.log"))
}
