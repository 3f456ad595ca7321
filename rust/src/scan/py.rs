//! Python bindings: `Guardrails` (a compiled engine), `Finding`, `Masker`, `StreamScanner`, and the
//! bookkeeping of what they find: `Actions`, `Triggers` and `FindingCounts`.
use std::sync::Arc;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedStr;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};

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
fn counted(found: &[(Category, String)]) -> Vec<(Category, &str, u64)> {
    let mut out: Vec<(Category, &str, u64)> = Vec::new();
    for (category, kind) in found {
        match out.iter_mut().find(|(c, k, _)| c == category && k == kind) {
            Some(entry) => entry.2 += 1,
            None => out.push((*category, kind, 1)),
        }
    }
    out
}

/// `counted`, named for Python.
pub(crate) fn tally(found: &[(Category, String)]) -> Vec<(&'static str, String, usize)> {
    counted(found)
        .into_iter()
        .map(|(c, k, n)| (c.name(), k.to_owned(), n as usize))
        .collect()
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
        let masked = mask_document(&self.engine, self.cats, &mut self.masker, &data, &skip.0)?;
        Ok(masked.map(|m| PyBytes::new(py, &m)))
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

/// A policy's screen of whole JSON documents, a unary request's text fields or a unary answer: one call
/// masks them, counts what was found (metrics and the request's audit trail) and returns the categories
/// that block. Under load each Python frame and call into Rust costs a microsecond or more with cold
/// caches; the five calls this replaces (a fresh masker, the walk, its tally, the record, wrapping the
/// result) cost more than the walk itself.
#[pyclass(name = "DocumentScreen", module = "router._core", frozen)]
pub struct PyDocumentScreen {
    engine: Arc<Engine>,
    cats: Categories,
    actions: Actions,
    request_keys: SkipKeys,
    answer_keys: SkipKeys,
    /// What a masked request field is stored as (msgspec.Raw: the request is re-encoded from its fields).
    raw: Py<PyAny>,
}

/// `data`'s bytes, borrowed for as long as the buffer is held.
fn buffer_bytes(data: &PyBuffer<u8>) -> PyResult<&[u8]> {
    if !data.is_c_contiguous() {
        return Err(PyValueError::new_err("mask_json needs a contiguous buffer"));
    }
    // SAFETY: a contiguous buffer of `len_bytes` bytes, kept alive (and exported) by `data` for as long as
    // the returned slice, during which no Python code runs that could change it.
    Ok(unsafe { std::slice::from_raw_parts(data.buf_ptr().cast::<u8>(), data.len_bytes()) })
}

/// `data` with its text masked by `masker` (None: nothing found); ValueError if the walk cannot read it.
fn mask_document(
    engine: &Engine,
    cats: Categories,
    masker: &mut Masker,
    data: &PyBuffer<u8>,
    keys: &SkipKeys,
) -> PyResult<Option<Vec<u8>>> {
    let text = std::str::from_utf8(buffer_bytes(data)?)
        .map_err(|_| PyValueError::new_err("mask_json: the document is not UTF-8"))?;
    mask_json(engine, cats, masker, text, keys).ok_or_else(|| {
        PyValueError::new_err(
            "mask_json: a document this walk does not handle (escaped key, deep nesting, not JSON)",
        )
    })
}

impl PyDocumentScreen {
    /// Count the values `masker` found after the first `since`; the categories that block, by name.
    fn record(
        &self,
        masker: &Masker,
        since: usize,
        direction: Direction,
        counts: &PyFindingCounts,
        triggers: Option<PyRefMut<'_, PyTriggers>>,
    ) -> Vec<&'static str> {
        let mut triggers = triggers;
        let found = masker.found.get(since..).unwrap_or_default();
        self.actions
            .record(
                counted(found),
                direction,
                &counts.0,
                triggers.as_deref_mut().map(|t| &mut t.0),
            )
            .into_iter()
            .map(Category::name)
            .collect()
    }
}

#[pymethods]
impl PyDocumentScreen {
    /// `masker`: the policy's blank masker (its engine and categories); `request_keys`/`answer_keys`: the
    /// strings each direction sets aside; `raw`: the type a masked request field is stored as.
    #[new]
    fn new(
        masker: &PyMasker,
        actions: &PyActions,
        request_keys: &PySkipKeys,
        answer_keys: &PySkipKeys,
        raw: Py<PyAny>,
    ) -> Self {
        Self {
            engine: masker.engine.clone(),
            cats: masker.cats,
            actions: actions.0.clone(),
            request_keys: request_keys.0.clone(),
            answer_keys: answer_keys.0.clone(),
            raw,
        }
    }

    /// Mask the text of the request fields `names` of `fields` in place, with one numbering; count what
    /// was found. Returns the masker (None if nothing was found) and the categories that block. A field
    /// is replaced only once every field has been read: ValueError (a document the walk does not handle)
    /// leaves `fields` as it was, for the caller to mask it decoded. `names` is the caller's tuple, its
    /// strings used as the keys (their hashes cached), not converted: most of an API's text fields are
    /// absent from a given request, and each is then one hash probe, nothing more.
    fn request<'py>(
        &self,
        fields: &Bound<'py, PyDict>,
        names: &Bound<'py, PyTuple>,
        counts: &PyFindingCounts,
        triggers: Option<PyRefMut<'_, PyTriggers>>,
    ) -> PyResult<(Option<PyMasker>, Vec<&'static str>)> {
        let mut masker = Masker::default();
        let mut masked = Vec::new();
        for name in names.iter() {
            let Some(raw) = fields.get_item(&name)? else {
                continue;
            };
            let data = PyBuffer::<u8>::get(&raw)?;
            if let Some(out) = mask_document(
                &self.engine,
                self.cats,
                &mut masker,
                &data,
                &self.request_keys,
            )? {
                masked.push((name, out));
            }
        }
        // Every value found is replaced by a placeholder: nothing changed, nothing was found.
        if masked.is_empty() {
            return Ok((None, Vec::new()));
        }
        let py = fields.py();
        for (name, out) in masked {
            fields.set_item(name, self.raw.bind(py).call1((PyBytes::new(py, &out),))?)?;
        }
        let blocked = self.record(&masker, 0, Direction::Request, counts, triggers);
        let masker = PyMasker {
            engine: self.engine.clone(),
            cats: self.cats,
            masker,
        };
        Ok((Some(masker), blocked))
    }

    /// A unary answer `data` with its text masked (None: nothing found), and the categories that block.
    /// `request`: the request's masker, whose numbering the answer continues. ValueError: a document the
    /// walk does not handle, for the caller to mask decoded.
    #[pyo3(signature = (data, counts, triggers, request = None))]
    fn answer<'py>(
        &self,
        py: Python<'py>,
        data: PyBuffer<u8>,
        counts: &PyFindingCounts,
        triggers: Option<PyRefMut<'_, PyTriggers>>,
        request: Option<PyRefMut<'_, PyMasker>>,
    ) -> PyResult<(Option<Bound<'py, PyBytes>>, Vec<&'static str>)> {
        let mut own = Masker::default();
        let mut request = request;
        let masker = match request.as_deref_mut() {
            Some(r) => &mut r.masker,
            None => &mut own,
        };
        let since = masker.found.len();
        let Some(out) = mask_document(&self.engine, self.cats, masker, &data, &self.answer_keys)?
        else {
            return Ok((None, Vec::new()));
        };
        let blocked = self.record(masker, since, Direction::Response, counts, triggers);
        Ok((Some(PyBytes::new(py, &out)), blocked))
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
