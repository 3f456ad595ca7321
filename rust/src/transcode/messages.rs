//! Encoder for Anthropic Messages events.
//!
//! Blocks are opened lazily by the first delta of their kind and closed when another kind starts (or the
//! upstream closes them), so indices are sequential and never reused for a different type. The stop reason is
//! held until the message ends, when `message_delta` carries it together with the final (cumulative) usage.
use super::{push_str, push_u64, Options, Sink, Stop, Usage};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Thinking,
    Tool,
}

pub(crate) struct MessagesEncoder {
    options: Options,
    started: bool,
    open: Option<Kind>,
    /// Index of the open block, or of the next one when none is open.
    index: u64,
    stop: Option<Stop>,
    ended: bool,
}

fn event(out: &mut Vec<u8>, name: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name);
    out.extend_from_slice(b"\ndata: {\"type\":\"");
    out.extend_from_slice(name);
    out.push(b'"');
}

fn usage_fields(out: &mut Vec<u8>, usage: &Usage, input: u64, output: u64) {
    out.extend_from_slice(b"{\"input_tokens\":");
    push_u64(out, input);
    out.extend_from_slice(b",\"cache_creation_input_tokens\":");
    push_u64(out, usage.cache_write.unwrap_or(0));
    out.extend_from_slice(b",\"cache_read_input_tokens\":");
    push_u64(out, usage.cache_read.unwrap_or(0));
    out.extend_from_slice(b",\"output_tokens\":");
    push_u64(out, output);
    out.push(b'}');
}

impl MessagesEncoder {
    pub fn new(options: Options) -> Self {
        Self {
            options,
            started: false,
            open: None,
            index: 0,
            stop: None,
            ended: false,
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>, id: &str, usage: &Usage) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        event(out, b"message_start");
        out.extend_from_slice(b",\"message\":{\"id\":");
        if id.starts_with("msg_") {
            push_str(out, id);
        } else {
            push_str(out, &format!("msg_{id}"));
        }
        out.extend_from_slice(b",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
        push_str(out, &self.options.model);
        out.extend_from_slice(
            b",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":",
        );
        // Claude Code's context meter reads this: never 0, an estimate when the upstream has not said yet.
        let input = usage.input.unwrap_or(self.options.input_tokens_estimate);
        usage_fields(out, usage, input, usage.output.unwrap_or(1));
        out.extend_from_slice(b"}}\n\n");
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            event(out, b"content_block_stop");
            out.extend_from_slice(b",\"index\":");
            push_u64(out, self.index);
            out.extend_from_slice(b"}\n\n");
            self.index += 1;
        }
    }

    /// Opens a block of `kind` unless one is open; `block` is the content_block JSON.
    fn open(&mut self, out: &mut Vec<u8>, kind: Kind, block: &[u8], force_new: bool) {
        self.ensure_started(out, "", &Usage::default());
        if self.open == Some(kind) && !force_new {
            return;
        }
        self.close(out);
        event(out, b"content_block_start");
        out.extend_from_slice(b",\"index\":");
        push_u64(out, self.index);
        out.extend_from_slice(b",\"content_block\":");
        out.extend_from_slice(block);
        out.extend_from_slice(b"}\n\n");
        self.open = Some(kind);
    }

    fn delta(&mut self, out: &mut Vec<u8>, kind: &[u8], key: &[u8], value: &str) {
        event(out, b"content_block_delta");
        out.extend_from_slice(b",\"index\":");
        push_u64(out, self.index);
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind);
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        push_str(out, value);
        out.extend_from_slice(b"}}\n\n");
    }
}

impl Sink for MessagesEncoder {
    fn start(&mut self, out: &mut Vec<u8>, id: &str, usage: &Usage) {
        self.ensure_started(out, id, usage);
    }

    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        self.open(out, Kind::Text, b"{\"type\":\"text\",\"text\":\"\"}", false);
        self.delta(out, b"text_delta", b"text", text);
    }

    fn thinking(&mut self, out: &mut Vec<u8>, text: &str) {
        let block = b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}";
        self.open(out, Kind::Thinking, block, false);
        self.delta(out, b"thinking_delta", b"thinking", text);
    }

    fn signature(&mut self, out: &mut Vec<u8>, signature: &str) {
        let block = b"{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}";
        self.open(out, Kind::Thinking, block, false);
        self.delta(out, b"signature_delta", b"signature", signature);
    }

    fn redacted_thinking(&mut self, out: &mut Vec<u8>, data: &str) {
        let mut block = b"{\"type\":\"redacted_thinking\",\"data\":".to_vec();
        push_str(&mut block, data);
        block.push(b'}');
        self.open(out, Kind::Thinking, &block, true);
        self.close(out);
    }

    fn tool_start(&mut self, out: &mut Vec<u8>, id: &str, name: &str) {
        let mut block = b"{\"type\":\"tool_use\",\"id\":".to_vec();
        push_str(&mut block, id);
        block.extend_from_slice(b",\"name\":");
        push_str(&mut block, name);
        block.extend_from_slice(b",\"input\":{}}");
        self.open(out, Kind::Tool, &block, true);
    }

    fn tool_args(&mut self, out: &mut Vec<u8>, fragment: &str) {
        if self.open != Some(Kind::Tool) {
            return; // arguments without a tool call to belong to cannot be placed
        }
        self.delta(out, b"input_json_delta", b"partial_json", fragment);
    }

    fn block_end(&mut self, out: &mut Vec<u8>) {
        self.close(out);
    }

    fn stop(&mut self, _out: &mut Vec<u8>, reason: Stop) {
        // message_delta needs the final usage too, which OpenAI upstreams send after finish_reason.
        self.stop = Some(reason);
    }

    fn end(&mut self, out: &mut Vec<u8>, usage: &Usage) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.ensure_started(out, "", usage);
        self.close(out);
        let reason: &[u8] = match self.stop.unwrap_or(Stop::EndTurn) {
            Stop::EndTurn => b"end_turn",
            Stop::StopSequence => b"stop_sequence",
            Stop::PauseTurn => b"pause_turn",
            Stop::MaxTokens => b"max_tokens",
            Stop::ToolUse => b"tool_use",
            Stop::ContentFilter => b"refusal",
        };
        event(out, b"message_delta");
        out.extend_from_slice(b",\"delta\":{\"stop_reason\":\"");
        out.extend_from_slice(reason);
        out.extend_from_slice(b"\",\"stop_sequence\":null},\"usage\":");
        let input = usage.input.unwrap_or(self.options.input_tokens_estimate);
        usage_fields(out, usage, input, usage.output.unwrap_or(0));
        out.extend_from_slice(b"}\n\n");
        event(out, b"message_stop");
        out.extend_from_slice(b"}\n\n");
    }

    fn error(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        event(out, b"error");
        out.extend_from_slice(b",\"error\":{\"type\":");
        push_str(out, anthropic_error_type(kind));
        out.extend_from_slice(b",\"message\":");
        push_str(out, message);
        out.extend_from_slice(b"}}\n\n");
    }
}

/// Anthropic's error types for what other APIs (or the gateway) call their errors.
fn anthropic_error_type(kind: &str) -> &str {
    match kind {
        "invalid_request_error"
        | "authentication_error"
        | "permission_error"
        | "not_found_error"
        | "request_too_large"
        | "rate_limit_error"
        | "api_error"
        | "overloaded_error" => kind,
        "rate_limit_exceeded" | "upstream_rate_limited" => "rate_limit_error",
        "guardrail_violation" => "invalid_request_error",
        "server_is_overloaded" | "service_unavailable" | "overloaded" => "overloaded_error",
        _ => "api_error",
    }
}
