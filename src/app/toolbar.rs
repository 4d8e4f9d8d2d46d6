//! The toolbar (adding and managing folders, updating, exporting, the model, undo and redo, search), the
//! welcome of an empty library, and the undo keys.

use super::{CliptagApp, DialogKind, DialogResult};
use crate::library::{Direction, ModelStatus};
use crate::worker::Command;
use std::time::Instant;

impl CliptagApp {
    /// Ctrl+Z undoes the last step of the person's decisions, Ctrl+Shift+Z (or Ctrl+Y) redoes
    /// it; a text field being typed in keeps the keys for its own undo.
    pub(super) fn history_keys(&mut self, ctx: &egui::Context) {
        if self.typing {
            return;
        }
        let shortcut = |modifiers, key| egui::KeyboardShortcut::new(modifiers, key);
        let redo = ctx.input_mut(|i| {
            i.consume_shortcut(&shortcut(
                egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
                egui::Key::Z,
            )) || i.consume_shortcut(&shortcut(egui::Modifiers::COMMAND, egui::Key::Y))
        });
        let undo = !redo
            && ctx.input_mut(|i| {
                i.consume_shortcut(&shortcut(egui::Modifiers::COMMAND, egui::Key::Z))
            });
        if undo {
            self.send(Command::History(Direction::Undo));
        } else if redo {
            self.send(Command::History(Direction::Redo));
        }
    }

    pub(super) fn toolbar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.toggle_value(&mut self.settings.show_vocabulary, "Vocabulary")
                .on_hover_text("Show or fold away the vocabulary panel");
            ui.toggle_value(&mut self.settings.show_inspector, "Details")
                .on_hover_text(
                    "Show or fold away the details panel: the selected photo and the label being \
                     edited",
                );
            if ui.button("Open folder…").clicked() {
                self.dialog(DialogKind::Folder, || {
                    rfd::FileDialog::new()
                        .pick_folder()
                        .map(DialogResult::OpenFolder)
                });
            }
            if ui
                .button("Folders…")
                .on_hover_text(
                    "The library's folders, what each holds; add one by its path, or remove one",
                )
                .clicked()
            {
                self.windows.folders.open = !self.windows.folders.open;
                self.windows.folders.focus_path = self.windows.folders.open;
            }
            let has_roots = !self.snapshot.roots.is_empty();
            if ui
                .add_enabled(
                    has_roots && !self.link.indexing,
                    egui::Button::new("Update"),
                )
                .on_hover_text("Index new and changed photos in the library's folders")
                .clicked()
            {
                self.send(Command::Update);
            }
            if ui.button("Export tags…").clicked() {
                self.windows.show_export = !self.windows.show_export;
                self.windows.export_opened = Instant::now();
            }
            if ui
                .button("Model…")
                .on_hover_text("Which model tags this library, and a switch to another")
                .clicked()
            {
                self.windows.picker.open = !self.windows.picker.open;
            }
            ui.separator();
            let (undo, redo) = self.snapshot.history;
            if ui
                .add_enabled(undo > 0, egui::Button::new("Undo"))
                .on_hover_text("Undo the last decision or label edit (Ctrl+Z)")
                .on_disabled_hover_text("Nothing to undo")
                .clicked()
            {
                self.send(Command::History(Direction::Undo));
            }
            if ui
                .add_enabled(redo > 0, egui::Button::new("Redo"))
                .on_hover_text("Redo what was undone (Ctrl+Shift+Z)")
                .on_disabled_hover_text("Nothing undone to redo")
                .clicked()
            {
                self.send(Command::History(Direction::Redo));
            }
            ui.separator();
            self.search_ui(ui);
        });
        if let ModelStatus::Failed(reason) = &self.link.model {
            let reason = reason.clone();
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("The model is not available: {reason}"),
                );
            });
            ui.horizontal(|ui| {
                if ui.button("Retry").clicked() {
                    self.send(Command::LoadModel(None));
                }
                let label = ui.label("Model folder or hub id:");
                ui.add(
                    egui::TextEdit::singleline(&mut self.windows.model_text).desired_width(280.0),
                )
                .labelled_by(label.id);
                if ui.button("Use this model").clicked()
                    && !self.windows.model_text.trim().is_empty()
                {
                    self.send(Command::LoadModel(Some(
                        self.windows.model_text.trim().to_string(),
                    )));
                }
                if ui.button("Choose folder…").clicked() {
                    self.dialog(DialogKind::ModelFolder, || {
                        rfd::FileDialog::new()
                            .pick_folder()
                            .map(DialogResult::ModelFolder)
                    });
                }
            });
        }
    }

    pub(super) fn welcome_ui(&mut self, ui: &mut egui::Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(ui.available_height() * 0.25);
            ui.heading("Welcome to cliptag");
            ui.label("Tag your photos with your own words. cliptag runs CLIP on this computer; nothing leaves it.");
            ui.add_space(12.0);
            if ui.button("Open folder…").clicked() {
                self.dialog(DialogKind::Folder, || {
                    rfd::FileDialog::new().pick_folder().map(DialogResult::OpenFolder)
                });
            }
            ui.label("or drop a folder onto this window, or type its path:");
            ui.horizontal(|ui| {
                let width = 360.0;
                ui.add_space((ui.available_width() - width - 80.0).max(0.0) / 2.0);
                let label = ui.label("Folder");
                let edit = ui.add(egui::TextEdit::singleline(&mut self.windows.folder_text).desired_width(width));
                let edit = edit.labelled_by(label.id);
                let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                if (ui.button("Index").clicked() || enter) && !self.windows.folder_text.trim().is_empty() {
                    self.open_folder(super::folders::typed_path(&self.windows.folder_text));
                }
            });
        });
    }
}
