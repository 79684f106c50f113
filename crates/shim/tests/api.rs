//! Feature `api`, black-box: the built binary against a small fake API server (std threads,
//! rustls with `ring` for HTTPS, or plain HTTP) on 127.0.0.1, port 0. TLS material is in
//! `tests/data/tls` (test-only; `regenerate.sh` there).
#![cfg(feature = "api")]
// Test code: a panic is a failed assertion (clippy.toml allows unwrap in #[test] functions;
// the helpers of an integration test crate need the same).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sidecar_kit_testkit::{wait_exit, wait_until};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const SHIM: &str = env!("CARGO_BIN_EXE_sidecar-shim");
const T: Duration = Duration::from_secs(10);
const TOKEN: &str = "test-token-123";

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tls")
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "sidecar-shim-api-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("state/agent")).unwrap();
        // A service account directory as the kubelet mounts it.
        let sa = dir.join("sa");
        fs::create_dir_all(&sa).unwrap();
        fs::write(sa.join("token"), format!("{TOKEN}\n")).unwrap();
        fs::copy(tls_dir().join("ca.crt"), sa.join("ca.crt")).unwrap();
        fs::write(sa.join("namespace"), "jobs").unwrap();
        Scratch(dir)
    }

    fn s(&self, rel: &str) -> String {
        self.0.join(rel).to_string_lossy().into_owned()
    }

    fn state(&self) -> String {
        fs::read_to_string(self.0.join("state/agent/state")).unwrap_or_default()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What the fake server answers: a status and a body, or a watch stream of events sent with
/// a pause before each.
#[derive(Clone)]
enum Reply {
    Json(u16, String),
    Watch(Vec<(Duration, String)>),
}

/// Maps a request path and how many times it was asked to a reply.
type Route = dyn Fn(&str, usize) -> Reply + Send + Sync;

/// A fake API server. `route` maps a request path to a reply; every request's head is kept.
struct Server {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(tls: bool, route: impl Fn(&str, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let config = tls.then(|| {
            let certs: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(tls_dir().join("server.crt"))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
            let key = PrivateKeyDer::from_pem_file(tls_dir().join("server.key")).unwrap();
            Arc::new(
                rustls::ServerConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
            )
        });
        let route = Arc::new(route);
        let seen = Arc::clone(&requests);
        thread::spawn(move || {
            for stream in listener.incoming().take(50) {
                let Ok(tcp) = stream else { continue };
                let (route, seen, config) = (Arc::clone(&route), Arc::clone(&seen), config.clone());
                thread::spawn(move || {
                    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    match config {
                        Some(config) => {
                            let conn = rustls::ServerConnection::new(config).unwrap();
                            let mut tls = rustls::StreamOwned::new(conn, tcp);
                            serve(&mut tls, &*route, &seen);
                            tls.conn.send_close_notify();
                            let _ = tls.flush();
                        }
                        None => {
                            let mut tcp = tcp;
                            serve(&mut tcp, &*route, &seen);
                        }
                    }
                });
            }
        });
        Server { port, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(
    stream: &mut (impl Read + Write),
    route: &dyn Fn(&str, usize) -> Reply,
    seen: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(&mut *stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    let resource = |p: &str| p.split('?').next().unwrap_or("").to_string();
    // The how-manyth request for this resource (GETs and watches counted apart).
    let n = {
        let mut seen = seen.lock().unwrap();
        seen.push(head.clone());
        seen.iter()
            .filter(|h| resource(h.split(' ').nth(1).unwrap_or("")) == resource(&path))
            .count()
    };
    match route(&path, n) {
        Reply::Json(status, body) => {
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
        Reply::Watch(events) => {
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            let _ = stream.flush();
            for (pause, event) in events {
                thread::sleep(pause);
                let line = format!("{event}\n");
                if write!(stream, "{:x}\r\n{line}\r\n", line.len()).is_err()
                    || stream.flush().is_err()
                {
                    return;
                }
            }
            // Keep the stream open, as a real watch does, until the client goes away.
            thread::sleep(Duration::from_secs(5));
        }
    }
}

fn node(version: &str) -> Reply {
    Reply::Json(
        200,
        format!(
            r#"{{"kind":"Node","metadata":{{"name":"node-1"}},"status":{{"nodeInfo":{{"kubeletVersion":"{version}"}}}}}}"#
        ),
    )
}

fn pod(rv: u32, app_state: &str) -> String {
    format!(
        r#"{{"kind":"Pod","metadata":{{"name":"job-1","resourceVersion":"{rv}"}},"status":{{"phase":"Running","containerStatuses":[{{"name":"agent","state":{{"running":{{}}}}}},{{"name":"app","state":{app_state}}}]}}}}"#
    )
}

fn event(kind: &str, object: &str) -> String {
    format!(r#"{{"type":"{kind}","object":{object}}}"#)
}

fn shim(scratch: &Scratch, server: &Server, tls: bool, args: &[&str]) -> Command {
    let mut cmd = Command::new(SHIM);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SIDECAR_SHIM_SERVICEACCOUNT_DIR", scratch.s("sa"))
        .env("SIDECAR_SHIM_TERMINATION_LOG", scratch.s("termination-log"))
        .stdin(Stdio::null());
    if tls {
        cmd.env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", server.port.to_string());
    } else {
        cmd.env(
            "SIDECAR_SHIM_API_SERVER",
            format!("http://127.0.0.1:{}", server.port),
        );
    }
    cmd
}

fn native_check(scratch: &Scratch, server: &Server, tls: bool) -> Command {
    let state = scratch.s("state/agent");
    let mut cmd = shim(
        scratch,
        server,
        tls,
        &[
            "native",
            "--state",
            &state,
            "--check-node",
            "--",
            "sleep",
            "30",
        ],
    );
    cmd.env("NODE_NAME", "node-1");
    cmd
}

fn output(mut cmd: Command) -> (Output, String) {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

fn spawn(mut cmd: Command, log: &Path) -> Child {
    cmd.stderr(fs::File::create(log).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn term(child: &Child) {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
}

// === native --check-node ===

#[test]
fn capable_node_runs_the_sidecar_on_the_first_run() {
    let scratch = Scratch::new("capable");
    let server = Server::start(true, |_, _| node("v1.30.2+k3s1"));
    let log = scratch.0.join("log");
    let mut child = spawn(native_check(&scratch, &server, true), &log);
    wait_until("the sidecar runs", T, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("started sleep")
    });
    assert_eq!(scratch.state(), "native-running\n");
    assert!(scratch.0.join("state/agent/native-confirmed").exists());
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("kubelet v1.30.2+k3s1 runs native sidecars: skipping the detection restart"),
        "{text}"
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert!(
        requests[0].starts_with("GET /api/v1/nodes/node-1 HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains(&format!("Authorization: Bearer {TOKEN}\r\n")));
    term(&child);
    assert_eq!(wait_exit(&mut child, T).code(), Some(143));
}

#[test]
fn old_node_exits_at_once_as_a_plain_init_container() {
    for version in ["v1.27.9", "v1.28.5-eks-5e0fdde"] {
        let scratch = Scratch::new("old");
        let server = Server::start(true, move |_, _| node(version));
        let started = Instant::now();
        let (out, err) = output(native_check(&scratch, &server, true));
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            scratch.state(),
            "native-pending\n",
            "a 1.28 kubelet with the gate on restarts us: the marker protocol then takes over"
        );
        assert!(err.contains("lacks native sidecar support"), "{err}");
    }
}

#[test]
fn api_errors_fall_back_to_the_marker_protocol() {
    let cases: Vec<(&str, Box<Route>, &str)> = vec![
        (
            "forbidden",
            Box::new(|_, _| {
                Reply::Json(
                    403,
                    r#"{"kind":"Status","message":"nodes \"node-1\" is forbidden"}"#.into(),
                )
            }),
            "403 Forbidden",
        ),
        (
            "not json",
            Box::new(|_, _| Reply::Json(200, "<html>".into())),
            "invalid JSON",
        ),
        (
            "no version",
            Box::new(|_, _| Reply::Json(200, "{}".into())),
            "no status.nodeInfo.kubeletVersion",
        ),
    ];
    for (name, route, expected) in cases {
        let scratch = Scratch::new("fallback");
        let server = Server::start(true, route);
        let (out, err) = output(native_check(&scratch, &server, true));
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        assert_eq!(scratch.state(), "native-pending\n", "{name}");
        assert!(
            err.contains(expected) && err.contains("using the marker protocol"),
            "{name}: {err}"
        );
    }

    // The API server's certificate is verified: another CA is not trusted.
    let scratch = Scratch::new("wrong-ca");
    fs::copy(tls_dir().join("other-ca.crt"), scratch.0.join("sa/ca.crt")).unwrap();
    let server = Server::start(true, |_, _| node("v1.31.0"));
    let (out, err) = output(native_check(&scratch, &server, true));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(scratch.state(), "native-pending\n");
    assert!(
        err.contains("cannot read node node-1") && err.to_lowercase().contains("certificate"),
        "{err}"
    );

    // Nothing listening; no NODE_NAME.
    let scratch = Scratch::new("down");
    let server = Server {
        port: TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        requests: Arc::default(),
    };
    let (out, err) = output(native_check(&scratch, &server, true));
    assert_eq!(
        (out.status.code(), scratch.state().as_str()),
        (Some(0), "native-pending\n"),
        "{err}"
    );
    let scratch = Scratch::new("no-node");
    let mut cmd = native_check(&scratch, &server, true);
    cmd.env_remove("NODE_NAME");
    let (out, err) = output(cmd);
    assert_eq!(
        (out.status.code(), scratch.state().as_str()),
        (Some(0), "native-pending\n")
    );
    assert!(err.contains("NODE_NAME is not set"), "{err}");
}

#[test]
fn node_check_over_plain_http_and_skipped_when_the_state_decides() {
    let scratch = Scratch::new("http");
    let server = Server::start(false, |_, _| node("v1.33.0"));
    let log = scratch.0.join("log");
    let mut child = spawn(native_check(&scratch, &server, false), &log);
    wait_until("the sidecar runs", T, || {
        scratch.state() == "native-running\n"
    });
    term(&child);
    wait_exit(&mut child, T);
    assert_eq!(server.requests().len(), 1);

    // A second run in the same sandbox (state present): no API call at all.
    let log = scratch.0.join("log2");
    let mut child = spawn(native_check(&scratch, &server, false), &log);
    wait_until("the sidecar runs", T, || {
        fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("started sleep")
    });
    assert_eq!(server.requests().len(), 1);
    term(&child);
    wait_exit(&mut child, T);
}

// === legacy --job-completion api ===

fn legacy_api(scratch: &Scratch, server: &Server, policy: &str) -> Command {
    let state = scratch.s("state/agent");
    let mut cmd = shim(
        scratch,
        server,
        true,
        &[
            "legacy",
            "--state",
            &state,
            "--pod-restart-policy",
            policy,
            "--job-completion",
            "api",
            "--wait-for",
            "app",
            "--stop-grace",
            "1",
            "--",
            "sleep",
            "30",
        ],
    );
    cmd.env("POD_NAME", "job-1").env("POD_NAMESPACE", "jobs");
    cmd
}

#[test]
fn job_completion_by_watching_the_pod() {
    let scratch = Scratch::new("watch");
    let server = Server::start(true, |path, _| {
        if path.contains("watch=1") {
            Reply::Watch(vec![
                (
                    Duration::from_millis(50),
                    event("MODIFIED", &pod(11, r#"{"running":{}}"#)),
                ),
                (
                    Duration::from_millis(300),
                    event("MODIFIED", &pod(12, r#"{"terminated":{"exitCode":0}}"#)),
                ),
            ])
        } else {
            Reply::Json(200, pod(10, r#"{"running":{}}"#))
        }
    });
    let log = scratch.0.join("log");
    let mut child = spawn(legacy_api(&scratch, &server, "Never"), &log);
    let status = wait_exit(&mut child, T);
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.contains("by watching pod jobs/job-1")
            && text.contains("app container app exited with 0: finished"),
        "{text}"
    );
    assert!(text.contains("Job done, exiting 0"), "{text}");
    let requests = server.requests();
    assert!(
        requests[0].starts_with("GET /api/v1/namespaces/jobs/pods/job-1 HTTP/1.1"),
        "{requests:?}"
    );
    assert!(
        requests[1].starts_with(
            "GET /api/v1/namespaces/jobs/pods?fieldSelector=metadata.name%3Djob-1&watch=1&allowWatchBookmarks=true&timeoutSeconds=240&resourceVersion=10 HTTP/1.1"
        ),
        "{requests:?}"
    );
    assert_eq!(
        fs::read_to_string(scratch.0.join("termination-log")).unwrap(),
        "legacy"
    );
}

#[test]
fn job_completion_api_under_onfailure_waits_and_relists_after_a_watch_error() {
    let scratch = Scratch::new("relist");
    // The first watch fails (410 Gone: the resourceVersion expired); the shim lists again.
    let server = Server::start(true, |path, n| {
        if path.contains("watch=1") {
            if n == 1 {
                Reply::Watch(vec![
                    (
                        Duration::ZERO,
                        event("MODIFIED", &pod(11, r#"{"terminated":{"exitCode":1}}"#)),
                    ),
                    (
                        Duration::from_millis(100),
                        event(
                            "ERROR",
                            r#"{"kind":"Status","code":410,"message":"too old resource version"}"#,
                        ),
                    ),
                ])
            } else {
                Reply::Watch(vec![(
                    Duration::from_millis(100),
                    event("MODIFIED", &pod(21, r#"{"terminated":{"exitCode":0}}"#)),
                )])
            }
        } else if n == 1 {
            Reply::Json(200, pod(10, r#"{"running":{}}"#))
        } else {
            Reply::Json(200, pod(20, r#"{"running":{}}"#))
        }
    });
    let log = scratch.0.join("log");
    let mut child = spawn(legacy_api(&scratch, &server, "OnFailure"), &log);
    let status = wait_exit(&mut child, T);
    let text = fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(
        text.contains("exited with 1: will be restarted (restartPolicy OnFailure)"),
        "{text}"
    );
    assert!(
        text.contains("too old resource version; retrying"),
        "{text}"
    );
    assert!(text.contains("exited with 0: finished"), "{text}");
    let gets = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET /api/v1/namespaces/jobs/pods/job-1 "))
        .count();
    assert_eq!(gets, 2, "listed again after the watch error");
}

#[test]
fn job_completion_api_needs_the_pod_name() {
    let scratch = Scratch::new("no-pod");
    let server = Server::start(true, |_, _| Reply::Json(500, "{}".into()));
    let mut cmd = legacy_api(&scratch, &server, "Never");
    cmd.env_remove("POD_NAME");
    let (out, err) = output(cmd);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        err.contains("POD_NAME") && err.lines().count() == 1,
        "{err}"
    );
}

// === ready over https ===

#[test]
fn ready_https_checks_do_not_verify_the_certificate() {
    let scratch = Scratch::new("ready-https");
    let server = Server::start(true, |path, _| {
        if path == "/ok" {
            Reply::Json(200, "{}".into())
        } else {
            Reply::Json(500, "{}".into())
        }
    });
    let state = scratch.s("state/agent");
    let check = |path: &str| {
        let url = format!("https://127.0.0.1:{}{path}", server.port);
        output(shim(
            &scratch,
            &server,
            true,
            &["ready", "--state", &state, "--http-get", &url],
        ))
        .0
        .status
        .code()
    };
    assert_eq!(check("/ok"), Some(0));
    assert_eq!(check("/fail"), Some(1));
}
