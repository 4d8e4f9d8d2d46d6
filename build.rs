//! Build-time facts the app and `cliptag --version` show: the commit cliptag was built from, and
//! the licences of every crate built into it (from Cargo's own resolution, never kept by hand).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by Cargo"));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by Cargo"));
    println!("cargo:rustc-env=CLIPTAG_COMMIT={}", commit(&manifest));
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!("cargo:rerun-if-changed=build.rs");
    let licences = licences(&manifest).unwrap_or_else(|why| {
        println!("cargo:warning=the crates' licences could not be listed: {why}");
        format!("The list could not be made when this cliptag was built ({why}).\n")
    });
    std::fs::write(out.join("licences.txt"), licences).expect("OUT_DIR is writable");
}

/// The commit checked out, or "unknown" outside a git checkout (a source tarball). Cargo runs
/// this again when the checkout moves to another commit.
fn commit(manifest: &Path) -> String {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git")
            .args(args)
            .current_dir(manifest)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    for watched in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", watched]) {
            println!("cargo:rerun-if-changed={}", manifest.join(path).display());
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"])
        && let Some(path) = git(&["rev-parse", "--git-path", &branch])
    {
        println!("cargo:rerun-if-changed={}", manifest.join(path).display());
    }
    commit
}

/// Every crate linked into cliptag on this target (normal dependencies, followed from cliptag
/// itself; not build or test tools), grouped by licence.
fn licences(manifest: &Path) -> Result<String, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = std::env::var("TARGET").map_err(|e| e.to_string())?;
    // Offline first (everything built is already downloaded); where Cargo still wants the
    // manifests of crates for other platforms, it may fetch them.
    let metadata = |offline: bool| {
        let mut command = Command::new(&cargo);
        command
            .args(["metadata", "--format-version", "1", "--locked"])
            .args(["--filter-platform", &target])
            .arg("--manifest-path")
            .arg(manifest.join("Cargo.toml"));
        if offline {
            command.arg("--offline");
        }
        command.output()
    };
    let mut out = metadata(true).map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        out = metadata(false).map_err(|e| format!("cargo metadata: {e}"))?;
    }
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let packages: std::collections::HashMap<&str, &serde_json::Value> = meta["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: std::collections::HashMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata: no resolve")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let root = meta["resolve"]["root"]
        .as_str()
        .ok_or("cargo metadata: no root")?;
    let mut seen = std::collections::BTreeSet::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes
            .get(id)
            .and_then(|n| n["deps"].as_array())
            .into_iter()
            .flatten()
        {
            let normal = dep["dep_kinds"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()));
            if normal && let Some(pkg) = dep["pkg"].as_str() {
                todo.push(pkg);
            }
        }
    }
    seen.remove(root);
    let mut by_licence: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for id in seen {
        let Some(p) = packages.get(id) else { continue };
        let licence = p["license"]
            .as_str()
            // The old "MIT/Apache-2.0" form, in SPDX words.
            .map(|l| l.split('/').map(str::trim).collect::<Vec<_>>().join(" OR "))
            .unwrap_or_else(|| "see the crate's licence file".into());
        let name = format!(
            "{} {}",
            p["name"].as_str().unwrap_or("?"),
            p["version"].as_str().unwrap_or("?")
        );
        by_licence.entry(licence).or_default().push(name);
    }
    let mut text = String::new();
    for (licence, mut crates) in by_licence {
        crates.sort();
        text.push_str(&format!("{licence}: {}\n", crates.join(", ")));
    }
    Ok(text)
}
