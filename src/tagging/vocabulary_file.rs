//! The vocabulary as a TOML file a person can edit: import, export, and the default vocabulary
//! a new library starts with (`assets/vocabulary.toml`).

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::labels::{insert_label, update_label_row};
use crate::tagging::vocabulary::{Label, Mode};
use crate::tagging::{set_templates, templates};

/// The vocabulary every new library starts with.
pub const DEFAULT_VOCABULARY: &str = include_str!("../../assets/vocabulary.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLabel {
    name: String,
    #[serde(default)]
    prompts: Vec<String>,
    negative: Option<String>,
    mode: Option<Mode>,
    threshold: Option<f32>,
    top_k: Option<u32>,
    enabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabularyFile {
    templates: Option<Vec<String>>,
    #[serde(default)]
    label: Vec<FileLabel>,
}

#[derive(Serialize)]
struct ExportFile<'a> {
    templates: &'a [String],
    label: &'a [Label],
}

/// A parsed and checked vocabulary file.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    pub templates: Option<Vec<String>>,
    pub labels: Vec<Label>,
}

/// Parses a vocabulary file's text, checking every label; `source` names it in errors.
pub fn parse(text: &str, source: &str, model: &str) -> Result<Vocabulary> {
    let file: VocabularyFile = toml::from_str(text)
        .map_err(|e| Error::invalid(format!("{source}: not a valid vocabulary file: {e}")))?;
    let mut seen = HashSet::new();
    let mut labels = Vec::with_capacity(file.label.len());
    for raw in file.label {
        let mode = raw.mode.unwrap_or_default();
        let mut label = Label {
            id: 0,
            name: raw.name,
            prompts: raw.prompts,
            negative: raw.negative,
            mode,
            threshold: raw
                .threshold
                .unwrap_or_else(|| mode.default_threshold(model)),
            top_k: raw.top_k.unwrap_or(1),
            enabled: raw.enabled.unwrap_or(true),
        };
        label
            .validate()
            .map_err(|e| Error::invalid(format!("{source}: {e}")))?;
        if !seen.insert(label.name.to_lowercase()) {
            return Err(Error::invalid(format!(
                "{source}: label {:?} appears twice",
                label.name
            )));
        }
        labels.push(label);
    }
    if let Some(templates) = &file.templates
        && templates.iter().all(|t| t.trim().is_empty())
    {
        return Err(Error::invalid(format!("{source}: `templates` is empty")));
    }
    Ok(Vocabulary {
        templates: file.templates,
        labels,
    })
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub added: usize,
    pub updated: usize,
}

/// Merges `vocabulary` into the library: new labels are added, labels with a known name are
/// replaced, all in one transaction (nothing is written if any part fails).
pub fn import(store: &mut Store, vocabulary: &Vocabulary) -> Result<ImportSummary> {
    let existing: std::collections::HashMap<String, i64> = store
        .labels()?
        .into_iter()
        .map(|l| (l.name.to_lowercase(), l.id))
        .collect();
    let templates_json = vocabulary
        .templates
        .as_ref()
        .map(|t| serde_json::to_string(t).expect("strings serialise. This is a bug."));
    store.durable(|tx| {
        let mut summary = ImportSummary::default();
        if let Some(json) = &templates_json {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('templates', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [json],
            )?;
        }
        for label in &vocabulary.labels {
            match existing.get(&label.name.to_lowercase()) {
                Some(id) => {
                    update_label_row(tx, *id, label)?;
                    summary.updated += 1;
                }
                None => {
                    insert_label(tx, label)?;
                    summary.added += 1;
                }
            }
        }
        Ok(summary)
    })
}

/// Reads and imports a vocabulary file.
pub fn import_file(store: &mut Store, path: &Path, model: &str) -> Result<ImportSummary> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let vocabulary = parse(&text, &path.display().to_string(), model)?;
    import(store, &vocabulary)
}

/// The library's vocabulary as the text of a vocabulary file.
pub fn export_text(store: &Store) -> Result<String> {
    let labels = store.labels()?;
    let templates = templates(store)?;
    let body = toml::to_string(&ExportFile {
        templates: &templates,
        label: &labels,
    })
    .map_err(|e| Error::invalid(format!("cannot write the vocabulary: {e}")))?;
    Ok(format!(
        "# cliptag vocabulary ({} labels). Edit and import it with `cliptag vocab import`.\n\n{body}",
        labels.len()
    ))
}

/// Writes the vocabulary file atomically (a temporary file renamed into place).
pub fn export_file(store: &Store, path: &Path) -> Result<usize> {
    let text = export_text(store)?;
    crate::export::write_atomically(path, text.as_bytes())?;
    Ok(store.labels()?.len())
}

/// Gives a library that never had a vocabulary the default one (once: a person who deletes every
/// label is not given them back).
pub fn seed_default(store: &mut Store, model: &str) -> Result<()> {
    if store.setting("vocabulary_seeded")?.is_some() {
        return Ok(());
    }
    if store.labels()?.is_empty() {
        let vocabulary = parse(DEFAULT_VOCABULARY, "the default vocabulary", model)?;
        import(store, &vocabulary)?;
        if let Some(t) = &vocabulary.templates {
            set_templates(store, t)?;
        }
    }
    store.set_setting("vocabulary_seeded", "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_vocabulary_parses() {
        let v = parse(DEFAULT_VOCABULARY, "default", "m").unwrap();
        assert!(v.labels.len() >= 140, "{}", v.labels.len());
        assert!(v.templates.is_some());
    }

    #[test]
    fn duplicate_labels_are_refused() {
        let text = "[[label]]\nname = \"Dog\"\n[[label]]\nname = \"dog\"\n";
        let err = parse(text, "v.toml", "m").unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
    }
}
