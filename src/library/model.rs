//! The library's model: which one it is (stored with the library), and loading it only when
//! something must be embedded. Re-indexing an unchanged library, re-tagging from cached prompts,
//! searching with a cached query: none of these load it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};
use crate::model::identity::is_content_id;
use crate::model::matmul::{self, Precision};
use crate::model::{Embedder, Engine, ModelIdentity, ModelSpec, PreprocessConfig, hub};

/// Where the model stands, as the app shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelStatus {
    /// Not needed yet.
    NotLoaded,
    /// Being downloaded or loaded; the text says what is happening.
    Loading(String),
    /// Ready; the model's name.
    Ready(String),
    /// Could not be loaded; the reason, and what the person can do about it.
    Failed(String),
}

/// Finds and loads models (replaceable in tests and benchmarks).
pub trait ModelLoader: Send {
    /// Finds the model (downloading it if needed) and says what it is, without loading it.
    fn identify(&mut self, spec: &ModelSpec, say: &mut dyn FnMut(&str)) -> Result<ModelIdentity>;
    /// How the model wants its images, from its small files alone.
    fn preprocess(
        &mut self,
        spec: &ModelSpec,
        say: &mut dyn FnMut(&str),
    ) -> Result<PreprocessConfig>;
    /// Loads the model.
    fn load(&mut self, spec: &ModelSpec, say: &mut dyn FnMut(&str)) -> Result<Arc<dyn Embedder>>;
}

/// The real loader: CLIP and SigLIP checkpoints from a folder or the Hugging Face hub.
#[derive(Debug, Default)]
pub struct ClipLoader;

/// Download progress in words.
fn downloading(say: &mut dyn FnMut(&str)) -> impl FnMut(&str, u64, u64) + '_ {
    move |name: &str, done: u64, total: u64| {
        if total > 0 {
            say(&format!(
                "downloading {name}: {:.0} of {:.0} MB",
                done as f64 / 1e6,
                total as f64 / 1e6
            ));
        }
    }
}

impl ModelLoader for ClipLoader {
    fn identify(&mut self, spec: &ModelSpec, say: &mut dyn FnMut(&str)) -> Result<ModelIdentity> {
        Ok(ModelIdentity::find(spec, &mut downloading(say))?.0)
    }

    fn preprocess(
        &mut self,
        spec: &ModelSpec,
        say: &mut dyn FnMut(&str),
    ) -> Result<PreprocessConfig> {
        let (_, files) = hub::resolve(spec, &mut downloading(say))?;
        crate::model::preprocess_of(&files)
    }

    fn load(&mut self, spec: &ModelSpec, say: &mut dyn FnMut(&str)) -> Result<Arc<dyn Embedder>> {
        say("loading the model");
        let (engine, _) = Engine::load(spec, &mut downloading(say))?;
        Ok(Arc::new(engine))
    }
}

/// A loader that hands out one model already in memory, whatever the spec, and counts how
/// often it was asked to load (tests and benchmarks).
pub struct FixedLoader {
    engine: Arc<dyn Embedder>,
    loads: Arc<AtomicUsize>,
}

impl FixedLoader {
    /// A loader of `engine`.
    pub fn new(engine: Arc<dyn Embedder>) -> Self {
        FixedLoader {
            engine,
            loads: Arc::default(),
        }
    }

    /// A counter of the loads, readable after the loader is handed over.
    pub fn loads(&self) -> Arc<AtomicUsize> {
        self.loads.clone()
    }
}

impl ModelLoader for FixedLoader {
    fn identify(&mut self, spec: &ModelSpec, _say: &mut dyn FnMut(&str)) -> Result<ModelIdentity> {
        Ok(ModelIdentity {
            id: self.engine.model_id().to_string(),
            name: spec.name(),
            source: spec.clone(),
        })
    }

    fn preprocess(
        &mut self,
        _spec: &ModelSpec,
        _say: &mut dyn FnMut(&str),
    ) -> Result<PreprocessConfig> {
        Ok(self.engine.preprocess_config().clone())
    }

    fn load(&mut self, _spec: &ModelSpec, _say: &mut dyn FnMut(&str)) -> Result<Arc<dyn Embedder>> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        Ok(self.engine.clone())
    }
}

/// What the library knows of its model, loaded or not.
pub(crate) struct ModelSlot {
    loader: Box<dyn ModelLoader>,
    /// Where the model comes from.
    pub source: ModelSpec,
    /// The model's id; `None` until a newly chosen model has been identified.
    id: Option<String>,
    pub name: String,
    engine: Option<Arc<dyn Embedder>>,
    preprocess: Option<PreprocessConfig>,
    /// The library asks for exact f32 arithmetic rather than the fastest the CPU runs.
    exact: bool,
    /// Told whenever the model's status changes.
    observer: Box<dyn FnMut(ModelStatus) + Send>,
}

/// What loading changed about the library's idea of its model.
pub(crate) enum Loaded {
    /// The model is the one the library expected.
    Same,
    /// The library named its model by an older kind of id; this is the model's own.
    Renamed { old: String },
}

impl ModelSlot {
    /// The library's stored model (`id` known), or a newly chosen one (`id` found on first use).
    pub fn new(
        loader: Box<dyn ModelLoader>,
        source: ModelSpec,
        id: Option<String>,
        name: String,
    ) -> Self {
        ModelSlot {
            loader,
            source,
            id,
            name,
            engine: None,
            preprocess: None,
            exact: false,
            observer: Box::new(|_| {}),
        }
    }

    pub fn set_observer(&mut self, observer: Box<dyn FnMut(ModelStatus) + Send>) {
        self.observer = observer;
    }

    /// Chooses another model; it is identified when first needed.
    pub fn switch(&mut self, source: ModelSpec) {
        self.name = source.name();
        self.source = source;
        self.id = None;
        self.unload();
    }

    /// Asks for exact f32 arithmetic (`true`) or the fastest the CPU runs; a loaded model in
    /// another precision is loaded again when next needed.
    pub fn set_exact(&mut self, exact: bool) {
        let before = self.precision();
        self.exact = exact;
        if self.precision() != before {
            self.unload();
        }
    }

    /// Tells the observer how the model stands (work it does after loading).
    pub fn report(&mut self, status: ModelStatus) {
        (self.observer)(status);
    }

    /// Whether the library asks for exact f32 arithmetic.
    pub fn exact(&self) -> bool {
        self.exact
    }

    /// The precision the model embeds in: the loaded model's, or the one it will load in.
    pub fn precision(&self) -> Precision {
        match &self.engine {
            Some(engine) => engine.precision(),
            None => matmul::chosen_precision(self.exact),
        }
    }

    /// The model's id if it is known without finding the model.
    pub fn known_id(&self) -> Option<String> {
        self.id.clone()
    }

    /// Forgets the loaded model so the next use loads it again (a retry after a failure).
    pub fn unload(&mut self) {
        self.engine = None;
        self.preprocess = None;
    }

    /// The model's id, identifying a newly chosen model first.
    pub fn id(&mut self) -> Result<String> {
        if let Some(id) = &self.id {
            return Ok(id.clone());
        }
        let observer = &mut self.observer;
        let mut say = |text: &str| observer(ModelStatus::Loading(text.to_string()));
        match self.loader.identify(&self.source, &mut say) {
            Ok(identity) => {
                self.source = identity.source;
                self.name = identity.name;
                self.id = Some(identity.id.clone());
                (self.observer)(ModelStatus::NotLoaded);
                Ok(identity.id)
            }
            Err(error) => {
                let advice = self.advice(&error);
                (self.observer)(ModelStatus::Failed(advice));
                Err(error)
            }
        }
    }

    /// How the model wants images (from its small files when it is not loaded).
    pub fn preprocess(&mut self) -> Result<PreprocessConfig> {
        if let Some(engine) = &self.engine {
            return Ok(engine.preprocess_config().clone());
        }
        if let Some(config) = &self.preprocess {
            return Ok(config.clone());
        }
        let observer = &mut self.observer;
        let mut say = |text: &str| observer(ModelStatus::Loading(text.to_string()));
        let config = self.loader.preprocess(&self.source, &mut say)?;
        self.preprocess = Some(config.clone());
        Ok(config)
    }

    /// The model, loading it on first use. Loading checks that it is the model the library
    /// knows: one whose files changed under the same name is refused.
    pub fn embedder(&mut self) -> Result<(Arc<dyn Embedder>, Loaded)> {
        if let Some(engine) = &self.engine {
            return Ok((engine.clone(), Loaded::Same));
        }
        let observer = &mut self.observer;
        let mut say = |text: &str| observer(ModelStatus::Loading(text.to_string()));
        let precision = matmul::chosen_precision(self.exact);
        let loaded = matmul::loading_in(precision, || self.loader.load(&self.source, &mut say));
        let engine = match loaded {
            Ok(engine) => engine,
            Err(error) => {
                let advice = self.advice(&error);
                (self.observer)(ModelStatus::Failed(advice));
                return Err(error);
            }
        };
        let found = engine.model_id().to_string();
        let outcome = match self.id.clone() {
            None => Loaded::Same,
            Some(id) if id == found => Loaded::Same,
            Some(old) if !is_content_id(&old) => Loaded::Renamed { old },
            Some(_) => {
                let error = Error::model(
                    self.source.to_string(),
                    format!(
                        "this is no longer the model the library was indexed with (its files \
                         changed); pass `--model {}` to index the library with it (its photos are \
                         embedded again)",
                        self.source
                    ),
                );
                (self.observer)(ModelStatus::Failed(error.to_string()));
                return Err(error);
            }
        };
        self.id = Some(found);
        self.engine = Some(engine.clone());
        (self.observer)(ModelStatus::Ready(self.name.clone()));
        Ok((engine, outcome))
    }

    /// The reason a model failed, with what the person can do about it: one plain sentence
    /// for what people meet most (no network, downloads switched off), the whole reason for the
    /// rest.
    pub(crate) fn advice(&self, error: &Error) -> String {
        if let Error::Hub { model, reason } = error {
            // The pinned revision is cliptag's business, not the person's.
            let name = model.split('@').next().unwrap_or(model);
            let unreachable = [
                "Dns Failed",
                "Connection refused",
                "Connection Failed",
                "timed out",
                "Network is unreachable",
                "cannot reach the Hugging Face hub",
            ];
            if reason.contains("HF_HUB_OFFLINE is set") {
                return format!(
                    "{name} is not downloaded yet and downloads are switched off \
                     (HF_HUB_OFFLINE is set): allow downloads and retry with a network, or \
                     choose a local model folder"
                );
            }
            if unreachable.iter().any(|cause| reason.contains(cause)) {
                return format!(
                    "{name} could not be downloaded because huggingface.co cannot be reached: \
                     check the network and retry, or choose a local model folder"
                );
            }
        }
        let hint = match &self.source {
            ModelSpec::Hub { .. } => {
                "check the network and retry, or choose a local model folder (config.json, \
                 model.safetensors, tokenizer.json)"
            }
            ModelSpec::Local(_) => {
                "choose a folder with config.json, model.safetensors and tokenizer.json"
            }
        };
        format!("{error}. To fix: {hint}.")
    }
}
