//! Amazon Bedrock `ConverseStream` → Anthropic Messages SSE, straight from the event-stream bytes: the
//! framing is decoded (both CRCs checked), each event's JSON payload parsed borrowing its strings, and the
//! matching Messages events written.
//!
//! Converse opens text and reasoning blocks implicitly with their first delta (only tool uses get a
//! `contentBlockStart`), and sends the stop reason (`messageStop`) before the usage (`metadata`): the
//! `message_delta` that carries both goes out with `metadata`, then `message_stop`.
//!
//! Event shapes: https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
//!
//! An `exception` or `error` message (throttling, a model stream error …) stops the translation: it is kept
//! for the adapter, which reports it in the caller's format, and nothing after it is translated.
use std::borrow::Cow;

use serde::Deserialize;

use super::{block_delta, block_start, block_stop, message_end, message_start, FinalUsage};
use crate::eventstream::{scan_headers, DecodeError, Decoder};
use crate::json::push_str;

type Str<'a> = Option<Cow<'a, str>>;

/// Why a stream cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The event-stream framing is broken (sticky: nothing after it can be decoded).
    Framing(DecodeError),
    /// An event's payload is not the JSON its type promises.
    Malformed(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Framing(e) => e.fmt(f),
            Self::Malformed(kind) => write!(f, "{kind} event is not valid JSON of its type"),
        }
    }
}

/// A message that is not an event: its `:exception-type` / `:error-code` and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub kind: Option<String>,
    pub payload: Vec<u8>,
}

#[derive(Deserialize, Default)]
struct Payload<'a> {
    #[serde(rename = "contentBlockIndex", default)]
    index: u64,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    start: Option<Start<'a>>,
    #[serde(rename = "stopReason", borrow, default)]
    stop_reason: Str<'a>,
    #[serde(default)]
    usage: Option<UsageIn>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow, default)]
    text: Str<'a>,
    #[serde(rename = "toolUse", borrow, default)]
    tool_use: Option<ToolDelta<'a>>,
    #[serde(rename = "reasoningContent", borrow, default)]
    reasoning: Option<Reasoning<'a>>,
}

#[derive(Deserialize)]
struct ToolDelta<'a> {
    #[serde(borrow, default)]
    input: Str<'a>,
}

#[derive(Deserialize)]
struct Reasoning<'a> {
    #[serde(borrow, default)]
    text: Str<'a>,
    #[serde(borrow, default)]
    signature: Str<'a>,
    #[serde(rename = "redactedContent", borrow, default)]
    redacted: Str<'a>,
}

#[derive(Deserialize)]
struct Start<'a> {
    #[serde(rename = "toolUse", borrow, default)]
    tool_use: Option<ToolStart<'a>>,
}

#[derive(Deserialize)]
struct ToolStart<'a> {
    #[serde(rename = "toolUseId", borrow, default)]
    id: Str<'a>,
    #[serde(borrow, default)]
    name: Str<'a>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct UsageIn {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_write_input_tokens: Option<u64>,
}

/// Converse's stop reason → Anthropic's (a Bedrock guardrail or content filter is a refusal).
fn stop_reason(converse: &str) -> &'static str {
    match converse {
        "tool_use" => "tool_use",
        "max_tokens" => "max_tokens",
        "stop_sequence" => "stop_sequence",
        "model_context_window_exceeded" => "model_context_window_exceeded",
        "guardrail_intervened" | "content_filtered" => "refusal",
        _ => "end_turn",
    }
}

/// One ConverseStream's translation.
pub struct ConverseStream {
    decoder: Decoder,
    state: State,
}

/// Everything but the framing: what spans events.
struct State {
    model: String,
    message_id: String,
    /// Content block indices opened so far (a handful per answer).
    opened: Vec<u64>,
    stop: &'static str,
    done: bool,
    exception: Option<Exception>,
    /// An exception arrived: nothing after it is translated.
    stopped: bool,
}

impl ConverseStream {
    pub fn new(model: String, message_id: String, max_message: usize) -> Self {
        Self {
            decoder: Decoder::new(max_message),
            state: State {
                model,
                message_id,
                opened: Vec::new(),
                stop: "end_turn",
                done: false,
                exception: None,
                stopped: false,
            },
        }
    }

    /// The Messages SSE for the events `chunk` completes (partial messages wait for the next chunk).
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(chunk.len() + 64);
        let mut malformed = None;
        let state = &mut self.state;
        let result = self.decoder.feed_raw(chunk, |headers, payload| {
            if state.stopped || malformed.is_some() {
                return Ok(());
            }
            let (mut message, mut event, mut exception, mut error) = (None, None, None, None);
            scan_headers(headers, |h| {
                if h.tag == 7 {
                    match h.name {
                        b":message-type" => message = Some(h.value),
                        b":event-type" => event = Some(h.value),
                        b":exception-type" => exception = Some(h.value),
                        b":error-code" => error = Some(h.value),
                        _ => {}
                    }
                }
                Ok(())
            })?;
            // scan_headers checked that string values are UTF-8.
            let text = |v: &[u8]| std::str::from_utf8(v).unwrap_or("").to_owned();
            if message != Some(b"event".as_slice()) {
                state.stopped = true;
                state.exception = Some(Exception {
                    kind: event.or(exception).or(error).map(text),
                    payload: payload.to_vec(),
                });
                return Ok(());
            }
            if let Some(kind) = event {
                if state.event(kind, payload, &mut out).is_none() {
                    malformed = Some(text(kind));
                }
            }
            Ok(())
        });
        result.map_err(Error::Framing)?;
        match malformed {
            Some(kind) => {
                self.state.stopped = true;
                Err(Error::Malformed(kind))
            }
            None => Ok(out),
        }
    }

    /// End of the body: an error if it stopped inside a message.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.decoder.finish().map_err(Error::Framing)
    }

    /// The exception that stopped the translation, once.
    pub fn take_exception(&mut self) -> Option<Exception> {
        self.state.exception.take()
    }

    /// The `metadata` event (the end of a complete answer) was translated.
    pub fn done(&self) -> bool {
        self.state.done
    }
}

impl State {
    /// Translate one event; None when its payload is not the JSON its type promises.
    fn event(&mut self, kind: &[u8], payload: &[u8], out: &mut Vec<u8>) -> Option<()> {
        let body: Payload = match kind {
            b"contentBlockDelta" | b"contentBlockStart" | b"contentBlockStop" | b"messageStart"
            | b"messageStop" | b"metadata" => {
                if payload.is_empty() {
                    Payload::default()
                } else {
                    serde_json::from_slice(payload).ok()?
                }
            }
            _ => return Some(()), // event types added after this was written
        };
        let index = body.index;
        match kind {
            b"contentBlockDelta" => {
                let Some(delta) = body.delta else {
                    return Some(());
                };
                if let Some(text) = delta.text {
                    if !self.opened.contains(&index) {
                        self.open(out, index, |o| {
                            o.extend_from_slice(br#"{"type":"text","text":""}"#)
                        });
                    }
                    block_delta(out, index, "text_delta", "text", &text);
                } else if let Some(tool) = delta.tool_use {
                    let partial = tool.input.unwrap_or_default();
                    block_delta(out, index, "input_json_delta", "partial_json", &partial);
                } else if let Some(reasoning) = delta.reasoning {
                    if let Some(data) = reasoning.redacted {
                        self.open(out, index, |o| {
                            o.extend_from_slice(br#"{"type":"redacted_thinking","data":"#);
                            push_str(o, &data);
                            o.push(b'}');
                        });
                        return Some(());
                    }
                    if !self.opened.contains(&index) {
                        self.open(out, index, |o| {
                            o.extend_from_slice(
                                br#"{"type":"thinking","thinking":"","signature":""}"#,
                            )
                        });
                    }
                    if let Some(text) = reasoning.text {
                        block_delta(out, index, "thinking_delta", "thinking", &text);
                    }
                    if let Some(signature) = reasoning.signature {
                        block_delta(out, index, "signature_delta", "signature", &signature);
                    }
                }
            }
            b"contentBlockStart" => {
                if let Some(tool) = body.start.and_then(|s| s.tool_use) {
                    self.open(out, index, |o| {
                        o.extend_from_slice(br#"{"type":"tool_use","id":"#);
                        push_str(o, tool.id.as_deref().unwrap_or(""));
                        o.extend_from_slice(br#","name":"#);
                        push_str(o, tool.name.as_deref().unwrap_or(""));
                        o.extend_from_slice(br#","input":{}}"#);
                    });
                }
            }
            b"contentBlockStop" => {
                if self.opened.contains(&index) {
                    block_stop(out, index);
                }
            }
            b"messageStart" => message_start(out, &self.message_id, &self.model),
            b"messageStop" => {
                self.stop = stop_reason(body.stop_reason.as_deref().unwrap_or("end_turn"));
            }
            _ => {
                // metadata
                self.done = true;
                let usage = body.usage.unwrap_or_default();
                let usage = FinalUsage {
                    input: usage.input_tokens.unwrap_or(0),
                    output: usage.output_tokens.unwrap_or(0),
                    cache_read: usage.cache_read_input_tokens.unwrap_or(0),
                    cache_write: usage.cache_write_input_tokens.unwrap_or(0),
                };
                message_end(out, self.stop, usage);
            }
        }
        Some(())
    }

    /// `content_block_start` for block `index`, its `content_block` written by `block`.
    fn open(&mut self, out: &mut Vec<u8>, index: u64, block: impl FnOnce(&mut Vec<u8>)) {
        if !self.opened.contains(&index) {
            self.opened.push(index);
        }
        block_start(out, index, block);
    }
}
