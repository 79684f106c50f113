//! `kubectl sidecar doctor ...` through kubectl's real plugin mechanism: the
//! `kubectl-sidecar` binary on PATH, kubectl finding and running it, against the fake API
//! server. Skipped with one line when kubectl is not installed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sidecar_kit_fakeapi::{FakeApi, FakeConfig, NodeSeed};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn kubectl() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("kubectl"))
            .find(|k| k.is_file())
    })
}

fn plugin_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sk-kubectl-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kubectl-sidecar");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kubectl-sidecar"), &link).unwrap();
    dir
}

fn run(kubectl: &Path, plugins: &Path, args: &[&str], kubeconfig_env: Option<&Path>) -> Output {
    let path = std::env::join_paths(std::iter::once(plugins.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut c = Command::new(kubectl);
    c.args(args)
        .env("PATH", path)
        .env("HOME", plugins)
        .env_remove("KUBECONFIG");
    if let Some(kc) = kubeconfig_env {
        c.env("KUBECONFIG", kc);
    }
    c.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sidecar_doctor_cluster() {
    let Some(kubectl) = kubectl() else {
        eprintln!("kubectl not found on PATH: skipping the kubectl plugin test");
        return;
    };
    let fake = FakeApi::start(FakeConfig {
        kubelet_metrics_bytes: 5_000,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.state()
        .seed_nodes((1..=3).map(|i| NodeSeed::new(format!("node-{i}"), "v1.32.3")))
        .unwrap();
    let plugins = plugin_dir();
    let kc = fake.write_kubeconfig(&plugins).unwrap();

    let (k, p, kc2) = (kubectl.clone(), plugins.clone(), kc.clone());
    let list = tokio::task::spawn_blocking(move || run(&k, &p, &["plugin", "list"], None))
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("kubectl-sidecar"),
        "kubectl plugin list: {listed}"
    );

    // Flags after the plugin's name go to the plugin.
    let (k, p) = (kubectl.clone(), plugins.clone());
    let kcs = kc2.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        run(
            &k,
            &p,
            &["sidecar", "doctor", "cluster", "--kubeconfig", &kcs],
            None,
        )
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 node(s): 3 capable"), "{stdout}");

    // KUBECONFIG reaches the plugin through kubectl's environment.
    let (k, p) = (kubectl.clone(), plugins.clone());
    let out = tokio::task::spawn_blocking(move || {
        run(
            &k,
            &p,
            &["sidecar", "doctor", "cluster", "-o", "json"],
            Some(&kc),
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command"], "doctor cluster");
    assert_eq!(v["data"]["counts"]["capable"], 3);
    // The plugin's requests reached the fake: kubectl itself did not talk to it.
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path == "/api/v1/nodes/node-1/proxy/metrics")
    );
    fake.shutdown().await;
}
