//! Upstream decoders: one SSE event of an upstream format → calls on the caller's [`Sink`].
//!
//! Fields are borrowed from the event's data where JSON allows (strings without escapes), so the common token
//! event costs one parse and no allocation.
use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{Api, Progress, Sink, Stop, Usage};
use crate::sse::SseEvent;

type Str<'a> = Option<Cow<'a, str>>;

/// Everything a decoder may touch for one event.
pub(crate) struct Step<'s> {
    pub sink: &'s mut dyn Sink,
    pub usage: &'s mut Usage,
    pub progress: &'s mut Progress,
    pub error: &'s mut Option<(String, String)>,
    pub out: &'s mut Vec<u8>,
    /// Names of the tools the model called, in order (tool-call analytics).
    pub tools: &'s mut Vec<String>,
}

impl Step<'_> {
    fn fail(&mut self, kind: &str, message: &str) {
        *self.error = Some((kind.to_owned(), message.to_owned()));
        self.sink.error(self.out, kind, message);
    }

    fn tool_start(&mut self, id: &str, name: &str) {
        self.tools.push(name.to_owned());
        self.sink.tool_start(self.out, id, name);
    }

    fn start(&mut self, started: &mut bool, id: &str) {
        if !std::mem::replace(started, true) {
            self.sink.start(self.out, id, self.usage);
        }
    }

    fn finish(&mut self) {
        self.progress.done = true;
        self.sink.end(self.out, self.usage);
    }
}

/// The event could not be decoded (not JSON, or not the shape its type promises).
pub(crate) struct Malformed;

pub(crate) enum Decoder {
    Chat(ChatState),
    Messages(MessagesState),
    Responses(ResponsesState),
}

#[derive(Default)]
pub(crate) struct ChatState {
    started: bool,
    /// The upstream index and id of the tool call being streamed.
    tool: Option<u64>,
    tool_id: String,
}

#[derive(Default)]
pub(crate) struct MessagesState {
    started: bool,
}

#[derive(Default)]
pub(crate) struct ResponsesState {
    started: bool,
    saw_tool: bool,
    /// One past the upstream's last `sequence_number`: where an event the gateway adds must continue.
    next_sequence: Option<u64>,
}

impl Decoder {
    pub fn new(api: Api) -> Self {
        match api {
            Api::Chat => Decoder::Chat(ChatState::default()),
            Api::Messages => Decoder::Messages(MessagesState::default()),
            Api::Responses => Decoder::Responses(ResponsesState::default()),
        }
    }

    pub fn event(&mut self, event: &SseEvent, step: Step<'_>) -> Result<(), Malformed> {
        match self {
            Decoder::Chat(state) => chat_event(state, event, step),
            Decoder::Messages(state) => messages_event(state, event, step),
            Decoder::Responses(state) => responses_event(state, event, step),
        }
    }

    /// One past the last `sequence_number` a Responses upstream sent (None for the other APIs).
    pub fn next_sequence(&self) -> Option<u64> {
        match self {
            Decoder::Responses(state) => state.next_sequence,
            _ => None,
        }
    }
}

fn parse<'a, T: Deserialize<'a>>(data: &'a str) -> Result<T, Malformed> {
    serde_json::from_str(data).map_err(|_| Malformed)
}

/// An upstream error object: `{"type"|"code", "message"}` or a bare string.
#[derive(Deserialize)]
#[serde(untagged)]
enum ErrorValue<'a> {
    Object {
        #[serde(borrow, rename = "type")]
        kind: Str<'a>,
        #[serde(borrow)]
        code: Option<&'a RawValue>,
        #[serde(borrow)]
        message: Str<'a>,
    },
    Text(#[serde(borrow)] Cow<'a, str>),
}

impl ErrorValue<'_> {
    fn parts(&self) -> (String, String) {
        match self {
            ErrorValue::Object {
                kind,
                code,
                message,
            } => {
                let code = code.map(|c| c.get().trim_matches('"').to_owned());
                let kind = kind.as_deref().map(str::to_owned).or(code);
                (
                    kind.unwrap_or_else(|| "api_error".to_owned()),
                    message.as_deref().unwrap_or("upstream error").to_owned(),
                )
            }
            ErrorValue::Text(text) => ("api_error".to_owned(), text.to_string()),
        }
    }
}

// --- OpenAI chat completions ---

#[derive(Deserialize)]
struct ChatChunk<'a> {
    #[serde(borrow)]
    id: Str<'a>,
    #[serde(default, borrow)]
    choices: Vec<ChatChoice<'a>>,
    usage: Option<ChatUsage>,
    #[serde(borrow)]
    error: Option<ErrorValue<'a>>,
}

#[derive(Deserialize)]
struct ChatChoice<'a> {
    #[serde(borrow)]
    delta: Option<ChatDelta<'a>>,
    #[serde(borrow)]
    finish_reason: Str<'a>,
}

#[derive(Deserialize)]
struct ChatDelta<'a> {
    #[serde(borrow)]
    content: Str<'a>,
    #[serde(borrow)]
    reasoning_content: Str<'a>,
    #[serde(borrow)]
    tool_calls: Option<Vec<ChatToolDelta<'a>>>,
}

#[derive(Deserialize)]
struct ChatToolDelta<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    id: Str<'a>,
    #[serde(borrow)]
    function: Option<ChatFunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct ChatFunctionDelta<'a> {
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    arguments: Str<'a>,
}

#[derive(Deserialize)]
struct ChatUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

fn chat_stop(reason: &str) -> Stop {
    match reason {
        "length" => Stop::MaxTokens,
        "tool_calls" | "function_call" => Stop::ToolUse,
        "content_filter" => Stop::ContentFilter,
        _ => Stop::EndTurn,
    }
}

fn chat_event(
    state: &mut ChatState,
    event: &SseEvent,
    mut step: Step<'_>,
) -> Result<(), Malformed> {
    if event.data == "[DONE]" {
        step.finish();
        return Ok(());
    }
    let chunk: ChatChunk = parse(&event.data)?;
    if let Some(error) = chunk.error {
        let (kind, message) = error.parts();
        step.fail(&kind, &message);
        return Ok(());
    }
    if let Some(usage) = chunk.usage {
        // OpenAI's prompt count includes the cached part; ours does not.
        let cached = usage.prompt_tokens_details.and_then(|d| d.cached_tokens);
        step.usage.merge(Usage {
            input: usage
                .prompt_tokens
                .map(|p| p.saturating_sub(cached.unwrap_or(0))),
            output: usage.completion_tokens,
            cache_read: cached,
            cache_write: None,
            reasoning: usage
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens),
        });
    }
    step.start(&mut state.started, chunk.id.as_deref().unwrap_or(""));
    for choice in chunk.choices {
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
                step.progress.deltas += 1;
                step.sink.thinking(step.out, text);
            }
            if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
                step.progress.deltas += 1;
                step.sink.text(step.out, text);
            }
            for call in delta.tool_calls.into_iter().flatten() {
                let index = call.index.unwrap_or(0);
                let function = call.function;
                let id = call.id.as_deref().filter(|id| !id.is_empty());
                // A new id starts a new call even under the same index: some providers send every call as 0.
                if state.tool != Some(index) || id.is_some_and(|id| id != state.tool_id) {
                    state.tool = Some(index);
                    state.tool_id = id.unwrap_or("").to_owned();
                    let name = function
                        .as_ref()
                        .and_then(|f| f.name.as_deref())
                        .unwrap_or("");
                    step.tool_start(call.id.as_deref().unwrap_or(""), name);
                }
                if let Some(args) = function.as_ref().and_then(|f| f.arguments.as_deref()) {
                    if !args.is_empty() {
                        step.progress.deltas += 1;
                        step.sink.tool_args(step.out, args);
                    }
                }
            }
        }
        if let Some(reason) = choice.finish_reason.as_deref() {
            step.sink.stop(step.out, chat_stop(reason));
        }
    }
    Ok(())
}

// --- Anthropic Messages ---

#[derive(Deserialize)]
struct MessagesEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    message: Option<MessageStart<'a>>,
    #[serde(borrow)]
    content_block: Option<Block<'a>>,
    #[serde(borrow)]
    delta: Option<MessagesDelta<'a>>,
    usage: Option<AnthropicUsage>,
    #[serde(borrow)]
    error: Option<ErrorValue<'a>>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow)]
    id: Str<'a>,
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Str<'a>,
    #[serde(borrow)]
    id: Str<'a>,
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Str<'a>,
    #[serde(borrow)]
    signature: Str<'a>,
    #[serde(borrow)]
    data: Str<'a>,
}

#[derive(Deserialize)]
struct MessagesDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    text: Str<'a>,
    #[serde(borrow)]
    partial_json: Str<'a>,
    #[serde(borrow)]
    thinking: Str<'a>,
    #[serde(borrow)]
    signature: Str<'a>,
    #[serde(borrow)]
    stop_reason: Str<'a>,
}

#[derive(Deserialize)]
struct AnthropicUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

impl From<AnthropicUsage> for Usage {
    fn from(u: AnthropicUsage) -> Self {
        Usage {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens,
            cache_write: u.cache_creation_input_tokens,
            reasoning: None,
        }
    }
}

fn anthropic_stop(reason: &str) -> Stop {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => Stop::MaxTokens,
        "tool_use" => Stop::ToolUse,
        "stop_sequence" => Stop::StopSequence,
        "pause_turn" => Stop::PauseTurn,
        "refusal" => Stop::ContentFilter,
        _ => Stop::EndTurn,
    }
}

fn messages_event(
    state: &mut MessagesState,
    event: &SseEvent,
    mut step: Step<'_>,
) -> Result<(), Malformed> {
    let parsed: MessagesEvent = parse(&event.data)?;
    match parsed.kind.as_ref() {
        "message_start" => {
            let message = parsed.message.ok_or(Malformed)?;
            if let Some(usage) = message.usage {
                step.usage.merge(usage.into());
            }
            step.start(&mut state.started, message.id.as_deref().unwrap_or(""));
        }
        "content_block_start" => {
            let block = parsed.content_block.ok_or(Malformed)?;
            step.start(&mut state.started, "");
            match block.kind.as_ref() {
                "text" => {
                    if let Some(text) = block.text.as_deref().filter(|t| !t.is_empty()) {
                        step.progress.deltas += 1;
                        step.sink.text(step.out, text);
                    }
                }
                "thinking" => {
                    if let Some(text) = block.thinking.as_deref().filter(|t| !t.is_empty()) {
                        step.progress.deltas += 1;
                        step.sink.thinking(step.out, text);
                    }
                    if let Some(sig) = block.signature.as_deref().filter(|s| !s.is_empty()) {
                        step.sink.signature(step.out, sig);
                    }
                }
                "redacted_thinking" => {
                    step.sink
                        .redacted_thinking(step.out, block.data.as_deref().unwrap_or(""));
                }
                "tool_use" | "server_tool_use" => {
                    let id = block.id.as_deref().unwrap_or("");
                    step.tool_start(id, block.name.as_deref().unwrap_or(""));
                    // Some providers send the whole input here instead of as deltas.
                    if let Some(input) = block.input.map(RawValue::get) {
                        if input != "{}" && !input.is_empty() {
                            step.progress.deltas += 1;
                            step.sink.tool_args(step.out, input);
                        }
                    }
                }
                _ => {}
            }
        }
        "content_block_delta" => {
            let delta = parsed.delta.ok_or(Malformed)?;
            match delta.kind.as_deref().unwrap_or("") {
                "text_delta" => {
                    step.progress.deltas += 1;
                    step.sink
                        .text(step.out, delta.text.as_deref().unwrap_or(""));
                }
                "input_json_delta" => {
                    if let Some(json) = delta.partial_json.as_deref().filter(|j| !j.is_empty()) {
                        step.progress.deltas += 1;
                        step.sink.tool_args(step.out, json);
                    }
                }
                "thinking_delta" => {
                    step.progress.deltas += 1;
                    step.sink
                        .thinking(step.out, delta.thinking.as_deref().unwrap_or(""));
                }
                "signature_delta" => {
                    step.sink
                        .signature(step.out, delta.signature.as_deref().unwrap_or(""));
                }
                _ => {}
            }
        }
        "content_block_stop" => step.sink.block_end(step.out),
        "message_delta" => {
            if let Some(usage) = parsed.usage {
                step.usage.merge(usage.into());
            }
            if let Some(reason) = parsed.delta.and_then(|d| d.stop_reason) {
                step.sink.stop(step.out, anthropic_stop(&reason));
            }
        }
        "message_stop" => step.finish(),
        "error" => {
            let (kind, message) = parsed.error.ok_or(Malformed)?.parts();
            step.fail(&kind, &message);
        }
        _ => {} // ping, and event types added after this was written
    }
    Ok(())
}

// --- OpenAI Responses ---

#[derive(Deserialize)]
struct ResponsesEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    sequence_number: Option<u64>,
    #[serde(borrow)]
    response: Option<ResponseObject<'a>>,
    #[serde(borrow)]
    item: Option<Item<'a>>,
    #[serde(borrow)]
    delta: Str<'a>,
    #[serde(borrow)]
    code: Str<'a>,
    #[serde(borrow)]
    message: Str<'a>,
}

#[derive(Deserialize)]
struct ResponseObject<'a> {
    #[serde(borrow)]
    id: Str<'a>,
    usage: Option<ResponsesUsage>,
    #[serde(borrow)]
    incomplete_details: Option<Incomplete<'a>>,
    #[serde(borrow)]
    error: Option<ErrorValue<'a>>,
}

#[derive(Deserialize)]
struct Incomplete<'a> {
    #[serde(borrow)]
    reason: Str<'a>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    call_id: Str<'a>,
    #[serde(borrow)]
    name: Str<'a>,
    #[serde(borrow)]
    arguments: Str<'a>,
    #[serde(borrow)]
    encrypted_content: Str<'a>,
}

#[derive(Deserialize)]
struct ResponsesUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    input_tokens_details: Option<PromptDetails>,
    output_tokens_details: Option<CompletionDetails>,
}

fn responses_event(
    state: &mut ResponsesState,
    event: &SseEvent,
    mut step: Step<'_>,
) -> Result<(), Malformed> {
    let parsed: ResponsesEvent = parse(&event.data)?;
    if let Some(seq) = parsed.sequence_number {
        state.next_sequence = Some(seq.saturating_add(1));
    }
    match parsed.kind.as_ref() {
        "response.created" | "response.in_progress" => {
            let id = parsed.response.as_ref().and_then(|r| r.id.as_deref());
            step.start(&mut state.started, id.unwrap_or(""));
        }
        "response.output_item.added" => {
            let item = parsed.item.ok_or(Malformed)?;
            step.start(&mut state.started, "");
            if item.kind == "function_call" {
                state.saw_tool = true;
                let id = item.call_id.as_deref().unwrap_or("");
                step.tool_start(id, item.name.as_deref().unwrap_or(""));
                if let Some(args) = item.arguments.as_deref().filter(|a| !a.is_empty()) {
                    step.progress.deltas += 1;
                    step.sink.tool_args(step.out, args);
                }
            }
        }
        "response.output_text.delta" | "response.refusal.delta" => {
            step.progress.deltas += 1;
            step.sink
                .text(step.out, parsed.delta.as_deref().unwrap_or(""));
        }
        "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
            step.progress.deltas += 1;
            step.sink
                .thinking(step.out, parsed.delta.as_deref().unwrap_or(""));
        }
        "response.function_call_arguments.delta" => {
            if let Some(args) = parsed.delta.as_deref().filter(|a| !a.is_empty()) {
                step.progress.deltas += 1;
                step.sink.tool_args(step.out, args);
            }
        }
        "response.output_item.done" => {
            if let Some(item) = parsed.item {
                // An opaque reasoning blob plays the role of Anthropic's signature: the client replays it.
                if let Some(blob) = item
                    .encrypted_content
                    .as_deref()
                    .filter(|_| item.kind == "reasoning")
                {
                    step.sink.signature(step.out, blob);
                }
            }
            step.sink.block_end(step.out);
        }
        "response.completed" | "response.incomplete" => {
            let response = parsed.response.ok_or(Malformed)?;
            if let Some(usage) = response.usage {
                let cached = usage.input_tokens_details.and_then(|d| d.cached_tokens);
                step.usage.merge(Usage {
                    input: usage
                        .input_tokens
                        .map(|i| i.saturating_sub(cached.unwrap_or(0))),
                    output: usage.output_tokens,
                    cache_read: cached,
                    cache_write: None,
                    reasoning: usage.output_tokens_details.and_then(|d| d.reasoning_tokens),
                });
            }
            let reason = response.incomplete_details.and_then(|d| d.reason);
            let stop = match reason.as_deref() {
                Some("content_filter") => Stop::ContentFilter,
                Some(_) => Stop::MaxTokens,
                None if state.saw_tool => Stop::ToolUse,
                None => Stop::EndTurn,
            };
            step.sink.stop(step.out, stop);
            step.finish();
        }
        "response.failed" => {
            let error = parsed.response.and_then(|r| r.error);
            let (kind, message) = error.map_or_else(
                || {
                    (
                        "api_error".to_owned(),
                        "The upstream response failed.".to_owned(),
                    )
                },
                |e| e.parts(),
            );
            step.fail(&kind, &message);
        }
        "error" => {
            let kind = parsed.code.as_deref().unwrap_or("api_error");
            let message = parsed.message.as_deref().unwrap_or("upstream error");
            step.fail(kind, message);
        }
        _ => {}
    }
    Ok(())
}
