//! Golden tests for all nine (upstream, caller) pairs, a split-invariance property, and edge cases.
//!
//! `golden/<upstream>.sse` are upstream streams written from the documented formats; the expected caller
//! streams are `golden/<upstream>_to_<caller>.sse`. Regenerate them with `UPDATE_GOLDEN=1 cargo test` and
//! review the diff.
use std::path::PathBuf;

use proptest::prelude::*;

use super::*;

const APIS: [(&str, Api); 3] = [
    ("chat", Api::Chat),
    ("messages", Api::Messages),
    ("responses", Api::Responses),
];

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/transcode/golden")
}

fn options() -> Options {
    Options {
        model: "gw/model".into(),
        created: 1_700_000_123,
        input_tokens_estimate: 42,
        include_usage: true,
        json_tool: None,
        prices: None,
    }
}

fn run(upstream: Api, caller: Api, chunks: &[&[u8]]) -> (Vec<u8>, Transcoder) {
    let mut t = Transcoder::new(upstream, caller, options());
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(t.feed(chunk));
    }
    (out, t)
}

fn upstream_bytes(name: &str) -> Vec<u8> {
    std::fs::read(golden_dir().join(format!("{name}.sse"))).unwrap()
}

#[test]
fn golden_pairs() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    for (up_name, up) in APIS {
        let input = upstream_bytes(up_name);
        for (caller_name, caller) in APIS {
            let (out, t) = run(up, caller, &[&input]);
            assert!(
                t.progress().done,
                "{up_name} -> {caller_name} did not finish"
            );
            assert!(!t.progress().malformed && t.error().is_none());
            // Usage in the gateway's terms is the same whichever way the stream is translated.
            assert_eq!(t.usage().prompt_total(), Some(50), "{up_name}");
            assert_eq!(t.usage().output, Some(30), "{up_name}");
            // Tool-call analytics see the same calls, in order, whatever the pair.
            assert_eq!(t.tool_names(), ["get_weather", "get_time"], "{up_name}");
            assert_eq!(t.usage().cache_read, Some(10), "{up_name}");
            let path = golden_dir().join(format!("{up_name}_to_{caller_name}.sse"));
            if update {
                std::fs::write(&path, &out).unwrap();
            }
            let expected = std::fs::read(&path).unwrap_or_else(|_| panic!("missing {path:?}"));
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&expected),
                "{up_name} -> {caller_name}"
            );
        }
    }
}

/// Every output event is whole SSE ending in a blank line, and its data is JSON (or `[DONE]`).
#[test]
fn output_events_are_well_formed() {
    for (up_name, up) in APIS {
        let input = upstream_bytes(up_name);
        for (_, caller) in APIS {
            let (out, _) = run(up, caller, &[&input]);
            let text = String::from_utf8(out).unwrap();
            assert!(text.ends_with("\n\n"));
            for event in text.trim_end().split("\n\n") {
                let data = event
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap();
                if data != "[DONE]" {
                    let value: serde_json::Value = serde_json::from_str(data).unwrap();
                    if let Some(name) = event.strip_prefix("event: ") {
                        // Anthropic and Responses clients dispatch on the event name: it must match `type`.
                        let name = name.lines().next().unwrap();
                        assert_eq!(value["type"], name);
                    }
                }
            }
        }
    }
}

#[test]
fn tool_calls_keep_their_own_indices_for_chat_callers() {
    let (out, _) = run(Api::Messages, Api::Chat, &[&upstream_bytes("messages")]);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(r#""tool_calls":[{"index":0,"id":"toolu_A","type":"function","function":{"name":"get_weather","arguments":""}}]"#));
    assert!(text.contains(r#""tool_calls":[{"index":1,"id":"toolu_B""#));
    assert!(text
        .contains(r#""tool_calls":[{"index":1,"function":{"arguments":"{\"zone\":\"CET\"}"}}]"#));
    assert_eq!(text.matches("data: [DONE]").count(), 1);
    // Anthropic input excludes the cache (35 + 5 written + 10 read); OpenAI's prompt count includes it.
    assert!(text.contains(r#""usage":{"prompt_tokens":50,"completion_tokens":30,"total_tokens":80,"prompt_tokens_details":{"cached_tokens":10}"#));
}

#[test]
fn anthropic_callers_get_the_stop_reason_with_the_usage_that_follows_it() {
    let (out, _) = run(Api::Chat, Api::Messages, &[&upstream_bytes("chat")]);
    let text = String::from_utf8(out).unwrap();
    // message_start shows the estimate (the chat upstream reports input only at the end)...
    assert!(text.contains(r#""usage":{"input_tokens":42,"#));
    // ...and message_delta the real numbers: input excluding the 10 cached tokens.
    assert!(text.contains(r#"{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"input_tokens":40,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":30}}"#));
    let starts: Vec<_> = text.match_indices("content_block_start\ndata").collect();
    assert_eq!(starts.len(), 4, "thinking, text, two tool_use blocks");
    for (i, kind) in ["thinking", "text", "tool_use", "tool_use"]
        .iter()
        .enumerate()
    {
        assert!(text.contains(&format!(
            r#"{{"type":"content_block_start","index":{i},"content_block":{{"type":"{kind}""#
        )));
    }
}

#[test]
fn thinking_signatures_pass_through_untouched() {
    let input = upstream_bytes("messages");
    let (out, _) = run(Api::Messages, Api::Messages, &[&input]);
    let sig = r#"{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/sig=="}"#;
    assert!(String::from_utf8(out).unwrap().contains(sig));
    let (out, _) = run(Api::Messages, Api::Responses, &[&input]);
    assert!(String::from_utf8(out).unwrap().contains(
        r#""encrypted_content":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+/sig==""#
    ));
}

#[test]
fn upstream_errors_become_caller_error_events() {
    let input = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let (out, t) = run(Api::Messages, Api::Chat, &[input]);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with("data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\",\"param\":null,\"code\":\"overloaded_error\"}}\n\n"));
    assert!(!text.contains("[DONE]"));
    assert_eq!(t.error(), Some(("overloaded_error", "Overloaded")));
    let chat_err =
        b"data: {\"error\":{\"message\":\"Rate limited\",\"type\":\"rate_limit_exceeded\"}}\n\n";
    let (out, _) = run(Api::Chat, Api::Messages, &[chat_err]);
    assert!(String::from_utf8(out).unwrap().ends_with(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Rate limited\"}}\n\n"
    ));
}

#[test]
fn malformed_data_stops_output_at_the_last_whole_event() {
    let input = b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {not json\n\ndata: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more\"}}]}\n\n";
    let (out, t) = run(Api::Chat, Api::Messages, &[input]);
    assert!(t.progress().malformed && !t.progress().done);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("\"Hi\"") && !text.contains("more"));
}

#[test]
fn fail_appends_one_error_event_in_the_caller_shape() {
    let mut t = Transcoder::new(Api::Chat, Api::Responses, options());
    let first = t.fail("upstream_stream_incomplete", "cut");
    assert!(String::from_utf8(first).unwrap().starts_with(
        "event: error\ndata: {\"type\":\"error\",\"sequence_number\":0,\"code\":\"upstream_stream_incomplete\""
    ));
    assert!(t.fail("again", "x").is_empty());
    assert!(t.feed(b"data: [DONE]\n\n").is_empty());
}

#[test]
fn without_include_usage_chat_callers_get_no_usage_chunk() {
    let mut opts = options();
    opts.include_usage = false;
    let mut t = Transcoder::new(Api::Messages, Api::Chat, opts);
    let text = String::from_utf8(t.feed(&upstream_bytes("messages"))).unwrap();
    assert!(!text.contains("\"usage\""));
    assert!(text.ends_with("\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n"));
    assert_eq!(t.usage().output, Some(30));
}

#[test]
fn tool_calls_all_sent_as_index_0_stay_separate() {
    let chunk = |call: &str| {
        format!("data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{call}]}}}}]}}\n\n")
    };
    let input = [
        chunk(r#"{"index":0,"id":"call_a","function":{"name":"f","arguments":"{}"}}"#),
        chunk(r#"{"index":0,"id":"call_b","function":{"name":"g","arguments":"{\"x\":"}}"#),
        chunk(r#"{"index":0,"function":{"arguments":"1}"}}"#),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let (out, _) = run(Api::Chat, Api::Messages, &[input.as_bytes()]);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains(r#""index":0,"content_block":{"type":"tool_use","id":"call_a","name":"f""#)
    );
    assert!(
        text.contains(r#""index":1,"content_block":{"type":"tool_use","id":"call_b","name":"g""#)
    );
    assert!(text.contains(r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"1}"}}"#));
}

#[test]
fn the_structured_output_tool_reaches_the_caller_as_text() {
    let mut opts = options();
    opts.json_tool = Some("get_time".into());
    let mut t = Transcoder::new(Api::Messages, Api::Chat, opts);
    let text = String::from_utf8(t.feed(&upstream_bytes("messages"))).unwrap();
    assert!(text.contains(r#""delta":{"content":"{\"zone\":\"CET\"}"}"#));
    assert!(!text.contains("get_time"));
    // The other tool call is still a tool call, so the turn still ends for tools.
    assert!(text.contains(r#""finish_reason":"tool_calls""#));
}

#[test]
fn responses_callers_get_the_cost_of_the_stream() {
    let mut opts = options();
    opts.prices = Some(Prices {
        input: 3.0,
        output: 15.0,
        cached_input: 0.3,
    });
    let mut t = Transcoder::new(Api::Messages, Api::Responses, opts);
    let text = String::from_utf8(t.feed(&upstream_bytes("messages"))).unwrap();
    // 40 uncached input tokens (35 + 5 written), 10 read from the cache, 30 output tokens.
    let cost = (40.0 * 3.0 + 10.0 * 0.3 + 30.0 * 15.0) / 1e6;
    assert!(
        text.contains(&format!(r#""total_tokens":80,"cost":{cost}}}"#)),
        "{text}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// However the network cuts the upstream bytes (mid-line, mid-CRLF, mid-UTF-8 character), the caller
    /// receives exactly the same bytes.
    #[test]
    fn any_split_gives_identical_output(
        up in 0usize..3, caller in 0usize..3,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    ) {
        let (_, up_api) = APIS[up];
        let (_, caller_api) = APIS[caller];
        let input = upstream_bytes(APIS[up].0);
        let (whole, _) = run(up_api, caller_api, &[&input]);
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut last = 0;
        for p in points {
            chunks.push(&input[last..p]);
            last = p;
        }
        chunks.push(&input[last..]);
        let (split, _) = run(up_api, caller_api, &chunks);
        prop_assert_eq!(whole, split);
    }
}

#[test]
fn structured_output_tool_is_not_a_tool_call() {
    let stream = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"json_answer\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}}\n\n",
    );
    let mut t = Transcoder::new(
        Api::Messages,
        Api::Chat,
        Options {
            json_tool: Some("json_answer".into()),
            ..options()
        },
    );
    t.feed(stream.as_bytes());
    assert!(t.tool_names().is_empty());
    let mut plain = Transcoder::new(Api::Messages, Api::Chat, options());
    plain.feed(stream.as_bytes());
    assert_eq!(plain.tool_names(), ["json_answer"]);
}

#[test]
fn a_passed_through_responses_stream_cut_short_numbers_its_error_after_the_upstream_events() {
    let mut t = Transcoder::new(Api::Responses, Api::Responses, options());
    let upstream = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"r\"}}\n\n",
        "event: response.in_progress\ndata: {\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":{\"id\":\"r\"}}\n\n",
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":2,\"output_index\":0,\"item\":{\"type\":\"message\",\"id\":\"m\"}}\n\n",
        "event: response.content_part.added\ndata: {\"type\":\"response.content_part.added\",\"sequence_number\":3,\"item_id\":\"m\",\"output_index\":0,\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\"}}\n\n",
    );
    let out = String::from_utf8(t.feed(upstream.as_bytes())).unwrap();
    assert!(out.contains("\"sequence_number\":3"), "{out}");
    let error = String::from_utf8(t.fail("upstream_connection_error", "cut")).unwrap();
    assert!(
        error.starts_with("event: error\ndata: {\"type\":\"error\",\"sequence_number\":4,"),
        "{error}"
    );
}

#[test]
fn responses_callers_get_citations_on_one_message_and_the_search_after_it() {
    // Anthropic's shape of a searched answer, the server-tool blocks already taken out by the gateway: two
    // text blocks (the second cited), a search reported while the message is open, a citation in characters.
    let event = |data: &str| format!("data: {data}\n\n");
    let mut t = Transcoder::new(Api::Messages, Api::Responses, options());
    let mut out = Vec::new();
    out.extend(t.feed(event(r#"{"type":"message_start","message":{"id":"msg_1","usage":{"input_tokens":5,"output_tokens":0}}}"#).as_bytes()));
    out.extend(t.feed(event(r#"{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}"#).as_bytes()));
    out.extend(t.feed(event(r#"{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Héllo, "}}"#).as_bytes()));
    out.extend(t.feed(event(r#"{"type":"content_block_stop","index":2}"#).as_bytes()));
    out.extend(t.search_call("weather"));
    out.extend(t.feed(event(r#"{"type":"content_block_start","index":3,"content_block":{"type":"text","text":""}}"#).as_bytes()));
    out.extend(t.feed(event(r#"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"sunny."}}"#).as_bytes()));
    out.extend(t.annotate(&[Citation {
        url: "https://a.example".into(),
        title: "A".into(),
        start: 7,
        end: 13,
    }]));
    out.extend(t.feed(event(r#"{"type":"content_block_stop","index":3}"#).as_bytes()));
    out.extend(t.feed(event(r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}"#).as_bytes()));
    out.extend(t.feed(event(r#"{"type":"message_stop"}"#).as_bytes()));
    assert!(t.progress().done);
    let text = String::from_utf8(out).unwrap();
    let events: Vec<serde_json::Value> = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "response.output_item.added")
            .count(),
        2
    );
    let added = events
        .iter()
        .find(|e| e["type"] == "response.output_text.annotation.added")
        .unwrap();
    let note = serde_json::json!({"type":"url_citation","start_index":7,"end_index":13,"url":"https://a.example","title":"A"});
    assert_eq!(added["annotation"], note);
    assert_eq!(added["annotation_index"], 0);
    let done = events.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    let output = done["response"]["output"].as_array().unwrap();
    assert_eq!(output[0]["content"][0]["text"], "Héllo, sunny.");
    assert_eq!(
        output[0]["content"][0]["annotations"],
        serde_json::json!([note])
    );
    assert_eq!(output[1]["type"], "web_search_call");
    assert_eq!(output[1]["action"]["query"], "weather");
    // The annotation comes before the message is done, and sequence numbers stay consecutive.
    let at = |kind: &str| kinds.iter().position(|k| *k == kind).unwrap();
    assert!(at("response.output_text.annotation.added") < at("response.output_text.done"));
    let numbers: Vec<u64> = events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (0..numbers.len() as u64).collect::<Vec<_>>());
    // Other callers get nothing from either call.
    let mut chat = Transcoder::new(Api::Messages, Api::Chat, options());
    assert!(chat.search_call("q").is_empty());
    assert!(chat.annotate(&[]).is_empty());
}
