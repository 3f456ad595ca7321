//! Incremental SSE parser: bytes in (any chunking), events out.
use std::borrow::Cow;
use std::mem;

use super::{next_line, strip_bom, Line};

/// A dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `None` when absent or empty (the spec's default type "message").
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The last event ID seen so far in the stream (it persists across events).
    pub id: Option<String>,
    /// The `retry:` field given in this event's block, if any.
    pub retry: Option<u64>,
}

/// WHATWG event-stream parser. Feed it network chunks; it carries partial lines (and partial UTF-8
/// characters, which are only decoded on whole lines) between calls.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the current line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF at the start of the next one ends nothing.
    skip_lf: bool,
    /// No line has been completed yet (a leading BOM is still possible).
    first_line: bool,
    data: Vec<u8>,
    has_data: bool,
    event_type: Vec<u8>,
    retry: Option<u64>,
    last_event_id: Option<String>,
    reconnection_time: Option<u64>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn decode_ref(bytes: &[u8]) -> String {
    match String::from_utf8_lossy(bytes) {
        Cow::Borrowed(s) => s.to_owned(),
        Cow::Owned(s) => s,
    }
}

impl SseParser {
    pub fn new() -> Self {
        Self {
            line: Vec::new(),
            skip_lf: false,
            first_line: true,
            data: Vec::new(),
            has_data: false,
            event_type: Vec::new(),
            retry: None,
            last_event_id: None,
            reconnection_time: None,
        }
    }

    /// The last event ID buffer (persists across events).
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The last valid `retry:` value seen, even in a block that dispatched nothing.
    pub fn reconnection_time(&self) -> Option<u64> {
        self.reconnection_time
    }

    /// Parses `chunk`, appending every event it completes to `out`.
    pub fn feed_into(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) {
        if chunk.is_empty() {
            return; // an empty chunk must not forget a pending CR
        }
        let mut rest = chunk;
        if mem::take(&mut self.skip_lf) && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        while let Some((end, next, bare_cr)) = next_line(rest) {
            self.skip_lf = bare_cr;
            if self.line.is_empty() {
                self.process_line(&rest[..end], out);
            } else {
                let mut line = mem::take(&mut self.line);
                line.extend_from_slice(&rest[..end]);
                self.process_line(&line, out);
                line.clear();
                self.line = line;
            }
            rest = &rest[next..];
        }
        self.line.extend_from_slice(rest);
    }

    /// Parses `chunk` and returns the events it completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.feed_into(chunk, &mut out);
        out
    }

    /// End of stream: an unterminated event is discarded (per spec), and the parser is reset for a new stream.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        *self = Self::new();
        Vec::new()
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        let line = if mem::take(&mut self.first_line) {
            strip_bom(line)
        } else {
            line
        };
        match Line::classify(line) {
            Line::Blank => self.dispatch(out),
            Line::Comment => {}
            Line::Field(b"data", value) => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
            }
            Line::Field(b"event", value) => {
                self.event_type.clear();
                self.event_type.extend_from_slice(value);
            }
            Line::Field(b"id", value) => {
                if memchr::memchr(0, value).is_none() {
                    self.last_event_id = Some(decode_ref(value));
                }
            }
            Line::Field(b"retry", value) => {
                if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
                    if let Ok(ms) = std::str::from_utf8(value)
                        .unwrap_or_default()
                        .parse::<u64>()
                    {
                        self.retry = Some(ms);
                        self.reconnection_time = Some(ms);
                    }
                }
            }
            Line::Field(..) => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let retry = self.retry.take();
        if !mem::take(&mut self.has_data) {
            self.event_type.clear();
            return;
        }
        self.data.pop(); // the LF after the last data line
        let data = decode(mem::take(&mut self.data));
        let event = if self.event_type.is_empty() {
            None
        } else {
            let event = decode_ref(&self.event_type);
            self.event_type.clear();
            Some(event)
        };
        out.push(SseEvent {
            event,
            data,
            id: self.last_event_id.clone(),
            retry,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(event: Option<&str>, data: &str, id: Option<&str>, retry: Option<u64>) -> SseEvent {
        SseEvent {
            event: event.map(Into::into),
            data: data.into(),
            id: id.map(Into::into),
            retry,
        }
    }

    fn data(d: &str) -> SseEvent {
        ev(None, d, None, None)
    }

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed_into(c, &mut out);
        }
        out.extend(p.finish());
        out
    }

    fn parse(bytes: &[u8]) -> Vec<SseEvent> {
        parse_chunks(&[bytes])
    }

    fn parse_bytewise(bytes: &[u8]) -> Vec<SseEvent> {
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        parse_chunks(&chunks)
    }

    #[test]
    fn lf_crlf_cr() {
        for s in [
            &b"data: a\n\ndata: b\n\n"[..],
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
        ] {
            assert_eq!(parse(s), vec![data("a"), data("b")], "{s:?}");
            assert_eq!(parse_bytewise(s), vec![data("a"), data("b")], "{s:?}");
        }
    }

    #[test]
    fn mixed_terminators() {
        assert_eq!(
            parse(b"data: a\r\ndata: b\rdata: c\n\r\n"),
            vec![data("a\nb\nc")]
        );
    }

    #[test]
    fn cr_at_chunk_end_then_lf() {
        // The LF completes the CR's terminator: no extra blank line, so no early dispatch.
        let got = parse_chunks(&[b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n"]);
        assert_eq!(got, vec![data("a\nb")]);
        // A CR-terminated blank line split from its LF dispatches once.
        let got = parse_chunks(&[b"data: a\r\n\r", b"\ndata: b\r\n\r\n"]);
        assert_eq!(got, vec![data("a"), data("b")]);
        // An empty chunk between the CR and the LF changes nothing.
        let got = parse_chunks(&[b"data: a\r", b"", b"\n\r", b"", b"\n"]);
        assert_eq!(got, vec![data("a")]);
        // A CR at a chunk end followed by a non-LF byte is a plain CR terminator.
        let got = parse_chunks(&[b"data: a\r", b"\rdata: b\n\n"]);
        assert_eq!(got, vec![data("a"), data("b")]);
    }

    #[test]
    fn split_lines() {
        let got = parse_chunks(&[b"da", b"ta: hel", b"lo\n", b"\n"]);
        assert_eq!(got, vec![data("hello")]);
        let mut p = SseParser::new();
        assert!(p.feed(b"data: x\n").is_empty());
        assert_eq!(p.feed(b"\n"), vec![data("x")]);
    }

    #[test]
    fn utf8_split_across_chunks() {
        let s = "data: h\u{e9}llo \u{1F600}\n\n".as_bytes();
        let want = vec![data("h\u{e9}llo \u{1F600}")];
        for i in 0..s.len() {
            assert_eq!(parse_chunks(&[&s[..i], &s[i..]]), want, "split at {i}");
        }
        assert_eq!(parse_bytewise(s), want);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(
            parse(b"data: a\xffb\xe2\x82\n\n"),
            vec![data("a\u{FFFD}b\u{FFFD}")]
        );
        assert_eq!(
            parse(b"event: \xff\ndata: x\nid: \xc3\n\n"),
            vec![ev(Some("\u{FFFD}"), "x", Some("\u{FFFD}"), None)]
        );
    }

    #[test]
    fn comments_ignored() {
        let s = b": keep-alive\n\n:x\ndata: a\n: mid\ndata: b\n\n";
        assert_eq!(parse(s), vec![data("a\nb")]);
        assert_eq!(parse(b": only a comment\n\n"), vec![]);
    }

    #[test]
    fn multi_line_data() {
        assert_eq!(
            parse(b"data: a\ndata:\ndata:  c\n\n"),
            vec![data("a\n\n c")]
        );
        assert_eq!(parse(b"data\n\n"), vec![data("")]);
        assert_eq!(parse(b"data:\ndata:\n\n"), vec![data("\n")]);
    }

    #[test]
    fn field_parsing() {
        assert_eq!(parse(b"data:no space\n\n"), vec![data("no space")]);
        assert_eq!(parse(b"data: a: b\n\n"), vec![data("a: b")]);
        assert_eq!(parse(b"unknown: x\ndata: y\nDATA: z\n\n"), vec![data("y")]);
    }

    #[test]
    fn event_names_reset_after_dispatch() {
        let s = b"event: ping\ndata: 1\n\ndata: 2\n\nevent: lost\n\ndata: 3\n\nevent:\ndata: 4\n\n";
        assert_eq!(
            parse(s),
            vec![
                ev(Some("ping"), "1", None, None),
                data("2"),
                data("3"),
                data("4")
            ]
        );
    }

    #[test]
    fn id_persists_and_retry_is_per_event() {
        let s = b"id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: x\0y\ndata: d\n\n";
        assert_eq!(
            parse(s),
            vec![
                ev(None, "a", Some("7"), Some(1500)),
                ev(None, "b", Some("7"), None),
                ev(None, "c", Some(""), None),
                ev(None, "d", Some(""), None)
            ]
        );
    }

    #[test]
    fn retry_digits_only() {
        let mut p = SseParser::new();
        let got = p.feed(b"retry: 12a\ndata: a\n\nretry: -1\ndata: b\n\nretry:\ndata: c\n\nretry:  5\ndata: d\n\n");
        assert!(got.iter().all(|e| e.retry.is_none()));
        assert_eq!(p.reconnection_time(), None);
        assert!(p.feed(b"retry: 99\n\n").is_empty());
        assert_eq!(p.reconnection_time(), Some(99));
    }

    #[test]
    fn bom_only_at_start() {
        assert_eq!(parse(b"\xEF\xBB\xBFdata: a\n\n"), vec![data("a")]);
        assert_eq!(parse_bytewise(b"\xEF\xBB\xBFdata: a\n\n"), vec![data("a")]);
        // A second BOM is part of the field name, so the line is an unknown field.
        assert_eq!(parse(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n"), vec![]);
        assert_eq!(
            parse(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n"),
            vec![data("a")]
        );
    }

    #[test]
    fn blank_only_streams() {
        assert_eq!(parse(b""), vec![]);
        assert_eq!(parse(b"\n\n\n\r\n\r"), vec![]);
    }

    #[test]
    fn no_trailing_blank_line_discards_event() {
        let mut p = SseParser::new();
        assert_eq!(p.feed(b"data: a\n\ndata: b\n"), vec![data("a")]);
        assert_eq!(p.finish(), vec![]);
        // finish() resets: the tail does not leak into the next stream.
        assert_eq!(p.feed(b"\n"), vec![]);
        assert_eq!(parse(b"data: a"), vec![]);
    }

    #[test]
    fn openai_stream() {
        let s = b"data: {\"a\":1}\n\ndata: [DONE]\n\n";
        assert_eq!(parse(s), vec![data("{\"a\":1}"), data("[DONE]")]);
    }

    fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(b"data: ".to_vec()),
            Just(b"data:".to_vec()),
            Just(b"event: e".to_vec()),
            Just(b"id: 1".to_vec()),
            Just(b"retry: 30".to_vec()),
            Just(b": c".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\r".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n\n".to_vec()),
            Just(b"\xEF\xBB\xBF".to_vec()),
            Just("\u{e9}\u{1F600}".as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..4),
            "[a-z: ]{0,6}".prop_map(String::into_bytes),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn any_split_gives_same_events(
            stream in stream_strategy(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let whole = parse(&stream);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            points.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for p in points {
                chunks.push(&stream[prev..p]);
                prev = p;
            }
            chunks.push(&stream[prev..]);
            prop_assert_eq!(&parse_chunks(&chunks), &whole);
            prop_assert_eq!(&parse_bytewise(&stream), &whole);
        }
    }
}
