//! Flag specs: each flag a command accepts, whether it takes a value and may repeat.

/// One flag of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag {
    /// As typed, dashes included: `--state`.
    pub name: &'static str,
    /// The placeholder of its value in usage errors (`DIR`), or `None` for a switch, which
    /// takes no value.
    pub value: Option<&'static str>,
    /// May be given more than once; the values add up.
    pub repeats: bool,
}

impl Flag {
    /// A flag that takes one value, given once at most.
    pub const fn value(name: &'static str, placeholder: &'static str) -> Flag {
        Flag {
            name,
            value: Some(placeholder),
            repeats: false,
        }
    }

    /// A switch: takes no value, given once at most.
    pub const fn switch(name: &'static str) -> Flag {
        Flag {
            name,
            value: None,
            repeats: false,
        }
    }

    /// The same flag, allowed more than once.
    pub const fn repeated(self) -> Flag {
        Flag {
            repeats: true,
            ..self
        }
    }

    /// Whether the flag takes a value (`--flag VALUE` or `--flag=VALUE`).
    pub const fn takes_value(&self) -> bool {
        self.value.is_some()
    }
}

// Flags that more than one command accepts, spelled once.

/// The sidecar's state directory (`native`, `legacy`, `probe`, `ready`).
pub const STATE: Flag = Flag::value("--state", "DIR");
/// Where the kubelet reads the termination message (`native`, `legacy`).
pub const TERMINATION_LOG: Flag = Flag::value("--termination-log", "PATH");
/// Report 0 when the command ends by the stop signal at teardown (`native`, `legacy`).
pub const SIGTERM_EXIT_ZERO: Flag = Flag::switch("--sigterm-exit-zero");
/// The tombstone directory (`legacy`, `app`).
pub const TOMBSTONES: Flag = Flag::value("--tombstones", "DIR");
