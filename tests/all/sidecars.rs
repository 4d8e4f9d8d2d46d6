//! Tags where other tools read them, checked with the real exiftool: sidecars from digiKam,
//! darktable and Lightroom keep every other property through exports and tag changes, the
//! person's own keywords are never taken out, and exiftool's CSV import writes exactly the tags.
//!
//! exiftool is Debian's `libimage-exiftool-perl`; `.ci/run` installs it. Where it is missing the
//! exiftool checks say so and are skipped; everything else still runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cliptag::domain::{Decision, Label};
use cliptag::export::PathStyle;
use cliptag::export::csv::CsvForm;
use cliptag::export::xmp::{SidecarNaming, XmpReport, sidecar_path};
use cliptag::library::{CsvExport, ExportRequest, Library};
use serde_json::Value;

use crate::indexing::fixture_photos;
use crate::support::*;

/// The exiftool command, or `None` (with the reason printed) where it is not installed.
fn exiftool() -> Option<&'static str> {
    let found = Command::new("exiftool").arg("-ver").output();
    match found {
        Ok(out) if out.status.success() => Some("exiftool"),
        _ => {
            eprintln!(
                "exiftool is not installed (Debian: libimage-exiftool-perl, which .ci/run \
                 installs): its checks are skipped"
            );
            None
        }
    }
}

fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every property exiftool reads from `file`, by group and name.
fn properties(tool: &str, file: &Path) -> BTreeMap<String, Value> {
    let json: Value =
        serde_json::from_str(&run(tool, &["-j", "-a", "-G1", file.to_str().unwrap()])).unwrap();
    json[0].as_object().unwrap().clone().into_iter().collect()
}

/// The properties other than the file's own (dates, size) and the two keyword lists.
fn others(all: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    all.iter()
        .filter(|(k, _)| {
            !k.starts_with("System:")
                && !k.starts_with("ExifTool:")
                && k.as_str() != "SourceFile"
                && k.as_str() != "XMP-dc:Subject"
                && k.as_str() != "XMP-lr:HierarchicalSubject"
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A keyword list as exiftool's JSON gives it (a single item comes as a plain value).
fn list(value: Option<&Value>) -> Vec<String> {
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(other) => vec![other.to_string()],
    }
}

fn keyword_lists(tool: &str, file: &Path) -> (Vec<String>, Vec<String>) {
    let json: Value = serde_json::from_str(&run(
        tool,
        &[
            "-j",
            "-XMP-dc:Subject",
            "-XMP-lr:HierarchicalSubject",
            file.to_str().unwrap(),
        ],
    ))
    .unwrap();
    (
        list(json[0].get("Subject")),
        list(json[0].get("HierarchicalSubject")),
    )
}

fn validate(tool: &str, file: &Path) {
    let out = run(
        tool,
        &["-validate", "-warning", "-a", file.to_str().unwrap()],
    );
    assert!(
        out.contains("Validate") && out.contains(": OK") && !out.contains("Warning"),
        "{}: {out}",
        file.display()
    );
}

/// Labels that tag nothing by themselves (threshold 1): every tag in these tests is a decision.
fn strict(library: &mut Library, name: &str) -> Label {
    library
        .add_label(Label {
            threshold: 1.0,
            ..Label::new(name, "tiny")
        })
        .unwrap()
        .0
}

fn sidecars(library: &mut Library, naming: SidecarNaming) -> XmpReport {
    library
        .export(&ExportRequest {
            csv: None,
            xmp: Some(naming),
        })
        .unwrap()
        .xmp
        .unwrap()
}

/// Awkward label names: a comma, quotes, non-ASCII, and the starts spreadsheets take as formulas.
const AWKWARD: [&str; 6] = ["Dog, \"good\"", "Café ☕", "=1+1", "+1", "-minus", "@home"];

#[test]
fn sidecars_from_other_tools_keep_every_other_property_and_the_persons_keywords() {
    let fixtures_dir = fixtures().join("sidecars");
    let names = ["digikam", "darktable", "lightroom", "own-keyword"];
    let photos = tempfile::tempdir().unwrap();
    for (i, name) in names.iter().enumerate() {
        let photo = photos.path().join(format!("{name}.jpg"));
        std::fs::copy(&fixture_photos()[i], &photo).unwrap();
        std::fs::copy(
            fixtures_dir.join(format!("{name}.xmp")),
            sidecar_path(&photo, SidecarNaming::Appended),
        )
        .unwrap();
    }
    let tool = exiftool();
    let sidecar = |name: &str| {
        sidecar_path(
            &photos.path().join(format!("{name}.jpg")),
            SidecarNaming::Appended,
        )
    };
    let before: BTreeMap<&str, BTreeMap<String, Value>> = match tool {
        Some(tool) => names
            .iter()
            .map(|n| (*n, properties(tool, &sidecar(n))))
            .collect(),
        None => BTreeMap::new(),
    };
    let originals: BTreeMap<&str, (Vec<String>, Vec<String>)> = match tool {
        Some(tool) => names
            .iter()
            .map(|n| (*n, keyword_lists(tool, &sidecar(n))))
            .collect(),
        None => BTreeMap::new(),
    };

    let mut test = TestLibrary::tiny();
    test.clear_vocabulary();
    test.index(photos.path());
    let lib = &mut test.library;
    let cat = strict(lib, "Animals/Cat");
    let awkward: Vec<Label> = AWKWARD
        .iter()
        .map(|n| strict(lib, &format!("Odd/{n}")))
        .collect();
    let photo_ids: BTreeMap<&str, i64> = names
        .iter()
        .map(|n| {
            (
                *n,
                lib.find_image(&photos.path().join(format!("{n}.jpg")))
                    .unwrap()
                    .id,
            )
        })
        .collect();
    for id in photo_ids.values() {
        lib.decide(*id, cat.id, Decision::Apply).unwrap();
        for label in &awkward {
            lib.decide(*id, label.id, Decision::Apply).unwrap();
        }
    }
    let first = sidecars(lib, SidecarNaming::Appended);
    assert_eq!((first.written, first.failed.len()), (4, 0), "{first:?}");
    let second = sidecars(lib, SidecarNaming::Appended);
    assert_eq!((second.written, second.unchanged), (0, 4), "{second:?}");
    // A change of tags: the cat goes everywhere, "+1" too; the others stay.
    for id in photo_ids.values() {
        lib.decide(*id, cat.id, Decision::Reject).unwrap();
        lib.decide(*id, awkward[3].id, Decision::Reject).unwrap();
    }
    let third = sidecars(lib, SidecarNaming::Appended);
    assert_eq!(third.written, 4, "{third:?}");

    let Some(tool) = tool else { return };
    let ours_flat: Vec<String> = AWKWARD
        .iter()
        .filter(|n| **n != "+1")
        .map(|n| n.to_string())
        .collect();
    let ours_tree: Vec<String> = ours_flat.iter().map(|n| format!("Odd|{n}")).collect();
    for name in names {
        let file = sidecar(name);
        validate(tool, &file);
        let after = properties(tool, &file);
        assert_eq!(
            others(&after),
            others(&before[name]),
            "{name}: another property changed"
        );
        // The lists are the person's, unchanged and first, then cliptag's (in label order).
        let (subject, hierarchical) = keyword_lists(tool, &file);
        let (theirs_subject, theirs_tree) = &originals[name];
        for (got, theirs, ours, what) in [
            (&subject, theirs_subject, &ours_flat, "dc:subject"),
            (
                &hierarchical,
                theirs_tree,
                &ours_tree,
                "lr:hierarchicalSubject",
            ),
        ] {
            assert_eq!(&got[..theirs.len()], theirs.as_slice(), "{name}: {what}");
            let mut added: Vec<&String> = got[theirs.len()..].iter().collect();
            let mut want: Vec<&String> = ours.iter().filter(|k| !theirs.contains(k)).collect();
            added.sort();
            want.sort();
            assert_eq!(added, want, "{name}: {what}");
        }
    }
    // The person's own "Cat" (written before cliptag ever tagged a cat) outlived cliptag's.
    assert!(
        keyword_lists(tool, &sidecar("own-keyword"))
            .0
            .contains(&"Cat".to_string())
    );
    // Lightroom's pantry kept its own keyword, and got none of cliptag's.
    let lightroom = properties(tool, &sidecar("lightroom"));
    assert_eq!(
        lightroom["XMP-xmpMM:PantrySubject"],
        Value::String("Pantry keyword".into())
    );
}

#[test]
fn fresh_sidecars_validate_and_list_exactly_the_tags() {
    let photos = crate::indexing::photo_folder(&fixture_photos()[..2]);
    let mut test = TestLibrary::tiny();
    test.clear_vocabulary();
    test.index(photos.path());
    let lib = &mut test.library;
    let files = lib.files().unwrap();
    let labels: Vec<Label> = AWKWARD.iter().map(|n| strict(lib, n)).collect();
    for label in &labels {
        lib.decide(files[0].id, label.id, Decision::Apply).unwrap();
    }
    let tree = strict(lib, "Pets/Dogs/Rex");
    lib.decide(files[1].id, tree.id, Decision::Apply).unwrap();
    let other = strict(lib, "Sofa");
    lib.decide(files[1].id, other.id, Decision::Apply).unwrap();
    let report = sidecars(lib, SidecarNaming::Appended);
    assert_eq!(report.written, 2, "{report:?}");
    let Some(tool) = exiftool() else { return };
    let first = sidecar_path(&files[0].path, SidecarNaming::Appended);
    validate(tool, &first);
    let mut want: Vec<String> = AWKWARD.iter().map(|s| s.to_string()).collect();
    want.sort();
    let (mut subject, hierarchical) = keyword_lists(tool, &first);
    subject.sort();
    assert_eq!(subject, want);
    assert!(hierarchical.is_empty());
    let second = sidecar_path(&files[1].path, SidecarNaming::Appended);
    validate(tool, &second);
    assert_eq!(
        keyword_lists(tool, &second),
        (
            vec!["Rex".into(), "Sofa".into()],
            vec!["Pets|Dogs|Rex".into()]
        )
    );
}

#[test]
fn exiftools_csv_import_writes_exactly_the_tags() {
    for style in [PathStyle::Absolute, PathStyle::Relative] {
        // exiftool writes into the photos: these are copies, in a folder beside the CSV.
        let work = tempfile::tempdir().unwrap();
        let photos = work.path().join("photos");
        std::fs::create_dir(&photos).unwrap();
        for photo in &fixture_photos()[..3] {
            std::fs::copy(photo, photos.join(photo.file_name().unwrap())).unwrap();
        }
        let mut test = TestLibrary::tiny();
        test.clear_vocabulary();
        test.index(&photos);
        let lib = &mut test.library;
        let files = lib.files().unwrap();
        let labels: Vec<Label> = AWKWARD
            .iter()
            .map(|n| strict(lib, &format!("Odd/{n}")))
            .collect();
        for (i, file) in files.iter().enumerate() {
            for label in labels.iter().skip(i) {
                lib.decide(file.id, label.id, Decision::Apply).unwrap();
            }
        }
        let csv = work.path().join("exports/tags.csv");
        std::fs::create_dir(csv.parent().unwrap()).unwrap();
        let report = lib
            .export(&ExportRequest {
                csv: Some(CsvExport {
                    path: csv.clone(),
                    form: CsvForm::Exiftool,
                    style,
                }),
                xmp: None,
            })
            .unwrap()
            .csv
            .unwrap();
        let text = std::fs::read_to_string(&csv).unwrap();
        // exiftool reads these cells, not a spreadsheet: no formula guard.
        assert!(
            text.contains("=1+1") && !text.contains("'=1+1") && !text.contains("'+1"),
            "{text}"
        );
        if style == PathStyle::Relative {
            assert!(
                text.contains("\r\n../photos/"),
                "paths relative to the CSV's folder: {text}"
            );
        }
        let command = report.exiftool.expect("the command to run");
        let Some(tool) = exiftool() else { return };
        let out = Command::new("sh").args(["-c", &command]).output().unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (i, file) in files.iter().enumerate() {
            let (mut subject, mut hierarchical) = keyword_lists(tool, &file.path);
            let mut want: Vec<String> = AWKWARD.iter().skip(i).map(|s| s.to_string()).collect();
            let mut want_tree: Vec<String> = want.iter().map(|s| format!("Odd|{s}")).collect();
            for list in [&mut subject, &mut hierarchical, &mut want, &mut want_tree] {
                list.sort();
            }
            assert_eq!(subject, want, "{style:?} {}", file.path.display());
            assert_eq!(hierarchical, want_tree, "{style:?} {}", file.path.display());
        }
    }
}

#[test]
fn a_label_exiftool_would_split_is_refused_in_its_form() {
    let photos = crate::indexing::photo_folder(&fixture_photos()[..1]);
    let mut test = TestLibrary::tiny();
    test.clear_vocabulary();
    test.index(photos.path());
    let lib = &mut test.library;
    let file = lib.files().unwrap().remove(0);
    let label = strict(lib, "salt; pepper");
    lib.decide(file.id, label.id, Decision::Apply).unwrap();
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("tags.csv");
    let error = lib
        .export(&ExportRequest {
            csv: Some(CsvExport {
                path: csv.clone(),
                form: CsvForm::Exiftool,
                style: PathStyle::Absolute,
            }),
            xmp: None,
        })
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"salt; pepper\"") && error.contains("--xmp"),
        "{error}"
    );
    assert!(!csv.exists());
}

#[test]
fn permissions_and_links_survive_and_temporary_names_stay_short() {
    use std::os::unix::fs::PermissionsExt;
    let photos = tempfile::tempdir().unwrap();
    let long = format!("{}.jpg", "a".repeat(240));
    let names = ["kept.jpg", "linked.jpg", long.as_str()];
    for (i, name) in names.iter().enumerate() {
        std::fs::copy(&fixture_photos()[i], photos.path().join(name)).unwrap();
    }
    let kept = sidecar_path(&photos.path().join("kept.jpg"), SidecarNaming::Appended);
    std::fs::copy(fixtures().join("sidecars/own-keyword.xmp"), &kept).unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A sidecar that is a link to a file kept elsewhere: the link stays, its target changes.
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("real.xmp");
    std::fs::copy(fixtures().join("sidecars/digikam.xmp"), &target).unwrap();
    let linked = sidecar_path(&photos.path().join("linked.jpg"), SidecarNaming::Appended);
    std::os::unix::fs::symlink(&target, &linked).unwrap();

    let mut test = TestLibrary::tiny();
    test.clear_vocabulary();
    test.index(photos.path());
    let lib = &mut test.library;
    let label = strict(lib, "Sunny");
    for file in lib.files().unwrap() {
        lib.decide(file.id, label.id, Decision::Apply).unwrap();
    }
    let report = sidecars(lib, SidecarNaming::Appended);
    assert_eq!((report.written, report.failed.len()), (3, 0), "{report:?}");
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the sidecar's permissions changed");
    assert!(
        std::fs::symlink_metadata(&linked)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&target)
            .unwrap()
            .contains("<rdf:li>Sunny</rdf:li>")
    );
    // A 248-byte sidecar name: the temporary file beside it must not pass the 255-byte limit.
    let long_sidecar = sidecar_path(&photos.path().join(&long), SidecarNaming::Appended);
    assert!(
        std::fs::read_to_string(long_sidecar)
            .unwrap()
            .contains("Sunny")
    );
    let leftovers: Vec<_> = std::fs::read_dir(photos.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Makes a folder unwritable even for root (`chattr +i`), and writable again when dropped.
struct Locked(PathBuf);

impl Locked {
    fn new(dir: &Path) -> Option<Self> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).ok()?;
        let locked = Locked(dir.to_path_buf());
        if std::fs::write(dir.join(".probe"), b"x").is_err() {
            return Some(locked);
        }
        let _ = std::fs::remove_file(dir.join(".probe"));
        let ok = Command::new("chattr")
            .args(["+i", dir.to_str()?])
            .status()
            .ok()?
            .success();
        (ok && std::fs::write(dir.join(".probe"), b"x").is_err()).then_some(locked)
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = Command::new("chattr")
            .args(["-i", self.0.to_str().unwrap()])
            .status();
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn a_read_only_folder_fails_its_sidecars_by_name_and_the_others_are_written() {
    let root = tempfile::tempdir().unwrap();
    for (i, folder) in ["open", "locked"].iter().enumerate() {
        std::fs::create_dir(root.path().join(folder)).unwrap();
        std::fs::copy(
            &fixture_photos()[i],
            root.path().join(folder).join("photo.jpg"),
        )
        .unwrap();
    }
    let mut test = TestLibrary::tiny();
    test.clear_vocabulary();
    test.index(root.path());
    let lib = &mut test.library;
    let label = strict(lib, "Sunny");
    for file in lib.files().unwrap() {
        lib.decide(file.id, label.id, Decision::Apply).unwrap();
    }
    let Some(_locked) = Locked::new(&root.path().join("locked")) else {
        eprintln!("cannot make a folder read-only here (not even with chattr): skipped");
        return;
    };
    let report = sidecars(lib, SidecarNaming::Appended);
    assert_eq!(report.written, 1, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let (path, reason) = &report.failed[0];
    assert!(path.starts_with(root.path().join("locked")), "{path:?}");
    assert!(!reason.is_empty());
    assert!(root.path().join("open/photo.jpg.xmp").exists());
}

#[test]
fn photos_that_share_a_sidecar_name_share_its_keywords_and_missing_photos_get_none() {
    let photos = tempfile::tempdir().unwrap();
    std::fs::copy(&fixture_photos()[0], photos.path().join("photo.jpg")).unwrap();
    let png = fixture_photos()
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    std::fs::copy(&png, photos.path().join("photo.png")).unwrap();
    std::fs::copy(&fixture_photos()[1], photos.path().join("gone.jpg")).unwrap();
    let mut test = TestLibrary::tiny();
    test.clear_vocabulary();
    test.index(photos.path());
    let lib = &mut test.library;
    let (sea, sky) = (strict(lib, "Sea"), strict(lib, "Sky"));
    let find = |lib: &Library, name: &str| lib.find_image(&photos.path().join(name)).unwrap().id;
    let (jpg, png_id, gone) = (
        find(lib, "photo.jpg"),
        find(lib, "photo.png"),
        find(lib, "gone.jpg"),
    );
    lib.decide(jpg, sea.id, Decision::Apply).unwrap();
    lib.decide(png_id, sky.id, Decision::Apply).unwrap();
    lib.decide(gone, sea.id, Decision::Apply).unwrap();
    std::fs::remove_file(photos.path().join("gone.jpg")).unwrap();
    test.index(photos.path());
    let lib = &mut test.library;
    let first = sidecars(lib, SidecarNaming::Replaced);
    assert_eq!(first.written, 1, "{first:?}");
    let shared = std::fs::read_to_string(photos.path().join("photo.xmp")).unwrap();
    assert!(
        shared.contains("<rdf:li>Sea</rdf:li>") && shared.contains("<rdf:li>Sky</rdf:li>"),
        "{shared}"
    );
    // Exporting again changes nothing: the two photos never take turns.
    let again = sidecars(lib, SidecarNaming::Replaced);
    assert_eq!((again.written, again.unchanged), (0, 1), "{again:?}");
    assert!(
        !photos.path().join("gone.xmp").exists(),
        "a missing photo got a sidecar"
    );
}

/// A keyword a person could have typed: any character XML 1.0 holds (markup characters, quotes,
/// accents, emoji, CJK, private use, astral planes), with leading, trailing and repeated spaces,
/// never only spaces. No line breaks: exiftool's argument file is one argument a line.
fn random_keyword(rng: &mut impl rand::Rng) -> String {
    const PICKS: [char; 16] = [
        ' ', ' ', '&', '<', '>', '"', '\'', 'é', '☕', '🐱', '中', '|', ',', ';', 'a', 'Z',
    ];
    loop {
        let length = rng.random_range(1..12);
        let keyword: String = (0..length)
            .map(|_| match rng.random_range(0..4) {
                0 => {
                    // Anywhere XML allows, but not the separators exiftool's JSON would escape
                    // differently on the two readings (there are none: both readings are JSON).
                    let code = match rng.random_range(0..3) {
                        0 => rng.random_range(0xA0..0xD800),
                        1 => rng.random_range(0xE000..0xFFFE),
                        _ => rng.random_range(0x10000..0x110000),
                    };
                    char::from_u32(code).unwrap_or('x')
                }
                1 => (b'a' + rng.random_range(0..26)) as char,
                _ => PICKS[rng.random_range(0..PICKS.len())],
            })
            .collect();
        if !keyword.trim().is_empty() && keyword.chars().all(cliptag::domain::fits_xml) {
            return keyword;
        }
    }
}

/// Keyword lists written by exiftool come back from exiftool exactly as they were after cliptag
/// adds its own keywords, exports again (and then writes nothing), and takes its keywords out
/// again: over 10,000 generated lists, in `dc:subject` and `lr:hierarchicalSubject`.
#[test]
fn a_persons_keywords_survive_exports_byte_for_byte_in_exiftools_reading() {
    use cliptag::export::xmp::{Keywords, Merge, Written, update};
    use rand::{Rng, SeedableRng};
    let Some(tool) = exiftool() else { return };
    const LISTS: usize = 10_000;
    let mut rng = rand::rngs::StdRng::seed_from_u64(37);
    let dir = tempfile::tempdir().unwrap();
    let mut args = String::new();
    let mut files = Vec::new();
    for i in 0..LISTS {
        let file = dir.path().join(format!("{i:05}.xmp"));
        args.push_str(&format!("-o\n{}\n", file.display()));
        for _ in 0..rng.random_range(1..5) {
            args.push_str(&format!("-XMP-dc:Subject={}\n", random_keyword(&mut rng)));
        }
        for _ in 0..rng.random_range(0..3) {
            args.push_str(&format!(
                "-XMP-lr:HierarchicalSubject={}\n",
                random_keyword(&mut rng)
            ));
        }
        args.push_str("-execute\n");
        files.push(file);
    }
    let argfile = dir.path().join("args.txt");
    std::fs::write(&argfile, args).unwrap();
    run(tool, &["-q", "-@", argfile.to_str().unwrap()]);

    // Every list as exiftool reads it, by file name.
    let read_all = || -> BTreeMap<String, (Value, Value)> {
        let json: Value = serde_json::from_str(&run(
            tool,
            &[
                "-j",
                "-q",
                "-ext",
                "xmp",
                "-XMP-dc:Subject",
                "-XMP-lr:HierarchicalSubject",
                dir.path().to_str().unwrap(),
            ],
        ))
        .unwrap();
        json.as_array()
            .unwrap()
            .iter()
            .map(|entry| {
                let name = Path::new(entry["SourceFile"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let get = |key: &str| entry.get(key).cloned().unwrap_or(Value::Null);
                (name, (get("Subject"), get("HierarchicalSubject")))
            })
            .collect()
    };
    let before = read_all();
    assert_eq!(before.len(), LISTS, "exiftool wrote every list");

    let ours = Keywords {
        subject: vec!["cliptag keyword".into()],
        hierarchical: vec!["Cliptag|keyword".into()],
    };
    for file in &files {
        let added = update(
            file,
            &Merge {
                wanted: ours.clone(),
                owned: Keywords::default(),
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(added.1, ours, "{}", file.display());
        let bytes = std::fs::read(file).unwrap();
        let again = update(
            file,
            &Merge {
                wanted: ours.clone(),
                owned: added.1.clone(),
            },
        )
        .unwrap()
        .unwrap();
        assert_eq!(again.0, Written::Unchanged, "{}", file.display());
        assert_eq!(std::fs::read(file).unwrap(), bytes, "{}", file.display());
    }
    let with_ours = read_all();
    let without = |value: &Value, keyword: &str| -> Value {
        match value {
            Value::Array(items) => {
                let kept: Vec<Value> = items
                    .iter()
                    .filter(|v| v.as_str() != Some(keyword))
                    .cloned()
                    .collect();
                match kept.len() {
                    0 => Value::Null,
                    1 => kept[0].clone(),
                    _ => Value::Array(kept),
                }
            }
            Value::String(single) if single == keyword => Value::Null,
            other => other.clone(),
        }
    };
    for (name, (subject, hierarchical)) in &before {
        let (s, h) = &with_ours[name];
        assert_eq!(
            &without(s, "cliptag keyword"),
            subject,
            "{name}: dc:subject"
        );
        assert_eq!(
            &without(h, "Cliptag|keyword"),
            hierarchical,
            "{name}: hierarchical"
        );
    }

    for file in &files {
        update(
            file,
            &Merge {
                wanted: Keywords::default(),
                owned: ours.clone(),
            },
        )
        .unwrap();
    }
    assert_eq!(
        read_all(),
        before,
        "taking cliptag's keywords out restores every list"
    );
}

/// A keyword list in an ordered `rdf:Seq` stays a `Seq`; spaces between references stay.
#[test]
fn an_ordered_keyword_list_stays_ordered_and_keeps_its_spaces() {
    use cliptag::export::xmp::{Keywords, Merge, update};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("photo.jpg.xmp");
    std::fs::write(
        &file,
        "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF \
         xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description \
         rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:subject><rdf:Seq>\
         <rdf:li>Tom &amp; &quot;Jerry&quot;</rdf:li><rdf:li>&quot;Best&quot; &amp; \
         &quot;Worst&quot;</rdf:li><rdf:li>Caf&#xE9; &#x2615; &#x1F431;</rdf:li></rdf:Seq>\
         </dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>",
    )
    .unwrap();
    let wanted = Keywords {
        subject: vec!["Cat".into()],
        hierarchical: Vec::new(),
    };
    update(
        &file,
        &Merge {
            wanted,
            owned: Keywords::default(),
        },
    )
    .unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("<rdf:Seq") && !text.contains("<rdf:Bag"),
        "{text}"
    );
    for keyword in [
        "Tom &amp; \"Jerry\"",
        "\"Best\" &amp; \"Worst\"",
        "Café ☕ 🐱",
        "Cat",
    ] {
        assert!(
            text.contains(&format!("<rdf:li>{keyword}</rdf:li>")),
            "{keyword}: {text}"
        );
    }
}

/// A sidecar that fuzzing found (a darktable sidecar with a second XMP packet inside its keyword
/// list) made the merge slice its text between overlapping places and panic. It is refused with
/// a reason, and the sidecar is left byte for byte.
#[test]
fn a_sidecar_whose_keyword_lists_overlap_is_refused_not_a_panic() {
    use cliptag::export::xmp::{Keywords, Merge, merge, update};
    let fixture = fixtures().join("sidecars/fuzz-overlapping-lists.xmp");
    let bytes = std::fs::read(&fixture).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    let words = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let request = Merge {
        wanted: Keywords {
            subject: words(&["Beach", "Dog"]),
            hierarchical: words(&["Animals|Dog"]),
        },
        owned: Keywords {
            subject: words(&["Dog", "Old"]),
            hierarchical: words(&["Animals|Old"]),
        },
    };
    let refused = merge(Some(&text), &request).unwrap_err();
    assert!(refused.contains("not well formed"), "{refused}");
    let dir = tempfile::tempdir().unwrap();
    let sidecar = dir.path().join("IMG_0002.CR2.xmp");
    std::fs::write(&sidecar, &bytes).unwrap();
    assert!(update(&sidecar, &request).is_err());
    assert_eq!(std::fs::read(&sidecar).unwrap(), bytes);
}
