use super::gemini::*;

fn sse(chunks: &[&str]) -> Vec<u8> {
    chunks
        .iter()
        .flat_map(|c| format!("data: {c}\r\n\r\n").into_bytes())
        .collect()
}

fn events(out: &[u8]) -> Vec<serde_json::Value> {
    std::str::from_utf8(out)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[test]
fn text_thinking_and_a_tool_call() {
    let wire = sse(&[
        r#"{"candidates":[{"content":{"role":"model","parts":[{"thought":true,"text":"hm"},{"thought":true,"thoughtSignature":"sg"}]}}],"modelVersion":"gemini-2.5-pro"}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":"Hi "},{"text":"there"}]}}]}"#,
        r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":1}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":3,"thoughtsTokenCount":2,"cachedContentTokenCount":4}}"#,
    ]);
    let mut t = GeminiStream::new("m".into(), "msg_gemini_0123456789".into());
    let mut out = t.feed(&wire).unwrap();
    out.extend(t.finish());
    let e = events(&out);
    let types: Vec<&str> = e.iter().map(|v| v["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(e[0]["message"]["model"], "gemini-2.5-pro");
    assert_eq!(e[3]["delta"]["signature"], "sg");
    assert_eq!(e[7]["delta"]["text"], "there");
    assert_eq!(e[9]["content_block"]["id"], "toolu_gemini_23456789_1");
    assert_eq!(e[9]["index"], 2);
    assert_eq!(e[10]["delta"]["partial_json"], r#"{"a":1}"#);
    assert_eq!(e[12]["delta"]["stop_reason"], "tool_use");
    assert_eq!(e[12]["usage"]["input_tokens"], 6);
    assert_eq!(e[12]["usage"]["output_tokens"], 5);
    assert_eq!(e[12]["usage"]["cache_read_input_tokens"], 4);
}

#[test]
fn split_anywhere_gives_the_same_bytes() {
    let wire = sse(&[
        r#"{"candidates":[{"content":{"parts":[{"text":"é \"q\"\n"}]}}]}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"MAX_TOKENS"}]}"#,
    ]);
    let mut whole = GeminiStream::new("m".into(), "msg_1".into());
    let mut expected = whole.feed(&wire).unwrap();
    expected.extend(whole.finish());
    for size in [1, 5, 17] {
        let mut t = GeminiStream::new("m".into(), "msg_1".into());
        let mut out = Vec::new();
        for chunk in wire.chunks(size) {
            out.extend(t.feed(chunk).unwrap());
        }
        out.extend(t.finish());
        assert_eq!(out, expected, "chunks of {size}");
    }
    assert!(String::from_utf8(expected)
        .unwrap()
        .contains(r#""stop_reason":"max_tokens""#));
}

#[test]
fn no_finish_reason_means_no_end_and_a_blocked_prompt_is_a_refusal() {
    let mut t = GeminiStream::new("m".into(), "msg_1".into());
    t.feed(&sse(&[
        r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#,
    ]))
    .unwrap();
    assert!(t.finish().is_empty());
    let mut t = GeminiStream::new("m".into(), "msg_1".into());
    t.feed(&sse(&[r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#]))
        .unwrap();
    let e = events(&t.finish());
    assert_eq!(e[0]["delta"]["stop_reason"], "refusal");
}

#[test]
fn malformed_chunks_are_errors() {
    let mut t = GeminiStream::new("m".into(), "msg_1".into());
    assert_eq!(t.feed(b"data: {\"candidates\":\r\n\r\n"), Err(Malformed));
    let mut t = GeminiStream::new("m".into(), "msg_1".into());
    assert_eq!(t.feed(b"data: [1]\n\n"), Err(Malformed));
}
