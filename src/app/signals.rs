//! SIGTERM, SIGINT and SIGHUP (a logout, a shutdown, Ctrl+C in the terminal) close the app the
//! way its window's close button does, so the person's queued decisions and edits are stored
//! before the process ends. A second signal ends it at once.

use std::sync::{Arc, Mutex};

/// What a termination signal does while the window is open: ask it to close.
pub type OnSignal = Arc<dyn Fn() + Send + Sync>;

/// Where the open window leaves its close request.
#[derive(Clone, Default)]
pub struct SignalTarget(Arc<Mutex<Option<OnSignal>>>);

impl SignalTarget {
    /// From now on a signal calls `close`.
    pub fn set(&self, close: OnSignal) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(close);
    }

    fn get(&self) -> Option<OnSignal> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Blocks the termination signals in this thread (and every thread it starts after this) and
/// waits for them on a thread of its own. Call before any other thread is started.
#[cfg(unix)]
pub fn watch() -> SignalTarget {
    let target = SignalTarget::default();
    // SAFETY: the set is initialised by sigemptyset before use; the calls only read and change
    // this thread's signal mask.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let waiting = target.clone();
    let spawned = std::thread::Builder::new()
        .name("cliptag-signals".into())
        .spawn(move || {
            let mut asked = false;
            loop {
                let mut signal: libc::c_int = 0;
                // SAFETY: `set` is a valid signal set and `signal` a valid place for the answer.
                if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                    return;
                }
                match waiting.get() {
                    Some(close) if !asked => {
                        asked = true;
                        close();
                    }
                    // No window yet, or asked before and still open: end now, as the signal
                    // would have without cliptag's handling.
                    _ => std::process::exit(128 + signal),
                }
            }
        });
    if spawned.is_err() {
        // Without the waiting thread the signals must not stay blocked.
        // SAFETY: as above.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        }
    }
    target
}

/// Elsewhere the platform's default handling stays.
#[cfg(not(unix))]
pub fn watch() -> SignalTarget {
    SignalTarget::default()
}
