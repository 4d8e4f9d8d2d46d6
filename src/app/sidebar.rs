//! The sidebar: the vocabulary, and the editor of one label with its live threshold preview.

use std::collections::{HashMap, HashSet};

use super::histogram::histogram_ui;
use super::tree::{self, Row};
use super::{CliptagApp, DialogResult};
use crate::domain::{Label, Mode};
use crate::library::{GroupEdit, Preview, in_group};
use crate::worker::Command;

/// A label being edited; changes reach the worker when applied (the threshold at once).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelEditor {
    pub draft: Label,
    pub prompts_text: String,
    pub negative_text: String,
}

impl LabelEditor {
    fn new(label: &Label) -> Self {
        LabelEditor {
            draft: label.clone(),
            prompts_text: label.prompts.join("\n"),
            negative_text: label.negative.clone().unwrap_or_default(),
        }
    }

    /// The draft with the text fields folded in.
    fn label(&self) -> Label {
        Label {
            prompts: self
                .prompts_text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
            negative: Some(self.negative_text.trim().to_string()).filter(|n| !n.is_empty()),
            ..self.draft.clone()
        }
    }
}

/// A group being edited: renamed or moved.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEditor {
    pub path: String,
    pub new_path: String,
}

#[derive(Debug, Default)]
pub struct SidebarState {
    pub filter: String,
    pub new_label: String,
    pub editor: Option<LabelEditor>,
    pub group: Option<GroupEditor>,
    pub previews: HashMap<i64, Preview>,
    /// Groups shown open, by full name.
    pub expanded: HashSet<String>,
    /// The prompt templates being edited, one per line (none while closed).
    pub templates: Option<String>,
    /// The tree row with the keyboard focus, by position among the rows shown.
    pub cursor: Option<usize>,
    /// Whether the keyboard moves through the tree (after a click on one of its rows) rather
    /// than through the gallery (after a click there, or on "show").
    pub has_keys: bool,
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
                        .desired_width(140.0),
                )
                .labelled_by(label.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Add").clicked() || enter) && !self.sidebar.new_label.trim().is_empty() {
                let label = Label::new(self.sidebar.new_label.trim(), &self.model_name());
                self.send(Command::AddLabel(label));
                self.sidebar.new_label.clear();
            }
        });
        ui.horizontal(|ui| {
            if ui
                .button("Import vocabulary…")
                .on_hover_text("Merge a vocabulary file (TOML)")
                .clicked()
            {
                self.dialog(|| {
                    rfd::FileDialog::new()
                        .add_filter("vocabulary", &["toml"])
                        .pick_file()
                        .map(DialogResult::ImportVocabulary)
                });
            }
            if ui
                .button("Export vocabulary…")
                .on_hover_text("Save the vocabulary as a TOML file")
                .clicked()
            {
                self.dialog(|| {
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
        egui::ScrollArea::vertical()
            .id_salt("labels")
            .show(ui, |ui| {
                for (position, row) in rows.iter().enumerate() {
                    let focused = self.sidebar.cursor == Some(position);
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
                                self.sidebar.cursor = Some(position);
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
                            let selected = editing_group.as_deref() == Some(path) || focused;
                            if ui.selectable_label(selected, text).clicked() {
                                self.sidebar.cursor = Some(position);
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
                            let selected = editing == Some(label.id) || focused;
                            if ui.selectable_label(selected, text).clicked() {
                                self.sidebar.cursor = Some(position);
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
        // What a label gets from them: the selected one, else the first in the vocabulary.
        let example = self
            .sidebar
            .editor
            .as_ref()
            .map(|e| e.draft.clone())
            .or_else(|| self.snapshot.labels.first().map(|e| e.label.clone()));
        if let Some(example) = example {
            let prompts = Label {
                prompts: Vec::new(),
                ..example.clone()
            }
            .prompts(&templates);
            ui.label(format!("{:?} becomes:", example.name));
            for prompt in prompts.iter().take(6) {
                ui.weak(format!("  {prompt}"));
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

    fn open_label(&mut self, label: &Label) {
        self.sidebar.group = None;
        self.sidebar.editor = Some(LabelEditor::new(label));
        self.send(Command::PreviewLabel(label.clone()));
    }

    fn open_group(&mut self, path: &str) {
        self.sidebar.editor = None;
        self.sidebar.group = Some(GroupEditor {
            path: path.to_string(),
            new_path: path.to_string(),
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
        if rows.is_empty() || ui.ctx().memory(|m| m.focused().is_some()) || !self.sidebar.has_keys {
            return;
        }
        let pressed = |key| ui.input(|i| i.key_pressed(key));
        let last = rows.len() - 1;
        let cursor = self.sidebar.cursor.unwrap_or(0).min(last);
        if pressed(egui::Key::ArrowDown) {
            self.sidebar.cursor = Some((cursor + 1).min(last));
        } else if pressed(egui::Key::ArrowUp) {
            self.sidebar.cursor = Some(cursor.saturating_sub(1));
        } else if pressed(egui::Key::ArrowRight) || pressed(egui::Key::ArrowLeft) {
            if let Row::Group { path, expanded, .. } = &rows[cursor] {
                let open = pressed(egui::Key::ArrowRight);
                if open != *expanded {
                    self.toggle_group(path);
                }
            }
            self.sidebar.cursor = Some(cursor);
        } else if pressed(egui::Key::Enter) {
            match &rows[cursor] {
                Row::Group { path, .. } => self.open_group(path),
                Row::Label { index, .. } => self.open_label(&snapshot.labels[*index].label),
            }
        }
    }

    /// The editor of the selected label or group, in a panel of its own beside the tree.
    pub(super) fn editor_panel_ui(&mut self, ui: &mut egui::Ui) {
        if self.sidebar.group.is_some() {
            self.group_editor_ui(ui);
        } else {
            self.editor_ui(ui);
        }
    }

    fn group_editor_ui(&mut self, ui: &mut egui::Ui) {
        let Some(group) = self.sidebar.group.clone() else {
            return;
        };
        let members: Vec<&Label> = self
            .snapshot
            .labels
            .iter()
            .map(|e| &e.label)
            .filter(|l| in_group(&l.name, &group.path))
            .collect();
        let enabled = members.iter().filter(|l| l.enabled).count();
        let total = members.len();
        let photos = self
            .snapshot
            .groups
            .get(&group.path.to_lowercase())
            .copied()
            .unwrap_or(0);
        ui.horizontal(|ui| {
            ui.strong(format!("Group {:?}", group.path));
            if ui.button("Close").clicked() {
                self.sidebar.group = None;
            }
        });
        ui.label(format!(
            "{total} labels, {enabled} of them used for tagging; {photos} photos tagged with one of them"
        ));
        ui.horizontal(|ui| {
            if ui.button("Use all").clicked() {
                self.send(Command::EditGroup {
                    group: group.path.clone(),
                    edit: GroupEdit::Enable(true),
                });
            }
            if ui.button("Use none").clicked() {
                self.send(Command::EditGroup {
                    group: group.path.clone(),
                    edit: GroupEdit::Enable(false),
                });
            }
        });
        let mut rename = false;
        ui.horizontal(|ui| {
            let label = ui
                .label("Group name")
                .on_hover_text("Rename it, or move it under another group: Pets → Animals/Pets");
            if let Some(editor) = &mut self.sidebar.group {
                let edit = ui
                    .add(egui::TextEdit::singleline(&mut editor.new_path).desired_width(160.0))
                    .labelled_by(label.id);
                rename = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            }
            rename |= ui.button("Rename").clicked();
        });
        if rename {
            let to = self
                .sidebar
                .group
                .as_ref()
                .map(|g| g.new_path.trim().trim_matches('/').to_string())
                .unwrap_or_default();
            if !to.is_empty() && to != group.path {
                self.send(Command::EditGroup {
                    group: group.path.clone(),
                    edit: GroupEdit::Rename(to.clone()),
                });
                // The tree keeps the group open under its new name.
                if self.sidebar.expanded.remove(&group.path) {
                    self.sidebar.expanded.insert(to.clone());
                }
                self.sidebar.group = Some(GroupEditor {
                    path: to.clone(),
                    new_path: to,
                });
            }
        }
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("group-labels")
            .show(ui, |ui| {
                for label in members {
                    ui.label(&label.name);
                }
            });
    }

    fn editor_ui(&mut self, ui: &mut egui::Ui) {
        let Some(editor) = self.sidebar.editor.as_mut() else {
            return;
        };
        let mut apply = false;
        let mut preview = false;
        let mut close = false;
        let mut delete = false;
        ui.strong(format!("Edit {:?}", editor.draft.name));
        egui::Grid::new("label-editor")
            .num_columns(2)
            .show(ui, |ui| {
                let label = ui.label("Name");
                ui.add(egui::TextEdit::singleline(&mut editor.draft.name))
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui
                    .label("Prompts")
                    .on_hover_text("One per line; empty uses the templates");
                ui.add(egui::TextEdit::multiline(&mut editor.prompts_text).desired_rows(2))
                    .labelled_by(label.id);
                ui.end_row();
                let label = ui.label("Negative prompt");
                ui.add(
                    egui::TextEdit::singleline(&mut editor.negative_text)
                        .hint_text("for contrast mode"),
                )
                .labelled_by(label.id);
                ui.end_row();
                ui.label("Mode");
                let before = editor.draft.mode;
                egui::ComboBox::from_id_salt("mode")
                    .selected_text(editor.draft.mode.as_str())
                    .show_ui(ui, |ui| {
                        ui.selectable_value(&mut editor.draft.mode, Mode::Threshold, "threshold");
                        ui.selectable_value(&mut editor.draft.mode, Mode::Contrast, "contrast");
                        ui.selectable_value(&mut editor.draft.mode, Mode::TopK, "topk");
                    });
                if editor.draft.mode != before {
                    editor.draft.threshold = editor.draft.mode.default_threshold("");
                    preview = true;
                }
                ui.end_row();
                if editor.draft.mode == Mode::TopK {
                    let label = ui.label("k");
                    let changed = ui
                        .add(egui::DragValue::new(&mut editor.draft.top_k).range(1..=20))
                        .labelled_by(label.id)
                        .changed();
                    preview |= changed;
                    ui.end_row();
                }
            });
        let range = match editor.draft.mode {
            Mode::Threshold => -1.0..=1.0,
            Mode::Contrast | Mode::TopK => 0.0..=1.0,
        };
        let slider = ui.add(
            egui::Slider::new(&mut editor.draft.threshold, range)
                .text("Threshold")
                .step_by(0.005)
                // Only a person's edit snaps to the step: a threshold learned from decisions
                // (0.363) must not be rounded and written back just by being shown.
                .clamping(egui::SliderClamping::Edits)
                .fixed_decimals(3),
        );
        if slider.changed() {
            preview = true;
            // While dragging only the preview follows; letting go (or a keyboard step) applies.
            apply |= !slider.dragged();
        }
        apply |= slider.drag_stopped();
        let mut show_changes = None;
        if let Some(p) = self.sidebar.previews.get(&editor.draft.id)
            && p.label.mode == editor.draft.mode
        {
            let drawn = histogram_ui(
                ui,
                &p.histogram,
                &mut editor.draft.threshold,
                &editor.draft.name,
            );
            preview |= drawn.changed;
            apply |= drawn.released;
            let stale = (p.label.threshold - editor.draft.threshold).abs() > 1e-6;
            ui.label(format!(
                "Would tag {} photos (+{} / -{} automatic){}",
                p.count,
                p.added,
                p.removed,
                if stale { " …" } else { "" }
            ));
            if (p.added > 0 || p.removed > 0)
                && ui
                    .button("Show what would change")
                    .on_hover_text("Show the photos this edit would tag or untag")
                    .clicked()
            {
                let mut ids = p.would_add.clone();
                ids.extend(&p.would_remove);
                show_changes = Some((p.label.name.clone(), ids));
            }
        }
        let mut learn = false;
        let mut reset = false;
        ui.horizontal(|ui| {
            learn = ui
                .button("Learn from my decisions")
                .on_hover_text("Fit this label to the photos you accepted and rejected")
                .clicked();
            if editor.draft.learned.is_some() {
                reset = ui
                    .button("Reset learning")
                    .on_hover_text("Score this label by its prompts again")
                    .clicked();
            }
        });
        if let Some(learned) = &editor.draft.learned {
            ui.weak(format!(
                "Learned from {} accepted and {} rejected photos",
                learned.positives, learned.negatives
            ));
        }
        ui.horizontal(|ui| {
            apply |= ui.button("Apply").clicked();
            if ui
                .button("Preview")
                .on_hover_text("Count what the edited prompts would tag")
                .clicked()
            {
                preview = true;
            }
            delete = ui.button("Delete label").clicked();
            close = ui.button("Close").clicked();
        });
        let label = editor.label();
        if learn {
            self.send(Command::Learn {
                label: label.name.clone(),
            });
        }
        if reset {
            self.send(Command::ResetLearning {
                label: label.name.clone(),
            });
        }
        if let Some((name, ids)) = show_changes {
            self.gallery
                .show_only(format!("what would change for {name:?}"), ids);
        }
        if preview {
            self.send(Command::PreviewLabel(label.clone()));
        }
        if apply {
            self.send(Command::UpdateLabel(label));
        }
        if delete {
            let id = self
                .sidebar
                .editor
                .as_ref()
                .map(|e| e.draft.id)
                .unwrap_or(0);
            self.send(Command::RemoveLabel { label_id: id });
            close = true;
        }
        if close {
            self.sidebar.editor = None;
        }
    }

    /// The model the library uses, for the default threshold of new labels.
    fn model_name(&self) -> String {
        match &self.model {
            crate::library::ModelStatus::Ready(name) => name.clone(),
            _ => String::new(),
        }
    }
}
