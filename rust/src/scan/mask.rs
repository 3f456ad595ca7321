//! Placeholders: each value becomes `[TYPE_N]`, the same value always the same N within one masker
//! (one request, or one response stream), so the model still sees which mentions are the same.
use std::collections::HashMap;
use std::fmt::Write;

use super::{Category, Engine, Finding};

#[derive(Default, Clone)]
pub struct Masker {
    /// Per type, each value's number (numbers count up from 1 per type). Nested so that a lookup borrows
    /// the type and value instead of building an owned key for each.
    numbers: HashMap<String, HashMap<String, u32>>,
    /// Every masked occurrence, in order: (category, type). Never the value.
    pub found: Vec<(Category, String)>,
}

impl Masker {
    fn number(&mut self, kind: &str, value: &str) -> u32 {
        if !self.numbers.contains_key(kind) {
            self.numbers.insert(kind.to_owned(), HashMap::new());
        }
        let values = self.numbers.get_mut(kind).expect("inserted above");
        if let Some(&n) = values.get(value) {
            return n;
        }
        let n = u32::try_from(values.len() + 1).unwrap_or(u32::MAX);
        values.insert(value.to_owned(), n);
        n
    }

    /// Write `text` into `out` with every finding (sorted, non-overlapping, byte offsets) replaced.
    pub fn apply_into(
        &mut self,
        engine: &Engine,
        text: &str,
        findings: &[Finding],
        out: &mut String,
    ) {
        let mut last = 0;
        for f in findings {
            out.push_str(&text[last..f.start]);
            let kind = engine.kind(f.rule);
            let n = self.number(kind, &text[f.start..f.end]);
            let _ = write!(out, "[{kind}_{n}]");
            self.found.push((engine.category(f.rule), kind.to_owned()));
            last = f.end;
        }
        out.push_str(&text[last..]);
    }

    /// How many distinct values have a placeholder.
    pub fn distinct(&self) -> usize {
        self.numbers.values().map(HashMap::len).sum()
    }

    /// Every placeholder handed out and the value it stands for (to restore echoed placeholders).
    pub fn placeholders(&self) -> Vec<(String, String)> {
        self.numbers
            .iter()
            .flat_map(|(kind, values)| {
                values
                    .iter()
                    .map(move |(value, n)| (format!("[{kind}_{n}]"), value.clone()))
            })
            .collect()
    }

    pub fn apply(&mut self, engine: &Engine, text: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(text.len() + 16 * findings.len());
        self.apply_into(engine, text, findings, &mut out);
        out
    }
}
