//! The model window: which model the library tags with, and a switch to another — the known
//! checkpoints with what they download and what they cost in speed, or any folder or hub id.
//! Switching loads the model and then re-embeds the library's photos in the background (the
//! regular progress bar); the tags follow the new model when that is done.

use super::{CliptagApp, DialogKind, DialogResult};
use crate::worker::Command;

/// A model people can pick without knowing its hub id.
pub struct KnownModel {
    pub id: &'static str,
    pub title: &'static str,
    pub about: &'static str,
}

/// The checkpoints the window offers. SigLIP 2's download sizes are computed from the
/// architecture (about 372 M float32 parameters, most of them the 256,000-token vocabulary);
/// speeds are `cliptag bench --part siglip` ratios of time per photo against ViT-B/32 on a
/// 2-core CPU.
pub const KNOWN_MODELS: [KnownModel; 3] = [
    KnownModel {
        id: crate::model::hub::DEFAULT_MODEL,
        title: "OpenAI CLIP ViT-B/32 (default)",
        about: "about 600 MB download; the fastest; English prompts",
    },
    KnownModel {
        id: "google/siglip2-base-patch32-256",
        title: "SigLIP 2 B/32-256",
        about: "about 1.5 GB download; better tags, labels in any language; each photo takes \
                about 1.3× as long",
    },
    KnownModel {
        id: "google/siglip2-base-patch16-224",
        title: "SigLIP 2 B/16-224",
        about: "about 1.5 GB download; better still, labels in any language; each photo takes \
                about 3.5–5× as long",
    },
];

/// What the model window remembers between frames.
#[derive(Debug, Default)]
pub struct ModelPicker {
    pub open: bool,
    /// The hub id or folder picked (a known model's id, or typed).
    pub choice: String,
    /// A switch was asked for: once the model is loaded, the library is re-embedded.
    pub switching: bool,
}

impl CliptagApp {
    pub(super) fn model_window(&mut self, ctx: &egui::Context) {
        let mut open = self.windows.picker.open;
        let current = self.snapshot.model_name.clone();
        // The model in use is the one chosen until another is.
        if self.windows.picker.choice.is_empty() && KNOWN_MODELS.iter().any(|k| k.id == current) {
            self.windows.picker.choice = current.clone();
        }
        super::floating("Model", ctx)
            .open(&mut open)
            .show(ctx, |ui| {
                ui.label(format!("This library tags with: {current}"));
                ui.label(if self.snapshot.probability_scores {
                    "Threshold labels score as probabilities (0 to 1)."
                } else {
                    "Threshold labels score as cosines (−1 to 1)."
                });
                self.precision_ui(ui);
                ui.separator();
                for known in &KNOWN_MODELS {
                    ui.radio_value(
                        &mut self.windows.picker.choice,
                        known.id.to_string(),
                        known.title,
                    )
                    .on_hover_text(known.id);
                    ui.indent(known.id, |ui| ui.weak(known.about));
                }
                ui.horizontal(|ui| {
                    let label = ui.label("Or a folder or hub id:");
                    ui.add(
                        egui::TextEdit::singleline(&mut self.windows.picker.choice)
                            .desired_width(260.0),
                    )
                    .labelled_by(label.id);
                    if ui.button("Choose folder…").clicked() {
                        self.dialog(DialogKind::ModelFolder, || {
                            rfd::FileDialog::new()
                                .pick_folder()
                                .map(DialogResult::ModelFolder)
                        });
                    }
                });
                ui.weak(
                    "Switching embeds every photo again with the new model, in the background; \
                     tags stay as they are until that is done. Your decisions and vocabulary stay, \
                     each label keeps its threshold for each model, and switching back embeds \
                     nothing.",
                );
                let choice = self.windows.picker.choice.trim().to_string();
                // A folder is named by its last part once loaded: `/models/tiny-clip` is in use
                // as `tiny-clip`.
                let in_use = choice == current
                    || (!choice.is_empty()
                        && crate::model::ModelSpec::parse(&choice).name() == current);
                let can = !choice.is_empty() && !self.link.indexing && !in_use;
                if ui
                    .add_enabled(can, egui::Button::new("Switch to this model"))
                    .on_disabled_hover_text(if self.link.indexing {
                        "Indexing is running: wait for it to finish or cancel it, then switch"
                    } else if in_use {
                        "This library tags with this model already"
                    } else {
                        "Type a model above or choose one first"
                    })
                    .clicked()
                {
                    self.windows.picker.switching = true;
                    self.send(Command::LoadModel(Some(choice)));
                }
            });
        self.windows.picker.open = open;
    }

    /// Which arithmetic photos are embedded in, and the choice of exact f32 where the CPU runs
    /// something faster.
    fn precision_ui(&mut self, ui: &mut egui::Ui) {
        let now = self.snapshot.precision.name();
        if let Some(forced) = crate::model::matmul::precision_override() {
            ui.weak(format!(
                "Photos indexed from now on are embedded in {now} (CLIPTAG_PRECISION={} for this \
                 session).",
                forced.name()
            ));
            return;
        }
        let fastest = crate::model::matmul::Precision::fastest();
        if fastest == crate::model::matmul::Precision::F32 {
            ui.weak(
                "Photos indexed from now on are embedded in exact f32 arithmetic: this CPU runs no \
                 bf16 faster.",
            );
            return;
        }
        let mut exact = self.snapshot.exact_precision;
        if ui
            .checkbox(&mut exact, "Exact f32 arithmetic")
            .on_hover_text(format!(
                "Off, photos are embedded in {}, the fastest this CPU runs: their embeddings \
                 stay within cosine 0.999 of f32's. On, in f32, which takes longer here, and \
                 the photos embedded before in a 16-bit precision are embedded again.",
                fastest.name()
            ))
            .changed()
        {
            self.send(Command::SetPrecision { exact });
            // Photos embedded in a 16-bit precision are embedded again, in the background.
            if exact && !self.snapshot.roots.is_empty() {
                self.send(Command::Update);
            }
        }
        ui.weak(format!("Photos indexed from now on are embedded in {now}."));
    }

    /// The model asked for is loaded: re-embed the library with it.
    pub(super) fn model_loaded(&mut self) {
        // The way out of a model error was taken: its message goes.
        self.messages
            .retain(|m| !(m.error && m.text.to_lowercase().contains("model")));
        if std::mem::take(&mut self.windows.picker.switching) && !self.snapshot.roots.is_empty() {
            self.send(Command::Update);
        } else {
            self.resume_waiting();
        }
    }
}
