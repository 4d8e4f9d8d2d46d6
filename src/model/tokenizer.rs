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
