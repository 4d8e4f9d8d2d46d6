//! Undo and redo of a person's decisions: one history in the library, shared by the app
//! (Ctrl+Z, Ctrl+Shift+Z) and the command line (`cliptag undo`, `cliptag redo`).

use std::path::Path;

use cliptag::domain::{Decision, Label, TagSource};
use cliptag::library::{Direction, GroupEdit, HistoryReport, Library, history_summary};

use crate::app::{
    add_label_that_tags_everything, app_harness, gallery_is_current, has_label, indexed_library,
    label_count, step_until,
};
use crate::support::*;
use egui_kittest::kittest::{NodeT, Queryable};

/// What the library holds for the pair: `None` where it has no tag.
fn tag(library: &Library, image_id: i64, label_id: i64) -> Option<TagSource> {
    library.tag_source(image_id, label_id).unwrap()
}

/// A library of the fixture photos with one label on every photo (automatically).
fn tagged_everywhere() -> (tempfile::TempDir, TestLibrary, i64, Vec<i64>) {
    let photos = crate::indexing::photo_folder(&crate::indexing::fixture_photos());
    let mut library = TestLibrary::tiny();
    library.clear_vocabulary();
    library.index(photos.path());
    let label = Label {
        threshold: -1.0,
        ..Label::new("Everywhere", "")
    };
    // Stored directly, as a vocabulary seeded before these tests: not a step of the history.
    let id = library.store().insert_label(&label).unwrap();
    library.library.retag(false).unwrap();
    let label = Label { id, ..label };
    let images: Vec<i64> = library
        .library
        .tags(&[])
        .unwrap()
        .into_iter()
        .filter(|t| t.label == "Everywhere")
        .map(|t| t.image_id)
        .collect();
    assert!(images.len() >= 4, "{} photos tagged", images.len());
    (photos, library, label.id, images)
}

#[test]
fn undo_puts_each_decision_back_and_redo_makes_it_again() {
    let (_photos, mut library, label, images) = tagged_everywhere();
    let lib = &mut library.library;
    let (a, b) = (images[0], images[1]);
    assert_eq!(tag(lib, a, label), Some(TagSource::Auto));
    lib.decide(a, label, Decision::Reject).unwrap();
    lib.decide(b, label, Decision::Apply).unwrap();
    lib.decide(b, label, Decision::Reject).unwrap();

    // Last first: b goes back from rejected to accepted, then to its automatic tag.
    let undone = lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(undone.changes.len(), 1);
    assert_eq!(tag(lib, b, label), Some(TagSource::Accepted));
    lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(tag(lib, b, label), Some(TagSource::Auto), "tagged again");
    lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(tag(lib, a, label), Some(TagSource::Auto));
    assert_eq!(lib.undo_or_redo(Direction::Undo).unwrap(), None);

    // Redo in the order they were made.
    lib.undo_or_redo(Direction::Redo).unwrap().unwrap();
    assert_eq!(tag(lib, a, label), Some(TagSource::Rejected));
    lib.undo_or_redo(Direction::Redo).unwrap().unwrap();
    assert_eq!(tag(lib, b, label), Some(TagSource::Accepted));

    // A new decision drops what was left to redo.
    lib.decide(images[2], label, Decision::Reject).unwrap();
    assert_eq!(lib.undo_or_redo(Direction::Redo).unwrap(), None);
    assert_eq!(tag(lib, b, label), Some(TagSource::Accepted));

    // A decision that changes nothing is no step.
    lib.decide(images[2], label, Decision::Reject).unwrap();
    lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(tag(lib, images[2], label), Some(TagSource::Auto));
    lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(tag(lib, b, label), Some(TagSource::Auto));
}

#[test]
fn one_decision_on_picked_photos_is_one_step() {
    let (_photos, mut library, label, images) = tagged_everywhere();
    let lib = &mut library.library;
    lib.decide(images[0], label, Decision::Apply).unwrap();
    // Three picked photos rejected at once, sent over two calls as the worker may batch them.
    let rejections: Vec<(i64, i64, Decision)> = images[1..4]
        .iter()
        .map(|id| (*id, label, Decision::Reject))
        .collect();
    lib.decide_steps(&rejections[..2], &[false, true]).unwrap();
    lib.decide_steps(&rejections[2..], &[true]).unwrap();
    let undone = lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(undone.changes.len(), 3);
    assert_eq!(
        cliptag::library::history_summary(&undone),
        "undid rejecting \"Everywhere\" on 3 photos"
    );
    for id in &images[1..4] {
        assert_eq!(tag(lib, *id, label), Some(TagSource::Auto));
    }
    assert_eq!(tag(lib, images[0], label), Some(TagSource::Accepted));
}

#[test]
fn undo_leaves_alone_a_pair_someone_decided_since() {
    let (_photos, mut library, label, images) = tagged_everywhere();
    let db = library.db();
    library
        .library
        .decide(images[0], label, Decision::Reject)
        .unwrap();
    // Another program (the app beside this command) accepts the photo afterwards, outside the
    // history this step wrote: undo must not turn that back into an automatic tag.
    cliptag::store::Store::open(&db)
        .unwrap()
        .set_decision(images[0], label, Some(TagSource::Accepted))
        .unwrap();
    let undone = library
        .library
        .undo_or_redo(Direction::Undo)
        .unwrap()
        .unwrap();
    assert!(undone.changes.is_empty());
    assert_eq!(undone.changed_since, 1);
    assert!(cliptag::library::history_summary(&undone).contains("decided again since"));
    assert_eq!(
        tag(&library.library, images[0], label),
        Some(TagSource::Accepted)
    );
}

#[test]
fn the_command_line_undoes_what_the_library_recorded() {
    let (_photos, mut library, label, images) = tagged_everywhere();
    library
        .library
        .decide(images[0], label, Decision::Reject)
        .unwrap();
    let path = library
        .library
        .tags(&[])
        .unwrap()
        .into_iter()
        .find(|t| t.image_id == images[0])
        .unwrap()
        .path;
    let db = library.db();
    let db = db.to_str().unwrap();
    let said = String::from_utf8(cliptag_ok(&["--db", db, "undo"]).stderr).unwrap();
    assert_eq!(
        said.trim(),
        format!("undid rejecting \"Everywhere\" on {}", path.display())
    );
    let said = String::from_utf8(cliptag_ok(&["--db", db, "undo"]).stderr).unwrap();
    assert_eq!(said.trim(), "nothing to undo");
    let said = String::from_utf8(cliptag_ok(&["--db", db, "redo"]).stderr).unwrap();
    assert!(said.starts_with("redid rejecting"), "{said}");
    let store = library.store();
    assert_eq!(
        store.tag(images[0], label).unwrap().map(|t| t.0),
        Some(TagSource::Rejected)
    );
}

fn gallery_has(
    harness: &egui_kittest::Harness<'static, cliptag::app::CliptagApp>,
    id: i64,
) -> bool {
    harness.state().gallery.visible().contains(&id)
}

#[test]
fn r_then_ctrl_z_brings_the_photo_and_its_tag_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add_label_that_tags_everything(&db, "Zorblax");
    review(&db);
}

fn review(db: &Path) {
    let mut harness = app_harness(db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        h.state().snapshot.photos == 10 && h.state().gallery.visible().len() == 10
    });
    harness.get_by_label("Re-tag").click();
    step_until(&mut harness, "the tags", |h| {
        label_count(h.state(), "Zorblax") == Some(10)
    });
    // Review the label: the gallery shows the photos it is on, so a rejected photo leaves it.
    harness.get_by_label("show").click();
    step_until(&mut harness, "the filtered gallery", |h| {
        gallery_is_current(h)
    });
    let first = harness.state().gallery.visible()[3];
    harness.state_mut().select(Some(first));
    harness.step();
    harness.key_press(egui::Key::R);
    step_until(
        &mut harness,
        "the rejected photo to leave the gallery",
        |h| gallery_is_current(h) && !gallery_has(h, first),
    );
    assert_ne!(harness.state().inspector.selected, Some(first));

    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Z);
    step_until(
        &mut harness,
        "the photo back, selected, with its tag",
        |h| {
            let tag = h
                .state()
                .gallery
                .entry(first)
                .map(|e| e.tags.iter().map(|t| t.1).collect::<Vec<_>>());
            gallery_is_current(h)
                && gallery_has(h, first)
                && h.state().inspector.selected == Some(first)
                && tag == Some(vec![TagSource::Auto])
        },
    );
    assert!(
        has_label(&harness, "undid rejecting \"Zorblax\""),
        "the status says what was undone"
    );

    // Ctrl+Shift+Z rejects it again.
    harness.key_press_modifiers(
        egui::Modifiers::COMMAND | egui::Modifiers::SHIFT,
        egui::Key::Z,
    );
    step_until(&mut harness, "the photo gone again", |h| {
        gallery_is_current(h) && !gallery_has(h, first)
    });
    drop(harness);
    let store = cliptag::store::Store::open(db).unwrap();
    let (label, _) = store.label_id_by_name("Zorblax").unwrap().unwrap();
    assert_eq!(
        store.tag(first, label).unwrap().map(|t| t.0),
        Some(TagSource::Rejected)
    );
}

/// Refuses every automatic tag written to the library at `db`, as a kill between two writes
/// would leave it: an undo or a clear that hands a pair back must then change nothing at all.
fn refuse_automatic_tags(db: &Path, refuse: bool) {
    let conn = rusqlite::Connection::open(db).unwrap();
    if refuse {
        conn.execute_batch(
            "CREATE TRIGGER refuse_auto BEFORE INSERT ON tags WHEN NEW.source = 'auto'
             BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;",
        )
        .unwrap();
    } else {
        conn.execute_batch("DROP TRIGGER refuse_auto").unwrap();
    }
}

#[test]
fn handing_a_pair_back_is_one_write_with_its_automatic_tag() {
    let (_photos, mut library, label, images) = tagged_everywhere();
    let db = library.db();
    let (a, b) = (images[0], images[1]);
    library.library.decide(a, label, Decision::Reject).unwrap();
    library.library.decide(b, label, Decision::Reject).unwrap();
    refuse_automatic_tags(&db, true);
    // The undo cannot write b's automatic tag back: it must leave b rejected and the step
    // undoable, not a pair with neither decision nor tag.
    assert!(library.library.undo_or_redo(Direction::Undo).is_err());
    assert_eq!(tag(&library.library, b, label), Some(TagSource::Rejected));
    // The same for a cleared decision.
    assert!(library.library.decide(a, label, Decision::Clear).is_err());
    assert_eq!(tag(&library.library, a, label), Some(TagSource::Rejected));
    refuse_automatic_tags(&db, false);
    library
        .library
        .undo_or_redo(Direction::Undo)
        .unwrap()
        .unwrap();
    assert_eq!(tag(&library.library, b, label), Some(TagSource::Auto));
    library.library.decide(a, label, Decision::Clear).unwrap();
    assert_eq!(tag(&library.library, a, label), Some(TagSource::Auto));
}

#[test]
fn accepting_over_a_rejection_is_accepted_where_automatic_tagging_agrees() {
    let (_photos, mut library, label, images) = tagged_everywhere();
    let lib = &mut library.library;
    lib.decide(images[0], label, Decision::Reject).unwrap();
    // Automatic tagging puts this label on every photo: accepting it is "accepted", as after
    // clearing the rejection first.
    lib.decide(images[0], label, Decision::Apply).unwrap();
    assert_eq!(tag(lib, images[0], label), Some(TagSource::Accepted));
    // A label automatic tagging puts nowhere: the same keys make an added tag.
    let (nowhere, _) = lib
        .add_label(Label {
            threshold: 1.0,
            ..Label::new("Nowhere", "")
        })
        .unwrap();
    lib.decide(images[0], nowhere.id, Decision::Reject).unwrap();
    lib.decide(images[0], nowhere.id, Decision::Apply).unwrap();
    assert_eq!(tag(lib, images[0], nowhere.id), Some(TagSource::Manual));
}

/// Photos the label called `name` is on, automatically or by a person's decision.
fn tagged_with(library: &mut Library, name: &str) -> usize {
    library
        .tags(&[])
        .unwrap()
        .into_iter()
        .filter(|t| t.label == name && t.source != TagSource::Rejected)
        .count()
}

#[test]
fn label_edits_are_undone_and_redone_in_one_history_with_decisions() {
    let (_photos, mut library, everywhere, images) = tagged_everywhere();
    let lib = &mut library.library;
    let everywhere_photos = tagged_with(lib, "Everywhere");

    // Added: tags every photo.
    let (cat, _) = lib
        .add_label(Label {
            threshold: -1.0,
            ..Label::new("Cat", "")
        })
        .unwrap();
    assert_eq!(tagged_with(lib, "Cat"), everywhere_photos);
    // Its threshold applied: tags none.
    lib.update_label(Label {
        threshold: 0.99,
        ..cat.clone()
    })
    .unwrap();
    assert_eq!(tagged_with(lib, "Cat"), 0);
    // A decision between two label edits.
    lib.decide(images[0], everywhere, Decision::Reject).unwrap();
    // Moved into a group, then the group disabled.
    let cat = lib.label_named("Cat").unwrap();
    lib.update_label(Label {
        name: "Pets/Cat".into(),
        ..cat
    })
    .unwrap();
    lib.edit_group("Pets", &GroupEdit::Enable(false)).unwrap();
    assert!(!lib.label_named("Pets/Cat").unwrap().enabled);

    // Undone newest first, whichever kind each step is.
    let said = |report: &HistoryReport| history_summary(report);
    let undone = lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(said(&undone), "undid disabling \"Pets/Cat\"");
    assert!(lib.label_named("Pets/Cat").unwrap().enabled);
    let undone = lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(said(&undone), "undid renaming \"Cat\" to \"Pets/Cat\"");
    assert!(lib.label_named("Pets/Cat").is_err());
    lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(tag(lib, images[0], everywhere), Some(TagSource::Auto));
    let undone = lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(
        said(&undone),
        "undid setting the threshold of \"Cat\" to 0.99 (it was -1.00)"
    );
    assert_eq!(lib.label_named("Cat").unwrap().threshold, -1.0);
    assert_eq!(
        tagged_with(lib, "Cat"),
        everywhere_photos,
        "the tags follow the threshold put back"
    );
    let undone = lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(said(&undone), "undid adding \"Cat\"");
    assert!(lib.label_named("Cat").is_err());
    assert_eq!(tagged_with(lib, "Cat"), 0);

    // Redone oldest first: the label comes back as it was, under its id, and tags again.
    let redone = lib.undo_or_redo(Direction::Redo).unwrap().unwrap();
    assert_eq!(said(&redone), "redid adding \"Cat\"");
    assert_eq!(lib.label_named("Cat").unwrap().id, cat_id(&redone));
    assert_eq!(tagged_with(lib, "Cat"), everywhere_photos);
    for _ in 0..4 {
        lib.undo_or_redo(Direction::Redo).unwrap().unwrap();
    }
    let cat = lib.label_named("Pets/Cat").unwrap();
    assert!(!cat.enabled && cat.threshold == 0.99);
    assert_eq!(tag(lib, images[0], everywhere), Some(TagSource::Rejected));
    assert_eq!(lib.undo_or_redo(Direction::Redo).unwrap(), None);
}

/// The label a report's single label change is about.
fn cat_id(report: &HistoryReport) -> i64 {
    assert_eq!(report.labels.len(), 1, "{report:?}");
    report.labels[0].label_id
}

#[test]
fn learning_is_undone_and_a_label_changed_since_is_left_alone() {
    let (_photos, mut library, everywhere, images) = tagged_everywhere();
    let lib = &mut library.library;
    lib.decide(images[0], everywhere, Decision::Apply).unwrap();
    lib.decide(images[1], everywhere, Decision::Reject).unwrap();
    let before = lib.label_named("Everywhere").unwrap();
    lib.learn("Everywhere", false).unwrap();
    assert!(lib.label_named("Everywhere").unwrap().learned.is_some());
    let undone = lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert_eq!(
        history_summary(&undone),
        "undid learning \"Everywhere\" from your decisions"
    );
    let now = lib.label_named("Everywhere").unwrap();
    assert_eq!(now.learned, None);
    assert_eq!(
        now.threshold, before.threshold,
        "the threshold before learning"
    );
    // The decisions it learned from are not touched.
    assert_eq!(tag(lib, images[1], everywhere), Some(TagSource::Rejected));

    // Redo it, then change the label elsewhere: undoing the learning leaves that change.
    lib.undo_or_redo(Direction::Redo).unwrap().unwrap();
    let db = library.db();
    let mut other = cliptag::store::Store::open(&db).unwrap();
    let mut changed = other.label(before.id).unwrap().unwrap();
    changed.threshold = 0.5;
    other.update_label(&changed).unwrap();
    let lib = &mut library.library;
    let undone = lib.undo_or_redo(Direction::Undo).unwrap().unwrap();
    assert!(
        history_summary(&undone).contains("\"Everywhere\" left as it is: changed or removed since"),
        "{}",
        history_summary(&undone)
    );
    assert_eq!(lib.label_named("Everywhere").unwrap().threshold, 0.5);
}

#[test]
fn the_command_line_undoes_a_label_it_added() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    let db = db.to_str().unwrap();
    cliptag_ok(&[
        "--db",
        db,
        "vocab",
        "add",
        "Lighthouse",
        "--threshold",
        "-1",
    ]);
    let undone = cliptag_ok(&["--db", db, "undo"]);
    assert_eq!(
        String::from_utf8_lossy(&undone.stderr).trim(),
        "undid adding \"Lighthouse\""
    );
    let list = cliptag_ok(&["--db", db, "vocab", "list"]);
    assert!(!String::from_utf8_lossy(&list.stdout).contains("Lighthouse"));
    cliptag_ok(&["--db", db, "redo"]);
    let tags = cliptag_ok(&["--db", db, "tags"]);
    assert_eq!(
        String::from_utf8_lossy(&tags.stdout)
            .lines()
            .filter(|l| l.contains("\tLighthouse\t"))
            .count(),
        10,
        "the label is back and tags every photo"
    );
}

#[test]
fn an_applied_threshold_is_undone_from_the_toolbar_and_the_editor_follows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    cliptag::store::Store::open(&db)
        .unwrap()
        .insert_label(&Label {
            threshold: 0.99,
            ..Label::new("Strict", "")
        })
        .unwrap();
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the label", |h| has_label(h, "Strict (0)"));
    let undo = |h: &egui_kittest::Harness<'static, cliptag::app::CliptagApp>| {
        !h.get_by_role_and_label(egui::accesskit::Role::Button, "Undo")
            .accesskit_node()
            .is_disabled()
    };
    assert!(!undo(&harness), "nothing to undo yet");
    harness.get_by_label("Strict (0)").click();
    step_until(&mut harness, "the editor", |h| has_label(h, "Saved"));
    harness
        .get_by_role_and_label(egui::accesskit::Role::Slider, "Threshold")
        .set_value_accesskit(-0.99);
    step_until(&mut harness, "the draft", |h| has_label(h, "Not saved"));
    harness.get_by_label("Apply").click();
    step_until(&mut harness, "every photo tagged", |h| {
        label_count(h.state(), "Strict") == Some(10) && undo(h)
    });

    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Undo")
        .click();
    step_until(&mut harness, "the threshold put back", |h| {
        label_count(h.state(), "Strict") == Some(0)
            && h.state().sidebar.editor.as_ref().unwrap().draft.threshold == 0.99
            && has_label(h, "Saved")
    });
    let said: Vec<String> = harness
        .state()
        .messages
        .iter()
        .map(|m| m.text.clone())
        .collect();
    assert!(
        said.iter()
            .any(|m| m == "undid setting the threshold of \"Strict\" to -0.99 (it was 0.99)"),
        "{said:?}"
    );
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Redo")
        .click();
    step_until(&mut harness, "the threshold applied again", |h| {
        label_count(h.state(), "Strict") == Some(10)
            && h.state().sidebar.editor.as_ref().unwrap().draft.threshold == -0.99
    });
}

#[test]
fn undoing_an_addition_keeps_decisions_and_redo_makes_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = indexed_library(&db);
    let db = db.to_str().unwrap();
    let photo = photos.path().canonicalize().unwrap().join("astronaut.jpg");
    let photo = photo.to_str().unwrap();
    let said = |args: &[&str]| {
        let mut all = vec!["--db", db];
        all.extend_from_slice(args);
        String::from_utf8_lossy(&cliptag_ok(&all).stderr)
            .trim()
            .to_string()
    };
    let decisions = || {
        String::from_utf8_lossy(&cliptag_ok(&["--db", db, "tags", photo]).stdout)
            .lines()
            .filter(|l| !l.ends_with("\tauto"))
            .count()
    };

    // Undone in order, the decision then the label; redone in order, both come back.
    said(&["vocab", "add", "Lamp"]);
    said(&["tag", "add", photo, "Lamp"]);
    said(&["undo"]);
    assert_eq!(said(&["undo"]), "undid adding \"Lamp\"");
    assert_eq!(said(&["redo"]), "redid adding \"Lamp\"");
    assert!(said(&["redo"]).starts_with("redid adding \"Lamp\" on"));
    assert_eq!(decisions(), 1);

    // A decision the history does not hold (the photo's folder removed and added again) keeps
    // its label from being undone away.
    let folder = photos.path().canonicalize().unwrap();
    said(&["folders", "remove", folder.to_str().unwrap()]);
    // Undo stops once at the removal, which it cannot take back, and says how.
    let undone = said(&["undo"]);
    assert!(
        undone.contains("is not undone here: add the folder again"),
        "{undone}"
    );
    // Decisions kept for the folder's return hold the label too.
    let undone = said(&["undo"]);
    assert!(
        undone.contains("\"Lamp\" stays: it holds decisions you made"),
        "{undone}"
    );
    index_with_tiny(db, &folder);
    assert_eq!(decisions(), 1, "given back with the folder");

    // An addition undone over nothing is not redone: the label was removed since.
    said(&["vocab", "add", "Zed"]);
    said(&["vocab", "remove", "Zed"]);
    let undone = said(&["undo"]);
    assert!(undone.contains("\"Zed\" left as it is"), "{undone}");
    said(&["redo"]);
    let list = cliptag_ok(&["--db", db, "vocab", "list"]);
    assert!(!String::from_utf8_lossy(&list.stdout).contains("Zed"));
}

#[test]
fn a_decision_on_a_photo_gone_meanwhile_says_so() {
    let (_photos, library, label, _) = tagged_everywhere();
    let mut store = library.store();
    let error = store
        .set_decisions_recorded(
            &[(999_999, label, Some(TagSource::Rejected))],
            &[],
            &[],
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(error.contains("is no longer in the library"), "{error}");
}

#[test]
fn the_group_panel_follows_a_rename_undone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    cliptag::store::Store::open(&db)
        .unwrap()
        .insert_label(&Label::new("Pets/Cat", ""))
        .unwrap();
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the group", |h| has_label(h, "Pets ("));
    harness.get_by_label_contains("Pets (").click();
    step_until(&mut harness, "the group panel", |h| {
        h.query_by_label("Group name").is_some()
    });
    harness.state_mut().sidebar.group.as_mut().unwrap().new_path = "Kitties".into();
    harness.get_by_label("Rename").click();
    step_until(&mut harness, "the rename", |h| {
        h.state()
            .snapshot
            .labels
            .iter()
            .any(|l| l.label.name == "Kitties/Cat")
    });
    let group = |h: &egui_kittest::Harness<'static, cliptag::app::CliptagApp>| {
        h.state().sidebar.group.as_ref().map(|g| g.path.clone())
    };
    assert_eq!(group(&harness).as_deref(), Some("Kitties"));
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "Undo")
        .click();
    step_until(&mut harness, "the rename undone", |h| {
        h.state()
            .snapshot
            .labels
            .iter()
            .any(|l| l.label.name == "Pets/Cat")
    });
    assert_eq!(
        group(&harness).as_deref(),
        Some("Pets"),
        "the panel follows"
    );
}
