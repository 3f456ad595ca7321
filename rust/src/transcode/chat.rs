//! Encoder for OpenAI chat completion chunks.
//!
//! Role once in the first chunk, each tool call under its own `index` with `id`/`name` only in its first
//! fragment, thinking as `reasoning_content`, `finish_reason` as soon as it is known, then (with
//! `include_usage`) one `choices: []` usage chunk, then `[DONE]` exactly once.
use super::{push_opt, push_str, push_u64, Options, Sink, Stop, Usage};

pub(crate) struct ChatEncoder {
    options: Options,
    /// `data: {"id":…,"object":…,"created":…,"model":…,"choices":[` — fixed once the id is known.
    prefix: Vec<u8>,
    started: bool,
    /// Index of the tool call being streamed (the caller's, counting from 0).
    tool: Option<u64>,
    stopped: bool,
    ended: bool,
}

const CHOICE_END: &[u8] = b",\"logprobs\":null,\"finish_reason\":null}]}\n\n";

impl ChatEncoder {
    pub fn new(options: Options) -> Self {
        Self {
            options,
            prefix: Vec::new(),
            started: false,
            tool: None,
            stopped: false,
            ended: false,
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>, id: &str) {
        if self.started {
            return;
        }
        self.started = true;
        let mut p = Vec::with_capacity(128);
        p.extend_from_slice(b"data: {\"id\":");
        if id.starts_with("chatcmpl") || id.is_empty() {
            push_str(&mut p, if id.is_empty() { "chatcmpl-router" } else { id });
        } else {
            push_str(&mut p, &format!("chatcmpl-{id}"));
        }
        p.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        push_u64(&mut p, self.options.created);
        p.extend_from_slice(b",\"model\":");
        push_str(&mut p, &self.options.model);
        p.extend_from_slice(b",\"choices\":[");
        self.prefix = p;
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}");
        out.extend_from_slice(CHOICE_END);
    }

    fn delta(&mut self, out: &mut Vec<u8>, key: &[u8], value: &str) {
        self.ensure_started(out, "");
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{\"");
        out.extend_from_slice(key);
        out.extend_from_slice(b"\":");
        push_str(out, value);
        out.push(b'}');
        out.extend_from_slice(CHOICE_END);
    }

    fn finish_chunk(&mut self, out: &mut Vec<u8>, reason: Stop) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        self.ensure_started(out, "");
        let reason: &[u8] = match reason {
            Stop::EndTurn | Stop::StopSequence | Stop::PauseTurn => b"stop",
            Stop::MaxTokens => b"length",
            Stop::ToolUse => b"tool_calls",
            Stop::ContentFilter => b"content_filter",
        };
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"");
        out.extend_from_slice(reason);
        out.extend_from_slice(b"\"}]}\n\n");
    }
}

impl Sink for ChatEncoder {
    fn start(&mut self, out: &mut Vec<u8>, id: &str, _usage: &Usage) {
        self.ensure_started(out, id);
    }

    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        self.delta(out, b"content", text);
    }

    fn thinking(&mut self, out: &mut Vec<u8>, text: &str) {
        self.delta(out, b"reasoning_content", text);
    }

    // Chat completions have no place for thinking signatures or redacted thinking.
    fn signature(&mut self, _out: &mut Vec<u8>, _signature: &str) {}

    fn redacted_thinking(&mut self, _out: &mut Vec<u8>, _data: &str) {}

    fn tool_start(&mut self, out: &mut Vec<u8>, id: &str, name: &str) {
        self.ensure_started(out, "");
        let index = self.tool.map_or(0, |i| i + 1);
        self.tool = Some(index);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":");
        push_u64(out, index);
        out.extend_from_slice(b",\"id\":");
        push_str(out, id);
        out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
        push_str(out, name);
        out.extend_from_slice(b",\"arguments\":\"\"}}]}");
        out.extend_from_slice(CHOICE_END);
    }

    fn tool_args(&mut self, out: &mut Vec<u8>, fragment: &str) {
        self.ensure_started(out, "");
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":");
        push_u64(out, self.tool.unwrap_or(0));
        out.extend_from_slice(b",\"function\":{\"arguments\":");
        push_str(out, fragment);
        out.extend_from_slice(b"}}]}");
        out.extend_from_slice(CHOICE_END);
    }

    fn block_end(&mut self, _out: &mut Vec<u8>) {}

    fn stop(&mut self, out: &mut Vec<u8>, reason: Stop) {
        // OpenAI sends finish_reason before the usage chunk, so there is nothing to wait for.
        self.finish_chunk(out, reason);
    }

    fn end(&mut self, out: &mut Vec<u8>, usage: &Usage) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        let fallback = if self.tool.is_some() {
            Stop::ToolUse
        } else {
            Stop::EndTurn
        };
        self.finish_chunk(out, fallback);
        if self.options.include_usage {
            let prompt = usage.prompt_total();
            let total = prompt.zip(usage.output).map(|(p, o)| p + o);
            let start = self.prefix.len() - b",\"choices\":[".len();
            out.extend_from_slice(&self.prefix[..start]);
            out.extend_from_slice(b",\"choices\":[],\"usage\":{\"prompt_tokens\":");
            push_opt(out, prompt);
            out.extend_from_slice(b",\"completion_tokens\":");
            push_opt(out, usage.output);
            out.extend_from_slice(b",\"total_tokens\":");
            push_opt(out, total);
            out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
            push_u64(out, usage.cache_read.unwrap_or(0));
            out.extend_from_slice(b"},\"completion_tokens_details\":{\"reasoning_tokens\":");
            push_u64(out, usage.reasoning.unwrap_or(0));
            out.extend_from_slice(b"}}}\n\n");
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }

    fn error(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        // The openai SDK raises APIError for a chunk with an "error" key.
        out.extend_from_slice(b"data: {\"error\":{\"message\":");
        push_str(out, message);
        out.extend_from_slice(b",\"type\":");
        push_str(out, kind);
        out.extend_from_slice(b",\"param\":null,\"code\":");
        push_str(out, kind);
        out.extend_from_slice(b"}}\n\n");
    }
}
