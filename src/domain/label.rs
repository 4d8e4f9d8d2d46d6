//! A label of the vocabulary: a person's own word for something in their photos, with its prompts,
//! mode and threshold.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a label's scores become tags.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Tag where the cosine similarity reaches the threshold.
    #[default]
    Threshold,
    /// Tag where `softmax(logit_scale · [positive, negative])` gives the positive prompt at
    /// least the threshold (a probability).
    Contrast,
    /// Tag where the label is among the image's `top_k` best labels of the vocabulary (softmax
    /// over all enabled labels) with at least the threshold as probability.
    #[serde(rename = "topk")]
    #[value(name = "topk")]
    TopK,
}

impl Mode {
    /// The word used in the database, files and the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Threshold => "threshold",
            Mode::Contrast => "contrast",
            Mode::TopK => "topk",
        }
    }

    /// Reads a mode's word.
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "threshold" => Ok(Mode::Threshold),
            "contrast" => Ok(Mode::Contrast),
            "topk" | "top-k" | "top_k" => Ok(Mode::TopK),
            other => Err(Error::invalid(format!(
                "unknown mode {other:?} (threshold, contrast or topk)"
            ))),
        }
    }

    /// The threshold a new label of this mode starts with, for a model that scores threshold
    /// labels as probabilities (SigLIP) or as cosines (CLIP).
    pub fn default_threshold_in(self, probability: bool) -> f32 {
        match (self, probability) {
            (Mode::Threshold, true) => DEFAULT_PROBABILITY_THRESHOLD,
            _ => self.default_threshold(""),
        }
    }

    /// The threshold a new label of this mode starts with when none is given, for `model`.
    pub fn default_threshold(self, model: &str) -> f32 {
        match self {
            Mode::Threshold => default_cosine_threshold(model),
            Mode::Contrast => 0.6,
            Mode::TopK => 0.1,
        }
    }
}

/// A starting probability for threshold labels of sigmoid-trained models (SigLIP), where each
/// label's score is its own probability `sigmoid(scale · cos + bias)`. 0.1 starts well below
/// the sigmoid's even odds, as zero-shot prompts rarely reach them; it is not measured on real
/// weights (none can be downloaded where cliptag is built), and the slider shows live what any
/// value would tag.
pub const DEFAULT_PROBABILITY_THRESHOLD: f32 = 0.1;

/// A starting cosine threshold for new labels.
///
/// Cosine scores of different CLIP models are not comparable. For OpenAI's ViT-B/32, tools built
/// on it treat 0.22–0.35 as normal strictness; 0.26 starts in that band. Other models get the
/// same starting point until someone measures them; the threshold slider shows live what any
/// value would tag.
pub fn default_cosine_threshold(_model: &str) -> f32 {
    0.26
}

/// A label of the vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Database id; 0 for a label not stored yet.
    #[serde(skip)]
    pub id: i64,
    /// The tag's name; `/` separates levels of a hierarchy (`Animals/Dog`).
    pub name: String,
    /// Prompts describing the label; empty means the vocabulary's templates filled with the name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<String>,
    /// The opposite prompt for contrast mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative: Option<String>,
    #[serde(default)]
    pub mode: Mode,
    /// Meaning depends on the mode (see [`Mode`]).
    pub threshold: f32,
    /// How many of the best labels count in top-k mode.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub top_k: u32,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What the label learned from a person's decisions under the model the library scores
    /// with (see [`Learned`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub learned: Option<Learned>,
    /// What it learned under other models the library used: kept for a switch back, and
    /// carried in vocabulary files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned_elsewhere: Vec<Learned>,
}

/// What a label learned from a person's accepts and rejects, for one model: the direction its
/// photos' embeddings are scored against instead of its prompts', with the label's threshold
/// re-fitted to the decisions. A reset brings back the prompts and the threshold before learning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// The model whose embedding space `direction` lives in; with another model the label is
    /// scored by its prompts.
    pub model: String,
    /// The label's direction, fitted to the decisions (unit length), written as base64 of
    /// little-endian f32s in vocabulary files.
    #[serde(with = "base64_vector")]
    pub direction: Vec<f32>,
    /// The threshold the label had before it learned.
    pub zero_shot_threshold: f32,
    /// The accepted (and added) photos it learned from.
    pub positives: u32,
    /// The rejected photos it learned from.
    pub negatives: u32,
    /// For what it learned under a model other than the library's: the label's threshold under
    /// that model, which its learning set (the library's own model's is the label's threshold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

impl Label {
    /// The learned direction, if it belongs to `model`'s embedding space.
    pub fn learned_for(&self, model: &str) -> Option<&Learned> {
        self.learned.as_ref().filter(|l| l.model == model)
    }
}

/// A vector as base64 of its little-endian f32 bytes.
mod base64_vector {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(vector: &[f32], serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(serde::de::Error::custom)?;
        if !bytes.len().is_multiple_of(4) {
            return Err(serde::de::Error::custom(
                "a learned direction is whole f32 values",
            ));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn one() -> u32 {
    1
}

fn is_one(k: &u32) -> bool {
    *k == 1
}

fn yes() -> bool {
    true
}

impl Label {
    /// A new label with the template prompts and the mode's default threshold for `model`.
    pub fn new(name: &str, model: &str) -> Self {
        Label {
            id: 0,
            name: name.trim().to_string(),
            prompts: Vec::new(),
            negative: None,
            mode: Mode::Threshold,
            threshold: Mode::Threshold.default_threshold(model),
            top_k: 1,
            enabled: true,
            learned: None,
            learned_elsewhere: Vec::new(),
        }
    }

    /// The leaf of a hierarchical name: `Dog` for `Animals/Dog`.
    pub fn leaf(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name).trim()
    }

    /// The prompts that describe the label: its own, or the templates filled with its leaf name.
    pub fn prompts(&self, templates: &[String]) -> Vec<String> {
        if !self.prompts.is_empty() {
            return self.prompts.clone();
        }
        let leaf = self.leaf().to_lowercase();
        templates.iter().map(|t| fill_template(t, &leaf)).collect()
    }

    /// Checks the label and tidies its name; the error says what is wrong.
    pub fn validate(&mut self) -> Result<()> {
        let parts: Vec<&str> = self.name.split('/').map(str::trim).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(Error::invalid(if self.name.trim().is_empty() {
                "a label needs a name".to_string()
            } else {
                format!("label {:?} has an empty level", self.name)
            }));
        }
        // What XML cannot hold, and DEL and the C1 controls, which exiftool drops from a
        // keyword (the sidecar would no longer say the label's name).
        if let Some(c) = self
            .name
            .chars()
            .find(|&c| !fits_xml(c) || ('\u{7F}'..='\u{9F}').contains(&c))
        {
            return Err(Error::invalid(format!(
                "label {:?} contains the control character U+{:04X}, which keywords in sidecars \
                 cannot hold",
                self.name, c as u32
            )));
        }
        if self.name.chars().count() > MAX_NAME_CHARS {
            return Err(Error::invalid(format!(
                "label {:?}…: a name is at most {MAX_NAME_CHARS} characters",
                self.name.chars().take(40).collect::<String>()
            )));
        }
        for prompt in self.prompts.iter().chain(&self.negative) {
            if prompt.chars().count() > MAX_PROMPT_CHARS {
                return Err(Error::invalid(format!(
                    "label {:?}: a prompt is at most {MAX_PROMPT_CHARS} characters (the model \
                     reads only the first 77 tokens)",
                    self.name
                )));
            }
            if let Some(c) = prompt.chars().find(|&c| !fits_xml(c)) {
                return Err(Error::invalid(format!(
                    "label {:?}: a prompt contains the control character U+{:04X}",
                    self.name, c as u32
                )));
            }
        }
        self.name = parts.join("/");
        self.prompts = self
            .prompts
            .iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        self.negative = self
            .negative
            .take()
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty());
        if !self.threshold.is_finite() {
            return Err(Error::invalid(format!(
                "label {:?}: the threshold must be a number",
                self.name
            )));
        }
        // A learned direction scores every photo: one of zero length or with a value that is
        // not a number would give every photo the same meaningless score.
        for learned in self.learned.iter().chain(&self.learned_elsewhere) {
            let norm: f32 = learned.direction.iter().map(|v| v * v).sum::<f32>().sqrt();
            if !norm.is_finite() || norm < 1e-6 || !learned.zero_shot_threshold.is_finite() {
                return Err(Error::invalid(format!(
                    "label {:?}: what it learned under {} is damaged (its direction is not a \
                     finite, non-zero vector); remove `learned` from the file to import it \
                     scored by its prompts",
                    self.name, learned.model
                )));
            }
        }
        match self.mode {
            Mode::Threshold if !(-1.0..=1.0).contains(&self.threshold) => {
                Err(Error::invalid(format!(
                    "label {:?}: a cosine threshold must be between -1 and 1",
                    self.name
                )))
            }
            Mode::Contrast | Mode::TopK if !(0.0..=1.0).contains(&self.threshold) => {
                Err(Error::invalid(format!(
                    "label {:?}: a {} threshold is a probability between 0 and 1",
                    self.name,
                    self.mode.as_str()
                )))
            }
            Mode::Contrast if self.negative.is_none() => Err(Error::invalid(format!(
                "label {:?}: contrast mode needs a negative prompt",
                self.name
            ))),
            Mode::TopK if self.top_k == 0 => Err(Error::invalid(format!(
                "label {:?}: top-k needs k of at least 1",
                self.name
            ))),
            _ => Ok(()),
        }
    }
}

/// The longest label name, in characters: a keyword in a sidecar and a row of the sidebar.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest prompt, in characters; the text encoders read 64 or 77 tokens of it at most.
pub const MAX_PROMPT_CHARS: usize = 1000;

/// Whether XML 1.0 can hold `c` at all (escaped or not): sidecars and vocabulary files must stay
/// well-formed.
pub fn fits_xml(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Fills `{}` (or `{label}`) in a template with `name`; a template without a placeholder gets the
/// name appended.
pub fn fill_template(template: &str, name: &str) -> String {
    if template.contains("{}") {
        template.replace("{}", name)
    } else if template.contains("{label}") {
        template.replace("{label}", name)
    } else {
        format!("{} {name}", template.trim_end())
    }
}

/// The templates a new library starts with: a few of CLIP's own ImageNet prompt templates that
/// suit personal photos.
pub fn default_templates() -> Vec<String> {
    [
        "a photo of a {}.",
        "a good photo of a {}.",
        "a close-up photo of a {}.",
        "a photo of the {}.",
    ]
    .map(String::from)
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_characters_xml_cannot_hold_are_refused() {
        for name in [
            "Cat\u{1}",
            "Esc\u{1b}ape",
            "Not\u{FFFE}char",
            "NUL\0",
            "a\u{7f}b",
            "c1\u{85}x",
            "c1\u{9b}x",
        ] {
            let error = Label::new(name, "m").validate().unwrap_err().to_string();
            assert!(error.contains("control character U+"), "{name:?}: {error}");
        }
        assert!(Label::new("Tom & \"Jerry\" ☕ 🐱", "m").validate().is_ok());
        // XML holds tabs and line breaks (as character data).
        assert!(Label::new("Tab\tbed", "m").validate().is_ok());
    }

    #[test]
    fn names_and_prompts_are_bounded() {
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert!(Label::new(&long, "m").validate().is_err());
        assert!(
            Label::new(&"x".repeat(MAX_NAME_CHARS), "m")
                .validate()
                .is_ok()
        );
        let mut label = Label::new("Cat", "m");
        label.prompts = vec!["y".repeat(MAX_PROMPT_CHARS + 1)];
        assert!(label.validate().is_err());
    }

    #[test]
    fn templates_fill_the_leaf_name() {
        let label = Label::new("Animals/Dog", "m");
        assert_eq!(
            label.prompts(&["a photo of a {}.".into()]),
            vec!["a photo of a dog.".to_string()]
        );
    }

    #[test]
    fn empty_and_blank_level_names_are_refused() {
        for name in ["", "  ", "Animals/", "/Dog", "Animals//Dog"] {
            let mut label = Label::new(name, "m");
            assert!(label.validate().is_err(), "{name:?} passed");
        }
        let mut label = Label::new(" Animals / Dog ", "m");
        label.validate().unwrap();
        assert_eq!(label.name, "Animals/Dog");
    }

    #[test]
    fn contrast_needs_a_negative_prompt() {
        let mut label = Label::new("Cat", "m");
        label.mode = Mode::Contrast;
        label.threshold = 0.5;
        assert!(label.validate().is_err());
        label.negative = Some("not a photo of a cat".into());
        label.validate().unwrap();
    }
}
