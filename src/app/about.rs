//! The About window: which cliptag this is (version and commit), the model that tags the library
//! with its licence and source, where the library lives, where to report a problem, and the
//! licences of everything built into cliptag.

use crate::about;
use crate::model::hub::ModelSpec;

use super::CliptagApp;

impl CliptagApp {
    pub(super) fn about_window(&mut self, ctx: &egui::Context) {
        let mut open = self.windows.show_about;
        let mut show_folder = None;
        let mut copied = false;
        super::floating("About cliptag", ctx)
            .open(&mut open)
            .collapsible(false)
            // Sized by what it holds, so unfolding the licences makes it taller.
            .resizable(false)
            .default_width(460.0)
            .max_width(460.0)
            .show(ctx, |ui| {
                ui.heading(format!("cliptag {}", about::VERSION));
                ui.label(format!(
                    "Built from commit {}. Licence: {}.",
                    about::COMMIT,
                    about::LICENCE
                ));
                ui.add_space(6.0);
                // One section under another (not a grid): a long path wraps within the
                // window's width instead of sizing the window on its first frame.
                ui.strong("Model");
                ui.label(&self.snapshot.model_name);
                let (source, licence) = model_facts(self.snapshot.model_source.as_ref());
                ui.label(source);
                ui.label(licence);
                ui.add_space(6.0);
                ui.strong("Library");
                if let Some(db) = &self.settings.db {
                    ui.label(db.display().to_string());
                    if let Some(folder) = db.parent()
                        && ui.button("Open folder").clicked()
                    {
                        show_folder = Some(folder.to_path_buf());
                    }
                }
                ui.add_space(6.0);
                ui.strong("Settings");
                ui.label(
                    crate::paths::config_dir()
                        .map_or_else(|| "—".into(), |d| d.display().to_string()),
                );
                ui.add_space(6.0);
                ui.strong("Problems");
                // The address as text with a copy button: a desktop without a browser (or
                // without a way to open one) must still tell the person where to go.
                ui.label("Report a problem at");
                ui.horizontal(|ui| {
                    ui.add(egui::Label::new(about::REPORT_URL).selectable(true));
                    if ui
                        .button("Copy address")
                        .on_hover_text("Copy the address to paste into a browser")
                        .clicked()
                    {
                        ui.ctx().copy_text(about::REPORT_URL.to_string());
                        copied = true;
                    }
                });
                ui.label("Say what you did, and give the version line above.");
                if let Some(log) = crate::paths::log_file() {
                    ui.label(format!(
                        "Errors the window showed are kept in {}.",
                        log.display()
                    ));
                }
                ui.add_space(6.0);
                egui::CollapsingHeader::new("Licences of the crates built into cliptag")
                    .id_salt("crate licences")
                    .show(ui, |ui| {
                        // As tall as the screen leaves below the rest of the window.
                        let room = (ctx.content_rect().height() - 440.0).clamp(80.0, 260.0);
                        egui::ScrollArea::vertical()
                            .max_height(room)
                            .show(ui, |ui| {
                                for line in about::CRATE_LICENCES.lines() {
                                    ui.label(line);
                                }
                            });
                    });
            });
        self.windows.show_about &= open;
        if let Some(folder) = show_folder {
            self.show_folder(folder);
        }
        if copied {
            self.say(format!("copied {}", about::REPORT_URL), false);
        }
    }
}

/// Where a model comes from and its licence, in words.
fn model_facts(source: Option<&ModelSpec>) -> (String, String) {
    let (text, licence, unstated) = match source {
        Some(ModelSpec::Hub { repo, revision }) => (
            format!("From https://huggingface.co/{repo} (revision {revision})"),
            about::model_licence(Some(repo), None),
            "Licence: not stated here; see the model's page above",
        ),
        Some(ModelSpec::Local(dir)) => (
            format!("From the folder {}", dir.display()),
            about::model_licence(None, Some(dir)),
            "Licence: not stated (the folder has no model card, README.md, naming one)",
        ),
        None => ("Not known yet".into(), None, "Licence: not known yet"),
    };
    let licence = match licence {
        Some(licence) => format!("Licence: {licence}"),
        None => unstated.into(),
    };
    (text, licence)
}
