//! One line per event on stderr: `sidecar-shim[role]: message`.
//!
//! stdout is left to the supervised command. Each line is written with a single `write` so
//! that lines of concurrent writers (the API watcher thread, the child) do not interleave.

use std::fmt;
use std::io::Write;

/// Writes one log line. Errors are ignored: a closed stderr must not stop the sidecar.
pub fn line(role: &str, message: fmt::Arguments<'_>) {
    let text = format!("sidecar-shim[{role}]: {message}\n");
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `log!(role, "format", args...)`: one line on stderr.
#[macro_export]
macro_rules! log {
    ($role:expr, $($arg:tt)*) => {
        $crate::log::line($role, format_args!($($arg)*))
    };
}
