//! Python bindings: `EventStreamDecoder`, `EventStreamMessage`, `encode_event_stream_message`.
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString};

use super::codec::{encode, Decoder, HeaderValue, Message};

create_exception!(
    _core,
    EventStreamError,
    PyValueError,
    "The AWS event stream is corrupt (bad CRC, length or header) or ended inside a message."
);

/// One decoded event-stream message (immutable).
#[pyclass(name = "EventStreamMessage", module = "router._core", frozen)]
pub struct PyEventStreamMessage(Message);

fn header_to_py<'py>(py: Python<'py>, v: &HeaderValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        HeaderValue::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        HeaderValue::Byte(n) => n.into_pyobject(py)?.into_any(),
        HeaderValue::Short(n) => n.into_pyobject(py)?.into_any(),
        HeaderValue::Int(n) => n.into_pyobject(py)?.into_any(),
        HeaderValue::Long(n) | HeaderValue::Timestamp(n) => n.into_pyobject(py)?.into_any(),
        HeaderValue::Bytes(b) => PyBytes::new(py, b).into_any(),
        HeaderValue::String(s) => PyString::new(py, s).into_any(),
        HeaderValue::Uuid(u) => PyBytes::new(py, u).into_any(),
    })
}

#[pymethods]
impl PyEventStreamMessage {
    /// Header name → value (str, bytes, bool or int; timestamps are epoch milliseconds, UUIDs 16 bytes).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, value) in &self.0.headers {
            d.set_item(name, header_to_py(py, value)?)?;
        }
        Ok(d)
    }

    #[getter]
    fn payload<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.payload)
    }

    /// `:message-type` (`event`, `exception` or `error`), if present.
    #[getter]
    fn message_type(&self) -> Option<&str> {
        self.0.header_str(":message-type")
    }

    /// `:event-type` for events, `:exception-type` for exceptions, `:error-code` for errors.
    #[getter]
    fn event_type(&self) -> Option<&str> {
        self.0
            .header_str(":event-type")
            .or_else(|| self.0.header_str(":exception-type"))
            .or_else(|| self.0.header_str(":error-code"))
    }

    fn __repr__(&self) -> String {
        format!(
            "EventStreamMessage(event_type={:?}, headers={}, payload={} bytes)",
            self.event_type(),
            self.0.headers.len(),
            self.0.payload.len()
        )
    }
}

/// Incremental AWS event-stream decoder.
#[pyclass(name = "EventStreamDecoder", module = "router._core")]
pub struct PyEventStreamDecoder(Decoder);

#[pymethods]
impl PyEventStreamDecoder {
    #[new]
    #[pyo3(signature = (max_message_size = super::codec::MAX_MESSAGE))]
    fn new(max_message_size: usize) -> Self {
        Self(Decoder::new(max_message_size))
    }

    fn feed(&mut self, py: Python<'_>, chunk: &[u8]) -> PyResult<Vec<PyEventStreamMessage>> {
        let decoder = &mut self.0;
        let result = py.detach(|| decoder.feed(chunk));
        match result {
            Ok(msgs) => Ok(msgs.into_iter().map(PyEventStreamMessage).collect()),
            Err(e) => Err(EventStreamError::new_err(e.to_string())),
        }
    }

    fn finish(&mut self) -> PyResult<()> {
        self.0.finish().map_err(|e| EventStreamError::new_err(e.to_string()))
    }

    #[getter]
    fn buffered(&self) -> usize {
        self.0.buffered()
    }

    #[getter]
    fn max_message_size(&self) -> usize {
        self.0.max_message()
    }
}

fn header_from_py(v: &Bound<'_, PyAny>) -> PyResult<HeaderValue> {
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(HeaderValue::Bool(b.is_true()));
    }
    if v.is_instance_of::<PyInt>() {
        // Ints travel as the 8-byte `long`: the decoder accepts every integer width.
        return Ok(HeaderValue::Long(v.extract()?));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(HeaderValue::String(s.to_str()?.to_owned()));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(HeaderValue::Bytes(b.as_bytes().to_vec()));
    }
    Err(PyTypeError::new_err("header values must be str, bytes, bool or int"))
}

/// Encode one message: `headers` maps names to str, bytes, bool or int (sent as an 8-byte long).
#[pyfunction]
pub fn encode_event_stream_message<'py>(
    py: Python<'py>,
    headers: &Bound<'py, PyDict>,
    payload: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let mut hs = Vec::with_capacity(headers.len());
    for (k, v) in headers.iter() {
        hs.push((k.extract::<String>()?, header_from_py(&v)?));
    }
    let wire = encode(&hs, payload).map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(PyBytes::new(py, &wire))
}
