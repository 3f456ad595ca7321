//! `router._core`: the hot-path helpers of the router gateway.
//!
//! This file is only the registry of Python bindings; logic lives in one module per concept.
use pyo3::prelude::*;

pub mod balance;
pub mod eventstream;
pub mod json;
pub mod latency;
pub mod ledger;
pub mod native;
pub mod scan;
pub mod sessions;
pub mod sse;
pub mod transcode;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(json::py::json_fault, m)?)?;
    m.add_class::<sse::py::PySseEvent>()?;
    m.add_class::<sse::py::PySseParser>()?;
    m.add_class::<sse::py::PyStreamTap>()?;
    m.add_class::<transcode::py::PyTranscoder>()?;
    m.add_class::<transcode::py::PyAnswerScreen>()?;
    m.add_class::<eventstream::py::PyEventStreamDecoder>()?;
    m.add_class::<eventstream::py::PyEventStreamMessage>()?;
    m.add_class::<native::py::PyConverseStreamTranslator>()?;
    m.add_class::<native::py::PyGeminiStreamTranslator>()?;
    m.add_function(wrap_pyfunction!(
        eventstream::py::encode_event_stream_message,
        m
    )?)?;
    m.add(
        "EventStreamError",
        m.py().get_type::<eventstream::py::EventStreamError>(),
    )?;
    m.add_class::<balance::PyRendezvous>()?;
    m.add_class::<latency::PyLatencyTracker>()?;
    m.add_class::<ledger::PyBudgetSet>()?;
    m.add_class::<ledger::PyLedger>()?;
    m.add("LedgerFull", m.py().get_type::<ledger::LedgerFull>())?;
    m.add_class::<scan::py::PyGuardrails>()?;
    m.add_class::<scan::py::PyFinding>()?;
    m.add_class::<scan::py::PyMasker>()?;
    m.add_class::<scan::py::PySkipKeys>()?;
    m.add_class::<scan::py::PyStreamScanner>()?;
    m.add_class::<scan::py::PyActions>()?;
    m.add_class::<scan::py::PyDocumentScreen>()?;
    m.add_class::<scan::py::PyTriggers>()?;
    m.add_class::<scan::py::PyFindingCounts>()?;
    m.add_class::<sessions::py::PySessionIndex>()?;
    m.add_class::<sessions::py::PyTurn>()?;
    Ok(())
}
