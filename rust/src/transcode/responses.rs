//! Encoder for OpenAI Responses events.
//!
//! Every event carries `type` and a `sequence_number`; output items are opened by their first delta (message
//! → `output_item.added` + `content_part.added`; reasoning → its summary part; function call) and closed with
//! their `.done` events, which repeat the accumulated text. The finished items are kept, serialised, for the
//! terminal `response.completed`, whose `response` must be the whole answer.
//!
//! Consecutive text blocks of the upstream make one message item (as OpenAI answers: one `output_text`), so
//! citations the gateway reports (`annotate`) land in the open message, and a web search reported while it is
//! open becomes a `web_search_call` item right after it.
use super::{push_str, push_u64, Citation, Options, Sink, Stop, Usage};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message,
    Reasoning,
    Call,
}

struct OpenItem {
    kind: Kind,
    id: String,
    /// Text, summary or arguments so far.
    text: String,
    call_id: String,
    name: String,
    encrypted: Option<String>,
    /// Message: its serialised `url_citation` annotations, and where its text starts in the answer's text
    /// (in characters, the unit of the citations' offsets).
    annotations: Vec<Vec<u8>>,
    start_chars: usize,
}

pub(crate) struct ResponsesEncoder {
    options: Options,
    id: String,
    seq: u64,
    started: bool,
    open: Option<OpenItem>,
    /// Serialised finished items, in output order.
    items: Vec<Vec<u8>>,
    stop: Option<Stop>,
    ended: bool,
    /// Characters of message text written so far.
    text_chars: usize,
    /// Web searches reported while a message was open (queries), written when it closes.
    searches: Vec<String>,
}

impl ResponsesEncoder {
    pub fn new(options: Options) -> Self {
        Self {
            options,
            id: String::new(),
            seq: 0,
            started: false,
            open: None,
            items: Vec::new(),
            stop: None,
            ended: false,
            text_chars: 0,
            searches: Vec::new(),
        }
    }

    fn event(&mut self, out: &mut Vec<u8>, name: &[u8]) {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name);
        out.extend_from_slice(b"\ndata: {\"type\":\"");
        out.extend_from_slice(name);
        out.extend_from_slice(b"\",\"sequence_number\":");
        push_u64(out, self.seq);
        self.seq += 1;
    }

    fn response(&self, out: &mut Vec<u8>, status: &str, usage: Option<&Usage>) {
        out.extend_from_slice(b"{\"id\":");
        push_str(out, &self.id);
        out.extend_from_slice(b",\"object\":\"response\",\"created_at\":");
        push_u64(out, self.options.created);
        out.extend_from_slice(b",\"status\":");
        push_str(out, status);
        out.extend_from_slice(b",\"error\":null,\"incomplete_details\":");
        match (status, self.stop) {
            ("incomplete", Some(Stop::ContentFilter)) => {
                out.extend_from_slice(b"{\"reason\":\"content_filter\"}")
            }
            ("incomplete", _) => out.extend_from_slice(b"{\"reason\":\"max_output_tokens\"}"),
            _ => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"instructions\":null,\"model\":");
        push_str(out, &self.options.model);
        out.extend_from_slice(b",\"output\":[");
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(item);
        }
        out.extend_from_slice(
            b"],\"parallel_tool_calls\":true,\"temperature\":null,\"tool_choice\":\"auto\",\"tools\":[],\"top_p\":null,\"metadata\":{},\"usage\":",
        );
        match usage {
            None => out.extend_from_slice(b"null"),
            Some(u) => {
                let input = u.prompt_total().unwrap_or(0);
                let output = u.output.unwrap_or(0);
                out.extend_from_slice(b"{\"input_tokens\":");
                push_u64(out, input);
                out.extend_from_slice(b",\"input_tokens_details\":{\"cached_tokens\":");
                push_u64(out, u.cache_read.unwrap_or(0));
                out.extend_from_slice(b"},\"output_tokens\":");
                push_u64(out, output);
                out.extend_from_slice(b",\"output_tokens_details\":{\"reasoning_tokens\":");
                push_u64(out, u.reasoning.unwrap_or(0));
                out.extend_from_slice(b"},\"total_tokens\":");
                push_u64(out, input + output);
                if let Some(prices) = &self.options.prices {
                    out.extend_from_slice(b",\"cost\":");
                    // Writing into a Vec cannot fail.
                    let _ = serde_json::to_writer(&mut *out, &prices.cost(u));
                }
                out.push(b'}');
            }
        }
        out.push(b'}');
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>, id: &str) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        self.id = if id.starts_with("resp_") {
            id.to_owned()
        } else {
            format!("resp_{id}")
        };
        for name in [&b"response.created"[..], b"response.in_progress"] {
            self.event(out, name);
            out.extend_from_slice(b",\"response\":");
            self.response(out, "in_progress", None);
            out.extend_from_slice(b"}\n\n");
        }
    }

    fn item_head(&self, out: &mut Vec<u8>, id: &str) {
        out.extend_from_slice(b",\"item_id\":");
        push_str(out, id);
        out.extend_from_slice(b",\"output_index\":");
        push_u64(out, self.items.len() as u64);
    }

    /// The item JSON as it is when finished (`done`) or just opened.
    fn item_json(item: &OpenItem, done: bool) -> Vec<u8> {
        let mut j = Vec::with_capacity(64 + item.text.len());
        let status: &[u8] = if done {
            b"\"completed\""
        } else {
            b"\"in_progress\""
        };
        match item.kind {
            Kind::Message => {
                j.extend_from_slice(b"{\"type\":\"message\",\"id\":");
                push_str(&mut j, &item.id);
                j.extend_from_slice(b",\"status\":");
                j.extend_from_slice(status);
                j.extend_from_slice(b",\"role\":\"assistant\",\"content\":[");
                if done {
                    j.extend_from_slice(b"{\"type\":\"output_text\",\"text\":");
                    push_str(&mut j, &item.text);
                    j.extend_from_slice(b",\"annotations\":");
                    Self::annotations_json(&mut j, item);
                    j.extend_from_slice(b",\"logprobs\":[]}");
                }
                j.extend_from_slice(b"]}");
            }
            Kind::Reasoning => {
                j.extend_from_slice(b"{\"type\":\"reasoning\",\"id\":");
                push_str(&mut j, &item.id);
                j.extend_from_slice(b",\"summary\":[");
                if done && !item.text.is_empty() {
                    j.extend_from_slice(b"{\"type\":\"summary_text\",\"text\":");
                    push_str(&mut j, &item.text);
                    j.push(b'}');
                }
                j.push(b']');
                if let Some(blob) = item.encrypted.as_deref().filter(|_| done) {
                    j.extend_from_slice(b",\"encrypted_content\":");
                    push_str(&mut j, blob);
                }
                j.push(b'}');
            }
            Kind::Call => {
                j.extend_from_slice(b"{\"type\":\"function_call\",\"id\":");
                push_str(&mut j, &item.id);
                j.extend_from_slice(b",\"call_id\":");
                push_str(&mut j, &item.call_id);
                j.extend_from_slice(b",\"name\":");
                push_str(&mut j, &item.name);
                j.extend_from_slice(b",\"arguments\":");
                push_str(&mut j, if done { &item.text } else { "" });
                j.extend_from_slice(b",\"status\":");
                j.extend_from_slice(status);
                j.push(b'}');
            }
        }
        j
    }

    fn annotations_json(out: &mut Vec<u8>, item: &OpenItem) {
        out.push(b'[');
        for (i, note) in item.annotations.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(note);
        }
        out.push(b']');
    }

    fn open(&mut self, out: &mut Vec<u8>, kind: Kind, call: Option<(&str, &str)>) {
        self.ensure_started(out, "");
        if call.is_none() && self.open.as_ref().is_some_and(|i| i.kind == kind) {
            return;
        }
        self.close(out);
        let prefix = match kind {
            Kind::Message => "msg",
            Kind::Reasoning => "rs",
            Kind::Call => "fc",
        };
        let (call_id, name) = call.unwrap_or(("", ""));
        let item = OpenItem {
            kind,
            id: format!(
                "{prefix}_{}_{}",
                self.id.trim_start_matches("resp_"),
                self.items.len()
            ),
            text: String::new(),
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            encrypted: None,
            annotations: Vec::new(),
            start_chars: self.text_chars,
        };
        self.event(out, b"response.output_item.added");
        out.extend_from_slice(b",\"output_index\":");
        push_u64(out, self.items.len() as u64);
        out.extend_from_slice(b",\"item\":");
        out.extend_from_slice(&Self::item_json(&item, false));
        out.extend_from_slice(b"}\n\n");
        match kind {
            Kind::Message => {
                self.event(out, b"response.content_part.added");
                self.item_head(out, &item.id);
                out.extend_from_slice(b",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":\"\",\"annotations\":[]}}\n\n");
            }
            Kind::Reasoning => {
                self.event(out, b"response.reasoning_summary_part.added");
                self.item_head(out, &item.id);
                out.extend_from_slice(
                    b",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}}\n\n",
                );
            }
            Kind::Call => {}
        }
        self.open = Some(item);
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(item) = self.open.take() else {
            return;
        };
        match item.kind {
            Kind::Message => {
                self.event(out, b"response.output_text.done");
                self.item_head(out, &item.id);
                out.extend_from_slice(b",\"content_index\":0,\"text\":");
                push_str(out, &item.text);
                out.extend_from_slice(b",\"logprobs\":[]}\n\n");
                self.event(out, b"response.content_part.done");
                self.item_head(out, &item.id);
                out.extend_from_slice(
                    b",\"content_index\":0,\"part\":{\"type\":\"output_text\",\"text\":",
                );
                push_str(out, &item.text);
                out.extend_from_slice(b",\"annotations\":");
                Self::annotations_json(out, &item);
                out.extend_from_slice(b"}}\n\n");
            }
            Kind::Reasoning => {
                self.event(out, b"response.reasoning_summary_text.done");
                self.item_head(out, &item.id);
                out.extend_from_slice(b",\"summary_index\":0,\"text\":");
                push_str(out, &item.text);
                out.extend_from_slice(b"}\n\n");
                self.event(out, b"response.reasoning_summary_part.done");
                self.item_head(out, &item.id);
                out.extend_from_slice(
                    b",\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":",
                );
                push_str(out, &item.text);
                out.extend_from_slice(b"}}\n\n");
            }
            Kind::Call => {
                self.event(out, b"response.function_call_arguments.done");
                self.item_head(out, &item.id);
                out.extend_from_slice(b",\"arguments\":");
                push_str(out, &item.text);
                out.extend_from_slice(b"}\n\n");
            }
        }
        let json = Self::item_json(&item, true);
        self.event(out, b"response.output_item.done");
        out.extend_from_slice(b",\"output_index\":");
        push_u64(out, self.items.len() as u64);
        out.extend_from_slice(b",\"item\":");
        out.extend_from_slice(&json);
        out.extend_from_slice(b"}\n\n");
        self.items.push(json);
        for query in std::mem::take(&mut self.searches) {
            self.web_search_call(out, &query);
        }
    }

    /// A `web_search_call` item, added and done at once: the search already ran upstream.
    /// (https://platform.openai.com/docs/api-reference/responses-streaming/response/web_search_call)
    fn web_search_call(&mut self, out: &mut Vec<u8>, query: &str) {
        let id = format!(
            "ws_{}_{}",
            self.id.trim_start_matches("resp_"),
            self.items.len()
        );
        let item = |status: &[u8]| {
            let mut j = Vec::with_capacity(96 + query.len());
            j.extend_from_slice(b"{\"type\":\"web_search_call\",\"id\":");
            push_str(&mut j, &id);
            j.extend_from_slice(b",\"status\":\"");
            j.extend_from_slice(status);
            j.extend_from_slice(b"\",\"action\":{\"type\":\"search\",\"query\":");
            push_str(&mut j, query);
            j.extend_from_slice(b"}}");
            j
        };
        self.event(out, b"response.output_item.added");
        out.extend_from_slice(b",\"output_index\":");
        push_u64(out, self.items.len() as u64);
        out.extend_from_slice(b",\"item\":");
        out.extend_from_slice(&item(b"in_progress"));
        out.extend_from_slice(b"}\n\n");
        for name in [
            &b"response.web_search_call.in_progress"[..],
            b"response.web_search_call.searching",
            b"response.web_search_call.completed",
        ] {
            self.event(out, name);
            self.item_head(out, &id);
            out.extend_from_slice(b"}\n\n");
        }
        let done = item(b"completed");
        self.event(out, b"response.output_item.done");
        out.extend_from_slice(b",\"output_index\":");
        push_u64(out, self.items.len() as u64);
        out.extend_from_slice(b",\"item\":");
        out.extend_from_slice(&done);
        out.extend_from_slice(b"}\n\n");
        self.items.push(done);
    }

    fn delta(&mut self, out: &mut Vec<u8>, name: &[u8], index_key: &[u8], text: &str) {
        let id = match self.open.as_mut() {
            Some(item) => {
                item.text.push_str(text);
                std::mem::take(&mut item.id)
            }
            None => return,
        };
        self.event(out, name);
        self.item_head(out, &id);
        out.extend_from_slice(index_key);
        out.extend_from_slice(b",\"delta\":");
        push_str(out, text);
        if name == b"response.output_text.delta" {
            out.extend_from_slice(b",\"logprobs\":[]");
        }
        out.extend_from_slice(b"}\n\n");
        if let Some(item) = self.open.as_mut() {
            item.id = id;
        }
    }
}

impl Sink for ResponsesEncoder {
    fn start(&mut self, out: &mut Vec<u8>, id: &str, _usage: &Usage) {
        self.ensure_started(out, id);
    }

    fn text(&mut self, out: &mut Vec<u8>, text: &str) {
        self.open(out, Kind::Message, None);
        self.text_chars += text.chars().count();
        self.delta(
            out,
            b"response.output_text.delta",
            b",\"content_index\":0",
            text,
        );
    }

    fn thinking(&mut self, out: &mut Vec<u8>, text: &str) {
        self.open(out, Kind::Reasoning, None);
        self.delta(
            out,
            b"response.reasoning_summary_text.delta",
            b",\"summary_index\":0",
            text,
        );
    }

    fn signature(&mut self, out: &mut Vec<u8>, signature: &str) {
        self.open(out, Kind::Reasoning, None);
        if let Some(item) = self.open.as_mut() {
            item.encrypted = Some(signature.to_owned());
        }
    }

    fn redacted_thinking(&mut self, out: &mut Vec<u8>, data: &str) {
        self.close(out);
        self.signature(out, data);
        self.close(out);
    }

    fn tool_start(&mut self, out: &mut Vec<u8>, id: &str, name: &str) {
        self.open(out, Kind::Call, Some((id, name)));
    }

    fn tool_args(&mut self, out: &mut Vec<u8>, fragment: &str) {
        if self.open.as_ref().is_some_and(|i| i.kind == Kind::Call) {
            self.delta(
                out,
                b"response.function_call_arguments.delta",
                b"",
                fragment,
            );
        }
    }

    fn block_end(&mut self, out: &mut Vec<u8>) {
        // The next text block continues the message: another kind of item, or the end, closes it.
        if self.open.as_ref().is_some_and(|i| i.kind != Kind::Message) {
            self.close(out);
        }
    }

    fn stop(&mut self, _out: &mut Vec<u8>, reason: Stop) {
        self.stop = Some(reason);
    }

    fn end(&mut self, out: &mut Vec<u8>, usage: &Usage) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        self.ensure_started(out, "");
        self.close(out);
        let (name, status): (&[u8], &str) = match self.stop {
            Some(Stop::MaxTokens | Stop::ContentFilter) => (b"response.incomplete", "incomplete"),
            _ => (b"response.completed", "completed"),
        };
        self.event(out, name);
        out.extend_from_slice(b",\"response\":");
        self.response(out, status, Some(usage));
        out.extend_from_slice(b"}\n\n");
    }

    fn resume_sequence(&mut self, next: u64) {
        self.seq = self.seq.max(next);
    }

    fn annotate(&mut self, out: &mut Vec<u8>, notes: &[Citation]) {
        let text_chars = self.text_chars;
        let Some(item) = self.open.as_mut().filter(|i| i.kind == Kind::Message) else {
            return; // nothing of the answer's text is open to cite
        };
        // The citations count the whole answer's text; this item's starts at `start_chars`.
        let len = text_chars - item.start_chars;
        let first = item.annotations.len();
        for note in notes {
            let start = note.start.saturating_sub(item.start_chars).min(len);
            let end = note.end.saturating_sub(item.start_chars).clamp(start, len);
            let mut j = Vec::with_capacity(96 + note.url.len() + note.title.len());
            j.extend_from_slice(b"{\"type\":\"url_citation\",\"start_index\":");
            push_u64(&mut j, start as u64);
            j.extend_from_slice(b",\"end_index\":");
            push_u64(&mut j, end as u64);
            j.extend_from_slice(b",\"url\":");
            push_str(&mut j, &note.url);
            j.extend_from_slice(b",\"title\":");
            push_str(&mut j, &note.title);
            j.push(b'}');
            item.annotations.push(j);
        }
        let (id, added) = (item.id.clone(), item.annotations[first..].to_vec());
        for (i, note) in added.iter().enumerate() {
            self.event(out, b"response.output_text.annotation.added");
            self.item_head(out, &id);
            out.extend_from_slice(b",\"content_index\":0,\"annotation_index\":");
            push_u64(out, (first + i) as u64);
            out.extend_from_slice(b",\"annotation\":");
            out.extend_from_slice(note);
            out.extend_from_slice(b"}\n\n");
        }
    }

    fn search_call(&mut self, out: &mut Vec<u8>, query: &str) {
        self.ensure_started(out, "");
        if self.open.as_ref().is_some_and(|i| i.kind == Kind::Message) {
            self.searches.push(query.to_owned());
        } else {
            self.close(out);
            self.web_search_call(out, query);
        }
    }

    fn error(&mut self, out: &mut Vec<u8>, kind: &str, message: &str) {
        self.event(out, b"error");
        out.extend_from_slice(b",\"code\":");
        push_str(out, kind);
        out.extend_from_slice(b",\"message\":");
        push_str(out, message);
        out.extend_from_slice(b",\"param\":null}\n\n");
    }
}
