//! The app's keys act where the person is: Enter in a text field is that field's only, paging
//! keys move through the gallery and keep the selection on screen, and review keys that cannot
//! act say why.

use cliptag::app::CliptagApp;
use cliptag::domain::Label;
use cliptag::store::Store;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::app::{app_harness, has_label, indexed_library, step_until, type_into};
use crate::support::*;

fn add_label(db: &std::path::Path, name: &str) -> i64 {
    Store::open(db)
        .unwrap()
        .insert_label(&Label {
            threshold: -1.0,
            ..Label::new(name, "")
        })
        .unwrap()
}

fn gallery_ready(harness: &mut Harness<'static, CliptagApp>) {
    step_until(harness, "the gallery", |h| {
        h.state().snapshot.photos == 10 && h.state().gallery.visible().len() == 10
    });
}

/// With the vocabulary tree holding the keys on a group, Enter pressed to run a search runs the
/// search and does not also open the group's editor.
#[test]
fn enter_in_the_search_field_does_not_also_open_the_tree_s_group() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    for name in ["Animals/Cat", "Animals/Dog"] {
        add_label(&db, name);
    }
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the tree", |h| has_label(h, "Animals (0)"));
    harness.get_by_label("Animals (0)").click();
    harness.step();
    assert!(
        harness.state().sidebar.has_keys,
        "the tree did not take the keys"
    );
    // The click opened the group's editor; close it, leaving the tree's cursor on the group.
    harness.state_mut().sidebar.group = None;
    harness.step();
    type_into(&mut harness, "Search photos", "a cat");
    harness.key_press(egui::Key::Enter);
    step_until(&mut harness, "the search's answer", |h| {
        h.state().gallery.search.is_some()
    });
    assert!(
        harness.state().sidebar.group.is_none(),
        "Enter in the search field opened the group's editor too"
    );
}

/// Page Down, End and Home move the selection a screen, to the last and to the first photo; a
/// selection moved off screen is scrolled into view.
#[test]
fn paging_keys_move_the_selection_and_the_gallery_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    // The largest thumbnails: two columns, about one row on screen.
    harness.state_mut().settings.cell = 512.0;
    gallery_ready(&mut harness);
    harness.step();
    let ids = harness.state().gallery.visible().to_vec();
    let columns = harness.state().gallery.columns;
    assert!(columns >= 2, "{columns} columns");
    harness.state_mut().select(Some(ids[0]));
    harness.step();
    harness.key_press(egui::Key::PageDown);
    harness.step();
    let selected = harness.state().inspector.selected.unwrap();
    let at = ids.iter().position(|id| *id == selected).unwrap();
    assert!(
        at >= columns && at % columns == 0,
        "Page Down moved to photo {at} of {}",
        ids.len()
    );
    harness.key_press(egui::Key::End);
    harness.step();
    harness.step();
    assert_eq!(harness.state().inspector.selected, ids.last().copied());
    let offset = harness.state().gallery_scroll_offset();
    assert!(offset > 0.0, "the gallery did not scroll to the last photo");
    harness.key_press(egui::Key::Home);
    harness.step();
    harness.step();
    assert_eq!(harness.state().inspector.selected, Some(ids[0]));
    assert_eq!(harness.state().gallery_scroll_offset(), 0.0);
}

/// A and R decide the one label the gallery shows; with none or several, they say so instead
/// of doing nothing.
#[test]
fn review_keys_without_one_label_say_what_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    let (sky, sea) = (add_label(&db, "Sky"), add_label(&db, "Sea"));
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    gallery_ready(&mut harness);
    let first = harness.state().gallery.visible()[0];
    harness.state_mut().select(Some(first));
    harness.step();
    harness.key_press(egui::Key::A);
    harness.step();
    step_until(&mut harness, "what A needs", |h| {
        has_label(
            h,
            "A accepts a label when the gallery shows one label (it shows no label now)",
        )
    });
    harness.state_mut().gallery.tags = vec![sky, sea];
    harness.state_mut().gallery.invalidate();
    harness.step();
    harness.key_press(egui::Key::R);
    harness.step();
    step_until(&mut harness, "what R needs", |h| {
        has_label(
            h,
            "R rejects a label when the gallery shows one label (it shows 2 labels now)",
        )
    });
    let store = Store::open(&db).unwrap();
    assert_eq!(store.tag(first, sky).unwrap(), None);
    assert_eq!(store.tag(first, sea).unwrap(), None);
}

/// Keys pressed faster than frames come (several to a frame) each decide a photo: three
/// rejections sent in one frame are three rejections stored, on three photos in a row.
#[test]
fn every_review_key_counts_even_several_to_a_frame() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    let label = add_label(&db, "Zorblax");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    gallery_ready(&mut harness);
    harness.get_by_label("Re-tag").click();
    step_until(&mut harness, "the tags", |h| {
        h.state()
            .snapshot
            .labels
            .iter()
            .any(|l| l.label.name == "Zorblax" && l.count == 10)
    });
    harness.state_mut().gallery.tags = vec![label];
    harness.state_mut().gallery.invalidate();
    step_until(&mut harness, "the filtered gallery", |h| {
        let app = h.state();
        app.gallery.is_current(app.snapshot.version)
    });
    let ids = harness.state().gallery.visible().to_vec();
    harness.state_mut().select(Some(ids[0]));
    harness.step();
    for _ in 0..3 {
        harness.key_press(egui::Key::R);
    }
    harness.step();
    step_until(&mut harness, "the decisions stored", |h| {
        h.state().link.unsaved_decisions.get() == 0
    });
    let store = Store::open(&db).unwrap();
    for (i, id) in ids.iter().enumerate() {
        let rejected = store.tag(*id, label).unwrap().map(|t| t.0)
            == Some(cliptag::domain::TagSource::Rejected);
        assert_eq!(rejected, i < 3, "photo {i} of the review");
    }
}

/// An open label editor follows the library: a threshold changed underneath (by a switch of
/// model, or another program) shows in the editor, so that its next Apply cannot write the old
/// value back.
#[test]
fn the_label_editor_shows_a_change_made_underneath_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    let id = add_label(&db, "Zorblax");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    gallery_ready(&mut harness);
    harness.get_by_label_contains("Zorblax (").click();
    step_until(&mut harness, "the editor", |h| {
        h.state()
            .sidebar
            .editor
            .as_ref()
            .is_some_and(|e| e.draft.id == id)
    });
    // Another program sets the threshold.
    let mut store = Store::open(&db).unwrap();
    let mut label = store.label(id).unwrap().unwrap();
    label.threshold = 0.4321;
    store.update_label(&label).unwrap();
    drop(store);
    step_until(&mut harness, "the editor following the library", |h| {
        h.state()
            .sidebar
            .editor
            .as_ref()
            .is_some_and(|e| e.draft.threshold == 0.4321)
    });
    assert!(has_label(&harness, "\"Zorblax\" changed in the library"));
}

/// The vocabulary rows shown as selected (highlighted), by their text.
fn highlighted(harness: &Harness<'static, CliptagApp>) -> Vec<String> {
    use egui_kittest::kittest::NodeT;
    harness
        .root()
        .children_recursive()
        .filter(|n| n.accesskit_node().toggled() == Some(egui::accesskit::Toggled::True))
        .filter_map(|n| n.accesskit_node().label())
        .filter(|label| label.ends_with(')'))
        // The name without its count, which a re-tag changes.
        .filter_map(|label| label.rsplit_once(" (").map(|(name, _)| name.to_string()))
        .collect()
}

/// The tree's highlight stays on the label the person chose while a filter hides rows above it
/// and while its group is renamed: it follows the label, not the row's position.
#[test]
fn the_tree_s_highlight_follows_the_label_through_a_filter_and_a_group_rename() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    for name in ["Animals/Cat", "Animals/Dog", "Birds/Owl", "Birds/Robin"] {
        add_label(&db, name);
    }
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the tree", |h| has_label(h, "Animals (0)"));
    for group in ["Animals", "Birds"] {
        harness.state_mut().sidebar.expanded.insert(group.into());
    }
    step_until(&mut harness, "the open groups", |h| has_label(h, "Dog (0)"));
    harness.get_by_label("Dog (0)").click();
    harness.step();
    // The editor highlights what it edits; close it to see the keyboard's own highlight.
    harness.state_mut().sidebar.editor = None;
    harness.step();
    assert_eq!(highlighted(&harness), vec!["Dog".to_string()]);

    // "o" hides Cat, above Dog: the row Dog held now holds another.
    type_into(&mut harness, "Filter labels", "o");
    step_until(&mut harness, "the filtered tree", |h| {
        !has_label(h, "Cat (0)")
    });
    assert_eq!(highlighted(&harness), vec!["Dog".to_string()]);
    harness.state_mut().sidebar.filter.clear();
    // Leave the filter field, so that the keys go to the tree again.
    harness.key_press(egui::Key::Escape);
    harness.step();
    harness.state_mut().sidebar.has_keys = true;
    harness.step();

    // The group moves below Birds; Dog stays the highlighted label, and the keys go on from it.
    harness.state().send(cliptag::worker::Command::EditGroup {
        group: "Animals".into(),
        edit: cliptag::library::GroupEdit::Rename("Wildlife".into()),
    });
    harness
        .state_mut()
        .sidebar
        .expanded
        .insert("Wildlife".into());
    step_until(&mut harness, "the renamed group", |h| {
        has_label(h, "Wildlife (")
    });
    assert_eq!(highlighted(&harness), vec!["Dog".to_string()]);
    harness.key_press(egui::Key::ArrowUp);
    harness.step();
    assert_eq!(highlighted(&harness), vec!["Cat".to_string()]);
}

/// One row is highlighted at a time: with a label open, moving the keyboard's cursor away from
/// it leaves the highlight on the open label (the cursor is only outlined), and closing the
/// editor hands the highlight to the cursor.
#[test]
fn the_open_label_keeps_the_one_highlight_while_the_cursor_moves() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    for name in ["Animals/Cat", "Animals/Dog"] {
        add_label(&db, name);
    }
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the tree", |h| has_label(h, "Animals (0)"));
    harness
        .state_mut()
        .sidebar
        .expanded
        .insert("Animals".into());
    step_until(&mut harness, "the open group", |h| has_label(h, "Dog (0)"));
    harness.get_by_label("Dog (0)").click();
    step_until(&mut harness, "the editor", |h| {
        h.state().sidebar.editor.is_some()
    });
    harness.state_mut().sidebar.has_keys = true;
    harness.key_press(egui::Key::ArrowUp);
    harness.step();
    assert!(matches!(
        harness.state().sidebar.cursor,
        Some(cliptag::app::RowKey::Label(_))
    ));
    assert_eq!(highlighted(&harness), vec!["Dog".to_string()]);
    harness.state_mut().sidebar.editor = None;
    harness.step();
    assert_eq!(highlighted(&harness), vec!["Cat".to_string()]);
}
