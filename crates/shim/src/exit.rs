//! Exit codes and the error type every role returns.
//!
//! The shim passes its child's status through (128 + signal for a signal death). Its own
//! errors use the BSD sysexits codes, so that they cannot be mistaken for a typical child
//! status: 64 usage, 66 missing input, 70 internal, 73 cannot create. `probe` and `ready` exit
//! 0 (pass) or 1 (fail) and nothing else: for a probe, any failure is a failure.

use std::fmt;

pub const OK: i32 = 0;
/// `probe` and `ready`: the check failed.
pub const CHECK_FAILED: i32 = 1;
/// EX_USAGE: bad flags or arguments.
pub const USAGE: i32 = 64;
/// EX_NOINPUT: something we must read is missing (the command to run, our own executable, a
/// state file we may not read).
pub const NO_INPUT: i32 = 66;
/// EX_SOFTWARE: an internal error (a system call that should not fail did).
pub const SOFTWARE: i32 = 70;
/// EX_CANTCREAT: a file or directory we must write could not be written.
pub const CANT_CREATE: i32 = 73;

/// A role's own error: the exit code and a one-line message (what failed, and the fix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(USAGE, message)
    }

    pub fn no_input(message: impl Into<String>) -> Failure {
        Failure::new(NO_INPUT, message)
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(SOFTWARE, message)
    }

    pub fn cant_create(message: impl Into<String>) -> Failure {
        Failure::new(CANT_CREATE, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
