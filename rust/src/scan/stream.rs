//! Streaming: text arrives in deltas, and no sensitive value may reach the client, not even in part.
//!
//! The scanner emits at once everything that no future text can turn into (part of) a finding, and
//! holds back the tail that could still be the start of one: the unfinished last word; the last few
//! words when they carry digits (cards, IBANs and phone numbers come in groups, trades and dates
//! span words); and an unterminated private-key block. A short raw tail of what was already emitted
//! is kept as context, so a cue word emitted earlier still qualifies the value that follows it.
use std::sync::Arc;

use super::engine::floor_boundary;
use super::{Categories, Engine, Finding, Masker};

/// Raw emitted text kept for cue words (longer than any cue-to-value distance in the rules).
const CONTEXT: usize = 128;
/// Words looked at for digits, and the most bytes that look may span.
const DIGIT_WORDS: usize = 4;
const DIGIT_WORDS_BYTES: usize = 64;
/// Digit groups (`4111 1111 …`, `GB29 NWBK …`) are held back up to this many bytes.
const GROUP_BYTES: usize = 96;
const LONG_HOLD: usize = 8192;
const TOKEN_MARGIN: usize = 1024;

const BLOCK_STARTS: [(&str, &str); 3] = [
    ("-----BEGIN", "-----END"),
    ("PuTTY-User-Key-File-", "Private-MAC:"),
    ("---- BEGIN SSH2", "---- END SSH2"),
];

pub struct StreamScanner {
    engine: Arc<Engine>,
    cats: Categories,
    pub masker: Masker,
    context: String,
    pending: String,
    scratch: String,
}

fn is_ws(b: u8) -> bool {
    b.is_ascii_whitespace()
}

/// Start of the token ending at `end` (tokens are runs of non-whitespace bytes).
/// Tokens are runs of ASCII non-whitespace (and currency signs): sensitive values are ASCII, so text in
/// scripts without spaces (Chinese, Japanese, Thai) is not held back as one endless word.
fn token_start(p: &[u8], end: usize) -> usize {
    let mut k = end;
    while k > 0 {
        let b = p[k - 1];
        if b < 0x80 {
            if is_ws(b) {
                break;
            }
            k -= 1;
            continue;
        }
        // A multi-byte character ends at k: keep going only through €, £ and ¥ (amounts start with them).
        let mut s = k - 1;
        while s > 0 && p[s] & 0xC0 == 0x80 {
            s -= 1;
        }
        if !matches!(&p[s..k], [0xE2, 0x82, 0xAC] | [0xC2, 0xA3] | [0xC2, 0xA5]) {
            break;
        }
        k = s;
    }
    k
}

/// A piece of a grouped number or code: `4111`, `(555)`, `NWBK`, `-`, `/`.
fn is_group(tok: &[u8]) -> bool {
    if tok.is_empty() || tok.len() > 8 {
        return false;
    }
    let charset = tok
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"()+./:-".contains(b));
    charset
        && (tok.iter().any(u8::is_ascii_digit)
            || (tok.len() == 4
                && tok
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()))
            || (tok.len() == 1 && b"-/.:".contains(&tok[0])))
}

fn money_or_digits(tok: &[u8]) -> bool {
    tok.iter().any(|b| b.is_ascii_digit() || *b == b'$')
        || std::str::from_utf8(tok).is_ok_and(|t| t.contains(['€', '£', '¥']))
}

impl StreamScanner {
    /// `masker`: continue its numbering (a response that shares its request's placeholders).
    pub fn new(engine: Arc<Engine>, cats: Categories, masker: Masker) -> Self {
        Self {
            engine,
            cats,
            masker,
            context: String::new(),
            pending: String::new(),
            scratch: String::new(),
        }
    }

    /// Take a delta; return the part of the text that is now safe to send, masked.
    pub fn feed(&mut self, delta: &str) -> String {
        let mut masker = std::mem::take(&mut self.masker);
        let out = self.feed_with(delta, &mut masker);
        self.masker = masker;
        out
    }

    /// End of the text: return everything still held back, masked.
    pub fn finish(&mut self) -> String {
        let mut masker = std::mem::take(&mut self.masker);
        let out = self.finish_with(&mut masker);
        self.masker = masker;
        out
    }

    /// `feed` with placeholders numbered by `masker`: several texts of one answer (content, tool
    /// arguments, thinking) share one numbering.
    pub fn feed_with(&mut self, delta: &str, masker: &mut Masker) -> String {
        self.pending.push_str(delta);
        let cut = self.hold_point();
        self.emit(cut, masker)
    }

    /// `finish` with placeholders numbered by `masker`.
    pub fn finish_with(&mut self, masker: &mut Masker) -> String {
        let out = self.emit(self.pending.len(), masker);
        self.context.clear();
        out
    }

    /// Bytes held back right now.
    pub fn held(&self) -> usize {
        self.pending.len()
    }

    fn hold_point(&self) -> usize {
        let p = self.pending.as_bytes();
        let n = p.len();
        let mut hold = token_start(p, n);
        // The last few words, when any carries digits or money: a value may span them.
        let (mut end, mut words, mut first, mut money) = (n, 0, n, false);
        while words < DIGIT_WORDS && end > 0 && n - end <= DIGIT_WORDS_BYTES {
            while end > 0 && is_ws(p[end - 1]) {
                end -= 1;
            }
            let s = token_start(p, end);
            if s == end {
                break;
            }
            money |= money_or_digits(&p[s..end]);
            (words, first, end) = (words + 1, s, s);
        }
        if money {
            hold = hold.min(first);
        }
        // Groups of a number or code separated by single spaces.
        while hold >= 2 && p[hold - 1] == b' ' && !is_ws(p[hold - 2]) {
            let s = token_start(p, hold - 1);
            if !is_group(&p[s..hold - 1]) || n - s > GROUP_BYTES {
                break;
            }
            hold = s;
        }
        // A text without spaces (a base64 blob) would be held, and rescanned on every delta, to its end.
        // Past LONG_HOLD bytes, release all but the last TOKEN_MARGIN: longer than any token, so a token
        // that crosses the cut is whole in the buffer, seen as a finding, and held back by `emit`.
        if n - hold > LONG_HOLD {
            hold = floor_boundary(&self.pending, n - TOKEN_MARGIN);
        }
        // A private-key block is one finding from its first line to its last: hold it whole. (Every start
        // marker begins with '-' or 'P': most deltas have neither, and skip the substring searches.)
        let markers = memchr::memchr2(b'-', b'P', p).is_some();
        for (begin, end) in BLOCK_STARTS.iter().filter(|_| markers) {
            if let Some(b) = self.pending.rfind(begin) {
                if !self.pending[b..].contains(end) {
                    hold = hold.min(b);
                }
            }
        }
        hold
    }

    fn emit(&mut self, mut cut: usize, masker: &mut Masker) -> String {
        if cut == 0 {
            return String::new();
        }
        let off = self.context.len();
        // Context and pending text side by side, in a buffer kept across deltas (one allocation per stream).
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.push_str(&self.context);
        buf.push_str(&self.pending);
        let findings = self.engine.scan(&buf, self.cats);
        self.scratch = buf;
        // Never cut through a finding: it is held whole (or, begun in the context, from the context's end).
        if let Some(f) = findings
            .iter()
            .find(|f| f.start < off + cut && f.end > off + cut)
        {
            cut = f.start.saturating_sub(off);
            if cut == 0 {
                return String::new();
            }
        }
        let local: Vec<Finding> = findings
            .iter()
            .filter(|f| f.end > off && f.end <= off + cut)
            .map(|f| Finding {
                start: f.start.max(off) - off,
                end: f.end - off,
                rule: f.rule,
            })
            .collect();
        let out = masker.apply(&self.engine, &self.pending[..cut], &local);
        self.context.push_str(&self.pending[..cut]);
        if self.context.len() > CONTEXT {
            let from = floor_boundary(&self.context, self.context.len() - CONTEXT);
            self.context.drain(..from);
        }
        self.pending.drain(..cut);
        out
    }
}
