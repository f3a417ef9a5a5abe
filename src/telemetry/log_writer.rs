//! Where log lines go: one buffer, in the order the lines were logged, written to
//! standard error in batches by a thread of its own.
//!
//! A `write` per line on the request's thread was a large share of a cached page's time
//! under load, and handing each line to a writer thread through a channel
//! (tracing-appender) cost an allocation, a message and the writer's work per line (the
//! figures are in bench/README.md). Here logging a line is a copy into the buffer under a
//! lock. The writer thread sleeps until there is something to write,
//! writes all of it at once, then gives the next lines 5 ms to gather: under load it
//! writes about two hundred times a second, however many lines there are (with 1 ms, its
//! own CPU time per request was three times as much), and a line reaches standard error
//! within a few milliseconds.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Time the writer gives lines to gather after writing a batch.
const GATHER: Duration = Duration::from_millis(5);
/// Pending bytes at which logging waits for the writer: standard error is not keeping up,
/// and lines must be neither dropped nor held in unbounded memory.
const MAX_PENDING: usize = 4 * 1024 * 1024;
/// How long stopping waits for the writer: standard error may be stuck (a full pipe), and
/// the process must still exit.
const STOP_WAIT: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    /// The writer waits for lines: the next line must wake it.
    writer_waiting: bool,
    stopping: bool,
    /// The writer has written everything and exited: later lines are written directly.
    finished: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Lines to write, or the writer is asked to stop.
    lines_ready: Condvar,
    /// The writer took the pending lines, or finished.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A thread that panicked while holding the lock left whole lines or nothing.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The end log lines are written to (env_logger's target).
#[derive(Clone)]
pub struct LogSink(Arc<Shared>);

impl Write for LogSink {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let mut pending = self.0.lock();
        while pending.lines.len() >= MAX_PENDING && !pending.finished {
            pending = self
                .0
                .room
                .wait(pending)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if pending.finished {
            drop(pending);
            return io::stderr().lock().write_all(line).map(|()| line.len());
        }
        pending.lines.extend_from_slice(line);
        if std::mem::take(&mut pending.writer_waiting) {
            drop(pending);
            self.0.lines_ready.notify_one();
        }
        Ok(line.len())
    }

    /// env_logger flushes after every line: the writer writes batches instead.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The writer thread. Dropping this writes out every pending line and stops it (waiting
/// at most two seconds for standard error).
pub struct LogWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    pub fn start() -> io::Result<(LogSink, Self)> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || write_batches(&shared))?
        };
        Ok((
            LogSink(shared.clone()),
            Self {
                shared,
                thread: Some(thread),
            },
        ))
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        let mut pending = self.shared.lock();
        pending.stopping = true;
        self.shared.lines_ready.notify_one();
        let (pending, _) = self
            .shared
            .room
            .wait_timeout_while(pending, STOP_WAIT, |pending| !pending.finished)
            .unwrap_or_else(PoisonError::into_inner);
        let finished = pending.finished;
        drop(pending);
        // Not joined when stuck: the process exits with it.
        if let (true, Some(thread)) = (finished, self.thread.take()) {
            let _ = thread.join();
        }
    }
}

fn write_batches(shared: &Shared) {
    let mut batch = Vec::new();
    loop {
        {
            let mut pending = shared.lock();
            while pending.lines.is_empty() && !pending.stopping {
                pending.writer_waiting = true;
                pending = shared
                    .lines_ready
                    .wait(pending)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if pending.lines.is_empty() {
                pending.finished = true;
                shared.room.notify_all();
                return;
            }
            std::mem::swap(&mut pending.lines, &mut batch);
        }
        shared.room.notify_all();
        // A batch that cannot be written is dropped: there is nowhere to report it, and
        // keeping it would stop all logging behind it.
        let _ = io::stderr().lock().write_all(&batch);
        batch.clear();
        std::thread::sleep(GATHER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_kept_in_order_until_the_writer_takes_them() {
        let shared = Arc::new(Shared::default());
        let mut sink = LogSink(shared.clone());
        sink.write_all(b"one\n").unwrap();
        sink.write_all(b"two\n").unwrap();
        sink.flush().unwrap();
        assert_eq!(shared.lock().lines, b"one\ntwo\n");
    }

    /// Waits (at most five seconds) until `done` holds for the pending state.
    fn wait_until(shared: &Shared, done: impl Fn(&Pending) -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if done(&shared.lock()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn a_waiting_writer_wakes_for_the_next_line_and_takes_it() {
        let (mut sink, writer) = LogWriter::start().unwrap();
        let shared = writer.shared.clone();
        assert!(
            wait_until(&shared, |p| p.writer_waiting),
            "the writer waits"
        );
        sink.write_all(b"a line from the log writer's test\n")
            .unwrap();
        assert!(
            wait_until(&shared, |p| p.lines.is_empty() && p.writer_waiting),
            "the writer took the line and waits again"
        );
    }

    #[test]
    fn stopping_writes_out_what_is_pending_and_later_lines_go_straight_out() {
        let (mut sink, writer) = LogWriter::start().unwrap();
        let shared = writer.shared.clone();
        sink.write_all(b"a line from the log writer's test\n")
            .unwrap();
        drop(writer);
        assert!(shared.lock().finished, "the writer finished");
        assert!(shared.lock().lines.is_empty(), "nothing was left behind");
        sink.write_all(b"a late line from the log writer's test\n")
            .unwrap();
        assert!(shared.lock().lines.is_empty(), "a late line is not kept");
    }
}
