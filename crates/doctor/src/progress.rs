//! A one-line progress bar on stderr, drawn only when stderr is a terminal (never into a
//! pipe, a file or a CI log), at most ten times a second.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct Progress {
    label: String,
    total: usize,
    done: AtomicUsize,
    enabled: bool,
    last: Mutex<Option<Instant>>,
}

impl Progress {
    /// A bar for `total` steps; drawn when `wanted` and stderr is a terminal.
    pub fn new(label: &str, total: usize, wanted: bool) -> Progress {
        Progress {
            label: label.to_string(),
            total,
            done: AtomicUsize::new(0),
            enabled: wanted && std::io::stderr().is_terminal(),
            last: Mutex::new(None),
        }
    }

    pub fn inc(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) && done < self.total {
            return;
        }
        *last = Some(Instant::now());
        let _ = write!(
            std::io::stderr(),
            "\r{}",
            line(&self.label, done, self.total)
        );
    }

    /// Clears the line.
    pub fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}

/// `label [#########...........] 123/5000`
pub fn line(label: &str, done: usize, total: usize) -> String {
    const WIDTH: usize = 30;
    let filled = (done * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH)
        .min(WIDTH);
    format!(
        "{label} [{}{}] {done}/{total}",
        "#".repeat(filled),
        ".".repeat(WIDTH - filled)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn draws_a_bar() {
        assert_eq!(
            super::line("nodes", 50, 100),
            "nodes [###############...............] 50/100"
        );
        assert!(super::line("x", 0, 0).contains("0/0"));
    }
}
