"""Stream translation: Rust `Transcoder` against the pure-Python reference transcoder, per direction.

Each upstream stream has about 1,000 events (a long text answer, two streamed tool calls, usage), cut into
1 KiB network chunks; both produce byte-identical output (tests/rust/test_transcoder.py). Run:
`pytest benches/test_transcode_bench.py --benchmark-only --benchmark-group-by=param:pair`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from router._core import Transcoder

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "rust"))
from sse_reference import chunked
from transcode_reference import RefTranscoder, long_stream

APIS = ("chat", "messages", "responses")
PAIRS = [f"{up}->{caller}" for up in APIS for caller in APIS if up != caller]
CHUNKS = {up: chunked(long_stream(up), 1024) for up in APIS}


def _translate(factory: type[Transcoder] | type[RefTranscoder], pair: str) -> int:
    upstream, caller = pair.split("->")
    transcoder = factory(upstream, caller, "gw/model", 1_700_000_000, 42)
    size = 0
    for chunk in CHUNKS[upstream]:
        size += len(transcoder.feed(chunk))
    assert transcoder.done
    return size


@pytest.mark.parametrize("pair", PAIRS)
@pytest.mark.parametrize("impl", ["rust", "python"])
def test_transcode(benchmark, pair: str, impl: str) -> None:
    factory = Transcoder if impl == "rust" else RefTranscoder
    benchmark.group = f"transcode {pair}"
    assert benchmark(_translate, factory, pair) > 0
