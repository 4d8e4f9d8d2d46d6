//! What embedding in a reduced precision changes: every photo's embedding against f32's, and the
//! automatic tags of the default vocabulary from an f32 and a reduced-precision index of the
//! same photos (each embeds the prompts in its own precision, as a library does).
//!
//! The model is a full-size ViT-B/32 with random weights unless `--model` names a real one.
//! Random weights tag almost nothing at the default vocabulary's thresholds, so the tags are
//! also compared with every threshold label's threshold moved to where it tags a tenth of the
//! photos in f32: a vocabulary that tags, whatever the weights.

use std::collections::HashSet;
use std::path::Path;

use candle_core::{Device, Tensor};

use super::{BenchArgs, Report, random_engine, tokenizer_path};
use crate::domain::{Label, Mode};
use crate::imaging::Pixels;
use crate::model::matmul::{self, Precision};
use crate::model::{Embedder, Engine, ModelSpec};
use crate::tagging::{EmbeddingMatrix, Logits, TagPlan};

/// Share of photos each threshold label tags in the calibrated comparison.
const CALIBRATED_SHARE: f64 = 0.1;

pub(super) fn precision_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let load = |precision: Precision| -> anyhow::Result<Engine> {
        Ok(matmul::loading_in(precision, || match &args.model {
            Some(model) => {
                Engine::load(&ModelSpec::parse(model), &mut |_, _, _| {}).map(|(engine, _)| engine)
            }
            None => random_engine(&tokenizer_path(args)).map_err(|e| {
                crate::Error::invalid(format!("the random ViT-B/32 could not be built: {e}"))
            }),
        })?)
    };
    let name = args
        .model
        .as_deref()
        .unwrap_or("ViT-B/32 with random weights");
    let full = load(Precision::F32)?;
    let (labels, templates) = default_vocabulary()?;
    println!(
        "{name}; the default vocabulary: {} labels, {} prompts",
        labels.len(),
        TagPlan::texts(&labels, &templates).len()
    );
    let mut sets: Vec<(String, Vec<(String, Pixels)>)> = Vec::new();
    if let Some(dir) = &args.dir {
        sets.push((
            format!("photos in {}", dir.display()),
            photos_in(dir, &full)?,
        ));
    }
    sets.push((
        format!(
            "{} synthetic photos (smooth random fields)",
            args.photos.max(1)
        ),
        synthetic(args.photos, full.preprocess_config().crop_width)?,
    ));
    for precision in [Precision::Bf16, Precision::F16] {
        if !precision.runs() {
            report.line(
                format!("{}: not on this CPU", precision.name()),
                serde_json::json!({"what": "precision_agreement", "precision": precision.name(), "runs": false}),
            );
            continue;
        }
        let reduced = load(precision)?;
        anyhow::ensure!(
            reduced.precision() == precision,
            "{precision:?} was not taken"
        );
        for (set, photos) in &sets {
            println!("{} against f32, {set}:", precision.name());
            compare(
                report,
                (&full, &reduced),
                photos,
                (&labels, &templates),
                set,
                args.dir.is_some() && set.starts_with("photos in"),
            )?;
        }
    }
    Ok(())
}

/// The default vocabulary's labels and templates, as a new library gets them.
fn default_vocabulary() -> anyhow::Result<(Vec<Label>, Vec<String>)> {
    let library = crate::library::Library::with_store(
        crate::store::Store::open_in_memory()?,
        crate::library::LibraryOptions::default(),
    )?;
    let labels: Vec<Label> = library
        .labels()?
        .into_iter()
        .filter(|l| l.enabled)
        .collect();
    Ok((labels, library.templates()?))
}

/// Every photo cliptag reads in `dir` (not below it), preprocessed for `engine`.
fn photos_in(dir: &Path, engine: &Engine) -> anyhow::Result<Vec<(String, Pixels)>> {
    let entries = std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut photos = Vec::new();
    for path in paths {
        // Not every file of a folder is a photo, and a broken one is no sample of arithmetic.
        match crate::imaging::decode_file(&path, None) {
            Ok(decoded) => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                photos.push((
                    name.into_owned(),
                    decoded.preprocess(engine.preprocess_config()),
                ));
            }
            Err(error) => println!("  left out: {error}"),
        }
    }
    anyhow::ensure!(!photos.is_empty(), "no photos in {}", dir.display());
    Ok(photos)
}

/// `count` photo-like inputs: smooth random fields, as preprocessed photos are, not white noise.
fn synthetic(count: usize, size: u32) -> anyhow::Result<Vec<(String, Pixels)>> {
    let size = size as usize;
    let fields = (Tensor::randn(
        0f32,
        1.0,
        (count.max(1), 3, size / 8, size / 8),
        &Device::Cpu,
    )?
    .upsample_nearest2d(size, size)?
        * 0.8)?;
    (0..count.max(1))
        .map(|i| {
            Ok((
                format!("synthetic {i}"),
                Pixels {
                    data: fields.get(i)?.flatten_all()?.to_vec1()?,
                    width: size as u32,
                    height: size as u32,
                },
            ))
        })
        .collect()
}

/// Scores, tags and the plan of one index of `photos`.
struct Indexed {
    plan: TagPlan,
    images: EmbeddingMatrix,
    scores: Vec<f32>,
}

fn index(
    engine: &Engine,
    photos: &[(String, Pixels)],
    (labels, templates): (&[Label], &[String]),
) -> anyhow::Result<Indexed> {
    let pixels: Vec<Pixels> = photos.iter().map(|(_, p)| p.clone()).collect();
    let mut vectors = Vec::new();
    for block in pixels.chunks(32) {
        vectors.extend(engine.embed_images(block)?);
    }
    let texts = TagPlan::texts(labels, templates);
    let embedded = engine.embed_texts(&texts)?;
    let texts = texts.into_iter().zip(embedded).collect();
    let logits = Logits {
        scale: engine.logit_scale(),
        bias: engine.logit_bias(),
    };
    let plan = TagPlan::new(
        labels.to_vec(),
        templates,
        &texts,
        logits,
        engine.model_id(),
    )?;
    let images = EmbeddingMatrix::from_rows(
        vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i as i64, v))
            .collect(),
    )?;
    let scores = plan.scores(&images)?;
    Ok(Indexed {
        plan,
        images,
        scores,
    })
}

/// How widely a label's scores spread across the photos: the interquartile range of each
/// label's column of `scores` (images × `width` labels), the median over labels. A decision
/// changes only where a score lies closer to its threshold than the precision moved it, so the
/// share of changed decisions grows as this shrinks: random weights give photos near-identical
/// embeddings, a trained model does not.
fn label_spread(scores: &[f32], width: usize, photos: usize) -> f32 {
    if width == 0 || photos == 0 {
        return 0.0;
    }
    let mut ranges: Vec<f32> = (0..width)
        .map(|j| {
            let mut column: Vec<f32> = (0..photos).map(|i| scores[i * width + j]).collect();
            column.sort_by(f32::total_cmp);
            column[photos * 3 / 4] - column[photos / 4]
        })
        .collect();
    ranges.sort_by(f32::total_cmp);
    ranges[width / 2]
}

/// Photo × label decisions of `plan` on `images`.
fn decisions(plan: &TagPlan, images: &EmbeddingMatrix) -> anyhow::Result<HashSet<(i64, i64)>> {
    Ok(plan
        .assign(images)?
        .into_iter()
        .map(|a| (a.image_id, a.label_id))
        .collect())
}

/// Every threshold label's threshold moved to where it tags `CALIBRATED_SHARE` of the photos
/// under `scores` (images × labels); the other labels as they are.
fn calibrated(plan: &TagPlan, scores: &[f32], photos: usize) -> Vec<Label> {
    let width = plan.labels.len();
    plan.labels
        .iter()
        .enumerate()
        .map(|(j, prepared)| {
            let mut label = prepared.label.clone();
            if label.mode == Mode::Threshold {
                let mut column: Vec<f32> = (0..photos).map(|i| scores[i * width + j]).collect();
                column.sort_by(|a, b| b.total_cmp(a));
                let passing = ((photos as f64 * CALIBRATED_SHARE).ceil() as usize).clamp(1, photos);
                label.threshold = column[passing - 1];
            }
            label
        })
        .collect()
}

fn compare(
    report: &Report,
    (full, reduced): (&Engine, &Engine),
    photos: &[(String, Pixels)],
    vocabulary: (&[Label], &[String]),
    set: &str,
    each_photo: bool,
) -> anyhow::Result<()> {
    let precision = reduced.precision().name();
    let a = index(full, photos, vocabulary)?;
    let b = index(reduced, photos, vocabulary)?;
    let mut cosines = Vec::with_capacity(photos.len());
    for (i, (name, _)) in photos.iter().enumerate() {
        let (x, y) = (a.images.vector(i as i64)?, b.images.vector(i as i64)?);
        let (Some(x), Some(y)) = (x, y) else {
            anyhow::bail!("no embedding for {name}");
        };
        let cosine: f32 = x.iter().zip(&y).map(|(p, q)| p * q).sum();
        if each_photo {
            report.line(
                format!("  {name}: cosine {cosine:.6}"),
                serde_json::json!({"what": "precision_cosine", "precision": precision, "photo": name, "cosine": cosine}),
            );
        }
        cosines.push(cosine);
    }
    let mut sorted = cosines.clone();
    sorted.sort_by(f32::total_cmp);
    let (lowest, middle) = (sorted[0], sorted[sorted.len() / 2]);
    let mut deltas: Vec<f32> = a
        .scores
        .iter()
        .zip(&b.scores)
        .map(|(x, y)| (x - y).abs())
        .collect();
    deltas.sort_by(f32::total_cmp);
    let largest_delta = deltas.last().copied().unwrap_or(0.0);
    let p99_delta = deltas[(deltas.len() * 99 / 100).min(deltas.len() - 1)];
    let spread = label_spread(&a.scores, a.plan.labels.len(), photos.len());
    report.line(
        format!(
            "  embeddings against f32's: lowest cosine {lowest:.6}, median {middle:.6}; \
             label scores differ by at most {largest_delta:.5} (99th percentile {p99_delta:.5}), \
             where a label's scores spread over {spread:.5} across these photos (the median \
             label's interquartile range)"
        ),
        serde_json::json!({"what": "precision_embeddings", "precision": precision, "set": set, "photos": photos.len(), "lowest_cosine": lowest, "median_cosine": middle, "largest_score_delta": largest_delta, "p99_score_delta": p99_delta, "label_spread": spread}),
    );
    let labels: Vec<Label> = a.plan.labels.iter().map(|l| l.label.clone()).collect();
    let calibrated_labels = calibrated(&a.plan, &a.scores, photos.len());
    for (thresholds, labels) in [
        ("the default thresholds", labels),
        ("thresholds that tag a tenth", calibrated_labels),
    ] {
        let replan = |plan: &TagPlan| -> anyhow::Result<TagPlan> {
            let mut plan = plan.clone();
            for (prepared, label) in plan.labels.iter_mut().zip(&labels) {
                prepared.label = label.clone();
            }
            Ok(plan)
        };
        let (plan_a, plan_b) = (replan(&a.plan)?, replan(&b.plan)?);
        let (tags_a, tags_b) = (
            decisions(&plan_a, &a.images)?,
            decisions(&plan_b, &b.images)?,
        );
        let differing: Vec<&(i64, i64)> = tags_a.symmetric_difference(&tags_b).collect();
        let pairs = photos.len() * labels.len();
        let width = labels.len();
        // How far from its label's threshold the f32 score of each differing decision was.
        let nearest = differing
            .iter()
            .filter_map(|(image, label_id)| {
                let j = plan_a.labels.iter().position(|l| l.label.id == *label_id)?;
                let score = a.scores[*image as usize * width + j];
                Some((score - plan_a.labels[j].label.threshold).abs())
            })
            .fold(0f32, f32::max);
        report.line(
            format!(
                "  tags at {thresholds}: f32 gives {}, {precision} {}; {} of {pairs} photo × label \
                 decisions differ ({:.4} %){}",
                tags_a.len(),
                tags_b.len(),
                differing.len(),
                100.0 * differing.len() as f64 / pairs as f64,
                if differing.is_empty() {
                    String::new()
                } else {
                    format!(", each within {nearest:.5} of its threshold in f32")
                }
            ),
            serde_json::json!({"what": "precision_tags", "precision": precision, "set": set, "thresholds": thresholds, "f32_tags": tags_a.len(), "reduced_tags": tags_b.len(), "decisions": pairs, "differing": differing.len(), "farthest_from_threshold": nearest}),
        );
    }
    Ok(())
}
