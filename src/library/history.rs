//! What undo and redo tell a person: the step they went through, in words.

use std::path::PathBuf;

use crate::domain::{Label, TagSource};
pub use crate::store::history::{Change, Direction, LabelChange};

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
    /// Labels put back (a step of vocabulary edits).
    pub labels: Vec<LabelChange>,
    /// Labels left alone because something else changed or removed them after the step.
    pub labels_changed_since: Vec<String>,
    /// Labels whose addition was not undone because they hold the person's decisions.
    pub labels_holding_decisions: Vec<String>,
    /// What the automatic tags did after labels were put back.
    pub retag: Option<super::Retag>,
    /// The library folder whose removal the step was: not undone here.
    pub removed_folder: Option<PathBuf>,
}

impl Default for HistoryReport {
    fn default() -> Self {
        HistoryReport {
            direction: Direction::Undo,
            changes: Vec::new(),
            changed_since: 0,
            labels: Vec::new(),
            labels_changed_since: Vec::new(),
            labels_holding_decisions: Vec::new(),
            retag: None,
            removed_folder: None,
        }
    }
}

/// A label edit as a verb phrase: `adding "Cat"`, `setting the threshold of "Cat" to 0.31 (it
/// was 0.26)`.
fn label_action(change: &LabelChange) -> String {
    match (&change.before, &change.after) {
        (None, Some(after)) => format!("adding {:?}", after.name),
        (Some(before), None) => format!("removing {:?}", before.name),
        (Some(before), Some(after)) => edit_words(before, after),
        (None, None) => "a label edit".to_string(),
    }
}

fn edit_words(before: &Label, after: &Label) -> String {
    let name = &after.name;
    if before.name != after.name {
        return format!("renaming {:?} to {name:?}", before.name);
    }
    if before.learned != after.learned {
        return match after.learned {
            Some(_) => format!("learning {name:?} from your decisions"),
            None => format!("resetting what {name:?} learned"),
        };
    }
    if before.enabled != after.enabled {
        let verb = if after.enabled {
            "enabling"
        } else {
            "disabling"
        };
        return format!("{verb} {name:?}");
    }
    let same_but_threshold = Label {
        threshold: after.threshold,
        ..before.clone()
    };
    if &same_but_threshold == after {
        return format!(
            "setting the threshold of {name:?} to {:.2} (it was {:.2})",
            after.threshold, before.threshold
        );
    }
    format!("changing {name:?}")
}

/// A label edit just stored, in words for the status bar: `disabled "Cat"`, `renamed "Cat" to
/// "Pets/Cat"`, `"Cat": threshold 0.31 (was 0.26)`; `saved "Cat"` for any other change.
pub fn label_edit_words(before: &Label, after: &Label) -> String {
    let name = &after.name;
    if before.name != after.name {
        return format!("renamed {:?} to {name:?}", before.name);
    }
    if before.enabled != after.enabled {
        let verb = if after.enabled { "enabled" } else { "disabled" };
        return format!("{verb} {name:?}");
    }
    let same_but_threshold = Label {
        threshold: after.threshold,
        ..before.clone()
    };
    if &same_but_threshold == after && before.threshold != after.threshold {
        return format!(
            "{name:?}: threshold {:.2} (was {:.2})",
            after.threshold, before.threshold
        );
    }
    format!("saved {name:?}")
}

/// A step of label edits in words.
fn labels_summary(verb: &str, report: &HistoryReport) -> String {
    match report.labels.as_slice() {
        [] => format!("{verb} nothing"),
        [one] => format!("{verb} {}", label_action(one)),
        many => {
            let renamed = many
                .iter()
                .all(|c| matches!((&c.before, &c.after), (Some(b), Some(a)) if b.name != a.name));
            if renamed {
                format!("{verb} renaming {} labels", many.len())
            } else {
                format!("{verb} changing {} labels", many.len())
            }
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
    if let Some(folder) = &report.removed_folder {
        return match report.direction {
            Direction::Undo => format!(
                "removing the folder {} is not undone here: add the folder again to bring its \
                 photos back with your decisions",
                folder.display()
            ),
            Direction::Redo => format!("the folder {} stays removed", folder.display()),
        };
    }
    let mut text = match report.changes.as_slice() {
        [] if !report.labels.is_empty()
            || !report.labels_changed_since.is_empty()
            || !report.labels_holding_decisions.is_empty() =>
        {
            labels_summary(verb, report)
        }
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
    for name in &report.labels_holding_decisions {
        text.push_str(&format!(
            "; {name:?} stays: it holds decisions you made (removing the label takes them too)"
        ));
    }
    if !report.labels_changed_since.is_empty() {
        let names: Vec<String> = report
            .labels_changed_since
            .iter()
            .map(|n| format!("{n:?}"))
            .collect();
        text.push_str(&format!(
            "; {} left as {}: changed or removed since",
            names.join(", "),
            if names.len() == 1 {
                "it is"
            } else {
                "they are"
            }
        ));
    }
    if report.changed_since > 0 {
        text.push_str(&format!(
            "; {} left as they are: decided again since",
            report.changed_since
        ));
    }
    text
}
