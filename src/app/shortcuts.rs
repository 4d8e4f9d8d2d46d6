//! The keyboard, said on screen: a hint line while a label is reviewed, and every key on one
//! sheet (F1).

use super::CliptagApp;

/// Every key the app answers to, as the sheet lists them.
pub const SHORTCUTS: &[(&str, &str)] = &[
    ("Arrow keys", "move through the gallery"),
    ("Page Up / Page Down", "a screen up or down"),
    ("Home / End", "the first or last photo"),
    ("Ctrl+A", "pick every photo shown"),
    ("Ctrl+click, Shift+click", "pick photos for one decision"),
    (
        "A",
        "accept the reviewed label on the selected (or picked) photos",
    ),
    ("R", "reject it"),
    ("Ctrl+Z", "undo your last decision or label edit"),
    ("Ctrl+Shift+Z, Ctrl+Y", "redo it"),
    (
        "Up, Down in the vocabulary",
        "move through labels; Right opens a group, Left closes it",
    ),
    ("Enter in the vocabulary", "edit the label"),
    ("F1", "this sheet"),
];

/// The line above a gallery filtered to one label.
pub const REVIEW_HINT: &str = "A accept · R reject · Ctrl+Z undo · arrows move · F1 all keys";

impl CliptagApp {
    /// F1 opens and closes the sheet, Escape closes it.
    pub(super) fn shortcuts_window(&mut self, ctx: &egui::Context) {
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::NONE, egui::Key::F1)) {
            self.windows.show_shortcuts = !self.windows.show_shortcuts;
        }
        if self.windows.show_shortcuts && ctx.input(|i| i.key_pressed(egui::Key::Escape)) {
            self.windows.show_shortcuts = false;
        }
        let mut open = self.windows.show_shortcuts;
        super::floating("Keyboard shortcuts", ctx)
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .show(ctx, |ui| {
                egui::Grid::new("shortcuts")
                    .num_columns(2)
                    .spacing([16.0, 4.0])
                    .show(ui, |ui| {
                        for (keys, what) in SHORTCUTS {
                            ui.strong(*keys);
                            ui.label(*what);
                            ui.end_row();
                        }
                    });
            });
        self.windows.show_shortcuts &= open;
    }
}
