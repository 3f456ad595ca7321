"""Operations: health, readiness, metrics, the keys CLI against a running gateway, graceful shutdown."""

from __future__ import annotations

import concurrent.futures
import json
import re
import signal
import time

import httpx
import openai
import pytest

from servers import Server, create_key, db_query, gateway_env, router_cli, start_gateway, usage_rows

HELLO = [{"role": "user", "content": "hello"}]


def test_health_and_readiness(gateway) -> None:
    assert httpx.get(f"{gateway.base}/healthz").json() == {"status": "ok"}
    r = httpx.get(f"{gateway.base}/readyz")
    assert r.status_code == 200 and r.json()["database"] == "ok"
    assert "x-router-overhead-ms" in r.headers


def _metric(text: str, name: str, default: float | None = None, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    if default is not None:
        return default
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_count_requests_latency_ttft_and_in_flight(client, gateway) -> None:
    client.chat.completions.create(model="mock/gpt-4o-mini", messages=HELLO)
    list(client.chat.completions.create(model="mock/gpt-4o-mini", messages=HELLO, stream=True))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="mock/none", messages=HELLO)
    labels = {"endpoint": "chat", "model": "mock/gpt-4o-mini", "provider": "mock"}
    # A stream is counted when its handler finishes, which can be just after the client read its last chunk.
    for _ in range(50):
        text = httpx.get(f"{gateway.base}/metrics").text
        if _metric(text, "router_requests_total", 0, status="200", **labels) >= 2 and not _metric(
            text, "router_in_flight_requests", 0
        ):
            break
        time.sleep(0.1)
    assert _metric(text, "router_requests_total", status="200", **labels) >= 2
    assert _metric(text, "router_requests_total", status="404", model="unknown") >= 1
    assert _metric(text, "router_request_duration_seconds_count", endpoint="chat", model="mock/gpt-4o-mini") >= 2
    assert _metric(text, "router_upstream_duration_seconds_count", provider="mock", model="mock/gpt-4o-mini") >= 2
    assert _metric(text, "router_time_to_first_token_seconds_count", model="mock/gpt-4o-mini") >= 1
    assert _metric(text, "router_tokens_total", model="mock/gpt-4o-mini", kind="completion") >= 32
    assert _metric(text, "router_in_flight_requests") == 0
    assert "router_overhead_seconds_bucket" in text


def test_keys_cli_create_list_revoke_take_effect_on_the_next_request(gateway, mock) -> None:
    created = create_key(gateway.env, "short-lived")
    assert set(created) >= {"id", "key"}
    client = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=created["key"], max_retries=0)
    assert client.chat.completions.create(model="mock/gpt-4o", messages=HELLO).choices

    listed = json.loads(router_cli(gateway.env, "keys", "list", "--json").stdout)
    entry = next(k for k in listed if k["id"] == created["id"])
    assert entry["active"] is True and entry["name"] == "short-lived"
    assert created["key"] not in json.dumps(listed)
    assert entry["prefix"] == created["key"][:11]

    assert "revoked" in router_cli(gateway.env, "keys", "revoke", created["id"]).stdout
    before = mock.count()
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="mock/gpt-4o", messages=HELLO)
    assert err.value.code == "revoked_api_key"
    assert mock.count() == before
    listed = json.loads(router_cli(gateway.env, "keys", "list", "--json").stdout)
    assert next(k for k in listed if k["id"] == created["id"])["active"] is False

    table = router_cli(gateway.env, "keys", "list").stdout
    assert created["id"] in table and "revoked" in table
    missing = router_cli(gateway.env, "keys", "revoke", "key_doesnotexist", check=False)
    assert missing.returncode == 1 and "No API key" in missing.stderr


def test_admin_key_from_environment_reaches_every_route(gateway) -> None:
    admin = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=gateway.env["ROUTER_ADMIN_KEY"], max_retries=0)
    assert admin.chat.completions.create(model="mock/gpt-4o", messages=HELLO).choices


def test_sigterm_flushes_every_usage_row(mock_server, tmp_path) -> None:
    config = tmp_path / "slow-flush.yaml"
    config.write_text(
        "providers: {mock: {base_url: 'env:ROUTER_MOCK_URL'}}\n"
        "models: [{id: mock/gpt-4o, upstream_model: gpt-4o}]\n"
        "usage_log: {flush_interval: 3600, batch_size: 100000}\n"
    )
    server = start_gateway(gateway_env(tmp_path / "router.db", mock_server.base, config))
    key = create_key(server.env)["key"]
    client = openai.OpenAI(base_url=f"{server.base}/v1", api_key=key, max_retries=0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: client.chat.completions.create(model="mock/gpt-4o", messages=HELLO), range(40)))
    assert db_query(server.env, "SELECT COUNT(*) FROM usage_log")[0][0] == 0  # still only in memory
    server.stop(signal.SIGTERM)
    assert server.proc.returncode == 0
    assert db_query(server.env, "SELECT COUNT(*) FROM usage_log WHERE status = 200")[0][0] == 40


def test_client_disconnect_mid_stream_cancels_upstream(gateway, api_key, mock) -> None:
    body = {"model": "mock/gpt-4o", "messages": HELLO, "stream": True, "mock": {"tokens": 400, "token_delay_ms": 50}}
    with (
        httpx.Client(timeout=10) as http,
        http.stream(
            "POST", f"{gateway.base}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {api_key}"}
        ) as r,
    ):
        request_id = r.headers["x-request-id"]
        chunks = r.iter_raw()  # held: a dropped generator would close the response early
        assert next(chunks)
        assert mock.streams() == (1, 0)
    # 400 tokens at 50 ms would take 20 s; the mock must see its stream cut well before that.
    deadline = time.monotonic() + 5
    while mock.streams() != (0, 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mock.streams() == (0, 1), "(active, aborted) upstream streams"
    (row,) = usage_rows(gateway, f"request_id = '{request_id}'")
    assert row["status"] == 499 and row["error_type"] == "client_closed"
    text = httpx.get(f"{gateway.base}/metrics").text
    assert re.search(r"^router_in_flight_requests (\S+)$", text, re.M).group(1) == "0.0"
    # The dropped connection was not returned to the pool half-read: the next request is served normally.
    client = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=api_key, max_retries=0)
    assert client.chat.completions.create(model="mock/gpt-4o", messages=HELLO).choices[0].finish_reason == "stop"


def test_two_workers_share_metrics_and_revocations(mock_server, tmp_path) -> None:
    server: Server = start_gateway(gateway_env(tmp_path / "router.db", mock_server.base), workers=2)
    try:
        created = create_key(server.env)
        client = openai.OpenAI(base_url=f"{server.base}/v1", api_key=created["key"], max_retries=0)
        for _ in range(20):
            client.chat.completions.create(model="mock/gpt-4o", messages=HELLO)
        # Each worker publishes its totals once a second; a scrape of either one adds up both.
        deadline = time.monotonic() + 5
        while True:
            text = httpx.get(f"{server.base}/metrics").text
            total = _metric(text, "router_requests_total", 0.0, model="mock/gpt-4o", status="200")
            if total == 20 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert total == 20
        assert _metric(text, "router_request_duration_seconds_count", model="mock/gpt-4o") == 20
        router_cli(server.env, "keys", "revoke", created["id"])
        for _ in range(6):  # connections land on either worker; every one must refuse at once
            fresh = openai.OpenAI(base_url=f"{server.base}/v1", api_key=created["key"], max_retries=0)
            with pytest.raises(openai.AuthenticationError):
                fresh.chat.completions.create(model="mock/gpt-4o", messages=HELLO)
    finally:
        server.stop()
