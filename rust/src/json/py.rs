//! Python binding of the request-body check: `json_fault(body, max_depth)`.
use pyo3::prelude::*;

use super::{fault, Fault};

/// Why `data` is not one JSON text nested at most `max_depth` levels deep, as `(kind, byte offset)` with kind
/// `"utf8"`, `"depth"` or `"syntax"`; None when it is one.
#[pyfunction]
pub fn json_fault(data: &[u8], max_depth: usize) -> Option<(&'static str, usize)> {
    fault(data, max_depth).map(|(kind, at)| {
        let name = match kind {
            Fault::Utf8 => "utf8",
            Fault::Depth => "depth",
            Fault::Syntax => "syntax",
        };
        (name, at)
    })
}
