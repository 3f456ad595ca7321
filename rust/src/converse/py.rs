//! Python binding: `ConverseStreamTranslator`.
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::ConverseStream;
use crate::eventstream::py::EventStreamError;

/// One ConverseStream answer → Anthropic Messages SSE bytes (see the module docs).
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
