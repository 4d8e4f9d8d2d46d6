//! Prompt embeddings: cached per model and precision, the rest through the text encoder, a
//! block at a time with a word on how far it got.

use std::collections::HashMap;

use super::{Library, ModelStatus};
use crate::error::Result;
use crate::model::Embedder;

/// Prompts the text encoder embeds between two reports of how far it got.
const PROMPTS_PER_BLOCK: usize = 32;

impl Library {
    /// What prompt embeddings by `model` in the precision the model runs in now are cached
    /// under: the model's id for f32, `id@bf16` and `id@f16` for the others, so that a library
    /// asked for exact f32 never scores with prompts embedded in bf16.
    pub(crate) fn prompt_cache_key(&self, model: &str) -> String {
        match self.model.precision() {
            crate::model::matmul::Precision::F32 => model.to_string(),
            reduced => format!("{model}@{}", reduced.name()),
        }
    }

    /// Embeddings of prompt texts: from the cache, the rest through the text encoder (which is
    /// loaded only then).
    pub(super) fn text_embeddings(
        &mut self,
        texts: &[String],
    ) -> Result<HashMap<String, Vec<f32>>> {
        let model = self.model.id()?;
        let key = self.prompt_cache_key(&model);
        let cached = self.store.cached_text_embeddings(&key, texts)?;
        let mut out = HashMap::with_capacity(texts.len());
        let mut missing = Vec::new();
        for (text, vector) in texts.iter().zip(cached) {
            match vector {
                Some(vector) => {
                    out.insert(text.clone(), vector);
                }
                None => missing.push(text.clone()),
            }
        }
        if !missing.is_empty() {
            let engine = self.engine()?;
            let vectors = self.embed_prompts(engine.as_ref(), &missing)?;
            if vectors.len() != missing.len() {
                return Err(crate::Error::invalid(
                    "the text encoder returned too few embeddings",
                ));
            }
            let entries: Vec<(String, Vec<f32>)> = missing.into_iter().zip(vectors).collect();
            // A read-only library cannot keep them; they are embedded again next time.
            if self.store.read_only().is_none() {
                self.store
                    .cache_text_embeddings(&self.prompt_cache_key(engine.model_id()), &entries)?;
            }
            out.extend(entries);
        }
        Ok(out)
    }

    /// `prompts` through `engine`'s text encoder, a block at a time, saying how far it got: a
    /// large model takes tens of seconds over a first vocabulary.
    fn embed_prompts(
        &mut self,
        engine: &dyn Embedder,
        prompts: &[String],
    ) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(prompts.len());
        let several = prompts.len() > PROMPTS_PER_BLOCK;
        let started = std::time::Instant::now();
        for block in prompts.chunks(PROMPTS_PER_BLOCK) {
            if several {
                self.model.report(ModelStatus::Loading(format!(
                    "embedding the vocabulary: {} of {} prompts",
                    vectors.len(),
                    prompts.len()
                )));
            }
            vectors.extend(engine.embed_texts(block)?);
        }
        if several {
            self.model.report(ModelStatus::Loading(format!(
                "embedded the vocabulary's {} prompts in {:.1} s",
                prompts.len(),
                started.elapsed().as_secs_f64()
            )));
            self.model
                .report(ModelStatus::Ready(self.model.name.clone()));
        }
        Ok(vectors)
    }
}
