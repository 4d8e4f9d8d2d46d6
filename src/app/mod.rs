//! The desktop app: the only module that knows egui and eframe. It draws the library the worker
//! publishes and sends the worker commands; it never touches disk, SQLite or the model itself.

mod about;
mod detail;
mod editor;
mod events;
mod folders;
mod gallery;
mod histogram;
mod inspector;
pub mod model_picker;
mod paging;
mod review;
mod shortcuts;
mod sidebar;
mod signals;
mod status;
pub mod thumbnails;
mod toolbar;
pub mod tree;
mod window;

pub use window::{library_path, run, window_icon};

pub use sidebar::RowKey;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::export::csv::CsvForm;
use crate::library::{IndexSummary, LibrarySnapshot, ModelLoader, ModelStatus, Progress};
use crate::worker::{self, Command, WorkerHandle};

/// What the app remembers between launches (window size and panel widths are kept by eframe
/// and egui themselves).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// The library last opened.
    pub db: Option<PathBuf>,
    /// Where "Export CSV" writes.
    pub export_path: String,
    pub export_form: CsvForm,
    pub export_relative: bool,
    pub export_xmp: bool,
    pub xmp_adobe_names: bool,
    /// Gallery cell size in points.
    pub cell: f32,
    /// Whether the vocabulary panel is shown (it folds away for a wider gallery).
    pub show_vocabulary: bool,
    /// Whether the inspector (the photo and the label being edited) is shown. It stays in
    /// place whether or not anything is selected, so that selecting a photo never reflows the
    /// gallery under the pointer; it folds away for a wider gallery.
    pub show_inspector: bool,
}

impl Default for Settings {
    fn default() -> Self {
        // Always absolute: the Documents folder, else the home folder (a launcher starts the
        // app in `/` or `$HOME`, and a bare name would land wherever that is).
        let name = "cliptag-tags.csv";
        let export_path = directories::UserDirs::new()
            .map(|d| d.document_dir().unwrap_or(d.home_dir()).join(name))
            .or_else(|| std::path::absolute(name).ok())
            .unwrap_or_else(|| PathBuf::from(name));
        Settings {
            db: None,
            export_path: export_path.to_string_lossy().into_owned(),
            export_form: CsvForm::Wide,
            export_relative: false,
            export_xmp: false,
            xmp_adobe_names: false,
            cell: 160.0,
            show_vocabulary: true,
            show_inspector: true,
        }
    }
}

/// A line for the status bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub text: String,
    pub error: bool,
    pub at: Instant,
    /// A folder the message is about (where an export went), offered to open.
    pub folder: Option<PathBuf>,
}

/// A floating window of the app, first placed below the toolbar, across from the vocabulary:
/// opened where egui puts windows by default (the top left corner) it covered the toolbar's
/// buttons.
pub(super) fn floating<'a>(
    title: impl Into<egui::WidgetText>,
    ctx: &egui::Context,
) -> egui::Window<'a> {
    let area = ctx.content_rect();
    let x = (area.center().x - 240.0).max(area.left() + 8.0);
    egui::Window::new(title).default_pos(egui::pos2(x, area.top() + 64.0))
}

/// Results of native dialogs, which run on their own threads.
enum DialogResult {
    OpenFolder(PathBuf),
    ModelFolder(PathBuf),
    ExportPath(PathBuf),
    ImportVocabulary(PathBuf),
    ExportVocabulary(PathBuf),
    /// The system's dialog could not open (no desktop portal): the app's own way is used.
    Unavailable(DialogKind),
    /// The file manager could not show a folder, and why.
    NotShown {
        folder: PathBuf,
        reason: String,
    },
}

/// What a file dialog was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogKind {
    Folder,
    ModelFolder,
    ExportPath,
    ImportVocabulary,
    ExportVocabulary,
}

/// The whole app's state, by the region or concern it belongs to.
pub struct CliptagApp {
    pub settings: Settings,
    /// The library as the worker last described it, shared by every region.
    pub snapshot: Arc<LibrarySnapshot>,
    /// The background worker and what it reported.
    pub link: WorkerLink,
    /// The vocabulary panel (left) and the label editor.
    pub sidebar: sidebar::SidebarState,
    /// The gallery (middle): its filter, its rows, what it drew.
    pub gallery: paging::GalleryState,
    thumbnails: thumbnails::Thumbnails,
    /// The inspector (right): the selected photo and the tab shown.
    pub inspector: inspector::Inspector,
    /// The floating windows and the file dialogs.
    pub windows: Windows,
    /// The status bar's messages, newest last.
    pub messages: VecDeque<Message>,
    /// Whether the window was fitted to the screen it opened on.
    fitted: bool,
    /// Whether a text field had the keyboard when this frame began: the keys it took (Enter
    /// ends its editing) are not also the gallery's or the vocabulary tree's.
    typing: bool,
}

/// The app's link to its background worker, and what the worker last reported.
pub struct WorkerLink {
    worker: WorkerHandle,
    pub model: ModelStatus,
    pub indexing: bool,
    pub progress: Option<Progress>,
    pub last_summary: Option<IndexSummary>,
    /// Decisions sent to the worker and not yet stored (shown until they are).
    pub unsaved_decisions: std::cell::Cell<usize>,
    /// Whether the first snapshot was looked at for photos left waiting.
    resume_checked: bool,
    /// When the run now shown in the status bar began: messages from before it are old news.
    run_began: Option<Instant>,
}

/// The floating windows (export, problems, model, folders, shortcuts, about) and the file
/// dialogs.
pub struct Windows {
    pub show_problems: bool,
    pub show_export: bool,
    /// When the export window was last opened: it shows only what happened since.
    export_opened: Instant,
    /// Whether the keyboard-shortcut sheet is open (F1).
    pub show_shortcuts: bool,
    /// Whether the About window is open.
    pub show_about: bool,
    /// Whether the problems window asks to confirm removing the missing photos.
    pub confirm_prune: bool,
    /// What removing the missing photos would remove, counted on disk (a dry run's answer).
    prune_preview: Option<crate::library::PruneReport>,
    pub picker: model_picker::ModelPicker,
    /// The folders window, and the chooser drawn in the window where the system's dialog
    /// cannot open.
    pub folders: folders::FolderChooser,
    /// What the system's file dialogs answered, from their own threads.
    dialog_tx: crossbeam_channel::Sender<DialogResult>,
    dialog_rx: crossbeam_channel::Receiver<DialogResult>,
    /// The model folder or hub id typed where the model failed.
    model_text: String,
    /// The folder typed on the empty library's welcome.
    folder_text: String,
}

/// How long a frame may spend draining the worker's events.
const EVENT_BUDGET: Duration = Duration::from_millis(8);

impl CliptagApp {
    /// The app on the library at `db`; `waker` asks for a new frame (`ctx.request_repaint()`).
    pub fn new(
        waker: worker::Waker,
        settings: Settings,
        db: PathBuf,
        model: Option<String>,
        loader: Box<dyn ModelLoader>,
    ) -> Self {
        let worker = worker::spawn(db.clone(), model, loader, waker.clone());
        let thumbnail_db = Some(db.clone());
        let (dialog_tx, dialog_rx) = crossbeam_channel::unbounded();
        CliptagApp {
            settings: Settings {
                db: Some(db),
                ..settings
            },
            snapshot: Arc::new(LibrarySnapshot::default()),
            link: WorkerLink {
                worker,
                model: ModelStatus::NotLoaded,
                indexing: false,
                progress: None,
                last_summary: None,
                unsaved_decisions: std::cell::Cell::new(0),
                resume_checked: false,
                run_began: None,
            },
            sidebar: sidebar::SidebarState::default(),
            gallery: paging::GalleryState::default(),
            thumbnails: thumbnails::Thumbnails::new(2, thumbnail_db, waker),
            inspector: inspector::Inspector::default(),
            windows: Windows {
                show_problems: false,
                show_export: false,
                export_opened: Instant::now(),
                show_shortcuts: false,
                show_about: false,
                confirm_prune: false,
                prune_preview: None,
                picker: model_picker::ModelPicker::default(),
                folders: folders::FolderChooser::default(),
                dialog_tx,
                dialog_rx,
                model_text: String::new(),
                folder_text: String::new(),
            },
            messages: VecDeque::new(),
            fitted: false,
            typing: false,
        }
    }

    /// Sends a command to the worker.
    pub fn send(&self, command: Command) {
        if matches!(command, Command::Decide { .. }) {
            self.link
                .unsaved_decisions
                .set(self.link.unsaved_decisions.get() + 1);
        }
        self.link.worker.send(command);
    }

    fn say(&mut self, text: String, error: bool) {
        if error {
            crate::log::record(&text);
        }
        self.messages.push_back(Message {
            text,
            error,
            at: Instant::now(),
            folder: None,
        });
        while self.messages.len() > 50 {
            self.messages.pop_front();
        }
    }

    /// Takes in what the worker produced, within a few milliseconds; asks for another frame if
    /// more is waiting.
    pub fn pump(&mut self, ctx: &egui::Context) {
        let started = Instant::now();
        let mut more = false;
        while let Some(event) = self.link.worker.try_event() {
            self.apply(event);
            if started.elapsed() > EVENT_BUDGET {
                more = true;
                break;
            }
        }
        if let Some(snapshot) = self.link.worker.take_snapshot() {
            self.snapshot = snapshot;
            self.editor_follows_library();
            if !self.link.resume_checked {
                self.link.resume_checked = true;
                self.resume_waiting();
            }
        }
        while let Some(answer) = self.link.worker.try_gallery() {
            let gone = self.gallery.receive(answer);
            if self.inspector.selected.is_some_and(|id| gone.contains(&id)) {
                self.select(None);
            }
        }
        let progress = self.link.worker.progress();
        if progress.is_some() && self.link.progress.is_none() {
            self.link.run_began = Some(Instant::now());
        }
        self.link.progress = progress;
        while let Ok(result) = self.windows.dialog_rx.try_recv() {
            self.apply_dialog(result);
        }
        more |= self.thumbnails.upload(ctx);
        if more {
            ctx.request_repaint();
        }
    }

    fn apply_dialog(&mut self, result: DialogResult) {
        match result {
            DialogResult::OpenFolder(folder) => self.open_folder(folder),
            DialogResult::ModelFolder(folder) if self.windows.picker.open => {
                self.windows.picker.choice = folder.to_string_lossy().into_owned();
            }
            DialogResult::ModelFolder(folder) => {
                self.windows.model_text = folder.to_string_lossy().into_owned();
                self.send(Command::LoadModel(Some(self.windows.model_text.clone())));
            }
            DialogResult::ExportPath(path) => {
                self.settings.export_path = path.to_string_lossy().into_owned()
            }
            DialogResult::ImportVocabulary(path) => self.send(Command::ImportVocabulary(path)),
            DialogResult::ExportVocabulary(path) => self.send(Command::ExportVocabulary(path)),
            DialogResult::Unavailable(kind) => self.dialog_unavailable(kind),
            DialogResult::NotShown { folder, reason } => {
                self.windows.folders.not_shown = Some((folder, reason))
            }
        }
    }

    /// Photos found but not yet tagged (a run closed midway, or no model then) are indexed
    /// now: on opening the library, and when a model becomes available.
    pub(super) fn resume_waiting(&mut self) {
        let waiting = self.snapshot.waiting;
        if waiting > 0 && !self.snapshot.roots.is_empty() && !self.link.indexing {
            self.say(
                format!(
                    "{waiting} photo{} waiting for tags: indexing goes on",
                    if waiting == 1 { " was" } else { "s were" }
                ),
                false,
            );
            self.send(Command::Update);
        }
    }

    /// Adds a folder to the library and indexes it.
    /// (The worker checks the path: even a `stat` can stall on a sleeping network drive, and the
    /// UI thread never touches the disk.)
    /// Adds the folders named on the command line or by the file manager (a photo stands for
    /// its folder) to the library and indexes them.
    pub fn open_paths(&mut self, paths: Vec<PathBuf>) {
        if paths.is_empty() {
            return;
        }
        self.say(format!("adding {}", window::describe_paths(&paths)), false);
        self.send(Command::Index { roots: paths });
    }

    pub fn open_folder(&mut self, folder: PathBuf) {
        self.say(format!("indexing {}", folder.display()), false);
        self.send(Command::Index {
            roots: vec![folder],
        });
    }

    /// Runs a native dialog on its own thread (it blocks until the person answers). Where the
    /// system has none (or it failed before), the app's own way opens instead; a dialog that
    /// answers "nothing chosen" faster than a person could is taken as one that failed.
    fn dialog(
        &mut self,
        kind: DialogKind,
        run: impl FnOnce() -> Option<DialogResult> + Send + 'static,
    ) {
        if !self.windows.folders.system_dialog {
            self.dialog_unavailable(kind);
            return;
        }
        let tx = self.windows.dialog_tx.clone();
        std::thread::spawn(move || {
            let asked = Instant::now();
            match run() {
                Some(result) => {
                    let _ = tx.send(result);
                }
                None if asked.elapsed() < folders::FAILED_WITHIN => {
                    let _ = tx.send(DialogResult::Unavailable(kind));
                }
                None => {}
            }
        });
    }

    /// How far the gallery is scrolled down, in points, as last drawn.
    pub fn gallery_scroll_offset(&self) -> f32 {
        self.gallery.viewport.0
    }

    /// Selects a photo and asks for its scores.
    pub fn select(&mut self, image_id: Option<i64>) {
        if self.inspector.selected == image_id {
            return;
        }
        self.inspector.selected = image_id;
        self.inspector.detail = None;
        if let Some(id) = image_id {
            self.send(Command::Detail { image_id: id });
        }
    }

    /// Draws the whole window. Separate from eframe's `App::ui` so that tests and the frame-time
    /// benchmark can run it without a window.
    pub fn ui_root(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        self.typing = ctx.memory(|m| m.focused().is_some());
        self.fit_to_screen(&ctx);
        self.pump(&ctx);
        self.handle_dropped_files(&ctx);
        self.history_keys(&ctx);

        egui::Panel::top("toolbar").show(ui, |ui| self.toolbar_ui(ui));
        egui::Panel::bottom("status").show(ui, |ui| {
            // Help at the bar's right end, where it stays put whatever the bar says; the
            // toolbar has no room left on a laptop's screen.
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.menu_button("Help", |ui| {
                    if ui.button("Keyboard shortcuts (F1)").clicked() {
                        self.windows.show_shortcuts = true;
                    }
                    if ui.button("About cliptag").clicked() {
                        self.windows.show_about = true;
                    }
                });
                ui.with_layout(egui::Layout::left_to_right(egui::Align::Center), |ui| {
                    self.status_ui(ui)
                });
            });
        });
        // At most 40 % of the window: dragged wider, it would squeeze the gallery to nothing.
        let widest = (ui.available_width() * 0.4).max(220.0);
        if self.settings.show_vocabulary {
            egui::Panel::left("vocabulary")
                .resizable(true)
                .default_size(300.0_f32.min(widest))
                .min_size(200.0)
                .max_size(widest)
                .show(ui, |ui| self.sidebar_ui(ui));
        }
        self.follow_inspector();
        let welcome = self.snapshot.photos == 0 && self.snapshot.roots.is_empty();
        if self.settings.show_inspector && !welcome {
            // At most under half of what the sidebar leaves: the gallery's cells shrink to keep two
            // columns beside it on a laptop screen.
            let most = (ui.available_width() * 0.46).max(280.0);
            egui::Panel::right("inspector")
                .resizable(true)
                .default_size(340.0_f32.min(most))
                .min_size(260.0)
                .max_size(most)
                .show(ui, |ui| self.inspector_ui(ui));
        }
        egui::CentralPanel::default().show(ui, |ui| {
            if self.snapshot.photos == 0 && self.snapshot.roots.is_empty() && !self.link.indexing {
                self.welcome_ui(ui);
            } else {
                self.gallery_ui(ui);
            }
        });
        self.export_window(&ctx);
        self.model_window(&ctx);
        self.problems_window(&ctx);
        self.folders_window(&ctx);
        self.not_shown_window(&ctx);
        self.shortcuts_window(&ctx);
        self.about_window(&ctx);
        self.path_prompt_window(&ctx);

        if self.link.indexing {
            // Keep the progress bar moving even without worker events.
            ctx.request_repaint_after(Duration::from_millis(250));
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        // A dropped photo stands for its folder; the worker sorts that out.
        for path in dropped {
            self.open_folder(path);
        }
    }
}

impl eframe::App for CliptagApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.ui_root(ui);
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        // Keep draining while the window is hidden, so the worker's queue never grows.
        if ctx.input(|i| i.viewport().minimized == Some(true)) {
            self.pump(ctx);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        // The person's queued decisions and edits are stored first; closing the window must
        // not wait long for a model download or a batch in the encoder.
        self.link.worker.shutdown(SHUTDOWN_BOUND);
    }
}

/// How long closing waits for the worker to store what the person queued (a batch in the encoder
/// finishes first).
const SHUTDOWN_BOUND: Duration = Duration::from_secs(5);
