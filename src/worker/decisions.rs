//! The worker's two ways of taking what arrives: decisions, stored many at a time, and any
//! command, run so that a bug in it fails that command and not the worker.

use super::{
    Command, Done, Error, MAX_DECISIONS_AT_ONCE, MAX_DETAILS_AFTER_DECISIONS, Operation, RequestId,
    Worker,
};

use crate::library::Direction;

impl Worker {
    /// Runs `work` so that a panic in it (a bug in cliptag) fails the request it was doing with
    /// a reason a person can report, and the worker goes on with the same library: what was
    /// committed stays, a transaction in flight is rolled back, and everything prepared in
    /// memory (the tagging plan, the embeddings) is made again from the store. A running index
    /// that panicked is ended, reported as failed with its folders.
    pub(super) fn contained(
        &mut self,
        request: RequestId,
        operation: Operation,
        work: impl FnOnce(&mut Worker),
    ) {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(self)));
        let Err(panic) = caught else {
            return;
        };
        let error = Error::invalid(format!(
            "internal error in cliptag ({}); nothing you decided is lost; please report it",
            crate::error::panic_message(panic.as_ref())
        ));
        // A running index that panicked (or was running beside the command that did) ends,
        // reported with its folders.
        let mut failed_run = None;
        if let Some(active) = self.run.take() {
            self.shared.progress.set(None);
            let roots = active.roots;
            self.outbox
                .fail(active.request, Operation::Index { roots }, &error);
            failed_run = Some(active.request);
        }
        if failed_run != Some(request) {
            self.outbox.fail(request, operation, &error);
        }
        self.library.forget_prepared();
        self.snapshot_due = true;
    }

    /// Records a decision together with every decision queued behind it (keys held down in
    /// review send dozens a second): one durable transaction for all, then each is answered.
    /// The first other command queued is handled next.
    pub(super) fn decide(
        &mut self,
        request: RequestId,
        first: (i64, i64, crate::domain::Decision),
        first_continues: bool,
    ) {
        let mut requests = vec![request];
        let mut decisions = vec![first];
        let mut continues = vec![first_continues];
        while decisions.len() < MAX_DECISIONS_AT_ONCE {
            match self.requests.try_recv() {
                Ok((
                    request,
                    Command::Decide {
                        image_id,
                        label_id,
                        decision,
                        continues: joins,
                    },
                )) => {
                    requests.push(request);
                    decisions.push((image_id, label_id, decision));
                    continues.push(joins);
                }
                Ok(other) => {
                    self.next.push_back(other);
                    break;
                }
                Err(_) => break,
            }
        }
        let answers = match self.library.decide_steps(&decisions, &continues) {
            Ok(answers) => answers,
            Err(error) => {
                for (request, (image_id, label_id, _)) in requests.iter().zip(&decisions) {
                    let operation = Operation::Decide {
                        image_id: *image_id,
                        label_id: *label_id,
                    };
                    self.outbox.fail(*request, operation, &error);
                }
                return;
            }
        };
        self.snapshot_due = true;
        let mut shown = Vec::new();
        for ((request, (image_id, label_id, _)), answer) in
            requests.iter().zip(&decisions).zip(answers)
        {
            match answer {
                Ok(tag) => {
                    let done = Done::Decided {
                        image_id: *image_id,
                        label_id: *label_id,
                        tag,
                    };
                    self.outbox.done(*request, done);
                }
                Err(error) => {
                    let operation = Operation::Decide {
                        image_id: *image_id,
                        label_id: *label_id,
                    };
                    self.outbox.fail(*request, operation, &error);
                }
            }
            // The photo panel shows the decided photo's labels; the last decision on each
            // photo answers with them.
            if let Some(at) = shown.iter().position(|(id, _)| id == image_id) {
                shown.remove(at);
            }
            shown.push((*image_id, *request));
        }
        for (image_id, request) in shown.into_iter().rev().take(MAX_DETAILS_AFTER_DECISIONS) {
            match self.library.detail(image_id) {
                Ok(detail) => self.outbox.done(request, Done::Detail(detail)),
                Err(error) => {
                    let operation = Operation::Decide {
                        image_id,
                        label_id: decisions[0].1,
                    };
                    self.outbox.fail(request, operation, &error);
                }
            }
        }
    }

    /// Undoes or redoes one step of the history, then answers with the photos it changed, as
    /// a decision does.
    pub(super) fn undo_or_redo(&mut self, request: RequestId, direction: Direction) {
        let operation = Operation::History(direction);
        let report = match self.library.undo_or_redo(direction) {
            Ok(report) => report,
            Err(error) => return self.outbox.fail(request, operation, &error),
        };
        self.snapshot_due = true;
        let mut photos: Vec<i64> = Vec::new();
        for change in report.iter().flat_map(|r| &r.changes) {
            if !photos.contains(&change.change.image_id) {
                photos.push(change.change.image_id);
            }
        }
        self.outbox
            .done(request, Done::History { direction, report });
        for image_id in photos.into_iter().take(MAX_DETAILS_AFTER_DECISIONS) {
            match self.library.detail(image_id) {
                Ok(detail) => self.outbox.done(request, Done::Detail(detail)),
                Err(error) => self.outbox.fail(request, operation.clone(), &error),
            }
        }
    }
}
