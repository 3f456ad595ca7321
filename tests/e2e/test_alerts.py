"""Alerts reach a signed webhook once per threshold, with retries; exported budgets appear in /metrics."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import openai
import pytest

from servers import Server, free_port, gateway_env, start_gateway

SECRET = "whsec-test-only"


class Receiver:
    """A webhook endpoint that fails its first delivery, to exercise retries."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.calls = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                receiver.calls += 1
                status = 500 if receiver.calls == 1 else 200
                if status == 200:
                    # Header names are case-insensitive (the sender writes them title-cased).
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 15.0) -> list[tuple[dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


@pytest.fixture(scope="module")
def setup(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Receiver]]:
    receiver = Receiver()
    root = tmp_path_factory.mktemp("alerts")
    (root / "config.yaml").write_text(
        f"""
providers:
  mock: {{base_url: env:ROUTER_MOCK_URL, api_key: k}}
models:
  - {{id: mock/cheap, upstream_model: gpt-4o, prices: {{input: 1000.0, output: 1000.0}}, max_output_tokens: 20}}
spend:
  export_budgets: ["org", "group:Budgeted", "user:nobody@corp.test"]
alerts:
  budget_thresholds: [50, 80, 100]
  retry_base_seconds: 0.05
  webhooks:
    - {{url: "http://127.0.0.1:{receiver.port}/hook", secret: {SECRET}}}
"""
    )
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, root / "config.yaml"), workers=2)
    yield server, receiver
    server.stop()
    receiver.server.shutdown()
    receiver.server.server_close()


def test_budget_thresholds_fire_once_each_signed_and_retried(setup) -> None:
    server, receiver = setup
    admin = {"authorization": f"Bearer {server.env['ROUTER_ADMIN_KEY']}"}
    group = httpx.post(
        f"{server.base}/v1/manage/group", json={"name": "Budgeted", "monthly_budget": 0.2}, headers=admin
    )
    created = httpx.post(
        f"{server.base}/v1/manage/apikey", json={"name": "alerting", "groups": ["Budgeted"]}, headers=admin
    ).json()
    assert group.status_code == 201
    client = openai.OpenAI(base_url=f"{server.base}/v1", api_key=created["key"], max_retries=0)
    refused = 0
    for _ in range(200):
        try:
            client.chat.completions.create(
                model="mock/cheap", messages=[{"role": "user", "content": "hi"}], max_tokens=5
            )
        except openai.APIStatusError as err:
            assert err.status_code == 402
            refused += 1
            if refused > 3:
                break
    assert refused > 3
    received = receiver.wait(3)
    alerts = [json.loads(body) for _, body in received]
    budget_alerts = sorted(a["detail"]["threshold_percent"] for a in alerts if a["kind"] == "budget")
    # Each threshold once, however many requests crossed it or were refused, on either worker.
    assert budget_alerts == [50, 80, 100]
    for headers, body in received:
        ts = headers["x-router-timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-router-signature"], expected)
    time.sleep(0.5)
    assert len(receiver.received) == 3

    log = httpx.get(f"{server.base}/v1/manage/alerts", headers=admin).json()["data"]
    attempts = [d for a in log for d in a["deliveries"]]
    assert any(d["status"] == 500 for d in attempts) and sum(d["status"] == 200 for d in attempts) == 3

    # Two workers publish their counters to each other once a second.
    deadline = time.monotonic() + 5
    while 'router_cost_usd_total{group="grp_' not in (metrics := httpx.get(f"{server.base}/metrics").text):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.2)
    assert 'router_budget_limit_usd{budget="group:Budgeted"} 0.2' in metrics
    assert 'router_budget_remaining_usd{budget="group:Budgeted"}' in metrics
    assert "nobody@corp.test" not in metrics  # a budget that names nothing is not exported
