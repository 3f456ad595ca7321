//! Python bindings of the session index.
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::{Api, Conversation, Index, Placement, Request};

/// `data`'s bytes, borrowed for as long as the buffer is held.
fn bytes_of(data: &PyBuffer<u8>) -> PyResult<&[u8]> {
    if !data.is_c_contiguous() {
        return Err(PyValueError::new_err("sessions need a contiguous buffer"));
    }
    // SAFETY: a contiguous buffer of `len_bytes` bytes, kept alive (and exported) by `data` for as long as
    // the returned slice, during which no Python code runs that could change it.
    Ok(unsafe { std::slice::from_raw_parts(data.buf_ptr().cast::<u8>(), data.len_bytes()) })
}

/// Where one request was placed, kept until its answer is known.
#[pyclass(name = "SessionTurn", module = "router._core", frozen)]
pub struct PyTurn {
    api: Api,
    conv: Conversation,
    placement: Placement,
    request_id: String,
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
        system: Option<PyBuffer<u8>>,
        items: Option<PyBuffer<u8>>,
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
            Some(state) => Conversation::new(&[key.as_bytes(), user, &state.to_le_bytes()]),
            None => Conversation::new(&[key.as_bytes(), user]),
        };
        if let (Some(system), None) = (&system, prior) {
            if conv.system(bytes_of(system)?).is_none() {
                return Ok(None);
            }
        }
        if let Some(items) = &items {
            if self.index.read(&mut conv, bytes_of(items)?, now).is_none() {
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
            request_id: request_id.to_owned(),
        }))
    }

    /// Remembers the state after `turn`'s answer: `body` is the whole answer as the client got it.
    fn answered(&mut self, turn: &PyTurn, body: PyBuffer<u8>, now: f64) -> PyResult<bool> {
        let Some((state, response_id)) = turn.conv.answer(turn.api, bytes_of(&body)?) else {
            return Ok(false);
        };
        self.index.answered(
            &turn.placement,
            &turn.request_id,
            state,
            true,
            response_id.as_deref(),
            now,
        );
        Ok(true)
    }

    /// Remembers a Responses id for `turn` when only that is known (a streamed answer).
    fn response_id(&mut self, turn: &PyTurn, response_id: &str, now: f64) {
        // The state after a streamed answer is unknown: a `previous_response_id` continues the request's own.
        let state = turn.conv.units.last().map_or(0, |u| u.1);
        self.index.answered(
            &turn.placement,
            &turn.request_id,
            state,
            false,
            Some(response_id),
            now,
        );
    }
}
