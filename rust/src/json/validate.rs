//! A JSON validator (RFC 8259): says whether bytes are exactly one JSON text, or where one value ends,
//! building nothing. The stream tap checks every payload it forwards with it (through the strict
//! [`Walker`](super::Walker) for chat chunks, whole for anything else).
//!
//! Accepts what `serde_json::from_slice::<serde::de::IgnoredAny>` accepts (lone `\u` surrogate escapes included,
//! as Python's `json.loads` does), except that it also requires valid UTF-8 (serde skips string contents unchecked;
//! the openai SDK decodes every line strictly) and limits nesting to [`MAX_DEPTH`] rather than 128. The unit tests
//! check that equivalence.

/// Deepest nesting accepted: about where Python's `json.loads` hits its recursion limit.
pub(crate) const MAX_DEPTH: usize = 1024;

/// Whether `data` is one JSON text, optionally surrounded by whitespace (the bytes form: the tests'
/// reference; the tap has its payload as a `str` already).
#[cfg(test)]
pub(crate) fn is_json(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(is_json_text)
}

/// Whether `text` is one JSON text, optionally surrounded by whitespace.
pub(crate) fn is_json_text(text: &str) -> bool {
    // Non-ASCII bytes are only valid inside strings, so a `str` leaves the grammar ASCII-only.
    let mut v = Validator::at(text.as_bytes(), 0);
    v.value(MAX_DEPTH) && {
        v.skip_ws();
        v.i == text.len()
    }
}

/// Why bytes are not one JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not UTF-8: the offset is the first byte of the invalid sequence.
    Utf8,
    /// Objects and arrays nested deeper than the limit: the offset is the bracket one level too deep.
    Depth,
    /// Anything else: the offset is where reading stopped.
    Syntax,
}

/// Why `data` is not one JSON text nested at most `limit` (capped at [`MAX_DEPTH`]) levels deep, and the
/// byte offset where that shows; None when it is one. Cheap enough for every request body: the UTF-8 check
/// runs a word at a time over ASCII, and strings are skipped eight bytes at a time.
pub fn fault(data: &[u8], limit: usize) -> Option<(Fault, usize)> {
    if let Err(e) = std::str::from_utf8(data) {
        return Some((Fault::Utf8, e.valid_up_to()));
    }
    let mut v = Validator::at(data, 0);
    if v.value(limit.min(MAX_DEPTH)) {
        v.skip_ws();
        if v.i == data.len() {
            return None;
        }
    }
    let kind = if v.too_deep {
        Fault::Depth
    } else {
        Fault::Syntax
    };
    Some((kind, v.i.min(data.len())))
}

/// Where the JSON value starting at `s[i..]` (after whitespace) ends, if it is one nested at most `depth`
/// levels deep. `s` must be UTF-8 (a `str`'s bytes).
#[inline]
pub(crate) fn value_end(s: &[u8], i: usize, depth: usize) -> Option<usize> {
    let mut v = Validator::at(s, i);
    v.skip_ws();
    let ok = match v.peek()? {
        b'{' | b'[' => v.value(depth),
        b'"' => {
            v.i += 1;
            v.string_inlined().is_some()
        }
        // Most values a walk skips are scalars: no container stack to set up for them.
        b => {
            v.i += 1;
            v.scalar(b)
        }
    };
    ok.then_some(v.i)
}

/// Where the string whose opening quote is `s[i]` ends (after its closing quote), if it is a valid one,
/// and whether it has escapes. `s` must be UTF-8.
#[inline]
pub(crate) fn string_end(s: &[u8], i: usize) -> Option<(usize, bool)> {
    if s.get(i) != Some(&b'"') {
        return None;
    }
    let mut v = Validator::at(s, i + 1);
    let escaped = v.string_inlined()?;
    Some((v.i, escaped))
}

/// Bit `d` of `stack` is 1 when nesting level `d` is an object, 0 for an array.
struct Stack {
    bits: [u64; MAX_DEPTH / 64],
    depth: usize,
}

impl Stack {
    fn push(&mut self, object: bool, limit: usize) -> bool {
        if self.depth == limit {
            return false;
        }
        let (w, b) = (self.depth / 64, self.depth % 64);
        self.bits[w] = (self.bits[w] & !(1 << b)) | (u64::from(object) << b);
        self.depth += 1;
        true
    }

    /// The innermost container: `Some(true)` for an object, `Some(false)` for an array.
    fn top(&self) -> Option<bool> {
        let d = self.depth.checked_sub(1)?;
        Some(self.bits[d / 64] >> (d % 64) & 1 == 1)
    }
}

struct Validator<'a> {
    s: &'a [u8],
    i: usize,
    /// Set when a value failed because it nests deeper than its limit (`i` is then at the opening bracket).
    too_deep: bool,
}

impl<'a> Validator<'a> {
    #[inline]
    fn at(s: &'a [u8], i: usize) -> Self {
        Self {
            s,
            i,
            too_deep: false,
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    /// Skips whitespace, then consumes `b` if it is next.
    #[inline]
    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// An object key with its colon, the opening quote already consumed.
    fn key(&mut self) -> bool {
        self.string().is_some() && self.eat(b':')
    }

    /// One value, nested at most `limit` levels deep; `i` is left after it.
    fn value(&mut self, limit: usize) -> bool {
        let mut stack = Stack {
            bits: [0; MAX_DEPTH / 64],
            depth: 0,
        };
        'value: loop {
            // A value.
            self.skip_ws();
            let Some(b) = self.peek() else { return false };
            self.i += 1;
            let ok = match b {
                b'{' => {
                    let open = self.i - 1;
                    if self.eat(b'}') {
                        true
                    } else {
                        if !stack.push(true, limit) {
                            self.too_deep = true;
                            self.i = open;
                            return false;
                        }
                        if !(self.eat(b'"') && self.key()) {
                            return false;
                        }
                        continue 'value;
                    }
                }
                b'[' => {
                    let open = self.i - 1;
                    if self.eat(b']') {
                        true
                    } else {
                        if !stack.push(false, limit) {
                            self.too_deep = true;
                            self.i = open;
                            return false;
                        }
                        continue 'value;
                    }
                }
                b => self.scalar(b),
            };
            if !ok {
                return false;
            }
            // After a value: close containers until one continues with a comma.
            loop {
                let Some(object) = stack.top() else {
                    return true;
                };
                self.skip_ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if object && !(self.eat(b'"') && self.key()) {
                            return false;
                        }
                        continue 'value;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return false,
                }
                self.i += 1;
                stack.depth -= 1;
            }
        }
    }

    /// The rest of a value that is not an object or an array, after its first byte `b`.
    #[inline]
    fn scalar(&mut self, b: u8) -> bool {
        match b {
            b'"' => self.string().is_some(),
            b't' => self.literal(b"rue"),
            b'f' => self.literal(b"alse"),
            b'n' => self.literal(b"ull"),
            b'-' | b'0'..=b'9' => self.number(b),
            _ => false,
        }
    }

    fn literal(&mut self, rest: &[u8]) -> bool {
        if self.s[self.i..].starts_with(rest) {
            self.i += rest.len();
            true
        } else {
            false
        }
    }

    /// The rest of a string after its opening quote (UTF-8 was checked already): whether it has escapes,
    /// None if it is not a valid string.
    #[inline]
    fn string(&mut self) -> Option<bool> {
        self.string_inlined()
    }

    /// `string`, inlined where it is called. A walker reads a few short strings per object, and a call
    /// each costs as much as reading one; the validator's own loop runs faster calling it.
    #[inline(always)]
    fn string_inlined(&mut self) -> Option<bool> {
        let mut escaped = false;
        loop {
            // Fast path: eight bytes at a time up to the next quote, backslash or control byte.
            while let Some(word) = self.s.get(self.i..self.i + 8) {
                let special = special_bytes(u64::from_le_bytes(word.try_into().unwrap()));
                if special != 0 {
                    self.i += special.trailing_zeros() as usize / 8;
                    break;
                }
                self.i += 8;
            }
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return Some(escaped),
                b'\\' => {
                    escaped = true;
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.s.get(self.i..self.i + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return None;
                            }
                            self.i += 4;
                        }
                        _ => return None,
                    }
                }
                0..=0x1F => return None,
                _ => {}
            }
        }
    }

    /// The rest of a number after its first byte `first` (`-` or a digit).
    fn number(&mut self, first: u8) -> bool {
        let first = if first == b'-' {
            let Some(d @ b'0'..=b'9') = self.peek() else {
                return false;
            };
            self.i += 1;
            d
        } else {
            first
        };
        if first != b'0' {
            self.digits();
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return false;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if self.digits() == 0 {
                return false;
            }
        }
        true
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }
}

/// Marks (high bit set) the bytes of the little-endian word `w` that are `"`, `\` or a control character
/// (< 0x20). The lowest mark is exact; marks above it may be spurious (borrows propagate upward).
#[inline]
fn special_bytes(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    // `x < 0x20` for a byte x: (x - 0x20) borrows; mask out bytes >= 0x80 (valid UTF-8 string content).
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    zero_byte(w ^ (ONES * b'"' as u64)) | zero_byte(w ^ (ONES * b'\\' as u64)) | control
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::IgnoredAny;

    /// The reference: serde_json's verdict, plus the UTF-8 check it skips inside strings.
    fn serde_ok(s: &[u8]) -> bool {
        serde_json::from_slice::<IgnoredAny>(s).is_ok() && std::str::from_utf8(s).is_ok()
    }

    #[test]
    fn accepts_and_rejects() {
        let good: &[&[u8]] = &[
            b"{}",
            b" [ ] ",
            b"0",
            b"-0.5e+10",
            b"1E9",
            b"\"\"",
            b"\"a\\u00e9\\ud800\\n\\\"\\\\\\/\"",
            b"\"\xc3\xa9\xf0\x9f\x98\x80 long enough to use the word-at-a-time path\"",
            b"{\"a\":[1,{\"b\":null},true,false],\"c\" : {} }",
            b"\n{\"a\":1}\n",
        ];
        for g in good {
            assert!(is_json(g), "{}", String::from_utf8_lossy(g));
            assert!(serde_ok(g));
        }
        let bad: &[&[u8]] = &[
            b"",
            b" ",
            b"{not json",
            b"{\"a\":1",
            b"{\"a\":1}}",
            b"{\"a\":1} x",
            b"[1,]",
            b"{\"a\":1,}",
            b"{,}",
            b"[,1]",
            b"{\"a\" 1}",
            b"{1:2}",
            b"01",
            b"-",
            b"1.",
            b".5",
            b"1e",
            b"+1",
            b"NaN",
            b"Infinity",
            b"tru",
            b"nul",
            b"[}",
            b"{]",
            b"\"abc",
            b"\"a\\x\"",
            b"\"a\\u12g4\"",
            b"\"a\\u12\"",
            b"\"tab\there and more bytes after it\"",
            b"\"\xff\"",
            b"\"\xc3\"",
            b"\xef\xbb\xbf{}",
            b"{} {}",
            b"[1 2]",
        ];
        for b in bad {
            assert!(!is_json(b), "{}", String::from_utf8_lossy(b));
            assert!(!serde_ok(b));
        }
    }

    #[test]
    fn depth_limit() {
        let nested = |n: usize| "[".repeat(n) + "1" + &"]".repeat(n);
        assert!(is_json(nested(MAX_DEPTH).as_bytes()));
        assert!(!is_json(nested(MAX_DEPTH + 1).as_bytes()));
        let objects = "{\"a\":".repeat(MAX_DEPTH) + "1" + &"}".repeat(MAX_DEPTH);
        assert!(is_json(objects.as_bytes()));
    }

    #[test]
    fn faults_name_their_kind_and_offset() {
        assert_eq!(fault(br#"{"a":[1,{"b":"x"}]}"#, 3), None);
        assert_eq!(fault(br#"{"a":[1,{"b":"x"}]}"#, 2), Some((Fault::Depth, 8)));
        assert_eq!(fault(b"[[[1]]]", 2), Some((Fault::Depth, 2)));
        assert_eq!(fault(b"[[[1]]]", 3), None);
        // An empty container opens no level.
        assert_eq!(fault(b"[[[]]]", 2), None);
        assert_eq!(fault(b"{\"a\":\"\xff\"}", 8), Some((Fault::Utf8, 6)));
        assert_eq!(fault(b"{\"a\":1,}", 8).map(|f| f.0), Some(Fault::Syntax));
        assert_eq!(fault(b"{} x", 8), Some((Fault::Syntax, 3)));
        assert_eq!(fault(b"", 8), Some((Fault::Syntax, 0)));
        let deep = "[".repeat(5000);
        assert_eq!(
            fault(deep.as_bytes(), 5000),
            Some((Fault::Depth, MAX_DEPTH))
        );
    }

    #[test]
    fn word_scan_finds_first_special_byte() {
        let is_special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        for pos in 0..8 {
            for b in 0..=255u8 {
                for after in [b'a', b'"', 0, 0xFF] {
                    let mut word = [b'a', 0xC3, b'z', 0x80, b' ', b'~', 0x7F, 0xFF];
                    word[pos] = b;
                    if pos < 7 {
                        word[pos + 1] = after;
                    }
                    let first = word.iter().position(|&b| is_special(b));
                    let mask = special_bytes(u64::from_le_bytes(word));
                    let found = (mask != 0).then(|| mask.trailing_zeros() as usize / 8);
                    assert_eq!(found, first, "{word:?}");
                }
            }
        }
    }

    fn json_ish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just(&b"{"[..]),
            Just(&b"}"[..]),
            Just(&b"["[..]),
            Just(&b"]"[..]),
            Just(&b"\""[..]),
            Just(&b"\\"[..]),
            Just(&b":"[..]),
            Just(&b","[..]),
            Just(&b" "[..]),
            Just(&b"\n"[..]),
            Just(&b"\t"[..]),
            Just(&b"-"[..]),
            Just(&b"0"[..]),
            Just(&b"12"[..]),
            Just(&b"."[..]),
            Just(&b"e"[..]),
            Just(&b"E+"[..]),
            Just(&b"true"[..]),
            Just(&b"null"[..]),
            Just(&b"fals"[..]),
            Just(&b"u00e9"[..]),
            Just(&b"ud83d"[..]),
            Just(&b"n"[..]),
            Just(&b"/"[..]),
            Just(&b"\"key\":"[..]),
            Just(&b"\"a long string value, longer than a word\""[..]),
            Just("é😀".as_bytes()),
            Just(&b"\xff"[..]),
            Just(&b"\xc3"[..]),
            Just(&b"\x01"[..]),
            Just(&b"x"[..]),
        ];
        proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
    }

    /// Mutations of valid documents: close to valid, so both verdicts are common.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let doc = Just(
            br#"{"id":"c1","choices":[{"index":0,"delta":{"content":"h\u00e9\"\\i"},"x":-1.5e-3}],"usage":null,"n":[true,false,{}]}"#
                .to_vec(),
        );
        (doc, any::<prop::sample::Index>(), any::<u8>(), 0..3u8).prop_map(|(mut d, at, b, op)| {
            let i = at.index(d.len());
            match op {
                0 => d[i] = b,
                1 => d.insert(i, b),
                _ => {
                    d.remove(i);
                }
            }
            d
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn matches_serde(s in prop_oneof![json_ish(), mutated(), proptest::collection::vec(any::<u8>(), 0..64)]) {
            prop_assert_eq!(is_json(&s), serde_ok(&s), "{}", String::from_utf8_lossy(&s));
        }
    }
}
