//! Load generator for `sidecar-kit serve`.
//!
//! Starts the server binary (the real stack; with `cached`, the real stack again under a
//! storm of one pod, which its answer cache serves; and the same stack answering a bare
//! `allowed` as the ceiling) and the Go peer of `go-peer/` (built with `go build`, skipped
//! with one line where Go is missing), and for each runs, over HTTPS keep-alive with
//! HTTP/1.1 and HTTP/2:
//! - a closed loop with N requests in flight (throughput);
//! - an open loop at a fixed offered rate, with latency measured from each request's
//!   *intended* send time, so a stalled server cannot hide its queue (no coordinated
//!   omission).
//!
//! It reports reviews/s, p50/p99/p99.9 latency, errors and the server's peak RSS.
//!
//! With `--huge-rate R`, every open loop is run twice: alone, and beside a stream of R huge
//! reviews per second (a pod of thousands of containers, `--huge-kib` KiB, on connections
//! of their own), so the small reviews' latency can be compared with and without it.
//!
//! ```text
//! cargo build --release -p sidecar-kit -p sidecar-kit-loadgen
//! target/release/sidecar-kit-loadgen --server target/release/sidecar-kit
//! # the whole comparison in one run: planned, cache on, ceiling, Go
//! target/release/sidecar-kit-loadgen --stacks inject,cached,ceiling,go --distinct-pods 5000
//! ```

use anyhow::{Context, Result, bail};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// HTTP/1.1
    H1,
    /// HTTP/2
    H2,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Loop {
    /// --connections requests in flight
    Closed,
    /// --rate reviews per second
    Open,
}

#[derive(Parser, Debug, Clone)]
#[command(about = "Benchmark sidecar-kit serve with real AdmissionReviews over HTTPS.")]
struct Args {
    /// The sidecar-kit binary to start.
    #[arg(long, default_value = "target/release/sidecar-kit")]
    server: PathBuf,
    /// Workspace root (for the example profile, facts and review fixture).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Seconds per measured run (after a 1 s warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Requests in flight in the closed loop.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// HTTP/2 connections the in-flight requests are spread over.
    #[arg(long, default_value_t = 4)]
    h2_connections: usize,
    /// Offered rate of the open loop, reviews per second.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Runs: which stacks to measure: `inject` (sidecar-kit, over the --distinct-pods pods),
    /// `cached` (sidecar-kit under a storm of one pod: its answer cache serves every review
    /// after the first), `ceiling` (the same stack answering a bare `allowed`), `go` (the Go
    /// peer in crates/loadgen/go-peer, built with `go build`; skipped with one line where Go
    /// is not installed).
    #[arg(long, value_delimiter = ',', default_value = "inject,ceiling,go")]
    stacks: Vec<String>,
    /// Protocols to measure each stack over.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "h1,h2")]
    protocols: Vec<Protocol>,
    /// Loops to run for each protocol.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "closed,open")]
    loops: Vec<Loop>,
    /// The Go toolchain for the Go peer [default: `go` on PATH, else the newest
    /// /usr/lib/go-*/bin/go (Debian's golang-1.2x-go)].
    #[arg(long, value_name = "PATH")]
    go: Option<PathBuf>,
    /// Distinct pods to cycle through: 1 is a pod storm from one template (the server's cache
    /// of repeated pods answers); thousands force every review to be planned.
    #[arg(long, default_value_t = 1)]
    distinct_pods: usize,
    /// Live facts: `serve` reads the cluster through this kubeconfig instead of the bundled
    /// facts file (for the memory of a large cluster's node cache:
    /// `cargo run --release -p sidecar-kit-fakeapi -- --nodes 5000` prints one).
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// Extra arguments for `sidecar-kit serve` (e.g. `--server-arg=--log-level=warn`). Repeatable.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// Huge reviews per second sent beside each open loop, in a second run of it (0: none).
    #[arg(long, default_value_t = 0.0)]
    huge_rate: f64,
    /// Size of a huge review's body, KiB (a pod of many containers; at most the server's
    /// 6 MiB body limit).
    #[arg(long, default_value_t = 4096)]
    huge_kib: usize,
    /// Print the results as JSON too.
    #[arg(long)]
    json: bool,
}

struct Server {
    child: Child,
    addr: SocketAddr,
    ca: String,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// CPU time process `pid` has used (user and system), in seconds: the fields utime and
/// stime of /proc/PID/stat, in USER_HZ ticks (100 per second in Linux's ABI).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count from the ')' that closes it.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|n| n.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

impl Server {
    fn rss_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// A fresh directory with a serving certificate for `localhost` from `sidecar-kit certs`.
fn workdir(args: &Args, tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sk-loadgen-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(&args.server)
        .args(["certs", "--san", "localhost", "--out-dir"])
        .arg(dir.join("tls"))
        .output()
        .context("running `sidecar-kit certs`")?;
    if !out.status.success() {
        bail!("certs failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(dir)
}

fn start(args: &Args, bare: bool) -> Result<Server> {
    let dir = workdir(args, if bare { "ceiling" } else { "inject" })?;
    let mut cmd = Command::new(&args.server);
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--probe-listen",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ])
    .arg("--profiles")
    .arg(args.root.join("examples/profiles"));
    match &args.kubeconfig {
        Some(k) => cmd.arg("--kubeconfig").arg(k),
        None => cmd
            .arg("--facts")
            .arg(args.root.join("examples/facts/capable.yaml")),
    };
    cmd.arg("--tls-cert")
        .arg(dir.join("tls/tls.crt"))
        .arg("--tls-key")
        .arg(dir.join("tls/tls.key"))
        // As the Deployment sets it (deploy/base/deployment.yaml).
        .env("MIMALLOC_PURGE_DELAY", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if bare {
        cmd.arg("--benchmark-bare-allow");
    }
    cmd.args(&args.server_args);
    let mut child = cmd.spawn().context("starting the server")?;
    let stderr = child.stderr.take().context("server stderr")?;
    let mut reader = BufReader::with_capacity(DRAIN_READ_BYTES, stderr);
    // What the server said before it stopped, for the error (a bad --kubeconfig, say).
    let mut said: Vec<String> = Vec::new();
    let addr = loop {
        let Some(line) = next_line(&mut reader) else {
            bail!(
                "the server ({}) exited before listening; it said:\n{}",
                args.server.display(),
                said.join("\n")
            )
        };
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        said.push(line);
        if v["message"] == "webhook listening (POST /mutate)" {
            break v["address"].as_str().context("address")?.parse()?;
        }
    };
    drain(reader);
    let ca = std::fs::read_to_string(dir.join("tls/ca.crt"))?;
    Ok(Server {
        child,
        addr,
        ca,
        dir,
    })
}

/// The size of the reads that drain a server's log pipe.
const DRAIN_READ_BYTES: usize = 64 * 1024;

/// The next line a server wrote (until it is listening), without its newline.
fn next_line(reader: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(n) if n > 0 => Some(line.trim_end_matches(['\n', '\r']).to_string()),
        _ => None,
    }
}

/// Keeps draining a server's log pipe, so that it never blocks on a full pipe: as a
/// container runtime reads a log pipe, in large reads, without splitting lines (a string and
/// a UTF-8 check per line cost this process CPU the server then lacks on a small machine).
fn drain(reader: BufReader<impl std::io::Read + Send + 'static>) {
    std::thread::spawn(move || {
        let mut reader = reader;
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
}

/// The Go toolchain: `--go`, else `go` on PATH, else the newest of Debian's
/// /usr/lib/go-*/bin/go.
fn go_toolchain(args: &Args) -> Option<PathBuf> {
    if let Some(go) = &args.go {
        return Some(go.clone());
    }
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("go"))
            .find(|g| g.is_file())
    });
    on_path.or_else(|| {
        let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin/go"))
            .filter(|g| {
                g.is_file()
                    && g.parent()
                        .and_then(Path::parent)
                        .and_then(|d| d.file_name())
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("go-"))
            })
            .collect();
        found.sort_by_key(|g| {
            // go-1.23 after go-1.9.
            g.display()
                .to_string()
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u32>().ok())
                .collect::<Vec<_>>()
        });
        found.pop()
    })
}

/// Builds the Go peer into target/loadgen and starts it with a fresh certificate; `None`
/// (after one line saying why) where Go is not installed.
fn start_go(args: &Args) -> Result<Option<Server>> {
    let Some(go) = go_toolchain(args) else {
        println!(
            "(Go peer skipped: no Go toolchain: install Debian's golang-1.23-go or give --go PATH)"
        );
        return Ok(None);
    };
    let src = args.root.join("crates/loadgen/go-peer");
    let bin = std::env::current_dir()?.join(args.root.join("target/loadgen/go-peer"));
    let out = Command::new(&go)
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .with_context(|| format!("running {} build", go.display()))?;
    if !out.status.success() {
        bail!(
            "go build in {} failed: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = workdir(args, "go")?;
    let mut child = Command::new(&bin)
        .arg("-cert")
        .arg(dir.join("tls/tls.crt"))
        .arg("-key")
        .arg(dir.join("tls/tls.key"))
        .args(["-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the Go peer")?;
    let stderr = child.stderr.take().context("Go peer stderr")?;
    let mut reader = BufReader::with_capacity(DRAIN_READ_BYTES, stderr);
    let addr = loop {
        let Some(line) = next_line(&mut reader) else {
            bail!("the Go peer exited before listening")
        };
        if let Some(a) = line.strip_prefix("listening ") {
            break a.trim().parse()?;
        }
    };
    drain(reader);
    let ca = std::fs::read_to_string(dir.join("tls/ca.crt"))?;
    Ok(Some(Server {
        child,
        addr,
        ca,
        dir,
    }))
}

fn connector(ca: &str, alpn: &[u8]) -> Result<tokio_rustls::TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[derive(Clone)]
enum Sender {
    H1(Arc<tokio::sync::Mutex<hyper::client::conn::http1::SendRequest<Full<Bytes>>>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

async fn connect(addr: SocketAddr, tls: &tokio_rustls::TlsConnector, h2: bool) -> Result<Sender> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let stream = tls.connect(ServerName::try_from("localhost")?, tcp).await?;
    let io = hyper_util::rt::TokioIo::new(stream);
    if h2 {
        let (send, conn) =
            hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .handshake(io)
                .await?;
        tokio::spawn(conn);
        Ok(Sender::H2(send))
    } else {
        let (send, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(conn);
        Ok(Sender::H1(Arc::new(tokio::sync::Mutex::new(send))))
    }
}

/// Sends one review; true when answered 200 with an allowed response.
async fn send(s: &Sender, body: &Bytes) -> bool {
    let req = match hyper::Request::post("/mutate")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body.clone()))
    {
        Ok(r) => r,
        Err(_) => return false,
    };
    let resp = match s {
        Sender::H1(m) => {
            let mut g = m.lock().await;
            if g.ready().await.is_err() {
                return false;
            }
            g.send_request(req).await
        }
        Sender::H2(h) => {
            let mut h = h.clone();
            if h.ready().await.is_err() {
                return false;
            }
            h.send_request(req).await
        }
    };
    let Ok(resp) = resp else { return false };
    let ok = resp.status() == 200;
    match resp.into_body().collect().await {
        Ok(b) => ok && memchr(b"\"allowed\":true", &b.to_bytes()),
        Err(_) => false,
    }
}

fn memchr(needle: &[u8], hay: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The review bodies, handed out in turn.
#[derive(Clone)]
struct Bodies {
    all: Arc<Vec<Bytes>>,
    next: Arc<AtomicU64>,
}

impl Bodies {
    fn next(&self) -> Bytes {
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize % self.all.len();
        self.all[i].clone()
    }
}

struct RunResult {
    reviews_per_s: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    errors: u64,
    count: usize,
    /// Server CPU time (user and system) per review answered in the measured interval, µs.
    server_cpu_us: f64,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn summarize(mut lat: Vec<u32>, errors: u64, elapsed: Duration, cpu_s: f64) -> RunResult {
    lat.sort_unstable();
    RunResult {
        server_cpu_us: cpu_s * 1e6 / (lat.len().max(1) as f64),
        reviews_per_s: lat.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&lat, 0.50),
        p99: percentile(&lat, 0.99),
        p999: percentile(&lat, 0.999),
        errors,
        count: lat.len(),
    }
}

async fn senders(args: &Args, server: &Server, h2: bool) -> Result<Vec<Sender>> {
    let tls = connector(&server.ca, if h2 { b"h2" } else { b"http/1.1" })?;
    let n = if h2 {
        args.h2_connections.max(1)
    } else {
        args.connections.max(1)
    };
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(connect(server.addr, &tls, h2).await?);
    }
    Ok(out)
}

/// N requests in flight, each sent as soon as the previous one of its slot is answered.
async fn closed_loop(args: &Args, server: &Server, h2: bool, body: &Bodies) -> Result<RunResult> {
    let senders = senders(args, server, h2).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let recording = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..args.connections {
        let s = senders[i % senders.len()].clone();
        let (stop, recording, errors, body) = (
            stop.clone(),
            recording.clone(),
            errors.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(200_000);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let ok = send(&s, &body.next()).await;
                if recording.load(Ordering::Relaxed) {
                    if ok {
                        lat.push(t.elapsed().as_micros() as u32);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    recording.store(true, Ordering::Relaxed);
    let t = Instant::now();
    let cpu = cpu_seconds(server.child.id());
    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    recording.store(false, Ordering::Relaxed);
    let cpu = cpu_seconds(server.child.id()) - cpu;
    let elapsed = t.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await?);
    }
    Ok(summarize(all, errors.load(Ordering::Relaxed), elapsed, cpu))
}

/// A fixed offered rate; latency counts from the intended send time.
async fn open_loop(args: &Args, server: &Server, h2: bool, body: &Bodies) -> Result<RunResult> {
    let senders = senders(args, server, h2).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<(Instant, bool)>(1_000_000);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for i in 0..args.connections {
        let s = senders[i % senders.len()].clone();
        let (rx, errors, body) = (rx.clone(), errors.clone(), body.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let job = rx.lock().await.recv().await;
                let Some((intended, record)) = job else { break };
                let ok = send(&s, &body.next()).await;
                if record {
                    if ok {
                        lat.push(intended.elapsed().as_micros() as u32);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let period = Duration::from_secs_f64(1.0 / args.rate);
    let warmup = (args.rate as u64).max(1);
    let total = warmup + (args.rate * args.duration) as u64;
    // The schedule runs on its own OS thread: nanosleep wakes within tens of microseconds,
    // where the async runtime's timer wheel rounds to milliseconds and would charge its
    // own lateness to the server.
    let start = Instant::now() + Duration::from_millis(50);
    let measured_from = start + period * warmup as u32;
    // Server CPU from the first measured send to the last.
    let pid = server.child.id();
    let dispatcher = std::thread::spawn(move || {
        let mut cpu_from = 0.0;
        for i in 0..total {
            if i == warmup {
                cpu_from = cpu_seconds(pid);
            }
            let intended = start + period * i as u32;
            let now = Instant::now();
            if intended > now {
                std::thread::sleep(intended - now);
            }
            if tx.blocking_send((intended, i >= warmup)).is_err() {
                break;
            }
        }
        cpu_seconds(pid) - cpu_from
    });
    let cpu = tokio::task::spawn_blocking(move || dispatcher.join())
        .await?
        .unwrap_or(0.0);
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await?);
    }
    let elapsed = Duration::from_secs_f64(args.duration).max(
        measured_from
            .elapsed()
            .min(Duration::from_secs_f64(args.duration)),
    );
    Ok(summarize(all, errors.load(Ordering::Relaxed), elapsed, cpu))
}

/// Distinct huge reviews (each planned: their keys differ, and they are too large to cache).
const HUGE_VARIANTS: usize = 8;

/// A review of the fixture's pod grown to about `kib` KiB with app containers, each with a
/// few env vars (a batch pod of thousands of containers). Variant `v` differs in a label.
fn huge_body(fixture: &str, kib: usize, v: usize) -> Result<Bytes> {
    let mut review: serde_json::Value = serde_json::from_str(fixture)?;
    review["request"]["object"]["metadata"]["labels"]["loadgen-variant"] =
        serde_json::json!(v.to_string());
    let template = review["request"]["object"]["spec"]["containers"][0].clone();
    let base = serde_json::to_vec(&review)?.len();
    let mut one = template.clone();
    one["name"] = serde_json::json!("worker-00000");
    one["env"] = serde_json::json!((0..8)
        .map(|i| serde_json::json!({"name": format!("SETTING_{i}"), "value": format!("value-of-setting-{i}-for-this-worker")}))
        .collect::<Vec<_>>());
    let each = serde_json::to_vec(&one)?.len() + 1;
    let n = (kib * 1024).saturating_sub(base) / each;
    let containers = review["request"]["object"]["spec"]["containers"]
        .as_array_mut()
        .context("fixture containers")?;
    for i in 0..n {
        let mut c = one.clone();
        c["name"] = serde_json::json!(format!("worker-{i:05}"));
        containers.push(c);
    }
    Ok(Bytes::from(serde_json::to_vec(&review)?))
}

/// Sends huge reviews at `rate` per second until `stop`, each on a connection of its own
/// pool; returns their latencies (µs) and errors.
async fn huge_stream(
    rate: f64,
    (addr, ca): (SocketAddr, String),
    h2: bool,
    bodies: Arc<Vec<Bytes>>,
    stop: Arc<AtomicBool>,
) -> Result<(Vec<u32>, u64)> {
    let pool = {
        let tls = connector(&ca, if h2 { b"h2" } else { b"http/1.1" })?;
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(connect(addr, &tls, h2).await?);
        }
        v
    };
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = Vec::new();
    let mut i = 0usize;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let (s, body) = (
            pool[i % pool.len()].clone(),
            bodies[i % bodies.len()].clone(),
        );
        i += 1;
        sent.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = send(&s, &body).await;
            (ok, t.elapsed().as_micros() as u32)
        }));
    }
    let (mut lat, mut errors) = (Vec::new(), 0);
    for t in sent {
        match t.await? {
            (true, us) => lat.push(us),
            (false, _) => errors += 1,
        }
    }
    Ok((lat, errors))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let fixture =
        std::fs::read_to_string(args.root.join("crates/webhook/tests/data/pod-create.json"))
            .context("review fixture")?;
    // Compact, as the API server sends reviews (Go's encoding/json writes no spaces).
    let fixture = serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&fixture)?)?;
    anyhow::ensure!(
        fixture.contains("\"pod-template-hash\":\"7d9c6b5f4\""),
        "the fixture's pod-template-hash label is where distinct pods vary"
    );
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..args.distinct_pods.max(1))
            .map(|i| {
                Bytes::from(if i == 0 {
                    fixture.clone()
                } else {
                    fixture.replace(
                        "\"pod-template-hash\":\"7d9c6b5f4\"",
                        &format!("\"pod-template-hash\":\"{i:09}\""),
                    )
                })
            })
            .collect(),
    );
    let storm = Bodies {
        all: Arc::new(vec![bodies[0].clone()]),
        next: Arc::new(AtomicU64::new(0)),
    };
    let pods = Bodies {
        all: bodies,
        next: Arc::new(AtomicU64::new(0)),
    };
    let huge: Arc<Vec<Bytes>> = Arc::new(if args.huge_rate > 0.0 {
        anyhow::ensure!(
            args.huge_kib <= 6 * 1024,
            "--huge-kib: the server refuses bodies over 6 MiB"
        );
        (0..HUGE_VARIANTS)
            .map(|v| huge_body(&fixture, args.huge_kib, v))
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    });
    let protocols: Vec<bool> = args.protocols.iter().map(|p| *p == Protocol::H2).collect();
    let loops: Vec<bool> = args.loops.iter().map(|l| *l == Loop::Open).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    println!(
        "| stack | protocol | loop | reviews/s | p50 ms | p99 ms | p99.9 ms | errors | server CPU µs/review | server peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for stack in &args.stacks {
        let (server, body) = match stack.as_str() {
            "inject" => (start(&args, false)?, &pods),
            "cached" => (start(&args, false)?, &storm),
            "ceiling" => (start(&args, true)?, &pods),
            "go" => match start_go(&args)? {
                Some(s) => (s, &pods),
                None => continue,
            },
            other => bail!("--stacks: unknown stack {other:?}; use inject, cached, ceiling, go"),
        };
        for h2 in protocols.iter().copied() {
            // (open loop, beside the huge stream)
            let mut runs: Vec<(bool, bool)> = loops.iter().map(|&open| (open, false)).collect();
            if !huge.is_empty() && loops.contains(&true) {
                runs.push((true, true));
            }
            for (open, with_huge) in runs {
                let (r, huge_result) = runtime.block_on(async {
                    let stop = Arc::new(AtomicBool::new(false));
                    let stream = with_huge.then(|| {
                        tokio::spawn(huge_stream(
                            args.huge_rate,
                            (server.addr, server.ca.clone()),
                            h2,
                            huge.clone(),
                            stop.clone(),
                        ))
                    });
                    let r = if open {
                        open_loop(&args, &server, h2, body).await
                    } else {
                        closed_loop(&args, &server, h2, body).await
                    };
                    stop.store(true, Ordering::Relaxed);
                    let huge_result = match stream {
                        Some(t) => Some(t.await??),
                        None => None,
                    };
                    anyhow::Ok((r?, huge_result))
                })?;
                let proto = if h2 { "HTTP/2" } else { "HTTP/1.1" };
                let mut lp = if open {
                    format!("open {} /s", args.rate)
                } else {
                    format!("closed {}", args.connections)
                };
                if with_huge {
                    lp += &format!(" + huge {} /s", args.huge_rate);
                }
                let rss = server.rss_kib("VmHWM:");
                println!(
                    "| {stack} | {proto} | {lp} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {:.1} MiB |",
                    r.reviews_per_s,
                    r.p50,
                    r.p99,
                    r.p999,
                    r.errors,
                    r.server_cpu_us,
                    rss as f64 / 1024.0
                );
                let mut row = serde_json::json!({"stack": stack, "protocol": proto, "loop": lp, "reviewsPerSecond": r.reviews_per_s, "p50ms": r.p50, "p99ms": r.p99, "p999ms": r.p999, "errors": r.errors, "count": r.count, "serverCpuMicrosPerReview": r.server_cpu_us, "serverPeakRssKiB": rss});
                if let Some((lat, errors)) = huge_result {
                    let h = summarize(lat, errors, Duration::from_secs_f64(args.duration), 0.0);
                    println!(
                        "|   huge reviews ({} KiB) beside it | {proto} | {} sent | | {:.2} | {:.2} | | {} | | |",
                        huge[0].len() / 1024,
                        h.count,
                        h.p50,
                        h.p99,
                        h.errors
                    );
                    row["huge"] = serde_json::json!({"bytes": huge[0].len(), "count": h.count, "p50ms": h.p50, "p99ms": h.p99, "errors": h.errors});
                }
                rows.push(row);
            }
        }
    }
    // A figure of the closed loop of `stack` over `proto`.
    let closed = |stack: &str, proto: &str, key: &str| {
        rows.iter()
            .find(|r| {
                r["stack"] == stack
                    && r["protocol"] == proto
                    && r["loop"].as_str().is_some_and(|l| l.starts_with("closed"))
            })
            .and_then(|r| r[key].as_f64())
    };
    let by = |stack: &str, proto: &str| closed(stack, proto, "reviewsPerSecond");
    for proto in ["HTTP/1.1", "HTTP/2"] {
        if let (Some(a), Some(b)) = (by("inject", proto), by("ceiling", proto)) {
            println!(
                "{proto}: injection reaches {:.0}% of the ceiling ({a:.0} vs {b:.0} reviews/s)",
                100.0 * a / b
            );
        }
        for (stack, what) in [("inject", "injection"), ("cached", "cached injection")] {
            if let (Some(a), Some(g)) = (by(stack, proto), by("go", proto)) {
                let tail = |s: &str, key: &str| closed(s, proto, key).unwrap_or(f64::NAN);
                println!(
                    "{proto}: {what} against the Go peer: {:.2}x the reviews/s ({a:.0} vs {g:.0}), p99 {:.2}x, p99.9 {:.2}x of Go's",
                    a / g,
                    tail(stack, "p99ms") / tail("go", "p99ms"),
                    tail(stack, "p999ms") / tail("go", "p999ms"),
                );
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(())
}
