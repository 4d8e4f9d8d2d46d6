//! The detail panel: a large preview, every label's score, and the person's decisions.

use super::CliptagApp;
use super::thumbnails::PREVIEW_SIZE;
use crate::domain::{Decision, ImageStatus, TagSource};
use crate::worker::Command;

impl CliptagApp {
    pub(super) fn detail_ui(&mut self, ui: &mut egui::Ui) {
        let Some(image_id) = self.inspector.selected else {
            return;
        };
        // A photo whose row is not read yet shows a frame later; one that left the library is
        // unselected when the gallery hears so.
        let Some(entry) = self.entry(image_id).cloned() else {
            return;
        };
        ui.horizontal(|ui| {
            ui.heading("Photo");
            if ui.button("Close").clicked() {
                self.select(None);
            }
        });
        // The preview's box has the same size whether the picture has arrived or not, and
        // whatever its shape: the buttons below never jump when it loads under the pointer.
        let width = ui.available_width();
        let (area, _) = ui.allocate_exact_size(
            egui::vec2(width, (width * 0.75).min(400.0)),
            egui::Sense::hover(),
        );
        if let Some(texture) = self
            .thumbnails
            .get(entry.id, &entry.path, None, PREVIEW_SIZE)
        {
            let size = texture.size_vec2();
            let scale = (area.width() / size.x).min(area.height() / size.y);
            egui::Image::from_texture(egui::load::SizedTexture::from_handle(texture)).paint_at(
                ui,
                egui::Rect::from_center_size(area.center(), size * scale),
            );
        }
        ui.label(entry.path.display().to_string());
        // A camera RAW is tagged from the JPEG its camera embedded: say so, and how large it is,
        // so a photographer knows what cliptag looked at.
        let raw = entry
            .path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(crate::imaging::raw::is_raw_extension);
        if raw && let Some((width, height)) = entry.size {
            ui.weak(format!("Camera RAW: embedded preview, {width}×{height}"));
        }
        if let Some(error) = &entry.error {
            ui.colored_label(ui.visuals().error_fg_color, error);
        }
        // A photo that could not be read, or is gone, has no embedding: what needs one is not
        // offered.
        let readable = !matches!(entry.status, ImageStatus::Error | ImageStatus::Missing);
        ui.horizontal(|ui| {
            if readable && ui.button("More like this").clicked() {
                self.send(Command::MoreLike {
                    image_ids: vec![entry.id],
                    limit: 200,
                });
            }
            if ui.button("Show in folder").clicked() {
                let folder = entry.path.parent().unwrap_or(&entry.path).to_path_buf();
                self.show_folder(folder);
            }
        });
        if !readable {
            return;
        }
        let chosen = self.chosen();
        // The caption on its own line and the field sized to what is left, so the row fits the
        // narrowest inspector.
        let label = ui.label(if chosen.len() > 1 {
            format!("New label from the {} picked photos", chosen.len())
        } else {
            "New label from this photo".to_string()
        });
        ui.horizontal(|ui| {
            let button = 64.0;
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut self.inspector.example_label)
                        .hint_text("e.g. Our garden")
                        .desired_width((ui.available_width() - button).clamp(80.0, 220.0)),
                )
                .labelled_by(label.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (ui.button("Create").clicked() || enter)
                && !self.inspector.example_label.trim().is_empty()
            {
                let name = std::mem::take(&mut self.inspector.example_label);
                self.send(Command::AddLabelFromExamples {
                    label: crate::domain::Label::new(name.trim(), ""),
                    image_ids: chosen.clone(),
                });
            }
        });
        ui.separator();

        // Add a tag by hand.
        ui.horizontal(|ui| {
            let label = ui.label("Add tag");
            egui::ComboBox::from_id_salt("add-tag")
                .selected_text("choose a label")
                .show_ui(ui, |ui| {
                    for entry_label in &self.snapshot.labels {
                        let has = entry
                            .tags
                            .iter()
                            .any(|(l, s)| *l == entry_label.label.id && s.applies());
                        if !has
                            && ui
                                .selectable_label(false, &entry_label.label.name)
                                .clicked()
                        {
                            self.send(Command::Decide {
                                image_id,
                                label_id: entry_label.label.id,
                                decision: Decision::Apply,
                                continues: false,
                            });
                        }
                    }
                })
                .response
                .labelled_by(label.id);
        });

        let Some(detail) = self
            .inspector
            .detail
            .clone()
            .filter(|d| d.image_id == image_id)
        else {
            ui.label("computing scores…");
            return;
        };
        // Exact f32 goes without saying; a reduced precision is named, so that a person who
        // asked for exact arithmetic later can tell which photos were embedded before.
        if let Some(precision) = detail.precision.as_deref().filter(|p| *p != "f32") {
            ui.weak(format!("Embedded in {precision}")).on_hover_text(
                "Its embedding was computed in 16-bit arithmetic, faster than exact f32 on this \
                 kind of CPU and within cosine 0.999 of it. The Model window says what photos \
                 are embedded in from now on.",
            );
        }
        ui.label("Scores: accept or reject a tag; \"clear\" lets cliptag decide it again");
        // Each label takes two lines: its name, score and state, then the buttons that decide
        // it, so that a row fits the narrowest inspector.
        let name_width = (ui.available_width() - 120.0).max(60.0);
        for score in &detail.scores {
            let state = match score.tag {
                Some(TagSource::Auto) => "auto",
                Some(TagSource::Accepted) => "accepted",
                Some(TagSource::Rejected) => "rejected",
                Some(TagSource::Manual) => "manual",
                None if score.passes => "auto",
                None => "",
            };
            let text = egui::RichText::new(&score.name);
            let text = if score.tag.is_some_and(TagSource::applies) {
                text.strong()
            } else {
                text
            };
            ui.horizontal(|ui| {
                // Names start at one edge, so the scores beside them line up.
                ui.allocate_ui_with_layout(
                    egui::vec2(name_width, 18.0),
                    egui::Layout::left_to_right(egui::Align::Center),
                    |ui| {
                        ui.set_min_width(name_width);
                        ui.add(egui::Label::new(text).truncate())
                            .on_hover_text(&score.name);
                    },
                );
                let value = ui.label(if score.score.is_nan() {
                    "–".to_string()
                } else {
                    format!("{:.3}", score.score)
                });
                if let Some(why) = &score.why {
                    value.on_hover_text(why);
                }
                ui.weak(state);
            });
            ui.horizontal(|ui| {
                ui.add_space(12.0);
                let decide = |decision| Command::Decide {
                    image_id,
                    label_id: score.label_id,
                    decision,
                    continues: false,
                };
                if ui
                    .small_button("accept")
                    .on_hover_text(format!("Accept {:?}", score.name))
                    .clicked()
                {
                    self.send(decide(Decision::Apply));
                }
                if ui
                    .small_button("reject")
                    .on_hover_text(format!("Reject {:?}", score.name))
                    .clicked()
                {
                    self.send(decide(Decision::Reject));
                }
                // Always there (greyed out without a decision), so that deciding never moves
                // the buttons around it.
                let decided = score.tag.is_some_and(|t| t != TagSource::Auto);
                if ui
                    .add_enabled(decided, egui::Button::new("clear").small())
                    .on_hover_text(format!(
                        "Let cliptag decide {:?} again (Ctrl+Z undoes your last decision)",
                        score.name
                    ))
                    .on_disabled_hover_text("No decision of yours to clear")
                    .clicked()
                {
                    self.send(decide(Decision::Clear));
                }
            });
        }
    }
}
