//! A kubelet imitation for black-box tests of `sidecar-shim`, built on the behaviour measured
//! on a real kubelet (`docs/native-sidecars.md`).
//!
//! It runs a pod spec (read from the engine's fixtures in `tests/data/`) with the containers
//! as host processes:
//!
//! - the API server's validation first: an init container without `restartPolicy: Always`
//!   may not carry probes or lifecycle hooks (the pod is rejected);
//! - init containers in order; a restartable one (`restartPolicy: Always`, on a capable node)
//!   counts as started when its process runs and its exec `startupProbe` (every
//!   `periodSeconds`) passed, then the next starts; it is restarted whenever it exits, the
//!   first time after `first_restart` (the kubelet's next look, 0.2–0.9 s), later after the
//!   crash-loop back-off (10 s, 20 s, ... up to 300 s); a startup probe failing
//!   `failureThreshold` times kills the container;
//! - a plain init container (unaware node, or no `restartPolicy`) must exit 0 before the next
//!   starts; a failed one is retried with back-off unless the pod's policy is `Never`;
//! - regular containers start together after the init containers, and restart per the pod's
//!   `restartPolicy`; readiness probes run on every running container that has one;
//! - a pod whose policy is not `Always` completes when its regular containers have finished
//!   for good; the kubelet then stops the sidecars;
//! - deletion: SIGTERM to the regular containers (PID 1 only), then, once they have exited,
//!   to the sidecars in reverse order, one after the other; SIGKILL at the grace deadline;
//! - sandbox re-creation: every process is killed, every init container runs again, volumes
//!   (emptyDirs: temporary directories) keep their content.
//!
//! Node kinds: `Capable` honours `restartPolicy: Always` on init containers; `Unaware` (a
//! kubelet older than 1.28) ignores the field and never probes init containers. "The API
//! server dropped the field" is a pod spec without `restartPolicy` (and, as it must be, without
//! probes) on any node.
//!
//! Paths: each volumeMount's `mountPath` is mapped onto the volume's temporary directory by
//! rewriting that prefix in the command, args and probe commands; a command named
//! `sidecar-shim` (no slash, found on the image's PATH) is the binary under test. Each
//! container gets its own termination-log file (through `SIDECAR_SHIM_TERMINATION_LOG`) and
//! log file per run.
//!
//! Kubelet times are multiplied by [`Options::scale`] so that the tests stay fast; the shim's
//! own timings are real.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use sidecar_shim::json::{self, Value};

/// The binary under test.
pub const SHIM: &str = env!("CARGO_BIN_EXE_sidecar-shim");

/// How often the imitation looks at its containers.
const TICK: Duration = Duration::from_millis(5);

// === the pod spec ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Always,
    OnFailure,
    Never,
}

#[derive(Clone, Debug)]
pub struct Probe {
    pub command: Vec<String>,
    pub period_seconds: f64,
    pub failure_threshold: u32,
    pub timeout_seconds: f64,
}

#[derive(Clone, Debug)]
pub struct Container {
    pub name: String,
    /// `command` followed by `args`.
    pub command: Vec<String>,
    pub restart_policy: Option<String>,
    pub startup_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub liveness_probe: bool,
    pub lifecycle: bool,
    /// (volume, mountPath)
    pub mounts: Vec<(String, String)>,
    /// Static values, and downward-API fields resolved by the imitation.
    pub env: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct PodSpec {
    pub name: String,
    pub restart_policy: Policy,
    pub init_containers: Vec<Container>,
    pub containers: Vec<Container>,
    pub volumes: Vec<String>,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.map(|v| v.as_strings().expect("an array of strings"))
        .unwrap_or_default()
}

fn probe(v: Option<&Value>) -> Option<Probe> {
    let v = v?;
    let command = v
        .at(&["exec", "command"])
        .and_then(Value::as_strings)
        .expect("the imitation runs exec probes only");
    let num = |key: &str, default: f64| {
        v.get(key)
            .and_then(Value::as_i64)
            .map_or(default, |n| n as f64)
    };
    Some(Probe {
        command,
        period_seconds: num("periodSeconds", 10.0),
        failure_threshold: num("failureThreshold", 3.0) as u32,
        timeout_seconds: num("timeoutSeconds", 1.0),
    })
}

fn container(v: &Value, pod_name: &str) -> Container {
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .expect("container name")
        .to_string();
    let mut command = strings(v.get("command"));
    assert!(
        !command.is_empty(),
        "{name}: the imitation cannot read image entrypoints; give a command"
    );
    command.extend(strings(v.get("args")));
    let mounts = v
        .get("volumeMounts")
        .map(Value::as_array)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                m.get("name")
                    .and_then(Value::as_str)
                    .expect("mount name")
                    .to_string(),
                m.get("mountPath")
                    .and_then(Value::as_str)
                    .expect("mountPath")
                    .to_string(),
            )
        })
        .collect();
    let env = v
        .get("env")
        .map(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            let key = e.get("name")?.as_str()?.to_string();
            if let Some(value) = e.get("value").and_then(Value::as_str) {
                return Some((key, value.to_string()));
            }
            let field = e.at(&["valueFrom", "fieldRef", "fieldPath"])?.as_str()?;
            let value = match field {
                "metadata.name" => pod_name.to_string(),
                "metadata.namespace" => "default".to_string(),
                "spec.nodeName" => "node-1".to_string(),
                _ => return None,
            };
            Some((key, value))
        })
        .collect();
    Container {
        name,
        command,
        restart_policy: v
            .get("restartPolicy")
            .and_then(Value::as_str)
            .map(str::to_string),
        startup_probe: probe(v.get("startupProbe")),
        readiness_probe: probe(v.get("readinessProbe")),
        liveness_probe: v.get("livenessProbe").is_some(),
        lifecycle: v.get("lifecycle").is_some(),
        mounts,
        env,
    }
}

impl PodSpec {
    pub fn from_json(text: &str) -> PodSpec {
        let pod = json::parse(text).expect("pod JSON");
        let name = pod
            .at(&["metadata", "name"])
            .and_then(Value::as_str)
            .unwrap_or("pod")
            .to_string();
        let spec = pod.get("spec").expect("spec");
        let list = |key: &str| -> Vec<Container> {
            spec.get(key)
                .map(Value::as_array)
                .unwrap_or_default()
                .iter()
                .map(|c| container(c, &name))
                .collect()
        };
        let restart_policy = match spec.get("restartPolicy").and_then(Value::as_str) {
            None | Some("Always") => Policy::Always,
            Some("OnFailure") => Policy::OnFailure,
            Some("Never") => Policy::Never,
            Some(other) => panic!("restartPolicy {other}"),
        };
        let volumes = spec
            .get("volumes")
            .map(Value::as_array)
            .unwrap_or_default()
            .iter()
            .map(|v| {
                assert!(
                    v.get("emptyDir").is_some(),
                    "the imitation has emptyDir volumes only"
                );
                v.get("name")
                    .and_then(Value::as_str)
                    .expect("volume name")
                    .to_string()
            })
            .collect();
        let init_containers = list("initContainers");
        let containers = list("containers");
        PodSpec {
            name,
            restart_policy,
            init_containers,
            containers,
            volumes,
        }
    }

    /// A fixture from `tests/data/`.
    pub fn fixture(file: &str) -> PodSpec {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(file);
        PodSpec::from_json(
            &fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
    }

    pub fn container_mut(&mut self, name: &str) -> &mut Container {
        self.init_containers
            .iter_mut()
            .chain(self.containers.iter_mut())
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }

    /// What the API server checks that matters here.
    pub fn validate(&self) -> Result<(), String> {
        for c in &self.init_containers {
            let sidecar = c.restart_policy.as_deref() == Some("Always");
            if let Some(p) = &c.restart_policy
                && p != "Always"
            {
                return Err(format!(
                    "init container {}: restartPolicy {p} is not supported",
                    c.name
                ));
            }
            if !sidecar
                && (c.startup_probe.is_some()
                    || c.readiness_probe.is_some()
                    || c.liveness_probe
                    || c.lifecycle)
            {
                return Err(format!(
                    "spec.initContainers[{}]: may not be set for init containers without restartPolicy=Always",
                    c.name
                ));
            }
        }
        for c in &self.containers {
            if c.restart_policy.is_some() {
                return Err(format!(
                    "container {}: restartPolicy may not be set on regular containers",
                    c.name
                ));
            }
        }
        for c in self.init_containers.iter().chain(&self.containers) {
            for (volume, _) in &c.mounts {
                if !self.volumes.contains(volume) {
                    return Err(format!("container {}: volume {volume} not found", c.name));
                }
            }
        }
        Ok(())
    }
}

// === options ===

/// Which kind of kubelet runs the pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// 1.29+: native sidecars.
    Capable,
    /// Older than 1.28: `restartPolicy` on init containers is ignored.
    Unaware,
}

/// Extra environment for one run of a container: (container, run number from 1) → pairs.
pub type RunEnv = Arc<dyn Fn(&str, u32) -> Vec<(String, String)> + Send + Sync>;

#[derive(Clone)]
pub struct Options {
    pub node: NodeKind,
    /// Multiplies every kubelet time (probe periods, restart delays, back-off, grace).
    pub scale: f64,
    /// The delay before the first restart of a sidecar (the kubelet's next look), unscaled.
    pub first_restart: Duration,
    /// The crash-loop back-off's first step, unscaled (10 s on a real kubelet).
    pub backoff: Duration,
    /// terminationGracePeriodSeconds, unscaled.
    pub grace: Duration,
    pub run_env: Option<RunEnv>,
}

impl Options {
    pub fn new(node: NodeKind) -> Options {
        Options {
            node,
            scale: 0.1,
            first_restart: Duration::from_millis(300),
            backoff: Duration::from_secs(10),
            grace: Duration::from_secs(30),
            run_env: None,
        }
    }

    fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.scale)
    }
}

// === status ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Initializing,
    Running,
    /// Deletion or Job completion in progress.
    Terminating,
    Succeeded,
    Failed,
    /// Deleted: everything stopped.
    Gone,
}

#[derive(Clone, Debug)]
pub struct ContainerStatus {
    pub name: String,
    pub init: bool,
    /// A restartable init container (native sidecar) on this node.
    pub sidecar: bool,
    pub runs: u32,
    pub running: bool,
    pub pid: Option<u32>,
    pub exits: Vec<i32>,
    /// Startup probe passed in the current run (or no probe and running).
    pub started: bool,
    pub ready: bool,
    /// Termination message of the last run that ended (or of the current one so far).
    pub termination_message: String,
    /// When each run started, since the pod started.
    pub starts: Vec<Duration>,
    /// When each run ended, since the pod started.
    pub ends: Vec<Duration>,
}

impl ContainerStatus {
    /// The kubelet's restartCount.
    pub fn restart_count(&self) -> u32 {
        self.runs.saturating_sub(1)
    }
}

#[derive(Clone, Debug)]
pub struct Snapshot {
    pub phase: Phase,
    pub containers: Vec<ContainerStatus>,
    pub events: Vec<String>,
    pub elapsed: Duration,
}

impl Snapshot {
    pub fn get(&self, name: &str) -> &ContainerStatus {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name}"))
    }
}

// === the imitation ===

struct Run {
    child: Child,
    pid: u32,
    signalled: bool,
}

struct CState {
    spec: Container,
    init: bool,
    sidecar: bool,
    runs: u32,
    current: Option<Run>,
    exits: Vec<i32>,
    restart_at: Option<Instant>,
    /// Restarts scheduled so far (drives the back-off).
    restarts: u32,
    started: bool,
    probe_failures: u32,
    next_startup_probe: Option<Instant>,
    ready: bool,
    next_ready_probe: Option<Instant>,
    /// A plain init container that succeeded, or a regular one finished for good.
    done: bool,
    termination_message: String,
    starts: Vec<Duration>,
    ends: Vec<Duration>,
    /// The sandbox in which the init sequence last started this init container (later
    /// starts in the same sandbox are restarts).
    sandbox_started: Option<u32>,
}

#[derive(Clone, Copy)]
enum Stage {
    Regular,
    /// Index into the reversed list of sidecars.
    Sidecars(usize),
}

enum State {
    Init(usize),
    Running,
    Terminating {
        stage: Stage,
        deadline: Instant,
        then: Phase,
    },
    Finished(Phase),
}

struct Kubelet {
    opts: Options,
    pod_name: String,
    policy: Policy,
    root: PathBuf,
    volumes: HashMap<String, PathBuf>,
    containers: Vec<CState>,
    state: State,
    began: Instant,
    events: Vec<String>,
    sandbox: u32,
}

static POD_COUNTER: AtomicU32 = AtomicU32::new(0);

fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

impl Kubelet {
    fn event(&mut self, text: String) {
        let at = self.began.elapsed();
        self.events
            .push(format!("{:>7.3}s {text}", at.as_secs_f64()));
    }

    fn idx(&self, name: &str) -> usize {
        self.containers
            .iter()
            .position(|c| c.spec.name == name)
            .expect("container")
    }

    /// The command with mount paths mapped onto the volumes and `sidecar-shim` onto the binary.
    fn rewrite(&self, c: &Container, command: &[String]) -> Vec<String> {
        let mut out: Vec<String> = command
            .iter()
            .map(|arg| {
                let mut arg = arg.clone();
                for (volume, mount) in &c.mounts {
                    let host = self.volumes[volume].to_string_lossy().into_owned();
                    if arg == *mount {
                        arg = host.clone();
                    } else {
                        arg = arg.replace(&format!("{mount}/"), &format!("{host}/"));
                    }
                }
                arg
            })
            .collect();
        if out[0] == "sidecar-shim" {
            out[0] = SHIM.to_string();
        }
        out
    }

    fn termination_log(&self, name: &str) -> PathBuf {
        self.root.join("termination").join(name)
    }

    fn log_file(&self, name: &str, run: u32) -> PathBuf {
        self.root.join("logs").join(format!("{name}.{run}.log"))
    }

    fn command_for(&self, i: usize, command: &[String]) -> Command {
        let c = &self.containers[i].spec;
        let argv = self.rewrite(c, command);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("HOSTNAME", &self.pod_name)
            .env(
                "SIDECAR_SHIM_TERMINATION_LOG",
                self.termination_log(&c.name),
            )
            .current_dir(&self.root)
            .stdin(Stdio::null());
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        cmd
    }

    fn start(&mut self, i: usize) {
        let now = Instant::now();
        let run = self.containers[i].runs + 1;
        let name = self.containers[i].spec.name.clone();
        let log = self.log_file(&name, run);
        let _ = fs::write(self.termination_log(&name), "");
        let mut cmd = self.command_for(i, &self.containers[i].spec.command.clone());
        if let Some(run_env) = &self.opts.run_env {
            for (k, v) in run_env(&name, run) {
                cmd.env(k, v);
            }
        }
        let out = fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        cmd.stdout(out).stderr(err).process_group(0);
        let c = &mut self.containers[i];
        c.runs = run;
        c.restart_at = None;
        c.started = false;
        c.ready = false;
        c.probe_failures = 0;
        c.starts.push(now - self.began);
        let period = |p: &Option<Probe>| {
            p.as_ref()
                .map(|p| now + self.opts.scaled(Duration::from_secs_f64(p.period_seconds)))
        };
        c.next_startup_probe = if c.sidecar {
            period(&c.spec.startup_probe)
        } else {
            None
        };
        c.next_ready_probe = if c.init && !c.sidecar {
            None
        } else {
            period(&c.spec.readiness_probe)
        };
        match cmd.spawn() {
            Ok(child) => {
                let pid = child.id();
                c.current = Some(Run {
                    child,
                    pid,
                    signalled: false,
                });
                // Without a startup probe, a running process counts as started.
                if c.spec.startup_probe.is_none() || !c.sidecar {
                    c.started = true;
                }
                self.event(format!("{name}: started run {run} (pid {pid})"));
            }
            Err(e) => {
                // A container that cannot start counts as exited (RunContainerError).
                c.exits.push(128);
                c.ends.push(now - self.began);
                self.event(format!("{name}: cannot start run {run}: {e}"));
                self.after_exit(i, 128);
            }
        }
    }

    /// Runs an exec probe synchronously (as the kubelet's prober would, with its timeout).
    fn probe(&self, i: usize, p: &Probe) -> bool {
        let mut cmd = self.command_for(i, &p.command);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let Ok(mut child) = cmd.spawn() else {
            return false;
        };
        let deadline = Instant::now() + Duration::from_secs_f64(p.timeout_seconds.max(1.0));
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(1)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return false;
                }
            }
        }
    }

    /// What the kubelet does when container `i` has exited with `code`.
    fn after_exit(&mut self, i: usize, code: i32) {
        if matches!(self.state, State::Terminating { .. } | State::Finished(_)) {
            return;
        }
        let now = Instant::now();
        let policy = self.policy;
        let c = &mut self.containers[i];
        c.started = false;
        c.ready = false;
        let restart = if c.sidecar {
            true
        } else if c.init {
            if code == 0 {
                c.done = true;
                false
            } else {
                policy != Policy::Never
            }
        } else {
            match policy {
                Policy::Always => true,
                Policy::OnFailure => code != 0,
                Policy::Never => false,
            }
        };
        if !restart {
            if !c.init {
                c.done = true;
            } else if code != 0 {
                let name = c.spec.name.clone();
                self.event(format!(
                    "{name}: init container failed under restartPolicy Never: pod Failed"
                ));
                self.kill_all();
                self.state = State::Finished(Phase::Failed);
            }
            return;
        }
        // The first restart happens at the kubelet's next look; it arms the back-off.
        let delay = if c.restarts == 0 {
            if c.sidecar {
                self.opts.scaled(self.opts.first_restart)
            } else {
                Duration::ZERO
            }
        } else {
            let first = self.opts.scaled(self.opts.backoff);
            let cap = self.opts.scaled(Duration::from_secs(300));
            (first * 2u32.saturating_pow((c.restarts - 1).min(10))).min(cap)
        };
        c.restarts += 1;
        c.restart_at = Some(now + delay);
    }

    fn signal(&mut self, i: usize, sig: &str) {
        let name = self.containers[i].spec.name.clone();
        if let Some(run) = self.containers[i].current.as_mut() {
            run.signalled = true;
            let pid = run.pid;
            let _ = Command::new("kill")
                .arg(format!("-{sig}"))
                .arg(pid.to_string())
                .status();
            self.event(format!("{name}: SIG{sig} to pid {pid}"));
        }
    }

    fn kill(&mut self, i: usize) {
        if let Some(run) = self.containers[i].current.as_mut() {
            kill_tree(run.pid);
        }
    }

    fn kill_all(&mut self) {
        for i in 0..self.containers.len() {
            self.kill(i);
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        // Exits.
        for i in 0..self.containers.len() {
            let exited = match self.containers[i].current.as_mut() {
                Some(run) => match run.child.try_wait() {
                    Ok(Some(status)) => Some(exit_code(status)),
                    _ => None,
                },
                None => None,
            };
            if let Some(code) = exited {
                let name = self.containers[i].spec.name.clone();
                let message = fs::read_to_string(self.termination_log(&name)).unwrap_or_default();
                let c = &mut self.containers[i];
                c.current = None;
                c.exits.push(code);
                c.ends.push(now - self.began);
                c.termination_message = message;
                self.event(format!("{name}: exited with {code}"));
                self.after_exit(i, code);
            }
        }

        // Restarts that are due.
        if matches!(self.state, State::Init(_) | State::Running) {
            for i in 0..self.containers.len() {
                if self.containers[i].restart_at.is_some_and(|at| now >= at) {
                    self.start(i);
                }
            }
        }

        // Startup probes of sidecars (a capable node only: init containers are not probed by
        // an unaware kubelet).
        for i in 0..self.containers.len() {
            let c = &self.containers[i];
            if !(c.sidecar && c.current.is_some() && !c.started) {
                continue;
            }
            let (Some(p), Some(due)) = (c.spec.startup_probe.clone(), c.next_startup_probe) else {
                continue;
            };
            if now < due {
                continue;
            }
            let passed = self.probe(i, &p);
            let name = self.containers[i].spec.name.clone();
            let c = &mut self.containers[i];
            c.next_startup_probe =
                Some(now + self.opts.scaled(Duration::from_secs_f64(p.period_seconds)));
            if passed {
                c.started = true;
                self.event(format!("{name}: startup probe passed"));
            } else {
                c.probe_failures += 1;
                if c.probe_failures >= p.failure_threshold {
                    c.probe_failures = 0;
                    self.event(format!(
                        "{name}: startup probe failed {} times: killing",
                        p.failure_threshold
                    ));
                    self.kill(i);
                }
            }
        }

        // Readiness probes.
        for i in 0..self.containers.len() {
            let c = &self.containers[i];
            if c.current.is_none() || !c.started {
                continue;
            }
            let (Some(p), Some(due)) = (c.spec.readiness_probe.clone(), c.next_ready_probe) else {
                continue;
            };
            if now < due {
                continue;
            }
            let ready = self.probe(i, &p);
            let name = self.containers[i].spec.name.clone();
            let c = &mut self.containers[i];
            c.next_ready_probe =
                Some(now + self.opts.scaled(Duration::from_secs_f64(p.period_seconds)));
            if ready != c.ready {
                c.ready = ready;
                self.event(format!("{name}: ready={ready}"));
            }
        }

        // The pod's progress.
        loop {
            match self.state {
                State::Init(k) => {
                    let inits: Vec<usize> = (0..self.containers.len())
                        .filter(|&i| self.containers[i].init)
                        .collect();
                    if k == inits.len() {
                        for i in 0..self.containers.len() {
                            if !self.containers[i].init {
                                self.start(i);
                            }
                        }
                        self.state = State::Running;
                        break;
                    }
                    let i = inits[k];
                    if self.containers[i].sandbox_started != Some(self.sandbox) {
                        self.containers[i].sandbox_started = Some(self.sandbox);
                        self.start(i);
                    }
                    let c = &self.containers[i];
                    let next = if c.sidecar { c.started } else { c.done };
                    if next {
                        self.state = State::Init(k + 1);
                        continue;
                    }
                    break;
                }
                State::Running => {
                    if self.policy != Policy::Always {
                        let regular: Vec<&CState> =
                            self.containers.iter().filter(|c| !c.init).collect();
                        if regular.iter().all(|c| c.done) {
                            let ok = regular.iter().all(|c| c.exits.last() == Some(&0));
                            let phase = if ok { Phase::Succeeded } else { Phase::Failed };
                            self.event(format!("pod completed: {phase:?}; stopping sidecars"));
                            self.state = State::Terminating {
                                stage: Stage::Sidecars(0),
                                deadline: now + self.opts.scaled(self.opts.grace),
                                then: phase,
                            };
                            continue;
                        }
                    }
                    break;
                }
                State::Terminating {
                    stage,
                    deadline,
                    then,
                } => {
                    if now >= deadline {
                        self.event("grace period over: SIGKILL".into());
                        self.kill_all();
                        if self.containers.iter().all(|c| c.current.is_none()) {
                            self.state = State::Finished(then);
                        }
                        break;
                    }
                    match stage {
                        Stage::Regular => {
                            let running = (0..self.containers.len()).any(|i| {
                                !self.containers[i].sidecar && self.containers[i].current.is_some()
                            });
                            if running {
                                break;
                            }
                            self.state = State::Terminating {
                                stage: Stage::Sidecars(0),
                                deadline,
                                then,
                            };
                        }
                        Stage::Sidecars(n) => {
                            let sidecars: Vec<usize> = (0..self.containers.len())
                                .rev()
                                .filter(|&i| self.containers[i].sidecar)
                                .collect();
                            if n == sidecars.len() {
                                self.state = State::Finished(then);
                                self.event(format!("pod {then:?}"));
                                break;
                            }
                            let i = sidecars[n];
                            match &self.containers[i].current {
                                None => {
                                    self.state = State::Terminating {
                                        stage: Stage::Sidecars(n + 1),
                                        deadline,
                                        then,
                                    };
                                }
                                Some(run) if !run.signalled => {
                                    self.signal(i, "TERM");
                                    break;
                                }
                                Some(_) => break,
                            }
                        }
                    }
                }
                State::Finished(_) => break,
            }
        }
    }

    fn delete(&mut self) {
        if matches!(self.state, State::Terminating { .. } | State::Finished(_)) {
            return;
        }
        self.event("pod deleted".into());
        for c in &mut self.containers {
            c.restart_at = None;
        }
        // Regular containers (and a plain init container still running) get SIGTERM first.
        for i in 0..self.containers.len() {
            if !self.containers[i].sidecar {
                self.signal(i, "TERM");
            }
        }
        self.state = State::Terminating {
            stage: Stage::Regular,
            deadline: Instant::now() + self.opts.scaled(self.opts.grace),
            then: Phase::Gone,
        };
    }

    fn recreate_sandbox(&mut self) {
        self.event("sandbox re-created: every container killed, init containers run again".into());
        self.kill_all();
        // Reap what we killed, so that the exits are recorded for the old sandbox.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.containers.iter().any(|c| c.current.is_some()) && Instant::now() < deadline {
            for c in &mut self.containers {
                if let Some(run) = c.current.as_mut()
                    && let Ok(Some(status)) = run.child.try_wait()
                {
                    c.exits.push(exit_code(status));
                    c.ends.push(self.began.elapsed());
                    c.current = None;
                }
            }
            thread::sleep(Duration::from_millis(2));
        }
        self.sandbox += 1;
        for c in &mut self.containers {
            c.restart_at = None;
            c.started = false;
            c.ready = false;
            c.done = false;
            c.probe_failures = 0;
        }
        self.state = State::Init(0);
    }

    fn snapshot(&self) -> Snapshot {
        let phase = match &self.state {
            State::Init(_) => Phase::Initializing,
            State::Running => Phase::Running,
            State::Terminating { .. } => Phase::Terminating,
            State::Finished(p) => *p,
        };
        Snapshot {
            phase,
            containers: self
                .containers
                .iter()
                .map(|c| ContainerStatus {
                    name: c.spec.name.clone(),
                    init: c.init,
                    sidecar: c.sidecar,
                    runs: c.runs,
                    running: c.current.is_some(),
                    pid: c.current.as_ref().map(|r| r.pid),
                    exits: c.exits.clone(),
                    started: c.started,
                    ready: c.ready,
                    termination_message: if c.current.is_some() {
                        fs::read_to_string(self.termination_log(&c.spec.name)).unwrap_or_default()
                    } else {
                        c.termination_message.clone()
                    },
                    starts: c.starts.clone(),
                    ends: c.ends.clone(),
                })
                .collect(),
            events: self.events.clone(),
            elapsed: self.began.elapsed(),
        }
    }
}

// === processes ===

/// Parent pid of every process, from /proc.
fn process_table() -> Vec<(u32, u32, char)> {
    let mut table = Vec::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return table;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        let Some(ppid) = rest.next().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        table.push((pid, ppid, state));
    }
    table
}

/// `root` and all its descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let table = process_table();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            table
                .iter()
                .filter(|(_, ppid, _)| *ppid == parent)
                .map(|(pid, _, _)| *pid),
        );
        i += 1;
    }
    tree
}

/// SIGKILL to a container's whole process tree, as the runtime kills a container.
pub fn kill_tree(root: u32) {
    if root == 0 {
        return;
    }
    for _ in 0..2 {
        let pids: Vec<String> = process_tree(root).iter().map(u32::to_string).collect();
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string))
        })
        .is_some_and(|state| state != "Z" && state != "X")
}

pub fn send(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

// === the test's handle ===

pub struct Pod {
    kubelet: Arc<Mutex<Kubelet>>,
    stop: Arc<Mutex<bool>>,
    thread: Option<thread::JoinHandle<()>>,
    pub root: PathBuf,
}

impl Pod {
    /// Validates `spec` as the API server would, then runs it. `Err` is the rejection.
    pub fn start(spec: PodSpec, opts: Options) -> Result<Pod, String> {
        spec.validate()?;
        Ok(Pod::run(spec, opts, |_| {}))
    }

    /// Like [`Pod::start`], with a chance to put files into the volumes before the first
    /// container runs (state left by an earlier incarnation).
    pub fn start_with(
        spec: PodSpec,
        opts: Options,
        prepare: impl FnOnce(&HashMap<String, PathBuf>),
    ) -> Result<Pod, String> {
        spec.validate()?;
        Ok(Pod::run(spec, opts, prepare))
    }

    fn run(spec: PodSpec, opts: Options, prepare: impl FnOnce(&HashMap<String, PathBuf>)) -> Pod {
        let n = POD_COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!(
            "sidecar-shim-pod-{}-{n}-{}",
            std::process::id(),
            spec.name
        ));
        let _ = fs::remove_dir_all(&root);
        for sub in ["logs", "termination", "volumes"] {
            fs::create_dir_all(root.join(sub)).expect("pod directories");
        }
        let volumes: HashMap<String, PathBuf> = spec
            .volumes
            .iter()
            .map(|v| {
                let dir = root.join("volumes").join(v);
                fs::create_dir_all(&dir).expect("volume");
                (v.clone(), dir)
            })
            .collect();
        prepare(&volumes);
        let node = opts.node;
        let mk = |c: &Container, init: bool| CState {
            sidecar: init
                && node == NodeKind::Capable
                && c.restart_policy.as_deref() == Some("Always"),
            spec: c.clone(),
            init,
            runs: 0,
            current: None,
            exits: Vec::new(),
            restart_at: None,
            restarts: 0,
            started: false,
            probe_failures: 0,
            next_startup_probe: None,
            ready: false,
            next_ready_probe: None,
            done: false,
            termination_message: String::new(),
            starts: Vec::new(),
            ends: Vec::new(),
            sandbox_started: None,
        };
        let containers = spec
            .init_containers
            .iter()
            .map(|c| mk(c, true))
            .chain(spec.containers.iter().map(|c| mk(c, false)))
            .collect();
        let kubelet = Arc::new(Mutex::new(Kubelet {
            opts,
            pod_name: spec.name.clone(),
            policy: spec.restart_policy,
            root: root.clone(),
            volumes,
            containers,
            state: State::Init(0),
            began: Instant::now(),
            events: Vec::new(),
            sandbox: 0,
        }));
        let stop = Arc::new(Mutex::new(false));
        let thread = {
            let kubelet = Arc::clone(&kubelet);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !*stop.lock().unwrap() {
                    kubelet.lock().unwrap().tick();
                    thread::sleep(TICK);
                }
            })
        };
        Pod {
            kubelet,
            stop,
            thread: Some(thread),
            root,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.kubelet.lock().unwrap().snapshot()
    }

    /// Waits (polling, with a deadline) until `check` returns `Some`; panics with the pod's
    /// events and logs when it never does.
    pub fn wait<T>(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Snapshot) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let snap = self.snapshot();
            if let Some(value) = check(&snap) {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n{}",
                    self.report()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until `check` holds.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Snapshot) -> bool,
    ) -> Snapshot {
        self.wait(what, timeout, |s| check(s).then(|| s.clone()))
    }

    /// Asserts that `check` keeps holding for `period` (for "nothing else happens" claims).
    pub fn holds(&self, what: &str, period: Duration, check: impl Fn(&Snapshot) -> bool) {
        let deadline = Instant::now() + period;
        while Instant::now() < deadline {
            let snap = self.snapshot();
            assert!(check(&snap), "{what} stopped holding\n{}", self.report());
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn delete(&self) {
        self.kubelet.lock().unwrap().delete();
    }

    pub fn recreate_sandbox(&self) {
        self.kubelet.lock().unwrap().recreate_sandbox();
    }

    pub fn volume(&self, name: &str) -> PathBuf {
        self.kubelet.lock().unwrap().volumes[name].clone()
    }

    /// The output of every run of a container, in order.
    pub fn logs(&self, name: &str) -> String {
        let k = self.kubelet.lock().unwrap();
        let runs = k.containers[k.idx(name)].runs;
        (1..=runs)
            .map(|r| fs::read_to_string(k.log_file(name, r)).unwrap_or_default())
            .collect()
    }

    /// Events and logs, for failure messages.
    pub fn report(&self) -> String {
        let snap = self.snapshot();
        let mut out = format!("phase {:?} after {:?}\nevents:\n", snap.phase, snap.elapsed);
        for e in &snap.events {
            let _ = writeln!(out, "  {e}");
        }
        for c in &snap.containers {
            let _ = writeln!(
                out,
                "--- {} (runs {}, exits {:?}) ---\n{}",
                c.name,
                c.runs,
                c.exits,
                self.logs(&c.name)
            );
        }
        out
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        *self.stop.lock().unwrap() = true;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut k = self.kubelet.lock().unwrap();
        k.kill_all();
        for c in &mut k.containers {
            if let Some(mut run) = c.current.take() {
                let _ = run.child.wait();
            }
        }
        if std::env::var_os("KEEP_PODS").is_none() {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}
