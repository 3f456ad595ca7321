"""Hot-path helpers of the router gateway, implemented in Rust (`rust/src`)."""

from typing import Self, final

__all__ = ["Finding", "Guardrails", "Masker", "SseEvent", "SseParser", "StreamScanner", "StreamTap", "__version__"]

__version__: str

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
    """

    def __new__(cls, strip_usage_chunk: bool = False) -> Self: ...
    def feed(self, chunk: bytes) -> bytes:
        """Return the raw bytes of every event this chunk completes (possibly `chunk` itself); keep the tail.

        Only the events before a malformed data event are returned; once `malformed`, always b"".
        """
    def finish(self) -> bytes:
        """End of stream: return the unterminated tail as received (it is not observed); b"" once `malformed`."""
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
    def malformed(self) -> bool:
        """A data event other than `[DONE]` was not valid JSON (or not UTF-8).

        That event and everything after it are withheld from `feed`/`finish` output, and not observed:
        the caller should end the client's stream (it has received only whole, valid events).
        """

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

    def mask(self, text: str) -> str:
        """`text` masked; the very same object when nothing was found."""
    @property
    def found(self) -> list[tuple[str, str]]:
        """(category, type) of every value masked so far, in order. Never the values."""
    def placeholders(self) -> list[tuple[str, str]]:
        """(placeholder, original value) of every value masked so far (to restore echoed placeholders)."""

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
