//! Python bindings: `Guardrails` (a compiled engine), `Finding`, `Masker`, `StreamScanner`, and the
//! bookkeeping of what they find: `Actions`, `Triggers` and `FindingCounts`.
use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyString};

use super::engine::char_offsets;
use super::json::{mask_json, SkipKeys};
use super::triggers::{Actions, Counts, Direction, Triggers};
use super::{
    parse_categories, Categories, Category, Engine, Masker, StreamScanner, DEFAULT_CATEGORIES,
};

/// One sensitive value found in a text: character offsets (Python string indices), never the value.
#[pyclass(name = "Finding", module = "router._core", frozen, eq, get_all)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyFinding {
    category: &'static str,
    #[pyo3(name = "type")]
    kind: String,
    start: usize,
    end: usize,
}

#[pymethods]
impl PyFinding {
    fn __repr__(&self) -> String {
        format!(
            "Finding(category={:?}, type={:?}, start={}, end={})",
            self.category, self.kind, self.start, self.end
        )
    }
}

pub(crate) fn categories(engine: &Engine, names: Option<Vec<String>>) -> PyResult<Categories> {
    match names {
        None if engine.has_custom() => Ok(DEFAULT_CATEGORIES),
        None => Ok(DEFAULT_CATEGORIES & !Category::Custom.bit()),
        Some(names) => parse_categories(&names).map_err(PyValueError::new_err),
    }
}

/// (category, type, count) for each type found, in the order first found: what `Actions.record` counts in
/// the metrics and the request's audit trail, one entry per type however many values (never the values).
pub(crate) fn tally<'a>(
    found: impl IntoIterator<Item = &'a (Category, String)>,
) -> Vec<(&'static str, String, usize)> {
    let mut out: Vec<(&'static str, String, usize)> = Vec::new();
    for (category, kind) in found {
        let name = category.name();
        match out.iter_mut().find(|(c, k, _)| *c == name && k == kind) {
            Some(entry) => entry.2 += 1,
            None => out.push((name, kind.clone(), 1)),
        }
    }
    out
}

pub(crate) fn found_list(masker: &Masker) -> Vec<(&'static str, String)> {
    masker
        .found
        .iter()
        .map(|(c, k)| (c.name(), k.clone()))
        .collect()
}

/// The compiled guardrail engine: built-in rules plus optional custom (name, regex) patterns.
#[pyclass(name = "Guardrails", module = "router._core", frozen)]
pub struct PyGuardrails {
    pub(crate) engine: Arc<Engine>,
}

#[pymethods]
impl PyGuardrails {
    #[new]
    #[pyo3(signature = (custom = Vec::new()))]
    fn new(custom: Vec<(String, String)>) -> PyResult<Self> {
        let engine = Engine::new(&custom).map_err(PyValueError::new_err)?;
        Ok(Self {
            engine: Arc::new(engine),
        })
    }

    #[pyo3(signature = (text, categories = None))]
    fn scan(&self, text: &str, categories: Option<Vec<String>>) -> PyResult<Vec<PyFinding>> {
        let cats = self::categories(&self.engine, categories)?;
        let findings = self.engine.scan(text, cats);
        let offsets = char_offsets(text, &findings);
        Ok(findings
            .iter()
            .zip(offsets)
            .map(|(f, (start, end))| PyFinding {
                category: self.engine.category(f.rule).name(),
                kind: self.engine.kind(f.rule).to_owned(),
                start,
                end,
            })
            .collect())
    }

    #[pyo3(signature = (text, categories = None))]
    fn mask<'py>(
        &self,
        text: &Bound<'py, PyString>,
        categories: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyString>> {
        let cats = self::categories(&self.engine, categories)?;
        let s = text.to_str()?;
        let findings = self.engine.scan(s, cats);
        if findings.is_empty() {
            return Ok(text.clone());
        }
        let out = Masker::default().apply(&self.engine, s, &findings);
        Ok(PyString::new(text.py(), &out))
    }

    /// A masker that numbers placeholders consistently across several texts (one request).
    #[pyo3(signature = (categories = None))]
    fn masker(&self, categories: Option<Vec<String>>) -> PyResult<PyMasker> {
        Ok(PyMasker {
            engine: self.engine.clone(),
            cats: self::categories(&self.engine, categories)?,
            masker: Masker::default(),
        })
    }

    /// `masker`: continue that masker's numbering (its placeholders keep their numbers).
    #[pyo3(signature = (categories = None, masker = None))]
    fn stream(
        &self,
        categories: Option<Vec<String>>,
        masker: Option<PyRef<'_, PyMasker>>,
    ) -> PyResult<PyStreamScanner> {
        let cats = self::categories(&self.engine, categories)?;
        let state = masker.map(|m| m.masker.clone()).unwrap_or_default();
        Ok(PyStreamScanner(StreamScanner::new(
            self.engine.clone(),
            cats,
            state,
        )))
    }

    /// Every (category, type) this engine can report.
    fn types(&self) -> Vec<(&'static str, String)> {
        self.engine
            .types()
            .into_iter()
            .map(|(c, k)| (c.name(), k.to_owned()))
            .collect()
    }

    /// Every rule as (category, type, regex source), for documentation and side-by-side benchmarks.
    fn rules(&self) -> Vec<(&'static str, String, String)> {
        self.engine
            .rules()
            .map(|(c, k, p)| (c.name(), k.to_owned(), p.to_owned()))
            .collect()
    }

    #[staticmethod]
    fn categories() -> Vec<&'static str> {
        Category::ALL.iter().map(|c| c.name()).collect()
    }
}

/// Masks several texts with one placeholder numbering; records what it masked (never the values).
#[pyclass(name = "Masker", module = "router._core")]
pub struct PyMasker {
    pub(crate) engine: Arc<Engine>,
    pub(crate) cats: Categories,
    pub(crate) masker: Masker,
}

#[pymethods]
impl PyMasker {
    /// An empty masker with this one's engine and categories: the next request's, without parsing a
    /// category list again (that conversion was most of `Guardrails.masker`'s cost).
    fn fresh(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            cats: self.cats,
            masker: Masker::default(),
        }
    }

    fn mask<'py>(&mut self, text: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyString>> {
        let s = text.to_str()?;
        let findings = self.engine.scan(s, self.cats);
        if findings.is_empty() {
            return Ok(text.clone());
        }
        let out = self.masker.apply(&self.engine, s, &findings);
        Ok(PyString::new(text.py(), &out))
    }

    /// The JSON document `data` (bytes, or any buffer such as `msgspec.Raw`) with the values in its text
    /// strings masked (every string `skip` does not set aside), or None if there was nothing to mask. ValueError if the document is one the walk does not handle: the caller decodes it instead.
    fn mask_json<'py>(
        &mut self,
        py: Python<'py>,
        data: PyBuffer<u8>,
        skip: &PySkipKeys,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if !data.is_c_contiguous() {
            return Err(PyValueError::new_err("mask_json needs a contiguous buffer"));
        }
        // SAFETY: a contiguous buffer of `len_bytes` bytes, kept alive (and exported) by `data` for
        // the duration of this call, during which no Python code runs that could change it.
        let bytes =
            unsafe { std::slice::from_raw_parts(data.buf_ptr().cast::<u8>(), data.len_bytes()) };
        let text = std::str::from_utf8(bytes)
            .map_err(|_| PyValueError::new_err("mask_json: the document is not UTF-8"))?;
        match mask_json(&self.engine, self.cats, &mut self.masker, text, &skip.0) {
            Some(masked) => Ok(masked.map(|m| PyBytes::new(py, &m))),
            None => Err(PyValueError::new_err(
                "mask_json: a document this walk does not handle (escaped key, deep nesting, not JSON)",
            )),
        }
    }

    #[getter]
    fn found(&self) -> Vec<(&'static str, String)> {
        found_list(&self.masker)
    }

    /// How many values were masked so far.
    #[getter]
    fn found_count(&self) -> usize {
        self.masker.found.len()
    }

    /// (category, type, count) of the values masked after the first `since`, one entry per type.
    #[pyo3(signature = (since = 0))]
    fn tally(&self, since: usize) -> Vec<(&'static str, String, usize)> {
        tally(self.masker.found.get(since..).unwrap_or_default())
    }

    /// (placeholder, original value) for every value masked so far: for restoring echoed placeholders.
    fn placeholders(&self) -> Vec<(String, String)> {
        self.masker.placeholders()
    }
}

/// Which strings `Masker.mask_json` does not read (see `scan::json::SkipKeys`): built once.
#[pyclass(name = "SkipKeys", module = "router._core", frozen)]
pub struct PySkipKeys(SkipKeys);

#[pymethods]
impl PySkipKeys {
    #[new]
    #[pyo3(signature = (skip, whole = Vec::new()))]
    fn new(skip: Vec<String>, whole: Vec<String>) -> Self {
        Self(SkipKeys::new(skip, whole))
    }
}

/// Streaming masker: `feed` returns what is safe to send now, `finish` the rest.
#[pyclass(name = "StreamScanner", module = "router._core")]
pub struct PyStreamScanner(StreamScanner);

#[pymethods]
impl PyStreamScanner {
    fn feed(&mut self, text: &str) -> String {
        self.0.feed(text)
    }

    fn finish(&mut self) -> String {
        self.0.finish()
    }

    #[getter]
    fn held(&self) -> usize {
        self.0.held()
    }

    #[getter]
    fn found(&self) -> Vec<(&'static str, String)> {
        found_list(&self.0.masker)
    }
}

fn category(name: &str) -> PyResult<Category> {
    Category::parse(name)
        .ok_or_else(|| PyValueError::new_err(format!("unknown guardrail category {name:?}")))
}

/// A policy's actions: which categories, and which custom pattern types, block instead of masking.
#[pyclass(name = "Actions", module = "router._core", frozen)]
pub struct PyActions(Actions);

#[pymethods]
impl PyActions {
    #[new]
    fn new(blocking: Vec<String>, blocked_custom: Vec<String>) -> PyResult<Self> {
        Ok(Self(Actions {
            blocking: parse_categories(&blocking).map_err(PyValueError::new_err)?,
            blocked_custom,
        }))
    }

    /// "block" or "mask".
    fn action(&self, category: &str, kind: &str) -> PyResult<&'static str> {
        Ok(self.0.of(self::category(category)?, kind).name())
    }

    /// Count a scanner's tally, (category, type, count) per type, in `counts` and in the request's
    /// `triggers` (None outside a request); the categories that block, sorted (empty: all masked).
    fn record(
        &self,
        tally: Vec<(PyBackedStr, PyBackedStr, u64)>,
        direction: &str,
        counts: &PyFindingCounts,
        mut triggers: Option<PyRefMut<'_, PyTriggers>>,
    ) -> PyResult<Vec<&'static str>> {
        let direction = Direction::parse(direction)
            .ok_or_else(|| PyValueError::new_err(format!("unknown direction {direction:?}")))?;
        let mut parsed = Vec::with_capacity(tally.len());
        for (c, kind, n) in &tally {
            parsed.push((self::category(c)?, &**kind, *n));
        }
        let blocked = self.0.record(
            parsed,
            direction,
            &counts.0,
            triggers.as_deref_mut().map(|t| &mut t.0),
        );
        Ok(blocked.into_iter().map(Category::name).collect())
    }
}

/// One request's guardrail triggers (its audit trail), written with its usage row.
#[pyclass(name = "Triggers", module = "router._core")]
#[derive(Default)]
pub struct PyTriggers(Triggers);

#[pymethods]
impl PyTriggers {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// `[[direction, category, type, action, count], ...]` as JSON text, or None when nothing was found.
    fn encoded(&self) -> Option<String> {
        self.0.encoded()
    }
}

/// A worker's count of values found, per category, direction and action (the findings metric).
#[pyclass(name = "FindingCounts", module = "router._core", frozen)]
#[derive(Default)]
pub struct PyFindingCounts(Counts);

#[pymethods]
impl PyFindingCounts {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// (category, direction, action, count) for every non-zero count.
    fn items(&self) -> Vec<(&'static str, &'static str, &'static str, u64)> {
        self.0
            .items()
            .into_iter()
            .map(|(c, d, a, n)| (c.name(), d.name(), a.name(), n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_each_type_once_in_the_order_first_found() {
        let found = [
            (Category::Pii, "EMAIL".to_owned()),
            (Category::Pci, "CARD".to_owned()),
            (Category::Pii, "EMAIL".to_owned()),
            (Category::Pii, "PHONE".to_owned()),
        ];
        assert_eq!(
            tally(&found),
            [
                ("pii", "EMAIL".to_owned(), 2),
                ("pci", "CARD".to_owned(), 1),
                ("pii", "PHONE".to_owned(), 1)
            ]
        );
        assert!(tally(&[]).is_empty());
    }
}
