//! `scene-qr import-events`: follows, scans and unfollows recorded elsewhere (by an earlier
//! system, or generated to seed a benchmark), one push's fields per JSON line, stored as
//! the callback stores pushes.
//!
//! Each line is read by the callback's own interpretation ([`json_line`]) and its event
//! stored through the store's one writer, whose per-event write, duplicate check
//! included, is the callback's: importing a file twice stores nothing the second time,
//! and pushed and imported events are one set.
//!
//! Lines go in chunks, one transaction each, so memory stays bounded whatever the input's
//! size, and a server running on the same database gets the write lock for its pushes
//! between two chunks. SQLite hands the lock to no one in particular: a writer that
//! finds it taken tries again after a sleep (100 ms at most), and the server gives up
//! after 1.5 s. So each chunk is sized to hold the lock for about [`LOCK_HELD_FOR`]
//! (at the pace the chunks before it were written: the same code runs in a debug build
//! and on a busy machine), and the lock is then left free for [`LOCK_FREE_FOR`], longer
//! than any of those sleeps, while the next chunk is read. With `--server-stopped`
//! ([`Sharing::Alone`]) chunks are larger ([`ALONE_CHUNK`]) and follow each other at
//! once: a larger transaction writes each index page once for more events, which an
//! index keyed by user, filled in time order, needs.

mod json_line;
mod lines;

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use json_line::Reading;
use lines::{Line, Lines};

use crate::domain::AccountEvent;
use crate::store::{Store, Stored};

/// How long one chunk's transaction should hold the write lock: long enough to spread a
/// commit's cost over many events (its flush, and the index pages it writes, which the
/// more events share the larger it is), short enough that a push to a server on the
/// same database still gets the lock well within the server's 1.5 s.
pub const LOCK_HELD_FOR: Duration = Duration::from_millis(300);

/// How long the lock stays free after each chunk: longer than a waiting writer sleeps
/// between two tries, so that a server waiting for it is sure to get it.
pub const LOCK_FREE_FOR: Duration = Duration::from_millis(120);

/// Whether a server may be writing to the database during the import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// The lock is held about [`LOCK_HELD_FOR`] at a time, then left free for
    /// [`LOCK_FREE_FOR`].
    WithServer,
    /// No server runs on the database: chunks of [`ALONE_CHUNK`], one after the other. A
    /// server's push would wait for the lock longer than the server waits, and fail
    /// (WeChat sends it again).
    Alone,
}

/// Events in the first chunk, before any has been timed.
const FIRST_CHUNK: usize = 1_000;

/// Events in a chunk at most beside a server, whatever the speed: the memory an import
/// takes.
pub const MAX_CHUNK: usize = 20_000;

/// Events in a chunk with the server stopped: no one waits for the lock, and a larger
/// transaction writes each page of the index of users once for more events.
pub const ALONE_CHUNK: usize = 100_000;

/// Longest line read: the largest push body the callback reads. A longer line is skipped
/// without being held in memory, and rejected.
pub const MAX_LINE_BYTES: usize = crate::wechat::push::MAX_PUSH_BYTES;

/// Kinds of ignored lines told apart in the summary; the rest are counted together.
const MAX_IGNORED_KINDS: usize = 16;

/// What became of the lines read.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Lines read, blank ones left out.
    pub read: u64,
    /// Events stored by this import.
    pub stored: u64,
    /// Events that were already stored (pushed, imported before, or earlier in the input).
    pub duplicates: u64,
    /// Messages and events the callback acknowledges without storing (a `CLICK`, a text).
    pub ignored: u64,
    /// Lines that are not events, each reported with its number and why.
    pub rejected: u64,
    ignored_kinds: BTreeMap<String, u64>,
}

impl Summary {
    fn ignore(&mut self, kind: String) {
        self.ignored += 1;
        let kind = if self.ignored_kinds.len() < MAX_IGNORED_KINDS
            || self.ignored_kinds.contains_key(&kind)
        {
            kind
        } else {
            "other kinds".to_string()
        };
        *self.ignored_kinds.entry(kind).or_default() += 1;
    }

    fn count(&mut self, stored: &[Stored]) {
        for outcome in stored {
            match outcome {
                Stored::New => self.stored += 1,
                Stored::Duplicate => self.duplicates += 1,
            }
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read {}, stored {}, duplicates {}, ignored {}",
            self.read, self.stored, self.duplicates, self.ignored
        )?;
        if !self.ignored_kinds.is_empty() {
            let kinds: Vec<String> = self
                .ignored_kinds
                .iter()
                .map(|(kind, count)| format!("{kind} {count}"))
                .collect();
            write!(f, " ({})", kinds.join(", "))?;
        }
        write!(f, ", rejected {}", self.rejected)
    }
}

/// Why an import did not start, or stopped before the end of its input.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {}: {source}", .path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error("cannot open the database {url}: {reason}")]
    Database { url: String, reason: String },
    #[error("cannot read line {line}: {source}")]
    Read { line: u64, source: io::Error },
    #[error(
        "the database did not store lines {first} to {last}: {reason}. The lines before \
         them are stored; importing the same input again stores only what is missing"
    )]
    Write {
        first: u64,
        last: u64,
        reason: String,
    },
}

/// An import that ran: what it did, and why it stopped early if it did.
#[derive(Debug)]
pub struct Imported {
    pub summary: Summary,
    pub stopped: Option<ImportError>,
}

impl Imported {
    /// 0: every line stored, a duplicate or ignored; 1: some lines rejected, the others
    /// stored; 3: stopped before the end of the input (2, a bad argument, is for an
    /// import that could not start).
    pub fn exit_code(&self) -> u8 {
        match (&self.stopped, self.summary.rejected) {
            (Some(_), _) => 3,
            (None, 0) => 0,
            (None, _) => 1,
        }
    }
}

/// The input named on the command line: a file, or standard input for `-` or none.
pub fn open_input(file: Option<&Path>) -> Result<Box<dyn BufRead>, ImportError> {
    match file {
        None => Ok(Box::new(io::stdin().lock())),
        Some(path) if path == Path::new("-") => Ok(Box::new(io::stdin().lock())),
        Some(path) => {
            let open = |source| ImportError::Open {
                path: path.to_path_buf(),
                source,
            };
            let file = std::fs::File::open(path).map_err(open)?;
            if file.metadata().map_err(open)?.is_dir() {
                return Err(open(io::Error::from(io::ErrorKind::IsADirectory)));
            }
            Ok(Box::new(io::BufReader::with_capacity(256 * 1024, file)))
        }
    }
}

/// Imports every line of `input` into the database at `database_url` (created and
/// migrated when missing, as the server does; its statistics count days in `utc_offset`),
/// writing each rejected line's number and reason to `rejections`. Reading the input blocks the thread: this is a command's
/// whole work, not a server's.
pub async fn import_events(
    database_url: &str,
    utc_offset: time::UtcOffset,
    sharing: Sharing,
    input: impl BufRead,
    rejections: &mut impl Write,
) -> Result<Imported, ImportError> {
    let (store, writer) =
        Store::open(database_url, utc_offset)
            .await
            .map_err(|e| ImportError::Database {
                url: database_url.to_string(),
                reason: e.to_string(),
            })?;
    let imported = import_into(&store, sharing, input, rejections).await;
    writer.finish(Duration::from_secs(30)).await;
    store.close().await;
    Ok(imported)
}

async fn import_into(
    store: &Store,
    sharing: Sharing,
    input: impl BufRead,
    rejections: &mut impl Write,
) -> Imported {
    let mut lines = Lines::new(input, MAX_LINE_BYTES);
    let mut summary = Summary::default();
    let mut pace = Pace::new(sharing);
    loop {
        let (mut chunk, stop) = read_chunk(&mut lines, pace.size, &mut summary, rejections);
        // In the order of the unique index, user first: each insert then lands next to
        // the one before, where history in time order scatters them all over the index.
        // Stable, so that of two equal events the first read is the one stored.
        chunk.events.sort_by(|a, b| a.identity().cmp(&b.identity()));
        if !chunk.events.is_empty() {
            pace.wait_for_the_lock_to_have_been_free().await;
            let (count, started) = (chunk.events.len(), Instant::now());
            match store.store_events(chunk.events).await {
                Ok(stored) => summary.count(&stored),
                Err(e) => {
                    let stopped = Some(ImportError::Write {
                        first: chunk.first,
                        last: chunk.last,
                        reason: e.to_string(),
                    });
                    return Imported { summary, stopped };
                }
            }
            pace.written(count, started.elapsed());
        }
        match stop {
            None => {}
            Some(Stop::AtEnd) => {
                return Imported {
                    summary,
                    stopped: None,
                };
            }
            Some(Stop::Failed(e)) => {
                let stopped = Some(e);
                return Imported { summary, stopped };
            }
        }
    }
}

/// Events for one transaction, and the numbers of the lines they came from (for the
/// message if they are not stored).
struct Chunk {
    events: Vec<AccountEvent>,
    first: u64,
    last: u64,
}

/// Why a chunk is smaller than asked.
enum Stop {
    AtEnd,
    Failed(ImportError),
}

/// Reads lines until `size` events, the end of the input or a failure to read, counting
/// each line in `summary` and reporting each rejected one to `rejections` at once.
fn read_chunk(
    lines: &mut Lines<impl BufRead>,
    size: usize,
    summary: &mut Summary,
    rejections: &mut impl Write,
) -> (Chunk, Option<Stop>) {
    let mut chunk = Chunk {
        events: Vec::with_capacity(size),
        first: 0,
        last: 0,
    };
    let mut stop = None;
    while chunk.events.len() < size {
        let (number, line) = match lines.next_line() {
            Ok(Some(numbered)) => numbered,
            Ok(None) => {
                stop = Some(Stop::AtEnd);
                break;
            }
            Err(source) => {
                let line = lines.number() + 1;
                stop = Some(Stop::Failed(ImportError::Read { line, source }));
                break;
            }
        };
        let reading = match line {
            Line::Text(text) if text.trim_ascii().is_empty() => continue,
            Line::Text(text) => json_line::read(text),
            Line::TooLong => Reading::Rejected(format!(
                "longer than {} KiB, the largest push the callback reads",
                MAX_LINE_BYTES / 1024
            )),
        };
        summary.read += 1;
        match reading {
            Reading::Event(event) => {
                if chunk.events.is_empty() {
                    chunk.first = number;
                }
                chunk.last = number;
                chunk.events.push(event);
            }
            Reading::Ignored(kind) => summary.ignore(kind),
            Reading::Rejected(reason) => {
                summary.rejected += 1;
                let _ = writeln!(rejections, "line {number}: {reason}");
            }
        }
    }
    let _ = rejections.flush();
    (chunk, stop)
}

/// How large chunks are, and when the next one may take the lock.
struct Pace {
    sharing: Sharing,
    /// Events in the next chunk.
    size: usize,
    /// When the last chunk was committed.
    lock_freed: Option<Instant>,
}

impl Pace {
    fn new(sharing: Sharing) -> Self {
        let size = match sharing {
            Sharing::WithServer => FIRST_CHUNK,
            Sharing::Alone => ALONE_CHUNK,
        };
        Self {
            sharing,
            size,
            lock_freed: None,
        }
    }

    /// Returns once the lock has been free for [`LOCK_FREE_FOR`] (at once when alone).
    async fn wait_for_the_lock_to_have_been_free(&self) {
        if let Some(freed) = self.lock_freed {
            actix_web::rt::time::sleep(LOCK_FREE_FOR.saturating_sub(freed.elapsed())).await;
        }
    }

    /// `count` events were committed, in `took`.
    fn written(&mut self, count: usize, took: Duration) {
        if self.sharing == Sharing::WithServer {
            self.size = next_chunk(self.size, count, took);
            self.lock_freed = Some(Instant::now());
        }
    }
}

/// The size of the next chunk: as many events as the last ones' pace writes within
/// [`LOCK_HELD_FOR`], growing at most twofold a step (a chunk cut short by the end of the
/// input, or slowed by a wait for the lock, says little).
fn next_chunk(chunk: usize, written: usize, took: Duration) -> usize {
    let per_event = took.as_secs_f64() / written.max(1) as f64;
    let fitting = LOCK_HELD_FOR.as_secs_f64() / per_event.max(1e-9);
    (fitting as usize).clamp(1, (chunk * 2).min(MAX_CHUNK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_grow_towards_the_lock_time_and_shrink_at_once_when_writing_slows() {
        let ms = Duration::from_millis;

        assert_eq!(next_chunk(1_000, 1_000, ms(40)), 2_000);
        assert_eq!(next_chunk(16_000, 16_000, ms(200)), MAX_CHUNK);
        assert_eq!(next_chunk(8_000, 8_000, ms(600)), 4_000);
        assert_eq!(next_chunk(1_000, 1_000, ms(30_000)), 10);
        assert_eq!(next_chunk(1_000, 0, Duration::ZERO), 2_000);
    }
}
