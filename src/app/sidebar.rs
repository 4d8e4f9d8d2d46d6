//! The sidebar: the vocabulary, and the editor of one label with its live threshold preview.

use std::collections::HashMap;

use super::histogram::histogram_ui;
use super::{CliptagApp, DialogResult};
use crate::domain::{Label, Mode};
use crate::library::Preview;
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

#[derive(Debug, Default)]
pub struct SidebarState {
    pub filter: String,
    pub new_label: String,
    pub editor: Option<LabelEditor>,
    pub previews: HashMap<i64, Preview>,
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
        ui.separator();

        if self.sidebar.editor.is_some() {
            self.editor_ui(ui);
            ui.separator();
        }

        let filter = self.sidebar.filter.to_lowercase();
        let snapshot = self.snapshot.clone();
        let editing = self.sidebar.editor.as_ref().map(|e| e.draft.id);
        egui::ScrollArea::vertical()
            .id_salt("labels")
            .show(ui, |ui| {
                for entry in snapshot
                    .labels
                    .iter()
                    .filter(|e| filter.is_empty() || e.label.name.to_lowercase().contains(&filter))
                {
                    let label = &entry.label;
                    ui.horizontal(|ui| {
                        let mut enabled = label.enabled;
                        if ui
                            .checkbox(&mut enabled, "")
                            .on_hover_text(format!("Use {:?} for tagging", label.name))
                            .changed()
                        {
                            self.send(Command::UpdateLabel(Label {
                                enabled,
                                ..label.clone()
                            }));
                        }
                        let text = format!("{} ({})", label.name, entry.count);
                        if ui
                            .selectable_label(editing == Some(label.id), text)
                            .clicked()
                        {
                            self.sidebar.editor = Some(LabelEditor::new(label));
                            self.send(Command::PreviewLabel(label.clone()));
                        }
                        if ui
                            .small_button("show")
                            .on_hover_text(format!("Show the photos tagged {:?}", label.name))
                            .clicked()
                        {
                            self.gallery.toggle_tag(label.id);
                        }
                    });
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
