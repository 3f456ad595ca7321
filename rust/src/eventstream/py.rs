//! Python bindings: `EventStreamDecoder`, `EventStreamMessage`, `encode_event_stream_message`.
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyInt, PyString};

use super::codec::{encode, parse_headers, scan_headers, Decoder, HeaderValue};

create_exception!(
    _core,
    EventStreamError,
    PyValueError,
    "The AWS event stream is corrupt (bad CRC, length or header) or ended inside a message."
);

/// One decoded event-stream message (immutable). The event and message types and the payload are Python
/// objects from the start (the stream loop reads nothing else); the headers are parsed on demand.
#[pyclass(name = "EventStreamMessage", module = "router._core", frozen)]
pub struct PyEventStreamMessage {
    headers: Vec<u8>,
    event_type: Option<Py<PyString>>,
    message_type: Option<Py<PyString>>,
    payload: Py<PyBytes>,
}

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
        let parsed =
            parse_headers(&self.headers).map_err(|e| EventStreamError::new_err(e.to_string()))?;
        for (name, value) in &parsed {
            d.set_item(name, header_to_py(py, value)?)?;
        }
        Ok(d)
    }

    #[getter]
    fn payload(&self, py: Python<'_>) -> Py<PyBytes> {
        self.payload.clone_ref(py)
    }

    /// `:message-type` (`event`, `exception` or `error`), if present.
    #[getter]
    fn message_type(&self, py: Python<'_>) -> Option<Py<PyString>> {
        self.message_type.as_ref().map(|s| s.clone_ref(py))
    }

    /// `:event-type` for events, `:exception-type` for exceptions, `:error-code` for errors.
    #[getter]
    fn event_type(&self, py: Python<'_>) -> Option<Py<PyString>> {
        self.event_type.as_ref().map(|s| s.clone_ref(py))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let kind = self.event_type.as_ref().map(|s| s.bind(py).to_string());
        format!(
            "EventStreamMessage(event_type={:?}, payload={} bytes)",
            kind,
            self.payload.bind(py).as_bytes().len()
        )
    }
}

/// Event and message type names repeat on every message: one Python string each, made once per decoder.
const MAX_INTERNED: usize = 64;

/// Incremental AWS event-stream decoder.
#[pyclass(name = "EventStreamDecoder", module = "router._core")]
pub struct PyEventStreamDecoder {
    decoder: Decoder,
    interned: Vec<(Vec<u8>, Py<PyString>)>,
}

fn intern(py: Python<'_>, cache: &mut Vec<(Vec<u8>, Py<PyString>)>, value: &[u8]) -> Py<PyString> {
    if let Some((_, s)) = cache.iter().find(|(k, _)| k == value) {
        return s.clone_ref(py);
    }
    // scan_headers checked that string values are UTF-8.
    let s = PyString::new(py, std::str::from_utf8(value).unwrap_or("")).unbind();
    if cache.len() < MAX_INTERNED {
        cache.push((value.to_vec(), s.clone_ref(py)));
    }
    s
}

impl PyEventStreamDecoder {
    /// Decode `chunk`, handing each message's headers block, types (interned) and payload to `sink`.
    fn decode(
        &mut self,
        py: Python<'_>,
        chunk: &[u8],
        mut sink: impl FnMut(&[u8], Option<Py<PyString>>, Option<Py<PyString>>, Py<PyBytes>),
    ) -> PyResult<()> {
        let interned = &mut self.interned;
        let result = self.decoder.feed_raw(chunk, |headers, payload| {
            let (mut event, mut exception, mut error, mut message) = (None, None, None, None);
            scan_headers(headers, |h| {
                if h.tag == 7 {
                    match h.name {
                        b":event-type" => event = Some(h.value),
                        b":exception-type" => exception = Some(h.value),
                        b":error-code" => error = Some(h.value),
                        b":message-type" => message = Some(h.value),
                        _ => {}
                    }
                }
                Ok(())
            })?;
            let kind = event.or(exception).or(error);
            sink(
                headers,
                message.map(|m| intern(py, interned, m)),
                kind.map(|k| intern(py, interned, k)),
                PyBytes::new(py, payload).unbind(),
            );
            Ok(())
        });
        result.map_err(|e| EventStreamError::new_err(e.to_string()))
    }
}

#[pymethods]
impl PyEventStreamDecoder {
    #[new]
    #[pyo3(signature = (max_message_size = super::codec::MAX_MESSAGE))]
    fn new(max_message_size: usize) -> Self {
        Self {
            decoder: Decoder::new(max_message_size),
            interned: Vec::new(),
        }
    }

    fn feed(&mut self, py: Python<'_>, chunk: &[u8]) -> PyResult<Vec<PyEventStreamMessage>> {
        let mut out = Vec::new();
        self.decode(py, chunk, |headers, message_type, event_type, payload| {
            out.push(PyEventStreamMessage {
                headers: headers.to_vec(),
                event_type,
                message_type,
                payload,
            })
        })?;
        Ok(out)
    }

    /// The stream loop's fast path: `(message_type, event_type, payload)` per message, no header dicts.
    #[allow(clippy::type_complexity)]
    fn feed_events(
        &mut self,
        py: Python<'_>,
        chunk: &[u8],
    ) -> PyResult<Vec<(Option<Py<PyString>>, Option<Py<PyString>>, Py<PyBytes>)>> {
        let mut out = Vec::new();
        self.decode(py, chunk, |_, message_type, event_type, payload| {
            out.push((message_type, event_type, payload))
        })?;
        Ok(out)
    }

    fn finish(&mut self) -> PyResult<()> {
        self.decoder
            .finish()
            .map_err(|e| EventStreamError::new_err(e.to_string()))
    }

    #[getter]
    fn buffered(&self) -> usize {
        self.decoder.buffered()
    }

    #[getter]
    fn max_message_size(&self) -> usize {
        self.decoder.max_message()
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
    Err(PyTypeError::new_err(
        "header values must be str, bytes, bool or int",
    ))
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
