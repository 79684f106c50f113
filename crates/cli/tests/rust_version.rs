//! The workspace's `rust-version` is the oldest Rust that builds the locked dependencies:
//! a lower one lets `cargo install --locked` start on a toolchain that then fails deep in a
//! dependency instead of saying at once which Rust is needed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// `1.89` and `1.89.0` are the same version.
fn version(v: &str) -> [u64; 3] {
    let mut out = [0; 3];
    for (slot, part) in out.iter_mut().zip(v.split('.')) {
        *slot = part.parse().unwrap_or(0);
    }
    out
}

#[test]
fn rust_version_covers_every_locked_dependency() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Not `--offline`: the metadata of every locked package, those of other platforms too,
    // is read, and a fresh machine has downloaded only the ones its own build needed.
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "sidecar-kit")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the workspace states a rust-version");
    let needed = packages
        .iter()
        .filter(|p| !members.contains(&p["id"].as_str().unwrap_or("")))
        .filter_map(|p| Some((p["rust_version"].as_str()?, p["name"].as_str()?)))
        .max_by(|a, b| version(a.0).cmp(&version(b.0)))
        .unwrap();
    assert!(
        version(ours) >= version(needed.0),
        "rust-version {ours} in Cargo.toml, but the locked {} needs Rust {}",
        needed.1,
        needed.0
    );
}
