//! How the worker speaks to the app: events, each followed by a wake-up of the UI.

use std::path::PathBuf;

use crossbeam_channel::Sender;

use super::{Done, Event, Failure, Operation, RequestId, Waker};
use crate::error::Error;

/// The worker's end of the event queue, with the waker that tells the UI to look.
#[derive(Clone)]
pub(super) struct Outbox {
    pub(super) events: Sender<Event>,
    pub(super) waker: Waker,
}

impl Outbox {
    pub(super) fn send(&self, event: Event) {
        let _ = self.events.send(event);
        (self.waker)();
    }

    pub(super) fn done(&self, request: RequestId, done: Done) {
        self.send(Event::Done { request, done });
    }

    pub(super) fn fail(&self, request: RequestId, operation: Operation, error: &Error) {
        let failure = Failure {
            operation,
            path: error.path().map(PathBuf::from),
            reason: error.to_string(),
            waiting_for_model: matches!(error, Error::WaitingForModel { .. }),
        };
        self.send(Event::Failed { request, failure });
    }
}
