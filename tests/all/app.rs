//! The desktop app through its accessible labels (egui_kittest: no display, no GPU): the three
//! journeys (add a label, move a threshold, export), progress and cancel, errors shown, and a
//! missing model.

use std::path::Path;
use std::time::{Duration, Instant};

use cliptag::app::{CliptagApp, Settings};
use cliptag::domain::{ImageStatus, Label};
use cliptag::library::{ClipLoader, ModelStatus};
use cliptag::store::Store;
use cliptag::worker;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use crate::indexing::{fixture_photos, photo_folder};
use crate::support::*;

/// A library at `db` with the fixture photos indexed by the tiny model (no vocabulary).
pub(crate) fn indexed_library(db: &Path) -> tempfile::TempDir {
    let photos = photo_folder(&fixture_photos());
    index_with_tiny(db, photos.path());
    // Start from an empty vocabulary so the tests see only their own labels.
    let mut store = Store::open(db).unwrap();
    for label in store.labels().unwrap() {
        assert!(store.remove_label(label.id).unwrap());
    }
    photos
}

/// Stores a label with threshold -1, which tags every photo once the library is re-tagged.
pub(crate) fn add_label_that_tags_everything(db: &Path, name: &str) {
    let mut store = Store::open(db).unwrap();
    store
        .insert_label(&Label {
            threshold: -1.0,
            ..Label::new(name, "")
        })
        .unwrap();
}

pub(crate) fn app_harness(db: &Path, model: &str) -> Harness<'static, CliptagApp> {
    let settings = Settings::default();
    let app = CliptagApp::new(
        worker::no_waker(),
        settings,
        db.to_path_buf(),
        Some(model.to_string()),
        Box::new(ClipLoader),
    );
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_ui_state(|ui, app: &mut CliptagApp| app.ui_root(ui), app)
}

/// Steps the app until `done` holds (the worker answers asynchronously).
pub(crate) fn step_until(
    harness: &mut Harness<'static, CliptagApp>,
    what: &str,
    mut done: impl FnMut(&mut Harness<'static, CliptagApp>) -> bool,
) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        harness.step();
        if done(harness) {
            // What just appeared (a panel, an editor) may move on the next frames as the
            // layout settles: let it, so that a click aims where the widget stays.
            harness.step();
            harness.step();
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let messages: Vec<String> = harness
        .state()
        .messages
        .iter()
        .map(|m| m.text.clone())
        .collect();
    panic!("timed out waiting for {what}; messages: {messages:?}");
}

/// Drags the primary button from `from` to `to` in a few steps, as a hand does.
pub(crate) fn drag(harness: &mut Harness<'static, CliptagApp>, from: egui::Pos2, to: egui::Pos2) {
    let button = |pos, pressed| egui::Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::default(),
    };
    harness.event(egui::Event::PointerMoved(from));
    harness.step();
    harness.event(button(from, true));
    harness.step();
    for i in 1..=8 {
        harness.event(egui::Event::PointerMoved(from.lerp(to, i as f32 / 8.0)));
        harness.step();
    }
    harness.event(button(to, false));
    harness.step();
}

/// Focuses the field labelled `label` and types `text` into it.
pub(crate) fn type_into(harness: &mut Harness<'static, CliptagApp>, label: &str, text: &str) {
    harness.get_by_label(label).focus();
    harness.step();
    harness.get_by_label(label).type_text(text);
    harness.step();
}

/// Whether the gallery shows the answer to its filter as the library is now.
pub(crate) fn gallery_is_current(harness: &Harness<'static, CliptagApp>) -> bool {
    let app = harness.state();
    app.gallery.is_current(app.snapshot.version)
}

pub(crate) fn label_count(app: &CliptagApp, name: &str) -> Option<usize> {
    app.snapshot
        .labels
        .iter()
        .find(|l| l.label.name == name)
        .map(|l| l.count)
}

pub(crate) fn has_label(harness: &Harness<'static, CliptagApp>, text: &str) -> bool {
    harness.query_all_by_label_contains(text).next().is_some()
}

/// Whether the label editor shows the preview of the draft as it is now (not one still on its
/// way, which would add rows and move the buttons under a click).
fn preview_settled(harness: &Harness<'static, CliptagApp>) -> bool {
    harness
        .query_all_by_label_contains("With these changes:")
        .next()
        .and_then(|n| {
            let node = n.accesskit_node();
            node.label().or_else(|| node.value())
        })
        .is_some_and(|text| !text.ends_with('…'))
}

fn threshold<'h>(harness: &'h Harness<'static, CliptagApp>) -> egui_kittest::Node<'h> {
    harness.get_by_role_and_label(egui::accesskit::Role::Slider, "Threshold")
}

#[test]
fn adding_a_label_in_the_sidebar_stores_it_and_tags_photos() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        h.state().snapshot.photos == 10 && h.state().gallery.visible().len() == 10
    });
    assert!(has_label(&harness, "10 photos"));

    type_into(&mut harness, "New label", "Anything");
    harness.get_by_label("Add").click();
    step_until(&mut harness, "the new label's tags", |h| {
        label_count(h.state(), "Anything").is_some_and(|n| n > 0)
    });
    drop(harness);

    let store = Store::open(&db).unwrap();
    let (label_id, _) = store.label_id_by_name("Anything").unwrap().expect("stored");
    let tagged = store
        .tags()
        .unwrap()
        .into_iter()
        .filter(|t| t.label_id == label_id)
        .count();
    assert!(tagged > 0, "no photo was tagged");
}

#[test]
fn moving_a_threshold_changes_the_live_count_and_the_tags() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add_label_that_tags_everything(&db, "Anything");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the label", |h| has_label(h, "Anything (0)"));
    // Opening the label for editing previews it: saved as it is.
    harness.get_by_label("Anything (0)").click();
    step_until(&mut harness, "the editor", |h| {
        has_label(h, "Tags 0 photos as stored") && has_label(h, "Saved")
    });
    assert!(harness.get_by_label("Apply").accesskit_node().is_disabled());

    // Move the threshold to the top: a draft, previewed, not stored.
    threshold(&harness).set_value_accesskit(1.0);
    step_until(&mut harness, "the strict preview", |h| {
        has_label(h, "With these changes: 0 photos") && has_label(h, "Not saved")
    });
    // Near the bottom: the preview counts every photo; nothing is tagged until Apply.
    threshold(&harness).set_value_accesskit(-0.99);
    step_until(&mut harness, "the loose preview", |h| {
        has_label(h, "With these changes: 10 photos (+10 / -0)")
    });
    assert_eq!(label_count(harness.state(), "Anything"), Some(0));
    harness.get_by_label("Apply").click();
    step_until(&mut harness, "every photo tagged", |h| {
        label_count(h.state(), "Anything") == Some(10) && has_label(h, "Saved")
    });
    assert!(has_label(&harness, "Anything (10)"));
    assert!(has_label(&harness, "Tags 10 photos as stored"));
    // A value midway between the lowest and the highest score tags some photos but not all.
    // It is read from the preview, because the slider spans only where the scores are: a
    // fixed value outside that span would be clamped to its end.
    let middle = {
        let app = harness.state();
        let editor = app.sidebar.editor.as_ref().unwrap();
        let preview = &app.sidebar.previews[&editor.draft.id];
        assert!(preview.histogram.high > preview.histogram.low);
        let middle = (preview.histogram.low + preview.histogram.high) / 2.0;
        // On the slider's own step, so the value set is the value stored.
        (middle / 0.005).round() * 0.005
    };
    threshold(&harness).set_value_accesskit(middle as f64);
    // Clicks land where a button was drawn: wait until the preview has arrived and the editor's
    // rows stopped moving.
    step_until(&mut harness, "the middle preview", |h| {
        has_label(h, "Not saved") && preview_settled(h)
    });
    let set = harness
        .state()
        .sidebar
        .editor
        .as_ref()
        .unwrap()
        .draft
        .threshold;
    assert!(
        (set - middle).abs() < 1e-6,
        "slider set {set}, asked {middle}"
    );
    harness.get_by_label("Apply").click();
    step_until(&mut harness, "some photos tagged", |h| {
        label_count(h.state(), "Anything").is_some_and(|n| n > 0 && n < 10)
    });
    // Revert goes back to what is stored.
    threshold(&harness).set_value_accesskit(0.9);
    step_until(&mut harness, "another draft", |h| {
        has_label(h, "Not saved") && preview_settled(h)
    });
    harness.get_by_label("Revert").click();
    step_until(&mut harness, "the stored label", |h| has_label(h, "Saved"));
    let reverted = harness
        .state()
        .sidebar
        .editor
        .as_ref()
        .unwrap()
        .draft
        .threshold;
    assert!((reverted - middle).abs() < 1e-6, "reverted to {reverted}");
    let shown = label_count(harness.state(), "Anything").unwrap();
    drop(harness);
    let store = Store::open(&db).unwrap();
    let (label_id, _) = store.label_id_by_name("Anything").unwrap().unwrap();
    let label = store.label(label_id).unwrap().unwrap();
    assert!(
        (label.threshold - middle).abs() < 1e-6,
        "stored threshold {}",
        label.threshold
    );
    assert_eq!(store.tags().unwrap().len(), shown);
}

#[test]
fn exporting_writes_a_csv_with_the_expected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add_label_that_tags_everything(&db, "Everything");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    // Any vocabulary change re-tags; use the Re-tag button to tag with the label just stored.
    step_until(&mut harness, "the gallery", |h| {
        h.state().snapshot.photos == 10 && h.state().gallery.visible().len() == 10
    });
    harness.get_by_label("Re-tag").click();
    step_until(&mut harness, "tags", |h| {
        label_count(h.state(), "Everything") == Some(10)
    });

    harness.get_by_label("Export tags…").click();
    step_until(&mut harness, "the export window", |h| {
        h.query_by_label("CSV file").is_some()
    });
    let csv = dir.path().join("out.csv");
    harness.get_by_label("CSV file").focus();
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.step();
    harness
        .get_by_label("CSV file")
        .type_text(csv.to_str().unwrap());
    harness.step();
    harness.get_by_label("Export CSV").click();
    step_until(&mut harness, "the export", |h| {
        has_label(h, "wrote 10 rows")
    });

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut reader = ::csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 10);
    assert!(
        rows.iter()
            .all(|r| r[1] == "Everything" && Path::new(&r[0]).is_absolute()),
        "{rows:?}"
    );
}

fn big_folder(count: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..count {
        let image = image::RgbImage::from_fn(900, 600, |x, y| {
            image::Rgb([(x * 7 + i) as u8, (y * 3) as u8, (x ^ y) as u8])
        });
        image.save(dir.path().join(format!("{i:04}.jpg"))).unwrap();
    }
    dir
}

#[test]
fn indexing_shows_progress_and_cancel_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = big_folder(400);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the welcome screen", |h| {
        has_label(h, "Welcome to cliptag")
    });
    type_into(&mut harness, "Folder", photos.path().to_str().unwrap());
    harness.get_by_label("Index").click();
    // The status bar shows "done / total" on a progress bar, with a rate.
    step_until(&mut harness, "progress", |h| {
        h.state()
            .link
            .progress
            .as_ref()
            .is_some_and(|p| p.total == 400 && p.done > 0)
            && has_label(h, "photos/s")
    });
    assert!(has_label(&harness, " / 400"));
    harness.get_by_label("Pause").click();
    step_until(&mut harness, "the pause", |h| has_label(h, "paused"));
    harness.get_by_label("Cancel").click();
    step_until(&mut harness, "the cancel", |h| {
        has_label(h, "indexing cancelled")
    });
    let summary = harness.state().link.last_summary.clone().unwrap();
    assert!(summary.cancelled && summary.indexed < 400, "{summary:?}");
    drop(harness);
    let store = Store::open(&db).unwrap();
    let ok = store
        .images()
        .unwrap()
        .iter()
        .filter(|i| i.status == ImageStatus::Ok)
        .count();
    assert_eq!(ok as u64, summary.indexed);
}

#[test]
fn an_error_is_shown_to_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the vocabulary", |h| {
        !h.state().snapshot.labels.is_empty()
    });
    type_into(&mut harness, "New label", "animals/dog");
    harness.get_by_label("Add").click();
    step_until(&mut harness, "the error", |h| {
        has_label(h, "already has a label \"Animals/Dog\"")
    });
    assert!(harness.state().messages.back().unwrap().error);
}

#[test]
fn the_app_opens_and_works_without_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = photo_folder(&fixture_photos()[..2]);
    let mut harness = app_harness(&db, "/no/such/model");
    step_until(&mut harness, "the welcome screen", |h| {
        has_label(h, "Welcome to cliptag")
    });
    // Indexing needs the model: the app says what is wrong and how to fix it.
    type_into(&mut harness, "Folder", photos.path().to_str().unwrap());
    harness.get_by_label("Index").click();
    step_until(&mut harness, "the model error", |h| {
        matches!(h.state().link.model, ModelStatus::Failed(_))
    });
    step_until(&mut harness, "the banner", |h| {
        has_label(h, "The model is not available")
    });
    assert!(has_label(&harness, "/no/such/model"));
    assert!(harness.query_by_label("Retry").is_some());
    assert!(harness.query_by_label("Choose folder…").is_some());
    // The rest still works: the vocabulary can be edited.
    type_into(&mut harness, "New label", "Sunsets");
    harness.get_by_label("Add").click();
    step_until(&mut harness, "the label", |h| {
        label_count(h.state(), "Sunsets").is_some()
    });

    // Pointing it at a real model folder fixes it.
    type_into(
        &mut harness,
        "Model folder or hub id:",
        tiny_clip().to_str().unwrap(),
    );
    // The photos were registered without it, as waiting for tags.
    step_until(&mut harness, "the waiting photos", |h| {
        h.state().snapshot.waiting == 2
    });
    harness.get_by_label("Use this model").click();
    step_until(&mut harness, "the model", |h| {
        matches!(h.state().link.model, ModelStatus::Ready(_))
    });
    // With the model chosen they are tagged with no other action, and the model's error goes.
    step_until(&mut harness, "the photos indexed", |h| {
        let snapshot = &h.state().snapshot;
        snapshot.indexed == 2 && snapshot.waiting == 0
    });
    assert!(
        !harness
            .state()
            .messages
            .iter()
            .any(|m| m.error && m.text.contains("model")),
        "the model's error stays"
    );
}

/// Where the system's folder dialog cannot open (here: it failed, as without a desktop portal),
/// "Open folder…" opens the app's own chooser, which adds a typed folder.
#[test]
fn the_folder_chooser_opens_in_the_window_where_the_system_has_none() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let first = indexed_library(&db);
    let second = photo_folder(&fixture_photos()[..2]);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        h.state().snapshot.indexed > 0
    });
    let before = harness.state().snapshot.photos;
    harness.state_mut().windows.folders.system_dialog = false;
    harness.get_by_label("Open folder…").click();
    step_until(&mut harness, "the folder chooser", |h| {
        has_label(h, "Folder to add")
    });
    assert!(has_label(
        &harness,
        &first.path().canonicalize().unwrap().display().to_string()
    ));
    type_into(
        &mut harness,
        "Folder to add",
        second.path().to_str().unwrap(),
    );
    harness.get_by_label("Add folder").click();
    step_until(&mut harness, "the second folder's photos", |h| {
        h.state().snapshot.photos == before + 2 && h.state().snapshot.roots.len() == 2
    });
}

#[test]
fn the_default_export_path_is_absolute() {
    assert!(std::path::Path::new(&Settings::default().export_path).is_absolute());
}

/// A library closed while photos were still waiting says so on opening and finishes them by
/// itself.
#[test]
fn photos_left_waiting_are_indexed_when_the_library_opens() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = photo_folder(&fixture_photos()[..3]);
    let cache = dir.path().join("empty-hf-home");
    // Registered without a model (offline, nothing cached): all three wait.
    let output = cliptag_with_env(
        &[
            "index",
            "--db",
            db.to_str().unwrap(),
            photos.path().to_str().unwrap(),
        ],
        &[("HF_HOME", cache.to_str().unwrap())],
    );
    assert!(!output.status.success());
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the photos indexed", |h| {
        let snapshot = &h.state().snapshot;
        snapshot.indexed == 3 && snapshot.waiting == 0
    });
    assert!(
        harness
            .state()
            .messages
            .iter()
            .any(|m| m.text.contains("3 photos were waiting for tags")),
        "{:?}",
        harness.state().messages
    );
}

#[test]
fn the_label_editor_draws_a_histogram_whose_threshold_can_be_dragged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    {
        let mut store = Store::open(&db).unwrap();
        store.insert_label(&Label::new("Anything", "")).unwrap();
    }
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the label", |h| has_label(h, "Anything ("));
    harness.get_by_label_contains("Anything (").click();
    step_until(&mut harness, "the histogram", |h| {
        h.query_by_label("Score histogram of Anything").is_some()
    });
    // Drag the threshold line to the histogram's left end: every photo passes.
    let rect = harness.get_by_label("Score histogram of Anything").rect();
    drag(
        &mut harness,
        rect.center(),
        rect.left_center() - egui::vec2(5.0, 0.0),
    );
    step_until(&mut harness, "the preview of the dragged threshold", |h| {
        has_label(h, "With these changes: 10 photos")
    });
    // Apply stores it.
    harness.get_by_label("Apply").click();
    step_until(&mut harness, "the tags", |h| {
        label_count(h.state(), "Anything") == Some(10)
    });
    drop(harness);
    let store = Store::open(&db).unwrap();
    let (id, _) = store.label_id_by_name("Anything").unwrap().unwrap();
    let stored = store.label(id).unwrap().unwrap();
    assert!(
        stored.threshold < 0.26,
        "stored threshold {}",
        stored.threshold
    );
}

#[test]
fn keys_review_a_label_and_learn_applies_the_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add_label_that_tags_everything(&db, "Zorblax");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        h.state().snapshot.photos == 10 && h.state().gallery.visible().len() == 10
    });
    harness.get_by_label("Re-tag").click();
    step_until(&mut harness, "the tags", |h| {
        label_count(h.state(), "Zorblax") == Some(10)
    });
    // Filter the gallery to the label and review it from the keyboard.
    harness.get_by_label("show").click();
    step_until(&mut harness, "the filtered gallery", |h| {
        gallery_is_current(h)
    });
    let first_id = harness.state().gallery.visible()[0];
    harness.state_mut().select(Some(first_id));
    harness.step();
    harness.key_press(egui::Key::R);
    harness.step();
    let second_id = harness.state().inspector.selected.unwrap();
    assert_ne!(second_id, first_id, "the selection did not move on");
    harness.key_press(egui::Key::A);
    harness.step();
    step_until(&mut harness, "the decisions", |h| {
        let tags = |id| {
            h.state()
                .gallery
                .entry(id)
                .map(|e| e.tags.iter().map(|t| t.1).collect::<Vec<_>>())
        };
        tags(first_id) == Some(vec![cliptag::domain::TagSource::Rejected])
            && tags(second_id) == Some(vec![cliptag::domain::TagSource::Accepted])
    });

    // Learn from those two decisions in the label editor.
    harness.get_by_label_contains("Zorblax (").click();
    // The editor grows when the label's preview arrives (its histogram): wait for that, so the
    // button stays where the click aims.
    step_until(&mut harness, "the editor and its preview", |h| {
        h.query_by_label("Learn from my decisions").is_some()
            && h.query_by_label("Score histogram of Zorblax").is_some()
    });
    harness.get_by_label("Learn from my decisions").click();
    step_until(&mut harness, "the learned label", |h| {
        has_label(h, "learned from 1 accepted and 1 rejected photos")
    });
    assert!(harness.query_by_label("Reset learning").is_some());
    drop(harness);
    let store = Store::open(&db).unwrap();
    let (id, _) = store.label_id_by_name("Zorblax").unwrap().unwrap();
    let learned = store.label(id).unwrap().unwrap().learned.expect("stored");
    assert_eq!((learned.positives, learned.negatives), (1, 1));
}

#[test]
fn showing_a_threshold_off_the_sliders_steps_does_not_change_it() {
    // A learned threshold such as 0.3627 is not on the slider's 0.005 steps; opening the editor
    // must not round it and write it back.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    {
        let mut store = Store::open(&db).unwrap();
        store
            .insert_label(&Label {
                threshold: 0.3627,
                ..Label::new("Precise", "")
            })
            .unwrap();
    }
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the label", |h| has_label(h, "Precise ("));
    harness.get_by_label_contains("Precise (").click();
    step_until(&mut harness, "the preview", |h| has_label(h, "as stored"));
    for _ in 0..10 {
        harness.step();
    }
    assert_eq!(
        harness
            .state()
            .sidebar
            .editor
            .as_ref()
            .unwrap()
            .draft
            .threshold,
        0.3627
    );
    drop(harness);
    let store = Store::open(&db).unwrap();
    let (id, _) = store.label_id_by_name("Precise").unwrap().unwrap();
    assert_eq!(store.label(id).unwrap().unwrap().threshold, 0.3627);
}

#[test]
fn picked_photos_are_decided_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add_label_that_tags_everything(&db, "Zorblax");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        h.state().snapshot.photos == 10 && h.state().gallery.visible().len() == 10
    });
    harness.get_by_label("Re-tag").click();
    step_until(&mut harness, "the tags", |h| {
        label_count(h.state(), "Zorblax") == Some(10)
    });
    harness.get_by_label("show").click();
    harness.step();
    // Click one photo, Ctrl-click two more: three picked. Each click waits for the layout to
    // settle (the detail panel opens and narrows the gallery), so the next one aims right.
    let id_of = |h: &Harness<'static, CliptagApp>, name: &str| {
        let gallery = &h.state().gallery;
        gallery
            .visible()
            .iter()
            .copied()
            .find(|id| gallery.entry(*id).is_some_and(|e| e.path.ends_with(name)))
            .unwrap()
    };
    harness.get_by_label("astronaut.jpg").click();
    let astronaut = id_of(&harness, "astronaut.jpg");
    step_until(&mut harness, "the detail panel", |h| {
        h.state()
            .inspector
            .detail
            .as_ref()
            .is_some_and(|d| d.image_id == astronaut)
    });
    for _ in 0..3 {
        harness.step();
    }
    for (name, picked) in [("chelsea.png", 2), ("camera.png", 3)] {
        harness
            .get_by_label(name)
            .click_modifiers(egui::Modifiers::COMMAND);
        step_until(&mut harness, name, |h| h.state().chosen().len() == picked);
        for _ in 0..3 {
            harness.step();
        }
    }
    harness.key_press(egui::Key::R);
    harness.step();
    step_until(&mut harness, "three rejections", |h| {
        label_count(h.state(), "Zorblax") == Some(7)
    });
    drop(harness);
    let store = Store::open(&db).unwrap();
    let rejected: Vec<String> = store
        .tags()
        .unwrap()
        .into_iter()
        .filter(|t| t.source == cliptag::domain::TagSource::Rejected)
        .map(|t| t.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(rejected, ["astronaut.jpg", "camera.png", "chelsea.png"]);
}

#[test]
fn the_vocabulary_tree_collapses_disables_renames_and_filters_groups() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = indexed_library(&db);
    for name in ["Animals/Cat", "Animals/Pets/Dog", "Sky"] {
        add_label_that_tags_everything(&db, name);
    }
    // A person's decision on one photo, which a renamed group keeps.
    let photo = photos.path().canonicalize().unwrap().join("coffee.jpg");
    cliptag_ok(&[
        "tag",
        "reject",
        "--db",
        db.to_str().unwrap(),
        photo.to_str().unwrap(),
        "Animals/Cat",
    ]);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    harness.get_by_label("Re-tag").click();
    step_until(&mut harness, "the tags", |h| {
        label_count(h.state(), "Sky") == Some(10)
    });
    // Groups start closed, with the photos tagged by any of their labels.
    step_until(&mut harness, "the closed group", |h| {
        has_label(h, "Animals (10)")
    });
    assert!(!has_label(&harness, "Cat (9)"));
    harness.get_by_label("Expand Animals").click();
    step_until(&mut harness, "the open group", |h| {
        has_label(h, "Cat (9)") && has_label(h, "Pets (10)")
    });
    assert!(!has_label(&harness, "Dog (10)"), "Pets is still closed");
    harness.get_by_label("Expand Animals/Pets").click();
    step_until(&mut harness, "the open subgroup", |h| {
        has_label(h, "Dog (10)")
    });
    harness.get_by_label("Collapse Animals").click();
    step_until(&mut harness, "the closed group again", |h| {
        !has_label(h, "Cat (9)") && !has_label(h, "Dog (10)")
    });

    // The filter opens what it finds and keeps its groups in sight.
    type_into(&mut harness, "Filter labels", "dog");
    step_until(&mut harness, "the filtered tree", |h| {
        has_label(h, "Dog (10)") && has_label(h, "Animals (10)") && !has_label(h, "Sky (10)")
    });
    harness.get_by_label("Filter labels").focus();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.key_press(egui::Key::Backspace);
    harness.step();
    step_until(&mut harness, "the whole tree", |h| has_label(h, "Sky (10)"));

    // Switching the group off: its labels stop tagging, the others do not.
    harness.get_by_label("Use the group Animals").click();
    step_until(&mut harness, "the group switched off", |h| {
        let labels = &h.state().snapshot.labels;
        labels
            .iter()
            .filter(|l| l.label.name.starts_with("Animals/"))
            .all(|l| !l.label.enabled && l.count == 0)
            && label_count(h.state(), "Sky") == Some(10)
    });
    harness.get_by_label("Use the group Animals").click();
    step_until(&mut harness, "the group switched on", |h| {
        label_count(h.state(), "Animals/Cat") == Some(9)
    });

    // Renaming the group moves every label with it and keeps the decision.
    harness.get_by_label_contains("Animals (").click();
    step_until(&mut harness, "the group editor", |h| {
        h.query_by_label("Group name").is_some()
    });
    harness.get_by_label("Group name").focus();
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.get_by_label("Group name").type_text("Wildlife");
    harness.step();
    harness.get_by_label("Rename").click();
    step_until(&mut harness, "the renamed group", |h| {
        label_count(h.state(), "Wildlife/Cat") == Some(9)
            && label_count(h.state(), "Wildlife/Pets/Dog") == Some(10)
            && label_count(h.state(), "Animals/Cat").is_none()
    });
    drop(harness);
    let tags = cliptag(&[
        "tags",
        "--db",
        db.to_str().unwrap(),
        photo.to_str().unwrap(),
    ]);
    let tags = String::from_utf8_lossy(&tags.stdout);
    assert!(
        tags.lines()
            .any(|l| l.contains("\tWildlife/Cat\t") && l.ends_with("rejected")),
        "{tags}"
    );
}

#[test]
fn arrow_keys_move_through_the_tree_and_open_groups() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    for name in ["Animals/Cat", "Animals/Dog", "Sky"] {
        add_label_that_tags_everything(&db, name);
    }
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the tree", |h| has_label(h, "Animals (0)"));
    harness.get_by_label("Animals (0)").click();
    harness.step();
    harness.key_press(egui::Key::ArrowRight);
    step_until(&mut harness, "the group opened from the keyboard", |h| {
        has_label(h, "Cat (0)")
    });
    harness.key_press(egui::Key::ArrowDown);
    harness.key_press(egui::Key::ArrowDown);
    harness.key_press(egui::Key::Enter);
    step_until(&mut harness, "the label editor of Dog", |h| {
        h.state()
            .sidebar
            .editor
            .as_ref()
            .is_some_and(|e| e.draft.name == "Animals/Dog")
    });
    harness.key_press(egui::Key::ArrowUp);
    harness.key_press(egui::Key::ArrowUp);
    harness.key_press(egui::Key::ArrowLeft);
    step_until(&mut harness, "the group closed from the keyboard", |h| {
        !has_label(h, "Cat (0)")
    });
}

#[test]
fn a_long_vocabulary_scrolls_to_the_row_the_keys_move_to() {
    // The tree lays out only the rows in view; the keys must bring the cursor's row into it.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    for i in 0..80 {
        add_label_that_tags_everything(&db, &format!("Label {i:03}"));
    }
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the tree", |h| has_label(h, "Label 000 (0)"));
    assert!(
        !has_label(&harness, "Label 070"),
        "the whole tree is laid out"
    );
    harness.get_by_label("Label 000 (0)").click();
    harness.step();
    for _ in 0..70 {
        harness.key_press(egui::Key::ArrowDown);
        harness.step();
    }
    step_until(&mut harness, "the cursor's row in view", |h| {
        has_label(h, "Label 070 (0)")
    });
    let seventy = label_id(harness.state(), "Label 070");
    assert_eq!(
        harness.state().sidebar.cursor,
        Some(cliptag::app::RowKey::Label(seventy))
    );
    assert!(
        !has_label(&harness, "Label 000 (0)"),
        "the tree did not scroll"
    );
}

#[test]
fn gallery_cells_show_their_tags_and_filters_combine() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = indexed_library(&db);
    add_label_that_tags_everything(&db, "Places/Beach");
    // A label that tags nothing, put on one photo by hand.
    {
        let mut store = Store::open(&db).unwrap();
        store
            .insert_label(&Label {
                threshold: 1.0,
                ..Label::new("Holiday", "")
            })
            .unwrap();
    }
    let coffee = photos.path().canonicalize().unwrap().join("coffee.jpg");
    cliptag_ok(&[
        "tag",
        "add",
        "--db",
        db.to_str().unwrap(),
        coffee.to_str().unwrap(),
        "Holiday",
    ]);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    harness.get_by_label("Re-tag").click();
    step_until(&mut harness, "the tags", |h| {
        label_count(h.state(), "Places/Beach") == Some(10)
    });
    step_until(&mut harness, "the cells' tags", |h| {
        h.query_by_label("coffee.jpg")
            .and_then(|n| n.value())
            .is_some_and(|v| v == "Holiday (yours), Places/Beach")
    });
    let astronaut = harness.get_by_label("astronaut.jpg").value();
    assert_eq!(astronaut.as_deref(), Some("Places/Beach"));

    // Both labels in the filter: all of them is one photo, any of them all ten.
    let beach = label_id(harness.state(), "Places/Beach");
    let holiday = label_id(harness.state(), "Holiday");
    harness.state_mut().gallery.toggle_tag(beach);
    harness.state_mut().gallery.toggle_tag(holiday);
    step_until(&mut harness, "photos with both", |h| {
        has_label(h, "1 photo")
    });
    harness.get_by_label("all of these").click();
    step_until(&mut harness, "photos with either", |h| {
        has_label(h, "10 photos")
    });
    // With "Untagged" as well, none is left.
    harness.get_by_label("Untagged").click();
    step_until(&mut harness, "no photo", |h| has_label(h, "0 photos"));
    assert!(
        harness
            .query_by_role_and_label(egui::accesskit::Role::Slider, "Thumbnail size")
            .is_some()
    );
}

pub(crate) fn label_id(app: &CliptagApp, name: &str) -> i64 {
    app.snapshot
        .labels
        .iter()
        .find(|l| l.label.name == name)
        .map(|l| l.label.id)
        .unwrap()
}

#[test]
fn prompt_templates_are_edited_in_the_sidebar_with_a_preview() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add_label_that_tags_everything(&db, "Animals/Cat");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the templates", |h| {
        has_label(h, "Prompt templates (4)")
    });
    harness.get_by_label("Prompt templates (4)").click();
    step_until(&mut harness, "the templates editor", |h| {
        h.query_by_label("Templates, one per line; {} is the label")
            .is_some()
    });
    assert!(has_label(&harness, "a photo of a cat."));
    let field = "Templates, one per line; {} is the label";
    harness.get_by_label(field).focus();
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness
        .get_by_label(field)
        .type_text("an old photo of my {}");
    harness.step();
    step_until(&mut harness, "the preview", |h| {
        has_label(h, "an old photo of my cat") && !has_label(h, "a photo of a cat.")
    });
    harness.get_by_label("Apply templates").click();
    step_until(&mut harness, "the stored templates", |h| {
        h.state().snapshot.templates == ["an old photo of my {}"]
    });
    drop(harness);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.templates().unwrap(), ["an old photo of my {}"]);
}

#[test]
fn the_template_preview_of_a_label_with_its_own_prompts_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    Store::open(&db)
        .unwrap()
        .insert_label(&Label {
            prompts: vec!["a tabby cat asleep on a sofa".into()],
            ..Label::new("Housecat", "")
        })
        .unwrap();
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the label", |h| has_label(h, "Housecat ("));
    harness.get_by_label_contains("Housecat (").click();
    step_until(&mut harness, "its editor", |h| has_label(h, "as stored"));
    harness.get_by_label_contains("Prompt templates (").click();
    step_until(&mut harness, "the templates editor", |h| {
        has_label(h, "has prompts of its own")
    });
    assert!(has_label(&harness, "a tabby cat asleep on a sofa"));
    assert!(!has_label(&harness, "a photo of a housecat."));
}

/// `cliptag FOLDER` (or a photo, as the file manager's "Open with" passes it) adds the folder to
/// the library and indexes it; a path that does not exist is refused before any window opens.
#[test]
fn paths_given_to_the_app_are_added_and_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = photo_folder(&fixture_photos()[..3]);
    let photo = std::fs::read_dir(photos.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let open = cliptag::cli::paths_to_open(&[photo]).unwrap();
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    harness.state_mut().open_paths(open);
    step_until(&mut harness, "the folder indexed", |h| {
        h.state().snapshot.indexed == 3 && h.state().gallery.visible().len() == 3
    });
    let root = photos.path().canonicalize().unwrap();
    assert_eq!(harness.state().snapshot.roots, vec![root]);

    let missing = dir.path().join("not-there");
    let error = cliptag::cli::paths_to_open(std::slice::from_ref(&missing)).unwrap_err();
    assert!(
        error.to_string().contains(missing.to_str().unwrap()),
        "{error}"
    );
    let run = crate::support::cliptag(&[missing.to_str().unwrap()]);
    assert!(!run.status.success());
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains("not-there") && said.contains("No such file"),
        "{said}"
    );
}

/// The window carries cliptag's own icon (the task switcher shows it), made from its SVG.
#[test]
fn the_window_has_cliptags_icon() {
    let icon = cliptag::app::window_icon();
    assert_eq!((icon.width, icon.height), (256, 256));
    assert_eq!(icon.rgba.len(), 256 * 256 * 4);
    // Not blank: the photo's blue sky and the tag's orange are both there.
    let pixels: Vec<&[u8]> = icon.rgba.chunks(4).collect();
    assert!(
        pixels
            .iter()
            .any(|p| p[2] > 180 && p[0] < 120 && p[3] == 255)
    );
    assert!(
        pixels
            .iter()
            .any(|p| p[0] > 220 && p[1] > 100 && p[1] < 170 && p[2] < 40)
    );
}

/// `cliptag --version` says the version and the commit it was built from.
#[test]
fn the_version_names_the_commit() {
    let run = crate::support::cliptag(&["--version"]);
    let said = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        said.trim(),
        format!(
            "cliptag {} (commit {})",
            cliptag::about::VERSION,
            cliptag::about::COMMIT
        )
    );
}

/// `cliptag --db lib.sqlite` remembers the library by its whole path: the next start, from the
/// launcher in another folder, opens the same library.
#[test]
fn a_relative_library_path_is_remembered_whole() {
    let here = std::env::current_dir().unwrap();
    let chosen = cliptag::app::library_path(Some("lib.sqlite".into()), None);
    assert_eq!(chosen, here.join("lib.sqlite"));
    let remembered = here.join("elsewhere/last.sqlite");
    assert_eq!(
        cliptag::app::library_path(None, Some(remembered.clone())),
        remembered
    );
    assert_eq!(
        cliptag::app::library_path(None, None),
        cliptag::library::default_db_path()
    );
}

/// Without a display, the app says so in words and points to the commands, instead of the
/// windowing library's own error.
#[test]
fn without_a_display_the_app_says_why_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_cliptag"))
        .arg("--db")
        .arg(dir.path().join("lib.sqlite"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(
        said.contains("no display to open the window on") && said.contains("cliptag --help"),
        "{said}"
    );
    assert!(!said.contains(".cargo"), "{said}");
}
