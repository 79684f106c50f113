//! Command line: raw arguments in, a validated [`Cmd`] out (or a one-line usage error that
//! names the flag and the fix). Hand-written: the default build takes no crates.
//!
//! Each role keeps its flags, help text and parser in its own module (`install`, `native`,
//! `legacy`, `probe`, `ready`, `app`), reached through [`Role`]; adding a role is one module,
//! one variant and one line in `Role`'s table.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::exit::Failure;
use crate::protocol::RestartPolicy;

mod app;
mod flags;
mod help;
mod install;
mod legacy;
mod native;
mod probe;
mod raw;
mod ready;
mod role;
#[cfg(test)]
mod testing;
mod values;

pub use flags::Flag;
pub use help::{help_text, version_text};
pub use install::default_state_root;
pub use role::{Role, SHIM};
pub use values::{fmt_secs, is_container_name, parse_seconds};

use raw::Raw;

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
    Help(Option<Role>),
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
            Cmd::Help(_) | Cmd::Version => SHIM,
            Cmd::Install { .. } => Role::Install.name(),
            Cmd::Native { .. } => Role::Native.name(),
            Cmd::Legacy { .. } => Role::Legacy.name(),
            Cmd::Probe { .. } => Role::Probe.name(),
            Cmd::Ready { .. } => Role::Ready.name(),
            Cmd::App { .. } => Role::App.name(),
        }
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: Vec<OsString>, env: Env<'_>) -> Result<Cmd, Failure> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(Failure::usage(format!(
            "missing command: run `sidecar-shim {} ...`; see `sidecar-shim --help`",
            Role::list("|")
        )));
    };
    let first = first.to_string_lossy();
    let role = match first.as_ref() {
        "-h" | "--help" | "help" => return Ok(Cmd::Help(None)),
        "-V" | "--version" | "version" => return Ok(Cmd::Version),
        other => Role::named(other).ok_or_else(|| {
            Failure::usage(format!(
                "unknown command `{other}`: use one of {}; see `sidecar-shim --help`",
                Role::list(", ")
            ))
        })?,
    };
    let raw = Raw::split(role, args.collect())?;
    if raw.help {
        return Ok(Cmd::Help(Some(role)));
    }
    role.parse(raw, env)
}

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(test)]
mod tests {
    use testing::*;

    use super::*;

    #[test]
    fn usage_errors_name_the_command() {
        assert_usage_errors(&[
            (&[], "missing command"),
            (&["nativ"], "unknown command `nativ`"),
        ]);
        let err = parse_err(&[]);
        assert!(
            err.message
                .contains("`sidecar-shim install|native|legacy|probe|ready|app ...`"),
            "{err}"
        );
        let err = parse_err(&["nativ"]);
        assert!(
            err.message
                .contains("use one of install, native, legacy, probe, ready, app;"),
            "{err}"
        );
    }
}
