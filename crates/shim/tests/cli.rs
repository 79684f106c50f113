//! Black-box tests of each command: the built binary as a process, its exit codes, files,
//! signals and log lines. Waits poll a condition with a deadline; servers bind 127.0.0.1:0.
// Test code: a panic is a failed assertion (clippy.toml allows unwrap in #[test] functions;
// the helpers of an integration test crate need the same).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sidecar_kit_testkit::{wait_exit, wait_until};
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const SHIM: &str = env!("CARGO_BIN_EXE_sidecar-shim");
const T: Duration = Duration::from_secs(10);

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "sidecar-shim-cli-{}-{n}-{name}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn s(&self, rel: &str) -> String {
        self.path(rel).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn shim(args: &[&str]) -> Command {
    let mut cmd = Command::new(SHIM);
    cmd.args(args)
        .env_remove("SIDECAR_SHIM_TERMINATION_LOG")
        .stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    shim(args).output().unwrap()
}

/// Starts the shim with stderr going to `log`.
fn spawn(args: &[&str], log: &Path) -> Child {
    let file = fs::File::create(log).unwrap();
    shim(args)
        .stderr(file)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

fn send(pid: u32, sig: &str) {
    assert!(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success()
    );
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

fn state_dir(scratch: &Scratch, word: Option<&str>) -> String {
    let dir = scratch.path("state/agent");
    fs::create_dir_all(&dir).unwrap();
    if let Some(word) = word {
        fs::write(dir.join("state"), format!("{word}\n")).unwrap();
    }
    dir.to_string_lossy().into_owned()
}

/// Children of `pid` from /proc: (pid, state letter).
fn children(pid: u32) -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if rest.next().and_then(|s| s.parse::<u32>().ok()) == Some(pid) {
            out.push((p, state));
        }
    }
    out
}

/// Starts a supervising copy (`native` with state `native-pending`) around `cmd`, waits
/// until the command runs, and returns the shim, its log path and the scratch dir.
fn supervisor(name: &str, extra: &[&str], cmd: &[&str]) -> (Child, PathBuf, Scratch) {
    let scratch = Scratch::new(name);
    let state = state_dir(&scratch, Some("native-pending"));
    let log = scratch.path("shim.log");
    let mut args = vec!["native", "--state", &state, "--termination-log"];
    let termination = scratch.s("termination-log");
    args.push(&termination);
    args.extend_from_slice(extra);
    args.push("--");
    args.extend_from_slice(cmd);
    let child = spawn(&args, &log);
    wait_until("the command runs", T, || read(&log).contains("started "));
    (child, log, scratch)
}

// === help, version, usage ===

#[test]
fn help_and_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("sidecar-shim {} ", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    let out = run(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for word in [
        "install DIR",
        "native",
        "legacy",
        "probe",
        "ready",
        "app",
        "64",
        "66",
        "70",
        "73",
    ] {
        assert!(text.contains(word), "{word} missing from --help");
    }
    for cmd in ["install", "native", "legacy", "probe", "ready", "app"] {
        let out = run(&[cmd, "--help"]);
        assert!(out.status.success());
        assert!(
            String::from_utf8(out.stdout)
                .unwrap()
                .contains(&format!("sidecar-shim {cmd}"))
        );
    }
}

#[test]
fn usage_errors_exit_64_with_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing command"),
        (&["frobnicate"], "unknown command"),
        (&["native", "--", "true"], "--state DIR"),
        (&["native", "--state", "/tmp/x"], "-- CMD"),
        (
            &["legacy", "--state", "/tmp/x", "--", "true"],
            "--pod-restart-policy",
        ),
        (
            &[
                "legacy",
                "--state",
                "/tmp/x",
                "--pod-restart-policy",
                "Never",
                "--",
                "true",
            ],
            "--wait-for",
        ),
        (
            &[
                "legacy",
                "--state",
                "/tmp/x",
                "--pod-restart-policy",
                "Always",
                "--stop-grace",
                "x",
                "--",
                "true",
            ],
            "--stop-grace",
        ),
        (&["app", "--", "true"], "--name"),
        (&["install"], "DIR"),
        (
            &["native", "--stat", "/tmp/x", "--", "true"],
            "unknown flag `--stat`",
        ),
    ];
    for (args, needle) in cases {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(
            err.starts_with("sidecar-shim[") && err.contains("]: error: "),
            "{err}"
        );
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    // probe and ready exit 0 or 1 only: a misconfigured probe is a failed probe.
    for args in [
        &["probe"][..],
        &["ready", "--state", "/tmp/x", "--tcp-socket", "nohost"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(String::from_utf8(out.stderr).unwrap().contains("error: "));
    }
}

// === install ===

#[test]
fn install_copies_itself_and_clears_sandbox_state() {
    let root = Scratch::new("install");
    let bin = root.s("sidecar-kit/bin");
    for (name, word, confirmed) in [
        ("agent", "native-running", true),
        ("proxy", "legacy-running", false),
    ] {
        let dir = root.path("sidecar-kit/state").join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("state"), word).unwrap();
        fs::write(dir.join(".state.tmp.4242"), "partial").unwrap();
        if confirmed {
            fs::write(dir.join("native-confirmed"), "").unwrap();
        }
    }
    fs::create_dir_all(root.path("sidecar-kit/tombstones")).unwrap();
    fs::write(root.path("sidecar-kit/tombstones/app"), "0\n").unwrap();

    let out = run(&["install", &bin]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = root.path("sidecar-kit/bin/sidecar-shim");
    assert_eq!(fs::read(&installed).unwrap(), fs::read(SHIM).unwrap());
    assert_eq!(
        fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let leftovers: Vec<_> = fs::read_dir(root.path("sidecar-kit/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["sidecar-shim"], "no temporary file left");
    // The installed copy runs.
    assert!(
        Command::new(&installed)
            .arg("--version")
            .output()
            .unwrap()
            .status
            .success()
    );

    for name in ["agent", "proxy"] {
        let dir = root.path("sidecar-kit/state").join(name);
        assert!(!dir.join("state").exists(), "{name}: state cleared");
        assert!(!dir.join(".state.tmp.4242").exists());
    }
    assert!(
        root.path("sidecar-kit/state/agent/native-confirmed")
            .exists(),
        "confirmed kept"
    );
    assert_eq!(
        read(&root.path("sidecar-kit/tombstones/app")),
        "0\n",
        "tombstones kept"
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cleared state `native-running` of agent left by an earlier sandbox (native-confirmed kept)"), "{err}");
    assert!(err.contains("cleared state `legacy-running` of proxy"));

    // Again, over the existing copy, with an explicit state root that does not exist yet.
    let out = run(&["install", &bin, "--state-root", &root.s("other/state")]);
    assert!(out.status.success());
    assert_eq!(
        fs::metadata(root.path("other/state"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o777
    );
}

#[test]
fn install_that_cannot_write_exits_73() {
    let root = Scratch::new("install-73");
    fs::write(root.path("file"), "").unwrap();
    let out = run(&["install", &root.s("file/bin")]);
    assert_eq!(out.status.code(), Some(73));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot create") && err.lines().count() == 1,
        "{err}"
    );
}

// === native and legacy decisions ===

#[test]
fn native_first_run_exits_at_once_doing_nothing_else() {
    let scratch = Scratch::new("first-run");
    let state = state_dir(&scratch, None);
    let marker = scratch.s("ran");
    let started = Instant::now();
    let out = run(&[
        "native",
        "--state",
        &state,
        "--",
        "/bin/sh",
        "-c",
        &format!("touch {marker}"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!Path::new(&marker).exists(), "the command must not run");
    assert_eq!(read(&scratch.path("state/agent/state")), "native-pending\n");
    assert!(!scratch.path("state/agent/native-confirmed").exists());
}

#[test]
fn native_that_lost_to_the_legacy_copy_idles_until_sigterm() {
    let scratch = Scratch::new("native-idle");
    let state = state_dir(&scratch, Some("legacy-running"));
    let log = scratch.path("log");
    let mut child = spawn(
        &["native", "--state", &state, "--", "/bin/sh", "-c", "exit 9"],
        &log,
    );
    wait_until("it idles", T, || {
        read(&log).contains("idling until SIGTERM")
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "never exits on its own"
    );
    send(child.id(), "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(2)).code(),
        Some(0)
    );
    assert_eq!(read(&scratch.path("state/agent/state")), "legacy-running\n");
}

#[test]
fn legacy_copy_dormant_or_exiting_when_native_runs() {
    let scratch = Scratch::new("legacy-dormant");
    let state = state_dir(&scratch, Some("native-running"));
    let log = scratch.path("log");
    let mut child = spawn(
        &[
            "legacy",
            "--state",
            &state,
            "--pod-restart-policy",
            "Always",
            "--",
            "/bin/sh",
            "-c",
            "exit 9",
        ],
        &log,
    );
    wait_until("dormant", T, || {
        read(&log).contains("dormant until SIGTERM")
    });
    send(child.id(), "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(2)).code(),
        Some(0)
    );

    for policy in ["OnFailure", "Never"] {
        let out = run(&[
            "legacy",
            "--state",
            &state,
            "--pod-restart-policy",
            policy,
            "--wait-for",
            "app",
            "--",
            "/bin/sh",
            "-c",
            "exit 9",
        ]);
        assert_eq!(out.status.code(), Some(0), "{policy}");
        assert!(String::from_utf8(out.stderr).unwrap().contains("exiting 0"));
    }
    assert_eq!(read(&scratch.path("state/agent/state")), "native-running\n");
}

// === supervision and signals ===

#[test]
fn sigterm_stops_the_supervisor_promptly_passing_the_child_status() {
    let (mut child, log, scratch) = supervisor(
        "sigterm",
        &[],
        &[
            "/bin/sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.05; done",
        ],
    );
    let sent = Instant::now();
    send(child.id(), "TERM");
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(2)).code(),
        Some(42)
    );
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    let text = read(&log);
    assert!(
        text.contains("SIGTERM: forwarding to pid") && text.contains("exiting with 42"),
        "{text}"
    );
    assert_eq!(read(&scratch.path("termination-log")), "native");
}

#[test]
fn sigterm_exit_zero_reports_0_for_the_teardown_signal_only() {
    let (mut child, _, _s) = supervisor("exit-zero", &["--sigterm-exit-zero"], &["sleep", "30"]);
    send(child.id(), "TERM");
    assert_eq!(wait_exit(&mut child, T).code(), Some(0));

    let (mut child, _, _s) = supervisor("no-exit-zero", &[], &["sleep", "30"]);
    send(child.id(), "TERM");
    assert_eq!(wait_exit(&mut child, T).code(), Some(143));

    // A status not caused by the signal passes through even with the flag.
    let (mut child, _, _s) = supervisor(
        "exit-zero-42",
        &["--sigterm-exit-zero"],
        &[
            "/bin/sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.05; done",
        ],
    );
    send(child.id(), "TERM");
    assert_eq!(wait_exit(&mut child, T).code(), Some(42));
}

#[test]
fn sigint_and_sigquit_stop_too_sighup_is_only_forwarded() {
    let (mut child, _, _s) = supervisor("sigint", &[], &["sleep", "30"]);
    send(child.id(), "INT");
    assert_eq!(wait_exit(&mut child, T).code(), Some(130));
    let (mut child, _, _s) = supervisor("sigquit", &[], &["sleep", "30"]);
    send(child.id(), "QUIT");
    assert_eq!(wait_exit(&mut child, T).code(), Some(131));

    let scratch = Scratch::new("sighup-file");
    let file = scratch.s("hups");
    let script = format!("trap 'echo hup >> {file}' HUP; while :; do sleep 0.05; done");
    let (mut child, log, _s) = supervisor("sighup", &[], &["/bin/sh", "-c", &script]);
    send(child.id(), "HUP");
    wait_until("the child got SIGHUP", T, || {
        read(Path::new(&file)) == "hup\n"
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "SIGHUP does not stop the shim"
    );
    assert!(read(&log).contains("SIGHUP: forwarding"));
    send(child.id(), "TERM");
    wait_exit(&mut child, T);
}

#[test]
fn crashed_sidecar_restarts_with_doubling_backoff_and_stops_during_backoff() {
    let scratch = Scratch::new("backoff-runs");
    let runs = scratch.s("runs");
    let script = format!("echo run >> {runs}; exit 3");
    let (mut child, log, _s) = supervisor(
        "backoff",
        &["--sigterm-exit-zero"],
        &["/bin/sh", "-c", &script],
    );
    let count = || read(Path::new(&runs)).lines().count();
    wait_until("three runs", T, || count() >= 3);
    let text = read(&log);
    assert!(
        text.contains("sidecar exited with status 3") && text.contains("restarting in 1.0 s"),
        "{text}"
    );
    assert!(text.contains("restarting in 2.0 s"), "{text}");
    // SIGTERM while waiting to restart: exit at once, no further run.
    wait_until("backing off again", T, || {
        read(&log).contains("restarting in 4.0 s")
    });
    let sent = Instant::now();
    send(child.id(), "TERM");
    assert_eq!(
        wait_exit(&mut child, T).code(),
        Some(0),
        "--sigterm-exit-zero"
    );
    assert!(sent.elapsed() < Duration::from_secs(1));
    assert!(read(&log).contains("while no sidecar runs"));
    assert_eq!(count(), 3);
}

#[test]
fn orphans_are_reaped_and_leftovers_killed() {
    let scratch = Scratch::new("orphans");
    let pidfile = scratch.s("orphan");
    // The subshell exits at once; its `sleep 0.3` is re-parented to the shim (a subreaper).
    let script = format!("(sleep 0.3 & echo $! > {pidfile}); exec sleep 30");
    let (mut child, _, _s) = supervisor("orphans", &[], &["/bin/sh", "-c", &script]);
    wait_until("the orphan is known", T, || {
        read(Path::new(&pidfile)).trim().parse::<u32>().is_ok()
    });
    let orphan: u32 = read(Path::new(&pidfile)).trim().parse().unwrap();
    wait_until("the orphan exited and was reaped", T, || {
        !Path::new(&format!("/proc/{orphan}")).exists()
    });
    assert!(
        children(child.id()).iter().all(|(_, state)| *state != 'Z'),
        "no zombie children"
    );
    send(child.id(), "TERM");
    wait_exit(&mut child, T);

    // A helper the sidecar leaves in its process group dies when the sidecar does.
    let helper = scratch.s("helper");
    let script = format!("sleep 30 & echo $! > {helper}; exit 5");
    let (mut child, log, _s) = supervisor("leftovers", &[], &["/bin/sh", "-c", &script]);
    wait_until("the helper was started", T, || {
        read(Path::new(&helper)).trim().parse::<u32>().is_ok()
    });
    let pid: u32 = read(Path::new(&helper)).trim().parse().unwrap();
    wait_until("the helper is gone", T, || {
        fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    assert!(read(&log).contains("killed processes the command left in its process group"));
    send(child.id(), "TERM");
    wait_exit(&mut child, T);
}

/// The shim as the real PID 1 of a PID namespace, as in a container: orphans are re-parented
/// to it and must be reaped, and SIGTERM (blocked, so never ignored as PID 1's default
/// disposition would be) must end it promptly.
#[test]
fn as_pid_1_in_a_pid_namespace() {
    if !Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("skipped: cannot create a PID namespace here (unshare --pid needs privileges)");
        return;
    }
    let scratch = Scratch::new("pid1");
    let state = state_dir(&scratch, Some("native-pending"));
    let log = scratch.path("log");
    let pidfile = scratch.s("orphan");
    let script = format!("(sleep 0.3 & echo ok > {pidfile}); exec sleep 30");
    let file = fs::File::create(&log).unwrap();
    let mut unshare = Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            SHIM,
            "native",
            "--state",
            &state,
            "--termination-log",
            &scratch.s("tl"),
            "--",
            "/bin/sh",
            "-c",
            &script,
        ])
        .stderr(file)
        .spawn()
        .unwrap();
    wait_until("the shim runs its child", T, || {
        read(&log).contains("started /bin/sh (pid 2)")
    });
    let shim_pid = children(unshare.id())
        .first()
        .map(|(p, _)| *p)
        .expect("the shim, PID 1 inside");
    wait_until("the orphan was started", T, || {
        read(Path::new(&pidfile)) == "ok\n"
    });
    // Two children at most while the orphan lives; once it exited, only `sleep 30`, no zombie.
    wait_until("the orphan is reaped", T, || {
        let kids = children(shim_pid);
        kids.len() == 1 && kids.iter().all(|(_, s)| *s != 'Z')
    });
    let sent = Instant::now();
    send(shim_pid, "TERM");
    assert_eq!(
        wait_exit(&mut unshare, Duration::from_secs(3)).code(),
        Some(143)
    );
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
}

#[test]
fn termination_log_failure_is_logged_not_fatal() {
    let scratch = Scratch::new("termlog");
    let state = state_dir(&scratch, Some("native-pending"));
    let log = scratch.path("log");
    let mut child = Command::new(SHIM)
        .args(["native", "--state", &state, "--", "sleep", "30"])
        .env(
            "SIDECAR_SHIM_TERMINATION_LOG",
            scratch.path("missing/dir/log"),
        )
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_until("running", T, || read(&log).contains("started sleep"));
    assert!(read(&log).contains("cannot write the termination message"));
    send(child.id(), "TERM");
    assert_eq!(wait_exit(&mut child, T).code(), Some(143));
}

#[test]
fn missing_command_exits_66() {
    let scratch = Scratch::new("missing-cmd");
    let state = state_dir(&scratch, Some("native-pending"));
    let out = run(&[
        "native",
        "--state",
        &state,
        "--termination-log",
        &scratch.s("tl"),
        "--",
        "/nonexistent/agent",
    ]);
    assert_eq!(out.status.code(), Some(66));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("cannot run `/nonexistent/agent`: not found")
    );
}

// === Job-safe shutdown ===

#[test]
fn legacy_job_stops_the_sidecar_with_sigkill_after_the_grace() {
    let scratch = Scratch::new("grace");
    let state = state_dir(&scratch, None);
    let tombstones = scratch.s("tombstones");
    let log = scratch.path("log");
    let mut child = spawn(
        &[
            "legacy",
            "--state",
            &state,
            "--pod-restart-policy",
            "Never",
            "--tombstones",
            &tombstones,
            "--wait-for",
            "app,worker",
            "--stop-grace",
            "0.3",
            "--termination-log",
            &scratch.s("tl"),
            "--",
            "/bin/sh",
            "-c",
            "trap '' TERM; while :; do sleep 0.05; done",
        ],
        &log,
    );
    wait_until("the sidecar runs", T, || {
        read(&log).contains("started /bin/sh")
    });
    assert_eq!(read(&scratch.path("state/agent/state")), "legacy-running\n");
    fs::create_dir_all(&tombstones).unwrap();
    fs::write(scratch.path("tombstones/app"), "0\n").unwrap();
    thread::sleep(Duration::from_millis(400)); // one app done is not enough: it must keep running
    assert!(child.try_wait().unwrap().is_none());
    fs::write(scratch.path("tombstones/worker"), "1\n").unwrap();
    let done = Instant::now();
    assert_eq!(wait_exit(&mut child, T).code(), Some(0));
    let took = done.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let text = read(&log);
    assert!(
        text.contains("still running after the grace period: SIGKILL")
            && text.contains("Job done, exiting 0"),
        "{text}"
    );
    assert_eq!(read(&scratch.path("tl")), "legacy");
}

#[test]
fn legacy_job_whose_apps_already_finished_exits_without_the_sidecar() {
    let scratch = Scratch::new("already");
    let state = state_dir(&scratch, None);
    fs::create_dir_all(scratch.path("t")).unwrap();
    fs::write(scratch.path("t/app"), "0\n").unwrap();
    let marker = scratch.s("ran");
    let out = run(&[
        "legacy",
        "--state",
        &state,
        "--pod-restart-policy",
        "OnFailure",
        "--tombstones",
        &scratch.s("t"),
        "--wait-for",
        "app",
        "--",
        "/bin/sh",
        "-c",
        &format!("touch {marker}"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!Path::new(&marker).exists());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("already finished")
    );
}

// === app ===

#[test]
fn app_passes_the_status_and_writes_its_tombstone() {
    let scratch = Scratch::new("app");
    let t = scratch.s("t");
    let cases: &[(&[&str], i32)] = &[
        (&["/bin/sh", "-c", "exit 3"], 3),
        (&["/bin/true"], 0),
        (&["/bin/sh", "-c", "kill -KILL $$"], 137),
        (&["/nonexistent/app"], 66),
    ];
    for (cmd, code) in cases {
        let mut args = vec!["app", "--tombstones", &t, "--name", "app", "--"];
        args.extend_from_slice(cmd);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(*code), "{cmd:?}");
        assert_eq!(read(&scratch.path("t/app")), format!("{code}\n"), "{cmd:?}");
    }
    // Signals are forwarded; the tombstone records the result.
    let log = scratch.path("log");
    let mut child = spawn(
        &[
            "app",
            "--tombstones",
            &t,
            "--name",
            "worker",
            "--",
            "sleep",
            "30",
        ],
        &log,
    );
    wait_until("running", T, || read(&log).contains("started sleep"));
    send(child.id(), "TERM");
    assert_eq!(wait_exit(&mut child, T).code(), Some(143));
    assert_eq!(read(&scratch.path("t/worker")), "143\n");
    assert_eq!(
        fs::metadata(scratch.path("t"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o777
    );
}

// === probe and ready ===

#[test]
fn probe_passes_only_on_native_running() {
    let scratch = Scratch::new("probe");
    let state = state_dir(&scratch, None);
    let code = || run(&["probe", "--state", &state]).status.code();
    assert_eq!(code(), Some(1));
    for (word, expected) in [
        ("native-pending", 1),
        ("legacy-running", 1),
        ("garbage", 1),
        ("native-running", 0),
    ] {
        fs::write(scratch.path("state/agent/state"), word).unwrap();
        assert_eq!(code(), Some(expected), "{word}");
    }
    assert_eq!(
        run(&["probe", "--state", "/nonexistent/state"])
            .status
            .code(),
        Some(1)
    );
}

/// A one-shot-per-connection HTTP server on 127.0.0.1:0 answering `status`; sends each
/// request's head to the returned channel.
fn http_server(status: u16, silent: bool) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let _ = tx.send(head);
            if silent {
                thread::sleep(Duration::from_secs(2));
                continue;
            }
            let _ = write!(stream, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, rx)
}

#[test]
fn ready_passes_while_dormant_else_runs_the_original_check() {
    let scratch = Scratch::new("ready");
    let state = state_dir(&scratch, None);
    let ready = |check: &[&str]| {
        let mut args = vec!["ready", "--state", &state, "--timeout", "0.5"];
        args.extend_from_slice(check);
        run(&args).status.code()
    };
    assert_eq!(ready(&[]), Some(0), "no check, not dormant: pass");
    assert_eq!(ready(&["--", "/bin/sh", "-c", "exit 0"]), Some(0));
    assert_eq!(ready(&["--", "/bin/sh", "-c", "exit 2"]), Some(1));
    assert_eq!(ready(&["--", "sleep", "5"]), Some(1), "timed out");

    for (status, expected) in [(200, 0), (302, 0), (399, 0), (404, 1), (503, 1)] {
        let (port, rx) = http_server(status, false);
        let url = format!("http://127.0.0.1:{port}/healthz?x=1");
        assert_eq!(
            ready(&["--http-get", &url, "--header", "X-Probe: yes"]),
            Some(expected),
            "{status}"
        );
        let head = rx.recv_timeout(T).unwrap();
        assert!(head.starts_with("GET /healthz?x=1 HTTP/1.1\r\n"), "{head}");
        assert!(
            head.contains(&format!("Host: 127.0.0.1:{port}\r\n"))
                && head.contains("X-Probe: yes\r\n"),
            "{head}"
        );
    }
    let (port, _rx) = http_server(200, true);
    let started = Instant::now();
    assert_eq!(
        ready(&["--http-get", &format!("http://127.0.0.1:{port}/")]),
        Some(1),
        "no answer within --timeout"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    assert_eq!(
        ready(&["--tcp-socket", &format!("127.0.0.1:{open}")]),
        Some(0)
    );
    drop(listener);
    assert_eq!(
        ready(&["--tcp-socket", &format!("127.0.0.1:{open}")]),
        Some(1),
        "closed port"
    );
    assert_eq!(
        ready(&["--http-get", &format!("http://127.0.0.1:{open}/")]),
        Some(1)
    );

    // Dormant: pass without running the check.
    fs::write(scratch.path("state/agent/state"), "native-running\n").unwrap();
    assert_eq!(ready(&["--", "/bin/sh", "-c", "exit 2"]), Some(0));
    assert_eq!(
        ready(&["--tcp-socket", &format!("127.0.0.1:{open}")]),
        Some(0)
    );
}
