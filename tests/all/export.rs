//! Export: CSV that survives any label or path, XMP sidecars merged without loss, bad paths
//! refused with nothing written, and the photos never touched.

use std::path::{Path, PathBuf};

use cliptag::export::csv::{CsvForm, guard};
use cliptag::export::xmp::{self, SidecarNaming};
use cliptag::export::{self, PathStyle};
use cliptag::store::{Store, TagSource};
use cliptag::tagging::{Label, vocabulary_file};
use quick_xml::events::Event;

use crate::indexing::{index, tiny_engine};
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
fn awkward_library() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let photos = crate::indexing::fixture_photos();
    for (i, name) in NAMES.iter().enumerate() {
        std::fs::copy(&photos[i], dir.path().join(format!("{name}.jpg"))).unwrap();
    }
    let mut store = Store::open_in_memory().unwrap();
    index(&mut store, &tiny_engine(), dir.path());
    for (i, name) in NAMES.iter().enumerate() {
        let label = store
            .add_label(Label::new(&format!("Group/{name}"), "tiny"))
            .unwrap();
        let path = dir
            .path()
            .canonicalize()
            .unwrap()
            .join(format!("{name}.jpg"));
        let image = store.image_by_path(&path).unwrap().unwrap();
        store
            .set_decision(image.id, label.id, Some(TagSource::Manual))
            .unwrap();
        // A second tag on the first photo, and one rejection that must not be exported.
        if i == 0 {
            let other = store.add_label(Label::new("Plain", "tiny")).unwrap();
            store
                .set_decision(image.id, other.id, Some(TagSource::Manual))
                .unwrap();
            let rejected = store.add_label(Label::new("Nope", "tiny")).unwrap();
            store
                .set_decision(image.id, rejected.id, Some(TagSource::Rejected))
                .unwrap();
        }
    }
    (dir, store)
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

#[test]
fn csv_round_trips_awkward_labels_and_paths() {
    let (dir, store) = awkward_library();
    let out = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();

    let wide = out.path().join("wide.csv");
    let rows = export::csv::export(&store, &wide, CsvForm::Wide, PathStyle::Relative).unwrap();
    assert_eq!(rows, NAMES.len());
    let table = read_csv(&wide);
    assert_eq!(table[0], vec!["path", "tags"]);
    let mut want: Vec<Vec<String>> = NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let tags = if i == 0 {
                format!("Group/{name}; Plain")
            } else {
                format!("Group/{name}")
            };
            vec![guard(&format!("{name}.jpg")), guard(&tags)]
        })
        .collect();
    want.sort();
    let mut got = table[1..].to_vec();
    got.sort();
    assert_eq!(got, want);
    // The guard turned the formula and the mention into text.
    assert!(got.iter().any(|r| r[0] == "'=SUM(A1:A9).jpg"));
    assert!(got.iter().any(|r| r[0] == "'@mention.jpg"));

    let long = out.path().join("long.csv");
    export::csv::export(&store, &long, CsvForm::Long, PathStyle::Absolute).unwrap();
    let table = read_csv(&long);
    assert_eq!(table[0], vec!["path", "label", "score", "source"]);
    assert_eq!(
        table.len() - 1,
        NAMES.len() + 1,
        "one row per tag, the rejection left out"
    );
    for name in NAMES {
        let path = root
            .join(format!("{name}.jpg"))
            .to_string_lossy()
            .into_owned();
        assert!(
            table.iter().any(|r| r[0] == path
                && r[1] == guard(&format!("Group/{name}"))
                && r[3] == "manual"),
            "no row for {name:?} in {table:?}"
        );
    }
    let bytes = std::fs::read(&long).unwrap();
    assert!(String::from_utf8(bytes.clone()).is_ok(), "not UTF-8");
    assert!(bytes.windows(2).any(|w| w == b"\r\n"), "RFC 4180 line ends");

    let exif = out.path().join("exiftool.csv");
    export::csv::export(&store, &exif, CsvForm::Exiftool, PathStyle::Relative).unwrap();
    let table = read_csv(&exif);
    assert_eq!(
        table[0],
        vec!["SourceFile", "XMP-dc:Subject", "XMP-lr:HierarchicalSubject"]
    );
    let first = root
        .join(format!("{}.jpg", NAMES[0]))
        .to_string_lossy()
        .into_owned();
    let row = table
        .iter()
        .find(|r| r[0] == first)
        .expect("absolute SourceFile");
    assert_eq!(row[1], format!("{}; Plain", NAMES[0]));
    assert_eq!(row[2], format!("Group|{}", NAMES[0]));
}

#[test]
fn export_to_a_missing_or_unwritable_folder_fails_and_writes_nothing() {
    let (_dir, store) = awkward_library();
    let error = export::csv::export(
        &store,
        Path::new("/no/such/folder/tags.csv"),
        CsvForm::Wide,
        PathStyle::Absolute,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("/no/such/folder"), "{error}");
    assert!(!Path::new("/no/such/folder").exists());

    let locked = read_only_folder();
    let target = locked.path.join("tags.csv");
    let error = export::csv::export(&store, &target, CsvForm::Wide, PathStyle::Absolute)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&locked.path.display().to_string()),
        "{error}"
    );
    assert!(!target.exists());

    // Through the command line: a clear message and a failing exit code.
    let db = tempfile::tempdir().unwrap();
    let db = db.path().join("lib.sqlite");
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
    let (dir, mut store) = awkward_library();
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

    let report = xmp::export(&store, SidecarNaming::Appended).unwrap();
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
    let plain = store.label_by_name("Plain").unwrap().unwrap();
    let image = store.image_by_path(&first).unwrap().unwrap();
    store
        .set_decision(image.id, plain.id, Some(TagSource::Rejected))
        .unwrap();
    let report = xmp::export(&store, SidecarNaming::Appended).unwrap();
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
    xmp::export(&store, SidecarNaming::Replaced).unwrap();
    assert!(first.with_extension("xmp").exists());
}

#[test]
fn a_sidecar_that_cannot_be_written_is_reported() {
    let (dir, store) = awkward_library();
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
    let report = xmp::export(&store, SidecarNaming::Appended).unwrap();
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
    let mut store = Store::open_in_memory().unwrap();
    vocabulary_file::seed_default(&mut store, "tiny").unwrap();
    let before = store.labels().unwrap();

    let empty = store
        .add_label(Label::new("   ", "tiny"))
        .unwrap_err()
        .to_string();
    assert!(empty.contains("needs a name"), "{empty}");
    let duplicate = store
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
        let error = vocabulary_file::import_file(&mut store, &path, "tiny")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(reason) && error.contains(name),
            "{name}: {error}"
        );
    }
    assert_eq!(
        store.labels().unwrap(),
        before,
        "a failed import changed the vocabulary"
    );

    // Export to a missing folder writes nothing.
    let missing = dir.path().join("nope/vocabulary.toml");
    assert!(vocabulary_file::export_file(&store, &missing).is_err());
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
    let listing = run(&["vocab", "list"]);
    assert!(
        listing.lines().count() >= 140,
        "a new library starts with the default vocabulary"
    );
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
