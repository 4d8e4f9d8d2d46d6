//! Export: CSV that survives any label or path, XMP sidecars merged without loss, bad paths
//! refused with nothing written, and the photos never touched.

use std::path::{Path, PathBuf};

use cliptag::domain::{Decision, Label};
use cliptag::export::PathStyle;
use cliptag::export::csv::CsvForm;
use cliptag::export::xmp::{self, SidecarNaming};
use cliptag::library::{CsvExport, ExportReport, ExportRequest, Library};
use quick_xml::events::Event;

use crate::support::*;

/// Awkward names for photos and labels.
const NAMES: [&str; 6] = [
    "comma, in name",
    "quote \"here\"",
    "new\nline",
    "Zürich 東京 ✓",
    "=SUM(A1:A9)",
    "@mention",
];

/// A library whose photos have awkward names, each tagged by hand with an awkward label.
fn awkward_library() -> (tempfile::TempDir, TestLibrary) {
    let dir = tempfile::tempdir().unwrap();
    let photos = crate::indexing::fixture_photos();
    for (i, name) in NAMES.iter().enumerate() {
        std::fs::copy(&photos[i], dir.path().join(format!("{name}.jpg"))).unwrap();
    }
    let mut library = TestLibrary::tiny();
    library.clear_vocabulary();
    library.index(dir.path());
    let root = dir.path().canonicalize().unwrap();
    let lib = &mut library.library;
    // A threshold of 1 tags nothing by itself: every tag here is a person's.
    let add = |lib: &mut Library, name: &str| {
        let label = Label {
            threshold: 1.0,
            ..Label::new(name, "tiny")
        };
        lib.add_label(label).unwrap().0
    };
    for (i, name) in NAMES.iter().enumerate() {
        let label = add(lib, &format!("Group/{name}"));
        let image = lib.find_image(&root.join(format!("{name}.jpg"))).unwrap();
        lib.decide(image.id, label.id, Decision::Apply).unwrap();
        // A second tag on the first photo, and one rejection that must not be exported.
        if i == 0 {
            let plain = add(lib, "Plain");
            lib.decide(image.id, plain.id, Decision::Apply).unwrap();
            let nope = add(lib, "Nope");
            lib.decide(image.id, nope.id, Decision::Reject).unwrap();
        }
    }
    (dir, library)
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_path(path)
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

fn csv_export(library: &mut Library, path: &Path, form: CsvForm, style: PathStyle) -> ExportReport {
    let request = ExportRequest {
        csv: Some(CsvExport {
            path: path.to_path_buf(),
            form,
            style,
        }),
        xmp: None,
    };
    library.export(&request).unwrap()
}

fn sorted(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    rows.sort();
    rows
}

fn cells(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

#[test]
fn csv_round_trips_awkward_labels_and_paths() {
    let (dir, mut library) = awkward_library();
    let library = &mut library.library;
    let out = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();

    let wide = out.path().join("wide.csv");
    let report = csv_export(library, &wide, CsvForm::Wide, PathStyle::Relative);
    assert_eq!(report.csv.unwrap().rows, NAMES.len());
    let table = read_csv(&wide);
    assert_eq!(table[0], vec!["path", "tags"]);
    // Written out by hand: what a spreadsheet shows. A cell that starts like a formula gets a
    // leading apostrophe; everything else reads back exactly.
    let want = cells(&[
        &["comma, in name.jpg", "Group/comma, in name; Plain"],
        &["quote \"here\".jpg", "Group/quote \"here\""],
        &["new\nline.jpg", "Group/new\nline"],
        &["Zürich 東京 ✓.jpg", "Group/Zürich 東京 ✓"],
        &["'=SUM(A1:A9).jpg", "Group/=SUM(A1:A9)"],
        &["'@mention.jpg", "Group/@mention"],
    ]);
    assert_eq!(sorted(table[1..].to_vec()), sorted(want));
    let raw = std::fs::read_to_string(&wide).unwrap();
    for line in [
        "\"comma, in name.jpg\",\"Group/comma, in name; Plain\"\r\n",
        "\"quote \"\"here\"\".jpg\",\"Group/quote \"\"here\"\"\"\r\n",
        "'=SUM(A1:A9).jpg,Group/=SUM(A1:A9)\r\n",
    ] {
        assert!(raw.contains(line), "no line {line:?} in:\n{raw}");
    }

    let long = out.path().join("long.csv");
    csv_export(library, &long, CsvForm::Long, PathStyle::Absolute);
    let table = read_csv(&long);
    assert_eq!(table[0], vec!["path", "label", "score", "source"]);
    let at = |name: &str| root.join(name).to_string_lossy().into_owned();
    let want = vec![
        vec![
            at("comma, in name.jpg"),
            "Group/comma, in name".into(),
            String::new(),
            "manual".into(),
        ],
        vec![
            at("comma, in name.jpg"),
            "Plain".into(),
            String::new(),
            "manual".into(),
        ],
        vec![
            at("quote \"here\".jpg"),
            "Group/quote \"here\"".into(),
            String::new(),
            "manual".into(),
        ],
        vec![
            at("new\nline.jpg"),
            "Group/new\nline".into(),
            String::new(),
            "manual".into(),
        ],
        vec![
            at("Zürich 東京 ✓.jpg"),
            "Group/Zürich 東京 ✓".into(),
            String::new(),
            "manual".into(),
        ],
        vec![
            at("=SUM(A1:A9).jpg"),
            "Group/=SUM(A1:A9)".into(),
            String::new(),
            "manual".into(),
        ],
        vec![
            at("@mention.jpg"),
            "Group/@mention".into(),
            String::new(),
            "manual".into(),
        ],
    ];
    // A tag added by hand carries the label's score on the photo as it is now.
    let scored: Vec<Vec<String>> = table[1..]
        .iter()
        .map(|row| {
            assert!(row[2].parse::<f32>().is_ok(), "{row:?}: no current score");
            let mut row = row.clone();
            row[2] = String::new();
            row
        })
        .collect();
    assert_eq!(
        sorted(scored),
        sorted(want),
        "one row per tag, the rejection left out"
    );
    let bytes = std::fs::read(&long).unwrap();
    assert!(String::from_utf8(bytes.clone()).is_ok(), "not UTF-8");
    assert!(bytes.windows(2).any(|w| w == b"\r\n"), "RFC 4180 line ends");

    let exif = out.path().join("exiftool.csv");
    csv_export(library, &exif, CsvForm::Exiftool, PathStyle::Absolute);
    let table = read_csv(&exif);
    assert_eq!(
        table[0],
        vec!["SourceFile", "XMP-dc:Subject", "XMP-lr:HierarchicalSubject"]
    );
    let row = table
        .iter()
        .find(|r| r[0] == at("comma, in name.jpg"))
        .expect("absolute SourceFile");
    assert_eq!(row[1], "comma, in name; Plain");
    assert_eq!(row[2], "Group|comma, in name");
}

#[test]
fn export_to_a_missing_or_unwritable_folder_fails_and_writes_nothing() {
    let (_dir, mut test_library) = awkward_library();
    let db = test_library.db();
    let library = &mut test_library.library;
    let mut export_to = |path: &Path| {
        library.export(&ExportRequest {
            csv: Some(CsvExport {
                path: path.to_path_buf(),
                form: CsvForm::Wide,
                style: PathStyle::Absolute,
            }),
            xmp: None,
        })
    };
    let error = export_to(Path::new("/no/such/folder/tags.csv"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("/no/such/folder"), "{error}");
    assert!(!Path::new("/no/such/folder").exists());

    let locked = read_only_folder();
    let target = locked.path.join("tags.csv");
    let error = export_to(&target).unwrap_err().to_string();
    assert!(
        error.contains(&locked.path.display().to_string()),
        "{error}"
    );
    assert!(!target.exists());

    // Through the command line: a clear message and a failing exit code.
    let output = cliptag(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--csv",
        "/no/such/folder/tags.csv",
    ]);
    assert_clean_failure(&output, &["/no/such/folder", "does not exist"]);
}

/// A folder nobody can create files in. Tests may run as root, who ignores permission bits, so
/// fall back to `/proc` (no regular files can be created there) when `chmod` does not bite.
struct ReadOnly {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

fn read_only_folder() -> ReadOnly {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = dir.path().join("probe");
    if std::fs::write(&probe, b"x").is_err() {
        return ReadOnly {
            path: dir.path().to_path_buf(),
            _dir: Some(dir),
        };
    }
    let _ = std::fs::remove_file(&probe);
    ReadOnly {
        path: PathBuf::from("/proc"),
        _dir: None,
    }
}

/// Every `rdf:li` in the bag called `bag` (e.g. `dc:subject`), and whether the text is well-formed.
fn bag_items(xml: &str, bag: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inside = false;
    let mut items = Vec::new();
    let mut text: Option<String> = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) if e.name().as_ref() == bag.as_bytes() => inside = true,
            Event::End(e) if e.name().as_ref() == bag.as_bytes() => inside = false,
            Event::Start(e) if inside && e.name().as_ref() == b"rdf:li" => {
                text = Some(String::new())
            }
            Event::Text(t) if text.is_some() => {
                text.as_mut().unwrap().push_str(&t.xml10_content().unwrap())
            }
            Event::GeneralRef(r) if text.is_some() => {
                let name = r.decode().unwrap();
                let c = match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("entity {other}"),
                };
                text.as_mut().unwrap().push_str(c);
            }
            Event::End(e) if e.name().as_ref() == b"rdf:li" => {
                if let Some(t) = text.take() {
                    items.push(t);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    items
}

const EXISTING_SIDECAR: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
    xmp:Rating="4"
    darktable:xmp_version="5">
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:operation="exposure" darktable:enabled="1"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Holiday &amp; friends</rdf:li></rdf:Alt></dc:title>
   <dc:subject><rdf:Bag><rdf:li>Grandma</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"#;

#[test]
fn xmp_sidecars_merge_into_existing_metadata_and_list_exactly_the_tags() {
    let (dir, mut library) = awkward_library();
    let library = &mut library.library;
    let sidecars = |library: &mut Library, naming| {
        library
            .export(&ExportRequest {
                csv: None,
                xmp: Some(naming),
            })
            .unwrap()
            .xmp
            .unwrap()
    };
    let root = dir.path().canonicalize().unwrap();
    let first = root.join(format!("{}.jpg", NAMES[0]));
    let second = root.join(format!("{}.jpg", NAMES[1]));
    std::fs::write(
        xmp::sidecar_path(&first, SidecarNaming::Appended),
        EXISTING_SIDECAR,
    )
    .unwrap();
    let photo_before = std::fs::read(&first).unwrap();
    let mtime_before = std::fs::metadata(&first).unwrap().modified().unwrap();

    let report = sidecars(library, SidecarNaming::Appended);
    assert_eq!(
        (report.written, report.failed.len()),
        (NAMES.len(), 0),
        "{report:?}"
    );

    // A fresh sidecar lists exactly the photo's tags.
    let fresh =
        std::fs::read_to_string(xmp::sidecar_path(&second, SidecarNaming::Appended)).unwrap();
    assert_eq!(bag_items(&fresh, "dc:subject"), vec![NAMES[1].to_string()]);
    assert_eq!(
        bag_items(&fresh, "lr:hierarchicalSubject"),
        vec![format!("Group|{}", NAMES[1])]
    );

    // The existing one keeps every other field and the keyword another tool wrote.
    let merged =
        std::fs::read_to_string(xmp::sidecar_path(&first, SidecarNaming::Appended)).unwrap();
    for kept in [
        "xmp:Rating=\"4\"",
        "darktable:operation=\"exposure\"",
        "Holiday &amp; friends",
        "XMP Core 4.4.0-Exiv2",
    ] {
        assert!(merged.contains(kept), "lost {kept:?}:\n{merged}");
    }
    assert_eq!(
        bag_items(&merged, "dc:subject"),
        vec![
            "Grandma".to_string(),
            NAMES[0].to_string(),
            "Plain".to_string()
        ]
    );
    assert_eq!(merged.matches("<dc:subject").count(), 1, "{merged}");

    // A tag the person rejects later leaves the sidecar on the next export; Grandma stays.
    let plain = library.label_named("Plain").unwrap();
    let image = library.find_image(&first).unwrap();
    library
        .decide(image.id, plain.id, Decision::Reject)
        .unwrap();
    let report = sidecars(library, SidecarNaming::Appended);
    assert_eq!((report.written, report.unchanged), (1, NAMES.len() - 1));
    let merged =
        std::fs::read_to_string(xmp::sidecar_path(&first, SidecarNaming::Appended)).unwrap();
    assert_eq!(
        bag_items(&merged, "dc:subject"),
        vec!["Grandma".to_string(), NAMES[0].to_string()]
    );

    // The photo itself was never touched.
    assert_eq!(std::fs::read(&first).unwrap(), photo_before);
    assert_eq!(
        std::fs::metadata(&first).unwrap().modified().unwrap(),
        mtime_before
    );

    // Adobe naming: photo.xmp.
    sidecars(library, SidecarNaming::Replaced);
    assert!(first.with_extension("xmp").exists());
}

#[test]
fn a_sidecar_that_cannot_be_written_is_reported() {
    let (dir, mut library) = awkward_library();
    let root = dir.path().canonicalize().unwrap();
    let first = root.join(format!("{}.jpg", NAMES[0]));
    let second = root.join(format!("{}.jpg", NAMES[1]));
    // A folder where the sidecar should go, and a sidecar that is not XML.
    std::fs::create_dir(xmp::sidecar_path(&first, SidecarNaming::Appended)).unwrap();
    std::fs::write(
        xmp::sidecar_path(&second, SidecarNaming::Appended),
        "<x:xmpmeta><oops",
    )
    .unwrap();
    let report = library
        .library
        .export(&ExportRequest {
            csv: None,
            xmp: Some(SidecarNaming::Appended),
        })
        .unwrap()
        .xmp
        .unwrap();
    assert_eq!(report.failed.len(), 2, "{report:?}");
    assert_eq!(report.written, NAMES.len() - 2);
    // The damaged sidecar was left as it was.
    assert_eq!(
        std::fs::read_to_string(xmp::sidecar_path(&second, SidecarNaming::Appended)).unwrap(),
        "<x:xmpmeta><oops"
    );
}

#[test]
fn bad_vocabulary_input_is_refused_with_nothing_written() {
    let mut library = TestLibrary::tiny();
    let library = &mut library.library;
    let before = library.labels().unwrap();

    let empty = library
        .add_label(Label::new("   ", "tiny"))
        .unwrap_err()
        .to_string();
    assert!(empty.contains("needs a name"), "{empty}");
    let duplicate = library
        .add_label(Label::new("animals/dog", "tiny"))
        .unwrap_err()
        .to_string();
    assert!(duplicate.contains("already has a label"), "{duplicate}");

    let dir = tempfile::tempdir().unwrap();
    for (name, text, reason) in [
        (
            "broken.toml",
            "[[label]]\nname = \"Fine\"\n[[label\nname = 3",
            "not a valid vocabulary file",
        ),
        (
            "unknown.toml",
            "[[label]]\nname = \"Fine\"\ncolour = \"red\"\n",
            "unknown field",
        ),
        (
            "empty_name.toml",
            "[[label]]\nname = \"Fine\"\n[[label]]\nname = \"\"\n",
            "needs a name",
        ),
        (
            "bad_threshold.toml",
            "[[label]]\nname = \"Fine\"\nthreshold = 3.5\n",
            "between -1 and 1",
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let error = library.import_vocabulary(&path).unwrap_err().to_string();
        assert!(
            error.contains(reason) && error.contains(name),
            "{name}: {error}"
        );
    }
    assert_eq!(
        library.labels().unwrap(),
        before,
        "a failed import changed the vocabulary"
    );

    // Export to a missing folder writes nothing.
    let missing = dir.path().join("nope/vocabulary.toml");
    assert!(library.export_vocabulary(&missing).is_err());
    assert!(!missing.exists());
}

#[test]
fn vocabulary_commands_round_trip_through_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--db", db]);
        let output = cliptag(&full);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    // Reading a library that is not there is an error; adding to one makes it.
    let missing = cliptag(&["vocab", "list", "--db", db]);
    assert_clean_failure(&missing, &["no cliptag library at"]);
    run(&[
        "vocab",
        "add",
        "Fat red cat",
        "--mode",
        "contrast",
        "--prompt",
        "A photo of a fat red cat.",
        "--negative",
        "Not a photo of a fat red cat.",
        "--threshold",
        "0.7",
    ]);
    let listing = run(&["vocab", "list"]);
    assert!(
        listing.lines().count() >= 140,
        "a new library starts with the default vocabulary"
    );
    run(&["vocab", "remove", "Animals/Dog"]);
    let file = dir.path().join("vocabulary.toml");
    run(&["vocab", "export", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("Not a photo of a fat red cat."));
    assert!(!text.contains("\"Animals/Dog\""));

    let other = dir.path().join("other.sqlite");
    let output = cliptag(&[
        "vocab",
        "import",
        file.to_str().unwrap(),
        "--db",
        other.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let copied = cliptag(&["vocab", "list", "--db", other.to_str().unwrap()]);
    let copied = String::from_utf8(copied.stdout).unwrap();
    assert!(copied.contains("Fat red cat\tcontrast\t0.7"), "{copied}");
    // The new library was seeded with the defaults first, so the removed label is back there;
    // everything exported is identical.
    let original = run(&["vocab", "list"]);
    for line in original.lines() {
        assert!(
            copied.lines().any(|l| l == line),
            "missing after import: {line}"
        );
    }

    let bad = cliptag(&["vocab", "add", "Fat red cat", "--db", db]);
    assert_clean_failure(&bad, &["already has a label"]);
}

/// A library of two indexed photos made through the command line, with its folder.
fn cli_library() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    for photo in crate::indexing::fixture_photos().iter().take(2) {
        std::fs::copy(photo, photos.join(photo.file_name().unwrap())).unwrap();
    }
    let db = dir.path().join("lib.sqlite");
    index_with_tiny(&db, &photos);
    (dir, db, photos)
}

/// Both exports as the command line runs them, onto `target`.
fn both_exports(db: &Path, target: &Path) -> [std::process::Output; 2] {
    let db = db.to_str().unwrap();
    let target = target.to_str().unwrap();
    [
        cliptag(&["export", "--db", db, "--csv", target]),
        cliptag(&["vocab", "export", "--db", db, target]),
    ]
}

#[test]
fn exports_onto_the_library_or_a_photo_are_refused_and_leave_them_unchanged() {
    let (dir, db, photos) = cli_library();
    let photo = std::fs::read_dir(&photos)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let other_image = dir.path().join("not-indexed.png");
    std::fs::copy(fixtures().join("images/camera.png"), &other_image).unwrap();
    let link = dir.path().join("link-to-library");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let backup = dir.path().join("backup-of-the-library.sqlite");
    std::fs::copy(&db, &backup).unwrap();
    let cases: [(&Path, &str); 7] = [
        (&db, "this library's own files"),
        (&link, "this library's own files"),
        (
            &dir.path().join("lib.sqlite-wal"),
            "this library's own files",
        ),
        (
            &dir.path().join("lib.sqlite.embeddings"),
            "this library's own files",
        ),
        (&photo, "a photo in this library"),
        (&other_image, "it is an image"),
        (&backup, "it is a database"),
    ];
    for (target, why) in cases {
        let before = std::fs::read(target).ok();
        for output in both_exports(&db, target) {
            assert_clean_failure(&output, &["refusing to write", why]);
        }
        assert_eq!(
            std::fs::read(target).ok(),
            before,
            "{} changed",
            target.display()
        );
    }
    // The library still opens and answers.
    let files = cliptag_ok(&["files", "--db", db.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&files.stdout).lines().count(), 2);
}

#[test]
fn exports_onto_a_pipe_are_written_through() {
    let (dir, db, _) = cli_library();
    let fifo = dir.path().join("tags.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for args in [vec!["export", "--csv"], vec!["vocab", "export"]] {
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(&fifo).unwrap())
        };
        let mut full = args.clone();
        full.extend([fifo.to_str().unwrap(), "--db", db.to_str().unwrap()]);
        cliptag_ok(&full);
        let text = reader.join().unwrap();
        assert!(!text.is_empty(), "{args:?}: nothing came through the pipe");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(
            std::os::unix::fs::FileTypeExt::is_fifo(&kind),
            "the pipe was replaced"
        );
    }
    // Devices are refused from their metadata alone (see export::target's own test, which
    // never writes to one): no test here aims an export at a device node.
}

#[test]
fn a_csv_goes_to_standard_output_with_a_dash() {
    let (_dir, db, _) = cli_library();
    let output = cliptag_ok(&["export", "--db", db.to_str().unwrap(), "--csv", "-"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.lines().count() >= 3, "{text}");
}

/// On a full file system an export fails, says so, and leaves the old file as it was. Needs a
/// small tmpfs, which only a test run as root may mount; elsewhere it says so and skips.
#[test]
fn an_export_onto_a_full_file_system_fails_and_keeps_the_old_file() {
    let (_dir, db, _) = cli_library();
    let mount = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(mount.path())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot mount a small tmpfs here (needs root): the full-disk case is skipped");
        return;
    }
    let target = mount.path().join("tags.csv");
    std::fs::write(&target, "old").unwrap();
    // Fill what is left.
    let filler = mount.path().join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 1 << 20]);
    let outputs = both_exports(&db, &target);
    let kept = std::fs::read_to_string(&target);
    let _ = std::process::Command::new("umount")
        .arg(mount.path())
        .status();
    for output in outputs {
        assert_clean_failure(&output, &["tags.csv"]);
    }
    assert_eq!(kept.unwrap(), "old");
}

#[test]
fn read_commands_on_a_missing_library_say_so_and_make_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("typo").join("lib.sqlite");
    for command in ["files", "tags", "retag"] {
        let output = cliptag(&[command, "--db", db.to_str().unwrap()]);
        assert_clean_failure(&output, &["no cliptag library at", "lib.sqlite"]);
    }
    assert!(!dir.path().join("typo").exists(), "a folder was made");
}

#[test]
fn another_programs_database_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("other.sqlite");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    for args in [
        vec!["files"],
        vec!["vocab", "list"],
        vec!["index", "/nonexistent"],
    ] {
        let mut full = args.clone();
        full.extend(["--db", db.to_str().unwrap()]);
        assert_clean_failure(&cliptag(&full), &["not a cliptag library", "notes"]);
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert!(!dir.path().join("other.sqlite-wal").exists());
}

/// Two libraries whose names differ only in their extension keep side files of their own: one
/// never scores with the other's embeddings.
#[test]
fn libraries_named_alike_never_share_their_side_files() {
    let dir = tempfile::tempdir().unwrap();
    let photos = crate::indexing::fixture_photos();
    let first = crate::indexing::photo_folder(&photos[..3]);
    let second = crate::indexing::photo_folder(&photos[3..6]);
    let a = dir.path().join("a.sqlite");
    let b = dir.path().join("a.db");
    for (db, folder) in [(&a, &first), (&b, &second)] {
        index_with_tiny(db, folder.path());
    }
    assert_ne!(
        cliptag::store::vectors_path(&a),
        cliptag::store::vectors_path(&b)
    );
    cliptag_ok(&["search", "--db", b.to_str().unwrap(), "a photo"]);
    let dry = cliptag_ok(&["retag", "--db", a.to_str().unwrap(), "--dry-run"]);
    let said = String::from_utf8_lossy(&dry.stderr);
    assert!(said.contains("would add 0, would remove 0"), "{said}");
    // A library named like a side file is not its own side file.
    let odd = dir.path().join("t.embeddings");
    index_with_tiny(&odd, first.path());
    cliptag_ok(&["search", "--db", odd.to_str().unwrap(), "a photo"]);
    let files = cliptag_ok(&["files", "--db", odd.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&files.stdout).lines().count(), 3);
}

/// Files that happen to have a side file's name (another program's database, a person's file)
/// are left as they were.
#[test]
fn files_in_the_place_of_side_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t3.sqlite");
    let thumbnails = cliptag::store::thumbnails::beside_path(&db);
    let vectors = cliptag::store::vectors_path(&db);
    {
        let conn = rusqlite::Connection::open(&thumbnails).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
            .unwrap();
    }
    std::fs::write(&vectors, "precious").unwrap();
    let before = (
        std::fs::read(&thumbnails).unwrap(),
        std::fs::read(&vectors).unwrap(),
    );
    let photos = crate::indexing::photo_folder(&crate::indexing::fixture_photos()[..3]);
    index_with_tiny(&db, photos.path());
    cliptag_ok(&["search", "--db", db.to_str().unwrap(), "a photo"]);
    let after = (
        std::fs::read(&thumbnails).unwrap(),
        std::fs::read(&vectors).unwrap(),
    );
    assert_eq!(after, before);
}

/// With `--db` a link, the guard knows the library's files by the link's name and by the file's.
#[test]
fn exports_through_a_linked_library_still_spare_its_files() {
    let (dir, db, _) = cli_library();
    let link = dir.path().join("link.sqlite");
    std::os::unix::fs::symlink(&db, &link).unwrap();
    let db_wal = dir.path().join("lib.sqlite-wal");
    let vectors = cliptag::store::vectors_path(&db);
    for target in [&db, &db_wal, &vectors] {
        let before = std::fs::read(target).ok();
        let output = cliptag(&[
            "export",
            "--db",
            link.to_str().unwrap(),
            "--csv",
            target.to_str().unwrap(),
        ]);
        assert_clean_failure(&output, &["refusing to write", "own files"]);
        assert_eq!(std::fs::read(target).ok(), before, "{}", target.display());
    }
}

/// Values that would exhaust the machine are refused before anything runs.
#[test]
fn huge_option_values_and_endless_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    for (option, value) in [
        ("--batch-size", "100000000"),
        ("--decode-threads", "100000"),
    ] {
        let output = cliptag(&["index", "--db", db.to_str().unwrap(), option, value, "."]);
        assert_eq!(output.status.code(), Some(2), "{option} {value}");
        assert!(String::from_utf8_lossy(&output.stderr).contains(option));
    }
    cliptag_ok(&["vocab", "add", "Cat", "--db", db.to_str().unwrap()]);
    // Pipes stand for endless inputs (a device never ends); a writer that closes at once keeps
    // a cliptag that read them anyway from waiting forever.
    let pipe = |name: &str| {
        let fifo = dir.path().join(name);
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let writer = fifo.clone();
        std::thread::spawn(move || drop(std::fs::OpenOptions::new().write(true).open(writer)));
        fifo
    };
    let vocabulary = pipe("vocabulary.toml");
    let output = cliptag(&[
        "vocab",
        "import",
        vocabulary.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ]);
    assert_clean_failure(&output, &["vocabulary.toml", "not a regular file"]);
    let photo = pipe("photo.jpg");
    let model = tiny_clip();
    let output = cliptag(&[
        "embed",
        "--model",
        model.to_str().unwrap(),
        photo.to_str().unwrap(),
    ]);
    assert_clean_failure(&output, &["not a regular file"]);
    let output = cliptag(&[
        "search",
        "--threads",
        "100000",
        "--db",
        db.to_str().unwrap(),
        "x",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--threads"));
    // Offered only where it acts: `files` runs no model and scores nothing.
    let output = cliptag(&["files", "--threads", "2", "--db", db.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unexpected argument '--threads'"));
    // Before the command too: said, not ignored.
    let output = cliptag(&["--threads", "2", "files", "--db", db.to_str().unwrap()]);
    assert_clean_failure(&output, &["--threads does nothing for this command"]);
    // An empty file is not a library, and a read command does not make it one.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let output = cliptag(&["undo", "--db", empty.to_str().unwrap()]);
    assert_clean_failure(&output, &["the file is empty"]);
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
}

/// A vocabulary import embeds its prompts before it stores anything, saying how far it got; a
/// cancel meanwhile leaves the vocabulary as it was.
#[test]
fn a_vocabulary_import_embeds_first_shows_progress_and_can_be_cancelled() {
    use cliptag::library::{RunControl, Stage};
    let dir = tempfile::tempdir().unwrap();
    let mut lib = TestLibrary::tiny();
    let before = lib.library.labels().unwrap();
    let file = dir.path().join("many.toml");
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!("[[label]]\nname = \"Imported/Thing {i}\"\n\n"));
    }
    std::fs::write(&file, text).unwrap();

    let control = RunControl::default();
    let mut seen = Vec::new();
    let cancelled = lib
        .library
        .import_vocabulary_watched(&file, &control, &mut |p| {
            seen.push(p.clone());
            control.cancel();
        });
    assert!(
        matches!(cancelled, Err(cliptag::Error::Cancelled)),
        "{cancelled:?}"
    );
    assert_eq!(
        lib.library.labels().unwrap(),
        before,
        "a cancelled import stored labels"
    );
    assert_eq!(seen.len(), 1, "it stopped at the first look at the switch");
    assert_eq!(seen[0].stage, Stage::EmbeddingPrompts);
    assert!(seen[0].total >= 100, "{:?}", seen[0]);

    let mut reports = 0;
    let (summary, _) = lib
        .library
        .import_vocabulary_watched(&file, &RunControl::default(), &mut |_| reports += 1)
        .unwrap();
    assert_eq!(summary.added, 100);
    assert!(reports >= 2, "{reports} progress reports");
}

/// A temporary file a killed export left (`.cliptag-PID-N.tmp` of a process that is gone) is
/// removed by the next export into that folder; one of a process still running stays.
#[cfg(target_os = "linux")]
#[test]
fn an_export_removes_what_a_killed_export_left_behind() {
    let (dir, db, _) = cli_library();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // No process has an id this large (Linux's are at most 2^22).
    let stale = out.join(".cliptag-4194305-0.tmp");
    let running = out.join(format!(".cliptag-{}-0.tmp", std::process::id()));
    let mine = out.join("notes.tmp");
    for file in [&stale, &running, &mine] {
        std::fs::write(file, b"half a CSV").unwrap();
    }
    let csv = out.join("tags.csv");
    cliptag_ok(&[
        "export",
        "--db",
        db.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(csv.exists());
    assert!(!stale.exists(), "the dead process's temporary file stayed");
    assert!(
        running.exists() && mine.exists(),
        "a file not left by a dead cliptag went"
    );
}

/// An export replaces a text file (an earlier CSV, a vocabulary file) and nothing else: a camera
/// RAW, a video, a sidecar or a program at the path stays as it was, and the refusal says why.
#[test]
fn exports_replace_text_files_only() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, db, _) = cli_library();
    let db = db.to_str().unwrap();
    let mut cr3 = b"\0\0\0\x18ftypcrx \0\0\0\x01crx isom".to_vec();
    cr3.extend((0..5000u32).map(|i| (i * 7 + 3) as u8));
    let sidecar = "<?xpacket begin=\"\"?>\n<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"></x:xmpmeta>\n";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        // A camera RAW is a photo cliptag reads.
        ("IMG_0001.CR3", cr3, "it is an image"),
        (
            "clip.mp4",
            b"\0\0\0\x20ftypisom\0\0\x02\0".to_vec(),
            "not a text file",
        ),
        (
            "latin1.csv",
            b"caf\xe9;cr\xe8me\n".to_vec(),
            "not a text file",
        ),
        ("IMG_0001.xmp", sidecar.as_bytes().to_vec(), "XMP sidecar"),
        ("notes.txt", sidecar.as_bytes().to_vec(), "XMP sidecar"),
        ("run.sh", b"#!/bin/sh\necho hi\n".to_vec(), "a program"),
    ];
    for (name, bytes, why) in &cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        if name.ends_with(".sh") {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let target = path.to_str().unwrap();
        for args in [
            vec!["export", "--db", db, "--csv", target],
            vec!["vocab", "export", "--db", db, target],
        ] {
            let run = cliptag(&args);
            let said = String::from_utf8_lossy(&run.stderr);
            assert!(!run.status.success(), "{args:?} replaced {name}");
            assert!(
                said.contains(why) && said.contains(name),
                "{args:?}: {said}"
            );
            assert_eq!(&std::fs::read(&path).unwrap(), bytes, "{name} changed");
        }
    }
    // An earlier export, and a vocabulary file, are replaced as before.
    let csv = dir.path().join("tags.csv");
    std::fs::write(&csv, "path,tags\n\"é\",x\n").unwrap();
    cliptag_ok(&["export", "--db", db, "--csv", csv.to_str().unwrap()]);
    assert_ne!(
        std::fs::read_to_string(&csv).unwrap(),
        "path,tags\n\"é\",x\n"
    );
    let toml = dir.path().join("vocabulary.toml");
    std::fs::write(&toml, "[labels]\n").unwrap();
    cliptag_ok(&["vocab", "export", "--db", db, toml.to_str().unwrap()]);
    assert_ne!(std::fs::read_to_string(&toml).unwrap(), "[labels]\n");
}
