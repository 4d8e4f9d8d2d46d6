//! The window's geometry, read from the accessibility tree as a person meets it: at 1024×640 (a
//! 13-inch laptop) and 1920×1080, in each main state, no two controls overlap, every control lies
//! inside the window, and the gallery keeps at least two photos side by side.

use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};

use cliptag::app::CliptagApp;
use cliptag::domain::Label;
use cliptag::store::Store;

use crate::app::{app_harness, has_label, indexed_library, step_until};
use crate::support::*;

/// Controls a person clicks, types into or drags.
fn interactive(role: Role) -> bool {
    matches!(
        role,
        Role::Button
            | Role::DefaultButton
            | Role::TextInput
            | Role::MultilineTextInput
            | Role::SearchInput
            | Role::SpinButton
            | Role::Slider
            | Role::CheckBox
            | Role::RadioButton
            | Role::ComboBox
            | Role::Link
            | Role::Tab
    )
}

/// Every visible control with its name and rectangle: of the whole window, or of the floating
/// window called `on_top` alone (what it covers is covered by design).
fn controls(
    harness: &Harness<'static, CliptagApp>,
    on_top: Option<&str>,
) -> Vec<(String, egui::Rect)> {
    let root = match on_top {
        Some(title) => harness.get_by_role_and_label(Role::Window, title),
        None => harness.root(),
    };
    root.children_recursive()
        .filter(|n| interactive(n.accesskit_node().role()) && !n.accesskit_node().is_hidden())
        .map(|n| {
            let node = n.accesskit_node();
            let name = node.label().or_else(|| node.value()).unwrap_or_default();
            (format!("{:?} {name:?}", node.role()), n.rect())
        })
        .filter(|(_, rect)| rect.area() > 0.0)
        .collect()
}

/// Asserts the window's geometry in the state called `state`.
fn assert_layout(
    harness: &Harness<'static, CliptagApp>,
    size: egui::Vec2,
    state: &str,
    on_top: Option<&str>,
) {
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, size).expand(0.5);
    let all = controls(harness, on_top);
    let mut problems = Vec::new();
    // A control cut by the window's sides or top is cut off. Rows of a scrolling list (photos,
    // labels, scores) run on below the bottom edge, where the list scrolls them into view.
    for (name, rect) in &all {
        if rect.left() < window.left() || rect.right() > window.right() || rect.top() < window.top()
        {
            problems.push(format!("{name} at {rect:?} is cut off by the window"));
        }
    }
    // Controls wholly in view must not cover one another. A row of a scrolling list that runs
    // on under the status bar is partly scrolled off: its list clips it at the bar's top.
    let status_top = harness
        .query_all_by_label_contains("model:")
        .map(|n| n.rect().top())
        .fold(window.bottom(), f32::min);
    let controls: Vec<&(String, egui::Rect)> = all
        .iter()
        .filter(|(_, r)| window.contains_rect(*r))
        .filter(|(_, r)| {
            on_top.is_some() || !(r.top() < status_top && r.bottom() > status_top + 1.0)
        })
        .collect();
    for (i, (a, ra)) in controls.iter().enumerate() {
        for (b, rb) in controls[i + 1..].iter().map(|c| (&c.0, &c.1)) {
            let shared = ra.intersect(*rb);
            // Touching edges are not an overlap.
            if shared.width() > 1.0 && shared.height() > 1.0 {
                problems.push(format!("{a} at {ra:?} overlaps {b} at {rb:?}"));
            }
        }
    }
    // A floating window opens below the toolbar, not over its buttons.
    if let Some(title) = on_top {
        let window = harness.get_by_role_and_label(Role::Window, title).rect();
        let toolbar = harness
            .query_all_by_label("Folders…")
            .map(|n| n.rect().bottom())
            .fold(0.0_f32, f32::max);
        if window.top() < toolbar {
            problems.push(format!(
                "the window {title:?} at {window:?} covers the toolbar"
            ));
        }
    }
    // (An empty library shows its welcome instead of a gallery.)
    let columns = harness.state().gallery.columns;
    if harness.state().snapshot.photos > 0 && columns < 2 {
        problems.push(format!("the gallery is {columns} photo wide"));
    }
    assert!(
        problems.is_empty(),
        "{state} at {}×{}: {} controls, problems:\n{}",
        size.x,
        size.y,
        controls.len(),
        problems.join("\n")
    );
}

#[test]
fn the_window_holds_at_a_laptops_size_and_a_desktops_in_every_main_state() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = indexed_library(&db);
    // One photo that cannot be read, for the problems window.
    std::fs::write(photos.path().join("broken.jpg"), b"\xff\xd8 not a photo").unwrap();
    index_with_tiny(&db, photos.path());
    Store::open(&db)
        .unwrap()
        .insert_label(&Label::new("Anything", ""))
        .unwrap();
    for size in [egui::vec2(1024.0, 640.0), egui::vec2(1920.0, 1080.0)] {
        let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
        harness.set_size(size);
        step_until(&mut harness, "the gallery", |h| {
            h.state().snapshot.indexed > 0
                && has_label(h, "Anything (")
                && !h.state().gallery.visible().is_empty()
        });
        assert_layout(&harness, size, "the gallery", None);

        crate::app::type_into(&mut harness, "Search photos", "a dog on the beach");
        harness.get_by_label("Search").click();
        step_until(&mut harness, "the search's answer", |h| {
            h.query_by_label("Clear").is_some()
        });
        assert_layout(&harness, size, "a search", None);
        harness.get_by_label("Clear").click();
        harness.step();

        let first = harness.state().gallery.visible().first().copied();
        let columns = harness.state().gallery.columns;
        harness.state_mut().select(first);
        step_until(&mut harness, "the photo", |h| {
            h.state().inspector.detail.is_some()
        });
        harness.step();
        assert_eq!(
            harness.state().gallery.columns,
            columns,
            "selecting a photo reflowed the gallery at {size:?}"
        );
        assert_layout(&harness, size, "a photo open", None);

        harness.get_by_label_contains("Anything (").click();
        step_until(&mut harness, "the label editor", |h| {
            h.query_by_label("Score histogram of Anything").is_some()
        });
        assert_layout(&harness, size, "a photo and a label open", None);

        harness.state_mut().select(None);
        step_until(&mut harness, "the label alone", |h| {
            h.state().inspector.detail.is_none()
        });
        assert_layout(&harness, size, "a label open", None);

        harness.state_mut().windows.show_export = true;
        step_until(&mut harness, "the export window", |h| {
            has_label(h, "CSV file")
        });
        assert_layout(&harness, size, "the export window", Some("Export tags"));
        harness.state_mut().windows.show_export = false;

        harness.state_mut().windows.show_problems = true;
        step_until(&mut harness, "the problems window", |h| {
            h.query_by_label("Remove missing photos…").is_some() || has_label(h, "broken.jpg")
        });
        assert_layout(&harness, size, "the problems window", Some("Problems"));
        harness.state_mut().windows.show_problems = false;

        // The folders window, asking whether to remove a folder.
        harness.state_mut().windows.folders.open = true;
        step_until(&mut harness, "the folders window", |h| {
            h.query_by_label("Remove…").is_some()
        });
        harness.get_by_label("Remove…").click();
        step_until(&mut harness, "the question", |h| {
            h.query_by_label("Remove folder").is_some()
        });
        assert_layout(&harness, size, "removing a folder", Some("Folders"));
        harness.get_by_label("Cancel").click();
        harness.state_mut().windows.folders.open = false;
        harness.step();

        harness.state_mut().windows.show_shortcuts = true;
        step_until(&mut harness, "the shortcut sheet", |h| {
            has_label(h, "undo your last decision")
        });
        assert_layout(
            &harness,
            size,
            "the shortcut sheet",
            Some("Keyboard shortcuts"),
        );
        harness.state_mut().windows.show_shortcuts = false;

        // The About window, as a person opens it: from the Help menu; with the crates'
        // licences unfolded too.
        harness.get_by_label("Help").click();
        step_until(&mut harness, "the help menu", |h| {
            h.query_by_label("About cliptag").is_some()
        });
        harness.get_by_label("About cliptag").click();
        step_until(&mut harness, "the about window", |h| {
            h.query_by_label("Copy address").is_some()
        });
        harness.step();
        harness.step();
        assert!(has_label(
            &harness,
            &format!("cliptag {}", cliptag::about::VERSION)
        ));
        assert!(has_label(&harness, cliptag::about::COMMIT));
        // The tiny test model is a folder without a model card: no licence is made up for it.
        assert!(has_label(&harness, "From the folder"));
        assert!(has_label(&harness, "Licence: not stated"));
        assert_layout(&harness, size, "the about window", Some("About cliptag"));
        harness
            .get_by_label("Licences of the crates built into cliptag")
            .click();
        step_until(&mut harness, "the crates' licences", |h| {
            h.query_all_by_label_contains("candle-core")
                .next()
                .is_some()
        });
        assert_layout(
            &harness,
            size,
            "the about window with the licences",
            Some("About cliptag"),
        );
        harness.state_mut().windows.show_about = false;

        // Review: the gallery filtered to one label, with its hint line and a photo open.
        let anything = crate::app::label_id(harness.state(), "Anything");
        harness.state_mut().gallery.toggle_tag(anything);
        harness.state_mut().select(first);
        step_until(&mut harness, "review", |h| {
            has_label(h, "A accept · R reject") && h.state().inspector.detail.is_some()
        });
        assert_layout(&harness, size, "review of one label", None);

        // The vocabulary dragged as wide as it goes still leaves the gallery two columns.
        let edge = harness.get_by_label("Filter labels").rect().right() + 4.0;
        let from = egui::pos2(edge, size.y / 2.0);
        let to = egui::pos2(size.x - 10.0, size.y / 2.0);
        crate::app::drag(&mut harness, from, to);
        for _ in 0..4 {
            harness.step();
        }
        let dragged = harness.get_by_label("Filter labels").rect().right();
        assert!(dragged > edge, "the drag did not widen the vocabulary");
        assert!(
            dragged < size.x * 0.45,
            "the vocabulary took {dragged} of {}",
            size.x
        );
        assert_layout(&harness, size, "the vocabulary dragged wide", None);

        // Both side panels dragged as narrow as they go, with a label open in the inspector:
        // its buttons and histogram, and the vocabulary's rows, still fit.
        let edge = harness.get_by_label("Filter labels").rect().right() + 4.0;
        crate::app::drag(
            &mut harness,
            egui::pos2(edge, size.y / 2.0),
            egui::pos2(10.0, size.y / 2.0),
        );
        harness.state_mut().select(None);
        step_until(&mut harness, "the label editor", |h| {
            h.query_by_label("Score histogram of Anything").is_some()
        });
        let edge = harness.get_by_label("Photo").rect().left() - 6.0;
        crate::app::drag(
            &mut harness,
            egui::pos2(edge, size.y / 2.0),
            egui::pos2(size.x - 10.0, size.y / 2.0),
        );
        for _ in 0..4 {
            harness.step();
        }
        let inspector = size.x - harness.get_by_label("Photo").rect().left();
        assert!(inspector < 300.0, "the inspector stayed {inspector} wide");
        assert_layout(&harness, size, "both panels at their narrowest", None);

        // Folded away: the gallery takes its place.
        let columns = harness.state().gallery.columns;
        harness
            .get_by_role_and_label(Role::Button, "Vocabulary")
            .click();
        for _ in 0..3 {
            harness.step();
        }
        assert!(harness.query_by_label("Filter labels").is_none());
        assert!(harness.state().gallery.columns > columns);
        assert_layout(&harness, size, "the vocabulary folded away", None);
        harness
            .get_by_role_and_label(Role::Button, "Vocabulary")
            .click();
        harness.step();
    }
}

#[test]
fn an_empty_library_holds_at_both_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    Store::open(&db).unwrap();
    for size in [egui::vec2(1024.0, 640.0), egui::vec2(1920.0, 1080.0)] {
        let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
        harness.set_size(size);
        step_until(&mut harness, "the welcome", |h| {
            h.query_all_by_label("Open folder…").count() == 2
        });
        assert_layout(&harness, size, "an empty library", None);
    }
}
