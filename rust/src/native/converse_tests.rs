use super::converse::*;
use crate::eventstream::{encode, HeaderValue};

fn message(kind: &str, message_type: &str, payload: &str) -> Vec<u8> {
    let name = if message_type == "event" {
        ":event-type"
    } else {
        ":exception-type"
    };
    let headers = vec![
        (name.to_owned(), HeaderValue::String(kind.to_owned())),
        (
            ":content-type".to_owned(),
            HeaderValue::String("application/json".to_owned()),
        ),
        (
            ":message-type".to_owned(),
            HeaderValue::String(message_type.to_owned()),
        ),
    ];
    encode(&headers, payload.as_bytes()).unwrap()
}

fn event(kind: &str, payload: &str) -> Vec<u8> {
    message(kind, "event", payload)
}

fn answer() -> Vec<u8> {
    [
        event("messageStart", r#"{"role":"assistant"}"#),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"th"}}}"#,
        ),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"sg"}}}"#,
        ),
        event("contentBlockStop", r#"{"contentBlockIndex":0}"#),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"text":"Hi \"there\"\n"}}"#,
        ),
        event("contentBlockStop", r#"{"contentBlockIndex":1}"#),
        event(
            "contentBlockStart",
            r#"{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"u","name":"f"}}}"#,
        ),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\"a\":"}}}"#,
        ),
        event("contentBlockStop", r#"{"contentBlockIndex":2}"#),
        event("messageStop", r#"{"stopReason":"tool_use"}"#),
        event(
            "metadata",
            r#"{"usage":{"inputTokens":5,"outputTokens":6,"totalTokens":11,"cacheReadInputTokens":2},"metrics":{"latencyMs":1}}"#,
        ),
    ]
    .concat()
}

const EXPECTED: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",",
    "\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,",
    "\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":",
    "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":",
    "{\"type\":\"thinking_delta\",\"thinking\":\"th\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":",
    "{\"type\":\"signature_delta\",\"signature\":\"sg\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":",
    "{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":",
    "{\"type\":\"text_delta\",\"text\":\"Hi \\\"there\\\"\\n\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":",
    "{\"type\":\"tool_use\",\"id\":\"u\",\"name\":\"f\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":",
    "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",",
    "\"stop_sequence\":null},\"usage\":{\"input_tokens\":5,\"output_tokens\":6,\"cache_read_input_tokens\":2,",
    "\"cache_creation_input_tokens\":0}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

#[test]
fn translates_a_whole_answer() {
    let mut t = ConverseStream::new("m".into(), "msg_1".into(), 1 << 20);
    let out = t.feed(&answer()).unwrap();
    assert_eq!(std::str::from_utf8(&out).unwrap(), EXPECTED);
    assert!(t.done());
    t.finish().unwrap();
}

#[test]
fn output_does_not_depend_on_how_the_bytes_are_split() {
    let wire = answer();
    for size in [1, 7, 64, 333] {
        let mut t = ConverseStream::new("m".into(), "msg_1".into(), 1 << 20);
        let mut out = Vec::new();
        for chunk in wire.chunks(size) {
            out.extend(t.feed(chunk).unwrap());
        }
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            EXPECTED,
            "chunks of {size}"
        );
        t.finish().unwrap();
    }
}

#[test]
fn an_exception_stops_the_translation_and_is_kept_once() {
    let wire = [
        event("messageStart", r#"{"role":"assistant"}"#),
        message(
            "throttlingException",
            "exception",
            r#"{"message":"slow down"}"#,
        ),
        event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"late"}}"#,
        ),
    ]
    .concat();
    let mut t = ConverseStream::new("m".into(), "msg_1".into(), 1 << 20);
    let out = t.feed(&wire).unwrap();
    assert!(out.starts_with(b"event: message_start\n") && !out.windows(4).any(|w| w == b"late"));
    let exception = t.take_exception().unwrap();
    assert_eq!(exception.kind.as_deref(), Some("throttlingException"));
    assert_eq!(exception.payload, br#"{"message":"slow down"}"#);
    assert!(t.take_exception().is_none());
    assert!(t.feed(&event("metadata", "{}")).unwrap().is_empty());
}

#[test]
fn malformed_payloads_and_framing_are_errors() {
    let mut t = ConverseStream::new("m".into(), "msg_1".into(), 1 << 20);
    let err = t
        .feed(&event("contentBlockDelta", r#"{"contentBlockIndex":"#))
        .unwrap_err();
    assert_eq!(err, Error::Malformed("contentBlockDelta".into()));
    let mut t = ConverseStream::new("m".into(), "msg_1".into(), 1 << 20);
    let mut wire = answer();
    let last = wire.len() - 1;
    wire[last] ^= 1; // the first message's CRC is intact, the last one's is not
    assert!(matches!(t.feed(&wire), Err(Error::Framing(_))));
    let mut t = ConverseStream::new("m".into(), "msg_1".into(), 1 << 20);
    t.feed(&answer()[..20]).unwrap();
    assert!(matches!(t.finish(), Err(Error::Framing(_))));
}

#[test]
fn unknown_events_are_skipped_and_stop_reasons_mapped() {
    let wire = [
        event("messageStart", "{}"),
        event("somethingNew", "not json at all"),
        event("messageStop", r#"{"stopReason":"guardrail_intervened"}"#),
        event("metadata", r#"{"usage":{}}"#),
    ]
    .concat();
    let mut t = ConverseStream::new("m".into(), "msg_1".into(), 1 << 20);
    let out = String::from_utf8(t.feed(&wire).unwrap()).unwrap();
    assert!(out.contains(r#""stop_reason":"refusal""#), "{out}");
    assert!(t.done());
}
