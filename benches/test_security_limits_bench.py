"""Hot-path cost of the security limits, each side by side with what it replaced or wraps.

- Request ids: the counter-based generator (guessable) vs 96 random bits from a pooled `os.urandom` (what
  the gateway uses), and the unpooled forms for reference (a system call per id).
- Authentication: `KeyCache.authenticate` alone vs through `App.authenticate` (the failed-authentication
  budget, which a successful request should not pay for).
- Body reads: a body read alone vs under `BodyReads` (deadline and cap).

Each round does 1,000 of them: divide the times by 1,000 for one.

    pytest benches/test_security_limits_bench.py --benchmark-columns=mean,stddev,ops
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
from types import SimpleNamespace

import pytest

from router.config import AuthFailuresConfig
from router.governance.keys import KeyCache, create_key
from router.server.app import App
from router.server.exchange import RequestIds
from router.server.limits import AuthFailures, BodyReads
from router.store import open_store


class CounterIds:
    """The generator request ids had before: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._prefix = "req_" + os.urandom(6).hex()
        self._next = itertools.count(1).__next__

    def new(self) -> str:
        return f"{self._prefix}{self._next():08x}"


GENERATORS = {
    "counter (before)": CounterIds().new,
    "pooled urandom (now)": RequestIds().new,
    "urandom per id": lambda: "req_" + os.urandom(12).hex(),
    "secrets.token_hex per id": lambda: "req_" + secrets.token_hex(12),
}


@pytest.mark.parametrize("name", list(GENERATORS))
def test_request_ids(benchmark, name: str) -> None:
    """1,000 ids per round: the harness's own per-call cost would otherwise hide the generator's."""
    new = GENERATORS[name]

    def thousand() -> int:
        return len({new() for _ in range(1000)})

    assert benchmark(thousand) == 1000


@pytest.fixture(scope="module")
def auth(tmp_path_factory):
    store = open_store(str(tmp_path_factory.mktemp("auth") / "bench.db"))
    _, secret = create_key(store, "bench")
    app = SimpleNamespace(keys=KeyCache(store, None, {}), auth_failures=AuthFailures(AuthFailuresConfig()))
    ex = SimpleNamespace(scope=SimpleNamespace(client="203.0.113.7:40000"), api_key=lambda: secret)
    app.keys.authenticate(secret)  # a cache hit from here on, as in steady state
    yield app, ex, secret
    store.close()


@pytest.mark.parametrize("path", ["KeyCache.authenticate", "App.authenticate"])
def test_authenticate(benchmark, auth, path: str) -> None:
    app, ex, _ = auth
    keys = app.keys

    def thousand_direct() -> str:
        for _ in range(1000):
            principal = keys.authenticate(ex.api_key())
        return principal.name

    def thousand_through_app() -> str:
        for _ in range(1000):
            principal = App.authenticate(app, ex)
        return principal.name

    assert benchmark(thousand_through_app if path == "App.authenticate" else thousand_direct) == "bench"


class _Body:
    async def read_json_body(self, limit: int) -> bytes:
        return b"{}"


@pytest.mark.parametrize("guarded", [False, True], ids=["plain read", "BodyReads.read"])
def test_body_reads(benchmark, guarded: bool) -> None:
    reads, body, loop = BodyReads(30.0, 256), _Body(), asyncio.new_event_loop()

    async def thousand() -> int:
        n = 0
        for _ in range(1000):
            raw = await (reads.read(body, 1024) if guarded else body.read_json_body(1024))  # type: ignore[arg-type]
            n += len(raw)
        return n

    try:
        assert benchmark(lambda: loop.run_until_complete(thousand())) == 2000
    finally:
        loop.close()
