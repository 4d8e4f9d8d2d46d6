//! Tagging: each mode tags what it should, vocabulary edits embed only what changed and never
//! touch the image encoder, and a person's decisions survive everything automatic.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cliptag::domain::{Decision, Label, Mode, TagSource};
use cliptag::imaging::Pixels;
use cliptag::library::{Library, Retag};
use cliptag::model::{Embedder, PreprocessConfig};
use cliptag::store::{NewImage, Store};

use crate::indexing::{fixture_photos, photo_folder};
use crate::support::*;

const MODEL: &str = "hand";

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// A text encoder that knows a fixed set of prompts and keeps what it is asked; it has no
/// image encoder (these libraries' photos come embedded by hand).
struct HandModel {
    vectors: HashMap<String, Vec<f32>>,
    asked: Arc<Mutex<Vec<String>>>,
    preprocess: PreprocessConfig,
}

impl Embedder for HandModel {
    fn model_id(&self) -> &str {
        MODEL
    }
    fn dim(&self) -> usize {
        self.vectors.values().next().map_or(0, Vec::len)
    }
    fn preprocess_config(&self) -> &PreprocessConfig {
        &self.preprocess
    }
    fn logit_scale(&self) -> f32 {
        100.0
    }
    fn embed_images(&self, _: &[Pixels]) -> cliptag::Result<Vec<Vec<f32>>> {
        panic!("the image encoder must not run")
    }
    fn embed_texts(&self, texts: &[String]) -> cliptag::Result<Vec<Vec<f32>>> {
        self.asked.lock().unwrap().extend(texts.iter().cloned());
        Ok(texts
            .iter()
            .map(|t| {
                self.vectors
                    .get(t)
                    .cloned()
                    .unwrap_or_else(|| panic!("unexpected prompt {t:?}"))
            })
            .collect())
    }
}

/// A library of photos with hand-made embeddings, whose text encoder knows `prompts`.
struct Hand {
    _dir: tempfile::TempDir,
    db: PathBuf,
    library: Library,
    asked: Arc<Mutex<Vec<String>>>,
}

fn hand_made(images: &[(&str, Vec<f32>)], prompts: &[(&str, Vec<f32>)]) -> Hand {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let mut store = Store::open(&db).unwrap();
    store
        .batch(|batch| {
            for (name, vector) in images {
                let path = PathBuf::from(format!("/photos/{name}"));
                let image = NewImage {
                    path: &path,
                    size: 1,
                    mtime_ns: 1,
                };
                batch.insert_embedded(&image, name, MODEL, &unit(vector))?;
            }
            Ok(())
        })
        .unwrap();
    store
        .set_settings(&[
            ("model", MODEL),
            ("model_source", MODEL),
            ("vocabulary_seeded", "1"),
        ])
        .unwrap();
    drop(store);
    let asked = Arc::new(Mutex::new(Vec::new()));
    let model = HandModel {
        vectors: prompts
            .iter()
            .map(|(t, v)| (t.to_string(), unit(v)))
            .collect(),
        asked: asked.clone(),
        preprocess: PreprocessConfig::default(),
    };
    let (library, _) = open_with(&db, Arc::new(model));
    Hand {
        _dir: dir,
        db,
        library,
        asked,
    }
}

fn label(name: &str, prompts: &[&str], mode: Mode, threshold: f32) -> Label {
    Label {
        id: 0,
        name: name.into(),
        prompts: prompts.iter().map(|p| p.to_string()).collect(),
        negative: None,
        mode,
        threshold,
        top_k: 1,
        enabled: true,
        learned: None,
        learned_elsewhere: Vec::new(),
    }
}

/// The id of the hand-made photo called `name`.
fn photo(library: &Library, name: &str) -> i64 {
    library
        .find_image(&PathBuf::from(format!("/photos/{name}")))
        .unwrap()
        .id
}

/// (photo name, label name, source) of every tag.
fn tag_set(library: &mut Library) -> BTreeSet<(String, String, &'static str)> {
    library
        .tags(&[])
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                t.path.file_name().unwrap().to_string_lossy().into_owned(),
                t.label,
                t.source.as_str(),
            )
        })
        .collect()
}

fn auto(pairs: &[(&str, &str)]) -> BTreeSet<(String, String, &'static str)> {
    pairs
        .iter()
        .map(|(p, l)| (p.to_string(), l.to_string(), "auto"))
        .collect()
}

fn retagged(retag: Retag) -> cliptag::tagging::RetagReport {
    match retag {
        Retag::Done(report) => report,
        other => panic!("the edit did not re-tag: {other:?}"),
    }
}

#[test]
fn threshold_mode_tags_where_the_cosine_reaches_the_threshold() {
    let mut hand = hand_made(
        &[
            ("dog.jpg", vec![1.0, 0.1, 0.0]),
            ("cat.jpg", vec![0.0, 1.0, 0.1]),
            ("both.jpg", vec![1.0, 1.0, 0.0]),
        ],
        &[
            ("a dog", vec![1.0, 0.0, 0.0]),
            ("a cat", vec![0.0, 1.0, 0.0]),
        ],
    );
    let lib = &mut hand.library;
    let (dog, _) = lib
        .add_label(label("Dog", &["a dog"], Mode::Threshold, 0.6))
        .unwrap();
    lib.add_label(label("Cat", &["a cat"], Mode::Threshold, 0.6))
        .unwrap();
    assert_eq!(
        tag_set(lib),
        auto(&[
            ("dog.jpg", "Dog"),
            ("both.jpg", "Dog"),
            ("cat.jpg", "Cat"),
            ("both.jpg", "Cat")
        ])
    );
    // A stricter threshold removes tags that no longer match.
    let (_, retag) = lib
        .update_label(Label {
            threshold: 0.9,
            ..dog.clone()
        })
        .unwrap();
    assert_eq!(retagged(retag).removed.get("Dog"), Some(&1));
    assert_eq!(
        tag_set(lib),
        auto(&[("dog.jpg", "Dog"), ("cat.jpg", "Cat"), ("both.jpg", "Cat")])
    );
    // -1 tags every photo, 1 none.
    for (threshold, count) in [(-1.0, 3), (1.0, 0)] {
        lib.update_label(Label {
            threshold,
            ..dog.clone()
        })
        .unwrap();
        let dogs = tag_set(lib).iter().filter(|t| t.1 == "Dog").count();
        assert_eq!(dogs, count, "threshold {threshold}");
    }
    // Each prompt went through the text encoder once; threshold edits need none.
    assert_eq!(*hand.asked.lock().unwrap(), vec!["a dog", "a cat"]);
}

#[test]
fn contrast_mode_compares_the_prompt_with_its_negative() {
    // "A photo of a fat red cat." against "Not a photo of a fat red cat.", as in CLIP's demo.
    let pos = "A photo of a fat red cat.";
    let neg = "Not a photo of a fat red cat.";
    let mut hand = hand_made(
        &[
            ("fat_red_cat.jpg", vec![1.0, 0.2, 0.0]),
            ("thin_cat.jpg", vec![0.6, 0.8, 0.0]),
            ("car.jpg", vec![0.0, 0.3, 1.0]),
        ],
        &[(pos, vec![1.0, 0.0, 0.0]), (neg, vec![0.5, 1.0, 0.0])],
    );
    let mut l = label("Fat red cat", &[pos], Mode::Contrast, 0.5);
    l.negative = Some(neg.into());
    hand.library.add_label(l).unwrap();
    assert_eq!(
        tag_set(&mut hand.library),
        auto(&[("fat_red_cat.jpg", "Fat red cat")])
    );
    // The stored score is the positive side's probability.
    let tags = hand.library.tags(&[]).unwrap();
    let image = unit(&[1.0, 0.2, 0.0]);
    let (p, n) = (unit(&[1.0, 0.0, 0.0]), unit(&[0.5, 1.0, 0.0]));
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let want = 1.0 / (1.0 + (-100.0 * (dot(&image, &p) - dot(&image, &n))).exp());
    assert!(
        (tags[0].score.unwrap() - want).abs() < 1e-5,
        "{:?} vs {want}",
        tags[0].score
    );
}

#[test]
fn topk_mode_keeps_the_best_labels_of_the_vocabulary() {
    let mut hand = hand_made(
        &[
            ("dog.jpg", vec![1.0, 0.3, 0.0]),
            ("cat.jpg", vec![0.2, 1.0, 0.1]),
            ("bird.jpg", vec![0.05, 0.0, 1.0]),
            ("blur.jpg", vec![1.0, 1.0, 1.0]),
        ],
        &[
            ("a dog", vec![1.0, 0.0, 0.0]),
            ("a cat", vec![0.0, 1.0, 0.0]),
            ("a bird", vec![0.0, 0.0, 1.0]),
        ],
    );
    for (name, prompt) in [("Dog", "a dog"), ("Cat", "a cat"), ("Bird", "a bird")] {
        hand.library
            .add_label(label(name, &[prompt], Mode::TopK, 0.5))
            .unwrap();
    }
    // The unsure photo's best label has a probability of only a third: nothing passes 0.5.
    assert_eq!(
        tag_set(&mut hand.library),
        auto(&[("dog.jpg", "Dog"), ("cat.jpg", "Cat"), ("bird.jpg", "Bird")])
    );
    for tag in hand.library.tags(&[]).unwrap() {
        let p = tag.score.unwrap();
        assert!(p > 0.5 && p <= 1.0, "{}: probability {p}", tag.label);
    }
}

#[test]
fn topk_with_k_of_two_tags_the_two_best_labels_and_not_the_third() {
    // One photo close to three labels, A best, then B, then C; with the logit scale of 100 every
    // probability passes the low threshold, so only the rank decides.
    let mut hand = hand_made(
        &[("close.jpg", vec![1.0, 0.99, 0.98, 0.0])],
        &[
            ("a", vec![1.0, 0.0, 0.0, 0.0]),
            ("b", vec![0.0, 1.0, 0.0, 0.0]),
            ("c", vec![0.0, 0.0, 1.0, 0.0]),
        ],
    );
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        let l = Label {
            top_k: 2,
            ..label(name, &[&name.to_lowercase()], Mode::TopK, 0.05)
        };
        ids.push(hand.library.add_label(l).unwrap().0);
    }
    assert_eq!(
        tag_set(&mut hand.library),
        auto(&[("close.jpg", "A"), ("close.jpg", "B")])
    );
    // C's probability passes its threshold; its rank (third) is what keeps it off.
    let detail = hand
        .library
        .detail(photo(&hand.library, "close.jpg"))
        .unwrap();
    let c = detail.scores.iter().find(|s| s.name == "C").unwrap();
    assert!(c.score >= 0.05 && !c.passes, "{c:?}");
    // The preview applies the rank as tagging does: with k = 3, C would tag the photo.
    let preview = hand
        .library
        .preview(&Label {
            top_k: 3,
            ..ids[2].clone()
        })
        .unwrap();
    assert_eq!((preview.count, preview.added), (1, 1));
    let preview = hand.library.preview(&ids[2]).unwrap();
    assert_eq!((preview.count, preview.added), (0, 0));
}

#[test]
fn the_preview_and_the_stored_tags_agree_for_every_mode() {
    let mut hand = hand_made(
        &[
            ("a.jpg", vec![1.0, 0.2, 0.1]),
            ("b.jpg", vec![0.7, 0.7, 0.1]),
            ("c.jpg", vec![0.1, 1.0, 0.3]),
            ("d.jpg", vec![0.2, 0.3, 1.0]),
            ("e.jpg", vec![0.9, 0.1, 0.5]),
        ],
        &[
            ("x", vec![1.0, 0.0, 0.0]),
            ("y", vec![0.0, 1.0, 0.0]),
            ("z", vec![0.0, 0.0, 1.0]),
            ("not x", vec![0.2, 1.0, 0.2]),
        ],
    );
    let lib = &mut hand.library;
    let (x, _) = lib
        .add_label(label("X", &["x"], Mode::Threshold, 0.5))
        .unwrap();
    let contrast = Label {
        negative: Some("not x".into()),
        ..label("X or not", &["x"], Mode::Contrast, 0.5)
    };
    let (contrast, _) = lib.add_label(contrast).unwrap();
    let (y, _) = lib
        .add_label(Label {
            top_k: 2,
            ..label("Y", &["y"], Mode::TopK, 0.05)
        })
        .unwrap();
    lib.add_label(label("Z", &["z"], Mode::TopK, 0.05)).unwrap();
    // A person's decision the preview must count as the person made it.
    lib.decide(photo(lib, "a.jpg"), y.id, Decision::Apply)
        .unwrap();
    lib.decide(photo(lib, "e.jpg"), x.id, Decision::Reject)
        .unwrap();
    let edits = [
        Label {
            threshold: 0.8,
            ..x.clone()
        },
        Label {
            threshold: -1.0,
            ..x.clone()
        },
        Label {
            threshold: 0.9,
            ..contrast.clone()
        },
        Label {
            threshold: 0.1,
            ..contrast.clone()
        },
        Label {
            top_k: 1,
            ..y.clone()
        },
        Label {
            top_k: 3,
            threshold: 0.2,
            ..y.clone()
        },
        Label {
            mode: Mode::Threshold,
            threshold: 0.6,
            ..y.clone()
        },
    ];
    for edit in edits {
        let preview = lib.preview(&edit).unwrap();
        let before: BTreeSet<_> = tag_set(lib)
            .into_iter()
            .filter(|t| t.1 == edit.name && t.2 == "auto")
            .collect();
        lib.update_label(edit.clone()).unwrap();
        let after = tag_set(lib);
        let carrying = after
            .iter()
            .filter(|t| t.1 == edit.name && t.2 != "rejected")
            .count();
        let auto_after: BTreeSet<_> = after
            .into_iter()
            .filter(|t| t.1 == edit.name && t.2 == "auto")
            .collect();
        assert_eq!(preview.count, carrying, "{edit:?}");
        assert_eq!(
            preview.added,
            auto_after.difference(&before).count(),
            "{edit:?}"
        );
        assert_eq!(
            preview.removed,
            before.difference(&auto_after).count(),
            "{edit:?}"
        );
    }
}

#[test]
fn decisions_survive_retagging_and_vocabulary_edits() {
    let mut hand = hand_made(
        &[
            ("a.jpg", vec![1.0, 0.0]),
            ("b.jpg", vec![0.9, 0.4]),
            ("c.jpg", vec![0.0, 1.0]),
        ],
        &[("a dog", vec![1.0, 0.0]), ("a hound", vec![0.95, 0.3])],
    );
    let lib = &mut hand.library;
    let (dog, _) = lib
        .add_label(label("Dog", &["a dog"], Mode::Threshold, 0.8))
        .unwrap();
    assert_eq!(tag_set(lib), auto(&[("a.jpg", "Dog"), ("b.jpg", "Dog")]));
    let (a, b, c) = (
        photo(lib, "a.jpg"),
        photo(lib, "b.jpg"),
        photo(lib, "c.jpg"),
    );
    assert_eq!(
        lib.decide(a, dog.id, Decision::Apply).unwrap(),
        Some(TagSource::Accepted)
    );
    assert_eq!(
        lib.decide(b, dog.id, Decision::Reject).unwrap(),
        Some(TagSource::Rejected)
    );
    assert_eq!(
        lib.decide(c, dog.id, Decision::Apply).unwrap(),
        Some(TagSource::Manual)
    );
    let decided = BTreeSet::from([
        ("a.jpg".to_string(), "Dog".to_string(), "accepted"),
        ("b.jpg".to_string(), "Dog".to_string(), "rejected"),
        ("c.jpg".to_string(), "Dog".to_string(), "manual"),
    ]);
    // Tag everything, tag nothing, change the prompts, disable: the decisions stand.
    for edit in [
        Label {
            threshold: -1.0,
            ..dog.clone()
        },
        Label {
            threshold: 1.0,
            ..dog.clone()
        },
        Label {
            prompts: vec!["a hound".into()],
            threshold: 0.5,
            ..dog.clone()
        },
        Label {
            enabled: false,
            ..dog.clone()
        },
    ] {
        let (_, retag) = lib.update_label(edit).unwrap();
        let report = retagged(retag);
        assert_eq!(tag_set(lib), decided, "after {report:?}");
        assert_eq!(report.decided, 3);
    }
    // Clearing a decision hands the pair back to automatic tagging at once.
    lib.update_label(Label {
        threshold: -1.0,
        ..dog.clone()
    })
    .unwrap();
    assert_eq!(
        lib.decide(b, dog.id, Decision::Clear).unwrap(),
        Some(TagSource::Auto)
    );
    assert!(tag_set(lib).contains(&("b.jpg".to_string(), "Dog".to_string(), "auto")));
}

#[test]
fn a_dry_run_reports_without_writing() {
    let mut hand = hand_made(
        &[("a.jpg", vec![1.0, 0.0]), ("b.jpg", vec![0.0, 1.0])],
        &[("a dog", vec![1.0, 0.0])],
    );
    // Stored beside the library, so that only the dry run computes its tags.
    let mut store = Store::open(&hand.db).unwrap();
    store
        .insert_label(&label("Dog", &["a dog"], Mode::Threshold, -1.0))
        .unwrap();
    let report = hand.library.retag(true).unwrap();
    assert_eq!(report.added.get("Dog"), Some(&2));
    assert!(hand.library.tags(&[]).unwrap().is_empty());
}

#[test]
fn editing_one_label_embeds_only_its_prompts_and_never_an_image() {
    let dir = photo_folder(&fixture_photos());
    let engine = Arc::new(Watched::new());
    let mut library = TestLibrary::new(engine.clone());
    let summary = library.index(dir.path());
    assert_eq!(summary.indexed, 10);
    let lib = &mut library.library;
    assert!(
        !lib.tags(&[]).unwrap().is_empty(),
        "indexing tagged nothing"
    );
    let image_calls = engine.batches();
    engine.texts.lock().unwrap().clear();

    // Edit one label's prompts: the library re-tags from stored embeddings.
    let cat = lib.label_named("Animals/Cat").unwrap();
    let (cat, retag) = lib
        .update_label(Label {
            prompts: vec!["a photo of a tabby cat.".into(), "a cat asleep.".into()],
            ..cat
        })
        .unwrap();
    retagged(retag);
    assert_eq!(
        *engine.texts.lock().unwrap(),
        vec![
            "a cat asleep.".to_string(),
            "a photo of a tabby cat.".to_string()
        ]
    );
    assert_eq!(engine.batches(), image_calls, "the image encoder ran again");

    // The automatic tags equal an independent computation from the stored vectors.
    let prompts = engine
        .inner
        .embed_texts(&["a photo of a tabby cat.".into(), "a cat asleep.".into()])
        .unwrap();
    let direction = unit(
        &prompts[0]
            .iter()
            .zip(&prompts[1])
            .map(|(a, b)| a + b)
            .collect::<Vec<_>>(),
    );
    let store = library.store();
    for row in store.embeddings("tiny").unwrap() {
        let cos: f32 = row.vector.iter().zip(&direction).map(|(a, b)| a * b).sum();
        let tagged = store.tag(row.image_id, cat.id).unwrap().is_some();
        assert_eq!(
            tagged,
            cos >= cat.threshold,
            "image {}: cosine {cos}",
            row.image_id
        );
    }
    // Nothing changed: a re-tag embeds nothing.
    engine.texts.lock().unwrap().clear();
    library.library.retag(false).unwrap();
    assert!(engine.texts.lock().unwrap().is_empty());
}

#[test]
fn decisions_survive_reindexing() {
    let dir = photo_folder(&fixture_photos()[..3]);
    let mut library = TestLibrary::tiny();
    library.clear_vocabulary();
    let (l, _) = library
        .library
        .add_label(Label {
            threshold: -1.0,
            ..Label::new("Anything", "tiny")
        })
        .unwrap();
    library.index(dir.path());
    let ids: Vec<i64> = library
        .library
        .files()
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(library.library.tags(&[]).unwrap().len(), 3);
    library
        .library
        .decide(ids[0], l.id, Decision::Reject)
        .unwrap();
    library
        .library
        .decide(ids[1], l.id, Decision::Apply)
        .unwrap();
    // Change every photo's bytes (a metadata edit in another tool) so the next run embeds
    // and tags them again.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"edited");
        let was = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::fs::write(&path, bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(was + std::time::Duration::from_secs(60))
            .unwrap();
    }
    let summary = library.index(dir.path());
    assert_eq!(summary.indexed, 3, "{summary:?}");
    let store = library.store();
    assert_eq!(
        store.tag(ids[0], l.id).unwrap().map(|t| t.0),
        Some(TagSource::Rejected)
    );
    assert_eq!(
        store.tag(ids[1], l.id).unwrap().map(|t| t.0),
        Some(TagSource::Accepted)
    );
    assert_eq!(
        store.tag(ids[2], l.id).unwrap().map(|t| t.0),
        Some(TagSource::Auto)
    );
}

#[test]
fn search_ranks_photos_by_similarity_to_the_text() {
    let dir = photo_folder(&fixture_photos());
    let mut library = TestLibrary::tiny();
    library.index(dir.path());
    let engine = tiny_engine();
    let query = engine
        .embed_texts(&["a photo of a cat.".into()])
        .unwrap()
        .remove(0);
    let results = library.library.search("a photo of a cat.", 3).unwrap();
    assert_eq!(results.len(), 3);
    let mut all: Vec<(i64, f32)> = library
        .store()
        .embeddings("tiny")
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.image_id,
                row.vector.iter().zip(&query).map(|(a, b)| a * b).sum(),
            )
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(
        results.iter().map(|r| r.image_id).collect::<Vec<_>>(),
        all[..3].iter().map(|r| r.0).collect::<Vec<_>>()
    );

    // The cat and its EXIF-rotated copy are near-duplicates; other photos are not.
    let groups = library.library.duplicates(0.999).unwrap();
    let names: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|image| {
                    image
                        .path
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        })
        .collect();
    assert_eq!(
        names,
        vec![vec![
            "chelsea.png".to_string(),
            "chelsea_exif6.jpg".to_string()
        ]]
    );
    let chelsea = library
        .library
        .find_image(&dir.path().join("chelsea.png"))
        .unwrap();
    let like = library.library.similar(&[chelsea.id], 1).unwrap();
    assert_eq!(like[0].path.file_name().unwrap(), "chelsea_exif6.jpg");
}

#[test]
fn command_line_decisions_search_and_duplicates() {
    let photos = photo_folder(&fixture_photos());
    let dir = tempfile::TempDir::new().unwrap();
    let db = dir.path().join("lib.sqlite");
    let db = db.to_str().unwrap();
    let model = crate::support::tiny_clip();
    let run = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend(["--db", db]);
        let output = crate::support::cliptag(&full);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    run(&[
        "index",
        "--model",
        model.to_str().unwrap(),
        photos.path().to_str().unwrap(),
    ]);
    for label in run(&["vocab", "list"])
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
    {
        run(&["vocab", "remove", &label]);
    }
    run(&["vocab", "add", "Everything", "--threshold", "-1"]);
    run(&["vocab", "add", "Nothing", "--threshold", "1"]);
    let cat = photos.path().join("chelsea.png");
    let cat = cat.to_str().unwrap();
    let tags_of = |path: &str| run(&["tags", path]);
    assert!(
        tags_of(cat).contains("\tEverything\t") && tags_of(cat).contains("\tauto\n"),
        "{}",
        tags_of(cat)
    );

    run(&["tag", "reject", cat, "Everything"]);
    run(&["tag", "add", cat, "Nothing"]);
    run(&["retag"]);
    let after = tags_of(cat);
    assert!(
        after.contains("\tEverything\t") && after.contains("\trejected"),
        "{after}"
    );
    // A tag added by hand shows the label's score on the photo as it is now.
    let nothing = after
        .lines()
        .find(|l| l.contains("\tNothing\t"))
        .unwrap_or_default();
    let fields: Vec<&str> = nothing.split('\t').collect();
    assert_eq!(fields.get(3), Some(&"manual"), "{after}");
    assert!(fields[2].parse::<f32>().is_ok(), "{after}");
    // Clearing hands the pair back to automatic tagging at once.
    run(&["tag", "clear", cat, "Everything"]);
    assert!(
        tags_of(cat)
            .lines()
            .any(|l| l.contains("\tEverything\t") && l.ends_with("\tauto")),
        "{}",
        tags_of(cat)
    );

    let found = run(&["search", "--limit", "3", "a photo of a cat."]);
    assert_eq!(found.lines().count(), 3, "{found}");
    assert!(
        found
            .lines()
            .all(|l| l.split('\t').nth(1).unwrap().parse::<f32>().is_ok())
    );
    let groups = run(&["duplicates", "--threshold", "0.999"]);
    assert!(
        groups.contains("chelsea.png\n") && groups.contains("chelsea_exif6.jpg\n"),
        "{groups}"
    );
    let like = run(&["similar", "--limit", "1", cat]);
    assert!(
        like.starts_with(
            &photos
                .path()
                .canonicalize()
                .unwrap()
                .join("chelsea_exif6.jpg")
                .display()
                .to_string()
        ),
        "{like}"
    );
}

/// A decided tag shows the label's score as it is now, in `tags` as in `--explain`, after the
/// label's prompts changed (not the score of the moment of the decision).
#[test]
fn a_decided_tags_score_is_the_current_one() {
    let mut lib = TestLibrary::tiny();
    let photos = photo_folder(&fixture_photos()[..3]);
    lib.index(photos.path());
    lib.clear_vocabulary();
    let (label, _) = lib
        .library
        .add_label(Label {
            threshold: -1.0,
            prompts: vec!["a photo of a rocket.".into()],
            ..Label::new("Thing", "tiny")
        })
        .unwrap();
    let image = lib.store().images().unwrap()[0].id;
    lib.library
        .decide(image, label.id, Decision::Apply)
        .unwrap();
    let before = lib.library.tags(&[]).unwrap();
    let decided = before.iter().find(|t| t.image_id == image).unwrap();
    assert_eq!(decided.source, TagSource::Accepted);
    let old_score = decided.score.unwrap();
    lib.library
        .update_label(Label {
            prompts: vec!["a close-up photo of a cup of coffee.".into()],
            ..label.clone()
        })
        .unwrap();
    let after = lib.library.tags(&[]).unwrap();
    let decided = after.iter().find(|t| t.image_id == image).unwrap();
    let now = lib.library.explain(image, label.id).unwrap().unwrap().score;
    assert_eq!(decided.score, Some(now));
    assert!(
        (now - old_score).abs() > 1e-4,
        "the prompts changed the score"
    );
}
