//! Editing one label re-tags only what it can change, and the result equals a full re-tag.

use cliptag::domain::{Label, Mode};
use cliptag::library::Retag;
use cliptag::store::Store;

use crate::indexing::{fixture_photos, photo_folder};
use crate::support::*;

/// A library of the fixture photos with a label that tags every photo and one under test.
fn library() -> (TestLibrary, tempfile::TempDir, usize) {
    let mut lib = TestLibrary::tiny();
    let photos = photo_folder(&fixture_photos());
    lib.index(photos.path());
    lib.clear_vocabulary();
    lib.library
        .add_label(Label {
            threshold: -1.0,
            ..Label::new("Everything", "")
        })
        .unwrap();
    let count = lib.store().images().unwrap().len();
    (lib, photos, count)
}

/// The report of `retag`, which must come from the label-local path: it saw no more tags than
/// one label can have (the label tagging every photo would double that in a full re-tag).
fn local_report(retag: Retag, photos: usize) -> cliptag::tagging::RetagReport {
    let Retag::Done(report) = retag else {
        panic!("expected a re-tag, got {retag:?}");
    };
    let seen = report.kept + report.total_added();
    assert!(
        seen as usize <= photos,
        "{seen} tags compared for {photos} photos: the whole vocabulary was re-tagged"
    );
    report
}

/// A change to a label, named for the failure message.
type Edit = Box<dyn Fn(&mut Label)>;

fn assert_equals_a_full_retag(lib: &mut TestLibrary, what: &str) {
    let report = lib.library.retag(true).unwrap();
    assert!(
        report.added.is_empty() && report.removed.is_empty(),
        "after {what}, a full re-tag would change: {report:?}"
    );
}

#[test]
fn editing_one_label_rewrites_only_its_tags_and_equals_a_full_retag() {
    let (mut lib, _photos, photos) = library();
    let everything = lib.store().auto_tags(None).unwrap();
    assert_eq!(everything.len(), photos);

    let (mut label, retag) = lib
        .library
        .add_label(Label {
            threshold: 0.2,
            ..Label::new("Cat", "")
        })
        .unwrap();
    local_report(retag, photos);
    assert_equals_a_full_retag(&mut lib, "adding a label");

    let mut edits: Vec<(&str, Edit)> = vec![
        ("a higher threshold", Box::new(|l| l.threshold = 0.3)),
        ("a lower threshold", Box::new(|l| l.threshold = 0.1)),
        (
            "new prompts",
            Box::new(|l| l.prompts = vec!["a photo of a sleeping cat.".into()]),
        ),
        ("a rename", Box::new(|l| l.name = "Animals/Cat".into())),
        ("switching it off", Box::new(|l| l.enabled = false)),
        ("switching it on", Box::new(|l| l.enabled = true)),
        (
            "contrast mode",
            Box::new(|l| {
                l.mode = Mode::Contrast;
                l.negative = Some("a photo of a dog.".into());
                l.threshold = 0.5;
            }),
        ),
        ("a contrast threshold", Box::new(|l| l.threshold = 0.45)),
    ];
    let mut tagged_at_some_point = false;
    for (what, edit) in edits.drain(..) {
        edit(&mut label);
        let (stored, retag) = lib.library.update_label(label.clone()).unwrap();
        label = stored;
        let report = local_report(retag, photos);
        tagged_at_some_point |= report.kept + report.total_added() > 0;
        assert_equals_a_full_retag(&mut lib, what);
        // The other label's tags were not touched.
        let now = lib.store().auto_tags(None).unwrap();
        for (pair, score) in &everything {
            assert_eq!(now.get(pair), Some(score), "after {what}");
        }
    }
    assert!(tagged_at_some_point, "the edits tagged some photos");
}

#[test]
fn with_a_top_k_label_an_edit_re_tags_the_whole_vocabulary() {
    let (mut lib, _photos, photos) = library();
    lib.library
        .add_label(Label {
            mode: Mode::TopK,
            threshold: 0.0,
            ..Label::new("Best", "")
        })
        .unwrap();
    let (mut label, _) = lib
        .library
        .add_label(Label {
            threshold: 0.2,
            ..Label::new("Cat", "")
        })
        .unwrap();
    label.prompts = vec!["a photo of a sleeping cat.".into()];
    let (_, retag) = lib.library.update_label(label).unwrap();
    let Retag::Done(report) = retag else {
        panic!("expected a re-tag, got {retag:?}");
    };
    assert!(
        (report.kept + report.total_added()) as usize > photos,
        "top-k ranks against every label: the whole vocabulary is re-tagged"
    );
    assert_equals_a_full_retag(&mut lib, "an edit beside a top-k label");
}

/// A library of `n` photos with random embeddings of the tiny model and two labels (stored
/// without re-tagging) that tag every photo: a first full re-tag writes `2 n` tags.
pub(crate) fn untagged_library(db: &std::path::Path, n: usize) -> cliptag::library::Library {
    use cliptag::model::Embedder;
    use cliptag::store::{NewImage, Store};
    let engine = std::sync::Arc::new(tiny_engine());
    let mut store = Store::open(db).unwrap();
    let mut seed = 7u64;
    let mut random = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let model = engine.model_id().to_string();
    store
        .batch(|batch| {
            for i in 0..n {
                let mut v: Vec<f32> = (0..engine.dim()).map(|_| random()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                let path = std::path::PathBuf::from(format!("/photos/{i}.jpg"));
                let image = NewImage {
                    path: &path,
                    size: 1,
                    mtime_ns: 1,
                };
                batch.insert_embedded(&image, &format!("h{i}"), &model, &v)?;
            }
            Ok(())
        })
        .unwrap();
    store
        .set_settings(&[
            ("model", &model),
            ("model_source", &model),
            ("vocabulary_seeded", "1"),
        ])
        .unwrap();
    for name in ["Everything", "All of them"] {
        store
            .insert_label(&Label {
                threshold: -1.0,
                ..Label::new(name, &model)
            })
            .unwrap();
    }
    drop(store);
    open_with(db, engine).0
}

#[test]
fn a_full_retag_reports_progress_and_a_cancel_leaves_every_tag_as_it_was() {
    use cliptag::library::{Progress, RunControl, Stage};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    // Three blocks of photos to score, and more tags than one look at the switch covers.
    let n = 20_000;
    let mut library = untagged_library(&db, n);
    assert!(2 * n > cliptag::store::TAGS_PER_LOOK);
    let tags = || {
        cliptag::store::Store::open(&db)
            .unwrap()
            .auto_tags(None)
            .unwrap()
            .len()
    };
    // Cancelled while scoring, and while writing: nothing is written either time.
    for stage in [Stage::Scoring, Stage::WritingTags] {
        let control = RunControl::default();
        let mut seen: Vec<Progress> = Vec::new();
        let report = library
            .retag_watched(false, &control, &mut |p| {
                if p.stage == stage {
                    control.cancel();
                }
                seen.push(p);
            })
            .unwrap();
        assert!(report.cancelled, "cancelled while {stage:?}: {report:?}");
        assert_eq!(tags(), 0, "cancelled while {stage:?}, tags were written");
        let last = seen.last().unwrap();
        assert_eq!(last.stage, stage);
        assert!(last.done < last.total, "{last:?}");
    }
    // Run to the end: scoring counts up to every photo, writing to every tag.
    let control = RunControl::default();
    let mut seen: Vec<Progress> = Vec::new();
    let report = library
        .retag_watched(false, &control, &mut |p| seen.push(p))
        .unwrap();
    assert!(!report.cancelled);
    assert_eq!(report.total_added() as usize, 2 * n);
    assert_eq!(tags(), 2 * n);
    let last_of = |stage| seen.iter().rfind(|p| p.stage == stage).unwrap().clone();
    let scored = last_of(Stage::Scoring);
    assert_eq!((scored.done, scored.total), (n as u64, n as u64));
    let written = last_of(Stage::WritingTags);
    assert_eq!(written.total, 2 * n as u64);
    assert!(
        seen.windows(2)
            .all(|w| w[0].stage != w[1].stage || w[0].done <= w[1].done)
    );
}

/// Two handles on one library, as the app's worker and a `cliptag` command beside it: one adds
/// labels while the other indexes more photos and re-tags. The indexer tags the new photos with
/// the labels the other added, its re-tag removes none of their tags, and at the end a dry-run
/// re-tag finds nothing to change; every decision either made is there.
#[test]
fn two_writers_on_one_library_end_with_the_tags_of_its_final_vocabulary() {
    use cliptag::domain::{Decision, TagSource};
    let photos = fixture_photos();
    let first = photo_folder(&photos[..4]);
    let second = photo_folder(&photos[4..]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let (mut app, _) = open_with(&db, std::sync::Arc::new(tiny_engine()));
    let (mut command, _) = open_with(&db, std::sync::Arc::new(tiny_engine()));
    let index = |library: &mut cliptag::library::Library, folder: &std::path::Path| {
        library
            .index(
                &[folder.to_path_buf()],
                small_batches(),
                cliptag::library::RunControl::default(),
                &mut |_| {},
            )
            .unwrap()
    };
    index(&mut app, first.path());
    // The app has prepared its vocabulary (a re-tag); then the command adds labels that tag
    // every photo.
    app.retag(false).unwrap();
    for name in ["Everywhere", "Anywhere"] {
        command
            .add_label(Label {
                threshold: -1.0,
                ..Label::new(name, "")
            })
            .unwrap();
    }
    let everywhere = command.label_named("Everywhere").unwrap();
    // The app indexes more photos: they get the command's labels too.
    index(&mut app, second.path());
    let store = cliptag::store::Store::open(&db).unwrap();
    let images = store.images().unwrap();
    assert_eq!(images.len(), photos.len());
    for image in &images {
        assert!(
            store.tag(image.id, everywhere.id).unwrap().is_some(),
            "{} was not tagged with the other writer's label",
            image.path.display()
        );
    }
    // Decisions from both sides.
    app.decide(images[0].id, everywhere.id, Decision::Reject)
        .unwrap();
    command
        .decide(images[1].id, everywhere.id, Decision::Apply)
        .unwrap();
    let report = app.retag(false).unwrap();
    assert_eq!(report.total_removed(), 0, "{report:?}");
    let (mut fresh, _) = open_with(&db, std::sync::Arc::new(tiny_engine()));
    let dry = fresh.retag(true).unwrap();
    assert_eq!((dry.total_added(), dry.total_removed()), (0, 0), "{dry:?}");
    assert_eq!(
        store.tag(images[0].id, everywhere.id).unwrap().map(|t| t.0),
        Some(TagSource::Rejected)
    );
    assert_eq!(
        store.tag(images[1].id, everywhere.id).unwrap().map(|t| t.0),
        Some(TagSource::Accepted)
    );
}

/// A vocabulary edit whose re-tag never ran (the process was killed between the two, or
/// another program edited the vocabulary while photos were being tagged) leaves the tags owing
/// a re-tag: the next index, even one that finds nothing new, brings them up to the vocabulary.
/// Edits through the library that re-tag as they go owe nothing, so no index re-tags for them.
#[test]
fn an_edit_whose_re_tag_never_ran_is_caught_up_by_the_next_index() {
    let photos = photo_folder(&fixture_photos()[..4]);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let db_arg = db.to_str().unwrap();
    index_with_tiny(&db, photos.path());
    // Edits that re-tag as they go leave the tags agreeing with the vocabulary.
    cliptag_ok(&["vocab", "add", "Sunsets", "--db", db_arg]);
    let (n, tagged) = Store::open(&db).unwrap().vocabulary_generation().unwrap();
    assert_eq!(n, tagged, "an edit that re-tagged still owes one");

    // The label is stored, and the process dies before re-tagging.
    Store::open(&db)
        .unwrap()
        .insert_label(&Label {
            threshold: -1.0,
            ..Label::new("Everywhere", "")
        })
        .unwrap();
    let dry = cliptag_ok(&["retag", "--dry-run", "--db", db_arg]);
    assert!(
        String::from_utf8_lossy(&dry.stderr).contains("would add 4,"),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let index = cliptag_ok(&["index", "--db", db_arg, photos.path().to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&index.stderr).contains("unchanged 4"),
        "{}",
        String::from_utf8_lossy(&index.stderr)
    );
    let dry = cliptag_ok(&["retag", "--dry-run", "--db", db_arg]);
    let said = String::from_utf8_lossy(&dry.stderr);
    assert!(said.contains("would add 0, would remove 0,"), "{said}");
    let (n, tagged) = Store::open(&db).unwrap().vocabulary_generation().unwrap();
    assert_eq!(n, tagged);
}

#[test]
fn tags_computed_from_a_vocabulary_changed_since_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("lib.sqlite")).unwrap();
    insert_photos(&mut store, 2, 4);
    let label = store.insert_label(&Label::new("Kept", "")).unwrap();
    let image = store.images().unwrap()[0].id;
    let (n, _) = store.vocabulary_generation().unwrap();
    let writes = store.tag_writes().unwrap();
    // Another program edits the vocabulary after the tags were computed from generation n.
    store.insert_label(&Label::new("Newer", "")).unwrap();
    let error = store
        .apply_tag_change_watched(
            &[],
            &[(image, label, 0.5)],
            cliptag::store::Basis::Whole { n, writes },
            &mut |_, _| true,
        )
        .unwrap_err();
    assert!(matches!(error, cliptag::Error::VocabularyMoved), "{error}");
    assert!(store.tags().unwrap().is_empty(), "nothing written");
}
