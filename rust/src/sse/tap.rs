//! The streaming proxy's observer: forwards raw SSE bytes event by event, never re-serialising them,
//! and records what the gateway needs from an OpenAI `chat.completion.chunk` stream on the way.
use std::borrow::Cow;
use std::mem;
use std::ops::Range;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::{next_line, strip_bom, Line};
use crate::json::is_json_text;
use crate::scan::Category;
use crate::transcode::chat_spans::{text_of, ChunkSpans};
use crate::transcode::screen::{ChatEvent, Screen};

/// What the tap did with the last event boundary that ended in a bare CR at a chunk end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LastBoundary {
    Forwarded,
    Stripped,
}

/// What a dispatched event boundary means for the event's raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dispatch {
    Forward,
    Strip,
    /// A data event whose payload is not JSON: it and everything after it are withheld.
    Malformed,
}

/// What a forwarded event is, for a screen.
#[derive(Debug, Default)]
enum Kind {
    #[default]
    Other,
    Done,
    /// A JSON payload: its range in `Screened::data`, its `event:` name's, and its spans' index in
    /// `Screened::spans` if it is a chunk.
    Data {
        data: Range<usize>,
        name: Option<Range<usize>>,
        spans: Option<usize>,
    },
}

/// The guardrails of a screened tap: the answer's screen and the events of the current feed call.
struct Screened {
    screen: Screen,
    /// Payloads and event names of `events`, back to back.
    data: String,
    events: Vec<(Range<usize>, Kind)>,
    /// The spans the tap found in the payloads of `events` (the screen reads them, not the bytes again).
    spans: Vec<ChunkSpans>,
    /// The current event's `event:` name.
    name: Option<String>,
}

/// Raw-byte forwarder and observer of one SSE response stream.
///
/// Clients such as the openai SDK `json.loads` every data payload but `[DONE]`, so a payload that is
/// not JSON is never forwarded: the tap forwards the events before it, then goes silent ("malformed").
pub struct StreamTap {
    strip_usage_chunk: bool,
    /// Raw bytes of the current, not yet complete event (whole lines plus the partial last line).
    pending: Vec<u8>,
    /// Offset in `pending` where the partial (unprocessed) line starts.
    line_start: usize,
    skip_lf: bool,
    last_boundary: LastBoundary,
    first_line: bool,
    data: Vec<u8>,
    has_data: bool,
    malformed: bool,

    data_events: u64,
    done: bool,
    usage: Option<Vec<u8>>,
    error: Option<Vec<u8>>,
    model: Option<String>,
    tool_names: Vec<String>,
    /// Guardrails on the answer's texts: the events go out screened instead of byte for byte.
    screened: Option<Box<Screened>>,
    kind: Kind,
}

// Shared, not per-tap: a `Finder` may hold 32-byte-aligned SIMD state, and a PyO3 object only
// guarantees 16-byte alignment for the Rust value it embeds.
static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
static ERROR_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));
static MODEL_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"model\""));
static NAME_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"name\""));

/// Byte ranges of a buffer to forward, merged when contiguous.
#[derive(Default)]
struct Emit(Vec<Range<usize>>);

impl Emit {
    fn push(&mut self, r: Range<usize>) {
        match self.0.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => self.0.push(r),
        }
    }

    fn borrow<'a>(&self, buf: &'a [u8]) -> Cow<'a, [u8]> {
        match self.0.as_slice() {
            [] => Cow::Borrowed(&[]),
            [one] => Cow::Borrowed(&buf[one.clone()]),
            many => {
                let mut out = Vec::with_capacity(many.iter().map(|r| r.len()).sum());
                for r in many {
                    out.extend_from_slice(&buf[r.clone()]);
                }
                Cow::Owned(out)
            }
        }
    }
}

/// Whether some `"key"` in `data` is followed by `:` and a value whose first byte satisfies `first`.
///
/// A cheap pre-filter before reading a chunk: it may say yes for a nested key, never no for a top-level one.
fn key_followed_by(key: &Finder<'_>, data: &[u8], first: impl Fn(u8) -> bool) -> bool {
    let skip_ws = |s: &[u8]| -> usize { s.iter().take_while(|b| b.is_ascii_whitespace()).count() };
    key.find_iter(data).any(|pos| {
        let rest = &data[pos + key.needle().len()..];
        let rest = &rest[skip_ws(rest)..];
        match rest.split_first() {
            Some((b':', value)) => value.get(skip_ws(value)).is_some_and(|&b| first(b)),
            _ => false,
        }
    })
}

impl StreamTap {
    pub fn new(strip_usage_chunk: bool) -> Self {
        Self {
            strip_usage_chunk,
            pending: Vec::new(),
            line_start: 0,
            skip_lf: false,
            last_boundary: LastBoundary::Forwarded,
            first_line: true,
            data: Vec::new(),
            has_data: false,
            malformed: false,
            data_events: 0,
            done: false,
            usage: None,
            error: None,
            model: None,
            tool_names: Vec::new(),
            screened: None,
            kind: Kind::Other,
        }
    }

    /// A tap that screens each chunk's texts (see [`Screen::chat`]): every text of the answer reaches the
    /// client only through the screen's hold-back scanners.
    pub fn with_screen(mut self, screen: Screen) -> Self {
        self.screened = Some(Box::new(Screened {
            screen,
            data: String::new(),
            events: Vec::new(),
            spans: Vec::new(),
            name: None,
        }));
        self
    }

    /// Findings of the screen not yet taken: (category, type), never the value.
    pub fn take_found(&mut self) -> Vec<(Category, String)> {
        self.screened
            .as_mut()
            .map(|s| s.screen.take_found())
            .unwrap_or_default()
    }

    pub fn has_new_findings(&self) -> bool {
        self.screened
            .as_ref()
            .is_some_and(|s| s.screen.has_new_findings())
    }

    /// The events collected by `scan` from `buf`, screened.
    fn screen_events(&mut self, buf: &[u8]) -> Vec<u8> {
        let Some(s) = self.screened.as_deref_mut() else {
            return Vec::new();
        };
        let events: Vec<ChatEvent> = s
            .events
            .drain(..)
            .map(|(range, kind)| {
                let raw = &buf[range];
                match kind {
                    Kind::Other => ChatEvent::Other(raw),
                    Kind::Done => ChatEvent::Done(raw),
                    Kind::Data { data, name, spans } => ChatEvent::Data {
                        data: &s.data[data],
                        name: name.map(|name| &s.data[name]),
                        raw: Some(raw),
                        spans: spans.map(|i| &s.spans[i]),
                    },
                }
            })
            .collect();
        let mut out = Vec::with_capacity(buf.len() + 64);
        s.screen.chat(&events, &mut out);
        drop(events);
        s.data.clear();
        s.spans.clear();
        out
    }

    pub fn strip_usage_chunk(&self) -> bool {
        self.strip_usage_chunk
    }
    /// Dispatched events with data, excluding the `[DONE]` terminator and a malformed event.
    pub fn data_events(&self) -> u64 {
        self.data_events
    }
    /// A `data: [DONE]` event was seen.
    pub fn done(&self) -> bool {
        self.done
    }
    /// Raw JSON of the top-level `usage` object of the last data event that had a non-null one.
    pub fn usage(&self) -> Option<&[u8]> {
        self.usage.as_deref()
    }
    /// Raw JSON payload of the last data event with a non-null top-level `error`.
    pub fn error(&self) -> Option<&[u8]> {
        self.error.as_deref()
    }
    /// The top-level `model` string of the first JSON data event that has one.
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// A data event other than `[DONE]` was not JSON: it and everything after it were withheld.
    /// Names of the tools the model called, in the order their first delta arrived.
    pub fn tool_names(&self) -> &[String] {
        &self.tool_names
    }

    pub fn malformed(&self) -> bool {
        self.malformed
    }

    /// Takes one network chunk; returns the raw bytes of every event it completes (with any carried
    /// remainder of earlier chunks), minus a stripped usage-only event. Borrows `chunk` when possible.
    ///
    /// Stops at the first malformed data event: only the events before it are returned, and nothing ever after.
    pub fn feed<'a>(&mut self, chunk: &'a [u8]) -> Cow<'a, [u8]> {
        if chunk.is_empty() || self.malformed {
            return Cow::Borrowed(&[]); // an empty chunk must not forget a pending CR
        }
        let mut emit = Emit::default();
        let mut start = 0;
        if mem::take(&mut self.skip_lf) && chunk.first() == Some(&b'\n') {
            // This LF completes a CR terminator seen at the end of the previous chunk.
            if !self.pending.is_empty() {
                // ... of a line inside the pending event: it travels with that event.
                self.pending.push(b'\n');
                self.line_start = self.pending.len();
            } else if self.last_boundary == LastBoundary::Forwarded {
                match self.screened.as_deref_mut() {
                    Some(s) => s.events.push((0..1, Kind::Other)),
                    None => emit.push(0..1),
                }
            }
            start = 1;
        }
        if self.pending.is_empty() {
            let (tail, line) = self.scan(chunk, start, start, &mut emit);
            if self.malformed {
                self.release();
            } else {
                self.pending.extend_from_slice(&chunk[tail..]);
                self.line_start = line - tail;
            }
            if self.screened.is_some() {
                return Cow::Owned(self.screen_events(chunk));
            }
            emit.borrow(chunk)
        } else {
            let mut buf = mem::take(&mut self.pending);
            buf.extend_from_slice(&chunk[start..]);
            let (tail, line) = self.scan(&buf, self.line_start, 0, &mut emit);
            let out = if self.screened.is_some() {
                self.screen_events(&buf)
            } else {
                emit.borrow(&buf).into_owned()
            };
            if self.malformed {
                self.release();
            } else {
                buf.drain(..tail);
                self.pending = buf;
                self.line_start = line - tail;
            }
            Cow::Owned(out)
        }
    }

    /// End of stream: returns the unterminated tail as-is (it is not observed: per spec it is discarded),
    /// or nothing once the stream is malformed. Screened, the tail is dropped (it cannot be screened as
    /// events) and a chunk with the text still held back goes out instead.
    pub fn finish(&mut self) -> Vec<u8> {
        let tail = mem::take(&mut self.pending);
        self.release();
        if self.malformed {
            return Vec::new();
        }
        match self.screened.as_deref_mut() {
            Some(s) => {
                let mut out = Vec::new();
                s.screen.chat_finish(&mut out);
                out
            }
            None => tail,
        }
    }

    /// Drops the carried state of the current event.
    fn release(&mut self) {
        self.pending = Vec::new();
        self.line_start = 0;
        self.skip_lf = false;
        self.data.clear();
        self.has_data = false;
        if let Some(s) = self.screened.as_deref_mut() {
            s.name = None;
        }
    }

    /// Processes the complete lines of `buf[pos..]`; returns `(start of the incomplete event, start of the partial line)`.
    ///
    /// Stops at a malformed event (setting `self.malformed`); `emit` then holds only the events before it.
    fn scan(
        &mut self,
        buf: &[u8],
        mut pos: usize,
        mut event_start: usize,
        emit: &mut Emit,
    ) -> (usize, usize) {
        if let Some(s) = self.screened.as_deref_mut() {
            // The payloads are copied out of `buf` (their lines joined): room for them all at once.
            s.data.reserve(buf.len() - pos);
        }
        while let Some((end, next, bare_cr)) = next_line(&buf[pos..]) {
            let (end, next) = (pos + end, pos + next);
            self.skip_lf = bare_cr;
            match self.process_line(&buf[pos..end]) {
                None => {}
                Some(Dispatch::Forward) => {
                    self.last_boundary = LastBoundary::Forwarded;
                    match self.screened.as_deref_mut() {
                        Some(s) => s
                            .events
                            .push((event_start..next, mem::take(&mut self.kind))),
                        None => emit.push(event_start..next),
                    }
                    event_start = next;
                }
                Some(Dispatch::Strip) => {
                    self.last_boundary = LastBoundary::Stripped;
                    event_start = next;
                }
                Some(Dispatch::Malformed) => {
                    self.malformed = true;
                    return (event_start, next);
                }
            }
            pos = next;
        }
        (event_start, pos)
    }

    /// Returns `Some(what to do with the event's bytes)` when the line ends an event.
    fn process_line(&mut self, line: &[u8]) -> Option<Dispatch> {
        let line = if mem::take(&mut self.first_line) {
            strip_bom(line)
        } else {
            line
        };
        match Line::classify(line) {
            Line::Blank => Some(self.dispatch()),
            Line::Field(b"data", value) => {
                self.data.extend_from_slice(value);
                self.data.push(b'\n');
                self.has_data = true;
                None
            }
            Line::Field(b"event", value) => {
                if let Some(s) = self.screened.as_deref_mut() {
                    // Only needed to re-frame an edited event: then its payload must stay JSON, so a name
                    // that is not UTF-8 is dropped rather than forwarded unchecked.
                    s.name = std::str::from_utf8(value).ok().map(str::to_owned);
                }
                None
            }
            _ => None,
        }
    }

    fn dispatch(&mut self) -> Dispatch {
        let name = self.screened.as_deref_mut().and_then(|s| s.name.take());
        self.kind = Kind::Other;
        if !mem::take(&mut self.has_data) {
            return Dispatch::Forward;
        }
        let mut data = mem::take(&mut self.data);
        data.pop();
        let (what, text, spans) = self.observe(&data);
        if let (Some(s), Dispatch::Forward) = (self.screened.as_deref_mut(), what) {
            if let Some(text) = text {
                let name = name.map(|name| {
                    s.data.push_str(&name);
                    s.data.len() - name.len()..s.data.len()
                });
                s.data.push_str(text);
                self.kind = Kind::Data {
                    data: s.data.len() - text.len()..s.data.len(),
                    name,
                    spans: spans.map(|spans| {
                        s.spans.push(spans);
                        s.spans.len() - 1
                    }),
                };
            } else if self.done && data.starts_with(b"[DONE]") {
                self.kind = Kind::Done;
            }
        }
        data.clear();
        self.data = data;
        what
    }

    /// Validates a data payload and records what it tells us. Returns the payload as text when it is JSON,
    /// and its spans when the tap has read it as a chat chunk (every chunk, screened).
    fn observe<'d>(&mut self, data: &'d [u8]) -> (Dispatch, Option<&'d str>, Option<ChunkSpans>) {
        // Like the openai SDK, which stops at the first payload starting with `[DONE]` and parses none of them.
        if data.starts_with(b"[DONE]") {
            self.done = true;
            return (Dispatch::Forward, None, None);
        }
        let Ok(text) = std::str::from_utf8(data) else {
            return (Dispatch::Malformed, None, None);
        };
        let spans = if self.screened.is_some() {
            // The strict walk validates the payload as it finds its spans: one pass over a chunk. Only what
            // it gives up on (not a chunk object, or of a shape it does not expect) is validated and parsed apart.
            let spans = match ChunkSpans::walk(text) {
                Some(spans) => Some(spans),
                None if is_json_text(text) => ChunkSpans::parse(text),
                None => return (Dispatch::Malformed, None, None),
            };
            // A chunk whose texts cannot be found would reach the client unscreened: fail closed.
            let unreadable = spans
                .as_ref()
                .map_or(text.trim_start().starts_with('{'), |s| s.unreadable);
            if unreadable {
                return (Dispatch::Malformed, None, None);
            }
            spans
        } else {
            // Unscreened, validating is cheaper than walking, and only a few events say anything to record:
            // usage (OpenAI sends `"usage":null` in every chunk once it is asked for), an error, the model,
            // a tool call's name (only its first delta has one). Only those are read.
            if !is_json_text(text) {
                return (Dispatch::Malformed, None, None);
            }
            let worth_reading = key_followed_by(&USAGE_KEY, data, |b| b == b'{')
                || key_followed_by(&ERROR_KEY, data, |b| b != b'n')
                || key_followed_by(&NAME_KEY, data, |b| b == b'"')
                || (self.model.is_none() && key_followed_by(&MODEL_KEY, data, |b| b == b'"'));
            worth_reading.then(|| ChunkSpans::of(text)).flatten()
        };
        self.data_events += 1;
        let Some(spans) = spans else {
            return (Dispatch::Forward, Some(text), None);
        };
        if self.model.is_none() {
            let model = spans.template.model();
            self.model = model.and_then(|m| text_of(&text[m]).map(Cow::into_owned));
        }
        if spans.error {
            self.error = Some(data.to_vec());
        }
        let names = spans
            .tool_names
            .iter()
            .filter_map(|n| text_of(&text[n.clone()]));
        self.tool_names
            .extend(names.filter(|n| !n.is_empty()).map(Cow::into_owned));
        let what = match &spans.usage {
            Some(usage) => {
                self.usage = Some(data[usage.clone()].to_vec());
                if self.strip_usage_chunk && spans.no_choices {
                    Dispatch::Strip
                } else {
                    Dispatch::Forward
                }
            }
            None => Dispatch::Forward,
        };
        (what, Some(text), Some(spans))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CHUNK: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null}"#;
    const FINAL: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#;
    const USAGE: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}"#;
    const USAGE_JSON: &str = r#"{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}"#;

    /// An OpenAI stream with line ending `nl`; returns (whole stream, stream without the usage event).
    fn openai_stream(nl: &str) -> (Vec<u8>, Vec<u8>) {
        let before =
            format!(": OPENROUTER PROCESSING{nl}{nl}{CHUNK}{nl}{nl}{CHUNK}{nl}{nl}{FINAL}{nl}{nl}");
        let usage = format!("{USAGE}{nl}{nl}");
        let after = format!("data: [DONE]{nl}{nl}");
        (
            format!("{before}{usage}{after}").into_bytes(),
            format!("{before}{after}").into_bytes(),
        )
    }

    fn run(tap: &mut StreamTap, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&tap.feed(c));
        }
        out.extend(tap.finish());
        out
    }

    fn split_at_points<'a>(s: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
        let mut points = points.to_vec();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut prev = 0;
        for p in points {
            chunks.push(&s[prev..p]);
            prev = p;
        }
        chunks.push(&s[prev..]);
        chunks
    }

    fn screened_tap(strip: bool) -> StreamTap {
        use crate::scan::{Engine, DEFAULT_CATEGORIES};
        use std::sync::{Arc, LazyLock};
        static ENGINE: LazyLock<Arc<Engine>> =
            LazyLock::new(|| Arc::new(Engine::new(&[]).unwrap()));
        StreamTap::new(strip).with_screen(Screen::new(
            ENGINE.clone(),
            DEFAULT_CATEGORIES,
            None,
            false,
        ))
    }

    /// What a client assembles from a chat stream: each choice 0's content and its first call's arguments.
    fn assembled(out: &[u8]) -> (String, String) {
        let text = String::from_utf8(out.to_vec()).unwrap();
        let (mut content, mut args) = (String::new(), String::new());
        for line in text.split(['\r', '\n']) {
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                continue;
            }
            let chunk: serde_json::Value = serde_json::from_str(data).unwrap();
            for choice in chunk["choices"].as_array().into_iter().flatten() {
                content += choice["delta"]["content"].as_str().unwrap_or("");
                for call in choice["delta"]["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    args += call["function"]["arguments"].as_str().unwrap_or("");
                }
            }
        }
        (content, args)
    }

    /// A chat stream whose content and tool-call arguments each hold a card and an email cut at `at`.
    fn secret_stream(nl: &str, at: usize) -> (Vec<u8>, &'static str, &'static str) {
        const TEXT: &str =
            "pay 4111 1111 1111 1111 now, mail \\\"jane@acme.io\\\" \\u00e9 \\ud83d\\ude00 done";
        const ARGS: &str = "{\\\"card\\\":\\\"4111 1111 1111 1111\\\"}";
        // Cut at the last point before `at` that is not inside an escape (the JSON strings stay valid).
        let cut = |s: &'static str| {
            let (b, mut i, mut point) = (s.as_bytes(), 0, 0);
            while i < at.min(s.len()) {
                point = i;
                i += match b[i] {
                    b'\\' if b[i + 1] == b'u' => 6,
                    b'\\' => 2,
                    _ => 1,
                };
            }
            (&s[..point], &s[point..])
        };
        let chunk = |delta: String| {
            format!("data: {{\"id\":\"c\",\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":null}}]}}{nl}{nl}")
        };
        let ((t1, t2), (a1, a2)) = (cut(TEXT), cut(ARGS));
        let events = [
            format!(": keep-alive{nl}{nl}"),
            chunk("{\"role\":\"assistant\",\"content\":null}".into()),
            chunk(format!("{{\"content\":\"{t1}\"}}")),
            format!("event: delta{nl}").to_owned() + &chunk(format!("{{\"content\":\"{t2}\"}}")),
            chunk(format!("{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"name\":\"f\",\"arguments\":\"{a1}\"}}}}]}}")),
            chunk(format!("{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"arguments\":\"{a2}\"}}}}]}}")),
            format!("{USAGE}{nl}{nl}data: [DONE]{nl}{nl}"),
        ];
        (
            events.concat().into_bytes(),
            "pay [CARD_1] now, mail \"[EMAIL_1]\" é 😀 done",
            "{\"card\":\"[CARD_1]\"}",
        )
    }

    #[test]
    fn screened_clean_events_go_out_byte_for_byte() {
        // One read per event: each goes out as it came (so does a clean burst in one read, but for the words
        // held back at its end).
        let (events, _) = openai_events("\r\n");
        let events: Vec<String> = events
            .iter()
            .map(|e| e.replace("\"Hi\"", "\"Hi there. \""))
            .collect();
        let reads: Vec<&[u8]> = events.iter().map(|e| e.as_bytes()).collect();
        let mut tap = screened_tap(false);
        assert_eq!(run(&mut tap, &reads), events.concat().into_bytes());
        check_observed(&tap);
        assert!(!tap.has_new_findings());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any upstream reads, any line ending: no card or email digit reaches the client, and it assembles
        /// the masked texts.
        #[test]
        fn screened_tap_never_leaks(
            nl in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            strip in any::<bool>(),
            at in 1..60usize,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let (stream, content, args) = secret_stream(nl, at);
            let points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            let mut tap = screened_tap(strip);
            let out = run(&mut tap, &split_at_points(&stream, &points));
            let text = String::from_utf8(out.clone()).unwrap();
            prop_assert!(!text.contains("4111") && !text.contains("jane"), "{}", text);
            prop_assert!(text.contains(": keep-alive"));
            prop_assert_eq!(assembled(&out), (content.to_owned(), args.to_owned()));
            let done = format!("data: [DONE]{nl}{nl}");
            prop_assert!(text.ends_with(&done));
            prop_assert_eq!(tap.take_found().len(), 3);
            prop_assert_eq!(tap.usage().is_some(), true);
        }
    }

    #[test]
    fn screened_stream_cut_short_releases_what_it_holds() {
        let (stream, content, _) = secret_stream("\n", 20);
        // Cut inside the first tool-call event: that unterminated event is dropped, not forwarded.
        let end = String::from_utf8_lossy(&stream).find("\"name\"").unwrap();
        let mut tap = screened_tap(false);
        let out = run(&mut tap, &[&stream[..end]]);
        assert!(!tap.done());
        assert_eq!(assembled(&out), (content.to_owned(), String::new()));
        let text = String::from_utf8(out).unwrap();
        assert!(
            !text.contains("4111") && !text.contains("tool_calls"),
            "{text}"
        );
        assert_eq!(tap.take_found().len(), 2);
    }

    fn check_observed(tap: &StreamTap) {
        assert_eq!(tap.data_events(), 4);
        assert!(tap.done());
        assert_eq!(tap.usage(), Some(USAGE_JSON.as_bytes()));
        assert_eq!(tap.model(), Some("gpt-4o"));
        assert_eq!(tap.error(), None);
    }

    #[test]
    fn forwards_and_observes_whole() {
        for nl in ["\n", "\r\n", "\r"] {
            let (stream, stripped) = openai_stream(nl);
            let mut tap = StreamTap::new(false);
            assert_eq!(run(&mut tap, &[&stream]), stream);
            check_observed(&tap);
            let mut tap = StreamTap::new(true);
            assert_eq!(run(&mut tap, &[&stream]), stripped);
            check_observed(&tap);
        }
    }

    #[test]
    fn feed_returns_complete_events_only() {
        let mut tap = StreamTap::new(false);
        assert_eq!(
            &*tap.feed(b"data: {\"a\":1}\n\ndata: {\"b\""),
            b"data: {\"a\":1}\n\n"
        );
        assert_eq!(&*tap.feed(b":2}\n"), b"");
        assert_eq!(&*tap.feed(b"\n: c\n"), b"data: {\"b\":2}\n\n");
        assert_eq!(tap.finish(), b": c\n");
        assert_eq!(tap.data_events(), 2);
    }

    #[test]
    fn whole_chunk_is_borrowed() {
        let mut tap = StreamTap::new(false);
        let chunk = b"data: 1\n\ndata: \"y\"\n\n";
        assert!(matches!(tap.feed(chunk), Cow::Borrowed(b) if b.len() == chunk.len()));
    }

    #[test]
    fn cr_split_from_lf_after_stripped_event() {
        let (stream, stripped) = openai_stream("\r\n");
        let usage_end = stream.len() - b"data: [DONE]\r\n\r\n".len();
        let mut tap = StreamTap::new(true);
        let out = run(
            &mut tap,
            &[&stream[..usage_end - 1], &stream[usage_end - 1..]],
        );
        assert_eq!(out, stripped);
        check_observed(&tap);
    }

    /// Payloads the walk gives up on are validated and parsed apart, and still observed.
    const ODD_CHUNKS: &[&str] = &[
        // An index that is a string; a key with an escape; choices that are not a list.
        r#"{"model":"m","choices":[{"index":"0","delta":{"content":"x"}}],"usage":{"total_tokens":3}}"#,
        r#"{"\u0078":1,"model":"m","choices":[],"usage":{"total_tokens":3}}"#,
        r#"{"model":"m","choices":{"0":{}},"usage":{"total_tokens":3}}"#,
    ];

    #[test]
    fn chunks_the_walk_gives_up_on_are_still_observed() {
        for chunk in ODD_CHUNKS {
            assert!(ChunkSpans::walk(chunk).is_none(), "{chunk}");
            let stream = format!("data: {chunk}\n\ndata: [DONE]\n\n");
            let mut tap = StreamTap::new(false);
            assert_eq!(run(&mut tap, &[stream.as_bytes()]), stream.as_bytes());
            assert_eq!(tap.usage(), Some(&b"{\"total_tokens\":3}"[..]), "{chunk}");
            assert_eq!((tap.model(), tap.data_events()), (Some("m"), 1));
        }
    }

    #[test]
    fn screened_a_chunk_whose_texts_cannot_be_found_is_not_forwarded() {
        let first = format!("{CHUNK}\n\n");
        for chunk in [
            ODD_CHUNKS[0],
            ODD_CHUNKS[2],
            // A field repeated: a client reads the last one, the parse reads none.
            r#"{"choices":5,"choices":[{"delta":{"content":"4111 1111 1111 1111"}}]}"#,
            // A text that is not a string.
            r#"{"choices":[{"delta":{"content":["4111 1111 1111 1111"]}}]}"#,
        ] {
            let stream = format!("{first}data: {chunk}\n\ndata: [DONE]\n\n");
            let mut tap = screened_tap(false);
            let out = String::from_utf8(run(&mut tap, &[stream.as_bytes()])).unwrap();
            assert!(tap.malformed(), "{chunk}");
            // The stream ends there (the proxy sends an error event): what was held back stays held.
            assert!(!out.contains("4111") && !out.contains("[DONE]"), "{out}");
            assert!("Hi".starts_with(&assembled(out.as_bytes()).0), "{out}");
        }
        // What has no texts to find goes out as it is: a chunk without choices, JSON that is not an object.
        let stream = format!("data: {}\n\ndata: [1]\n\ndata: [DONE]\n\n", ODD_CHUNKS[1]);
        let mut tap = screened_tap(false);
        assert_eq!(run(&mut tap, &[stream.as_bytes()]), stream.as_bytes());
        assert!(!tap.malformed());
    }

    #[test]
    fn empty_chunk_keeps_pending_cr() {
        let mut tap = StreamTap::new(false);
        let out = run(&mut tap, &[b"data: {}\r", b"", b"\n\r", b"", b"\n"]);
        assert_eq!(out, b"data: {}\r\n\r\n");
        assert_eq!(tap.data_events(), 1);
    }

    #[test]
    fn error_payload_recorded() {
        let mut tap = StreamTap::new(false);
        let payload =
            br#"{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}"#;
        let stream = [&b"data: "[..], payload, b"\n\n"].concat();
        assert_eq!(run(&mut tap, &[&stream]), stream);
        assert_eq!(tap.error(), Some(&payload[..]));
        assert_eq!(tap.data_events(), 1);
        assert!(!tap.done());
    }

    #[test]
    fn tool_call_names_recorded_in_order() {
        let start = |i: u8, name: &str| {
            format!(
                r#"data: {{"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":{i},"id":"c{i}","type":"function","function":{{"name":"{name}","arguments":""}}}}]}}}}]}}"#
            )
        };
        let args = r#"data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"name\": \"x\"}"}}]}}]}"#;
        let text = r#"data: {"choices":[{"index":0,"delta":{"content":"the \"name\": \"y\""}}]}"#;
        let stream = format!(
            "{}\n\n{args}\n\n{text}\n\n{}\n\ndata: [DONE]\n\n",
            start(0, "get_weather"),
            start(1, "get_time")
        );
        let mut tap = StreamTap::new(false);
        assert_eq!(run(&mut tap, &[stream.as_bytes()]), stream.as_bytes());
        assert_eq!(tap.tool_names(), ["get_weather", "get_time"]);
        assert_eq!(tap.data_events(), 4);
    }

    #[test]
    fn null_error_and_non_object_json_are_not_observed() {
        let mut tap = StreamTap::new(true);
        let stream = b"data: {\"error\":null,\"usage\":null}\n\ndata: [\"usage\", \"error\", {}]\n\ndata: [1]\n\ndata: \"usage\"\n\n";
        assert_eq!(run(&mut tap, &[stream]), stream);
        assert_eq!((tap.error(), tap.usage(), tap.model()), (None, None, None));
        assert_eq!(tap.data_events(), 4);
        assert!(!tap.malformed());
    }

    const BAD: &[u8] = b"data: {not json\n\n";

    #[test]
    fn malformed_event_in_the_middle() {
        let (stream, _) = openai_stream("\n");
        let cut = stream.windows(2).position(|w| w == b"\n\n").unwrap() + 2; // after the comment
        let cut = cut + CHUNK.len() + 2;
        let bad = [&stream[..cut], BAD, &stream[cut..]].concat();
        let mut tap = StreamTap::new(false);
        assert_eq!(&*tap.feed(&bad), &stream[..cut]);
        assert!(tap.malformed());
        assert_eq!(tap.data_events(), 1);
        assert_eq!(tap.model(), Some("gpt-4o"));
        assert!(!tap.done());
        assert_eq!(tap.usage(), None);
        // Nothing ever again.
        assert_eq!(&*tap.feed(&stream), b"");
        assert_eq!(tap.finish(), b"");
        assert_eq!(tap.data_events(), 1);
        assert!(!tap.done());
        assert_eq!(tap.usage(), None);
    }

    #[test]
    fn malformed_split_across_chunks() {
        let mut tap = StreamTap::new(false);
        assert_eq!(
            &*tap.feed(b"data: {\"a\":1}\n\ndata: {\"b\""),
            b"data: {\"a\":1}\n\n"
        );
        assert_eq!(&*tap.feed(b":2"), b"");
        assert!(!tap.malformed());
        assert_eq!(&*tap.feed(b"\n: c\ndata: \"c\":3}\n"), b"");
        assert!(!tap.malformed());
        assert_eq!(&*tap.feed(b"\ndata: {}\n\n"), b"");
        assert!(tap.malformed());
        assert_eq!(tap.data_events(), 1);
        assert_eq!(tap.finish(), b"");
    }

    #[test]
    fn valid_events_before_the_bad_one_in_the_same_chunk_are_returned() {
        // The first event started in an earlier chunk (the carried-buffer path), the second is whole in this one.
        let mut tap = StreamTap::new(false);
        assert_eq!(&*tap.feed(b"data: {\"a\""), b"");
        let out = tap.feed(b":1}\r\n\r\n: ping\r\n\r\ndata: [2]\r\n\r\nid: 1\r\ndata: {\"a\":}\r\n\r\ndata: {}\r\n\r\n");
        assert_eq!(
            &*out,
            b"data: {\"a\":1}\r\n\r\n: ping\r\n\r\ndata: [2]\r\n\r\n"
        );
        assert!(tap.malformed());
        assert_eq!(tap.data_events(), 2);
        // And the borrowed path: events whole within this chunk.
        let mut tap = StreamTap::new(false);
        assert_eq!(
            &*tap.feed(b"data: 1\n\ndata: 2}\n\ndata: 3\n\n"),
            b"data: 1\n\n"
        );
        assert_eq!(&*tap.feed(b"data: 4\n\n"), b"");
        assert_eq!(tap.data_events(), 1);
    }

    #[test]
    fn malformed_bare_cr_event_end_at_chunk_end() {
        let mut tap = StreamTap::new(false);
        assert_eq!(&*tap.feed(b"data: {}\r\rdata: x\r\r"), b"data: {}\r\r");
        assert!(tap.malformed());
        assert_eq!(&*tap.feed(b"\n"), b"");
        assert_eq!(tap.finish(), b"");
    }

    #[test]
    fn malformed_payloads() {
        for payload in [
            &b"data:"[..],
            b"data: ",
            b"data: {\"usage\":{\"total_tokens\":3}",
            b"data: {\"a\":1}\ndata: {\"b\":2}",
            b"data: NaN",
            b"data: [DON]",
            b"data:  [DONE]",
            b"data: \"\xff\"",
            b"data: {\"a\":1} x",
            b"data: \xEF\xBB\xBF{}",
        ] {
            let stream = [b"data: {}\n\n", payload, b"\n\ndata: {}\n\n"].concat();
            let mut tap = StreamTap::new(true);
            assert_eq!(
                run(&mut tap, &[&stream]),
                b"data: {}\n\n",
                "{}",
                String::from_utf8_lossy(payload)
            );
            assert!(tap.malformed());
            assert_eq!((tap.data_events(), tap.usage()), (1, None));
        }
    }

    #[test]
    fn done_comments_and_dataless_events_are_not_validated() {
        let stream = b": not json\n\nevent: x\nid: 1\nretry: 5\n\n\n\ndata: [DONE]\n\ndata: [DONE] trailing\n\ndata: {\"usage\":{},\"usage\":{}}\n\n";
        let mut tap = StreamTap::new(true);
        assert_eq!(run(&mut tap, &[stream]), stream);
        assert!(!tap.malformed());
        assert!(tap.done());
        assert_eq!(tap.data_events(), 1); // the duplicate-key object: valid JSON, though not observed
    }

    #[test]
    fn multi_line_json_data_and_bom() {
        let mut tap = StreamTap::new(true);
        let stream = b"\xEF\xBB\xBFdata: {\"model\":\"m\",\ndata: \"choices\":[ ],\"usage\":{\"total_tokens\":3}}\n\n";
        assert_eq!(run(&mut tap, &[stream]), b"");
        assert_eq!(tap.usage(), Some(&b"{\"total_tokens\":3}"[..]));
        assert_eq!(tap.model(), Some("m"));
    }

    #[test]
    fn usage_with_choices_is_kept() {
        let mut tap = StreamTap::new(true);
        let stream = b"data: {\"choices\":[{\"index\":0}],\"usage\":{\"total_tokens\":3}}\n\n";
        assert_eq!(run(&mut tap, &[stream]), stream);
        assert_eq!(tap.usage(), Some(&b"{\"total_tokens\":3}"[..]));
    }

    #[test]
    fn unterminated_tail_is_forwarded_not_observed() {
        let mut tap = StreamTap::new(false);
        let (stream, _) = openai_stream("\n");
        let cut = stream.len() - 1;
        assert_eq!(run(&mut tap, &[&stream[..cut]]), &stream[..cut]);
        assert!(!tap.done());
    }

    /// The events of `openai_stream(nl)` (each with its terminator), and the index of the usage event.
    fn openai_events(nl: &str) -> (Vec<String>, usize) {
        let events = [
            ": OPENROUTER PROCESSING",
            CHUNK,
            CHUNK,
            FINAL,
            USAGE,
            "data: [DONE]",
        ]
        .iter()
        .map(|e| format!("{e}{nl}{nl}"))
        .collect();
        (events, 4)
    }

    /// Malformed events (before their `nl`-terminated lines are joined); all but the last line end in `nl`.
    const BAD_EVENTS: &[&[&str]] = &[
        &["data: {not json"],
        &["data:"],
        &["event: x", r#"data: {"usage":{"total_tokens":3}"#],
        &[r#"data: {"a":1}"#, ": mid", r#"data: {"b":2}"#],
        &["id: 1", "data: [DONE"],
        &[
            r#"data: {"choices":[],"#,
            r#"data: "usage":{"total_tokens":3}}}"#,
        ],
    ];

    /// A reference for arbitrary bytes: the stream up to its first malformed data event (whole-buffer scan).
    fn reference_prefix(stream: &[u8]) -> &[u8] {
        let (mut pos, mut event_start, mut data, mut has_data) = (0, 0, Vec::new(), false);
        while let Some((end, next, _)) = next_line(&stream[pos..]) {
            let line = &stream[pos..pos + end];
            let line = if pos == 0 { strip_bom(line) } else { line };
            pos += next;
            match Line::classify(line) {
                Line::Blank => {
                    if mem::take(&mut has_data) {
                        data.pop();
                        let valid = serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_ok()
                            && std::str::from_utf8(&data).is_ok();
                        if !data.starts_with(b"[DONE]") && !valid {
                            return &stream[..event_start];
                        }
                    }
                    data.clear();
                    event_start = pos;
                }
                Line::Field(b"data", value) => {
                    data.extend_from_slice(value);
                    data.push(b'\n');
                    has_data = true;
                }
                _ => {}
            }
        }
        stream
    }

    const PIECES: &[&[u8]] = &[
        b"data: ",
        b"data:",
        b"{}",
        b"[1,",
        b"2]",
        b"\"s\"",
        b"[DONE]",
        b"x",
        b": c",
        b"id: 1",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b" ",
        b"\xef\xbb\xbf",
        b"\xff",
    ];

    proptest! {
        #[test]
        fn malformed_stream_any_split_returns_prefix(
            nl in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            strip in any::<bool>(),
            bad in proptest::sample::select(BAD_EVENTS),
            at in 0..=6usize,
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let (mut events, usage_at) = openai_events(nl);
            events.insert(at, bad.iter().map(|l| format!("{l}{nl}")).collect::<String>() + nl);
            let stream = events.concat().into_bytes();
            let expected: String = events[..at]
                .iter()
                .enumerate()
                .filter(|&(i, _)| !(strip && i == usage_at))
                .map(|(_, e)| e.as_str())
                .collect();
            let points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            let mut tap = StreamTap::new(strip);
            let out = run(&mut tap, &split_at_points(&stream, &points));
            prop_assert_eq!(String::from_utf8(out).unwrap(), expected);
            prop_assert!(tap.malformed());
            let data_before = events[..at].iter().filter(|e| e.starts_with("data: {")).count();
            prop_assert_eq!(tap.data_events(), data_before as u64);
            prop_assert_eq!(tap.done(), at > 5);
            prop_assert_eq!(tap.usage().is_some(), at > usage_at);
            prop_assert_eq!(tap.model().is_some(), at > 1);
        }

        #[test]
        fn any_split_forwards_and_observes(
            nl in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            strip in any::<bool>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let (stream, stripped) = openai_stream(nl);
            let points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            let mut tap = StreamTap::new(strip);
            let out = run(&mut tap, &split_at_points(&stream, &points));
            prop_assert_eq!(out, if strip { stripped } else { stream.clone() });
            check_observed(&tap);
        }

        #[test]
        fn bytewise_feed_matches(nl in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")], strip in any::<bool>()) {
            let (stream, stripped) = openai_stream(nl);
            let chunks: Vec<&[u8]> = stream.chunks(1).collect();
            let mut tap = StreamTap::new(strip);
            prop_assert_eq!(run(&mut tap, &chunks), if strip { stripped } else { stream.clone() });
            check_observed(&tap);
        }

        #[test]
        fn arbitrary_bytes_round_trip(
            stream in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), Just(b'd'), any::<u8>()], 0..200),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            let mut tap = StreamTap::new(true);
            let expected = reference_prefix(&stream);
            prop_assert_eq!(run(&mut tap, &split_at_points(&stream, &points)), expected);
            prop_assert_eq!(tap.malformed(), expected.len() < stream.len());
        }

        #[test]
        fn arbitrary_events_round_trip(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..40),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        ) {
            let stream = pieces.concat();
            let points: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
            let mut tap = StreamTap::new(false);
            let expected = reference_prefix(&stream);
            prop_assert_eq!(run(&mut tap, &split_at_points(&stream, &points)), expected);
            prop_assert_eq!(tap.malformed(), expected.len() < stream.len());
        }
    }
}
