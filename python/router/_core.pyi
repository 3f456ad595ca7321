"""Hot-path helpers of the router gateway, implemented in Rust (`rust/src`)."""

from collections.abc import Buffer, Sequence
from typing import Any, Self, final

__all__ = [
    "AnswerScreen",
    "BudgetSet",
    "ConverseStreamTranslator",
    "EventStreamDecoder",
    "EventStreamError",
    "EventStreamMessage",
    "Finding",
    "GeminiStreamTranslator",
    "Guardrails",
    "LatencyTracker",
    "Ledger",
    "LedgerFull",
    "Masker",
    "Rendezvous",
    "SseEvent",
    "SseParser",
    "StreamScanner",
    "StreamTap",
    "Transcoder",
    "__version__",
    "encode_event_stream_message",
]

__version__: str

class EventStreamError(ValueError):
    """The AWS event stream is corrupt (bad CRC, length or header) or ended inside a message."""

@final
class EventStreamMessage:
    """One decoded AWS event-stream message. Immutable."""

    @property
    def headers(self) -> dict[str, str | bytes | bool | int]:
        """Header name → value; timestamps are epoch milliseconds, UUIDs 16 bytes."""
    @property
    def payload(self) -> bytes: ...
    @property
    def message_type(self) -> str | None:
        """`:message-type`: `event`, `exception` or `error`."""
    @property
    def event_type(self) -> str | None:
        """`:event-type`, else `:exception-type`, else `:error-code`."""

@final
class EventStreamDecoder:
    """Incremental AWS event-stream decoder (`application/vnd.amazon.eventstream`, Bedrock's streams).

    Feed chunks split anywhere; both CRC32s (prelude and message) are checked and messages longer than
    `max_message_size` (at most AWS's 16 MiB) are refused from their prelude. Any error is sticky.
    """

    def __new__(cls, max_message_size: int = 16777216) -> Self: ...
    def feed(self, chunk: bytes) -> list[EventStreamMessage]:
        """Decode the messages this chunk completes; raises EventStreamError on a corrupt stream."""
    def feed_events(self, chunk: bytes) -> list[tuple[str | None, str | None, bytes]]:
        """Like `feed`, as `(message_type, event_type, payload)` tuples: the stream loop's fast path."""
    def finish(self) -> None:
        """End of stream: raises EventStreamError if it stopped inside a message. Resets the decoder."""
    @property
    def buffered(self) -> int:
        """Bytes received that are not yet part of a complete message."""
    @property
    def max_message_size(self) -> int: ...

def encode_event_stream_message(headers: dict[str, str | bytes | bool | int], payload: bytes) -> bytes:
    """Encode one event-stream message (ints are sent as 8-byte longs)."""

@final
class ConverseStreamTranslator:
    """One Bedrock ConverseStream answer (AWS event-stream bytes) → Anthropic Messages SSE bytes, in one pass.

    Frames are checked as `EventStreamDecoder` checks them; an `exception` or `error` message stops the
    translation and is kept for `take_exception`.
    """

    def __new__(cls, model_id: str, message_id: str, max_message_size: int = 16777216) -> Self: ...
    def feed(self, chunk: bytes) -> bytes:
        """The Messages SSE of the events this chunk completes; raises EventStreamError on a corrupt stream or
        an event whose payload is not the JSON its type promises."""
    def finish(self) -> None:
        """End of the body: raises EventStreamError if it stopped inside a message."""
    def take_exception(self) -> tuple[str | None, bytes] | None:
        """The exception or error message that stopped the translation, once: `(type, payload)`."""
    @property
    def done(self) -> bool:
        """The answer ended normally (its `metadata` event was translated)."""

@final
class GeminiStreamTranslator:
    """One Gemini streamGenerateContent answer (SSE bytes) → Anthropic Messages SSE bytes, in one pass.

    Grounding metadata is not translated: grounded (Google Search) answers take the Python translator.
    """

    def __new__(cls, model: str, message_id: str) -> Self: ...
    def feed(self, chunk: bytes) -> bytes:
        """The Messages SSE of the SSE events this chunk completes; raises ValueError when one is not a JSON
        GenerateContentResponse."""
    def finish(self) -> bytes:
        """The closing events once the body ended, or b"" when no chunk said why the answer stopped."""

@final
class SseEvent:
    """One dispatched server-sent event. Immutable."""

    @property
    def event(self) -> str | None:
        """The `event:` field; None when absent or empty (the default type "message")."""
    @property
    def data(self) -> str:
        """The event's `data:` lines joined with a newline."""
    @property
    def id(self) -> str | None:
        """The last event ID seen in the stream so far (it persists across events)."""
    @property
    def retry(self) -> int | None:
        """The valid `retry:` value (milliseconds) given in this event's block, if any."""
    def __new__(cls, data: str, event: str | None = None, id: str | None = None, retry: int | None = None) -> Self: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...

@final
class SseParser:
    """Incremental WHATWG event-stream parser: feed network chunks of any size, get whole events back."""

    def __new__(cls) -> Self: ...
    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Parse one chunk; return the events it completes (partial lines are carried over)."""
    def finish(self) -> list[SseEvent]:
        """End of stream: discard an unterminated event (per spec, so always []) and reset the parser."""
    @property
    def last_event_id(self) -> str | None:
        """The last event ID buffer (what a reconnecting client sends as Last-Event-ID)."""
    @property
    def reconnection_time(self) -> int | None:
        """The last valid `retry:` value, including from blocks that dispatched no event."""

@final
class StreamTap:
    """Forwards an OpenAI-style SSE stream's raw bytes event by event, and observes it on the way.

    With `strip_usage_chunk`, the usage-only chunk (`"choices": []` with a `usage` object) is
    recorded but removed from the forwarded bytes.

    Every data event but the `[DONE]` terminator must be JSON (clients such as the openai SDK parse
    each one): at the first that is not, the tap stops forwarding for good (see `malformed`).

    With a `screen` (taken over: one per stream), every chunk's texts go out through its hold-back
    scanners in the same call (see `AnswerScreen.feed_chat`); unchanged events still go out byte for byte.
    """

    def __new__(cls, strip_usage_chunk: bool = False, screen: AnswerScreen | None = None) -> Self: ...
    def feed(self, chunk: bytes) -> bytes:
        """Return the raw bytes of every event this chunk completes (possibly `chunk` itself); keep the tail.

        Only the events before a malformed data event are returned; once `malformed`, always b"".
        """
    def finish(self) -> bytes:
        """End of stream: return the unterminated tail as received (it is not observed); b"" once `malformed`.

        With a screen, the tail is dropped instead and a chunk with the text still held back (masked) is returned."""
    def take_found(self) -> list[tuple[str, str, int]]:
        """The screen's findings since the last call, (category, type, count) per type; never the values."""
    @property
    def has_findings(self) -> bool:
        """Whether `take_found` has anything."""
    @property
    def strip_usage_chunk(self) -> bool: ...
    @property
    def data_events(self) -> int:
        """Dispatched events with data, not counting `[DONE]` nor a malformed one."""
    @property
    def done(self) -> bool:
        """A `data: [DONE]` event was seen."""
    @property
    def usage(self) -> bytes | None:
        """Raw JSON of the top-level `usage` object of the last data event that had a non-null one."""
    @property
    def error(self) -> bytes | None:
        """Raw JSON payload of the last data event with a non-null top-level `error`."""
    @property
    def model(self) -> str | None:
        """The top-level `model` string of the first JSON data event that has one."""
    @property
    def tool_names(self) -> list[str]:
        """Names of the tools the model called (`delta.tool_calls[].function.name`), in order."""
    @property
    def malformed(self) -> bool:
        """A data event other than `[DONE]` was not valid JSON (or not UTF-8).

        That event and everything after it are withheld from `feed`/`finish` output, and not observed:
        the caller should end the client's stream (it has received only whole, valid events).
        """

@final
class Transcoder:
    """One stream's translation between wire formats: upstream SSE bytes in, the caller's SSE bytes out.

    `upstream` and `caller` are "chat" (OpenAI chat completions), "messages" (Anthropic) or "responses"
    (OpenAI Responses). Output depends only on the upstream events, never on how the bytes were split.
    """

    def __new__(
        cls,
        upstream: str,
        caller: str,
        model: str,
        created: int,
        input_tokens: int = 0,
        include_usage: bool = True,
        json_tool: str | None = None,
        prices: tuple[float, float, float] | None = None,
        screen: AnswerScreen | None = None,
    ) -> Self:
        """`model` is shown to the caller; `input_tokens` is the estimate Anthropic callers see in
        `message_start` until the upstream reports the real count; `include_usage` adds OpenAI's usage chunk;
        `json_tool` names a forced tool whose arguments are the structured answer, passed on as text;
        `prices` (USD per million input, output, cached input tokens) adds `usage.cost` for Responses callers;
        `screen` (taken over: one per stream) masks every text of the answer on the way, in any API."""
    def feed(self, chunk: bytes) -> bytes:
        """Translate every event `chunk` completes; b"" once the stream is done, failed or malformed."""
    def annotate(self, notes: list[tuple[str, str, int, int]]) -> bytes:
        """`url_citation`s (url, title, start, end; offsets in characters into the answer's text so far) found in
        a searching upstream's events: Responses callers get `response.output_text.annotation.added` events and
        the annotations on the open message; b"" for other callers and passed-through streams."""
    def search_call(self, query: str) -> bytes:
        """A web search the upstream ran: a `web_search_call` item for Responses callers (after the open
        message, if one is open); b"" for other callers and passed-through streams."""
    def fail(self, kind: str, message: str) -> bytes:
        """An error event in the caller's shape that ends the stream (b"" if it already ended in an error)."""
    @property
    def deltas(self) -> int:
        """Content deltas received (text, thinking, tool arguments)."""
    @property
    def done(self) -> bool:
        """The upstream finished the message normally (the caller got its terminal events)."""
    @property
    def malformed(self) -> bool:
        """An upstream data event was not the JSON its format promises; output stopped before it."""
    @property
    def error(self) -> tuple[str, str] | None:
        """(type, message) of the upstream's error event, or of `fail`."""
    @property
    def prompt_tokens(self) -> int | None:
        """Input tokens including cached ones (OpenAI's convention)."""
    @property
    def completion_tokens(self) -> int | None: ...
    @property
    def cached_tokens(self) -> int | None:
        """Input tokens read from the cache."""
    @property
    def cache_creation_tokens(self) -> int | None:
        """Input tokens written to the cache (Anthropic)."""
    @property
    def reasoning_tokens(self) -> int | None: ...
    @property
    def tool_names(self) -> list[str]:
        """Names of the tools the model called, in order (not the structured-output `json_tool`)."""
    def take_found(self) -> list[tuple[str, str, int]]:
        """Guardrail findings since the last call, (category, type, count) per type; never the values."""
    @property
    def has_findings(self) -> bool:
        """Whether `take_found` has anything."""

@final
class AnswerScreen:
    """Guardrails on one answer: a hold-back scanner per text (content, thinking, each tool call's
    arguments), one placeholder numbering, held text released only where its text ends.

    Hand it to a `Transcoder` or a `StreamTap`, or screen whole chat chunk events with `feed_chat`. `masker`: the
    request's, whose numbering the answer continues; `restore`: its values are put back where the answer
    echoes their placeholders.
    """

    def __new__(
        cls,
        guardrails: Guardrails,
        categories: list[str] | None = None,
        masker: Masker | None = None,
        restore: bool = False,
    ) -> Self: ...
    @staticmethod
    def like(blank: Masker, masker: Masker | None = None, restore: bool = False) -> AnswerScreen:
        """With the engine and categories of `blank` (a policy's empty masker): no category list to convert
        for every answer."""
    def feed_chat(self, chunk: bytes) -> bytes:
        """Whole chat chunk events in, the same events with their texts screened; held text goes out in an
        extra chunk that takes over its choice's finish_reason, or before [DONE]."""
    def finish_chat(self) -> bytes:
        """The stream ended without [DONE]: a chunk with the text still held back, masked."""
    def take_found(self) -> list[tuple[str, str, int]]:
        """Findings since the last call, (category, type, count) per type; never the values."""
    @property
    def has_findings(self) -> bool:
        """Whether `take_found` has anything."""

@final
class Rendezvous:
    """Weighted rendezvous hashing with XXH3 over a fixed list of targets (immutable).

    Target `i` scores `w_i / -ln(u_i)` with `u_i` uniform in (0, 1) from `splitmix(xxh3(key) ^ xxh3(name_i))`;
    the highest wins, so a key lands on `i` with probability `w_i / sum(w)`, and changing one weight moves only
    the keys that must move. Raises ValueError for no targets, a length mismatch, a weight that is not
    finite and positive, or a duplicate name.
    """

    def __new__(cls, targets: list[str], weights: list[float]) -> Self: ...
    def pick(self, key: str) -> int:
        """The index of the target `key` lands on."""
    def rank(self, key: str) -> list[int]:
        """Every index, best first (`rank(key)[0] == pick(key)`): the failover order for `key`."""
    @property
    def weights(self) -> list[float]:
        """The normalised weights (they sum to 1)."""
    def __len__(self) -> int: ...

@final
class LatencyTracker:
    """Per-target latency windows (last `window` samples no older than `max_age` s), shared by a worker.

    Score: the `trim` (10%) trimmed mean of the window. `now` is seconds on the caller's clock; when None,
    a process-wide monotonic clock. Thread-safe (one mutex).
    """

    def __new__(
        cls,
        window: int = 100,
        max_age: float = 3600.0,
        min_samples: int = 5,
        explore: float = 0.07,
        trim: float = 0.1,
        failure_penalty: float = 30.0,
        refresh: float = 120.0,
        seed: int | None = None,
    ) -> Self: ...
    def record(self, target: str, seconds: float, now: float | None = None) -> None:
        """A successful call's latency (time to first token for streams, total otherwise)."""
    def record_failure(self, target: str, seconds: float, now: float | None = None) -> None:
        """A failed call: recorded as max(seconds, failure_penalty)."""
    def order(self, targets: list[str], now: float | None = None) -> list[int]:
        """Indexes of `targets` to try in turn: those with samples by score (fastest first), then those
        without; on an `explore` fraction of calls one that needs measuring goes first: the one with the
        fewest samples (below `min_samples`), else the one whose newest sample is oldest (older than
        `refresh` s). The first sample after a gap longer than `refresh` replaces the window."""
    def score(self, target: str, now: float | None = None) -> float | None:
        """The trimmed mean of the live window, None without samples."""
    def samples(self, target: str, now: float | None = None) -> int:
        """How many samples the live window holds."""
    @property
    def min_samples(self) -> int: ...

class LedgerFull(Exception):
    """More budget-and-period entries (or worker processes) than the ledger has room for."""

@final
class BudgetSet:
    """The budgets one request is charged to in one period, prepared once per caller and period (each slot
    key hashed here, not per request): (budget id, limit, committed spend from which `Ledger.settle` reports
    it), in micro-dollars."""

    def __new__(cls, budgets: Sequence[tuple[str, int, int]], period: int) -> Self: ...
    @property
    def ids(self) -> list[str]:
        """The budget ids, in order."""
    @property
    def period(self) -> int: ...
    def __len__(self) -> int: ...

@final
class Ledger:
    """The budget ledger every worker shares (`rust/src/ledger.rs`): committed and reserved micro-dollars
    per budget and period in a memory-mapped file (`path`; None: anonymous memory, for one process), under
    a process-shared robust mutex. Budgets are ids such as `key:<id>`; periods are YYYYMM integers."""

    def __new__(cls, path: str | None, n_slots: int = 16384, n_lanes: int = 32) -> Self: ...
    @property
    def lane(self) -> int:
        """This process's lane (0 until `attach`)."""
    def attach(self, pid: int | None = None) -> int:
        """Take a lane for this process (default: its pid), releasing every dead process's reservations."""
    def reserve(self, budgets: BudgetSet, amount: int) -> int | None:
        """Reserve `amount` against every budget of the set or none; the index of the first that cannot take it."""
    def settle(self, budgets: BudgetSet, reserved: int, actual: int) -> list[tuple[int, int]] | None:
        """Replace a reservation by the actual cost; (index, committed spend) of the budgets now at or over
        their notify threshold, None when there are none."""
    def seed(self, budget: str, period: int, committed: int) -> None:
        """Create the slot with this committed spend unless it exists."""
    def usage(self, budget: str, period: int) -> tuple[int, int]:
        """(committed, reserved)."""
    def rebuild(self, committed: list[tuple[str, int, int]]) -> None:
        """Start afresh from stored spend (budget, period, amount): every reservation and lane dropped and the
        lock made anew. Only before any worker runs (`router serve` does it at start)."""
    def close(self) -> None: ...

@final
class Finding:
    """One sensitive value found in a text. Offsets are Python string indices; the value is not kept."""

    @property
    def category(self) -> str:
        """pii, pci, banking, secrets, financial, names or custom."""
    @property
    def type(self) -> str:
        """The placeholder type, e.g. EMAIL, CARD, AWS_SECRET (a custom pattern's name, upper-cased)."""
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __ne__(self, value: object, /) -> bool: ...

@final
class Guardrails:
    """The compiled scanner: the built-in rules plus optional custom (name, regex) patterns.

    A custom pattern that is not a valid regex, matches the empty string or has a bad name raises
    ValueError naming it. `categories=None` means every category but the opt-in "names" (and "custom"
    only when there are custom patterns); an unknown category name raises ValueError.
    """

    def __new__(cls, custom: list[tuple[str, str]] = ...) -> Self: ...
    def scan(self, text: str, categories: list[str] | None = None) -> list[Finding]:
        """Sorted, non-overlapping findings."""
    def mask(self, text: str, categories: list[str] | None = None) -> str:
        """`text` with each finding replaced by `[TYPE_N]` (the same value, the same N); `text` itself if none."""
    def masker(self, categories: list[str] | None = None) -> Masker:
        """A masker whose numbering is shared by every text it masks (one request)."""
    def stream(self, categories: list[str] | None = None, masker: Masker | None = None) -> StreamScanner:
        """A streaming masker for one text that arrives in deltas; `masker`: continue its numbering."""
    def types(self) -> list[tuple[str, str]]:
        """Every (category, type) this engine can report."""
    def rules(self) -> list[tuple[str, str, str]]:
        """Every rule as (category, type, regex source)."""
    @staticmethod
    def categories() -> list[str]: ...

@final
class Masker:
    """Masks several texts with one placeholder numbering."""

    def fresh(self) -> Masker:
        """An empty masker with this one's engine and categories (the next request's)."""
    def mask(self, text: str) -> str:
        """`text` masked; the very same object when nothing was found."""
    def mask_json(self, data: Buffer, skip: SkipKeys) -> bytes | None:
        """The JSON document `data` (bytes, or any buffer such as `msgspec.Raw`) with the values in its text
        strings masked (every string `skip` does not set aside), or None if there was nothing to mask.

        Only the masked strings are re-encoded; every other byte is kept. ValueError if the document is
        one the walk does not handle (a key written with escapes, nesting over 128 deep, not JSON): the
        caller decodes it instead."""
    @property
    def found(self) -> list[tuple[str, str]]:
        """(category, type) of every value masked so far, in order. Never the values."""
    @property
    def found_count(self) -> int:
        """How many values were masked so far."""
    def tally(self, since: int = 0) -> list[tuple[str, str, int]]:
        """(category, type, count) of the values masked after the first `since`, one entry per type, in the
        order first found."""
    def placeholders(self) -> list[tuple[str, str]]:
        """(placeholder, original value) of every value masked so far (to restore echoed placeholders)."""

@final
class SkipKeys:
    """Which strings `Masker.mask_json` does not read, built once: the string values of `skip` keys (directly,
    or in an array under the key), such as identifiers, formats and base64 payloads. An object under such a
    key is still read key by key; under a `whole` key every string is read, whatever its key."""

    def __new__(cls, skip: Sequence[str], whole: Sequence[str] = ()) -> SkipKeys: ...

@final
class StreamScanner:
    """Masks a text that arrives in deltas without ever sending part of a sensitive value.

    `feed` returns at once what no later text can turn into part of a finding, and holds back the tail
    that still could (the unfinished word, recent words with digits, an unterminated key block).
    The concatenated output of all `feed` calls and `finish` equals masking the whole text at once.
    """

    def feed(self, text: str) -> str: ...
    def finish(self) -> str:
        """End of the text: everything still held back, masked."""
    @property
    def held(self) -> int:
        """Bytes (UTF-8) held back right now."""
    @property
    def found(self) -> list[tuple[str, str]]:
        """(category, type) of every value masked so far. Never the values."""

@final
class Actions:
    """A guardrail policy's actions: the categories, and the custom pattern types, that block; the rest mask."""

    def __new__(cls, blocking: Sequence[str], blocked_custom: Sequence[str]) -> Actions: ...
    def action(self, category: str, kind: str) -> str:
        """ "block" or "mask"."""
    def record(
        self,
        tally: Sequence[tuple[str, str, int]],
        direction: str,
        counts: FindingCounts,
        triggers: Triggers | None,
    ) -> list[str]:
        """Count a scanner's tally, (category, type, count) per type, in `counts` and in the request's
        `triggers` (None outside a request); the categories that block, sorted (empty: all masked).
        `direction`: "request" or "response"."""

@final
class DocumentScreen:
    """A policy's screen of whole JSON documents (a unary request's text fields, a unary answer): one call
    masks, counts what was found in `counts` and the request's `triggers`, and names the categories that
    block (sorted; empty when everything found was masked)."""

    def __new__(
        cls, masker: Masker, actions: Actions, request_keys: SkipKeys, answer_keys: SkipKeys, raw: type
    ) -> DocumentScreen:
        """`masker`: the policy's blank masker (its engine and categories); `request_keys`/`answer_keys`:
        the strings each direction sets aside; `raw`: what a masked request field is stored as."""
    def request(
        self, fields: dict[str, Any], names: tuple[str, ...], counts: FindingCounts, triggers: Triggers | None
    ) -> tuple[Masker | None, list[str]]:
        """Mask the text of the fields `names` of `fields` in place, with one numbering: the masker (None
        if nothing was found) and the categories that block. ValueError (a document the walk does not
        handle) leaves `fields` as it was."""
    def answer(
        self, data: Buffer, counts: FindingCounts, triggers: Triggers | None, request: Masker | None = None
    ) -> tuple[bytes | None, list[str]]:
        """A unary answer with its text masked (None if nothing was found) and the categories that block;
        `request`: the request's masker, whose numbering the answer continues. ValueError: a document the
        walk does not handle."""

@final
class Triggers:
    """One request's guardrail triggers, its audit trail: a count per direction, category, type and action."""

    def __new__(cls) -> Triggers: ...
    def encoded(self) -> str | None:
        """`[[direction, category, type, action, count], ...]` as JSON text (in first-found order), or None
        when nothing was found."""

@final
class FindingCounts:
    """A worker's count of values found, per category, direction and action (the findings metric)."""

    def __new__(cls) -> FindingCounts: ...
    def items(self) -> list[tuple[str, str, str, int]]:
        """(category, direction, action, count) for every non-zero count."""

def json_fault(data: bytes, max_depth: int) -> tuple[str, int] | None:
    """Why `data` is not one JSON text nested at most `max_depth` levels deep (capped at 1024), as
    `(kind, byte offset)` with kind "utf8", "depth" or "syntax"; None when it is one."""

@final
class SessionTurn:
    """Where the session index placed one request; handed back with its answer."""

    @property
    def session_id(self) -> str: ...
    @property
    def branch(self) -> int:
        """0 on a session's main line; a fork gets the session's next number."""
    @property
    def parent(self) -> str | None:
        """The request id this one continued (None: the first of its session, as far as the index knows)."""

@final
class SessionIndex:
    """One worker's session index: conversation states (chained XXH3 per message) → the request that reached
    them, bounded by `max_entries` and `ttl_seconds` of idleness (least recently used first)."""

    def __new__(cls, max_entries: int, ttl_seconds: float, prefix: str, *, resume: bool = True) -> SessionIndex:
        """`resume=False`: read every conversation whole, never from an earlier request's resume point."""
    def __len__(self) -> int: ...
    def place(
        self,
        api: str,
        key: str,
        user: str | None,
        system: Buffer | None,
        items: Buffer | None,
        request_id: str,
        explicit: str | None,
        previous: str | None,
        now: float,
    ) -> SessionTurn | None:
        """Place a request (`api`: chat, messages or responses; `system` and `items` the raw JSON the client
        sent; `explicit` its own session id; `previous` a Responses previous_response_id); None when the
        conversation cannot be read."""
    def answered(self, turn: SessionTurn, body: Buffer, now: float) -> bool:
        """Remember the state after `turn`'s whole answer `body` (as the client got it); False if unreadable."""
    def response_id(self, turn: SessionTurn, response_id: str, now: float) -> None:
        """Remember a streamed Responses answer's id, so a previous_response_id naming it continues `turn`."""
