//! Masking the strings of a JSON document where they lie. One walk over the bytes finds every string a
//! model reads: all of them but the values of a few keys that hold identifiers, formats or binary data.
//! Each is scanned in place (unescaped first only if it has escapes), only the strings that hold a value
//! are re-encoded, and every other byte is copied as it was. A clean request costs the walk and the scans,
//! and nothing is built.
//!
//! The walk gives up on what it does not handle (a key written with escapes, nesting deeper than
//! [`MAX_DEPTH`], bytes that are not JSON): the caller then decodes the whole document instead, so an
//! odd document is scanned more slowly, never less.
use std::ops::Range;

use super::{Categories, Engine, Masker};
use crate::json::{push_str, text_of, Walker};

/// Deeper documents take the caller's slow path (this walk recurses, and a stack must not overflow).
pub const MAX_DEPTH: usize = 128;

/// Which strings of a document are not text: the string values of `skip` keys (directly, or in an array
/// under the key), such as identifiers, formats and base64 payloads. An object under such a key is still
/// read, key by key (a tool schema's property called `name` has a description). Under a `whole` key every
/// string is text, whatever its key (an Anthropic `tool_use` input carries the caller's own field names).
#[derive(Debug, Default, Clone)]
pub struct SkipKeys {
    // Keys by length, each with its mode: a lookup compares the key with the few of its length. Every key
    // of a document is looked up, and hashing them (SipHash, twice) took ~40% of a small answer's walk.
    by_len: Vec<Vec<(Box<[u8]>, Mode)>>,
}

impl SkipKeys {
    pub fn new<S: AsRef<str>>(
        skip: impl IntoIterator<Item = S>,
        whole: impl IntoIterator<Item = S>,
    ) -> Self {
        let mut keys = Self::default();
        // `whole` last: a key in both sets reads everything under it.
        let all = skip.into_iter().map(|k| (k, Mode::Skip));
        for (key, mode) in all.chain(whole.into_iter().map(|k| (k, Mode::Whole))) {
            let key = key.as_ref().as_bytes();
            if keys.by_len.len() <= key.len() {
                keys.by_len.resize(key.len() + 1, Vec::new());
            }
            let same_len = &mut keys.by_len[key.len()];
            match same_len.iter_mut().find(|(k, _)| **k == *key) {
                Some(entry) => entry.1 = mode,
                None => same_len.push((key.into(), mode)),
            }
        }
        keys
    }

    fn mode(&self, key: &[u8]) -> Mode {
        self.by_len
            .get(key.len())
            .and_then(|same_len| same_len.iter().find(|(k, _)| **k == *key))
            .map_or(Mode::Text, |&(_, mode)| mode)
    }
}

/// How a value's strings are read: by their keys, skipped (under a skip key), or all (under a whole key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Text,
    Skip,
    Whole,
}

/// The string values of `data` that are text, as byte ranges (quotes included); None if the walk gives up.
pub fn text_spans(data: &str, keys: &SkipKeys) -> Option<Vec<Range<usize>>> {
    let mut w = Walker::new(data.as_bytes());
    let mut spans = Vec::new();
    walk(&mut w, 0, Mode::Text, keys, &mut spans)?;
    w.ws();
    (w.i == data.len()).then_some(spans)
}

fn walk(
    w: &mut Walker,
    depth: usize,
    mode: Mode,
    keys: &SkipKeys,
    spans: &mut Vec<Range<usize>>,
) -> Option<()> {
    w.ws();
    match w.peek()? {
        b'"' if mode == Mode::Skip => {
            w.string()?;
        }
        b'"' => spans.push(w.string()?),
        b'{' | b'[' if depth >= MAX_DEPTH => return None,
        b'{' => {
            // A plain-text document source (Anthropic `{"type": "text", "media_type": "text/plain", "data":
            // ...}`) keeps in `data` text the model reads, where every other source keeps base64: its
            // `data` is read once the object's `media_type` says so, wherever the two keys stand.
            let (mut held, mut plain) = (None, false);
            let first = spans.len();
            w.object(|w, key| {
                let inner = if mode == Mode::Whole {
                    Mode::Whole
                } else {
                    keys.mode(key)
                };
                if inner == Mode::Skip && w.peek() == Some(b'"') {
                    if key == b"data" {
                        held = Some(w.string()?);
                        return Some(());
                    }
                    if key == b"media_type" {
                        let value = w.string()?;
                        plain = w.s[value].starts_with(b"\"text/");
                        return Some(());
                    }
                }
                walk(w, depth + 1, inner, keys, spans)
            })?;
            if let (true, Some(data)) = (plain, held) {
                let at = first + spans[first..].partition_point(|s| s.start < data.start);
                spans.insert(at, data);
            }
        }
        b'[' => w.array(|w| walk(w, depth + 1, mode, keys, spans))?,
        _ => w.skip()?,
    }
    Some(())
}

/// `data` with the values found in its text strings masked by `masker` (which keeps the numbering and
/// records what it masked): `Some(None)` when there was nothing to mask, None when the walk gave up.
pub fn mask_json(
    engine: &Engine,
    cats: Categories,
    masker: &mut Masker,
    data: &str,
    keys: &SkipKeys,
) -> Option<Option<Vec<u8>>> {
    let mut out: Option<Vec<u8>> = None;
    let mut last = 0;
    for span in text_spans(data, keys)? {
        let text = text_of(&data[span.clone()])?;
        if text.is_empty() {
            continue;
        }
        let findings = engine.scan(&text, cats);
        if findings.is_empty() {
            continue;
        }
        let masked = masker.apply(engine, &text, &findings);
        let out = out.get_or_insert_with(|| Vec::with_capacity(data.len() + 32));
        out.extend_from_slice(&data.as_bytes()[last..span.start]);
        push_str(out, &masked);
        last = span.end;
    }
    Some(out.map(|mut out| {
        out.extend_from_slice(&data.as_bytes()[last..]);
        out
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::DEFAULT_CATEGORIES;
    use proptest::prelude::*;

    use crate::scan::tests::engine;

    fn skip() -> SkipKeys {
        SkipKeys::new(
            ["role", "id", "image_url", "url", "type", "name", "required"],
            ["input"],
        )
    }

    fn mask(data: &str) -> Option<Option<String>> {
        let masked = mask_json(
            engine(),
            DEFAULT_CATEGORIES,
            &mut Masker::default(),
            data,
            &skip(),
        )?;
        Some(masked.map(|m| String::from_utf8(m).unwrap()))
    }

    #[test]
    fn masks_text_strings_and_keeps_every_other_byte() {
        let data = r#"[ {"role": "user", "id": "a@b.co", "content": [{"type": "text", "text": "mail a@b.co now"}, {"type": "image_url", "image_url": {"url": "x@y.co"}}]}, 42, null, true ]"#;
        let out = mask(data).unwrap().unwrap();
        assert_eq!(
            out,
            r#"[ {"role": "user", "id": "a@b.co", "content": [{"type": "text", "text": "mail [EMAIL_1] now"}, {"type": "image_url", "image_url": {"url": "x@y.co"}}]}, 42, null, true ]"#
        );
    }

    #[test]
    fn objects_under_a_skip_key_are_read_and_whole_keys_read_everything() {
        // A tool schema whose property is called `name`; its `required` list names it (not text).
        let tools = r#"[{"type": "function", "name": "f", "parameters": {"properties": {"name": {"type": "string", "description": "like a@b.co"}}, "required": ["name", "a@b.co"]}}]"#;
        let out = mask(tools).unwrap().unwrap();
        assert!(out.contains(r#""description": "like [EMAIL_1]""#), "{out}");
        assert!(out.contains(r#""required": ["name", "a@b.co"]"#), "{out}");
        // An Anthropic tool_use input keeps the caller's field names: all of it is text.
        let blocks = r#"[{"type": "tool_use", "id": "t1", "name": "send", "input": {"id": "c@d.co", "type": "e@f.co", "list": ["g@h.co"]}}]"#;
        let out = mask(blocks).unwrap().unwrap();
        assert_eq!(
            out,
            r#"[{"type": "tool_use", "id": "t1", "name": "send", "input": {"id": "[EMAIL_1]", "type": "[EMAIL_2]", "list": ["[EMAIL_3]"]}}]"#
        );
        // An image's URL (a data: payload) stays unread.
        assert_eq!(
            mask(r#"[{"type": "image_url", "image_url": {"url": "x@y.co"}}]"#),
            Some(None)
        );
    }

    #[test]
    fn a_plain_text_document_is_read_and_a_base64_one_is_not() {
        let skip = SkipKeys::new(["type", "media_type", "data"], ["input"]);
        let run = |data: &str| {
            mask_json(
                engine(),
                DEFAULT_CATEGORIES,
                &mut Masker::default(),
                data,
                &skip,
            )
            .unwrap()
            .map(|m| String::from_utf8(m).unwrap())
        };
        for doc in [
            r#"[{"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "mail a@b.co"}}, "c@d.co"]"#,
            r#"[{"type": "document", "source": {"data": "mail a@b.co", "type": "text", "media_type": "text/plain"}}, "c@d.co"]"#,
        ] {
            let out = run(doc).unwrap();
            assert!(
                out.contains(r#""mail [EMAIL_1]""#) && out.contains(r#""[EMAIL_2]""#),
                "{out}"
            );
        }
        let pdf = r#"[{"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "a@b.co"}}]"#;
        assert_eq!(run(pdf), None);
    }

    #[test]
    fn clean_documents_are_left_alone() {
        assert_eq!(
            mask(r#"{"content": "hello", "n": [1, 2.5e3, -1]}"#),
            Some(None)
        );
        assert_eq!(mask(r#""""#), Some(None));
    }

    #[test]
    fn escaped_strings_are_unescaped_for_the_scan_and_re_encoded() {
        let data = r#"{"content": "line\n\"a@b.co\" \u00e9"}"#;
        let out = mask(data).unwrap().unwrap();
        assert_eq!(out, r#"{"content": "line\n\"[EMAIL_1]\" é"}"#);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["content"], "line\n\"[EMAIL_1]\" é");
    }

    #[test]
    fn placeholders_are_numbered_across_the_document() {
        let data = r#"["a@b.co", {"x": "c@d.co and a@b.co"}]"#;
        assert_eq!(
            mask(data).unwrap().unwrap(),
            r#"["[EMAIL_1]", {"x": "[EMAIL_2] and [EMAIL_1]"}]"#
        );
    }

    #[test]
    fn gives_up_on_what_it_does_not_handle() {
        // A key spelled with escapes could hide a skipped key's name; nesting past the limit; not JSON.
        assert_eq!(mask(r#"{"con\u0074ent": "a@b.co"}"#), None);
        let deep = format!(
            "{}\"a@b.co\"{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(mask(&deep), None);
        let ok = format!(
            "{}\"a@b.co\"{}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(mask(&ok).unwrap().is_some());
        for bad in [
            r#"{"a": "x"#,
            r#"["a@b.co""#,
            r#"{"a" "b"}"#,
            r#"["a"] x"#,
            r#""abc\"#,
        ] {
            assert_eq!(mask(bad), None, "{bad}");
        }
    }

    proptest! {
        // Whatever the document, the masked one parses, holds no email, and equals masking each string.
        #[test]
        fn agrees_with_masking_the_decoded_tree(
            words in proptest::collection::vec(
                prop_oneof![Just("a@b.co"), Just("hi"), Just("é\n\"q\""), Just("x.y@corp.test")], 1..8),
            keys in proptest::collection::vec(prop_oneof![Just("role"), Just("text"), Just("k")], 1..8),
        ) {
            let mut tree = serde_json::Map::new();
            for (i, (k, w)) in keys.iter().zip(&words).enumerate() {
                tree.insert(format!("{k}{i}"), serde_json::json!([w, {"role": w, "t": w}]));
            }
            let data = serde_json::to_string(&serde_json::Value::Object(tree.clone())).unwrap();
            let out = mask(&data).unwrap().unwrap_or_else(|| data.clone());
            let value: serde_json::Value = serde_json::from_str(&out).unwrap();
            let mut expected = Masker::default();
            let e = engine();
            let mut walk_expected = |s: &str| {
                let f = e.scan(s, DEFAULT_CATEGORIES);
                if f.is_empty() { s.to_owned() } else { expected.apply(e, s, &f) }
            };
            for (key, item) in &tree {
                let w = item[0].as_str().unwrap();
                let (a, b) = (walk_expected(w), walk_expected(w));
                prop_assert_eq!(&value[key][0], &serde_json::json!(a));
                prop_assert_eq!(&value[key][1]["role"], &serde_json::json!(w));
                prop_assert_eq!(&value[key][1]["t"], &serde_json::json!(b));
            }
        }
    }
}
