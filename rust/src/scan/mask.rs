//! Placeholders: each value becomes `[TYPE_N]`, the same value always the same N within one masker
//! (one request, or one response stream), so the model still sees which mentions are the same.
use std::collections::HashMap;
use std::fmt::Write;

use super::{Category, Engine, Finding};

#[derive(Default, Clone)]
pub struct Masker {
    numbers: HashMap<(String, String), u32>,
    counters: HashMap<String, u32>,
    /// Every masked occurrence, in order: (category, type). Never the value.
    pub found: Vec<(Category, String)>,
}

impl Masker {
    fn number(&mut self, kind: &str, value: &str) -> u32 {
        if let Some(&n) = self.numbers.get(&(kind.to_owned(), value.to_owned())) {
            return n;
        }
        let next = self.counters.entry(kind.to_owned()).or_insert(0);
        *next += 1;
        let n = *next;
        self.numbers.insert((kind.to_owned(), value.to_owned()), n);
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
        self.numbers.len()
    }

    /// Every placeholder handed out and the value it stands for (to restore echoed placeholders).
    pub fn placeholders(&self) -> Vec<(String, String)> {
        self.numbers
            .iter()
            .map(|((kind, value), n)| (format!("[{kind}_{n}]"), value.clone()))
            .collect()
    }

    pub fn apply(&mut self, engine: &Engine, text: &str, findings: &[Finding]) -> String {
        let mut out = String::with_capacity(text.len() + 16 * findings.len());
        self.apply_into(engine, text, findings, &mut out);
        out
    }
}
