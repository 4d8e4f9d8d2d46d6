//! Indexing generated 12 MP photos, re-tagging and searching a synthetic library: through the
//! library core, as a person's own library would be.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{
    BenchArgs, BenchPart, Report, median, random_engine, random_unit_vectors, random_vectors,
    reset_peak_rss, tempfile_dir, tokenizer_path,
};
use crate::domain::Label;
use crate::library::{
    FixedLoader, IndexOptions, Library, LibraryOptions, ModelLoader, Retag, RunControl,
};
use crate::model::{Embedder, ModelIdentity, ModelSpec, PreprocessConfig};
use crate::store::{NewImage, Store};

pub(super) fn index_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    use super::photos::{files_with, heic_folder, photo_folder, raw_folder};
    let dir = photo_folder(args)?;
    let jpegs = files_with(&dir, "jpg")?;
    // Encoding a 12 MP HEIC takes many seconds: a few are enough to time decoding.
    let heic_dir = heic_folder(&dir, &jpegs[..jpegs.len().min(args.photos).min(8)])?;
    let heics = files_with(&heic_dir, "heic")?;
    let raw_dir = raw_folder(&dir, &jpegs[..jpegs.len().min(args.photos).min(8)])?;
    let raws = files_with(&raw_dir, "nef")?;
    let engine: Arc<dyn Embedder> = Arc::new(random_engine(&tokenizer_path(args))?);
    for (format, photos, folder) in [
        ("JPEG", &jpegs, &dir),
        ("HEIC", &heics, &heic_dir),
        ("RAW", &raws, &raw_dir),
    ] {
        describe_folder(format, photos, report);
        let decode_ms = super::decode::decode_times(format, photos, report)?;
        end_to_end(args, format, folder, &engine, Some(decode_ms), report)?;
    }
    Ok(())
}

fn describe_folder(format: &str, photos: &[PathBuf], report: &Report) {
    let bytes: u64 = photos
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let mb = bytes as f64 / photos.len().max(1) as f64 / 1e6;
    report.line(
        format!("{} {format}s, {mb:.1} MB on average", photos.len()),
        serde_json::json!({"what": "folder", "format": format, "photos": photos.len(), "mb_per_photo": mb}),
    );
}

/// Indexing a folder from start to finish through the library core, with a random ViT-B/32.
/// Given the CPU time one photo's decoding takes (`decode_ms`, one thread), it also reports how
/// close indexing comes to what the cores allow: the encoder's CPU time per photo at the
/// indexing batch size is measured first, and the most photos/s the threads can give is their
/// count over the two times' sum.
pub(super) fn end_to_end(
    args: &BenchArgs,
    format: &str,
    dir: &Path,
    engine: &Arc<dyn Embedder>,
    decode_ms: Option<f64>,
    report: &Report,
) -> anyhow::Result<()> {
    let db_dir = tempfile_dir("cliptag-bench-index")?;
    let mut library = Library::open(
        &db_dir.join("library.sqlite"),
        LibraryOptions {
            model: Some("random-vit-b32".into()),
            loader: Box::new(FixedLoader::new(engine.clone())),
        },
    )?;
    let started = Instant::now();
    let labels = library.prepare_vocabulary()?;
    report.line(
        format!(
            "  default vocabulary: {labels} labels' prompts embedded in {:.1} s (once per library)",
            started.elapsed().as_secs_f64()
        ),
        serde_json::json!({"what": "vocabulary", "labels": labels, "seconds": started.elapsed().as_secs_f64()}),
    );
    let defaults = IndexOptions::default();
    let options = IndexOptions {
        batch_size: args.batch_size.unwrap_or(defaults.batch_size),
        decode_threads: args.decode_threads.unwrap_or(defaults.decode_threads),
        reduced_jpeg: true,
        ..defaults.clone()
    };
    let (batch_size, decode_threads) = (options.batch_size, options.decode_threads);
    let encode_ms = match decode_ms {
        Some(_) => Some(super::model::encode_cpu_ms(engine.as_ref(), batch_size)?),
        None => None,
    };
    // The peak from here counts the loaded model and the vocabulary, and indexing's own buffers.
    reset_peak_rss();
    let before = super::rss_mib();
    let summary = library.index(
        &[dir.to_path_buf()],
        options,
        RunControl::default(),
        &mut |_| {},
    )?;
    let t = summary.timings;
    let precision = engine.precision().name();
    let wall = t.wall.as_secs_f64();
    let rate = summary.indexed as f64 / wall;
    report.line(
        format!(
            "  {format} end to end: {} photos in {wall:.1} s = {rate:.2} photos/s (batch {batch_size}, {decode_threads} decode threads, {precision})",
            summary.indexed,
        ),
        serde_json::json!({"what": "index", "format": format, "photos": summary.indexed, "seconds": wall, "images_per_s": rate, "precision": precision}),
    );
    if let (Some(peak), Some(before)) = (super::peak_rss_mib(), before) {
        report.line(
            format!(
                "  {format} peak RSS while indexing: {peak:.0} MiB, of which {before:.0} MiB before it began (the bench's model and its random weights, the vocabulary)"
            ),
            serde_json::json!({"what": "index_peak_rss", "format": format, "mib": peak, "before_mib": before}),
        );
    }
    if let (Some(decode_ms), Some(encode_ms)) = (decode_ms, encode_ms) {
        let threads = candle_core::utils::get_num_threads() as f64;
        let allowed = threads * 1e3 / (decode_ms + encode_ms);
        report.line(
            format!(
                "  {format} CPU time per photo: decode and preprocess {decode_ms:.1} ms (one thread), encode {encode_ms:.1} ms (batch {batch_size}); {threads} threads allow {allowed:.2} photos/s, indexing reached {:.0} % of it",
                100.0 * rate / allowed
            ),
            serde_json::json!({"what": "index_schedule", "format": format, "decode_cpu_ms": decode_ms, "encode_cpu_ms": encode_ms, "allowed_per_s": allowed, "share_of_allowed": rate / allowed}),
        );
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / summary.indexed.max(1) as f64;
    report.line(
        format!(
            "  {format} time per photo: decode {:.1} ms, preprocess {:.1} ms (on the decode threads), encode {:.1} ms, store {:.2} ms, encoder waiting {:.1} ms",
            per(t.decode),
            per(t.preprocess),
            per(t.encode),
            per(t.store),
            per(t.waiting)
        ),
        serde_json::json!({"what": "index_split_ms", "format": format, "decode": per(t.decode), "preprocess": per(t.preprocess), "encode": per(t.encode), "store": per(t.store), "waiting": per(t.waiting)}),
    );
    let _ = std::fs::remove_dir_all(&db_dir);
    Ok(())
}

/// A library of `n` images with random embeddings in a database file.
pub(super) fn synthetic_library(
    path: &Path,
    n: usize,
    dim: usize,
    model: &str,
    files: &[PathBuf],
) -> anyhow::Result<Store> {
    library_of(path, random_unit_vectors(dim, 11).take(n), model, files)
}

/// A library of photos with the given embeddings (photo `i + 1` has the `i`-th).
pub(super) fn library_of<V: AsRef<[f32]>>(
    path: &Path,
    vectors: impl IntoIterator<Item = V>,
    model: &str,
    files: &[PathBuf],
) -> anyhow::Result<Store> {
    let mut store = Store::open(path)?;
    store.batch(|batch| {
        for (i, v) in vectors.into_iter().enumerate() {
            let v = v.as_ref();
            let path = match files.get(i) {
                Some(file) => file.clone(),
                None => PathBuf::from(format!("/library/photo{i:06}.jpg")),
            };
            let image = NewImage {
                path: &path,
                size: 1,
                mtime_ns: 1,
            };
            batch.insert_embedded(&image, &format!("synthetic{i}"), model, v)?;
        }
        Ok(())
    })?;
    store.set_settings(&[
        ("model", model),
        ("model_source", model),
        ("vocabulary_seeded", "1"),
    ])?;
    Ok(store)
}

/// Stores `count` threshold labels for the synthetic library, each with one prompt whose
/// embedding (a random direction) is cached, so no text encoder is needed.
pub(super) fn threshold_labels(
    store: &mut Store,
    count: usize,
    dim: usize,
    model: &str,
) -> anyhow::Result<()> {
    // Random directions in 512 dimensions have cosines of about ±0.044; 0.1 tags ~1 % of pairs,
    // several tags per photo, as a real vocabulary does.
    let directions = random_vectors(count, dim, 5);
    let mut labels = Vec::new();
    let mut cached = Vec::new();
    for (i, direction) in directions.iter().enumerate() {
        let prompt = format!("a photo of thing {i:03}");
        labels.push(Label {
            threshold: 0.1,
            prompts: vec![prompt.clone()],
            ..Label::new(&format!("label {i:03}"), model)
        });
        cached.push((prompt, direction.clone()));
    }
    store.import_vocabulary(None, &labels)?;
    store.cache_text_embeddings(model, &cached)?;
    store.set_logit_scale(100.0)?;
    Ok(())
}

/// The synthetic library at `db`, whose prompts are all cached: it needs no model.
pub(super) fn open_without_model(db: &Path) -> crate::Result<Library> {
    Library::open(
        db,
        LibraryOptions {
            model: None,
            loader: Box::new(NoModel),
        },
    )
}

/// A loader for libraries whose prompts are all cached: asked for a model, it says so.
pub(super) struct NoModel;

impl ModelLoader for NoModel {
    fn identify(&mut self, _: &ModelSpec, _: &mut dyn FnMut(&str)) -> crate::Result<ModelIdentity> {
        Err(crate::Error::invalid(
            "the benchmark's library has no model",
        ))
    }
    fn preprocess(
        &mut self,
        _: &ModelSpec,
        _: &mut dyn FnMut(&str),
    ) -> crate::Result<PreprocessConfig> {
        Err(crate::Error::invalid(
            "the benchmark's library has no model",
        ))
    }
    fn load(&mut self, _: &ModelSpec, _: &mut dyn FnMut(&str)) -> crate::Result<Arc<dyn Embedder>> {
        Err(crate::Error::invalid(
            "the benchmark's library has no model",
        ))
    }
}

/// Re-tagging and searching one synthetic library (the parts asked for).
pub(super) fn library_parts(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let dir = tempfile_dir("cliptag-bench-library")?;
    let result = library_parts_in(&dir, args, report);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn library_parts_in(dir: &Path, args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let dim = 512;
    let model = "synthetic";
    let started = Instant::now();
    let db = dir.join("library.sqlite");
    let mut store = synthetic_library(&db, args.library, dim, model, &[])?;
    threshold_labels(&mut store, args.labels, dim, model)?;
    // The search queries' embeddings are cached too, so no text encoder is needed.
    let queries: Vec<String> = (0..SEARCHES).map(|i| format!("query {i}")).collect();
    let cached: Vec<(String, Vec<f32>)> = queries
        .iter()
        .cloned()
        .zip(random_vectors(SEARCHES, dim, 9))
        .collect();
    store.cache_text_embeddings(model, &cached)?;
    drop(store);
    let mut library = open_without_model(&db)?;
    println!(
        "{} images × {} labels (synthetic unit vectors; library made in {:.1} s)",
        args.library,
        args.labels,
        started.elapsed().as_secs_f64()
    );
    reset_peak_rss();
    if args.parts.contains(&BenchPart::Retag) {
        retag_part(&mut library, args, report)?;
    }
    if args.parts.contains(&BenchPart::Search) {
        search_part(&mut library, &queries, args, report)?;
    }
    // Opened again, as the app is the next day: the embeddings come from the file beside the
    // database.
    drop(library);
    let opening = Instant::now();
    let mut library = open_without_model(&db)?;
    let opened = opening.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    library.search(&queries[0], 100)?;
    let first = started.elapsed().as_secs_f64() * 1e3;
    report.line(
        format!(
            "  library opened again: {opened:.0} ms; its first search {first:.0} ms, embeddings read from {:?}",
            library.embeddings_source()
        ),
        serde_json::json!({"what": "reopen", "open_ms": opened, "first_search_ms": first, "source": format!("{:?}", library.embeddings_source())}),
    );
    // As the app opens it: the embeddings read ahead on their own thread while the person looks
    // at the gallery; the first search after that read finds them in memory.
    drop(library);
    let mut library = open_without_model(&db)?;
    let reading = Instant::now();
    library.preload_embeddings()?;
    while !library.preload_finished() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let read = reading.elapsed().as_secs_f64();
    let started = Instant::now();
    library.search(&queries[1], 100)?;
    let first = started.elapsed().as_secs_f64() * 1e3;
    report.line(
        format!(
            "  opened again with the embeddings read ahead ({read:.2} s on their own thread): the first search after it {first:.0} ms"
        ),
        serde_json::json!({"what": "preloaded", "read_s": read, "first_search_ms": first}),
    );
    if let Some(peak) = super::peak_rss_mib() {
        report.line(
            format!("  peak RSS of this work (the library's making not counted): {peak:.0} MiB"),
            serde_json::json!({"what": "library_peak_rss", "mib": peak}),
        );
    }
    Ok(())
}

/// Text searches timed on the synthetic library.
const SEARCHES: usize = 21;

fn retag_part(library: &mut Library, args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let loading = Instant::now();
    let report_first = library.retag(true)?;
    let load_s = loading.elapsed().as_secs_f64();
    let mut compute = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        library.retag(true)?;
        compute.push(started.elapsed().as_secs_f64());
    }
    let compute = median(&mut compute);
    let tags = report_first.total_added();
    report.line(
        format!("  scores and tags in memory: {:.0} ms ({tags} tags; the first dry run, loading the embeddings from SQLite too: {:.0} ms)", compute * 1e3, load_s * 1e3),
        serde_json::json!({"what": "retag_compute", "seconds": compute, "tags": tags, "load_seconds": load_s}),
    );
    let started = Instant::now();
    library.retag(false)?;
    let first = started.elapsed().as_secs_f64();
    report.line(
        format!(
            "  first re-tag, writing all {tags} tags: {:.0} ms",
            first * 1e3
        ),
        serde_json::json!({"what": "retag_first", "seconds": first}),
    );
    // The everyday case: one label's threshold moved, the difference written.
    let edited = Label {
        threshold: 0.12,
        ..library.label_named("label 000")?
    };
    let started = Instant::now();
    let (_, retag) = library.update_label(edited)?;
    let edit = started.elapsed().as_secs_f64();
    let (removed, compared) = match retag {
        Retag::Done(changes) => (
            changes.total_removed(),
            changes.kept + changes.total_added() + changes.total_removed(),
        ),
        other => anyhow::bail!("re-tagging after the edit did not run: {other:?}"),
    };
    // No label ranks against the vocabulary here, so only the edited label's column is scored
    // and only its tags are compared (a full re-tag compares all of them).
    report.line(
        format!(
            "  re-tag after editing one label's threshold ({} photos scored for it, {compared} tags compared, {removed} removed): {:.0} ms; embeddings read from SQLite {} time(s)",
            args.library,
            edit * 1e3,
            library.matrix_loads()
        ),
        serde_json::json!({"what": "retag_edit", "seconds": edit, "tags_compared": compared, "matrix_loads": library.matrix_loads()}),
    );
    // What the app's worker does once it is idle: the commits copied into the database file.
    let started = Instant::now();
    library.checkpoint()?;
    report.line(
        format!(
            "  the checkpoint the app makes when idle afterwards: {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        ),
        serde_json::json!({"what": "checkpoint", "seconds": started.elapsed().as_secs_f64()}),
    );
    // The slider's case: the same label moved again, its column of scores kept from the first
    // edit (the app's live preview keeps it too), so only the comparison and the writes remain.
    let again = Label {
        threshold: 0.13,
        ..library.label_named("label 000")?
    };
    let started = Instant::now();
    let (_, retag) = library.update_label(again)?;
    let edit_again = started.elapsed().as_secs_f64();
    if !matches!(retag, Retag::Done(_)) {
        anyhow::bail!("re-tagging after the second edit did not run: {retag:?}");
    }
    report.line(
        format!(
            "  the same label's threshold moved again (its scores kept): {:.0} ms",
            edit_again * 1e3
        ),
        serde_json::json!({"what": "retag_edit_again", "seconds": edit_again}),
    );
    // The editor's journey on another label: opening it previews it (its column of scores is
    // computed and kept), dragging the threshold previews again, letting go stores the edit.
    let opened = library.label_named("label 001")?;
    let started = Instant::now();
    library.preview(&opened)?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let dragged = Label {
        threshold: 0.115,
        ..opened
    };
    let started = Instant::now();
    library.preview(&dragged)?;
    let drag_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let (_, retag) = library.update_label(dragged)?;
    let release_ms = started.elapsed().as_secs_f64() * 1e3;
    if !matches!(retag, Retag::Done(_)) {
        anyhow::bail!("re-tagging after letting go did not run: {retag:?}");
    }
    report.line(
        format!(
            "  the label editor on another label: opening it (preview) {open_ms:.0} ms, a preview while dragging {drag_ms:.0} ms, letting go (stored tags) {release_ms:.0} ms"
        ),
        serde_json::json!({"what": "editor_journey", "open_ms": open_ms, "drag_ms": drag_ms, "release_ms": release_ms}),
    );
    // The fast paths' tags against a plain full recomputation, by count.
    let check = library.retag(true)?;
    report.line(
        format!(
            "  a full re-tag after those edits would add {} and remove {} tags (of {} kept)",
            check.total_added(),
            check.total_removed(),
            check.kept
        ),
        serde_json::json!({"what": "retag_check", "added": check.total_added(), "removed": check.total_removed(), "kept": check.kept}),
    );
    Ok(())
}

fn search_part(
    library: &mut Library,
    queries: &[String],
    args: &BenchArgs,
    report: &Report,
) -> anyhow::Result<()> {
    let started = Instant::now();
    library.search(&queries[0], 100)?;
    let first = started.elapsed().as_secs_f64() * 1e3;
    let mut times = Vec::new();
    for q in &queries[1..] {
        let started = Instant::now();
        let found = library.search(q, 100)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(found.len() == 100, "a search found {} photos", found.len());
    }
    let med = median(&mut times);
    let worst = times.iter().cloned().fold(0.0, f64::max);
    report.line(
        format!(
            "  text search over {} photos (top 100, prompt embedding cached): {med:.1} ms median, {worst:.1} ms worst of {} ({first:.0} ms the first, loading the embeddings if no part before did)",
            args.library,
            times.len()
        ),
        serde_json::json!({"what": "search", "images": args.library, "median_ms": med, "max_ms": worst, "first_ms": first}),
    );
    let mut times = Vec::new();
    for i in 0..SEARCHES {
        let example = 1 + (i * 7919 % args.library.max(1)) as i64;
        let started = Instant::now();
        library.similar(&[example], 100)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let med = median(&mut times);
    let worst = times.iter().cloned().fold(0.0, f64::max);
    report.line(
        format!(
            "  more like this (one photo, top 100): {med:.1} ms median, {worst:.1} ms worst of {SEARCHES}"
        ),
        serde_json::json!({"what": "similar", "images": args.library, "median_ms": med, "max_ms": worst}),
    );
    Ok(())
}
