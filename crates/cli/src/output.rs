//! Writing results: all of stdout at once, so that an error never leaves partial output,
//! and a closed pipe (`| head`) is not an error.

use crate::CliError;
use std::io::Write;

pub fn print(s: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::runtime(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// A warning or note on stderr.
pub fn note(level: &str, place: &str, msg: &str) {
    eprintln!("{level}: {place}: {msg}");
}
