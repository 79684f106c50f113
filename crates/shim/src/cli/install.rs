//! `sidecar-shim install DIR`: its flags, help and parser.

use std::path::PathBuf;

use super::flags::Flag;
use super::raw::Raw;
use super::role::RoleDef;
use super::{Cmd, Env};
use crate::exit::Failure;

pub(super) const ROLE: RoleDef = RoleDef {
    name: "install",
    synopsis: "install DIR",
    summary: "copy this binary to DIR/sidecar-shim; clear the sandbox state",
    flags: &[Flag::value("--state-root", "DIR")],
    help: HELP,
    probe: false,
    parse,
};

fn parse(raw: Raw, _env: Env<'_>) -> Result<Cmd, Failure> {
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

const HELP: &str = "\
Usage: sidecar-shim install DIR [--state-root ROOT]

Copies this executable to DIR/sidecar-shim (temp file + rename, mode 0755), then removes the
per-sandbox `state` file of every sidecar under ROOT, keeping each `native-confirmed` flag and
all tombstones. Runs as the `sidecar-kit-install` init container, again whenever the pod
sandbox is re-created.

  --state-root ROOT   state directories to clear [default: DIR/../state]

Exit: 0 ok; 64 usage; 66 own executable not found; 73 cannot write DIR or ROOT.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::testing::*;

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
    fn usage_errors() {
        assert_usage_errors(&[
            (&["install"], "missing DIR"),
            (&["install", "/a", "/b"], "takes one DIR"),
        ]);
    }
}
