//! What the long-running commands (`serve`, `label-nodes`) share: structured logs on stderr
//! through a background writer, and stopping on SIGTERM or SIGINT.

use crate::CliError;
use clap::ValueEnum;

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Log lines the background writer holds while stderr is slow to take them: at the 25,000
/// reviews/s a 2-core server plans, over half a second of lines (a container runtime's log
/// pipe stalling for a moment), in 512 KiB. The writer's default (128,000 lines) is a
/// 4 MiB queue whose every slot is written at start, so it was 4 MiB of RSS before the
/// first line. When the queue is full, a line waits for room: none is dropped.
const LOG_QUEUE_LINES: usize = 16_384;

/// What the background writer gathers of the lines queued at once before one write(2): under
/// load, several lines per write instead of one each (the writer flushes whenever its queue
/// is empty, so a line never waits for others). PIPE_BUF: a write of up to 4096 bytes to a
/// pipe (a container runtime's log pipe) is never interleaved with another writer's, so
/// whole lines stay whole.
const LOG_WRITE_BYTES: usize = 4096;

/// JSON (or text) lines on stderr through a background writer, so no request waits on a
/// write(2); the guard flushes what is queued when the command returns.
pub fn init_logs(
    format: LogFormat,
    level: &str,
) -> Result<tracing_appender::non_blocking::WorkerGuard, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .map_err(|e| CliError::input(format!("--log-level {level:?}: {e}")))?;
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(std::io::BufWriter::with_capacity(
            LOG_WRITE_BYTES,
            std::io::stderr(),
        ));
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
    Ok(guard)
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
