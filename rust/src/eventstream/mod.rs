//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! `ConverseStream` and `InvokeModelWithResponseStream` answer: an incremental decoder that validates
//! both CRC32s and bounds the message size, and an encoder (the bundled mock speaks it too).
//!
//! Wire format (https://docs.aws.amazon.com/transcribe/latest/dg/streaming-setting-up.html#streaming-event-stream,
//! and the reference implementation in awslabs/aws-c-event-stream):
//!
//! ```text
//! total_length u32 BE | headers_length u32 BE | prelude_crc u32 BE (CRC32 of the 8 bytes before it)
//! headers (headers_length bytes) | payload | message_crc u32 BE (CRC32 of everything before it)
//! ```
//!
//! A header is `name_len u8 | name | type u8 | value`, the value's layout depending on the type (see
//! [`HeaderValue`]). `codec` holds the logic, `py` the Python bindings.
pub mod codec;
pub mod py;
#[cfg(test)]
mod tests;

pub use codec::{
    encode, parse_headers, scan_headers, DecodeError, Decoder, HeaderValue, Message, RawHeader,
};
