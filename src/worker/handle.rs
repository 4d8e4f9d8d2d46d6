//! The UI's handle on the worker: commands in, events and the gallery reader's answers out,
//! and the latest progress and snapshot shared as values rather than queued.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::{Command, Event, GalleryAnswer, GalleryRequest, RequestId};
use crate::library::{LibrarySnapshot, Progress, RunControl};

/// The latest value of something the UI shows, replaced rather than queued.
pub(super) struct Latest<T>(Mutex<Option<T>>);

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest(Mutex::new(None))
    }
}

impl<T: Clone> Latest<T> {
    pub(super) fn set(&self, value: Option<T>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = value;
    }

    pub(super) fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    pub(super) fn get(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What the worker shares with the UI as latest values.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) progress: Latest<Progress>,
    pub(super) snapshot: Latest<Arc<LibrarySnapshot>>,
    /// Set when the app closes: the worker stores the person's queued decisions and edits and
    /// drops everything else.
    pub(super) closing: std::sync::atomic::AtomicBool,
    /// Whether the app was told that the worker is gone.
    pub(super) gone_reported: std::sync::atomic::AtomicBool,
}

/// The UI's handle on the worker.
pub struct WorkerHandle {
    /// `None` once shut down.
    pub(super) requests: Option<Sender<(RequestId, Command)>>,
    pub(super) events: Receiver<Event>,
    /// The gallery reader's ends; `None` once shut down.
    pub(super) gallery: Option<Sender<GalleryRequest>>,
    pub(super) gallery_answers: Receiver<GalleryAnswer>,
    pub(super) shared: Arc<Shared>,
    pub(super) control: RunControl,
    pub(super) next_request: AtomicU64,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl WorkerHandle {
    /// Sends a command; its answer will name the returned id. Never blocks: commands come from
    /// a person's actions, a few a second.
    pub fn send(&self, command: Command) -> RequestId {
        let id = RequestId(self.next_request.fetch_add(1, Ordering::Relaxed));
        if let Some(requests) = &self.requests {
            // A worker that is gone has said why in an event already.
            let _ = requests.send((id, command));
        }
        id
    }

    /// The next event, if any. A worker that is gone while the app still runs (it should not
    /// be: its panics are caught) is reported once, as a failure a person sees.
    pub fn try_event(&self) -> Option<Event> {
        match self.events.try_recv() {
            Ok(event) => Some(event),
            Err(crossbeam_channel::TryRecvError::Empty) => None,
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                if self.requests.is_none() || self.shared.gone_reported.swap(true, Ordering::SeqCst)
                {
                    return None;
                }
                Some(Event::Failed {
                    request: RequestId(u64::MAX),
                    failure: super::Failure {
                        operation: super::Operation::Worker,
                        path: None,
                        reason: "the background worker stopped: nothing more can be indexed or \
                                 saved in this window; restart cliptag (what was saved is kept) \
                                 and please report it"
                            .into(),
                        waiting_for_model: false,
                    },
                })
            }
        }
    }

    /// Asks the gallery reader for a view or rows. Never blocks: the app asks at most once a
    /// frame, and the reader takes whatever queued up together.
    pub fn ask_gallery(&self, request: GalleryRequest) {
        if let Some(gallery) = &self.gallery {
            let _ = gallery.send(request);
        }
    }

    /// The gallery reader's next answer, if any.
    pub fn try_gallery(&self) -> Option<GalleryAnswer> {
        self.gallery_answers.try_recv().ok()
    }

    /// The latest library snapshot, if it changed since the last call.
    pub fn take_snapshot(&self) -> Option<Arc<LibrarySnapshot>> {
        self.shared.snapshot.take()
    }

    /// The latest progress of the running index, if one runs.
    pub fn progress(&self) -> Option<Progress> {
        self.shared.progress.get()
    }

    /// The switch of the running index: pause, resume, cancel.
    pub fn control(&self) -> &RunControl {
        &self.control
    }

    /// Stops the worker: the running index is cancelled, the decisions and vocabulary edits
    /// already sent are stored (nothing else queued is done), and the thread is given `within`
    /// to end. A thread still busy then (a model download, a batch in the encoder) is left to end
    /// with the process; what it had not committed is lost, as with a kill, and nothing else.
    /// Returns whether the thread ended in time.
    pub fn shutdown(&mut self, within: Duration) -> bool {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.control.cancel();
        self.requests = None;
        self.gallery = None;
        let Some(thread) = self.thread.take() else {
            return true;
        };
        let deadline = Instant::now() + within;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
            true
        } else {
            false
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(1));
    }
}
