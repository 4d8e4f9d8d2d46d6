//! Learning from decisions, measured where the answer is known: a synthetic library in which a
//! tenth of the photos show a concept, and the label's prompt points only weakly toward it (as a
//! person's own word often does for the model). F1 on the photos nobody decided, for the prompt
//! alone and after 5+5, 10+10 and 25+25 decisions, and the time learning takes.

use std::collections::HashSet;
use std::time::Instant;

use super::library::{library_of, open_without_model};
use super::{BenchArgs, Lcg, Report, tempfile_dir};
use crate::domain::{Decision, Label};
use crate::tagging::scoring::normalize;

const DIM: usize = 512;
/// The share of photos that show the concept.
const PREVALENCE: f64 = 0.1;

fn unit(rng: &mut Lcg) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM).map(|_| rng.normal()).collect();
    normalize(&mut v);
    v
}

fn mix(a: &[f32], wa: f32, b: &[f32], wb: f32) -> Vec<f32> {
    let mut v: Vec<f32> = a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect();
    normalize(&mut v);
    v
}

/// F1 of `tagged` against `truth`, over the photos in `scope`.
fn f1(tagged: &HashSet<i64>, truth: &HashSet<i64>, scope: &[i64]) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0.0, 0.0, 0.0);
    for id in scope {
        match (tagged.contains(id), truth.contains(id)) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            _ => {}
        }
    }
    if tp == 0.0 {
        0.0
    } else {
        2.0 * tp / (2.0 * tp + fp + fn_)
    }
}

pub(super) fn learn_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let n = args.library;
    let mut rng = Lcg(0xC0FFEE);
    let concept = unit(&mut rng);
    // The prompt shares a fifth of its direction with the concept.
    let prompt = mix(&concept, 0.2, &unit(&mut rng), 1.0);
    let mut members = HashSet::new();
    let vectors: Vec<Vec<f32>> = (0..n)
        .map(|i| {
            let noise = unit(&mut rng);
            // `Lcg::next` draws 31 bits.
            if (f64::from(rng.next()) / f64::from(1u32 << 31)) < PREVALENCE {
                members.insert(i as i64 + 1);
                mix(&concept, 0.35, &noise, 1.0)
            } else {
                noise
            }
        })
        .collect();
    let dir = tempfile_dir("cliptag-bench-learn")?;
    let db = dir.join("library.sqlite");
    let model = "synthetic";
    let mut store = library_of(&db, &vectors, model, &[])?;
    let text = "a photo of my concept".to_string();
    store.cache_text_embeddings(model, &[(text.clone(), prompt.clone())])?;
    store.set_logit_scale(100.0)?;
    drop(store);
    let mut library = open_without_model(&db)?;
    // The prompt's best threshold in hindsight, so the zero-shot figure is the most it can do.
    let cosines: Vec<(i64, f32)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                i as i64 + 1,
                v.iter().zip(&prompt).map(|(a, b)| a * b).sum(),
            )
        })
        .collect();
    let all: Vec<i64> = (1..=n as i64).collect();
    let mut best = (0.0, 0.0f32);
    for step in 0..200 {
        let t = -0.1 + step as f32 * 0.002;
        let tagged: HashSet<i64> = cosines
            .iter()
            .filter(|(_, c)| *c >= t)
            .map(|(i, _)| *i)
            .collect();
        let score = f1(&tagged, &members, &all);
        if score > best.0 {
            best = (score, t);
        }
    }
    let (label, _) = library.add_label(Label {
        prompts: vec![text],
        threshold: best.1,
        ..Label::new("Concept", model)
    })?;
    println!(
        "learn: {n} synthetic photos, {} show the concept; the prompt's cosine with the concept {:.2}",
        members.len(),
        concept.iter().zip(&prompt).map(|(a, b)| a * b).sum::<f32>()
    );
    report.line(
        format!(
            "  zero-shot (prompt alone, best threshold in hindsight {:.3}): F1 {:.3}",
            best.1, best.0
        ),
        serde_json::json!({"what": "learn_f1", "decisions": 0, "f1": best.0}),
    );
    let member_ids: Vec<i64> = all
        .iter()
        .copied()
        .filter(|i| members.contains(i))
        .collect();
    let other_ids: Vec<i64> = all
        .iter()
        .copied()
        .filter(|i| !members.contains(i))
        .collect();
    let mut decided: HashSet<i64> = HashSet::new();
    for k in [5usize, 10, 25] {
        // More decisions: the person keeps going through the same photos.
        for id in member_ids.iter().take(k) {
            if decided.insert(*id) {
                library.decide(*id, label.id, Decision::Apply)?;
            }
        }
        for id in other_ids.iter().take(k) {
            if decided.insert(*id) {
                library.decide(*id, label.id, Decision::Reject)?;
            }
        }
        let started = Instant::now();
        let dry = library.learn("Concept", true)?;
        let dry_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        library.learn("Concept", false)?;
        let apply_s = started.elapsed().as_secs_f64();
        let tagged: HashSet<i64> = library
            .tags(&[])?
            .into_iter()
            .filter(|t| t.label_id == label.id && t.source.applies())
            .map(|t| t.image_id)
            .collect();
        let scope: Vec<i64> = all
            .iter()
            .copied()
            .filter(|i| !decided.contains(i))
            .collect();
        let score = f1(&tagged, &members, &scope);
        report.line(
            format!(
                "  after {k}+{k} decisions: F1 {score:.3} on the undecided photos (leave-one-out agreement {}/{}); learning {:.0} ms, applying and re-tagging {:.0} ms",
                dry.agreement_after.correct,
                dry.agreement_after.total,
                dry_s * 1e3,
                apply_s * 1e3
            ),
            serde_json::json!({"what": "learn_f1", "decisions": 2 * k, "f1": score, "learn_seconds": dry_s, "apply_seconds": apply_s}),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
