//! Adding folders where the system's folder dialog cannot open: many desktops (a bare window
//! manager, X11 without a desktop portal) have none, and the dialog then fails without a word. The
//! app's own chooser lists the library's folders and takes a typed or pasted path; the system
//! dialog stays one click away where it works.

use std::path::PathBuf;
use std::time::Duration;

use super::{CliptagApp, DialogKind, DialogResult};

/// How quickly a file dialog that answers "nothing chosen" must have failed rather than been
/// cancelled: no person cancels a dialog this fast.
pub(super) const FAILED_WITHIN: Duration = Duration::from_millis(400);

/// The in-window folder chooser.
#[derive(Debug, Clone)]
pub struct FolderChooser {
    /// Whether the window is open.
    pub open: bool,
    /// The path being typed.
    pub text: String,
    /// Whether the system's folder dialog may be tried (no: the chooser opens at once).
    pub system_dialog: bool,
    /// Why the system dialog is not used, said once in the window.
    pub why: Option<String>,
    /// A path being typed in place of a file dialog, and what it is for.
    pub prompt: Option<(DialogKind, String)>,
    /// The program that shows a folder in the file manager.
    pub opener: String,
    /// A folder the file manager could not show, and why: shown with its path to copy.
    pub not_shown: Option<(PathBuf, String)>,
    /// The library folder whose removal waits for the person to confirm it.
    pub removing: Option<PathBuf>,
    /// Whether the path field takes the keyboard when the window next draws (it was opened to
    /// add a folder).
    pub(super) focus_path: bool,
}

impl Default for FolderChooser {
    fn default() -> Self {
        // The dialog goes through the desktop portal over the session bus; without a bus it
        // cannot open at all.
        let bus = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some();
        FolderChooser {
            open: false,
            text: String::new(),
            system_dialog: bus,
            why: (!bus).then(|| NO_DIALOG.to_string()),
            prompt: None,
            opener: if cfg!(target_os = "macos") {
                "open"
            } else if cfg!(target_os = "windows") {
                "explorer"
            } else {
                "xdg-open"
            }
            .to_string(),
            not_shown: None,
            removing: None,
            focus_path: false,
        }
    }
}

/// A path as a person types or pastes it: surrounding quotes (a file manager's "Copy" often adds
/// them) are dropped, and `~` is their home folder, as in a shell.
pub fn typed_path(text: &str) -> PathBuf {
    let text = text.trim();
    let text = ['"', '\'']
        .iter()
        .find_map(|q| text.strip_prefix(*q).and_then(|t| t.strip_suffix(*q)))
        .unwrap_or(text);
    let home = || directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
    if text == "~" {
        return home().unwrap_or_else(|| PathBuf::from(text));
    }
    if let Some(rest) = text.strip_prefix("~/")
        && let Some(home) = home()
    {
        return home.join(rest);
    }
    PathBuf::from(text)
}

/// The path field's example: the person's own Pictures folder.
fn example_folder() -> String {
    directories::UserDirs::new()
        .and_then(|d| d.picture_dir().map(|p| p.display().to_string()))
        .or_else(|| {
            directories::BaseDirs::new()
                .map(|b| b.home_dir().join("Pictures").display().to_string())
        })
        .unwrap_or_else(|| "/home/me/Pictures".into())
}

const NO_DIALOG: &str = "This desktop has no file dialog cliptag can open (no desktop portal): \
                         type or paste the path.";

impl CliptagApp {
    /// Opens `folder` in the system's file manager, on a thread of its own (the opener may take
    /// a while); where that fails (no opener installed, none configured), the folder's path is
    /// shown with a button that copies it.
    pub(super) fn show_folder(&mut self, folder: PathBuf) {
        let tx = self.windows.dialog_tx.clone();
        let opener = self.windows.folders.opener.clone();
        std::thread::spawn(move || {
            let reason = match std::process::Command::new(&opener)
                .arg(&folder)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
            {
                Ok(status) if status.success() => return,
                Ok(status) => format!("{opener} could not open it ({status})"),
                Err(e) => format!("{opener} could not run: {e}"),
            };
            let _ = tx.send(DialogResult::NotShown { folder, reason });
        });
    }

    /// The folder the file manager could not show: its path, selectable and copyable.
    pub(super) fn not_shown_window(&mut self, ctx: &egui::Context) {
        let Some((folder, reason)) = self.windows.folders.not_shown.clone() else {
            return;
        };
        let mut open = true;
        let mut close = false;
        super::floating("Open the folder yourself", ctx)
            .open(&mut open)
            .collapsible(false)
            .resizable(false)
            .default_width(420.0)
            .show(ctx, |ui| {
                ui.label(format!("The file manager could not be opened: {reason}."));
                let mut text = folder.display().to_string();
                ui.add(
                    egui::TextEdit::singleline(&mut text)
                        .desired_width(ui.available_width().min(400.0))
                        .interactive(true),
                );
                ui.horizontal(|ui| {
                    if ui.button("Copy path").clicked() {
                        ui.ctx().copy_text(folder.display().to_string());
                        self.say(format!("copied {}", folder.display()), false);
                    }
                    close = ui.button("Close").clicked();
                });
            });
        if !open || close {
            self.windows.folders.not_shown = None;
        }
    }

    /// The system's file dialog could not open: the app's own way is used from now on, and
    /// says why once.
    pub(super) fn dialog_unavailable(&mut self, kind: DialogKind) {
        self.windows.folders.system_dialog = false;
        self.windows
            .folders
            .why
            .get_or_insert_with(|| NO_DIALOG.to_string());
        match kind {
            DialogKind::Folder => {
                self.windows.folders.open = true;
                self.windows.folders.focus_path = true;
            }
            DialogKind::ImportVocabulary | DialogKind::ExportVocabulary => {
                let start = match kind {
                    DialogKind::ExportVocabulary => self
                        .settings
                        .export_path
                        .rsplit_once('/')
                        .map(|(folder, _)| format!("{folder}/vocabulary.toml"))
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                self.windows.folders.prompt = Some((kind, start));
            }
            DialogKind::ModelFolder | DialogKind::ExportPath => self.say(
                "This desktop has no file dialog cliptag can open (no desktop portal): type or \
                 paste the path in the field beside the button."
                    .into(),
                false,
            ),
        }
    }

    /// The folders window: the library's folders, and a folder to add by its path.
    pub(super) fn folders_window(&mut self, ctx: &egui::Context) {
        let mut open = self.windows.folders.open;
        let mut add: Option<PathBuf> = None;
        let mut remove: Option<PathBuf> = None;
        super::floating("Folders", ctx)
            .open(&mut open)
            .collapsible(false)
            .resizable(true)
            .default_width(460.0)
            .show(ctx, |ui| {
                if let Some(why) = &self.windows.folders.why {
                    ui.label(why);
                    ui.add_space(4.0);
                }
                ui.horizontal(|ui| {
                    let label = ui.label("Folder to add");
                    let edit = ui
                        .add(
                            egui::TextEdit::singleline(&mut self.windows.folders.text)
                                .desired_width(280.0)
                                .hint_text(example_folder()),
                        )
                        .labelled_by(label.id);
                    if std::mem::take(&mut self.windows.folders.focus_path) {
                        edit.request_focus();
                    }
                    let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
                    let typed = self.windows.folders.text.trim();
                    let clicked = ui
                        .add_enabled(!typed.is_empty(), egui::Button::new("Add folder"))
                        .clicked();
                    if (clicked || enter) && !typed.is_empty() {
                        add = Some(typed_path(typed));
                    }
                });
                ui.label("A folder dropped onto the window is added too.");
                ui.separator();
                ui.strong("In this library");
                if self.snapshot.folders.is_empty() {
                    ui.label("No folders yet.");
                }
                egui::ScrollArea::vertical()
                    .max_height(220.0)
                    .auto_shrink([false, true])
                    .show(ui, |ui| self.library_folders(ui, &mut remove));
            });
        self.windows.folders.open = open;
        if !open {
            self.windows.folders.removing = None;
        }
        if let Some(folder) = add {
            self.windows.folders.text.clear();
            self.open_folder(folder);
        }
        if let Some(folder) = remove {
            self.windows.folders.removing = None;
            self.say(
                format!("removing {} from the library…", folder.display()),
                false,
            );
            self.send(crate::worker::Command::RemoveFolder(folder));
        }
    }

    /// The library's folders, each with what it holds and a way to take it out of the library
    /// (asked first: it says what goes and what is kept).
    fn library_folders(&mut self, ui: &mut egui::Ui, remove: &mut Option<PathBuf>) {
        let count = crate::library::count;
        for folder in &self.snapshot.folders {
            ui.add(
                egui::Label::new(egui::RichText::new(folder.path.display().to_string()).strong())
                    .truncate(),
            )
            .on_hover_text(folder.path.display().to_string());
            ui.horizontal(|ui| {
                let mut what = vec![count(folder.photos, "photo", "photos")];
                if folder.waiting > 0 {
                    what.push(format!("{} waiting", folder.waiting));
                }
                if folder.problems > 0 {
                    what.push(count(folder.problems, "problem", "problems"));
                }
                ui.label(what.join(" · "));
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    let asking = self.windows.folders.removing.as_ref() == Some(&folder.path);
                    let button = ui
                        .add_enabled(!self.link.indexing && !asking, egui::Button::new("Remove…"))
                        .on_hover_text(
                            "Take this folder out of the library; its files stay on disk",
                        )
                        .on_disabled_hover_text(if self.link.indexing {
                            "Wait for indexing to finish, or stop it, to remove a folder"
                        } else {
                            "Confirm below"
                        });
                    if button.clicked() {
                        self.windows.folders.removing = Some(folder.path.clone());
                    }
                });
            });
            if self.windows.folders.removing.as_ref() == Some(&folder.path) {
                egui::Frame::group(ui.style()).show(ui, |ui| {
                    ui.label(format!(
                        "Take this folder out of the library? Its {} leave the library; the \
                         files stay on disk. The decisions you made on them are kept, and come \
                         back if you add the folder again.",
                        count(folder.photos, "photo", "photos")
                    ));
                    ui.horizontal(|ui| {
                        if ui
                            .add_enabled(!self.link.indexing, egui::Button::new("Remove folder"))
                            .clicked()
                        {
                            *remove = Some(folder.path.clone());
                        }
                        if ui.button("Cancel").clicked() {
                            self.windows.folders.removing = None;
                        }
                    });
                });
            }
            ui.add_space(4.0);
        }
    }

    /// A path typed in place of a file dialog (importing or exporting the vocabulary).
    pub(super) fn path_prompt_window(&mut self, ctx: &egui::Context) {
        let Some((kind, _)) = &self.windows.folders.prompt else {
            return;
        };
        let kind = *kind;
        let title = match kind {
            DialogKind::ImportVocabulary => "Import vocabulary",
            _ => "Export vocabulary",
        };
        let mut open = true;
        let mut chosen: Option<PathBuf> = None;
        super::floating(title, ctx)
            .open(&mut open)
            .collapsible(false)
            .default_width(460.0)
            .show(ctx, |ui| {
                if let Some(why) = &self.windows.folders.why {
                    ui.label(why);
                }
                ui.horizontal(|ui| {
                    let label = ui.label("Vocabulary file");
                    let Some((_, text)) = self.windows.folders.prompt.as_mut() else {
                        return;
                    };
                    ui.add(egui::TextEdit::singleline(text).desired_width(300.0))
                        .labelled_by(label.id);
                    let typed = text.trim().to_string();
                    let verb = if kind == DialogKind::ImportVocabulary {
                        "Import"
                    } else {
                        "Export"
                    };
                    if ui
                        .add_enabled(!typed.is_empty(), egui::Button::new(verb))
                        .clicked()
                    {
                        chosen = Some(PathBuf::from(typed));
                    }
                });
            });
        if let Some(path) = chosen {
            self.windows.folders.prompt = None;
            let result = match kind {
                DialogKind::ImportVocabulary => DialogResult::ImportVocabulary(path),
                _ => DialogResult::ExportVocabulary(path),
            };
            self.apply_dialog(result);
        } else if !open {
            self.windows.folders.prompt = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_path_may_start_at_home_and_be_quoted() {
        let home = directories::BaseDirs::new()
            .unwrap()
            .home_dir()
            .to_path_buf();
        assert_eq!(typed_path(" ~/Pictures "), home.join("Pictures"));
        assert_eq!(typed_path("~"), home);
        assert_eq!(
            typed_path("'/tmp/My Photos'"),
            PathBuf::from("/tmp/My Photos")
        );
        assert_eq!(typed_path("\"/tmp/a\""), PathBuf::from("/tmp/a"));
        // Only a leading ~ is the home folder; another person's (~bob) is left as typed.
        assert_eq!(typed_path("/tmp/~x"), PathBuf::from("/tmp/~x"));
        assert_eq!(typed_path("~bob/x"), PathBuf::from("~bob/x"));
    }
}
