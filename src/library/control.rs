//! The one switch a person holds over a running job: pause, resume, cancel. The app flips it
//! from the UI thread; the indexer and its decode threads look at it between files and
//! batches, so a cancel takes effect within one batch without waiting for any message queue.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Paused,
    /// Stop at the next look (the current batch is finished and stored).
    Cancelled,
}

/// A shared handle on a run's state; clones control the same run.
#[derive(Debug, Clone)]
pub struct RunControl {
    inner: Arc<(Mutex<RunState>, Condvar)>,
}

impl Default for RunControl {
    fn default() -> Self {
        RunControl {
            inner: Arc::new((Mutex::new(RunState::Running), Condvar::new())),
        }
    }
}

impl RunControl {
    fn state(&self) -> MutexGuard<'_, RunState> {
        // A thread that panicked while holding the lock left a valid state behind.
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, state: RunState) {
        *self.state() = state;
        self.inner.1.notify_all();
    }

    /// The run's state now.
    pub fn get(&self) -> RunState {
        *self.state()
    }

    /// Holds the run between batches (the worker keeps answering commands meanwhile).
    pub fn pause(&self) {
        let mut state = self.state();
        if *state == RunState::Running {
            *state = RunState::Paused;
        }
    }

    /// Lets a paused run go on.
    pub fn resume(&self) {
        let mut state = self.state();
        if *state == RunState::Paused {
            *state = RunState::Running;
            self.inner.1.notify_all();
        }
    }

    /// Stops the run within one batch; a paused run stops too.
    pub fn cancel(&self) {
        self.set(RunState::Cancelled);
    }

    /// Readies the switch for a new run.
    pub fn reset(&self) {
        self.set(RunState::Running);
    }

    /// Whether the run must stop.
    pub fn is_cancelled(&self) -> bool {
        self.get() == RunState::Cancelled
    }

    /// Whether the run is held.
    pub fn is_paused(&self) -> bool {
        self.get() == RunState::Paused
    }

    /// Waits up to `timeout` for the run to leave the paused state; returns the state then.
    pub fn wait_while_paused(&self, timeout: Duration) -> RunState {
        let guard = self.state();
        let (guard, _) = self
            .inner
            .1
            .wait_timeout_while(guard, timeout, |s| *s == RunState::Paused)
            .unwrap_or_else(|p| p.into_inner());
        *guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_wins_over_pause_and_resume() {
        let control = RunControl::default();
        control.pause();
        assert!(control.is_paused());
        control.cancel();
        control.resume();
        assert!(control.is_cancelled());
        control.reset();
        assert_eq!(control.get(), RunState::Running);
    }

    #[test]
    fn a_paused_waiter_wakes_on_resume() {
        let control = RunControl::default();
        control.pause();
        let other = control.clone();
        // Waiting far longer than the test may take: only the resume's notify ends it early.
        let waiter = std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let state = other.wait_while_paused(Duration::from_secs(3600));
            (state, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(20));
        control.resume();
        let (state, waited) = waiter.join().unwrap();
        assert_eq!(state, RunState::Running);
        assert!(waited < Duration::from_secs(60), "woke after {waited:?}");
    }
}
