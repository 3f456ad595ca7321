//! The detector: a byte pass finds the hot windows (`prefilter`), one Aho-Corasick automaton of token
//! prefixes and cue words runs over them (as a compact table walked in lanes: `walk`) and wakes rules up, each rule's regex then runs on a small window
//! around its wake-up points, and validators check the candidates. Number-shaped rules (phones, cards,
//! SSNs, IP addresses, IBANs) are woken by clusters of digits instead, and their regexes run, anchored,
//! only where the digit masks (`digits`) show their shape.
//!
//! Clean prose costs the byte pass plus a few tiny automaton and regex runs around punctuation.
use aho_corasick::automaton::{Automaton, OverlappingState};
use aho_corasick::dfa::DFA;
use aho_corasick::{MatchKind, StartKind};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, PatternID};

use super::digits::{Cluster, Digits, Shape};
use super::prefilter::{any_hot, hot_windows};
use super::rules::{builtin, key_start, Pre, RuleSpec, Trigger};
use super::validate::{self, Check};
use super::walk::{Match, Walk};
use super::{Categories, Category};

/// One sensitive value: byte offsets into the scanned text, and the rule that found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub start: usize,
    pub end: usize,
    pub rule: u16,
}

struct Rule {
    spec: RuleSpec,
    regex: Regex,
    /// The regex's first capture group is the value (otherwise the whole match is).
    grouped: bool,
}

/// What one automaton pattern wakes up: rules, and whether the literal's case must match.
type Wake = Vec<(u16, Option<&'static str>)>;

/// How the engine finds the anchors, cue words and digits that wake rules up.
///
/// First the SIMD byte prefilter marks the hot windows (around digits and punctuation): a text without
/// any wakes nothing, unless person names are on, whose cues are plain words ("dear", "name") and need a
/// pass over the whole text. With the feature built in (the project's build: `make build-prod`, the
/// maturin features in pyproject.toml) that whole-text pass, and the pass over any text up to
/// `HYPERSCAN_TEXT_MAX` with a hot window, is Hyperscan's SIMD literal matcher: in `make bench-engine`
/// (release, LTO) it is 2.6x faster than the Aho-Corasick DFA over the whole of 1 MiB of prose, as fast
/// as the DFA over the windows from 4 to 256 KiB, and cheaper with cold caches. Longer texts keep the
/// DFA over the windows. Without the feature the crate is pure Rust and needs no system library; on a
/// CPU Hyperscan refuses, the engine falls back to the DFA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Wakeup {
    /// The Aho-Corasick automaton runs over the hot windows (or over the whole text, with person names
    /// on).
    #[cfg_attr(not(feature = "hyperscan"), default)]
    Prefilter,
    /// Hyperscan's literal matcher over the whole text (same wake-ups), where `Engine::scan_with` says.
    #[cfg(feature = "hyperscan")]
    #[default]
    Hyperscan,
}

pub struct Engine {
    /// The concrete DFA type, not `AhoCorasick`: the overlapping search is then compiled for this
    /// automaton instead of going through `AhoCorasick`'s dynamic dispatch.
    automaton: DFA,
    /// The automaton as a compact table, walked in lanes (`None`: too many states for it).
    walk: Option<Walk>,
    #[cfg(feature = "hyperscan")]
    hyperscan: Option<super::hyperscan::Literals>,
    wakes: Vec<Wake>,
    rules: Vec<Rule>,
    /// The number-shaped rules, in rule order, with the shape that anchors them.
    digit_rules: Vec<(u16, Shape)>,
    whole_rules: Vec<u16>,
}
/// After a cluster's last digit, how far a digit rule's match may still reach (IBAN letter groups).
const DIGIT_TAIL: usize = 12;
/// Up to this length a text with hot windows gets Hyperscan's pass over all of it rather than the
/// automaton over the windows: as fast warm (4 to 256 KiB, `make bench-engine` sizes), and with cold
/// caches far cheaper, as the automaton's tables take a cache miss per byte. Longer texts keep the
/// windows (17% faster on 1 MiB of prose).
const HYPERSCAN_TEXT_MAX: usize = 64 << 10;

/// ASCII `\b`, `\w` and `\s`: the sensitive formats are ASCII, and the Unicode classes make every regex
/// bigger and slower (the Unicode `\b` even makes the lazy DFA give up on non-ASCII text).
pub(crate) fn asciify(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 32);
    let mut depth = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('b') if depth == 0 => out.push_str(r"(?-u:\b)"),
                Some('w') if depth == 0 => out.push_str("[0-9A-Za-z_]"),
                Some('w') => out.push_str("0-9A-Za-z_"),
                Some('s') if depth == 0 => out.push_str(r"[\t\n\x0B\x0C\r ]"),
                Some('s') => out.push_str(r"\t\n\x0B\x0C\r "),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '[' => {
                depth += 1;
                out.push(c);
            }
            ']' if depth > 0 => {
                depth -= 1;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Built-in rules are made ASCII (`asciify`); custom patterns keep the meaning their author gave them.
fn compile(pattern: &str, builtin: bool) -> Result<Regex, String> {
    let pattern = if builtin {
        asciify(pattern)
    } else {
        pattern.to_owned()
    };
    Regex::builder()
        .syntax(syntax::Config::new())
        .build(&pattern)
        .map_err(|e| match e.syntax_error() {
            // The syntax error shows the pattern with a caret under the fault; keep it on one line.
            Some(syntax) => syntax
                .to_string()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            None => e.to_string(),
        })
}

impl Engine {
    /// The built-in rules plus `custom` (name, regex) pairs; a bad custom pattern is an error naming it.
    pub fn new(custom: &[(String, String)]) -> Result<Self, String> {
        Self::with_wakeup(custom, Wakeup::default())
    }

    pub fn with_wakeup(custom: &[(String, String)], wakeup: Wakeup) -> Result<Self, String> {
        let mut specs = builtin();
        for (name, pattern) in custom {
            let valid_name = !name.is_empty()
                && name.len() <= 40
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                return Err(format!(
                    "custom pattern name {name:?} must be 1-40 letters, digits or underscores, starting with a letter"
                ));
            }
            specs.push(RuleSpec {
                kind: name.to_ascii_uppercase(),
                category: Category::Custom,
                pattern: pattern.clone(),
                trigger: Trigger::Whole,
                check: Check::None,
                back: 0,
                span: usize::MAX,
                min_digits: 0,
                priority: 22,
                pre: Pre::None,
                word: false,
                near_cue: false,
            });
        }
        let mut rules = Vec::with_capacity(specs.len());
        for spec in specs {
            let regex = compile(&spec.pattern, spec.category != Category::Custom).map_err(|e| {
                if spec.category == Category::Custom {
                    format!("custom pattern {:?} is not a valid regex: {e}", spec.kind)
                } else {
                    format!("built-in rule {} failed to compile: {e}", spec.kind)
                }
            })?;
            if spec.category == Category::Custom && regex.is_match("") {
                return Err(format!(
                    "custom pattern {:?} matches the empty string",
                    spec.kind
                ));
            }
            let grouped = regex.group_info().group_len(PatternID::ZERO) > 1;
            rules.push(Rule {
                spec,
                regex,
                grouped,
            });
        }
        Self::assemble(rules, wakeup)
    }

    fn assemble(rules: Vec<Rule>, wakeup: Wakeup) -> Result<Self, String> {
        let mut literals: Vec<String> = Vec::new();
        let mut wakes: Vec<Wake> = Vec::new();
        let mut digit_rules = Vec::new();
        let mut whole_rules = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let id = u16::try_from(i).map_err(|_| "too many guardrail rules".to_owned())?;
            match rule.spec.trigger {
                Trigger::Literal(lits, exact) => {
                    for &lit in lits {
                        let key = lit.to_ascii_lowercase();
                        let slot = match literals.iter().position(|l| *l == key) {
                            Some(p) => p,
                            None => {
                                literals.push(key);
                                wakes.push(Vec::new());
                                literals.len() - 1
                            }
                        };
                        wakes[slot].push((id, exact.then_some(lit)));
                    }
                }
                Trigger::Digit(shape) => digit_rules.push((id, shape)),
                Trigger::Whole => whole_rules.push(id),
            }
        }
        let automaton = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .build(&literals)
            .map_err(|e| e.to_string())?;
        #[cfg(feature = "hyperscan")]
        let hyperscan = match wakeup {
            // A platform Hyperscan does not support (it needs SSSE3) gets the pure-Rust pass, same findings.
            Wakeup::Hyperscan => super::hyperscan::Literals::new(&literals).ok(),
            Wakeup::Prefilter => None,
        };
        #[cfg(not(feature = "hyperscan"))]
        let Wakeup::Prefilter = wakeup;
        Ok(Self {
            walk: Walk::new(&automaton),
            automaton,
            #[cfg(feature = "hyperscan")]
            hyperscan,
            wakes,
            rules,
            digit_rules,
            whole_rules,
        })
    }

    pub fn kind(&self, rule: u16) -> &str {
        &self.rules[rule as usize].spec.kind
    }

    pub fn category(&self, rule: u16) -> Category {
        self.rules[rule as usize].spec.category
    }

    /// Every (category, type) the engine can report, in rule order, without repeats.
    pub fn types(&self) -> Vec<(Category, &str)> {
        let mut out: Vec<(Category, &str)> = Vec::new();
        for r in &self.rules {
            let t = (r.spec.category, r.spec.kind.as_str());
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    pub fn rules(&self) -> impl Iterator<Item = (Category, &str, &str)> {
        self.rules.iter().map(|r| {
            (
                r.spec.category,
                r.spec.kind.as_str(),
                r.spec.pattern.as_str(),
            )
        })
    }

    pub fn has_custom(&self) -> bool {
        !self.whole_rules.is_empty()
    }

    /// Findings in `text` for the categories in `cats`: sorted, non-overlapping, byte offsets.
    pub fn scan(&self, text: &str, cats: Categories) -> Vec<Finding> {
        // Name cues are plain words: with names on, the whole text needs the automaton.
        self.scan_with(text, cats, cats & Category::Names.bit() != 0)
    }

    /// `whole`: wake rules from all of the text instead of the prefilter's hot windows.
    pub fn scan_with(&self, text: &str, cats: Categories, whole: bool) -> Vec<Finding> {
        let mut wakes = Wakes::new(self, text, cats);
        let all = (0, text.len());
        // Where the pass runs: all of the text, its hot windows, or (no hot byte) nowhere.
        let hot = if whole {
            vec![all]
        } else if self.hyperscan_for(text) {
            if any_hot(text.as_bytes()) {
                vec![all]
            } else {
                Vec::new()
            }
        } else {
            hot_windows(text.as_bytes())
        };
        let cold = hot.is_empty();
        #[cfg(feature = "hyperscan")]
        let woken = match &self.hyperscan {
            // Should Hyperscan fail (no scratch memory), the automaton redoes the pass from scratch.
            Some(hs) if hot == [all] => {
                hs.for_each(text, |p, s, e| wakes.wake(p, s, e)).is_ok() || {
                    wakes = Wakes::new(self, text, cats);
                    false
                }
            }
            _ => false,
        };
        #[cfg(not(feature = "hyperscan"))]
        let woken = false;
        if !woken {
            let mut lanes = Vec::new();
            for (ws, we) in hot {
                self.wake_in(text, ws, we, &mut wakes, &mut lanes);
            }
        }
        let (windows, cues) = wakes.finish();
        let mut found = Vec::new();
        for (r, ws, we) in windows {
            if self.rules[r as usize].spec.near_cue {
                self.run_rule_near_cues(text, r, ws, we, &cues, &mut found);
            } else {
                self.run_rule(text, r, ws, we, &mut found);
            }
        }
        // Digits are hot bytes: a text the prefilter found cold has none.
        if !cold {
            self.run_digit_rules(text, cats, &mut found);
        }
        self.resolve(found)
    }

    /// The automaton's wake-ups in `text[ws..we]`, in the order one overlapping search reports them:
    /// the compact table's walk (`walk`), or the crate's search if the table could not be built.
    fn wake_in(
        &self,
        text: &str,
        ws: usize,
        we: usize,
        wakes: &mut Wakes<'_>,
        found: &mut Vec<Match>,
    ) {
        let Some(walk) = &self.walk else {
            self.wake_walk(text, ws, we, wakes);
            return;
        };
        walk.matches(text.as_bytes(), ws, we, found);
        for &(end, pid, start) in found.iter() {
            wakes.wake(pid as usize, start, end);
        }
    }

    /// The automaton's wake-ups in `text[ws..we]`, one overlapping search.
    fn wake_walk(&self, text: &str, ws: usize, we: usize, wakes: &mut Wakes<'_>) {
        let input = aho_corasick::Input::new(text).span(ws..we);
        let mut state = OverlappingState::start();
        // Unanchored overlapping search on a standard-semantics automaton cannot fail.
        while let Ok(()) = self.automaton.try_find_overlapping(&input, &mut state) {
            let Some(m) = state.get_match() else { break };
            wakes.wake(m.pattern().as_usize(), m.start(), m.end());
        }
    }

    /// The number-shaped rules: one window per rule per cluster of digits (as many digits as the rule
    /// needs), and in it the rule's regex anchored at its shape's anchors only. A search from a position
    /// finds the leftmost match after it, and every match starts at an anchor, so trying the anchors in
    /// order finds the same matches as searching the whole window.
    fn run_digit_rules(&self, text: &str, cats: Categories, found: &mut Vec<Finding>) {
        let enabled = |r: u16| cats & self.rules[r as usize].spec.category.bit() != 0;
        if !self.digit_rules.iter().any(|&(r, _)| enabled(r)) {
            return;
        }
        let Some(mut digits) = Digits::new(text.as_bytes()) else {
            return;
        };
        let clusters = digits.clusters();
        // Only the shapes of the rules some cluster has the digits for: prose with a number per
        // sentence (years, prices, dates) never asks for the card, SSN or phone shapes.
        let most = clusters.iter().map(|c| c.count).max().unwrap_or(0);
        let shapes = self
            .digit_rules
            .iter()
            .filter(|&&(r, _)| {
                enabled(r) && most >= u32::from(self.rules[r as usize].spec.min_digits)
            })
            .fold(0, |set, &(_, shape)| set | shape.bit());
        digits.only(shapes);
        for cluster in clusters {
            for &(r, shape) in &self.digit_rules {
                let Some((ws, we)) = self.digit_window(text, r, cluster) else {
                    continue;
                };
                if !enabled(r) {
                    continue;
                }
                let rule = &self.rules[r as usize];
                let anchors = digits.anchors(shape);
                let mut at = anchors.partition_point(|&a| a < ws);
                let mut slots = [None; 4];
                while let Some(&a) = anchors.get(at) {
                    if a >= we {
                        break;
                    }
                    at += 1;
                    let input = Input::new(text).span(a..we).anchored(Anchored::Yes);
                    if rule.regex.search_slots(&input, &mut slots[..2]).is_none() {
                        continue;
                    }
                    let next = self.candidate(text, r, &slots, found);
                    if next > we {
                        break;
                    }
                    at += anchors[at..].partition_point(|&a| a < next);
                }
            }
        }
    }

    /// A number-shaped rule's window around a cluster, if the cluster has the digits the rule needs. (Its
    /// cheap test is not run: every match passes it, and the anchors are the stricter test.)
    fn digit_window(&self, text: &str, r: u16, c: Cluster) -> Option<(usize, usize)> {
        let spec = &self.rules[r as usize].spec;
        if c.count < u32::from(spec.min_digits) {
            return None;
        }
        let ws = floor_boundary(text, c.first.saturating_sub(spec.back));
        let we = ceil_boundary(text, (c.end + DIGIT_TAIL).min(text.len()));
        Some((ws, we))
    }

    fn run_rule(&self, text: &str, r: u16, ws: usize, we: usize, found: &mut Vec<Finding>) {
        let rule = &self.rules[r as usize];
        let ws = floor_boundary(text, ws);
        let we = ceil_boundary(text, we);
        if !pre_passes(rule.spec.pre, &text.as_bytes()[ws..we]) {
            return;
        }
        let mut input = Input::new(text).span(ws..we);
        let mut slots = [None; 4];
        // Asking for a group's slots runs a capture engine after the DFAs; only grouped rules need it.
        let wanted = if rule.grouped { 4 } else { 2 };
        while input.start() <= input.end() {
            let Some(_) = rule.regex.search_slots(&input, &mut slots[..wanted]) else {
                break;
            };
            let next = self.candidate(text, r, &slots, found);
            if next > input.end() {
                break;
            }
            input.set_start(next);
        }
    }

    /// A `near_cue` rule's regex in its window `ws..we`, anchored at each key start (`key_start`) up to
    /// `back` bytes before each of its cues (`cues`: (rule, cue start), sorted). Every match starts at
    /// one of these, and a search from a position finds the leftmost match after it, so trying them in
    /// order finds what searching the whole window finds (the property tests check it), without reading
    /// the window's `span` bytes after a cue that starts no match.
    fn run_rule_near_cues(
        &self,
        text: &str,
        r: u16,
        ws: usize,
        we: usize,
        cues: &[(u16, usize)],
        found: &mut Vec<Finding>,
    ) {
        let rule = &self.rules[r as usize];
        let ws = floor_boundary(text, ws);
        let we = ceil_boundary(text, we);
        let bytes = text.as_bytes();
        // No `pre_passes` test: it reads the whole window, which an anchored regex that fails in a
        // few bytes does not (and it only ever skips windows without a match).
        let mut slots = [None; 4];
        let wanted = if rule.grouped { 4 } else { 2 };
        // Positions below `next` are tried or skipped.
        let mut next = ws;
        let from = cues.partition_point(|&(cr, c)| (cr, c) < (r, ws));
        for &(cr, c) in &cues[from..] {
            if cr != r || c >= we {
                break;
            }
            let mut a = c.saturating_sub(rule.spec.back).max(next);
            while a <= c {
                // A key start is an ASCII byte, so `a` is a char boundary.
                let input = || Input::new(text).span(a..we).anchored(Anchored::Yes);
                if key_start(bytes, a)
                    && rule
                        .regex
                        .search_slots(&input(), &mut slots[..wanted])
                        .is_some()
                {
                    next = self.candidate(text, r, &slots, found);
                    if next > we {
                        return;
                    }
                    a = next;
                } else {
                    a += 1;
                    next = a;
                }
            }
        }
    }

    /// Validates the match in `slots` (the value is the first group, if the rule has one), records it
    /// if valid, and says where the search goes on.
    fn candidate(
        &self,
        text: &str,
        r: u16,
        slots: &[Option<regex_automata::util::primitives::NonMaxUsize>; 4],
        found: &mut Vec<Finding>,
    ) -> usize {
        let rule = &self.rules[r as usize];
        let (ms, me) = (slots[0].unwrap().get(), slots[1].unwrap().get());
        let (vs, ve) = match (rule.grouped, slots[2], slots[3]) {
            (true, Some(s), Some(e)) => (s.get(), e.get()),
            _ => (ms, me),
        };
        // Our own placeholders are never values (so masking twice changes nothing); built-in
        // rules whose value class could swallow one check for it in their validator.
        let custom = rule.spec.category == Category::Custom;
        let valid = (ve > vs && !(custom && validate::is_mask_placeholder(&text[vs..ve])))
            .then(|| validate::run(rule.spec.check, text, vs, ve))
            .flatten();
        match valid {
            Some((s, e)) => {
                found.push(Finding {
                    start: s,
                    end: e,
                    rule: r,
                });
                me.max(e).max(ceil_boundary(text, ms + 1))
            }
            // A rejected candidate may hide a valid one inside it (`123-45-6788 4111 1111 …`):
            // retry from the next word start after its beginning.
            None => next_word(text, ms),
        }
    }

    /// Whether a text without person names gets Hyperscan's pass over all of it (if it has a hot byte)
    /// instead of the automaton over its windows.
    fn hyperscan_for(&self, text: &str) -> bool {
        #[cfg(feature = "hyperscan")]
        let built = self.hyperscan.is_some();
        #[cfg(not(feature = "hyperscan"))]
        let built = false;
        built && text.len() <= HYPERSCAN_TEXT_MAX
    }

    /// Sort, then keep the higher-priority (then longer) finding wherever two overlap.
    fn resolve(&self, mut found: Vec<Finding>) -> Vec<Finding> {
        if found.len() < 2 {
            return found;
        }
        let prio = |f: &Finding| self.rules[f.rule as usize].spec.priority;
        found.sort_by(|a, b| {
            a.start
                .cmp(&b.start)
                .then(prio(b).cmp(&prio(a)))
                .then(b.end.cmp(&a.end))
        });
        let mut kept: Vec<Finding> = Vec::with_capacity(found.len());
        for f in found {
            match kept.last_mut() {
                Some(last) if f.start < last.end => {
                    let better = prio(&f) > prio(last)
                        || (prio(&f) == prio(last) && f.end - f.start > last.end - last.start);
                    // Replacing must not make the new one overlap the finding before `last`.
                    if better {
                        *last = f;
                    }
                }
                _ => kept.push(f),
            }
        }
        kept
    }
}

/// The search the digit shapes replace, kept as the oracle of the property tests: every digit rule's
/// regex over its whole window around each cluster of digits.
#[cfg(test)]
impl Engine {
    pub(super) fn scan_searching_digit_windows(
        &self,
        text: &str,
        cats: Categories,
    ) -> Vec<Finding> {
        let mut wakes = Wakes::new(self, text, cats);
        for (ws, we) in hot_windows(text.as_bytes()) {
            self.wake_walk(text, ws, we, &mut wakes);
        }
        let mut found = Vec::new();
        for (r, ws, we) in wakes.finish().0 {
            self.run_rule(text, r, ws, we, &mut found);
        }
        let mut clusters: Vec<Cluster> = Vec::new();
        for (i, b) in text.bytes().enumerate() {
            if !b.is_ascii_digit() {
                continue;
            }
            match clusters.last_mut() {
                Some(c) if i <= c.end + super::digits::DIGIT_GAP => {
                    c.end = i + 1;
                    c.count += 1;
                }
                _ => clusters.push(Cluster {
                    first: i,
                    end: i + 1,
                    count: 1,
                }),
            }
        }
        for c in clusters {
            for &(r, _) in &self.digit_rules {
                let spec = &self.rules[r as usize].spec;
                if cats & spec.category.bit() != 0 && c.count >= u32::from(spec.min_digits) {
                    let we = (c.end + DIGIT_TAIL).min(text.len());
                    self.run_rule(text, r, c.first.saturating_sub(spec.back), we, &mut found);
                }
            }
        }
        self.resolve(found)
    }
}

/// The wake-up pass over the hot windows, its lanes or one walk (`Engine::wake_in`), for the property
/// tests: which rule runs on which window.
#[cfg(test)]
impl Engine {
    pub(super) fn wake_windows(
        &self,
        text: &str,
        cats: Categories,
        lanes: bool,
    ) -> Vec<(u16, usize, usize)> {
        let mut wakes = Wakes::new(self, text, cats);
        let mut found = Vec::new();
        for (ws, we) in hot_windows(text.as_bytes()) {
            if lanes {
                self.wake_in(text, ws, we, &mut wakes, &mut found);
            } else {
                self.wake_walk(text, ws, we, &mut wakes);
            }
        }
        wakes.finish().0
    }

    /// Every automaton match in `text[ws..we]` as (end, pattern, start): the compact table's walk, and
    /// the crate's overlapping search.
    pub(super) fn literal_matches(
        &self,
        text: &str,
        ws: usize,
        we: usize,
    ) -> (Vec<Match>, Vec<Match>) {
        let mut walked = Vec::new();
        self.walk
            .as_ref()
            .expect("the built-in automaton fits the compact table")
            .matches(text.as_bytes(), ws, we, &mut walked);
        let input = aho_corasick::Input::new(text).span(ws..we);
        let mut state = OverlappingState::start();
        let mut searched = Vec::new();
        while let Ok(()) = self.automaton.try_find_overlapping(&input, &mut state) {
            let Some(m) = state.get_match() else { break };
            searched.push((m.end(), m.pattern().as_u32(), m.start()));
        }
        (walked, searched)
    }
}

/// The wake-up pass's state: which rule runs on which window.
struct Wakes<'a> {
    engine: &'a Engine,
    text: &'a str,
    cats: Categories,
    /// (rule, window start, window end), ready to run.
    windows: Vec<(u16, usize, usize)>,
    /// The windows still growing with nearby wake-ups: (rule, start, end). A text wakes few rules, so a
    /// short list searched in place beats a slot per rule (which cost an allocation per scan).
    open: Vec<(u16, usize, usize)>,
    /// (rule, cue start) of each wake-up of a `near_cue` rule.
    cues: Vec<(u16, usize)>,
}

impl<'a> Wakes<'a> {
    fn new(engine: &'a Engine, text: &'a str, cats: Categories) -> Self {
        Self {
            engine,
            text,
            cats,
            windows: Vec::new(),
            open: Vec::new(),
            cues: Vec::new(),
        }
    }

    fn enabled(&self, r: u16) -> bool {
        self.cats & self.engine.rules[r as usize].spec.category.bit() != 0
    }

    fn wake(&mut self, pattern: usize, start: usize, end: usize) {
        let len = self.text.len();
        let bytes = self.text.as_bytes();
        let inside_word =
            start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        for &(r, exact) in &self.engine.wakes[pattern] {
            let literal = &bytes[start..end];
            if !self.enabled(r) || exact.is_some_and(|lit| literal != lit.as_bytes()) {
                continue;
            }
            let spec = &self.engine.rules[r as usize].spec;
            if spec.word && inside_word {
                continue;
            }
            if spec.near_cue {
                self.cues.push((r, start));
            }
            let ws = start.saturating_sub(spec.back);
            let we = start.saturating_add(spec.span).min(len);
            match self.open.iter_mut().find(|w| w.0 == r) {
                Some(w) if ws <= w.2 => *w = (r, w.1.min(ws), w.2.max(we)),
                Some(w) => {
                    self.windows.push(*w);
                    *w = (r, ws, we);
                }
                None => self.open.push((r, ws, we)),
            }
        }
    }

    /// The windows to run, and the sorted cues of the `near_cue` rules.
    #[allow(clippy::type_complexity)]
    fn finish(mut self) -> (Vec<(u16, usize, usize)>, Vec<(u16, usize)>) {
        // In rule order, as a slot per rule gave them (findings that tie on everything keep that order).
        self.open.sort_unstable_by_key(|w| w.0);
        self.windows.append(&mut self.open);
        for &r in &self.engine.whole_rules {
            if self.enabled(r) {
                self.windows.push((r, 0, self.text.len()));
            }
        }
        self.cues.sort_unstable();
        self.cues.dedup();
        (self.windows, self.cues)
    }
}

fn pre_passes(pre: Pre, w: &[u8]) -> bool {
    match pre {
        Pre::None => true,
        Pre::Byte(b) => memchr::memchr(b, w).is_some(),
        Pre::DottedDigits => w
            .windows(3)
            .any(|x| x[1] == b'.' && x[0].is_ascii_digit() && x[2].is_ascii_digit()),
        Pre::Colons => memchr::memchr_iter(b':', w).nth(1).is_some(),
        Pre::CountryCheck => w.windows(4).any(|x| {
            x[0].is_ascii_uppercase()
                && x[1].is_ascii_uppercase()
                && x[2].is_ascii_digit()
                && x[3].is_ascii_digit()
        }),
        Pre::Digit => w.iter().any(u8::is_ascii_digit),
        Pre::Assign => memchr::memchr2(b'=', b':', w).is_some(),
        Pre::TokenRun(n) => {
            let token = |b: &u8| b.is_ascii_alphanumeric() || b"+/_=.~-".contains(b);
            w.split(|b| !token(b))
                .any(|run| run.len() >= usize::from(n))
        }
    }
}

/// The first position after `i` that starts a word (follows a byte that is not alphanumeric).
fn next_word(text: &str, i: usize) -> usize {
    let b = text.as_bytes();
    let mut j = i + 1;
    while j < b.len() && b[j - 1].is_ascii_alphanumeric() {
        j += 1;
    }
    ceil_boundary(text, j)
}

pub fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

pub fn ceil_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Converts byte offsets to character offsets (what Python string indices count), in one pass.
pub fn char_offsets(text: &str, findings: &[Finding]) -> Vec<(usize, usize)> {
    if text.is_ascii() {
        return findings.iter().map(|f| (f.start, f.end)).collect();
    }
    let mut marks: Vec<usize> = findings.iter().flat_map(|f| [f.start, f.end]).collect();
    marks.sort_unstable();
    marks.dedup();
    let mut map = Vec::with_capacity(marks.len());
    let (mut chars, mut pos) = (0usize, 0usize);
    for &m in &marks {
        chars += text[pos..m].chars().count();
        pos = m;
        map.push(chars);
    }
    let at = |b: usize| map[marks.binary_search(&b).unwrap()];
    findings.iter().map(|f| (at(f.start), at(f.end))).collect()
}
