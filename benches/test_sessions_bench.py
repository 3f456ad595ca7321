"""Session assignment: the Rust session index against the same algorithm in pure Python.

Target (issue 23): placing a request with a 50-message history in its session ≤ 2 µs from Python: its
conversation hashed (one chained XXH3 digest per message unit, JSON read where it lies), one map probe, its
state remembered. The Python baseline (tests/rust/sessions_reference.py) decodes the messages with msgspec and
hashes with the `xxhash` C extension. Each round places 100 requests, each continuing a known conversation.
Run: `pytest benches/test_sessions_bench.py --benchmark-only -o testpaths=benches`.
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from pathlib import Path

import msgspec
import pytest

from router._core import SessionIndex

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rust"))
from sessions_reference import PySessionIndex

TEXT = 'Refactor the parser so it keeps "quoted" keys;\nthen run the tests and report what failed. ' * 2


def _conversation(i: int) -> list[dict]:
    """50 messages: a system prompt, then user and assistant turns (~170 characters each), the last a user's."""
    messages: list[dict] = [{"role": "system", "content": f"You are coding assistant {i}."}]
    for turn in range(49):
        role = "user" if turn % 2 == 0 else "assistant"
        messages.append({"role": role, "content": f"{turn}: {TEXT}"})
    return messages


CONVERSATIONS = [_conversation(i) for i in range(100)]
# What the handler holds: each request's `messages` field, raw, and its key.
REQUESTS = [(f"key_{i}", msgspec.Raw(msgspec.json.encode(c))) for i, c in enumerate(CONVERSATIONS)]
PREVIOUS = [(f"key_{i}", msgspec.json.encode(c[:-2])) for i, c in enumerate(CONVERSATIONS)]


def _rust() -> tuple[SessionIndex, list]:
    index = SessionIndex(100_000, 3600.0, "ses_")
    for key, items in PREVIOUS:
        index.place("chat", key, None, None, items, "req_prev", None, None, 1.0)
    calls = [("chat", key, None, None, items, f"req_{i}", None, None, 2.0) for i, (key, items) in enumerate(REQUESTS)]
    return index, calls


def _python() -> tuple[PySessionIndex, list]:
    index = PySessionIndex(100_000, 3600.0, "ses_")
    for key, items in PREVIOUS:
        index.place(key, None, items, "req_prev", 1.0)
    return index, [(key, None, items, f"req_{i}", 2.0) for i, (key, items) in enumerate(REQUESTS)]


def test_both_place_every_request_in_its_known_session() -> None:
    rust, calls = _rust()
    turns = [rust.place(*c) for c in calls]
    assert all(t is not None and t.parent == "req_prev" and t.branch == 0 for t in turns)
    assert len({t.session_id for t in turns}) == 100
    py, py_calls = _python()
    placed = [py.place(*c) for c in py_calls]
    assert len({s for s, _ in placed}) == 100 and all(b == 0 for _, b in placed)


@pytest.mark.benchmark(group="session-place-50-messages-x100")
def test_place_rust(benchmark) -> None:
    index, calls = _rust()
    benchmark(lambda: deque(itertools.starmap(index.place, calls), maxlen=0))


@pytest.mark.benchmark(group="session-place-50-messages-x100")
def test_place_python(benchmark) -> None:
    index, calls = _python()
    benchmark(lambda: deque(itertools.starmap(index.place, calls), maxlen=0))
