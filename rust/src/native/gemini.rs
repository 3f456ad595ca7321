//! Gemini `streamGenerateContent?alt=sse` → Anthropic Messages SSE: each SSE event is a partial
//! `GenerateContentResponse`, parsed borrowing its strings, and the matching Messages events written.
//!
//! Gemini has no block boundaries and no end event: a block closes when a part of another kind arrives, and
//! the message ends (`message_delta` with the last usage, then `message_stop`) when the upstream body does,
//! provided a chunk carried a finishReason ([`GeminiStream::finish`]).
//!
//! Wire shapes: https://ai.google.dev/api/generate-content (GenerateContentResponse, Part, FinishReason,
//! UsageMetadata). Grounded answers (Google Search) are not handled here: the adapter keeps those streams on
//! its Python translator, which cuts the answer into cited spans.
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{block_delta, block_start, block_stop, message_end, message_start, FinalUsage};
use crate::json::push_str;
use crate::sse::{SseEvent, SseParser};

type Str<'a> = Option<Cow<'a, str>>;

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    candidates: Option<Vec<Candidate<'a>>>,
    #[serde(rename = "usageMetadata", borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(rename = "modelVersion", borrow, default)]
    model_version: Str<'a>,
    #[serde(rename = "promptFeedback", borrow, default)]
    prompt_feedback: Option<PromptFeedback<'a>>,
}

#[derive(Deserialize)]
struct PromptFeedback<'a> {
    #[serde(rename = "blockReason", borrow, default)]
    block_reason: Str<'a>,
}

#[derive(Deserialize)]
struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(rename = "finishReason", borrow, default)]
    finish_reason: Str<'a>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Option<Vec<Part<'a>>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Str<'a>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(rename = "thoughtSignature", borrow, default)]
    thought_signature: Str<'a>,
    #[serde(rename = "functionCall", borrow, default)]
    function_call: Option<FunctionCall<'a>>,
}

#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(borrow, default)]
    id: Str<'a>,
    #[serde(borrow, default)]
    name: Str<'a>,
    #[serde(borrow, default)]
    args: Option<&'a RawValue>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
}

/// Gemini's finishReason → Anthropic's stop_reason (blocked for safety, recitation, a blocklist, prohibited
/// content or personal data: a refusal).
fn stop_reason(reason: &str) -> &'static str {
    match reason {
        "MAX_TOKENS" => "max_tokens",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "refusal",
        _ => "end_turn",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    ToolUse,
}

/// An SSE event's data is not a `GenerateContentResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed;

/// One streamGenerateContent answer's translation.
pub struct GeminiStream {
    parser: SseParser,
    events: Vec<SseEvent>,
    model: String,
    message_id: String,
    block: Option<Block>,
    /// Index of the last block opened (-1: none yet).
    index: i64,
    calls: u64,
    started: bool,
    stop: Option<&'static str>,
    usage: UsageMetadata,
}

impl GeminiStream {
    pub fn new(model: String, message_id: String) -> Self {
        Self {
            parser: SseParser::new(),
            events: Vec::new(),
            model,
            message_id,
            block: None,
            index: -1,
            calls: 0,
            started: false,
            stop: None,
            usage: UsageMetadata::default(),
        }
    }

    /// The Messages SSE of the SSE events `chunk` completes.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<u8>, Malformed> {
        let mut out = Vec::with_capacity(chunk.len() + 64);
        self.parser.feed_into(chunk, &mut self.events);
        let events = std::mem::take(&mut self.events);
        let mut result = Ok(());
        for event in &events {
            result = self.chunk(&event.data, &mut out);
            if result.is_err() {
                break;
            }
        }
        self.events = events;
        self.events.clear();
        result.map(|()| out)
    }

    /// The closing events once the body ended, or nothing when no chunk said why the answer stopped (an
    /// incomplete stream).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let Some(stop) = self.stop.filter(|_| self.started) else {
            return out;
        };
        // promptTokenCount includes the cached part; Anthropic's input_tokens does not. Thoughts are output.
        let u = self.usage;
        let cached = u.cached_content_token_count.unwrap_or(0);
        let usage = FinalUsage {
            input: u.prompt_token_count.unwrap_or(0).saturating_sub(cached),
            output: u.candidates_token_count.unwrap_or(0) + u.thoughts_token_count.unwrap_or(0),
            cache_read: cached,
            cache_write: 0,
        };
        self.close(&mut out);
        message_end(&mut out, stop, usage);
        out
    }

    fn chunk(&mut self, data: &str, out: &mut Vec<u8>) -> Result<(), Malformed> {
        let body: Chunk = serde_json::from_str(data).map_err(|_| Malformed)?;
        if !std::mem::replace(&mut self.started, true) {
            let model = body.model_version.as_deref().filter(|m| !m.is_empty());
            message_start(out, &self.message_id, model.unwrap_or(&self.model));
        }
        if let Some(raw) = body.usage {
            // The latest non-empty usageMetadata wins whole, as the Python translator keeps it.
            if !matches!(raw.get().trim(), "{}" | "null") {
                self.usage = serde_json::from_str(raw.get()).map_err(|_| Malformed)?;
            }
        }
        let Some(candidate) = body.candidates.and_then(|c| c.into_iter().next()) else {
            let blocked = body.prompt_feedback.and_then(|f| f.block_reason);
            if blocked.is_some_and(|r| !r.is_empty()) {
                self.stop = Some("refusal");
            }
            return Ok(());
        };
        let parts = candidate.content.and_then(|c| c.parts).unwrap_or_default();
        for part in parts {
            if let Some(call) = part.function_call {
                self.calls += 1;
                let id = match call.id.as_deref().filter(|id| !id.is_empty()) {
                    Some(id) => id.to_owned(),
                    None => {
                        let id = &self.message_id;
                        let from = id.char_indices().rev().nth(7).map_or(0, |(i, _)| i);
                        format!("toolu_gemini_{}_{}", &id[from..], self.calls)
                    }
                };
                let name = call.name.as_deref().unwrap_or("");
                self.open(out, Block::ToolUse, |o| {
                    o.extend_from_slice(br#"{"type":"tool_use","id":"#);
                    push_str(o, &id);
                    o.extend_from_slice(br#","name":"#);
                    push_str(o, name);
                    o.extend_from_slice(br#","input":{}}"#);
                });
                // Falsy arguments (absent, null, empty) are an empty object, as the Python translator sends them.
                let args = call.args.map_or("null", |a| a.get().trim());
                let args = match args {
                    "null" | "{}" | "[]" | "\"\"" | "0" | "false" => "{}",
                    other => other,
                };
                block_delta(
                    out,
                    self.index as u64,
                    "input_json_delta",
                    "partial_json",
                    args,
                );
                self.close(out);
            } else if part.thought == Some(true) {
                if self.block != Some(Block::Thinking) {
                    self.open(out, Block::Thinking, |o| {
                        o.extend_from_slice(br#"{"type":"thinking","thinking":"","signature":""}"#)
                    });
                }
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    block_delta(out, self.index as u64, "thinking_delta", "thinking", &text);
                }
                if let Some(signature) = part.thought_signature.filter(|s| !s.is_empty()) {
                    block_delta(
                        out,
                        self.index as u64,
                        "signature_delta",
                        "signature",
                        &signature,
                    );
                }
            } else if let Some(text) = part.text {
                if self.block != Some(Block::Text) {
                    self.open(out, Block::Text, |o| {
                        o.extend_from_slice(br#"{"type":"text","text":""}"#)
                    });
                }
                block_delta(out, self.index as u64, "text_delta", "text", &text);
            }
        }
        if let Some(reason) = candidate.finish_reason.filter(|r| !r.is_empty()) {
            let stop = stop_reason(&reason);
            self.stop = Some(if self.calls > 0 && stop == "end_turn" {
                "tool_use"
            } else {
                stop
            });
        }
        Ok(())
    }

    fn open(&mut self, out: &mut Vec<u8>, kind: Block, block: impl FnOnce(&mut Vec<u8>)) {
        self.close(out);
        self.index += 1;
        self.block = Some(kind);
        block_start(out, self.index as u64, block);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.block.take().is_some() {
            block_stop(out, self.index as u64);
        }
    }
}
