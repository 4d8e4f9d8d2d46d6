//! An oracle for automatic tags: every tag recomputed from the stored embeddings and label
//! definitions by the README's rules ("How tags are computed"), with nothing of cliptag's
//! tagging code, and compared with what the library stores after each step of random sequences
//! of edits, decisions, learning, swapped photo names and switches between CLIP and SigLIP.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use cliptag::domain::{Decision, Label, Mode};
use cliptag::library::{FixedLoader, Library, LibraryOptions, RunControl};
use cliptag::model::{Embedder, Engine, ModelFiles};
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

/// The README's rules, from the models' text embeddings and the store's contents.
struct Oracle {
    /// Each model by its id, and the id of the one the library scores with now.
    engines: HashMap<String, Arc<Engine>>,
    model: String,
    texts: HashMap<(String, String), Vec<f32>>,
}

impl Oracle {
    fn embed(&mut self, text: &str) -> Vec<f32> {
        let key = (self.model.clone(), text.to_string());
        if !self.texts.contains_key(&key) {
            let engine = &self.engines[&self.model];
            let v = engine.embed_texts(&[text.to_string()]).unwrap().remove(0);
            self.texts.insert(key.clone(), normalized(&v));
        }
        self.texts[&key].clone()
    }

    /// A threshold label's score from its cosine: the cosine itself under CLIP, the label's own
    /// probability `sigmoid(scale · cosine + bias)` under a sigmoid-trained model.
    fn threshold_score(cosine: f32, scale: f32, bias: Option<f32>) -> f32 {
        match bias {
            None => cosine,
            Some(bias) => 1.0 / (1.0 + (-(scale * cosine + bias)).exp()),
        }
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
    fn tags(&mut self, store: &Store) -> (BTreeSet<Pair>, HashSet<Pair>) {
        let model = self.model.clone();
        let model = model.as_str();
        let templates = store.templates().unwrap();
        let scale = store.logit_scale().unwrap();
        let bias = store.logit_bias().unwrap();
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
                    Mode::Threshold => {
                        let score = Self::threshold_score(cosines[i], scale, bias);
                        (score, score >= label.threshold)
                    }
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

/// The library every sequence starts from: the photos in `photos`, indexed by the tiny CLIP,
/// with no labels.
fn base_library(dir: &Path, photos: &Path, clip: Arc<Engine>) -> std::path::PathBuf {
    let db = dir.join("base.sqlite");
    let (mut library, _) = open_with(&db, clip);
    for label in library.labels().unwrap() {
        library.remove_label(label.id).unwrap();
    }
    index(&mut library, photos);
    drop(library);
    db
}

/// Indexes the photo folder (again, after names were swapped, or to switch models).
fn index(library: &mut Library, photos: &Path) {
    let summary = library
        .index(
            &[photos.to_path_buf()],
            small_batches(),
            RunControl::default(),
            &mut |_| {},
        )
        .unwrap();
    assert!(summary.tagging_error.is_none(), "{summary:?}");
}

/// Swaps the names of two photos in `photos` (as a renaming tool does).
fn swap_names(rng: &mut Rng, photos: &Path) -> String {
    let mut names: Vec<_> = std::fs::read_dir(photos)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let (a, b) = (rng.below(names.len()), rng.below(names.len()));
    if a == b {
        return "swap nothing".into();
    }
    let aside = photos.join("swapping.tmp");
    std::fs::rename(&names[a], &aside).unwrap();
    std::fs::rename(&names[b], &names[a]).unwrap();
    std::fs::rename(&aside, &names[b]).unwrap();
    format!(
        "swap {:?} and {:?}",
        names[a].file_name(),
        names[b].file_name()
    )
}

const WORDS: [&str; 12] = [
    "cat", "dog", "beach", "mountain", "car", "bird", "tree", "city", "food", "snow", "boat",
    "flower",
];

/// A threshold at quantile `q` of the label's scores under the oracle's rules, so that random
/// labels tag some photos and not all.
fn quantile_threshold(oracle: &mut Oracle, store: &Store, label: &Label, q: f32) -> f32 {
    let templates = store.templates().unwrap();
    let model = oracle.model.clone();
    let direction = oracle.direction(label, &templates, &model);
    let (scale, bias) = (store.logit_scale().unwrap(), store.logit_bias().unwrap());
    let mut scores: Vec<f32> = store
        .images()
        .unwrap()
        .iter()
        .filter_map(|i| store.embedding(i.id, &model).unwrap())
        .map(|e| Oracle::threshold_score(dot(&normalized(&e), &direction), scale, bias))
        .collect();
    scores.sort_by(f32::total_cmp);
    scores[((scores.len() - 1) as f32 * q) as usize] + EDGE * 3.0
}

/// One random step within one model; what it did, for the failure message.
fn step(
    rng: &mut Rng,
    library: &mut Library,
    oracle: &mut Oracle,
    db: &Path,
    photos: &Path,
) -> String {
    let store = Store::open(db).unwrap();
    let labels = store.labels().unwrap();
    let images: Vec<i64> = store.images().unwrap().iter().map(|i| i.id).collect();
    let pick = |rng: &mut Rng| labels[rng.below(labels.len())].clone();
    match rng.below(11) {
        0 | 1 => {
            let word = WORDS[rng.below(WORDS.len())];
            let mode = [Mode::Threshold, Mode::Contrast, Mode::TopK][rng.below(3)];
            let mut label = Label::new(&format!("{word} {}", rng.below(1000)), &oracle.model);
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
        10 => {
            let said = swap_names(rng, photos);
            index(library, photos);
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
    let photos = crate::worker::jpegs(PHOTOS);
    let clip = Arc::new(tiny_engine());
    let siglip = Arc::new(
        Engine::from_files(
            &ModelFiles::from_dir(&fixtures().join("tiny-siglip")).unwrap(),
            "tiny-siglip".into(),
        )
        .unwrap(),
    );
    let base = base_library(dir.path(), photos.path(), clip.clone());
    let mut oracle = Oracle {
        engines: HashMap::from([
            ("tiny".to_string(), clip.clone()),
            ("tiny-siglip".to_string(), siglip.clone()),
        ]),
        model: "tiny".into(),
        texts: HashMap::new(),
    };
    let (mut compared, mut excluded, mut switches) = (0usize, 0usize, 0usize);
    let mut steps_said = Vec::new();
    for sequence in 0..SEQUENCES {
        let db = dir.path().join(format!("sequence-{sequence}.sqlite"));
        std::fs::copy(&base, &db).unwrap();
        oracle.model = "tiny".into();
        let (mut library, _) = open_with(&db, clip.clone());
        let mut rng = Rng(sequence * 7919 + 1);
        let mut done = Vec::new();
        for _ in 0..STEPS {
            if rng.below(12) == 0 {
                // A switch to the other model: every photo embedded by it, then one re-tag.
                drop(library);
                let to = if oracle.model == "tiny" {
                    "tiny-siglip"
                } else {
                    "tiny"
                };
                oracle.model = to.to_string();
                let engine: Arc<dyn Embedder> = oracle.engines[to].clone();
                // Named, as `--model` names it: the library's own model is not this one.
                library = Library::open(
                    &db,
                    LibraryOptions {
                        model: Some(to.to_string()),
                        loader: Box::new(FixedLoader::new(engine)),
                    },
                )
                .unwrap();
                index(&mut library, photos.path());
                switches += 1;
                done.push(format!("switch to {to}"));
            } else {
                done.push(step(
                    &mut rng,
                    &mut library,
                    &mut oracle,
                    &db,
                    photos.path(),
                ));
            }
            let store = Store::open(&db).unwrap();
            let (wanted, close) = oracle.tags(&store);
            let decided = store.decided_pairs().unwrap();
            let stored: BTreeSet<Pair> = store
                .auto_tags(None)
                .unwrap()
                .into_keys()
                .filter(|p| !close.contains(p))
                .collect();
            let wanted: BTreeSet<Pair> = wanted
                .into_iter()
                .filter(|p| !decided.contains(p) && !close.contains(p))
                .collect();
            assert!(
                stored.is_disjoint(&decided.iter().copied().collect()),
                "sequence {sequence}: an automatic tag where a person decided; steps: {done:#?}"
            );
            assert_eq!(
                stored.symmetric_difference(&wanted).collect::<Vec<_>>(),
                Vec::<&Pair>::new(),
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
    let count = |what: &str| steps_said.iter().filter(|s| s.contains(what)).count();
    eprintln!(
        "{compared} tags compared over {} steps: {learned} labels learned, {} top-k labels added, \
         {} names swapped, {switches} model switches; {excluded} pairs too close to call",
        steps_said.len(),
        count("TopK"),
        count("swap \"") + count("swap Some"),
    );
    assert!(compared > 0, "the sequences never tagged anything");
}
