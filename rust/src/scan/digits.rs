//! Digit shapes: where a number-shaped rule (phones, SSNs, IP addresses, cards, IBANs) can possibly start,
//! found for all of them at once with bit masks, 64 bytes per step.
//!
//! Digits are everywhere in code, logs, JSON and tables, and almost none of them are sensitive. Waking
//! every digit rule on every cluster of digits and running its regex over the cluster (what a digit
//! wake-up did before) costs a regex search per rule per cluster, and another per rejected candidate: 20
//! to 100 times the cost of prose. Here the text is classified once (digits, word characters, capitals,
//! hex digits and the few separators the formats use), each rule's shape becomes a mask of the
//! positions where its match can start (a card: a digit at a word start followed by 13 digits or single
//! spaces or hyphens between digits; an SSN: `ddd-dd-dddd` exactly; an IPv4 address: three
//! `digits.` groups then a digit; …), and the engine runs a rule's regex, anchored, only at those
//! positions. Each mask is a superset of the rule's regex's match starts (the property tests compare
//! every finding with the previous search over whole clusters), so nothing is lost; in text without
//! sensitive numbers the masks are empty and no regex runs at all.
//!
//! The clusters that decide which rules run where (digits closer than `DIGIT_GAP`, counted) come from
//! the same digit masks.

/// The number-shaped built-in rules, one shape each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `+` and a country code.
    PhonePlus,
    /// North American `(ddd) ddd-dddd`, `ddd-ddd-dddd`, optionally after `1-`.
    PhoneNanp,
    /// UK national `0dddd ddd ddd`.
    PhoneUk,
    /// French national `0d dd dd dd dd`.
    PhoneFr,
    Ssn,
    Ipv4,
    Ipv6,
    Card,
    Iban,
}

const SHAPES: usize = 9;

impl Shape {
    fn index(self) -> usize {
        self as usize
    }

    /// The shape's bit in a set of shapes.
    pub fn bit(self) -> u16 {
        1 << self.index()
    }
}

/// Every shape, as a set.
pub const ALL_SHAPES: u16 = (1 << SHAPES) - 1;

/// Digits closer than this belong to one cluster (one window per digit rule).
pub const DIGIT_GAP: usize = 16;
// `Digits::clusters` tests the gap with shifts made for this value.
const _: () = assert!(DIGIT_GAP == 16);

/// A run of digits closer than `DIGIT_GAP` to each other: first digit, last digit's end, digit count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cluster {
    pub first: usize,
    pub end: usize,
    pub count: u32,
}

/// A text's digit masks, its clusters, and (computed on first use) each shape's anchors.
pub struct Digits<'a> {
    text: &'a [u8],
    /// Bit k of word i: byte `64 i + k` is an ASCII digit.
    digits: Vec<u64>,
    anchors: Option<[Vec<usize>; SHAPES]>,
    /// The shapes whose anchors are made (the others have none).
    wanted: u16,
}

impl<'a> Digits<'a> {
    /// `None` for a text without digits (nothing to do).
    pub fn new(text: &'a [u8]) -> Option<Self> {
        let digits = digit_masks(text);
        digits.iter().any(|&m| m != 0).then_some(Self {
            text,
            digits,
            anchors: None,
            wanted: ALL_SHAPES,
        })
    }

    /// The clusters in text order: digits whose gap is at most `DIGIT_GAP` bytes belong together.
    ///
    /// A cluster ends at a digit followed by `DIGIT_GAP + 1` non-digits, found with shifts of the digit
    /// masks; within a cluster digits are only counted, 64 at a time.
    pub fn clusters(&self) -> Vec<Cluster> {
        let d = &self.digits;
        let mut out = Vec::new();
        let (mut first, mut count) = (None, 0u32);
        for (k, &m) in d.iter().enumerate() {
            if m == 0 {
                continue;
            }
            let next = d.get(k + 1).copied().unwrap_or(0);
            let none = !(u128::from(m) | (u128::from(next) << 64));
            // Bit i: no digit at i + 1 ..= i + 17.
            let y1 = none >> 1;
            let y2 = y1 & (y1 >> 1);
            let y4 = y2 & (y2 >> 2);
            let y8 = y4 & (y4 >> 4);
            let y16 = y8 & (y8 >> 8);
            let ends = m & ((y16 & (none >> (DIGIT_GAP + 1))) as u64);
            let mut rest = m;
            while rest != 0 {
                let f = rest.trailing_zeros() as usize;
                let start = *first.get_or_insert(64 * k + f);
                let e_bits = ends & rest;
                if e_bits == 0 {
                    count += rest.count_ones();
                    break;
                }
                let e = e_bits.trailing_zeros();
                let upto = if e == 63 { !0 } else { (1u64 << (e + 1)) - 1 };
                count += (rest & upto).count_ones();
                out.push(Cluster {
                    first: start,
                    end: 64 * k + e as usize + 1,
                    count,
                });
                (first, count) = (None, 0);
                rest &= !upto;
            }
        }
        out
    }

    /// Makes the anchors of only these shapes (a set of `Shape::bit`s), before the first `anchors`:
    /// a text whose clusters are all too short for a shape's rules never asks for that shape.
    pub fn only(&mut self, shapes: u16) {
        self.wanted = shapes;
    }

    /// The positions where a match of `shape` may start, sorted (none for a shape not wanted).
    pub fn anchors(&mut self, shape: Shape) -> &[usize] {
        let (text, digits, wanted) = (self.text, &self.digits, self.wanted);
        &self
            .anchors
            .get_or_insert_with(|| anchors(text, digits, wanted))[shape.index()]
    }
}

/// The digit mask of each 64-byte block of `b`.
fn digit_masks(b: &[u8]) -> Vec<u64> {
    let blocks = b.len().div_ceil(64).max(1);
    let mut out = Vec::with_capacity(blocks);
    let mut chunks = b.chunks_exact(64);
    for c in &mut chunks {
        out.push(digit_mask64(c.try_into().unwrap()));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() || out.is_empty() {
        let mut pad = [0u8; 64];
        pad[..rest.len()].copy_from_slice(rest);
        out.push(digit_mask64(&pad));
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn digit_mask64(c: &[u8; 64]) -> u64 {
    use std::arch::x86_64::*;
    let mut m = 0u64;
    for i in 0..4 {
        // SAFETY: SSE2 is part of the x86_64 baseline, and the load reads 16 of the 64 bytes of `c`.
        m |= unsafe {
            let v = _mm_loadu_si128(c.as_ptr().add(16 * i).cast());
            let t = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            let d = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t);
            u64::from(_mm_movemask_epi8(d) as u16) << (16 * i)
        };
    }
    m
}

#[cfg(not(target_arch = "x86_64"))]
fn digit_mask64(c: &[u8; 64]) -> u64 {
    c.iter()
        .enumerate()
        .fold(0, |m, (i, b)| m | (u64::from(b.is_ascii_digit()) << i))
}

/// The classes of the bytes of one 64-byte block that the shapes are made of (bit k: byte k).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Classes {
    digit: u64,
    /// `[0-9A-Za-z_]`, what `\b` separates from the rest.
    word: u64,
    upper: u64,
    hex: u64,
    colon: u64,
    space: u64,
    dash: u64,
    dot: u64,
    lparen: u64,
    rparen: u64,
    plus: u64,
    zero: u64,
}

/// The classes of the 64 bytes of `b` from `at` (bytes past the end count as NUL: in no class).
fn classes(b: &[u8], at: usize) -> Classes {
    if at + 64 <= b.len() {
        classify(b[at..at + 64].try_into().unwrap())
    } else if at >= b.len() {
        Classes::default()
    } else {
        let mut pad = [0u8; 64];
        pad[..b.len() - at].copy_from_slice(&b[at..]);
        classify(&pad)
    }
}

/// The classes of one block: AVX2 where the CPU has it, else SSE2 (the x86_64 baseline).
#[cfg(target_arch = "x86_64")]
fn classify(c: &[u8; 64]) -> Classes {
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above; the answer is cached).
        unsafe { classify_avx2(c) }
    } else {
        classify_sse2(c)
    }
}

#[cfg(target_arch = "x86_64")]
fn classify_sse2(c: &[u8; 64]) -> Classes {
    use std::arch::x86_64::*;
    let mut out = Classes::default();
    for i in 0..4 {
        // SAFETY: SSE2 is part of the x86_64 baseline, and the load reads 16 of the 64 bytes of `c`.
        unsafe {
            let v = _mm_loadu_si128(c.as_ptr().add(16 * i).cast());
            let splat = |x: u8| _mm_set1_epi8(x as i8);
            let range = |lo: u8, hi: u8| {
                let t = _mm_sub_epi8(v, splat(lo));
                _mm_cmpeq_epi8(_mm_min_epu8(t, splat(hi - lo)), t)
            };
            let eq = |x: u8| _mm_cmpeq_epi8(v, splat(x));
            let bits = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16) << (16 * i);
            let digit = range(b'0', b'9');
            let upper = range(b'A', b'Z');
            // Lower-case letters are the capitals with bit 5 set.
            let lower = {
                let folded = _mm_and_si128(v, splat(!0x20));
                let t = _mm_sub_epi8(folded, splat(b'A'));
                let letter = _mm_cmpeq_epi8(_mm_min_epu8(t, splat(25)), t);
                _mm_and_si128(
                    letter,
                    _mm_cmpeq_epi8(_mm_and_si128(v, splat(0x20)), splat(0x20)),
                )
            };
            let hex_letter = {
                let folded = _mm_and_si128(v, splat(!0x20));
                let t = _mm_sub_epi8(folded, splat(b'A'));
                _mm_cmpeq_epi8(_mm_min_epu8(t, splat(5)), t)
            };
            out.digit |= bits(digit);
            out.word |= bits(_mm_or_si128(
                _mm_or_si128(digit, upper),
                _mm_or_si128(lower, eq(b'_')),
            ));
            out.upper |= bits(upper);
            out.hex |= bits(_mm_or_si128(digit, hex_letter));
            out.colon |= bits(eq(b':'));
            out.space |= bits(eq(b' '));
            out.dash |= bits(eq(b'-'));
            out.dot |= bits(eq(b'.'));
            out.lparen |= bits(eq(b'('));
            out.rparen |= bits(eq(b')'));
            out.plus |= bits(eq(b'+'));
            out.zero |= bits(eq(b'0'));
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
/// `classify_sse2` on 32-byte vectors.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn classify_avx2(c: &[u8; 64]) -> Classes {
    use std::arch::x86_64::*;
    let mut out = Classes::default();
    for i in 0..2 {
        // SAFETY: AVX2 is enabled, and the load reads 32 of the 64 bytes of `c`.
        unsafe {
            let v = _mm256_loadu_si256(c.as_ptr().add(32 * i).cast());
            let splat = |x: u8| _mm256_set1_epi8(x as i8);
            let range = |lo: u8, hi: u8| {
                let t = _mm256_sub_epi8(v, splat(lo));
                _mm256_cmpeq_epi8(_mm256_min_epu8(t, splat(hi - lo)), t)
            };
            let eq = |x: u8| _mm256_cmpeq_epi8(v, splat(x));
            let bits = |m: __m256i| u64::from(_mm256_movemask_epi8(m) as u32) << (32 * i);
            let digit = range(b'0', b'9');
            let upper = range(b'A', b'Z');
            // Lower-case letters are the capitals with bit 5 set.
            let lower = {
                let folded = _mm256_and_si256(v, splat(!0x20));
                let t = _mm256_sub_epi8(folded, splat(b'A'));
                let letter = _mm256_cmpeq_epi8(_mm256_min_epu8(t, splat(25)), t);
                _mm256_and_si256(
                    letter,
                    _mm256_cmpeq_epi8(_mm256_and_si256(v, splat(0x20)), splat(0x20)),
                )
            };
            let hex_letter = {
                let folded = _mm256_and_si256(v, splat(!0x20));
                let t = _mm256_sub_epi8(folded, splat(b'A'));
                _mm256_cmpeq_epi8(_mm256_min_epu8(t, splat(5)), t)
            };
            out.digit |= bits(digit);
            out.word |= bits(_mm256_or_si256(
                _mm256_or_si256(digit, upper),
                _mm256_or_si256(lower, eq(b'_')),
            ));
            out.upper |= bits(upper);
            out.hex |= bits(_mm256_or_si256(digit, hex_letter));
            out.colon |= bits(eq(b':'));
            out.space |= bits(eq(b' '));
            out.dash |= bits(eq(b'-'));
            out.dot |= bits(eq(b'.'));
            out.lparen |= bits(eq(b'('));
            out.rparen |= bits(eq(b')'));
            out.plus |= bits(eq(b'+'));
            out.zero |= bits(eq(b'0'));
        }
    }
    out
}

#[cfg(any(not(target_arch = "x86_64"), test))]
fn classify_bytewise(c: &[u8; 64]) -> Classes {
    let mut out = Classes::default();
    for (i, &b) in c.iter().enumerate() {
        let bit = 1u64 << i;
        let set = |m: &mut u64, on: bool| {
            if on {
                *m |= bit;
            }
        };
        set(&mut out.digit, b.is_ascii_digit());
        set(&mut out.word, b.is_ascii_alphanumeric() || b == b'_');
        set(&mut out.upper, b.is_ascii_uppercase());
        set(&mut out.hex, b.is_ascii_hexdigit());
        set(&mut out.colon, b == b':');
        set(&mut out.space, b == b' ');
        set(&mut out.dash, b == b'-');
        set(&mut out.dot, b == b'.');
        set(&mut out.lparen, b == b'(');
        set(&mut out.rparen, b == b')');
        set(&mut out.plus, b == b'+');
        set(&mut out.zero, b == b'0');
    }
    out
}

#[cfg(not(target_arch = "x86_64"))]
fn classify(c: &[u8; 64]) -> Classes {
    classify_bytewise(c)
}

/// Each shape's anchors in `text`, computed for the blocks next to a block with a digit (every
/// digit rule's window lies within one block of its digits: `back` and the tail are under 64 bytes).
fn anchors(text: &[u8], digits: &[u64], wanted: u16) -> [Vec<usize>; SHAPES] {
    let mut out: [Vec<usize>; SHAPES] = Default::default();
    let n = digits.len();
    let mut next: Option<(usize, Classes)> = None;
    for k in 0..n {
        let near =
            digits[k] != 0 || (k > 0 && digits[k - 1] != 0) || (k + 1 < n && digits[k + 1] != 0);
        if !near {
            continue;
        }
        let cur = match next {
            Some((at, c)) if at == k => c,
            _ => classes(text, 64 * k),
        };
        let ahead = classes(text, 64 * (k + 1));
        next = Some((k + 1, ahead));
        // Whether the byte before the block is not a word character (the start of the text is not).
        let before_word = k > 0 && {
            let b = text[64 * k - 1];
            b.is_ascii_alphanumeric() || b == b'_'
        };
        let masks = block_anchors(&cur, &ahead, !before_word, wanted);
        for (shape, mut m) in masks.into_iter().enumerate() {
            while m != 0 {
                let at = 64 * k + m.trailing_zeros() as usize;
                if at < text.len() {
                    out[shape].push(at);
                }
                m &= m - 1;
            }
        }
    }
    out
}

/// The anchors of each shape of `wanted` in one block (`cur`), looking ahead into the next (`ahead`);
/// `start_ok`: the byte before the block is not a word character.
///
/// `x >> j` below puts at bit i what is at bit i + j, "j bytes further on"; `x << 1`, "the byte before".
/// Every shape looks at most 17 bytes ahead, inside the two blocks. A shape not wanted, or whose
/// anchor byte (a digit, `+`, `0`, a capital) or separators (dots, two colons) the blocks lack, is left
/// empty without its shifts: on prose with numbers most blocks need only two or three shapes.
fn block_anchors(cur: &Classes, ahead: &Classes, start_ok: bool, wanted: u16) -> [u64; SHAPES] {
    let digit_here = cur.digit != 0;
    let want = |shape: Shape, gate: bool| gate && wanted & shape.bit() != 0;
    let wide = |f: fn(&Classes) -> u64| u128::from(f(cur)) | (u128::from(f(ahead)) << 64);
    let d = wide(|c| c.digit);
    let w = wide(|c| c.word);
    let nw = !w;
    let upper = wide(|c| c.upper);
    let hex = wide(|c| c.hex);
    let colon = wide(|c| c.colon);
    let space = wide(|c| c.space);
    let dash = wide(|c| c.dash);
    let dot = wide(|c| c.dot);
    let lparen = wide(|c| c.lparen);
    let rparen = wide(|c| c.rparen);
    let plus = wide(|c| c.plus);
    let zero = wide(|c| c.zero);
    let nonzero = d & !zero;
    // `\b` before a word character: the byte before is not one.
    let word_start = (nw << 1) | u128::from(start_ok);
    // Whether the byte before is a digit, unknown at bit 0: assumed (a superset stays a superset).
    let after_digit = (d << 1) | 1;

    // Card: 13 characters from a digit, each a digit or one space or hyphen between two digits.
    let card = if want(Shape::Card, digit_here) {
        let chain = d | ((space | dash) & (d >> 1) & after_digit);
        let c2 = chain & (chain >> 1);
        let c4 = c2 & (c2 >> 2);
        let c8 = c4 & (c4 >> 4);
        d & word_start & c8 & (c8 >> 5)
    } else {
        0
    };

    // SSN: ddd[- ]dd[- ]dddd and a word boundary.
    let ssn = if want(Shape::Ssn, digit_here) {
        let sep = space | dash;
        word_start
            & d
            & (d >> 1)
            & (d >> 2)
            & (sep >> 3)
            & (d >> 4)
            & (d >> 5)
            & (sep >> 6)
            & (d >> 7)
            & (d >> 8)
            & (d >> 9)
            & (d >> 10)
            & (nw >> 11)
    } else {
        0
    };

    // IPv4: three groups of 1-3 digits and a dot, then a digit.
    let ipv4 = if want(Shape::Ipv4, digit_here && dot != 0) {
        let x1 = d & (dot >> 1) & (d >> 2);
        let x2 = d & (d >> 1) & (dot >> 2) & (d >> 3);
        let x3 = d & (d >> 1) & (d >> 2) & (dot >> 3) & (d >> 4);
        let l1 = x1 | x2 | x3;
        let l2 = (x1 & (l1 >> 2)) | (x2 & (l1 >> 3)) | (x3 & (l1 >> 4));
        let l3 = (x1 & (l2 >> 2)) | (x2 & (l2 >> 3)) | (x3 & (l2 >> 4));
        word_start & l3
    } else {
        0
    };

    // IPv6: `::` and a third colon, or 1-4 hex digits at a word start and a colon; either way a
    // second colon group must follow (a colon, up to 4 hex digits, a colon).
    let ipv6 = if want(Shape::Ipv6, colon.count_ones() >= 2) {
        let h1 = hex >> 1;
        let h2 = h1 & (hex >> 2);
        let h3 = h2 & (hex >> 3);
        let h4 = h3 & (hex >> 4);
        let two_colons = colon
            & ((colon >> 1)
                | (h1 & (colon >> 2))
                | (h2 & (colon >> 3))
                | (h3 & (colon >> 4))
                | (h4 & (colon >> 5)));
        let hex_then_colons = (hex & (two_colons >> 1))
            | (hex & h1 & (two_colons >> 2))
            | (hex & h2 & (two_colons >> 3))
            | (hex & h3 & (two_colons >> 4));
        (word_start & hex_then_colons) | (colon & (colon >> 1) & (colon >> 2))
    } else {
        0
    };

    // `+` and a country code.
    let phone_plus = if want(Shape::PhonePlus, cur.plus != 0) {
        plus & (nonzero >> 1)
    } else {
        0
    };

    // North American: the exchange and line `ddd[ .-]dddd` and a word boundary, after `)`, a space, a
    // dot or a hyphen; a match starts 4 to 8 bytes before it (area code, parentheses, a leading `1-`).
    let nanp = if want(Shape::PhoneNanp, digit_here || cur.lparen != 0) {
        let nanp_sep = space | dash | dot;
        let core = (((rparen | nanp_sep) << 1) | 1)
            & d
            & (d >> 1)
            & (d >> 2)
            & (nanp_sep >> 3)
            & (d >> 4)
            & (d >> 5)
            & (d >> 6)
            & (d >> 7)
            & (nw >> 8);
        // (A leading `1` is a digit at a word start too.)
        ((d & word_start) | lparen)
            & ((core >> 4) | (core >> 5) | (core >> 6) | (core >> 7) | (core >> 8))
    } else {
        0
    };

    // UK: 0 then 3 or 4 digits, a space.
    let uk = if want(Shape::PhoneUk, cur.zero != 0) {
        word_start
            & zero
            & (nonzero >> 1)
            & (d >> 2)
            & (d >> 3)
            & ((space >> 4) | ((d >> 4) & (space >> 5)))
    } else {
        0
    };

    // French: 0 and a digit, then ` dd` or `.dd` groups.
    let fr = if want(Shape::PhoneFr, cur.zero != 0) {
        let fr_sep = space | dot;
        word_start
            & zero
            & (nonzero >> 1)
            & (fr_sep >> 2)
            & (d >> 3)
            & (d >> 4)
            & (fr_sep >> 5)
            & (d >> 6)
            & (d >> 7)
    } else {
        0
    };

    // IBAN: two capitals at a word start, two digits.
    let iban = if want(Shape::Iban, cur.upper != 0) {
        word_start & upper & (upper >> 1) & (d >> 2) & (d >> 3)
    } else {
        0
    };

    let mut out = [0u64; SHAPES];
    for (shape, m) in [
        (Shape::PhonePlus, phone_plus),
        (Shape::PhoneNanp, nanp),
        (Shape::PhoneUk, uk),
        (Shape::PhoneFr, fr),
        (Shape::Ssn, ssn),
        (Shape::Ipv4, ipv4),
        (Shape::Ipv6, ipv6),
        (Shape::Card, card),
        (Shape::Iban, iban),
    ] {
        out[shape.index()] = m as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_classes_match_bytewise() {
        let mut b = [0u8; 64];
        for start in (0..=255u8).step_by(64) {
            for (i, x) in b.iter_mut().enumerate() {
                *x = start.wrapping_add(i as u8);
            }
            assert_eq!(classify(&b), classify_bytewise(&b));
            #[cfg(target_arch = "x86_64")]
            assert_eq!(classify_sse2(&b), classify_bytewise(&b));
        }
        let text = b"Call (555) 010-4477 or +44 20 7946 0958; ip 10.0.0.1, fe80::1:2 DE89_x-y.z";
        let mut pad = [0u8; 64];
        pad.copy_from_slice(&text[..64]);
        assert_eq!(classify(&pad), classify_bytewise(&pad));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(classify_sse2(&pad), classify_bytewise(&pad));
        assert_eq!(digit_mask64(&pad), classify_bytewise(&pad).digit);
    }

    fn clusters_bytewise(text: &[u8]) -> Vec<Cluster> {
        let mut out: Vec<Cluster> = Vec::new();
        let positions = text.iter().enumerate().filter(|(_, b)| b.is_ascii_digit());
        for i in positions.map(|(i, _)| i) {
            match out.last_mut() {
                Some(c) if i <= c.end + DIGIT_GAP => {
                    c.end = i + 1;
                    c.count += 1;
                }
                _ => out.push(Cluster {
                    first: i,
                    end: i + 1,
                    count: 1,
                }),
            }
        }
        out
    }

    #[test]
    fn clusters_match_bytewise_grouping() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for len in [1usize, 17, 63, 64, 65, 100, 128, 129, 300, 1000] {
            for gap in [1u64, 4, 12, 20, 40] {
                for _ in 0..20 {
                    let text: Vec<u8> = (0..len)
                        .map(|_| {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            if rng.is_multiple_of(gap) {
                                b'7'
                            } else {
                                b' '
                            }
                        })
                        .collect();
                    let want = clusters_bytewise(&text);
                    match Digits::new(&text) {
                        Some(d) => assert_eq!(d.clusters(), want, "{len} {gap}"),
                        None => assert!(want.is_empty()),
                    }
                }
            }
        }
    }

    #[test]
    fn clusters_split_at_gaps_over_sixteen() {
        let text = format!("a 12{}34{}5", " ".repeat(16), " ".repeat(17));
        let d = Digits::new(text.as_bytes()).unwrap();
        assert_eq!(
            d.clusters(),
            [
                Cluster {
                    first: 2,
                    end: 22,
                    count: 4
                },
                Cluster {
                    first: 39,
                    end: 40,
                    count: 1
                }
            ]
        );
        assert!(Digits::new(b"no digits here").is_none());
        // A run across a block boundary is one run.
        let long = format!("{}{}", "x".repeat(60), "1".repeat(10));
        let d = Digits::new(long.as_bytes()).unwrap();
        assert_eq!(
            d.clusters(),
            [Cluster {
                first: 60,
                end: 70,
                count: 10
            }]
        );
    }

    #[test]
    fn only_the_wanted_shapes_are_made() {
        let text = "pay 4111 1111 1111 1111, ssn 123-45-6788, ip 10.0.0.1 or (555) 010-4477";
        let mut all = Digits::new(text.as_bytes()).unwrap();
        let mut some = Digits::new(text.as_bytes()).unwrap();
        some.only(Shape::Card.bit() | Shape::Ipv4.bit());
        for shape in [Shape::Card, Shape::Ipv4] {
            assert!(!all.anchors(shape).is_empty(), "{shape:?}");
            assert_eq!(some.anchors(shape).to_vec(), all.anchors(shape).to_vec());
        }
        for shape in [Shape::Ssn, Shape::PhoneNanp] {
            assert!(!all.anchors(shape).is_empty(), "{shape:?}");
            assert!(some.anchors(shape).is_empty(), "{shape:?}");
        }
    }

    #[test]
    fn shapes_anchor_where_their_values_start() {
        let cases: [(Shape, &str, usize); 10] = [
            (Shape::Card, "pay 4111 1111 1111 1111 now", 4),
            (Shape::Ssn, "ssn 123-45-6788.", 4),
            (Shape::Ipv4, "from 192.168.10.20 ok", 5),
            (Shape::Ipv6, "at 2001:db8::1 ok", 3),
            (Shape::Ipv6, "at :::1 ok", 3),
            (Shape::PhonePlus, "call +44 20 7946 0958", 5),
            (Shape::PhoneNanp, "call (555) 010-4477", 5),
            (Shape::PhoneUk, "ring 01632 960 961", 5),
            (Shape::PhoneFr, "tel 01 23 45 67 89", 4),
            (Shape::Iban, "to DE89370400440532013000", 3),
        ];
        for (shape, text, at) in cases {
            let mut d = Digits::new(text.as_bytes()).unwrap();
            // The value's start, and for cards also the later digit groups still 13 characters long.
            assert_eq!(d.anchors(shape)[0], at, "{shape:?} in {text:?}");
            assert!(d.anchors(shape).len() <= 2, "{shape:?} in {text:?}");
        }
        // Numbers that are none of these wake nothing.
        let text =
            r#"{"ts":"2026-12-06T04:15:04.123Z","status":200,"latency_ms":12.53,"bytes":5123}"#;
        let mut d = Digits::new(text.as_bytes()).unwrap();
        for shape in [
            Shape::Card,
            Shape::Ssn,
            Shape::Ipv4,
            Shape::Ipv6,
            Shape::PhoneNanp,
        ] {
            assert_eq!(d.anchors(shape), [0usize; 0], "{shape:?}");
        }
    }
}
