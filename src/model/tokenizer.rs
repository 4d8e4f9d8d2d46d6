//! CLIP's byte-level BPE tokenizer from a `tokenizer.json`, with CLIP's truncation and padding
//! rules (which the hub's `tokenizer.json` does not configure itself).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const START: &str = "<|startoftext|>";
const END: &str = "<|endoftext|>";

/// Turns prompts into token ids the text tower accepts.
pub struct ClipTokenizer {
    inner: tokenizers::Tokenizer,
    start_id: u32,
    end_id: u32,
    context: usize,
    path: PathBuf,
}

impl ClipTokenizer {
    /// Loads `tokenizer.json`; `context` is the model's number of text positions (77).
    pub fn from_file(path: &Path, context: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::model(path, "file not found"));
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::model(path, format!("not a valid tokenizer.json: {e}")))?;
        let start_id = inner.token_to_id(START).ok_or_else(|| {
            Error::model(path, format!("has no {START} token; not a CLIP tokenizer"))
        })?;
        let end_id = inner.token_to_id(END).ok_or_else(|| {
            Error::model(path, format!("has no {END} token; not a CLIP tokenizer"))
        })?;
        if context < 2 {
            return Err(Error::model(
                path,
                "the model's text context is shorter than 2 tokens",
            ));
        }
        Ok(ClipTokenizer {
            inner,
            start_id,
            end_id,
            context,
            path: path.to_path_buf(),
        })
    }

    /// Ids of `text` with the start and end tokens, untruncated.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::model(&self.path, format!("cannot tokenize {text:?}: {e}")))?;
        let mut ids = encoding.get_ids().to_vec();
        // The hub's tokenizer.json adds both through its post-processor; one without it still
        // gets them, because the text tower pools at the end token.
        if ids.first() != Some(&self.start_id) {
            ids.insert(0, self.start_id);
        }
        if ids.len() < 2 || ids.last() != Some(&self.end_id) {
            ids.push(self.end_id);
        }
        Ok(ids)
    }

    /// Ids of `text` cut to the model's context as CLIP does: the first `context − 1` tokens and
    /// then the end token.
    pub fn encode_truncated(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode(text)?;
        if ids.len() > self.context {
            ids.truncate(self.context - 1);
            ids.push(self.end_id);
        }
        Ok(ids)
    }

    /// Truncated ids of every text, padded with the end token to the longest of the batch.
    ///
    /// Padding to the longest prompt instead of the full context gives the same features (the
    /// pooled token is the first end token, and the causal mask hides everything after it)
    /// for a fraction of the work on short tag prompts.
    pub fn encode_batch(&self, texts: &[impl AsRef<str>]) -> Result<Vec<Vec<u32>>> {
        let mut rows = texts
            .iter()
            .map(|t| self.encode_truncated(t.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        let longest = rows.iter().map(Vec::len).max().unwrap_or(0);
        for row in &mut rows {
            row.resize(longest, self.end_id);
        }
        Ok(rows)
    }

    /// `encode_truncated` padded with the end token to the full context, as transformers'
    /// `padding="max_length"` does.
    pub fn encode_padded(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.encode_truncated(text)?;
        ids.resize(self.context, self.end_id);
        Ok(ids)
    }
}

/// SigLIP's and SigLIP 2's SentencePiece-style tokenizer from a `tokenizer.json`, used as
/// `SiglipProcessor` is (`padding="max_length"`, truncated at the model's 64 positions).
///
/// Prompts are lower-cased first: both SigLIP and SigLIP 2 were trained on lower-cased text, and
/// their documentation asks for the same preparation of labels.
pub struct SiglipTokenizer {
    /// Without truncation or padding (the `tokenize` command's ids).
    plain: tokenizers::Tokenizer,
    /// Truncated to and padded to the model's positions, as the text tower needs.
    padded: tokenizers::Tokenizer,
    pad_id: u32,
    context: usize,
    path: PathBuf,
}

impl SiglipTokenizer {
    /// Loads `tokenizer.json` for a model with `context` text positions. The pad token is the
    /// one the file's own padding names, else its `<pad>` token (SigLIP 2's Gemma vocabulary),
    /// else `config_pad_id` (the config's `pad_token_id`; transformers' default is 1, which
    /// is `</s>` in SigLIP's own vocabulary).
    pub fn from_file(path: &Path, context: usize, config_pad_id: Option<u32>) -> Result<Self> {
        if !path.is_file() {
            return Err(Error::model(path, "file not found"));
        }
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| Error::model(path, format!("not a valid tokenizer.json: {e}")))?;
        if context == 0 {
            return Err(Error::model(path, "the model has no text positions"));
        }
        let pad_id = inner
            .get_padding()
            .map(|p| p.pad_id)
            .or_else(|| inner.token_to_id("<pad>"))
            .or(config_pad_id)
            .unwrap_or(1);
        let pad_token = inner.id_to_token(pad_id).ok_or_else(|| {
            Error::model(
                path,
                format!("its pad token id {pad_id} is not in the vocabulary"),
            )
        })?;
        let mut plain = inner;
        plain
            .with_truncation(None)
            .map_err(|e| Error::model(path, format!("cannot configure truncation: {e}")))?;
        plain.with_padding(None);
        let mut padded = plain.clone();
        padded
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: context,
                ..Default::default()
            }))
            .map_err(|e| Error::model(path, format!("cannot configure truncation: {e}")))?;
        padded.with_padding(Some(tokenizers::PaddingParams {
            strategy: tokenizers::PaddingStrategy::Fixed(context),
            pad_id,
            pad_token,
            ..Default::default()
        }));
        Ok(SiglipTokenizer {
            plain,
            padded,
            pad_id,
            context,
            path: path.to_path_buf(),
        })
    }

    fn run(&self, tokenizer: &tokenizers::Tokenizer, text: &str) -> Result<Vec<u32>> {
        let encoding = tokenizer
            .encode(text.to_lowercase(), true)
            .map_err(|e| Error::model(&self.path, format!("cannot tokenize {text:?}: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Ids of the lower-cased `text` with the tokenizer's special tokens (`</s>` at the end),
    /// untruncated.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.run(&self.plain, text)
    }

    /// Ids of `text` truncated and padded with the pad token to exactly the model's positions.
    pub fn encode_padded(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = self.run(&self.padded, text)?;
        // A tokenizer.json whose post-processor adds more than fits is cut here too.
        ids.resize(self.context, self.pad_id);
        Ok(ids)
    }

    /// The pad token's id.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }
}

/// The tokenizer of either model family.
// Built once per loaded model and never moved in a hot path: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Tokenizer {
    Clip(ClipTokenizer),
    Siglip(SiglipTokenizer),
}

impl Tokenizer {
    /// Ids of `text` with the family's special tokens, untruncated (the `tokenize` command).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Clip(t) => t.encode(text),
            Tokenizer::Siglip(t) => t.encode(text),
        }
    }

    /// Ids of `text` truncated and padded to the model's full context, as transformers'
    /// `padding="max_length"` gives them.
    pub fn encode_padded(&self, text: &str) -> Result<Vec<u32>> {
        match self {
            Tokenizer::Clip(t) => t.encode_padded(text),
            Tokenizer::Siglip(t) => t.encode_padded(text),
        }
    }

    /// Rows of ids for the text tower: CLIP's padded to the longest of the batch, SigLIP's to
    /// the full context (its text tower pools the last position).
    pub fn encode_batch(&self, texts: &[impl AsRef<str>]) -> Result<Vec<Vec<u32>>> {
        match self {
            Tokenizer::Clip(t) => t.encode_batch(texts),
            Tokenizer::Siglip(t) => texts
                .iter()
                .map(|text| t.encode_padded(text.as_ref()))
                .collect(),
        }
    }
}
