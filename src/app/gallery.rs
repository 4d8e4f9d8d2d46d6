//! The gallery: a virtualised thumbnail grid (only the visible rows are laid out), filtered by
//! tags, "untagged", problems, or a CLIP text search. It pages through the library: the core
//! sorts and filters (the gallery reader, beside the worker), and the gallery holds the ids it
//! shows and the rows on screen and near it, never the whole library.

use std::collections::HashMap;

use super::CliptagApp;
use super::thumbnails::GRID_SIZE;
use crate::domain::ImageStatus;
use crate::library::ImageEntry;
use crate::worker::{Command, GalleryRequest};

/// How many results a text search asks for.
const SEARCH_LIMIT: usize = 500;

/// How many tags a photo's tooltip names.
const HOVER_TAGS: usize = 8;

impl CliptagApp {
    /// Asks the reader for the shown photos when the library or the filter changed (never per
    /// frame otherwise).
    fn refresh_visible(&mut self) {
        let version = self.snapshot.version;
        if self
            .gallery
            .asked
            .as_ref()
            .is_some_and(|(_, asked)| *asked == version)
        {
            return;
        }
        let query = self.gallery.query();
        self.gallery.scores = match &self.gallery.search {
            Some((_, results)) => results.iter().copied().collect(),
            None => HashMap::new(),
        };
        self.link.worker.ask_gallery(GalleryRequest::View {
            query: query.clone(),
            version,
        });
        self.gallery.asked = Some((query, version));
    }

    /// The row of photo `id`, asking the reader for it when the gallery does not have it (or
    /// has an older one).
    pub fn entry(&mut self, id: i64) -> Option<&ImageEntry> {
        let version = self.snapshot.version;
        if self.gallery.want_row(id, version) {
            self.link.worker.ask_gallery(GalleryRequest::Rows {
                ids: vec![id],
                version,
            });
        }
        self.gallery.entry(id)
    }

    pub(super) fn search_ui(&mut self, ui: &mut egui::Ui) {
        let label = ui.label("Search photos");
        // The field gives way on a narrow window so that its buttons stay inside it.
        let buttons = if self.gallery.search.is_some() {
            125.0
        } else {
            70.0
        };
        let width = (ui.available_width() - buttons).clamp(64.0, 220.0);
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut self.gallery.search_text)
                    .hint_text("e.g. a dog on the beach")
                    .desired_width(width),
            )
            .labelled_by(label.id);
        let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if (ui.button("Search").clicked() || enter) && !self.gallery.search_text.trim().is_empty() {
            self.send(Command::Search {
                text: self.gallery.search_text.trim().to_string(),
                limit: SEARCH_LIMIT,
            });
        }
        if self.gallery.search.is_some()
            && ui
                .button("Clear")
                .on_hover_text("Clear the search: show the gallery as before it")
                .clicked()
        {
            self.gallery.search = None;
            self.gallery.search_text.clear();
            self.gallery.invalidate();
        }
    }

    fn filter_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            let mut changed = false;
            if ui
                .selectable_label(
                    !self.gallery.untagged
                        && !self.gallery.problems
                        && self.gallery.tags.is_empty(),
                    "All",
                )
                .clicked()
            {
                self.gallery.untagged = false;
                self.gallery.problems = false;
                self.gallery.tags.clear();
                self.gallery.only = None;
                changed = true;
            }
            changed |= ui
                .toggle_value(&mut self.gallery.untagged, "Untagged")
                .changed();
            changed |= ui
                .toggle_value(&mut self.gallery.problems, "Problems")
                .changed();
            let tags = self.gallery.tags.clone();
            for label_id in tags {
                let name = self
                    .snapshot
                    .labels
                    .iter()
                    .find(|l| l.label.id == label_id)
                    .map_or_else(|| format!("#{label_id}"), |l| l.label.name.clone());
                if ui
                    .button(format!("{name} ×"))
                    .on_hover_text("Remove this tag from the filter")
                    .clicked()
                {
                    self.gallery.toggle_tag(label_id);
                }
            }
            if self.gallery.tags.len() > 1 {
                let any = if self.gallery.any_tag {
                    "any of these"
                } else {
                    "all of these"
                };
                if ui
                    .button(any)
                    .on_hover_text("Show photos with all of the tags, or with any of them")
                    .clicked()
                {
                    self.gallery.any_tag = !self.gallery.any_tag;
                    changed = true;
                }
            }
            if let Some((query, results)) = &self.gallery.search {
                ui.label(format!(
                    "search: {query:?} ({} best matches)",
                    results.len()
                ));
            }
            if let Some((what, ids)) = &self.gallery.only {
                ui.label(format!("{what} ({} photos)", ids.len()));
                if ui.button("Show all").clicked() {
                    self.gallery.only = None;
                    changed = true;
                }
            }
            if changed {
                self.gallery.invalidate();
            }
        });
        if self.gallery.tags.len() == 1 {
            ui.weak(super::shortcuts::REVIEW_HINT);
        }
    }

    pub(super) fn gallery_ui(&mut self, ui: &mut egui::Ui) {
        self.filter_bar_ui(ui);
        self.refresh_visible();
        let view = self.gallery.view.as_ref().map(|v| v.ids.clone());
        let ids: &[i64] = view.as_deref().unwrap_or(&[]);
        let total = ids.len();
        ui.horizontal(|ui| {
            ui.label(if total == 1 {
                "1 photo".to_string()
            } else {
                format!("{total} photos")
            });
            ui.add_space(12.0);
            ui.add(
                egui::Slider::new(&mut self.settings.cell, 64.0..=512.0)
                    .text("Thumbnail size")
                    .show_value(false),
            );
        });
        let spacing = 6.0;
        // Two photos side by side at least, whatever size was chosen on a wider window.
        let fits_two = ((ui.available_width() - spacing) / 2.0).max(64.0);
        let cell = self.settings.cell.clamp(64.0, 512.0).min(fits_two);
        let columns = ((ui.available_width() + spacing) / (cell + spacing))
            .floor()
            .max(1.0) as usize;
        self.gallery.columns = columns;
        let rows = total.div_ceil(columns);
        // A row's height in the scroll area, its spacing included.
        let stride = cell + 20.0 + ui.spacing().item_spacing.y;
        self.keyboard_selection(ui, columns, stride, ids);
        if let Some((id, asked_under)) = self.gallery.reveal {
            if let Some(at) = ids.iter().position(|i| *i == id) {
                self.gallery.reveal = None;
                self.gallery.scroll_to =
                    super::paging::into_view(at / columns, stride, self.gallery.viewport);
            } else if self
                .gallery
                .view
                .as_ref()
                .is_some_and(|v| v.version > asked_under)
            {
                self.gallery.reveal = None;
            }
        }

        let snapshot = self.snapshot.clone();
        let names: HashMap<i64, &str> = snapshot
            .labels
            .iter()
            .map(|l| (l.label.id, l.label.name.as_str()))
            .collect();
        let mut clicked = None;
        let mut drawn = total..0;
        self.gallery.cells_shown = (0, 0);
        let mut area = egui::ScrollArea::vertical()
            .id_salt("gallery")
            .auto_shrink(false);
        if let Some(offset) = self.gallery.scroll_to.take() {
            area = area.vertical_scroll_offset(offset);
        }
        let shown = area.show_rows(ui, cell + 20.0, rows, |ui, row_range| {
            drawn = (row_range.start * columns).min(total)..(row_range.end * columns).min(total);
            for row in row_range {
                ui.horizontal(|ui| {
                    for col in 0..columns {
                        let Some(&id) = ids.get(row * columns + col) else {
                            break;
                        };
                        let selected = self.inspector.selected == Some(id)
                            || self.gallery.picked.contains(&id);
                        // A row not read yet is an empty cell for a frame or two.
                        let Some(entry) = self.gallery.entry(id).cloned() else {
                            ui.allocate_exact_size(
                                egui::vec2(cell, cell + 14.0),
                                egui::Sense::hover(),
                            );
                            continue;
                        };
                        if self.cell_ui(ui, &entry, cell, selected, &names).clicked() {
                            clicked = Some(id);
                            self.sidebar.has_keys = false;
                        }
                    }
                });
            }
        });
        self.gallery.viewport = (shown.state.clamped_offset().y, shown.inner_rect.height());
        let version = self.snapshot.version;
        let wanted = self.gallery.rows_wanted(drawn, version);
        if !wanted.is_empty() {
            self.link.worker.ask_gallery(GalleryRequest::Rows {
                ids: wanted,
                version,
            });
        }
        // The modifiers held when the button last went up, as the event itself says (egui may
        // report the click a frame later, when the keys are already let go).
        if let Some(modifiers) = ui.input(|i| {
            i.events.iter().rev().find_map(|e| match e {
                egui::Event::PointerButton {
                    pressed: false,
                    modifiers,
                    ..
                } => Some(*modifiers),
                _ => None,
            })
        }) {
            self.gallery.click_modifiers = modifiers;
        }
        if let Some(id) = clicked {
            self.pick(id, self.gallery.click_modifiers);
        }
    }

    /// A click on photo `id`: alone it selects the photo; with Ctrl (⌘) it adds or removes it
    /// from the selection; with Shift it selects the range from the last photo clicked.
    fn pick(&mut self, id: i64, modifiers: egui::Modifiers) {
        if modifiers.command {
            let picked = &mut self.gallery.picked;
            if let Some(current) = self.inspector.selected {
                picked.insert(current);
            }
            if !picked.remove(&id) {
                picked.insert(id);
            }
        } else if modifiers.shift
            && let Some(anchor) = self.inspector.selected
        {
            let ids = self.gallery.visible();
            if let (Some(a), Some(b)) = (
                ids.iter().position(|x| *x == anchor),
                ids.iter().position(|x| *x == id),
            ) {
                let (from, to) = (a.min(b), a.max(b));
                let range: Vec<i64> = ids[from..=to].to_vec();
                self.gallery.picked.extend(range);
            }
        } else {
            self.gallery.picked.clear();
        }
        self.select(Some(id));
    }

    /// The photos a bulk action applies to: the picked ones, or else the selected one.
    pub fn chosen(&self) -> Vec<i64> {
        if self.gallery.picked.is_empty() {
            self.inspector.selected.into_iter().collect()
        } else {
            self.gallery.picked.iter().copied().collect()
        }
    }

    fn cell_ui(
        &mut self,
        ui: &mut egui::Ui,
        entry: &ImageEntry,
        cell: f32,
        selected: bool,
        names: &HashMap<i64, &str>,
    ) -> egui::Response {
        let name = entry
            .path
            .file_name()
            .map_or_else(|| entry.path.to_string_lossy(), |n| n.to_string_lossy())
            .into_owned();
        let (rect, response) =
            ui.allocate_exact_size(egui::vec2(cell, cell + 14.0), egui::Sense::click());
        // The photo's tags: the labels the gallery is filtered to (the one under review) first,
        // then the person's decisions, then the rest by score (the reader gives them best
        // first): chips on the thumbnail, and the cell's accessible value.
        let mut tags: Vec<(i64, &str, bool)> = entry
            .tags
            .iter()
            .filter(|(_, source)| source.applies())
            .filter_map(|(id, source)| names.get(id).map(|n| (*id, *n, source.is_personal())))
            .collect();
        tags.sort_by_key(|(id, _, personal)| (!self.gallery.tags.contains(id), !personal));
        let tags: Vec<(&str, bool)> = tags.into_iter().map(|(_, n, p)| (n, p)).collect();
        let tag_text = tags
            .iter()
            .map(|(n, personal)| {
                if *personal {
                    format!("{n} (yours)")
                } else {
                    n.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        // The tooltip names a few tags, one per line, so it stays small beside the pointer
        // (a photo can carry dozens).
        let response = response.on_hover_ui(|ui| {
            ui.set_max_width(360.0);
            ui.label(entry.path.display().to_string());
            for (name, personal) in tags.iter().take(HOVER_TAGS) {
                ui.label(if *personal {
                    format!("{name} (yours)")
                } else {
                    name.to_string()
                });
            }
            if tags.len() > HOVER_TAGS {
                ui.weak(format!("and {} more", tags.len() - HOVER_TAGS));
            }
        });
        // A problem's reason is what its tile says (tags it has none).
        let value = match (&entry.error, entry.status) {
            (_, ImageStatus::Missing) => "missing from disk".to_string(),
            (Some(reason), ImageStatus::Error) => format!("cannot read: {reason}"),
            _ => tag_text.clone(),
        };
        let response = match entry.status {
            ImageStatus::Error | ImageStatus::Missing => response.on_hover_text(&value),
            _ => response,
        };
        response.widget_info(|| {
            let mut info = egui::WidgetInfo::labeled(egui::Role::Button, true, &name);
            info.current_text_value = Some(value.clone());
            info
        });
        if !ui.is_rect_visible(rect) {
            return response;
        }
        let image_rect = egui::Rect::from_min_size(rect.min, egui::vec2(cell, cell));
        let painter = ui.painter_at(rect);
        painter.rect_filled(image_rect, 4.0, ui.visuals().extreme_bg_color);
        match entry.status {
            ImageStatus::Error | ImageStatus::Missing => {
                // The reason itself, as much of it as the tile holds (the tooltip and the photo
                // panel have all of it).
                let text = match entry.status {
                    ImageStatus::Error if entry.error.is_none() => "cannot read".to_string(),
                    _ => value,
                };
                let mut job = egui::text::LayoutJob::simple(
                    text,
                    egui::FontId::proportional(11.0),
                    ui.visuals().error_fg_color,
                    image_rect.width() - 12.0,
                );
                job.wrap.max_rows = ((image_rect.height() - 12.0) / 14.0).max(1.0) as usize;
                let galley = painter.layout_job(job);
                let at = image_rect.center() - galley.size() / 2.0;
                painter.galley(at, galley, ui.visuals().error_fg_color);
            }
            _ => {
                self.gallery.cells_shown.0 += 1;
                if let Some(texture) =
                    self.thumbnails
                        .get(entry.id, &entry.path, entry.hash.as_deref(), GRID_SIZE)
                {
                    let size = texture.size_vec2();
                    let scale = (cell / size.x.max(size.y)).min(cell / 8.0);
                    let shown = egui::Rect::from_center_size(image_rect.center(), size * scale);
                    self.gallery.cells_shown.1 += 1;
                    painter.image(
                        texture.id(),
                        shown,
                        egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)),
                        egui::Color32::WHITE,
                    );
                } else if self.thumbnails.failed(entry.id, GRID_SIZE) {
                    painter.text(
                        image_rect.center(),
                        egui::Align2::CENTER_CENTER,
                        "no preview",
                        egui::FontId::proportional(12.0),
                        ui.visuals().weak_text_color(),
                    );
                }
            }
        }
        self.chips_ui(ui, &painter, image_rect, &tags);
        // A photo you accepted for the label under review is marked at every thumbnail size
        // (the chips that also say it need room): review shows what is already done.
        let reviewed_yours = entry.tags.iter().any(|(id, source)| {
            self.gallery.tags.contains(id) && source.is_personal() && source.applies()
        });
        if reviewed_yours {
            // Drawn, not a glyph: the default fonts have no check mark.
            let c = image_rect.right_top() + egui::vec2(-10.0, 10.0);
            painter.circle_filled(c, 8.0, ui.visuals().selection.bg_fill);
            let tick = [
                c + egui::vec2(-4.0, 0.0),
                c + egui::vec2(-1.0, 3.0),
                c + egui::vec2(4.0, -3.0),
            ];
            painter.line(
                tick.to_vec(),
                egui::Stroke::new(2.0, ui.visuals().selection.stroke.color),
            );
        }
        if selected {
            painter.rect_stroke(
                image_rect,
                4.0,
                egui::Stroke::new(3.0, ui.visuals().selection.bg_fill),
                egui::StrokeKind::Inside,
            );
        }
        let caption = match self.gallery.scores.get(&entry.id) {
            Some(score) => format!("{score:.3}  {name}"),
            None => name,
        };
        painter.text(
            egui::pos2(rect.min.x + 2.0, rect.max.y - 15.0),
            egui::Align2::LEFT_TOP,
            caption,
            egui::FontId::proportional(11.0),
            ui.visuals().text_color(),
        );
        response
    }

    /// Up to three tag chips along the bottom of a thumbnail (the last part of each label's
    /// name; a person's own decisions filled), and how many more there are.
    fn chips_ui(
        &self,
        ui: &egui::Ui,
        painter: &egui::Painter,
        image_rect: egui::Rect,
        tags: &[(&str, bool)],
    ) {
        if tags.is_empty() || image_rect.width() < 96.0 {
            return;
        }
        let font = egui::FontId::proportional(10.5);
        let visuals = ui.visuals();
        let mut x = image_rect.min.x + 3.0;
        let y = image_rect.max.y - 17.0;
        let limit = image_rect.max.x - 3.0;
        let mut shown = 0;
        for (i, (name, personal)) in tags.iter().take(3).enumerate() {
            let leaf = name.rsplit('/').next().unwrap_or(name);
            let text_color = if *personal {
                visuals.selection.stroke.color
            } else {
                visuals.text_color()
            };
            let galley = painter.layout_no_wrap(leaf.to_string(), font.clone(), text_color);
            let width = galley.size().x + 8.0;
            // Room for "+N" after the last chip shown, when more tags follow.
            let reserve = if i + 1 < tags.len() { 26.0 } else { 0.0 };
            if x + width + reserve > limit {
                break;
            }
            let chip = egui::Rect::from_min_size(egui::pos2(x, y), egui::vec2(width, 14.0));
            if *personal {
                painter.rect_filled(chip, 7.0, visuals.selection.bg_fill);
            } else {
                painter.rect_filled(chip, 7.0, visuals.window_fill.gamma_multiply(0.85));
                painter.rect_stroke(
                    chip,
                    7.0,
                    egui::Stroke::new(1.0, visuals.weak_text_color()),
                    egui::StrokeKind::Inside,
                );
            }
            painter.galley(chip.min + egui::vec2(4.0, 0.5), galley, text_color);
            x += width + 3.0;
            shown += 1;
        }
        if tags.len() > shown {
            let more = format!("+{}", tags.len() - shown);
            let galley = painter.layout_no_wrap(more, font, visuals.text_color());
            let chip = egui::Rect::from_min_size(
                egui::pos2(x, y),
                egui::vec2(galley.size().x + 6.0, 14.0),
            );
            painter.rect_filled(chip, 7.0, visuals.window_fill.gamma_multiply(0.85));
            painter.galley(
                chip.min + egui::vec2(3.0, 0.5),
                galley,
                visuals.text_color(),
            );
        }
    }
}
