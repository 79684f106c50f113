//! Black-box test of `sidecar-kit label-nodes`: the real binary against the project's fake
//! API server on loopback. It labels the nodes, serves its probes, releases the Lease on
//! SIGTERM and exits 0; a forbidden or unreachable cluster at start is exit 3, bad flags 2.
//! Waits on log lines and `/readyz`, never on fixed sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sidecar_kit_fakeapi::{Deny, FakeApi, FakeConfig, NodeProxy, NodeSeed};
use sidecar_kit_testkit::{LogChild, TempDir, http_get, log_addr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "sidecar-kit";
const LABEL: &str = "sidecar-kit.io/native-sidecars";
const REASON: &str = "sidecar-kit.io/native-sidecars-reason";

fn command(kubeconfig: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sidecar-kit"));
    cmd.arg("label-nodes")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--probe-listen", "127.0.0.1:0", "--log-format", "json"])
        .args(extra)
        .env_remove("POD_NAME")
        .env_remove("POD_NAMESPACE")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

fn ours(fake: &FakeApi, name: &str) -> (Option<String>, Option<String>) {
    let n = fake.state().get("nodes", None, name).unwrap().unwrap();
    (
        n["metadata"]["labels"][LABEL].as_str().map(String::from),
        n["metadata"]["annotations"][REASON]
            .as_str()
            .map(String::from),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_nodes_then_releases_the_lease_on_sigterm() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    let s = fake.state();
    s.seed_namespace(NS, &[]).unwrap();
    s.seed_node(NodeSeed::new("old", "v1.27.9")).unwrap();
    s.seed_node(NodeSeed::new("mid-on", "v1.28.5")).unwrap();
    s.seed_node(NodeSeed::new("new", "v1.31.2")).unwrap();
    fake.set_node_proxy(
        "mid-on",
        NodeProxy::Metrics(fake.kubelet_metrics_for("v1.28.5", Some(true))),
    );
    let dir = TempDir::new("label-nodes");
    let kc = fake.write_kubeconfig(dir.path()).unwrap();
    let mut c = LogChild::spawn(
        "label-nodes",
        command(
            &kc,
            &[
                "--identity",
                "black-box-1",
                "--lease-duration",
                "3",
                "--lease-renew-interval",
                "0.5",
            ],
        ),
        true,
    )
    .unwrap();
    let bound = c.wait_log("probe listener bound (/healthz, /readyz, /metrics)");
    let addr = log_addr(&bound);

    // Ready, leading, and every node labelled, as /readyz reports.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (code, body) = http_get(addr, "/readyz").await;
        if code == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            if v["role"] == "leader" && v["labelled"]["none"] == 0 && v["pending"] == 0 {
                break v;
            }
        }
        assert!(Instant::now() < deadline, "not converged: {code} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status["identity"], "black-box-1");
    assert_eq!(status["lease"], "sidecar-kit/sidecar-kit-label-nodes");
    assert_eq!(status["nodesSeen"], 3);
    assert_eq!(status["nodeMetrics"]["permission"], "permitted");
    assert_eq!(ours(&fake, "old").0.as_deref(), Some("false"));
    assert_eq!(
        ours(&fake, "mid-on"),
        (
            Some("true".into()),
            Some(r#"{"kubeletVersion":"v1.28.5","gate":"enabled","source":"metrics"}"#.into())
        )
    );
    assert_eq!(ours(&fake, "new").0.as_deref(), Some("true"));
    let (code, metrics) = http_get(addr, "/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("sidecar_kit_label_nodes_leader 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sidecar_kit_label_nodes_label_writes_total{result=\"success\"} 3"),
        "{metrics}"
    );
    let lease = s
        .get(
            "leases.coordination.k8s.io",
            Some(NS),
            "sidecar-kit-label-nodes",
        )
        .unwrap()
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "black-box-1");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 3);

    // SIGTERM: the Lease is released and the process exits 0.
    c.sigterm();
    c.wait_log("Lease released");
    let status = c.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "exit code; logs: {:#?}", c.logs());
    let lease = s
        .get(
            "leases.coordination.k8s.io",
            Some(NS),
            "sidecar-kit-label-nodes",
        )
        .unwrap()
        .unwrap();
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "released: {lease}"
    );
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_or_unreachable_cluster_is_exit_3_and_bad_flags_exit_2() {
    let fake = FakeApi::start(FakeConfig::default()).await.unwrap();
    fake.deny(Deny::resource("list", "nodes"));
    let dir = TempDir::new("label-nodes");
    let kc = fake.write_kubeconfig(dir.path()).unwrap();
    let out = command(&kc, &["--identity", "x"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("list nodes: forbidden"), "{stderr}");
    fake.shutdown().await;

    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = dir.path().join("closed.yaml");
    std::fs::write(
        &closed,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             users:\n- name: u\n  user: {{}}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n\
             current-context: c\n"
        ),
    )
    .unwrap();
    let out = command(&closed, &["--identity", "x"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for bad in [
        &["--lease-duration", "0"][..],
        &["--lease-renew-interval", "30"],
        &["--node-metrics", "maybe"],
        &["--workers", "0"],
    ] {
        let out = command(&closed, bad).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
