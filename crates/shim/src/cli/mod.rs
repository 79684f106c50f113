//! Command line: raw arguments in, a validated [`Cmd`] out (or a one-line usage error that
//! names the flag and the fix). Hand-written: the default build takes no crates.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit::Failure;
use crate::protocol::RestartPolicy;

/// Where the kubelet reads a container's termination message by default.
pub const DEFAULT_TERMINATION_LOG: &str = "/dev/termination-log";
/// Environment variable that overrides the termination message path.
pub const TERMINATION_LOG_ENV: &str = "SIDECAR_SHIM_TERMINATION_LOG";
/// Default tombstone directory (in the `sidecar-kit` emptyDir).
pub const DEFAULT_TOMBSTONES: &str = "/sidecar-kit/tombstones";
/// Default grace between SIGTERM and SIGKILL when a Job's sidecar is stopped.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);
/// Default timeout of a `ready` check, as the kubelet's `timeoutSeconds`.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(1);

/// Environment lookup, so that tests pass a map instead of changing the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// How the legacy copy learns that a Job's app containers are done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// Poll the tombstones that `sidecar-shim app` writes.
    Tombstone,
    /// Watch our own pod through the API server (feature `api`).
    Api,
}

/// The original readiness check the legacy copy's `ready` runs when it is not dormant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    None,
    Exec(Vec<OsString>),
    HttpGet {
        url: String,
        headers: Vec<(String, String)>,
    },
    TcpSocket(String),
}

/// Options of a role that may run the sidecar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOpts {
    pub cmd: Vec<OsString>,
    pub termination_log: PathBuf,
    pub sigterm_exit_zero: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `--help`, for the whole program (`None`) or one command.
    Help(Option<&'static str>),
    Version,
    Install {
        dir: PathBuf,
        state_root: PathBuf,
    },
    Native {
        state: PathBuf,
        check_node: bool,
        run: RunOpts,
    },
    Legacy {
        state: PathBuf,
        policy: RestartPolicy,
        tombstones: PathBuf,
        wait_for: Vec<String>,
        completion: Completion,
        stop_grace: Duration,
        run: RunOpts,
    },
    Probe {
        state: PathBuf,
    },
    Ready {
        state: PathBuf,
        timeout: Duration,
        check: Check,
    },
    App {
        tombstones: PathBuf,
        name: String,
        cmd: Vec<OsString>,
    },
}

impl Cmd {
    /// The role name used in log lines.
    pub fn role(&self) -> &'static str {
        match self {
            Cmd::Help(_) | Cmd::Version => "shim",
            Cmd::Install { .. } => "install",
            Cmd::Native { .. } => "native",
            Cmd::Legacy { .. } => "legacy",
            Cmd::Probe { .. } => "probe",
            Cmd::Ready { .. } => "ready",
            Cmd::App { .. } => "app",
        }
    }
}

pub const COMMANDS: [&str; 6] = ["install", "native", "legacy", "probe", "ready", "app"];

/// The role named by the first argument, if it names one (for error lines of a failed parse).
pub fn role_of(args: &[OsString]) -> &'static str {
    args.first()
        .and_then(|a| a.to_str())
        .and_then(|a| COMMANDS.iter().find(|c| **c == a).copied())
        .unwrap_or("shim")
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<OsString>, env: Env<'_>) -> Result<Cmd, Failure> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(Failure::usage(
            "missing command: run `sidecar-shim install|native|legacy|probe|ready|app ...`; see `sidecar-shim --help`",
        ));
    };
    let first = first.to_string_lossy().into_owned();
    let role = match first.as_str() {
        "-h" | "--help" | "help" => return Ok(Cmd::Help(None)),
        "-V" | "--version" | "version" => return Ok(Cmd::Version),
        other => match COMMANDS.iter().find(|c| **c == other) {
            Some(role) => *role,
            None => {
                return Err(Failure::usage(format!(
                    "unknown command `{other}`: use one of install, native, legacy, probe, ready, app; see `sidecar-shim --help`"
                )));
            }
        },
    };
    let raw = Raw::split(role, args.collect())?;
    if raw.help {
        return Ok(Cmd::Help(Some(role)));
    }
    match role {
        "install" => install(raw),
        "native" => native(raw, env),
        "legacy" => legacy(raw, env),
        "probe" => probe(raw),
        "ready" => ready(raw),
        _ => app(raw),
    }
}

/// Flags each command accepts: (name, takes a value, may repeat).
fn spec(role: &str) -> &'static [(&'static str, bool, bool)] {
    match role {
        "install" => &[("--state-root", true, false)],
        "native" => &[
            ("--state", true, false),
            ("--termination-log", true, false),
            ("--sigterm-exit-zero", false, false),
            ("--check-node", false, false),
        ],
        "legacy" => &[
            ("--state", true, false),
            ("--pod-restart-policy", true, false),
            ("--tombstones", true, false),
            ("--wait-for", true, true),
            ("--job-completion", true, false),
            ("--stop-grace", true, false),
            ("--termination-log", true, false),
            ("--sigterm-exit-zero", false, false),
        ],
        "probe" => &[("--state", true, false)],
        "ready" => &[
            ("--state", true, false),
            ("--timeout", true, false),
            ("--http-get", true, false),
            ("--header", true, true),
            ("--tcp-socket", true, false),
        ],
        _ => &[("--tombstones", true, false), ("--name", true, false)],
    }
}

/// The arguments of one command, split into flags, positionals and the command after `--`.
struct Raw {
    role: &'static str,
    flags: Vec<(&'static str, Option<OsString>)>,
    positional: Vec<OsString>,
    cmd: Option<Vec<OsString>>,
    help: bool,
}

impl Raw {
    fn split(role: &'static str, args: Vec<OsString>) -> Result<Raw, Failure> {
        let mut raw = Raw {
            role,
            flags: Vec::new(),
            positional: Vec::new(),
            cmd: None,
            help: false,
        };
        let spec = spec(role);
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy();
            if text == "--" {
                raw.cmd = Some(args.collect());
                break;
            }
            if text == "-h" || text == "--help" {
                raw.help = true;
                continue;
            }
            if !text.starts_with('-') || text == "-" {
                raw.positional.push(arg);
                continue;
            }
            let (name, inline) = match text.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(OsString::from(value))),
                None => (text.into_owned(), None),
            };
            let Some(&(flag, takes_value, repeats)) = spec.iter().find(|(n, ..)| *n == name) else {
                return Err(Failure::usage(format!(
                    "unknown flag `{name}` for `sidecar-shim {role}`; see `sidecar-shim {role} --help`"
                )));
            };
            if !repeats && raw.flags.iter().any(|(f, _)| *f == flag) {
                return Err(Failure::usage(format!("`{flag}` is given twice: keep one")));
            }
            let value = match (takes_value, inline) {
                (true, Some(value)) => Some(value),
                (true, None) => match args.next() {
                    Some(value) if value != "--" => Some(value),
                    _ => {
                        return Err(Failure::usage(format!(
                            "`{flag}` needs a value: `{flag} {}`",
                            placeholder(flag)
                        )));
                    }
                },
                (false, Some(_)) => {
                    return Err(Failure::usage(format!(
                        "`{flag}` takes no value: drop `=...`"
                    )));
                }
                (false, None) => None,
            };
            raw.flags.push((flag, value));
        }
        Ok(raw)
    }

    fn value(&self, flag: &str) -> Option<&OsString> {
        self.flags
            .iter()
            .find(|(f, _)| *f == flag)
            .and_then(|(_, v)| v.as_ref())
    }

    fn text(&self, flag: &str) -> Result<Option<String>, Failure> {
        match self.value(flag) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| Failure::usage(format!("`{flag}` must be valid UTF-8"))),
        }
    }

    fn values(&self, flag: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(f, _)| *f == flag)
            .filter_map(|(_, v)| v.as_ref().map(|v| v.to_string_lossy().into_owned()))
            .collect()
    }

    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| *f == flag)
    }

    fn path(&self, flag: &str) -> Option<PathBuf> {
        self.value(flag).map(PathBuf::from)
    }

    fn state(&self) -> Result<PathBuf, Failure> {
        match self.path("--state") {
            Some(path) if !path.as_os_str().is_empty() => Ok(path),
            _ => Err(Failure::usage(format!(
                "`--state DIR` is missing: give the sidecar's state directory, e.g. `sidecar-shim {} --state /sidecar-kit/state/NAME`",
                self.role
            ))),
        }
    }

    fn no_positional(&self) -> Result<(), Failure> {
        match self.positional.first() {
            None => Ok(()),
            Some(arg) => Err(Failure::usage(format!(
                "unexpected argument `{}` for `sidecar-shim {}`: the command to run goes after `--`",
                arg.to_string_lossy(),
                self.role
            ))),
        }
    }

    fn command(&self, what: &str) -> Result<Vec<OsString>, Failure> {
        match &self.cmd {
            Some(cmd) if !cmd.is_empty() && !cmd[0].is_empty() => Ok(cmd.clone()),
            _ => Err(Failure::usage(format!(
                "no command to run: end the flags with `-- CMD [ARGS...]` ({what})"
            ))),
        }
    }

    fn no_command(&self) -> Result<(), Failure> {
        match &self.cmd {
            None => Ok(()),
            Some(_) => Err(Failure::usage(format!(
                "`sidecar-shim {}` runs no command: drop `-- ...`",
                self.role
            ))),
        }
    }

    fn seconds(
        &self,
        flag: &str,
        default: Duration,
        allow_zero: bool,
    ) -> Result<Duration, Failure> {
        let Some(text) = self.text(flag)? else {
            return Ok(default);
        };
        match parse_seconds(&text).filter(|d| allow_zero || !d.is_zero()) {
            Some(duration) => Ok(duration),
            None => Err(Failure::usage(format!(
                "`{flag}` must be a number of seconds, e.g. `{flag} 10`, not `{text}`"
            ))),
        }
    }

    fn run_opts(&self, env: Env<'_>) -> Result<RunOpts, Failure> {
        let termination_log = self
            .path("--termination-log")
            .or_else(|| {
                env(TERMINATION_LOG_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_TERMINATION_LOG));
        Ok(RunOpts {
            cmd: self.command("the sidecar's own command and arguments")?,
            termination_log,
            sigterm_exit_zero: self.has("--sigterm-exit-zero"),
        })
    }
}

fn placeholder(flag: &str) -> &'static str {
    match flag {
        "--state" | "--tombstones" | "--state-root" => "DIR",
        "--termination-log" => "PATH",
        "--pod-restart-policy" => "Always|OnFailure|Never",
        "--wait-for" => "NAME,NAME",
        "--job-completion" => "tombstone|api",
        "--stop-grace" | "--timeout" => "SECONDS",
        "--http-get" => "URL",
        "--header" => "NAME:VALUE",
        "--tcp-socket" => "HOST:PORT",
        "--name" => "NAME",
        _ => "VALUE",
    }
}

/// Parses seconds with up to three decimals (`10`, `2.5`, `0.25`) without floating point,
/// which would cost the static binary tens of kilobytes.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 3 {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    if secs > 1_000_000_000 {
        return None;
    }
    let millis: u64 = format!("{frac:0<3}").parse().ok()?;
    Some(Duration::from_secs(secs) + Duration::from_millis(millis))
}

/// Formats a duration as seconds with one decimal (`1.5 s`), without floating point.
pub fn fmt_secs(duration: Duration) -> String {
    let tenths = duration.as_millis() / 100;
    format!("{}.{} s", tenths / 10, tenths % 10)
}

/// Container names are DNS labels (RFC 1123): they also name tombstone files, so anything
/// else (a `/`, `..`) is refused.
pub fn is_container_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn install(raw: Raw) -> Result<Cmd, Failure> {
    raw.no_command()?;
    let dir = match raw.positional.as_slice() {
        [dir] => PathBuf::from(dir),
        [] => {
            return Err(Failure::usage(
                "missing DIR: give the directory to install into, e.g. `sidecar-shim install /sidecar-kit/bin`",
            ));
        }
        [_, extra, ..] => {
            return Err(Failure::usage(format!(
                "unexpected argument `{}`: `sidecar-shim install` takes one DIR",
                extra.to_string_lossy()
            )));
        }
    };
    let state_root = match raw.path("--state-root") {
        Some(root) => root,
        None => default_state_root(&dir).ok_or_else(|| {
            Failure::usage(format!(
                "cannot derive the state root from `{}`: pass `--state-root ROOT`",
                dir.display()
            ))
        })?,
    };
    Ok(Cmd::Install { dir, state_root })
}

/// `DIR/../state`, lexically: `/sidecar-kit/bin` gives `/sidecar-kit/state`.
pub fn default_state_root(dir: &std::path::Path) -> Option<PathBuf> {
    let mut base = dir.to_path_buf();
    while base.file_name().is_none() || base.ends_with(".") {
        if !base.pop() {
            return None;
        }
    }
    let parent = base.parent()?;
    Some(parent.join("state"))
}

fn native(raw: Raw, env: Env<'_>) -> Result<Cmd, Failure> {
    raw.no_positional()?;
    let check_node = raw.has("--check-node");
    if check_node && !cfg!(feature = "api") {
        return Err(Failure::usage(
            "`--check-node` needs the shim built with the `api` feature: drop the flag (the marker protocol works alone) or use the api build",
        ));
    }
    Ok(Cmd::Native {
        state: raw.state()?,
        check_node,
        run: raw.run_opts(env)?,
    })
}

fn legacy(raw: Raw, env: Env<'_>) -> Result<Cmd, Failure> {
    raw.no_positional()?;
    let state = raw.state()?;
    let policy = match raw.text("--pod-restart-policy")? {
        None => {
            return Err(Failure::usage(
                "`--pod-restart-policy` is missing: pass the pod's spec.restartPolicy (Always, OnFailure or Never)",
            ));
        }
        Some(text) => RestartPolicy::parse(&text).ok_or_else(|| {
            Failure::usage(format!(
                "`--pod-restart-policy` must be Always, OnFailure or Never (the pod's spec.restartPolicy), not `{text}`"
            ))
        })?,
    };
    let completion = match raw.text("--job-completion")?.as_deref() {
        None | Some("tombstone") => Completion::Tombstone,
        Some("api") if cfg!(feature = "api") => Completion::Api,
        Some("api") => {
            return Err(Failure::usage(
                "`--job-completion api` needs the shim built with the `api` feature: use `--job-completion tombstone` or the api build",
            ));
        }
        Some(other) => {
            return Err(Failure::usage(format!(
                "`--job-completion` must be `tombstone` or `api`, not `{other}`"
            )));
        }
    };
    let mut wait_for = Vec::new();
    for list in raw.values("--wait-for") {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !is_container_name(name) {
                return Err(Failure::usage(format!(
                    "`--wait-for`: `{name}` is not a container name (lowercase letters, digits and '-', at most 63)"
                )));
            }
            if !wait_for.iter().any(|n| n == name) {
                wait_for.push(name.to_string());
            }
        }
    }
    match policy {
        RestartPolicy::Always if raw.has("--wait-for") => {
            return Err(Failure::usage(
                "`--wait-for` applies only with `--pod-restart-policy OnFailure` or `Never`: drop it (a pod that restarts its containers never completes)",
            ));
        }
        RestartPolicy::OnFailure | RestartPolicy::Never if wait_for.is_empty() => {
            return Err(Failure::usage(format!(
                "`--wait-for` is missing: with `--pod-restart-policy {}` name the app containers to wait for, e.g. `--wait-for app,worker`",
                policy.as_str()
            )));
        }
        _ => {}
    }
    Ok(Cmd::Legacy {
        state,
        policy,
        tombstones: raw
            .path("--tombstones")
            .unwrap_or_else(|| PathBuf::from(DEFAULT_TOMBSTONES)),
        wait_for,
        completion,
        stop_grace: raw.seconds("--stop-grace", DEFAULT_STOP_GRACE, true)?,
        run: raw.run_opts(env)?,
    })
}

fn probe(raw: Raw) -> Result<Cmd, Failure> {
    raw.no_positional()?;
    raw.no_command()?;
    Ok(Cmd::Probe {
        state: raw.state()?,
    })
}

fn ready(raw: Raw) -> Result<Cmd, Failure> {
    raw.no_positional()?;
    let state = raw.state()?;
    let timeout = raw.seconds("--timeout", DEFAULT_READY_TIMEOUT, false)?;
    let http = raw.text("--http-get")?;
    let tcp = raw.text("--tcp-socket")?;
    let given =
        usize::from(http.is_some()) + usize::from(tcp.is_some()) + usize::from(raw.cmd.is_some());
    if given > 1 {
        return Err(Failure::usage(
            "give one check: `--http-get URL`, `--tcp-socket HOST:PORT` or `-- CMD...`, not several",
        ));
    }
    let headers = raw.values("--header");
    if !headers.is_empty() && http.is_none() {
        return Err(Failure::usage(
            "`--header` applies only to `--http-get URL`: add one or drop it",
        ));
    }
    let check = if let Some(url) = http {
        crate::ready::Url::parse(&url).map_err(Failure::usage)?;
        let mut parsed = Vec::new();
        for header in headers {
            match header.split_once(':') {
                Some((name, value))
                    if !name.trim().is_empty()
                        && name.trim().bytes().all(|b| b.is_ascii_graphic())
                        && !value.contains(['\r', '\n']) =>
                {
                    parsed.push((name.trim().to_string(), value.trim().to_string()));
                }
                _ => {
                    return Err(Failure::usage(format!(
                        "`--header` must be NAME:VALUE, e.g. `--header X-Probe:1`, not `{header}`"
                    )));
                }
            }
        }
        Check::HttpGet {
            url,
            headers: parsed,
        }
    } else if let Some(target) = tcp {
        crate::ready::split_host_port(&target).map_err(|e| {
            Failure::usage(format!(
                "`--tcp-socket` must be HOST:PORT, e.g. `127.0.0.1:8080`: {e}"
            ))
        })?;
        Check::TcpSocket(target)
    } else if raw.cmd.is_some() {
        Check::Exec(raw.command("the original exec readiness check")?)
    } else {
        Check::None
    };
    Ok(Cmd::Ready {
        state,
        timeout,
        check,
    })
}

fn app(raw: Raw) -> Result<Cmd, Failure> {
    raw.no_positional()?;
    let name = match raw.text("--name")? {
        Some(name) if is_container_name(&name) => name,
        Some(name) => {
            return Err(Failure::usage(format!(
                "`--name`: `{name}` is not a container name (lowercase letters, digits and '-', at most 63)"
            )));
        }
        None => {
            return Err(Failure::usage(
                "`--name NAME` is missing: give the app container's name, which names its tombstone",
            ));
        }
    };
    Ok(Cmd::App {
        tombstones: raw
            .path("--tombstones")
            .unwrap_or_else(|| PathBuf::from(DEFAULT_TOMBSTONES)),
        name,
        cmd: raw.command("the app's own command and arguments")?,
    })
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn version_text() -> String {
    let features = if cfg!(feature = "api") {
        "api"
    } else {
        "default"
    };
    format!("sidecar-shim {VERSION} (contract 1, build: {features})\n")
}

pub fn help_text(topic: Option<&str>) -> &'static str {
    match topic {
        Some("install") => HELP_INSTALL,
        Some("native") => HELP_NATIVE,
        Some("legacy") => HELP_LEGACY,
        Some("probe") => HELP_PROBE,
        Some("ready") => HELP_READY,
        Some("app") => HELP_APP,
        _ => HELP,
    }
}

const HELP: &str = "\
sidecar-shim: the in-pod runtime of sidecar-kit

Usage: sidecar-shim COMMAND [FLAGS] [-- CMD [ARGS...]]

Commands:
  install DIR     copy this binary to DIR/sidecar-shim; clear the sandbox state
  native          the native copy (init container, restartPolicy: Always)
  legacy          the legacy copy (regular container); Job-safe shutdown
  probe           startup probe of the native copy: 0 once it runs the sidecar
  ready           readiness probe of the legacy copy: 0 while dormant, else the original check
  app             wrap a Job's app container: run it, write its tombstone

  sidecar-shim COMMAND --help    flags of one command
  sidecar-shim --version

Exit codes:
  the child's status passes through (128 + N when signal N killed it)
  0   done (native first run, dormant copy stopped, Job's sidecar stopped)
  1   probe or ready check failed
  64  usage error          66  missing input (command or file not found)
  70  internal error       73  cannot create a file or directory

Log lines go to stderr as `sidecar-shim[ROLE]: ...`; stdout is the child's.
";

const HELP_INSTALL: &str = "\
Usage: sidecar-shim install DIR [--state-root ROOT]

Copies this executable to DIR/sidecar-shim (temp file + rename, mode 0755), then removes the
per-sandbox `state` file of every sidecar under ROOT, keeping each `native-confirmed` flag and
all tombstones. Runs as the `sidecar-kit-install` init container, again whenever the pod
sandbox is re-created.

  --state-root ROOT   state directories to clear [default: DIR/../state]

Exit: 0 ok; 64 usage; 66 own executable not found; 73 cannot write DIR or ROOT.
";

const HELP_NATIVE: &str = "\
Usage: sidecar-shim native --state DIR [FLAGS] -- CMD [ARGS...]

The native copy (an init container with restartPolicy: Always):
  `native-confirmed` exists, or state is native-pending/native-running:
      write native-running, confirm, run and supervise CMD
  state is legacy-running: log it, idle until SIGTERM
  otherwise (first run in this sandbox): write native-pending, exit 0 at once

  --state DIR             the sidecar's state directory (/sidecar-kit/state/NAME)
  --termination-log PATH  where to write `native` when running the sidecar
                          [env SIDECAR_SHIM_TERMINATION_LOG; default /dev/termination-log]
  --sigterm-exit-zero     report 0 when CMD ends by the stop signal at teardown
  --check-node            (api build) read the node's kubelet version first: >= 1.29 runs the
                          sidecar at once (no detection restart); needs env NODE_NAME; only
                          where the native copy has its startup probe

Supervision: CMD is restarted when it exits (1 s, doubling to 30 s, reset after 60 s up);
SIGTERM, SIGINT, SIGQUIT stop it (forwarded, then we exit with its status); SIGHUP is
forwarded. Exit: CMD's status; 0 first run or idle copy stopped; 64; 66 CMD not found; 73.
";

const HELP_LEGACY: &str = "\
Usage: sidecar-shim legacy --state DIR --pod-restart-policy Always|OnFailure|Never [FLAGS] -- CMD...

The legacy copy (a regular container):
  state is native-running: sleep until SIGTERM (Always) or exit 0 (OnFailure, Never)
  otherwise: write legacy-running, run and supervise CMD
With OnFailure or Never (Job-safe shutdown) the sidecar is stopped (SIGTERM, SIGKILL after
--stop-grace) and we exit 0 once every app container in --wait-for has finished for good:
exited 0, or exited non-zero under Never.

  --state DIR                 the sidecar's state directory
  --pod-restart-policy P      the pod's spec.restartPolicy
  --wait-for NAME,NAME        app containers to wait for (OnFailure, Never)
  --tombstones DIR            where `sidecar-shim app` writes exit codes
                              [default /sidecar-kit/tombstones; polled every 250 ms]
  --job-completion MODE       tombstone (default) or api (api build: watch our pod, needs
                              env POD_NAME and POD_NAMESPACE and get/watch on pods)
  --stop-grace SECONDS        SIGTERM-to-SIGKILL grace when the Job is done [default 10]
  --termination-log PATH      where to write `legacy` when running the sidecar
  --sigterm-exit-zero         report 0 when CMD ends by the stop signal at teardown

Exit: CMD's status at teardown; 0 when dormant copy stopped or Job done; 64; 66; 73.
";

const HELP_PROBE: &str = "\
Usage: sidecar-shim probe --state DIR

Startup probe of the native copy: exit 0 only when the state is native-running, else 1.
";

const HELP_READY: &str = "\
Usage: sidecar-shim ready --state DIR [--timeout SECONDS]
                          [--http-get URL [--header NAME:VALUE]... | --tcp-socket HOST:PORT | -- CMD...]

Readiness probe of the legacy copy: exit 0 while dormant (state native-running); otherwise
run the original check: CMD exits 0; an HTTP GET answers 200..399; a TCP connect succeeds.
No check given: pass. https URLs need the api build (certificates are not verified, as the
kubelet does not). --timeout defaults to 1 s. Exit: 0 pass, 1 fail (errors included).
";

const HELP_APP: &str = "\
Usage: sidecar-shim app --name NAME [--tombstones DIR] -- CMD [ARGS...]

Wraps an app container of a Job pod: runs CMD, forwards signals, then writes DIR/NAME
atomically with its exit code (128 + N for signal N) and exits with the same status.
  --tombstones DIR   [default /sidecar-kit/tombstones]
Exit: CMD's status; 64 usage; 66 CMD not found (the tombstone says 66 too).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn parse_ok(args: &[&str]) -> Cmd {
        parse(os(args), &no_env).unwrap()
    }

    fn parse_err(args: &[&str]) -> Failure {
        let err = parse(os(args), &no_env).unwrap_err();
        assert_eq!(err.code, crate::exit::USAGE, "{err}");
        assert!(!err.message.contains('\n'), "one line: {err}");
        err
    }

    #[test]
    fn native_as_the_engine_writes_it() {
        let cmd = parse_ok(&[
            "native",
            "--state",
            "/sidecar-kit/state/agent",
            "--",
            "/bin/agent",
            "--flag",
        ]);
        assert_eq!(
            cmd,
            Cmd::Native {
                state: "/sidecar-kit/state/agent".into(),
                check_node: false,
                run: RunOpts {
                    cmd: os(&["/bin/agent", "--flag"]),
                    termination_log: DEFAULT_TERMINATION_LOG.into(),
                    sigterm_exit_zero: false,
                },
            }
        );
    }

    #[test]
    fn legacy_job_wiring() {
        let cmd = parse_ok(&[
            "legacy",
            "--state",
            "/s/agent",
            "--pod-restart-policy",
            "Never",
            "--tombstones",
            "/sidecar-kit/tombstones",
            "--wait-for",
            "app,worker",
            "--wait-for=extra",
            "--stop-grace=2.5",
            "--",
            "agent",
        ]);
        let Cmd::Legacy {
            policy,
            wait_for,
            stop_grace,
            completion,
            ..
        } = cmd
        else {
            panic!("{cmd:?}")
        };
        assert_eq!(policy, RestartPolicy::Never);
        assert_eq!(wait_for, ["app", "worker", "extra"]);
        assert_eq!(stop_grace, Duration::from_millis(2500));
        assert_eq!(completion, Completion::Tombstone);
    }

    #[test]
    fn termination_log_flag_beats_env_beats_default() {
        let env = |k: &str| (k == TERMINATION_LOG_ENV).then(|| "/tmp/from-env".to_string());
        let args = ["native", "--state", "/s", "--", "x"];
        let Cmd::Native { run, .. } = parse(os(&args), &env).unwrap() else {
            panic!()
        };
        assert_eq!(run.termination_log, PathBuf::from("/tmp/from-env"));
        let args = [
            "native",
            "--state",
            "/s",
            "--termination-log",
            "/tmp/flag",
            "--",
            "x",
        ];
        let Cmd::Native { run, .. } = parse(os(&args), &env).unwrap() else {
            panic!()
        };
        assert_eq!(run.termination_log, PathBuf::from("/tmp/flag"));
    }

    #[test]
    fn install_derives_the_state_root() {
        assert_eq!(
            parse_ok(&["install", "/sidecar-kit/bin"]),
            Cmd::Install {
                dir: "/sidecar-kit/bin".into(),
                state_root: "/sidecar-kit/state".into()
            }
        );
        assert_eq!(
            default_state_root("/sidecar-kit/bin/".as_ref()),
            Some("/sidecar-kit/state".into())
        );
        assert_eq!(
            default_state_root("/x/bin/.".as_ref()),
            Some("/x/state".into())
        );
        assert_eq!(default_state_root("/".as_ref()), None);
        assert_eq!(
            parse_ok(&["install", "/b", "--state-root", "/r"]),
            Cmd::Install {
                dir: "/b".into(),
                state_root: "/r".into()
            }
        );
    }

    #[test]
    fn ready_checks() {
        let cmd = parse_ok(&[
            "ready",
            "--state",
            "/s",
            "--http-get",
            "http://127.0.0.1:8080/healthz",
            "--header",
            "X-A: b",
            "--timeout",
            "2",
        ]);
        assert_eq!(
            cmd,
            Cmd::Ready {
                state: "/s".into(),
                timeout: Duration::from_secs(2),
                check: Check::HttpGet {
                    url: "http://127.0.0.1:8080/healthz".into(),
                    headers: vec![("X-A".into(), "b".into())],
                },
            }
        );
        let Cmd::Ready { check, .. } = parse_ok(&["ready", "--state", "/s", "--", "true"]) else {
            panic!()
        };
        assert_eq!(check, Check::Exec(os(&["true"])));
        let Cmd::Ready { check, .. } = parse_ok(&["ready", "--state", "/s"]) else {
            panic!()
        };
        assert_eq!(check, Check::None);
        let Cmd::Ready { check, .. } =
            parse_ok(&["ready", "--state", "/s", "--tcp-socket", "[::1]:80"])
        else {
            panic!()
        };
        assert_eq!(check, Check::TcpSocket("[::1]:80".into()));
    }

    #[test]
    fn app_wrapper() {
        assert_eq!(
            parse_ok(&[
                "app",
                "--tombstones",
                "/t",
                "--name",
                "app",
                "--",
                "/bin/app"
            ]),
            Cmd::App {
                tombstones: "/t".into(),
                name: "app".into(),
                cmd: os(&["/bin/app"])
            }
        );
    }

    #[test]
    fn help_and_version() {
        assert_eq!(parse_ok(&["--help"]), Cmd::Help(None));
        assert_eq!(parse_ok(&["legacy", "--help"]), Cmd::Help(Some("legacy")));
        assert_eq!(parse_ok(&["--version"]), Cmd::Version);
        for topic in COMMANDS {
            assert!(help_text(Some(topic)).contains(&format!("sidecar-shim {topic}")));
        }
    }

    #[test]
    fn usage_errors_name_the_flag_and_the_fix() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "missing command"),
            (&["nativ"], "unknown command `nativ`"),
            (&["native", "--", "x"], "`--state DIR` is missing"),
            (&["native", "--state", "/s"], "no command to run"),
            (&["native", "--state", "/s", "--"], "no command to run"),
            (&["native", "--state"], "`--state` needs a value"),
            (
                &["native", "--state", "/s", "--bogus", "--", "x"],
                "unknown flag `--bogus`",
            ),
            (
                &["native", "--state", "/a", "--state", "/b", "--", "x"],
                "given twice",
            ),
            (
                &[
                    "native",
                    "--state",
                    "/s",
                    "--sigterm-exit-zero=1",
                    "--",
                    "x",
                ],
                "takes no value",
            ),
            (
                &["legacy", "--state", "/s", "--", "x"],
                "`--pod-restart-policy` is missing",
            ),
            (
                &[
                    "legacy",
                    "--state",
                    "/s",
                    "--pod-restart-policy",
                    "always",
                    "--",
                    "x",
                ],
                "not `always`",
            ),
            (
                &[
                    "legacy",
                    "--state",
                    "/s",
                    "--pod-restart-policy",
                    "Never",
                    "--",
                    "x",
                ],
                "`--wait-for` is missing",
            ),
            (
                &[
                    "legacy",
                    "--state",
                    "/s",
                    "--pod-restart-policy",
                    "Always",
                    "--wait-for",
                    "app",
                    "--",
                    "x",
                ],
                "applies only",
            ),
            (
                &[
                    "legacy",
                    "--state",
                    "/s",
                    "--pod-restart-policy",
                    "Never",
                    "--wait-for",
                    "../x",
                    "--",
                    "x",
                ],
                "not a container name",
            ),
            (
                &[
                    "legacy",
                    "--state",
                    "/s",
                    "--pod-restart-policy",
                    "Never",
                    "--wait-for",
                    "a",
                    "--stop-grace",
                    "soon",
                    "--",
                    "x",
                ],
                "number of seconds",
            ),
            (
                &[
                    "legacy",
                    "--state",
                    "/s",
                    "--pod-restart-policy",
                    "Never",
                    "--wait-for",
                    "a",
                    "--job-completion",
                    "poll",
                    "--",
                    "x",
                ],
                "`tombstone` or `api`",
            ),
            (&["probe"], "`--state DIR` is missing"),
            (&["probe", "--state", "/s", "--", "x"], "runs no command"),
            (
                &["ready", "--state", "/s", "--tcp-socket", "h:1", "--", "x"],
                "give one check",
            ),
            (
                &["ready", "--state", "/s", "--header", "A:b"],
                "applies only to `--http-get",
            ),
            (
                &["ready", "--state", "/s", "--http-get", "ftp://x/"],
                "http",
            ),
            (
                &[
                    "ready",
                    "--state",
                    "/s",
                    "--http-get",
                    "http://h/",
                    "--header",
                    "nocolon",
                ],
                "NAME:VALUE",
            ),
            (
                &["ready", "--state", "/s", "--tcp-socket", "nohost"],
                "HOST:PORT",
            ),
            (
                &["ready", "--state", "/s", "--timeout", "0"],
                "number of seconds",
            ),
            (&["app", "--", "x"], "`--name NAME` is missing"),
            (&["app", "--name", "App", "--", "x"], "not a container name"),
            (&["install"], "missing DIR"),
            (&["install", "/a", "/b"], "takes one DIR"),
        ];
        for (args, expected) in cases {
            let err = parse_err(args);
            assert!(err.message.contains(expected), "{args:?}: {err}");
        }
        if !cfg!(feature = "api") {
            let err = parse_err(&["native", "--state", "/s", "--check-node", "--", "x"]);
            assert!(err.message.contains("`api` feature"), "{err}");
        }
    }

    #[test]
    fn seconds() {
        let ms = Duration::from_millis;
        assert_eq!(parse_seconds("10"), Some(ms(10_000)));
        assert_eq!(parse_seconds("2.5"), Some(ms(2500)));
        assert_eq!(parse_seconds("0.25"), Some(ms(250)));
        assert_eq!(parse_seconds(".5"), Some(ms(500)));
        assert_eq!(parse_seconds("3."), Some(ms(3000)));
        assert_eq!(parse_seconds("0"), Some(ms(0)));
        for bad in ["", ".", "-1", "1e3", "1.2345", "x", "1,5", "99999999999"] {
            assert_eq!(parse_seconds(bad), None, "{bad}");
        }
        assert_eq!(fmt_secs(ms(1500)), "1.5 s");
        assert_eq!(fmt_secs(ms(30_000)), "30.0 s");
        assert_eq!(fmt_secs(ms(49)), "0.0 s");
    }

    #[test]
    fn container_names() {
        assert!(is_container_name("app"));
        assert!(is_container_name("app-2"));
        assert!(!is_container_name(""));
        assert!(!is_container_name("-app"));
        assert!(!is_container_name("App"));
        assert!(!is_container_name("a/b"));
        assert!(!is_container_name(".."));
        assert!(!is_container_name(&"a".repeat(64)));
    }
}
