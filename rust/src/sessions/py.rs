//! Python bindings of the session index.
use std::mem::MaybeUninit;

use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;
use pyo3::{ffi, PyErr};

use super::{Api, Index, Placement, Request};

/// A Python object's buffer of bytes, exported for as long as this is held: on the stack (a `PyBuffer` boxes
/// its view, one allocation per buffer per call), with the same checks.
struct Bytes {
    view: ffi::Py_buffer,
}

/// Formats of one-byte unsigned items (as `PyBuffer<u8>` accepts them): `B` and `c`, native or little-endian.
fn is_byte_format(format: &[u8]) -> bool {
    matches!(format, [b'B' | b'c'] | [b'@' | b'=' | b'<', b'B' | b'c'])
}

impl Bytes {
    fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut view = MaybeUninit::<ffi::Py_buffer>::uninit();
        // SAFETY: `view` is filled by a successful call, and released once (in `drop`) after that only.
        if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_FULL_RO) }
            == -1
        {
            return Err(PyErr::fetch(obj.py()));
        }
        let this = Self {
            view: unsafe { view.assume_init() },
        };
        let v = &this.view;
        let format = if v.format.is_null() {
            &b"B"[..]
        } else {
            // SAFETY: a NUL-terminated format string owned by the exported buffer.
            unsafe { std::ffi::CStr::from_ptr(v.format) }.to_bytes()
        };
        if v.shape.is_null() || v.strides.is_null() {
            return Err(PyBufferError::new_err("shape or strides is null"));
        }
        if v.itemsize != 1 || !is_byte_format(format) {
            return Err(PyBufferError::new_err(
                "buffer contents are not compatible with u8",
            ));
        }
        // SAFETY: a valid, exported view.
        if unsafe { ffi::PyBuffer_IsContiguous(v, b'C' as _) } == 0 {
            return Err(PyValueError::new_err("sessions need a contiguous buffer"));
        }
        Ok(this)
    }

    /// The bytes, borrowed for as long as the buffer is held.
    fn bytes(&self) -> &[u8] {
        // SAFETY: a contiguous buffer of `len` bytes, kept alive (and exported) by `self` for as long as the
        // returned slice, during which no Python code runs that could change it.
        unsafe { std::slice::from_raw_parts(self.view.buf.cast::<u8>(), self.view.len as usize) }
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        // SAFETY: held only while attached to the interpreter (a call's arguments), exported once.
        unsafe { ffi::PyBuffer_Release(&mut self.view) }
    }
}

impl<'py> FromPyObject<'_, 'py> for Bytes {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        Self::get(&obj)
    }
}

/// Where one request was placed, kept until its answer is known.
#[pyclass(name = "SessionTurn", module = "router._core", frozen)]
pub struct PyTurn {
    api: Api,
    conv: super::Conversation,
    placement: Placement,
}

#[pymethods]
impl PyTurn {
    #[getter]
    fn session_id(&self) -> &str {
        &self.placement.session
    }

    #[getter]
    fn branch(&self) -> u32 {
        self.placement.branch
    }

    #[getter]
    fn parent(&self) -> Option<&str> {
        self.placement.parent.as_deref()
    }
}

/// One worker's session index, bounded by `max_entries` states and `ttl_seconds` of idleness.
#[pyclass(name = "SessionIndex", module = "router._core")]
pub struct PySessionIndex {
    index: Index,
}

#[pymethods]
impl PySessionIndex {
    /// `resume=False` reads every conversation whole (the straightforward path, for comparison).
    #[new]
    #[pyo3(signature = (max_entries, ttl_seconds, prefix, *, resume = true))]
    fn new(max_entries: usize, ttl_seconds: f64, prefix: &str, resume: bool) -> PyResult<Self> {
        if max_entries == 0 || ttl_seconds.is_nan() || ttl_seconds <= 0.0 {
            return Err(PyValueError::new_err(
                "max_entries and ttl_seconds must be positive",
            ));
        }
        let index = Index::new(max_entries, ttl_seconds, prefix);
        Ok(Self {
            index: if resume {
                index
            } else {
                index.without_resume()
            },
        })
    }

    fn __len__(&self) -> usize {
        self.index.len()
    }

    /// Places a request: `system` (Messages `system`, Responses `instructions`) and `items` (messages, or
    /// the Responses input) as the client sent them (JSON). None when they cannot be read.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (api, key, user, system, items, request_id, explicit, previous, now))]
    fn place(
        &mut self,
        api: &str,
        key: &str,
        user: Option<&str>,
        system: Option<Bytes>,
        items: Option<Bytes>,
        request_id: &str,
        explicit: Option<&str>,
        previous: Option<&str>,
        now: f64,
    ) -> PyResult<Option<PyTurn>> {
        let api = Api::parse(api).ok_or_else(|| PyValueError::new_err("unknown api"))?;
        let user = user.unwrap_or("").as_bytes();
        let prior = previous.and_then(|p| self.index.previous_state(p, now));
        let mut conv = match prior {
            // A Responses request that names its previous response carries only what is new.
            Some(state) => self
                .index
                .conversation(&[key.as_bytes(), user, &state.to_le_bytes()]),
            None => self.index.conversation(&[key.as_bytes(), user]),
        };
        if let (Some(system), None) = (&system, prior) {
            if conv.system(system.bytes()).is_none() {
                return Ok(None);
            }
        }
        if let Some(items) = &items {
            if self.index.read(&mut conv, items.bytes(), now).is_none() {
                return Ok(None);
            }
        }
        let full = conv.finish();
        let req = Request {
            request_id,
            explicit,
            previous: prior.and(previous),
        };
        let placement = self.index.place(&conv, full, &req, now);
        Ok(Some(PyTurn {
            api,
            conv,
            placement,
        }))
    }

    /// Remembers the state after `turn`'s answer: `body` is the whole answer as the client got it.
    fn answered(&mut self, turn: &PyTurn, body: Bytes, now: f64) -> PyResult<bool> {
        let Some((state, response_id)) = turn.conv.answer(turn.api, body.bytes()) else {
            return Ok(false);
        };
        self.index
            .answered(&turn.placement, state, true, response_id.as_deref(), now);
        Ok(true)
    }

    /// Remembers a Responses id for `turn` when only that is known (a streamed answer).
    fn response_id(&mut self, turn: &PyTurn, response_id: &str, now: f64) {
        // The state after a streamed answer is unknown: a `previous_response_id` continues the request's own.
        let state = turn.conv.units.last().map_or(0, |u| u.1);
        self.index
            .answered(&turn.placement, state, false, Some(response_id), now);
    }
}
