//! The inspector: the window's right-hand region, whose tabs are the selected photo and the label
//! (or group) being edited, as in the photo tools people know. One region instead of a column
//! each keeps the gallery at least two photos wide on a laptop screen.

use super::CliptagApp;

/// Which tab the inspector shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InspectorTab {
    #[default]
    Photo,
    Label,
}

/// What the inspector shows, and what it saw last frame (to follow what was opened last).
#[derive(Debug, Clone, Default)]
pub struct Inspector {
    pub tab: InspectorTab,
    /// The photo selected in the gallery.
    pub selected: Option<i64>,
    /// Its scores on every label, as the worker last sent them.
    pub detail: Option<crate::library::ImageDetail>,
    /// The name typed for a new label learned from the selected photo.
    pub(super) example_label: String,
    seen_photo: Option<i64>,
    /// What the editor held last frame (a label's id, or a group's path).
    seen_editing: Option<String>,
}

impl CliptagApp {
    /// Whether a label or group is open in the editor.
    fn editing(&self) -> bool {
        self.sidebar.editor.is_some() || self.sidebar.group.is_some()
    }

    /// Whether the inspector has anything to show.
    pub(super) fn inspector_open(&self) -> bool {
        self.inspector.selected.is_some() || self.editing()
    }

    /// What the editor holds: a label (by id) or a group (by path).
    fn edited(&self) -> Option<String> {
        match (&self.sidebar.editor, &self.sidebar.group) {
            (_, Some(group)) => Some(format!("group {}", group.path)),
            (Some(editor), None) => Some(format!("label {}", editor.draft.id)),
            (None, None) => None,
        }
    }

    /// Turns to what was opened last: a photo just selected, a label or group just opened.
    pub(super) fn follow_inspector(&mut self) {
        let editing = self.editing();
        let edited = self.edited();
        if edited.is_some() && edited != self.inspector.seen_editing {
            self.inspector.tab = InspectorTab::Label;
        } else if self.inspector.selected.is_some()
            && self.inspector.selected != self.inspector.seen_photo
        {
            self.inspector.tab = InspectorTab::Photo;
        }
        if self.inspector.selected.is_none() && editing {
            self.inspector.tab = InspectorTab::Label;
        } else if !editing && self.inspector.selected.is_some() {
            self.inspector.tab = InspectorTab::Photo;
        }
        self.inspector.seen_editing = edited;
        self.inspector.seen_photo = self.inspector.selected;
    }

    /// The inspector's tabs and the open tab's contents.
    pub(super) fn inspector_ui(&mut self, ui: &mut egui::Ui) {
        let editing = self.editing();
        let label_tab = if self.sidebar.group.is_some() {
            "Group"
        } else {
            "Label"
        };
        ui.horizontal(|ui| {
            let photo = ui.add_enabled(
                self.inspector.selected.is_some(),
                egui::Button::selectable(self.inspector.tab == InspectorTab::Photo, "Photo"),
            );
            if photo.clicked() {
                self.inspector.tab = InspectorTab::Photo;
            }
            let label = ui.add_enabled(
                editing,
                egui::Button::selectable(self.inspector.tab == InspectorTab::Label, label_tab),
            );
            if label.clicked() {
                self.inspector.tab = InspectorTab::Label;
            }
        });
        ui.separator();
        if !self.inspector_open() {
            ui.add_space(8.0);
            ui.weak(
                "Select a photo to see its tags and scores; click a label in the vocabulary to \
                 edit it.",
            );
            return;
        }
        // Scrolled both ways: content wider than a narrow inspector (a long name, a row of
        // buttons) scrolls inside it instead of widening the panel over the gallery.
        let tab = self.inspector.tab;
        egui::ScrollArea::both()
            // Each photo starts at the top: its own scroll position, not the last photo's.
            .id_salt((
                "inspector",
                tab == InspectorTab::Photo,
                (tab == InspectorTab::Photo).then_some(self.inspector.selected),
            ))
            .auto_shrink([false, false])
            .show(ui, |ui| match tab {
                InspectorTab::Photo => self.detail_ui(ui),
                InspectorTab::Label => self.editor_panel_ui(ui),
            });
    }
}
