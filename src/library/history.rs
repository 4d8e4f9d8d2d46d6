//! What undo and redo tell a person: the step they went through, in words.

use std::path::PathBuf;

use crate::domain::TagSource;
pub use crate::store::history::{Change, Direction};

/// One pair put back by undo or redo, named for the person.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryChange {
    pub change: Change,
    pub path: PathBuf,
    pub label: String,
}

/// What undoing or redoing one step did.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryReport {
    pub direction: Direction,
    pub changes: Vec<HistoryChange>,
    /// Pairs left alone because something else decided them after the step.
    pub changed_since: usize,
}

impl Default for HistoryReport {
    fn default() -> Self {
        HistoryReport {
            direction: Direction::Undo,
            changes: Vec::new(),
            changed_since: 0,
        }
    }
}

/// The action a step's decision was, as a verb: "rejecting", "accepting", …
fn action(after: Option<TagSource>) -> &'static str {
    match after {
        Some(TagSource::Rejected) => "rejecting",
        Some(TagSource::Accepted) => "accepting",
        Some(TagSource::Manual) => "adding",
        Some(TagSource::Auto) | None => "clearing the decision on",
    }
}

/// One line for the status bar or the command line: `undid rejecting "cat" on /photos/1.jpg`,
/// as `cliptag tag` names what it decided.
pub fn history_summary(report: &HistoryReport) -> String {
    let verb = match report.direction {
        Direction::Undo => "undid",
        Direction::Redo => "redid",
    };
    let mut text = match report.changes.as_slice() {
        [] => format!("{verb} nothing"),
        [one] => format!(
            "{verb} {} {:?} on {}",
            action(one.change.after),
            one.label,
            one.path.display()
        ),
        [first, rest @ ..] => {
            let labels_alike = rest.iter().all(|c| c.label == first.label);
            let actions_alike = rest
                .iter()
                .all(|c| action(c.change.after) == action(first.change.after));
            match (labels_alike, actions_alike) {
                (true, true) => format!(
                    "{verb} {} {:?} on {} photos",
                    action(first.change.after),
                    first.label,
                    report.changes.len()
                ),
                _ => format!("{verb} {} decisions", report.changes.len()),
            }
        }
    };
    if report.changed_since > 0 {
        text.push_str(&format!(
            "; {} left as they are: decided again since",
            report.changed_since
        ));
    }
    text
}
