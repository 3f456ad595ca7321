"""Spend limits as users meet them: concurrent requests cannot overrun a budget, crashes leak nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from servers import MockControl, Server, db_query, gateway_env, manage_call, start_gateway, usage_rows

# $1 per million tokens in and out, so a request's worst case in micro-dollars is its body bytes plus max_tokens.
CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/cheap, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0}, max_output_tokens: 100}
  - {id: mock/listed, upstream_model: gpt-4o-mini}
  - {id: mock/unpriced, upstream_model: some-local-model}
  - {id: mock/pricey, upstream_model: gpt-4o, prices: {input: 100.0, output: 100.0}, max_output_tokens: 100}
policies:
  - name: cheap-first
    type: fallback
    targets: [{model: mock/cheap}, {model: mock/pricey}]
  - name: with-unpriced
    type: fallback
    targets: [{model: mock/cheap}, {model: mock/unpriced}]
"""


class Gateway:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.base = server.base
        self.env = server.env

    def manage(self, method: str, path: str, body: dict | None = None) -> dict:
        r = manage_call(self.base, self.env["ROUTER_ADMIN_KEY"], method, path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def key(self, **spec) -> dict:
        return self.manage("POST", "/apikey", {"name": "k", **spec})


def start(root: Path, mock_base: str, workers: int) -> Gateway:
    (root / "config.yaml").write_text(CONFIG)
    return Gateway(start_gateway(gateway_env(root / "router.db", mock_base, root / "config.yaml"), workers=workers))


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start(tmp_path_factory.mktemp("spend"), mock_server.base, workers=2)
    yield gateway
    gateway.server.stop()


def body(max_tokens: int = 10, ttft_ms: int = 0, stream: bool = False, **extra) -> bytes:
    payload = {"model": "mock/cheap", "messages": [{"role": "user", "content": "hi"}], "max_tokens": max_tokens}
    if ttft_ms:
        payload["mock"] = {"ttft_ms": ttft_ms}
    if stream:
        payload["stream"] = True
    payload.update(extra)
    return json.dumps(payload).encode()


def fire(base: str, key: str, payload: bytes, n: int) -> list[int]:
    """`n` requests at once (one thread each), their statuses in order."""
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    with httpx.Client(limits=limits, timeout=60) as client, ThreadPoolExecutor(max_workers=n) as pool:
        futures = [
            pool.submit(client.post, f"{base}/v1/chat/completions", content=payload, headers=headers) for _ in range(n)
        ]
        return [f.result().status_code for f in futures]


def recorded_spend(gw: Gateway, key_id: str) -> float:
    return db_query(gw.env, "SELECT COALESCE(SUM(cost), 0) FROM usage_log WHERE key_id = ?", (key_id,))[0][0]


def test_200_concurrent_requests_against_room_for_50(gw: Gateway, mock: MockControl) -> None:
    payload = body(max_tokens=10, ttft_ms=4000)
    reservation = len(payload) + 10  # micro-dollars: every body byte as a prompt token, plus max_tokens
    limit = 50.5 * reservation / 1e6
    created = gw.key(monthly_limit=limit)
    statuses = fire(gw.base, created["key"], payload, 200)
    ok = statuses.count(200)
    assert statuses.count(402) == 200 - ok
    # Every request that fit was forwarded, and only those.
    assert ok == 50
    assert mock.count() == ok
    rows = usage_rows(gw.server, f"key_id = '{created['id']}' AND status = 200", expect=ok)
    assert len(rows) == ok and all(r["cost"] > 0 for r in rows)
    assert recorded_spend(gw, created["id"]) <= limit


def test_402_names_the_budget_and_when_it_resets(gw: Gateway, mock: MockControl) -> None:
    user = gw.manage("POST", "/user", {"email": "spender@corp.test", "monthly_limit": 0.0001})
    created = gw.key(owner={"type": "user", "id": user["id"]}, monthly_limit=100)
    client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=created["key"], max_retries=0)
    before = mock.count()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="mock/cheap", messages=[{"role": "user", "content": "x" * 200}])
    assert err.value.status_code == 402
    error = err.value.body
    assert error["code"] == "budget_exceeded"
    assert "user 'spender@corp.test'" in error["message"] and "resets at" in error["message"]
    # A small budget keeps its digits: never "$0.0000 of $0.00".
    assert ": $0.00 of $0.0001 is spent or reserved" in error["message"], error["message"]
    assert re.search(r"may cost up to \$0\.0*[1-9]\d*\.", error["message"]), error["message"]
    assert mock.count() == before


def test_limits_apply_across_requests_and_the_key_shows_its_budget(gw: Gateway) -> None:
    payload = body(max_tokens=10)
    reservation = len(payload) + 10
    created = gw.key(monthly_limit=3 * reservation / 1e6)
    statuses: list[int] = []
    while 402 not in statuses and len(statuses) < 100:
        statuses += fire(gw.base, created["key"], payload, 1)
    # Each answer costs less than its reservation, so more than three fit; then the limit holds.
    assert statuses.count(200) > 3 and statuses[-1] == 402
    usage_rows(gw.server, f"key_id = '{created['id']}' AND status = 200", expect=statuses.count(200))
    shown = gw.manage("GET", f"/apikey/{created['id']}")
    assert shown["budget"]["spent"] <= shown["budget"]["monthly_limit"]
    assert shown["budget"]["reserved"] == 0
    assert shown["usage"]["totals"]["cost"] == pytest.approx(recorded_spend(gw, created["id"]))


def test_unpriced_models_are_refused_only_for_keys_with_a_limit(gw: Gateway, mock: MockControl) -> None:
    limited = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=gw.key(monthly_limit=5)["key"], max_retries=0)
    free = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=gw.key()["key"], max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as err:
        limited.chat.completions.create(model="mock/unpriced", messages=messages)
    assert err.value.code == "model_not_priced"
    assert free.chat.completions.create(model="mock/unpriced", messages=messages).choices
    # A model priced only by the shipped catalog (gpt-4o-mini) is counted.
    assert limited.chat.completions.create(model="mock/listed", messages=messages).choices


def test_policies_reserve_for_their_dearest_target_and_charge_what_served(gw: Gateway, mock: MockControl) -> None:
    payload = body(max_tokens=10, model="policy/cheap-first")
    dearest = 100 * (len(payload) + 10)  # the pricey target's worst case, in micro-dollars
    created = gw.key(monthly_limit=0.9 * dearest / 1e6)
    # Room for the cheap target's worst case, not for the dearest: refused, since a fallback could reach it.
    assert fire(gw.base, created["key"], payload, 1) == [402]
    roomy = gw.key(monthly_limit=2 * dearest / 1e6)
    assert fire(gw.base, roomy["key"], payload, 1) == [200]
    (row,) = usage_rows(gw.server, f"key_id = '{roomy['id']}'")
    assert row["model"] == "mock/cheap" and row["cost"] < dearest / 1e6 / 50
    refused = httpx.post(
        f"{gw.base}/v1/chat/completions",
        content=body(model="policy/with-unpriced"),
        headers={"authorization": f"Bearer {roomy['key']}", "content-type": "application/json"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "model_not_priced"


def test_cost_and_metadata_are_recorded_and_metadata_never_goes_upstream(gw: Gateway, mock: MockControl) -> None:
    created = gw.key()
    client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=created["key"], max_retries=0)
    meta = {"tags": ["exp-7", "summaries"], "user_id": "end-user-42", "trace_id": "trace-abc", "extra": {"team": "a"}}
    answer = client.chat.completions.create(
        model="mock/cheap", messages=[{"role": "user", "content": "hi"}], extra_body={"requesty": meta}
    )
    (row,) = usage_rows(gw.server, f"key_id = '{created['id']}'")
    assert row["cost"] == pytest.approx((answer.usage.prompt_tokens + answer.usage.completion_tokens) / 1e6)
    assert row["trace_id"] == "trace-abc" and row["end_user"] == "end-user-42"
    assert json.loads(row["tags"]) == ["exp-7", "summaries"] and json.loads(row["extra"]) == {"team": "a"}
    assert "requesty" not in mock.requests()[-1]["body"]

    via_header = openai.OpenAI(
        base_url=f"{gw.base}/v1", api_key=created["key"], max_retries=0,
        default_headers={"x-router-metadata": json.dumps({"trace_id": "trace-header", "tags": ["h"]})},
    )  # fmt: skip
    via_header.chat.completions.create(model="mock/cheap", messages=[{"role": "user", "content": "hi"}])
    rows = usage_rows(gw.server, f"key_id = '{created['id']}'", expect=2)
    assert rows[-1]["trace_id"] == "trace-header"

    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="mock/cheap",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"requesty": {"extra": {"blob": "x" * 5000}}},
        )
    assert err.value.code == "metadata_too_large"
    broken = httpx.post(
        f"{gw.base}/v1/chat/completions",
        content=body(),
        headers={"authorization": f"Bearer {created['key']}", "x-router-metadata": "{nope"},
    )
    assert broken.status_code == 400 and broken.json()["error"]["param"] == "x-router-metadata"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="mock/cheap",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"requesty": {"auto_cache": "yes"}},
        )
    assert err.value.code == "invalid_metadata" and "auto_cache" in err.value.message


def test_cut_off_streams_are_costed_as_estimates(gw: Gateway, mock: MockControl) -> None:
    created = gw.key()
    payload = json.loads(body(max_tokens=50, stream=True))
    payload["mock"] = {"tokens": 200, "token_delay_ms": 20}
    with httpx.stream(
        "POST", f"{gw.base}/v1/chat/completions", json=payload, headers={"authorization": f"Bearer {created['key']}"}
    ) as response:
        for i, _ in enumerate(response.iter_lines()):
            if i > 20:
                break
    (row,) = usage_rows(gw.server, f"key_id = '{created['id']}'")
    assert row["cost_estimated"] == 1 and row["cost"] > 0


def test_a_crash_leaks_no_reservation_and_restart_reconciles(mock_server: Server, tmp_path: Path) -> None:
    gateway = start(tmp_path, mock_server.base, workers=1)
    payload = body(max_tokens=10, ttft_ms=30_000, stream=True)
    reservation = len(payload) + 10
    created = gateway.key(monthly_limit=3.5 * reservation / 1e6)
    paid = gateway.key(monthly_limit=1)
    openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=paid["key"], max_retries=0).chat.completions.create(
        model="mock/cheap", messages=[{"role": "user", "content": "hi"}]
    )
    usage_rows(gateway.server, f"key_id = '{paid['id']}'")

    with ThreadPoolExecutor(max_workers=3) as pool:
        in_flight = [pool.submit(fire, gateway.base, created["key"], payload, 1) for _ in range(3)]
        time.sleep(2.0)
        # The budget is fully reserved by the three streams in flight.
        assert fire(gateway.base, created["key"], payload, 1) == [402]
        os.killpg(gateway.server.proc.pid, signal.SIGKILL)  # the whole server, workers included, mid-flight
        for future in in_flight:
            with contextlib.suppress(httpx.HTTPError):
                future.result()
    gateway.server.stop()
    gateway_spend = {r[0]: r[1] for r in db_query(gateway.env, "SELECT budget, amount FROM spend")}
    spent_before = gateway_spend.get(f"key:{paid['id']}")
    assert spent_before and spent_before > 0

    restarted = Gateway(start_gateway(gateway.env, workers=1))
    try:
        shown = restarted.manage("GET", f"/apikey/{created['id']}")
        assert shown["budget"]["reserved"] == 0 and shown["budget"]["spent"] == 0
        # Every reservation was released: three more fit.
        quick = body(max_tokens=10, stream=True)
        assert len(quick) <= len(payload)
        assert fire(restarted.base, created["key"], quick, 3) == [200, 200, 200]
        # The stored and in-memory counters agree after the restart.
        paid_view = restarted.manage("GET", f"/apikey/{paid['id']}")
        assert paid_view["budget"]["spent"] == pytest.approx(spent_before / 1e6)
    finally:
        restarted.server.stop()


# -- usage analytics, traces, export, feedback -----------------------------------------------------------


def _manage_raw(gw: Gateway, secret: str, path: str, **params) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"}
    return httpx.get(f"{gw.base}/v1/manage{path}", params=params, headers=headers, timeout=20)


def test_usage_report_grouped_and_filtered(gw: Gateway) -> None:
    user = gw.manage("POST", "/user", {"email": "analyst-target@corp.test"})
    own = gw.key(owner={"type": "user", "id": user["id"]})
    other = gw.key()
    client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=own["key"], max_retries=0)
    for i in range(4):
        client.chat.completions.create(
            model="mock/cheap" if i % 2 else "mock/listed",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={
                "requesty": {
                    "tags": ["batch"] if i < 3 else ["solo"],
                    "trace_id": "t-report",
                    "extra": {"feature": "f1"},
                }
            },
        )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="mock/nope", messages=[{"role": "user", "content": "hi"}])
    openai.OpenAI(base_url=f"{gw.base}/v1", api_key=other["key"], max_retries=0).chat.completions.create(
        model="mock/cheap", messages=[{"role": "user", "content": "hi"}]
    )
    usage_rows(gw.server, f"key_id IN ('{own['id']}', '{other['id']}')", expect=6)

    report = gw.manage("GET", f"/usage?key={own['id']}&group_by=model&bucket=day")
    assert report["source"] == "usage_hourly"
    by_model = {r["model"]: r for r in report["data"]}
    assert by_model["mock/cheap"]["requests"] == 2 and by_model["mock/listed"]["requests"] == 2
    assert by_model["mock/cheap"]["cost"] > 0 and by_model["mock/cheap"]["latency_ms"]["p50"] is not None
    assert all(r["bucket"] == by_model["mock/cheap"]["bucket"] for r in report["data"])
    assert by_model[""]["errors"] == 1 and by_model[""]["error_rate"] == 1.0

    tagged = gw.manage("GET", f"/usage?key={own['id']}&tag=batch")
    assert tagged["source"] == "usage_log" and tagged["data"][0]["requests"] == 3
    by_meta = gw.manage("GET", f"/usage?meta.feature=f1&key={own['id']},{other['id']}")
    assert by_meta["data"][0]["requests"] == 4
    errors = gw.manage("GET", f"/usage?key={own['id']}&status=error&group_by=status")
    assert errors["data"][0]["status"] == 404

    # A standard user sees only their own keys, whatever they ask for.
    mine = _manage_raw(gw, own["key"], "/usage", group_by="key", key=f"{own['id']},{other['id']}").json()
    assert [r["key"] for r in mine["data"]] == [own["id"]]
    assert _manage_raw(gw, own["key"], "/usage", bucket="fortnight").status_code == 400

    trace = gw.manage("GET", "/traces/t-report")
    assert [r["model"] for r in trace["requests"]] == ["mock/listed", "mock/cheap", "mock/listed", "mock/cheap"]
    assert _manage_raw(gw, other["key"], "/traces/t-report").status_code in (403, 404)


def test_reasoning_tokens_are_recorded_and_reported(gw: Gateway) -> None:
    created = gw.key()
    client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=created["key"], max_retries=0)
    messages = [{"role": "user", "content": "think first"}]
    tagged = {"requesty": {"tags": ["thinking"]}}
    answer = client.chat.completions.create(
        model="mock/cheap", messages=messages, reasoning_effort="high", extra_body=tagged
    )
    reasoning = answer.usage.completion_tokens_details.reasoning_tokens
    assert reasoning > 0
    with client.chat.completions.create(
        model="mock/cheap", messages=messages, reasoning_effort="high", stream=True, extra_body=tagged
    ) as stream:
        for _ in stream:
            pass
    client.chat.completions.create(model="mock/cheap", messages=messages)
    rows = usage_rows(gw.server, f"key_id = '{created['id']}'", expect=3)
    assert sorted(r["reasoning_tokens"] or 0 for r in rows) == [0, reasoning, reasoning]
    rolled = gw.manage("GET", f"/usage?key={created['id']}")
    raw = gw.manage("GET", f"/usage?key={created['id']}&tag=thinking")
    assert (rolled["source"], raw["source"]) == ("usage_hourly", "usage_log")
    assert rolled["data"][0]["reasoning_tokens"] == raw["data"][0]["reasoning_tokens"] == 2 * reasoning
    # No BYOK key paid for any of it: all of the cost went through the gateway.
    assert rolled["data"][0]["byok_cost"] == 0 and rolled["data"][0]["gateway_cost"] == rolled["data"][0]["cost"]


def test_export_streams_csv_and_jsonl(gw: Gateway) -> None:
    created = gw.key()
    client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=created["key"], max_retries=0)
    for _ in range(3):
        client.chat.completions.create(model="mock/cheap", messages=[{"role": "user", "content": "hi"}])
    usage_rows(gw.server, f"key_id = '{created['id']}'", expect=3)
    headers = {"authorization": f"Bearer {gw.env['ROUTER_ADMIN_KEY']}"}
    with httpx.stream(
        "GET", f"{gw.base}/v1/manage/usage/export", params={"key": created["id"], "format": "csv"}, headers=headers
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        lines = list(r.iter_lines())
    assert lines[0].startswith("request_id,ts,key_id") and len(lines) == 4
    r = httpx.get(f"{gw.base}/v1/manage/usage/export", params={"key": created["id"]}, headers=headers)
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == 3 and all(row["key_id"] == created["id"] and row["cost"] > 0 for row in rows)
    assert httpx.get(f"{gw.base}/v1/manage/usage/export", params={"format": "xml"}, headers=headers).status_code == 400


def test_feedback_on_a_request(gw: Gateway) -> None:
    created = gw.key()
    client = openai.OpenAI(base_url=f"{gw.base}/v1", api_key=created["key"], max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="mock/cheap", messages=[{"role": "user", "content": "hi"}]
    )
    request_id = raw.headers["x-request-id"]
    auth = {"authorization": f"Bearer {created['key']}"}
    stored = httpx.post(
        f"{gw.base}/v1/feedback/{request_id}", json={"rating": 1, "data": {"why": "concise"}}, headers=auth
    )
    assert stored.status_code == 201
    assert httpx.post(f"{gw.base}/v1/feedback/{request_id}", json={"rating": "great"}, headers=auth).status_code == 400
    assert httpx.post(f"{gw.base}/v1/feedback/not-an-id", json={"rating": 1}, headers=auth).status_code == 404
    usage_rows(gw.server, f"request_id = '{request_id}'")
    stranger = gw.key()["key"]
    refused = httpx.post(
        f"{gw.base}/v1/feedback/{request_id}", json={"rating": 0}, headers={"authorization": f"Bearer {stranger}"}
    )
    assert refused.status_code == 404
    shown = gw.manage("GET", f"/feedback/{request_id}")
    assert shown["data"][0]["rating"] == 1 and json.loads(shown["data"][0]["data"]) == {"why": "concise"}
