//! The first-run download, against a local stand-in for the Hugging Face hub that answers as the
//! real one does: a 307 with a relative `Location` to a resolve-cache path for small files, a
//! 302 to another host for large ones, `X-Repo-Commit` / `X-Linked-Etag` / `X-Linked-Size`, a
//! connection dropped in the middle of the weights, a 401 for a gated repository and a 404 for a
//! file a repository lacks. The cache left behind is the layout Python's `huggingface_hub` reads.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sha2::Digest;

use crate::support::*;

const REPO: &str = "cliptag-test/tiny-clip";
const GATED: &str = "cliptag-test/gated";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
/// Files stored as large (LFS) files, served from another host.
const LARGE: [&str; 1] = ["model.safetensors"];

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the stand-in hub serves and what it saw.
struct Hub {
    files: HashMap<String, Vec<u8>>,
    /// Cut the first full transfer of the weights in the middle.
    drop_once: AtomicBool,
    /// How often the weights' bytes were asked for (a resumed download asks twice).
    weight_requests: AtomicUsize,
    requests: Mutex<Vec<String>>,
    hub_port: u16,
    cdn_port: u16,
}

struct Request {
    path: String,
    range: Option<(u64, Option<u64>)>,
}

fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            let spec = value.trim().trim_start_matches("bytes=");
            let (start, end) = spec.split_once('-')?;
            range = Some((start.parse().ok()?, end.parse().ok()));
        }
    }
    Some(Request { path, range })
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

impl Hub {
    fn file_headers(&self, name: &str) -> Vec<(String, String)> {
        let bytes = &self.files[name];
        let mut headers = vec![("X-Repo-Commit".to_string(), COMMIT.to_string())];
        if LARGE.contains(&name) {
            headers.push(("X-Linked-Etag".into(), format!("\"{}\"", sha256(bytes))));
            headers.push(("X-Linked-Size".into(), bytes.len().to_string()));
        }
        // Small files are named by their git blob id (any stable 40-hex id does here).
        let git_id = &sha256(bytes)[..40];
        headers.push(("ETag".into(), format!("\"{git_id}\"")));
        headers
    }

    /// The body (or the asked-for part of it) of `name`.
    fn serve_bytes(
        &self,
        stream: &mut TcpStream,
        name: &str,
        range: Option<(u64, Option<u64>)>,
        cut: bool,
    ) {
        let bytes = &self.files[name];
        let size = bytes.len() as u64;
        let (start, end) = match range {
            Some((start, end)) => (start, end.unwrap_or(size - 1).min(size - 1)),
            None => (0, size - 1),
        };
        let part = &bytes[start as usize..=end as usize];
        let mut headers = self.file_headers(name);
        headers.push((
            "Content-Range".into(),
            format!("bytes {start}-{end}/{size}"),
        ));
        if cut {
            // Promise the whole part, send half, and hang up.
            let mut head = "HTTP/1.1 206 Partial Content\r\nConnection: close\r\n".to_string();
            for (n, v) in &headers {
                head.push_str(&format!("{n}: {v}\r\n"));
            }
            head.push_str(&format!("Content-Length: {}\r\n\r\n", part.len()));
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&part[..part.len() / 2]);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
        respond(stream, "206 Partial Content", &headers, part);
    }

    fn handle(&self, mut stream: TcpStream, cdn: bool) {
        let Some(request) = read_request(&mut stream) else {
            return;
        };
        self.requests.lock().unwrap().push(request.path.clone());
        let path = request.path.split('?').next().unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if cdn {
            // /lfs/<file>
            let name = parts.get(1).copied().unwrap_or_default();
            let whole = request.range.is_none_or(|(s, e)| s > 0 || e != Some(0));
            if whole {
                self.weight_requests.fetch_add(1, Ordering::SeqCst);
            }
            let cut = whole && self.drop_once.swap(false, Ordering::SeqCst);
            return self.serve_bytes(&mut stream, name, request.range, cut);
        }
        match parts.as_slice() {
            // /api/resolve-cache/models/<org>/<name>/<commit>/<file>
            ["api", "resolve-cache", "models", org, name, commit, file]
                if format!("{org}/{name}") == REPO && *commit == COMMIT =>
            {
                if self.files.contains_key(*file) {
                    self.serve_bytes(&mut stream, file, request.range, false);
                } else {
                    respond(
                        &mut stream,
                        "404 Not Found",
                        &[("X-Error-Code".into(), "EntryNotFound".into())],
                        b"",
                    );
                }
            }
            // /<org>/<name>/resolve/<revision>/<file>
            [org, name, "resolve", revision, file] => {
                let repo = format!("{org}/{name}");
                if repo == GATED {
                    return respond(
                        &mut stream,
                        "401 Unauthorized",
                        &[("X-Error-Code".into(), "GatedRepo".into())],
                        b"gated",
                    );
                }
                if repo != REPO || !(*revision == "main" || *revision == COMMIT) {
                    return respond(
                        &mut stream,
                        "404 Not Found",
                        &[("X-Error-Code".into(), "RepoNotFound".into())],
                        b"",
                    );
                }
                if !self.files.contains_key(*file) {
                    let headers = vec![
                        ("X-Repo-Commit".to_string(), COMMIT.to_string()),
                        ("X-Error-Code".to_string(), "EntryNotFound".to_string()),
                    ];
                    return respond(&mut stream, "404 Not Found", &headers, b"");
                }
                if LARGE.contains(file) {
                    let mut headers = self.file_headers(file);
                    headers.push((
                        "Location".into(),
                        format!(
                            "http://127.0.0.1:{}/lfs/{file}?signature=abc",
                            self.cdn_port
                        ),
                    ));
                    respond(&mut stream, "302 Found", &headers, b"");
                } else {
                    let headers = vec![
                        ("X-Repo-Commit".to_string(), COMMIT.to_string()),
                        (
                            "Location".to_string(),
                            format!("/api/resolve-cache/models/{REPO}/{COMMIT}/{file}"),
                        ),
                    ];
                    respond(&mut stream, "307 Temporary Redirect", &headers, b"");
                }
            }
            _ => respond(&mut stream, "404 Not Found", &[], b""),
        }
    }
}

/// Starts the stand-in hub and its large-file host; returns it and the hub's address.
fn start_hub() -> (Arc<Hub>, String) {
    let hub_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let cdn_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut files = HashMap::new();
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        files.insert(
            name.to_string(),
            std::fs::read(tiny_clip().join(name)).unwrap(),
        );
    }
    let hub = Arc::new(Hub {
        files,
        drop_once: AtomicBool::new(true),
        weight_requests: AtomicUsize::new(0),
        requests: Mutex::new(Vec::new()),
        hub_port: hub_listener.local_addr().unwrap().port(),
        cdn_port: cdn_listener.local_addr().unwrap().port(),
    });
    for (listener, cdn) in [(hub_listener, false), (cdn_listener, true)] {
        let hub = hub.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let hub = hub.clone();
                std::thread::spawn(move || hub.handle(stream, cdn));
            }
        });
    }
    let address = format!("http://127.0.0.1:{}", hub.hub_port);
    (hub, address)
}

fn run_with_hub(args: &[&str], endpoint: &str, home: &Path, offline: bool) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cliptag"));
    command
        .args(args)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN");
    if offline {
        command.env("HF_HUB_OFFLINE", "1");
    } else {
        command.env_remove("HF_HUB_OFFLINE");
    }
    command.output().unwrap()
}

fn read_link_name(path: &Path) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("{} is not a link into blobs/: {e}", path.display()))
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn the_first_index_downloads_the_model_once_into_the_shared_cache() {
    let (hub, endpoint) = start_hub();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("hf");
    let photos = crate::indexing::photo_folder(&crate::indexing::fixture_photos()[..2]);
    let db = work.path().join("lib.sqlite");
    let index = [
        "index",
        "--db",
        db.to_str().unwrap(),
        "--model",
        REPO,
        photos.path().to_str().unwrap(),
    ];
    let output = run_with_hub(&index, &endpoint, &home, false);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("indexed 2,"), "{stderr}");
    // The weights' connection was dropped half-way; the download resumed and is whole.
    assert!(
        !hub.drop_once.load(Ordering::SeqCst),
        "the drop never happened"
    );
    assert!(
        hub.weight_requests.load(Ordering::SeqCst) >= 2,
        "it was not retried"
    );

    // The cache is huggingface_hub's layout: blobs named by etag, a snapshot per commit
    // linking into them, and the branch's ref.
    let repo_dir = home.join("hub").join("models--cliptag-test--tiny-clip");
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main"))
            .unwrap()
            .trim(),
        COMMIT
    );
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    for (name, bytes) in &hub.files {
        let blob = read_link_name(&snapshot.join(name));
        let stored = std::fs::read(repo_dir.join("blobs").join(&blob)).unwrap();
        assert_eq!(&stored, bytes, "{name} in the cache differs from the hub's");
        if LARGE.contains(&name.as_str()) {
            assert_eq!(
                blob,
                sha256(bytes),
                "a large file's blob is named by its SHA-256"
            );
        }
    }
    let leftovers: Vec<PathBuf> = std::fs::read_dir(repo_dir.join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some())
        .collect();
    assert!(
        leftovers.is_empty(),
        "half files left in the cache: {leftovers:?}"
    );
    assert!(
        !snapshot.join("preprocessor_config.json").exists(),
        "a 404 became a file"
    );

    // The library remembers the commit, not the branch.
    let store = cliptag::store::Store::open(&db).unwrap();
    assert_eq!(
        store.setting("model_source").unwrap().as_deref(),
        Some(format!("{REPO}@{COMMIT}").as_str())
    );

    // A second run, offline, finds everything in the cache.
    let asked = hub.requests.lock().unwrap().len();
    let embed = ["embed", "--model", REPO, "--text", "a photo of a cat"];
    let output = run_with_hub(&embed, &endpoint, &home, true);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        hub.requests.lock().unwrap().len(),
        asked,
        "offline, yet the hub was asked"
    );

    // So does Python's huggingface_hub, where it is installed.
    let python = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys\nfrom huggingface_hub import hf_hub_download\n\
             print(hf_hub_download(sys.argv[1], 'model.safetensors', local_files_only=True))",
            REPO,
        ])
        .env("HF_HOME", &home)
        .env("HF_HUB_OFFLINE", "1")
        .output();
    match python {
        Ok(out) if out.status.success() => {
            let path = String::from_utf8(out.stdout).unwrap();
            assert_eq!(Path::new(path.trim()), snapshot.join("model.safetensors"));
        }
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No module named") => {
            eprintln!("huggingface_hub is not installed; the cache layout was checked directly")
        }
        Ok(out) => panic!(
            "huggingface_hub could not read the cache: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("no python3 ({e}); the cache layout was checked directly"),
    }
}

#[test]
fn hub_refusals_are_named() {
    let (_hub, endpoint) = start_hub();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("hf");
    let gated = run_with_hub(
        &["tokenize", "--model", GATED, "a cat"],
        &endpoint,
        &home,
        false,
    );
    assert_clean_failure(&gated, &[GATED, "gated or private", "HF_TOKEN"]);
    let missing = run_with_hub(
        &["tokenize", "--model", "cliptag-test/no-such-model", "a cat"],
        &endpoint,
        &home,
        false,
    );
    assert_clean_failure(&missing, &["cliptag-test/no-such-model", "config.json"]);
    // Offline with an empty cache: what is missing, where it was looked for, and what to do.
    let offline = run_with_hub(
        &["tokenize", "--model", REPO, "a cat"],
        &endpoint,
        &home,
        true,
    );
    assert_clean_failure(&offline, &["HF_HUB_OFFLINE", "local folder"]);
}

/// Offline with no cached model, `index` still registers every photo as waiting, names the
/// model it could not find, and exits non-zero; `files` lists the photos.
#[test]
fn indexing_without_a_model_registers_the_photos_as_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let photos = crate::indexing::photo_folder(&crate::indexing::fixture_photos()[..3]);
    let db = dir.path().join("lib.sqlite");
    let cache = dir.path().join("hf");
    let env = [
        ("HF_HOME", cache.to_str().unwrap()),
        ("HF_HUB_OFFLINE", "1"),
    ];
    let output = cliptag_with_env(
        &[
            "index",
            "--db",
            db.to_str().unwrap(),
            photos.path().to_str().unwrap(),
        ],
        &env,
    );
    assert_clean_failure(
        &output,
        &[
            "3 photos are registered and waiting for tags",
            "openai/clip-vit-base-patch32 is not downloaded yet",
            "choose a local model folder",
        ],
    );
    // One plain line: no pinned revision, no cache path, no transport error.
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(said.trim().lines().count(), 1, "{said}");
    assert!(!said.contains('@') && !said.contains("/hub"), "{said}");
    let files = cliptag_ok(&["files", "--db", db.to_str().unwrap()]);
    let text = String::from_utf8(files.stdout).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines()
            .all(|l| l.split('\t').nth(1) == Some("pending")),
        "{text}"
    );
}
