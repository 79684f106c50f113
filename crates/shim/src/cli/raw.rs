//! One command's arguments split by its flag spec into flags, positionals and the command
//! after `--`, with the typed reads the role parsers share.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::values::parse_seconds;
use super::{DEFAULT_TERMINATION_LOG, Env, Role, RunOpts, TERMINATION_LOG_ENV};
use crate::exit::Failure;

/// The arguments of one command, split into flags, positionals and the command after `--`.
pub(super) struct Raw {
    pub(super) role: Role,
    flags: Vec<(&'static str, Option<OsString>)>,
    pub(super) positional: Vec<OsString>,
    pub(super) cmd: Option<Vec<OsString>>,
    pub(super) help: bool,
}

impl Raw {
    pub(super) fn split(role: Role, args: Vec<OsString>) -> Result<Raw, Failure> {
        let mut raw = Raw {
            role,
            flags: Vec::new(),
            positional: Vec::new(),
            cmd: None,
            help: false,
        };
        let spec = role.flags();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy();
            if text == "--" {
                raw.cmd = Some(args.collect());
                break;
            }
            if text == "-h" || text == "--help" {
                raw.help = true;
                continue;
            }
            if !text.starts_with('-') || text == "-" {
                raw.positional.push(arg);
                continue;
            }
            let (name, inline) = match text.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(OsString::from(value))),
                None => (text.into_owned(), None),
            };
            let Some(spec) = spec.iter().find(|f| f.name == name) else {
                let role = role.name();
                return Err(Failure::usage(format!(
                    "unknown flag `{name}` for `sidecar-shim {role}`; see `sidecar-shim {role} --help`"
                )));
            };
            let flag = spec.name;
            if !spec.repeats && raw.has(flag) {
                return Err(Failure::usage(format!("`{flag}` is given twice: keep one")));
            }
            let value = match (spec.value, inline) {
                (Some(_), Some(value)) => Some(value),
                (Some(placeholder), None) => match args.next() {
                    Some(value) if value != "--" => Some(value),
                    _ => {
                        return Err(Failure::usage(format!(
                            "`{flag}` needs a value: `{flag} {placeholder}`"
                        )));
                    }
                },
                (None, Some(_)) => {
                    return Err(Failure::usage(format!(
                        "`{flag}` takes no value: drop `=...`"
                    )));
                }
                (None, None) => None,
            };
            raw.flags.push((flag, value));
        }
        Ok(raw)
    }

    fn value(&self, flag: &str) -> Option<&OsString> {
        self.flags
            .iter()
            .find(|(f, _)| *f == flag)
            .and_then(|(_, v)| v.as_ref())
    }

    pub(super) fn text(&self, flag: &str) -> Result<Option<String>, Failure> {
        match self.value(flag) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| Failure::usage(format!("`{flag}` must be valid UTF-8"))),
        }
    }

    pub(super) fn values(&self, flag: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(f, _)| *f == flag)
            .filter_map(|(_, v)| v.as_ref().map(|v| v.to_string_lossy().into_owned()))
            .collect()
    }

    pub(super) fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|(f, _)| *f == flag)
    }

    pub(super) fn path(&self, flag: &str) -> Option<PathBuf> {
        self.value(flag).map(PathBuf::from)
    }

    pub(super) fn state(&self) -> Result<PathBuf, Failure> {
        match self.path("--state") {
            Some(path) if !path.as_os_str().is_empty() => Ok(path),
            _ => Err(Failure::usage(format!(
                "`--state DIR` is missing: give the sidecar's state directory, e.g. `sidecar-shim {} --state /sidecar-kit/state/NAME`",
                self.role.name()
            ))),
        }
    }

    pub(super) fn no_positional(&self) -> Result<(), Failure> {
        match self.positional.first() {
            None => Ok(()),
            Some(arg) => Err(Failure::usage(format!(
                "unexpected argument `{}` for `sidecar-shim {}`: the command to run goes after `--`",
                arg.to_string_lossy(),
                self.role.name()
            ))),
        }
    }

    pub(super) fn command(&self, what: &str) -> Result<Vec<OsString>, Failure> {
        match &self.cmd {
            Some(cmd) if !cmd.is_empty() && !cmd[0].is_empty() => Ok(cmd.clone()),
            _ => Err(Failure::usage(format!(
                "no command to run: end the flags with `-- CMD [ARGS...]` ({what})"
            ))),
        }
    }

    pub(super) fn no_command(&self) -> Result<(), Failure> {
        match &self.cmd {
            None => Ok(()),
            Some(_) => Err(Failure::usage(format!(
                "`sidecar-shim {}` runs no command: drop `-- ...`",
                self.role.name()
            ))),
        }
    }

    pub(super) fn seconds(
        &self,
        flag: &str,
        default: Duration,
        allow_zero: bool,
    ) -> Result<Duration, Failure> {
        let Some(text) = self.text(flag)? else {
            return Ok(default);
        };
        match parse_seconds(&text).filter(|d| allow_zero || !d.is_zero()) {
            Some(duration) => Ok(duration),
            None => Err(Failure::usage(format!(
                "`{flag}` must be a number of seconds, e.g. `{flag} 10`, not `{text}`"
            ))),
        }
    }

    pub(super) fn run_opts(&self, env: Env<'_>) -> Result<RunOpts, Failure> {
        let termination_log = self
            .path("--termination-log")
            .or_else(|| {
                env(TERMINATION_LOG_ENV)
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(DEFAULT_TERMINATION_LOG));
        Ok(RunOpts {
            cmd: self.command("the sidecar's own command and arguments")?,
            termination_log,
            sigterm_exit_zero: self.has("--sigterm-exit-zero"),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::testing::*;

    #[test]
    fn usage_errors_name_the_flag_and_the_fix() {
        assert_usage_errors(&[
            (&["native", "--state"], "`--state` needs a value"),
            (
                &["native", "--state", "/s", "--bogus", "--", "x"],
                "unknown flag `--bogus`",
            ),
            (
                &["native", "--state", "/a", "--state", "/b", "--", "x"],
                "given twice",
            ),
            (
                &[
                    "native",
                    "--state",
                    "/s",
                    "--sigterm-exit-zero=1",
                    "--",
                    "x",
                ],
                "takes no value",
            ),
        ]);
    }
}
