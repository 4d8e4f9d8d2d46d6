//! Labels that learn from a person's decisions: five accepts and five rejects teach a label whose
//! prompt means nothing to the model; decisions stay; a reset restores the zero-shot label; what
//! a label learned survives re-indexing, re-tagging and a vocabulary file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use cliptag::domain::{Decision, Label};
use cliptag::library::Library;

use crate::support::*;

/// Two groups of photos that look nothing alike: warm gradients, and cool stripes.
fn two_groups(each: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..each {
        let warm = image::RgbImage::from_fn(96, 96, |x, y| {
            let n = ((x * 7 + y * 13 + i * 31) % 23) as u8;
            image::Rgb([200 + n % 50, (x + y + i * 3) as u8 / 2, 30 + n])
        });
        warm.save(dir.path().join(format!("warm{i:02}.jpg")))
            .unwrap();
        let cool = image::RgbImage::from_fn(96, 96, |x, y| {
            let stripe = if (x + i) / 6 % 2 == 0 { 220 } else { 40 };
            image::Rgb([20 + (y % 17) as u8, stripe / 2, stripe])
        });
        cool.save(dir.path().join(format!("cool{i:02}.jpg")))
            .unwrap();
    }
    dir
}

fn id(library: &Library, dir: &Path, name: &str) -> i64 {
    library.find_image(&dir.join(name)).unwrap().id
}

/// Names of the photos `label` is on (automatically or by a person), and of those it was
/// rejected for.
fn tagged(library: &mut Library, label: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut on, mut rejected) = (BTreeSet::new(), BTreeSet::new());
    for tag in library
        .tags(&[])
        .unwrap()
        .into_iter()
        .filter(|t| t.label == label)
    {
        let name = tag.path.file_name().unwrap().to_string_lossy().into_owned();
        if tag.source.applies() {
            on.insert(name);
        } else {
            rejected.insert(name);
        }
    }
    (on, rejected)
}

struct Taught {
    photos: tempfile::TempDir,
    library: TestLibrary,
    zero_shot: Label,
    zero_shot_tags: BTreeSet<String>,
}

/// A library of both groups and the label "Zorblax" (a word the model knows nothing of), with
/// five cool photos accepted and five warm ones rejected: the opposite of what the prompt alone
/// tags with the tiny model.
fn taught() -> Taught {
    let photos = two_groups(20);
    let mut library = TestLibrary::tiny();
    library.clear_vocabulary();
    library.index(photos.path());
    let lib = &mut library.library;
    let (zero_shot, _) = lib.add_label(Label::new("Zorblax", "tiny")).unwrap();
    let zero_shot_tags = tagged(lib, "Zorblax").0;
    for i in 0..5 {
        let warm = id(lib, photos.path(), &format!("warm{i:02}.jpg"));
        let cool = id(lib, photos.path(), &format!("cool{i:02}.jpg"));
        lib.decide(cool, zero_shot.id, Decision::Apply).unwrap();
        lib.decide(warm, zero_shot.id, Decision::Reject).unwrap();
    }
    Taught {
        photos,
        library,
        zero_shot,
        zero_shot_tags,
    }
}

fn undecided(names: &BTreeSet<String>, group: &str) -> usize {
    names
        .iter()
        .filter(|n| n.starts_with(group))
        .filter(|n| n[group.len()..group.len() + 2].parse::<u32>().unwrap() >= 5)
        .count()
}

#[test]
fn five_accepts_and_five_rejects_teach_a_label_its_prompt_could_not() {
    let Taught {
        photos: _photos,
        mut library,
        zero_shot,
        zero_shot_tags,
    } = taught();
    let lib = &mut library.library;
    let before = tagged(lib, "Zorblax");

    // A dry run says what would change and changes nothing.
    let dry = lib.learn("zorblax", true).unwrap();
    assert_eq!((dry.positives, dry.negatives), (5, 5));
    assert!(dry.retag.is_none());
    assert_eq!(tagged(lib, "Zorblax"), before);
    assert_eq!(lib.label_named("Zorblax").unwrap(), zero_shot);

    let report = lib.learn("Zorblax", false).unwrap();
    assert_eq!(report.agreement_after.total, 10);
    assert!(
        report.agreement_after.correct >= 9,
        "leave-one-out agreement {:?}",
        report.agreement_after
    );
    // The prompt alone tags the photos unlike the accepted ones: only learning can do this.
    assert!(
        undecided(&zero_shot_tags, "cool") <= 3,
        "the zero-shot label already tags the cool photos: {zero_shot_tags:?}"
    );
    let (on, rejected) = tagged(lib, "Zorblax");
    let (cool, warm) = (undecided(&on, "cool"), undecided(&on, "warm"));
    eprintln!(
        "zero-shot: {} cool, {} warm of 15 undecided each; learned: {cool} cool, {warm} warm; \
         leave-one-out {:?} (before {:?}); threshold {} -> {}",
        undecided(&zero_shot_tags, "cool"),
        undecided(&zero_shot_tags, "warm"),
        report.agreement_after,
        report.agreement_before,
        report.threshold_before,
        report.label.threshold
    );
    assert!(
        cool >= 12,
        "only {cool} of the 15 undecided cool photos tagged: {on:?}"
    );
    assert!(
        warm <= 3,
        "{warm} of the 15 undecided warm photos tagged: {on:?}"
    );
    // The decisions stand, whatever the label learned.
    assert_eq!(rejected.len(), 5);
    for i in 0..5 {
        assert!(rejected.contains(&format!("warm{i:02}.jpg")));
        assert!(on.contains(&format!("cool{i:02}.jpg")));
    }
    let learned = lib.label_named("Zorblax").unwrap();
    let l = learned.learned.as_ref().expect("stored");
    assert_eq!((l.positives, l.negatives), (5, 5));
    assert_eq!(l.zero_shot_threshold, zero_shot.threshold);
    assert_eq!(learned.threshold, report.label.threshold);

    // A reset brings the zero-shot label back exactly, and its tags.
    lib.reset_learning("Zorblax").unwrap();
    assert_eq!(lib.label_named("Zorblax").unwrap(), zero_shot);
    // Its automatic tags are the zero-shot ones again, less the photos a person decided on.
    let (on, _) = tagged(lib, "Zorblax");
    let decided: BTreeSet<String> = (0..5)
        .flat_map(|i| [format!("warm{i:02}.jpg"), format!("cool{i:02}.jpg")])
        .collect();
    let automatic: BTreeSet<String> = on.difference(&decided).cloned().collect();
    let zero_shot_automatic: BTreeSet<String> =
        zero_shot_tags.difference(&decided).cloned().collect();
    assert_eq!(automatic, zero_shot_automatic);
}

#[test]
fn what_a_label_learned_survives_reindexing_retagging_and_a_vocabulary_file() {
    let Taught {
        photos,
        mut library,
        ..
    } = taught();
    library.library.learn("Zorblax", false).unwrap();
    let learned = library.library.label_named("Zorblax").unwrap();
    let tags = tagged(&mut library.library, "Zorblax");

    // Re-index (a new photo too) and re-tag: the label keeps what it learned.
    std::fs::copy(
        photos.path().join("cool07.jpg"),
        photos.path().join("cool99.jpg"),
    )
    .unwrap();
    library.index(photos.path());
    library.library.retag(false).unwrap();
    assert_eq!(library.library.label_named("Zorblax").unwrap(), learned);
    let (on, _) = tagged(&mut library.library, "Zorblax");
    assert!(on.is_superset(&tags.0), "re-indexing dropped learned tags");
    assert!(
        on.contains("cool99.jpg"),
        "the copy of a tagged photo is tagged too"
    );

    // Exported with the vocabulary and imported into another library of the same model.
    let file = library.dir.path().join("vocabulary.toml");
    library.library.export_vocabulary(&file).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("[label.learned]"), "{text}");
    let mut other = TestLibrary::tiny();
    other.clear_vocabulary();
    other.index(photos.path());
    other.library.import_vocabulary(&file).unwrap();
    let imported = other.library.label_named("Zorblax").unwrap();
    assert_eq!(
        Label {
            id: learned.id,
            ..imported
        },
        learned
    );
    let (on_other, _) = tagged(&mut other.library, "Zorblax");
    let (on_here, _) = tagged(&mut library.library, "Zorblax");
    let automatic_here: BTreeSet<String> = on_here
        .iter()
        .filter(|n| n[4..6].parse::<u32>().is_ok_and(|i| i >= 5))
        .cloned()
        .collect();
    assert!(
        on_other.is_superset(&automatic_here),
        "the imported label tags differently: {on_other:?} vs {automatic_here:?}"
    );
}

#[test]
fn learning_without_decisions_or_only_missing_ones_says_so_and_changes_nothing() {
    let photos = two_groups(3);
    let mut library = TestLibrary::tiny();
    library.clear_vocabulary();
    library.index(photos.path());
    let lib = &mut library.library;
    let (label, _) = lib.add_label(Label::new("Zorblax", "tiny")).unwrap();
    let error = lib.learn("Zorblax", false).unwrap_err().to_string();
    assert!(error.contains("no decisions to learn from"), "{error}");
    let warm = id(lib, photos.path(), "warm00.jpg");
    lib.decide(warm, label.id, Decision::Apply).unwrap();
    std::fs::remove_file(photos.path().join("warm00.jpg")).unwrap();
    library.index(photos.path());
    let error = library
        .library
        .learn("Zorblax", false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing"), "{error}");
    assert_eq!(library.library.label_named("Zorblax").unwrap(), label);
    let error = library
        .library
        .reset_learning("Zorblax")
        .unwrap_err()
        .to_string();
    assert!(error.contains("nothing to reset"), "{error}");
}

#[test]
fn the_command_line_learns_and_creates_labels_from_examples() {
    let photos = two_groups(10);
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("lib.sqlite");
    let db = db.to_str().unwrap();
    let model = tiny_clip();
    let run = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--db", db]);
        let output = cliptag(&full);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{args:?}: {stderr}");
        stderr
    };
    run(&[
        "index",
        "--model",
        model.to_str().unwrap(),
        photos.path().to_str().unwrap(),
    ]);
    let at = |name: &str| -> PathBuf { photos.path().join(name) };
    run(&["vocab", "add", "Zorblax", "--threshold", "0.99"]);
    for i in 0..3 {
        run(&[
            "tag",
            "add",
            at(&format!("cool{i:02}.jpg")).to_str().unwrap(),
            "Zorblax",
        ]);
        run(&[
            "tag",
            "reject",
            at(&format!("warm{i:02}.jpg")).to_str().unwrap(),
            "Zorblax",
        ]);
    }
    let dry = run(&["vocab", "learn", "--dry-run", "Zorblax"]);
    assert!(
        dry.contains(
            "would learn \"Zorblax\" from 3 accepted and 3 rejected photos: threshold 0.990 ->"
        ),
        "{dry}"
    );
    assert!(dry.contains("leave-one-out"), "{dry}");
    let learned = run(&["vocab", "learn", "Zorblax"]);
    assert!(learned.contains("learned \"Zorblax\""), "{learned}");
    let tags = String::from_utf8(cliptag(&["tags", "--db", db]).stdout).unwrap();
    let zorblax = |group: &str| {
        tags.lines()
            .filter(|l| l.contains(group) && l.contains("\tZorblax\t") && !l.ends_with("rejected"))
            .count()
    };
    assert!(zorblax("/cool") >= 8 && zorblax("/warm") <= 2, "{tags}");
    // The tags say why: the learned label tags an undecided cool photo its prompts alone would not.
    let explained = String::from_utf8(cliptag(&["tags", "--explain", "--db", db]).stdout).unwrap();
    let cool = explained
        .lines()
        .find(|l| l.contains("/cool07.jpg\tZorblax\t"))
        .unwrap_or_else(|| panic!("{explained}"));
    let why = cool.split('\t').nth(4).unwrap();
    assert!(
        why.starts_with("cosine ") && why.contains("≥ threshold"),
        "{why}"
    );
    assert!(
        why.contains("best prompt \"a ") && why.contains(" zorblax.\" ("),
        "{why}"
    );
    assert!(
        why.contains("learned from decisions (the prompts alone would not give it)"),
        "{why}"
    );
    let accepted = explained
        .lines()
        .find(|l| l.contains("/cool00.jpg\tZorblax\t"))
        .unwrap();
    assert!(accepted.ends_with("; added by you"), "{accepted}");
    let reset = run(&["vocab", "learn", "--reset", "Zorblax"]);
    assert!(
        reset.contains("forgot what it learned: threshold 0.990"),
        "{reset}"
    );

    // A label from examples alone.
    let examples: Vec<String> = (0..4)
        .map(|i| {
            at(&format!("warm{i:02}.jpg"))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec!["vocab", "add", "Sunny"];
    for example in &examples {
        args.extend(["--example", example.as_str()]);
    }
    let added = run(&args);
    assert!(added.contains("learned from 4 example photos"), "{added}");
    let tags = String::from_utf8(cliptag(&["tags", "--db", db]).stdout).unwrap();
    let sunny: Vec<&str> = tags.lines().filter(|l| l.contains("\tSunny\t")).collect();
    assert!(
        sunny.iter().filter(|l| l.contains("/warm")).count() >= 8,
        "{sunny:?}"
    );
    assert!(
        sunny.iter().filter(|l| l.contains("/cool")).count() <= 2,
        "{sunny:?}"
    );
}
