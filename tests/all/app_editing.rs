//! Editing the vocabulary in the window asks before it loses or merges anything: closing a
//! label's editor with changes not applied, and renaming a group onto one that exists.

use cliptag::domain::Label;
use cliptag::store::Store;
use egui_kittest::kittest::Queryable;

use crate::app::{app_harness, has_label, indexed_library, step_until, type_into};
use crate::support::*;

fn add(db: &std::path::Path, name: &str, threshold: f32) {
    Store::open(db)
        .unwrap()
        .insert_label(&Label {
            threshold,
            ..Label::new(name, "")
        })
        .unwrap();
}

fn stored_threshold(db: &std::path::Path, name: &str) -> f32 {
    let store = Store::open(db).unwrap();
    let (id, _) = store.label_id_by_name(name).unwrap().unwrap();
    store.label(id).unwrap().unwrap().threshold
}

#[test]
fn closing_an_editor_with_changes_not_applied_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add(&db, "Anything", 0.2);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the label", |h| has_label(h, "Anything ("));
    harness.get_by_label_contains("Anything (").click();
    step_until(&mut harness, "the editor", |h| has_label(h, "as stored"));
    harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, "Threshold")
        .set_value_accesskit(0.25);
    step_until(&mut harness, "a draft", |h| has_label(h, "Not saved"));

    let close = |h: &mut egui_kittest::Harness<'static, cliptag::app::CliptagApp>| {
        // The editor's Close: the last one drawn (the photo panel has none open here).
        h.get_all_by_label("Close").last().unwrap().click();
        h.step();
        h.step();
    };
    close(&mut harness);
    assert!(has_label(&harness, "Close without storing these changes?"));
    assert!(
        harness.state().sidebar.editor.is_some(),
        "closed without asking"
    );
    harness.get_by_label("Keep editing").click();
    step_until(&mut harness, "the question gone", |h| {
        !has_label(h, "Close without storing these changes?")
    });
    assert!(harness.state().sidebar.editor.is_some());

    close(&mut harness);
    harness.get_by_label("Discard").click();
    step_until(&mut harness, "the editor closed", |h| {
        h.state().sidebar.editor.is_none()
    });
    assert_eq!(stored_threshold(&db, "Anything"), 0.2);

    // Apply and close stores the draft.
    harness.get_by_label_contains("Anything (").click();
    step_until(&mut harness, "the editor again", |h| {
        has_label(h, "as stored")
    });
    harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, "Threshold")
        .set_value_accesskit(0.25);
    step_until(&mut harness, "a draft", |h| has_label(h, "Not saved"));
    close(&mut harness);
    harness.get_by_label("Apply and close").click();
    step_until(&mut harness, "stored and closed", |h| {
        h.state().sidebar.editor.is_none()
            && has_label(h, "\"Anything\": threshold 0.25 (was 0.20)")
    });
    drop(harness);
    assert_eq!(stored_threshold(&db, "Anything"), 0.25);
}

#[test]
fn opening_another_label_with_changes_not_applied_asks_first() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add(&db, "Anything", 0.2);
    add(&db, "Other", 0.2);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the labels", |h| has_label(h, "Other ("));
    harness.get_by_label_contains("Anything (").click();
    step_until(&mut harness, "the editor", |h| has_label(h, "as stored"));
    harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, "Threshold")
        .set_value_accesskit(0.25);
    step_until(&mut harness, "a draft", |h| has_label(h, "Not saved"));

    // Another label clicked: the draft stays, and the editor asks.
    harness.get_by_label_contains("Other (").click();
    step_until(&mut harness, "the question", |h| {
        has_label(h, "Open the other one without storing these changes?")
    });
    let editing = |h: &egui_kittest::Harness<'static, cliptag::app::CliptagApp>| {
        h.state()
            .sidebar
            .editor
            .as_ref()
            .map(|e| e.draft.name.clone())
    };
    assert_eq!(editing(&harness).as_deref(), Some("Anything"));
    harness.get_by_label("Keep editing").click();
    step_until(&mut harness, "the question gone", |h| {
        !has_label(h, "without storing these changes?")
    });
    assert_eq!(
        harness
            .state()
            .sidebar
            .editor
            .as_ref()
            .unwrap()
            .draft
            .threshold,
        0.25
    );

    // Asked again, Apply and open stores the draft and opens the other label.
    harness.get_by_label_contains("Other (").click();
    step_until(&mut harness, "the question again", |h| {
        h.query_by_label("Apply and open").is_some()
    });
    harness.get_by_label("Apply and open").click();
    step_until(&mut harness, "the other label open", |h| {
        editing(h).as_deref() == Some("Other")
            && has_label(h, "\"Anything\": threshold 0.25 (was 0.20)")
    });
    drop(harness);
    assert_eq!(stored_threshold(&db, "Anything"), 0.25);
}

#[test]
fn renaming_a_group_onto_one_that_exists_asks_before_merging() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add(&db, "Animals/Cat", 0.2);
    add(&db, "Pets/Dog", 0.2);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the tree", |h| has_label(h, "Animals ("));
    harness.get_by_label_contains("Animals (").click();
    step_until(&mut harness, "the group editor", |h| {
        h.query_by_label("Group name").is_some()
    });
    harness.get_by_label("Group name").focus();
    harness.step();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    type_into(&mut harness, "Group name", "Pets");
    harness.get_by_label("Rename").click();
    step_until(&mut harness, "the question", |h| {
        has_label(h, "\"Pets\" already exists")
    });
    for _ in 0..5 {
        harness.step();
    }
    assert!(
        Store::open(&db)
            .unwrap()
            .label_id_by_name("Animals/Cat")
            .unwrap()
            .is_some(),
        "merged without asking"
    );
    harness.get_by_label("Merge").click();
    step_until(&mut harness, "the merged group", |h| {
        h.state()
            .snapshot
            .labels
            .iter()
            .any(|l| l.label.name == "Pets/Cat")
    });
    assert!(has_label(
        &harness,
        "renamed the group \"Animals\" to \"Pets\" (1 label)"
    ));
}

#[test]
fn the_command_line_renames_onto_an_existing_group_only_with_merge() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add(&db, "Animals/Cat", 0.2);
    add(&db, "Pets/Dog", 0.2);
    let db_arg = db.to_str().unwrap();
    let refused = cliptag(&[
        "vocab", "group", "--db", db_arg, "Animals", "rename", "Pets",
    ]);
    assert_clean_failure(&refused, &["\"Pets\" exists", "--merge"]);
    assert!(
        Store::open(&db)
            .unwrap()
            .label_id_by_name("Animals/Cat")
            .unwrap()
            .is_some()
    );
    cliptag_ok(&[
        "vocab", "group", "--db", db_arg, "Animals", "rename", "Pets", "--merge",
    ]);
    assert!(
        Store::open(&db)
            .unwrap()
            .label_id_by_name("Pets/Cat")
            .unwrap()
            .is_some()
    );
}

#[test]
fn deleting_a_label_asks_first_and_says_what_went() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = indexed_library(&db);
    add(&db, "Doomed", 0.2);
    let photo = photos.path().canonicalize().unwrap().join("astronaut.jpg");
    cliptag_ok(&[
        "--db",
        db.to_str().unwrap(),
        "tag",
        "add",
        photo.to_str().unwrap(),
        "Doomed",
    ]);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the label", |h| has_label(h, "Doomed ("));
    harness.get_by_label_contains("Doomed (").click();
    step_until(&mut harness, "the editor", |h| has_label(h, "as stored"));
    harness.get_by_label("Delete label").click();
    step_until(&mut harness, "the question", |h| {
        has_label(h, "Undo cannot bring them back")
    });
    harness.get_by_label("Keep it").click();
    step_until(&mut harness, "the question gone", |h| {
        !has_label(h, "Undo cannot bring them back")
    });
    assert!(stored_label(&db, "Doomed"));
    harness.get_by_label("Delete label").click();
    step_until(&mut harness, "the question again", |h| {
        h.query_by_label("Delete").is_some()
    });
    harness.get_by_label("Delete").click();
    step_until(&mut harness, "the label gone", |h| {
        has_label(
            h,
            "removed \"Doomed\", its tags and the 1 decision you made on it",
        )
    });
    drop(harness);
    assert!(!stored_label(&db, "Doomed"));
}

fn stored_label(db: &std::path::Path, name: &str) -> bool {
    cliptag::store::Store::open(db)
        .unwrap()
        .label_id_by_name(name)
        .unwrap()
        .is_some()
}

/// A preview that fails (a contrast label without its negative prompt) says why in the label's
/// editor, not on the status bar, and the reason goes once a preview works again: on the status
/// bar it stayed in red after the prompt was typed.
#[test]
fn a_failed_preview_says_why_in_the_editor_until_a_preview_works() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add(&db, "Anything", 0.2);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the label", |h| has_label(h, "Anything ("));
    harness.get_by_label_contains("Anything (").click();
    step_until(&mut harness, "the editor", |h| has_label(h, "as stored"));
    let nudge = |h: &mut egui_kittest::Harness<'static, cliptag::app::CliptagApp>, to: f64| {
        h.get_by_role_and_label(egui::accesskit::Role::Slider, "Threshold")
            .set_value_accesskit(to);
        h.step();
    };
    harness
        .state_mut()
        .sidebar
        .editor
        .as_mut()
        .unwrap()
        .draft
        .mode = cliptag::domain::Mode::Contrast;
    nudge(&mut harness, 0.55);
    step_until(&mut harness, "the reason in the editor", |h| {
        has_label(h, "contrast mode needs a negative prompt")
    });
    assert!(
        !harness
            .state()
            .messages
            .iter()
            .any(|m| m.text.contains("negative prompt")),
        "the failure went to the status bar"
    );
    harness
        .state_mut()
        .sidebar
        .editor
        .as_mut()
        .unwrap()
        .negative_text = "a photo of something else".into();
    nudge(&mut harness, 0.6);
    step_until(&mut harness, "the reason gone", |h| {
        !has_label(h, "contrast mode needs a negative prompt")
    });
}
