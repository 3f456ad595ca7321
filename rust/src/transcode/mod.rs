//! Streaming translation between LLM wire formats: upstream SSE bytes in, the caller's SSE bytes out.
//!
//! A [`Transcoder`] is one stream's state machine. The SSE parser cuts the upstream bytes into events, a
//! decoder (one per upstream API, `decode`) turns each event into calls on a [`Sink`], and the sink (one
//! encoder per caller API: `chat`, `messages`, `responses`) writes the caller's events. Everything that spans
//! events lives in those two halves: block and tool-call indices, the stop reason held back until usage
//! arrives, and the cumulative usage (kept here, in Anthropic's terms: `input` excludes cached tokens).
//!
//! When upstream and caller speak the same API the events pass through as they came (re-framed, so provider
//! comments are dropped), still decoded on the way for usage, completion and errors: nothing the translation
//! would not know about (citations, server-tool blocks, new event types) is lost.
//!
//! Output depends only on the sequence of upstream events, never on how the bytes were split.
mod chat;
pub mod chat_spans;
mod decode;
mod messages;
pub mod py;
mod responses;
pub mod screen;

use crate::scan::Category;
use crate::sse::{SseEvent, SseParser};
use decode::Decoder;
use screen::{ChatEvent, Screen, Screening};

/// One of the three wire formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// OpenAI chat completions (`chat.completion.chunk` + `[DONE]`).
    Chat,
    /// Anthropic Messages (`message_start` … `message_stop`).
    Messages,
    /// OpenAI Responses (`response.created` … `response.completed`).
    Responses,
}

impl Api {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "chat" => Some(Api::Chat),
            "messages" => Some(Api::Messages),
            "responses" => Some(Api::Responses),
            _ => None,
        }
    }
}

/// Token counts seen so far; every field is the latest value an upstream reported (they are cumulative).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens not read from or written to the cache (Anthropic's `input_tokens`).
    pub input: Option<u64>,
    pub output: Option<u64>,
    pub cache_read: Option<u64>,
    pub cache_write: Option<u64>,
    pub reasoning: Option<u64>,
}

impl Usage {
    pub(crate) fn merge(&mut self, other: Usage) {
        self.input = other.input.or(self.input);
        self.output = other.output.or(self.output);
        self.cache_read = other.cache_read.or(self.cache_read);
        self.cache_write = other.cache_write.or(self.cache_write);
        self.reasoning = other.reasoning.or(self.reasoning);
    }

    /// OpenAI's prompt count, which includes cached tokens.
    pub fn prompt_total(&self) -> Option<u64> {
        self.input
            .map(|i| i + self.cache_read.unwrap_or(0) + self.cache_write.unwrap_or(0))
    }
}

/// Why the model stopped, in a vocabulary every format can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    EndTurn,
    StopSequence,
    PauseTurn,
    MaxTokens,
    ToolUse,
    ContentFilter,
}

/// What an encoder is told, in upstream order. `out` receives the caller's bytes.
pub(crate) trait Sink: Send + Sync {
    fn start(&mut self, out: &mut Vec<u8>, id: &str, usage: &Usage);
    fn text(&mut self, out: &mut Vec<u8>, text: &str);
    fn thinking(&mut self, out: &mut Vec<u8>, text: &str);
    /// The signature of the current thinking block, passed through verbatim.
    fn signature(&mut self, out: &mut Vec<u8>, signature: &str);
    fn redacted_thinking(&mut self, out: &mut Vec<u8>, data: &str);
    fn tool_start(&mut self, out: &mut Vec<u8>, id: &str, name: &str);
    fn tool_args(&mut self, out: &mut Vec<u8>, fragment: &str);
    /// The upstream closed its current content block.
    fn block_end(&mut self, out: &mut Vec<u8>);
    fn stop(&mut self, out: &mut Vec<u8>, reason: Stop);
    /// The upstream finished the message normally; `usage` is final.
    fn end(&mut self, out: &mut Vec<u8>, usage: &Usage);
    /// An error event in the caller's shape (`kind` is an error type such as `overloaded_error`).
    fn error(&mut self, out: &mut Vec<u8>, kind: &str, message: &str);
    /// Passed through as they came, the upstream's events carry its own sequence numbers: the next event
    /// this sink writes (an error the gateway adds) continues from `next`. Only Responses numbers events.
    fn resume_sequence(&mut self, _next: u64) {}
    /// Citations of the answer's text found by the provider's web search, with offsets in characters into
    /// the whole answer's text (every text delta so far, in order). Only the Responses encoder writes them
    /// (`response.output_text.annotation.added`); chat callers get a chunk from the gateway and Messages
    /// callers of a Messages upstream the upstream's own blocks.
    fn annotate(&mut self, _out: &mut Vec<u8>, _notes: &[Citation]) {}
    /// The provider ran a web search (`query` may be empty): a Responses `web_search_call` item.
    fn search_call(&mut self, _out: &mut Vec<u8>, _query: &str) {}
}

/// One `url_citation`: `start`..`end` in characters of the answer's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    pub url: String,
    pub title: String,
    pub start: usize,
    pub end: usize,
}

/// Per-stream settings the caller's format needs and the upstream does not provide.
#[derive(Debug, Clone)]
pub struct Options {
    /// The model name to show the caller (the gateway's public id).
    pub model: String,
    /// Unix time for `created` / `created_at`.
    pub created: u64,
    /// Shown in Anthropic's `message_start` when the upstream reports input tokens only at the end.
    pub input_tokens_estimate: u64,
    /// Emit OpenAI's usage chunk before `[DONE]` (chat callers' `stream_options.include_usage`).
    pub include_usage: bool,
    /// A forced tool that carries structured output (Anthropic upstreams with `response_format`): its
    /// arguments reach the caller as text, and its `tool_use` stop as a normal end of turn.
    pub json_tool: Option<String>,
    /// USD per million tokens (input, output, cached input): Responses callers get `usage.cost`.
    pub prices: Option<Prices>,
}

/// A model's prices in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    pub input: f64,
    pub output: f64,
    pub cached_input: f64,
}

impl Prices {
    /// The price of `usage` in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let cached = usage.cache_read.unwrap_or(0) as f64;
        let uncached = usage.prompt_total().unwrap_or(0) as f64 - cached;
        let output = usage.output.unwrap_or(0) as f64;
        (uncached * self.input + cached * self.cached_input + output * self.output) / 1e6
    }
}

/// Counts of what went through, for the gateway's metrics and checks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Progress {
    /// Content deltas received (text, thinking, tool arguments): the first marks time to first token.
    pub deltas: u64,
    /// The upstream finished the message normally.
    pub done: bool,
    /// A data event was not JSON: output stopped there.
    pub malformed: bool,
}

pub struct Transcoder {
    parser: SseParser,
    events: Vec<SseEvent>,
    decoder: Decoder,
    sink: Box<dyn Sink>,
    usage: Usage,
    progress: Progress,
    error: Option<(String, String)>,
    passthrough: bool,
    upstream: Api,
    tools: Vec<String>,
    json_tool: Option<String>,
    /// Guardrails on the answer's texts.
    screen: Option<Screen>,
}

impl Transcoder {
    pub fn new(upstream: Api, caller: Api, options: Options) -> Self {
        let json_tool = options.json_tool.clone();
        let sink: Box<dyn Sink> = match caller {
            Api::Chat => Box::new(chat::ChatEncoder::new(options)),
            Api::Messages => Box::new(messages::MessagesEncoder::new(options)),
            Api::Responses => Box::new(responses::ResponsesEncoder::new(options)),
        };
        let sink = match json_tool.clone() {
            Some(name) => Box::new(JsonTool {
                inner: sink,
                name,
                active: false,
                other_tools: false,
            }),
            None => sink,
        };
        Self {
            parser: SseParser::new(),
            events: Vec::new(),
            decoder: Decoder::new(upstream),
            sink,
            usage: Usage::default(),
            progress: Progress::default(),
            error: None,
            passthrough: upstream == caller,
            upstream,
            tools: Vec::new(),
            json_tool,
            screen: None,
        }
    }

    /// Screen every text of the answer before it reaches the caller.
    pub fn with_screen(mut self, screen: Screen) -> Self {
        self.screen = Some(screen);
        self
    }

    /// Translates the events `chunk` completes; partial events wait for the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if self.finished() {
            return out;
        }
        self.parser.feed_into(chunk, &mut self.events);
        let events = std::mem::take(&mut self.events);
        let mut translated = Vec::new();
        for event in &events {
            if self.finished() {
                break;
            }
            let mut screening;
            let sink: &mut dyn Sink = match self.screen.as_mut() {
                Some(screen) if !self.passthrough => {
                    screening = Screening {
                        inner: self.sink.as_mut(),
                        screen,
                    };
                    &mut screening
                }
                _ => self.sink.as_mut(),
            };
            let step = decode::Step {
                sink,
                usage: &mut self.usage,
                progress: &mut self.progress,
                error: &mut self.error,
                tools: &mut self.tools,
                out: if self.passthrough {
                    &mut translated
                } else {
                    &mut out
                },
            };
            if self.decoder.event(event, step).is_err() {
                self.progress.malformed = true;
            } else if self.passthrough {
                translated.clear();
                match self.screen.as_mut() {
                    None => write_event(&mut out, event),
                    Some(screen) => match self.upstream {
                        Api::Messages => screen.messages(event, &mut out),
                        Api::Responses => screen.responses(event, &mut out),
                        Api::Chat => screen.chat(&[ChatEvent::of(event)], &mut out),
                    },
                }
            }
        }
        self.events = events;
        self.events.clear();
        out
    }

    /// Citations the gateway collected from a searching upstream's events (see [`Sink::annotate`]); nothing
    /// for a passed-through stream, which carries the upstream's own.
    pub fn annotate(&mut self, notes: &[Citation]) -> Vec<u8> {
        self.outside_event(|sink, out| sink.annotate(out, notes))
    }

    /// A web search the upstream ran, reported by the gateway (see [`Sink::search_call`]).
    pub fn search_call(&mut self, query: &str) -> Vec<u8> {
        self.outside_event(|sink, out| sink.search_call(out, query))
    }

    /// Calls the sink for something the gateway learnt beside the upstream's events, screened like them.
    fn outside_event(&mut self, call: impl FnOnce(&mut dyn Sink, &mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        if self.finished() || self.passthrough {
            return out;
        }
        match self.screen.as_mut() {
            Some(screen) => call(
                &mut Screening {
                    inner: self.sink.as_mut(),
                    screen,
                },
                &mut out,
            ),
            None => call(self.sink.as_mut(), &mut out),
        }
        out
    }

    /// An error event in the caller's shape, ending the stream (for failures the gateway detects itself).
    pub fn fail(&mut self, kind: &str, message: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if self.error.is_none() {
            self.error = Some((kind.to_owned(), message.to_owned()));
            if self.passthrough {
                // The caller saw the upstream's numbering (shifted by any release events the screen added),
                // not the sink's, which only counted the events it re-encoded and threw away.
                if let Some(next) = self.decoder.next_sequence() {
                    let shift = self.screen.as_ref().map_or(0, Screen::sequence_shift);
                    self.sink.resume_sequence(next + shift);
                }
            }
            self.sink.error(&mut out, kind, message);
        }
        out
    }

    fn finished(&self) -> bool {
        self.progress.done || self.progress.malformed || self.error.is_some()
    }

    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// Names of the tools the model called so far, in order; the structured-output tool is the gateway's
    /// own device, not a call the model made for the client.
    pub fn tool_names(&self) -> Vec<&str> {
        self.tools
            .iter()
            .map(String::as_str)
            .filter(|name| self.json_tool.as_deref() != Some(*name))
            .collect()
    }

    /// Guardrail findings since the last call (category, type): never the values.
    pub fn take_found(&mut self) -> Vec<(Category, String)> {
        self.screen
            .as_mut()
            .map(Screen::take_found)
            .unwrap_or_default()
    }

    pub fn has_new_findings(&self) -> bool {
        self.screen.as_ref().is_some_and(Screen::has_new_findings)
    }

    /// The upstream's (or `fail`'s) error: `(type, message)`.
    pub fn error(&self) -> Option<(&str, &str)> {
        self.error.as_ref().map(|(k, m)| (k.as_str(), m.as_str()))
    }
}

/// Turns the structured-output tool call back into text (see [`Options::json_tool`]).
struct JsonTool {
    inner: Box<dyn Sink>,
    name: String,
    /// The structured-output call is streaming.
    active: bool,
    /// Real tool calls were forwarded, so a `tool_use` stop is still one.
    other_tools: bool,
}

impl Sink for JsonTool {
    fn start(&mut self, out: &mut Vec<u8>, id: &str, usage: &Usage) {
        self.inner.start(out, id, usage);
    }
    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        self.inner.text(out, text);
    }
    fn thinking(&mut self, out: &mut Vec<u8>, text: &str) {
        self.inner.thinking(out, text);
    }
    fn signature(&mut self, out: &mut Vec<u8>, signature: &str) {
        self.inner.signature(out, signature);
    }
    fn redacted_thinking(&mut self, out: &mut Vec<u8>, data: &str) {
        self.inner.redacted_thinking(out, data);
    }
    fn tool_start(&mut self, out: &mut Vec<u8>, id: &str, name: &str) {
        self.active = name == self.name;
        if !self.active {
            self.other_tools = true;
            self.inner.tool_start(out, id, name);
        }
    }
    fn tool_args(&mut self, out: &mut Vec<u8>, fragment: &str) {
        if self.active {
            self.inner.text(out, fragment);
        } else {
            self.inner.tool_args(out, fragment);
        }
    }
    fn block_end(&mut self, out: &mut Vec<u8>) {
        self.inner.block_end(out);
    }
    fn stop(&mut self, out: &mut Vec<u8>, reason: Stop) {
        let reason = match reason {
            Stop::ToolUse if !self.other_tools => Stop::EndTurn,
            other => other,
        };
        self.inner.stop(out, reason);
    }
    fn end(&mut self, out: &mut Vec<u8>, usage: &Usage) {
        self.inner.end(out, usage);
    }
    fn error(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        self.inner.error(out, kind, message);
    }
    fn resume_sequence(&mut self, next: u64) {
        self.inner.resume_sequence(next);
    }
    fn annotate(&mut self, out: &mut Vec<u8>, notes: &[Citation]) {
        self.inner.annotate(out, notes);
    }
    fn search_call(&mut self, out: &mut Vec<u8>, query: &str) {
        self.inner.search_call(out, query);
    }
}

/// Appends `event` in SSE framing.
fn write_event(out: &mut Vec<u8>, event: &SseEvent) {
    if let Some(name) = &event.event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in event.data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

pub(crate) use crate::json::push_str;

#[inline]
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = itoa_buf(n);
    out.extend_from_slice(buf.as_bytes_mut());
}

/// Decimal digits of `n` without allocating.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

/// Appends `n`, or `null` when unknown.
#[inline]
pub(crate) fn push_opt(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => push_u64(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests;
