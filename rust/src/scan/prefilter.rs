//! Hot windows: the parts of a text where a finding can possibly be, found with one cheap byte pass.
//!
//! Every built-in rule but the opt-in person names matches text that contains one of:
//! - a digit, `@`, `=`, `_`, `~`, `+`, `$` or `:` (card, phone, IBAN and other numbers; emails;
//!   `key=value` and `key: value` assignments; most token prefixes like `ghp_`, `sk_live_`, `Q~`);
//! - `.`, `-` or `/` inside a token, i.e. followed by a letter or digit (`sk-`, `SG.`, `eyJ…`, `://`);
//! - a run of 20 letters and digits (a token made only of letters, such as a rare all-letter AWS key);
//! - a run of 8 upper-case letters (an all-letter SWIFT/BIC code after its cue word).
//!
//! Ordinary prose has few of these, so the automaton of anchors and cue words runs only on small windows
//! around them: `BACK` bytes before (cue words precede their values) and `AHEAD` after (an anchor that
//! starts at the trigger).
const BACK: usize = 64;
const AHEAD: usize = 32;
const ALNUM_RUN: u32 = 20;
const UPPER_RUN: u32 = 8;

const ALWAYS: u8 = 1;
const INSIDE_TOKEN: u8 = 2;
/// Upper-case letters start the checks for letter-only tokens (runs of 20 alnum or 8 capitals).
const UPPER: u8 = 3;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = ALWAYS;
        d += 1;
    }
    let mut u = b'A';
    while u <= b'Z' {
        t[u as usize] = UPPER;
        u += 1;
    }
    t[b'@' as usize] = ALWAYS;
    t[b'=' as usize] = ALWAYS;
    t[b'_' as usize] = ALWAYS;
    t[b'~' as usize] = ALWAYS;
    t[b'+' as usize] = ALWAYS;
    t[b'$' as usize] = ALWAYS;
    t[b':' as usize] = ALWAYS;
    t[b'.' as usize] = INSIDE_TOKEN;
    t[b'-' as usize] = INSIDE_TOKEN;
    t[b'/' as usize] = INSIDE_TOKEN;
    t
};

/// Sorted, disjoint byte ranges of `b` that may hold a finding.
pub fn hot_windows(b: &[u8]) -> Vec<(usize, usize)> {
    let n = b.len();
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        // The tight loop: most bytes of prose are lower-case letters, spaces and sentence punctuation.
        i = skip_cold(b, i);
        if i == n {
            break;
        }
        let (hot, next) = match CLASS[b[i] as usize] {
            ALWAYS => (true, i + 1),
            INSIDE_TOKEN => (b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric), i + 1),
            _ => {
                // From a capital: the rest of its letter/digit run, its longest stretch of capitals.
                let (mut j, mut caps, mut most) = (i, 0u32, 0u32);
                while j < n && b[j].is_ascii_alphanumeric() {
                    caps = if b[j].is_ascii_uppercase() {
                        caps + 1
                    } else {
                        0
                    };
                    most = most.max(caps);
                    j += 1;
                }
                let hot = most >= UPPER_RUN || (j - i) as u32 >= ALNUM_RUN;
                // Not a token: go on from the next byte (the run may still hold digits).
                (hot, if hot { j } else { i + 1 })
            }
        };
        if hot {
            let ws = i.saturating_sub(BACK);
            let we = (next.max(i + 1) + AHEAD).min(n);
            match out.last_mut() {
                Some(last) if ws <= last.1 => last.1 = last.1.max(we),
                _ => out.push((ws, we)),
            }
        }
        i = next;
    }
    out
}

/// The first position at or after `i` whose byte has a class (`b.len()` if none): 16 bytes per step.
#[cfg(target_arch = "x86_64")]
fn skip_cold(b: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::*;
    // The classed bytes as SSE2 compares: two ranges, `-` to `:` (`- . /`, digits, `:`) and `@` to
    // `Z` (`@`, capitals), plus `$ + = _ ~`. `unsigned(x - lo) <= hi - lo` is a range test in one
    // min and one compare.
    // SAFETY: SSE2 is part of the x86_64 baseline; every load reads 16 bytes inside `b`.
    unsafe {
        let splat = |c: u8| _mm_set1_epi8(c as i8);
        let in_range = |v: __m128i, lo: u8, hi: u8| {
            let t = _mm_sub_epi8(v, splat(lo));
            _mm_cmpeq_epi8(_mm_min_epu8(t, splat(hi - lo)), t)
        };
        while i + 16 <= b.len() {
            let v = _mm_loadu_si128(b.as_ptr().add(i).cast());
            let hit = _mm_or_si128(
                _mm_or_si128(in_range(v, b'-', b':'), in_range(v, b'@', b'Z')),
                _mm_or_si128(
                    _mm_or_si128(
                        _mm_cmpeq_epi8(v, splat(b'$')),
                        _mm_cmpeq_epi8(v, splat(b'+')),
                    ),
                    _mm_or_si128(
                        _mm_cmpeq_epi8(v, splat(b'=')),
                        _mm_or_si128(
                            _mm_cmpeq_epi8(v, splat(b'_')),
                            _mm_cmpeq_epi8(v, splat(b'~')),
                        ),
                    ),
                ),
            );
            let mask = _mm_movemask_epi8(hit);
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 16;
        }
    }
    skip_cold_bytewise(b, i)
}

#[cfg(not(target_arch = "x86_64"))]
fn skip_cold(b: &[u8], i: usize) -> usize {
    skip_cold_bytewise(b, i)
}

fn skip_cold_bytewise(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && CLASS[b[i] as usize] == 0 {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_skip_agrees_with_the_class_table() {
        // Every byte value at every lane of a 16-byte block, and in the scalar tail.
        for c in 0..=255u8 {
            for at in 0..40 {
                let mut b = vec![b'a'; 40];
                b[at] = c;
                let want = if CLASS[c as usize] == 0 { 40 } else { at };
                assert_eq!(skip_cold(&b, 0), want, "byte {c:#x} at {at}");
                assert_eq!(skip_cold_bytewise(&b, 0), want);
            }
        }
    }

    #[test]
    fn prose_has_no_hot_windows() {
        let text =
            b"The quick brown fox jumps over the lazy dog. Then it rests, happily, in the sun!";
        assert!(hot_windows(text).is_empty());
    }

    #[test]
    fn triggers_open_merged_windows() {
        let text = b"plain words here and then a key ghp_abc and sk-x then more plain words go on and on and on";
        let w = hot_windows(text);
        assert_eq!(w.len(), 1);
        let pos = text.windows(4).position(|x| x == b"ghp_").unwrap();
        assert!(w[0].0 <= pos && w[0].1 > pos + 4);
        // A run of letters long enough to be a token, and an all-caps code.
        assert_eq!(hot_windows(b"AKIAQWERTYUIOPASDFGHJ").len(), 1);
        assert_eq!(hot_windows(b"swift DEUTDEFF").len(), 1);
        // Digits inside a short run that starts with capitals still count.
        assert_eq!(hot_windows(b"to NL36WJDV7289075496 by").len(), 1);
    }
}
