"""Connection pools sized for LLM traffic: no silent cap by default, and a configured cap that queues for a
bounded wait, answers 503 upstream_overloaded beyond it, and shows in-flight and queued requests in /metrics."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from servers import Server, create_key, gateway_env, start_gateway

CONFIG = """
providers:
  mock: {{base_url: env:ROUTER_MOCK_URL, api_key: k{cap}}}
models:
  - {{id: mock/slow, upstream_model: "gpt-4o@ttft_ms=5000", capabilities: [streaming]}}
"""


def _gateway(root: Path, mock: Server, cap: str) -> Server:
    config = root / "router.yaml"
    config.write_text(CONFIG.format(cap=cap))
    server = start_gateway(gateway_env(root / "router.db", mock.base, config))
    server.key = create_key(server.env, "pool")["key"]  # type: ignore[attr-defined]
    return server


@pytest.fixture(scope="module")
def capped(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _gateway(tmp_path_factory.mktemp("capped"), mock_server, ", max_connections: 2, pool_wait: 1")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def uncapped(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _gateway(tmp_path_factory.mktemp("uncapped"), mock_server, "")
    yield server
    server.stop()


def _chat(server: Server) -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/chat/completions",
        headers={"authorization": f"Bearer {server.key}"},  # type: ignore[attr-defined]
        json={"model": "mock/slow", "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def _gauge(server: Server, name: str) -> float:
    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    found = re.search(rf'^{name}\{{provider="mock"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def _peak(server: Server, name: str, stop: threading.Event) -> list[float]:
    seen = []
    while not stop.is_set():
        seen.append(_gauge(server, name))
        time.sleep(0.1)
    return seen


def test_a_capped_provider_queues_then_refuses_with_503(capped: Server) -> None:
    stop = threading.Event()
    with ThreadPoolExecutor(8) as pool:
        flying = pool.submit(_peak, capped, "router_upstream_in_flight", stop)
        queued = pool.submit(_peak, capped, "router_upstream_queued", stop)
        answers = list(pool.map(lambda _: _chat(capped), range(5)))
        stop.set()
    statuses = sorted(a.status_code for a in answers)
    # Two in flight for 5 s; the rest wait 1 s for a slot that never frees in time.
    assert statuses == [200, 200, 503, 503, 503]
    refused = next(a for a in answers if a.status_code == 503)
    assert refused.json()["error"]["code"] == "upstream_overloaded"
    assert refused.headers["retry-after"] == "1"
    assert max(flying.result()) == 2
    assert max(queued.result()) >= 1
    assert _gauge(capped, "router_upstream_in_flight") == 0 and _gauge(capped, "router_upstream_queued") == 0


def test_without_a_cap_every_request_is_in_flight_at_once(uncapped: Server) -> None:
    n = 40
    stop = threading.Event()
    with ThreadPoolExecutor(n + 1) as pool:
        flying = pool.submit(_peak, uncapped, "router_upstream_in_flight", stop)
        answers = list(pool.map(lambda _: _chat(uncapped), range(n)))
        stop.set()
    assert all(a.status_code == 200 for a in answers)
    # Nothing queued behind a pool: the requests were upstream together (one 5 s wait, not several; a few
    # client threads may start late on a busy machine).
    assert max(flying.result()) >= n - 5
