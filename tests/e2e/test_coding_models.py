"""`coding/<model>` models end to end: listed, governed like any model, routed to the underlying upstream model
with prompt caching placed and the parameters reasoning models refuse fixed (asserted on what the mock received)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from router.config import parse_config
from router.errors import ConfigError

from servers import ADMIN_KEY, MockControl, Server, create_key, gateway_env, manage_call, start_gateway

ADMIN = ADMIN_KEY
CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: mock-upstream-key}
  anthropic: {kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}
  deepseek: {base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: anthropic/claude-sonnet-4-5, upstream_model: claude-sonnet-4-5, coding: true, region: eu-west-1,
     capabilities: [streaming, tools]}
  - {id: mock/o3-mini, upstream_model: o3-mini, coding: true, capabilities: [streaming, reasoning]}
  - {id: deepseek/deepseek-reasoner, coding: true, capabilities: [streaming, reasoning]}
  - {id: mock/gpt-4o, upstream_model: gpt-4o}
"""
LONG = "You are a coding agent. Follow the repository's conventions. " * 100


@pytest.fixture(scope="module")
def gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("coding")
    config = root / "router.yaml"
    config.write_text(CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, config, admin_key=ADMIN))
    server.key = create_key(server.env, "coding")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


def _client(server: Server, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=key or server.key, max_retries=0, timeout=20)  # type: ignore[attr-defined]


def _sent(mock: MockControl) -> dict:
    requests = mock.requests()
    assert len(requests) == 1, requests
    return requests[0]["body"]


def test_listed_next_to_their_base_models(gateway: Server) -> None:
    listed = {m.id: m for m in _client(gateway).models.list().data}
    assert {"coding/claude-sonnet-4-5", "coding/o3-mini", "coding/deepseek-reasoner"} <= set(listed)
    entry = listed["coding/claude-sonnet-4-5"].model_dump()
    assert entry["provider"] == "anthropic" and entry["upstream_model"] == "claude-sonnet-4-5"
    assert entry["region"] == "eu-west-1"


def test_openai_reasoning_parameters_are_fixed(gateway: Server, mock: MockControl) -> None:
    _client(gateway).chat.completions.create(
        model="coding/o3-mini",
        messages=[
            {"role": "system", "content": "Be exact."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello", "reasoning_content": "thinking"},  # type: ignore[typeddict-unknown-key]
            {"role": "user", "content": "Fix the bug"},
        ],
        temperature=0.2,
        top_p=0.9,
        presence_penalty=0.5,
        max_tokens=300,
    )
    body = _sent(mock)
    assert body["model"] == "o3-mini"
    assert not {"temperature", "top_p", "presence_penalty", "max_tokens"} & set(body)
    assert body["max_completion_tokens"] == 300
    assert [m["role"] for m in body["messages"]] == ["developer", "user", "assistant", "user"]
    assert "reasoning_content" not in body["messages"][2]


def test_the_base_model_is_left_alone(gateway: Server, mock: MockControl) -> None:
    _client(gateway).chat.completions.create(
        model="mock/o3-mini", messages=[{"role": "system", "content": "x"}, {"role": "user", "content": "y"}],
        temperature=0.2, max_tokens=300,
    )  # fmt: skip
    body = _sent(mock)
    assert body["temperature"] == 0.2 and body["max_tokens"] == 300 and body["messages"][0]["role"] == "system"


def test_deepseek_reasoner_history_and_logprobs(gateway: Server, mock: MockControl) -> None:
    with _client(gateway).chat.completions.create(
        model="coding/deepseek-reasoner",
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello", "reasoning_content": "I think"},  # type: ignore[typeddict-unknown-key]
            {"role": "user", "content": "More"},
        ],
        logprobs=True,
        max_tokens=200,
        stream=True,
    ) as stream:
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    body = _sent(mock)
    assert body["model"] == "deepseek-reasoner" and "logprobs" not in body and body["max_tokens"] == 200
    assert all("reasoning_content" not in m for m in body["messages"])


def test_anthropic_gets_cache_breakpoints(gateway: Server, mock: MockControl) -> None:
    client = anthropic.Anthropic(base_url=gateway.base, api_key=gateway.key, max_retries=0, timeout=20)  # type: ignore[attr-defined]
    messages = [{"role": "user", "content": "Refactor this module."}]
    client.messages.create(model="coding/claude-sonnet-4-5", max_tokens=100, system=LONG, messages=messages)
    body = _sent(mock)
    assert body["model"] == "claude-sonnet-4-5"
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    # Through chat too, and the request can still decline.
    mock.reset()
    _client(gateway).chat.completions.create(
        model="coding/claude-sonnet-4-5", messages=[{"role": "system", "content": LONG}, *messages]
    )
    assert "cache_control" in _sent(mock)["system"][-1]
    mock.reset()
    client.messages.create(
        model="coding/claude-sonnet-4-5", max_tokens=100, system=LONG, messages=messages,
        extra_body={"requesty": {"auto_cache": False}},
    )  # fmt: skip
    assert _sent(mock)["system"] == LONG


def test_governed_like_any_model(gateway: Server, mock: MockControl) -> None:
    spec = {"name": "base-only", "models": ["anthropic/claude-sonnet-4-5"]}
    created = manage_call(gateway.base, ADMIN, "POST", "/access-list", json=spec)
    assert created.status_code < 300, created.text
    key = manage_call(gateway.base, ADMIN, "POST", "/apikey", json={"name": "base-only", "access_list": "base-only"})
    client = _client(gateway, key.json()["key"])
    assert [m.id for m in client.models.list().data] == ["anthropic/claude-sonnet-4-5"]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="coding/claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}])
    assert mock.count() == 0
    updated = manage_call(
        gateway.base, ADMIN, "PUT", "/access-list/base-only", json={"name": "base-only", "patterns": ["coding/*"]}
    )
    assert updated.status_code == 200, updated.text
    assert {m.id for m in client.models.list().data} == {
        "coding/claude-sonnet-4-5", "coding/o3-mini", "coding/deepseek-reasoner"
    }  # fmt: skip


def test_config_errors() -> None:
    base = "providers: {mock: {base_url: 'http://x'}}\nmodels:\n"
    with pytest.raises(ConfigError, match="duplicate model id 'coding/m'"):
        parse_config(base + "  - {id: mock/m, coding: true}\n  - {id: coding/m, provider: mock}\n")
    with pytest.raises(ConfigError, match="provider 'coding' is not defined"):
        parse_config(base + "  - {id: coding/m}\n")
    config = parse_config(base + "  - {id: coding/mine, provider: mock, upstream_model: o1}\n")
    assert config.models[0].provider_name == "mock"
