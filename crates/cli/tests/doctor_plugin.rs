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

/// Removes a test's plugin folder when the test ends, passed or failed.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A folder of the test's own (`test` names it) holding the plugin's executables.
fn plugin_dir(test: &str) -> (PathBuf, Cleanup) {
    let dir = std::env::temp_dir().join(format!("sk-kubectl-plugin-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, exe) in [
        ("kubectl-sidecar", env!("CARGO_BIN_EXE_kubectl-sidecar")),
        (
            "kubectl_complete-sidecar",
            env!("CARGO_BIN_EXE_kubectl_complete-sidecar"),
        ),
    ] {
        let link = dir.join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(exe, &link).unwrap();
    }
    (dir.clone(), Cleanup(dir))
}

fn run(kubectl: &Path, plugins: &Path, args: &[&str], kubeconfig_env: Option<&Path>) -> Output {
    run_env(kubectl, plugins, args, kubeconfig_env, "KUBECONFIG")
}

fn run_env(
    kubectl: &Path,
    plugins: &Path,
    args: &[&str],
    kubeconfig_env: Option<&Path>,
    env_name: &str,
) -> Output {
    let path = std::env::join_paths(std::iter::once(plugins.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut c = Command::new(kubectl);
    c.args(args)
        .env("PATH", path)
        .env("HOME", plugins)
        .env_remove("KUBECONFIG")
        .env_remove("SIDECAR_KIT_KUBECONFIG");
    if let Some(kc) = kubeconfig_env {
        c.env(env_name, kc);
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
    let (plugins, _cleanup) = plugin_dir("doctor");
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
    let (k, p, kc1) = (kubectl.clone(), plugins.clone(), kc.clone());
    let out = tokio::task::spawn_blocking(move || {
        run(
            &k,
            &p,
            &["sidecar", "doctor", "cluster", "-o", "json"],
            Some(&kc1),
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["command"], "doctor cluster");
    assert_eq!(v["data"]["counts"]["capable"], 3);

    // So does SIDECAR_KIT_KUBECONFIG, the project's own name for it.
    let (k, p, kc3) = (kubectl.clone(), plugins.clone(), kc.clone());
    let out = tokio::task::spawn_blocking(move || {
        run_env(
            &k,
            &p,
            &["sidecar", "doctor", "cluster", "-o", "json"],
            Some(&kc3),
            "SIDECAR_KIT_KUBECONFIG",
        )
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The plugin's requests reached the fake: kubectl itself did not talk to it.
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path == "/api/v1/nodes/node-1/proxy/metrics")
    );
    fake.shutdown().await;
}

/// As a plugin, the help speaks of `kubectl sidecar`, and kubectl completes the plugin's
/// commands, flags and values through kubectl_complete-sidecar.
#[test]
fn kubectl_sidecar_help_and_completion() {
    let Some(kubectl) = kubectl() else {
        eprintln!("kubectl not found on PATH: skipping the kubectl plugin help test");
        return;
    };
    let (plugins, _cleanup) = plugin_dir("help");
    let out = run(
        &kubectl,
        &plugins,
        &["sidecar", "doctor", "pods", "--help"],
        None,
    );
    let help = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{help}");
    assert!(
        help.contains("Usage: kubectl sidecar doctor pods"),
        "{help}"
    );
    assert!(!help.contains("sidecar-kit doctor"), "{help}");
    let out = run(&kubectl, &plugins, &["sidecar", "--bogus"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Usage: kubectl sidecar"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let complete = |words: &[&str]| {
        let mut args = vec!["__complete", "sidecar"];
        args.extend_from_slice(words);
        let out = run(&kubectl, &plugins, &args, None);
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let c = complete(&["doc"]);
    assert!(c.starts_with("doctor\t"), "{c}");
    assert!(c.trim_end().ends_with(":4"), "no file names: {c}");
    let c = complete(&["doctor", "cluster", "-o", ""]);
    for v in ["table", "json", "yaml", "facts"] {
        assert!(
            c.lines().any(|l| l.split('\t').next() == Some(v)),
            "{v}: {c}"
        );
    }
    let c = complete(&["inject", "-f", ""]);
    assert!(c.trim_end().ends_with(":0"), "-f completes file names: {c}");
}
