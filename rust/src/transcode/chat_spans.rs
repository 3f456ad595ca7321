//! What the chat stream reads from an OpenAI chat chunk: byte spans of each choice's `content`,
//! `reasoning_content` and tool-call `arguments`, of its `finish_reason`, of the chunk's `id`, `object`,
//! `created`, `model` and `usage`, and of each tool call's name.
//!
//! [`ChunkSpans::walk`] reads the chunk's bytes once, strictly: it validates every byte as it goes (see
//! [`Walker::strict`]), so the stream tap needs no other pass over a chunk to know it is JSON, what it
//! observes in it, and where the screen must look. Anything it does not expect (a key with escapes, a text
//! that is neither a string nor null, a fractional index, a payload that is not an object) makes it give up;
//! the caller then validates the payload on its own and falls back to the full serde parse, which is the
//! reference: the tests check both agree.
use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;
use smallvec::SmallVec;

pub use crate::json::text_of;
use crate::json::Walker;

/// A choice's content, its reasoning, and each tool call's arguments.
pub const CONTENT: u64 = 0;
pub const REASONING: u64 = 1;
pub const CALLS: u64 = 2;

pub fn chat_slot(choice: u64, part: u64) -> u64 {
    (choice << 32) | part
}

/// Spans (byte ranges of the chunk's data) of the values the chat stream reads or rewrites.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkSpans {
    /// `id`, `object`, `created`, `model`, in the chunk's order, when not null.
    pub template: Template,
    /// (slot, JSON value: a string or null), per choice: content, reasoning, then tool calls.
    pub texts: SmallVec<[(u64, Range<usize>); 2]>,
    /// (choice index, JSON value of its finish_reason).
    pub finishes: SmallVec<[(u64, Range<usize>); 1]>,
    /// The top-level `usage`, when it is an object.
    pub usage: Option<Range<usize>>,
    /// The top-level `error` is there and not null.
    pub error: bool,
    /// `choices` is an empty array (a usage-only chunk has one).
    pub no_choices: bool,
    /// Each tool call's `function.name` (a JSON string: only a call's first delta names it).
    pub tool_names: SmallVec<[Range<usize>; 1]>,
    /// `choices` is there but of a shape the parse cannot read, or a text is not a string: its texts, if
    /// any, cannot be screened.
    pub unreadable: bool,
}

/// The chunk fields every chunk of a stream repeats, each at most once (an empty span: absent or null).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Template([Range<usize>; 4]);

impl Template {
    const KEYS: [&'static str; 4] = ["id", "object", "created", "model"];

    /// None for a key seen twice.
    fn set(&mut self, slot: usize, value: Range<usize>) -> Option<()> {
        let field = &mut self.0[slot];
        if field.end > field.start {
            return None;
        }
        *field = value;
        Some(())
    }

    /// (key, span) of each field present, in the chunk's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Range<usize>)> {
        let mut fields: Vec<(&'static str, Range<usize>)> = Self::KEYS
            .into_iter()
            .zip(self.0.iter().cloned())
            .filter(|(_, r)| r.end > r.start)
            .collect();
        fields.sort_by_key(|(_, r)| r.start);
        fields.into_iter()
    }

    pub fn model(&self) -> Option<Range<usize>> {
        Some(self.0[3].clone()).filter(|r| r.end > r.start)
    }
}

impl ChunkSpans {
    /// The spans of a chunk (a JSON object), by the walk, or else by a full parse; None if it is not one.
    pub fn of(data: &str) -> Option<Self> {
        Self::walk(data).or_else(|| Self::parse(data))
    }

    /// The strict walk alone: Some only for a JSON object the walk understands (and so valid JSON).
    pub fn walk(data: &str) -> Option<Self> {
        let mut w = Walker::strict(data);
        let mut spans = Self::default();
        w.ws();
        w.object(|w, key| {
            match key {
                b"id" | b"object" | b"created" | b"model" => {
                    let slot = Template::KEYS.iter().position(|k| k.as_bytes() == key)?;
                    let value = w.value()?;
                    if &w.s[value.clone()] != b"null" {
                        spans.template.set(slot, value)?;
                    }
                }
                b"usage" => {
                    let value = w.value()?;
                    spans.usage = (w.s[value.start] == b'{').then_some(value);
                }
                b"error" => spans.error = &w.s[w.value()?] != b"null",
                b"choices" if w.peek() == Some(b'[') => {
                    let mut choices = 0;
                    w.array(|w| {
                        choices += 1;
                        w.choice(&mut spans)
                    })?;
                    spans.no_choices = choices == 0;
                }
                b"choices" if w.null() => {}
                b"choices" => return None,
                _ => {
                    w.value()?;
                }
            }
            Some(())
        })?;
        w.ws();
        (w.i == w.s.len()).then_some(spans)
    }

    /// The full parse (the reference, and the fallback for what the walk does not expect). None if `data`
    /// is not an object, or repeats a top-level field; choices it cannot read leave the spans `unreadable`.
    pub fn parse(data: &str) -> Option<Self> {
        let top: Top = serde_json::from_str(data).ok()?;
        let span = |raw: &RawValue| {
            let start = raw.get().as_ptr() as usize - data.as_ptr() as usize;
            start..start + raw.get().len()
        };
        let mut spans = Self::default();
        for (slot, raw) in [top.id, top.object, top.created, top.model]
            .into_iter()
            .enumerate()
        {
            if let Some(raw) = raw {
                spans.template.set(slot, span(raw))?;
            }
        }
        spans.usage = top.usage.filter(|u| u.get().starts_with('{')).map(span);
        spans.error = top.error.is_some();
        let Some(choices) = top.choices else {
            return Some(spans);
        };
        // Parsed from the payload's own bytes, so the spans of what it borrows are offsets into `data` too.
        let Ok(choices) = serde_json::from_str::<Vec<Choice>>(choices.get()) else {
            spans.unreadable = true;
            return Some(spans);
        };
        spans.no_choices = choices.is_empty();
        for choice in &choices {
            let index = choice.index.unwrap_or(0);
            if let Some(delta) = &choice.delta {
                if let Some(raw) = delta.content {
                    spans.texts.push((chat_slot(index, CONTENT), span(raw)));
                }
                if let Some(raw) = delta.reasoning_content {
                    spans.texts.push((chat_slot(index, REASONING), span(raw)));
                }
                for call in delta.tool_calls.iter().flatten() {
                    let slot = chat_slot(index, CALLS + call.index.unwrap_or(0));
                    let function = call.function.as_ref();
                    if let Some(raw) = function.and_then(|f| f.arguments) {
                        spans.texts.push((slot, span(raw)));
                    }
                    spans
                        .tool_names
                        .extend(function.and_then(|f| f.name).map(span));
                }
            }
            if let Some(raw) = choice.finish_reason {
                spans.finishes.push((index, span(raw)));
            }
        }
        // A text that is not a string (a list of parts, say) cannot be screened as one.
        spans.unreadable = spans
            .texts
            .iter()
            .any(|(_, r)| !data[r.clone()].starts_with('"'));
        Some(spans)
    }
}

/// A chunk's top-level fields; its choices are parsed apart, so that choices of an unexpected shape still
/// leave what the rest of the chunk says.
#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    object: Option<&'a RawValue>,
    #[serde(borrow)]
    created: Option<&'a RawValue>,
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    usage: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    choices: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<ChoiceDelta<'a>>,
    #[serde(borrow)]
    finish_reason: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChoiceDelta<'a> {
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    reasoning_content: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_calls: Option<Vec<CallDelta<'a>>>,
}

#[derive(Deserialize)]
struct CallDelta<'a> {
    index: Option<u64>,
    #[serde(borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct FunctionDelta<'a> {
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow)]
    name: Option<&'a RawValue>,
}

impl Walker<'_> {
    /// An index: a non-negative integer (or null, as if absent).
    fn index(&mut self) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        let digits = self.value()?;
        std::str::from_utf8(&self.s[digits])
            .ok()?
            .parse()
            .ok()
            .map(Some)
    }

    /// A text field: a string or null.
    fn text(&mut self) -> Option<Range<usize>> {
        let start = self.i;
        if self.null() {
            return Some(start..self.i);
        }
        self.string()
    }

    fn choice(&mut self, spans: &mut ChunkSpans) -> Option<()> {
        let (mut index, mut finish) = (None, None);
        let (mut content, mut reasoning, mut calls) = (None, None, Vec::new());
        let tool_names = &mut spans.tool_names;
        self.object(|w, key| {
            match key {
                b"index" => index = w.index()?,
                b"finish_reason" => finish = Some(w.value()?),
                b"delta" if w.null() => {}
                b"delta" => w.object(|w, key| {
                    match key {
                        b"content" => content = Some(w.text()?),
                        b"reasoning_content" => reasoning = Some(w.text()?),
                        b"tool_calls" if w.null() => {}
                        b"tool_calls" => w.array(|w| {
                            let (mut call, mut arguments) = (None, None);
                            w.object(|w, key| {
                                match key {
                                    b"index" => call = w.index()?,
                                    b"function" if w.null() => {}
                                    b"function" => w.object(|w, key| {
                                        match key {
                                            b"arguments" => arguments = Some(w.text()?),
                                            b"name" => {
                                                let name = w.text()?;
                                                if w.s[name.start] == b'"' {
                                                    tool_names.push(name);
                                                }
                                            }
                                            _ => w.skip()?,
                                        }
                                        Some(())
                                    })?,
                                    _ => w.skip()?,
                                }
                                Some(())
                            })?;
                            calls.push((call.unwrap_or(0), arguments));
                            Some(())
                        })?,
                        _ => w.skip()?,
                    }
                    Some(())
                })?,
                _ => w.skip()?,
            }
            Some(())
        })?;
        let index = index.unwrap_or(0);
        // Nulls are left out here rather than pushed and dropped (a chunk's finish_reason is mostly null).
        let set = |r: &Range<usize>| &self.s[r.clone()] != b"null";
        let content = content.filter(set).map(|r| (chat_slot(index, CONTENT), r));
        let reasoning = reasoning
            .filter(set)
            .map(|r| (chat_slot(index, REASONING), r));
        spans.texts.extend(content.into_iter().chain(reasoning));
        for (call, arguments) in calls {
            let arguments = arguments.filter(set);
            spans
                .texts
                .extend(arguments.map(|r| (chat_slot(index, CALLS + call), r)));
        }
        spans
            .finishes
            .extend(finish.filter(set).map(|r| (index, r)));
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts(data: &str) -> Vec<(u64, String)> {
        ChunkSpans::walk(data)
            .unwrap()
            .texts
            .into_iter()
            .map(|(slot, r)| {
                (
                    slot,
                    text_of(&data[r])
                        .map(|t| t.into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    #[test]
    fn finds_the_texts_of_a_plain_chunk() {
        let data = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":" word"},"logprobs":null,"finish_reason":null}]}"#;
        let spans = ChunkSpans::walk(data).unwrap();
        assert_eq!(spans, ChunkSpans::parse(data).unwrap());
        assert_eq!(texts(data), [(0, " word".to_owned())]);
        assert!(spans.finishes.is_empty()); // null
        let template: Vec<&str> = spans.template.iter().map(|(_, r)| &data[r]).collect();
        assert_eq!(
            template,
            ["\"c1\"", "\"chat.completion.chunk\"", "1", "\"gpt-4o\""]
        );
    }

    #[test]
    fn escaped_strings_are_skipped_whole_and_unescaped_only_when_read() {
        let data = r#"{"id":"a\"b\\","choices":[{"delta":{"content":"q\" \\ \u00e9 \ud83d\ude00 \"}\"","x":"\\"},"index":1}]}"#;
        let spans = ChunkSpans::walk(data).unwrap();
        assert_eq!(spans, ChunkSpans::parse(data).unwrap());
        assert_eq!(
            texts(data),
            [(chat_slot(1, CONTENT), "q\" \\ é 😀 \"}\"".to_owned())]
        );
        assert_eq!(
            &data[spans.template.iter().next().unwrap().1],
            r#""a\"b\\""#
        );
    }

    #[test]
    fn null_absent_and_empty_texts() {
        for data in [
            r#"{"choices":[{"index":0,"delta":{"content":null,"role":"assistant"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{}}]}"#,
            r#"{"choices":[{"index":0,"delta":null,"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"total_tokens":3}}"#,
            r#"{"choices":null}"#,
            r#"{"error":{"message":"x"}}"#,
            r#"{"choices":[{"delta":{"content":"","tool_calls":null}}]}"#,
        ] {
            assert_eq!(ChunkSpans::walk(data), ChunkSpans::parse(data), "{data}");
        }
        let data = r#"{"choices":[{"index":0,"delta":{"content":null}}]}"#;
        assert!(ChunkSpans::walk(data).unwrap().texts.is_empty());
        assert_eq!(text_of("null"), None);
    }

    #[test]
    fn reasoning_and_tool_calls_in_any_key_order() {
        let data = r#"{ "choices" : [ { "delta" : { "tool_calls" : [ { "function" : { "arguments" : "{\"a\":" , "name" : "f" } , "index" : 1 } , {"index":0,"function":null} ] , "reasoning_content" : "hm" , "content" : "x" } , "index" : 2 , "finish_reason" : "tool_calls" } ] , "id" : "c" } "#;
        let spans = ChunkSpans::walk(data).unwrap();
        assert_eq!(spans, ChunkSpans::parse(data).unwrap());
        assert_eq!(
            texts(data),
            [
                (chat_slot(2, CONTENT), "x".to_owned()),
                (chat_slot(2, REASONING), "hm".to_owned()),
                (chat_slot(2, CALLS + 1), "{\"a\":".to_owned()),
            ]
        );
        assert_eq!(
            spans.finishes[..],
            [(
                2,
                data.find("\"tool_calls\" }").unwrap()..data.find(" } ]").unwrap()
            )]
        );
    }

    #[test]
    fn gives_up_on_what_it_does_not_expect() {
        for data in [
            r#"{"ch\u006fices":[]}"#,
            r#"{"choices":[{"delta":{"content":5}}]}"#,
            r#"{"choices":[{"index":1.5,"delta":{}}]}"#,
            r#"{"choices":[{"index":-1,"delta":{}}]}"#,
            r#"{"choices":{}}"#,
            r#"{"choices":[1]}"#,
            r#"{"choices":[{"delta":{"content":"x"}}]"#,
            r#"{"choices":[{"delta":{"content":"x}}]}"#,
            r#"{"a":1} x"#,
            "[1]",
            "",
        ] {
            assert_eq!(ChunkSpans::walk(data), None, "{data}");
        }
    }

    fn json_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_owned()),
            "(\\PC|[\"\\\\\n\u{1F600}é{}\\[\\],:])*"
                .prop_map(|s| serde_json::to_string(&s).unwrap()),
            "[a-z ]*".prop_map(|s| format!("\"{s}\\u00e9\\ud83d\\ude00\\\"\"")),
        ]
    }

    proptest! {
        /// The walk finds exactly what the full parse finds, on chunks with escapes, nulls and odd spacing.
        #[test]
        fn walk_agrees_with_the_full_parse(
            content in proptest::option::of(json_text()),
            reasoning in proptest::option::of(json_text()),
            args in proptest::collection::vec(json_text(), 0..3),
            index in 0u64..3,
            extra in json_text(),
            ws in prop_oneof![Just(""), Just(" "), Just("\n\t ")],
            finish in prop_oneof![Just("null"), Just("\"stop\""), Just("\"tool_calls\"")],
            usage in prop_oneof![Just("null"), Just("{\"total_tokens\":3}"), Just("[]")],
        ) {
            let mut delta = Vec::new();
            delta.extend(content.map(|c| format!("\"content\"{ws}:{ws}{c}")));
            delta.push(format!("\"x\":{{\"y\":[{extra},{{}}]}}"));
            delta.extend(reasoning.map(|r| format!("\"reasoning_content\":{r}")));
            if !args.is_empty() {
                let calls: Vec<String> = args.iter().enumerate().map(|(i, a)| {
                    format!("{{\"index\":{i},{ws}\"function\":{{\"name\":{extra},\"arguments\":{a}}}}}")
                }).collect();
                delta.push(format!("\"tool_calls\":[{}]", calls.join(",")));
            }
            let data = format!(
                "{{\"id\":{extra},{ws}\"choices\":[{{\"index\":{index},\"delta\":{{{}}},{ws}\"finish_reason\":{finish}}}],\"usage\":{usage}}}",
                delta.join(&format!(",{ws}"))
            );
            let found = ChunkSpans::walk(&data);
            prop_assert!(found.is_some(), "{}", data);
            prop_assert_eq!(found, ChunkSpans::parse(&data));
        }

        /// The strict walk accepts nothing that is not JSON (the tap forwards what it accepts unchecked).
        #[test]
        fn the_walk_accepts_only_json(at in any::<prop::sample::Index>(), byte in any::<u8>(), op in 0..3u8) {
            let mut doc = br#"{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"h\u00e9\"\\i","tool_calls":[{"index":0,"function":{"name":"f","arguments":"{}"}}]},"logprobs":{"x":[-1.5e-3,true,false]},"finish_reason":null}],"usage":{"total_tokens":3},"error":null}"#.to_vec();
            let i = at.index(doc.len());
            match op {
                0 => doc[i] = byte,
                1 => doc.insert(i, byte),
                _ => {
                    doc.remove(i);
                }
            }
            if let Ok(data) = std::str::from_utf8(&doc) {
                if ChunkSpans::walk(data).is_some() {
                    prop_assert!(crate::json::is_json(&doc), "{}", data);
                }
            }
        }
    }

    #[test]
    fn nesting_is_counted_from_the_top() {
        // Four levels are open at a delta's members: the value skipped there may nest 1020 more.
        let chunk = |levels: usize| {
            let deep = "[".repeat(levels) + "1" + &"]".repeat(levels);
            format!(r#"{{"choices":[{{"delta":{{"x":{deep},"content":"a"}}}}]}}"#)
        };
        assert!(ChunkSpans::walk(&chunk(1020)).is_some());
        assert!(crate::json::is_json(chunk(1020).as_bytes()));
        assert_eq!(ChunkSpans::walk(&chunk(1021)), None);
        assert!(!crate::json::is_json(chunk(1021).as_bytes()));
    }
}
