//! The webhook on a real TLS socket: HTTP/1.1 and HTTP/2, certificate rotation with freshly
//! issued certificates, a broken pair that keeps the old certificate, and client-certificate
//! verification. Loopback only; waits on conditions, never on fixed sleeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sidecar_kit_testkit::eventually_async;
use sidecar_kit_webhook::review::FailureMode;
use sidecar_kit_webhook::{Bound, Config, certs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "sk-tls-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces a file atomically, as the kubelet does for Secret volumes.
fn write(path: &Path, content: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn names() -> Vec<String> {
    vec!["localhost".into(), "sidecar-kit.sidecar-kit.svc".into()]
}

type Started = (
    Bound,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), String>>,
);

async fn start(dir: &Path, client_ca: Option<PathBuf>) -> Started {
    start_with(dir, client_ca, Duration::from_secs(5)).await
}

async fn start_with(dir: &Path, client_ca: Option<PathBuf>, request_timeout: Duration) -> Started {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/profiles/log-shipper.yaml"),
        profiles.join("log-shipper.yaml"),
    )
    .unwrap();
    let config = Config {
        profiles: vec![profiles],
        tls_cert: dir.join("tls.crt"),
        tls_key: dir.join("tls.key"),
        client_ca,
        listen: "127.0.0.1:0".parse().unwrap(),
        probe_listen: "127.0.0.1:0".parse().unwrap(),
        failure: FailureMode::Allow,
        own_namespace: None,
        allow_namespaces: vec![],
        shim_image: None,
        reload_interval: Duration::from_millis(50),
        shutdown_timeout: Duration::from_secs(5),
        shutdown_delay: Duration::ZERO,
        request_timeout,
        bare_allow: false,
        review_cache_bytes: 1 << 20,
    };
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sidecar_kit_webhook::run(
        config,
        sidecar_kit_webhook::Adapters::none(),
        async move {
            let _ = stop_rx.await;
        },
        Some(bound_tx),
    ));
    let bound = tokio::time::timeout(Duration::from_secs(20), bound_rx)
        .await
        .expect("server came up")
        .unwrap();
    (bound, stop_tx, task)
}

fn connector(ca_pem: &str, client: Option<(&str, &str)>, alpn: &[u8]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let b = rustls::ClientConfig::builder_with_provider(sidecar_kit_webhook::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => b
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// Connects, returns the served leaf certificate and the answer to one review.
async fn call(
    addr: std::net::SocketAddr,
    tls: &TlsConnector,
    h2: bool,
) -> Result<(Vec<u8>, u16, String), String> {
    let body =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pod-create.json"))
            .unwrap();
    let (leaf, status, version, text) = exchange(addr, tls, h2, Bytes::from(body)).await?;
    assert!(
        status != 200 || text.starts_with("{\"apiVersion\":\"admission.k8s.io/v1\""),
        "{text}"
    );
    Ok((leaf, status, version))
}

/// Posts `body` to /mutate on a fresh connection: the served leaf certificate, the status,
/// the HTTP version and the answer's text.
async fn exchange(
    addr: std::net::SocketAddr,
    tls: &TlsConnector,
    h2: bool,
    body: Bytes,
) -> Result<(Vec<u8>, u16, String, String), String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let stream = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let leaf = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let req = hyper::Request::post("/mutate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body))
        .unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let resp = if h2 {
        let (mut send, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut send, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        send.send_request(req).await.map_err(|e| e.to_string())?
    };
    let status = resp.status().as_u16();
    let version = format!("{:?}", resp.version());
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("the answer's body: {e}"))?
        .to_bytes();
    Ok((
        leaf,
        status,
        version,
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .to_vec()
}

async fn metrics(addr: std::net::SocketAddr) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = send
        .send_request(
            hyper::Request::get("/metrics")
                .header("host", "x")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        )
        .await
        .unwrap();
    String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_h1_and_h2_and_rotates_certificates() {
    let dir = TempDir::new("rotate");
    let first = certs::issue(&names(), 30).unwrap();
    write(&dir.0.join("tls.crt"), &first.cert_pem);
    write(&dir.0.join("tls.key"), &first.key_pem);
    let (bound, stop, task) = start(&dir.0, None).await;

    let tls1 = connector(&first.ca_pem, None, b"http/1.1");
    let (leaf, status, version) = call(bound.webhook, &tls1, false).await.unwrap();
    assert_eq!((status, version.as_str()), (200, "HTTP/1.1"));
    assert_eq!(
        leaf,
        der(&first.cert_pem),
        "serves the certificate from the files"
    );
    let (_, status, version) = call(bound.webhook, &connector(&first.ca_pem, None, b"h2"), true)
        .await
        .unwrap();
    assert_eq!((status, version.as_str()), (200, "HTTP/2.0"));

    // A half-rotated pair (new certificate, old key) is refused: the old one keeps serving.
    let second = certs::issue(&names(), 30).unwrap();
    write(&dir.0.join("tls.crt"), &second.cert_pem);
    eventually_async(
        "a failed certificate reload",
        Duration::from_secs(20),
        || async {
            metrics(bound.probe)
                .await
                .contains("sidecar_kit_certificate_reloads_total{result=\"failure\"} 1")
        },
    )
    .await;
    let (leaf, _, _) = call(bound.webhook, &tls1, false).await.unwrap();
    assert_eq!(
        leaf,
        der(&first.cert_pem),
        "a bad pair keeps the old certificate"
    );

    // The key follows: the new pair is served, without a restart.
    write(&dir.0.join("tls.key"), &second.key_pem);
    let tls2 = connector(&second.ca_pem, None, b"http/1.1");
    eventually_async(
        "the rotated certificate to be served",
        Duration::from_secs(20),
        || async {
            call(bound.webhook, &tls2, false)
                .await
                .is_ok_and(|(leaf, _, _)| leaf == der(&second.cert_pem))
        },
    )
    .await;
    assert!(
        call(bound.webhook, &tls1, false).await.is_err(),
        "the old CA no longer verifies the server"
    );
    assert!(
        metrics(bound.probe)
            .await
            .contains("sidecar_kit_certificate_reloads_total{result=\"success\"} 2")
    );

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

fn client_cert(ca: &rcgen::Issuer<'_, rcgen::KeyPair>) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec!["kube-apiserver".to_string()]).unwrap();
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifies_client_certificates_when_configured() {
    let dir = TempDir::new("mtls");
    let server = certs::issue(&names(), 30).unwrap();
    write(&dir.0.join("tls.crt"), &server.cert_pem);
    write(&dir.0.join("tls.key"), &server.key_pem);
    // The API server's client CA, and a client certificate it signed.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    write(&dir.0.join("client-ca.crt"), &ca_cert.pem());
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let (cert, key) = client_cert(&issuer);
    let (bound, stop, task) = start(&dir.0, Some(dir.0.join("client-ca.crt"))).await;

    let anonymous = connector(&server.ca_pem, None, b"http/1.1");
    let err = call(bound.webhook, &anonymous, false).await;
    assert!(
        err.is_err(),
        "a client without a certificate is refused: {err:?}"
    );
    let other_ca = certs::issue(&["intruder".into()], 1).unwrap();
    let stranger = connector(
        &server.ca_pem,
        Some((&other_ca.cert_pem, &other_ca.key_pem)),
        b"http/1.1",
    );
    assert!(
        call(bound.webhook, &stranger, false).await.is_err(),
        "a certificate from another CA is refused"
    );
    let trusted = connector(&server.ca_pem, Some((&cert, &key)), b"http/1.1");
    let (_, status, _) = call(bound.webhook, &trusted, false).await.unwrap();
    assert_eq!(status, 200);

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_timed_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = TempDir::new("slow");
    let pair = certs::issue(&names(), 30).unwrap();
    write(&dir.0.join("tls.crt"), &pair.cert_pem);
    write(&dir.0.join("tls.key"), &pair.key_pem);
    let (bound, stop, task) = start_with(&dir.0, None, Duration::from_millis(300)).await;
    let tls = connector(&pair.ca_pem, None, b"http/1.1");

    // A client that sends half its headers and then nothing: the server hangs up on it.
    let tcp = TcpStream::connect(bound.webhook).await.unwrap();
    let mut s = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    s.write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok(), "the server keeps a stalled client forever");
    assert!(t.elapsed() < Duration::from_secs(5));

    // A client that sends headers and half a body: 408 or a closed connection, within the bound.
    let tcp = TcpStream::connect(bound.webhook).await.unwrap();
    let mut s = tls
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    s.write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let res = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
    assert!(res.is_ok(), "a stalled body is not bounded");
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );

    // A TCP client that never starts the TLS handshake is dropped too.
    let mut raw = TcpStream::connect(bound.webhook).await.unwrap();
    let mut b = [0u8; 16];
    let res = tokio::time::timeout(Duration::from_secs(10), raw.read(&mut b)).await;
    assert!(
        matches!(res, Ok(Ok(0)) | Ok(Err(_))),
        "a silent TCP client is not dropped: {res:?}"
    );

    // And the server still answers others.
    assert_eq!(call(bound.webhook, &tls, false).await.unwrap().1, 200);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

/// Posts `body` to /mutate on a fresh connection; the status and the answer's text.
async fn post_body(
    addr: std::net::SocketAddr,
    tls: &TlsConnector,
    h2: bool,
    body: Bytes,
) -> Result<(u16, String), String> {
    let (_, status, _, text) = exchange(addr, tls, h2, body).await?;
    Ok((status, text))
}

/// A body over the 6 MiB limit gets 413 with its reason on HTTP/2 as on HTTP/1.1: the rest
/// of the request is read before the answer, so the stream is not reset under the client
/// (not when the rest is dropped unread, nor when curl stops sending on an early answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413_on_h1_and_h2() {
    let dir = TempDir::new("toolarge");
    let issued = certs::issue(&names(), 30).unwrap();
    write(&dir.0.join("tls.crt"), &issued.cert_pem);
    write(&dir.0.join("tls.key"), &issued.key_pem);
    let (bound, stop, task) = start(&dir.0, None).await;
    let big = Bytes::from(vec![b' '; sidecar_kit_webhook::BODY_LIMIT + 1024 * 1024]);
    // curl, the client that showed it: before the rest was read, most HTTP/2 uploads over
    // the limit ended in "Stream error in the HTTP/2 framing layer" instead of the 413.
    curl_gets_413(bound.webhook, &dir.0, &issued.ca_pem);
    for (h2, alpn) in [(true, &b"h2"[..]), (false, b"http/1.1")] {
        let tls = connector(&issued.ca_pem, None, alpn);
        for round in 0..5 {
            let (status, text) = post_body(bound.webhook, &tls, h2, big.clone())
                .await
                .unwrap_or_else(|e| panic!("h2 {h2}, round {round}: {e}"));
            assert_eq!(status, 413, "h2 {h2}: {text}");
            assert!(text.contains("over the 6291456-byte limit"), "{text}");
        }
    }
    // A body within the limit is still reviewed on the same server.
    let (status, _) = post_body(
        bound.webhook,
        &connector(&issued.ca_pem, None, b"h2"),
        true,
        Bytes::from(
            std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pod-create.json"))
                .unwrap(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let _ = stop.send(());
    let _ = task.await;
}

/// Five uploads of 7 MiB with curl over HTTP/2 and one over HTTP/1.1 all get the 413 answer;
/// skipped with one line where curl or its HTTP/2 support is missing.
fn curl_gets_413(addr: std::net::SocketAddr, dir: &Path, ca_pem: &str) {
    let version = std::process::Command::new("curl").arg("-V").output();
    match version {
        Ok(v) if String::from_utf8_lossy(&v.stdout).contains("HTTP2") => {}
        _ => {
            eprintln!("curl with HTTP/2 not found: skipping the curl part of the 413 test");
            return;
        }
    }
    let ca = dir.join("curl-ca.crt");
    write(&ca, ca_pem);
    let big = dir.join("big.json");
    std::fs::write(
        &big,
        vec![b' '; sidecar_kit_webhook::BODY_LIMIT + 1024 * 1024],
    )
    .unwrap();
    let url = format!("https://localhost:{}/mutate", addr.port());
    for (round, version) in [
        "--http2",
        "--http2",
        "--http2",
        "--http2",
        "--http2",
        "--http1.1",
    ]
    .iter()
    .enumerate()
    {
        let out = std::process::Command::new("curl")
            .args(["-sS", version, "--cacert"])
            .arg(&ca)
            .args(["-H", "content-type: application/json", "--data-binary"])
            .arg(format!("@{}", big.display()))
            .args(["-w", "\n%{http_code}", &url])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success()
                && stdout.ends_with("\n413")
                && stdout.contains("over the 6291456-byte limit"),
            "curl {version}, round {round}: exit {:?}, {stdout}, {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A request body that sends `chunks` MiB, declares more, and then stalls without ending.
struct Stalling {
    chunks: usize,
}

impl http_body::Body for Stalling {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.chunks == 0 {
            return std::task::Poll::Pending; // (never woken: the client stalls)
        }
        self.chunks -= 1;
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![
            b' ';
            1 << 20
        ])))))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(32 << 20)
    }
}

/// A client that sends more than the limit and then stalls gets the 413 before the request
/// deadline, on HTTP/2 and HTTP/1.1: the rest of the body is read only while there is time,
/// not until the deadline answers 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_over_the_limit_gets_413_before_the_deadline() {
    let dir = TempDir::new("stalled");
    let issued = certs::issue(&names(), 30).unwrap();
    write(&dir.0.join("tls.crt"), &issued.cert_pem);
    write(&dir.0.join("tls.key"), &issued.key_pem);
    let timeout = Duration::from_secs(2);
    let (bound, stop, task) = start_with(&dir.0, None, timeout).await;
    for (h2, alpn) in [(true, &b"h2"[..]), (false, b"http/1.1")] {
        let tls = connector(&issued.ca_pem, None, alpn);
        let tcp = TcpStream::connect(bound.webhook).await.unwrap();
        let stream = tls
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let req = hyper::Request::post("/mutate")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Stalling { chunks: 7 })
            .unwrap();
        let io = hyper_util::rt::TokioIo::new(stream);
        let sent = Instant::now();
        let resp = if h2 {
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            send.send_request(req).await
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            send.send_request(req).await
        };
        let resp = resp.unwrap_or_else(|e| panic!("h2 {h2}: {e}"));
        assert_eq!(resp.status(), 413, "h2 {h2}");
        assert!(sent.elapsed() < timeout, "h2 {h2}: {:?}", sent.elapsed());
    }
    let _ = stop.send(());
    let _ = task.await;
}
