//! The roles of the binary (its commands): each one's name, flags, help and parser, defined
//! in the role's own module and reached through [`Role`].

use std::ffi::OsString;

use super::flags::Flag;
use super::raw::Raw;
use super::{Cmd, Env, app, install, legacy, native, probe, ready};
use crate::exit::Failure;

/// The name in log lines when no role applies (help, version, an unknown command).
pub const SHIM: &str = "shim";

/// A role of the binary, named by the first argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Install,
    Native,
    Legacy,
    Probe,
    Ready,
    App,
}

/// Everything about one role; each role's module defines its own.
pub(super) struct RoleDef {
    /// The command word: `sidecar-shim NAME ...`; also the role in log lines.
    pub(super) name: &'static str,
    /// Its line in `sidecar-shim --help`: the command as typed, then what it does.
    pub(super) synopsis: &'static str,
    pub(super) summary: &'static str,
    /// The flags it accepts.
    pub(super) flags: &'static [Flag],
    /// `sidecar-shim NAME --help`.
    pub(super) help: &'static str,
    /// A kubelet probe exits 0 or 1 only (contract): any error is a failed check.
    pub(super) probe: bool,
    /// Builds the command from the split arguments, or says what is wrong with them.
    pub(super) parse: fn(Raw, Env<'_>) -> Result<Cmd, Failure>,
}

impl Role {
    /// Every role, in the order of `sidecar-shim --help`.
    pub const ALL: [Role; 6] = [
        Role::Install,
        Role::Native,
        Role::Legacy,
        Role::Probe,
        Role::Ready,
        Role::App,
    ];

    const fn def(self) -> &'static RoleDef {
        match self {
            Role::Install => &install::ROLE,
            Role::Native => &native::ROLE,
            Role::Legacy => &legacy::ROLE,
            Role::Probe => &probe::ROLE,
            Role::Ready => &ready::ROLE,
            Role::App => &app::ROLE,
        }
    }

    /// The command word, which is also the role in log lines.
    pub const fn name(self) -> &'static str {
        self.def().name
    }

    /// The role with this command word.
    pub fn named(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.name() == name)
    }

    /// Every command word, joined by `separator` (for usage errors).
    pub fn list(separator: &str) -> String {
        Role::ALL.map(Role::name).join(separator)
    }

    /// The role named by the first argument, if it names one (for error lines of a failed
    /// parse).
    pub fn of(args: &[OsString]) -> Option<Role> {
        args.first().and_then(|a| a.to_str()).and_then(Role::named)
    }

    /// The flags the role accepts.
    pub fn flags(self) -> &'static [Flag] {
        self.def().flags
    }

    /// `sidecar-shim NAME --help`.
    pub fn help(self) -> &'static str {
        self.def().help
    }

    /// The role's line in `sidecar-shim --help`: the command as typed, then what it does.
    pub fn summary(self) -> (&'static str, &'static str) {
        (self.def().synopsis, self.def().summary)
    }

    /// `probe` and `ready` are kubelet probes: they exit 0 or 1 only (contract), so any
    /// error is a failed check.
    pub fn is_probe(self) -> bool {
        self.def().probe
    }

    /// Builds the role's command from its split arguments.
    pub(super) fn parse(self, raw: Raw, env: Env<'_>) -> Result<Cmd, Failure> {
        (self.def().parse)(raw, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_is_found_by_its_name() {
        for role in Role::ALL {
            assert_eq!(Role::named(role.name()), Some(role));
            assert_eq!(Role::of(&[role.name().into()]), Some(role));
        }
        assert_eq!(Role::named("shim"), None);
        assert_eq!(Role::of(&[]), None);
        let probes: Vec<_> = Role::ALL.into_iter().filter(|r| r.is_probe()).collect();
        assert_eq!(probes, [Role::Probe, Role::Ready]);
    }

    #[test]
    fn flag_specs_agree() {
        let all: Vec<Flag> = Role::ALL
            .into_iter()
            .flat_map(Role::flags)
            .copied()
            .collect();
        for role in Role::ALL {
            for (i, flag) in role.flags().iter().enumerate() {
                assert!(flag.name.starts_with("--"), "{flag:?}");
                assert!(
                    !role.flags()[..i].iter().any(|f| f.name == flag.name),
                    "{} lists {} twice",
                    role.name(),
                    flag.name
                );
                // A flag two roles accept means the same in both.
                assert!(
                    all.iter()
                        .filter(|f| f.name == flag.name)
                        .all(|f| f == flag),
                    "{flag:?}"
                );
            }
        }
    }
}
