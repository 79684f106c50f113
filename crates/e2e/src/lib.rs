//! Helpers of the end-to-end suite (`tests/e2e.rs`): kubectl against the cluster named by
//! `SIDECAR_KIT_E2E_KUBECONFIG`, the project's binaries as child processes with their JSON
//! logs, a cleanup guard, and a tiny HTTPS admission webhook for the suite's other webhooks.
//!
//! Everything here talks to the API through `/usr/bin/kubectl` (or `SIDECAR_KIT_E2E_KUBECTL`),
//! so the suite needs no Kubernetes client library and builds in seconds.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub type Result<T> = std::result::Result<T, String>;

pub mod probe;

pub use sidecar_kit_testkit::{unbase64, workspace_root};

/// The `sidecar-kit` binary: `SIDECAR_KIT_E2E_BIN` as given, else `debug/sidecar-kit` in
/// `CARGO_TARGET_DIR` (default: the workspace's `target`), brought up to date first with
/// `cargo build -q -p sidecar-kit --bin sidecar-kit` (a no-op when it is fresh), so a stale
/// binary is never what the suite tests.
pub fn sidecar_kit_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("SIDECAR_KIT_E2E_BIN") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("SIDECAR_KIT_E2E_BIN={} is not a file", p.display()))
        };
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let bin = target.join("debug/sidecar-kit");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .args([
            "build",
            "-q",
            "-p",
            "sidecar-kit",
            "--bin",
            "sidecar-kit",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !st.success() || !bin.is_file() {
        return Err(format!(
            "cargo build -p sidecar-kit did not produce {}",
            bin.display()
        ));
    }
    Ok(bin)
}

/// One line to the terminal, past the test harness's output capture.
pub fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// A short id unique to this run (lower-case hex, DNS-label safe).
pub fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let x = (nanos as u64) ^ (u64::from(std::process::id()) << 20);
    format!("{:06x}", x & 0xff_ffff)
}

/// kubectl against one kubeconfig.
#[derive(Clone)]
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    pub bin: PathBuf,
}

impl Kubectl {
    pub fn new(kubeconfig: PathBuf) -> Self {
        let bin = std::env::var_os("SIDECAR_KIT_E2E_KUBECTL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        Self { kubeconfig, bin }
    }

    /// Runs kubectl with `args` (and `stdin`); Ok(stdout) on success, Err(stderr) otherwise.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("kubectl: {e}"))?;
        if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
            w.write_all(input.as_bytes())
                .map_err(|e| format!("kubectl stdin: {e}"))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| format!("kubectl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `kubectl create -f -` of one object; returns the stored object.
    /// Runs a cleanup command: a failure is said on stderr and the cleanup goes on.
    pub fn cleanup(&self, args: &[&str]) {
        if let Err(e) = self.run(args, None) {
            eprintln!("e2e cleanup: {e}");
        }
    }

    pub fn create(&self, obj: &Value) -> Result<Value> {
        let out = self.run(&["create", "-o", "json", "-f", "-"], Some(&obj.to_string()))?;
        serde_json::from_str(&out).map_err(|e| format!("kubectl create output: {e}"))
    }

    /// A server-side dry-run create; returns the object the server would store.
    pub fn create_dry_run(&self, obj: &Value) -> Result<Value> {
        let out = self.run(
            &["create", "--dry-run=server", "-o", "json", "-f", "-"],
            Some(&obj.to_string()),
        )?;
        serde_json::from_str(&out).map_err(|e| format!("kubectl create output: {e}"))
    }

    /// `kubectl get KIND NAME [-n NS] -o json`; Ok(None) when not found.
    pub fn get(&self, kind: &str, name: &str, ns: Option<&str>) -> Result<Option<Value>> {
        let mut args = vec!["get", kind, name, "-o", "json", "--ignore-not-found"];
        if let Some(ns) = ns {
            args.extend(["-n", ns]);
        }
        let out = self.run(&args, None)?;
        if out.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&out)
            .map(Some)
            .map_err(|e| format!("kubectl get output: {e}"))
    }

    /// The log lines of one container (`previous`: of its last terminated instance), each
    /// with the time the container runtime recorded it (seconds since the epoch). Needs the
    /// API server to reach the node's kubelet.
    pub fn logs(
        &self,
        ns: &str,
        pod: &str,
        container: &str,
        previous: bool,
    ) -> Result<Vec<(f64, String)>> {
        let mut args = vec!["logs", "--timestamps", "-n", ns, pod, "-c", container];
        if previous {
            args.push("--previous");
        }
        let out = self.run(&args, None)?;
        out.lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (ts, text) = l.split_once(' ').unwrap_or((l, ""));
                rfc3339_secs(ts)
                    .map(|t| (t, text.to_string()))
                    .ok_or_else(|| {
                        format!("kubectl logs {pod} -c {container}: no timestamp in {l:?}")
                    })
            })
            .collect()
    }

    /// `kubectl get --raw PATH`.
    pub fn raw(&self, path: &str) -> Result<String> {
        self.run(&["get", "--raw", path], None)
    }
}

/// What the API server's `/metrics` says about the SidecarContainers gate: Some(true/false),
/// or None when there is no metric line (a version at or past GA: on).
pub fn sidecar_gate(metrics: &str) -> Option<bool> {
    metrics
        .lines()
        .filter(|l| l.starts_with("kubernetes_feature_enabled{"))
        .find(|l| l.contains("name=\"SidecarContainers\""))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.trim() == "1")
}

/// Seconds since the epoch of an RFC 3339 time (`2026-11-25T20:11:01.329196040Z`, or with a
/// `+hh:mm`/`-hh:mm` offset), as Kubernetes writes them in objects and log timestamps.
pub fn rfc3339_secs(s: &str) -> Option<f64> {
    let (date, time) = s.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (c, o) = time.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let (oh, om) = o[1..].split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let mut c = clock.splitn(3, ':');
    let (h, mi): (i64, i64) = (c.next()?.parse().ok()?, c.next()?.parse().ok()?);
    let sec: f64 = c.next()?.parse().ok()?;
    if h > 23 || mi > 59 || !(0.0..61.0).contains(&sec) {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after H. Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 - offset) as f64 + sec)
}

/// Now, in seconds since the epoch.
pub fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Everything the run created, deleted on drop (also after a panic), without waiting on
/// namespace termination: webhook configurations first (so nothing else is intercepted any
/// more), then namespaced objects (a bare API server has no namespace controller, so a pod
/// left in a deleted namespace would keep running on its node), then the rest.
pub struct Guard {
    kubectl: Kubectl,
    items: Mutex<Vec<(String, Option<String>, String)>>,
}

impl Guard {
    pub fn new(kubectl: Kubectl) -> Self {
        Self {
            kubectl,
            items: Mutex::new(Vec::new()),
        }
    }

    /// Registers a cluster-scoped object or namespace (`kind`, `name`) for deletion.
    pub fn track(&self, kind: &str, name: &str) {
        if let Ok(mut v) = self.items.lock() {
            v.push((kind.to_string(), None, name.to_string()));
        }
    }

    /// Registers a namespaced object (`kind`, `namespace`, `name`) for deletion.
    pub fn track_in(&self, kind: &str, namespace: &str, name: &str) {
        if let Ok(mut v) = self.items.lock() {
            v.push((
                kind.to_string(),
                Some(namespace.to_string()),
                name.to_string(),
            ));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let items = self.items.lock().map(|v| v.clone()).unwrap_or_default();
        let rank = |(kind, ns, _): &&(String, Option<String>, String)| {
            if kind.starts_with("mutatingwebhookconfiguration") {
                0
            } else if ns.is_some() {
                1
            } else {
                2
            }
        };
        let mut ordered: Vec<_> = items.iter().collect();
        ordered.sort_by_key(rank);
        for (kind, ns, name) in ordered {
            let mut args = vec![
                "delete",
                kind.as_str(),
                name.as_str(),
                "--ignore-not-found",
                "--wait=false",
            ];
            if let Some(ns) = ns {
                args.extend(["-n", ns.as_str()]);
            }
            self.kubectl.cleanup(&args);
        }
    }
}

pub use sidecar_kit_testkit::{LogChild, log_addr};

/// Plain-HTTP GET on loopback (probe ports); returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `f` every 250 ms until it returns Some, for at most `timeout`.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    loop {
        match f() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}; last error: {last}"));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// [`eventually`] for conditions that can also fail for good: `f` returns `Ok(Some(Err(e)))`
/// to stop waiting at once with `e` (a pod that failed will not start).
pub fn eventually_or_stop<T>(
    what: &str,
    timeout: Duration,
    f: impl FnMut() -> Result<Option<Result<T>>>,
) -> Result<T> {
    eventually(what, timeout, f).and_then(|r| r)
}

/// A JSON Patch handler of a mini webhook: the pod in, the patch operations out (empty: no
/// patch).
pub type Handler = dyn Fn(&Value) -> Vec<Value> + Send + Sync;

/// A tiny HTTPS admission webhook on loopback (HTTP/1.1, keep-alive), for the suite's other
/// webhooks. Stops accepting when dropped.
pub struct MiniWebhook {
    pub addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl MiniWebhook {
    pub fn start(cert: &Path, key: &Path, handler: Arc<Handler>) -> Result<Self> {
        let certs = CertificateDer::pem_file_iter(cert)
            .map_err(|e| format!("{}: {e}", cert.display()))?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", cert.display()))?;
        let key =
            PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| e.to_string())?;
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (stop2, calls2) = (stop.clone(), calls.clone());
        std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((tcp, _)) => {
                        let (config, handler, calls) =
                            (config.clone(), handler.clone(), calls2.clone());
                        std::thread::spawn(move || {
                            let _ = serve_conn(tcp, config, &*handler, &calls);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Ok(Self { addr, stop, calls })
    }
}

impl Drop for MiniWebhook {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve_conn(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    handler: &Handler,
    calls: &std::sync::atomic::AtomicUsize,
) -> Result<()> {
    tcp.set_nonblocking(false).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = tls.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 65536];
            let n = tls.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf.drain(..head_end + len).skip(head_end).collect();
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let uid = review["request"]["uid"].clone();
        let ops = handler(&review["request"]["object"]);
        let mut response = json!({"uid": uid, "allowed": true});
        if !ops.is_empty() {
            response["patchType"] = json!("JSONPatch");
            response["patch"] = json!(base64(Value::Array(ops).to_string().as_bytes()));
        }
        let out = json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        })
        .to_string();
        write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{out}",
            out.len()
        )
        .map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
    }
}

/// `sidecar-kit doctor ARGS --kubeconfig K -o json`: its exit code and report, or why there
/// is no report.
pub fn doctor(bin: &Path, kubeconfig: &Path, args: &[&str]) -> Result<(i32, Value)> {
    let out = Command::new(bin)
        .arg("doctor")
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["-o", "json"])
        .output()
        .map_err(|e| format!("doctor {args:?}: {e}"))?;
    let v = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "doctor {args:?}: {e}; stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    Ok((out.status.code().unwrap_or(-1), v))
}

/// The reviews a `sidecar-kit serve` /metrics page counts (all results).
pub fn reviews_total(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("sidecar_kit_admission_reviews_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The check ids of a doctor report's findings.
pub fn finding_ids(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|f| f["check"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unbase64_inverts_base64() {
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foobar",
            &[0, 255, 128, 7, 9],
        ] {
            assert_eq!(unbase64(&base64(data)).as_deref(), Some(data));
        }
        assert_eq!(unbase64("Zm9v\nYmFy").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(unbase64("Zm9v!"), None);
        assert_eq!(unbase64("Z"), None);
    }

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(rfc3339_secs("1970-01-01T00:00:00Z"), Some(0.0));
        // `date -d 2026-11-25T20:11:01Z +%s`
        assert_eq!(rfc3339_secs("2026-11-25T20:11:01Z"), Some(1_795_637_461.0));
        let nanos = rfc3339_secs("2026-11-25T20:11:01.329196040Z").unwrap();
        assert!((nanos - 1_795_637_461.329_196).abs() < 1e-5, "{nanos}");
        assert_eq!(
            rfc3339_secs("2026-11-25T21:11:01+01:00"),
            Some(1_795_637_461.0)
        );
        assert_eq!(rfc3339_secs("2000-02-29T12:00:00Z"), Some(951_825_600.0));
        for bad in [
            "",
            "2026-11-25",
            "2026-13-01T00:00:00Z",
            "2026-11-25T25:00:00Z",
            "x",
        ] {
            assert_eq!(rfc3339_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn gate_from_metrics() {
        let on =
            "# HELP x\nkubernetes_feature_enabled{name=\"SidecarContainers\",stage=\"BETA\"} 1\n";
        let off = "kubernetes_feature_enabled{name=\"SidecarContainers\",stage=\"BETA\"} 0\n";
        assert_eq!(sidecar_gate(on), Some(true));
        assert_eq!(sidecar_gate(off), Some(false));
        assert_eq!(
            sidecar_gate("kubernetes_feature_enabled{name=\"Other\"} 1"),
            None
        );
    }
}
