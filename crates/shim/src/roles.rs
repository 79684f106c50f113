//! The commands: each reads the shared files, takes its decision from [`crate::protocol`] and
//! acts (writes files, idles, or supervises the command).

use std::ffi::OsString;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{Completion as CompletionMode, Env, Role, RunOpts};
use crate::exit::{CHECK_FAILED, Failure, OK};
use crate::protocol::{
    self, Backoff, LegacyAction, NativeAction, NodeSupport, RestartPolicy, State,
};
use crate::state::{self, Recorded, Tombstone};
use crate::supervise::{self, Child, Completion, Signals};

/// Test hook: milliseconds to wait between reading the state and acting on it, in `native`
/// and `legacy`. It widens the window in which two copies can both decide to run the sidecar
/// when the native copy has no startup probe, so that the black-box tests can show the race
/// the probe prevents. Only builds with the `test-hooks` feature (the package's own tests)
/// read it: a release shim ignores the variable and does not contain its name.
#[cfg(feature = "test-hooks")]
pub const CLAIM_DELAY_ENV: &str = "SIDECAR_SHIM_TEST_CLAIM_DELAY_MS";

/// How often the legacy copy of a Job looks at the tombstones. std has no inotify and the
/// shim takes no crates; four stat+read calls a second per app container cost nothing, and a
/// Job's end is noticed within 250 ms.
pub const TOMBSTONE_POLL: Duration = Duration::from_millis(250);

// === install ===

pub fn install(dir: &Path, state_root: &Path) -> Result<i32, Failure> {
    const ROLE: &str = Role::Install.name();
    let exe = std::env::current_exe()
        .map_err(|err| Failure::no_input(format!("cannot find my own executable: {err}")))?;
    fs::create_dir_all(dir).map_err(|err| {
        Failure::cant_create(format!(
            "cannot create {}: {err} (is the sidecar-kit volume mounted there and writable?)",
            dir.display()
        ))
    })?;
    let target = dir.join("sidecar-shim");
    let bytes = copy_atomically(&exe, dir, "sidecar-shim").map_err(|err| {
        Failure::cant_create(format!("cannot install {}: {err}", target.display()))
    })?;
    log!(ROLE, "installed {} ({bytes} bytes)", target.display());

    state::ensure_shared_dir(state_root).map_err(|err| {
        Failure::cant_create(format!(
            "cannot create the state root {}: {err}",
            state_root.display()
        ))
    })?;
    let cleared = state::clear_sandbox_state(state_root).map_err(|err| {
        Failure::cant_create(format!(
            "cannot clear the sandbox state under {}: {err}",
            state_root.display()
        ))
    })?;
    for c in &cleared {
        if let Some(word) = &c.removed {
            log!(
                ROLE,
                "cleared state `{word}` of {} left by an earlier sandbox{}",
                c.sidecar,
                if c.confirmed {
                    " (native-confirmed kept)"
                } else {
                    ""
                }
            );
        }
    }
    Ok(OK)
}

/// Copies `src` to `dir/name` through a temporary file (mode 0755, fsync, rename): a copy that
/// runs while we install never sees a half-written binary.
fn copy_atomically(src: &Path, dir: &Path, name: &str) -> io::Result<u64> {
    let tmp: PathBuf = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut input = fs::File::open(src)?;
        let mut output = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o755)
            .open(&tmp)?;
        let bytes = io::copy(&mut input, &mut output)?;
        output.set_permissions(Permissions::from_mode(0o755))?;
        output.flush()?;
        output.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

// === reading the state ===

fn read_state(role: &str, dir: &Path) -> Result<Option<State>, Failure> {
    match state::read_state(dir) {
        Ok(Recorded::Unrecognised(word)) => {
            log!(
                role,
                "state file holds `{word}`, not a state I know: treating it as empty"
            );
            Ok(None)
        }
        Ok(recorded) => Ok(recorded.state()),
        Err(err) => Err(Failure::no_input(format!(
            "cannot read {}: {err}",
            dir.join(state::STATE_FILE).display()
        ))),
    }
}

fn write_state(dir: &Path, state: State) -> Result<(), Failure> {
    state::write_state(dir, state).map_err(|err| {
        Failure::cant_create(format!(
            "cannot write {}: {err} (is the sidecar-kit volume mounted and writable?)",
            dir.join(state::STATE_FILE).display()
        ))
    })
}

#[cfg(not(feature = "test-hooks"))]
fn claim_delay(_role: &str, _env: Env<'_>) {}

#[cfg(feature = "test-hooks")]
fn claim_delay(role: &str, env: Env<'_>) {
    if let Some(ms) = env(CLAIM_DELAY_ENV).and_then(|v| v.parse::<u64>().ok()) {
        log!(
            role,
            "test hook {CLAIM_DELAY_ENV}: waiting {ms} ms before acting on the state"
        );
        std::thread::sleep(Duration::from_millis(ms));
    }
}

fn describe(state: Option<State>) -> &'static str {
    state.map_or("no state", State::as_str)
}

/// Writes `native` or `legacy` to the termination message file. Failing is logged only: the
/// message is for `doctor pods`, the sidecar matters more.
fn write_termination_message(role: &str, path: &Path, copy: &str) {
    if let Err(err) = fs::write(path, copy) {
        log!(
            role,
            "cannot write the termination message {}: {err}",
            path.display()
        );
    }
}

fn sidecar<'a>(role: &'static str, run: &'a RunOpts, stop_grace: Duration) -> Child<'a> {
    Child {
        role,
        cmd: &run.cmd,
        restart: true,
        sigterm_exit_zero: run.sigterm_exit_zero,
        stop_grace,
        backoff: Backoff::default(),
    }
}

// === native ===

pub fn native(
    state_dir: &Path,
    check_node: bool,
    run: &RunOpts,
    env: Env<'_>,
) -> Result<i32, Failure> {
    const ROLE: &str = Role::Native.name();
    let signals = Signals::block()?;
    let recorded = read_state(ROLE, state_dir)?;
    let confirmed = state::is_confirmed(state_dir);
    let node = if check_node && !confirmed && recorded.is_none() {
        node_support(env)
    } else {
        NodeSupport::Unknown
    };
    claim_delay(ROLE, env);
    match protocol::native_action(recorded, confirmed, node) {
        NativeAction::FirstRun => {
            write_state(state_dir, State::NativePending)?;
            log!(
                ROLE,
                "first run in this sandbox ({}): wrote native-pending, exiting 0",
                describe(recorded)
            );
            Ok(OK)
        }
        NativeAction::Idle => {
            log!(
                ROLE,
                "the legacy copy runs the sidecar (state legacy-running): idling until SIGTERM"
            );
            Ok(supervise::idle(ROLE, &signals))
        }
        NativeAction::BecomeSidecar => {
            write_state(state_dir, State::NativeRunning)?;
            if !confirmed {
                state::confirm(state_dir).map_err(|err| {
                    Failure::cant_create(format!(
                        "cannot write {}: {err}",
                        state_dir.join(state::CONFIRMED_FILE).display()
                    ))
                })?;
            }
            let why = if confirmed {
                "native-confirmed"
            } else if node == NodeSupport::Supported {
                "the node's kubelet runs native sidecars"
            } else {
                describe(recorded)
            };
            log!(
                ROLE,
                "native sidecars work here ({why}): wrote native-running, running the sidecar"
            );
            write_termination_message(ROLE, &run.termination_log, "native");
            sidecar(ROLE, run, crate::cli::DEFAULT_STOP_GRACE).supervise(&signals, None)
        }
    }
}

#[cfg(feature = "api")]
fn node_support(env: Env<'_>) -> NodeSupport {
    crate::api::check_node(env)
}

#[cfg(not(feature = "api"))]
fn node_support(_: Env<'_>) -> NodeSupport {
    NodeSupport::Unknown
}

// === legacy ===

pub struct LegacyOpts<'a> {
    pub state: &'a Path,
    pub policy: RestartPolicy,
    pub tombstones: &'a Path,
    pub wait_for: &'a [String],
    pub completion: CompletionMode,
    pub stop_grace: Duration,
    pub run: &'a RunOpts,
}

pub fn legacy(opts: &LegacyOpts<'_>, env: Env<'_>) -> Result<i32, Failure> {
    const ROLE: &str = Role::Legacy.name();
    let signals = Signals::block()?;
    let recorded = read_state(ROLE, opts.state)?;
    claim_delay(ROLE, env);
    match protocol::legacy_action(recorded, opts.policy) {
        LegacyAction::Dormant => {
            log!(
                ROLE,
                "the native copy runs the sidecar: dormant until SIGTERM"
            );
            Ok(supervise::idle(ROLE, &signals))
        }
        LegacyAction::ExitZero => {
            log!(
                ROLE,
                "the native copy runs the sidecar; pod restartPolicy {}: exiting 0",
                opts.policy.as_str()
            );
            Ok(OK)
        }
        LegacyAction::BecomeSidecar => {
            let mut completion: Option<Box<dyn Completion>> = match opts.policy {
                RestartPolicy::Always => None,
                _ => Some(job_completion(opts, env)?),
            };
            if let Some(c) = completion.as_mut()
                && c.done()
            {
                log!(
                    ROLE,
                    "every app container has already finished: exiting 0 without the sidecar"
                );
                return Ok(OK);
            }
            write_state(opts.state, State::LegacyRunning)?;
            log!(
                ROLE,
                "native sidecars do not run here ({}): wrote legacy-running, running the sidecar",
                describe(recorded)
            );
            write_termination_message(ROLE, &opts.run.termination_log, "legacy");
            let mut child = sidecar(ROLE, opts.run, opts.stop_grace);
            child.supervise(&signals, completion.as_deref_mut())
        }
    }
}

fn job_completion(opts: &LegacyOpts<'_>, env: Env<'_>) -> Result<Box<dyn Completion>, Failure> {
    match opts.completion {
        CompletionMode::Tombstone => {
            log!(
                "legacy",
                "Job-safe shutdown: waiting for {} (tombstones in {}, polled every {} ms)",
                opts.wait_for.join(", "),
                opts.tombstones.display(),
                TOMBSTONE_POLL.as_millis()
            );
            Ok(Box::new(Tombstones::new(
                opts.tombstones,
                opts.wait_for,
                opts.policy,
            )))
        }
        #[cfg(feature = "api")]
        CompletionMode::Api => crate::api::pod_completion(env, opts.wait_for, opts.policy),
        #[cfg(not(feature = "api"))]
        CompletionMode::Api => {
            let _ = env;
            Err(Failure::usage(
                "`--job-completion api` needs the shim built with the `api` feature",
            ))
        }
    }
}

/// Job completion through tombstones written by `sidecar-shim app`.
/// Logs that app container `app` exited with `code`, and whether the kubelet will start it
/// again under `policy` (both Job completion sources, tombstones and the API, say it alike).
pub(crate) fn log_app_exit(app: &str, code: i32, policy: RestartPolicy) {
    let verdict = if protocol::finished_for_good(code, policy) {
        "finished"
    } else {
        "will be restarted"
    };
    log!(
        "legacy",
        "app container {app} exited with {code}: {verdict} (restartPolicy {})",
        policy.as_str()
    );
}

pub struct Tombstones {
    dir: PathBuf,
    apps: Vec<String>,
    policy: RestartPolicy,
    seen: Vec<Tombstone>,
}

impl Tombstones {
    pub fn new(dir: &Path, apps: &[String], policy: RestartPolicy) -> Tombstones {
        Tombstones {
            dir: dir.to_path_buf(),
            apps: apps.to_vec(),
            policy,
            seen: vec![Tombstone::Absent; apps.len()],
        }
    }
}

impl Completion for Tombstones {
    fn interval(&self) -> Duration {
        TOMBSTONE_POLL
    }

    fn done(&mut self) -> bool {
        let mut codes = Vec::with_capacity(self.apps.len());
        for (i, app) in self.apps.iter().enumerate() {
            let now = state::read_tombstone(&self.dir, app);
            if now != self.seen[i] {
                match &now {
                    Tombstone::Exited(code) => log_app_exit(app, *code, self.policy),
                    Tombstone::Unreadable(err) => {
                        log!("legacy", "tombstone of {app} unreadable: {err}")
                    }
                    Tombstone::Absent => {}
                }
                self.seen[i] = now.clone();
            }
            codes.push(match now {
                Tombstone::Exited(code) => Some(code),
                _ => None,
            });
        }
        protocol::all_finished(&codes, self.policy)
    }
}

// === probe ===

pub fn probe(state_dir: &Path) -> i32 {
    const ROLE: &str = Role::Probe.name();
    match state::read_state(state_dir) {
        Ok(recorded) if protocol::probe_passes(recorded.state()) => OK,
        Ok(Recorded::Missing) => {
            log!(ROLE, "not running yet: no state in {}", state_dir.display());
            CHECK_FAILED
        }
        Ok(Recorded::Known(state)) => {
            log!(ROLE, "not running yet: state is {state}");
            CHECK_FAILED
        }
        Ok(Recorded::Unrecognised(word)) => {
            log!(ROLE, "unknown state `{word}`");
            CHECK_FAILED
        }
        Err(err) => {
            log!(
                ROLE,
                "cannot read the state in {}: {err}",
                state_dir.display()
            );
            CHECK_FAILED
        }
    }
}

// === app ===

pub fn app(tombstones: &Path, name: &str, cmd: &[OsString]) -> Result<i32, Failure> {
    const ROLE: &str = Role::App.name();
    let signals = Signals::block()?;
    let mut child = Child {
        role: ROLE,
        cmd,
        restart: false,
        sigterm_exit_zero: false,
        stop_grace: Duration::ZERO,
        backoff: Backoff::default(),
    };
    // The tombstone is written whatever happened, our own errors included: without it the
    // legacy sidecar of a Job would wait forever for an app that never ran.
    let result = child.supervise(&signals, None);
    let code = match &result {
        Ok(code) => *code,
        Err(failure) => failure.code,
    };
    match state::write_tombstone(tombstones, name, code) {
        Ok(()) => log!(
            ROLE,
            "wrote tombstone {} = {code}",
            tombstones.join(name).display()
        ),
        Err(err) => {
            let failure = Failure::cant_create(format!(
                "cannot write the tombstone {}: {err}; the Job's sidecar will not stop",
                tombstones.join(name).display()
            ));
            return match result {
                Ok(_) => Err(failure),
                Err(first) => {
                    log!(ROLE, "{failure}");
                    Err(first)
                }
            };
        }
    }
    result
}
