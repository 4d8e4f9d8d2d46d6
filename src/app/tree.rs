//! The vocabulary as a tree: labels named `Animals/Pets/Dog` sit in the groups `Animals` and
//! `Animals/Pets`, as in Lightroom's keyword list or digiKam's tag tree.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::library::LabelEntry;

/// One line of the tree as shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Group {
        /// The group's full name, `Animals/Pets`.
        path: String,
        /// Its last part, `Pets`.
        name: String,
        depth: usize,
        /// Photos tagged with any label of the group.
        count: usize,
        /// How many of its labels are enabled, of how many.
        enabled: (usize, usize),
        expanded: bool,
        /// The position in the snapshot's labels of a label named as the group itself.
        own_label: Option<usize>,
    },
    Label {
        /// The position in the snapshot's labels.
        index: usize,
        /// The label's last part, `Dog`.
        name: String,
        depth: usize,
    },
}

#[derive(Default)]
struct Node {
    /// The name as the first label that reached this node spells it.
    name: String,
    label: Option<usize>,
    children: BTreeMap<String, Node>,
}

/// The rows to show: groups (collapsed unless in `expanded`, or while a filter is typed) and
/// labels, in name order. With a filter, a row shows when its full name contains the filter or
/// something under it does, so matching labels keep their groups visible.
pub fn rows(
    labels: &[LabelEntry],
    group_counts: &HashMap<String, usize>,
    expanded: &HashSet<String>,
    filter: &str,
) -> Vec<Row> {
    let mut root = Node::default();
    for (index, entry) in labels.iter().enumerate() {
        let mut node = &mut root;
        for part in entry.label.name.split('/') {
            node = node
                .children
                .entry(part.to_lowercase())
                .or_insert_with(|| Node {
                    name: part.to_string(),
                    ..Node::default()
                });
        }
        node.label = Some(index);
    }
    let filter = filter.trim().to_lowercase();
    let mut out = Vec::new();
    for child in root.children.values() {
        flatten(
            child,
            "",
            0,
            labels,
            group_counts,
            expanded,
            &filter,
            &mut out,
        );
    }
    out
}

/// Whether the node or anything under it matches the filter.
fn matches(node: &Node, path: &str, filter: &str) -> bool {
    path.to_lowercase().contains(filter)
        || node
            .children
            .values()
            .any(|c| matches(c, &format!("{path}/{}", c.name), filter))
}

#[allow(clippy::too_many_arguments)]
fn flatten(
    node: &Node,
    parent: &str,
    depth: usize,
    labels: &[LabelEntry],
    group_counts: &HashMap<String, usize>,
    expanded: &HashSet<String>,
    filter: &str,
    out: &mut Vec<Row>,
) {
    let path = if parent.is_empty() {
        node.name.clone()
    } else {
        format!("{parent}/{}", node.name)
    };
    if !filter.is_empty() && !matches(node, &path, filter) {
        return;
    }
    if node.children.is_empty() {
        if let Some(index) = node.label {
            out.push(Row::Label {
                index,
                name: node.name.clone(),
                depth,
            });
        }
        return;
    }
    let mut enabled = (0, 0);
    count_enabled(node, labels, &mut enabled);
    let open = !filter.is_empty() || expanded.contains(&path);
    out.push(Row::Group {
        name: node.name.clone(),
        depth,
        count: group_counts.get(&path.to_lowercase()).copied().unwrap_or(0),
        enabled,
        expanded: open,
        own_label: node.label,
        path: path.clone(),
    });
    if open {
        for child in node.children.values() {
            flatten(
                child,
                &path,
                depth + 1,
                labels,
                group_counts,
                expanded,
                filter,
                out,
            );
        }
    }
}

fn count_enabled(node: &Node, labels: &[LabelEntry], enabled: &mut (usize, usize)) {
    if let Some(index) = node.label {
        enabled.1 += 1;
        enabled.0 += usize::from(labels[index].label.enabled);
    }
    for child in node.children.values() {
        count_enabled(child, labels, enabled);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Label;

    fn entries(names: &[&str]) -> Vec<LabelEntry> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| LabelEntry {
                label: Label {
                    id: i as i64 + 1,
                    enabled: !n.ends_with("Off"),
                    ..Label::new(n, "m")
                },
                count: 1,
            })
            .collect()
    }

    fn shown(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| match r {
                Row::Group { path, .. } => format!("[{path}]"),
                Row::Label { name, depth, .. } => format!("{}{name}", " ".repeat(*depth)),
            })
            .collect()
    }

    #[test]
    fn groups_collapse_expand_and_count_their_labels() {
        let labels = entries(&[
            "Animals/Cat",
            "Animals/Pets/Dog",
            "Animals/Pets/HamsterOff",
            "Sky",
        ]);
        let counts = HashMap::from([("animals".to_string(), 7)]);
        let collapsed = rows(&labels, &counts, &HashSet::new(), "");
        assert_eq!(shown(&collapsed), ["[Animals]", "Sky"]);
        match &collapsed[0] {
            Row::Group { count, enabled, .. } => assert_eq!((*count, *enabled), (7, (2, 3))),
            other => panic!("{other:?}"),
        }
        let open = HashSet::from(["Animals".to_string(), "Animals/Pets".to_string()]);
        assert_eq!(
            shown(&rows(&labels, &counts, &open, "")),
            [
                "[Animals]",
                " Cat",
                "[Animals/Pets]",
                "  Dog",
                "  HamsterOff",
                "Sky"
            ]
        );
    }

    #[test]
    fn a_filter_keeps_the_parents_of_what_matches() {
        let labels = entries(&["Animals/Cat", "Animals/Pets/Dog", "Food/Dog food", "Sky"]);
        let rows = rows(&labels, &HashMap::new(), &HashSet::new(), "dog");
        assert_eq!(
            shown(&rows),
            [
                "[Animals]",
                "[Animals/Pets]",
                "  Dog",
                "[Food]",
                " Dog food"
            ]
        );
    }

    #[test]
    fn a_label_named_like_a_group_is_the_groups_own() {
        let labels = entries(&["Animals", "Animals/Cat"]);
        let rows = rows(&labels, &HashMap::new(), &HashSet::new(), "");
        assert!(matches!(
            rows[..],
            [Row::Group {
                own_label: Some(0),
                ..
            }]
        ));
    }
}
