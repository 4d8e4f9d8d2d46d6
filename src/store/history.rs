//! The library's history of a person's decisions, for undo and redo (migration 0012): each step
//! is written in the transaction that makes its decisions, and undone or redone in one that
//! reads, checks and changes the pairs together, so another program's decision made in between
//! is seen and never overwritten.

use rusqlite::{OptionalExtension, Transaction, params};

use super::Store;
use super::labels::{COLUMNS, insert_label_as, insert_row, raw_label, update_label_row};
use crate::domain::{Label, TagSource};
use crate::error::{Error, Result};

/// How many steps a library keeps; older ones are forgotten as new ones are recorded.
pub const HISTORY_STEPS: i64 = 10_000;

/// One pair's change within a step: the person's decision before and after it (`None` where
/// automatic tagging decides the pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    pub image_id: i64,
    pub label_id: i64,
    pub before: Option<TagSource>,
    pub after: Option<TagSource>,
}

/// One label's change within a step: the label before and after it (`None` where it did not
/// exist), without what it learned under models other than the one scored with.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelChange {
    pub label_id: i64,
    pub before: Option<Label>,
    pub after: Option<Label>,
}

/// A step to record: its changes (decisions, or labels), and whether it continues the step
/// recorded just before (one decision on many picked photos arrives as many decisions).
#[derive(Debug, Clone, Default)]
pub struct NewStep {
    pub continues: bool,
    pub changes: Vec<Change>,
    pub labels: Vec<LabelChange>,
    /// A library folder removed: a step undo cannot take back, and says so.
    pub removed_folder: Option<std::path::PathBuf>,
}

/// Which way through the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Undo,
    Redo,
}

/// What undoing or redoing one step did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The pairs put back, each with the decision it has now.
    pub changed: Vec<Change>,
    /// Pairs left alone because something else decided them after the step.
    pub changed_since: Vec<Change>,
    /// The labels put back, each as it is now.
    pub labels: Vec<LabelChange>,
    /// Labels left alone, and why.
    pub labels_left: Vec<(LabelChange, LeftAlone)>,
    /// The library folder whose removal the step was (nothing undone or redone).
    pub removed_folder: Option<std::path::PathBuf>,
}

fn word(source: Option<TagSource>) -> Option<&'static str> {
    source.map(TagSource::as_str)
}

/// Reads a stored decision word; `auto` is not a decision.
fn decision(text: Option<String>) -> Result<Option<TagSource>> {
    match text {
        None => Ok(None),
        Some(text) => match TagSource::parse(&text)? {
            TagSource::Auto => Ok(None),
            source => Ok(Some(source)),
        },
    }
}

/// The person's decision on a pair as stored now (`None` for none, an automatic tag included).
fn current(tx: &Transaction<'_>, image_id: i64, label_id: i64) -> Result<Option<TagSource>> {
    let source: Option<String> = tx
        .query_row(
            "SELECT source FROM tags WHERE image_id = ?1 AND label_id = ?2",
            params![image_id, label_id],
            |r| r.get(0),
        )
        .optional()?;
    decision(source)
}

/// The label with this id as `tx` sees it, without what it learned under other models (the
/// history keeps a label's own fields and the model scored with now).
pub(super) fn label_in(
    tx: &Transaction<'_>,
    library: &std::path::Path,
    label_id: i64,
) -> Result<Option<Label>> {
    let raw = tx
        .prepare_cached(&format!("SELECT {COLUMNS} FROM labels WHERE id = ?1"))?
        .query_row([label_id], raw_label)
        .optional()?;
    raw.map(|raw| raw.checked(library)).transpose()
}

/// A label as the history keeps it: its own fields and what it learned under the model scored
/// with, not what it learned under others (which no step changes).
fn own(label: Label) -> Label {
    Label {
        learned_elsewhere: Vec::new(),
        ..label
    }
}

fn label_json(label: &Label) -> String {
    serde_json::to_string(&own(label.clone())).expect("a label serialises. This is a bug.")
}

fn label_from_json(label_id: i64, text: Option<String>) -> Result<Option<Label>> {
    text.map(|text| {
        serde_json::from_str::<Label>(&text)
            .map(|label| Label {
                id: label_id,
                ..label
            })
            .map_err(|e| Error::invalid(format!("a label in the history is damaged: {e}")))
    })
    .transpose()
}

/// Why a label's change was left alone by undo or redo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftAlone {
    /// Something else changed the label (or took its name) after the step.
    ChangedSince,
    /// Undoing its addition would take the person's decisions on it along.
    HoldsDecisions,
}

/// Undoes (`to` is the label's state before) or redoes (after) one label's change, where the
/// label is as the step left it (`expected`).
fn put_label(
    tx: &Transaction<'_>,
    library: &std::path::Path,
    label_id: i64,
    expected: Option<&Label>,
    to: Option<&Label>,
) -> Result<std::result::Result<(), LeftAlone>> {
    let now = label_in(tx, library, label_id)?.map(own);
    if now.as_ref() != expected {
        return Ok(Err(LeftAlone::ChangedSince));
    }
    let done = match (now, to) {
        (Some(_), None) => {
            // Decisions on the label that no step of the history holds (given back with a
            // folder, or older than the history) would go with it: it stays.
            let decided: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM tags WHERE label_id = ?1 AND source != 'auto')
                     OR EXISTS (SELECT 1 FROM kept_decisions WHERE label_id = ?1)",
                [label_id],
                |r| r.get(0),
            )?;
            if decided {
                return Ok(Err(LeftAlone::HoldsDecisions));
            }
            tx.execute(
                "INSERT INTO history_parked (step_id, image_id, label_id, before, after)
                 SELECT step_id, image_id, label_id, before, after FROM history_decisions
                 WHERE label_id = ?1 ORDER BY rowid",
                [label_id],
            )?;
            tx.execute("DELETE FROM labels WHERE id = ?1", [label_id])? > 0
        }
        (None, Some(label)) => {
            let stored = insert_label_as(tx, label_id, label)?;
            if stored {
                tx.execute(
                    "INSERT INTO history_decisions (step_id, image_id, label_id, before, after)
                     SELECT step_id, image_id, label_id, before, after FROM history_parked
                     WHERE label_id = ?1 ORDER BY rowid",
                    [label_id],
                )?;
                tx.execute("DELETE FROM history_parked WHERE label_id = ?1", [label_id])?;
            }
            stored
        }
        (Some(_), Some(label)) => {
            // A rename back onto a name another label took since is left alone.
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM labels WHERE id != ?1 AND name = ?2 COLLATE NOCASE)",
                params![label_id, label.name],
                |r| r.get(0),
            )?;
            !taken && update_label_row(tx, label_id, label)?
        }
        (None, None) => true,
    };
    Ok(if done {
        Ok(())
    } else {
        Err(LeftAlone::ChangedSince)
    })
}

/// Records steps inside the transaction that made their decisions. A new step drops the steps
/// that were undone (the history is one line), and the oldest beyond [`HISTORY_STEPS`] go.
pub(super) fn record(tx: &Transaction<'_>, steps: &[NewStep]) -> Result<()> {
    let steps: Vec<&NewStep> = steps
        .iter()
        .filter(|s| !s.changes.is_empty() || !s.labels.is_empty() || s.removed_folder.is_some())
        .collect();
    if steps.is_empty() {
        return Ok(());
    }
    tx.execute("DELETE FROM history_steps WHERE undone = 1", [])?;
    let mut add = tx.prepare_cached(
        "INSERT INTO history_decisions (step_id, image_id, label_id, before, after)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for step in steps {
        let last: Option<i64> =
            tx.query_row("SELECT MAX(id) FROM history_steps", [], |r| r.get(0))?;
        // A step of decisions never continues one of label changes (another program's edit
        // came in between).
        let of_labels = |last: i64| -> rusqlite::Result<bool> {
            tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM history_labels WHERE step_id = ?1)",
                [last],
                |r| r.get(0),
            )
        };
        let id = match (step.continues, last) {
            (true, Some(last))
                if step.labels.is_empty() && step.removed_folder.is_none() && !of_labels(last)? =>
            {
                last
            }
            _ => {
                tx.execute("INSERT INTO history_steps (undone) VALUES (0)", [])?;
                tx.last_insert_rowid()
            }
        };
        for change in &step.changes {
            add.execute(params![
                id,
                change.image_id,
                change.label_id,
                word(change.before),
                word(change.after)
            ])?;
        }
        let mut add_label = tx.prepare_cached(
            "INSERT INTO history_labels (step_id, label_id, before, after) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for change in &step.labels {
            add_label.execute(params![
                id,
                change.label_id,
                change.before.as_ref().map(label_json),
                change.after.as_ref().map(label_json)
            ])?;
        }
        if let Some(folder) = &step.removed_folder {
            tx.execute(
                "INSERT INTO history_notes (step_id, folder) VALUES (?1, ?2)",
                params![id, super::path_bytes(folder).as_ref()],
            )?;
        }
    }
    tx.execute(
        "DELETE FROM history_steps WHERE id <= (SELECT MAX(id) FROM history_steps) - ?1",
        [HISTORY_STEPS],
    )?;
    Ok(())
}

/// Writes one pair's decision (`None` hands it back to automatic tagging), for
/// `Store::set_decisions` and for undo and redo alike.
pub(super) fn set(
    tx: &Transaction<'_>,
    image_id: i64,
    label_id: i64,
    to: Option<TagSource>,
) -> Result<()> {
    match to {
        Some(source) => {
            tx.prepare_cached(
                "INSERT INTO tags (image_id, label_id, score, source) VALUES (?1, ?2, NULL, ?3)
                 ON CONFLICT (image_id, label_id) DO UPDATE SET source = excluded.source",
            )?
            .execute(params![image_id, label_id, source.as_str()])?;
        }
        None => {
            tx.prepare_cached(
                "DELETE FROM tags WHERE image_id = ?1 AND label_id = ?2 AND source != 'auto'",
            )?
            .execute(params![image_id, label_id])?;
        }
    }
    Ok(())
}

impl Store {
    /// Undoes the last step not undone, or redoes the first undone one, in one durable
    /// transaction; `None` when there is nothing to undo (or redo). A pair that something else
    /// decided after the step is left as it is and reported. Steps whose photos or labels are
    /// all gone are removed on the way.
    ///
    /// `auto` holds the automatic tag of pairs that automatic tagging would tag once no
    /// decision holds them: written in the same transaction where a pair is handed back.
    pub fn undo_or_redo(
        &mut self,
        direction: Direction,
        auto: &std::collections::HashMap<(i64, i64), f32>,
        basis: Option<super::Basis>,
    ) -> Result<Option<Applied>> {
        let path = self.path.clone();
        self.durable(|tx| {
            loop {
                let query = match direction {
                    Direction::Undo => {
                        "SELECT id FROM history_steps WHERE undone = 0 ORDER BY id DESC LIMIT 1"
                    }
                    Direction::Redo => {
                        "SELECT id FROM history_steps WHERE undone = 1 ORDER BY id ASC LIMIT 1"
                    }
                };
                let Some(step): Option<i64> = tx.query_row(query, [], |r| r.get(0)).optional()?
                else {
                    return Ok(None);
                };
                let rows: Vec<(i64, i64, Option<String>, Option<String>)> = tx
                    .prepare_cached(
                        "SELECT image_id, label_id, before, after FROM history_decisions
                         WHERE step_id = ?1 ORDER BY rowid",
                    )?
                    .query_map([step], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let labels: Vec<(i64, Option<String>, Option<String>)> = tx
                    .prepare_cached(
                        "SELECT label_id, before, after FROM history_labels
                         WHERE step_id = ?1 ORDER BY rowid",
                    )?
                    .query_map([step], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let removed_folder: Option<Vec<u8>> = tx
                    .query_row(
                        "SELECT folder FROM history_notes WHERE step_id = ?1",
                        [step],
                        |r| r.get(0),
                    )
                    .optional()?;
                if rows.is_empty() && labels.is_empty() && removed_folder.is_none() {
                    tx.execute("DELETE FROM history_steps WHERE id = ?1", [step])?;
                    continue;
                }
                let mut applied = Applied {
                    removed_folder: removed_folder.map(super::path_from_bytes),
                    ..Applied::default()
                };
                let mut labels = labels
                    .into_iter()
                    .map(|(label_id, before, after)| {
                        let damaged =
                            |e: Error| Error::store(&path, format!("damaged history: {e}"));
                        Ok(LabelChange {
                            label_id,
                            before: label_from_json(label_id, before).map_err(damaged)?,
                            after: label_from_json(label_id, after).map_err(damaged)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                // Undone last change first, so that names swapped within a step free each other.
                if direction == Direction::Undo {
                    labels.reverse();
                }
                for change in labels {
                    let (expected, to) = match direction {
                        Direction::Undo => (&change.after, &change.before),
                        Direction::Redo => (&change.before, &change.after),
                    };
                    match put_label(tx, &path, change.label_id, expected.as_ref(), to.as_ref())? {
                        Ok(()) => applied.labels.push(change),
                        Err(why) => {
                            // No longer this step's to redo (or undo) either.
                            tx.execute(
                                "DELETE FROM history_labels WHERE step_id = ?1 AND label_id = ?2",
                                params![step, change.label_id],
                            )?;
                            applied.labels_left.push((change, why));
                        }
                    }
                }
                let mut handed_back = Vec::new();
                for (image_id, label_id, before, after) in rows {
                    let change = Change {
                        image_id,
                        label_id,
                        before: decision(before)
                            .map_err(|e| Error::store(&path, format!("damaged history: {e}")))?,
                        after: decision(after)
                            .map_err(|e| Error::store(&path, format!("damaged history: {e}")))?,
                    };
                    let (expected, to) = match direction {
                        Direction::Undo => (change.after, change.before),
                        Direction::Redo => (change.before, change.after),
                    };
                    if current(tx, image_id, label_id)? != expected {
                        // Someone decided the pair since: it leaves the step, which redo
                        // would otherwise make again over that decision.
                        tx.execute(
                            "DELETE FROM history_decisions
                             WHERE step_id = ?1 AND image_id = ?2 AND label_id = ?3",
                            params![step, image_id, label_id],
                        )?;
                        applied.changed_since.push(change);
                        continue;
                    }
                    set(tx, image_id, label_id, to)?;
                    if to.is_none()
                        && let Some(score) = auto.get(&(image_id, label_id))
                    {
                        handed_back.push((image_id, label_id, *score));
                    }
                    applied.changed.push(change);
                }
                super::tags::put_auto(tx, &handed_back, basis)?;
                tx.execute(
                    "UPDATE history_steps SET undone = ?2 WHERE id = ?1",
                    params![step, direction == Direction::Undo],
                )?;
                return Ok(Some(applied));
            }
        })
    }

    /// Stores a new label (checked by the caller) as one step of the history; returns its id.
    pub fn insert_label_recorded(&mut self, label: &Label) -> Result<i64> {
        let path = self.path.clone();
        self.durable(|tx| {
            let id = insert_row(tx, None, label)?;
            let after = label_in(tx, &path, id)?.map(own);
            record(
                tx,
                &[NewStep {
                    labels: vec![LabelChange {
                        label_id: id,
                        before: None,
                        after,
                    }],
                    ..NewStep::default()
                }],
            )?;
            Ok(id)
        })
    }

    /// Replaces stored labels in one transaction, as one step of the history; how many
    /// existed.
    pub fn update_labels_recorded(&mut self, labels: &[Label]) -> Result<usize> {
        let path = self.path.clone();
        self.durable(|tx| {
            let mut step = NewStep::default();
            let mut existed = 0;
            for label in labels {
                let before = label_in(tx, &path, label.id)?.map(own);
                if !update_label_row(tx, label.id, label)? {
                    continue;
                }
                existed += 1;
                let after = label_in(tx, &path, label.id)?.map(own);
                if before != after {
                    step.labels.push(LabelChange {
                        label_id: label.id,
                        before,
                        after,
                    });
                }
            }
            record(tx, &[step])?;
            Ok(existed)
        })
    }

    /// The changes of the step undo (or redo) would go through now, without changing anything.
    pub fn next_step(&self, direction: Direction) -> Result<Vec<Change>> {
        let query = match direction {
            Direction::Undo => {
                "SELECT image_id, label_id, before, after FROM history_decisions WHERE step_id =
                 (SELECT id FROM history_steps WHERE undone = 0 ORDER BY id DESC LIMIT 1)"
            }
            Direction::Redo => {
                "SELECT image_id, label_id, before, after FROM history_decisions WHERE step_id =
                 (SELECT id FROM history_steps WHERE undone = 1 ORDER BY id ASC LIMIT 1)"
            }
        };
        let mut stmt = self.conn.prepare(query).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut changes = Vec::new();
        for row in rows {
            let (image_id, label_id, before, after) = row.map_err(|e| self.err(e))?;
            changes.push(Change {
                image_id,
                label_id,
                before: decision(before)?,
                after: decision(after)?,
            });
        }
        Ok(changes)
    }

    /// How many steps could be undone and redone now.
    pub fn history_depth(&self) -> Result<(i64, i64)> {
        self.conn
            .query_row(
                "SELECT COALESCE(SUM(undone = 0), 0), COALESCE(SUM(undone = 1), 0) FROM history_steps",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))
    }
}
