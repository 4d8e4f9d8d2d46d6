//! Helpers shared by the integration tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{Device, Tensor};

/// The committed fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The tiny random CLIP in Hugging Face format.
pub fn tiny_clip() -> PathBuf {
    fixtures().join("tiny-clip")
}

/// Every tensor of a safetensors file.
pub fn load_tensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The tiny model's reference outputs.
pub fn reference() -> HashMap<String, Tensor> {
    load_tensors(&tiny_clip().join("reference.safetensors"))
}

/// Rows of a 2-D f32 tensor.
pub fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2::<f32>().expect("a 2-D f32 tensor")
}

/// The largest absolute difference between two equally shaped matrices.
pub fn max_abs_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "row counts differ");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "row widths differ");
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}

/// The largest absolute difference between two equally long vectors.
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

/// Cosine similarity of two vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Runs the `cliptag` binary with `args`.
pub fn cliptag(args: &[&str]) -> Output {
    cliptag_with_env(args, &[])
}

/// Runs the `cliptag` binary with `args` and asserts that it succeeded (stderr shown if not).
pub fn cliptag_ok(args: &[&str]) -> Output {
    let output = cliptag(args);
    assert!(
        output.status.success(),
        "cliptag {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Indexes `folder` into the library `db` with the tiny CLIP, through the command line; returns
/// what it said on stderr (its summary and failures).
pub fn index_with_tiny(db: impl AsRef<Path>, folder: impl AsRef<Path>) -> String {
    let model = tiny_clip();
    let output = cliptag_ok(&[
        "index",
        "--db",
        db.as_ref().to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        folder.as_ref().to_str().unwrap(),
    ]);
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the `cliptag` binary with `args` and extra environment variables.
pub fn cliptag_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cliptag"));
    command.args(args).env("HF_HUB_OFFLINE", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the cliptag binary runs")
}

/// Asserts that `output` failed cleanly: non-zero exit, no panic, and stderr mentions every one
/// of `needles`. Prints the whole output otherwise.
pub fn assert_clean_failure(output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{stderr}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!output.status.success(), "expected a failure\n{context}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit code 1\n{context}"
    );
    assert!(!stderr.contains("panicked"), "it panicked\n{context}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "stderr lacks {needle:?}\n{context}"
        );
    }
}

/// Parses JSON lines.
pub fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The tiny random CLIP, stored under the model id `tiny`.
pub fn tiny_engine() -> cliptag::model::Engine {
    cliptag::model::Engine::from_files(
        &cliptag::model::ModelFiles::from_dir(&tiny_clip()).unwrap(),
        "tiny".into(),
    )
    .unwrap()
}

/// A test library: a database in its own folder, opened with a model already in memory.
pub struct TestLibrary {
    pub dir: tempfile::TempDir,
    pub library: cliptag::library::Library,
    /// How often the library asked for its model to be loaded.
    pub loads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TestLibrary {
    /// A new library whose model is `engine`.
    pub fn new(engine: std::sync::Arc<dyn cliptag::model::Embedder>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (library, loads) = open_with(&dir.path().join("lib.sqlite"), engine);
        TestLibrary {
            dir,
            library,
            loads,
        }
    }

    /// A new library of the tiny CLIP.
    pub fn tiny() -> Self {
        Self::new(std::sync::Arc::new(tiny_engine()))
    }

    /// The database file.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("lib.sqlite")
    }

    /// The database, opened beside the library for looking at what it stored.
    pub fn store(&self) -> cliptag::store::Store {
        cliptag::store::Store::open(&self.db()).unwrap()
    }

    /// Indexes `dir` in batches of 4 on two decode threads.
    pub fn index(&mut self, dir: &Path) -> cliptag::library::IndexSummary {
        self.library
            .index(
                &[dir.to_path_buf()],
                small_batches(),
                cliptag::library::RunControl::default(),
                &mut |_| {},
            )
            .expect("indexing runs")
    }

    /// Removes every label (the default vocabulary included), so a test sees only its own.
    pub fn clear_vocabulary(&mut self) {
        for label in self.library.labels().unwrap() {
            self.library.remove_label(label.id).unwrap();
        }
    }
}

/// Batches of 4 on two decode threads: small enough that tests see several batches.
pub fn small_batches() -> cliptag::library::IndexOptions {
    cliptag::library::IndexOptions {
        batch_size: 4,
        decode_threads: 2,
        reduced_jpeg: true,
        ..Default::default()
    }
}

/// Opens the library at `db` with `engine` as its model; returns it and its load counter.
pub fn open_with(
    db: &Path,
    engine: std::sync::Arc<dyn cliptag::model::Embedder>,
) -> (
    cliptag::library::Library,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let loader = cliptag::library::FixedLoader::new(engine);
    let loads = loader.loads();
    let library = cliptag::library::Library::open(
        db,
        cliptag::library::LibraryOptions {
            model: None,
            loader: Box::new(loader),
        },
    )
    .unwrap();
    (library, loads)
}

/// The tiny model behind a watcher: it keeps what it is asked, and can be slow, fail as a crash
/// would, or flip a run's switch to cancelled (a person pressing Cancel meanwhile).
pub struct Watched {
    pub inner: cliptag::model::Engine,
    /// The size of every batch of images it embedded.
    pub image_batches: std::sync::Mutex<Vec<usize>>,
    /// Every text it embedded.
    pub texts: std::sync::Mutex<Vec<String>>,
    /// Set when the first batch of images arrives.
    pub started: std::sync::atomic::AtomicBool,
    /// How long each batch of images takes.
    pub delay: std::time::Duration,
    /// On this call of `embed_images` (1-based), fail.
    pub fail_on: Option<usize>,
    /// On this call, panic (a bug in cliptag).
    pub panic_on: Option<usize>,
    /// On this call, cancel the run.
    pub cancel_on: Option<(usize, cliptag::library::RunControl)>,
}

impl Watched {
    pub fn new() -> Self {
        Watched {
            inner: tiny_engine(),
            image_batches: Default::default(),
            texts: Default::default(),
            started: Default::default(),
            delay: std::time::Duration::ZERO,
            fail_on: None,
            panic_on: None,
            cancel_on: None,
        }
    }

    /// How many images it embedded.
    pub fn embedded(&self) -> usize {
        self.image_batches.lock().unwrap().iter().sum()
    }

    /// How many batches of images it embedded.
    pub fn batches(&self) -> usize {
        self.image_batches.lock().unwrap().len()
    }
}

impl cliptag::model::Embedder for Watched {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn preprocess_config(&self) -> &cliptag::model::PreprocessConfig {
        self.inner.preprocess_config()
    }
    fn logit_scale(&self) -> f32 {
        self.inner.logit_scale()
    }
    fn precision(&self) -> cliptag::model::matmul::Precision {
        cliptag::model::Embedder::precision(&self.inner)
    }
    fn embed_images(&self, images: &[cliptag::imaging::Pixels]) -> cliptag::Result<Vec<Vec<f32>>> {
        self.started
            .store(true, std::sync::atomic::Ordering::SeqCst);
        std::thread::sleep(self.delay);
        let call = {
            let mut batches = self.image_batches.lock().unwrap();
            batches.push(images.len());
            batches.len()
        };
        if self.fail_on == Some(call) {
            return Err(cliptag::Error::invalid("the encoder crashed"));
        }
        if self.panic_on == Some(call) {
            panic!("the encoder panicked");
        }
        if let Some((on, control)) = &self.cancel_on
            && *on == call
        {
            control.cancel();
        }
        self.inner.embed_images(images)
    }
    fn embed_texts(&self, texts: &[String]) -> cliptag::Result<Vec<Vec<f32>>> {
        self.texts.lock().unwrap().extend(texts.iter().cloned());
        self.inner.embed_texts(texts)
    }
}

/// Stores `count` indexed photos, `/photos/p00000.jpg` on (so path order is number order), with
/// embeddings of `dim` values under the model `m`, in one batch.
pub fn insert_photos(store: &mut cliptag::store::Store, count: usize, dim: usize) {
    let vector = vec![0.5f32; dim];
    store
        .batch(|batch| {
            for i in 0..count {
                let path = std::path::PathBuf::from(format!("/photos/p{i:05}.jpg"));
                let image = cliptag::store::NewImage {
                    path: &path,
                    size: 1,
                    mtime_ns: 1,
                };
                batch.insert_embedded(&image, &format!("h{i}"), "m", &vector)?;
            }
            Ok(())
        })
        .unwrap();
}

/// Runs the test `name` (its path in this binary, e.g. `worker::some_test`) again in a process
/// of its own, where no other test's threads run beside it, and asserts that it passed there.
/// Returns true in that process, where the caller goes on with its body; false in the first,
/// where the caller returns.
pub fn alone_in_a_process(name: &str) -> bool {
    const ALONE: &str = "CLIPTAG_TEST_ALONE";
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{name} in a process of its own:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    false
}

/// `cliptag files` on the library at `db`: each photo's file name, status and reason.
pub fn files_listing(db: &Path) -> Vec<(String, String, String)> {
    let output = cliptag_ok(&["files", "--db", db.to_str().unwrap()]);
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let path = fields.next().unwrap_or_default();
            let file = Path::new(path).file_name().unwrap().to_string_lossy();
            (
                file.into_owned(),
                fields.next().unwrap_or_default().to_string(),
                fields.next().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
