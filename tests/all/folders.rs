//! The library's folders: listed with what they hold, removed with the person's decisions kept
//! by content, and given back when the folder (or a copy of it) is indexed again.

use std::path::{Path, PathBuf};

use cliptag::store::Store;
use egui_kittest::kittest::Queryable;

use crate::app::{app_harness, has_label, indexed_library, step_until};
use crate::indexing::fixture_photos;
use crate::support::*;

/// `cliptag --db DB ARGS…`'s stdout, which must succeed.
fn out(db: &Path, args: &[&str]) -> String {
    let mut all = vec!["--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    String::from_utf8(cliptag_ok(&all).stdout).unwrap()
}

/// `cliptag folders remove FOLDER`, which must succeed.
fn remove_folder(db: &Path, folder: &str) -> std::process::Output {
    cliptag_ok(&["--db", db.to_str().unwrap(), "folders", "remove", folder])
}

/// `cliptag folders remove FOLDER` run from `dir` (FOLDER may be relative).
fn remove_folder_from(dir: &Path, db: &Path, folder: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cliptag"))
        .current_dir(dir)
        .args(["--db", db.to_str().unwrap(), "folders", "remove", folder])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap()
}

/// The `tags` rows (path, label, source) a person decided.
fn decisions(db: &Path) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = out(db, &["tags"])
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[3].to_string())
        })
        .filter(|(_, _, source)| source != "auto")
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_removed_folder_s_decisions_come_back_with_its_photos_wherever_they_are_added() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let db = dir.join("lib.sqlite");
    let photos = fixture_photos();
    // trips/ with a sub-folder that is a library folder of its own.
    let trips = dir.join("trips");
    let sub = trips.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    for photo in &photos[..4] {
        std::fs::copy(photo, trips.join(photo.file_name().unwrap())).unwrap();
    }
    std::fs::copy(&photos[4], sub.join(photos[4].file_name().unwrap())).unwrap();
    let bytes_before: Vec<Vec<u8>> = photos[..4]
        .iter()
        .map(|p| std::fs::read(trips.join(p.file_name().unwrap())).unwrap())
        .collect();
    index_with_tiny(&db, &trips);
    index_with_tiny(&db, &sub);
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_string();
    let (a, b, c) = (
        trips.join(name(&photos[0])),
        trips.join(name(&photos[1])),
        sub.join(name(&photos[4])),
    );
    let label = "Keepsake";
    out(&db, &["vocab", "add", label]);
    out(&db, &["tag", "reject", a.to_str().unwrap(), label]);
    out(&db, &["tag", "add", b.to_str().unwrap(), label]);
    out(&db, &["tag", "add", c.to_str().unwrap(), label]);
    let decided = decisions(&db);
    assert_eq!(decided.len(), 3, "{decided:?}");

    let folders = out(&db, &["folders"]);
    assert_eq!(
        folders,
        format!(
            "{}\t5\t5\t0\t0\n{}\t1\t1\t0\t0\n",
            trips.display(),
            sub.display()
        )
    );

    // Not a library folder: refused, nothing changes.
    let refused = cliptag(&[
        "--db",
        db.to_str().unwrap(),
        "folders",
        "remove",
        dir.to_str().unwrap(),
    ]);
    assert_clean_failure(&refused, &["is not one of the library's folders"]);
    assert_eq!(out(&db, &["folders"]), folders);

    // Removed by a path that names it another way (a trailing slash).
    let removed = remove_folder(&db, &format!("{}/", trips.display()));
    let said = String::from_utf8_lossy(&removed.stderr);
    assert!(
        said.contains("with its 4 photos")
            && said.contains("2 decisions you made on them are kept"),
        "{said}"
    );
    // The sub-folder is a library folder of its own: its photo and decision stay.
    assert_eq!(
        out(&db, &["folders"]),
        format!("{}\t1\t1\t0\t0\n", sub.display())
    );
    let files = out(&db, &["files"]);
    assert_eq!(files.lines().count(), 1, "{files}");
    assert_eq!(
        decisions(&db),
        vec![(c.display().to_string(), label.into(), "accepted".into())]
    );
    assert_eq!(Store::open(&db).unwrap().kept_decisions().unwrap(), 2);
    // The photos themselves are untouched.
    for (photo, before) in photos[..4].iter().zip(&bytes_before) {
        assert_eq!(
            &std::fs::read(trips.join(photo.file_name().unwrap())).unwrap(),
            before
        );
    }

    // Added again: the photos come back with the person's decisions, not automatic tags.
    let again = cliptag_ok(&[
        "--db",
        db.to_str().unwrap(),
        "index",
        "--model",
        tiny_clip().to_str().unwrap(),
        trips.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("2 decisions kept from a removed folder"),
        "{said}"
    );
    assert_eq!(decisions(&db), decided);
    assert_eq!(Store::open(&db).unwrap().kept_decisions().unwrap(), 0);
    // A re-tag keeps them.
    out(&db, &["retag"]);
    assert_eq!(decisions(&db), decided);

    // Removed again, the same photos added from somewhere else get them too: by content.
    remove_folder(&db, trips.to_str().unwrap());
    let elsewhere = dir.join("copied");
    std::fs::create_dir(&elsewhere).unwrap();
    for photo in &photos[..4] {
        std::fs::copy(photo, elsewhere.join(photo.file_name().unwrap())).unwrap();
    }
    index_with_tiny(&db, &elsewhere);
    let moved: Vec<(String, String, String)> = decided
        .iter()
        .map(|(path, label, source)| {
            // The sub-folder's photo stayed where it was.
            let path = if Path::new(path).starts_with(&sub) {
                path.clone()
            } else {
                path.replace(
                    &format!("{}/", trips.display()),
                    &format!("{}/", elsewhere.display()),
                )
            };
            (path, label.clone(), source.clone())
        })
        .collect();
    let mut moved = moved;
    moved.sort();
    assert_eq!(decisions(&db), moved);
}

#[test]
fn the_folders_window_lists_adds_and_removes_folders() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let first = indexed_library(&db);
    let first_path = first.path().canonicalize().unwrap();
    let second = crate::indexing::photo_folder(&fixture_photos()[..2]);
    let second_path = second.path().canonicalize().unwrap();
    // A decision on a photo of the first folder, to be kept when it is removed.
    let photo = std::fs::read_dir(&first_path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    out(&db, &["vocab", "add", "Keepsake"]);
    out(&db, &["tag", "add", photo.to_str().unwrap(), "Keepsake"]);

    let mut harness = app_harness(&db, tiny_clip().to_str().unwrap());
    step_until(&mut harness, "the gallery", |h| {
        h.state().gallery.visible().len() == 10
    });
    harness.state_mut().windows.folders.open = true;
    step_until(&mut harness, "the folders window", |h| {
        has_label(h, &first_path.display().to_string()) && has_label(h, "10 photos")
    });

    // Adding a typed path.
    crate::app::type_into(&mut harness, "Folder to add", second_path.to_str().unwrap());
    harness.get_by_label("Add folder").click();
    step_until(&mut harness, "the second folder, indexed", |h| {
        h.state().snapshot.folders.len() == 2
            && h.state().snapshot.photos == 12
            && h.state().snapshot.waiting == 0
            && !h.state().link.indexing
    });
    assert!(has_label(&harness, &second_path.display().to_string()));
    assert!(has_label(&harness, "2 photos"));

    // Removing asks first, and says what is kept.
    harness.get_all_by_label("Remove…").next().unwrap().click();
    step_until(&mut harness, "the question", |h| {
        has_label(h, "Take this folder out of the library?")
    });
    assert!(
        has_label(&harness, "Its 10 photos leave the library"),
        "the question says what goes"
    );
    harness.get_by_label("Cancel").click();
    step_until(&mut harness, "the question withdrawn", |h| {
        !has_label(h, "Take this folder out of the library?")
    });
    assert_eq!(harness.state().snapshot.folders.len(), 2);
    harness.get_all_by_label("Remove…").next().unwrap().click();
    step_until(&mut harness, "the question again", |h| {
        h.query_by_label("Remove folder").is_some()
    });
    harness.get_by_label("Remove folder").click();
    step_until(&mut harness, "the folder removed", |h| {
        h.state().snapshot.folders.len() == 1 && h.state().gallery.visible().len() == 2
    });
    assert_eq!(harness.state().snapshot.folders[0].path, second_path);
    assert!(
        harness
            .state()
            .messages
            .iter()
            .any(|m| m.text.contains("the decision you made on them is kept")),
        "the status says the decision is kept"
    );
    harness.step();
    assert_eq!(
        harness.get_all_by_label("Remove…").count(),
        1,
        "the folder is no longer listed"
    );
    drop(harness);
    assert_eq!(Store::open(&db).unwrap().kept_decisions().unwrap(), 1);
    // The photos themselves stay on disk.
    assert_eq!(std::fs::read_dir(&first_path).unwrap().count(), 10);
}

#[test]
fn copies_of_one_photo_get_back_their_own_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let db = dir.join("lib.sqlite");
    let photo = &fixture_photos()[0];
    // Two copies in one folder, one in another, each decided differently.
    let (x, y) = (dir.join("x"), dir.join("y"));
    std::fs::create_dir_all(&x).unwrap();
    std::fs::create_dir_all(&y).unwrap();
    for copy in [x.join("one.jpg"), x.join("two.jpg"), y.join("one.jpg")] {
        std::fs::copy(photo, copy).unwrap();
    }
    index_with_tiny(&db, &x);
    index_with_tiny(&db, &y);
    out(&db, &["vocab", "add", "Dog"]);
    out(&db, &["vocab", "add", "Cat"]);
    let path = |p: PathBuf| p.to_str().unwrap().to_string();
    out(&db, &["tag", "add", &path(x.join("one.jpg")), "Dog"]);
    out(&db, &["tag", "reject", &path(x.join("two.jpg")), "Dog"]);
    out(&db, &["tag", "add", &path(x.join("two.jpg")), "Cat"]);
    out(&db, &["tag", "reject", &path(y.join("one.jpg")), "Cat"]);
    let decided = decisions(&db);
    assert_eq!(decided.len(), 4);

    // Both folders out, then back one at a time: each copy gets its own decisions.
    for folder in [&x, &y] {
        remove_folder(&db, folder.to_str().unwrap());
    }
    assert!(decisions(&db).is_empty());
    index_with_tiny(&db, &x);
    index_with_tiny(&db, &y);
    assert_eq!(decisions(&db), decided);

    // Out again, and a copy of x found elsewhere: its two photos take x's by name.
    remove_folder(&db, x.to_str().unwrap());
    let moved = dir.join("moved");
    std::fs::rename(&x, &moved).unwrap();
    // A relative path still names a library folder gone from disk.
    let gone = dir.join("gone");
    std::fs::create_dir(&gone).unwrap();
    std::fs::copy(photo, gone.join("three.jpg")).unwrap();
    index_with_tiny(&db, &gone);
    std::fs::remove_dir_all(&gone).unwrap();
    let removed = remove_folder_from(&dir, &db, "gone/");
    assert!(
        removed.status.success(),
        "{}",
        String::from_utf8_lossy(&removed.stderr)
    );
    index_with_tiny(&db, &moved);
    let mut expected: Vec<(String, String, String)> = decided
        .iter()
        .map(|(p, l, s)| {
            (
                p.replace(&path(x.clone()), &path(moved.clone())),
                l.clone(),
                s.clone(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(decisions(&db), expected);
}

#[test]
fn decisions_on_waiting_photos_and_on_a_renamed_folder_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let db = dir.join("lib.sqlite");
    let photos = fixture_photos();
    let waiting = dir.join("waiting");
    std::fs::create_dir(&waiting).unwrap();
    std::fs::copy(&photos[0], waiting.join("a.jpg")).unwrap();
    // No model to be had: the photo is registered, waiting for tags.
    let indexed = cliptag_with_env(
        &[
            "--db",
            db.to_str().unwrap(),
            "index",
            "--model",
            "openai/clip-vit-base-patch32",
            waiting.to_str().unwrap(),
        ],
        &[("HF_HOME", dir.join("empty-hub").to_str().unwrap())],
    );
    assert!(!indexed.status.success());
    out(&db, &["vocab", "add", "Keepsake"]);
    let a = waiting.join("a.jpg");
    out(&db, &["tag", "add", a.to_str().unwrap(), "Keepsake"]);
    let removed = remove_folder(&db, waiting.to_str().unwrap());
    let said = String::from_utf8_lossy(&removed.stderr);
    assert!(
        said.contains("the decision you made on them is kept"),
        "{said}"
    );
    index_with_tiny(&db, &waiting);
    assert_eq!(
        decisions(&db),
        vec![(a.display().to_string(), "Keepsake".into(), "manual".into())],
        "a waiting photo's decision comes back to it"
    );

    // The folder renamed on disk and the new name indexed (its photos are copies of the old
    // records), then the old name removed: the decisions move to the copies.
    let renamed = dir.join("renamed");
    std::fs::rename(&waiting, &renamed).unwrap();
    index_with_tiny(&db, &renamed);
    // Named through `..`, and gone from disk.
    let removed = remove_folder_from(&renamed, &db, "../waiting");
    let said = String::from_utf8_lossy(&removed.stderr);
    assert!(removed.status.success(), "{said}");
    assert!(
        said.contains("1 decision on photos gone from the folder moved"),
        "{said}"
    );
    assert_eq!(
        decisions(&db),
        vec![(
            renamed.join("a.jpg").display().to_string(),
            "Keepsake".into(),
            "manual".into()
        )]
    );
}

#[test]
fn a_renamed_folder_s_copies_take_decisions_by_name_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path().canonicalize().unwrap();
    let db = dir.join("lib.sqlite");
    let photos = fixture_photos();
    let old = dir.join("old");
    std::fs::create_dir(&old).unwrap();
    // Two photos of one content, and one of another.
    std::fs::copy(&photos[0], old.join("r1.jpg")).unwrap();
    std::fs::copy(&photos[0], old.join("r2.jpg")).unwrap();
    std::fs::copy(&photos[1], old.join("c.jpg")).unwrap();
    index_with_tiny(&db, &old);
    out(&db, &["vocab", "add", "Dog"]);
    out(&db, &["vocab", "add", "Fish"]);
    let at = |name: &str| old.join(name).to_str().unwrap().to_string();
    out(&db, &["tag", "add", &at("r1.jpg"), "Dog"]);
    out(&db, &["tag", "reject", &at("r2.jpg"), "Dog"]);
    out(&db, &["tag", "add", &at("r2.jpg"), "Fish"]);
    out(&db, &["tag", "add", &at("c.jpg"), "Fish"]);
    let decided = decisions(&db);

    // Renamed on disk with one file renamed too, indexed under the new name, the old removed.
    let new = dir.join("new");
    std::fs::rename(&old, &new).unwrap();
    std::fs::rename(new.join("r2.jpg"), new.join("renamed.jpg")).unwrap();
    index_with_tiny(&db, &new);
    remove_folder(&db, old.to_str().unwrap());
    // r1 and c go to their copies by name; r2's content has two removed photos and its copy
    // another name: which is which cannot be told, so they wait, kept.
    let moved: Vec<(String, String, String)> = decided
        .iter()
        .filter(|(path, _, _)| !path.ends_with("r2.jpg"))
        .map(|(path, label, source)| {
            (
                path.replace("/old/", "/new/"),
                label.clone(),
                source.clone(),
            )
        })
        .collect();
    assert_eq!(decisions(&db), moved);
    assert_eq!(Store::open(&db).unwrap().kept_decisions().unwrap(), 2);
}
