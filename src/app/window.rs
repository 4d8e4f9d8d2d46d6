//! The window itself: fitted to the screen it opens on.

use super::CliptagApp;

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
