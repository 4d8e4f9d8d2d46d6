//! Thumbnails: read through the library's [`ThumbnailReader`] (its cache on disk, filled while
//! indexing, else the photo decoded at reduced size) on their own threads; kept as textures in
//! a bounded set, and uploaded to the GPU within a per-frame budget so that scrolling a large
//! library never stalls a frame.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::library::ThumbnailReader;

/// Longest side of a grid thumbnail, in pixels.
pub const GRID_SIZE: u32 = 256;
/// Longest side of the detail panel's preview.
pub const PREVIEW_SIZE: u32 = 1024;
/// Textures kept; older ones are dropped (and reloaded when scrolled back to).
const CACHE_LIMIT: usize = 600;
/// Requests kept waiting; the oldest are dropped first (they were scrolled past).
const QUEUE_LIMIT: usize = 256;
/// Time the UI thread may spend uploading textures in one frame.
const UPLOAD_BUDGET: Duration = Duration::from_millis(4);

type Key = (i64, u32);

enum Slot {
    Loading,
    Ready(egui::TextureHandle),
    Failed,
}

struct Decoded {
    key: Key,
    image: Option<egui::ColorImage>,
}

/// What a loader thread needs for one thumbnail.
struct Request {
    key: Key,
    path: PathBuf,
    /// The photo's content hash, which keys the cache on disk.
    hash: Option<String>,
}

/// Newest-first request stack shared with the loader threads.
#[derive(Default)]
struct Queue {
    requests: Mutex<VecDeque<Request>>,
    ready: Condvar,
    closed: Mutex<bool>,
}

/// The thumbnail cache of the app.
pub struct Thumbnails {
    queue: Arc<Queue>,
    results: Receiver<Decoded>,
    slots: HashMap<Key, Slot>,
    order: VecDeque<Key>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Thumbnails {
    /// Starts `threads` loader threads, reading and filling the thumbnail cache of the library
    /// at `db` (`None`: decoding every photo); `waker` is called when a thumbnail is ready.
    pub fn new(threads: usize, db: Option<PathBuf>, waker: Arc<dyn Fn() + Send + Sync>) -> Self {
        let queue = Arc::new(Queue::default());
        let (tx, results) = unbounded();
        let threads = (0..threads.max(1))
            .map(|i| {
                let (queue, tx, waker) = (queue.clone(), tx.clone(), waker.clone());
                let db = db.clone();
                std::thread::Builder::new()
                    .name(format!("cliptag-thumbnail-{i}"))
                    .spawn(move || {
                        let mut reader = match db {
                            Some(db) => ThumbnailReader::open(&db),
                            None => ThumbnailReader::uncached(),
                        };
                        load_loop(&queue, &tx, &mut reader, &*waker)
                    })
                    .expect("spawning a thumbnail thread")
            })
            .collect();
        Thumbnails {
            queue,
            results,
            slots: HashMap::new(),
            order: VecDeque::new(),
            threads,
        }
    }

    /// The texture of `image_id` at `size`, asking for it if it is not loaded.
    pub fn get(
        &mut self,
        image_id: i64,
        path: &std::path::Path,
        hash: Option<&str>,
        size: u32,
    ) -> Option<&egui::TextureHandle> {
        let key = (image_id, size);
        match self.slots.get(&key) {
            Some(Slot::Ready(_)) => {}
            Some(Slot::Loading) | Some(Slot::Failed) => return None,
            None => {
                self.slots.insert(key, Slot::Loading);
                if let Ok(mut requests) = self.queue.requests.lock() {
                    requests.push_back(Request {
                        key,
                        path: path.to_path_buf(),
                        hash: hash.map(String::from),
                    });
                    while requests.len() > QUEUE_LIMIT {
                        if let Some(dropped) = requests.pop_front() {
                            self.slots.remove(&dropped.key);
                        }
                    }
                }
                self.queue.ready.notify_one();
                return None;
            }
        }
        match self.slots.get(&key) {
            Some(Slot::Ready(texture)) => Some(texture),
            _ => None,
        }
    }

    /// Whether the thumbnail of `image_id` failed to load.
    pub fn failed(&self, image_id: i64, size: u32) -> bool {
        matches!(self.slots.get(&(image_id, size)), Some(Slot::Failed))
    }

    /// Uploads decoded thumbnails, within the frame's time budget; returns whether more wait.
    pub fn upload(&mut self, ctx: &egui::Context) -> bool {
        let started = Instant::now();
        while started.elapsed() < UPLOAD_BUDGET {
            let Ok(decoded) = self.results.try_recv() else {
                return false;
            };
            if !self.slots.contains_key(&decoded.key) {
                continue; // dropped from the queue meanwhile
            }
            let slot = match decoded.image {
                Some(image) => {
                    let name = format!("thumbnail-{}-{}", decoded.key.0, decoded.key.1);
                    Slot::Ready(ctx.load_texture(name, image, egui::TextureOptions::LINEAR))
                }
                None => Slot::Failed,
            };
            self.slots.insert(decoded.key, slot);
            self.order.push_back(decoded.key);
            while self.order.len() > CACHE_LIMIT {
                if let Some(old) = self.order.pop_front() {
                    self.slots.remove(&old);
                }
            }
        }
        !self.results.is_empty()
    }

    /// Forgets a photo's thumbnails (after it changed on disk).
    pub fn forget(&mut self, image_id: i64) {
        self.slots.retain(|(id, _), _| *id != image_id);
    }
}

impl Drop for Thumbnails {
    fn drop(&mut self) {
        if let Ok(mut closed) = self.queue.closed.lock() {
            *closed = true;
        }
        self.queue.ready.notify_all();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn load_loop(
    queue: &Queue,
    results: &Sender<Decoded>,
    reader: &mut ThumbnailReader,
    waker: &(dyn Fn() + Send + Sync),
) {
    loop {
        let next = {
            let Ok(mut requests) = queue.requests.lock() else {
                return;
            };
            loop {
                if queue.closed.lock().map_or(true, |c| *c) {
                    return;
                }
                if let Some(next) = requests.pop_back() {
                    break next;
                }
                requests = match queue
                    .ready
                    .wait_timeout(requests, Duration::from_millis(200))
                {
                    Ok((guard, _)) => guard,
                    Err(_) => return,
                };
            }
        };
        let Request { key, path, hash } = next;
        let image = reader
            .thumbnail(&path, hash.as_deref(), key.1)
            .map(|image| {
                egui::ColorImage::from_rgb(
                    [image.width() as usize, image.height() as usize],
                    image.as_raw(),
                )
            });
        if results.send(Decoded { key, image }).is_err() {
            return;
        }
        waker();
    }
}
