//! Review from the keyboard: arrow and paging keys move the selection through the gallery, and
//! A and R decide the reviewed label on the selected (or picked) photos, every press counting.

use super::CliptagApp;
use crate::domain::Decision;
use crate::worker::Command;

impl CliptagApp {
    /// Arrow keys move the selection through the visible photos, Page Up and Page Down a
    /// screen at a time, Home and End to the first and last; the selection is scrolled into
    /// view. Ctrl-A picks them all. With the gallery filtered to one label, `A` accepts and `R`
    /// rejects that label on the selected photo and moves on to the next one (review from the
    /// keyboard), or on every picked photo.
    pub(super) fn keyboard_selection(
        &mut self,
        ui: &egui::Ui,
        columns: usize,
        stride: f32,
        ids: &[i64],
    ) {
        if self.typing || ui.ctx().memory(|m| m.focused().is_some()) || self.sidebar.has_keys {
            return; // typing in a text field, or moving through the vocabulary
        }
        if ui.input(|i| i.modifiers.command && i.key_pressed(egui::Key::A)) {
            self.gallery.picked.extend(ids.iter().copied());
            return;
        }
        let page = columns as isize * (self.gallery.viewport.1 / stride).floor().max(1.0) as isize;
        let everything = ids.len() as isize;
        // Every press of this frame, in order: keys held down or typed fast (a person reviewing
        // at speed) arrive several to a frame, and each one counts.
        let presses: Vec<(isize, Option<Decision>)> = ui.input(|i| {
            i.events
                .iter()
                .filter_map(|event| match event {
                    egui::Event::Key {
                        key,
                        pressed: true,
                        modifiers,
                        ..
                    } if !modifiers.command && !modifiers.alt => match key {
                        egui::Key::A => Some((1, Some(Decision::Apply))),
                        egui::Key::R => Some((1, Some(Decision::Reject))),
                        egui::Key::ArrowRight => Some((1, None)),
                        egui::Key::ArrowLeft => Some((-1, None)),
                        egui::Key::ArrowDown => Some((columns as isize, None)),
                        egui::Key::ArrowUp => Some((-(columns as isize), None)),
                        egui::Key::PageDown => Some((page, None)),
                        egui::Key::PageUp => Some((-page, None)),
                        egui::Key::End => Some((everything, None)),
                        egui::Key::Home => Some((-everything, None)),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        });
        for (step, decision) in presses {
            if !self.key_step(ids, columns, stride, step, decision) {
                break;
            }
        }
    }

    /// One key's move (and decision, for A and R) in the gallery; false where the key could not
    /// act and said why.
    fn key_step(
        &mut self,
        ids: &[i64],
        columns: usize,
        stride: f32,
        step: isize,
        decision: Option<Decision>,
    ) -> bool {
        if let Some(decision) = decision {
            let [label_id] = self.gallery.tags.as_slice() else {
                let verb = if decision == Decision::Apply {
                    "A accepts"
                } else {
                    "R rejects"
                };
                let now = match self.gallery.tags.len() {
                    0 => "it shows no label now".to_string(),
                    n => format!("it shows {n} labels now"),
                };
                self.say(
                    format!("{verb} a label when the gallery shows one label ({now}): choose one label to review"),
                    false,
                );
                return false;
            };
            let label_id = *label_id;
            if ids.is_empty() {
                return false;
            }
            let chosen = self.chosen();
            if chosen.is_empty() {
                // Nothing selected yet: the first photo is, and the next press decides it.
                self.select(Some(ids[0]));
                self.gallery.scroll_to = Some(0.0);
                self.say(
                    "no photo was selected: the first one is now; press again to decide it".into(),
                    false,
                );
                return false;
            }
            // One decision on many picked photos is one step of the history: one undo.
            for (at, image_id) in chosen.iter().enumerate() {
                self.send(Command::Decide {
                    image_id: *image_id,
                    label_id,
                    decision,
                    continues: at > 0,
                });
            }
            if chosen.len() > 1 {
                // A decision on many photos at once: they stay picked, the selection stays.
                return false;
            }
        }
        if ids.is_empty() {
            return false;
        }
        let at = self
            .inspector
            .selected
            .and_then(|s| ids.iter().position(|id| *id == s));
        let next = match at {
            Some(at) => (at as isize + step).clamp(0, ids.len() as isize - 1) as usize,
            None => 0,
        };
        self.select(Some(ids[next]));
        self.gallery.scroll_to =
            super::paging::into_view(next / columns, stride, self.gallery.viewport);
        true
    }
}
