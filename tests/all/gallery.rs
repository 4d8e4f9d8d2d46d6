//! The gallery pages through the library: the core sorts and filters (on a reader connection
//! of its own) and the app holds only the rows near the screen. Every filter is checked against
//! a plain computation over the whole library.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use cliptag::domain::{ImageStatus, Label, TagSource};
use cliptag::library::{GalleryQuery, GalleryReader};
use cliptag::store::{NewImage, Store};

use crate::support::*;

/// A library of 60 photos whose paths sort in another order than their ids: some unreadable,
/// some missing; four labels (two in a group) with automatic tags, acceptances and rejections.
fn mixed_library(db: &std::path::Path) -> Vec<i64> {
    let mut store = Store::open(db).unwrap();
    let vector = vec![0.5f32; 8];
    let mut ids = Vec::new();
    store
        .batch(|batch| {
            for i in 0..60 {
                let path = PathBuf::from(format!("/photos/{:02}.jpg", (i * 37) % 60));
                let image = NewImage {
                    path: &path,
                    size: 1,
                    mtime_ns: 1,
                };
                ids.push(batch.insert_embedded(&image, &format!("h{i}"), "m", &vector)?);
            }
            for &id in ids.iter().filter(|id| *id % 11 == 3) {
                batch.record_error(id, None, "not a photo")?;
            }
            batch.mark_missing(
                &ids.iter()
                    .copied()
                    .filter(|id| *id % 13 == 5)
                    .collect::<Vec<_>>(),
            )?;
            Ok(())
        })
        .unwrap();
    let labels: Vec<i64> = ["Animals/Cat", "Animals/Dog", "Animals", "Beach"]
        .iter()
        .map(|name| store.insert_label(&Label::new(name, "m")).unwrap())
        .collect();
    let mut auto = Vec::new();
    for &id in &ids {
        for (k, &label) in labels.iter().enumerate() {
            if (id as usize * (k + 3)) % 7 < 3 {
                auto.push((id, label, 0.3));
            }
        }
    }
    let generation = store.vocabulary_generation().unwrap().0;
    let basis = cliptag::store::Basis::Part(generation);
    store
        .batch(|batch| batch.replace_auto_tags(&ids, &auto, basis))
        .unwrap();
    for &id in ids.iter().step_by(4) {
        store
            .set_decision(id, labels[0], Some(TagSource::Rejected))
            .unwrap();
    }
    for &id in ids.iter().skip(1).step_by(5) {
        store
            .set_decision(id, labels[3], Some(TagSource::Accepted))
            .unwrap();
    }
    labels
}

/// The photos `query` shows, worked out from every photo and tag.
fn expected(store: &Store, query: &GalleryQuery) -> Vec<i64> {
    let images = store.images().unwrap();
    let mut applied: HashMap<i64, HashSet<i64>> = HashMap::new();
    for (image, label, source) in store.tag_sources().unwrap() {
        if source.applies() {
            applied.entry(image).or_default().insert(label);
        }
    }
    let status: HashMap<i64, ImageStatus> = images.iter().map(|i| (i.id, i.status)).collect();
    let base: Vec<i64> = match &query.within {
        Some(within) => {
            let mut seen = HashSet::new();
            within
                .iter()
                .copied()
                .filter(|id| status.contains_key(id) && seen.insert(*id))
                .collect()
        }
        None => images.iter().map(|i| i.id).collect(), // `images()` is by path
    };
    let none = HashSet::new();
    base.into_iter()
        .filter(|id| {
            let problem = status[id].is_problem();
            if query.problems != problem && (query.problems || status[id] == ImageStatus::Missing) {
                return false;
            }
            let tags = applied.get(id).unwrap_or(&none);
            if query.untagged && !tags.is_empty() {
                return false;
            }
            query.tags.is_empty()
                || if query.any_tag {
                    query.tags.iter().any(|t| tags.contains(t))
                } else {
                    query.tags.iter().all(|t| tags.contains(t))
                }
        })
        .collect()
}

#[test]
fn every_gallery_filter_shows_what_a_plain_computation_over_the_library_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let labels = mixed_library(&db);
    let store = Store::open(&db).unwrap();
    let reader = GalleryReader::open(&db).unwrap();
    let ids: Vec<i64> = store.images().unwrap().iter().map(|i| i.id).collect();
    // A search's results: best first, not by path, with a repeat and a photo since removed.
    let mut within: Vec<i64> = ids.iter().rev().step_by(2).copied().collect();
    within.insert(3, within[0]);
    within.push(10_000);
    let tag_sets: [&[i64]; 5] = [
        &[],
        &[labels[0]],
        &[labels[3]],
        &[labels[0], labels[1]],
        &[labels[1], labels[2], labels[3]],
    ];
    let mut nonempty = 0;
    for tags in tag_sets {
        for any_tag in [false, true] {
            for untagged in [false, true] {
                for problems in [false, true] {
                    for within in [None, Some(within.clone())] {
                        let query = GalleryQuery {
                            tags: tags.to_vec(),
                            any_tag,
                            untagged,
                            problems,
                            within,
                        };
                        let shown = reader.ids(&query).unwrap();
                        assert_eq!(shown, expected(&store, &query), "{query:?}");
                        nonempty += usize::from(!shown.is_empty());
                    }
                }
            }
        }
    }
    // The filters are not all trivially empty or whole.
    assert!(nonempty > 40, "{nonempty}");
    let all = reader.ids(&GalleryQuery::default()).unwrap();
    assert!(all.len() < ids.len() && all.len() > 40);
    let problems = GalleryQuery {
        problems: true,
        ..GalleryQuery::default()
    };
    assert!(!reader.ids(&problems).unwrap().is_empty());
}

#[test]
fn the_snapshot_counts_labels_and_groups_as_the_tags_say() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let labels = mixed_library(&db);
    let store = Store::open(&db).unwrap();
    let mut per_label: HashMap<i64, HashSet<i64>> = HashMap::new();
    for (image, label, source) in store.tag_sources().unwrap() {
        if source.applies() {
            per_label.entry(label).or_default().insert(image);
        }
    }
    let (library, _) = open_with(&db, Arc::new(tiny_engine()));
    let snapshot = library.snapshot(7).unwrap();
    assert_eq!(snapshot.version, 7);
    assert_eq!(snapshot.photos, 60);
    let statuses = store.images().unwrap();
    let count = |f: &dyn Fn(ImageStatus) -> bool| statuses.iter().filter(|i| f(i.status)).count();
    assert_eq!(snapshot.indexed, count(&|s| s == ImageStatus::Ok));
    assert_eq!(snapshot.problems, count(&|s| s.is_problem()));
    assert_eq!(snapshot.problem_files.len(), snapshot.problems);
    for entry in &snapshot.labels {
        let expected = per_label.get(&entry.label.id).map_or(0, |s| s.len());
        assert_eq!(entry.count, expected, "{}", entry.label.name);
    }
    // `animals` counts a photo once whichever of its three labels it has.
    let animals: HashSet<i64> = labels[..3]
        .iter()
        .flat_map(|l| per_label.get(l).into_iter().flatten().copied())
        .collect();
    assert_eq!(snapshot.groups["animals"], animals.len());
    assert!(
        animals.len()
            < labels[..3]
                .iter()
                .map(|l| per_label[l].len())
                .sum::<usize>()
    );
    assert_eq!(snapshot.groups["animals/cat"], per_label[&labels[0]].len());
    assert_eq!(snapshot.groups["beach"], per_label[&labels[3]].len());
}

#[test]
fn the_app_pages_through_a_large_library_holding_only_rows_near_the_screen() {
    use egui_kittest::kittest::Queryable;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lib.sqlite");
    let photos = 3000;
    insert_photos(&mut Store::open(&db).unwrap(), photos, 8);
    let mut harness = crate::app::app_harness(&db, tiny_clip().to_str().unwrap());
    let limit = 200;
    harness.state_mut().gallery.row_limit = limit;
    crate::app::step_until(&mut harness, "the first screen", |h| {
        h.state().gallery.visible().len() == photos && crate::app::has_label(h, "p00000.jpg")
    });
    let first = harness.state().gallery.visible()[0];
    assert!(harness.state().gallery.entry(first).is_some());
    let on_screen = |h: &egui_kittest::Harness<'static, cliptag::app::CliptagApp>| {
        (0..photos)
            .filter(|i| h.query_by_label(&format!("p{i:05}.jpg")).is_some())
            .collect::<Vec<_>>()
    };
    let screen = on_screen(&harness).len();
    assert!(screen > 10, "{screen} photos on the first screen");
    // Scroll down a long way several times, then to the very end.
    let mut last_seen = 0;
    for _ in 0..6 {
        wheel(&harness, -15_000.0);
        crate::app::step_until(&mut harness, "the rows further down", |h| {
            on_screen(h).first().is_some_and(|i| *i > last_seen)
        });
        last_seen = on_screen(&harness)[0];
        let held = harness.state().gallery.rows_held();
        // At most the limit, plus the rows around the screen asked for after trimming to them.
        assert!(held <= limit + 3 * screen, "{held} rows held");
    }
    assert!(
        harness.state().gallery.entry(first).is_none(),
        "the first screen's rows are still held far down the library"
    );
    wheel(&harness, -1.0e7);
    crate::app::step_until(&mut harness, "the last photo", |h| {
        crate::app::has_label(h, &format!("p{:05}.jpg", photos - 1))
    });
}

/// Turns the mouse wheel over the gallery by `points` (negative: down the library).
fn wheel(harness: &egui_kittest::Harness<'static, cliptag::app::CliptagApp>, points: f32) {
    harness.hover_at(egui::pos2(500.0, 500.0));
    harness.event(egui::Event::MouseWheel {
        unit: egui::MouseWheelUnit::Point,
        delta: egui::vec2(0.0, points),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: egui::Modifiers::NONE,
    });
}
