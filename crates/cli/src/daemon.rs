//! What the long-running commands (`serve`, `label-nodes`) share: structured logs on stderr
//! through a background writer, and stopping on SIGTERM or SIGINT.

use crate::CliError;
use clap::ValueEnum;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// The bytes of log lines the background writer holds while stderr is slow to take them:
/// at the 25,000 reviews/s a 2-core server plans (~300 bytes a line), over half a second of
/// lines (a container runtime's log pipe stalling for a moment). When it is full, a line
/// waits for room: none is dropped. Under a steady load it holds a few milliseconds of
/// lines ([`crate::logwriter::GATHER`]).
const LOG_HOLD_BYTES: usize = 4 << 20;

/// JSON (or text) lines on stderr through a background writer, so no request waits on a
/// write(2); the guard flushes what is held when the command returns.
pub fn init_logs(format: LogFormat, level: &str) -> Result<crate::logwriter::Flush, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| CliError::input(format!("--log-level {level:?}: {e}")))?;
    let (writer, flush) = crate::logwriter::spawn(std::io::stderr(), LOG_HOLD_BYTES)
        .map_err(|e| CliError::runtime(format!("cannot start the log writer thread: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let _ = match format {
        // (the lines of `.json().flatten_event(true).with_current_span(false)`, written
        // faster: see crate::jsonlog)
        LogFormat::Json => builder
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(crate::jsonlog::JsonLines::new())
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    Ok(flush)
}

/// Resolves on SIGTERM or SIGINT, logging `message` with the signal.
pub async fn shutdown_signal(message: &'static str) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process still stops on SIGKILL; wait forever.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "{message}"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "{message}"),
    }
}
