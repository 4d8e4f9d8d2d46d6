//! The sidebar: the vocabulary as a tree, and the prompt templates.

use std::collections::{HashMap, HashSet};

use super::editor::{GroupEditor, LabelEditor};
use super::tree::{self, Row};
use super::{CliptagApp, DialogKind, DialogResult};
use crate::domain::Label;
use crate::library::{GroupEdit, Preview};
use crate::worker::Command;

#[derive(Debug, Default)]
pub struct SidebarState {
    pub filter: String,
    pub new_label: String,
    pub editor: Option<LabelEditor>,
    pub group: Option<GroupEditor>,
    pub previews: HashMap<i64, Preview>,
    /// Why the last preview of a label failed (a contrast label without its negative prompt),
    /// shown in its editor until a preview succeeds: on the status bar it outlived the fix.
    pub preview_failed: HashMap<i64, String>,
    /// Groups shown open, by full name.
    pub expanded: HashSet<String>,
    /// The prompt templates being edited, one per line (none while closed).
    pub templates: Option<String>,
    /// The tree row with the keyboard focus, by what it shows (a group's name, a label's id),
    /// so that it stays on the same label through renames, moves and filtering.
    pub cursor: Option<RowKey>,
    /// Whether the keyboard moves through the tree (after a click on one of its rows) rather
    /// than through the gallery (after a click there, or on "show").
    pub has_keys: bool,
    /// The tree rows drawn last frame (only those in view are laid out), and the view's height.
    shown: (std::ops::Range<usize>, f32),
    /// Set when the keyboard moved the cursor: the tree scrolls to it.
    follow_cursor: bool,
    /// What was asked to open while the editor held changes not applied: opened once the
    /// person has applied or discarded them.
    pub(super) then_open: Option<Opening>,
}

/// A label or group to open in the editor.
#[derive(Debug, Clone)]
pub(super) enum Opening {
    Label(Label),
    Group(String),
}

impl SidebarState {
    /// Puts the stored `label` in the editor when it is the one being edited (after learning).
    pub fn replace_draft(&mut self, label: &Label) {
        if let Some(editor) = &mut self.editor
            && editor.draft.id == label.id
        {
            *editor = LabelEditor::new(label);
        }
    }
}

impl CliptagApp {
    pub(super) fn sidebar_ui(&mut self, ui: &mut egui::Ui) {
        ui.heading("Vocabulary");
        ui.horizontal(|ui| {
            let label = ui.label("Filter labels");
            ui.add(
                egui::TextEdit::singleline(&mut self.sidebar.filter).desired_width(f32::INFINITY),
            )
            .labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            let label = ui.label("New label");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.sidebar.new_label)
                        .hint_text("e.g. Animals/Dog")
                        // Beside its label and Add, within the panel at its narrowest.
                        .desired_width((ui.available_width() - 48.0).clamp(60.0, 140.0)),
                )
                .labelled_by(label.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Add").clicked() || enter) && !self.sidebar.new_label.trim().is_empty() {
                let mut label = Label::new(self.sidebar.new_label.trim(), &self.model_name());
                label.threshold = label
                    .mode
                    .default_threshold_in(self.snapshot.probability_scores);
                self.send(Command::AddLabel(label));
                self.sidebar.new_label.clear();
            }
        });
        // Wrapped, so the panel can be narrowed to its minimum.
        ui.horizontal_wrapped(|ui| {
            if ui
                .button("Import…")
                .on_hover_text("Merge a vocabulary file (TOML)")
                .clicked()
            {
                self.dialog(DialogKind::ImportVocabulary, || {
                    rfd::FileDialog::new()
                        .add_filter("vocabulary", &["toml"])
                        .pick_file()
                        .map(DialogResult::ImportVocabulary)
                });
            }
            if ui
                .button("Export…")
                .on_hover_text("Save the vocabulary as a TOML file")
                .clicked()
            {
                self.dialog(DialogKind::ExportVocabulary, || {
                    rfd::FileDialog::new()
                        .set_file_name("vocabulary.toml")
                        .save_file()
                        .map(DialogResult::ExportVocabulary)
                });
            }
            if ui
                .button("Re-tag")
                .on_hover_text("Recompute automatic tags from stored embeddings")
                .clicked()
            {
                self.send(Command::Retag);
            }
        });
        self.templates_ui(ui);
        ui.separator();

        let snapshot = self.snapshot.clone();
        let rows = tree::rows(
            &snapshot.labels,
            &snapshot.groups,
            &self.sidebar.expanded,
            &self.sidebar.filter,
        );
        self.tree_keys(ui, &rows, &snapshot);
        let editing = self.sidebar.editor.as_ref().map(|e| e.draft.id);
        let editing_group = self.sidebar.group.as_ref().map(|g| g.path.clone());
        // One highlight: what is open in the inspector; the keyboard's cursor is highlighted
        // only while nothing is open, and otherwise outlined.
        let nothing_open = editing.is_none() && editing_group.is_none();
        // Only the rows in view are laid out: a vocabulary of hundreds of labels costs a frame
        // no more than one of twenty.
        let row_height = ui.spacing().interact_size.y;
        // The full width of the panel: its scroll bar at the panel's edge, not after the widest row.
        let mut area = egui::ScrollArea::vertical()
            .id_salt("labels")
            .auto_shrink([false, true]);
        let cursor = cursor_position(&rows, &snapshot.labels, self.sidebar.cursor.as_ref());
        if std::mem::take(&mut self.sidebar.follow_cursor)
            && let Some(cursor) = cursor
        {
            let (shown, height) = self.sidebar.shown.clone();
            let step = row_height + ui.spacing().item_spacing.y;
            if cursor < shown.start + 1 {
                area = area.vertical_scroll_offset(cursor as f32 * step);
            } else if cursor + 1 >= shown.end {
                area = area.vertical_scroll_offset(((cursor + 1) as f32 * step - height).max(0.0));
            }
        }
        let output = area.show_rows(ui, row_height, rows.len(), |ui, range| {
            self.sidebar.shown.0 = range.clone();
            for (position, row) in rows.iter().enumerate().skip(range.start).take(range.len()) {
                let focused = cursor == Some(position);
                ui.horizontal(|ui| match row {
                    Row::Group {
                        path,
                        name,
                        depth,
                        count,
                        enabled,
                        expanded,
                        ..
                    } => {
                        ui.add_space(*depth as f32 * 14.0);
                        let arrow = if *expanded { "-" } else { "+" };
                        let what = if *expanded { "Collapse" } else { "Expand" };
                        let toggle = ui.small_button(arrow);
                        toggle.widget_info(|| {
                            egui::WidgetInfo::labeled(
                                egui::Role::Button,
                                true,
                                format!("{what} {path}"),
                            )
                        });
                        if toggle.on_hover_text(format!("{what} {path}")).clicked() {
                            self.sidebar.cursor = Some(RowKey::Group(path.clone()));
                            self.sidebar.has_keys = true;
                            self.toggle_group(path);
                        }
                        let mut all = enabled.0 == enabled.1;
                        let checkbox = egui::Checkbox::new(&mut all, "")
                            .indeterminate(enabled.0 > 0 && enabled.0 < enabled.1);
                        let response = ui.add(checkbox);
                        response.widget_info(|| {
                            egui::WidgetInfo::selected(
                                egui::Role::CheckBox,
                                true,
                                all,
                                format!("Use the group {path}"),
                            )
                        });
                        if response
                            .on_hover_text(format!(
                                "Use every label of {path} for tagging ({} of {} are)",
                                enabled.0, enabled.1
                            ))
                            .changed()
                        {
                            self.send(Command::EditGroup {
                                group: path.clone(),
                                edit: GroupEdit::Enable(all),
                            });
                        }
                        let text = egui::RichText::new(format!("{name} ({count})")).strong();
                        let selected =
                            editing_group.as_deref() == Some(path) || (focused && nothing_open);
                        let response = ui.selectable_label(selected, text);
                        if focused && !selected {
                            outline(ui, response.rect);
                        }
                        if response.clicked() {
                            self.sidebar.cursor = Some(RowKey::Group(path.clone()));
                            self.sidebar.has_keys = true;
                            self.open_group(path);
                        }
                    }
                    Row::Label { index, name, depth } => {
                        ui.add_space(*depth as f32 * 14.0 + 18.0);
                        let entry = &snapshot.labels[*index];
                        let label = &entry.label;
                        let mut enabled = label.enabled;
                        let response = ui.checkbox(&mut enabled, "");
                        response.widget_info(|| {
                            egui::WidgetInfo::selected(
                                egui::Role::CheckBox,
                                true,
                                enabled,
                                format!("Use {}", label.name),
                            )
                        });
                        if response
                            .on_hover_text(format!("Use {:?} for tagging", label.name))
                            .changed()
                        {
                            self.send(Command::UpdateLabel(Label {
                                enabled,
                                ..label.clone()
                            }));
                        }
                        let text = format!("{name} ({})", entry.count);
                        let selected = editing == Some(label.id) || (focused && nothing_open);
                        let response = ui.selectable_label(selected, text);
                        if focused && !selected {
                            outline(ui, response.rect);
                        }
                        if response.clicked() {
                            self.sidebar.cursor = Some(RowKey::Label(label.id));
                            self.sidebar.has_keys = true;
                            self.open_label(label);
                        }
                        if ui
                            .small_button("show")
                            .on_hover_text(format!("Show the photos tagged {:?}", label.name))
                            .clicked()
                        {
                            self.sidebar.has_keys = false;
                            self.gallery.toggle_tag(label.id);
                        }
                    }
                });
            }
        });
        self.sidebar.shown.1 = output.inner_rect.height();
    }

    /// The prompt templates, editable, with the prompts they give a label.
    fn templates_ui(&mut self, ui: &mut egui::Ui) {
        let open = self.sidebar.templates.is_some();
        let title = format!("Prompt templates ({})", self.snapshot.templates.len());
        if ui
            .selectable_label(open, title)
            .on_hover_text("How a label without prompts of its own becomes prompts")
            .clicked()
        {
            self.sidebar.templates = if open {
                None
            } else {
                Some(self.snapshot.templates.join("\n"))
            };
        }
        let Some(text) = &mut self.sidebar.templates else {
            return;
        };
        let label = ui.label("Templates, one per line; {} is the label");
        ui.add(
            egui::TextEdit::multiline(text)
                .desired_rows(3)
                .desired_width(f32::INFINITY),
        )
        .labelled_by(label.id);
        let templates: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        // What a label gets: the selected one, else the first without prompts of its own (the
        // labels the templates act on). A label with its own prompts keeps them, and says so.
        let example = self.sidebar.editor.as_ref().map(|e| e.label()).or_else(|| {
            let labels = &self.snapshot.labels;
            labels
                .iter()
                .find(|e| e.label.prompts.is_empty())
                .or(labels.first())
                .map(|e| e.label.clone())
        });
        if let Some(example) = example {
            let prompts = example.prompts(&templates);
            if example.prompts.is_empty() {
                ui.label(format!("{:?} becomes:", example.name));
            } else {
                ui.label(format!(
                    "{:?} has prompts of its own, which it keeps:",
                    example.name
                ));
            }
            // As many lines whichever label is shown, so the tree below does not jump when
            // another is selected.
            let lines = templates.len().clamp(1, 6);
            for at in 0..lines.max(prompts.len().min(6)) {
                ui.weak(match prompts.get(at) {
                    Some(prompt) => format!("  {prompt}"),
                    None => String::new(),
                });
            }
        }
        let changed = templates != self.snapshot.templates;
        ui.horizontal(|ui| {
            if ui
                .add_enabled(
                    changed && !templates.is_empty(),
                    egui::Button::new("Apply templates"),
                )
                .clicked()
            {
                self.send(Command::SetTemplates(templates.clone()));
            }
            if ui.button("Close templates").clicked() {
                self.sidebar.templates = None;
            }
        });
    }

    /// Opens or closes a group of the tree.
    fn toggle_group(&mut self, path: &str) {
        if !self.sidebar.expanded.remove(path) {
            self.sidebar.expanded.insert(path.to_string());
        }
    }

    /// Whether the editor holds changes not applied, which opening something else would drop:
    /// then it asks first (as its Close does) and opens `next` once they are applied or
    /// discarded.
    fn asks_before_opening(&mut self, next: Opening) -> bool {
        let Some(editor) = self.sidebar.editor.as_mut() else {
            return false;
        };
        if !editor.unsaved() || matches!(&next, Opening::Label(l) if l.id == editor.draft.id) {
            return false;
        }
        editor.asking_to_discard = true;
        self.sidebar.then_open = Some(next);
        self.inspector.tab = super::inspector::InspectorTab::Label;
        true
    }

    pub(super) fn open_label(&mut self, label: &Label) {
        if self.asks_before_opening(Opening::Label(label.clone())) {
            return;
        }
        self.sidebar.group = None;
        self.sidebar.editor = Some(LabelEditor::new(label));
        self.send(Command::PreviewLabel(label.clone()));
    }

    pub(super) fn open_group(&mut self, path: &str) {
        if self.asks_before_opening(Opening::Group(path.to_string())) {
            return;
        }
        self.sidebar.editor = None;
        self.sidebar.group = Some(GroupEditor {
            path: path.to_string(),
            new_path: path.to_string(),
            merge_into: None,
        });
    }

    /// Arrow keys move through the tree while no text field has the focus: up and down, right
    /// opens a group, left closes it, Enter edits the row.
    fn tree_keys(
        &mut self,
        ui: &egui::Ui,
        rows: &[Row],
        snapshot: &crate::library::LibrarySnapshot,
    ) {
        if rows.is_empty()
            || self.typing
            || ui.ctx().memory(|m| m.focused().is_some())
            || !self.sidebar.has_keys
        {
            return;
        }
        let pressed = |key| ui.input(|i| i.key_pressed(key));
        let last = rows.len() - 1;
        let key = |at: usize| Some(RowKey::of(&rows[at], &snapshot.labels));
        let cursor = cursor_position(rows, &snapshot.labels, self.sidebar.cursor.as_ref())
            .unwrap_or(0)
            .min(last);
        if pressed(egui::Key::ArrowDown) {
            self.sidebar.cursor = key((cursor + 1).min(last));
            self.sidebar.follow_cursor = true;
        } else if pressed(egui::Key::ArrowUp) {
            self.sidebar.cursor = key(cursor.saturating_sub(1));
            self.sidebar.follow_cursor = true;
        } else if pressed(egui::Key::ArrowRight) || pressed(egui::Key::ArrowLeft) {
            if let Row::Group { path, expanded, .. } = &rows[cursor] {
                let open = pressed(egui::Key::ArrowRight);
                if open != *expanded {
                    self.toggle_group(path);
                }
            }
            self.sidebar.cursor = key(cursor);
        } else if pressed(egui::Key::Enter) {
            match &rows[cursor] {
                Row::Group { path, .. } => self.open_group(path),
                Row::Label { index, .. } => self.open_label(&snapshot.labels[*index].label),
            }
        }
    }

    /// The model the library uses, for the default threshold of new labels.
    fn model_name(&self) -> String {
        match &self.link.model {
            crate::library::ModelStatus::Ready(name) => name.clone(),
            _ => String::new(),
        }
    }
}

/// Marks the keyboard's cursor on a row that is not the highlighted one.
fn outline(ui: &egui::Ui, rect: egui::Rect) {
    ui.painter().rect_stroke(
        rect.expand(1.0),
        2.0,
        ui.visuals().selection.stroke,
        egui::StrokeKind::Outside,
    );
}

/// What a tree row shows, as the keyboard cursor remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    /// A group, by its full name.
    Group(String),
    /// A label, by its id.
    Label(i64),
}

impl RowKey {
    pub fn of(row: &Row, labels: &[crate::library::LabelEntry]) -> Self {
        match row {
            Row::Group { path, .. } => RowKey::Group(path.clone()),
            Row::Label { index, .. } => RowKey::Label(labels[*index].label.id),
        }
    }
}

/// Where the cursor's row is among the rows shown, if it is shown.
fn cursor_position(
    rows: &[Row],
    labels: &[crate::library::LabelEntry],
    cursor: Option<&RowKey>,
) -> Option<usize> {
    let cursor = cursor?;
    rows.iter()
        .position(|row| RowKey::of(row, labels) == *cursor)
}
