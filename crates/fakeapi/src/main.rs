//! `sidecar-kit-fakeapi`: starts one fake API server, writes its kubeconfig and prints the
//! path, then serves until Ctrl-C. For trying kubectl or the CLI by hand:
//!
//! ```text
//! $ sidecar-kit-fakeapi --nodes 3 --version v1.32.3
//! KUBECONFIG=/tmp/sidecar-kit-fakeapi-1234/kubeconfig
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

use sidecar_kit_fakeapi::{FakeApi, FakeConfig, NodeSeed};

const USAGE: &str = "usage: sidecar-kit-fakeapi [--nodes N] [--version vX.Y.Z] [--kubelet-version vX.Y.Z] [--dir DIR]

Starts a fake Kubernetes API server on 127.0.0.1 (plain HTTP, random port), seeds N nodes
(default 3), writes DIR/kubeconfig (default: a new temporary directory), prints
KUBECONFIG=PATH and serves until interrupted.

Exit codes: 0 after Ctrl-C, 2 on bad usage, 1 when the server cannot start.";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let mut nodes = 3usize;
    let mut version = "v1.32.3".to_string();
    let mut kubelet = None;
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next();
        match a.as_str() {
            "--nodes" => match value().and_then(|v| v.parse().ok()) {
                Some(n) => nodes = n,
                None => return usage(),
            },
            "--version" => match value() {
                Some(v) => version = v,
                None => return usage(),
            },
            "--kubelet-version" => match value() {
                Some(v) => kubelet = Some(v),
                None => return usage(),
            },
            "--dir" => match value() {
                Some(v) => dir = Some(std::path::PathBuf::from(v)),
                None => return usage(),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let config = FakeConfig {
        version: version.clone(),
        ..FakeConfig::default()
    };
    let fake = match FakeApi::start(config).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("sidecar-kit-fakeapi: {e}");
            return ExitCode::from(1);
        }
    };
    let kubelet = kubelet.unwrap_or(version);
    let seeded = fake
        .state()
        .seed_nodes((1..=nodes).map(|i| NodeSeed::new(format!("node-{i}"), kubelet.clone())));
    if let Err(e) = seeded {
        eprintln!("sidecar-kit-fakeapi: seeding nodes: {e}");
        return ExitCode::from(1);
    }
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("sidecar-kit-fakeapi-{}", std::process::id()))
    });
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("sidecar-kit-fakeapi: creating {}: {e}", dir.display());
        return ExitCode::from(1);
    }
    match fake.write_kubeconfig(&dir) {
        Ok(path) => println!("KUBECONFIG={}", path.display()),
        Err(e) => {
            eprintln!("sidecar-kit-fakeapi: {e}");
            return ExitCode::from(1);
        }
    }
    eprintln!("serving {} (Ctrl-C to stop)", fake.url());
    let _ = tokio::signal::ctrl_c().await;
    fake.shutdown().await;
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
