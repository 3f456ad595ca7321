//! Decoding and encoding of event-stream messages (pure Rust, no Python).
use std::fmt;

/// Prelude (12 bytes) plus the trailing message CRC (4 bytes): the smallest possible message.
pub const OVERHEAD: usize = 16;
const PRELUDE: usize = 12;
/// AWS's own limits (aws-c-event-stream): a message is at most 16 MiB, its headers at most 128 KiB.
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
pub const MAX_HEADERS: usize = 128 * 1024;

/// A typed header value; the tag is the wire type byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false): no value bytes.
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3: i16 BE.
    Short(i16),
    /// Type 4: i32 BE.
    Int(i32),
    /// Type 5: i64 BE.
    Long(i64),
    /// Type 6: u16 BE length, then the bytes.
    Bytes(Vec<u8>),
    /// Type 7: u16 BE length, then UTF-8.
    String(String),
    /// Type 8: i64 BE milliseconds since the epoch.
    Timestamp(i64),
    /// Type 9: 16 bytes.
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header (`:event-type`, `:message-type`, `:content-type`, `:exception-type`).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why a stream cannot be decoded. After any of these the framing is lost, so the decoder stays failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    PreludeCrc {
        expected: u32,
        actual: u32,
    },
    MessageCrc {
        expected: u32,
        actual: u32,
    },
    /// The prelude's total length is below the 16-byte minimum or above the limit.
    BadLength {
        total: u32,
        limit: usize,
    },
    /// The headers length does not fit in the message, or exceeds 128 KiB.
    BadHeadersLength {
        headers: u32,
        total: u32,
    },
    /// A header could not be parsed (the offset is within the headers block).
    BadHeader {
        offset: usize,
        reason: &'static str,
    },
    /// The stream ended inside a message.
    Truncated {
        buffered: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreludeCrc { expected, actual } => {
                write!(f, "event-stream prelude CRC mismatch (expected {expected:#010x}, computed {actual:#010x})")
            }
            Self::MessageCrc { expected, actual } => {
                write!(f, "event-stream message CRC mismatch (expected {expected:#010x}, computed {actual:#010x})")
            }
            Self::BadLength { total, limit } => {
                write!(
                    f,
                    "event-stream message length {total} outside 16..={limit}"
                )
            }
            Self::BadHeadersLength { headers, total } => {
                write!(
                    f,
                    "event-stream headers length {headers} does not fit a {total}-byte message"
                )
            }
            Self::BadHeader { offset, reason } => {
                write!(f, "event-stream header at offset {offset}: {reason}")
            }
            Self::Truncated { buffered } => {
                write!(
                    f,
                    "event stream ended inside a message ({buffered} bytes buffered)"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Incremental decoder: feed chunks split anywhere, get the messages they complete.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` before `start` are already decoded (compacted lazily to avoid a memmove per message).
    start: usize,
    max_message: usize,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(MAX_MESSAGE)
    }
}

impl Decoder {
    /// A decoder refusing messages longer than `max_message` bytes (capped at AWS's 16 MiB).
    pub fn new(max_message: usize) -> Self {
        Self {
            buf: Vec::new(),
            start: 0,
            max_message: max_message.clamp(OVERHEAD, MAX_MESSAGE),
            failed: None,
        }
    }

    /// The largest message accepted, in bytes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Bytes received but not yet part of a complete message.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Decode every message `chunk` completes. An error is sticky: the framing cannot be recovered.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Message>, DecodeError> {
        let mut out = Vec::new();
        self.feed_raw(chunk, |headers, payload| {
            out.push(Message {
                headers: parse_headers(headers)?,
                payload: payload.to_vec(),
            });
            Ok(())
        })?;
        Ok(out)
    }

    /// Like [`Decoder::feed`] without building [`Message`]s: `sink` gets each message's headers block and
    /// payload as slices (both CRCs already checked) and may refuse the message (its error is then sticky).
    pub fn feed_raw(
        &mut self,
        chunk: &[u8],
        mut sink: impl FnMut(&[u8], &[u8]) -> Result<(), DecodeError>,
    ) -> Result<(), DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // Fast path: nothing pending, decode straight from the caller's chunk without copying it.
        let consumed = if self.buffered() == 0 {
            self.buf.clear();
            self.start = 0;
            match decode_all(chunk, self.max_message, &mut sink) {
                Ok(n) => n,
                Err(e) => return Err(self.fail(e)),
            }
        } else {
            0
        };
        let rest = &chunk[consumed..];
        if rest.is_empty() {
            return Ok(());
        }
        // The prelude is checked as soon as its 12 bytes are here, so a corrupt length fails fast instead of
        // buffering up to the limit.
        self.buf.extend_from_slice(rest);
        let result = decode_all(&self.buf[self.start..], self.max_message, &mut sink);
        match result {
            Ok(n) => {
                self.start += n;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                } else if self.start > self.buf.len() / 2 {
                    self.buf.drain(..self.start);
                    self.start = 0;
                }
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// End of stream: an error if it stopped inside a message. Resets the decoder.
    pub fn finish(&mut self) -> Result<(), DecodeError> {
        let failed = self.failed.take();
        let buffered = self.buffered();
        self.buf.clear();
        self.start = 0;
        match failed {
            Some(e) => Err(e),
            None if buffered > 0 => Err(DecodeError::Truncated { buffered }),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        self.start = 0;
        e
    }
}

/// Decode the complete messages at the front of `data`; returns how many bytes they took.
fn decode_all(
    data: &[u8],
    max_message: usize,
    sink: &mut impl FnMut(&[u8], &[u8]) -> Result<(), DecodeError>,
) -> Result<usize, DecodeError> {
    let mut pos = 0;
    loop {
        let rest = &data[pos..];
        if rest.len() < PRELUDE {
            return Ok(pos);
        }
        let total = be32(rest);
        let headers_len = be32(&rest[4..]);
        let expected = be32(&rest[8..]);
        let actual = crc32fast::hash(&rest[..8]);
        if expected != actual {
            return Err(DecodeError::PreludeCrc { expected, actual });
        }
        let total_len = total as usize;
        if total_len < OVERHEAD || total_len > max_message {
            return Err(DecodeError::BadLength {
                total,
                limit: max_message,
            });
        }
        if headers_len as usize > MAX_HEADERS || headers_len as usize > total_len - OVERHEAD {
            return Err(DecodeError::BadHeadersLength {
                headers: headers_len,
                total,
            });
        }
        if rest.len() < total_len {
            return Ok(pos);
        }
        let body = &rest[..total_len - 4];
        let expected = be32(&rest[total_len - 4..]);
        let actual = crc32fast::hash(body);
        if expected != actual {
            return Err(DecodeError::MessageCrc { expected, actual });
        }
        let headers_end = PRELUDE + headers_len as usize;
        sink(&body[PRELUDE..headers_end], &body[headers_end..])?;
        pos += total_len;
    }
}

/// One header as it lies in the block: its name, wire type and value bytes (length prefix removed).
pub struct RawHeader<'a> {
    pub name: &'a [u8],
    pub tag: u8,
    pub value: &'a [u8],
}

/// Walk a headers block, checking its structure, without allocating.
pub fn scan_headers<'a>(
    mut b: &'a [u8],
    mut visit: impl FnMut(RawHeader<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let total = b.len();
    let err = |b: &[u8], reason| DecodeError::BadHeader {
        offset: total - b.len(),
        reason,
    };
    while !b.is_empty() {
        let at = b;
        let name_len = b[0] as usize;
        if name_len == 0 {
            return Err(err(at, "empty header name"));
        }
        if b.len() < 2 + name_len {
            return Err(err(at, "header name runs past the headers block"));
        }
        let name = &b[1..1 + name_len];
        let tag = b[1 + name_len];
        b = &b[2 + name_len..];
        let (skip, len) = match tag {
            0 | 1 => (0, 0),
            2 => (0, 1),
            3 => (0, 2),
            4 => (0, 4),
            5 | 8 => (0, 8),
            9 => (0, 16),
            6 | 7 => {
                if b.len() < 2 {
                    return Err(err(at, "header value runs past the headers block"));
                }
                (2, u16::from_be_bytes([b[0], b[1]]) as usize)
            }
            _ => return Err(err(at, "unknown header value type")),
        };
        if b.len() < skip + len {
            return Err(err(at, "header value runs past the headers block"));
        }
        let value = &b[skip..skip + len];
        b = &b[skip + len..];
        if std::str::from_utf8(name).is_err() {
            return Err(err(at, "header name is not UTF-8"));
        }
        if tag == 7 && std::str::from_utf8(value).is_err() {
            return Err(err(at, "string header is not UTF-8"));
        }
        visit(RawHeader { name, tag, value })?;
    }
    Ok(())
}

impl RawHeader<'_> {
    /// The typed value (the block was checked by [`scan_headers`]).
    pub fn value(&self) -> HeaderValue {
        let v = self.value;
        let n8 = || i64::from_be_bytes(v.try_into().expect("8 bytes"));
        match self.tag {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(v[0] as i8),
            3 => HeaderValue::Short(i16::from_be_bytes([v[0], v[1]])),
            4 => HeaderValue::Int(be32(v) as i32),
            5 => HeaderValue::Long(n8()),
            8 => HeaderValue::Timestamp(n8()),
            6 => HeaderValue::Bytes(v.to_vec()),
            7 => HeaderValue::String(String::from_utf8_lossy(v).into_owned()),
            _ => HeaderValue::Uuid(v.try_into().expect("16 bytes")),
        }
    }

    pub fn name_str(&self) -> &str {
        std::str::from_utf8(self.name).unwrap_or("")
    }
}

/// Parse a headers block into owned headers.
pub fn parse_headers(b: &[u8]) -> Result<Vec<(String, HeaderValue)>, DecodeError> {
    let mut out = Vec::with_capacity(3);
    scan_headers(b, |h| {
        out.push((h.name_str().to_owned(), h.value()));
        Ok(())
    })?;
    Ok(out)
}

/// Why a message cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    HeaderName(usize),
    HeaderValue(usize),
    TooLarge(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::HeaderName(n) => write!(f, "header name of {n} bytes (1..=255 allowed)"),
            Self::HeaderValue(n) => write!(f, "header value of {n} bytes (at most 65535)"),
            Self::TooLarge(n) => write!(f, "message of {n} bytes exceeds the 16 MiB limit"),
        }
    }
}

/// Encode one message (the inverse of the decoder).
pub fn encode(headers: &[(String, HeaderValue)], payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut h = Vec::new();
    for (name, value) in headers {
        if name.is_empty() || name.len() > 255 {
            return Err(EncodeError::HeaderName(name.len()));
        }
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        match value {
            HeaderValue::Bool(v) => h.push(if *v { 0 } else { 1 }),
            HeaderValue::Byte(v) => h.extend_from_slice(&[2, *v as u8]),
            HeaderValue::Short(v) => {
                h.push(3);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                h.push(4);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) | HeaderValue::Timestamp(v) => {
                h.push(if matches!(value, HeaderValue::Long(_)) {
                    5
                } else {
                    8
                });
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(_) | HeaderValue::String(_) => {
                let (tag, v) = match value {
                    HeaderValue::Bytes(v) => (6, v.as_slice()),
                    HeaderValue::String(s) => (7, s.as_bytes()),
                    _ => unreachable!(),
                };
                let len = u16::try_from(v.len()).map_err(|_| EncodeError::HeaderValue(v.len()))?;
                h.push(tag);
                h.extend_from_slice(&len.to_be_bytes());
                h.extend_from_slice(v);
            }
            HeaderValue::Uuid(v) => {
                h.push(9);
                h.extend_from_slice(v);
            }
        }
    }
    let total = OVERHEAD + h.len() + payload.len();
    if total > MAX_MESSAGE || h.len() > MAX_HEADERS {
        return Err(EncodeError::TooLarge(total));
    }
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(out)
}
