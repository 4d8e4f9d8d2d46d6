//! The gallery reader: a thread beside the worker with its own read-only connection to the
//! library, answering which photos a filter shows and the rows on screen. SQLite's write-ahead
//! log lets it read while the worker writes, so the gallery pages through a million photos at
//! scrolling speed whatever the worker is doing.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};

use super::{GalleryAnswer, GalleryRequest, GalleryView, Operation, Outbox, RequestId};
use crate::error::Error;
use crate::library::GalleryReader;

/// Starts the reader on the library at `db` (whose schema the worker has made current).
pub(super) fn spawn(
    db: PathBuf,
    requests: Receiver<GalleryRequest>,
    answers: Sender<GalleryAnswer>,
    outbox: Outbox,
) {
    let failed = outbox.clone();
    let started = std::thread::Builder::new()
        .name("cliptag-gallery".into())
        .spawn(move || {
            let reader = match GalleryReader::open(&db) {
                Ok(reader) => reader,
                Err(error) => {
                    outbox.fail(RequestId(0), Operation::Gallery, &error);
                    return;
                }
            };
            serve(&reader, &requests, &answers, &outbox);
        });
    if let Err(error) = started {
        // The app still works; its gallery stays empty and says why.
        let error = Error::invalid(format!("the gallery's thread could not start: {error}"));
        failed.fail(RequestId(0), Operation::Gallery, &error);
    }
}

/// Answers requests until the app lets go of its end. Requests that queued up while one was
/// answered are taken together: the rows asked for (what is on screen) first, then only the
/// latest view.
fn serve(
    reader: &GalleryReader,
    requests: &Receiver<GalleryRequest>,
    answers: &Sender<GalleryAnswer>,
    outbox: &Outbox,
) {
    while let Ok(first) = requests.recv() {
        let mut view = None;
        let mut rows: Vec<(u64, Vec<i64>)> = Vec::new();
        for request in std::iter::once(first).chain(requests.try_iter()) {
            match request {
                GalleryRequest::View { query, version } => view = Some((query, version)),
                GalleryRequest::Rows { ids, version } => rows.push((version, ids)),
            }
        }
        let answer = |answer: GalleryAnswer| {
            let sent = answers.send(answer).is_ok();
            (outbox.waker)();
            sent
        };
        for (version, ids) in rows {
            let mut seen = HashSet::new();
            let asked: Vec<i64> = ids.into_iter().filter(|id| seen.insert(*id)).collect();
            match reader.entries(&asked) {
                Ok(entries) => {
                    if !answer(GalleryAnswer::Rows {
                        version,
                        asked,
                        entries,
                    }) {
                        return;
                    }
                }
                Err(error) => outbox.fail(RequestId(0), Operation::Gallery, &error),
            }
        }
        if let Some((query, version)) = view {
            match reader.ids(&query) {
                Ok(ids) => {
                    let view = GalleryView {
                        query,
                        version,
                        ids: Arc::from(ids),
                    };
                    if !answer(GalleryAnswer::View(view)) {
                        return;
                    }
                }
                Err(error) => outbox.fail(RequestId(0), Operation::Gallery, &error),
            }
        }
    }
}
