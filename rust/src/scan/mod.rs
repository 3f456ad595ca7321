//! Guardrail scanner: finds PII, card, banking, financial and secret values in text, masks them with
//! typed numbered placeholders, and does both on streams without ever emitting a partial match.
//!
//! `prefilter` finds the hot windows of a text (`hyperscan`, behind the feature of that name, is the
//! alternative wake-up pass), `walk` walks the wake-up automaton over them, `engine` is the detector,
//! `rules` the built-in rule table, `digits` the shapes of the number-shaped rules, `validate` the
//! checksums and filters, `mask` the placeholder numbering, `json` masking the strings of a JSON
//! document, `stream` the hold-back scanner, `triggers` what was done with what was found (audit and
//! metric counts); `py` holds the bindings.
pub mod digits;
pub mod engine;
#[cfg(feature = "hyperscan")]
pub mod hyperscan;
pub mod json;
pub mod mask;
pub mod prefilter;
pub mod py;
pub mod rules;
pub mod stream;
pub mod triggers;
pub mod validate;
pub mod walk;

pub use engine::{Engine, Finding, Wakeup};
pub use mask::Masker;
pub use stream::StreamScanner;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Pii,
    Pci,
    Banking,
    Secrets,
    Financial,
    /// Person names: a PII sub-type, opt-in because context cues are far less precise than checksums.
    Names,
    Custom,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Pii,
        Category::Pci,
        Category::Banking,
        Category::Secrets,
        Category::Financial,
        Category::Names,
        Category::Custom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Pii => "pii",
            Category::Pci => "pci",
            Category::Banking => "banking",
            Category::Secrets => "secrets",
            Category::Financial => "financial",
            Category::Names => "names",
            Category::Custom => "custom",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of categories as a bit mask.
pub type Categories = u8;

/// What `categories=None` means: everything but the opt-in person names.
pub const DEFAULT_CATEGORIES: Categories = !(1 << (Category::Names as u8));

/// Parse category names; the error names the unknown one and lists the valid ones.
pub fn parse_categories<S: AsRef<str>>(names: &[S]) -> Result<Categories, String> {
    names.iter().try_fold(0, |acc, n| {
        let n = n.as_ref();
        Category::parse(n).map(|c| acc | c.bit()).ok_or_else(|| {
            let valid: Vec<_> = Category::ALL.iter().map(|c| c.name()).collect();
            format!(
                "unknown guardrail category {n:?}; expected one of {}",
                valid.join(", ")
            )
        })
    })
}

#[cfg(test)]
mod tests;
