//! `scene-qr import-events`: follows, scans and unfollows recorded elsewhere (by an earlier
//! system, or generated to seed a benchmark), one push's fields per JSON line, stored as
//! the callback stores pushes.
//!
//! Each line is read by the callback's own interpretation ([`json_line`]) and its event
//! stored through the store's one writer, with the callback's duplicate check (the unique
//! key of user, time, event and key): importing a file twice stores nothing the second
//! time, and pushed and imported events are one set. Lines are read and interpreted on a
//! thread of their own ([`LineReader`]), a chunk at a time, while the runtime's thread
//! hands chunks to the writer, whose SQLite connection works on a third.
//!
//! Lines go in chunks, one transaction each, so memory stays bounded whatever the input's
//! size, and a server running on the same database gets the write lock for its pushes
//! between two chunks. SQLite hands the lock to no one in particular: a writer that
//! finds it taken tries again after a sleep (100 ms at most), and the server gives up
//! after 2.5 s. So each chunk is sized to hold the lock for about [`LOCK_HELD_FOR`]
//! (at the pace the chunks before it were written: the same code runs in a debug build
//! and on a busy machine), and the lock is then left free for [`LOCK_FREE_FOR`], longer
//! than any of those sleeps, while the next chunk is read. Beside a server, each chunk's
//! events are counted in the statistics in its own transaction, as pushes are, so that
//! the server's pages count every event committed.
//!
//! With `--server-stopped` ([`Sharing::Alone`]) chunks are larger ([`ALONE_CHUNK`]), the
//! next one is read while one is written, and an import that brings at least as many
//! events as are stored ([`Counting::AtTheEnd`], every import into an empty database)
//! stores raw events only: counting them as they go (the follows of every user touched,
//! the day counts, the sets of users) cost more than computing every aggregate once at
//! the end from all raw events, with the rebuild of `scene-qr stats rebuild`. Each of its
//! chunks' transactions also deletes the offset row of `stats_meta`, the mark that makes
//! any start compute the aggregates again; the rebuild at the end writes it back. An
//! import killed at any point thus leaves raw events whose statistics are recomputed
//! before anything is served from them. A smaller import into a larger database counts
//! its events as it goes, as beside a server.

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
/// same database still gets the lock well within the server's 2.5 s.
pub const LOCK_HELD_FOR: Duration = Duration::from_millis(250);

/// How long the lock stays free after each chunk: more than twice as long as a waiting
/// writer sleeps between two tries (100 ms), so that a server waiting for it is sure to
/// get it even when its thread is woken late on a busy machine (with 120 ms, one push in
/// a few hundred beside an import in the tests waited out the server's whole wait).
pub const LOCK_FREE_FOR: Duration = Duration::from_millis(250);

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
/// transaction writes each page of the index of users once for more events (at a million
/// events, 250,000 a chunk stored the raw events in a fifth less time than 100,000). Two
/// chunks are held at a time, one read and one written: the import of a million events
/// peaked at 260 MB.
pub const ALONE_CHUNK: usize = 250_000;

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
        self.add_ignored_kind(kind, 1);
    }

    /// Counts `count` lines of `kind` ignored, among the kinds told apart if there is room.
    fn add_ignored_kind(&mut self, kind: String, count: u64) {
        let kind = if self.ignored_kinds.len() < MAX_IGNORED_KINDS
            || self.ignored_kinds.contains_key(&kind)
        {
            kind
        } else {
            "other kinds".to_string()
        };
        *self.ignored_kinds.entry(kind).or_default() += count;
    }

    /// Adds the counts of `other`, the lines of a later chunk.
    fn merge(&mut self, other: Summary) {
        self.read += other.read;
        self.stored += other.stored;
        self.duplicates += other.duplicates;
        self.rejected += other.rejected;
        self.ignored += other.ignored;
        for (kind, count) in other.ignored_kinds {
            self.add_ignored_kind(kind, count);
        }
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
    #[error("cannot open the database DATABASE_URL={url}: {reason}")]
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
    #[error(
        "every line is stored, but computing the statistics again failed: {reason}. They \
         are computed at the next start of scene-qr, or by `scene-qr stats rebuild`"
    )]
    Statistics { reason: String },
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

/// The input named on the command line, and its size when it is a file.
pub struct Input {
    reader: Box<dyn BufRead + Send>,
    /// In bytes; `None` for standard input.
    size: Option<u64>,
}

/// The input named on the command line: a file, or standard input for `-` or none.
pub fn open_input(file: Option<&Path>) -> Result<Input, ImportError> {
    // Standard input unlocked (a lock is not `Send`), behind a buffer of its own: it is
    // read on the thread that reads the lines.
    let stdin = || Input {
        reader: Box::new(io::BufReader::with_capacity(256 * 1024, io::stdin())),
        size: None,
    };
    match file {
        None => Ok(stdin()),
        Some(path) if path == Path::new("-") => Ok(stdin()),
        Some(path) => {
            let open = |source| ImportError::Open {
                path: path.to_path_buf(),
                source,
            };
            let file = std::fs::File::open(path).map_err(open)?;
            let metadata = file.metadata().map_err(open)?;
            if metadata.is_dir() {
                return Err(open(io::Error::from(io::ErrorKind::IsADirectory)));
            }
            Ok(Input {
                reader: Box::new(io::BufReader::with_capacity(256 * 1024, file)),
                size: metadata.is_file().then_some(metadata.len()),
            })
        }
    }
}

/// Imports every line of `input` into the database at `database_url` (created and
/// migrated when missing, as the server does; its statistics count days in `utc_offset`),
/// writing each rejected line's number and reason to `rejections`.
pub async fn import_events(
    database_url: &str,
    utc_offset: time::UtcOffset,
    sharing: Sharing,
    input: Input,
    rejections: &mut impl Write,
) -> Result<Imported, ImportError> {
    let (store, writer) =
        Store::open(database_url, utc_offset)
            .await
            .map_err(|e| ImportError::Database {
                url: crate::store::redacted_url(database_url),
                reason: e.to_string(),
            })?;
    let imported = import_into(&store, sharing, input, rejections).await;
    writer.finish(Duration::from_secs(30)).await;
    store.close().await;
    Ok(imported)
}

/// How the statistics take in the imported events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counting {
    /// Each chunk's events counted in its own transaction, as pushes are.
    AsStored,
    /// Raw events only, then every aggregate computed again from all of them at the end
    /// ([`Sharing::Alone`], and an import at least as large as what is stored).
    AtTheEnd,
}

async fn import_into(
    store: &Store,
    sharing: Sharing,
    input: Input,
    rejections: &mut impl Write,
) -> Imported {
    let size = input.size;
    let mut reader = LineReader::start(input.reader);
    let mut summary = Summary::default();
    let mut pace = Pace::new(sharing);
    let mut counting = None;
    // Whether raw events went in uncounted, so that the statistics must be computed.
    let mut uncounted = false;
    reader.request(pace.size);
    let stopped = loop {
        let Some(read) = reader.next().await else {
            let source = io::Error::other("the thread reading the lines stopped");
            let line = summary.read + 1;
            break Some(ImportError::Read { line, source });
        };
        for rejection in &read.rejections {
            let _ = writeln!(rejections, "{rejection}");
        }
        let _ = rejections.flush();
        summary.merge(read.summary);
        let ReadChunk {
            mut chunk, stop, ..
        } = read;
        let counting = *counting
            .get_or_insert(choose_counting(store, sharing, size, read.bytes, &chunk, &stop).await);
        // Alone, the next chunk is read while this one is written: the two take a core
        // each. Beside a server, it is read while the lock is left free, at the size this
        // chunk's pace calls for.
        if stop.is_none() && sharing == Sharing::Alone {
            reader.request(pace.size);
        }
        // In the order of the unique index, user first: each insert then lands next to
        // the one before, where history in time order scatters them all over the index.
        // Stable, so that of two equal events the first read is the one stored.
        chunk.events.sort_by(|a, b| a.identity().cmp(&b.identity()));
        if !chunk.events.is_empty() {
            pace.wait_for_the_lock_to_have_been_free().await;
            let (count, started) = (chunk.events.len(), Instant::now());
            let written = match counting {
                Counting::AsStored => store.store_events(chunk.events).await.map(|stored| {
                    summary.count(&stored);
                }),
                Counting::AtTheEnd => {
                    store
                        .store_uncounted_events(chunk.events)
                        .await
                        .map(|added| {
                            // Not before: a chunk that failed was rolled back with its
                            // mark on the statistics.
                            uncounted = true;
                            summary.stored += added;
                            summary.duplicates += count as u64 - added;
                        })
                }
            };
            if let Err(e) = written {
                break Some(ImportError::Write {
                    first: chunk.first,
                    last: chunk.last,
                    reason: e.to_string(),
                });
            }
            pace.written(count, started.elapsed());
        }
        match stop {
            None if sharing == Sharing::WithServer => reader.request(pace.size),
            None => {}
            Some(Stop::AtEnd) => break None,
            Some(Stop::Failed(e)) => break Some(e),
        }
    };
    let stopped = match stopped {
        // Whatever stopped the import, the events it stored are to be counted; if this
        // fails too, the next start counts them (their offset row is missing).
        _ if uncounted => match (store.rebuild_statistics().await, stopped) {
            (_, Some(first)) => Some(first),
            (Err(e), None) => Some(ImportError::Statistics {
                reason: e.to_string(),
            }),
            (Ok(()), None) => None,
        },
        stopped => stopped,
    };
    Imported { summary, stopped }
}

/// How many stored events make recounting everything at the end cheaper than counting
/// as it goes: recounting costs about the same per event stored as counting an imported
/// one does (measured at a million events, bench/README.md), so the import recounts when
/// it brings at least as many events as are stored.
async fn choose_counting(
    store: &Store,
    sharing: Sharing,
    input_size: Option<u64>,
    bytes_read: u64,
    first: &Chunk,
    stop: &Option<Stop>,
) -> Counting {
    if sharing == Sharing::WithServer {
        // A server's pages must count every event it has committed.
        return Counting::AsStored;
    }
    let expected = match (stop, input_size) {
        (Some(_), _) => first.events.len() as u64,
        // At the first chunk's bytes per event.
        (None, Some(size)) => (first.events.len() as u64).saturating_mul(size) / bytes_read.max(1),
        // Standard input, of unknown length: counted as it goes, which never costs more
        // than the import itself.
        (None, None) => return Counting::AsStored,
    };
    match store.stored_events_estimate().await {
        Ok(stored) if expected >= stored => Counting::AtTheEnd,
        _ => Counting::AsStored,
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

/// One chunk as the reading thread hands it over, with what its lines counted.
struct ReadChunk {
    chunk: Chunk,
    stop: Option<Stop>,
    /// The lines' counts (read, ignored, rejected) for this chunk alone.
    summary: Summary,
    /// Each rejected line's number and reason, to report.
    rejections: Vec<String>,
    /// Bytes of input read so far, this chunk's included.
    bytes: u64,
}

/// Reads lines into events on a thread of its own, a chunk at a time when asked: reading
/// and interpreting JSON takes as long as writing the events, and both cores can work.
struct LineReader {
    requests: std::sync::mpsc::Sender<usize>,
    chunks: tokio::sync::mpsc::Receiver<ReadChunk>,
}

impl LineReader {
    fn start(input: Box<dyn BufRead + Send>) -> Self {
        let (requests, asked) = std::sync::mpsc::channel::<usize>();
        let (send, chunks) = tokio::sync::mpsc::channel(1);
        std::thread::spawn(move || {
            let mut lines = Lines::new(input, MAX_LINE_BYTES);
            // Ends when the importer stops asking (it drops its end of the channel).
            for size in asked {
                let read = read_chunk(&mut lines, size);
                let last = read.stop.is_some();
                if send.blocking_send(read).is_err() || last {
                    break;
                }
            }
        });
        Self { requests, chunks }
    }

    /// Asks for the next chunk, of `size` events at most.
    fn request(&self, size: usize) {
        // A reader that is gone shows as `None` from `next`.
        let _ = self.requests.send(size);
    }

    /// The chunk asked for; `None` if the reading thread is gone.
    async fn next(&mut self) -> Option<ReadChunk> {
        self.chunks.recv().await
    }
}

/// Rejected lines held at most before their chunk is handed over, so that a long input
/// of bad lines is reported as it is read and does not fill the memory.
const MAX_REJECTIONS_HELD: usize = 1_000;

/// Reads lines until `size` events, the end of the input or a failure to read, counting
/// each line.
fn read_chunk(lines: &mut Lines<impl BufRead>, size: usize) -> ReadChunk {
    let mut read = ReadChunk {
        chunk: Chunk {
            events: Vec::with_capacity(size),
            first: 0,
            last: 0,
        },
        stop: None,
        summary: Summary::default(),
        rejections: Vec::new(),
        bytes: 0,
    };
    let (chunk, summary) = (&mut read.chunk, &mut read.summary);
    while chunk.events.len() < size && read.rejections.len() < MAX_REJECTIONS_HELD {
        let (number, line) = match lines.next_line() {
            Ok(Some(numbered)) => numbered,
            Ok(None) => {
                read.stop = Some(Stop::AtEnd);
                break;
            }
            Err(source) => {
                let line = lines.number() + 1;
                read.stop = Some(Stop::Failed(ImportError::Read { line, source }));
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
                read.rejections.push(format!("line {number}: {reason}"));
            }
        }
    }
    read.bytes = lines.bytes();
    read
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
        assert_eq!(next_chunk(8_000, 8_000, ms(600)), 3_333);
        assert_eq!(next_chunk(1_000, 1_000, ms(30_000)), 8);
        assert_eq!(next_chunk(1_000, 0, Duration::ZERO), 2_000);
    }
}
