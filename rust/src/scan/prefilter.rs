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
// The vector skip lets through capitals that start a run of 8 letters and digits or more.
const _: () = assert!(UPPER_RUN >= 8 && ALNUM_RUN >= 8);

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
///
/// Where hot bytes are dense (code, logs, JSON, tables: digits and `_ = :` every few bytes), testing each
/// one costs more than the automaton it saves, and every window merges with the next anyway: from a
/// hot byte on, each following 64-byte block with a candidate byte is taken whole (its window reaches
/// past the end of the letter or digit run it ends in), one mask test per block. The windows are then
/// a superset of the byte-by-byte ones (the tests check that), and cost one pass at vector speed.
///
/// The candidates (`skip_cold`'s) are found for the whole text first, one bit per byte, and each skip
/// is then a look at the next set bit: on digit-dense text the skip would otherwise classify the 96
/// bytes after every number again, which made this pass a tenth of a scan.
pub fn hot_windows(b: &[u8]) -> Vec<(usize, usize)> {
    let n = b.len();
    // Up to the first candidate, the vector skip (clean prose, most prompts, never gets past it).
    let first = skip_cold(b, 0);
    if first == n {
        return Vec::new();
    }
    let base = first / 64;
    let cand = candidate_masks(&b[64 * base..]);
    let skip = |i: usize| 64 * base + next_candidate(&cand, i - 64 * base, n - 64 * base);
    let mut out: Vec<(usize, usize)> = Vec::new();
    let mut i = first;
    while i < n {
        i = skip(i);
        if i == n {
            break;
        }
        let (at, (hot, next)) = (i, test(b, i));
        i = next;
        if !hot {
            continue;
        }
        widen(&mut out, n, at, next);
        // Dense: the next block has a candidate within it, so its window joins this one.
        while i < n {
            let j = skip(i);
            if j >= n || j >= i + 64 {
                break;
            }
            let last = (i + 64).min(n) - 1;
            let end = run_end(b, last);
            widen(&mut out, n, last, end);
            i = end.max(last + 1);
        }
    }
    out
}

/// The first candidate at or after `i` (`cand` from `candidate_masks`), or `n`.
fn next_candidate(cand: &[u64], i: usize, n: usize) -> usize {
    let mut k = i / 64;
    let Some(&first) = cand.get(k) else {
        return n;
    };
    let mut m = first & (!0u64 << (i % 64));
    loop {
        if m != 0 {
            return (64 * k + m.trailing_zeros() as usize).min(n);
        }
        k += 1;
        match cand.get(k) {
            Some(&next) => m = next,
            None => return n,
        }
    }
}

/// One bit per byte of a text, 64 to a word.
type Masks = smallvec::SmallVec<[u64; 128]>;

/// The candidate bits of each 64-byte block of `b` (`candidates`), as if `b` were followed by NULs.
///
/// Up to 8 KiB of text the masks live on the stack: an allocation per scan cost clean prose a tenth.
fn candidate_masks(b: &[u8]) -> Masks {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above; the answer is cached).
        return unsafe { candidate_masks_avx2(b) };
    }
    candidate_masks_with(b, |c| classify_bytewise(c))
}

/// `candidate_masks` on 32-byte vectors.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn candidate_masks_avx2(b: &[u8]) -> Masks {
    candidate_masks_with(b, |c| {
        // SAFETY: AVX2 is enabled (this function's contract), and `c` holds the 32 bytes loaded.
        let (a, d, u, n) = unsafe { classify_avx2(c, 0) };
        [a, d, u, n]
    })
}

/// `candidate_masks` with `classify` giving the class masks (`ALWAYS` bytes, `. - /`, capitals, letters
/// and digits) of 32 bytes: each block's masks and its lookahead's, a chunk classified once.
#[inline(always)]
fn candidate_masks_with(b: &[u8], classify: impl Fn(&[u8; 32]) -> [u32; 4]) -> Masks {
    let chunk = |c: usize| {
        let at = 32 * c;
        if at + 32 <= b.len() {
            classify(b[at..at + 32].try_into().unwrap())
        } else if at < b.len() {
            let mut pad = [0u8; 32];
            pad[..b.len() - at].copy_from_slice(&b[at..]);
            classify(&pad)
        } else {
            [0; 4]
        }
    };
    let blocks = b.len().div_ceil(64);
    let mut out = Masks::with_capacity(blocks);
    let mut first = chunk(0);
    for k in 0..blocks {
        let (second, ahead) = (chunk(2 * k + 1), chunk(2 * k + 2));
        let wide = |f: usize| {
            u128::from(first[f]) | (u128::from(second[f]) << 32) | (u128::from(ahead[f]) << 64)
        };
        out.push(candidates(wide(0), wide(1), wide(2), wide(3)));
        first = ahead;
    }
    out
}

/// The class masks of up to 32 bytes, byte by byte (bytes past the end are in no class).
fn classify_bytewise(c: &[u8]) -> [u32; 4] {
    let mut m = [0u32; 4];
    for (i, &x) in c.iter().enumerate() {
        let classes = [
            CLASS[x as usize] == ALWAYS,
            (b'-'..=b'/').contains(&x),
            x.is_ascii_uppercase(),
            x.is_ascii_alphanumeric(),
        ];
        for (mask, on) in m.iter_mut().zip(classes) {
            *mask |= u32::from(on) << i;
        }
    }
    m
}

/// The end of the run of letters, digits and `ALWAYS` bytes that the byte at `i` is in (`i + 1` if it
/// is none of these): as far as a hot byte's test can reach from inside a block.
fn run_end(b: &[u8], i: usize) -> usize {
    let runs = |c: u8| c.is_ascii_alphanumeric() || CLASS[c as usize] == ALWAYS;
    if !runs(b[i]) {
        return i + 1;
    }
    b[i..]
        .iter()
        .position(|&c| !runs(c))
        .map_or(b.len(), |r| i + r)
}

/// Whether `b` has any hot window, found by stopping at its first hot byte.
pub fn any_hot(b: &[u8]) -> bool {
    hot_bytes(b, skip_cold).next().is_some()
}

/// `skip`: finds the next byte that may be hot (the vector skips, or byte by byte), each hot byte tested:
/// the exact windows `hot_windows` covers.
#[cfg(test)]
fn windows_by(b: &[u8], skip: fn(&[u8], usize) -> usize) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, next) in hot_bytes(b, skip) {
        widen(&mut out, b.len(), i, next);
    }
    out
}

/// Each hot byte of `b` in order, with where testing goes on after it (the end of its run).
fn hot_bytes(
    b: &[u8],
    skip: fn(&[u8], usize) -> usize,
) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() {
            // The tight loop: most bytes of prose are lower-case letters, spaces and sentence punctuation.
            i = skip(b, i);
            if i == b.len() {
                break;
            }
            let (at, (hot, next)) = (i, test(b, i));
            i = next;
            if hot {
                return Some((at, next));
            }
        }
        None
    })
}

/// Whether the classed byte at `i` makes a window, and where to go on testing.
fn test(b: &[u8], i: usize) -> (bool, usize) {
    match CLASS[b[i] as usize] {
        ALWAYS => {
            // A run of them (the digits of a number) makes one window, as byte by byte it would.
            let run = b[i..].iter().position(|&c| CLASS[c as usize] != ALWAYS);
            (true, run.map_or(b.len(), |r| i + r))
        }
        INSIDE_TOKEN => (b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric), i + 1),
        0 => (false, i + 1),
        _ => {
            // From a capital: the rest of its letter/digit run, its longest stretch of capitals.
            let (mut j, mut caps, mut most) = (i, 0u32, 0u32);
            while j < b.len() && b[j].is_ascii_alphanumeric() {
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
    }
}

/// Adds the window around a hot byte at `i` (up to `next`), merged with the last if they touch.
fn widen(out: &mut Vec<(usize, usize)>, n: usize, i: usize, next: usize) {
    let ws = i.saturating_sub(BACK);
    let we = (next.max(i + 1) + AHEAD).min(n);
    match out.last_mut() {
        Some(last) if ws <= last.1 => last.1 = last.1.max(we),
        _ => out.push((ws, we)),
    }
}

/// A position at or after `i` that may be hot, or `b.len()`: never past the first hot one, and in
/// prose rarely short of it, so the caller's exact test runs on few bytes.
///
/// 64 bytes per step, as bit masks (bit k = byte `i + k`): the `ALWAYS` bytes; `. - /` followed by a
/// letter or digit; capitals that start a run of at least 8 letters and digits (every hot capital
/// does: both of its tests need 8). Sentence starts and ends, the only classed bytes of most prose,
/// are thus skipped without leaving the vector loop. The runs look up to 16 bytes past the block.
/// AVX2 where the CPU has it, else SSE2 (the x86_64 baseline); other targets test byte by byte.
#[cfg(target_arch = "x86_64")]
fn skip_cold(b: &[u8], i: usize) -> usize {
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (checked just above; the answer is cached).
        unsafe { skip_cold_avx2(b, i) }
    } else {
        skip_cold_sse2(b, i)
    }
}

/// The candidate bits of the 64 bytes whose class masks (and 16 bytes of lookahead) are given.
#[inline(always)]
fn candidates(always: u128, dots: u128, upper: u128, alnum: u128) -> u64 {
    let run2 = alnum & (alnum >> 1);
    let run4 = run2 & (run2 >> 2);
    let run8 = run4 & (run4 >> 4);
    (always | (dots & (alnum >> 1)) | (upper & run8)) as u64
}

#[cfg(target_arch = "x86_64")]
fn skip_cold_sse2(b: &[u8], mut i: usize) -> usize {
    use std::arch::x86_64::*;
    while i + 80 <= b.len() {
        let (mut always, mut dots, mut upper, mut alnum) = (0u128, 0u128, 0u128, 0u128);
        for k in 0..5 {
            // SAFETY: SSE2 is part of the x86_64 baseline; the load reads 16 bytes inside `b`.
            let c = unsafe { classify_sse2(_mm_loadu_si128(b.as_ptr().add(i + 16 * k).cast())) };
            let shift = 16 * k;
            always |= u128::from(c[0]) << shift;
            dots |= u128::from(c[1]) << shift;
            upper |= u128::from(c[2]) << shift;
            alnum |= u128::from(c[3]) << shift;
        }
        let hot = candidates(always, dots, upper, alnum);
        if hot != 0 {
            return i + hot.trailing_zeros() as usize;
        }
        i += 64;
    }
    skip_cold_bytewise(b, i)
}

/// The class masks of 16 bytes: `ALWAYS` bytes, `. - /`, capitals, letters and digits.
/// `unsigned(x - lo) <= hi - lo` is a range test in one min and one compare.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn classify_sse2(v: std::arch::x86_64::__m128i) -> [u16; 4] {
    use std::arch::x86_64::*;
    let splat = |c: u8| _mm_set1_epi8(c as i8);
    let range = |lo: u8, hi: u8| {
        let t = _mm_sub_epi8(v, splat(lo));
        _mm_cmpeq_epi8(_mm_min_epu8(t, splat(hi - lo)), t)
    };
    let eq = |c: u8| _mm_cmpeq_epi8(v, splat(c));
    let digit = range(b'0', b'9');
    let up = range(b'A', b'Z');
    let low = range(b'a', b'z');
    let always = _mm_or_si128(
        _mm_or_si128(
            _mm_or_si128(digit, eq(b':')),
            _mm_or_si128(eq(b'$'), eq(b'+')),
        ),
        _mm_or_si128(
            _mm_or_si128(eq(b'='), eq(b'@')),
            _mm_or_si128(eq(b'_'), eq(b'~')),
        ),
    );
    let bits = |m: __m128i| _mm_movemask_epi8(m) as u16;
    [
        bits(always),
        bits(range(b'-', b'/')),
        bits(up),
        bits(_mm_or_si128(_mm_or_si128(digit, up), low)),
    ]
}

/// `skip_cold_sse2` on 32-byte vectors, two per step: the lookahead vector's masks are kept for the
/// next block rather than computed again.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn skip_cold_avx2(b: &[u8], mut i: usize) -> usize {
    if i + 96 > b.len() {
        return skip_cold_sse2(b, i);
    }
    // Bits 0..32 of each mask: bytes `i..i + 32`, classified by the step before (or here, first).
    // SAFETY (each call): AVX2 is enabled, and `i + 96 <= b.len()` keeps the 32-byte loads inside `b`.
    let (a0, d0, u0, n0) = unsafe { classify_avx2(b, i) };
    let (mut always, mut dots, mut upper, mut alnum) = (
        u128::from(a0),
        u128::from(d0),
        u128::from(u0),
        u128::from(n0),
    );
    while i + 96 <= b.len() {
        let (a1, d1, u1, n1) = unsafe { classify_avx2(b, i + 32) };
        let (a2, d2, u2, n2) = unsafe { classify_avx2(b, i + 64) };
        always |= (u128::from(a1) << 32) | (u128::from(a2) << 64);
        dots |= (u128::from(d1) << 32) | (u128::from(d2) << 64);
        upper |= (u128::from(u1) << 32) | (u128::from(u2) << 64);
        alnum |= (u128::from(n1) << 32) | (u128::from(n2) << 64);
        let hot = candidates(always, dots, upper, alnum);
        if hot != 0 {
            return i + hot.trailing_zeros() as usize;
        }
        always >>= 64;
        dots >>= 64;
        upper >>= 64;
        alnum >>= 64;
        i += 64;
    }
    skip_cold_sse2(b, i)
}

/// The class masks of the 32 bytes at `b[at..]`, as `classify_sse2`.
///
/// # Safety
/// The CPU must support AVX2, and `at + 32 <= b.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn classify_avx2(b: &[u8], at: usize) -> (u32, u32, u32, u32) {
    use std::arch::x86_64::*;
    let v = unsafe { _mm256_loadu_si256(b.as_ptr().add(at).cast()) };
    let splat = |c: u8| _mm256_set1_epi8(c as i8);
    let range = |lo: u8, hi: u8| {
        let t = _mm256_sub_epi8(v, splat(lo));
        _mm256_cmpeq_epi8(_mm256_min_epu8(t, splat(hi - lo)), t)
    };
    let eq = |c: u8| _mm256_cmpeq_epi8(v, splat(c));
    let digit = range(b'0', b'9');
    let up = range(b'A', b'Z');
    let low = range(b'a', b'z');
    let always = _mm256_or_si256(
        _mm256_or_si256(
            _mm256_or_si256(digit, eq(b':')),
            _mm256_or_si256(eq(b'$'), eq(b'+')),
        ),
        _mm256_or_si256(
            _mm256_or_si256(eq(b'='), eq(b'@')),
            _mm256_or_si256(eq(b'_'), eq(b'~')),
        ),
    );
    let bits = |m: __m256i| _mm256_movemask_epi8(m) as u32;
    (
        bits(always),
        bits(range(b'-', b'/')),
        bits(up),
        bits(_mm256_or_si256(_mm256_or_si256(digit, up), low)),
    )
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
    fn vector_skip_misses_no_hot_byte() {
        // Every byte value in each lane of a block, its lookahead, and the scalar tail; before a space,
        // a letter and a capital run, so `. - /` and capitals are tested both ways.
        for c in 0..=255u8 {
            for follow in [&b" x"[..], b"ab", b"BCDEFGHIJ", b"bcdefghijklmnopqrstuvw"] {
                for at in 0..150 {
                    let mut b = vec![b'a'; 200];
                    b[at] = c;
                    b[at + 1..at + 1 + follow.len()].copy_from_slice(follow);
                    b[at + 1 + follow.len()] = b' ';
                    let want = windows_by(&b, skip_cold_bytewise);
                    assert_eq!(windows_by(&b, skip_cold), want, "{c:#x} at {at}");
                    assert_covers(&hot_windows(&b), &want);
                    assert_eq!(any_hot(&b), !want.is_empty(), "{c:#x} at {at}");
                    #[cfg(target_arch = "x86_64")]
                    assert_eq!(windows_by(&b, skip_cold_sse2), want, "{c:#x} at {at}");
                }
            }
        }
    }

    /// Every byte of `exact` is inside `fast`.
    fn assert_covers(fast: &[(usize, usize)], exact: &[(usize, usize)]) {
        for &(s, e) in exact {
            assert!(
                fast.iter().any(|&(fs, fe)| fs <= s && e <= fe),
                "{exact:?} not within {fast:?}"
            );
        }
        for w in fast.windows(2) {
            assert!(w[0].1 < w[1].0, "{fast:?}");
        }
    }

    #[test]
    fn dense_windows_cover_the_exact_ones() {
        // Code, logs and tables: a hot byte every few bytes, runs across block boundaries.
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"aaaaaaaabcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789      .,;-/_=:@+$~\n\"{}";
        for len in [1usize, 63, 64, 65, 127, 200, 1000, 4096] {
            for density in [2u64, 8, 40, 200] {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        if rng.is_multiple_of(density) {
                            alphabet[(rng >> 8) as usize % alphabet.len()]
                        } else {
                            b"the quick brown fox "[(rng >> 8) as usize % 20]
                        }
                    })
                    .collect();
                assert_covers(&hot_windows(&b), &windows_by(&b, skip_cold_bytewise));
            }
        }
        let long = format!("{}ABCDEFGHIJ{} x", "1 ".repeat(40), "k".repeat(300));
        assert_covers(
            &hot_windows(long.as_bytes()),
            &windows_by(long.as_bytes(), skip_cold_bytewise),
        );
    }

    #[test]
    fn candidate_masks_match_bytewise() {
        // Every byte value, at every offset of a block and its lookahead, and texts ending mid-chunk.
        for len in [1usize, 31, 32, 33, 63, 64, 65, 96, 100, 129, 200] {
            for c in 0..=255u8 {
                let mut b = vec![b'a'; len];
                let at = (c as usize * 7) % len;
                b[at] = c;
                if at + 1 < len {
                    b[at + 1] = b'Q';
                }
                let mut want = Vec::new();
                for k in 0..len.div_ceil(64) {
                    let lane = |f: usize| {
                        (0..80).fold(0u128, |m, j| {
                            let x = b.get(64 * k + j).copied().unwrap_or(0);
                            m | (u128::from(classify_bytewise(&[x])[f]) << j)
                        })
                    };
                    want.push(candidates(lane(0), lane(1), lane(2), lane(3)));
                }
                assert_eq!(
                    candidate_masks(&b).to_vec(),
                    want,
                    "{c:#x} at {at} of {len}"
                );
            }
        }
    }

    #[test]
    fn prose_has_no_hot_windows() {
        let text =
            b"The quick brown fox jumps over the lazy dog. Then it rests, happily, in the sun!";
        assert!(hot_windows(text).is_empty());
        assert!(!any_hot(text));
    }

    #[test]
    fn triggers_open_merged_windows() {
        let text = b"plain words here and then a key ghp_abc and sk-x then more plain words go on and on and on";
        let w = hot_windows(text);
        assert_eq!(w.len(), 1);
        assert!(any_hot(text));
        let pos = text.windows(4).position(|x| x == b"ghp_").unwrap();
        assert!(w[0].0 <= pos && w[0].1 > pos + 4);
        // A run of letters long enough to be a token, and an all-caps code.
        assert_eq!(hot_windows(b"AKIAQWERTYUIOPASDFGHJ").len(), 1);
        assert_eq!(hot_windows(b"swift DEUTDEFF").len(), 1);
        // Digits inside a short run that starts with capitals still count.
        assert_eq!(hot_windows(b"to NL36WJDV7289075496 by").len(), 1);
    }
}
