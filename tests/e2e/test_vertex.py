"""Google Vertex AI (`kind: vertex`) end to end: Gemini and Claude on Vertex through the gateway, with the
service account's OAuth token fetched from the mock's token endpoint (which checks the signed JWT)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from router.mock import vertex as mock_vertex

from servers import MockControl, Server, create_key, gateway_env, start_gateway, usage_rows

CONFIG = """
providers:
  vertex:
    kind: vertex
    base_url: env:TEST_VERTEX_URL
    project: router-test
    region: europe-west1
    service_account: env:TEST_SA_FILE
  vertexbad:
    kind: vertex
    base_url: env:TEST_VERTEX_URL
    project: router-test
    service_account: env:TEST_BAD_SA_JSON
models:
  - id: vertex/google/gemini-2.5-pro
    capabilities: [streaming, tools, reasoning]
  - id: vertex/google/gemini-2.5-flash@us-central1
  - id: vertex/anthropic/claude-3-7-sonnet
    upstream_model: anthropic/claude-3-7-sonnet@20250219
  - id: vertex/throttled
    upstream_model: google/gemini-2.5-flash@fail=429
  - id: vertexbad/google/gemini-2.5-pro
  - id: vertex/google/gemini-2.5-flash-image
    capabilities: [images]
  - id: vertex/google/imagen-4.0-generate-001
    capabilities: [images]
  - id: vertexbad/google/imagen-4.0-generate-001
    capabilities: [images]
  - id: vertex/google/gemini-2.5-flash-search
    upstream_model: google/gemini-2.5-flash
    capabilities: [streaming, tools, web_search]
"""
GEMINI = "vertex/google/gemini-2.5-pro"
CLAUDE = "vertex/anthropic/claude-3-7-sonnet"
TOOL = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def vertex_gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("vertex")
    (root / "config.yaml").write_text(CONFIG)
    token_uri = f"{mock_server.base}/oauth2/token"
    sa_file = root / "sa.json"
    sa_file.write_text(json.dumps(mock_vertex.service_account(token_uri)))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    bad = mock_vertex.service_account(token_uri) | {"private_key": pem.decode()}
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env |= {
        "TEST_VERTEX_URL": f"{mock_server.base}/v1",
        "TEST_SA_FILE": str(sa_file),
        "TEST_BAD_SA_JSON": json.dumps(bad),
    }
    server = start_gateway(env)
    server.key = create_key(server.env, "vertex")["key"]  # type: ignore[attr-defined]
    yield server
    output = server.stop()
    # Neither the access token nor the key ever reaches the gateway's output.
    assert "ya29.mock" not in output and "PRIVATE KEY" not in output


@pytest.fixture
def oai(vertex_gateway: Server) -> Iterator[openai.OpenAI]:
    key = vertex_gateway.key  # type: ignore[attr-defined]
    with openai.OpenAI(base_url=f"{vertex_gateway.base}/v1", api_key=key, max_retries=0, timeout=20) as client:
        yield client


@pytest.fixture
def claude(vertex_gateway: Server) -> Iterator[anthropic.Anthropic]:
    key = vertex_gateway.key  # type: ignore[attr-defined]
    with anthropic.Anthropic(base_url=vertex_gateway.base, api_key=key, max_retries=0, timeout=20) as client:
        yield client


def _last(mock: MockControl) -> dict:
    return [r for r in mock.requests() if r["path"].startswith("/v1/projects/")][-1]


def test_gemini_on_vertex_unary_and_stream(oai: openai.OpenAI, mock: MockControl) -> None:
    reply = oai.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Hello"}])
    assert reply.choices[0].message.content
    record = _last(mock)
    prefix = "/v1/projects/router-test/locations/europe-west1/publishers/google/models/gemini-2.5-pro"
    assert record["path"] == f"{prefix}:generateContent"
    assert record["headers"]["authorization"].startswith("Bearer ")  # a token the mock issued, or a 401
    stream = oai.chat.completions.create(model=GEMINI, messages=[{"role": "user", "content": "Story"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert _last(mock)["path"] == f"{prefix}:streamGenerateContent"
    oai.chat.completions.create(
        model="vertex/google/gemini-2.5-flash@us-central1", messages=[{"role": "user", "content": "x"}]
    )
    assert "/locations/us-central1/" in _last(mock)["path"]


def test_claude_on_vertex_raw_predict(claude: anthropic.Anthropic, mock: MockControl) -> None:
    message = claude.messages.create(
        model=CLAUDE, max_tokens=100, tools=[TOOL], messages=[{"role": "user", "content": "Weather in Paris?"}]
    )
    assert message.stop_reason == "tool_use"
    record = _last(mock)
    assert record["path"].endswith("/publishers/anthropic/models/claude-3-7-sonnet@20250219:rawPredict")
    assert record["body"]["anthropic_version"] == "vertex-2023-10-16" and "model" not in record["body"]
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]) as stream:
        assert "".join(stream.text_stream)
    assert _last(mock)["path"].endswith(":streamRawPredict")


def test_claude_on_vertex_from_chat(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "Hi"}], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in reply if c.choices)


def test_a_key_the_token_endpoint_refuses_is_a_502(oai: openai.OpenAI, mock: MockControl) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(
            model="vertexbad/google/gemini-2.5-pro", messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 502 and "OAuth token endpoint refused" in str(info.value)
    assert not [r for r in mock.requests() if r["path"].startswith("/v1/projects/")]


def test_errors_keep_their_status(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="vertex/throttled", messages=[{"role": "user", "content": "x"}])


def test_locations_are_catalog_regions(vertex_gateway: Server) -> None:
    key = vertex_gateway.key  # type: ignore[attr-defined]
    data = httpx.get(f"{vertex_gateway.base}/v1/models", headers={"authorization": f"Bearer {key}"}).json()["data"]
    regions = {m["id"]: m["region"] for m in data}
    assert regions[GEMINI] == "europe-west1"
    assert regions["vertex/google/gemini-2.5-flash@us-central1"] == "us-central1"


def test_images_through_vertex_generate_content(oai: openai.OpenAI, mock: MockControl) -> None:
    result = oai.images.generate(model="vertex/google/gemini-2.5-flash-image", prompt="a fox", size="1024x1536")
    assert base64.b64decode(result.data[0].b64_json or "").startswith(b"\x89PNG")
    record = [r for r in mock.requests() if r["path"].startswith("/v1/projects/")][-1]
    assert record["path"].endswith("/publishers/google/models/gemini-2.5-flash-image:generateContent")
    assert record["headers"]["authorization"].startswith("Bearer ")
    assert record["body"]["generationConfig"]["imageConfig"] == {"aspectRatio": "2:3"}
    with pytest.raises(openai.BadRequestError) as claude:
        oai.images.generate(model=CLAUDE, prompt="a fox")
    assert claude.value.code == "model_not_supported"


def test_web_search_is_google_search_grounding_on_vertex(oai: openai.OpenAI, mock: MockControl) -> None:
    reply = oai.chat.completions.create(
        model="vertex/google/gemini-2.5-flash-search",
        messages=[{"role": "user", "content": "News in London?"}],
        tools=[{"type": "web_search"}],  # type: ignore[list-item]
    )
    annotations = reply.choices[0].message.annotations or []
    assert annotations and all(a.url_citation.url.startswith("https://") for a in annotations)
    record = [r for r in mock.requests() if r["path"].startswith("/v1/projects/")][-1]
    assert record["body"]["tools"] == [{"google_search": {}}]


IMAGEN = "vertex/google/imagen-4.0-generate-001"


def test_imagen_on_vertex_predict(vertex_gateway: Server, oai: openai.OpenAI, mock: MockControl) -> None:
    """`:predict` on the regional endpoint with the service account's token: six images are two calls (Imagen
    returns at most four per call), the size an aspect ratio, JPEG through `outputOptions`, $0.04 an image."""
    raw = oai.images.with_raw_response.generate(
        model=IMAGEN, prompt="a lighthouse at dawn", n=6, size="1792x1024", output_format="jpeg", quality="high"
    )
    result = raw.parse()
    assert len(result.data) == 6 and all(image.b64_json for image in result.data)
    sent = [r for r in mock.requests() if r["path"].startswith("/v1/projects/")]
    assert [r["path"] for r in sent] == [
        "/v1/projects/router-test/locations/europe-west1/publishers/google/models/imagen-4.0-generate-001:predict"
    ] * 2
    assert all(r["headers"]["authorization"].startswith("Bearer ") for r in sent)  # the mock checked the token
    parameters = {
        "includeRaiReason": True,
        "aspectRatio": "16:9",
        "sampleImageSize": "2K",
        "outputOptions": {"mimeType": "image/jpeg"},
    }
    assert sorted(r["body"]["parameters"]["sampleCount"] for r in sent) == [2, 4]
    for r in sent:
        assert r["body"]["instances"] == [{"prompt": "a lighthouse at dawn"}]
        assert {k: v for k, v in r["body"]["parameters"].items() if k != "sampleCount"} == parameters
    rows = usage_rows(vertex_gateway, f"request_id = '{raw.headers['x-request-id']}'")
    assert rows[0]["status"] == 200 and rows[0]["cost"] == pytest.approx(6 * 0.04, abs=1e-9)


def test_imagen_on_vertex_url_format_sizes_and_refusals(oai: openai.OpenAI, mock: MockControl) -> None:
    url = oai.images.generate(model=IMAGEN, prompt="a cat", response_format="url").data[0].url or ""
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.partition(",")[2]).startswith(b"\x89PNG")
    assert "aspectRatio" not in _last(mock)["body"]["parameters"]  # no size: the model's default
    before = len(mock.requests())
    for size in ("1536x1024", "1024x1536"):
        with pytest.raises(openai.BadRequestError) as refused:
            oai.images.generate(model=IMAGEN, prompt="a cat", size=size)  # type: ignore[arg-type]
        assert refused.value.param == "size" and size in refused.value.message
    with pytest.raises(openai.BadRequestError) as webp:
        oai.images.generate(model=IMAGEN, prompt="a cat", output_format="webp")
    assert webp.value.param == "output_format"
    assert len(mock.requests()) == before
    with pytest.raises(openai.BadRequestError) as filtered:
        oai.images.generate(model=IMAGEN, prompt="please refuse this")
    assert filtered.value.code == "content_policy_violation"


def test_imagen_needs_the_vertex_token(oai: openai.OpenAI, mock: MockControl) -> None:
    """A service account the token endpoint refuses never reaches `:predict` with a usable token."""
    with pytest.raises(openai.APIStatusError) as failed:
        oai.images.generate(model="vertexbad/google/imagen-4.0-generate-001", prompt="a cat")
    assert failed.value.status_code == 502
    assert not any(r["path"].endswith(":predict") for r in mock.requests())


def test_the_mock_checks_predict_auth_like_other_vertex_methods(mock_server: Server) -> None:
    body = {"instances": [{"prompt": "a cat"}], "parameters": {"sampleCount": 1}}
    path = "/v1/projects/router-test/locations/europe-west1/publishers/google/models/imagen-4.0-generate-001:predict"
    for headers in ({}, {"authorization": "Bearer ya29.mock.1.forged"}):
        refused = httpx.post(f"{mock_server.base}{path}", json=body, headers=headers)
        assert refused.status_code == 401 and refused.json()["error"]["status"] == "UNAUTHENTICATED"
    token = mock_vertex.issue_token(int(time.time()) + 60)
    ok = httpx.post(f"{mock_server.base}{path}", json=body, headers={"authorization": f"Bearer {token}"})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["mimeType"] == "image/png"
    gemini = httpx.post(f"{mock_server.base}/v1beta/models/imagen-4.0-generate-001:predict", json=body)
    assert gemini.status_code == 403  # no API key, as Google answers
