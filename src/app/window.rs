//! The window itself: opened on a library with cliptag's icon and app id, and fitted to the
//! screen it opens on.

use std::path::PathBuf;
use std::sync::Arc;

use super::{CliptagApp, Settings, signals};
use crate::worker;

impl CliptagApp {
    /// On a screen smaller than the window's first size (a 13-inch laptop at 1024×640), the
    /// window is maximised once, so that its status bar is not below the screen's edge.
    pub(super) fn fit_to_screen(&mut self, ctx: &egui::Context) {
        if self.fitted {
            return;
        }
        let (monitor, outer) = ctx.input(|i| (i.viewport().monitor_size, i.viewport().outer_rect));
        let (Some(monitor), Some(outer)) = (monitor, outer) else {
            return;
        };
        self.fitted = true;
        // A window manager that clamps a too-large window to the screen leaves it exactly as
        // tall as the screen, under its title bar and beside any panel: the status bar is then
        // off screen. Such a window is maximised too, which fits it to what the desktop leaves.
        const DECORATIONS: f32 = 64.0;
        if outer.width() > monitor.x || outer.height() > monitor.y - DECORATIONS {
            ctx.send_viewport_cmd(egui::ViewportCommand::Maximized(true));
        }
    }
}

/// The library the app opens: `--db`, else the one it had open last, else the default one. A
/// relative `--db` is made whole: the app remembers the library for its next start, which may be
/// from another folder (the launcher's), and About opens its folder.
pub fn library_path(db: Option<PathBuf>, remembered: Option<PathBuf>) -> PathBuf {
    db.map(|db| std::path::absolute(&db).unwrap_or(db))
        .or(remembered)
        .unwrap_or_else(crate::library::default_db_path)
}

/// "the folder X" or "3 folders" for the status line.
pub(super) fn describe_paths(paths: &[PathBuf]) -> String {
    match paths {
        [one] => one.display().to_string(),
        many => format!("{} folders and photos", many.len()),
    }
}

/// cliptag's icon for the window (the desktop's task switcher), from the PNG made from
/// `assets/icons/io.github.cliptag.Cliptag.svg`.
pub fn window_icon() -> egui::IconData {
    const PNG: &[u8] =
        include_bytes!("../../assets/icons/hicolor/256x256/apps/io.github.cliptag.Cliptag.png");
    match image::load_from_memory_with_format(PNG, image::ImageFormat::Png) {
        Ok(icon) => {
            let icon = icon.to_rgba8();
            egui::IconData {
                width: icon.width(),
                height: icon.height(),
                rgba: icon.into_raw(),
            }
        }
        // The icon is part of the binary; a window without it still works.
        Err(_) => egui::IconData::default(),
    }
}

/// Opens the desktop app on `db` (or the last library, or the default one), adding the folders
/// (or the folders of the photos) in `open` to it.
pub fn run(db: Option<PathBuf>, model: Option<String>, open: Vec<PathBuf>) -> anyhow::Result<()> {
    #[cfg(all(unix, not(target_os = "macos")))]
    if std::env::var_os("DISPLAY").is_none() && std::env::var_os("WAYLAND_DISPLAY").is_none() {
        anyhow::bail!(
            "no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); \
             the commands work without one: see cliptag --help"
        );
    }
    let signals = signals::watch();
    crate::log::record_panics();
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("cliptag")
            // The desktop ties the window to cliptag's launcher and icon by this id (the Wayland
            // app id, the X11 window class).
            .with_app_id(crate::paths::APP_ID)
            .with_icon(std::sync::Arc::new(window_icon()))
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([720.0, 480.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Glow,
        // In the config folder; eframe's own default would be the data folder, beside the
        // library.
        persistence_path: crate::paths::settings_file(),
        ..Default::default()
    };
    eframe::run_native(
        "cliptag",
        options,
        Box::new(move |cc| {
            let settings: Settings = cc
                .storage
                .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
                .unwrap_or_default();
            let db = library_path(db, settings.db.clone());
            let ctx = cc.egui_ctx.clone();
            signals.set(Arc::new(move || {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                ctx.request_repaint();
            }));
            let ctx = cc.egui_ctx.clone();
            let waker: worker::Waker = Arc::new(move || ctx.request_repaint());
            let mut app = CliptagApp::new(
                waker,
                settings,
                db,
                model,
                Box::new(crate::library::ClipLoader),
            );
            app.open_paths(open);
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
