//! What `sidecar-shim --help`, `sidecar-shim COMMAND --help` and `--version` print.

use std::borrow::Cow;
use std::fmt::Write;

use super::{Role, VERSION};

/// The whole program's help (`None`), listing every role, or one role's.
pub fn help_text(topic: Option<Role>) -> Cow<'static, str> {
    match topic {
        Some(role) => Cow::Borrowed(role.help()),
        None => {
            let mut text = String::from(HEAD);
            for role in Role::ALL {
                let (synopsis, summary) = role.summary();
                let _ = writeln!(text, "  {synopsis:<16}{summary}");
            }
            text.push_str(TAIL);
            Cow::Owned(text)
        }
    }
}

pub fn version_text() -> String {
    let features = if cfg!(feature = "api") {
        "api"
    } else {
        "default"
    };
    format!("sidecar-shim {VERSION} (contract 1, build: {features})\n")
}

/// The whole program's help up to its list of roles, each role's line in its module.
const HEAD: &str = "\
sidecar-shim: the in-pod runtime of sidecar-kit

Usage: sidecar-shim COMMAND [FLAGS] [-- CMD [ARGS...]]

Commands:
";

/// The whole program's help after its list of roles.
const TAIL: &str = "
  sidecar-shim COMMAND --help    flags of one command
  sidecar-shim --version

Exit codes:
  the child's status passes through (128 + N when signal N killed it)
  0   done (native first run, dormant copy stopped, Job's sidecar stopped)
  1   probe or ready check failed
  64  usage error          66  missing input (command or file not found)
  70  internal error       73  cannot create a file or directory

Log lines go to stderr as `sidecar-shim[ROLE]: ...`; stdout is the child's.
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cmd;
    use crate::cli::testing::*;

    #[test]
    fn help_and_version() {
        assert_eq!(parse_ok(&["--help"]), Cmd::Help(None));
        assert_eq!(
            parse_ok(&["legacy", "--help"]),
            Cmd::Help(Some(Role::Legacy))
        );
        assert_eq!(parse_ok(&["--version"]), Cmd::Version);
        for role in Role::ALL {
            let name = role.name();
            assert!(help_text(Some(role)).contains(&format!("sidecar-shim {name}")));
        }
    }

    #[test]
    fn the_overview_lists_every_role_in_one_column() {
        let text = help_text(None);
        for role in Role::ALL {
            let (synopsis, summary) = role.summary();
            assert!(synopsis.starts_with(role.name()), "{synopsis}");
            assert!(synopsis.len() < 16, "{synopsis} is too long for the column");
            let line = format!("\n  {synopsis:<16}{summary}\n");
            assert!(text.contains(&line), "{line}");
        }
    }
}
