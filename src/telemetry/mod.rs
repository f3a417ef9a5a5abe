//! Logging set-up, Prometheus metrics, and the middleware that logs and counts every
//! request.

mod log_writer;
pub mod metric_names;
mod metrics_export;
mod observe;

pub use metrics_export::{metrics_handle, worker};
pub use observe::ObserveRequests;

use log_writer::LogWriter;

use std::cell::RefCell;
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter};
use time::OffsetDateTime;
use time::macros::format_description;

/// Keeps the log writer running; dropping it writes out what is still pending.
pub struct LogGuard(#[allow(dead_code)] Option<LogWriter>);

/// Starts env_logger with `filter` (RUST_LOG syntax), writing to standard error through
/// the log writer (see `telemetry/log_writer.rs`), which writes lines in batches.
///
/// The HTTP client crates are held at `info` whatever the filter says: at `trace` they may
/// print a request head, and the query of a WeChat request carries the access token or
/// the AppSecret, which must never reach a log.
pub fn init_logging(filter: &str) -> LogGuard {
    let (target, writer) = match LogWriter::start() {
        Ok((sink, writer)) => (env_logger::Target::Pipe(Box::new(sink)), Some(writer)),
        Err(e) => {
            eprintln!("scene-qr: no log writer thread ({e}); each line is written as logged");
            (env_logger::Target::Stderr, None)
        }
    };
    let _ = env_logger::Builder::new()
        .target(target)
        .parse_filters(filter)
        .filter_module("awc", LevelFilter::Info)
        .filter_module("h2", LevelFilter::Info)
        .format(|out, record| {
            // `[2026-11-21T03:08:18.095Z INFO  scene_qr::startup] message`, as env_logger's
            // default, assembled here and written to env_logger's buffer with one call: its
            // general formatting was a fifth of the cost of a request's line, and each piece
            // written to its buffer costs a borrow and a capacity check.
            LINE.with(|line| match line.try_borrow_mut() {
                Ok(mut line) => write_record(&mut line, out, record),
                // A message that logs while it is being formatted.
                Err(_) => write_record(&mut Vec::new(), out, record),
            })
        })
        .try_init();
    LogGuard(writer)
}

/// Assembles `record`'s line in `line`, then writes it to `out`.
fn write_record(line: &mut Vec<u8>, out: &mut impl Write, record: &log::Record) -> io::Result<()> {
    line.clear();
    line.push(b'[');
    write_timestamp(line)?;
    line.push(b' ');
    line.extend_from_slice(level_text(record.level()).as_bytes());
    line.push(b' ');
    line.extend_from_slice(record.target().as_bytes());
    line.extend_from_slice(b"] ");
    match record.args().as_str() {
        Some(text) => line.extend_from_slice(text.as_bytes()),
        None => line.write_fmt(*record.args())?,
    }
    line.push(b'\n');
    out.write_all(line)
}

/// The level as env_logger writes it, padded to five characters.
fn level_text(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN ",
        Level::Info => "INFO ",
        Level::Debug => "DEBUG",
        Level::Trace => "TRACE",
    }
}

thread_local! {
    /// The log line being assembled, reused so that a line costs no allocation.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The current second, and its text up to the seconds: formatting a date is most of a
    /// timestamp's cost, and it changes once a second.
    static SECOND_TEXT: RefCell<(u64, Vec<u8>)> = const { RefCell::new((0, Vec::new())) };
}

/// The time now in UTC to the millisecond, `2026-11-21T03:08:18.095Z`.
fn write_timestamp(out: &mut impl Write) -> io::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    SECOND_TEXT.with_borrow_mut(|(second, text)| {
        if *second != now.as_secs() || text.is_empty() {
            *second = now.as_secs();
            text.clear();
            let date = i64::try_from(now.as_secs())
                .ok()
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            date.format_into(
                text,
                format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
            )
            .map_err(io::Error::other)?;
        }
        out.write_all(text)?;
        // `.095`, not `.95`: 1000 + milliseconds, less its first digit, keeps the zeros.
        let mut digits = itoa::Buffer::new();
        let millis = digits.format(1000 + now.subsec_millis());
        out.write_all(b".")?;
        out.write_all(&millis.as_bytes()[1..])?;
        out.write_all(b"Z")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timestamp_is_rfc3339_in_utc_to_the_millisecond() {
        let mut first = Vec::new();
        write_timestamp(&mut first).unwrap();
        let first = String::from_utf8(first).unwrap();
        // Twice: the second one comes from the cached second (or a new one).
        let mut second = Vec::new();
        write_timestamp(&mut second).unwrap();
        let second = String::from_utf8(second).unwrap();
        for text in [&first, &second] {
            let parsed =
                OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .unwrap_or_else(|e| panic!("{text}: {e}"));
            let age = OffsetDateTime::now_utc() - parsed;
            assert!(age.whole_seconds().abs() < 5, "{text} is not now");
            assert_eq!(text.len(), "2026-11-21T03:08:18.095Z".len(), "{text}");
        }
        assert!(first <= second, "{first} then {second}");
    }
}
