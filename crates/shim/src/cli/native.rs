//! `sidecar-shim native`: the native copy's flags, help and parser.

use super::flags::{self, Flag};
use super::raw::Raw;
use super::role::RoleDef;
use super::{Cmd, Env};
use crate::exit::Failure;

pub(super) const ROLE: RoleDef = RoleDef {
    name: "native",
    synopsis: "native",
    summary: "the native copy (init container, restartPolicy: Always)",
    flags: &[
        flags::STATE,
        flags::TERMINATION_LOG,
        flags::SIGTERM_EXIT_ZERO,
        Flag::switch("--check-node"),
    ],
    help: HELP,
    probe: false,
    parse,
};

fn parse(raw: Raw, env: Env<'_>) -> Result<Cmd, Failure> {
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

const HELP: &str = "\
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::cli::testing::*;
    use crate::cli::{DEFAULT_TERMINATION_LOG, RunOpts, TERMINATION_LOG_ENV, parse as parse_args};

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
    fn termination_log_flag_beats_env_beats_default() {
        let env = |k: &str| (k == TERMINATION_LOG_ENV).then(|| "/tmp/from-env".to_string());
        let args = ["native", "--state", "/s", "--", "x"];
        let Cmd::Native { run, .. } = parse_args(os(&args), &env).unwrap() else {
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
        let Cmd::Native { run, .. } = parse_args(os(&args), &env).unwrap() else {
            panic!()
        };
        assert_eq!(run.termination_log, PathBuf::from("/tmp/flag"));
    }

    #[test]
    fn usage_errors() {
        assert_usage_errors(&[
            (&["native", "--", "x"], "`--state DIR` is missing"),
            (&["native", "--state", "/s"], "no command to run"),
            (&["native", "--state", "/s", "--"], "no command to run"),
        ]);
        if !cfg!(feature = "api") {
            let err = parse_err(&["native", "--state", "/s", "--check-node", "--", "x"]);
            assert!(err.message.contains("`api` feature"), "{err}");
        }
    }
}
