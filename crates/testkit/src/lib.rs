//! Test support shared by sidecar-kit's test suites (a dev-dependency; never shipped):
//!
//! - [`LogChild`]: one of our binaries as a child process whose stderr carries JSON log
//!   lines, waited on by message;
//! - [`http_get`]: a plain HTTP GET on loopback (probe and metrics listeners);
//! - [`TempDir`]: a fresh directory removed when dropped; [`copy_deploy_tree`]: a copy of
//!   `deploy/` without certificates; [`helm_bin`]: the helm the chart tests use, if any;
//! - [`LogCapture`]: this thread's log records, as JSON, for tests in one process;
//! - [`golden`]: comparison with expected files, refreshed with `SIDECAR_KIT_BLESS=1`;
//! - [`wait_until`], [`eventually`], [`eventually_async`]: waiting on a condition (never for
//!   a fixed time), and [`wait_exit`] for a child process.
//!
//! Helpers panic with what they saw: they serve tests, where a panic is the failure report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A child process whose stderr is read line by line as JSON log records. Killed (and
/// reaped) when dropped.
pub struct LogChild {
    pub child: Child,
    name: String,
    strict: bool,
    logs: mpsc::Receiver<Value>,
    seen: Vec<Value>,
}

impl LogChild {
    /// Spawns `cmd` with its stderr piped. With `strict`, a line that is not JSON fails the
    /// next wait (our binaries log JSON with `--log-format json`); otherwise such a line is
    /// kept as a JSON string.
    pub fn spawn(name: &str, mut cmd: Command, strict: bool) -> Result<Self, String> {
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{name}: {e}"))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| format!("{name}: no stderr"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let v = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            name: name.to_string(),
            strict,
            logs: rx,
            seen: Vec::new(),
        })
    }

    fn push(&mut self, v: Value) -> Result<(), String> {
        if self.strict
            && let Value::String(line) = &v
        {
            return Err(format!("{}: log line is not JSON: {line}", self.name));
        }
        self.seen.push(v);
        Ok(())
    }

    fn drain(&mut self) -> Result<(), String> {
        while let Ok(v) = self.logs.try_recv() {
            self.push(v)?;
        }
        Ok(())
    }

    /// Waits up to `timeout` for a log record whose `message` is `msg`; an error (with every
    /// record seen) when the process exits first or the time is up.
    pub fn try_wait_log(&mut self, msg: &str, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.seen.iter().find(|v| v["message"] == msg) {
                return Ok(v.clone());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // Whatever it wrote before exiting is in the pipe: read it all first.
                while let Ok(v) = self.logs.recv_timeout(Duration::from_millis(200)) {
                    self.push(v)?;
                }
                if let Some(v) = self.seen.iter().find(|v| v["message"] == msg) {
                    return Ok(v.clone());
                }
                return Err(format!(
                    "{} exited ({st}) before logging {msg:?}; logs: {:#?}",
                    self.name, self.seen
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!(
                    "{}: no log line {msg:?}; logs: {:#?}",
                    self.name, self.seen
                ));
            }
            if let Ok(v) = self.logs.recv_timeout(left.min(Duration::from_millis(200))) {
                self.push(v)?;
            }
        }
    }

    /// [`Self::try_wait_log`] with 30 s, panicking on failure.
    pub fn wait_log(&mut self, msg: &str) -> Value {
        self.try_wait_log(msg, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every record so far.
    pub fn logs(&mut self) -> &[Value] {
        if let Err(e) = self.drain() {
            panic!("{e}");
        }
        &self.seen
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{}: kill -TERM failed", self.name);
    }

    /// Waits up to `timeout` for the process to exit (killed, and a panic, if it does not).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_exit(&mut self.child, timeout)
    }
}

impl Drop for LogChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in a log record's `address` field.
pub fn log_addr(record: &Value) -> SocketAddr {
    record["address"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no address in {record}"))
}

/// How often the waiting helpers look again.
const POLL: Duration = Duration::from_millis(10);

/// Polls `check` until it holds; panics naming `what` after `timeout`. For tests on
/// threads; [`eventually`] is the same on a tokio runtime.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(POLL);
    }
}

/// Polls the async condition `check` until it holds; panics naming `what` after `timeout`.
pub async fn eventually_async<F: std::future::Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`eventually_async`] for a condition that needs no waiting of its own.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    eventually_async(what, timeout, || std::future::ready(check())).await;
}

/// Waits for `child` to exit; kills it and panics after `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("child {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(POLL);
    }
}

/// Plain-HTTP GET (`Connection: close`) on loopback; the status and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (
        status,
        out.split("\r\n\r\n").nth(1).unwrap_or("").to_string(),
    )
}

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `sk-TAG-PID-N`, created empty.
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sk-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The workspace's root directory (absolute), where `examples/`, `deploy/` and `charts/` are.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Removes from `cmd`'s environment what could point a tool away from loopback or at a real
/// cluster: proxies and `KUBECONFIG`.
pub fn isolate(cmd: &mut std::process::Command) {
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "KUBECONFIG",
    ] {
        cmd.env_remove(var);
    }
}

/// `kubectl` (or `$KUBECTL`) with no proxy and no kubeconfig from the environment: tests that
/// render manifests never reach a cluster.
pub fn kubectl() -> std::process::Command {
    let bin = std::env::var_os("KUBECTL").unwrap_or_else(|| "kubectl".into());
    let mut cmd = std::process::Command::new(bin);
    isolate(&mut cmd);
    cmd
}

/// Decodes standard base64 (padding optional, whitespace ignored); None on other bytes.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

/// `kubectl kustomize DIR`: the YAML text it prints (a failure fails the test, with
/// kubectl's words).
pub fn kustomize(dir: &Path) -> String {
    let out = kubectl()
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs (install it, or set KUBECTL to its path)");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes `deploy/overlays/NAME/kustomization.yaml`: the overlay `base` (a directory under
/// `deploy/overlays`) with `components/fail-closed`, as deploy/README.md tells users to write
/// it; returns the overlay's directory.
pub fn fail_closed_overlay(deploy: &Path, name: &str, base: &str) -> PathBuf {
    let dir = deploy.join("overlays").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n- ../{base}\ncomponents:\n- ../../components/fail-closed\n"
        ),
    )
    .unwrap();
    dir
}

/// Copies the tree `from` to `to`, leaving out every directory named `tls`: a developer's
/// real certificates in the self-managed overlay are neither read nor touched (the test
/// makes its own).
pub fn copy_deploy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "tls" {
                copy_deploy_tree(&src, &dst);
            }
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// The `helm` binary for the chart's tests: `SIDECAR_KIT_HELM` when set (used as given, so
/// a wrong path fails loudly), else `helm` on `PATH`; None when neither exists, and the test
/// then skips.
pub fn helm_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SIDECAR_KIT_HELM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("helm"))
        .find(|p| p.is_file())
}

/// Golden files: expected outputs kept in the repository.
pub mod golden {
    use std::path::Path;

    /// Whether this run refreshes the golden files (`SIDECAR_KIT_BLESS` set).
    pub fn bless() -> bool {
        std::env::var_os("SIDECAR_KIT_BLESS").is_some()
    }

    /// Compares `actual` with the file at `path` (a missing file differs), adding a message
    /// with both to `failures`; with `bless`, writes `actual` there instead.
    pub fn check(path: &Path, actual: &str, bless: bool, failures: &mut Vec<String>) {
        if bless {
            std::fs::write(path, actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(path)
            .unwrap_or_else(|_| format!("<missing {}>", path.display()));
        if expected != actual {
            failures.push(format!(
                "{} differs:\n--- expected\n{expected}\n--- actual\n{actual}",
                path.display()
            ));
        }
    }
}

/// Captures the log records of the current thread (and of tasks a current-thread runtime
/// runs on it) as JSON objects, from `start` until the capture is dropped.
pub struct LogCapture {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

struct CaptureWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    /// Records at `debug` and above, with their fields flattened beside `message`.
    pub fn start() -> LogCapture {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || CaptureWriter(writer.clone()))
            .finish();
        LogCapture {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// Every record so far.
    pub fn records(&self) -> Vec<Value> {
        let bytes = self.buf.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The records whose message is `message`.
    pub fn find(&self, message: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["message"] == message)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]).stdout(Stdio::null());
        c
    }

    #[test]
    fn waits_for_a_message_and_reports_what_it_saw() {
        let mut c = LogChild::spawn(
            "t",
            sh(r#"echo '{"message":"a"}' >&2; echo '{"message":"b","address":"127.0.0.1:9"}' >&2; sleep 5"#),
            true,
        )
        .unwrap();
        assert_eq!(log_addr(&c.wait_log("b")).port(), 9);
        assert_eq!(c.logs().len(), 2);
        let e = c
            .try_wait_log("never", Duration::from_millis(300))
            .unwrap_err();
        assert!(e.contains("no log line \"never\""), "{e}");
    }

    #[test]
    fn an_exit_before_the_message_is_an_error_and_strict_mode_rejects_text() {
        let mut c =
            LogChild::spawn("t", sh(r#"echo '{"message":"a"}' >&2; exit 3"#), true).unwrap();
        let e = c.try_wait_log("b", Duration::from_secs(10)).unwrap_err();
        assert!(e.contains("exited") && e.contains("\"a\""), "{e}");
        let mut c = LogChild::spawn("t", sh("echo plain text >&2; sleep 5"), true).unwrap();
        let e = c.try_wait_log("x", Duration::from_secs(10)).unwrap_err();
        assert!(e.contains("not JSON: plain text"), "{e}");
        let mut c = LogChild::spawn("t", sh("echo plain text >&2; exit 0"), false).unwrap();
        assert!(c.try_wait_log("x", Duration::from_secs(10)).is_err());
        assert_eq!(c.logs(), &[Value::String("plain text".into())]);
    }

    #[test]
    fn golden_files_differ_match_and_bless() {
        let d = TempDir::new("kit-golden");
        let f = d.path().join("x.txt");
        let mut failures = Vec::new();
        golden::check(&f, "a\n", false, &mut failures);
        assert!(failures[0].contains("<missing"), "{failures:?}");
        golden::check(&f, "a\n", true, &mut failures);
        golden::check(&f, "a\n", false, &mut failures);
        assert_eq!(failures.len(), 1, "matches once blessed");
        golden::check(&f, "b\n", false, &mut failures);
        assert!(
            failures[1].contains("--- expected\na\n\n--- actual\nb"),
            "{failures:?}"
        );
    }

    #[test]
    fn temp_dirs_are_fresh_and_removed() {
        let a = TempDir::new("kit");
        let b = TempDir::new("kit");
        assert_ne!(a.path(), b.path());
        let p = a.path().to_path_buf();
        std::fs::write(p.join("f"), "x").unwrap();
        drop(a);
        assert!(!p.exists());
    }
}
