//! Walking JSON bytes without building values: a cursor that reads strings, objects and arrays where they
//! lie and skips whatever it is not asked about. The stream tap reads chat chunks with a strict one (which
//! also validates every byte it passes, see `validate`); the guardrail scanner masks every string of a
//! request with a lenient one (its input was decoded already); both write JSON strings with `push_str`.
use std::ops::Range;

pub mod py;
mod validate;

#[cfg(test)]
pub(crate) use validate::is_json;
pub(crate) use validate::is_json_text;
pub use validate::{fault, Fault};
use validate::{string_end, value_end, MAX_DEPTH};

/// Appends `s` as a JSON string literal.
#[inline]
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A JSON string value's text, borrowed when it has no escapes; None for null (or anything else).
pub fn text_of(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if memchr::memchr(b'\\', inner.as_bytes()).is_none() {
        return Some(std::borrow::Cow::Borrowed(inner));
    }
    serde_json::from_str::<std::borrow::Cow<str>>(raw).ok()
}

/// A cursor over JSON bytes; every method leaves `i` after what it read and returns None on anything
/// unexpected.
///
/// A strict walker also returns None on anything that is not JSON, in what it reads and in what it skips
/// (as [`is_json`] would, nesting included), so a whole walk that succeeds has validated the document.
/// A lenient one only finds where things end.
pub(crate) struct Walker<'a> {
    pub s: &'a [u8],
    pub i: usize,
    strict: bool,
    /// Objects and arrays entered and not yet left.
    depth: usize,
}

impl<'a> Walker<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Self {
            s,
            i: 0,
            strict: false,
            depth: 0,
        }
    }

    /// A lenient walker at `i` of `s`, inside `depth` containers: carries on a walk that another walker
    /// over the same bytes left at `i`.
    pub fn resume(s: &'a [u8], i: usize, depth: usize) -> Self {
        Self {
            i,
            depth,
            ..Self::new(s)
        }
    }

    /// A strict walker over a `str`'s bytes (UTF-8 is not checked again).
    pub fn strict(s: &'a str) -> Self {
        Self {
            strict: true,
            ..Self::new(s.as_bytes())
        }
    }

    pub fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub fn eat(&mut self, b: u8) -> bool {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `null` if it comes next.
    pub fn null(&mut self) -> bool {
        if self.s[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// A string at `i` (its opening quote): its range, quotes included.
    pub fn string(&mut self) -> Option<Range<usize>> {
        self.string_escaped().map(|(range, _)| range)
    }

    /// A string at `i`: its range, and whether it has escapes.
    fn string_escaped(&mut self) -> Option<(Range<usize>, bool)> {
        let start = self.i;
        if self.strict {
            let (end, escaped) = string_end(self.s, start)?;
            self.i = end;
            return Some((start..end, escaped));
        }
        if self.peek() != Some(b'"') {
            return None;
        }
        let (mut j, mut escaped) = (start + 1, false);
        loop {
            j += memchr::memchr2(b'"', b'\\', self.s.get(j..)?)?;
            if self.s[j] == b'"' {
                self.i = j + 1;
                return Some((start..self.i, escaped));
            }
            escaped = true;
            j += 2; // the escaped byte (a `\uXXXX`'s hex digits hold no quote or backslash)
        }
    }

    /// Any value at `i` (after whitespace): its range.
    pub fn value(&mut self) -> Option<Range<usize>> {
        self.ws();
        let start = self.i;
        if self.strict {
            self.i = value_end(self.s, start, MAX_DEPTH.checked_sub(self.depth)?)?;
            return Some(start..self.i);
        }
        match self.peek()? {
            b'"' => return self.string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match *self.s.get(self.i)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                let len = self.s[start..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                    .unwrap_or(self.s.len() - start);
                if len == 0 {
                    return None;
                }
                self.i += len;
            }
        }
        Some(start..self.i)
    }

    /// Any value, not needed.
    pub fn skip(&mut self) -> Option<()> {
        self.value().map(|_| ())
    }

    /// An object at `i` (after whitespace): `member(self, key)` is called with `i` after the key's colon and
    /// must consume the value.
    pub fn object(&mut self, mut member: impl FnMut(&mut Self, &[u8]) -> Option<()>) -> Option<()> {
        if !self.enter(b'{') {
            return None;
        }
        if self.leave(b'}') {
            return Some(());
        }
        loop {
            self.ws();
            let (key, escaped) = self.string_escaped()?;
            let key = &self.s[key.start + 1..key.end - 1];
            if escaped || !self.eat(b':') {
                return None;
            }
            self.ws();
            member(self, key)?;
            if self.eat(b',') {
                continue;
            }
            return self.leave(b'}').then_some(());
        }
    }

    /// An array at `i` (after whitespace): `item(self)` is called at each element and must consume it.
    pub fn array(&mut self, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if !self.enter(b'[') {
            return None;
        }
        if self.leave(b']') {
            return Some(());
        }
        loop {
            self.ws();
            item(self)?;
            if self.eat(b',') {
                continue;
            }
            return self.leave(b']').then_some(());
        }
    }

    /// Opens a container (`{` or `[`), if it comes next and, strict, is not nested too deep.
    fn enter(&mut self, open: u8) -> bool {
        if self.strict && self.depth == MAX_DEPTH || !self.eat(open) {
            return false;
        }
        self.depth += 1;
        true
    }

    /// Closes the current container, if `close` comes next.
    fn leave(&mut self, close: u8) -> bool {
        let closed = self.eat(close);
        self.depth -= usize::from(closed);
        closed
    }
}
