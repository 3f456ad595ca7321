"""Mock knobs: what a request asks the mock to do, and how the four knob sources merge.

Sources, highest precedence first: ``x-mock-*`` request headers, the ``"mock"`` body object, ``@key=value``
suffixes of the model name, then the per-process defaults (CLI flags, else ``ROUTER_MOCK_*`` env vars).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import msgspec

FAIL_MODES = frozenset({"none", "400", "401", "403", "429", "500", "503", "529", "hang", "drop", "malformed"})

ENV_PREFIX = "ROUTER_MOCK_"
HEADER_PREFIX = "x-mock-"


# Caps on knobs that size the reply, so one request header cannot make a worker build gigabytes.
_MAXIMA = MappingProxyType({"tokens": 100_000, "tool_calls": 128})


class KnobError(ValueError):
    """A knob value the mock cannot honour; reported to the client as a 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class Knobs(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One source's knobs; ``None`` means "not set here, ask the next source".

    Unknown names are rejected (rather than ignored) so a typo in a body or model-name knob is a visible 400
    instead of a silently ignored fault injection.
    """

    tokens: int | None = None
    ttft_ms: float | None = None
    token_delay_ms: float | None = None
    fail: str | int | None = None
    fail_rate: float | None = None
    # Only the first N requests for this exact model name (knobs included) fail, counted since the last reset.
    fail_first: int | None = None
    # "drop": stream events sent before the connection is cut (the role chunk counts; 0: nothing at all).
    drop_after: int | None = None
    retry_after: int | None = None
    echo: bool | None = None
    tool_calls: int | None = None

    def __post_init__(self) -> None:
        # Runs inside msgspec decode/convert too, so every source gets the same validation and error messages.
        for name in ("tokens", "ttft_ms", "token_delay_ms", "fail_first", "drop_after", "retry_after", "tool_calls"):
            value, limit = getattr(self, name), _MAXIMA.get(name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0")
            if value is not None and limit is not None and value > limit:
                raise ValueError(f"{name} must be <= {limit}")
        if self.fail_rate is not None and not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        if self.fail is not None:
            fail = str(self.fail).lower()
            if fail not in FAIL_MODES:
                raise ValueError(f"fail must be one of {', '.join(sorted(FAIL_MODES))}")
            self.fail = fail


KNOB_NAMES: tuple[str, ...] = Knobs.__struct_fields__
HEADER_KNOBS: tuple[tuple[str, str], ...] = tuple((HEADER_PREFIX + n.replace("_", "-"), n) for n in KNOB_NAMES)


class Resolved(msgspec.Struct, frozen=True):
    """The merged knobs one request runs with (every field decided)."""

    tokens: int = 16
    ttft_ms: float = 0.0
    token_delay_ms: float = 0.0
    fail: str = "none"
    fail_rate: float = 1.0
    fail_first: int | None = None
    drop_after: int = 3
    retry_after: int = 1
    echo: bool = False
    # None: the count follows tool_choice (auto → 1, required → every tool); a number overrides it.
    tool_calls: int | None = None


def from_strings(values: Mapping[str, str], source: str, param: str | None = None) -> Knobs:
    """Knobs from string values (headers, model name, env); ``source`` names the origin in error messages."""
    try:
        # strict=False is what turns "5" into 5 and "1"/"true" into True.
        return msgspec.convert(values, Knobs, strict=False)
    except msgspec.ValidationError as exc:
        raise KnobError(f"invalid mock knob in {source}: {exc}", param=param) from None


def from_headers(headers: Mapping[str, str]) -> Knobs | None:
    """Knobs from ``x-mock-*`` headers, or None when the request has none (the common, fast case)."""
    values: dict[str, str] | None = None
    for header, name in HEADER_KNOBS:
        value = headers.get(header)
        if value is not None:
            if values is None:
                values = {}
            values[name] = value
    return None if values is None else from_strings(values, "x-mock-* headers")


def split_model(model: str) -> tuple[str, Knobs | None]:
    """``"gpt-4o@fail=503@tokens=4"`` → ``("gpt-4o", Knobs(fail="503", tokens=4))``."""
    if "@" not in model:
        return model, None
    base, *parts = model.split("@")
    values: dict[str, str] = {}
    for part in parts:
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise KnobError(f"invalid mock knob {part!r} in model name {model!r}: expected key=value", param="model")
        values[key.strip().replace("-", "_")] = value.strip()
    return base, from_strings(values, f"model name {model!r}", param="model") if values else None


def from_env(environ: Mapping[str, str]) -> Knobs:
    """The per-process defaults as the app factory sees them in a granian worker."""
    values = {n: environ[ENV_PREFIX + n.upper()] for n in KNOB_NAMES if ENV_PREFIX + n.upper() in environ}
    return from_strings(values, "ROUTER_MOCK_* environment")


def to_env(knobs: Knobs) -> dict[str, str]:
    """Inverse of :func:`from_env` for the knobs that are set."""
    out: dict[str, str] = {}
    for name in KNOB_NAMES:
        value = getattr(knobs, name)
        if value is not None:
            out[ENV_PREFIX + name.upper()] = str(int(value) if isinstance(value, bool) else value)
    return out


def resolve(sources: Iterable[Knobs | None]) -> Resolved:
    """Merge sources (highest precedence first) onto the built-in defaults.

    ``fail_rate`` travels with ``fail``: it is taken from the same source that set ``fail`` (default 1), so a
    request header ``x-mock-fail: 429`` always fails even when the process runs with ``--fail-rate 0.1``.
    """
    picked: dict[str, object] = {}
    for knobs in sources:
        if knobs is None:
            continue
        for name in KNOB_NAMES:
            if name == "fail_rate" or name in picked:
                continue
            value = getattr(knobs, name)
            if value is not None:
                picked[name] = value
                if name == "fail":
                    picked["fail_rate"] = 1.0 if knobs.fail_rate is None else knobs.fail_rate
    return Resolved(**picked)  # type: ignore[arg-type]
