//! `sidecar-shim app`: the wrapper of a Job's app container: its flags, help and parser.

use std::path::PathBuf;

use super::flags::{self, Flag};
use super::raw::Raw;
use super::role::RoleDef;
use super::values::is_container_name;
use super::{Cmd, DEFAULT_TOMBSTONES, Env};
use crate::exit::Failure;

pub(super) const ROLE: RoleDef = RoleDef {
    name: "app",
    synopsis: "app",
    summary: "wrap a Job's app container: run it, write its tombstone",
    flags: &[flags::TOMBSTONES, Flag::value("--name", "NAME")],
    help: HELP,
    probe: false,
    parse,
};

fn parse(raw: Raw, _env: Env<'_>) -> Result<Cmd, Failure> {
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

const HELP: &str = "\
Usage: sidecar-shim app --name NAME [--tombstones DIR] -- CMD [ARGS...]

Wraps an app container of a Job pod: runs CMD, forwards signals, then writes DIR/NAME
atomically with its exit code (128 + N for signal N) and exits with the same status.
  --tombstones DIR   [default /sidecar-kit/tombstones]
Exit: CMD's status; 64 usage; 66 CMD not found (the tombstone says 66 too).
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::*;

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
    fn usage_errors() {
        assert_usage_errors(&[
            (&["app", "--", "x"], "`--name NAME` is missing"),
            (&["app", "--name", "App", "--", "x"], "not a container name"),
        ]);
    }
}
