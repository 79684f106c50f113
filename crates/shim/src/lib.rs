//! `sidecar-shim`: the in-pod runtime of sidecar-kit.
//!
//! One static binary with six roles, chosen by the first argument:
//!
//! - `install DIR`: the `sidecar-kit-install` init container copies the binary into the
//!   `sidecar-kit` emptyDir and clears the per-sandbox state;
//! - `native` and `legacy`: the two copies of a sidecar in "universal" wiring, which decide at
//!   run time which of them runs the sidecar (see [`protocol`]) and then supervise it;
//! - `probe`: the native copy's startup probe; `ready`: the legacy copy's readiness probe;
//! - `app`: wraps a Job's app container and writes its tombstone, so that the legacy copy
//!   can stop the sidecar and let the Job complete.
//!
//! The default build uses std only (the few libc calls std lacks are declared in [`sys`]).
//! Feature `api` adds the Kubernetes API client (rustls with `ring`, std threads).
//!
//! ```no_run
//! // What `main` does:
//! let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
//! let code = sidecar_shim::run(args, &|key| std::env::var(key).ok());
//! std::process::exit(code);
//! ```

// Functions longer than clippy.toml allows say why, next to them.
#![warn(clippy::too_many_lines)]

pub mod cli;
pub mod exit;
pub mod json;
#[macro_use]
pub mod log;
pub mod protocol;
pub mod ready;
pub mod roles;
pub mod state;
pub mod supervise;
pub mod sys;

#[cfg(feature = "api")]
pub mod api;

use std::ffi::OsString;
use std::io::Write;

use cli::{Cmd, Env, Role};
use exit::Failure;

/// Runs the program: parses `args` (without the program name) and executes the command.
/// Returns the exit code; errors have been logged as one line on stderr.
pub fn run(args: Vec<OsString>, env: Env<'_>) -> i32 {
    let role = Role::of(&args);
    let result = cli::parse(args, env).and_then(|cmd| execute(cmd, env));
    match result {
        Ok(code) => code,
        Err(failure) => {
            log!(
                role.map_or(cli::SHIM, Role::name),
                "error: {}",
                failure.message
            );
            // probe and ready exit 0 or 1 only (contract): any error is a failed check.
            if role.is_some_and(Role::is_probe) {
                exit::CHECK_FAILED
            } else {
                failure.code
            }
        }
    }
}

fn execute(cmd: Cmd, env: Env<'_>) -> Result<i32, Failure> {
    match cmd {
        Cmd::Help(topic) => {
            let _ = std::io::stdout().write_all(cli::help_text(topic).as_bytes());
            Ok(exit::OK)
        }
        Cmd::Version => {
            let _ = std::io::stdout().write_all(cli::version_text().as_bytes());
            Ok(exit::OK)
        }
        Cmd::Install { dir, state_root } => roles::install(&dir, &state_root),
        Cmd::Native {
            state,
            check_node,
            run,
        } => roles::native(&state, check_node, &run, env),
        Cmd::Legacy {
            state,
            policy,
            tombstones,
            wait_for,
            completion,
            stop_grace,
            run,
        } => roles::legacy(
            &roles::LegacyOpts {
                state: &state,
                policy,
                tombstones: &tombstones,
                wait_for: &wait_for,
                completion,
                stop_grace,
                run: &run,
            },
            env,
        ),
        Cmd::Probe { state } => Ok(roles::probe(&state)),
        Cmd::Ready {
            state,
            timeout,
            check,
        } => Ok(ready::run(&state, timeout, &check)),
        Cmd::App {
            tombstones,
            name,
            cmd,
        } => roles::app(&tombstones, &name, &cmd),
    }
}
