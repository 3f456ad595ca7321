//! Guardrails on answers: every text a model writes (content, thinking, tool-call arguments) passes through
//! hold-back [`StreamScanner`]s before it reaches the client, in any of the three wire formats.
//!
//! A [`Screen`] is one answer's state: a scanner per text slot (a block, an output item, a choice's content or
//! tool call), one placeholder numbering for all of them, and the findings not yet reported to the gateway.
//! It is used three ways:
//! - translated streams: [`Screening`] sits between the upstream decoder and the caller's encoder, so the
//!   encoder only ever sees safe text (and repeats only that in its aggregates, e.g. `response.completed`);
//! - same-API streams (`passthrough`): the upstream's events are forwarded with their text fields replaced in
//!   place (the rest of each event byte for byte), held text is released in an extra delta event before the
//!   event that ends its block, and texts that events repeat are masked with the same numbering;
//! - OpenAI chat streams from the gateway's chat proxy: [`Screen::chat`], the same for chunks.
//!
//! Held text is released only where its text ends (a block, an item or a choice finishes, or the stream
//! ends): releasing it earlier would let a value split across deltas through unseen.
use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::chat_spans::{text_of, ChunkSpans, CALLS, CONTENT, REASONING};
use super::{push_str, push_u64, Citation, Sink, Stop, Usage};
use crate::scan::{Categories, Category, Engine, Masker, StreamScanner};
use crate::sse::SseEvent;

pub struct Screen {
    engine: Arc<Engine>,
    cats: Categories,
    masker: Masker,
    /// (placeholder, value) of the request's masked values, put back where the answer echoes them.
    restore: Vec<(String, String)>,
    slots: Vec<(u64, StreamScanner)>,
    /// Findings already handed to the gateway (the request's own are counted on the way in).
    reported: usize,
    /// Passthrough state: block kinds, Responses item slots and the sequence-number shift.
    blocks: Vec<(u64, &'static str, &'static str)>,
    items: Vec<(u64, ItemSlot)>,
    shift: u64,
    /// OpenAI chat: the first chunk's id, object, created and model (the template of a release chunk).
    template: Option<String>,
}

/// Where a Responses text slot lives: what a release delta event must say.
struct ItemSlot {
    kind: String,
    item_id: String,
    output_index: u64,
    index_key: &'static str,
    index: u64,
}

impl Screen {
    /// `request`: the request's masker, whose numbering the answer continues; `restore`: put the request's
    /// values back where the answer echoes their placeholders.
    pub fn new(
        engine: Arc<Engine>,
        cats: Categories,
        request: Option<Masker>,
        restore: bool,
    ) -> Self {
        let masker = request.unwrap_or_default();
        let restore = if restore {
            masker.placeholders()
        } else {
            Vec::new()
        };
        Self {
            reported: masker.found.len(),
            engine,
            cats,
            masker,
            restore,
            slots: Vec::new(),
            blocks: Vec::new(),
            items: Vec::new(),
            shift: 0,
            template: None,
        }
    }

    /// The safe part of `text` appended to `slot`'s text so far.
    pub fn feed(&mut self, slot: u64, text: &str) -> String {
        let i = match self.slots.iter().position(|(s, _)| *s == slot) {
            Some(i) => i,
            None => {
                let scanner = StreamScanner::new(self.engine.clone(), self.cats, Masker::default());
                self.slots.push((slot, scanner));
                self.slots.len() - 1
            }
        };
        let out = self.slots[i].1.feed_with(text, &mut self.masker);
        self.restored(out)
    }

    /// The end of `slot`'s text: what it still holds, masked.
    pub fn finish(&mut self, slot: u64) -> String {
        match self.slots.iter().position(|(s, _)| *s == slot) {
            Some(i) => {
                let (_, mut scanner) = self.slots.swap_remove(i);
                let out = scanner.finish_with(&mut self.masker);
                self.restored(out)
            }
            None => String::new(),
        }
    }

    /// Bytes `slot` holds back right now.
    fn held_len(&self, slot: u64) -> usize {
        self.slots
            .iter()
            .find(|(s, _)| *s == slot)
            .map_or(0, |(_, scanner)| scanner.held())
    }

    /// Slots holding text back, in the order they were opened.
    fn held(&self) -> Vec<u64> {
        let mut held: Vec<u64> = self
            .slots
            .iter()
            .filter(|(_, s)| s.held() > 0)
            .map(|(slot, _)| *slot)
            .collect();
        held.sort_unstable();
        held
    }

    /// A whole text (one an event repeats) masked with the answer's numbering. Its findings count only
    /// when it holds a value the deltas did not (they were counted as the deltas went out).
    pub fn mask(&mut self, text: &str) -> Option<String> {
        let findings = self.engine.scan(text, self.cats);
        if findings.is_empty() {
            return None;
        }
        let (found, distinct) = (self.masker.found.len(), self.masker.distinct());
        let out = self.masker.apply(&self.engine, text, &findings);
        if self.masker.distinct() == distinct {
            self.masker.found.truncate(found);
        }
        Some(out)
    }

    /// Events this screen added to a passed-through Responses stream so far (each shifts the numbering).
    pub fn sequence_shift(&self) -> u64 {
        self.shift
    }

    /// Findings since the last call: (category, type), never the value.
    pub fn take_found(&mut self) -> Vec<(Category, String)> {
        let new = self.masker.found[self.reported..].to_vec();
        self.reported = self.masker.found.len();
        new
    }

    pub fn has_new_findings(&self) -> bool {
        self.masker.found.len() > self.reported
    }

    fn restored(&self, mut text: String) -> String {
        // Scanner output ends at whitespace (or the end of the text), so a placeholder is never cut in two.
        for (placeholder, value) in &self.restore {
            if text.contains(placeholder.as_str()) {
                text = text.replace(placeholder.as_str(), value);
            }
        }
        text
    }

    /// Every string of a JSON tree masked, except identifiers and formats; None when nothing changed.
    fn mask_json(&mut self, raw: &str) -> Option<String> {
        let mut value: Value = serde_json::from_str(raw).ok()?;
        self.mask_value(&mut value).then(|| value.to_string())
    }

    fn mask_value(&mut self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => match self.mask(s) {
                Some(masked) => {
                    *s = masked;
                    true
                }
                None => false,
            },
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, v| self.mask_value(v) | changed),
            Value::Object(map) => map
                .iter_mut()
                .filter(|(k, _)| !NOT_TEXT.contains(&k.as_str()))
                .fold(false, |changed, (_, v)| self.mask_value(v) | changed),
            _ => false,
        }
    }
}

/// Keys whose values are identifiers, formats, citations or opaque blobs, not text the model wrote.
const NOT_TEXT: &[&str] = &[
    "type",
    "id",
    "item_id",
    "call_id",
    "role",
    "status",
    "name",
    "model",
    "object",
    "signature",
    "encrypted_content",
    "annotations",
    "logprobs",
];

// --- translated streams ---

const TEXT: u64 = 0;
const THINKING: u64 = 1;
const TOOL: u64 = 2;

/// The sink between an upstream decoder and the caller's encoder: only safe text goes on.
pub(crate) struct Screening<'a> {
    pub inner: &'a mut dyn Sink,
    pub screen: &'a mut Screen,
}

impl Screening<'_> {
    fn release(&mut self, out: &mut Vec<u8>, slots: &[u64]) {
        for &slot in slots {
            let rest = self.screen.finish(slot);
            if rest.is_empty() {
                continue;
            }
            match slot {
                TEXT => self.inner.text(out, &rest),
                THINKING => self.inner.thinking(out, &rest),
                _ => self.inner.tool_args(out, &rest),
            }
        }
    }

    fn release_all(&mut self, out: &mut Vec<u8>) {
        self.release(out, &[THINKING, TEXT, TOOL]);
    }
}

impl Sink for Screening<'_> {
    fn start(&mut self, out: &mut Vec<u8>, id: &str, usage: &Usage) {
        self.inner.start(out, id, usage);
    }
    // A switch between thinking and text ends the other one (encoders close its block there).
    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        self.release(out, &[THINKING]);
        let safe = self.screen.feed(TEXT, text);
        if !safe.is_empty() {
            self.inner.text(out, &safe);
        }
    }
    fn thinking(&mut self, out: &mut Vec<u8>, text: &str) {
        self.release(out, &[TEXT]);
        let safe = self.screen.feed(THINKING, text);
        if !safe.is_empty() {
            self.inner.thinking(out, &safe);
        }
    }
    fn signature(&mut self, out: &mut Vec<u8>, signature: &str) {
        self.release(out, &[THINKING]);
        self.inner.signature(out, signature);
    }
    fn redacted_thinking(&mut self, out: &mut Vec<u8>, data: &str) {
        self.release_all(out);
        self.inner.redacted_thinking(out, data);
    }
    fn tool_start(&mut self, out: &mut Vec<u8>, id: &str, name: &str) {
        self.release_all(out);
        self.inner.tool_start(out, id, name);
    }
    fn tool_args(&mut self, out: &mut Vec<u8>, fragment: &str) {
        let safe = self.screen.feed(TOOL, fragment);
        if !safe.is_empty() {
            self.inner.tool_args(out, &safe);
        }
    }
    fn block_end(&mut self, out: &mut Vec<u8>) {
        self.release_all(out);
        self.inner.block_end(out);
    }
    fn stop(&mut self, out: &mut Vec<u8>, reason: Stop) {
        self.release_all(out);
        self.inner.stop(out, reason);
    }
    fn end(&mut self, out: &mut Vec<u8>, usage: &Usage) {
        self.release_all(out);
        self.inner.end(out, usage);
    }
    fn error(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        self.inner.error(out, kind, message);
    }
    fn resume_sequence(&mut self, next: u64) {
        self.inner.resume_sequence(next);
    }
    // What the citations point at is written first.
    fn annotate(&mut self, out: &mut Vec<u8>, notes: &[Citation]) {
        self.release_all(out);
        self.inner.annotate(out, notes);
    }
    fn search_call(&mut self, out: &mut Vec<u8>, query: &str) {
        self.release_all(out);
        self.inner.search_call(out, query);
    }
}

// --- editing events in place ---

/// Replacements of byte ranges of one event's data.
#[derive(Default)]
struct Edits(Vec<(Range<usize>, String)>);

impl Edits {
    /// Replace the bytes `range` of the data with `json`.
    fn set(&mut self, range: Range<usize>, json: String) {
        self.0.push((range, json));
    }

    fn set_str(&mut self, range: Range<usize>, text: &str) {
        let mut json = Vec::with_capacity(text.len() + 2);
        push_str(&mut json, text);
        // serde_json writes valid UTF-8.
        self.set(range, String::from_utf8(json).unwrap_or_default());
    }

    fn apply<'a>(mut self, data: &'a str) -> Cow<'a, str> {
        if self.0.is_empty() {
            return Cow::Borrowed(data);
        }
        self.0.sort_by_key(|(r, _)| r.start);
        let mut out = String::with_capacity(data.len() + 16);
        let mut last = 0;
        for (range, json) in &self.0 {
            out.push_str(&data[last..range.start]);
            out.push_str(json);
            last = range.end;
        }
        out.push_str(&data[last..]);
        Cow::Owned(out)
    }
}

/// Where the JSON value `raw` (borrowed from `data`) lies in it.
fn span(data: &str, raw: &RawValue) -> Range<usize> {
    let start = raw.get().as_ptr() as usize - data.as_ptr() as usize;
    start..start + raw.get().len()
}

/// A JSON string's value (None for null or a non-string).
fn string_of(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Option<Cow<str>>>(raw.get())
        .ok()
        .flatten()
}

/// An event with the JSON values at `edits` replaced (a text, JSON-encoded, or null), framed straight into `out`.
fn write_edited(
    out: &mut Vec<u8>,
    name: Option<&str>,
    data: &str,
    edits: &mut [(Range<usize>, Option<Cow<str>>)],
) {
    edits.sort_by_key(|(r, _)| r.start);
    let put = |out: &mut Vec<u8>| {
        let mut last = 0;
        for (range, new) in edits.iter() {
            out.extend_from_slice(&data.as_bytes()[last..range.start]);
            match new {
                Some(text) => push_str(out, text),
                None => out.extend_from_slice(b"null"),
            }
            last = range.end;
        }
        out.extend_from_slice(&data.as_bytes()[last..]);
    };
    if memchr::memchr(b'\n', data.as_bytes()).is_some() {
        // A payload over several data lines (rare): each line needs its own field.
        let mut edited = Vec::with_capacity(data.len() + 16);
        put(&mut edited);
        return write(out, name, &String::from_utf8_lossy(&edited));
    }
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    put(out);
    out.extend_from_slice(b"\n\n");
}

fn write(out: &mut Vec<u8>, name: Option<&str>, data: &str) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// Feed a text field's value to `slot` and put the safe part in its place.
fn screen_field(
    screen: &mut Screen,
    edits: &mut Edits,
    data: &str,
    slot: u64,
    raw: Option<&RawValue>,
) {
    if let Some(raw) = raw {
        if let Some(text) = string_of(raw).filter(|t| !t.is_empty()) {
            let safe = screen.feed(slot, &text);
            if safe != text {
                edits.set_str(span(data, raw), &safe);
            }
        }
    }
}

// --- Anthropic Messages, passed through ---

#[derive(Deserialize)]
struct MessagesEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    index: Option<u64>,
    #[serde(borrow)]
    delta: Option<MessagesDelta<'a>>,
    #[serde(borrow)]
    content_block: Option<MessagesBlock<'a>>,
}

#[derive(Deserialize)]
struct MessagesDelta<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    partial_json: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MessagesBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
}

impl Screen {
    /// One upstream Anthropic event, screened, for a Messages caller.
    pub(crate) fn messages(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        let data = event.data.as_str();
        let Ok(parsed) = serde_json::from_str::<MessagesEvent>(data) else {
            return write(out, event.event.as_deref(), data);
        };
        let index = parsed.index.unwrap_or(0);
        let mut edits = Edits::default();
        match parsed.kind.as_ref() {
            "content_block_start" => {
                if let Some(block) = parsed.content_block {
                    let kind = match block.kind.as_ref() {
                        "text" => Some(("text_delta", "text")),
                        "thinking" => Some(("thinking_delta", "thinking")),
                        "tool_use" | "server_tool_use" => {
                            Some(("input_json_delta", "partial_json"))
                        }
                        _ => None,
                    };
                    if let Some((delta, key)) = kind {
                        self.blocks.push((index, delta, key));
                    }
                    screen_field(self, &mut edits, data, index, block.text);
                    screen_field(self, &mut edits, data, index, block.thinking);
                    if let Some(input) = block.input.filter(|i| i.get() != "{}") {
                        if let Some(masked) = self.mask_json(input.get()) {
                            edits.set(span(data, input), masked);
                        }
                    }
                }
            }
            "content_block_delta" => {
                if let Some(delta) = parsed.delta {
                    let field = match delta.kind.as_deref() {
                        Some("text_delta") => delta.text,
                        Some("input_json_delta") => delta.partial_json,
                        Some("thinking_delta") => delta.thinking,
                        _ => None,
                    };
                    screen_field(self, &mut edits, data, index, field);
                }
            }
            "content_block_stop" => self.release_blocks(out, &[index]),
            "message_delta" | "message_stop" => {
                let held = self.held();
                self.release_blocks(out, &held);
            }
            _ => {}
        }
        write(out, event.event.as_deref(), &edits.apply(data));
    }

    fn release_blocks(&mut self, out: &mut Vec<u8>, indices: &[u64]) {
        for &index in indices {
            let rest = self.finish(index);
            let Some(&(_, delta, key)) = self.blocks.iter().find(|(i, _, _)| *i == index) else {
                continue;
            };
            if rest.is_empty() {
                continue;
            }
            let mut data = Vec::with_capacity(rest.len() + 96);
            data.extend_from_slice(b"{\"type\":\"content_block_delta\",\"index\":");
            push_u64(&mut data, index);
            data.extend_from_slice(b",\"delta\":{\"type\":\"");
            data.extend_from_slice(delta.as_bytes());
            data.extend_from_slice(b"\",\"");
            data.extend_from_slice(key.as_bytes());
            data.extend_from_slice(b"\":");
            push_str(&mut data, &rest);
            data.extend_from_slice(b"}}");
            write(
                out,
                Some("content_block_delta"),
                &String::from_utf8_lossy(&data),
            );
        }
    }
}

// --- OpenAI Responses, passed through ---

#[derive(Deserialize)]
struct ResponsesEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    sequence_number: Option<&'a RawValue>,
    #[serde(borrow)]
    item_id: Option<Cow<'a, str>>,
    output_index: Option<u64>,
    content_index: Option<u64>,
    summary_index: Option<u64>,
    #[serde(borrow)]
    delta: Option<&'a RawValue>,
    #[serde(borrow)]
    text: Option<&'a RawValue>,
    #[serde(borrow)]
    refusal: Option<&'a RawValue>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow)]
    part: Option<&'a RawValue>,
    #[serde(borrow)]
    item: Option<&'a RawValue>,
    #[serde(borrow)]
    response: Option<ResponseBody<'a>>,
}

#[derive(Deserialize)]
struct ResponseBody<'a> {
    #[serde(borrow)]
    output: Option<&'a RawValue>,
    #[serde(borrow)]
    output_text: Option<&'a RawValue>,
}

const RESPONSES_DELTAS: &[&str] = &[
    "response.output_text.delta",
    "response.refusal.delta",
    "response.reasoning_summary_text.delta",
    "response.reasoning_text.delta",
    "response.function_call_arguments.delta",
];

impl Screen {
    /// One upstream Responses event, screened, for a Responses caller.
    pub(crate) fn responses(&mut self, event: &SseEvent, out: &mut Vec<u8>) {
        let data = event.data.as_str();
        let Ok(parsed) = serde_json::from_str::<ResponsesEvent>(data) else {
            return write(out, event.event.as_deref(), data);
        };
        let kind = parsed.kind.as_ref();
        let output_index = parsed.output_index.unwrap_or(0);
        let (index_key, index) = match (parsed.content_index, parsed.summary_index) {
            (Some(i), _) => ("content_index", i),
            (None, Some(i)) => ("summary_index", i),
            (None, None) => ("", 0),
        };
        let slot = (output_index << 16) | index;
        let mut edits = Edits::default();
        let seq = parsed
            .sequence_number
            .and_then(|raw| raw.get().parse::<u64>().ok());
        if RESPONSES_DELTAS.contains(&kind) {
            if !self.items.iter().any(|(s, _)| *s == slot) {
                let meta = ItemSlot {
                    kind: kind.to_owned(),
                    item_id: parsed.item_id.as_deref().unwrap_or("").to_owned(),
                    output_index,
                    index_key,
                    index,
                };
                self.items.push((slot, meta));
            }
            screen_field(self, &mut edits, data, slot, parsed.delta);
        } else {
            // The end of an item (or of the response) ends its texts: release them before it.
            let ends: Vec<u64> = match kind {
                "response.completed" | "response.incomplete" | "response.failed" => self.held(),
                k if k.ends_with(".done") => self
                    .held()
                    .into_iter()
                    .filter(|s| s >> 16 == output_index)
                    .collect(),
                _ => Vec::new(),
            };
            for slot in ends {
                self.release_item(out, slot, seq);
            }
            // Texts an event repeats (`.done` events, items, the final response) get the same placeholders.
            for raw in [
                parsed.text,
                parsed.refusal,
                parsed.arguments,
                parsed.part,
                parsed.item,
            ]
            .into_iter()
            .flatten()
            {
                self.mask_raw(&mut edits, data, raw);
            }
            if let Some(response) = parsed.response {
                for raw in [response.output, response.output_text]
                    .into_iter()
                    .flatten()
                {
                    self.mask_raw(&mut edits, data, raw);
                }
            }
        }
        if let (Some(raw), Some(seq)) = (parsed.sequence_number, seq) {
            if self.shift > 0 {
                edits.set(span(data, raw), (seq + self.shift).to_string());
            }
        }
        write(out, event.event.as_deref(), &edits.apply(data));
    }

    fn mask_raw(&mut self, edits: &mut Edits, data: &str, raw: &RawValue) {
        if raw.get().starts_with('"') {
            if let Some(masked) = string_of(raw).and_then(|t| self.mask(&t)) {
                edits.set_str(span(data, raw), &masked);
            }
        } else if let Some(masked) = self.mask_json(raw.get()) {
            edits.set(span(data, raw), masked);
        }
    }

    /// A delta event with what `slot` still holds, numbered before the event that ends it.
    fn release_item(&mut self, out: &mut Vec<u8>, slot: u64, seq: Option<u64>) {
        let rest = self.finish(slot);
        let Some((_, meta)) = self.items.iter().find(|(s, _)| *s == slot) else {
            return;
        };
        if rest.is_empty() {
            return;
        }
        let mut data = Vec::with_capacity(rest.len() + 160);
        data.extend_from_slice(b"{\"type\":");
        push_str(&mut data, &meta.kind);
        if let Some(seq) = seq {
            data.extend_from_slice(b",\"sequence_number\":");
            push_u64(&mut data, seq + self.shift);
        }
        data.extend_from_slice(b",\"item_id\":");
        push_str(&mut data, &meta.item_id);
        data.extend_from_slice(b",\"output_index\":");
        push_u64(&mut data, meta.output_index);
        if !meta.index_key.is_empty() {
            data.extend_from_slice(b",\"");
            data.extend_from_slice(meta.index_key.as_bytes());
            data.extend_from_slice(b"\":");
            push_u64(&mut data, meta.index);
        }
        data.extend_from_slice(b",\"delta\":");
        push_str(&mut data, &rest);
        if meta.kind == "response.output_text.delta" {
            data.extend_from_slice(b",\"logprobs\":[]");
        }
        data.push(b'}');
        let name = meta.kind.clone();
        if seq.is_some() {
            self.shift += 1;
        }
        write(out, Some(&name), &String::from_utf8_lossy(&data));
    }
}

// --- OpenAI chat chunks (the chat proxy's stream) ---

/// One event of a chat chunk stream, as the screen gets it.
pub enum ChatEvent<'a> {
    /// A data event: its payload, its `event:` name, and its raw bytes when they may be forwarded as they
    /// are (the tap's events; otherwise an unchanged event is re-framed too).
    Data {
        data: &'a str,
        name: Option<&'a str>,
        raw: Option<&'a [u8]>,
        /// The payload's spans, when the tap has found them already (the screen finds them otherwise).
        spans: Option<&'a ChunkSpans>,
    },
    /// The `[DONE]` terminator: what is still held goes out first.
    Done(&'a [u8]),
    /// Anything else (a comment, an event without data): forwarded as it is.
    Other(&'a [u8]),
}

impl<'a> ChatEvent<'a> {
    /// A parsed event (its raw bytes are gone: an unchanged one is re-framed).
    pub fn of(event: &'a SseEvent) -> Self {
        match event.data.as_str() {
            "[DONE]" => ChatEvent::Done(b"data: [DONE]\n\n"),
            data => ChatEvent::Data {
                data,
                name: event.event.as_deref(),
                raw: None,
                spans: None,
            },
        }
    }
}

impl Screen {
    /// Whole chat chunk events in, the same events with their texts screened out. Held text goes out in an
    /// extra chunk that takes over the finish_reason of its choice, or before `[DONE]`.
    ///
    /// Events that arrive together go out together, so each text is scanned once per call. When nothing in
    /// it was masked (the usual case) the safe part is what the slot held plus a prefix of the new text:
    /// each event keeps its own delta (the first also carries the held text), and only the events past the
    /// hold-back point are cut, so a clean burst goes out mostly byte for byte. Otherwise the safe part
    /// rides in the last of these events that carries that text, and the earlier ones carry "". Either way
    /// a burst of deltas costs one scan, and the client assembles the same text.
    pub fn chat(&mut self, events: &[ChatEvent], out: &mut Vec<u8>) {
        let unread = |e: &ChatEvent| matches!(e, ChatEvent::Data { spans: None, .. });
        let found: Vec<Option<ChunkSpans>> = match events.iter().any(unread) {
            true => events
                .iter()
                .map(|e| match e {
                    ChatEvent::Data {
                        data, spans: None, ..
                    } => ChunkSpans::of(data),
                    _ => None,
                })
                .collect(),
            false => Vec::new(),
        };
        let spans: Vec<Option<&ChunkSpans>> = events
            .iter()
            .enumerate()
            .map(|(i, e)| match e {
                ChatEvent::Data { spans: Some(s), .. } => Some(*s),
                _ => found.get(i).and_then(Option::as_ref),
            })
            .collect();
        // Per text slot: everything these events add to it, and the last event that adds to it.
        let mut texts: Vec<(u64, Cow<str>, usize)> = Vec::new();
        for (i, (event, spans)) in events.iter().zip(&spans).enumerate() {
            let (ChatEvent::Data { data, .. }, Some(spans)) = (event, spans) else {
                continue;
            };
            for (slot, range) in &spans.texts {
                if let Some(text) = text_of(&data[range.clone()]) {
                    match texts.iter_mut().find(|(s, _, _)| s == slot) {
                        Some(entry) => {
                            entry.1.to_mut().push_str(&text);
                            entry.2 = i;
                        }
                        None => texts.push((*slot, text, i)),
                    }
                }
            }
        }
        // Per text slot: its safe part, and how much of it was held before (None: not held text plus a
        // prefix of the new text, so something was masked or restored).
        let safe: Vec<(String, Option<usize>)> = texts
            .iter()
            .map(|(slot, text, _)| {
                let held = self.held_len(*slot);
                let out = self.feed(*slot, text);
                let plain = out.get(held..).is_some_and(|new| text.starts_with(new));
                (out, plain.then_some(held))
            })
            .collect();
        // Per text slot: where the next event's delta starts in the slot's new text.
        let mut offsets = vec![0usize; texts.len()];
        for (i, (event, spans)) in events.iter().zip(&spans).enumerate() {
            let (data, name, raw) = match *event {
                ChatEvent::Data {
                    data, name, raw, ..
                } => (data, name, raw),
                ChatEvent::Done(raw) => {
                    self.release_chat(out, None, None);
                    out.extend_from_slice(raw);
                    continue;
                }
                ChatEvent::Other(raw) => {
                    out.extend_from_slice(raw);
                    continue;
                }
            };
            let Some(spans) = spans else {
                // Not a chunk object (the tap has checked it is JSON): nothing in it is a text of the answer.
                match raw {
                    Some(raw) => out.extend_from_slice(raw),
                    None => write(out, name, data),
                }
                continue;
            };
            if self.template.is_none() && spans.template.iter().any(|(k, _)| k == "id") {
                let mut t = String::new();
                for (key, range) in spans.template.iter() {
                    t.push_str(&format!("\"{key}\":{},", &data[range]));
                }
                self.template = Some(t);
            }
            // (range, new text; None: null)
            let mut edits: Vec<(Range<usize>, Option<Cow<str>>)> = Vec::new();
            for (slot, range) in &spans.texts {
                let Some(text) = text_of(&data[range.clone()]) else {
                    continue;
                };
                let Some(k) = texts.iter().position(|(s, _, _)| s == slot) else {
                    continue;
                };
                let (out, plain) = &safe[k];
                let new: Cow<str> = match *plain {
                    Some(held) => {
                        let (start, end) = (offsets[k], offsets[k] + text.len());
                        offsets[k] = end;
                        let released = out.len() - held;
                        let own = texts[k].1.get(start..end.min(released)).unwrap_or("");
                        if start == 0 && held > 0 {
                            Cow::Owned(format!("{}{own}", &out[..held]))
                        } else {
                            Cow::Borrowed(own)
                        }
                    }
                    None if texts[k].2 == i => Cow::Borrowed(out.as_str()),
                    None => Cow::Borrowed(""),
                };
                if new != text {
                    edits.push((range.clone(), Some(new)));
                }
            }
            let mut finishing = Vec::new();
            for (index, range) in &spans.finishes {
                let reason = &data[range.clone()];
                if reason != "null" && self.held().iter().any(|s| s >> 32 == *index) {
                    // The held text goes out first, in a chunk that finishes the choice instead.
                    edits.push((range.clone(), None));
                    finishing.push((*index, reason));
                }
            }
            match raw {
                Some(raw) if edits.is_empty() => out.extend_from_slice(raw),
                _ => write_edited(out, name, data, &mut edits),
            }
            for (index, reason) in finishing {
                self.release_chat(out, Some(index), Some(reason));
            }
        }
    }

    /// The end of a stream without `[DONE]`: a chunk with what is still held.
    pub fn chat_finish(&mut self, out: &mut Vec<u8>) {
        self.release_chat(out, None, None);
    }

    /// One chunk per choice (`only`: just that one) with its held texts; `reason` its finish_reason.
    fn release_chat(&mut self, out: &mut Vec<u8>, only: Option<u64>, reason: Option<&str>) {
        let held = self.held();
        let mut choices: Vec<u64> = held.iter().map(|s| s >> 32).collect();
        choices.dedup();
        for choice in choices.into_iter().filter(|c| only.is_none_or(|o| o == *c)) {
            let mut fields: Vec<Vec<u8>> = Vec::new();
            let mut calls: Vec<Vec<u8>> = Vec::new();
            for &slot in held.iter().filter(|s| *s >> 32 == choice) {
                let rest = self.finish(slot);
                let mut field = Vec::with_capacity(rest.len() + 48);
                match slot & 0xffff_ffff {
                    CONTENT => field.extend_from_slice(b"\"content\":"),
                    REASONING => field.extend_from_slice(b"\"reasoning_content\":"),
                    part => {
                        field.extend_from_slice(b"{\"index\":");
                        push_u64(&mut field, part - CALLS);
                        field.extend_from_slice(b",\"function\":{\"arguments\":");
                        push_str(&mut field, &rest);
                        field.extend_from_slice(b"}}");
                        calls.push(field);
                        continue;
                    }
                }
                push_str(&mut field, &rest);
                fields.push(field);
            }
            if !calls.is_empty() {
                let mut field = b"\"tool_calls\":[".to_vec();
                field.extend_from_slice(&calls.join(&b','));
                field.push(b']');
                fields.push(field);
            }
            let delta = fields.join(&b',');
            let mut data = Vec::with_capacity(delta.len() + 160);
            data.push(b'{');
            data.extend_from_slice(self.template.as_deref().unwrap_or("").as_bytes());
            data.extend_from_slice(b"\"choices\":[{\"index\":");
            push_u64(&mut data, choice);
            data.extend_from_slice(b",\"delta\":{");
            data.extend_from_slice(&delta);
            data.extend_from_slice(b"},\"finish_reason\":");
            data.extend_from_slice(reason.unwrap_or("null").as_bytes());
            data.extend_from_slice(b"}]}");
            write(out, None, &String::from_utf8_lossy(&data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::DEFAULT_CATEGORIES;
    use crate::sse::SseParser;

    fn screen() -> Screen {
        let engine = Arc::new(Engine::new(&[]).unwrap());
        Screen::new(engine, DEFAULT_CATEGORIES, None, false)
    }

    fn events(raw: &str) -> Vec<SseEvent> {
        SseParser::new().feed(raw.as_bytes())
    }

    fn chat_events(events: &[SseEvent]) -> Vec<ChatEvent<'_>> {
        events.iter().map(ChatEvent::of).collect()
    }

    #[test]
    fn chat_chunk_keeps_its_other_bytes_and_release_takes_the_finish_reason() {
        let mut s = screen();
        let mut out = Vec::new();
        let raw = concat!(
            "data: {\"id\":\"c\",\"x\":[1, 2],\"choices\":[{\"index\":0,\"delta\":{\"content\":\"card 4111 1111\"},\"finish_reason\":null}]}\n\n",
            "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" 1111 1111 ok\"},\"finish_reason\":\"stop\"}]}\n\n",
        );
        for event in events(raw) {
            s.chat(&chat_events(&[event]), &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("4111"), "{text}");
        assert!(text.starts_with(
            "data: {\"id\":\"c\",\"x\":[1, 2],\"choices\":[{\"index\":0,\"delta\":{\"content\":\""
        ));
        assert!(
            text.ends_with("\"content\":\"[CARD_1] ok\"},\"finish_reason\":\"stop\"}]}\n\n"),
            "{text}"
        );
        assert_eq!(text.matches("\"finish_reason\":\"stop\"").count(), 1);
        assert_eq!(s.take_found().len(), 1);
        assert!(s.take_found().is_empty());
    }

    #[test]
    fn an_edited_chat_event_keeps_its_name_and_data_lines() {
        let mut s = screen();
        let mut out = Vec::new();
        let raw = "event: chunk\ndata: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"mail jane@acme.io \\u00e9 \"}}]}\n\n";
        s.chat(&chat_events(&events(raw)), &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "event: chunk\ndata: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"mail [EMAIL_1] é \"}}]}\n\n"
        );
    }

    #[test]
    fn a_burst_of_chat_events_is_scanned_once_and_cut_at_the_hold_back_point() {
        let mut s = screen();
        let mut out = Vec::new();
        let raw = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"card 4111 \"}}]}\n\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"1111 1111 1111 ok \"}}]}\n\n",
            "data: [DONE]\n\n",
        );
        s.chat(&chat_events(&events(raw)), &mut out);
        let text = String::from_utf8(out).unwrap();
        // The card's words are held back whole: the first event keeps the safe start of its own delta.
        assert!(text.starts_with(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"card \"}}]}\n\n"
        ));
        assert!(!text.contains("4111") && !text.contains("1111"), "{text}");
        let assembled: String = text
            .split("\"content\":\"")
            .skip(1)
            .map(|rest| &rest[..rest.find('"').unwrap()])
            .collect();
        assert_eq!(assembled, "card [CARD_1] ok ");
    }

    #[test]
    fn a_clean_burst_goes_out_as_it_came_but_for_the_held_back_word() {
        let mut s = screen();
        let (mut first, mut second) = (Vec::new(), Vec::new());
        let chunk = |t: &str| {
            format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{t}\"}}}}]}}\n\n")
        };
        let burst = [
            chunk("The quick"),
            chunk(" brown fox"),
            chunk(" jumps over"),
        ]
        .concat();
        s.chat(&chat_events(&events(&burst)), &mut first);
        let first = String::from_utf8(first).unwrap();
        // Byte for byte but the last delta, whose unfinished word is held for the next read.
        assert!(
            first.starts_with(&[chunk("The quick"), chunk(" brown fox")].concat()),
            "{first}"
        );
        assert!(first.ends_with(&chunk(" jumps ")), "{first}");
        // The next read's first event carries the held word before its own delta.
        let next = [
            chunk(" the lazy"),
            chunk(" dog."),
            "data: [DONE]\n\n".to_owned(),
        ]
        .concat();
        s.chat(&chat_events(&events(&next)), &mut second);
        let second = String::from_utf8(second).unwrap();
        assert!(second.starts_with(&chunk("over the lazy")), "{second}");
        let assembled: String = [first, second]
            .concat()
            .split("\"content\":\"")
            .skip(1)
            .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
            .collect();
        assert_eq!(assembled, "The quick brown fox jumps over the lazy dog.");
    }

    #[test]
    fn messages_release_comes_before_the_block_stops() {
        let mut s = screen();
        let mut out = Vec::new();
        let raw = concat!(
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"mail jane@acme.io\"}}\n\n",
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        );
        for event in events(raw) {
            s.messages(&event, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let release = text.find("\"text\":\"[EMAIL_1]\"").expect(&text);
        assert!(release < text.find("content_block_stop\ndata").unwrap());
        assert!(!text.contains("jane@"));
    }

    #[test]
    fn responses_sequence_numbers_shift_after_a_release() {
        let mut s = screen();
        let mut out = Vec::new();
        let raw = concat!(
            "data: {\"type\":\"response.output_text.delta\",\"sequence_number\":4,\"item_id\":\"m\",\"output_index\":0,\"content_index\":0,\"delta\":\"hi jane@acme.io\"}\n\n",
            "data: {\"type\":\"response.output_text.done\",\"sequence_number\":5,\"item_id\":\"m\",\"output_index\":0,\"content_index\":0,\"text\":\"hi jane@acme.io\"}\n\n",
            "data: {\"type\":\"response.completed\",\"sequence_number\":6,\"response\":{\"output\":[{\"type\":\"message\",\"id\":\"m\",\"content\":[{\"type\":\"output_text\",\"text\":\"hi jane@acme.io\"}]}]}}\n\n",
        );
        for event in events(raw) {
            s.responses(&event, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("jane@"), "{text}");
        let seqs: Vec<&str> = text
            .split("\"sequence_number\":")
            .skip(1)
            .map(|rest| &rest[..1])
            .collect();
        assert_eq!(seqs, ["4", "5", "6", "7"], "{text}");
        assert_eq!(text.matches("[EMAIL_1]").count(), 3);
        // The repeated texts are not counted again.
        assert_eq!(s.take_found().len(), 1);
    }
}
