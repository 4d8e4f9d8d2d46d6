//! How fast the app's worker stores a person's decisions: keys held down in review send them
//! as fast as frames come, and each must be in the library before the process may end.

use std::path::Path;
use std::time::{Duration, Instant};

use super::library::{NoModel, synthetic_library, threshold_labels};
use super::{BenchArgs, Report, median, tempfile_dir};
use crate::domain::Decision;
use crate::worker::{self, Command, Done, Event, Operation};

/// Decisions sent in the burst.
const BURST: usize = 5_000;
/// Decisions sent one at a time, each after the previous one's acknowledgement.
const ONE_BY_ONE: usize = 300;

pub(super) fn decisions_part(args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let dir = tempfile_dir("cliptag-bench-decisions")?;
    let result = decisions_in(&dir, args, report);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn decisions_in(dir: &Path, args: &BenchArgs, report: &Report) -> anyhow::Result<()> {
    let (dim, model) = (512, "synthetic");
    let db = dir.join("library.sqlite");
    let mut store = synthetic_library(&db, args.library, dim, model, &[])?;
    threshold_labels(&mut store, args.labels, dim, model)?;
    let images: Vec<i64> = store.images()?.iter().map(|i| i.id).collect();
    let labels: Vec<i64> = store.labels()?.iter().map(|l| l.id).collect();
    drop(store);
    anyhow::ensure!(
        images.len() * labels.len() >= BURST + ONE_BY_ONE,
        "the library is too small for {} decisions",
        BURST + ONE_BY_ONE
    );
    println!(
        "decisions on {} images × {} labels (synthetic library)",
        images.len(),
        labels.len()
    );
    // Photo by photo, label by label: as review goes through a filtered gallery.
    let mut pairs = labels
        .iter()
        .flat_map(|l| images.iter().map(move |i| (*i, *l)));
    let mut worker = worker::spawn(db, None, Box::new(NoModel), worker::no_waker());
    let decide = |(image_id, label_id): (i64, i64)| Command::Decide {
        image_id,
        label_id,
        decision: Decision::Reject,
        continues: false,
    };
    let acknowledged = |worker: &worker::WorkerHandle, mut wanted: usize| -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(600);
        while wanted > 0 {
            anyhow::ensure!(Instant::now() < deadline, "the worker stopped answering");
            match worker.try_event() {
                Some(Event::Done {
                    done: Done::Decided { .. },
                    ..
                }) => wanted -= 1,
                Some(Event::Failed { failure, .. })
                    if matches!(failure.operation, Operation::Decide { .. }) =>
                {
                    anyhow::bail!("a decision failed: {}", failure.reason)
                }
                Some(_) => {}
                None => std::thread::sleep(Duration::from_micros(200)),
            }
        }
        Ok(())
    };

    let started = Instant::now();
    for pair in pairs.by_ref().take(BURST) {
        worker.send(decide(pair));
    }
    acknowledged(&worker, BURST)?;
    let burst = started.elapsed().as_secs_f64();
    report.line(
        format!(
            "  {BURST} decisions sent at once: all stored in {burst:.2} s, {:.0} decisions/s",
            BURST as f64 / burst
        ),
        serde_json::json!({"what": "decisions_burst", "decisions": BURST, "seconds": burst, "per_second": BURST as f64 / burst}),
    );

    let mut waits = Vec::with_capacity(ONE_BY_ONE);
    for pair in pairs.by_ref().take(ONE_BY_ONE) {
        let sent = Instant::now();
        worker.send(decide(pair));
        acknowledged(&worker, 1)?;
        waits.push(sent.elapsed().as_secs_f64() * 1e3);
    }
    let total: f64 = waits.iter().sum::<f64>() / 1e3;
    let typical = median(&mut waits);
    report.line(
        format!(
            "  {ONE_BY_ONE} decisions one at a time: median {typical:.1} ms from sending to stored, {:.0} decisions/s",
            ONE_BY_ONE as f64 / total
        ),
        serde_json::json!({"what": "decisions_one_by_one", "decisions": ONE_BY_ONE, "median_ms": typical, "per_second": ONE_BY_ONE as f64 / total}),
    );
    anyhow::ensure!(
        worker.shutdown(Duration::from_secs(30)),
        "the worker did not end"
    );
    Ok(())
}
