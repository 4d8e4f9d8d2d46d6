//! What a person sees and decides: photos and where they stand, labels, tags and where each tag
//! came from. Every face of cliptag (the app, the command line) and every layer below the core
//! (the store, the tagger) speaks in these types; none of them owns them.

mod label;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use label::{
    Label, Learned, MAX_NAME_CHARS, MAX_PROMPT_CHARS, Mode, default_cosine_threshold,
    default_templates, fill_template, fits_xml,
};

/// Where a known file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageStatus {
    /// Seen but not indexed yet (or changed since).
    Pending,
    /// Indexed; it has an embedding.
    Ok,
    /// Could not be read or decoded; the reason is kept.
    Error,
    /// Gone from disk; its tags are kept until the person purges it.
    Missing,
}

impl ImageStatus {
    /// The word stored in the database and printed by `cliptag files`.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Pending => "pending",
            ImageStatus::Ok => "ok",
            ImageStatus::Error => "error",
            ImageStatus::Missing => "missing",
        }
    }

    /// Reads the stored word.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "pending" => Ok(ImageStatus::Pending),
            "ok" => Ok(ImageStatus::Ok),
            "error" => Ok(ImageStatus::Error),
            "missing" => Ok(ImageStatus::Missing),
            other => Err(Error::invalid(format!("unknown image status {other:?}"))),
        }
    }

    /// Whether the file belongs in the list of problems (unreadable, or gone).
    pub fn is_problem(self) -> bool {
        matches!(self, ImageStatus::Error | ImageStatus::Missing)
    }
}

/// Where a tag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagSource {
    /// Computed from the label's scores.
    Auto,
    /// A person confirmed an automatic tag.
    Accepted,
    /// A person said the label does not apply; it never comes back automatically.
    Rejected,
    /// A person added the tag by hand.
    Manual,
}

impl TagSource {
    /// The word stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            TagSource::Auto => "auto",
            TagSource::Accepted => "accepted",
            TagSource::Rejected => "rejected",
            TagSource::Manual => "manual",
        }
    }

    /// Reads the stored word.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "auto" => Ok(TagSource::Auto),
            "accepted" => Ok(TagSource::Accepted),
            "rejected" => Ok(TagSource::Rejected),
            "manual" => Ok(TagSource::Manual),
            other => Err(Error::invalid(format!("unknown tag source {other:?}"))),
        }
    }

    /// Whether the tag puts the label on the image (everything but a rejection).
    pub fn applies(self) -> bool {
        self != TagSource::Rejected
    }

    /// Whether a person made this decision.
    pub fn is_personal(self) -> bool {
        self != TagSource::Auto
    }
}

/// A person's decision on one photo's tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// The label applies: an automatic tag becomes accepted, otherwise the tag is added by hand.
    Apply,
    /// The label does not apply; automatic tagging will never put it back.
    Reject,
    /// Forget the decision; automatic tagging decides the pair again.
    Clear,
}

impl Decision {
    /// The tag a decision leaves, given the tag the photo has now.
    pub fn source(self, current: Option<TagSource>) -> Option<TagSource> {
        match self {
            Decision::Apply if matches!(current, Some(TagSource::Auto | TagSource::Accepted)) => {
                Some(TagSource::Accepted)
            }
            Decision::Apply => Some(TagSource::Manual),
            Decision::Reject => Some(TagSource::Rejected),
            Decision::Clear => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applying_confirms_an_automatic_tag_and_adds_a_missing_one() {
        assert_eq!(
            Decision::Apply.source(Some(TagSource::Auto)),
            Some(TagSource::Accepted)
        );
        assert_eq!(Decision::Apply.source(None), Some(TagSource::Manual));
        assert_eq!(
            Decision::Apply.source(Some(TagSource::Rejected)),
            Some(TagSource::Manual)
        );
        assert_eq!(Decision::Clear.source(Some(TagSource::Manual)), None);
    }

    #[test]
    fn stored_words_round_trip() {
        for s in [
            TagSource::Auto,
            TagSource::Accepted,
            TagSource::Rejected,
            TagSource::Manual,
        ] {
            assert_eq!(TagSource::parse(s.as_str()).unwrap(), s);
        }
        for s in [
            ImageStatus::Pending,
            ImageStatus::Ok,
            ImageStatus::Error,
            ImageStatus::Missing,
        ] {
            assert_eq!(ImageStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(TagSource::parse("robot").is_err());
    }
}
