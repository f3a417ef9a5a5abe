//! Numbered lines of bounded length from any reader. A line over the limit is skipped to
//! its end without being kept, so one endless line cannot take the memory of the import.

use std::io::{self, BufRead};

/// One line, without its `\n` (nor a `\r` before it).
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a [u8]),
    /// Longer than the limit; its bytes were skipped.
    TooLong,
}

pub struct Lines<R> {
    reader: R,
    limit: usize,
    /// Of the line last returned, from 1.
    number: u64,
    /// Bytes read so far, newlines included.
    bytes: u64,
    buffer: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    pub fn new(reader: R, limit: usize) -> Self {
        Self {
            reader,
            limit,
            number: 0,
            bytes: 0,
            buffer: Vec::new(),
        }
    }

    /// The number of the line last returned (0 before the first).
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes read so far, newlines included.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The next line and its number; `None` at the end of the input. A last line without
    /// `\n` is a line; the end of the input after a `\n` is not one more.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buffer.clear();
        let mut too_long = false;
        let mut any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !any {
                    return Ok(None);
                }
                break;
            }
            any = true;
            let (taken, end) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], Some(at + 1)),
                None => (available, None),
            };
            if !too_long && self.buffer.len() + taken.len() > self.limit {
                too_long = true;
                self.buffer = Vec::new();
            }
            if !too_long {
                self.buffer.extend_from_slice(taken);
            }
            let consumed = end.unwrap_or(available.len());
            self.reader.consume(consumed);
            self.bytes += consumed as u64;
            if end.is_some() {
                break;
            }
        }
        self.number += 1;
        if too_long {
            return Ok(Some((self.number, Line::TooLong)));
        }
        let text = self.buffer.strip_suffix(b"\r").unwrap_or(&self.buffer);
        Ok(Some((self.number, Line::Text(text))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `input`, read through a buffer of `capacity` bytes.
    fn read_all(input: &[u8], limit: usize, capacity: usize) -> Vec<(u64, Result<String, ()>)> {
        let mut lines = Lines::new(io::BufReader::with_capacity(capacity, input), limit);
        let mut all = Vec::new();
        while let Some((number, line)) = lines.next_line().unwrap() {
            all.push((
                number,
                match line {
                    Line::Text(text) => Ok(String::from_utf8(text.to_vec()).unwrap()),
                    Line::TooLong => Err(()),
                },
            ));
        }
        all
    }

    #[test]
    fn lines_are_numbered_from_one_and_a_last_line_needs_no_newline() {
        for capacity in [1, 3, 64] {
            assert_eq!(
                read_all(b"a\r\n\nbc", 10, capacity),
                [
                    (1, Ok("a".into())),
                    (2, Ok("".into())),
                    (3, Ok("bc".into()))
                ]
            );
            assert_eq!(read_all(b"a\n", 10, capacity), [(1, Ok("a".into()))]);
            assert_eq!(read_all(b"", 10, capacity), []);
        }
    }

    #[test]
    fn a_line_over_the_limit_is_skipped_whole_and_the_next_one_is_read() {
        let input = format!("{}\nok\n{}", "x".repeat(100), "y".repeat(11));
        for capacity in [1, 7, 4096] {
            assert_eq!(
                read_all(input.as_bytes(), 10, capacity),
                [(1, Err(())), (2, Ok("ok".into())), (3, Err(()))]
            );
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_kept() {
        let input = format!("{}\n", "z".repeat(10));
        assert_eq!(read_all(input.as_bytes(), 10, 4), [(1, Ok("z".repeat(10)))]);
    }
}
