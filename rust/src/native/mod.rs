//! Native provider streams → Anthropic Messages SSE, in one pass per network chunk.
//!
//! The Bedrock and Gemini adapters speak Anthropic Messages to the gateway: their streams reach the caller
//! through the shared [`crate::transcode::Transcoder`] as Messages SSE. The step before, each provider's own
//! stream format to Messages events, is done here, so no Python object is made per upstream event:
//!
//! - [`converse`]: Bedrock `ConverseStream` (AWS event-stream framing, [`crate::eventstream::Decoder`]);
//! - [`gemini`]: Gemini `streamGenerateContent?alt=sse` (SSE, [`crate::sse::SseParser`]).
//!
//! The Messages events are written as the Python translators they replace wrote them (the references in
//! tests/rust), byte for byte.
pub mod converse;
#[cfg(test)]
mod converse_tests;
pub mod gemini;
#[cfg(test)]
mod gemini_tests;
pub mod py;

use crate::json::push_str;
use crate::transcode::push_u64;

/// `message_start` of an empty assistant message.
fn message_start(out: &mut Vec<u8>, id: &str, model: &str) {
    out.extend_from_slice(
        b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":",
    );
    push_str(out, id);
    out.extend_from_slice(br#","type":"message","role":"assistant","model":"#);
    push_str(out, model);
    out.extend_from_slice(
        br#","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":0,"output_tokens":0}}}"#,
    );
    out.extend_from_slice(b"\n\n");
}

/// `content_block_start` for block `index`, its `content_block` written by `block`.
fn block_start(out: &mut Vec<u8>, index: u64, block: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(
        b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":",
    );
    push_u64(out, index);
    out.extend_from_slice(br#","content_block":"#);
    block(out);
    out.extend_from_slice(b"}\n\n");
}

/// `content_block_delta` of block `index`: `{"type": kind, field: value}`.
fn block_delta(out: &mut Vec<u8>, index: u64, kind: &str, field: &str, value: &str) {
    out.extend_from_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    push_u64(out, index);
    out.extend_from_slice(br#","delta":{"type":""#);
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(br#"",""#);
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(br#"":"#);
    push_str(out, value);
    out.extend_from_slice(b"}}\n\n");
}

fn block_stop(out: &mut Vec<u8>, index: u64) {
    out.extend_from_slice(
        b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":",
    );
    push_u64(out, index);
    out.extend_from_slice(b"}\n\n");
}

/// Anthropic's final usage (all four counts).
#[derive(Debug, Default, Clone, Copy)]
struct FinalUsage {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
}

/// `message_delta` with the stop reason and the final usage, then `message_stop`.
fn message_end(out: &mut Vec<u8>, stop: &str, usage: FinalUsage) {
    out.extend_from_slice(
        b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":",
    );
    push_str(out, stop);
    out.extend_from_slice(br#","stop_sequence":null},"usage":{"input_tokens":"#);
    push_u64(out, usage.input);
    out.extend_from_slice(br#","output_tokens":"#);
    push_u64(out, usage.output);
    out.extend_from_slice(br#","cache_read_input_tokens":"#);
    push_u64(out, usage.cache_read);
    out.extend_from_slice(br#","cache_creation_input_tokens":"#);
    push_u64(out, usage.cache_write);
    out.extend_from_slice(b"}}\n\n");
    out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
}
