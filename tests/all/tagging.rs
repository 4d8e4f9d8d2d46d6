//! Tagging: each mode tags what it should, vocabulary edits embed only what changed and never
//! touch the image encoder, and a person's decisions survive everything automatic.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use cliptag::imaging::Pixels;
use cliptag::library::index::NoHooks;
use cliptag::library::{IndexOptions, Indexer};
use cliptag::model::{ClipEngine, Embedder, PreprocessConfig};
use cliptag::store::{Store, TagSource, vector_to_blob};
use cliptag::tagging::{self, EmbeddingMatrix, Label, Mode, TagPlan, search, vocabulary_file};

use crate::indexing::{fixture_photos, photo_folder, tiny_engine};

const MODEL: &str = "hand";

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// A library of images with hand-made embeddings.
fn hand_made(images: &[(&str, Vec<f32>)]) -> Store {
    let store = Store::open_in_memory().unwrap();
    for (i, (name, vector)) in images.iter().enumerate() {
        store
            .conn()
            .execute(
                "INSERT INTO images (id, path, size, mtime_ns, status, first_seen) VALUES (?1, ?2, 1, 1, 'ok', 0)",
                rusqlite::params![i as i64 + 1, format!("/photos/{name}")],
            )
            .unwrap();
        store
            .conn()
            .execute(
                "INSERT INTO embeddings (image_id, model, dim, vector) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    i as i64 + 1,
                    MODEL,
                    vector.len() as i64,
                    vector_to_blob(&unit(vector))
                ],
            )
            .unwrap();
    }
    tagging::set_logit_scale(&store, 100.0).unwrap();
    store
}

/// A text encoder that knows a fixed set of prompts and counts what it is asked.
struct FakeText {
    vectors: HashMap<String, Vec<f32>>,
    asked: Vec<String>,
}

impl FakeText {
    fn new(pairs: &[(&str, Vec<f32>)]) -> Self {
        FakeText {
            vectors: pairs
                .iter()
                .map(|(t, v)| (t.to_string(), unit(v)))
                .collect(),
            asked: Vec::new(),
        }
    }

    fn encode(&mut self, texts: &[String]) -> cliptag::Result<Vec<Vec<f32>>> {
        self.asked.extend(texts.iter().cloned());
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
    }
}

fn retag(store: &mut Store, text: &mut FakeText) -> tagging::RetagReport {
    let (plan, _) = TagPlan::prepare(store, MODEL, &mut |t: &[String]| text.encode(t)).unwrap();
    let matrix = EmbeddingMatrix::from_rows(store.embeddings(MODEL).unwrap());
    tagging::retag(store, &plan, &matrix, false).unwrap()
}

/// (photo name, label name, source) of every tag.
fn tag_set(store: &Store) -> BTreeSet<(String, String, &'static str)> {
    store
        .tags()
        .unwrap()
        .into_iter()
        .map(|t| {
            (
                t.path.trim_start_matches("/photos/").to_string(),
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

#[test]
fn threshold_mode_tags_where_the_cosine_reaches_the_threshold() {
    let mut store = hand_made(&[
        ("dog.jpg", vec![1.0, 0.1, 0.0]),
        ("cat.jpg", vec![0.0, 1.0, 0.1]),
        ("both.jpg", vec![1.0, 1.0, 0.0]),
    ]);
    let mut text = FakeText::new(&[
        ("a dog", vec![1.0, 0.0, 0.0]),
        ("a cat", vec![0.0, 1.0, 0.0]),
    ]);
    let dog = store
        .add_label(label("Dog", &["a dog"], Mode::Threshold, 0.6))
        .unwrap();
    store
        .add_label(label("Cat", &["a cat"], Mode::Threshold, 0.6))
        .unwrap();
    retag(&mut store, &mut text);
    assert_eq!(
        tag_set(&store),
        auto(&[
            ("dog.jpg", "Dog"),
            ("both.jpg", "Dog"),
            ("cat.jpg", "Cat"),
            ("both.jpg", "Cat")
        ])
    );
    // A stricter threshold removes tags that no longer match.
    store
        .update_label(Label {
            threshold: 0.9,
            ..store.label(dog.id).unwrap().unwrap()
        })
        .unwrap();
    let report = retag(&mut store, &mut text);
    assert_eq!(report.removed.get("Dog"), Some(&1));
    assert_eq!(
        tag_set(&store),
        auto(&[("dog.jpg", "Dog"), ("cat.jpg", "Cat"), ("both.jpg", "Cat")])
    );
    // -1 tags every photo, 1 none.
    for (threshold, count) in [(-1.0, 3), (1.0, 0)] {
        store
            .update_label(Label {
                threshold,
                ..store.label(dog.id).unwrap().unwrap()
            })
            .unwrap();
        retag(&mut store, &mut text);
        let dogs = tag_set(&store).iter().filter(|t| t.1 == "Dog").count();
        assert_eq!(dogs, count, "threshold {threshold}");
    }
}

#[test]
fn contrast_mode_compares_the_prompt_with_its_negative() {
    // "A photo of a fat red cat." against "Not a photo of a fat red cat.", as in CLIP's demo.
    let pos = "A photo of a fat red cat.";
    let neg = "Not a photo of a fat red cat.";
    let mut store = hand_made(&[
        ("fat_red_cat.jpg", vec![1.0, 0.2, 0.0]),
        ("thin_cat.jpg", vec![0.6, 0.8, 0.0]),
        ("car.jpg", vec![0.0, 0.3, 1.0]),
    ]);
    let mut text = FakeText::new(&[(pos, vec![1.0, 0.0, 0.0]), (neg, vec![0.5, 1.0, 0.0])]);
    let mut l = label("Fat red cat", &[pos], Mode::Contrast, 0.5);
    l.negative = Some(neg.into());
    store.add_label(l).unwrap();
    retag(&mut store, &mut text);
    assert_eq!(tag_set(&store), auto(&[("fat_red_cat.jpg", "Fat red cat")]));
    // The stored score is the positive side's probability.
    let tags = store.tags().unwrap();
    let images = store.embeddings(MODEL).unwrap();
    let (p, n) = (unit(&[1.0, 0.0, 0.0]), unit(&[0.5, 1.0, 0.0]));
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let want = 1.0 / (1.0 + (-100.0 * (dot(&images[0].1, &p) - dot(&images[0].1, &n))).exp());
    assert!(
        (tags[0].score.unwrap() - want).abs() < 1e-5,
        "{:?} vs {want}",
        tags[0].score
    );
}

#[test]
fn topk_mode_keeps_the_best_labels_of_the_vocabulary() {
    let mut store = hand_made(&[
        ("dog.jpg", vec![1.0, 0.3, 0.0]),
        ("cat.jpg", vec![0.2, 1.0, 0.1]),
        ("bird.jpg", vec![0.05, 0.0, 1.0]),
        ("blur.jpg", vec![1.0, 1.0, 1.0]),
    ]);
    let mut text = FakeText::new(&[
        ("a dog", vec![1.0, 0.0, 0.0]),
        ("a cat", vec![0.0, 1.0, 0.0]),
        ("a bird", vec![0.0, 0.0, 1.0]),
    ]);
    for (name, prompt) in [("Dog", "a dog"), ("Cat", "a cat"), ("Bird", "a bird")] {
        store
            .add_label(label(name, &[prompt], Mode::TopK, 0.5))
            .unwrap();
    }
    retag(&mut store, &mut text);
    // The unsure photo's best label has a probability of only a third: nothing passes 0.5.
    assert_eq!(
        tag_set(&store),
        auto(&[("dog.jpg", "Dog"), ("cat.jpg", "Cat"), ("bird.jpg", "Bird")])
    );
    for tag in store.tags().unwrap() {
        let p = tag.score.unwrap();
        assert!(p > 0.5 && p <= 1.0, "{}: probability {p}", tag.label);
    }
}

#[test]
fn decisions_survive_retagging_and_vocabulary_edits() {
    let mut store = hand_made(&[
        ("a.jpg", vec![1.0, 0.0]),
        ("b.jpg", vec![0.9, 0.4]),
        ("c.jpg", vec![0.0, 1.0]),
    ]);
    let mut text = FakeText::new(&[("a dog", vec![1.0, 0.0]), ("a hound", vec![0.95, 0.3])]);
    let dog = store
        .add_label(label("Dog", &["a dog"], Mode::Threshold, 0.8))
        .unwrap();
    retag(&mut store, &mut text);
    assert_eq!(tag_set(&store), auto(&[("a.jpg", "Dog"), ("b.jpg", "Dog")]));
    store
        .set_decision(1, dog.id, Some(TagSource::Accepted))
        .unwrap();
    store
        .set_decision(2, dog.id, Some(TagSource::Rejected))
        .unwrap();
    store
        .set_decision(3, dog.id, Some(TagSource::Manual))
        .unwrap();
    let decided = BTreeSet::from([
        ("a.jpg".to_string(), "Dog".to_string(), "accepted"),
        ("b.jpg".to_string(), "Dog".to_string(), "rejected"),
        ("c.jpg".to_string(), "Dog".to_string(), "manual"),
    ]);
    // Tag everything, tag nothing, change the prompts: the decisions stand.
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
        store.update_label(edit).unwrap();
        let report = retag(&mut store, &mut text);
        assert_eq!(tag_set(&store), decided, "after {report:?}");
        assert_eq!(report.decided, 3);
    }
    // Clearing a decision hands the pair back to automatic tagging.
    store
        .update_label(Label {
            threshold: -1.0,
            ..dog.clone()
        })
        .unwrap();
    store.set_decision(2, dog.id, None).unwrap();
    retag(&mut store, &mut text);
    assert!(tag_set(&store).contains(&("b.jpg".to_string(), "Dog".to_string(), "auto")));
}

#[test]
fn a_dry_run_reports_without_writing() {
    let mut store = hand_made(&[("a.jpg", vec![1.0, 0.0]), ("b.jpg", vec![0.0, 1.0])]);
    let mut text = FakeText::new(&[("a dog", vec![1.0, 0.0])]);
    store
        .add_label(label("Dog", &["a dog"], Mode::Threshold, -1.0))
        .unwrap();
    let (plan, _) =
        TagPlan::prepare(&mut store, MODEL, &mut |t: &[String]| text.encode(t)).unwrap();
    let matrix = EmbeddingMatrix::from_rows(store.embeddings(MODEL).unwrap());
    let report = tagging::retag(&mut store, &plan, &matrix, true).unwrap();
    assert_eq!(report.added.get("Dog"), Some(&2));
    assert!(store.tags().unwrap().is_empty());
}

/// The tiny model behind a counter of everything asked of it.
struct Counting {
    inner: ClipEngine,
    image_calls: Mutex<usize>,
    texts: Mutex<Vec<String>>,
}

impl Embedder for Counting {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn preprocess_config(&self) -> &PreprocessConfig {
        self.inner.preprocess_config()
    }
    fn logit_scale(&self) -> f32 {
        self.inner.logit_scale()
    }
    fn embed_images(&self, images: &[Pixels]) -> cliptag::Result<Vec<Vec<f32>>> {
        *self.image_calls.lock().unwrap() += 1;
        self.inner.embed_images(images)
    }
    fn embed_texts(&self, texts: &[String]) -> cliptag::Result<Vec<Vec<f32>>> {
        self.texts.lock().unwrap().extend(texts.iter().cloned());
        self.inner.embed_texts(texts)
    }
}

#[test]
fn editing_one_label_embeds_only_its_prompts_and_never_an_image() {
    let dir = photo_folder(&fixture_photos());
    let engine = Counting {
        inner: tiny_engine(),
        image_calls: Mutex::new(0),
        texts: Mutex::new(Vec::new()),
    };
    let mut store = Store::open_in_memory().unwrap();
    vocabulary_file::seed_default(&mut store, engine.model_id()).unwrap();
    tagging::set_logit_scale(&store, engine.logit_scale()).unwrap();
    let labels = store.labels().unwrap().len();
    let mut encode = |t: &[String]| engine.embed_texts(t);
    let (plan, stats) = TagPlan::prepare(&mut store, engine.model_id(), &mut encode).unwrap();
    assert_eq!(plan.labels.len(), labels);
    assert_eq!(stats.cached, 0);
    let mut indexer = Indexer {
        store: &mut store,
        embedder: &engine,
        options: IndexOptions::default(),
        cancel: Default::default(),
        plan: Some(plan),
    };
    let summary = indexer
        .run(&[dir.path().to_path_buf()], &mut NoHooks)
        .unwrap();
    assert_eq!(summary.indexed, 10);
    assert!(!store.tags().unwrap().is_empty(), "indexing tagged nothing");
    let image_calls = *engine.image_calls.lock().unwrap();
    engine.texts.lock().unwrap().clear();

    // Edit one label's prompts, then re-tag from stored embeddings.
    let cat = store.label_by_name("Animals/Cat").unwrap().unwrap();
    store
        .update_label(Label {
            prompts: vec!["a photo of a tabby cat.".into(), "a cat asleep.".into()],
            ..cat
        })
        .unwrap();
    let (plan, stats) = TagPlan::prepare(&mut store, engine.model_id(), &mut encode).unwrap();
    assert_eq!(
        *engine.texts.lock().unwrap(),
        vec![
            "a cat asleep.".to_string(),
            "a photo of a tabby cat.".to_string()
        ]
    );
    assert_eq!(stats.embedded, 2);
    let matrix = EmbeddingMatrix::from_rows(store.embeddings(engine.model_id()).unwrap());
    tagging::retag(&mut store, &plan, &matrix, false).unwrap();
    assert_eq!(
        *engine.image_calls.lock().unwrap(),
        image_calls,
        "the image encoder ran again"
    );

    // The automatic tags equal an independent computation from the stored vectors.
    let cat = store.label_by_name("Animals/Cat").unwrap().unwrap();
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
    for (image_id, vector) in store.embeddings(engine.model_id()).unwrap() {
        let cos: f32 = vector.iter().zip(&direction).map(|(a, b)| a * b).sum();
        let tagged = store.tag(image_id, cat.id).unwrap().is_some();
        assert_eq!(
            tagged,
            cos >= cat.threshold,
            "image {image_id}: cosine {cos}"
        );
    }
    // Nothing changed: a second prepare embeds nothing.
    engine.texts.lock().unwrap().clear();
    let (_, stats) = TagPlan::prepare(&mut store, engine.model_id(), &mut encode).unwrap();
    assert_eq!(stats.embedded, 0);
    assert!(engine.texts.lock().unwrap().is_empty());
}

#[test]
fn decisions_survive_reindexing() {
    let dir = photo_folder(&fixture_photos()[..3]);
    let engine = tiny_engine();
    let mut store = Store::open_in_memory().unwrap();
    let l = store
        .add_label(Label {
            threshold: -1.0,
            ..Label::new("Anything", "tiny")
        })
        .unwrap();
    tagging::set_logit_scale(&store, engine.logit_scale()).unwrap();
    let run = |store: &mut Store| {
        let mut encode = |t: &[String]| engine.embed_texts(t);
        let (plan, _) = TagPlan::prepare(store, "tiny", &mut encode).unwrap();
        let mut indexer = Indexer {
            store,
            embedder: &engine,
            options: IndexOptions::default(),
            cancel: Default::default(),
            plan: Some(plan),
        };
        indexer
            .run(&[dir.path().to_path_buf()], &mut NoHooks)
            .unwrap()
    };
    run(&mut store);
    let ids: Vec<i64> = store.images().unwrap().iter().map(|i| i.id).collect();
    assert_eq!(store.tags().unwrap().len(), 3);
    store
        .set_decision(ids[0], l.id, Some(TagSource::Rejected))
        .unwrap();
    store
        .set_decision(ids[1], l.id, Some(TagSource::Accepted))
        .unwrap();
    // Touch every photo so that the next run embeds and tags them again.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        std::fs::write(&path, bytes).unwrap();
    }
    let summary = run(&mut store);
    assert_eq!(summary.indexed + summary.unchanged, 3, "{summary:?}");
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
    let engine = tiny_engine();
    let mut store = Store::open_in_memory().unwrap();
    crate::indexing::index(&mut store, &engine, dir.path());
    let matrix = EmbeddingMatrix::from_rows(store.embeddings("tiny").unwrap());
    let query = engine
        .embed_texts(&["a photo of a cat.".into()])
        .unwrap()
        .remove(0);
    let results = search::nearest(&matrix, &query, 3).unwrap();
    assert_eq!(results.len(), 3);
    let mut all: Vec<(i64, f32)> = matrix
        .ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            (
                *id,
                matrix.row(i).iter().zip(&query).map(|(a, b)| a * b).sum(),
            )
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(
        results.iter().map(|r| r.0).collect::<Vec<_>>(),
        all[..3].iter().map(|r| r.0).collect::<Vec<_>>()
    );

    // The cat and its EXIF-rotated copy are near-duplicates; other photos are not.
    let groups = search::near_duplicates(&matrix, 0.999).unwrap();
    let names: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|id| {
                    store
                        .image(*id)
                        .unwrap()
                        .unwrap()
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
    let chelsea = store
        .image_by_path(&dir.path().canonicalize().unwrap().join("chelsea.png"))
        .unwrap()
        .unwrap();
    let like = search::more_like(&matrix, &[chelsea.id], 1).unwrap();
    assert_eq!(
        store
            .image(like[0].0)
            .unwrap()
            .unwrap()
            .path
            .file_name()
            .unwrap(),
        "chelsea_exif6.jpg"
    );
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
    assert!(after.contains("\tNothing\t\tmanual"), "{after}");
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
