//! Threads that read, hash, decode and preprocess files ahead of the encoder, so the encoder is
//! never idle waiting for JPEG decoding.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::imaging::{self, Pixels};
use crate::library::{RunControl, content_hash};
use crate::model::PreprocessConfig;

/// A file to look at.
#[derive(Debug, Clone)]
pub(super) struct Job {
    pub image_id: i64,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    /// First seen in this run (so it may be a moved file).
    pub new: bool,
    /// The content hash the photo's embedding was made from, when it has one: a file whose
    /// bytes still hash to it is not decoded again.
    pub expect: Option<String>,
}

/// What the pool made of a job.
pub(super) enum Outcome {
    /// Preprocessed and ready for the encoder.
    Ready {
        hash: String,
        pixels: Pixels,
        display: (u32, u32),
        /// The photo's cached thumbnail, made from the pixels decoded anyway.
        thumbnail: Option<Vec<u8>>,
    },
    /// The bytes are the ones its embedding was made from (the file was only touched).
    Same,
    /// Its content is already known elsewhere (a move or an exact copy); nothing was decoded.
    Known { hash: String },
    /// Its bytes changed, and this pool was started without the model's preprocessing (every
    /// job was expected unchanged); it goes to a second pool that has it.
    Deferred,
    /// Unreadable or undecodable.
    Failed {
        hash: Option<String>,
        reason: String,
    },
}

/// A job and its outcome, with the time its parts took on a decode thread.
pub(super) struct Done {
    pub job: Job,
    pub outcome: Outcome,
    pub decode: Duration,
    pub preprocess: Duration,
}

/// How the pool decodes.
#[derive(Clone)]
pub(super) struct Decoding {
    /// The model's preprocessing; `None` when no job is expected to need decoding.
    pub preprocess: Option<Arc<PreprocessConfig>>,
    pub reduced_jpeg: bool,
    /// Whether to make each decoded photo's thumbnail for the cache.
    pub thumbnails: bool,
    /// Content hashes of embedded photos (moves and copies are recognised by them).
    pub known: Arc<HashSet<String>>,
}

/// The decode threads and the queue of their results.
pub(super) struct DecodePool {
    pub results: Receiver<Done>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Decode threads that ran out of photos, their cores lent to the photos still decoding.
    lent: Arc<std::sync::atomic::AtomicUsize>,
}

impl DecodePool {
    /// Starts `threads` threads on `jobs`; at most `queue` results wait for the encoder.
    pub fn start(
        jobs: Vec<Job>,
        threads: usize,
        queue: usize,
        decoding: Decoding,
        control: RunControl,
    ) -> Self {
        let (job_tx, job_rx) = bounded::<Job>(jobs.len().max(1));
        for job in jobs {
            job_tx
                .send(job)
                .expect("the job queue holds every job and its receiver is alive. This is a bug.");
        }
        drop(job_tx);
        let (result_tx, results) = bounded::<Done>(queue.max(1));
        let lent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads = (0..threads.max(1))
            .map(|i| {
                let (job_rx, result_tx) = (job_rx.clone(), result_tx.clone());
                let (decoding, control) = (decoding.clone(), control.clone());
                let lent = lent.clone();
                std::thread::Builder::new()
                    .name(format!("cliptag-decode-{i}"))
                    .spawn(move || {
                        lower_priority();
                        if decode_loop(&job_rx, &result_tx, &decoding, &control) {
                            // Out of photos: the last ones may decode their parts on this core.
                            lent.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                            imaging::lend_spare_threads(1);
                        }
                    })
                    .expect("spawning a decode thread")
            })
            .collect();
        DecodePool {
            results,
            threads,
            lent,
        }
    }

    /// Stops the threads (a thread busy with a file finishes it first).
    pub fn stop(mut self) {
        // Unblocks threads waiting to send; they see the closed queue and return.
        let (_, results) = bounded(1);
        drop(std::mem::replace(&mut self.results, results));
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

impl Drop for DecodePool {
    /// The cores lent by threads that ran out of photos are taken back with the pool.
    fn drop(&mut self) {
        let lent = self.lent.swap(0, std::sync::atomic::Ordering::AcqRel);
        imaging::withdraw_spare_threads(lent);
    }
}

/// How far below the encoder's the decode threads' scheduling priority is, in nice steps.
///
/// The encoder is the slower stage and the decode threads run ahead of it. At the same priority
/// the scheduler shares each core between them, so one of the encoder's threads can be held back
/// while the other waits for it at the end of the batch. Ten steps down, a decode thread gets
/// about a tenth of a core the encoder wants. It still has every moment the encoder leaves, and
/// the whole core once the encoder waits for photos. Measured on the bench's 48 JPEGs, four
/// interleaved rounds each: indexing reached 92-94 % of what the CPU time allows, against 86-99 %
/// at the same priority. Beside another busy program, indexing gives way to it: with one busy
/// loop on the same two cores, 9.0-9.9 photos/s against 10.2-10.4 at the same priority.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const DECODE_NICENESS: i32 = 10;

/// Lowers the calling thread's scheduling priority by [`DECODE_NICENESS`] (on Linux the nice
/// value is the thread's own); where that fails the thread keeps the priority it has.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: getpriority and setpriority only read and change this thread's nice value.
    unsafe {
        let thread = libc::gettid() as libc::id_t;
        let current = libc::getpriority(libc::PRIO_PROCESS, thread);
        libc::setpriority(
            libc::PRIO_PROCESS,
            thread,
            (current + DECODE_NICENESS).min(19),
        );
    }
}

/// Decodes jobs until none is left (returns true) or the run is cancelled or the results are
/// no longer wanted (false).
fn decode_loop(
    jobs: &Receiver<Job>,
    results: &Sender<Done>,
    decoding: &Decoding,
    control: &RunControl,
) -> bool {
    while let Ok(job) = jobs.recv() {
        if control.is_cancelled() {
            return false;
        }
        let (outcome, decode, preprocess) = contained(&job, |job| decode_job(job, decoding));
        let done = Done {
            job,
            outcome,
            decode,
            preprocess,
        };
        if results.send(done).is_err() {
            return false;
        }
    }
    true
}

/// Runs `work` on `job` so that a panic anywhere in a photo's path (decoding, orientation,
/// resizing, the thumbnail, hashing) becomes that photo's failure with a reason naming it, and the
/// thread goes on with the next photo: a photo must never be left waiting without a reason.
fn contained(
    job: &Job,
    work: impl FnOnce(&Job) -> (Outcome, Duration, Duration),
) -> (Outcome, Duration, Duration) {
    let started = Instant::now();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(job))) {
        Ok(done) => done,
        Err(panic) => {
            let outcome = Outcome::Failed {
                hash: None,
                reason: imaging::internal_error_reason(panic.as_ref()),
            };
            (outcome, started.elapsed(), Duration::ZERO)
        }
    }
}

/// Reads, hashes, decodes and preprocesses one file; returns the outcome and the time spent
/// decoding and preprocessing.
fn decode_job(job: &Job, decoding: &Decoding) -> (Outcome, Duration, Duration) {
    let started = Instant::now();
    let bytes = match imaging::read_photo(&job.path) {
        Ok(bytes) => bytes,
        Err(reason) => {
            let outcome = Outcome::Failed { hash: None, reason };
            return (outcome, started.elapsed(), Duration::ZERO);
        }
    };
    let hash = content_hash(&bytes);
    if job.expect.as_deref() == Some(hash.as_str()) {
        return (Outcome::Same, started.elapsed(), Duration::ZERO);
    }
    if decoding.known.contains(&hash) {
        return (Outcome::Known { hash }, started.elapsed(), Duration::ZERO);
    }
    let Some(preprocess) = &decoding.preprocess else {
        return (Outcome::Deferred, started.elapsed(), Duration::ZERO);
    };
    let reduce_to = decoding.reduced_jpeg.then_some(preprocess.min_short_side());
    match imaging::decode_named(&bytes, &job.path, reduce_to) {
        Ok(decoded) => {
            drop(bytes);
            let decode = started.elapsed();
            let display = decoded.display_size;
            let pixels = decoded.preprocess(preprocess);
            let thumbnail = decoding
                .thumbnails
                .then(|| crate::store::thumbnails::make_thumbnail(&decoded.image))
                .flatten();
            let outcome = Outcome::Ready {
                hash,
                pixels,
                display,
                thumbnail,
            };
            (outcome, decode, started.elapsed() - decode)
        }
        Err(reason) => (
            Outcome::Failed {
                hash: Some(hash),
                reason,
            },
            started.elapsed(),
            Duration::ZERO,
        ),
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The nice value of thread `task` of this process ("thread-self" for the calling one), and
    /// its name.
    fn nice_and_name(task: &str) -> Option<(i32, String)> {
        let dir = if task == "thread-self" {
            PathBuf::from("/proc/thread-self")
        } else {
            PathBuf::from("/proc/self/task").join(task)
        };
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let name = std::fs::read_to_string(dir.join("comm")).ok()?;
        // After the name in parentheses: the state (field 3) … the nice value (field 19).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        Some((fields.get(16)?.parse().ok()?, name.trim().to_string()))
    }

    #[test]
    fn a_panic_while_reading_a_photo_becomes_its_failure() {
        let job = Job {
            image_id: 1,
            path: PathBuf::from("/photos/odd.png"),
            size: 0,
            mtime_ns: 0,
            new: true,
            expect: None,
        };
        let (outcome, _, _) = contained(&job, |_| panic!("window outside the image"));
        match outcome {
            Outcome::Failed { reason, .. } => assert_eq!(
                reason,
                "internal error while reading this photo: window outside the image; please report it"
            ),
            _ => panic!("a panicking photo must fail"),
        }
    }

    #[test]
    fn decode_threads_run_below_the_priority_of_the_thread_that_starts_them() {
        let (own, _) = nice_and_name("thread-self").unwrap();
        let jobs = (0..6)
            .map(|i| Job {
                image_id: i,
                path: PathBuf::from(format!("/nonexistent/cliptag-{i}.jpg")),
                size: 0,
                mtime_ns: 0,
                new: true,
                expect: None,
            })
            .collect();
        let decoding = Decoding {
            preprocess: None,
            reduced_jpeg: true,
            thumbnails: false,
            known: Arc::new(HashSet::new()),
        };
        // A queue of one: both threads stay, waiting to hand over their next result.
        let pool = DecodePool::start(jobs, 2, 1, decoding, RunControl::default());
        let want = (own + DECODE_NICENESS).min(19);
        let started = Instant::now();
        let mut seen = Vec::new();
        while started.elapsed() < Duration::from_secs(10) {
            seen = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|task| nice_and_name(task.ok()?.file_name().to_str()?))
                .filter(|(_, name)| name.starts_with("cliptag-decode"))
                .collect();
            if seen.len() >= 2 && seen.iter().all(|(nice, _)| *nice == want) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        pool.stop();
        assert!(seen.len() >= 2, "decode threads seen: {seen:?}");
        assert!(
            seen.iter().all(|(nice, _)| *nice == want),
            "nice {own} here, want {want} on the decode threads: {seen:?}"
        );
        // The starting thread keeps its own.
        assert_eq!(nice_and_name("thread-self").unwrap().0, own);
    }
}
