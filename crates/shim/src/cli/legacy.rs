//! `sidecar-shim legacy`: the legacy copy's flags, help and parser.

use std::path::PathBuf;

use super::flags::{self, Flag};
use super::raw::Raw;
use super::role::RoleDef;
use super::values::is_container_name;
use super::{Cmd, Completion, DEFAULT_STOP_GRACE, DEFAULT_TOMBSTONES, Env};
use crate::exit::Failure;
use crate::protocol::RestartPolicy;

pub(super) const ROLE: RoleDef = RoleDef {
    name: "legacy",
    synopsis: "legacy",
    summary: "the legacy copy (regular container); Job-safe shutdown",
    flags: &[
        flags::STATE,
        Flag::value("--pod-restart-policy", "Always|OnFailure|Never"),
        flags::TOMBSTONES,
        Flag::value("--wait-for", "NAME,NAME").repeated(),
        Flag::value("--job-completion", "tombstone|api"),
        Flag::value("--stop-grace", "SECONDS"),
        flags::TERMINATION_LOG,
        flags::SIGTERM_EXIT_ZERO,
    ],
    help: HELP,
    probe: false,
    parse,
};

fn parse(raw: Raw, env: Env<'_>) -> Result<Cmd, Failure> {
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

const HELP: &str = "\
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cli::testing::*;

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
    fn usage_errors_of_the_restart_policy_and_wait_for() {
        assert_usage_errors(&[
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
        ]);
    }

    #[test]
    fn usage_errors_of_job_flags() {
        assert_usage_errors(&[
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
        ]);
    }
}
