//! The detector: a byte pass finds the hot windows (`prefilter`), one Aho-Corasick automaton of token
//! prefixes, cue words and digits runs over them and wakes rules up, each rule's regex then runs on a
//! small window around its wake-up points, and validators check the candidates.
//!
//! Clean prose costs the byte pass plus a few tiny automaton and regex runs around digits and punctuation.
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Input, PatternID};

use super::prefilter::hot_windows;
use super::rules::{builtin, Pre, RuleSpec, Trigger};
use super::validate::{self, Check};
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

/// What one automaton pattern wakes up.
enum Wake {
    Rules(Vec<(u16, Option<&'static str>)>),
    Digit,
}

pub struct Engine {
    automaton: AhoCorasick,
    wakes: Vec<Wake>,
    rules: Vec<Rule>,
    digit_rules: Vec<u16>,
    whole_rules: Vec<u16>,
}

/// Digits closer than this belong to one cluster (one window per digit rule).
const DIGIT_GAP: usize = 16;
/// After a cluster's last digit, how far a digit rule's match may still reach (IBAN letter groups).
const DIGIT_TAIL: usize = 12;

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
        Self::assemble(rules)
    }

    fn assemble(rules: Vec<Rule>) -> Result<Self, String> {
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
                                wakes.push(Wake::Rules(Vec::new()));
                                literals.len() - 1
                            }
                        };
                        if let Wake::Rules(v) = &mut wakes[slot] {
                            v.push((id, exact.then_some(lit)));
                        }
                    }
                }
                Trigger::Digit => digit_rules.push(id),
                Trigger::Whole => whole_rules.push(id),
            }
        }
        for d in b'0'..=b'9' {
            literals.push((d as char).to_string());
            wakes.push(Wake::Digit);
        }
        let automaton = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&literals)
            .map_err(|e| e.to_string())?;
        Ok(Self {
            automaton,
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

    /// `whole`: run the automaton over all of the text instead of the prefilter's hot windows.
    pub(crate) fn scan_with(&self, text: &str, cats: Categories, whole: bool) -> Vec<Finding> {
        let enabled = |r: u16| cats & self.rules[r as usize].spec.category.bit() != 0;
        let len = text.len();
        let mut windows: Vec<(u16, usize, usize)> = Vec::new();
        let mut open: Vec<(usize, usize)> = vec![(usize::MAX, 0); self.rules.len()];
        let mut cluster: Option<(usize, usize, u32)> = None; // first digit, last digit end, digit count
        let mut wake = |m: aho_corasick::Match| match &self.wakes[m.pattern().as_usize()] {
            Wake::Digit => {
                let p = m.start();
                cluster = match cluster {
                    Some((s, e, n)) if p <= e + DIGIT_GAP => Some((s, p + 1, n + 1)),
                    Some(done) => {
                        self.digit_windows(done, len, &enabled, &mut windows);
                        Some((p, p + 1, 1))
                    }
                    None => Some((p, p + 1, 1)),
                };
            }
            Wake::Rules(rules) => {
                for &(r, exact) in rules {
                    if !enabled(r) || exact.is_some_and(|lit| &text[m.start()..m.end()] != lit) {
                        continue;
                    }
                    let spec = &self.rules[r as usize].spec;
                    let ws = m.start().saturating_sub(spec.back);
                    let we = m.start().saturating_add(spec.span).min(len);
                    let w = &mut open[r as usize];
                    if w.0 != usize::MAX && ws <= w.1 {
                        *w = (w.0.min(ws), w.1.max(we));
                    } else {
                        if w.0 != usize::MAX {
                            windows.push((r, w.0, w.1));
                        }
                        *w = (ws, we);
                    }
                }
            }
        };
        if whole {
            self.automaton
                .find_overlapping_iter(text)
                .for_each(&mut wake);
        } else {
            for (ws, we) in hot_windows(text.as_bytes()) {
                let input = aho_corasick::Input::new(text).span(ws..we);
                self.automaton
                    .find_overlapping_iter(input)
                    .for_each(&mut wake);
            }
        }
        if let Some(done) = cluster {
            self.digit_windows(done, len, &enabled, &mut windows);
        }
        for (r, w) in open.iter().enumerate() {
            if w.0 != usize::MAX {
                windows.push((r as u16, w.0, w.1));
            }
        }
        for &r in &self.whole_rules {
            if enabled(r) {
                windows.push((r, 0, len));
            }
        }
        let mut found = Vec::new();
        for (r, ws, we) in windows {
            self.run_rule(text, r, ws, we, &mut found);
        }
        self.resolve(found)
    }

    fn digit_windows(
        &self,
        (first, last_end, count): (usize, usize, u32),
        len: usize,
        enabled: &impl Fn(u16) -> bool,
        windows: &mut Vec<(u16, usize, usize)>,
    ) {
        for &r in &self.digit_rules {
            let spec = &self.rules[r as usize].spec;
            if enabled(r) && count >= u32::from(spec.min_digits) {
                let we = (last_end + DIGIT_TAIL).min(len);
                windows.push((r, first.saturating_sub(spec.back), we));
            }
        }
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
        while input.start() <= input.end() {
            let Some(_) = rule.regex.search_slots(&input, &mut slots) else {
                break;
            };
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
            let next = match valid {
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
            };
            if next > input.end() {
                break;
            }
            input.set_start(next);
        }
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
