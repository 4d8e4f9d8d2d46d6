//! The library core where its parts meet: the model is loaded only when a photo must be
//! embedded and is known by what it is, the embeddings are read once and kept up to date,
//! cancels and crashes lose at most the batch in flight, any file name is indexed, and the
//! command line's tables stay one row per line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cliptag::domain::{ImageStatus, Label, Mode};
use cliptag::library::RunControl;
use cliptag::store::Store;

use crate::indexing::{fixture_photos, photo_folder};
use crate::support::*;

fn jpegs(count: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..count {
        let image = image::RgbImage::from_fn(96, 64, |x, y| {
            image::Rgb([(x * 3 + i * 9) as u8, (y * 5 + i) as u8, (x ^ y ^ i) as u8])
        });
        image.save(dir.path().join(format!("{i:03}.jpg"))).unwrap();
    }
    dir
}

fn pending(library: &TestLibrary) -> usize {
    library
        .library
        .files()
        .unwrap()
        .iter()
        .filter(|f| f.status == ImageStatus::Pending)
        .count()
}

#[test]
fn touched_photos_are_not_embedded_again_and_need_no_model() {
    let photos = photo_folder(&fixture_photos());
    let engine = Arc::new(Watched::new());
    let mut library = TestLibrary::new(engine.clone());
    assert_eq!(library.index(photos.path()).indexed, 10);
    let (embedded, loads) = (engine.embedded(), library.loads.load(Ordering::Relaxed));
    assert_eq!((embedded, loads), (10, 1));

    // A touch (or a restore from a backup) changes the time, not the bytes: set a minute on,
    // not left to the clock's granularity.
    for entry in std::fs::read_dir(photos.path()).unwrap() {
        let file = std::fs::File::options()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap();
        let was = file.metadata().unwrap().modified().unwrap();
        file.set_modified(was + std::time::Duration::from_secs(60))
            .unwrap();
    }
    let (mut reopened, loads) = open_with(&library.db(), engine.clone());
    let summary = reopened
        .index(
            &[photos.path().to_path_buf()],
            small_batches(),
            RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((summary.indexed, summary.unchanged), (0, 10), "{summary:?}");
    assert_eq!(engine.embedded(), 10, "a touched photo was embedded again");
    assert_eq!(loads.load(Ordering::Relaxed), 0, "the model was loaded");
    // Their new times are stored: the next run does not even read them.
    let again = reopened
        .index(
            &[photos.path().to_path_buf()],
            small_batches(),
            RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(again.unchanged, 10);
    assert!(
        library
            .store()
            .images()
            .unwrap()
            .iter()
            .all(|i| i.status == ImageStatus::Ok)
    );
}

#[test]
fn reindexing_needs_no_model_files_and_a_moved_model_keeps_its_embeddings() {
    let photos = photo_folder(&fixture_photos()[..4]);
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    std::fs::create_dir(&model).unwrap();
    for entry in std::fs::read_dir(tiny_clip()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|e| e == "json" || e == "safetensors")
            && !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("reference")
        {
            std::fs::copy(&path, model.join(path.file_name().unwrap())).unwrap();
        }
    }
    let db = work.path().join("lib.sqlite");
    let db = db.to_str().unwrap();
    let index = |model: Option<&Path>| {
        let mut args = vec!["index", "--db", db, photos.path().to_str().unwrap()];
        if let Some(model) = model {
            args.extend(["--model", model.to_str().unwrap()]);
        }
        let output = cliptag(&args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{args:?}: {stderr}");
        stderr
    };
    assert!(index(Some(&model)).contains("indexed 4,"));

    // The model folder moves: it is the same model, so nothing is embedded again.
    let moved = work.path().join("models/clip");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&model, &moved).unwrap();
    let stderr = index(Some(&moved));
    assert!(stderr.contains("indexed 0, unchanged 4"), "{stderr}");

    // Without its weights the model cannot load; re-indexing an unchanged library does not ask.
    std::fs::remove_file(moved.join("model.safetensors")).unwrap();
    let stderr = index(None);
    assert!(stderr.contains("indexed 0, unchanged 4"), "{stderr}");
    // A new photo needs the model, and the error says which and why.
    std::fs::copy(&fixture_photos()[5], photos.path().join("new.jpg")).unwrap();
    let output = cliptag(&["index", "--db", db, photos.path().to_str().unwrap()]);
    assert_clean_failure(&output, &["model.safetensors"]);
}

#[test]
fn embeddings_are_read_once_and_kept_current_while_indexing() {
    let photos = jpegs(12);
    let mut library = TestLibrary::tiny();
    let lib = &mut library.library;
    let control = RunControl::default();
    let mut run = lib
        .start_index(
            &[photos.path().to_path_buf()],
            small_batches(),
            control,
            &mut |_| {},
        )
        .unwrap();
    let cat = lib.label_named("Animals/Cat").unwrap();
    let mut seen = Vec::new();
    while lib.index_step(&mut run, &mut |_| {}).unwrap() {
        // Between two batches a person searches and previews, as in the app.
        seen.push(lib.search("a photo of a cat.", 100).unwrap().len());
        lib.preview(&Label {
            threshold: -1.0,
            ..cat.clone()
        })
        .unwrap();
    }
    let summary = lib.finish_index(run, &mut |_| {});
    assert_eq!(summary.indexed, 12);
    assert_eq!(
        seen.first(),
        Some(&4),
        "the first batch's photos are searchable at once"
    );
    assert_eq!(
        seen,
        vec![4, 8, 12],
        "each batch's photos join the kept embeddings"
    );
    assert_eq!(lib.search("a photo of a cat.", 100).unwrap().len(), 12);
    let preview = lib
        .preview(&Label {
            threshold: -1.0,
            ..cat.clone()
        })
        .unwrap();
    assert_eq!(preview.count, 12);
    assert_eq!(
        lib.matrix_loads(),
        1,
        "the embeddings were read from the database again"
    );
}

#[test]
fn a_cancel_during_a_batch_stops_after_storing_it() {
    let photos = jpegs(20);
    let control = RunControl::default();
    let engine = Arc::new(Watched {
        cancel_on: Some((2, control.clone())),
        ..Watched::new()
    });
    let mut library = TestLibrary::new(engine.clone());
    let summary = library
        .library
        .index(
            &[photos.path().to_path_buf()],
            small_batches(),
            control,
            &mut |_| {},
        )
        .unwrap();
    assert!(summary.cancelled, "{summary:?}");
    // The batch the encoder was working on when the person cancelled is stored; nothing after.
    assert_eq!(summary.indexed, 8, "{summary:?}");
    assert_eq!(engine.batches(), 2);
    assert_eq!(pending(&library), 12, "the rest waits for the next run");
}

#[test]
fn a_crash_mid_index_redoes_only_the_batch_in_flight() {
    let photos = jpegs(20);
    let crashing = Arc::new(Watched {
        fail_on: Some(3),
        ..Watched::new()
    });
    let mut library = TestLibrary::new(crashing);
    let error = library
        .library
        .index(
            &[photos.path().to_path_buf()],
            small_batches(),
            RunControl::default(),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(error.to_string().contains("crashed"), "{error}");
    let committed = 20 - pending(&library);
    assert_eq!(
        committed, 8,
        "two batches of 4 were committed before the crash"
    );

    let counting = Arc::new(Watched::new());
    let (mut reopened, _) = open_with(&library.db(), counting.clone());
    let summary = reopened
        .index(
            &[photos.path().to_path_buf()],
            small_batches(),
            RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((summary.indexed, summary.unchanged), (12, 8), "{summary:?}");
    // Redone: the photos of the batch in flight (4), and the 8 the first run never reached.
    assert_eq!(counting.embedded(), 12);
}

#[cfg(unix)]
#[test]
fn file_names_that_are_not_utf8_are_indexed_listed_and_escaped() {
    use std::os::unix::ffi::OsStrExt;
    let photos = tempfile::tempdir().unwrap();
    let odd = photos
        .path()
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9 \xff.jpg"));
    std::fs::copy(&fixture_photos()[0], &odd).unwrap();
    std::fs::copy(&fixture_photos()[1], photos.path().join("tab\there.jpg")).unwrap();
    std::fs::copy(&fixture_photos()[2], photos.path().join("new\nline.jpg")).unwrap();
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("lib.sqlite");
    let db = db.to_str().unwrap();
    let model = tiny_clip();
    let output = cliptag(&[
        "index",
        "--db",
        db,
        "--model",
        model.to_str().unwrap(),
        photos.path().to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stderr.contains("indexed 3,"),
        "{stderr}"
    );
    cliptag(&[
        "vocab",
        "add",
        "Tab\tin name",
        "--threshold",
        "-1",
        "--db",
        db,
    ]);

    // One row per line, whatever the names hold; the escapes read back to the names.
    let root = photos.path().canonicalize().unwrap();
    let root = root.to_str().unwrap();
    let files = String::from_utf8(cliptag(&["files", "--db", db]).stdout).unwrap();
    let lines: Vec<&str> = files.lines().collect();
    assert_eq!(lines.len(), 3, "{files:?}");
    assert!(
        lines.contains(&format!("{root}/caf\\xe9 \\xff.jpg\tok\t").as_str()),
        "{files:?}"
    );
    assert!(
        lines.contains(&format!("{root}/new\\nline.jpg\tok\t").as_str()),
        "{files:?}"
    );
    assert!(
        lines.contains(&format!("{root}/tab\\there.jpg\tok\t").as_str()),
        "{files:?}"
    );
    let tags = String::from_utf8(cliptag(&["tags", "--db", db]).stdout).unwrap();
    assert!(tags.lines().all(|l| l.split('\t').count() == 4), "{tags:?}");
    assert!(tags.contains("\tTab\\tin name\t"), "{tags:?}");
    let found = cliptag(&["search", "--db", db, "--limit", "5", "a photo"]);
    let found = String::from_utf8(found.stdout).unwrap();
    assert_eq!(found.lines().count(), 3, "{found:?}");
    assert!(
        found.lines().all(|l| l.split('\t').count() == 2),
        "{found:?}"
    );
    // The photo is a photo like any other: a decision can name it on the command line.
    let decided = std::process::Command::new(env!("CARGO_BIN_EXE_cliptag"))
        .args(["tag", "reject"])
        .arg(&odd)
        .args(["Tab\tin name", "--db", db])
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(
        decided.status.success(),
        "{}",
        String::from_utf8_lossy(&decided.stderr)
    );
    let tags = String::from_utf8(cliptag(&["tags", "--db", db]).stdout).unwrap();
    let prefix = format!("{root}/caf\\xe9 \\xff.jpg\tTab\\tin name\t");
    assert!(
        tags.lines()
            .any(|l| l.starts_with(&prefix) && l.ends_with("\trejected")),
        "{tags:?}"
    );
    // exiftool's import form cannot name such a file: the export says so.
    let csv = Path::new(db).with_file_name("exiftool.csv");
    let exported = cliptag(&[
        "export",
        "--db",
        db,
        "--form",
        "exiftool",
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(
        String::from_utf8_lossy(&exported.stderr).contains("not valid UTF-8"),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let (library, _) = open_with(Path::new(db), Arc::new(tiny_engine()));
    let image = library.find_image(&odd).unwrap();
    assert_eq!(image.status, ImageStatus::Ok);
    assert_eq!(image.path, odd.canonicalize().unwrap());
    let reader = cliptag::library::GalleryReader::open(Path::new(db)).unwrap();
    let entries = reader.entries(&[image.id]).unwrap();
    assert_eq!(entries[0].path, image.path);
}

#[test]
fn a_jpeg_declaring_too_many_pixels_is_refused_before_decoding() {
    // A real small JPEG whose frame header claims 30000 × 30000 pixels (900 megapixels).
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 80)
        .encode_image(&image::RgbImage::from_pixel(
            64,
            48,
            image::Rgb([200, 100, 50]),
        ))
        .unwrap();
    let sof = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("a baseline frame header");
    bytes[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]);
    for reduce in [Some(224), None] {
        let error = cliptag::imaging::decode_bytes(&bytes, reduce)
            .err()
            .expect("refused");
        assert!(
            error.contains("30000×30000") && error.contains("megapixels"),
            "{reduce:?}: {error}"
        );
    }
    // Indexed among good photos, it is listed with its reason and the rest are indexed.
    let photos = photo_folder(&fixture_photos()[..2]);
    std::fs::write(photos.path().join("bomb.jpg"), &bytes).unwrap();
    let mut library = TestLibrary::tiny();
    let summary = library.index(photos.path());
    assert_eq!((summary.indexed, summary.failed), (2, 1), "{summary:?}");
    let bomb = library
        .library
        .find_image(&photos.path().join("bomb.jpg"))
        .unwrap();
    assert_eq!(bomb.status, ImageStatus::Error);
    assert!(bomb.error.unwrap().contains("megapixels"));
}

#[test]
fn a_new_label_from_the_command_line_uses_its_mode_default_threshold() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("lib.sqlite");
    let db = db.to_str().unwrap();
    let output = cliptag(&["vocab", "add", "Sunset", "--mode", "topk", "--db", db]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (library, _) = open_with(Path::new(db), Arc::new(tiny_engine()));
    let label = library.label_named("sunset").unwrap();
    assert_eq!(label.mode, Mode::TopK);
    assert_eq!(label.threshold, Mode::TopK.default_threshold(""));
}

#[test]
fn a_group_is_renamed_moved_and_switched_as_one_and_keeps_its_decisions() {
    use cliptag::domain::Decision;
    use cliptag::library::GroupEdit;

    let dir = photo_folder(&fixture_photos()[..3]);
    let mut library = TestLibrary::tiny();
    library.clear_vocabulary();
    library.index(dir.path());
    let everything = |name: &str| Label {
        threshold: -1.0,
        ..Label::new(name, "tiny")
    };
    let lib = &mut library.library;
    let (cat, _) = lib.add_label(everything("Pets/Cat")).unwrap();
    lib.add_label(everything("Pets/Dogs/Terrier")).unwrap();
    lib.add_label(everything("Petsitter")).unwrap();
    lib.add_label(everything("Animals/Cow")).unwrap();
    let image = library.store().images().unwrap()[0].id;
    library
        .library
        .decide(image, cat.id, Decision::Reject)
        .unwrap();
    let lib = &mut library.library;

    // `Petsitter` is not in `Pets`; case does not matter, as for label names.
    let (switched, _) = lib.edit_group("pets", &GroupEdit::Enable(false)).unwrap();
    assert_eq!(switched, 2);
    let enabled =
        |lib: &cliptag::library::Library, name: &str| lib.label_named(name).unwrap().enabled;
    assert!(!enabled(lib, "Pets/Cat") && !enabled(lib, "Pets/Dogs/Terrier"));
    assert!(enabled(lib, "Petsitter"));
    assert_eq!(
        library
            .store()
            .tags()
            .unwrap()
            .iter()
            .filter(|t| t.label_id == cat.id && t.source == cliptag::domain::TagSource::Auto)
            .count(),
        0
    );
    let lib = &mut library.library;
    lib.edit_group("Pets", &GroupEdit::Enable(true)).unwrap();

    // Moved under another group: every label follows, with its id and decisions.
    let (moved, _) = lib
        .edit_group("Pets", &GroupEdit::Rename("Animals/Pets".into()))
        .unwrap();
    assert_eq!(moved, 2);
    let cat_after = lib.label_named("Animals/Pets/Cat").unwrap();
    assert_eq!(cat_after.id, cat.id);
    assert!(lib.label_named("Animals/Pets/Dogs/Terrier").is_ok());
    assert!(lib.label_named("Pets/Cat").is_err());
    let store = library.store();
    assert_eq!(
        store.tag(image, cat.id).unwrap().map(|t| t.0),
        Some(cliptag::domain::TagSource::Rejected)
    );
    // A name another label has is refused, and nothing changes.
    let lib = &mut library.library;
    lib.add_label(everything("Farm/Cat")).unwrap();
    let taken = lib
        .edit_group("Animals/Pets", &GroupEdit::Rename("Farm".into()))
        .unwrap_err()
        .to_string();
    assert!(taken.contains("Farm/Cat"), "{taken}");
    assert!(lib.label_named("Animals/Pets/Cat").is_ok());
    assert!(
        lib.edit_group("Nothing", &GroupEdit::Enable(false))
            .is_err()
    );
}

#[test]
fn new_prompt_templates_change_the_scores_of_labels_without_prompts_of_their_own() {
    let dir = photo_folder(&fixture_photos()[..2]);
    let mut library = TestLibrary::tiny();
    library.clear_vocabulary();
    library.index(dir.path());
    let lib = &mut library.library;
    let (plain, _) = lib.add_label(Label::new("Animals/Cat", "tiny")).unwrap();
    let (own, _) = lib
        .add_label(Label {
            prompts: vec!["a cat asleep on a sofa".into()],
            ..Label::new("Sleeping cat", "tiny")
        })
        .unwrap();
    let image = library.store().images().unwrap()[0].id;
    let score = |lib: &mut cliptag::library::Library, id: i64| {
        lib.detail(image)
            .unwrap()
            .scores
            .iter()
            .find(|s| s.label_id == id)
            .unwrap()
            .score
    };
    let lib = &mut library.library;
    let (plain_before, own_before) = (score(lib, plain.id), score(lib, own.id));
    let (stored, retag) = lib
        .set_templates(&["  a blurry snapshot of my {}  ".into(), "".into()])
        .unwrap();
    assert_eq!(stored, ["a blurry snapshot of my {}"]);
    assert!(
        matches!(retag, cliptag::library::Retag::Done(_)),
        "{retag:?}"
    );
    assert_eq!(lib.templates().unwrap(), stored);
    assert_eq!(
        plain.prompts(&stored),
        ["a blurry snapshot of my cat"],
        "a label's prompts come from the templates"
    );
    let (plain_after, own_after) = (score(lib, plain.id), score(lib, own.id));
    assert!(
        (plain_after - plain_before).abs() > 1e-4,
        "{plain_before} -> {plain_after}"
    );
    assert_eq!(
        own_after, own_before,
        "a label with its own prompts keeps them"
    );
    assert!(lib.set_templates(&[" ".into()]).is_err());
}

#[test]
fn the_command_line_edits_groups_and_templates() {
    let photos = photo_folder(&fixture_photos()[..2]);
    let db_dir = tempfile::tempdir().unwrap();
    let db = db_dir.path().join("lib.sqlite");
    let db = db.to_str().unwrap();
    let model = tiny_clip();
    cliptag_ok(&[
        "index",
        "--db",
        db,
        "--model",
        model.to_str().unwrap(),
        photos.path().to_str().unwrap(),
    ]);
    let listed = |db: &str| {
        String::from_utf8_lossy(&cliptag_ok(&["vocab", "list", "--db", db]).stdout).into_owned()
    };
    assert!(listed(db).contains("Animals/Cat\t"));

    let off = cliptag_ok(&["vocab", "group", "--db", db, "Animals", "disable"]);
    let said = String::from_utf8_lossy(&off.stderr);
    assert!(
        said.contains("\"Animals\": ") && said.contains("labels disabled"),
        "{said}"
    );
    let cat = listed(db)
        .lines()
        .find(|l| l.starts_with("Animals/Cat\t"))
        .unwrap()
        .to_string();
    assert!(cat.contains("\tdisabled"), "{cat}");

    cliptag_ok(&[
        "vocab",
        "group",
        "--db",
        db,
        "Animals",
        "rename",
        "Creatures",
    ]);
    let after = listed(db);
    assert!(
        after.contains("Creatures/Cat\t") && !after.contains("Animals/"),
        "{after}"
    );

    let templates = cliptag_ok(&["vocab", "templates", "--db", db]);
    assert_eq!(
        String::from_utf8_lossy(&templates.stdout).lines().next(),
        Some("a photo of a {}.")
    );
    cliptag_ok(&[
        "vocab",
        "templates",
        "--db",
        db,
        "--set",
        "my {}",
        "--set",
        "a {} again",
    ]);
    let templates = cliptag_ok(&["vocab", "templates", "--db", db]);
    assert_eq!(
        String::from_utf8_lossy(&templates.stdout),
        "my {}\na {} again\n"
    );
    assert_clean_failure(
        &cliptag(&["vocab", "group", "--db", db, "Nothing", "enable"]),
        &["no label in the group \"Nothing\""],
    );
}

/// `prune --dry-run` lists the photos gone from disk and the decisions that would go with them,
/// changing nothing; `prune` removes them, and only them.
#[test]
fn prune_lists_then_removes_the_missing_photos() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = crate::indexing::photo_folder(&crate::indexing::fixture_photos()[..3]);
    let model = tiny_clip();
    let db_arg = db.to_str().unwrap();
    cliptag_ok(&[
        "index",
        "--db",
        db_arg,
        "--model",
        model.to_str().unwrap(),
        photos.path().to_str().unwrap(),
    ]);
    let gone = std::fs::read_dir(photos.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    cliptag_ok(&["vocab", "add", "Keeper", "--db", db_arg]);
    cliptag_ok(&[
        "tag",
        "add",
        "--db",
        db_arg,
        gone.to_str().unwrap(),
        "Keeper",
    ]);
    std::fs::remove_file(&gone).unwrap();
    cliptag_ok(&["index", "--db", db_arg, photos.path().to_str().unwrap()]);
    let dry = cliptag_ok(&["prune", "--dry-run", "--db", db_arg]);
    let listed = String::from_utf8(dry.stdout).unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.ends_with("\t1\n"), "{listed}");
    assert!(
        String::from_utf8_lossy(&dry.stderr)
            .contains("would remove 1 missing photo and the 1 decision")
    );
    let count = |db: &str| {
        String::from_utf8(cliptag_ok(&["files", "--db", db]).stdout)
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(count(db_arg), 3, "a dry run changes nothing");
    cliptag_ok(&["prune", "--db", db_arg]);
    let files = String::from_utf8(cliptag_ok(&["files", "--db", db_arg]).stdout).unwrap();
    assert_eq!(files.lines().count(), 2, "{files}");
    assert!(files.lines().all(|l| l.contains("\tok\t")), "{files}");
}

/// `prune` looks at the disk as it is now: a photo deleted since the last index goes; a photo
/// marked missing whose file came back stays (and is said to be back); photos of a library
/// folder that cannot be reached (an unplugged drive) stay, with the folder named.
#[test]
fn prune_removes_only_what_is_gone_from_a_folder_that_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    let photos = crate::indexing::fixture_photos();
    let here = dir.path().join("here");
    let drive = dir.path().join("drive");
    for (folder, files) in [(&here, &photos[..3]), (&drive, &photos[3..5])] {
        std::fs::create_dir(folder).unwrap();
        for file in files {
            std::fs::copy(file, folder.join(file.file_name().unwrap())).unwrap();
        }
    }
    let model = tiny_clip();
    for folder in [&here, &drive] {
        cliptag_ok(&[
            "index",
            "--db",
            db_arg,
            "--model",
            model.to_str().unwrap(),
            folder.to_str().unwrap(),
        ]);
    }
    let mut names: Vec<PathBuf> = std::fs::read_dir(&here)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    // A decision on a photo of which an identical copy stays (copied to the NAS, the original
    // deleted): it moves to the copy.
    let original = &names[2];
    let copy = here.join("copy-of-it.jpg");
    cliptag_ok(&["vocab", "add", "Keeper", "--db", db_arg]);
    cliptag_ok(&[
        "tag",
        "reject",
        "--db",
        db_arg,
        original.to_str().unwrap(),
        "Keeper",
    ]);
    std::fs::copy(original, &copy).unwrap();
    cliptag_ok(&["index", "--db", db_arg, here.to_str().unwrap()]);
    // Marked missing by an index, then put back.
    let back = &names[0];
    let saved = std::fs::read(back).unwrap();
    std::fs::remove_file(back).unwrap();
    cliptag_ok(&["index", "--db", db_arg, here.to_str().unwrap()]);
    std::fs::write(back, saved).unwrap();
    // Deleted after the last index.
    std::fs::remove_file(&names[1]).unwrap();
    // The drive is unplugged: its bare mount point stays, with a stray entry in it.
    std::fs::rename(&drive, dir.path().join("elsewhere")).unwrap();
    std::fs::create_dir(&drive).unwrap();
    std::fs::create_dir(drive.join("lost+found")).unwrap();
    std::fs::remove_file(original).unwrap();

    let dry = cliptag_ok(&["prune", "--dry-run", "--db", db_arg]);
    let listed = String::from_utf8(dry.stdout).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains(names[1].to_str().unwrap()), "{listed}");
    assert!(listed.contains(original.to_str().unwrap()), "{listed}");
    let said = String::from_utf8_lossy(&dry.stderr);
    assert!(said.contains("would remove 2 missing photos"), "{said}");
    assert!(
        said.contains("1 decision would move to identical copies that stay"),
        "{said}"
    );
    assert!(
        said.contains(
            "kept 2 photos in a folder that cannot be reached or where none of its photos is left"
        ) && said.contains(drive.to_str().unwrap()),
        "{said}"
    );
    assert!(
        said.contains("1 photo marked missing is back on disk"),
        "{said}"
    );

    cliptag_ok(&["prune", "--db", db_arg]);
    let files = String::from_utf8(cliptag_ok(&["files", "--db", db_arg]).stdout).unwrap();
    // The one back, the copy, and the two of the unplugged drive.
    assert_eq!(files.lines().count(), 4, "{files}");
    assert!(!files.contains(names[1].to_str().unwrap()), "{files}");
    assert!(files.contains(back.to_str().unwrap()), "{files}");
    let tags =
        String::from_utf8(cliptag_ok(&["tags", "--db", db_arg, copy.to_str().unwrap()]).stdout)
            .unwrap();
    assert!(
        tags.lines()
            .any(|l| l.contains("Keeper") && l.ends_with("rejected")),
        "{tags}"
    );
}

/// A library folder that is empty on the next index (an unplugged drive's bare mount point)
/// keeps its photos as they were, with the folder named among the failures, instead of marking
/// every one of them missing; prune refuses to run while an index holds the library.
#[test]
fn an_empty_mount_point_marks_nothing_missing_and_prune_waits_for_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    let drive = dir.path().join("drive");
    std::fs::create_dir(&drive).unwrap();
    for file in &crate::indexing::fixture_photos()[..3] {
        std::fs::copy(file, drive.join(file.file_name().unwrap())).unwrap();
    }
    index_with_tiny(&db, &drive);
    std::fs::rename(&drive, dir.path().join("unplugged")).unwrap();
    std::fs::create_dir(&drive).unwrap();
    let output = cliptag(&["index", "--db", db_arg, drive.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("missing 0"), "{said}");
    assert!(
        said.contains("this folder is empty now, yet 3 photos of the library were indexed from it"),
        "{said}"
    );
    let files = String::from_utf8(cliptag_ok(&["files", "--db", db_arg]).stdout).unwrap();
    assert_eq!(
        files.lines().filter(|l| l.contains("\tok\t")).count(),
        3,
        "{files}"
    );

    // An index holds the library's lock (standing for one running): prune waits for it.
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join("lib.sqlite.index-lock"))
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::io::AsRawFd;
        // SAFETY: flock only reads the descriptor, which `lock` keeps open.
        assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
        let output = cliptag(&["prune", "--db", db_arg]);
        assert_clean_failure(&output, &["another cliptag is indexing the library"]);
    }
    drop(lock);
}

/// A photo an interrupted index marked missing (it was moved, and the run was killed before
/// it found the new name) is found under its new name by the next index, with its decisions;
/// and prune never overwrites a decision a photo's identical copy holds.
#[test]
fn a_photo_left_missing_by_a_killed_index_is_found_again_and_copies_keep_their_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(photos.join("moved")).unwrap();
    for name in ["chelsea.png", "camera.png", "coffee.jpg"] {
        std::fs::copy(fixtures().join("images").join(name), photos.join(name)).unwrap();
    }
    index_with_tiny(&db, &photos);
    cliptag_ok(&["vocab", "add", "Keeper", "--db", db_arg]);
    let at = |name: &str| photos.join(name).to_str().unwrap().to_string();
    cliptag_ok(&["tag", "add", "--db", db_arg, &at("chelsea.png"), "Keeper"]);
    // Moved; the run that saw it gone was killed after marking it missing.
    std::fs::rename(photos.join("chelsea.png"), photos.join("moved/chelsea.png")).unwrap();
    let mut store = Store::open(&db).unwrap();
    let row = store
        .image_by_path(
            &photos
                .join("chelsea.png")
                .canonicalize()
                .unwrap_or(photos.join("chelsea.png")),
        )
        .unwrap();
    let row = row.unwrap_or_else(|| {
        store
            .images()
            .unwrap()
            .into_iter()
            .find(|r| r.path.ends_with("chelsea.png"))
            .unwrap()
    });
    store.batch(|b| b.mark_missing(&[row.id])).unwrap();
    drop(store);
    let output = cliptag_ok(&["index", "--db", db_arg, photos.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("moved 1"), "{said}");
    let tags =
        String::from_utf8(cliptag_ok(&["tags", "--db", db_arg, &at("moved/chelsea.png")]).stdout)
            .unwrap();
    assert!(
        tags.lines()
            .any(|l| l.contains("Keeper") && l.ends_with("accepted")),
        "{tags}"
    );

    // An identical copy with its own decision: prune gives it none of the removed photo's.
    std::fs::copy(photos.join("camera.png"), photos.join("camera-copy.png")).unwrap();
    cliptag_ok(&["index", "--db", db_arg, photos.to_str().unwrap()]);
    cliptag_ok(&["tag", "add", "--db", db_arg, &at("camera.png"), "Keeper"]);
    cliptag_ok(&[
        "tag",
        "reject",
        "--db",
        db_arg,
        &at("camera-copy.png"),
        "Keeper",
    ]);
    std::fs::remove_file(photos.join("camera.png")).unwrap();
    let output = cliptag_ok(&["prune", "--db", db_arg]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("removed 1 missing photo and the 1 decision"),
        "{said}"
    );
    let tags =
        String::from_utf8(cliptag_ok(&["tags", "--db", db_arg, &at("camera-copy.png")]).stdout)
            .unwrap();
    assert!(
        tags.lines()
            .any(|l| l.contains("Keeper") && l.ends_with("rejected")),
        "{tags}"
    );
}

/// The command line's smaller promises: errors say their cause once, options that do nothing in
/// a mode are refused, a cosine must be one, clearing nothing says so, learning's report reads as
/// one sentence, and a vocabulary of more labels than a library keeps is refused whole.
#[test]
fn the_command_line_says_what_happened_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    let photos = crate::indexing::photo_folder(&crate::indexing::fixture_photos()[..3]);
    let model = tiny_clip();
    cliptag_ok(&[
        "index",
        "--db",
        db_arg,
        "--model",
        model.to_str().unwrap(),
        photos.path().to_str().unwrap(),
    ]);
    // A cause said once.
    let missing = dir.path().join("no-such-folder");
    let output = cliptag(&["index", "--db", db_arg, missing.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        said.matches("No such file or directory").count(),
        1,
        "{said}"
    );
    // Options outside their mode.
    let output = cliptag(&[
        "vocab",
        "add",
        "Cat2",
        "--negative",
        "not a cat",
        "--db",
        db_arg,
    ]);
    assert_clean_failure(&output, &["--negative is used only with --mode contrast"]);
    let output = cliptag(&["vocab", "add", "Cat3", "--top-k", "3", "--db", db_arg]);
    assert_clean_failure(&output, &["--top-k is used only with --mode topk"]);
    // A cosine is a number between 0 and 1.
    for bad in ["NaN", "2", "-5"] {
        let threshold = format!("--threshold={bad}");
        let output = cliptag(&["duplicates", &threshold, "--db", db_arg]);
        assert_clean_failure(
            &output,
            &["--threshold is a cosine similarity between 0 and 1"],
        );
    }
    // Clearing a decision that was never made.
    let photo = std::fs::read_dir(photos.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    cliptag_ok(&["vocab", "add", "Strict", "--threshold", "1", "--db", db_arg]);
    let output = cliptag_ok(&[
        "tag",
        "clear",
        "--db",
        db_arg,
        photo.to_str().unwrap(),
        "Strict",
    ]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing to clear"));
    // Learning's report has no runs of spaces.
    cliptag_ok(&[
        "tag",
        "add",
        "--db",
        db_arg,
        photo.to_str().unwrap(),
        "Strict",
    ]);
    let output = cliptag_ok(&["vocab", "learn", "--dry-run", "Strict", "--db", db_arg]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!said.contains("  "), "{said:?}");
    // Adding by example reports the label's own tags, from the distinct photos given.
    let output = cliptag_ok(&[
        "vocab",
        "add",
        "Like this",
        "--example",
        photo.to_str().unwrap(),
        "--example",
        photo.to_str().unwrap(),
        "--db",
        db_arg,
    ]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("learned from 1 example photo "), "{said}");
    // More labels than a library keeps: refused, nothing imported.
    let file = dir.path().join("huge.toml");
    let mut text = String::new();
    for i in 0..20_001 {
        text.push_str(&format!("[[label]]\nname = \"L{i}\"\n"));
    }
    std::fs::write(&file, text).unwrap();
    let before = cliptag_ok(&["vocab", "list", "--db", db_arg]).stdout;
    let output = cliptag(&["vocab", "import", file.to_str().unwrap(), "--db", db_arg]);
    assert_clean_failure(&output, &["a library keeps", "nothing was imported"]);
    assert_eq!(
        cliptag_ok(&["vocab", "list", "--db", db_arg]).stdout,
        before
    );
}

#[test]
fn photos_that_decode_slowly_are_embedded_a_few_at_a_time_not_a_whole_batch_later() {
    let index = |batch_wait: std::time::Duration| {
        let photos = photo_folder(&fixture_photos());
        let engine = Arc::new(Watched::new());
        let mut library = TestLibrary::new(engine.clone());
        let options = cliptag::library::IndexOptions {
            batch_size: 64,
            decode_threads: 1,
            batch_wait,
            ..Default::default()
        };
        let summary = library
            .library
            .index(
                &[photos.path().to_path_buf()],
                options,
                RunControl::default(),
                &mut |_| {},
            )
            .unwrap();
        assert_eq!(summary.indexed, 10, "{summary:?}");
        engine.batches()
    };
    // Ten small photos decode long before the usual wait is over: one batch.
    assert_eq!(index(std::time::Duration::from_secs(60)), 1);
    // Photos slower than the wait (here: any) go to the encoder as they come.
    assert!(index(std::time::Duration::ZERO) >= 5);
}
