//! The background writer of the long-running commands' log lines. Each line is appended to
//! one shared buffer under a lock; a thread takes the buffer as a whole and writes it to
//! stderr. Under load it gathers the lines of a short while into a few large writes, and
//! the threads that log never wake it: only the first line after a quiet spell does. An
//! idle writer sleeps until a line comes.
//!
//! What it keeps of a queue of lines: the buffer drops no line (a full buffer makes the
//! logging thread wait for room), each thread's lines keep their order, and each write is
//! whole events of at most `PIPE_BUF` bytes, so another writer of the same pipe (a panic
//! message) never lands inside one. An event longer than that goes alone, and may take
//! more than one write(2). A write that fails loses its batch: there is nowhere left to
//! report it (a full non-blocking stderr is waited for, not a failure).
//!
//! The flush at exit is bounded (1 s) once the logging threads have stopped; a thread that
//! waits for room while stderr is stalled waits until it takes lines again.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tracing_subscriber::fmt::MakeWriter;

/// How long the writer lets lines gather before it takes them. A line reaches stderr
/// within this and the writes queued before it (under load: the batch being written, then
/// this, then its own).
pub const GATHER: Duration = Duration::from_millis(2);

/// The most one write(2) takes: PIPE_BUF, so that a write to a pipe (a container runtime's
/// log pipe) is never interleaved with another writer's. A longer line is written alone.
pub const WRITE_BYTES: usize = 4096;

/// The capacity a buffer keeps after a burst.
const KEEP_BYTES: usize = 64 * 1024;

/// How long dropping the [`Flush`] guard waits for the lines still held to be written
/// (stderr may be a pipe no one reads any more).
const FLUSH_WAIT: Duration = Duration::from_secs(1);

/// The handle the log subscriber writes through ([`MakeWriter`]).
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Flushes the lines still held when dropped, and stops the writer thread.
pub struct Flush {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// The writer waits here for the first line of a batch, or for the stop.
    lines: Condvar,
    /// Loggers wait here for room, and the flush for the writer's end.
    room: Condvar,
    /// The most the buffer holds before a logger waits (a single longer line is taken alone).
    limit: usize,
}

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// The writer sleeps on `lines`: the next line wakes it.
    writer_idle: bool,
    /// Loggers waiting on `room`.
    waiting: usize,
    stopping: bool,
    done: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // (a panic while the lock was held leaves bytes, not broken invariants)
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn append(&self, line: &[u8]) {
        let mut st = self.lock();
        while !st.buf.is_empty() && st.buf.len() + line.len() > self.limit && !st.done {
            st.waiting += 1;
            st = self.room.wait(st).unwrap_or_else(PoisonError::into_inner);
            st.waiting -= 1;
        }
        if st.done {
            // (after the flush: written at once, as an unbuffered stderr would)
            drop(st);
            let _ = std::io::stderr().write_all(line);
            return;
        }
        st.buf.extend_from_slice(line);
        self.wake_writer(st);
    }

    /// Wakes the writer where it sleeps for want of lines; `st` is the state just changed
    /// (a line added, the stop asked), released before the wake.
    fn wake_writer(&self, mut st: MutexGuard<'_, State>) {
        let wake = std::mem::take(&mut st.writer_idle);
        drop(st);
        if wake {
            self.lines.notify_one();
        }
    }
}

/// Starts the writer thread over `sink`, holding at most `limit` bytes of lines.
pub fn spawn<W: Write + Send + 'static>(
    sink: W,
    limit: usize,
) -> std::io::Result<(LogWriter, Flush)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        lines: Condvar::new(),
        room: Condvar::new(),
        limit,
    });
    let worker = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("log-writer".into())
        .spawn(move || run(&worker, sink))?;
    Ok((
        LogWriter {
            shared: Arc::clone(&shared),
        },
        Flush { shared },
    ))
}

fn run<W: Write>(shared: &Shared, mut sink: W) {
    let mut taken = Vec::new();
    loop {
        let mut st = shared.lock();
        while st.buf.is_empty() && !st.stopping {
            st.writer_idle = true;
            st = shared
                .lines
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        st.writer_idle = false;
        if st.buf.is_empty() {
            // stopping, and all written
            st.done = true;
            drop(st);
            shared.room.notify_all();
            return;
        }
        // Let the lines of the next moment join this batch, unless the buffer is filling or
        // the command is ending.
        if !st.stopping && st.buf.len() < shared.limit / 2 {
            drop(st);
            std::thread::sleep(GATHER);
            st = shared.lock();
        }
        std::mem::swap(&mut st.buf, &mut taken);
        let wake = st.waiting > 0;
        drop(st);
        if wake {
            shared.room.notify_all();
        }
        // (a failed write loses these lines: there is nowhere left to report it)
        let _ = write_lines(&mut sink, &taken);
        taken.clear();
        // (a burst's buffer is not kept for ever: the steady state takes a few KiB)
        taken.shrink_to(KEEP_BYTES);
    }
}

/// Writes `bytes` (whole lines) in writes of whole lines of at most [`WRITE_BYTES`] each; a
/// longer line goes alone.
fn write_lines<W: Write>(sink: &mut W, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let end = match bytes.get(..WRITE_BYTES) {
            None => bytes.len(),
            Some(head) => match head.iter().rposition(|&b| b == b'\n') {
                Some(nl) => nl + 1,
                // a line longer than a write: the whole line
                None => bytes
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |nl| nl + 1),
            },
        };
        write_waiting(sink, &bytes[..end])?;
        bytes = &bytes[end..];
    }
    sink.flush()
}

/// `write_all`, waiting where the sink is full and non-blocking (a stderr inherited in
/// non-blocking mode) instead of failing.
fn write_waiting<W: Write>(sink: &mut W, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        match sink.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl Drop for Flush {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.stopping = true;
        self.shared.wake_writer(st);
        let deadline = Instant::now() + FLUSH_WAIT;
        let mut st = self.shared.lock();
        while !st.done {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return;
            };
            st = self
                .shared
                .room
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// What one event's line is written through: the formatted line comes in one `write`.
pub struct Line<'a> {
    shared: &'a Shared,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A sink recording every write, which can be held shut, and made to fail or to say
    /// it would block for its next writes.
    #[derive(Clone, Default)]
    struct Sink {
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        gate: Arc<(Mutex<bool>, Condvar)>,
        /// (writes to fail, writes to answer WouldBlock)
        trouble: Arc<Mutex<(usize, usize)>>,
    }

    impl Sink {
        fn shut(&self) {
            *self.gate.0.lock().unwrap() = true;
        }
        fn open(&self) {
            *self.gate.0.lock().unwrap() = false;
            self.gate.1.notify_all();
        }
        fn text(&self) -> String {
            String::from_utf8(self.writes.lock().unwrap().concat()).unwrap()
        }
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (shut, cv) = &*self.gate;
            let mut s = shut.lock().unwrap();
            while *s {
                s = cv.wait(s).unwrap();
            }
            let mut trouble = self.trouble.lock().unwrap();
            if trouble.0 > 0 {
                trouble.0 -= 1;
                return Err(std::io::Error::other("the sink fails"));
            }
            if trouble.1 > 0 {
                trouble.1 -= 1;
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            self.writes.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log(w: &LogWriter, line: &str) {
        w.make_writer().write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn every_line_arrives_whole_and_in_its_threads_order() {
        let sink = Sink::default();
        let (w, flush) = spawn(sink.clone(), 64 * 1024).unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let w = w.clone();
                s.spawn(move || {
                    for i in 0..3000 {
                        log(
                            &w,
                            &format!(
                                "{{\"t\":{t},\"i\":{i},\"pad\":\"{}\"}}\n",
                                "x".repeat(i % 300)
                            ),
                        );
                    }
                });
            }
        });
        drop(flush);
        let text = sink.text();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("a whole line");
            let t = v["t"].as_u64().unwrap() as usize;
            assert_eq!(
                v["i"].as_u64().unwrap() as usize,
                next[t],
                "thread {t} in order"
            );
            next[t] += 1;
        }
        assert_eq!(next, [3000; 4], "no line lost");
    }

    #[test]
    fn writes_are_whole_lines_of_at_most_pipe_buf_and_a_long_line_goes_alone() {
        let sink = Sink::default();
        let (w, flush) = spawn(sink.clone(), 1 << 20).unwrap();
        sink.shut();
        // (the first line is taken after the writer's gathering and waits in the shut
        // sink; the rest gather behind it)
        log(&w, "first\n");
        for i in 0..500 {
            log(&w, &format!("line {i} {}\n", "y".repeat(i % 97)));
        }
        let long = format!("{}\n", "z".repeat(3 * WRITE_BYTES));
        log(&w, &long);
        log(&w, "after\n");
        sink.open();
        drop(flush);
        let writes = sink.writes.lock().unwrap().clone();
        assert!(writes.len() > 2, "the lines were written in several writes");
        for wr in &writes {
            assert_eq!(wr.last(), Some(&b'\n'), "each write ends at a line's end");
            if wr.len() > WRITE_BYTES {
                assert_eq!(
                    wr,
                    long.as_bytes(),
                    "only a longer line goes over PIPE_BUF, alone"
                );
            }
        }
        let text = sink.text();
        assert!(text.starts_with("first\nline 0 \n") && text.ends_with(&format!("{long}after\n")));
        assert_eq!(text.lines().count(), 503);
    }

    #[test]
    fn a_full_buffer_makes_loggers_wait_and_loses_nothing() {
        let sink = Sink::default();
        let (w, flush) = spawn(sink.clone(), 1024).unwrap();
        sink.shut();
        let logger = {
            let w = w.clone();
            std::thread::spawn(move || {
                for i in 0..400 {
                    log(&w, &format!("waiting line {i:04}\n"));
                }
            })
        };
        // The logger fills the buffer and waits for room while the sink is shut.
        let deadline = Instant::now() + Duration::from_secs(10);
        while w.shared.lock().waiting == 0 {
            assert!(
                Instant::now() < deadline,
                "the logger never waited for room"
            );
            std::thread::yield_now();
        }
        assert!(
            w.shared.lock().buf.len() <= 1024,
            "the buffer keeps its limit"
        );
        sink.open();
        logger.join().unwrap();
        drop(flush);
        let text = sink.text();
        let want: String = (0..400).map(|i| format!("waiting line {i:04}\n")).collect();
        assert_eq!(text, want);
    }

    #[test]
    fn the_flush_writes_what_is_held_and_gives_up_on_a_stuck_sink() {
        let sink = Sink::default();
        let (w, flush) = spawn(sink.clone(), 1 << 16).unwrap();
        log(&w, "held\n");
        drop(flush);
        assert_eq!(sink.text(), "held\n", "written before the flush returns");
        drop(w);

        let stuck = Sink::default();
        stuck.shut();
        let (w, flush) = spawn(stuck.clone(), 1 << 16).unwrap();
        log(&w, "never written\n");
        let started = Instant::now();
        drop(flush);
        let took = started.elapsed();
        assert!(
            took >= FLUSH_WAIT && took < FLUSH_WAIT * 5,
            "the flush waits its second, then gives up: {took:?}"
        );
        stuck.open();
    }

    #[test]
    fn lines_that_trickle_in_are_gathered_into_few_writes() {
        let sink = Sink::default();
        let (w, flush) = spawn(sink.clone(), 1 << 20).unwrap();
        // A line every 100 µs for 20 ms: a writer that took each line as it came would
        // write about 200 times; one that gathers for 2 ms, about 10.
        let start = Instant::now();
        for i in 0..200u32 {
            let due = start + Duration::from_micros(100) * i;
            while Instant::now() < due {
                std::hint::spin_loop();
            }
            log(&w, &format!("{{\"i\":{i}}}\n"));
        }
        let took = start.elapsed();
        drop(flush);
        assert_eq!(sink.text().lines().count(), 200);
        let writes = sink.writes.lock().unwrap().len();
        assert!(writes < 50, "{writes} writes for 200 lines over {took:?}");
    }

    #[test]
    fn a_failed_write_loses_its_batch_only_and_a_full_sink_is_waited_for() {
        let sink = Sink::default();
        let (w, flush) = spawn(sink.clone(), 1 << 16).unwrap();
        *sink.trouble.lock().unwrap() = (1, 0);
        log(&w, "lost with the failed write\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.trouble.lock().unwrap().0 > 0 {
            assert!(Instant::now() < deadline, "the writer never wrote");
            std::thread::yield_now();
        }
        *sink.trouble.lock().unwrap() = (0, 3);
        log(&w, "after a failure\n");
        log(&w, "and a full sink\n");
        drop(flush);
        assert_eq!(sink.text(), "after a failure\nand a full sink\n");
        assert_eq!(
            sink.trouble.lock().unwrap().1,
            0,
            "WouldBlock was answered thrice"
        );
    }
}
