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
    learned_elsewhere: Option<Vec<Learned>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VocabularyFile {
    templates: Option<Vec<String>>,
    thresholds_for: Option<ThresholdsFor>,
    #[serde(default)]
    label: Vec<FileLabel>,
}

/// The kind of score a threshold label's threshold is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScoreKind {
    /// A cosine similarity (CLIP models).
    Cosine,
    /// The label's own probability (sigmoid-trained models: SigLIP).
    Probability,
}

impl ScoreKind {
    /// The kind for a model that does (`true`) or does not score probabilities.
    pub fn of(probability: bool) -> Self {
        if probability {
            ScoreKind::Probability
        } else {
            ScoreKind::Cosine
        }
    }
}

/// Which model a file's thresholds were set for, and so what kind of score they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdsFor {
    /// The model's name (a hub id or a folder's name); for people, not checked.
    pub model: String,
    pub scores: ScoreKind,
}

#[derive(Serialize)]
struct ExportFile<'a> {
    templates: &'a [String],
    thresholds_for: &'a ThresholdsFor,
    label: &'a [Label],
}

/// A parsed and checked vocabulary file.
#[derive(Debug, Clone, PartialEq)]
pub struct Vocabulary {
    pub templates: Option<Vec<String>>,
    /// What the thresholds were set for, where the file says.
    pub thresholds_for: Option<ThresholdsFor>,
    pub labels: Vec<Label>,
}

impl Vocabulary {
    /// Fits the file's thresholds to a library whose threshold labels score `kind`: when the
    /// file says its thresholds are of the other kind (a CLIP vocabulary in a SigLIP library,
    /// or back), each threshold label starts at `kind`'s default instead, as a label the model
    /// never saw would. Returns how many thresholds it replaced.
    pub fn fit_thresholds(&mut self, kind: ScoreKind) -> usize {
        let Some(from) = &self.thresholds_for else {
            return 0;
        };
        if from.scores == kind {
            return 0;
        }
        let default = Mode::Threshold.default_threshold_in(kind == ScoreKind::Probability);
        let mut replaced = 0;
        for label in &mut self.labels {
            if label.mode == Mode::Threshold {
                label.threshold = default;
                replaced += 1;
            }
        }
        replaced
    }
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
            learned_elsewhere: raw.learned_elsewhere.unwrap_or_default(),
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
        thresholds_for: file.thresholds_for,
        labels,
    })
}

/// The text of a vocabulary file holding `templates` and `labels`, whose thresholds were set
/// for `thresholds_for`.
pub fn render(
    templates: &[String],
    thresholds_for: &ThresholdsFor,
    labels: &[Label],
) -> Result<String> {
    let body = toml::to_string(&ExportFile {
        templates,
        thresholds_for,
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
    fn a_damaged_learned_direction_is_refused_with_its_label() {
        // Two zeros, and a NaN beside a one.
        for direction in ["AAAAAAAAAAA=", "AADAfwAAgD8="] {
            let text = format!(
                "[[label]]\nname = \"Dog\"\nthreshold = 0.3\n\
                 [label.learned]\nmodel = \"m\"\ndirection = \"{direction}\"\n\
                 zero_shot_threshold = 0.2\npositives = 1\nnegatives = 1\n"
            );
            let error = parse(&text, "v.toml", "m").unwrap_err().to_string();
            assert!(
                error.contains("\"Dog\": what it learned under m is damaged"),
                "{error}"
            );
        }
    }

    #[test]
    fn default_vocabulary_parses() {
        let v = parse(DEFAULT_VOCABULARY, "default", "m").unwrap();
        assert!(v.labels.len() >= 140, "{}", v.labels.len());
        assert!(v.templates.is_some());
        assert_eq!(
            v.thresholds_for,
            Some(ThresholdsFor {
                model: crate::model::hub::DEFAULT_MODEL.into(),
                scores: ScoreKind::Cosine
            })
        );
    }

    #[test]
    fn thresholds_of_the_other_kind_start_at_the_default() {
        let text = "[thresholds_for]\nmodel = \"openai/clip-vit-base-patch32\"\nscores = \"cosine\"\n\
                    [[label]]\nname = \"Dog\"\nthreshold = 0.26\n\
                    [[label]]\nname = \"Cat\"\nmode = \"contrast\"\nnegative = \"a dog\"\nthreshold = 0.7\n";
        let mut same = parse(text, "v.toml", "m").unwrap();
        assert_eq!(same.fit_thresholds(ScoreKind::Cosine), 0);
        assert_eq!(same.labels[0].threshold, 0.26);
        let mut other = parse(text, "v.toml", "m").unwrap();
        assert_eq!(other.fit_thresholds(ScoreKind::Probability), 1);
        assert_eq!(
            other.labels[0].threshold,
            Mode::Threshold.default_threshold_in(true)
        );
        assert_eq!(
            other.labels[1].threshold, 0.7,
            "contrast stays a probability"
        );
        // A file that does not say keeps its thresholds as written.
        let mut unsaid = parse("[[label]]\nname = \"Dog\"\nthreshold = 0.26\n", "v", "m").unwrap();
        assert_eq!(unsaid.fit_thresholds(ScoreKind::Probability), 0);
        // And what export writes says so, and reads back.
        let text = render(
            &["a photo of a {}.".into()],
            &ThresholdsFor {
                model: "google/siglip2-base-patch32-256".into(),
                scores: ScoreKind::Probability,
            },
            &other.labels,
        )
        .unwrap();
        let back = parse(&text, "exported", "m").unwrap();
        assert_eq!(back.thresholds_for.unwrap().scores, ScoreKind::Probability);
        assert_eq!(back.labels, other.labels);
    }

    #[test]
    fn duplicate_labels_are_refused() {
        let text = "[[label]]\nname = \"Dog\"\n[[label]]\nname = \"dog\"\n";
        let err = parse(text, "v.toml", "m").unwrap_err().to_string();
        assert!(err.contains("appears twice"), "{err}");
    }
}
