//! A person's decisions on tags, and the history that undoes and redoes them: each decision
//! is stored durably with its step of the history and, where it hands a pair back to automatic
//! tagging, with the tag automatic tagging gives it, all in one transaction.

use std::collections::{HashMap, HashSet};

use super::{Change, Direction, HistoryChange, HistoryReport, LabelChange, Library};
use crate::domain::{Decision, TagSource};
use crate::error::{Error, Result};
use crate::store::Basis;
use crate::store::history::{LeftAlone, NewStep};
use crate::tagging::EmbeddingMatrix;

impl Library {
    /// Records a person's decision on one photo's tag. Clearing it hands the pair back to
    /// automatic tagging at once. Returns the tag the photo has now.
    pub fn decide(
        &mut self,
        image_id: i64,
        label_id: i64,
        decision: Decision,
    ) -> Result<Option<TagSource>> {
        self.decide_many(&[(image_id, label_id, decision)])?
            .pop()
            .expect("one answer per decision. This is a bug.")
    }

    /// Where the tag of `label_id` on `image_id` comes from now, if it has one.
    pub fn tag_source(&self, image_id: i64, label_id: i64) -> Result<Option<TagSource>> {
        Ok(self
            .store
            .tag(image_id, label_id)?
            .map(|(source, _)| source))
    }

    /// Records several decisions at once (keys held down in review): every valid one is stored
    /// in one durable transaction before this returns; each answer is what the pair has now, or
    /// why that decision could not be recorded (an unknown photo or label). Each decision is one
    /// step of the library's history (see [`Library::decide_steps`]).
    pub fn decide_many(
        &mut self,
        decisions: &[(i64, i64, Decision)],
    ) -> Result<Vec<Result<Option<TagSource>>>> {
        let continues = vec![false; decisions.len()];
        self.decide_steps(decisions, &continues)
    }

    /// [`Library::decide_many`], where `continues[i]` says that decision `i` belongs to the
    /// same step of the history (one undo) as the decision before it, also when that one came
    /// in an earlier call: a decision on many picked photos is one step.
    pub fn decide_steps(
        &mut self,
        decisions: &[(i64, i64, Decision)],
        continues: &[bool],
    ) -> Result<Vec<Result<Option<TagSource>>>> {
        let mut answers: Vec<Result<Option<TagSource>>> = Vec::with_capacity(decisions.len());
        // What each pair holds, as earlier decisions of this same call leave it.
        let mut now: HashMap<(i64, i64), Option<TagSource>> = HashMap::new();
        let mut stored = Vec::new();
        let mut steps: Vec<NewStep> = Vec::new();
        for (at, &(image_id, label_id, decision)) in decisions.iter().enumerate() {
            let continues = continues.get(at).copied().unwrap_or(false);
            if !continues || steps.is_empty() {
                steps.push(NewStep {
                    continues,
                    ..NewStep::default()
                });
            }
            if self.store.image(image_id)?.is_none() {
                answers.push(Err(Error::invalid(format!("no photo with id {image_id}"))));
                continue;
            }
            if self.store.label(label_id)?.is_none() {
                answers.push(Err(Error::invalid(format!("no label with id {label_id}"))));
                continue;
            }
            let current = match now.get(&(image_id, label_id)) {
                Some(current) => *current,
                None => self
                    .store
                    .tag(image_id, label_id)?
                    .map(|(source, _)| source),
            };
            let mut source = decision.source(current);
            // Accepting over a rejection: the tag is "accepted" where automatic tagging would
            // put it there, as when the rejection had been cleared first; else "added".
            if decision == Decision::Apply
                && current == Some(TagSource::Rejected)
                && !self.auto_for(&[(image_id, label_id)])?.is_empty()
            {
                source = Some(TagSource::Accepted);
            }
            now.insert((image_id, label_id), source);
            stored.push((image_id, label_id, source));
            answers.push(Ok(source));
            let before = current.filter(|s| *s != TagSource::Auto);
            if before != source {
                let step = steps.last_mut().expect("pushed above. This is a bug.");
                step.changes.push(Change {
                    image_id,
                    label_id,
                    before,
                    after: source,
                });
            }
        }
        // Pairs handed back to automatic tagging are decided by it again, as a re-tag would, in
        // the transaction that hands them back.
        let cleared: Vec<(i64, i64)> = now
            .iter()
            .filter(|(_, source)| source.is_none())
            .map(|(pair, _)| *pair)
            .collect();
        let added = self.auto_for(&cleared)?;
        let basis = (!added.is_empty()).then_some(Basis::Part(self.scores.plan_generation));
        self.store
            .set_decisions_recorded(&stored, &steps, &added, basis)?;
        let auto: HashSet<(i64, i64)> = added.iter().map(|a| (a.0, a.1)).collect();
        for (answer, &(image_id, label_id, _)) in answers.iter_mut().zip(decisions) {
            if let Ok(source) = answer
                && source.is_none()
                && now.get(&(image_id, label_id)) == Some(&None)
                && auto.contains(&(image_id, label_id))
            {
                *source = Some(TagSource::Auto);
            }
        }
        Ok(answers)
    }

    /// The automatic tags automatic tagging gives pairs no decision holds, as a re-tag would
    /// (computed, not written).
    fn auto_for(&mut self, cleared: &[(i64, i64)]) -> Result<Vec<(i64, i64, f32)>> {
        if cleared.is_empty() {
            return Ok(Vec::new());
        }
        let mut rows = Vec::new();
        for &(image_id, _) in cleared {
            if let Some(vector) = self.matrix()?.vector(image_id)?
                && !rows.iter().any(|(id, _)| *id == image_id)
            {
                rows.push((image_id, vector));
            }
        }
        if !rows.is_empty() {
            let assigned = self.plan()?.assign(&EmbeddingMatrix::from_rows(rows)?)?;
            return Ok(assigned
                .into_iter()
                .filter(|a| cleared.contains(&(a.image_id, a.label_id)))
                .map(|a| (a.image_id, a.label_id, a.score))
                .collect());
        }
        Ok(Vec::new())
    }

    /// Undoes the person's last step of decisions (or redoes the last undone one): each pair
    /// goes back to what it was, a pair handed back to automatic tagging is tagged by it again,
    /// and a pair someone decided since is left alone. `None` when there is nothing to undo.
    pub fn undo_or_redo(&mut self, direction: Direction) -> Result<Option<HistoryReport>> {
        let to = |change: &Change| match direction {
            Direction::Undo => change.before,
            Direction::Redo => change.after,
        };
        // What automatic tagging gives the pairs the step hands back, written with them.
        let handed_back: Vec<(i64, i64)> = self
            .store
            .next_step(direction)?
            .iter()
            .filter(|c| to(c).is_none())
            .map(|c| (c.image_id, c.label_id))
            .collect();
        let auto: HashMap<(i64, i64), f32> = self
            .auto_for(&handed_back)?
            .into_iter()
            .map(|(image, label, score)| ((image, label), score))
            .collect();
        let basis = (!auto.is_empty()).then_some(Basis::Part(self.scores.plan_generation));
        let Some(applied) = self.store.undo_or_redo(direction, &auto, basis)? else {
            return Ok(None);
        };
        // Another program undid the step read above first, and this took the one before it:
        // the pairs it handed back get their automatic tags now (a second write, in this rare
        // race only).
        let untagged: Vec<(i64, i64)> = applied
            .changed
            .iter()
            .filter(|c| to(c).is_none() && !auto.contains_key(&(c.image_id, c.label_id)))
            .map(|c| (c.image_id, c.label_id))
            .collect();
        let late = self.auto_for(&untagged)?;
        if !late.is_empty() {
            let basis = Some(Basis::Part(self.scores.plan_generation));
            self.store.put_auto_tags(&late, basis)?;
        }
        let mut report = HistoryReport {
            direction,
            removed_folder: applied.removed_folder.clone(),
            changed_since: applied.changed_since.len(),
            labels_changed_since: applied
                .labels_left
                .iter()
                .filter(|(_, why)| *why == LeftAlone::ChangedSince)
                .map(|(change, _)| {
                    change
                        .after
                        .as_ref()
                        .or(change.before.as_ref())
                        .map_or_else(String::new, |l| l.name.clone())
                })
                .collect(),
            labels_holding_decisions: applied
                .labels_left
                .iter()
                .filter(|(_, why)| *why == LeftAlone::HoldsDecisions)
                .map(|(change, _)| {
                    change
                        .after
                        .as_ref()
                        .map_or_else(String::new, |l| l.name.clone())
                })
                .collect(),
            ..HistoryReport::default()
        };
        if !applied.labels.is_empty() {
            // Labels put back tag as they did before the step: their automatic tags follow.
            report.retag = Some(match applied.labels.as_slice() {
                [
                    LabelChange {
                        before: Some(_),
                        after: Some(_),
                        label_id,
                    },
                ] => match self.store.label(*label_id)? {
                    Some(label) => self.after_label_edit(&label),
                    None => self.after_vocabulary_edit(),
                },
                _ => self.after_vocabulary_edit(),
            });
            report.labels = applied.labels;
        }
        for change in &applied.changed {
            let (Some(image), Some(label)) = (
                self.store.image(change.image_id)?,
                self.store.label(change.label_id)?,
            ) else {
                continue;
            };
            report.changes.push(HistoryChange {
                change: *change,
                path: image.path,
                label: label.name,
            });
        }
        Ok(Some(report))
    }
}
