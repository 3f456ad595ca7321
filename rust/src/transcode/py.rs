//! Python binding of the stream transcoder.
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::screen::{ChatEvent, Screen};
use super::{Api, Citation, Options, Prices, Transcoder};
use crate::scan::py::{categories, tally, PyGuardrails, PyMasker};
use crate::scan::{Categories, Engine};
use crate::sse::{SseEvent, SseParser};

const _: () = assert!(
    std::mem::align_of::<Transcoder>() <= 16 && std::mem::align_of::<PyAnswerScreen>() <= 16
);

/// Guardrails on one answer: hold-back scanners for each of its texts, one placeholder numbering.
///
/// Either handed to a `Transcoder` (which then screens what it forwards), or used on the chat proxy's
/// stream of whole chunk events with `feed_chat`.
#[pyclass(name = "AnswerScreen", module = "router._core")]
pub struct PyAnswerScreen {
    screen: Option<Screen>,
    parser: SseParser,
    events: Vec<SseEvent>,
}

impl PyAnswerScreen {
    fn with(
        engine: Arc<Engine>,
        cats: Categories,
        masker: Option<PyRef<'_, PyMasker>>,
        restore: bool,
    ) -> Self {
        let request = masker.map(|m| m.masker.clone());
        Self {
            screen: Some(Screen::new(engine, cats, request, restore)),
            parser: SseParser::new(),
            events: Vec::new(),
        }
    }

    fn screen(&mut self) -> PyResult<&mut Screen> {
        self.screen.as_mut().ok_or_else(|| {
            PyValueError::new_err("this AnswerScreen was handed to a Transcoder or StreamTap")
        })
    }

    /// The screen, for a Transcoder or a StreamTap to own (one per stream).
    pub(crate) fn take(&mut self) -> PyResult<Screen> {
        self.screen.take().ok_or_else(|| {
            PyValueError::new_err(
                "this AnswerScreen was already handed to a Transcoder or StreamTap",
            )
        })
    }
}

#[pymethods]
impl PyAnswerScreen {
    /// `masker`: the request's, whose numbering the answer continues; `restore`: put its values back where
    /// the answer echoes their placeholders.
    #[new]
    #[pyo3(signature = (guardrails, categories = None, masker = None, restore = false))]
    fn new(
        guardrails: PyRef<'_, PyGuardrails>,
        categories: Option<Vec<String>>,
        masker: Option<PyRef<'_, PyMasker>>,
        restore: bool,
    ) -> PyResult<Self> {
        let engine = guardrails.engine.clone();
        let cats = self::categories(&engine, categories)?;
        Ok(Self::with(engine, cats, masker, restore))
    }

    /// With the engine and categories of `blank` (a policy's empty masker): no category list to convert
    /// for every answer.
    #[staticmethod]
    #[pyo3(signature = (blank, masker = None, restore = false))]
    fn like(
        blank: PyRef<'_, PyMasker>,
        masker: Option<PyRef<'_, PyMasker>>,
        restore: bool,
    ) -> Self {
        Self::with(blank.engine.clone(), blank.cats, masker, restore)
    }

    /// OpenAI chat chunk events in (whole events, as the StreamTap forwards them), screened events out.
    fn feed_chat<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        self.parser.feed_into(chunk, &mut self.events);
        let events = std::mem::take(&mut self.events);
        let chat: Vec<ChatEvent> = events.iter().map(ChatEvent::of).collect();
        let mut out = Vec::with_capacity(chunk.len() + 64);
        self.screen()?.chat(&chat, &mut out);
        drop(chat);
        self.events = events;
        self.events.clear();
        Ok(PyBytes::new(py, &out))
    }

    /// The chat stream ended without `[DONE]`: a chunk with the text still held back, masked.
    fn finish_chat<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::new();
        self.screen()?.chat_finish(&mut out);
        Ok(PyBytes::new(py, &out))
    }

    /// Findings since the last call, as (category, type, count); never the values.
    fn take_found(&mut self) -> PyResult<Vec<(&'static str, String, usize)>> {
        Ok(tally(&self.screen()?.take_found()))
    }

    /// Whether `take_found` has anything (cheap: checked after every chunk).
    #[getter]
    fn has_findings(&self) -> bool {
        self.screen.as_ref().is_some_and(Screen::has_new_findings)
    }
}

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
        upstream, caller, model, created, input_tokens = 0, include_usage = true, json_tool = None, prices = None,
        screen = None
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
        screen: Option<PyRefMut<'_, PyAnswerScreen>>,
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
        let mut transcoder = Transcoder::new(api(upstream)?, api(caller)?, options);
        if let Some(mut screen) = screen {
            transcoder = transcoder.with_screen(screen.take()?);
        }
        Ok(Self(transcoder))
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

    fn feed<'py>(&mut self, py: Python<'py>, chunk: &[u8]) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.feed(chunk))
    }

    /// `url_citation`s (url, title, start, end) with offsets in characters into the answer's text so far,
    /// from a searching upstream's events: Responses callers get them as annotations of the open message.
    fn annotate<'py>(
        &mut self,
        py: Python<'py>,
        notes: Vec<(String, String, usize, usize)>,
    ) -> Bound<'py, PyBytes> {
        let notes: Vec<Citation> = notes
            .into_iter()
            .map(|(url, title, start, end)| Citation {
                url,
                title,
                start,
                end,
            })
            .collect();
        PyBytes::new(py, &self.0.annotate(&notes))
    }

    /// A web search the upstream ran: Responses callers get a `web_search_call` item.
    fn search_call<'py>(&mut self, py: Python<'py>, query: &str) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0.search_call(query))
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
