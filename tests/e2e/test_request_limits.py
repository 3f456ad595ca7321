"""Request limits as a client meets them: every numeric parameter in its API's range, UTF-8 everywhere, a nesting
limit, and a spend reservation no parameter value can shrink. Each refusal is a 400 in the endpoint's API shape,
naming the parameter, and never reaches the upstream (the mock records what does)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from servers import MockControl, Server, db_query, gateway_env, manage_call, start_gateway, usage_rows

# $1 per million tokens in and out: a request's worst case in micro-dollars is its body bytes plus its output.
CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: k}
  anthropic: {kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}
  openai-responses: {kind: openai-responses, base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0}, max_output_tokens: 16384,
     capabilities: [streaming, tools]}
  - {id: anthropic/claude, upstream_model: claude-sonnet-4-5, prices: {input: 1.0, output: 1.0},
     max_output_tokens: 64000, capabilities: [streaming, tools]}
  - {id: openai-responses/gpt-4o, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0},
     max_output_tokens: 16384, capabilities: [streaming, tools]}
  - {id: mock/embed, upstream_model: text-embedding-3-small, prices: {input: 1.0}, capabilities: [embeddings]}
  - {id: mock/short, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0}, max_output_tokens: 100}
  - {id: mock/long, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0}, max_output_tokens: 1000}
policies:
  - {name: short-then-long, type: fallback, targets: [{model: mock/short}, {model: mock/long}]}
"""

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"


def base_body(path: str) -> dict:
    if path == CHAT:
        return {"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
    if path == MESSAGES:
        return {"model": "anthropic/claude", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    if path == COUNT:
        return {"model": "anthropic/claude", "messages": [{"role": "user", "content": "hi"}]}
    if path == RESPONSES:
        return {"model": "openai-responses/gpt-4o", "input": "hi", "max_output_tokens": 16}
    return {"model": "mock/embed", "input": "hi"}


class Gateway:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.base = server.base
        self.env = server.env
        self.api_key = self.key()["key"]

    def manage(self, method: str, path: str, body: dict | None = None) -> dict:
        r = manage_call(self.base, self.env["ROUTER_ADMIN_KEY"], method, path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def key(self, **spec) -> dict:
        return self.manage("POST", "/apikey", {"name": "limits", **spec})

    def post(self, path: str, content: bytes, key: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {key or self.api_key}", "content-type": "application/json"}
        return httpx.post(self.base + path, content=content, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("limits")
    (root / "config.yaml").write_text(CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, root / "config.yaml"))
    yield Gateway(server)
    log = server.stop()
    assert "Traceback" not in log, log


def assert_refused(r: httpx.Response, path: str, param: str | None, code: str = "invalid_value") -> None:
    """A 400 in the endpoint's API shape that names `param`."""
    assert r.status_code == 400, r.text
    body = r.json()
    if path in (MESSAGES, COUNT):
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error", body
        if param is not None:
            assert param in body["error"]["message"], body
    else:
        error = body["error"]
        assert error["type"] == "invalid_request_error", body
        assert error["param"] == param and error["code"] == code, body


# (endpoint, parameter, value out of range or of the wrong type)
OUT_OF_RANGE = [
    (CHAT, "max_tokens", -1_000_000_000_000),
    (CHAT, "max_tokens", 0),
    (CHAT, "max_tokens", True),
    (CHAT, "max_tokens", 18446744073709551615),
    (CHAT, "max_completion_tokens", -5),
    (CHAT, "max_completion_tokens", 2**31),
    (CHAT, "n", 0),
    (CHAT, "n", 129),
    (CHAT, "n", False),
    (CHAT, "temperature", 2.01),
    (CHAT, "temperature", -0.1),
    (CHAT, "temperature", True),
    (CHAT, "temperature", "1"),
    (CHAT, "top_p", 1.5),
    (CHAT, "top_k", -1),
    (CHAT, "top_k", 2.5),
    (CHAT, "frequency_penalty", -2.5),
    (CHAT, "presence_penalty", 3),
    (CHAT, "logprobs", 1),
    (CHAT, "top_logprobs", 21),
    (CHAT, "top_logprobs", -1),
    (CHAT, "seed", 2**63),
    (CHAT, "seed", -(2**63) - 1),
    (CHAT, "seed", 1.5),
    (CHAT, "reasoning_effort", -5),
    (CHAT, "reasoning_effort", True),
    (MESSAGES, "max_tokens", -1_000_000_000_000),
    (MESSAGES, "max_tokens", 0),
    (MESSAGES, "max_tokens", True),
    (MESSAGES, "max_tokens", 2**64 - 1),
    (MESSAGES, "temperature", 1.5),
    (MESSAGES, "temperature", -1),
    (MESSAGES, "top_p", -0.5),
    (MESSAGES, "top_k", -1),
    (MESSAGES, "top_k", True),
    (RESPONSES, "max_output_tokens", -1),
    (RESPONSES, "max_output_tokens", 18446744073709551615),
    (RESPONSES, "max_output_tokens", False),
    (RESPONSES, "temperature", 2.5),
    (RESPONSES, "top_p", 2),
    (RESPONSES, "top_logprobs", 25),
    (RESPONSES, "max_tool_calls", 0),
    (EMBEDDINGS, "dimensions", 0),
    (EMBEDDINGS, "dimensions", -3),
    (EMBEDDINGS, "dimensions", True),
    (EMBEDDINGS, "encoding_format", "int8"),
    (EMBEDDINGS, "encoding_format", 0),
]


@pytest.mark.parametrize(("path", "param", "value"), OUT_OF_RANGE, ids=lambda v: str(v)[:24])
def test_out_of_range_parameters_are_refused_naming_them(
    gw: Gateway, mock: MockControl, path: str, param: str, value: object
) -> None:
    body = base_body(path) | {param: value}
    r = gw.post(path, json.dumps(body).encode())
    # The struct decoder refuses a wrong JSON type as invalid_type, the range check a wrong value as invalid_value.
    assert r.status_code == 400, r.text
    if path not in (MESSAGES, COUNT):
        assert r.json()["error"]["param"] == param, r.text
    else:
        assert_refused(r, path, param)
    assert mock.count() == 0


IN_RANGE = [
    (CHAT, {"temperature": 2, "top_p": 0, "n": 1, "seed": 2**63 - 1, "frequency_penalty": -2, "top_logprobs": 20,
            "logprobs": True, "presence_penalty": 2.0, "max_tokens": 16384, "top_k": 0, "reasoning_effort": "10000"}),
    (CHAT, {"seed": -(2**63), "temperature": None, "max_completion_tokens": 1}),
    (MESSAGES, {"temperature": 1, "top_p": 1, "top_k": 0, "max_tokens": 64000}),
    (MESSAGES, {"max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 1024}}),
    (RESPONSES, {"temperature": 0, "top_p": 1, "max_output_tokens": 16384, "top_logprobs": 0}),
    (EMBEDDINGS, {"dimensions": 1, "encoding_format": "base64"}),
]  # fmt: skip


@pytest.mark.parametrize(("path", "extra"), IN_RANGE, ids=lambda v: str(v)[:24])
def test_values_at_the_bounds_are_forwarded_untouched(gw: Gateway, mock: MockControl, path: str, extra: dict) -> None:
    body = json.dumps(base_body(path) | extra).encode()
    r = gw.post(path, body)
    assert r.status_code == 200, r.text
    sent = mock.requests()[-1]["body"]
    # A reasoning budget reaches an OpenAI upstream as the effort it maps to.
    expected = extra | ({"reasoning_effort": "high"} if "reasoning_effort" in extra else {})
    for name, value in expected.items():
        assert sent[name] == value, (name, sent)


@pytest.mark.parametrize(
    ("path", "param", "model", "limit"),
    [
        (CHAT, "max_tokens", "mock/gpt-4o", 16384),
        (CHAT, "max_completion_tokens", "mock/gpt-4o", 16384),
        (MESSAGES, "max_tokens", "anthropic/claude", 64000),
        (RESPONSES, "max_output_tokens", "openai-responses/gpt-4o", 16384),
        (CHAT, "max_tokens", "policy/short-then-long", 1000),
    ],
)
def test_max_tokens_above_the_model_limit_is_refused(
    gw: Gateway, mock: MockControl, path: str, param: str, model: str, limit: int
) -> None:
    body = base_body(path) | {"model": model, param: limit + 1}
    r = gw.post(path, json.dumps(body).encode())
    assert_refused(r, path, param)
    assert str(limit) in r.text
    assert mock.count() == 0
    assert gw.post(path, json.dumps(body | {param: limit}).encode()).status_code == 200


def test_thinking_budget_is_checked_on_messages_and_count_tokens(gw: Gateway, mock: MockControl) -> None:
    too_small = {"type": "enabled", "budget_tokens": 1023}
    for path in (MESSAGES, COUNT):
        r = gw.post(path, json.dumps(base_body(path) | {"thinking": too_small}).encode())
        assert_refused(r, path, "thinking.budget_tokens")
    not_below_max = base_body(MESSAGES) | {"max_tokens": 2048, "thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert_refused(gw.post(MESSAGES, json.dumps(not_below_max).encode()), MESSAGES, "thinking.budget_tokens")
    assert mock.count() == 0


def test_negative_max_tokens_burst_cannot_overrun_a_budget(gw: Gateway, mock: MockControl) -> None:
    """50 concurrent requests with a ~400 KB prompt and a hugely negative max_tokens against a $0.0081 limit:
    all refused before any reservation, nothing forwarded, nothing spent; with a valid max_tokens the prompt
    alone is over the limit, so they are 402s."""
    limited = gw.key(monthly_limit=0.0081)
    prompt = "lorem ipsum dolor sit amet " * 15_000
    messages = [{"role": "user", "content": prompt}]

    def burst(max_tokens: int) -> list[int]:
        payload = json.dumps({"model": "mock/gpt-4o", "messages": messages, "max_tokens": max_tokens}).encode()
        limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
        headers = {"authorization": f"Bearer {limited['key']}", "content-type": "application/json"}
        with httpx.Client(limits=limits, timeout=60) as client, ThreadPoolExecutor(max_workers=50) as pool:
            futures = [pool.submit(client.post, gw.base + CHAT, content=payload, headers=headers) for _ in range(50)]
            return [f.result().status_code for f in futures]

    assert burst(-1_000_000_000_000) == [400] * 50
    assert burst(18446744073709551615) == [400] * 50
    assert burst(100) == [402] * 50
    assert mock.count() == 0
    usage_rows(gw.server, f"key_id = '{limited['id']}'", expect=150)
    spent = db_query(gw.env, "SELECT COALESCE(SUM(cost), 0) FROM usage_log WHERE key_id = ?", (limited["id"],))
    assert spent[0][0] <= 0.0081
    shown = gw.manage("GET", f"/apikey/{limited['id']}")
    assert shown["budget"]["spent"] <= 0.0081


def test_n_multiplies_the_reservation(gw: Gateway, mock: MockControl) -> None:
    body = base_body(CHAT) | {"max_tokens": 1000}
    size = len(json.dumps(body | {"n": 128}).encode())
    # Room for one answer of 1000 tokens, not for 128 of them.
    limited = gw.key(monthly_limit=(size + 1000 + 50) / 1e6)
    assert gw.post(CHAT, json.dumps(body | {"n": 128}).encode(), limited["key"]).status_code == 402
    assert gw.post(CHAT, json.dumps(body | {"n": 1}).encode(), limited["key"]).status_code == 200
    assert mock.count() == 1


ALL_ENDPOINTS = [CHAT, MESSAGES, COUNT, RESPONSES, EMBEDDINGS]


def _with_invalid_utf8(path: str, where: str) -> bytes:
    body = base_body(path)
    marker = "MARKER"
    if where == "string":
        body["model"] = body["model"] + marker
    elif where == "content_part":
        part = {"type": "text", "text": marker}
        if path == EMBEDDINGS:
            body["input"] = [marker]
        elif path == RESPONSES:
            body["input"] = [{"role": "user", "content": [{"type": "input_text", "text": marker}]}]
        else:
            body["messages"] = [{"role": "user", "content": [part]}]
    elif where == "unknown_message_key":
        if path in (RESPONSES, EMBEDDINGS):
            body["metadata"] = {"note": marker}
        else:
            body["messages"] = [{"role": "user", "content": "hi", "x_note": marker}]
    else:
        body["x_unknown"] = marker
    raw = json.dumps(body).encode()
    return raw.replace(marker.encode(), b"ok\xff\xfe")


@pytest.mark.parametrize("where", ["string", "content_part", "unknown_message_key", "unknown_top_level"])
@pytest.mark.parametrize("path", ALL_ENDPOINTS)
def test_invalid_utf8_anywhere_is_a_400_naming_the_byte(gw: Gateway, mock: MockControl, path: str, where: str) -> None:
    raw = _with_invalid_utf8(path, where)
    r = gw.post(path, raw)
    assert_refused(r, path, None, code="invalid_json")
    bad_at = raw.index(b"\xff")
    assert f"invalid UTF-8 at byte {bad_at}" in r.text
    if path not in (MESSAGES, COUNT):
        assert r.json()["error"]["code"] == "invalid_json"
    assert mock.count() == 0


@pytest.mark.parametrize("path", ALL_ENDPOINTS)
def test_nesting_deeper_than_128_is_refused(gw: Gateway, mock: MockControl, path: str) -> None:
    def nested(depth: int) -> bytes:
        # The body object is level 1; `x_deep` adds depth - 1 more.
        inner = "[" * (depth - 1) + "1" + "]" * (depth - 1)
        return json.dumps(base_body(path))[:-1].encode() + b', "x_deep": ' + inner.encode() + b"}"

    for depth in (129, 975, 100_000):
        r = gw.post(path, nested(depth))
        assert r.status_code == 400, r.text
        assert "more than 128 levels deep" in r.text
        if path not in (MESSAGES, COUNT):
            assert r.json()["error"]["code"] == "json_too_deep"
    assert mock.count() == 0
    assert gw.post(path, nested(128)).status_code == 200


def test_management_bodies_get_the_same_checks(gw: Gateway) -> None:
    admin = {"authorization": f"Bearer {gw.env['ROUTER_ADMIN_KEY']}", "content-type": "application/json"}
    bad = b'{"name": "k\xff"}'
    r = httpx.post(f"{gw.base}/v1/manage/apikey", content=bad, headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json", r.text
    deep = b'{"name": "k", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    r = httpx.post(f"{gw.base}/v1/manage/apikey", content=deep, headers=admin)
    assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep", r.text


def test_usage_metadata_filters_take_only_plain_field_names(gw: Gateway, mock: MockControl) -> None:
    admin = gw.env["ROUTER_ADMIN_KEY"]
    body = base_body(CHAT) | {"requesty": {"extra": {"team-name": "search", "a.b": "dotted"}}}
    assert gw.post(CHAT, json.dumps(body).encode()).status_code == 200
    usage_rows(gw.server, "extra IS NOT NULL", expect=1)
    for name in ("meta.a[", 'meta.a"b', "meta.$", "meta.a b", "meta." + "x" * 200):
        r = manage_call(gw.base, admin, "GET", "/usage", params={name: "x"})
        assert r.status_code == 400, (name, r.text)
        assert r.json()["error"]["param"].startswith("meta.")
    for name, value in (("meta.team-name", "search"), ("meta.a.b", "dotted")):
        r = manage_call(gw.base, admin, "GET", "/usage", params={name: value, "group_by": "key"})
        assert r.status_code == 200, r.text
        assert sum(row["requests"] for row in r.json()["data"]) >= 1, (name, r.json())


def test_feedback_bodies_are_checked_too(gw: Gateway) -> None:
    sent = gw.post(CHAT, json.dumps(base_body(CHAT)).encode())
    url = f"{gw.base}/v1/feedback/{sent.headers['x-request-id']}"
    headers = {"authorization": f"Bearer {gw.api_key}", "content-type": "application/json"}
    for body, code in (
        (b'{"rating": 1, "data": {"x": ' + b"[" * 2000 + b"]" * 2000 + b"}}", "json_too_deep"),
        (b'{"rating": 1, "data": {"x": "\xff"}}', "invalid_json"),
        (b'{"rating": 18446744073709551616}', "invalid_value"),
    ):
        r = httpx.post(url, content=body, headers=headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
    assert httpx.post(url, json={"rating": -(2**63)}, headers=headers).status_code == 201
