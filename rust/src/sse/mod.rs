//! Server-sent events (WHATWG HTML §9.2): an incremental parser and the streaming proxy's tap.
//!
//! `parser` and `tap` are pure Rust (the tap validates JSON with `crate::json`); `py` holds their Python bindings.
pub mod parser;
pub mod py;
pub mod tap;

pub use parser::{SseEvent, SseParser};
pub use tap::StreamTap;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One line of an event stream, already split from its terminator.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// An empty line: dispatch the pending event.
    Blank,
    /// A `:` comment line.
    Comment,
    /// `field: value` (exactly one leading space removed from the value); a line without `:` has an empty value.
    Field(&'a [u8], &'a [u8]),
}

impl<'a> Line<'a> {
    pub(crate) fn classify(line: &'a [u8]) -> Self {
        match line.first() {
            None => Line::Blank,
            Some(b':') => Line::Comment,
            Some(_) => match memchr::memchr(b':', line) {
                Some(i) => {
                    let value = &line[i + 1..];
                    Line::Field(&line[..i], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => Line::Field(line, b""),
            },
        }
    }
}

/// Removes a UTF-8 byte order mark (only ever called on the first line of a stream).
pub(crate) fn strip_bom(line: &[u8]) -> &[u8] {
    line.strip_prefix(BOM).unwrap_or(line)
}

/// Where the next line terminator in `buf` is: `(line_end, next_line_start, ends_in_bare_cr_at_buffer_end)`.
///
/// A CR as the last byte of `buf` ends its line; the caller must then skip an LF at the start of the next chunk.
#[inline]
pub(crate) fn next_line(buf: &[u8]) -> Option<(usize, usize, bool)> {
    let i = memchr::memchr2(b'\r', b'\n', buf)?;
    if buf[i] == b'\n' {
        return Some((i, i + 1, false));
    }
    match buf.get(i + 1) {
        Some(b'\n') => Some((i, i + 2, false)),
        Some(_) => Some((i, i + 1, false)),
        None => Some((i, i + 1, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_lines() {
        assert_eq!(Line::classify(b""), Line::Blank);
        assert_eq!(Line::classify(b": hi"), Line::Comment);
        assert_eq!(Line::classify(b"data: x"), Line::Field(b"data", b"x"));
        assert_eq!(Line::classify(b"data:  x"), Line::Field(b"data", b" x"));
        assert_eq!(Line::classify(b"data:x: y"), Line::Field(b"data", b"x: y"));
        assert_eq!(Line::classify(b"data"), Line::Field(b"data", b""));
        assert_eq!(Line::classify(b"data:"), Line::Field(b"data", b""));
    }

    #[test]
    fn line_terminators() {
        assert_eq!(next_line(b"ab\ncd"), Some((2, 3, false)));
        assert_eq!(next_line(b"ab\r\ncd"), Some((2, 4, false)));
        assert_eq!(next_line(b"ab\rcd"), Some((2, 3, false)));
        assert_eq!(next_line(b"ab\r"), Some((2, 3, true)));
        assert_eq!(next_line(b"abcd"), None);
    }
}
