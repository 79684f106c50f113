//! `sidecar-shim probe`: the native copy's startup probe: its flags, help and parser.

use super::flags;
use super::raw::Raw;
use super::role::RoleDef;
use super::{Cmd, Env};
use crate::exit::Failure;

pub(super) const ROLE: RoleDef = RoleDef {
    name: "probe",
    synopsis: "probe",
    summary: "startup probe of the native copy: 0 once it runs the sidecar",
    flags: &[flags::STATE],
    help: HELP,
    probe: true,
    parse,
};

fn parse(raw: Raw, _env: Env<'_>) -> Result<Cmd, Failure> {
    raw.no_positional()?;
    raw.no_command()?;
    Ok(Cmd::Probe {
        state: raw.state()?,
    })
}

const HELP: &str = "\
Usage: sidecar-shim probe --state DIR

Startup probe of the native copy: exit 0 only when the state is native-running, else 1.
";

#[cfg(test)]
mod tests {
    use crate::cli::testing::*;

    #[test]
    fn usage_errors() {
        assert_usage_errors(&[
            (&["probe"], "`--state DIR` is missing"),
            (&["probe", "--state", "/s", "--", "x"], "runs no command"),
        ]);
    }
}
