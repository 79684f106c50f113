//! Black-box test of `sidecar-kit serve`: the real binary, on loopback, with freshly issued
//! certificates: start, review, hot reload of profiles (and a broken one), SIGTERM while a
//! review is in flight. Waits on conditions (log lines, readiness), never on fixed sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use sidecar_kit_testkit::{LogChild, eventually_async, http_get, log_addr};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sidecar-kit")
}

/// The server and its work directory (removed when dropped).
struct Server {
    p: LogChild,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.p.child.kill();
        let _ = self.p.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::ops::Deref for Server {
    type Target = LogChild;
    fn deref(&self) -> &LogChild {
        &self.p
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut LogChild {
        &mut self.p
    }
}

fn start(dir: &Path) -> Server {
    start_with(dir, &["--no-cluster"])
}

fn start_with(dir: &Path, extra: &[&str]) -> Server {
    let mut cmd = Command::new(bin());
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--probe-listen",
        "127.0.0.1:0",
    ]);
    if !extra.contains(&"--reload-interval") {
        cmd.args(["--reload-interval", "0.05"]);
    }
    cmd.args(["--log-format", "json", "--shutdown-timeout", "10"])
        .arg("--profiles")
        .arg(dir.join("profiles"))
        .arg("--tls-cert")
        .arg(dir.join("tls/tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls/tls.key"))
        .args(extra)
        .env_remove("POD_NAMESPACE")
        .stdout(Stdio::null());
    Server {
        p: LogChild::spawn("serve", cmd, true).unwrap(),
        dir: dir.to_path_buf(),
    }
}

/// A fresh directory with the example profile and certificates from `sidecar-kit certs`;
/// returns it and the workspace root.
fn workdir(tag: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("sk-serve-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        root.join("examples/profiles/log-shipper.yaml"),
        dir.join("profiles/log-shipper.yaml"),
    )
    .unwrap();
    let certs = Command::new(bin())
        .args(["certs", "--san", "localhost", "--out-dir"])
        .arg(dir.join("tls"))
        .output()
        .unwrap();
    assert!(
        certs.status.success(),
        "{}",
        String::from_utf8_lossy(&certs.stderr)
    );
    assert!(
        String::from_utf8(certs.stdout).unwrap().trim().len() > 100,
        "prints the caBundle"
    );
    (dir, root)
}

fn tls(dir: &Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("tls/ca.crt")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn review_body(labels: Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u-1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE",
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "p-", "labels": labels},
                       "spec": {"containers": [{"name": "app", "image": "app:1", "command": ["/app"]}]}}}
    }))
    .unwrap()
}

/// Reads one HTTP/1.1 response (with a content-length) from a kept-alive stream.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> (u16, Value) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (
        head[9..12].parse().unwrap(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// Sends one review on `s` and returns the answer's head (lower-case), reading its body.
async fn exchange_head(s: &mut Tls, body: &[u8]) -> String {
    s.write_all(review_head(body.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap().to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    let mut rest = vec![0u8; len];
    s.read_exact(&mut rest).await.unwrap();
    head
}

async fn connect(addr: SocketAddr, connector: &tokio_rustls::TlsConnector) -> Tls {
    let tcp = TcpStream::connect(addr).await.unwrap();
    connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap()
}

fn review_head(len: usize) -> String {
    format!(
        "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    )
}

/// Sends one review of a pod with `labels` on a new connection; the status and the body.
async fn post(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    labels: Value,
) -> (u16, Value) {
    post_split(addr, connector, &review_body(labels), async {}).await
}

/// Sends a review in two parts (the body's tail after `between` ran) and reads the answer.
async fn send_split(
    s: &mut Tls,
    body: &[u8],
    between: impl std::future::Future<Output = ()>,
) -> (u16, Value) {
    s.write_all(review_head(body.len()).as_bytes())
        .await
        .unwrap();
    let half = body.len() / 2;
    s.write_all(&body[..half]).await.unwrap();
    s.flush().await.unwrap();
    between.await;
    s.write_all(&body[half..]).await.unwrap();
    read_response(s).await
}

/// Sends one review on a new connection, in two parts, and returns the status and body.
async fn post_split(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    body: &[u8],
    between: impl std::future::Future<Output = ()>,
) -> (u16, Value) {
    send_split(&mut connect(addr, connector).await, body, between).await
}

/// Sends a whole review and then, on the same connection (so it is being served), half of a
/// second one; runs `between`; sends the rest; returns the second answer.
async fn post_in_flight(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    body: &[u8],
    between: impl std::future::Future<Output = ()>,
) -> (u16, Value) {
    let mut s = connect(addr, connector).await;
    s.write_all(review_head(body.len()).as_bytes())
        .await
        .unwrap();
    s.write_all(body).await.unwrap();
    let (status, _) = read_response(&mut s).await;
    assert_eq!(status, 200);
    send_split(&mut s, body, between).await
}

/// Waits (at most 10 s) until the listener at `addr` refuses connections.
async fn until_refused(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the listener still accepts after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `-p` takes files and directories, as often as needed, and watches all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_from_several_files_and_directories_are_watched() {
    let (dir, root) = workdir("paths");
    let mesh =
        std::fs::read_to_string(root.join("crates/cli/tests/golden/profiles/mesh.yaml")).unwrap();
    std::fs::write(dir.join("mesh.yaml"), &mesh).unwrap();
    std::fs::create_dir_all(dir.join("more")).unwrap();
    let (file, more) = (dir.join("mesh.yaml"), dir.join("more"));
    let mut server = start_with(
        &dir,
        &[
            "--no-cluster",
            "-p",
            file.to_str().unwrap(),
            "--profiles",
            more.to_str().unwrap(),
            "--reload-interval",
            "50ms",
        ],
    );
    let probe = log_addr(&server.wait_log("probe listener bound (/healthz, /readyz, /metrics)"));
    server.wait_log("webhook listening (POST /mutate)");
    let (code, ready) = http_get(probe, "/readyz").await;
    assert_eq!(code, 200, "{ready}");
    assert!(
        ready.contains("2 profile(s)")
            && ready.contains("log-shipper")
            && ready.contains("mesh-proxy"),
        "the directory's profile and the file's: {ready}"
    );
    // A profile added to the (empty) second directory is picked up.
    std::fs::write(
        more.join("other.yaml"),
        mesh.replace("name: mesh-proxy", "name: other-proxy")
            .replace(r#"values: ["on"]"#, r#"values: ["other"]"#),
    )
    .unwrap();
    eventually_async(
        "the second directory's profile in /readyz",
        Duration::from_secs(20),
        || async { http_get(probe, "/readyz").await.1.contains("other-proxy") },
    )
    .await;
    let ready = http_get(probe, "/readyz").await.1;
    assert!(ready.contains("3 profile(s)"), "{ready}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reviews_reloads_and_drains_on_sigterm() {
    let (dir, root) = workdir("sigterm");

    let mut server = start(&dir);
    let probe = log_addr(&server.wait_log("probe listener bound (/healthz, /readyz, /metrics)"));
    let webhook = log_addr(&server.wait_log("webhook listening (POST /mutate)"));
    let (code, ready) = http_get(probe, "/readyz").await;
    assert_eq!(code, 200, "{ready}");
    assert_eq!(http_get(probe, "/healthz").await.0, 200);
    let connector = tls(&dir);

    // A review.
    let (status, resp) = post(
        webhook,
        &connector,
        serde_json::json!({"logging": "shipped"}),
    )
    .await;
    assert_eq!(status, 200);
    // --no-cluster: no facts, so no node labels to trust: the universal fallback is legacy.
    assert_eq!(
        resp["response"]["auditAnnotations"]["injected"],
        "log-shipper=legacy"
    );
    let line = server.wait_log("review");
    assert_eq!(line["uid"], "u-1", "logs carry the request uid");
    assert_eq!(line["result"], "injected");

    // Hot reload: a new profile is picked up without a restart.
    std::fs::write(
        dir.join("profiles/mesh.yaml"),
        std::fs::read_to_string(root.join("crates/cli/tests/golden/profiles/mesh.yaml")).unwrap(),
    )
    .unwrap();
    eventually_async(
        "the new profile in /readyz",
        Duration::from_secs(20),
        || async { http_get(probe, "/readyz").await.1.contains("mesh-proxy") },
    )
    .await;
    let (_, resp) = post(webhook, &connector, serde_json::json!({"mesh": "on"})).await;
    assert_eq!(
        resp["response"]["auditAnnotations"]["injected"],
        "mesh-proxy=native"
    );

    // A broken file keeps the last good set, and readiness says so.
    std::fs::write(dir.join("profiles/broken.yaml"), "apiVersion: sidecar-kit.io/v1alpha1\nkind: SidecarProfile\nmetadata: {name: broken}\nspec: {containers: [{name: x}]}\n").unwrap();
    eventually_async(
        "the failed reload in /readyz",
        Duration::from_secs(20),
        || async {
            http_get(probe, "/readyz")
                .await
                .1
                .contains("last reload failed")
        },
    )
    .await;
    let (code, detail) = http_get(probe, "/readyz").await;
    assert_eq!(code, 200, "still ready with the last good set: {detail}");
    assert!(
        detail.contains("spec.containers[0].image"),
        "names the field: {detail}"
    );
    let (_, resp) = post(webhook, &connector, serde_json::json!({"mesh": "on"})).await;
    assert_eq!(
        resp["response"]["auditAnnotations"]["injected"],
        "mesh-proxy=native"
    );
    assert!(
        http_get(probe, "/metrics")
            .await
            .1
            .contains("sidecar_kit_profile_reloads_total{result=\"failure\"} 1")
    );

    // SIGTERM while a review is in flight: it completes, new connections are refused, exit 0.
    let (status, resp) = post_in_flight(
        webhook,
        &connector,
        &review_body(serde_json::json!({"logging": "shipped"})),
        async {
            server.sigterm();
            server.wait_log("SIGTERM: no new connections; finishing in-flight reviews");
            until_refused(webhook).await;
        },
    )
    .await;
    assert_eq!(status, 200, "the in-flight review completes");
    assert_eq!(resp["response"]["allowed"], true);
    let exit = server.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
}

/// With --shutdown-delay, SIGTERM first turns /readyz unready while new connections are still
/// accepted and answered; only after the delay does the listener close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_answering_through_the_shutdown_delay() {
    let (dir, _) = workdir("delay");
    let connector = tls(&dir);
    let mut server = start_with(&dir, &["--no-cluster", "--shutdown-delay", "3"]);
    let probe = log_addr(&server.wait_log("probe listener bound (/healthz, /readyz, /metrics)"));
    let webhook = log_addr(&server.wait_log("webhook listening (POST /mutate)"));
    assert_eq!(http_get(probe, "/readyz").await.0, 200);
    // A keep-alive connection from before SIGTERM, as the API server pools them.
    let body = review_body(serde_json::json!({"logging": "shipped"}));
    let mut pooled = connect(webhook, &connector).await;
    let head = exchange_head(&mut pooled, &body).await;
    assert!(!head.contains("connection: close"), "{head}");
    let sent = Instant::now();
    server.sigterm();
    let line =
        server.wait_log("SIGTERM: not ready any more; still serving while endpoints drop this pod");
    assert_eq!(line["delay_seconds"], 3.0);
    // During the delay it still answers on that connection, but says it closes it, and does:
    // the client never writes into a connection this replica closes while idle.
    let head = exchange_head(&mut pooled, &body).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("connection: close"),
        "an answer during the shutdown delay closes its connection: {head}"
    );
    let mut rest = Vec::new();
    let _ = pooled.read_to_end(&mut rest).await;
    assert!(rest.is_empty(), "nothing after the answer: {rest:?}");
    assert_eq!(
        http_get(probe, "/readyz").await.0,
        503,
        "unready during the delay"
    );
    // A new connection during the delay is accepted and its review answered.
    let (status, resp) = post(
        webhook,
        &connector,
        serde_json::json!({"logging": "shipped"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(resp["response"]["allowed"], true);
    assert!(
        resp["response"]["patch"].is_string(),
        "the review was decided: {resp}"
    );
    until_refused(webhook).await;
    assert!(
        sent.elapsed() >= Duration::from_millis(2900),
        "the listener closed {:?} after SIGTERM, before the 3 s delay",
        sent.elapsed()
    );
    assert_eq!(server.child.wait().unwrap().code(), Some(0));
}

#[test]
fn bad_configuration_is_exit_2() {
    let out = Command::new(bin())
        .args([
            "serve",
            "--profiles",
            "/no/such/dir",
            "--tls-cert",
            "a",
            "--tls-key",
            "b",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--profiles /no/such/dir: no such file or directory")
    );
    let out = Command::new(bin())
        .args(["serve", "-p", "/tmp", "--reload-interval", "soon"])
        .args(["--tls-cert", "a", "--tls-key", "b"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a bad duration");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("write 500ms, 5s, 2m"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(bin())
        .args(["serve", "--profiles", "/tmp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "missing --tls-cert");
}

/// A certificate or key that cannot be read at start stops the server at once (exit 2, the
/// flag, the path and the fix) instead of leaving it unready for ever.
#[test]
fn unreadable_certificate_or_key_at_start_is_exit_2() {
    let (dir, _) = workdir("nocert");
    let crt = dir.join("tls/tls.crt");
    let key = dir.join("tls/tls.key");
    let missing = dir.join("tls/missing.pem");
    for (cert_arg, key_arg, flag, named) in [
        (&missing, &key, "--tls-cert", &missing),
        (&crt, &missing, "--tls-key", &missing),
        (&crt, &dir.join("tls"), "--tls-key", &dir.join("tls")),
    ] {
        let mut child = Command::new(bin())
            .args([
                "serve",
                "--no-cluster",
                "--listen",
                "127.0.0.1:0",
                "--probe-listen",
                "127.0.0.1:0",
            ])
            .arg("--profiles")
            .arg(dir.join("profiles"))
            .arg("--tls-cert")
            .arg(cert_arg)
            .arg("--tls-key")
            .arg(key_arg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A server that waits would never exit: give it a generous bound, then fail.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "serve with {flag} {} kept running instead of failing",
                    named.display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{flag}: {err}");
        assert!(
            err.contains(&format!("{flag} {}: cannot be read", named.display()))
                && err.contains("sidecar-kit certs"),
            "names the flag, the path and the fix: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_decides_auto_mode_from_live_cluster_facts() {
    use sidecar_kit_fakeapi::{FakeApi, FakeConfig, NodeSeed};
    let fake = FakeApi::start(FakeConfig {
        version: "v1.31.4".into(),
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    let s = fake.state();
    s.seed_node(NodeSeed::new("new-1", "v1.31.4").label("pool", "new"))
        .unwrap();
    s.seed_node(NodeSeed::new("old-1", "v1.27.9").label("pool", "old"))
        .unwrap();
    s.seed_namespace("shop", &[]).unwrap();
    let (dir, _) = workdir("live");
    let kubeconfig = fake.write_kubeconfig(&dir).unwrap();
    let kc = kubeconfig.display().to_string();
    let mut server = start_with(&dir, &["--kubeconfig", &kc]);
    let probe = log_addr(&server.wait_log("probe listener bound (/healthz, /readyz, /metrics)"));
    let webhook = log_addr(&server.wait_log("webhook listening (POST /mutate)"));
    eventually_async(
        "the node cache in /readyz",
        Duration::from_secs(20),
        || async {
            http_get(probe, "/readyz")
                .await
                .1
                .contains("nodes: 2 in cache")
        },
    )
    .await;
    let connector = tls(&dir);

    // Mixed nodes, no fresh labeler Lease: the universal fallback is not trusted, legacy it is.
    let (_, resp) = post(
        webhook,
        &connector,
        serde_json::json!({"logging": "shipped"}),
    )
    .await;
    assert_eq!(
        resp["response"]["auditAnnotations"]["injected"], "log-shipper=legacy",
        "{resp}"
    );
    // A pod that only fits the new pool: native.
    let body = String::from_utf8(review_body(serde_json::json!({"logging": "shipped"})))
        .unwrap()
        .replace(
            "\"containers\"",
            "\"nodeSelector\":{\"pool\":\"new\"},\"containers\"",
        );
    let (_, resp) = post_split(webhook, &connector, body.as_bytes(), async {}).await;
    assert_eq!(
        resp["response"]["auditAnnotations"]["injected"], "log-shipper=native",
        "{resp}"
    );
    assert!(
        http_get(probe, "/metrics")
            .await
            .1
            .contains("sidecar_kit_cluster_facts_synced 1")
    );

    // Events on the owner: none for a dry run, one for the real create.
    let owned = |uid: &str, dry: bool| {
        let mut v: serde_json::Value =
            serde_json::from_slice(&review_body(serde_json::json!({"logging": "shipped"})))
                .unwrap();
        v["request"]["dryRun"] = serde_json::json!(dry);
        v["request"]["object"]["metadata"]["ownerReferences"] = serde_json::json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("web-{uid}"), "uid": uid, "controller": true}]);
        serde_json::to_vec(&v).unwrap()
    };
    let (status, _) = post_split(webhook, &connector, &owned("dry-1", true), async {}).await;
    assert_eq!(status, 200);
    let (status, _) = post_split(webhook, &connector, &owned("real-1", false), async {}).await;
    assert_eq!(status, 200);
    let events = || {
        fake.state()
            .list("events.events.k8s.io", Some("shop"))
            .unwrap()
    };
    eventually_async("an Event on the owner", Duration::from_secs(20), || async {
        !events().is_empty()
    })
    .await;
    let evs = events();
    assert_eq!(evs.len(), 1, "no Event for the dry run: {evs:#?}");
    assert_eq!(evs[0]["regarding"]["uid"], "real-1");
    assert_eq!(evs[0]["reason"], "Injected");
    assert_eq!(evs[0]["reportingController"], "sidecar-kit.io/webhook");
    assert!(
        evs[0]["note"]
            .as_str()
            .unwrap()
            .contains("log-shipper (legacy)"),
        "{}",
        evs[0]
    );
    drop(server);
    fake.shutdown().await;
}

/// A fake API server with the SidecarProfile CRD and the namespace `shop`, a work directory
/// (see [`workdir`]) and a kubeconfig for it: the fake, the directory, the workspace root and
/// the kubeconfig's path.
async fn crd_cluster(tag: &str) -> (sidecar_kit_fakeapi::FakeApi, PathBuf, PathBuf, String) {
    use sidecar_kit_fakeapi::{FakeApi, FakeConfig};
    let fake = FakeApi::start(FakeConfig {
        version: "v1.31.4".into(),
        install_sidecar_profile_crd: true,
        ..FakeConfig::default()
    })
    .await
    .unwrap();
    fake.state().seed_namespace("shop", &[]).unwrap();
    let (dir, root) = workdir(tag);
    let kc = fake.write_kubeconfig(&dir).unwrap().display().to_string();
    (fake, dir, root, kc)
}

/// The golden tests' mesh-proxy profile, as a SidecarProfile object to store.
fn mesh_profile(root: &Path) -> Value {
    sidecar_kit_manifests::read_path(
        &root
            .join("crates/cli/tests/golden/profiles/mesh.yaml")
            .display()
            .to_string(),
    )
    .unwrap()[0]
        .value
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_profiles_from_the_crd() {
    let (fake, dir, root, kc) = crd_cluster("crd").await;
    let s = fake.state();
    let mut server = start_with(&dir, &["--kubeconfig", &kc]);
    let probe = log_addr(&server.wait_log("probe listener bound (/healthz, /readyz, /metrics)"));
    let webhook = log_addr(&server.wait_log("webhook listening (POST /mutate)"));
    let connector = tls(&dir);
    const RES: &str = "sidecarprofiles.sidecar-kit.io";

    // A valid object joins the set, and its status says so.
    let mesh = mesh_profile(&root);
    s.insert(RES, mesh).unwrap();
    eventually_async(
        "the CRD profile in /readyz",
        Duration::from_secs(20),
        || async { http_get(probe, "/readyz").await.1.contains("mesh-proxy") },
    )
    .await;
    let (_, resp) = post(webhook, &connector, serde_json::json!({"mesh": "on"})).await;
    assert_eq!(
        resp["response"]["auditAnnotations"]["injected"], "mesh-proxy=native",
        "{resp}"
    );
    eventually_async("the Valid condition", Duration::from_secs(20), || async {
        s.get(RES, None, "mesh-proxy")
            .unwrap()
            .unwrap()
            .pointer("/status/conditions/0/status")
            == Some(&serde_json::json!("True"))
    })
    .await;

    // An invalid one is left out, and its status names the field.
    s.insert(RES, serde_json::json!({"apiVersion": "sidecar-kit.io/v1alpha1", "kind": "SidecarProfile", "metadata": {"name": "broken"},
        "spec": {"containers": [{"name": "agent"}]}})).unwrap();
    eventually_async("the Invalid condition", Duration::from_secs(20), || async {
        s.get(RES, None, "broken")
            .unwrap()
            .unwrap()
            .pointer("/status/conditions/0/message")
            .and_then(|m| m.as_str())
            .is_some_and(|m| m.contains("spec.containers[0].image"))
    })
    .await;
    eventually_async(
        "the invalid object in /readyz",
        Duration::from_secs(20),
        || async {
            http_get(probe, "/readyz")
                .await
                .1
                .contains("invalid (see their status): broken")
        },
    )
    .await;
    assert_eq!(
        http_get(probe, "/readyz").await.0,
        200,
        "an invalid object does not make the webhook unready"
    );

    // A name both in the directory and in the cluster: the last good set stays, /readyz says why.
    let mut dup = serde_json::to_value(
        sidecar_kit_manifests::read_path(
            &root
                .join("examples/profiles/log-shipper.yaml")
                .display()
                .to_string(),
        )
        .unwrap()[0]
            .value
            .clone(),
    )
    .unwrap();
    dup["spec"]["priority"] = serde_json::json!(1);
    s.insert(RES, dup).unwrap();
    eventually_async(
        "the conflict in /readyz",
        Duration::from_secs(20),
        || async {
            http_get(probe, "/readyz")
                .await
                .1
                .contains("is defined twice")
        },
    )
    .await;
    let (_, resp) = post(webhook, &connector, serde_json::json!({"mesh": "on"})).await;
    assert_eq!(
        resp["response"]["auditAnnotations"]["injected"], "mesh-proxy=native",
        "the last good set is in force"
    );
    drop(server);
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_profile_reported_in_force_is_injected_by_the_next_review() {
    use base64::Engine as _;
    let (fake, dir, root, kc) = crd_cluster("crd-in-force").await;
    let s = fake.state();
    // Reloads a second apart, as in production (every 2 s by default): a status written on
    // sight of the object would be read well before the webhook uses the object.
    let mut server = start_with(&dir, &["--kubeconfig", &kc, "--reload-interval", "1"]);
    let webhook = log_addr(&server.wait_log("webhook listening (POST /mutate)"));
    let connector = tls(&dir);
    const RES: &str = "sidecarprofiles.sidecar-kit.io";
    let condition = |generation: i64| {
        let s = s.clone();
        move || {
            let obj = s.get(RES, None, "mesh-proxy").unwrap().unwrap();
            let found = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Valid"))
                .is_some_and(|c| c["status"] == "True" && c["observedGeneration"] == generation);
            async move { found }
        }
    };

    // A new object: once its status says it is in force, the very next review injects it.
    let mut mesh = mesh_profile(&root);
    s.insert(RES, mesh.clone()).unwrap();
    eventually_async(
        "Valid for generation 1",
        Duration::from_secs(20),
        condition(1),
    )
    .await;
    let (status, resp) = post(webhook, &connector, serde_json::json!({"mesh": "on"})).await;
    assert_eq!(status, 200);
    assert_eq!(
        resp["response"]["auditAnnotations"]["injected"], "mesh-proxy=native",
        "the status said in force: {resp}"
    );

    // A changed spec: once the status says the new generation is in force, the next review
    // adds the new image.
    mesh = s.get(RES, None, "mesh-proxy").unwrap().unwrap();
    mesh["spec"]["containers"][0]["image"] = serde_json::json!("registry.example.com/proxy:1.3");
    s.insert(RES, mesh).unwrap();
    eventually_async(
        "Valid for generation 2",
        Duration::from_secs(20),
        condition(2),
    )
    .await;
    let (status, resp) = post(webhook, &connector, serde_json::json!({"mesh": "on"})).await;
    assert_eq!(status, 200);
    let patch = base64::engine::general_purpose::STANDARD
        .decode(resp["response"]["patch"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8(patch)
            .unwrap()
            .contains("registry.example.com/proxy:1.3"),
        "the status said generation 2 is in force: {resp}"
    );
    drop(server);
    fake.shutdown().await;
}

/// The certificates of a PEM file, DER each.
fn pem_certs(path: &Path) -> Vec<Vec<u8>> {
    CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(|c| c.unwrap().to_vec())
        .collect()
}

#[test]
fn certs_rotation_keeps_the_previous_ca_trusted() {
    let dir = std::env::temp_dir().join(format!("sk-certs-rotate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |force: bool| {
        let mut cmd = Command::new(bin());
        cmd.args(["certs", "--out-dir"]).arg(&dir);
        if force {
            cmd.arg("--force");
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bundle = String::from_utf8(out.stdout).unwrap().trim().to_string();
        (
            pem_certs(&dir.join("ca.crt")),
            bundle,
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (first, _, said) = run(false);
    assert_eq!(first.len(), 1, "a first set has one CA");
    assert!(!said.contains("previous CA"), "{said}");
    let (second, bundle, said) = run(true);
    assert_eq!(
        second.len(),
        2,
        "the rotated bundle holds the new and the previous CA"
    );
    assert_ne!(second[0], first[0], "a new CA comes first");
    assert_eq!(second[1], first[0], "the previous CA is kept");
    assert!(said.contains("previous CA"), "{said}");
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(bundle)
        .unwrap();
    assert_eq!(
        decoded,
        std::fs::read(dir.join("ca.crt")).unwrap(),
        "the printed caBundle is ca.crt"
    );
    // A third rotation keeps the second set's CA and drops the first: never more than two.
    let (third, _, _) = run(true);
    assert_eq!(third.len(), 2, "only the newest previous CA is kept");
    assert_eq!(third[1], second[0]);
    let _ = std::fs::remove_dir_all(&dir);
}
