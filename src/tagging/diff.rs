//! What a re-tag changes: the automatic tags a plan wants against the ones stored, leaving every
//! pair a person decided alone.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::tagging::Assignment;

/// The automatic tags a re-tag writes: the difference from what is stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagChange {
    /// `(image, label)` pairs whose automatic tag goes.
    pub remove: Vec<(i64, i64)>,
    /// `(image, label, score)`: automatic tags added, or kept with a new score.
    pub upsert: Vec<(i64, i64, f32)>,
}

impl TagChange {
    /// Whether nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.upsert.is_empty()
    }
}

/// What a re-tag changed (or, in a dry run, would change).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetagReport {
    /// Automatic tags added, per label name.
    pub added: BTreeMap<String, u64>,
    /// Automatic tags removed, per label name.
    pub removed: BTreeMap<String, u64>,
    /// Automatic tags that stay.
    pub kept: u64,
    /// Tags a person decided, which re-tagging left alone.
    pub decided: u64,
    /// Photos whose tags were computed.
    pub photos: u64,
    /// Whether the person cancelled it; then no tag changed.
    pub cancelled: bool,
}

impl RetagReport {
    /// Total automatic tags added.
    pub fn total_added(&self) -> u64 {
        self.added.values().sum()
    }

    /// Total automatic tags removed.
    pub fn total_removed(&self) -> u64 {
        self.removed.values().sum()
    }

    /// What `self` and then `next` changed together, per label: a tag one added and the other
    /// removed is neither.
    pub fn then(self, next: &RetagReport) -> RetagReport {
        let mut net: BTreeMap<String, i64> = BTreeMap::new();
        for (report, sign) in [(&self, 1i64), (next, 1)] {
            for (label, n) in &report.added {
                *net.entry(label.clone()).or_default() += sign * *n as i64;
            }
            for (label, n) in &report.removed {
                *net.entry(label.clone()).or_default() -= sign * *n as i64;
            }
        }
        let mut merged = RetagReport {
            kept: next.kept,
            decided: next.decided,
            photos: self.photos.max(next.photos),
            cancelled: self.cancelled || next.cancelled,
            ..RetagReport::default()
        };
        for (label, n) in net {
            if n > 0 {
                merged.added.insert(label, n as u64);
            } else if n < 0 {
                merged.removed.insert(label, (-n) as u64);
            }
        }
        merged
    }
}

/// The difference between the automatic tags `wanted` and the `existing` ones (both covering
/// the same photos and labels), with the pairs in `decided` left out; `names` names labels in the
/// report.
pub fn retag_change(
    wanted: &[Assignment],
    existing: &HashMap<(i64, i64), f32>,
    decided: &HashSet<(i64, i64)>,
    names: &HashMap<i64, String>,
) -> (RetagReport, TagChange) {
    let name = |label: i64| {
        names
            .get(&label)
            .cloned()
            .unwrap_or_else(|| format!("#{label}"))
    };
    let mut report = RetagReport::default();
    let mut change = TagChange::default();
    let mut wanted_pairs = HashSet::with_capacity(wanted.len());
    for a in wanted {
        let key = (a.image_id, a.label_id);
        if decided.contains(&key) || !wanted_pairs.insert(key) {
            continue;
        }
        match existing.get(&key) {
            None => {
                *report.added.entry(name(a.label_id)).or_default() += 1;
                change.upsert.push((a.image_id, a.label_id, a.score));
            }
            Some(old) => {
                report.kept += 1;
                if (old - a.score).abs() > 1e-6 {
                    change.upsert.push((a.image_id, a.label_id, a.score));
                }
            }
        }
    }
    for key in existing.keys() {
        if !wanted_pairs.contains(key) {
            *report.removed.entry(name(key.1)).or_default() += 1;
            change.remove.push(*key);
        }
    }
    change.remove.sort_unstable();
    (report, change)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decided_pairs_are_never_written() {
        let wanted = [
            Assignment {
                image_id: 1,
                label_id: 7,
                score: 0.5,
            },
            Assignment {
                image_id: 2,
                label_id: 7,
                score: 0.5,
            },
        ];
        let existing = HashMap::from([((3, 7), 0.4)]);
        let decided = HashSet::from([(2, 7)]);
        let (report, change) = retag_change(&wanted, &existing, &decided, &HashMap::new());
        assert_eq!(change.upsert, vec![(1, 7, 0.5)]);
        assert_eq!(change.remove, vec![(3, 7)]);
        assert_eq!((report.total_added(), report.total_removed()), (1, 1));
    }
}
