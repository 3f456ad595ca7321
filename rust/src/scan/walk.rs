//! The wake-up pass's walk: the Aho-Corasick automaton of anchors and cue words (built by the
//! `aho-corasick` crate) copied into a compact table, and walked over long windows in lanes.
//!
//! On digit-dense text (code, JSON logs, tables) the hot windows cover every byte, and with the crate's
//! overlapping search this walk is half of a scan. That search steps one byte at a time through a chain of dependent loads
//! (state, then next state), with a bounds-checked 32-bit entry, two compares to tell a match and the
//! bookkeeping that lets it stop at each match. Here: 16-bit states in rows as wide as the automaton's
//! own byte classes, the match states numbered last (one compare tells a match), matches collected in a
//! buffer, and a window of at least `LANES * LANE_MIN` bytes cut into `LANES` lanes walked in step, so
//! that the lanes' loads overlap instead of each waiting on the one before. Each lane walks on past its
//! end by the longest literal's length less one and keeps only the matches that start in it: the matches
//! of one walk over the window, each once, in the order one walk reports them (by end).
use std::collections::HashMap;

use aho_corasick::automaton::Automaton;
use aho_corasick::dfa::DFA;
use aho_corasick::Anchored;

/// Lanes walked in step: enough loads in flight to hide a cache hit's latency. Eight rather than four:
/// with four, each step still waited on the loads before it (`make bench-engine-rust`: the walk of a
/// digit-dense 4 KiB window took a fifth less time with eight).
const LANES: usize = 8;
/// A window is cut into lanes when each lane gets at least this many bytes (and the overlap).
const LANE_MIN: usize = 64;

/// One match: where it ends, its pattern, where it starts.
pub type Match = (usize, u32, usize);

pub struct Walk {
    /// Each byte's class: bytes no state tells apart share one.
    classes: [u8; 256],
    /// Row width (in entries) is `1 << shift`, at least the number of classes.
    shift: u32,
    /// Next state: `table[(state << shift) | class]`. The start state is 0.
    table: Vec<u16>,
    /// States from this one on are match states.
    first_match: u16,
    /// Each match state's (pattern, pattern length) pairs, in the automaton's order: `spans` indexes
    /// `patterns` by `state - first_match`.
    spans: Vec<(u32, u32)>,
    patterns: Vec<(u32, u32)>,
    /// The longest pattern's length less one: how far a lane walks past its end.
    overlap: usize,
}

impl Walk {
    /// The table of `dfa` (an unanchored automaton of standard match semantics), or `None` if it has
    /// more states than 16 bits can number.
    pub fn new(dfa: &DFA) -> Option<Self> {
        let start = dfa.start_state(Anchored::No).ok()?;
        // Every state reachable from the start, breadth first (start first).
        let mut index: HashMap<u32, usize> = HashMap::from([(start.as_u32(), 0)]);
        let mut states = vec![start];
        let mut next = Vec::new();
        let mut at = 0;
        while at < states.len() {
            for b in 0..=255u8 {
                let n = dfa.next_state(Anchored::No, states[at], b);
                let i = *index.entry(n.as_u32()).or_insert_with(|| {
                    states.push(n);
                    states.len() - 1
                });
                next.push(i);
            }
            at += 1;
        }
        if states.len() > usize::from(u16::MAX) || dfa.is_match(start) {
            return None;
        }
        // Non-match states first, then match states; both in breadth-first order.
        let (plain, matching): (Vec<usize>, Vec<usize>) =
            (0..states.len()).partition(|&i| !dfa.is_match(states[i]));
        let mut id = vec![0u16; states.len()];
        for (new, &old) in plain.iter().chain(&matching).enumerate() {
            id[old] = new as u16;
        }
        let order: Vec<usize> = plain.iter().chain(&matching).copied().collect();
        // Byte classes: bytes whose column of next states is the same everywhere.
        let mut columns: HashMap<Vec<u16>, u8> = HashMap::new();
        let mut classes = [0u8; 256];
        let mut representative = Vec::new();
        for b in 0..256usize {
            let column: Vec<u16> = order.iter().map(|&s| id[next[s * 256 + b]]).collect();
            let n = columns.len();
            let class = *columns.entry(column).or_insert_with(|| {
                representative.push(b);
                n as u8
            });
            classes[b] = class;
        }
        let shift = representative.len().next_power_of_two().trailing_zeros();
        let mut table = vec![0u16; order.len() << shift];
        for (s, &old) in order.iter().enumerate() {
            for (c, &b) in representative.iter().enumerate() {
                table[(s << shift) | c] = id[next[old * 256 + b]];
            }
        }
        let mut spans = Vec::with_capacity(matching.len());
        let mut patterns = Vec::new();
        for &old in &matching {
            let sid = states[old];
            let from = patterns.len() as u32;
            for i in 0..dfa.match_len(sid) {
                let pid = dfa.match_pattern(sid, i);
                patterns.push((pid.as_u32(), dfa.pattern_len(pid) as u32));
            }
            spans.push((from, patterns.len() as u32));
        }
        Some(Self {
            classes,
            shift,
            table,
            first_match: plain.len() as u16,
            spans,
            patterns,
            overlap: dfa.max_pattern_len().saturating_sub(1),
        })
    }

    #[inline(always)]
    fn step(&self, state: u16, byte: u8) -> u16 {
        let at = (usize::from(state) << self.shift) | usize::from(self.classes[usize::from(byte)]);
        debug_assert!(at < self.table.len());
        // SAFETY: `state` is a state of the table (0 or an entry of it: `new` numbers every state it
        // reaches) and a class is below the row width `1 << shift`, so `at` is inside `table`, which
        // has a full row per state. The bounds check this skips was a compare and a branch per byte
        // per lane, on the hottest loop of a scan of digit-dense text.
        unsafe { *self.table.get_unchecked(at) }
    }

    /// Records the matches of match state `state` ending at `end` that start before `owned`.
    #[inline(never)]
    fn report(&self, state: u16, end: usize, owned: usize, out: &mut Vec<Match>) {
        let (from, to) = self.spans[usize::from(state - self.first_match)];
        for &(pid, len) in &self.patterns[from as usize..to as usize] {
            let start = end - len as usize;
            if start < owned {
                out.push((end, pid, start));
            }
        }
    }

    /// Every match in `bytes[ws..we]`, by end: what one overlapping search over the window reports, in
    /// its order.
    pub fn matches(&self, bytes: &[u8], ws: usize, we: usize, out: &mut Vec<Match>) {
        out.clear();
        let len = (we - ws) / LANES;
        if len < LANE_MIN.max(self.overlap) {
            let mut s = 0u16;
            for (i, &b) in bytes[ws..we].iter().enumerate() {
                s = self.step(s, b);
                if s >= self.first_match {
                    self.report(s, ws + i + 1, we, out);
                }
            }
            return;
        }
        // Lane k owns `[own[k], own[k + 1])` and walks `[own[k], stop[k])`.
        let own: [usize; LANES + 1] =
            std::array::from_fn(|k| if k == LANES { we } else { ws + k * len });
        let stop: [usize; LANES] = std::array::from_fn(|k| (own[k + 1] + self.overlap).min(we));
        // In step for as long as every lane has bytes (the shortest walk is the first lanes' `len +
        // overlap`, or the last lane's), then each lane on to its own stop.
        let steps = (0..LANES).map(|k| stop[k] - own[k]).min().unwrap_or(0);
        let lane: [&[u8]; LANES] = std::array::from_fn(|k| &bytes[own[k]..own[k] + steps]);
        let mut s = [0u16; LANES];
        // Every lane takes its byte of the same step: an index, not an iterator per lane.
        #[allow(clippy::needless_range_loop)]
        for step in 0..steps {
            for k in 0..LANES {
                s[k] = self.step(s[k], lane[k][step]);
                if s[k] >= self.first_match {
                    self.report(s[k], own[k] + step + 1, own[k + 1], out);
                }
            }
        }
        for k in 0..LANES {
            for (i, &b) in bytes[own[k] + steps..stop[k]].iter().enumerate() {
                s[k] = self.step(s[k], b);
                if s[k] >= self.first_match {
                    self.report(s[k], own[k] + steps + i + 1, own[k + 1], out);
                }
            }
        }
        // One walk's order: by end, and at one end the longer match first (a state lists its own pattern,
        // then the shorter ones that end with it).
        out.sort_unstable_by_key(|&(end, _, start)| (end, start));
    }
}
