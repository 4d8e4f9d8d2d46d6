//! An oracle for automatic tags: every tag recomputed from the stored embeddings and label
//! definitions by the README's rules ("How tags are computed"), with nothing of cliptag's
//! tagging code, and compared with what the library stores after each step of random sequences
//! of edits, decisions and learning.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use cliptag::domain::{Decision, Label, Mode};
use cliptag::library::{Library, RunControl};
use cliptag::model::{Embedder, Engine};
use cliptag::store::Store;

use crate::support::*;

/// Photos in the library the sequences start from.
const PHOTOS: u32 = 50;
/// Random sequences, each from a fresh copy of that library.
const SEQUENCES: u64 = 200;
/// Steps in each sequence; the store is checked after every one.
const STEPS: usize = 5;
/// Scores this close to a threshold (or rank ties this close) are left out of the comparison:
/// sums in another order may fall on either side.
const EDGE: f32 = 1e-4;

/// A photo and a label.
type Pair = (i64, i64);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f32 {
        (self.next() % 1_000_000) as f32 / 1_000_000.0
    }
}

fn normalized(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The README's rules, from the model's text embeddings and the store's contents.
struct Oracle {
    engine: Engine,
    texts: HashMap<String, Vec<f32>>,
}

impl Oracle {
    fn embed(&mut self, text: &str) -> Vec<f32> {
        if !self.texts.contains_key(text) {
            let v = self
                .engine
                .embed_texts(&[text.to_string()])
                .unwrap()
                .remove(0);
            self.texts.insert(text.to_string(), normalized(&v));
        }
        self.texts[text].clone()
    }

    /// A label's prompts: its own, or each template with its name's last part, in lower case,
    /// where `{}` stands.
    fn prompts(label: &Label, templates: &[String]) -> Vec<String> {
        if !label.prompts.is_empty() {
            return label.prompts.clone();
        }
        let leaf = label.name.rsplit('/').next().unwrap().trim().to_lowercase();
        templates
            .iter()
            .map(|t| {
                if t.contains("{}") {
                    t.replace("{}", &leaf)
                } else if t.contains("{label}") {
                    t.replace("{label}", &leaf)
                } else {
                    format!("{} {leaf}", t.trim_end())
                }
            })
            .collect()
    }

    /// The direction a label's photos are scored against: what it learned under this model,
    /// else the normalised mean of its prompts' embeddings.
    fn direction(&mut self, label: &Label, templates: &[String], model: &str) -> Vec<f32> {
        if let Some(learned) = label.learned.as_ref().filter(|l| l.model == model) {
            return normalized(&learned.direction);
        }
        let prompts = Self::prompts(label, templates);
        let vectors: Vec<Vec<f32>> = prompts.iter().map(|p| self.embed(p)).collect();
        let mut mean = vec![0.0; vectors[0].len()];
        for v in &vectors {
            for (m, x) in mean.iter_mut().zip(v) {
                *m += x;
            }
        }
        normalized(&mean)
    }

    /// The automatic tags the rules give, and the pairs too close to call.
    fn tags(&mut self, store: &Store, model: &str) -> (BTreeSet<Pair>, HashSet<Pair>) {
        let templates = store.templates().unwrap();
        let scale = store.logit_scale().unwrap();
        let labels: Vec<Label> = store
            .labels()
            .unwrap()
            .into_iter()
            .filter(|l| l.enabled)
            .collect();
        let prepared: Vec<(Label, Vec<f32>, Option<Vec<f32>>)> = labels
            .into_iter()
            .map(|l| {
                let direction = self.direction(&l, &templates, model);
                let negative = l.negative.as_deref().map(|n| self.embed(n));
                (l, direction, negative)
            })
            .collect();
        let (mut tags, mut close) = (BTreeSet::new(), HashSet::new());
        for image in store.images().unwrap() {
            if image.status != cliptag::domain::ImageStatus::Ok {
                continue;
            }
            let Some(embedding) = store.embedding(image.id, model).unwrap() else {
                continue;
            };
            let embedding = normalized(&embedding);
            let cosines: Vec<f32> = prepared
                .iter()
                .map(|(_, d, _)| dot(&embedding, d))
                .collect();
            // The softmax over every enabled label, for top-k.
            let top = cosines.iter().copied().fold(f32::MIN, f32::max);
            let exps: Vec<f32> = cosines.iter().map(|c| (scale * (c - top)).exp()).collect();
            let total: f32 = exps.iter().sum();
            for (i, (label, _, negative)) in prepared.iter().enumerate() {
                let pair = (image.id, label.id);
                let (score, tagged) = match label.mode {
                    Mode::Threshold => (cosines[i], cosines[i] >= label.threshold),
                    Mode::Contrast => {
                        let against = dot(&embedding, negative.as_ref().unwrap());
                        let p = 1.0 / (1.0 + (-scale * (cosines[i] - against)).exp());
                        (p, p >= label.threshold)
                    }
                    Mode::TopK => {
                        let better = cosines.iter().filter(|c| **c > cosines[i]).count();
                        if cosines
                            .iter()
                            .enumerate()
                            .any(|(j, c)| j != i && (c - cosines[i]).abs() < EDGE)
                        {
                            close.insert(pair);
                        }
                        let p = exps[i] / total;
                        (p, better < label.top_k as usize && p >= label.threshold)
                    }
                };
                if (score - label.threshold).abs() < EDGE {
                    close.insert(pair);
                }
                if tagged {
                    tags.insert(pair);
                }
            }
        }
        (tags, close)
    }
}

/// The library every sequence starts from: `PHOTOS` photos, a few labels of each mode.
fn base_library(dir: &Path) -> std::path::PathBuf {
    let photos = crate::worker::jpegs(PHOTOS);
    let db = dir.join("base.sqlite");
    let (mut library, _) = open_with(&db, Arc::new(tiny_engine()));
    for label in library.labels().unwrap() {
        library.remove_label(label.id).unwrap();
    }
    library
        .index(
            &[photos.path().to_path_buf()],
            small_batches(),
            RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    drop(library);
    db
}

const WORDS: [&str; 12] = [
    "cat", "dog", "beach", "mountain", "car", "bird", "tree", "city", "food", "snow", "boat",
    "flower",
];

/// A threshold at quantile `q` of the label's scores under the oracle's rules, so that random
/// labels tag some photos and not all.
fn quantile_threshold(oracle: &mut Oracle, store: &Store, label: &Label, q: f32) -> f32 {
    let templates = store.templates().unwrap();
    let direction = oracle.direction(label, &templates, "tiny");
    let mut scores: Vec<f32> = store
        .images()
        .unwrap()
        .iter()
        .filter_map(|i| store.embedding(i.id, "tiny").unwrap())
        .map(|e| dot(&normalized(&e), &direction))
        .collect();
    scores.sort_by(f32::total_cmp);
    scores[((scores.len() - 1) as f32 * q) as usize] + EDGE * 3.0
}

/// One random step; what it did, for the failure message.
fn step(rng: &mut Rng, library: &mut Library, oracle: &mut Oracle, db: &Path) -> String {
    let store = Store::open(db).unwrap();
    let labels = store.labels().unwrap();
    let images: Vec<i64> = store.images().unwrap().iter().map(|i| i.id).collect();
    let pick = |rng: &mut Rng| labels[rng.below(labels.len())].clone();
    match rng.below(10) {
        0 | 1 => {
            let word = WORDS[rng.below(WORDS.len())];
            let mode = [Mode::Threshold, Mode::Contrast, Mode::TopK][rng.below(3)];
            let mut label = Label::new(&format!("{word} {}", rng.below(1000)), "tiny");
            label.mode = mode;
            match mode {
                Mode::Threshold => {
                    label.threshold = quantile_threshold(oracle, &store, &label, rng.unit())
                }
                Mode::Contrast => {
                    label.negative = Some(format!("not a photo of a {word}."));
                    label.threshold = 0.3 + 0.4 * rng.unit();
                }
                Mode::TopK => {
                    label.top_k = 1 + rng.below(3) as u32;
                    label.threshold = 0.05 * rng.unit();
                }
            }
            let said = format!(
                "add {:?} {:?} t={} k={}",
                label.name, mode, label.threshold, label.top_k
            );
            library.add_label(label).unwrap();
            said
        }
        _ if labels.is_empty() => "nothing (no label)".into(),
        2 => {
            let mut label = pick(rng);
            label.threshold = match label.mode {
                Mode::Threshold => quantile_threshold(oracle, &store, &label, rng.unit()),
                Mode::Contrast => 0.3 + 0.4 * rng.unit(),
                Mode::TopK => 0.05 * rng.unit(),
            };
            let said = format!("threshold of {:?} to {}", label.name, label.threshold);
            library.update_label(label).unwrap();
            said
        }
        3 => {
            let mut label = pick(rng);
            label.enabled = !label.enabled;
            let said = format!("{:?} enabled {}", label.name, label.enabled);
            library.update_label(label).unwrap();
            said
        }
        4 => {
            let label = pick(rng);
            library.remove_label(label.id).unwrap();
            format!("remove {:?}", label.name)
        }
        5..=7 => {
            let label = pick(rng);
            let decision = [Decision::Apply, Decision::Reject, Decision::Clear][rng.below(3)];
            let image = images[rng.below(images.len())];
            library.decide(image, label.id, decision).unwrap();
            format!("{decision:?} {:?} on {image}", label.name)
        }
        8 => {
            // Learning needs decisions: a few of each kind first, on a threshold label.
            let Some(label) = labels.iter().find(|l| l.mode == Mode::Threshold).cloned() else {
                return "nothing (no threshold label to learn)".into();
            };
            for decision in [
                Decision::Apply,
                Decision::Apply,
                Decision::Reject,
                Decision::Reject,
            ] {
                let image = images[rng.below(images.len())];
                library.decide(image, label.id, decision).unwrap();
            }
            match library.learn(&label.name, false) {
                Ok(_) => format!("learn {:?}", label.name),
                Err(e) => format!("learn {:?} refused: {e}", label.name),
            }
        }
        _ => {
            let label = pick(rng);
            match library.reset_learning(&label.name) {
                Ok(_) => format!("reset {:?}", label.name),
                Err(e) => format!("reset {:?} refused: {e}", label.name),
            }
        }
    }
}

#[test]
fn stored_tags_equal_the_readme_s_rules_after_every_step_of_random_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_library(dir.path());
    let engine = Arc::new(tiny_engine());
    let mut oracle = Oracle {
        engine: tiny_engine(),
        texts: HashMap::new(),
    };
    let mut compared = 0usize;
    let mut excluded = 0usize;
    let mut steps_said = Vec::new();
    for sequence in 0..SEQUENCES {
        let db = dir.path().join(format!("sequence-{sequence}.sqlite"));
        std::fs::copy(&base, &db).unwrap();
        let (mut library, _) = open_with(&db, engine.clone());
        let mut rng = Rng(sequence * 7919 + 1);
        let mut done = Vec::new();
        for _ in 0..STEPS {
            done.push(step(&mut rng, &mut library, &mut oracle, &db));
            let store = Store::open(&db).unwrap();
            let (wanted, close) = oracle.tags(&store, "tiny");
            let decided = store.decided_pairs().unwrap();
            let stored: BTreeSet<(i64, i64)> = store
                .auto_tags(None)
                .unwrap()
                .into_keys()
                .filter(|p| !close.contains(p))
                .collect();
            let wanted: BTreeSet<(i64, i64)> = wanted
                .into_iter()
                .filter(|p| !decided.contains(p) && !close.contains(p))
                .collect();
            assert!(
                stored.is_disjoint(&decided.iter().copied().collect()),
                "sequence {sequence}: an automatic tag where a person decided; steps: {done:#?}"
            );
            assert_eq!(
                stored.symmetric_difference(&wanted).collect::<Vec<_>>(),
                Vec::<&(i64, i64)>::new(),
                "sequence {sequence}: stored tags differ from the rules; steps: {done:#?}"
            );
            compared += wanted.len();
            excluded += close.len();
        }
        steps_said.extend(done);
        drop(library);
        let _ = std::fs::remove_file(&db);
    }
    let learned = steps_said
        .iter()
        .filter(|s| s.starts_with("learn ") && !s.contains("refused"))
        .count();
    let topk = steps_said.iter().filter(|s| s.contains("TopK")).count();
    eprintln!(
        "{compared} tags compared; {} steps, {learned} learned, {topk} top-k labels added, {excluded} pairs too close to call",
        steps_said.len()
    );
    assert!(compared > 0, "the sequences never tagged anything");
}
