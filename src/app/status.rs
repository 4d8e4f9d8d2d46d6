//! The status bar (model, stage, progress with rate and ETA, pause, cancel), the export window and
//! the list of files that could not be read.

use super::{CliptagApp, DialogKind, DialogResult};
use crate::domain::ImageStatus;
use crate::export::PathStyle;
use crate::export::csv::CsvForm;
use crate::export::xmp::SidecarNaming;
use crate::library::{CsvExport, ExportRequest, ModelStatus, Stage};
use crate::worker::Command;

/// The CSV shape in the export window's words.
fn describe(form: CsvForm) -> &'static str {
    match form {
        CsvForm::Wide => "one row per photo",
        CsvForm::Long => "one row per tag, with scores",
        CsvForm::Exiftool => "exiftool import (XMP-dc:Subject)",
    }
}

/// `1 photo`, `2 photos`.
fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `12 s`, `4 min`, `2 h 5 min`.
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s.div_ceil(60))
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

impl CliptagApp {
    pub(super) fn status_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let model = match &self.link.model {
                // Loaded on first use (indexing, a new label): nothing is wrong meanwhile.
                ModelStatus::NotLoaded if !self.snapshot.model_name.is_empty() => {
                    let name = &self.snapshot.model_name;
                    format!(
                        "model: {} (loads when needed)",
                        name.rsplit('/').next().unwrap_or(name)
                    )
                }
                ModelStatus::NotLoaded => "model: loads when needed".to_string(),
                ModelStatus::Loading(what) => format!("model: {what}"),
                ModelStatus::Ready(name) => {
                    format!("model: {}", name.rsplit('/').next().unwrap_or(name))
                }
                ModelStatus::Failed(_) => "model: unavailable".to_string(),
            };
            ui.label(model);
            ui.separator();
            let unsaved = self.link.unsaved_decisions.get();
            if unsaved > 0 {
                ui.label(format!(
                    "saving {unsaved} decision{}…",
                    if unsaved == 1 { "" } else { "s" }
                ))
                .on_hover_text("Your decisions are stored in the library as they arrive");
                ui.separator();
            }
            match (&self.link.progress, self.link.indexing) {
                (Some(p), _)
                    if matches!(
                        p.stage,
                        Stage::Scoring | Stage::WritingTags | Stage::EmbeddingPrompts
                    ) =>
                {
                    let (what, unit) = match p.stage {
                        Stage::Scoring => ("re-tagging: scoring photos", "photos/s"),
                        Stage::WritingTags => ("re-tagging: writing tags", "tags/s"),
                        _ => ("importing the vocabulary: embedding prompts", "prompts/s"),
                    };
                    ui.label(what);
                    let fraction = p.done as f32 / p.total.max(1) as f32;
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(220.0)
                            .text(format!("{} / {}", p.done, p.total)),
                    );
                    ui.label(format!("{:.0} {unit}", p.rate));
                    if ui
                        .button("Cancel")
                        .on_hover_text("Stop re-tagging; every tag stays as it was")
                        .clicked()
                    {
                        self.link.worker.control().cancel();
                    }
                }
                (Some(p), true) => {
                    let stage = match p.stage {
                        Stage::Scanning => "scanning",
                        Stage::Indexing => "indexing",
                        Stage::Scoring | Stage::WritingTags => "re-tagging",
                        Stage::EmbeddingPrompts => "importing",
                        Stage::Done => "finishing",
                    };
                    let fraction = if p.total > 0 {
                        p.done as f32 / p.total as f32
                    } else {
                        0.0
                    };
                    let eta = if p.rate > 0.0 && p.total > p.done {
                        format!(
                            ", about {} left",
                            duration_text((p.total - p.done) as f64 / p.rate)
                        )
                    } else {
                        String::new()
                    };
                    let paused = self.link.worker.control().is_paused();
                    // The buttons first and Pause as wide as Resume: nothing moves under the
                    // pointer as the words and figures after them change.
                    let toggle = egui::Button::new(if paused { "Resume" } else { "Pause" })
                        .min_size(egui::vec2(64.0, 0.0));
                    if ui
                        .add(toggle)
                        .on_hover_text("The batch being embedded finishes first")
                        .clicked()
                    {
                        if paused {
                            self.link.worker.control().resume();
                        } else {
                            self.link.worker.control().pause();
                        }
                    }
                    if ui.button("Cancel").clicked() {
                        self.link.worker.control().cancel();
                    }
                    ui.label(if paused { "paused" } else { stage });
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(220.0)
                            .text(format!("{} / {}", p.done, p.total)),
                    );
                    // A paused run has no rate and no time left: it goes on when resumed.
                    if !paused {
                        ui.label(format!("{:.1} photos/s{eta}", p.rate));
                    }
                }
                (None, true) => {
                    ui.label("starting…");
                    if ui.button("Cancel").clicked() {
                        self.link.worker.control().cancel();
                    }
                }
                _ => {
                    ui.label(count(
                        self.snapshot.indexed,
                        "photo indexed",
                        "photos indexed",
                    ));
                    if self.snapshot.waiting > 0 {
                        ui.separator();
                        ui.label(count(
                            self.snapshot.waiting,
                            "photo waiting for tags",
                            "photos waiting for tags",
                        ))
                        .on_hover_text(
                            "Found and shown, not yet embedded and tagged: indexing goes on when \
                             a model is available (Update library)",
                        );
                    }
                }
            }
            let problems = self.snapshot.problems;
            if problems > 0 {
                ui.separator();
                if ui
                    .button(count(problems, "problem", "problems"))
                    .on_hover_text("Files that could not be read, or went missing")
                    .clicked()
                {
                    self.windows.show_problems = !self.windows.show_problems;
                }
            }
            // While a run goes on, what was said before it began (the last run's summary) is
            // not shown beside its progress.
            let current = self
                .messages
                .back()
                .filter(|m| self.link.run_began.is_none_or(|began| m.at >= began));
            if let Some(message) = current.cloned() {
                ui.separator();
                let color = if message.error {
                    ui.visuals().error_fg_color
                } else {
                    ui.visuals().text_color()
                };
                if let Some(folder) = message.folder
                    && ui
                        .button("Show in folder")
                        .on_hover_text(folder.display().to_string())
                        .clicked()
                {
                    self.show_folder(folder);
                }
                // Cut to the bar's width where it is long (a path), whole on hover.
                ui.add(
                    egui::Label::new(egui::RichText::new(&message.text).color(color)).truncate(),
                )
                .on_hover_text(&message.text);
            }
        });
    }

    pub(super) fn export_window(&mut self, ctx: &egui::Context) {
        let mut open = self.windows.show_export;
        super::floating("Export tags", ctx)
            .open(&mut open)
            .show(ctx, |ui| {
                ui.horizontal(|ui| {
                    let label = ui.label("CSV file");
                    ui.add(
                        egui::TextEdit::singleline(&mut self.settings.export_path)
                            .desired_width(320.0),
                    )
                    .labelled_by(label.id);
                    if ui.button("Choose…").clicked() {
                        self.dialog(DialogKind::ExportPath, || {
                            rfd::FileDialog::new()
                                .set_file_name("cliptag-tags.csv")
                                .save_file()
                                .map(DialogResult::ExportPath)
                        });
                    }
                });
                egui::ComboBox::from_label("Layout")
                    .selected_text(describe(self.settings.export_form))
                    .show_ui(ui, |ui| {
                        for form in [CsvForm::Wide, CsvForm::Long, CsvForm::Exiftool] {
                            ui.selectable_value(
                                &mut self.settings.export_form,
                                form,
                                describe(form),
                            );
                        }
                    });
                ui.checkbox(
                    &mut self.settings.export_relative,
                    "Paths relative to each photo's library folder",
                );
                ui.checkbox(
                    &mut self.settings.export_xmp,
                    "Also write XMP sidecars beside the photos",
                );
                if self.settings.export_xmp {
                    ui.checkbox(
                        &mut self.settings.xmp_adobe_names,
                        "Name sidecars photo.xmp (Adobe) instead of photo.jpg.xmp",
                    );
                }
                ui.label("Photos themselves are never changed.");
                if ui.button("Export CSV").clicked() {
                    let path = std::path::PathBuf::from(self.settings.export_path.trim());
                    let style = if self.settings.export_relative {
                        PathStyle::Relative
                    } else {
                        PathStyle::Absolute
                    };
                    let naming = if self.settings.xmp_adobe_names {
                        SidecarNaming::Replaced
                    } else {
                        SidecarNaming::Appended
                    };
                    self.send(Command::Export(ExportRequest {
                        csv: Some(CsvExport {
                            path,
                            form: self.settings.export_form,
                            style,
                        }),
                        xmp: self.settings.export_xmp.then_some(naming),
                    }));
                }
                let recent: Vec<&super::Message> = self
                    .messages
                    .iter()
                    .rev()
                    .take_while(|m| m.at >= self.windows.export_opened)
                    .take(3)
                    .collect();
                for message in recent {
                    let color = if message.error {
                        ui.visuals().error_fg_color
                    } else {
                        ui.visuals().text_color()
                    };
                    ui.colored_label(color, &message.text);
                }
            });
        self.windows.show_export = open;
    }

    pub(super) fn problems_window(&mut self, ctx: &egui::Context) {
        // Once the last problem is gone (missing photos removed), the window has nothing to say.
        if self.snapshot.problems == 0 {
            self.windows.show_problems = false;
            self.windows.confirm_prune = false;
            self.windows.prune_preview = None;
        }
        let mut open = self.windows.show_problems;
        let snapshot = self.snapshot.clone();
        super::floating("Problems", ctx)
            .open(&mut open)
            .default_width(560.0)
            .show(ctx, |ui| {
                ui.label(format!(
                    "{} could not be indexed or went missing; the others are not held up by them.",
                    count(snapshot.problems, "file", "files")
                ));
                if snapshot.problems > snapshot.problem_files.len() {
                    ui.label(format!(
                        "The first {} are listed here; the gallery's Problems filter shows them all.",
                        snapshot.problem_files.len()
                    ));
                }
                let missing = snapshot
                    .problem_files
                    .iter()
                    .filter(|i| i.status == ImageStatus::Missing)
                    .count();
                if missing > 0 {
                    ui.horizontal(|ui| {
                        if self.windows.confirm_prune {
                            match &self.windows.prune_preview {
                                // What would go, counted on disk now, before the person agrees.
                                Some(preview) => {
                                    let said = crate::library::prune_summary(preview, true);
                                    ui.label(format!(
                                        "{}{}?",
                                        said[..1].to_uppercase(),
                                        &said[1..]
                                    ));
                                }
                                None => {
                                    ui.label("looking at the disk…");
                                }
                            }
                            let can = self
                                .windows.prune_preview
                                .as_ref()
                                .is_some_and(|p| !p.removed.is_empty());
                            if ui.add_enabled(can, egui::Button::new("Remove")).clicked() {
                                self.windows.confirm_prune = false;
                                self.windows.prune_preview = None;
                                self.send(Command::Prune { dry_run: false });
                            }
                            if ui.button("Keep them").clicked() {
                                self.windows.confirm_prune = false;
                                self.windows.prune_preview = None;
                            }
                        } else if ui
                            .add_enabled(
                                !self.link.indexing,
                                egui::Button::new("Remove missing photos…"),
                            )
                            .on_disabled_hover_text(
                                "Indexing is running: it may find some of them under new names",
                            )
                            .on_hover_text(
                                "Forget photos that are no longer on disk (a photo that comes \
                                 back is indexed as new)",
                            )
                            .clicked()
                        {
                            self.windows.confirm_prune = true;
                            self.windows.prune_preview = None;
                            self.send(Command::Prune { dry_run: true });
                        }
                    });
                }
                ui.separator();
                egui::ScrollArea::vertical()
                    .id_salt("problems")
                    .show(ui, |ui| {
                        for image in &snapshot.problem_files {
                            let reason = match image.status {
                                ImageStatus::Missing => {
                                    "missing from disk (its tags are kept)".to_string()
                                }
                                _ => image.error.clone().unwrap_or_default(),
                            };
                            ui.label(format!("{}: {reason}", image.path.display()));
                        }
                    });
            });
        self.windows.show_problems = open;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_naturally() {
        assert_eq!(super::duration_text(12.2), "12 s");
        assert_eq!(super::duration_text(61.0), "2 min");
        assert_eq!(super::duration_text(7500.0), "2 h 5 min");
    }
}
