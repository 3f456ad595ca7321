"""Fallback across providers: Anthropic → Bedrock (eu-central-1) → Vertex, on 429 and 529 from the first."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import openai
import pytest

from router.mock import bedrock as mock_bedrock
from router.mock import vertex as mock_vertex

from servers import MockControl, Server, create_key, gateway_env, start_gateway

CONFIG = f"""
providers:
  anthropic:
    kind: anthropic
    base_url: env:ROUTER_MOCK_URL
    api_key: k
  bedrock:
    kind: bedrock
    base_url: env:TEST_MOCK_BASE
    aws_access_key_id: {mock_bedrock.ACCESS_KEY_ID}
    aws_secret_access_key: {mock_bedrock.SECRET_ACCESS_KEY}
  vertex:
    kind: vertex
    base_url: env:TEST_VERTEX_URL
    project: router-test
    region: europe-west1
    service_account: env:TEST_SA_JSON
models:
  - id: anthropic/claude-429
    upstream_model: claude-sonnet-4-5@fail=429@retry_after=0
  - id: anthropic/claude-529
    upstream_model: claude-sonnet-4-5@fail=529
  - id: bedrock/claude@eu-central-1
    upstream_model: eu.anthropic.claude-sonnet-4-5-20250929-v1:0@eu-central-1
  - id: bedrock/throttled@eu-central-1
    upstream_model: anthropic.claude-sonnet-4-5@fail=429@retry_after=0@eu-central-1
  - id: vertex/anthropic/claude-sonnet-4-5
    upstream_model: anthropic/claude-sonnet-4-5@20250929
policies:
  - name: eu-claude-429
    type: fallback
    targets:
      - model: anthropic/claude-429
      - model: bedrock/claude@eu-central-1
      - model: vertex/anthropic/claude-sonnet-4-5
  - name: eu-claude-529
    type: fallback
    targets:
      - model: anthropic/claude-529
      - model: bedrock/claude@eu-central-1
      - model: vertex/anthropic/claude-sonnet-4-5
  - name: to-vertex
    type: fallback
    targets:
      - model: anthropic/claude-429
      - model: bedrock/throttled@eu-central-1
      - model: vertex/anthropic/claude-sonnet-4-5
"""


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fallback")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    sa = mock_vertex.service_account(f"{mock_server.base}/oauth2/token")
    env |= {
        "TEST_MOCK_BASE": mock_server.base,
        "TEST_VERTEX_URL": f"{mock_server.base}/v1",
        "TEST_SA_JSON": json.dumps(sa),
    }
    server = start_gateway(env)
    server.key = create_key(server.env, "fallback")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


def _upstreams(mock: MockControl) -> list[str]:
    kinds = []
    for r in mock.requests():
        path = r["path"]
        if path == "/v1/messages":
            kinds.append("anthropic")
        elif path.startswith("/model/"):
            kinds.append("bedrock")
        elif path.startswith("/v1/projects/"):
            kinds.append("vertex")
    return kinds


@pytest.mark.parametrize("policy", ["eu-claude-429", "eu-claude-529"])
def test_bedrock_takes_over(gw: Server, mock: MockControl, policy: str) -> None:
    key = gw.key  # type: ignore[attr-defined]
    with openai.OpenAI(base_url=f"{gw.base}/v1", api_key=key, max_retries=0, timeout=30) as client:
        reply = client.chat.completions.create(model=f"policy/{policy}", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    assert _upstreams(mock)[-1] == "bedrock" and "anthropic" in _upstreams(mock)


def test_vertex_takes_over_when_bedrock_throttles_too(gw: Server, mock: MockControl) -> None:
    key = gw.key  # type: ignore[attr-defined]
    messages = [{"role": "user", "content": "hi"}]
    with (
        anthropic.Anthropic(base_url=gw.base, api_key=key, max_retries=0, timeout=30) as client,
        client.messages.stream(model="policy/to-vertex", max_tokens=100, messages=messages) as stream,  # type: ignore[arg-type]
    ):
        assert "".join(stream.text_stream)
    upstreams = _upstreams(mock)
    assert upstreams[-1] == "vertex" and "bedrock" in upstreams and "anthropic" in upstreams
