//! Black-box test of `sidecar-kit label-nodes`: the real binary against the project's fake
//! API server on loopback. It labels the nodes, serves its probes, releases the Lease on
//! SIGTERM and exits 0; a forbidden or unreachable cluster at start is exit 3, bad flags 2.
//! Waits on log lines and `/readyz`, never on fixed sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use sidecar_kit_fakeapi::{Deny, FakeApi, FakeConfig, NodeProxy, NodeSeed};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NS: &str = "sidecar-kit";
const LABEL: &str = "sidecar-kit.io/native-sidecars";
const REASON: &str = "sidecar-kit.io/native-sidecars-reason";

struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sk-label-nodes-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

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

struct Controller {
    child: Child,
    logs: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Controller {
    fn start(kubeconfig: &Path, extra: &[&str]) -> Controller {
        let mut child = command(kubeconfig, extra).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| panic!("log line is not JSON: {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Controller {
            child,
            logs: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a log line whose message is `msg`.
    fn wait_log(&mut self, msg: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = self.seen.iter().find(|v| v["message"] == msg) {
                return v.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.logs.recv_timeout(left) {
                Ok(v) => self.seen.push(v),
                Err(_) => panic!("no log line {msg:?}; saw: {:#?}", self.seen),
            }
        }
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    (
        out[9..12].parse().unwrap(),
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    )
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
    let dir = Dir::new();
    let kc = fake.write_kubeconfig(&dir.0).unwrap();
    let mut c = Controller::start(
        &kc,
        &[
            "--identity",
            "black-box-1",
            "--lease-duration",
            "3",
            "--lease-renew-interval",
            "0.5",
        ],
    );
    let bound = c.wait_log("probe listener bound (/healthz, /readyz, /metrics)");
    let addr: SocketAddr = bound["address"].as_str().unwrap().parse().unwrap();

    // Ready, leading, and every node labelled, as /readyz reports.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (code, body) = get(addr, "/readyz").await;
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
    let (code, metrics) = get(addr, "/metrics").await;
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
    let status = c.wait_exit();
    assert_eq!(status.code(), Some(0), "exit code; logs: {:#?}", c.seen);
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
    let dir = Dir::new();
    let kc = fake.write_kubeconfig(&dir.0).unwrap();
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
    let closed = dir.0.join("closed.yaml");
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
