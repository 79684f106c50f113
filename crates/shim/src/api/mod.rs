//! Feature `api`: the little the shim asks of the Kubernetes API server.
//!
//! - `native --check-node`: `GET /api/v1/nodes/$NODE_NAME`, read
//!   `status.nodeInfo.kubeletVersion` (RBAC: `get` on `nodes`, a ClusterRole).
//! - `legacy --job-completion api`: `GET` then `watch` our own pod
//!   (`/api/v1/namespaces/$POD_NAMESPACE/pods?fieldSelector=metadata.name=$POD_NAME`) and read
//!   the app containers' `state.terminated.exitCode` (RBAC: `get` and `watch` on `pods`).
//!
//! In-cluster configuration as every client has it: `KUBERNETES_SERVICE_HOST` and
//! `KUBERNETES_SERVICE_PORT`, the service account's `token` (read again for every request:
//! projected tokens rotate) and `ca.crt`. Overrides, for tests and for a local API proxy:
//! `SIDECAR_SHIM_API_SERVER` (`https://HOST:PORT` or `http://HOST:PORT`) and
//! `SIDECAR_SHIM_SERVICEACCOUNT_DIR`.
//!
//! Blocking std I/O on a thread of its own; the supervisor loop only looks at a channel.

pub mod http;
pub mod tls;

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use crate::cli::Env;
use crate::exit::Failure;
use crate::json::{self, Value};
use crate::protocol::{self, Backoff, NodeSupport, RestartPolicy};
use crate::supervise::Completion;

pub const API_SERVER_ENV: &str = "SIDECAR_SHIM_API_SERVER";
pub const SERVICEACCOUNT_DIR_ENV: &str = "SIDECAR_SHIM_SERVICEACCOUNT_DIR";
pub const DEFAULT_SERVICEACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The node check delays the sidecar's start: give up quickly and use the marker protocol.
const NODE_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// A plain GET.
const GET_TIMEOUT: Duration = Duration::from_secs(15);
/// The server ends a watch after `timeoutSeconds`; we allow it a minute more.
const WATCH_SECONDS: u64 = 240;
const WATCH_READ_TIMEOUT: Duration = Duration::from_secs(WATCH_SECONDS + 60);
const MAX_BODY: u64 = 16 << 20;

/// Where the API server is and how to authenticate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub serviceaccount: PathBuf,
}

impl Config {
    pub fn from_env(env: Env<'_>) -> Result<Config, String> {
        let serviceaccount = env(SERVICEACCOUNT_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from(DEFAULT_SERVICEACCOUNT_DIR), PathBuf::from);
        if let Some(url) = env(API_SERVER_ENV).filter(|v| !v.is_empty()) {
            let parsed = crate::ready::Url::parse(&url)
                .map_err(|_| format!("{API_SERVER_ENV}={url} is not an http(s)://HOST:PORT URL"))?;
            return Ok(Config {
                https: parsed.https,
                host: parsed.host,
                port: parsed.port,
                serviceaccount,
            });
        }
        let host = env("KUBERNETES_SERVICE_HOST").filter(|v| !v.is_empty()).ok_or(
            "KUBERNETES_SERVICE_HOST is not set: not running in a pod? (or set SIDECAR_SHIM_API_SERVER)",
        )?;
        let port = match env("KUBERNETES_SERVICE_PORT").filter(|v| !v.is_empty()) {
            None => 443,
            Some(p) => p
                .parse()
                .map_err(|_| format!("KUBERNETES_SERVICE_PORT={p} is not a port"))?,
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(Config {
            https: true,
            host,
            port,
            serviceaccount,
        })
    }
}

/// An API error, phrased for the log line.
#[derive(Debug)]
pub enum ApiError {
    Io(io::Error),
    Status { code: u16, message: String },
    Invalid(String),
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Io(err) => write!(f, "{err}"),
            ApiError::Status { code: 401, .. } => {
                f.write_str("401 Unauthorized: the service account token was rejected")
            }
            ApiError::Status { code: 403, message } => write!(
                f,
                "403 Forbidden ({message}): grant the pod's service account the RBAC the shim needs (see the shim's README)"
            ),
            ApiError::Status { code, message } => write!(f, "status {code}: {message}"),
            ApiError::Invalid(message) => f.write_str(message),
        }
    }
}

impl From<io::Error> for ApiError {
    fn from(err: io::Error) -> ApiError {
        ApiError::Io(err)
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<tls::TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// A client for GET and watch requests, one connection per request.
pub struct Client {
    config: Config,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl Client {
    pub fn new(config: Config) -> io::Result<Client> {
        let tls = if config.https {
            Some(tls::verified_config(&config.serviceaccount.join("ca.crt"))?)
        } else {
            None
        };
        Ok(Client { config, tls })
    }

    fn token(&self) -> Option<String> {
        let token = std::fs::read_to_string(self.config.serviceaccount.join("token")).ok()?;
        let token = token.trim();
        (!token.is_empty()).then(|| token.to_string())
    }

    /// Sends `GET path`; returns the status and the body to read. Reads time out after
    /// `read_timeout` of silence.
    fn open(
        &self,
        path: &str,
        connect_deadline: Instant,
        read_timeout: Duration,
    ) -> Result<http::Response<Stream>, ApiError> {
        let tcp = crate::ready::connect(&self.config.host, self.config.port, connect_deadline)?;
        tcp.set_read_timeout(Some(read_timeout))?;
        tcp.set_write_timeout(Some(read_timeout))?;
        let mut stream = match &self.tls {
            Some(config) => Stream::Tls(Box::new(tls::connect(
                config.clone(),
                tcp,
                &self.config.host,
            )?)),
            None => Stream::Plain(tcp),
        };
        let host = if self.config.host.contains(':') {
            format!("[{}]:{}", self.config.host, self.config.port)
        } else {
            format!("{}:{}", self.config.host, self.config.port)
        };
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nUser-Agent: sidecar-shim/{}\r\nConnection: close\r\n",
            crate::cli::VERSION
        );
        if let Some(token) = self.token() {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes())?;
        stream.flush()?;
        Ok(http::read_response(stream)?)
    }

    /// `GET path` and parse the JSON body; non-2xx statuses are errors carrying the API's
    /// `Status.message`.
    pub fn get_json(&self, path: &str, timeout: Duration) -> Result<Value, ApiError> {
        let deadline = Instant::now() + timeout;
        let mut response = self.open(path, deadline, timeout)?;
        let body = http::read_body(&mut response.body, MAX_BODY)?;
        if !(200..300).contains(&response.status) {
            return Err(status_error(response.status, &body));
        }
        json::parse(&body).map_err(|err| ApiError::Invalid(format!("GET {path}: {err}")))
    }
}

fn status_error(code: u16, body: &str) -> ApiError {
    let message = json::parse(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect());
    ApiError::Status { code, message }
}

/// Object names in paths: DNS subdomains; anything else is refused rather than escaped.
fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn query_escape(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// === native --check-node ===

/// Reads the node's kubelet version. Every failure is logged and gives `Unknown`: the marker
/// protocol then decides, as without the flag.
pub fn check_node(env: Env<'_>) -> NodeSupport {
    const ROLE: &str = "native";
    let Some(node) = env("NODE_NAME").filter(|n| !n.is_empty()) else {
        log!(
            ROLE,
            "--check-node: NODE_NAME is not set (add env NODE_NAME from fieldRef spec.nodeName); using the marker protocol"
        );
        return NodeSupport::Unknown;
    };
    match node_version(env, &node) {
        Ok(version) => {
            let support = protocol::node_support(&version);
            let verdict = match support {
                NodeSupport::Supported => "runs native sidecars: skipping the detection restart",
                NodeSupport::Unsupported => "lacks native sidecar support: first run exits at once",
                NodeSupport::Unknown => "has a version I cannot read: using the marker protocol",
            };
            log!(ROLE, "node {node}: kubelet {version} {verdict}");
            support
        }
        Err(err) => {
            log!(
                ROLE,
                "--check-node: cannot read node {node} ({err}); using the marker protocol"
            );
            NodeSupport::Unknown
        }
    }
}

fn node_version(env: Env<'_>, node: &str) -> Result<String, ApiError> {
    if !is_object_name(node) {
        return Err(ApiError::Invalid(format!("`{node}` is not a node name")));
    }
    let config = Config::from_env(env).map_err(ApiError::Invalid)?;
    let client = Client::new(config)?;
    let object = client.get_json(&format!("/api/v1/nodes/{node}"), NODE_CHECK_TIMEOUT)?;
    object
        .at(&["status", "nodeInfo", "kubeletVersion"])
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::Invalid("the node has no status.nodeInfo.kubeletVersion".into()))
}

// === legacy --job-completion api ===

/// The last exit code of each awaited container in `pod` (`None`: not terminated now).
pub fn terminated_codes(pod: &Value, apps: &[String]) -> Vec<Option<i32>> {
    let statuses = pod
        .at(&["status", "containerStatuses"])
        .map_or(&[][..], Value::as_array);
    apps.iter()
        .map(|app| {
            statuses
                .iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(app))
                .and_then(|s| s.at(&["state", "terminated", "exitCode"]))
                .and_then(Value::as_i64)
                .and_then(|code| i32::try_from(code).ok())
        })
        .collect()
}

/// Job completion by watching our own pod.
pub struct PodWatch {
    apps: Vec<String>,
    policy: RestartPolicy,
    rx: Receiver<Vec<Option<i32>>>,
    latest: Vec<Option<i32>>,
    connected: bool,
}

pub fn pod_completion(
    env: Env<'_>,
    apps: &[String],
    policy: RestartPolicy,
) -> Result<Box<dyn Completion>, Failure> {
    let name = env("POD_NAME").filter(|n| !n.is_empty()).ok_or_else(|| {
        Failure::usage(
            "`--job-completion api` needs env POD_NAME (downward API: fieldRef metadata.name)",
        )
    })?;
    let config = Config::from_env(env).map_err(Failure::no_input)?;
    let namespace = env("POD_NAMESPACE")
        .filter(|n| !n.is_empty())
        .or_else(|| namespace_file(&config.serviceaccount))
        .ok_or_else(|| {
            Failure::usage("`--job-completion api` needs env POD_NAMESPACE (downward API: fieldRef metadata.namespace)")
        })?;
    if !is_object_name(&name) || !is_object_name(&namespace) {
        return Err(Failure::usage(format!(
            "POD_NAME/POD_NAMESPACE `{name}`/`{namespace}` are not object names"
        )));
    }
    let client =
        Client::new(config).map_err(|err| Failure::no_input(format!("API client: {err}")))?;
    let (tx, rx) = mpsc::channel();
    let watched = apps.to_vec();
    log!(
        "legacy",
        "Job-safe shutdown: waiting for {} by watching pod {namespace}/{name} through the API",
        apps.join(", ")
    );
    std::thread::Builder::new()
        .name("pod-watch".into())
        .spawn(move || watch_pod(&client, &namespace, &name, &watched, &tx))
        .map_err(|err| Failure::internal(format!("cannot start the pod watcher: {err}")))?;
    Ok(Box::new(PodWatch {
        apps: apps.to_vec(),
        policy,
        rx,
        latest: vec![None; apps.len()],
        connected: false,
    }))
}

fn namespace_file(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("namespace")).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl Completion for PodWatch {
    fn interval(&self) -> Duration {
        Duration::from_millis(250)
    }

    fn done(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(codes) => {
                    self.connected = true;
                    for (i, code) in codes.iter().enumerate() {
                        if *code != self.latest[i]
                            && let Some(code) = code
                        {
                            crate::roles::log_app_exit(&self.apps[i], *code, self.policy);
                        }
                    }
                    self.latest = codes;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break,
            }
        }
        self.connected && protocol::all_finished(&self.latest, self.policy)
    }
}

/// The watcher thread: GET, then watch from its resourceVersion; on any error wait (1 s
/// doubling to 30 s) and start over with a GET. Ends when the supervisor is gone.
fn watch_pod(
    client: &Client,
    namespace: &str,
    name: &str,
    apps: &[String],
    tx: &Sender<Vec<Option<i32>>>,
) {
    let mut backoff = Backoff::default();
    let mut last_error = String::new();
    loop {
        let started = Instant::now();
        match watch_once(client, namespace, name, apps, tx) {
            Ok(()) => return,
            Err(err) => {
                let text = err.to_string();
                if text != last_error {
                    log!(
                        "legacy",
                        "watching pod {namespace}/{name}: {text}; retrying"
                    );
                    last_error = text;
                }
            }
        }
        std::thread::sleep(backoff.next_delay(started.elapsed()));
    }
}

/// One GET and the watches that follow it. `Ok(())` only when the receiver is gone.
fn watch_once(
    client: &Client,
    namespace: &str,
    name: &str,
    apps: &[String],
    tx: &Sender<Vec<Option<i32>>>,
) -> Result<(), ApiError> {
    let pod = client.get_json(
        &format!("/api/v1/namespaces/{namespace}/pods/{name}"),
        GET_TIMEOUT,
    )?;
    if tx.send(terminated_codes(&pod, apps)).is_err() {
        return Ok(());
    }
    let mut version = resource_version(&pod).unwrap_or_default();
    loop {
        let path = format!(
            "/api/v1/namespaces/{namespace}/pods?fieldSelector={}&watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_SECONDS}&resourceVersion={}",
            query_escape(&format!("metadata.name={name}")),
            query_escape(&version)
        );
        let response = client.open(&path, Instant::now() + GET_TIMEOUT, WATCH_READ_TIMEOUT)?;
        if response.status != 200 {
            let mut body = response.body;
            let text = http::read_body(&mut body, MAX_BODY).unwrap_or_default();
            return Err(status_error(response.status, &text));
        }
        for line in BufReader::new(response.body).lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let event = json::parse(&line)
                .map_err(|err| ApiError::Invalid(format!("watch event: {err}")))?;
            let object = event.get("object").unwrap_or(&Value::Null);
            match event.get("type").and_then(Value::as_str) {
                Some("ADDED" | "MODIFIED") => {
                    if tx.send(terminated_codes(object, apps)).is_err() {
                        return Ok(());
                    }
                    version = resource_version(object).unwrap_or(version);
                }
                Some("BOOKMARK") => version = resource_version(object).unwrap_or(version),
                Some("DELETED") => return Err(ApiError::Invalid("the pod was deleted".into())),
                Some("ERROR") => {
                    // Typically 410 Gone: our resourceVersion is too old. Start over.
                    let message = object
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("error event");
                    return Err(ApiError::Invalid(format!("watch ended: {message}")));
                }
                _ => return Err(ApiError::Invalid("watch event without a known type".into())),
            }
        }
        // The server closed the watch after timeoutSeconds: resume from where we are.
    }
}

fn resource_version(object: &Value) -> Option<String> {
    object
        .at(&["metadata", "resourceVersion"])
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |key| {
            pairs
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn in_cluster_config() {
        let env = env_of(&[
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("KUBERNETES_SERVICE_PORT", "443"),
        ]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(
            config,
            Config {
                https: true,
                host: "10.96.0.1".into(),
                port: 443,
                serviceaccount: DEFAULT_SERVICEACCOUNT_DIR.into()
            }
        );
        let env = env_of(&[("KUBERNETES_SERVICE_HOST", "fd00::1")]);
        assert_eq!(Config::from_env(&env).unwrap().host, "fd00::1");
        let env = env_of(&[
            (API_SERVER_ENV, "http://127.0.0.1:8001"),
            (SERVICEACCOUNT_DIR_ENV, "/tmp/sa"),
        ]);
        let config = Config::from_env(&env).unwrap();
        assert_eq!(
            (config.https, config.port, config.serviceaccount),
            (false, 8001, "/tmp/sa".into())
        );
        assert!(
            Config::from_env(&env_of(&[]))
                .unwrap_err()
                .contains("KUBERNETES_SERVICE_HOST")
        );
        let env = env_of(&[
            ("KUBERNETES_SERVICE_HOST", "h"),
            ("KUBERNETES_SERVICE_PORT", "x"),
        ]);
        assert!(Config::from_env(&env).is_err());
    }

    #[test]
    fn terminated_codes_of_a_pod() {
        let pod = json::parse(
            r#"{"status":{"containerStatuses":[
                {"name":"agent","state":{"running":{}}},
                {"name":"app","state":{"terminated":{"exitCode":3}}},
                {"name":"worker","state":{"waiting":{"reason":"CrashLoopBackOff"}},
                 "lastState":{"terminated":{"exitCode":1}}}]}}"#,
        )
        .unwrap();
        let apps = [
            "app".to_string(),
            "worker".to_string(),
            "missing".to_string(),
        ];
        assert_eq!(terminated_codes(&pod, &apps), [Some(3), None, None]);
        assert_eq!(terminated_codes(&Value::Null, &apps), [None, None, None]);
    }

    #[test]
    fn names_and_escaping() {
        assert!(is_object_name("node-1.example"));
        assert!(!is_object_name("a/b"));
        assert!(!is_object_name(""));
        assert_eq!(query_escape("metadata.name=job-1"), "metadata.name%3Djob-1");
    }

    #[test]
    fn errors_explain_rbac() {
        let err = status_error(
            403,
            r#"{"kind":"Status","message":"pods \"x\" is forbidden"}"#,
        );
        let text = err.to_string();
        assert!(
            text.contains("pods \"x\" is forbidden") && text.contains("RBAC"),
            "{text}"
        );
        assert!(status_error(500, "oops").to_string().contains("oops"));
    }
}
