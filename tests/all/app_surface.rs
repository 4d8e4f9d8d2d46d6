//! What the window says of itself: the review hint and the keyboard sheet, chips that put the
//! reviewed label first, problem tiles with their reason, and folders shown where no file
//! manager opens.

use egui_kittest::kittest::{NodeT, Queryable};

use crate::app::{
    add_label_that_tags_everything, app_harness, gallery_is_current, has_label, indexed_library,
    label_count, step_until,
};
use crate::support::*;

/// The accessible value of photo `id`'s cell: its tags, or a problem's reason.
fn cell_value(
    harness: &egui_kittest::Harness<'static, cliptag::app::CliptagApp>,
    name: &str,
) -> String {
    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, name)
        .value()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn review_says_its_keys_and_its_chips_lead_with_the_reviewed_label() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    add_label_that_tags_everything(&db, "Aardvark");
    add_label_that_tags_everything(&db, "Zorblax");
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        h.state().snapshot.photos == 10 && h.state().gallery.visible().len() == 10
    });
    harness.get_by_label("Re-tag").click();
    step_until(&mut harness, "the tags", |h| {
        label_count(h.state(), "Zorblax") == Some(10)
    });
    assert!(!has_label(&harness, "A accept · R reject"));
    let zorblax = crate::app::label_id(harness.state(), "Zorblax");
    harness.state_mut().gallery.toggle_tag(zorblax);
    step_until(&mut harness, "the filtered gallery", |h| {
        gallery_is_current(h)
    });
    assert!(has_label(&harness, "A accept · R reject · Ctrl+Z undo"));
    let first = harness.state().gallery.visible()[0];
    let name = harness
        .state_mut()
        .entry(first)
        .unwrap()
        .path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // By name Aardvark would come first; under review, Zorblax does.
    assert!(
        cell_value(&harness, &name).starts_with("Zorblax, Aardvark"),
        "{}",
        cell_value(&harness, &name)
    );

    assert!(harness.query_by_label("Keyboard shortcuts").is_none());
    harness.key_press(egui::Key::F1);
    step_until(&mut harness, "the shortcut sheet", |h| {
        h.query_by_label("Keyboard shortcuts").is_some()
    });
    assert!(has_label(&harness, "undo your last decision"));
    harness.key_press(egui::Key::Escape);
    step_until(&mut harness, "the sheet closed", |h| {
        h.query_by_label("Keyboard shortcuts").is_none()
    });
}

#[test]
fn a_problem_tile_says_why_and_offers_nothing_that_needs_the_photo() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = indexed_library(&db);
    std::fs::write(
        photos.path().join("broken.jpg"),
        b"\xff\xd8\xff\xe0 not a photo",
    )
    .unwrap();
    index_with_tiny(&db, photos.path());
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        h.state().snapshot.problems == 1 && h.state().gallery.visible().len() == 11
    });
    let broken = harness
        .state()
        .gallery
        .visible()
        .iter()
        .copied()
        .find(|id| {
            harness
                .state()
                .snapshot
                .problem_files
                .iter()
                .any(|p| p.id == *id)
        })
        .expect("the broken photo is shown");
    step_until(&mut harness, "the broken photo's row", |h| {
        h.state_mut().entry(broken).is_some()
    });
    let value = cell_value(&harness, "broken.jpg");
    assert!(value.starts_with("cannot read: "), "{value}");
    assert!(value.len() > "cannot read: ".len() + 5, "{value}");

    harness
        .get_by_role_and_label(egui::accesskit::Role::Button, "broken.jpg")
        .click();
    step_until(&mut harness, "the photo panel", |h| {
        h.query_by_label("Show in folder").is_some()
    });
    assert!(harness.query_by_label("More like this").is_none());
    assert!(
        harness
            .query_by_label("New label from this photo")
            .is_none()
    );
}

#[test]
fn a_folder_no_file_manager_can_show_is_given_as_a_path_to_copy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = indexed_library(&db);
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    // No file manager here: the opener cannot run.
    harness.state_mut().windows.folders.opener = dir
        .path()
        .join("no-such-opener")
        .to_string_lossy()
        .into_owned();
    step_until(&mut harness, "the gallery", |h| {
        h.state().gallery.visible().len() == 10
    });
    let first = harness.state().gallery.visible()[0];
    harness.state_mut().select(Some(first));
    step_until(&mut harness, "the photo panel", |h| {
        h.query_by_label("Show in folder").is_some()
    });
    harness.get_by_label("Show in folder").click();
    step_until(&mut harness, "the folder's path", |h| {
        h.query_by_label("Open the folder yourself").is_some()
    });
    let folder = photos.path().canonicalize().unwrap();
    assert!(
        harness
            .query_all_by_value(&folder.display().to_string())
            .next()
            .is_some(),
        "the path is shown"
    );
    harness.get_by_label("Copy path").click();
    step_until(&mut harness, "the copy said", |h| {
        h.state()
            .messages
            .back()
            .is_some_and(|m| m.text == format!("copied {}", folder.display()))
    });

    // After an export the status offers the CSV's folder.
    harness.state_mut().windows.folders.not_shown = None;
    harness.state_mut().settings.export_path =
        dir.path().join("out.csv").to_string_lossy().into_owned();
    harness.get_by_label("Export tags…").click();
    step_until(&mut harness, "the export window", |h| {
        h.query_by_label("Export CSV").is_some()
    });
    harness.get_by_label("Export CSV").click();
    step_until(&mut harness, "the export", |h| {
        has_label(h, "wrote 10 rows")
    });
    // The status bar's, below the photo panel's.
    harness
        .get_all_by_label("Show in folder")
        .max_by(|a, b| a.rect().top().total_cmp(&b.rect().top()))
        .unwrap()
        .click();
    step_until(&mut harness, "the export's folder", |h| {
        h.query_all_by_value(&dir.path().display().to_string())
            .next()
            .is_some()
    });
}

#[test]
fn the_model_window_shows_the_model_in_use_as_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    cliptag::store::Store::open(&db).unwrap();
    // The default hub model, not downloaded here: its name is known all the same.
    let mut harness = app_harness(&db, "openai/clip-vit-base-patch32");
    step_until(&mut harness, "the library's model", |h| {
        h.state().snapshot.model_name == "openai/clip-vit-base-patch32"
    });
    harness.state_mut().windows.picker.open = true;
    step_until(&mut harness, "the model window", |h| {
        has_label(h, "This library tags with")
    });
    assert_eq!(
        harness.state().windows.picker.choice,
        "openai/clip-vit-base-patch32"
    );
    assert!(
        harness
            .get_by_label("Switch to this model")
            .accesskit_node()
            .is_disabled(),
        "switching to the model in use"
    );
}

/// A model folder is in use under its folder's name: typed or picked again by its path, the
/// window does not offer to switch to it.
#[test]
fn the_model_window_knows_a_folder_in_use_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    cliptag::store::Store::open(&db).unwrap();
    let folder = tiny_clip();
    let mut harness = app_harness(&db, folder.to_str().unwrap());
    step_until(&mut harness, "the library's model", |h| {
        h.state().snapshot.model_name == "tiny-clip"
    });
    harness.state_mut().windows.picker.open = true;
    harness.state_mut().windows.picker.choice = folder.to_str().unwrap().to_string();
    step_until(&mut harness, "the model window", |h| {
        has_label(h, "This library tags with")
    });
    assert!(
        harness
            .get_by_label("Switch to this model")
            .accesskit_node()
            .is_disabled(),
        "switching to the folder in use"
    );
}

/// Deciding a tag in the photo panel moves no button: every score row's accept, reject and
/// clear stay where they were (clear is always there, greyed out until there is a decision, and
/// the preview's box does not change size when the picture arrives), so the next click lands
/// where the person aims.
#[test]
fn accepting_a_tag_leaves_every_row_s_buttons_where_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let _photos = indexed_library(&db);
    for name in ["Beach", "Cat", "Dog"] {
        cliptag::store::Store::open(&db)
            .unwrap()
            .insert_label(&cliptag::domain::Label::new(name, ""))
            .unwrap();
    }
    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        !h.state().gallery.visible().is_empty()
    });
    let first = harness.state().gallery.visible().first().copied();
    harness.state_mut().select(first);
    step_until(&mut harness, "the photo's scores", |h| {
        h.query_all_by_label("accept").count() == 3
    });
    let buttons = |h: &egui_kittest::Harness<'static, cliptag::app::CliptagApp>| {
        ["accept", "reject", "clear"]
            .iter()
            .flat_map(|name| h.query_all_by_label(name).map(|n| n.rect()))
            .collect::<Vec<_>>()
    };
    let before = buttons(&harness);
    assert_eq!(before.len(), 9);
    harness.query_all_by_label("accept").next().unwrap().click();
    step_until(&mut harness, "the decision shown", |h| {
        h.query_all_by_label("clear")
            .any(|n| !n.accesskit_node().is_disabled())
    });
    // The large preview, asked for when the photo was opened, has had time to arrive: its box
    // keeps its size, so its arrival moves nothing either (it once pushed the rows by 123
    // points when it came in between).
    let settled = std::time::Instant::now() + std::time::Duration::from_millis(800);
    while std::time::Instant::now() < settled {
        harness.step();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(buttons(&harness), before, "deciding moved the buttons");
}
