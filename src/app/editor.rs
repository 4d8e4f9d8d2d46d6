//! The panel beside the vocabulary tree: the editor of one label, with its live threshold
//! preview and score histogram, or of one group.

use super::CliptagApp;
use super::histogram::histogram_ui;
use crate::domain::{Label, Mode};
use crate::library::{GroupEdit, in_group};
use crate::worker::Command;

/// A label being edited. Every change is a draft, previewed as it is made (counts, histogram,
/// what would change), and nothing reaches the library until *Apply*; *Revert* goes back to
/// what the library holds.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelEditor {
    pub draft: Label,
    pub prompts_text: String,
    pub negative_text: String,
    /// The draft last sent for a preview, and when the draft last changed: typing is previewed
    /// once it pauses.
    previewed: Option<Label>,
    changed_at: Option<std::time::Instant>,
    /// Whether the gallery shows what this draft would change (a filter the editor set, and
    /// removes when it applies or closes).
    pub(super) shows_changes: bool,
    /// Close was pressed with changes not applied: the editor asks before dropping them.
    pub(super) asking_to_discard: bool,
    /// Delete label was pressed: the editor asks first (the label's decisions go with it, and
    /// Undo cannot bring them back).
    pub(super) asking_to_delete: bool,
    /// The label as the library held it when the editor last looked: a change underneath (a
    /// switch of model, another program) shows in the editor instead of being overwritten by
    /// the next Apply.
    stored: Label,
}

impl LabelEditor {
    pub(super) fn new(label: &Label) -> Self {
        LabelEditor {
            draft: label.clone(),
            prompts_text: label.prompts.join("\n"),
            negative_text: label.negative.clone().unwrap_or_default(),
            previewed: Some(label.clone()),
            changed_at: None,
            shows_changes: false,
            asking_to_discard: false,
            asking_to_delete: false,
            stored: label.clone(),
        }
    }

    /// Whether the draft differs from what the library holds.
    pub fn unsaved(&self) -> bool {
        self.label() != self.stored
    }

    /// Follows the library's `stored` label: the person's own edit landing changes nothing
    /// here; a change from elsewhere replaces the draft (thresholds and learning are the
    /// library's, per model), keeping prompts typed and not applied yet. True when it did.
    pub(super) fn follow(&mut self, stored: &Label) -> bool {
        if *stored == self.stored {
            return false;
        }
        let own = *stored == self.label();
        let typed = (
            self.prompts_text.clone(),
            self.negative_text.clone(),
            self.prompts_text != self.stored.prompts.join("\n")
                || self.negative_text != self.stored.negative.clone().unwrap_or_default(),
        );
        if own {
            self.stored = stored.clone();
            return false;
        }
        *self = LabelEditor::new(stored);
        if typed.2 {
            self.prompts_text = typed.0;
            self.negative_text = typed.1;
        }
        true
    }

    /// The draft with the text fields folded in.
    pub(super) fn label(&self) -> Label {
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
    /// A rename onto a group that exists, waiting for the person to say merge (labels of the
    /// same name would become one).
    pub merge_into: Option<String>,
}

impl CliptagApp {
    /// The label editor follows what the library holds now (see [`LabelEditor::follow`]).
    pub(super) fn editor_follows_library(&mut self) {
        let Some(editor) = &mut self.sidebar.editor else {
            return;
        };
        let stored = self
            .snapshot
            .labels
            .iter()
            .find(|l| l.label.id == editor.draft.id)
            .map(|l| l.label.clone());
        if let Some(stored) = stored
            && editor.follow(&stored)
        {
            let name = stored.name.clone();
            self.say(
                format!(
                    "{name:?} changed in the library (another model, or another program): the \
                     editor shows it as it is now"
                ),
                false,
            );
            self.send(Command::PreviewLabel(stored));
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
        let labels = if total == 1 { "label" } else { "labels" };
        ui.label(format!(
            "{total} {labels}, {enabled} of them used for tagging; {photos} photos tagged with \
             one of them"
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
                    .add(
                        // What the row leaves beside its caption and button.
                        egui::TextEdit::singleline(&mut editor.new_path)
                            .desired_width((ui.available_width() - 80.0).clamp(80.0, 220.0)),
                    )
                    .labelled_by(label.id);
                rename = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            }
            rename |= ui.button("Rename").clicked();
        });
        // A rename onto a group that already has labels merges the two: asked first.
        let mut merge = false;
        if let Some(into) = group.merge_into.clone() {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!("{into:?} already exists: its labels and these would be one group."),
            );
            ui.horizontal(|ui| {
                merge = ui.button("Merge").clicked();
                if ui.button("Cancel").clicked()
                    && let Some(editor) = &mut self.sidebar.group
                {
                    editor.merge_into = None;
                }
            });
        }
        if rename || merge {
            let to = self
                .sidebar
                .group
                .as_ref()
                .map(|g| g.new_path.trim().trim_matches('/').to_string())
                .unwrap_or_default();
            let exists = self
                .snapshot
                .labels
                .iter()
                .any(|l| in_group(&l.label.name, &to) && !in_group(&l.label.name, &group.path));
            if exists && !merge && !to.is_empty() && to != group.path {
                if let Some(editor) = &mut self.sidebar.group {
                    editor.merge_into = Some(to.clone());
                }
            } else if !to.is_empty() && to != group.path {
                self.send(Command::EditGroup {
                    group: group.path.clone(),
                    edit: GroupEdit::Rename(to.clone()),
                });
                // The tree keeps the group open, and the keyboard on it, under its new name.
                if self.sidebar.expanded.remove(&group.path) {
                    self.sidebar.expanded.insert(to.clone());
                }
                if self.sidebar.cursor == Some(super::sidebar::RowKey::Group(group.path.clone())) {
                    self.sidebar.cursor = Some(super::sidebar::RowKey::Group(to.clone()));
                }
                self.sidebar.group = Some(GroupEditor {
                    path: to.clone(),
                    new_path: to,
                    merge_into: None,
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
        let probability = self.snapshot.probability_scores;
        let Some(editor) = self.sidebar.editor.as_mut() else {
            return;
        };
        let mut apply = false;
        let mut preview = false;
        let mut close = false;
        let mut delete = false;
        // Close sits beside the title, as on the photo tab, so the button row below fits the
        // inspector at its narrowest.
        ui.horizontal(|ui| {
            // A long name is cut (whole on hover) rather than pushing Close out of the panel.
            let room = (ui.available_width() - 60.0).max(40.0);
            ui.scope(|ui| {
                ui.set_max_width(room);
                let title = egui::RichText::new(format!("Edit {:?}", editor.draft.name)).strong();
                ui.add(egui::Label::new(title).truncate());
            });
            close = ui.button("Close").clicked();
        });
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
                ui.add(
                    egui::TextEdit::multiline(&mut editor.prompts_text)
                        .desired_rows(2)
                        .hint_text("none: the prompt templates"),
                )
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
                    editor.draft.threshold = editor.draft.mode.default_threshold_in(probability);
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
        // A cosine runs from −1 to 1; probabilities (SigLIP's threshold labels, and every
        // contrast and top-k label) from 0 to 1.
        let full = match editor.draft.mode {
            Mode::Threshold if !probability => -1.0..=1.0,
            _ => 0.0..=1.0,
        };
        // The slider spans where the library's scores are (and the threshold), not the whole
        // possible range: CLIP's cosines sit within a few tenths, and a slider over −1…1 moved
        // the threshold by 0.6 in a short drag.
        let range = match self.sidebar.previews.get(&editor.draft.id) {
            Some(p) if p.label.mode == editor.draft.mode && p.histogram.high > p.histogram.low => {
                // Whole hundredths at the ends, so the slider's steps land on round values.
                let low = ((p.histogram.low - 0.05).min(editor.draft.threshold) * 100.0).floor();
                let high = ((p.histogram.high + 0.05).max(editor.draft.threshold) * 100.0).ceil();
                let (low, high) = (low / 100.0, high / 100.0);
                low.max(*full.start())..=high.min(*full.end())
            }
            _ => full,
        };
        if let Some(reason) = self.sidebar.preview_failed.get(&editor.draft.id) {
            ui.colored_label(ui.visuals().error_fg_color, reason);
        }
        // As wide as the inspector allows (beside its value and caption): on egui's default
        // 100 points a short drag jumped by a tenth of the scores' range.
        ui.spacing_mut().slider_width = (ui.available_width() - 150.0).clamp(100.0, 360.0);
        let slider = ui.add(
            egui::Slider::new(&mut editor.draft.threshold, range)
                .text("Threshold")
                .step_by(0.005)
                // Only a person's edit snaps to the step: a threshold learned from decisions
                // (0.363) must not be rounded and written back just by being shown.
                .clamping(egui::SliderClamping::Edits)
                .fixed_decimals(3),
        );
        preview |= slider.changed();
        let mut show_changes = None;
        let stored_count = self
            .snapshot
            .labels
            .iter()
            .find(|l| l.label.id == editor.draft.id)
            .map_or(0, |l| l.count);
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
            let current = editor.previewed.as_ref() == Some(&p.label);
            ui.label(format!(
                "Tags {} as stored",
                crate::library::count(stored_count as u64, "photo", "photos")
            ));
            if editor.unsaved() {
                ui.label(format!(
                    "With these changes: {} (+{} / -{}){}",
                    crate::library::count(p.count as u64, "photo", "photos"),
                    p.added,
                    p.removed,
                    if current { "" } else { " …" }
                ));
            }
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
        // One way to save, and it says where it stands.
        let unsaved = editor.unsaved();
        let mut revert = false;
        if unsaved {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                "Not saved: Apply stores these changes and re-tags",
            );
        } else {
            ui.weak("Saved");
        }
        ui.horizontal(|ui| {
            apply |= ui
                .add_enabled(unsaved, egui::Button::new("Apply"))
                .on_hover_text("Store the label as edited here; the tags follow")
                .clicked();
            revert = ui
                .add_enabled(unsaved, egui::Button::new("Revert"))
                .on_hover_text("Go back to the label as the library holds it")
                .clicked();
            if ui
                .add_enabled(!editor.asking_to_delete, egui::Button::new("Delete label"))
                .clicked()
            {
                editor.asking_to_delete = true;
            }
        });
        if editor.asking_to_delete {
            ui.colored_label(
                ui.visuals().warn_fg_color,
                format!(
                    "Delete {:?}? Its tags and the decisions you made on it go too, and Undo \
                     cannot bring them back.",
                    editor.stored.name
                ),
            );
            ui.horizontal(|ui| {
                delete = ui.button("Delete").clicked();
                if ui.button("Keep it").clicked() {
                    editor.asking_to_delete = false;
                }
            });
        }
        // Closing with changes not applied asks first.
        if close && unsaved && !editor.asking_to_discard {
            editor.asking_to_discard = true;
            close = false;
        }
        if editor.asking_to_discard {
            if unsaved {
                let switching = self.sidebar.then_open.is_some();
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    if switching {
                        "Open the other one without storing these changes?"
                    } else {
                        "Close without storing these changes?"
                    },
                );
                ui.horizontal(|ui| {
                    apply |= ui
                        .button(if switching {
                            "Apply and open"
                        } else {
                            "Apply and close"
                        })
                        .clicked();
                    close |= apply;
                    close |= ui.button("Discard").clicked();
                    if ui.button("Keep editing").clicked() {
                        editor.asking_to_discard = false;
                        self.sidebar.then_open = None;
                    }
                });
            } else {
                editor.asking_to_discard = false;
            }
        }
        if revert {
            let stored = editor.stored.clone();
            *editor = LabelEditor::new(&stored);
            preview = true;
        }
        let label = editor.label();
        // A change is previewed at once (the slider, the histogram, the mode); typed text once
        // the typing pauses.
        let now = std::time::Instant::now();
        if editor.previewed.as_ref() != Some(&label) {
            let since = *editor.changed_at.get_or_insert(now);
            if preview || now.duration_since(since) >= PREVIEW_AFTER_TYPING {
                preview = true;
            } else {
                ui.ctx().request_repaint_after(PREVIEW_AFTER_TYPING);
            }
        } else {
            editor.changed_at = None;
        }
        if preview || apply {
            editor.previewed = Some(label.clone());
            editor.changed_at = None;
        }
        let shows_changes = editor.shows_changes;
        if show_changes.is_some() {
            editor.shows_changes = true;
        }
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
        if apply {
            // The preview after the update counts against the new tags.
            self.send(Command::UpdateLabel(label.clone()));
            self.send(Command::PreviewLabel(label));
        } else if preview {
            self.send(Command::PreviewLabel(label));
        }
        // The editor's "what would change" goes when that is applied or the editor closes.
        if shows_changes && (apply || close || delete) && self.gallery.only.is_some() {
            self.gallery.only = None;
            self.gallery.invalidate();
            if let Some(editor) = self.sidebar.editor.as_mut() {
                editor.shows_changes = false;
            }
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
        if close
            && let Some(editor) = self.sidebar.editor.take()
            && editor.unsaved()
            && !delete
            && !apply
        {
            self.say(
                format!(
                    "closed {:?} without storing its changes",
                    editor.stored.name
                ),
                false,
            );
        }
        if close && let Some(next) = self.sidebar.then_open.take() {
            match next {
                super::sidebar::Opening::Label(label) => self.open_label(&label),
                super::sidebar::Opening::Group(path) => self.open_group(&path),
            }
        }
    }
}

/// How long typing in the editor pauses before the draft is previewed.
const PREVIEW_AFTER_TYPING: std::time::Duration = std::time::Duration::from_millis(400);
