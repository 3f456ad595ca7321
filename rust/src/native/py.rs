//! Python bindings: `ConverseStreamTranslator`, `GeminiStreamTranslator`.
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::converse::ConverseStream;
use super::gemini::GeminiStream;
use crate::eventstream::py::EventStreamError;

/// One ConverseStream answer → Anthropic Messages SSE bytes (see `native::converse`).
#[pyclass(name = "ConverseStreamTranslator", module = "router._core")]
pub struct PyConverseStreamTranslator(ConverseStream);

#[pymethods]
impl PyConverseStreamTranslator {
    /// `model_id` and `message_id` go into `message_start`; messages longer than `max_message_size` bytes
    /// are refused.
    #[new]
    #[pyo3(signature = (model_id, message_id, max_message_size = crate::eventstream::codec::MAX_MESSAGE))]
    fn new(model_id: String, message_id: String, max_message_size: usize) -> Self {
        Self(ConverseStream::new(model_id, message_id, max_message_size))
    }

    /// The Messages SSE of the events `chunk` completes; `EventStreamError` on broken framing or an event
    /// whose payload is not its JSON.
    fn feed<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self
            .0
            .feed(chunk)
            .map_err(|e| EventStreamError::new_err(e.to_string()))?;
        Ok(PyBytes::new(py, &out))
    }

    /// End of the body: `EventStreamError` if it stopped inside a message.
    fn finish(&mut self) -> PyResult<()> {
        self.0
            .finish()
            .map_err(|e| EventStreamError::new_err(e.to_string()))
    }

    /// The exception or error message that stopped the translation, once: `(type, payload)`.
    fn take_exception<'py>(
        &mut self,
        py: Python<'py>,
    ) -> Option<(Option<String>, Bound<'py, PyBytes>)> {
        self.0
            .take_exception()
            .map(|e| (e.kind, PyBytes::new(py, &e.payload)))
    }

    /// The answer ended normally (its `metadata` event was translated).
    #[getter]
    fn done(&self) -> bool {
        self.0.done()
    }
}

/// One Gemini streamGenerateContent answer (SSE bytes) → Anthropic Messages SSE bytes (see `native::gemini`).
#[pyclass(name = "GeminiStreamTranslator", module = "router._core")]
pub struct PyGeminiStreamTranslator(GeminiStream);

#[pymethods]
impl PyGeminiStreamTranslator {
    /// `model` goes into `message_start` when the chunks name no `modelVersion`; `message_id` is the
    /// message's id (its last 8 characters name tool calls that come without an id).
    #[new]
    fn new(model: String, message_id: String) -> Self {
        Self(GeminiStream::new(model, message_id))
    }

    /// The Messages SSE of the SSE events `chunk` completes; `ValueError` when one is not a
    /// GenerateContentResponse.
    fn feed<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.0.feed(chunk).map_err(|_| {
            PyValueError::new_err("a stream event is not a JSON GenerateContentResponse")
        })?;
        Ok(PyBytes::new(py, &out))
    }

    /// The closing events once the body ended, or b"" when no chunk said why the answer stopped.
    fn finish<'py>(&mut self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.finish())
    }
}
