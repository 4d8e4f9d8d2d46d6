//! The app's frame time on a 100k-photo library while indexing runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::library::{synthetic_library, threshold_labels};
use super::photos::photo_folder;
use super::{
    BenchArgs, Report, percentile, random_engine, reset_peak_rss, tempfile_dir, tokenizer_path,
};
use crate::model::Embedder;

pub(super) fn ui_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    use crate::app::{CliptagApp, Settings};
    use crate::worker::{self, Command};

    let photos_dir = photo_folder(args)?;
    let mut photos: Vec<PathBuf> = std::fs::read_dir(&photos_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    photos.sort();
    let dir = tempfile_dir("cliptag-bench-ui")?;
    let db = dir.join("library.sqlite");
    // Hard links give every library entry a path of its own onto a real photo.
    let links = dir.join("library");
    std::fs::create_dir_all(&links)?;
    let entries: Vec<PathBuf> = (0..args.library)
        .map(|i| {
            let link = links.join(format!("photo{i:06}.jpg"));
            std::fs::hard_link(&photos[i % photos.len()], &link).map(|()| link)
        })
        .collect::<std::io::Result<_>>()?;
    let engine: Arc<dyn Embedder> = Arc::new(random_engine(&tokenizer_path(args))?);
    // A library whose entries point at the generated photos, so thumbnails really decode, with
    // the retag part's threshold labels, re-tagged in full (several tags a photo); then the
    // photos folder itself is indexed while the frames are timed.
    {
        let making = Instant::now();
        let mut store =
            synthetic_library(&db, args.library, engine.dim(), engine.model_id(), &entries)?;
        threshold_labels(&mut store, args.labels, engine.dim(), engine.model_id())?;
        drop(store);
        let mut library = crate::library::Library::open(
            &db,
            crate::library::LibraryOptions {
                model: Some(engine.model_id().to_string()),
                loader: Box::new(crate::library::FixedLoader::new(engine.clone())),
            },
        )?;
        let report_retag = library.retag(false)?;
        println!(
            "{} photos × {} labels, {} tags (synthetic embeddings; made and re-tagged in {:.1} s)",
            args.library,
            args.labels,
            report_retag.added.values().sum::<u64>(),
            making.elapsed().as_secs_f64()
        );
        // What each change costs the app while indexing: the worker's snapshot (counts), and
        // the gallery reader's answer for the whole library and for one label.
        let timed = |f: &mut dyn FnMut() -> crate::Result<usize>| -> anyhow::Result<(f64, usize)> {
            let started = Instant::now();
            let n = f()?;
            Ok((started.elapsed().as_secs_f64() * 1e3, n))
        };
        let (snapshot_ms, _) = timed(&mut || library.snapshot(1).map(|s| s.labels.len()))?;
        let reader = crate::library::GalleryReader::open(&db)?;
        let (all_ms, all) = timed(&mut || reader.ids(&Default::default()).map(|ids| ids.len()))?;
        let label = library.labels()?[0].id;
        let one = crate::library::GalleryQuery {
            tags: vec![label],
            ..Default::default()
        };
        let (label_ms, tagged) = timed(&mut || reader.ids(&one).map(|ids| ids.len()))?;
        report.line(
            format!(
                "  a snapshot (counts of every label and group) {snapshot_ms:.0} ms; the gallery's photos: all {all} in {all_ms:.0} ms, one label's {tagged} in {label_ms:.0} ms"
            ),
            serde_json::json!({"what": "snapshot_and_view", "snapshot_ms": snapshot_ms, "all_ms": all_ms, "label_ms": label_ms}),
        );
    }
    let ctx = egui::Context::default();
    let repaint = ctx.clone();
    let waker: worker::Waker = Arc::new(move || repaint.request_repaint());
    let open_app = || {
        CliptagApp::new(
            waker.clone(),
            Settings::default(),
            db.clone(),
            Some(engine.model_id().to_string()),
            Box::new(crate::library::FixedLoader::new(engine.clone())),
        )
    };
    let size = egui::vec2(1280.0, 800.0);
    let frame = |app: &mut CliptagApp, events: Vec<egui::Event>| -> f64 {
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, size)),
            events,
            ..Default::default()
        };
        let started = Instant::now();
        let output = ctx.run_ui(input, |ui| app.ui_root(ui));
        let _ = ctx.tessellate(output.shapes, output.pixels_per_point);
        started.elapsed().as_secs_f64() * 1e3
    };
    // Opening the library twice: the first time every thumbnail is decoded from its photo (and
    // cached), the second time they come from the cache beside the library. The gallery is
    // scrollable once it has the library's photos and draws the rows on screen.
    for open in ["first", "second"] {
        let started = Instant::now();
        let mut app = open_app();
        let mut scrollable = None;
        loop {
            frame(&mut app, Vec::new());
            let (cells, shown) = app.gallery.cells_shown;
            if scrollable.is_none() && app.gallery.visible().len() >= args.library && cells > 0 {
                scrollable = Some(started.elapsed().as_secs_f64());
            }
            if scrollable.is_some() && shown == cells {
                break;
            }
            if started.elapsed() > Duration::from_secs(300) {
                anyhow::bail!("the first screen of thumbnails did not fill in 300 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let seconds = started.elapsed().as_secs_f64();
        let scrollable = scrollable.unwrap_or(seconds);
        report.line(
            format!(
                "opening a {}-photo library the {open} time: gallery scrollable in {scrollable:.2} s, first screen of {} thumbnails shown in {seconds:.2} s",
                args.library, app.gallery.cells_shown.0
            ),
            serde_json::json!({"what": "first_screen", "open": open, "images": args.library, "thumbnails": app.gallery.cells_shown.0, "scrollable_seconds": scrollable, "seconds": seconds}),
        );
        if open == "second" {
            report.line(
                format!(
                    "  the app holds {} photo rows and a snapshot of {} labels",
                    app.gallery.rows_held(),
                    app.snapshot.labels.len()
                ),
                serde_json::json!({"what": "rows_held", "rows": app.gallery.rows_held()}),
            );
        }
    }
    if let Ok(cache) = crate::store::ThumbnailCache::of_library(&db) {
        let (count, bytes) = cache.usage()?;
        report.line(
            format!(
                "thumbnail cache: {count} thumbnails, {:.1} KB each, {:.1} MB per thousand photos",
                bytes as f64 / count.max(1) as f64 / 1e3,
                bytes as f64 / count.max(1) as f64 / 1e3
            ),
            serde_json::json!({"what": "thumbnail_cache", "thumbnails": count, "bytes": bytes}),
        );
    }
    // The earlier openings' reads of the embeddings end on their own threads; then the app's
    // own peak memory is measured from here.
    std::thread::sleep(Duration::from_secs(5));
    reset_peak_rss();
    let mut app = open_app();
    // Wait for the library snapshot, then start indexing.
    let started = Instant::now();
    while app.gallery.visible().len() < args.library && started.elapsed() < Duration::from_secs(120)
    {
        frame(&mut app, Vec::new());
        std::thread::sleep(Duration::from_millis(20));
    }
    app.send(Command::Index {
        roots: vec![photos_dir.clone()],
    });
    let mut times = Vec::new();
    let mut while_indexing = 0;
    let started = Instant::now();
    let frames = 600;
    for i in 0..frames {
        // Scroll through the gallery, down then up, as a person skimming the library would.
        let delta = if (i / 150) % 2 == 0 { -120.0 } else { 120.0 };
        let events = vec![
            egui::Event::PointerMoved(egui::pos2(640.0, 400.0)),
            egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, delta),
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Wheel,
                modifiers: egui::Modifiers::NONE,
            },
        ];
        let ms = frame(&mut app, events);
        if app.link.indexing {
            while_indexing += 1;
            times.push(ms);
        }
        // A 60 Hz display: the rest of the frame is left to the other threads.
        let target = Duration::from_secs_f64((i + 1) as f64 / 60.0);
        if let Some(wait) = target.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    if times.is_empty() {
        anyhow::bail!("indexing was not running while the frames were timed");
    }
    let (med, p99) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
    let max = times.iter().cloned().fold(0.0, f64::max);
    report.line(
        format!(
            "ui frame time with {} photos while indexing ({while_indexing} of {frames} frames): median {med:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
            app.snapshot.photos
        ),
        serde_json::json!({"what": "ui_frame_ms", "images": app.snapshot.photos, "frames": while_indexing, "median": med, "p99": p99, "max": max}),
    );
    if let Some(peak) = super::peak_rss_mib() {
        report.line(
            format!("peak RSS of the app opened, scrolled and indexing: {peak:.0} MiB"),
            serde_json::json!({"what": "app_peak_rss", "mib": peak}),
        );
    }
    drop(app);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
