//! What the worker answers, as the app takes it in: the model's state, indexing progress, and
//! each operation's outcome, said to the person where it is worth saying.

use super::CliptagApp;
use crate::library::{Direction, HistoryReport, ModelStatus, Retag, history_summary};
use crate::worker::{self, Command, Done, Event};

impl CliptagApp {
    pub(super) fn apply(&mut self, event: Event) {
        match event {
            Event::Model(status) => {
                if let ModelStatus::Failed(reason) = &status {
                    self.say(format!("model: {reason}"), true);
                    // A switch to a model that cannot be loaded re-embeds nothing.
                    self.windows.picker.switching = false;
                }
                self.link.model = status;
            }
            Event::Started { .. } => {
                self.link.indexing = true;
                self.link.run_began = Some(std::time::Instant::now());
                self.link.worker.control().resume();
            }
            Event::Done { done, .. } => self.apply_done(done),
            Event::ChangedOutside => {
                self.say(
                    "another program changed this library; the counts and tags shown are its \
                     own now"
                        .into(),
                    false,
                );
                self.gallery.invalidate();
            }
            Event::Failed { failure, .. } => {
                if matches!(failure.operation, worker::Operation::Index { .. }) {
                    self.link.indexing = false;
                }
                if matches!(failure.operation, worker::Operation::Decide { .. }) {
                    self.decision_answered();
                }
                if let worker::Operation::Preview { label_id, .. } = failure.operation {
                    self.sidebar.preview_failed.insert(label_id, failure.reason);
                } else if failure.waiting_for_model {
                    // The photos are in the gallery; the model banner says what to do.
                    self.say(failure.reason, false);
                } else {
                    self.say(failure.to_string(), true);
                }
            }
        }
    }

    /// One decision sent is stored (or failed, and said so).
    fn decision_answered(&mut self) {
        let left = self.link.unsaved_decisions.get().saturating_sub(1);
        self.link.unsaved_decisions.set(left);
    }

    /// A step undone or redone: said, and its first photo selected and brought into view, so
    /// a photo that a rejection took out of a filtered gallery comes back under the cursor.
    fn history_answered(&mut self, direction: Direction, report: Option<HistoryReport>) {
        let Some(report) = report else {
            let text = match direction {
                Direction::Undo => "nothing to undo",
                Direction::Redo => "nothing to redo",
            };
            self.say(text.into(), false);
            return;
        };
        let mut text = history_summary(&report);
        let mut problem = false;
        if let Some(crate::library::Retag::Failed(reason)) = &report.retag {
            text += &format!("; the tags could not follow yet: {reason}");
            problem = true;
        }
        self.say(text, problem);
        self.editors_follow_history(direction, &report);
        if !report.labels.is_empty()
            && let Some(image_id) = self.inspector.selected
        {
            // The photo's scores and tags follow the labels put back.
            self.send(Command::Detail { image_id });
        }
        if let Some(first) = report.changes.first() {
            let image_id = first.change.image_id;
            self.select(Some(image_id));
            self.gallery.reveal = Some((image_id, self.snapshot.version));
        }
        self.gallery.invalidate();
    }

    /// The group panel follows a group that undo or redo renamed, and the label editor closes
    /// on a label whose addition was undone.
    fn editors_follow_history(&mut self, direction: Direction, report: &HistoryReport) {
        for change in &report.labels {
            let (from, to) = match direction {
                Direction::Undo => (&change.after, &change.before),
                Direction::Redo => (&change.before, &change.after),
            };
            if let (Some(group), Some(from), Some(to)) = (self.sidebar.group.as_mut(), from, to)
                && crate::library::in_group(&from.name, &group.path)
                && let Some(prefix) = to.name.strip_suffix(&from.name[group.path.len()..])
            {
                group.path = prefix.to_string();
                group.new_path = group.path.clone();
            }
            if to.is_none()
                && self
                    .sidebar
                    .editor
                    .as_ref()
                    .is_some_and(|e| e.draft.id == change.label_id)
            {
                self.sidebar.editor = None;
            }
        }
    }

    fn apply_done(&mut self, done: Done) {
        // What to tell about how the tags followed an edit, and whether it is a problem.
        let retag_failed = |retag: &Retag| match retag {
            Retag::Failed(reason) => {
                Some((format!("the tags could not follow yet: {reason}"), true))
            }
            Retag::AfterSwitch => Some((
                "saved; the tags follow when the photos are embedded by the new model".to_string(),
                false,
            )),
            _ => None,
        };
        match done {
            Done::Indexed(summary) => {
                self.link.indexing = false;
                let mut text = format!(
                    "{}: {} indexed, {} copies, {} unchanged, {} moved, {} missing, {} failed",
                    if summary.cancelled {
                        "indexing cancelled"
                    } else {
                        "indexing finished"
                    },
                    summary.indexed,
                    summary.duplicates,
                    summary.unchanged,
                    summary.moved,
                    summary.missing,
                    summary.failed
                );
                if summary.restored > 0 {
                    text += &format!(
                        "; {} from a removed folder came back",
                        crate::library::count(summary.restored, "decision", "decisions")
                    );
                }
                self.say(text, false);
                self.link.last_summary = Some(summary);
            }
            Done::Queued { roots } => {
                let names: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
                self.say(
                    format!(
                        "{} will be indexed when the current run ends",
                        names.join(", ")
                    ),
                    false,
                );
            }
            Done::Retagged(report) if report.cancelled => {
                self.say("re-tagging cancelled: every tag is as it was".into(), false)
            }
            Done::Retagged(report) => self.say(
                format!(
                    "re-tagged {} photos: {} added, {} removed",
                    report.photos,
                    report.total_added(),
                    report.total_removed()
                ),
                false,
            ),
            Done::LabelAdded { label, retag } => {
                self.say(format!("added {:?}", label.name), false);
                // A label just made is edited next.
                self.open_label(&label);
                if let Some((text, error)) = retag_failed(&retag) {
                    self.say(text, error);
                }
            }
            Done::LabelUpdated { label, retag } => {
                // The snapshot still holds the label as it was before this edit.
                let before = self
                    .snapshot
                    .labels
                    .iter()
                    .find(|l| l.label.id == label.id)
                    .map(|l| l.label.clone());
                let text = match before {
                    Some(before) => crate::library::label_edit_words(&before, &label),
                    None => format!("saved {:?}", label.name),
                };
                self.say(text, false);
                if let Some((text, error)) = retag_failed(&retag) {
                    self.say(text, error);
                }
            }
            Done::GroupEdited {
                group,
                edit,
                labels,
                retag,
            } => {
                let labels = crate::library::count(labels as u64, "label", "labels");
                self.say(
                    match edit {
                        crate::library::GroupEdit::Rename(to) => {
                            format!("renamed the group {group:?} to {to:?} ({labels})")
                        }
                        crate::library::GroupEdit::Enable(true) => {
                            format!("enabled the group {group:?} ({labels})")
                        }
                        crate::library::GroupEdit::Enable(false) => {
                            format!("disabled the group {group:?} ({labels})")
                        }
                    },
                    false,
                );
                if let Some((text, error)) = retag_failed(&retag) {
                    self.say(text, error);
                }
            }
            Done::LabelRemoved {
                name,
                decisions,
                retag,
            } => {
                self.say(crate::library::removed_label_words(&name, decisions), false);
                if let Some((text, error)) = retag_failed(&retag) {
                    self.say(text, error);
                }
            }
            Done::TemplatesSet { retag, .. } => {
                if let Some((text, error)) = retag_failed(&retag) {
                    self.say(text, error);
                }
            }
            Done::VocabularyImported {
                path,
                summary,
                retag,
            } => {
                self.say(
                    format!(
                        "imported {}: {} labels added, {} updated",
                        path.display(),
                        summary.added,
                        summary.updated
                    ),
                    false,
                );
                if let Some(note) = summary.thresholds_note() {
                    self.say(note, false);
                }
                if let Some((text, error)) = retag_failed(&retag) {
                    self.say(text, error);
                }
            }
            Done::VocabularyExported { path, labels } => self.say(
                format!("wrote {labels} labels to {}", path.display()),
                false,
            ),
            Done::Preview(preview) => {
                self.sidebar.preview_failed.remove(&preview.label.id);
                self.sidebar.previews.insert(preview.label.id, *preview);
            }
            Done::Learned(report) => {
                let (a, b) = (report.agreement_before, report.agreement_after);
                self.say(
                    format!(
                        "{:?} learned from {} accepted and {} rejected photos: threshold {:.3} -> \
                         {:.3}, +{} / -{} tags; agrees with {}/{} decisions (was {}/{})",
                        report.label.name,
                        report.positives,
                        report.negatives,
                        report.threshold_before,
                        report.label.threshold,
                        report.added,
                        report.removed,
                        b.correct,
                        b.total,
                        a.correct,
                        a.total
                    ),
                    false,
                );
                self.sidebar.replace_draft(&report.label);
                self.send(Command::PreviewLabel(report.label.clone()));
            }
            Done::LearningReset { label, .. } => {
                self.say(
                    format!("{:?} is scored by its prompts again", label.name),
                    false,
                );
                self.sidebar.replace_draft(&label);
                self.send(Command::PreviewLabel(label));
            }
            Done::Found { query, matches } => {
                let results = matches.into_iter().map(|m| (m.image_id, m.score)).collect();
                self.gallery.search = Some((query, results));
                self.gallery.invalidate();
            }
            Done::Detail(detail) => {
                if self.inspector.selected == Some(detail.image_id) {
                    self.inspector.detail = Some(detail);
                }
            }
            Done::Decided { label_id, tag, .. } => {
                self.decision_answered();
                // Said, so a key pressed in review shows it did something, and how to take it
                // back.
                let name = self
                    .snapshot
                    .labels
                    .iter()
                    .find(|l| l.label.id == label_id)
                    .map(|l| l.label.name.clone());
                let verb = match tag {
                    Some(crate::domain::TagSource::Accepted) => "accepted",
                    Some(crate::domain::TagSource::Rejected) => "rejected",
                    Some(crate::domain::TagSource::Manual) => "added",
                    _ => "cleared",
                };
                if let Some(name) = name {
                    self.say(format!("{verb} {name:?} (Ctrl+Z undoes)"), false);
                }
            }
            Done::History { direction, report } => self.history_answered(direction, report),
            Done::Pruned {
                report,
                dry_run: true,
            } => self.windows.prune_preview = Some(report),
            Done::Pruned {
                report,
                dry_run: false,
            } => {
                self.windows.prune_preview = None;
                self.gallery.invalidate();
                self.say(crate::library::prune_summary(&report, false), false);
            }
            Done::FolderRemoved(removed) => {
                self.gallery.invalidate();
                let shown = self
                    .inspector
                    .selected
                    .and_then(|id| self.gallery.entry(id));
                if shown.is_some_and(|entry| entry.path.starts_with(&removed.path)) {
                    self.select(None);
                }
                self.say(crate::library::removed_folder_summary(&removed), false);
            }
            Done::ModelLoaded => self.model_loaded(),
            // The Model window shows the precision from the next snapshot on.
            Done::PrecisionSet => {}
            Done::Exported(report) => {
                if let Some(csv) = &report.csv {
                    self.say(
                        format!("wrote {} rows to {}", csv.rows, csv.path.display()),
                        false,
                    );
                    if let Some(command) = &csv.exiftool {
                        self.say(format!("to write them into the photos: {command}"), false);
                    }
                }
                if let Some(xmp) = &report.xmp {
                    match xmp.failed.first() {
                        None => self.say(
                            format!(
                                "XMP sidecars: {} written, {} already up to date",
                                xmp.written, xmp.unchanged
                            ),
                            false,
                        ),
                        Some((path, reason)) => self.say(
                            format!(
                                "XMP sidecars: {} written, {} failed, e.g. {}: {reason}",
                                xmp.written,
                                xmp.failed.len(),
                                path.display()
                            ),
                            true,
                        ),
                    }
                }
                // The CSV's folder, one click away (a person looks for the file next).
                if let Some(csv) = &report.csv
                    && let Some(folder) = csv.path.parent()
                    && let Some(last) = self.messages.back_mut()
                {
                    last.folder = Some(folder.to_path_buf());
                }
            }
        }
    }
}
