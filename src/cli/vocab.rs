//! `cliptag vocab`: listing, adding, removing, importing, exporting, learning and grouping
//! labels, and the prompt templates.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;

use super::run::{create, open, print_retag, progress_bar, show_progress};
use super::{GroupAction, VocabAction, tsv};
use crate::domain::Label;
use crate::library::{GroupEdit, LearnReport, RunControl, in_group};

pub(super) fn vocab(db: &Path, action: VocabAction) -> anyhow::Result<ExitCode> {
    let mut library = match action {
        VocabAction::Add { .. } | VocabAction::Import { .. } => create(db, None)?,
        _ => open(db, None)?,
    };
    match action {
        VocabAction::List => {
            if let Some((from, to)) = library.unfinished_switch()? {
                eprintln!(
                    "the library is switching from {from} to {to}: the thresholds listed are \
                     {to}'s; its tags stay {from}'s until `cliptag index` has embedded every photo"
                );
            }
            let mut out = std::io::stdout().lock();
            for l in library.labels()? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    tsv::field(&l.name),
                    l.mode.as_str(),
                    l.threshold,
                    if l.enabled { "enabled" } else { "disabled" },
                    tsv::field(&l.prompts.join(" | "))
                )?;
            }
        }
        VocabAction::Add {
            label,
            prompts,
            negative,
            mode,
            threshold,
            top_k,
            examples,
        } => {
            if negative.is_some() && mode != crate::domain::Mode::Contrast {
                bail!(
                    "--negative is used only with --mode contrast (the label's mode is {})",
                    mode.as_str()
                );
            }
            if top_k.is_some() && mode != crate::domain::Mode::TopK {
                bail!(
                    "--top-k is used only with --mode topk (the label's mode is {})",
                    mode.as_str()
                );
            }
            let top_k = top_k.unwrap_or(1);
            let new = Label {
                id: 0,
                name: label,
                prompts,
                negative,
                mode,
                threshold: match threshold {
                    Some(threshold) => threshold,
                    None => mode.default_threshold_in(library.probability_scores()?),
                },
                top_k,
                enabled: true,
                learned: None,
                learned_elsewhere: Vec::new(),
            };
            if examples.is_empty() {
                let (added, retag) = library.add_label(new)?;
                eprintln!("added {:?}", added.name);
                print_retag(&retag);
            } else {
                let ids = examples
                    .iter()
                    .map(|p| library.find_image(p).map(|row| row.id))
                    .collect::<crate::Result<Vec<_>>>()?;
                let (added, retag) = library.add_label_from_examples(new, &ids)?;
                let distinct: std::collections::HashSet<i64> = ids.iter().copied().collect();
                eprintln!(
                    "added {:?}, learned from {} example photo{} (threshold {:.3})",
                    added.name,
                    distinct.len(),
                    if distinct.len() == 1 { "" } else { "s" },
                    added.threshold
                );
                print_retag(&retag);
            }
        }
        VocabAction::Learn {
            dry_run,
            reset,
            label,
        } => {
            if reset {
                let (label, retag) = library.reset_learning(&label)?;
                eprintln!(
                    "{:?} forgot what it learned: threshold {:.3}, scored by its prompts",
                    label.name, label.threshold
                );
                print_retag(&retag);
            } else {
                print_learned(&library.learn(&label, dry_run)?, dry_run);
            }
        }
        VocabAction::Remove { label } => {
            let (name, decisions, retag) = library.remove_label_named(&label)?;
            eprintln!("{}", crate::library::removed_label_words(&name, decisions));
            print_retag(&retag);
        }
        VocabAction::Group { group, action } => {
            let edit = match action {
                GroupAction::Enable => GroupEdit::Enable(true),
                GroupAction::Disable => GroupEdit::Enable(false),
                GroupAction::Rename { to, merge } => {
                    let target = to.trim().trim_matches('/');
                    let exists = library
                        .labels()?
                        .iter()
                        .any(|l| in_group(&l.name, target) && !in_group(&l.name, &group));
                    if exists && !merge {
                        bail!(
                            "the group {target:?} exists: renaming {group:?} onto it merges the \
                             two (labels of the same name become one); add --merge to do that"
                        );
                    }
                    GroupEdit::Rename(to)
                }
            };
            let (changed, retag) = library.edit_group(&group, &edit)?;
            let what = match &edit {
                GroupEdit::Enable(true) => "enabled".to_string(),
                GroupEdit::Enable(false) => "disabled".to_string(),
                GroupEdit::Rename(to) => format!("moved to {to:?}"),
            };
            let labels = if changed == 1 { "label" } else { "labels" };
            eprintln!("{group:?}: {changed} {labels} {what}");
            print_retag(&retag);
        }
        VocabAction::Templates { set } => {
            if set.is_empty() {
                for template in library.templates()? {
                    println!("{}", tsv::field(&template));
                }
            } else {
                let (templates, retag) = library.set_templates(&set)?;
                eprintln!("{} prompt templates", templates.len());
                print_retag(&retag);
            }
        }
        VocabAction::Import { file } => {
            let bar = progress_bar();
            let (summary, retag) =
                library.import_vocabulary_watched(&file, &RunControl::default(), &mut |p| {
                    show_progress(&bar, &p)
                })?;
            bar.finish_and_clear();
            eprintln!(
                "imported {}: {} added, {} updated",
                file.display(),
                summary.added,
                summary.updated
            );
            if let Some(note) = summary.thresholds_note() {
                eprintln!("{note}");
            }
            print_retag(&retag);
        }
        VocabAction::Export { file } => {
            let n = library.export_vocabulary(&file)?;
            eprintln!("wrote {n} labels to {}", file.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Says what learning changed (or would change).
fn print_learned(report: &LearnReport, dry_run: bool) {
    let (a, b) = (report.agreement_before, report.agreement_after);
    eprintln!(
        "{} {:?} from {} accepted and {} rejected photos: threshold {:.3} -> {:.3}; {} {} \
         automatic tags, {} {}",
        if dry_run { "would learn" } else { "learned" },
        report.label.name,
        report.positives,
        report.negatives,
        report.threshold_before,
        report.label.threshold,
        if dry_run { "would add" } else { "added" },
        report.added,
        if dry_run { "would remove" } else { "removed" },
        report.removed,
    );
    eprintln!(
        "agreement with the decisions: {}/{} before; {}/{} learned, each decision predicted from \
         the others (leave-one-out)",
        a.correct, a.total, b.correct, b.total
    );
    if let Some(retag) = &report.retag {
        print_retag(retag);
    }
}
