//! Running a child as PID 1 would: signals forwarded, zombies reaped, restarts with back-off.
//!
//! One thread, one loop, no signal handlers: the signals we care about are blocked at start
//! and taken synchronously with `sigtimedwait`, which also serves as the loop's timer. Every
//! event (a signal, a child exit, a back-off or grace deadline, a Job completion poll) is
//! handled in the loop, so there is no state shared with an asynchronous handler.
//!
//! Loop states (see [`Phase`]): `Running` → the child exits → `BackingOff` → `Running` again
//! (sidecar roles), or → exit with its status (`app`). A stop signal (SIGTERM, SIGINT,
//! SIGQUIT: the kubelet sends the image's STOPSIGNAL, which may be any of them) moves
//! `Running` to `Stopping`: forwarded, restarts end, we exit when the child has. A finished
//! Job moves `Running` to `Stopping` with a SIGKILL deadline (`--stop-grace`).

use std::ffi::OsString;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::fmt_secs;
use crate::exit::{Failure, OK};
use crate::protocol::{self, Backoff};
use crate::sys::{self, SIGCHLD, SIGHUP, SIGINT, SIGKILL, SIGQUIT, SIGTERM};

/// The longest we sleep in one `sigtimedwait`; deadlines shorten it.
const MAX_WAIT: Duration = Duration::from_secs(3600);

/// The signals every role takes synchronously.
pub struct Signals {
    set: sys::SigSet,
}

impl Signals {
    /// Blocks SIGTERM, SIGINT, SIGQUIT, SIGHUP and SIGCHLD. Must run before any thread is
    /// spawned, so that every thread inherits the mask and the signals reach only our loop.
    /// Children get a clean mask: std's `Command` resets it between fork and exec.
    pub fn block() -> Result<Signals, Failure> {
        sys::block_signals(&[SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGCHLD])
            .map(|set| Signals { set })
            .map_err(|err| Failure::internal(format!("cannot block signals: {err}")))
    }

    /// The next signal, or `None` when `timeout` passed first.
    pub fn wait(&self, timeout: Duration) -> Option<i32> {
        match sys::wait_signal(&self.set, timeout) {
            Ok(sig) => sig,
            Err(_) => {
                // Cannot happen with a valid set; do not spin if it does.
                std::thread::sleep(timeout.min(Duration::from_millis(100)));
                None
            }
        }
    }
}

/// SIGTERM, SIGINT and SIGQUIT end a role: the kubelet sends SIGTERM unless the image sets
/// another STOPSIGNAL, and an interactive user sends SIGINT. SIGHUP is only forwarded.
pub fn is_stop_signal(sig: i32) -> bool {
    matches!(sig, SIGTERM | SIGINT | SIGQUIT)
}

/// Reaps every exited child; returns the status of `pid` if it was among them.
fn reap(pid: Option<i32>) -> Option<i32> {
    let mut found = None;
    while let Some((reaped, status)) = sys::reap_one() {
        if Some(reaped) == pid {
            found = Some(status);
        }
    }
    found
}

/// Idles until a stop signal (the dormant legacy copy, the native copy that lost to the legacy
/// one), reaping any zombie meanwhile. Returns 0: being stopped is the expected end.
pub fn idle(role: &str, signals: &Signals) -> i32 {
    loop {
        match signals.wait(MAX_WAIT) {
            Some(sig) if is_stop_signal(sig) => {
                log!(role, "{}: exiting", sys::signal_name(sig));
                return OK;
            }
            Some(SIGCHLD) => {
                reap(None);
            }
            _ => {}
        }
    }
}

/// Something outside the child that may end supervision: a Job's app containers finishing.
pub trait Completion {
    /// How often to ask.
    fn interval(&self) -> Duration;
    /// True once the sidecar is no longer needed (logs its own events).
    fn done(&mut self) -> bool;
}

/// What to run and how.
pub struct Child<'a> {
    pub role: &'static str,
    pub cmd: &'a [OsString],
    /// Sidecar roles: restart the command when it exits. `app`: run it once.
    pub restart: bool,
    pub sigterm_exit_zero: bool,
    pub stop_grace: Duration,
    pub backoff: Backoff,
}

#[derive(Clone, Copy)]
enum Phase {
    Running {
        pid: i32,
        since: Instant,
    },
    BackingOff {
        until: Instant,
    },
    Stopping {
        pid: i32,
        why: Stop,
        kill_at: Option<Instant>,
    },
}

#[derive(Clone, Copy)]
enum Stop {
    /// We forwarded this stop signal.
    Signal(i32),
    /// The Job's app containers are done; we sent SIGTERM ourselves.
    JobDone,
}

impl Phase {
    /// The child that runs, if one does.
    fn pid(&self) -> Option<i32> {
        match *self {
            Phase::Running { pid, .. } | Phase::Stopping { pid, .. } => Some(pid),
            Phase::BackingOff { .. } => None,
        }
    }

    /// When the loop must act without a signal: the end of the back-off, the SIGKILL after
    /// the grace of a Job stop.
    fn deadline(&self) -> Option<Instant> {
        match *self {
            Phase::BackingOff { until } => Some(until),
            Phase::Stopping { kill_at, .. } => kill_at,
            Phase::Running { .. } => None,
        }
    }
}

/// The next signal, waiting at most until `deadline`; `None` when the deadline came first.
fn next_signal(signals: &Signals, deadline: Option<Instant>) -> Option<i32> {
    let timeout = deadline.map_or(MAX_WAIT, |d| d.saturating_duration_since(Instant::now()));
    if timeout.is_zero() {
        None
    } else {
        signals.wait(timeout)
    }
}

impl Child<'_> {
    fn spawn(&self) -> Result<i32, Failure> {
        let mut command = Command::new(&self.cmd[0]);
        command.args(&self.cmd[1..]);
        sys::clean_signals_in_child(&mut command);
        if self.restart {
            // The sidecar gets its own process group, so that helpers it leaves behind when it
            // exits can be cleaned up before the restart, as the runtime would on a container
            // exit. The app keeps ours (and a terminal, if it has one).
            command.process_group(0);
        }
        match command.spawn() {
            // Never waited on through std: our loop reaps it with waitpid(-1).
            Ok(child) => Ok(child.id() as i32),
            Err(err) => Err(spawn_failure(&self.cmd[0], &err)),
        }
    }

    fn cleanup_group(&self, pid: i32) {
        if self.restart && sys::send_signal(-pid, SIGKILL).is_ok() {
            log!(
                self.role,
                "killed processes the command left in its process group"
            );
        }
    }

    /// Runs the command until the end: its status (`app`, or a sidecar stopped by a signal) or
    /// 0 (a finished Job). `completion` is only consulted while the sidecar runs or waits.
    ///
    /// Each turn of the loop waits for a signal or the next deadline, then handles, in this
    /// order: the signal (`on_signal`), a passed deadline (`on_deadline`), a due completion
    /// poll (`poll_completion`).
    pub fn supervise<'c>(
        &mut self,
        signals: &Signals,
        mut completion: Option<&mut (dyn Completion + 'c)>,
    ) -> Result<i32, Failure> {
        if self.restart
            && let Err(err) = sys::become_subreaper()
        {
            log!(
                self.role,
                "cannot become child subreaper ({err}); orphans go to PID 1"
            );
        }
        let first = self.spawn()?;
        log!(
            self.role,
            "started {} (pid {first})",
            self.cmd[0].to_string_lossy()
        );
        let mut phase = Phase::Running {
            pid: first,
            since: Instant::now(),
        };
        let mut next_poll = completion.as_ref().map(|c| Instant::now() + c.interval());
        loop {
            let deadline = [phase.deadline(), next_poll].into_iter().flatten().min();
            if let Some(sig) = next_signal(signals, deadline)
                && let ControlFlow::Break(code) = self.on_signal(sig, &mut phase)
            {
                return Ok(code);
            }
            let now = Instant::now();
            self.on_deadline(&mut phase, now)?;
            if let ControlFlow::Break(code) =
                self.poll_completion(&mut phase, &mut next_poll, completion.as_deref_mut(), now)
            {
                return Ok(code);
            }
        }
    }

    /// One signal: SIGCHLD reaps, a stop signal stops, any other is forwarded. `Break` holds
    /// the exit code when supervision ends.
    fn on_signal(&mut self, sig: i32, phase: &mut Phase) -> ControlFlow<i32> {
        match sig {
            SIGCHLD => {
                let pid = phase.pid();
                let Some(raw) = reap(pid) else {
                    return ControlFlow::Continue(());
                };
                let code = sys::status_code(raw);
                if let Some(pid) = pid {
                    self.cleanup_group(pid);
                }
                self.on_exit(code, phase)
            }
            sig if is_stop_signal(sig) => self.on_stop_signal(sig, phase),
            sig => {
                // SIGHUP (e.g. "reload"): pass it on.
                if let Some(pid) = phase.pid() {
                    log!(
                        self.role,
                        "{}: forwarding to pid {pid}",
                        sys::signal_name(sig)
                    );
                    let _ = sys::send_signal(pid, sig);
                }
                ControlFlow::Continue(())
            }
        }
    }

    /// The child exited with `code`: a sidecar that was not being stopped restarts after its
    /// back-off; otherwise supervision ends, with the status the phase calls for.
    fn on_exit(&mut self, code: i32, phase: &mut Phase) -> ControlFlow<i32> {
        match *phase {
            Phase::Running { since, .. } if self.restart => {
                let delay = self.backoff.next_delay(since.elapsed());
                log!(
                    self.role,
                    "sidecar exited with status {code} after {}; restarting in {}",
                    fmt_secs(since.elapsed()),
                    fmt_secs(delay)
                );
                *phase = Phase::BackingOff {
                    until: Instant::now() + delay,
                };
                ControlFlow::Continue(())
            }
            Phase::Running { .. } => {
                log!(self.role, "command exited with status {code}");
                ControlFlow::Break(code)
            }
            Phase::Stopping {
                why: Stop::Signal(sig),
                ..
            } => {
                let reported = protocol::teardown_status(code, sig, self.sigterm_exit_zero);
                log!(
                    self.role,
                    "command exited with status {code} after {}; exiting with {reported}",
                    sys::signal_name(sig)
                );
                ControlFlow::Break(if self.restart { reported } else { code })
            }
            Phase::Stopping {
                why: Stop::JobDone, ..
            } => {
                log!(
                    self.role,
                    "sidecar stopped (status {code}); Job done, exiting 0"
                );
                ControlFlow::Break(OK)
            }
            Phase::BackingOff { .. } => ControlFlow::Continue(()),
        }
    }

    /// A stop signal (SIGTERM, SIGINT, SIGQUIT): forwarded to the child, and no more restarts;
    /// with no child running, supervision ends at once.
    fn on_stop_signal(&self, sig: i32, phase: &mut Phase) -> ControlFlow<i32> {
        match *phase {
            Phase::Running { pid, .. } => {
                log!(
                    self.role,
                    "{}: forwarding to pid {pid}, no more restarts",
                    sys::signal_name(sig)
                );
                let _ = sys::send_signal(pid, sig);
                *phase = Phase::Stopping {
                    pid,
                    why: Stop::Signal(sig),
                    kill_at: None,
                };
            }
            Phase::Stopping { pid, why, kill_at } => {
                log!(
                    self.role,
                    "{}: forwarding to pid {pid}",
                    sys::signal_name(sig)
                );
                let _ = sys::send_signal(pid, sig);
                // A teardown signal during a Job stop: the status is the teardown's.
                let why = match why {
                    Stop::JobDone => Stop::JobDone,
                    Stop::Signal(_) => Stop::Signal(sig),
                };
                *phase = Phase::Stopping { pid, why, kill_at };
            }
            Phase::BackingOff { .. } => {
                let code = protocol::teardown_status(128 + sig, sig, self.sigterm_exit_zero);
                log!(
                    self.role,
                    "{} while no sidecar runs: exiting with {code}",
                    sys::signal_name(sig)
                );
                return ControlFlow::Break(code);
            }
        }
        ControlFlow::Continue(())
    }

    /// A deadline that has passed: the back-off ends with a restart; the grace of a Job stop
    /// ends with SIGKILL.
    fn on_deadline(&self, phase: &mut Phase, now: Instant) -> Result<(), Failure> {
        match *phase {
            Phase::BackingOff { until } if now >= until => {
                let pid = self.spawn()?;
                log!(
                    self.role,
                    "restarted {} (pid {pid})",
                    self.cmd[0].to_string_lossy()
                );
                *phase = Phase::Running { pid, since: now };
            }
            Phase::Stopping {
                pid,
                why,
                kill_at: Some(at),
            } if now >= at => {
                log!(
                    self.role,
                    "pid {pid} still running after the grace period: SIGKILL"
                );
                let _ = sys::send_signal(pid, SIGKILL);
                self.cleanup_group(pid);
                *phase = Phase::Stopping {
                    pid,
                    why,
                    kill_at: None,
                };
            }
            _ => {}
        }
        Ok(())
    }

    /// Asks `completion` when its poll is due. Once the Job is done the sidecar is stopped
    /// (SIGTERM, SIGKILL after `stop_grace`), or, when none runs, supervision ends with 0.
    fn poll_completion(
        &self,
        phase: &mut Phase,
        next_poll: &mut Option<Instant>,
        completion: Option<&mut (dyn Completion + '_)>,
        now: Instant,
    ) -> ControlFlow<i32> {
        if let (Some(poll), Some(c)) = (*next_poll, completion)
            && now >= poll
        {
            *next_poll = Some(now + c.interval());
            if c.done() {
                *next_poll = None;
                match *phase {
                    Phase::Running { pid, .. } => {
                        log!(
                            self.role,
                            "stopping the sidecar: SIGTERM to pid {pid}, SIGKILL after {}",
                            fmt_secs(self.stop_grace)
                        );
                        let _ = sys::send_signal(pid, SIGTERM);
                        *phase = Phase::Stopping {
                            pid,
                            why: Stop::JobDone,
                            kill_at: Some(now + self.stop_grace),
                        };
                    }
                    Phase::BackingOff { .. } => {
                        log!(self.role, "no sidecar runs; Job done, exiting 0");
                        return ControlFlow::Break(OK);
                    }
                    // Already stopping for a teardown signal: that ends it.
                    Phase::Stopping { .. } => {}
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Exit code and message for a command that could not be started.
pub fn spawn_failure(program: &OsString, err: &io::Error) -> Failure {
    let program = program.to_string_lossy();
    match err.kind() {
        io::ErrorKind::NotFound => Failure::no_input(format!(
            "cannot run `{program}`: not found (check the container's command and its image)"
        )),
        io::ErrorKind::PermissionDenied => Failure::no_input(format!(
            "cannot run `{program}`: permission denied (is it executable?)"
        )),
        _ => Failure::internal(format!("cannot run `{program}`: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_signals() {
        assert!(is_stop_signal(SIGTERM));
        assert!(is_stop_signal(SIGINT));
        assert!(is_stop_signal(SIGQUIT));
        assert!(!is_stop_signal(SIGHUP));
        assert!(!is_stop_signal(SIGCHLD));
    }

    #[test]
    fn spawn_failures_are_missing_input() {
        let err = io::Error::from(io::ErrorKind::NotFound);
        let failure = spawn_failure(&OsString::from("/nope"), &err);
        assert_eq!(failure.code, crate::exit::NO_INPUT);
        assert!(failure.message.contains("/nope"));
    }
}
