//! Taking photos out of the library: the missing ones (prune) and a whole folder. Neither runs
//! while an index does, which could find the photos again under new names.

use std::path::Path;

use super::{Done, Operation, RequestId, Worker};
use crate::error::Error;

impl Worker {
    pub(super) fn prune(&mut self, request: RequestId, dry_run: bool) {
        let operation = Operation::Prune;
        if self.run.is_some() {
            let error = Error::invalid(
                "indexing is running: remove the missing photos when it has finished (it may \
                 find some of them under new names)",
            );
            return self.outbox.fail(request, operation, &error);
        }
        match self.library.prune(dry_run) {
            Ok(report) => {
                self.snapshot_due = !dry_run;
                self.outbox.done(request, Done::Pruned { report, dry_run });
            }
            Err(error) => self.outbox.fail(request, operation, &error),
        }
    }

    pub(super) fn remove_folder(&mut self, request: RequestId, folder: &Path) {
        let operation = Operation::RemoveFolder {
            path: folder.to_path_buf(),
        };
        if self.run.is_some() {
            let error = Error::invalid(
                "indexing is running: remove the folder when it has finished or is stopped",
            );
            return self.outbox.fail(request, operation, &error);
        }
        match self.library.remove_folder(folder) {
            Ok(removed) => {
                self.snapshot_due = true;
                self.outbox.done(request, Done::FolderRemoved(removed));
            }
            Err(error) => self.outbox.fail(request, operation, &error),
        }
    }
}
