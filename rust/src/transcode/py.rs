//! Python binding of the stream transcoder.
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::{Api, Options, Prices, Transcoder};

const _: () = assert!(std::mem::align_of::<Transcoder>() <= 16);

/// One stream's translation from an upstream wire format to the caller's.
#[pyclass(name = "Transcoder", module = "router._core")]
pub struct PyTranscoder(Transcoder);

fn api(name: &str) -> PyResult<Api> {
    Api::parse(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "unknown API {name:?}: expected 'chat', 'messages' or 'responses'"
        ))
    })
}

#[pymethods]
impl PyTranscoder {
    #[new]
    #[pyo3(signature = (
        upstream, caller, model, created, input_tokens = 0, include_usage = true, json_tool = None, prices = None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        upstream: &str,
        caller: &str,
        model: String,
        created: u64,
        input_tokens: u64,
        include_usage: bool,
        json_tool: Option<String>,
        prices: Option<(f64, f64, f64)>,
    ) -> PyResult<Self> {
        let options = Options {
            model,
            created,
            input_tokens_estimate: input_tokens,
            include_usage,
            json_tool,
            prices: prices.map(|(input, output, cached_input)| Prices {
                input,
                output,
                cached_input,
            }),
        };
        Ok(Self(Transcoder::new(api(upstream)?, api(caller)?, options)))
    }

    fn feed<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.feed(chunk))
    }

    fn fail<'py>(&mut self, py: Python<'py>, kind: &str, message: &str) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.fail(kind, message))
    }

    #[getter]
    fn deltas(&self) -> u64 {
        self.0.progress().deltas
    }

    #[getter]
    fn done(&self) -> bool {
        self.0.progress().done
    }

    #[getter]
    fn malformed(&self) -> bool {
        self.0.progress().malformed
    }

    #[getter]
    fn error(&self) -> Option<(String, String)> {
        self.0.error().map(|(k, m)| (k.to_owned(), m.to_owned()))
    }

    /// Names of the tools the model called, in order.
    #[getter]
    fn tool_names(&self) -> Vec<&str> {
        self.0.tool_names()
    }

    #[getter]
    fn prompt_tokens(&self) -> Option<u64> {
        self.0.usage().prompt_total()
    }

    #[getter]
    fn completion_tokens(&self) -> Option<u64> {
        self.0.usage().output
    }

    #[getter]
    fn cached_tokens(&self) -> Option<u64> {
        self.0.usage().cache_read
    }

    #[getter]
    fn cache_creation_tokens(&self) -> Option<u64> {
        self.0.usage().cache_write
    }

    #[getter]
    fn reasoning_tokens(&self) -> Option<u64> {
        self.0.usage().reasoning
    }
}
