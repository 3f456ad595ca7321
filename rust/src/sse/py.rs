//! Python bindings for the SSE parser and the stream tap.
use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{SseEvent, SseParser, StreamTap};
use crate::scan::py::tally;
use crate::transcode::py::PyAnswerScreen;

// PyO3 embeds the Rust value in a Python object that is only 16-byte aligned.
const _: () =
    assert!(std::mem::align_of::<SseParser>() <= 16 && std::mem::align_of::<StreamTap>() <= 16);

/// One dispatched server-sent event (immutable).
#[pyclass(name = "SseEvent", module = "router._core", frozen, eq, get_all)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PySseEvent {
    event: Option<String>,
    data: String,
    id: Option<String>,
    retry: Option<u64>,
}

impl From<SseEvent> for PySseEvent {
    fn from(e: SseEvent) -> Self {
        Self {
            event: e.event,
            data: e.data,
            id: e.id,
            retry: e.retry,
        }
    }
}

#[pymethods]
impl PySseEvent {
    #[new]
    #[pyo3(signature = (data, event = None, id = None, retry = None))]
    fn new(data: String, event: Option<String>, id: Option<String>, retry: Option<u64>) -> Self {
        Self {
            event,
            data,
            id,
            retry,
        }
    }

    fn __repr__(&self) -> String {
        fn opt<T: std::fmt::Debug>(v: &Option<T>) -> String {
            v.as_ref()
                .map_or_else(|| "None".to_owned(), |v| format!("{v:?}"))
        }
        format!(
            "SseEvent(data={:?}, event={}, id={}, retry={})",
            self.data,
            opt(&self.event),
            opt(&self.id),
            opt(&self.retry)
        )
    }
}

/// Incremental WHATWG event-stream parser.
#[pyclass(name = "SseParser", module = "router._core")]
pub struct PySseParser(SseParser);

#[pymethods]
impl PySseParser {
    #[new]
    fn new() -> Self {
        Self(SseParser::new())
    }

    fn feed(&mut self, chunk: &[u8]) -> Vec<PySseEvent> {
        self.0.feed(chunk).into_iter().map(Into::into).collect()
    }

    fn finish(&mut self) -> Vec<PySseEvent> {
        self.0.finish().into_iter().map(Into::into).collect()
    }

    #[getter]
    fn last_event_id(&self) -> Option<&str> {
        self.0.last_event_id()
    }

    #[getter]
    fn reconnection_time(&self) -> Option<u64> {
        self.0.reconnection_time()
    }
}

/// Raw-byte forwarder and observer of an OpenAI-style chunk stream.
#[pyclass(name = "StreamTap", module = "router._core")]
pub struct PyStreamTap(StreamTap);

#[pymethods]
impl PyStreamTap {
    #[new]
    #[pyo3(signature = (strip_usage_chunk = false, screen = None))]
    fn new(
        strip_usage_chunk: bool,
        screen: Option<PyRefMut<'_, PyAnswerScreen>>,
    ) -> PyResult<Self> {
        let tap = StreamTap::new(strip_usage_chunk);
        Ok(Self(match screen {
            Some(mut screen) => tap.with_screen(screen.take()?),
            None => tap,
        }))
    }

    /// Guardrail findings since the last call, as (category, type, count); never the values.
    fn take_found(&mut self) -> Vec<(&'static str, String, usize)> {
        tally(&self.0.take_found())
    }

    /// Whether `take_found` has anything (cheap: checked after every chunk).
    #[getter]
    fn has_findings(&self) -> bool {
        self.0.has_new_findings()
    }

    fn feed<'py>(&mut self, chunk: &Bound<'py, PyBytes>) -> Bound<'py, PyBytes> {
        let bytes = chunk.as_bytes();
        match self.0.feed(bytes) {
            // The whole chunk goes through unchanged: hand back the same object, no copy.
            Cow::Borrowed(out) if out.len() == bytes.len() => chunk.clone(),
            out => PyBytes::new(chunk.py(), &out),
        }
    }

    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.finish())
    }

    #[getter]
    fn strip_usage_chunk(&self) -> bool {
        self.0.strip_usage_chunk()
    }

    #[getter]
    fn data_events(&self) -> u64 {
        self.0.data_events()
    }

    #[getter]
    fn done(&self) -> bool {
        self.0.done()
    }

    #[getter]
    fn usage<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.0.usage().map(|b| PyBytes::new(py, b))
    }

    #[getter]
    fn error<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.0.error().map(|b| PyBytes::new(py, b))
    }

    #[getter]
    fn model(&self) -> Option<&str> {
        self.0.model()
    }

    /// Names of the tools the model called, in order.
    #[getter]
    fn tool_names(&self) -> Vec<&str> {
        self.0.tool_names().iter().map(String::as_str).collect()
    }

    #[getter]
    fn malformed(&self) -> bool {
        self.0.malformed()
    }
}
