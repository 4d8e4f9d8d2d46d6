//! The vocabulary as a TOML file a person can edit, and the default vocabulary a new library
//! starts with (`assets/vocabulary.toml`): text in, checked labels out, and back.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::domain::{Label, Learned, Mode};
use crate::error::{Error, Result};

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
    learned: Option<Learned>,
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
            learned: raw.learned,
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

/// The text of a vocabulary file holding `templates` and `labels`.
pub fn render(templates: &[String], labels: &[Label]) -> Result<String> {
    let body = toml::to_string(&ExportFile {
        templates,
        label: labels,
    })
    .map_err(|e| Error::invalid(format!("cannot write the vocabulary: {e}")))?;
    Ok(format!(
        "# cliptag vocabulary ({} labels). Edit and import it with `cliptag vocab import`.\n\n{body}",
        labels.len()
    ))
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
