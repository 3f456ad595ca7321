"""`POST /v1/images/generations` end to end: the official openai SDK's `client.images.generate` → gateway → OpenAI,
Azure and Gemini image models on the mock; governance, guardrails, spend and the usage row as on chat."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from router.mock import azure as mock_azure
from router.mock import gemini as mock_gemini

from servers import MockControl, Server, gateway_env, manage_call, start_gateway, usage_rows

CONFIG = f"""
providers:
  openai:
    kind: openai
    base_url: env:ROUTER_MOCK_URL
    api_key: sk-mock
  azure:
    kind: azure
    base_url: env:TEST_AZURE_URL
    api_key: {mock_azure.API_KEY}
  google:
    kind: gemini
    base_url: env:TEST_GEMINI_URL
    api_key: {mock_gemini.API_KEY}
models:
  - id: openai/gpt-image-1
    capabilities: [images]
  - id: openai/dall-e-3
    capabilities: [images]
  - id: openai/gpt-4o
  - id: openai/throttled-image
    upstream_model: gpt-image-1@fail=429
    capabilities: [images]
  - id: azure/openai/gpt-image-1
    capabilities: [images]
  - id: google/gemini-2.5-flash-image
    capabilities: [images, vision]
  - id: google/gemini-2.5-flash
  - id: google/imagen-4.0-generate-001
    capabilities: [images]
guardrails:
  custom:
    - {{name: employee_id, pattern: "EMP-[0-9]{{6}}"}}
"""
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("images")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env |= {"TEST_AZURE_URL": mock_server.base, "TEST_GEMINI_URL": f"{mock_server.base}/v1beta"}
    server = start_gateway(env)
    yield server
    server.stop()


def _key(gw: Server, **spec: object) -> str:
    r = manage_call(gw.base, gw.env["ROUTER_ADMIN_KEY"], "POST", "/apikey", json={"name": "images", **spec})
    assert r.status_code in (200, 201), r.text
    return r.json()["key"]


@pytest.fixture(scope="module")
def key(gw: Server) -> str:
    return _key(gw)


@pytest.fixture
def oai(gw: Server, key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gw.base}/v1", api_key=key, max_retries=0, timeout=20) as client:
        yield client


def _upstream(mock: MockControl, prefix: str) -> list[dict]:
    return [r for r in mock.requests() if r["path"].startswith(prefix)]


def _row(gw: Server, request_id: str) -> dict:
    rows = usage_rows(gw, f"request_id = '{request_id}'")
    assert rows, request_id
    return dict(rows[0])


def test_openai_gpt_image_b64_priced_per_image(gw: Server, oai: openai.OpenAI, mock: MockControl) -> None:
    raw = oai.images.with_raw_response.generate(
        model="openai/gpt-image-1", prompt="a red fox in snow", n=2, size="1024x1024", quality="high"
    )
    result = raw.parse()
    assert len(result.data) == 2
    assert all(base64.b64decode(image.b64_json or "").startswith(PNG) for image in result.data)
    assert result.usage is not None and result.usage.output_tokens > 0
    (sent,) = _upstream(mock, "/v1/images")
    assert sent["body"]["model"] == "gpt-image-1" and sent["body"]["n"] == 2 and sent["body"]["quality"] == "high"
    row = _row(gw, raw.headers["x-request-id"])
    assert row["endpoint"] == "images" and row["model"] == "openai/gpt-image-1" and row["status"] == 200
    # Two high-quality 1024x1024 images at $0.167 each, plus the prompt's text tokens at $5 per million.
    assert row["prompt_tokens"] == result.usage.input_tokens
    assert row["cost"] == pytest.approx(2 * 0.167 + result.usage.input_tokens * 5.0 / 1e6, abs=1e-6)


def test_dall_e_url_answer(oai: openai.OpenAI, mock: MockControl) -> None:
    result = oai.images.generate(model="openai/dall-e-3", prompt="a lighthouse", size="1792x1024", quality="hd")
    assert result.data and (result.data[0].url or "").startswith("https://")
    assert _upstream(mock, "/v1/images")[0]["body"]["size"] == "1792x1024"


def test_azure_deployment_path_and_api_key(oai: openai.OpenAI, mock: MockControl) -> None:
    result = oai.images.generate(model="azure/openai/gpt-image-1", prompt="a sunset over mountains", quality="low")
    assert base64.b64decode(result.data[0].b64_json or "").startswith(PNG)
    (sent,) = _upstream(mock, "/openai/")
    assert sent["path"] == "/openai/deployments/gpt-image-1/images/generations"
    assert "api-key" in sent["headers"] and "authorization" not in sent["headers"]


def test_gemini_one_call_per_image_with_aspect_ratio(gw: Server, oai: openai.OpenAI, mock: MockControl) -> None:
    raw = oai.images.with_raw_response.generate(
        model="google/gemini-2.5-flash-image", prompt="a city at night", n=2, size="1536x1024"
    )
    result = raw.parse()
    assert len(result.data) == 2
    assert all(base64.b64decode(image.b64_json or "").startswith(PNG) for image in result.data)
    sent = _upstream(mock, "/v1beta/")
    assert [r["path"] for r in sent] == ["/v1beta/models/gemini-2.5-flash-image:generateContent"] * 2
    body = sent[0]["body"]
    assert body["generationConfig"] == {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "3:2"}}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "a city at night"}]}]
    row = _row(gw, raw.headers["x-request-id"])
    # Token-priced: 1,290 output tokens per image at $30 per million, the prompt at $0.30.
    assert row["completion_tokens"] == 2 * 1290
    assert row["cost"] == pytest.approx((2 * 1290 * 30.0 + row["prompt_tokens"] * 0.3) / 1e6, abs=1e-6)


def test_gemini_url_format_is_a_data_url(oai: openai.OpenAI) -> None:
    result = oai.images.generate(model="google/gemini-2.5-flash-image", prompt="a cat", response_format="url")
    url = result.data[0].url or ""
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.partition(",")[2]).startswith(PNG)


def test_gemini_refusals_and_unsupported_options(oai: openai.OpenAI, mock: MockControl) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oai.images.generate(model="google/gemini-2.5-flash-image", prompt="please refuse this")
    assert refused.value.code == "content_policy_violation"
    with pytest.raises(openai.BadRequestError) as transparent:
        oai.images.generate(model="google/gemini-2.5-flash-image", prompt="a logo", background="transparent")
    assert transparent.value.param == "background" and "gemini-2.5-flash-image" in transparent.value.message
    with pytest.raises(openai.BadRequestError) as jpeg:
        oai.images.generate(model="google/gemini-2.5-flash-image", prompt="a logo", output_format="jpeg")
    assert jpeg.value.param == "output_format"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 11}, "n"),
        ({"n": 0}, "n"),
        ({"size": "999x999"}, "size"),
        ({"quality": "ultra"}, "quality"),
        ({"response_format": "png"}, "response_format"),
        ({"output_compression": 101}, "output_compression"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 32_001}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"stream": True}, "stream"),
    ],
)
def test_bad_parameters_are_400_and_never_forwarded(
    gw: Server, key: str, mock: MockControl, body: dict, param: str
) -> None:
    request = {"model": "openai/gpt-image-1", "prompt": "a fox"} | body
    r = httpx.post(f"{gw.base}/v1/images/generations", json=request, headers={"authorization": f"Bearer {key}"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert mock.count() == 0


def test_missing_prompt_and_wrong_model_kinds(gw: Server, key: str, oai: openai.OpenAI, mock: MockControl) -> None:
    headers = {"authorization": f"Bearer {key}"}
    r = httpx.post(f"{gw.base}/v1/images/generations", json={"model": "openai/gpt-image-1"}, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "missing_required_parameter"
    with pytest.raises(openai.BadRequestError) as chat_model:
        oai.images.generate(model="openai/gpt-4o", prompt="a fox")
    assert chat_model.value.code == "model_not_supported" and "/v1/images/generations" in chat_model.value.message
    with pytest.raises(openai.BadRequestError) as image_model:
        oai.chat.completions.create(model="openai/gpt-image-1", messages=[{"role": "user", "content": "hi"}])
    assert "image generation model" in image_model.value.message
    with pytest.raises(openai.NotFoundError):
        oai.images.generate(model="openai/nope", prompt="a fox")
    assert mock.count() == 0


def test_gemini_image_models_chat_with_images_in_the_message(oai: openai.OpenAI, mock: MockControl) -> None:
    reply = oai.chat.completions.create(
        model="google/gemini-2.5-flash-image", messages=[{"role": "user", "content": "Draw a sunset"}]
    )
    message = reply.choices[0].message
    assert message.content
    (image,) = (message.model_extra or {})["images"]
    assert image["type"] == "image_url"
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,") and base64.b64decode(url.partition(",")[2]).startswith(PNG)
    body = _upstream(mock, "/v1beta/")[0]["body"]
    assert body["generationConfig"]["responseModalities"] == ["TEXT", "IMAGE"]


def test_governance_refuses_a_model_outside_the_key(gw: Server, mock: MockControl) -> None:
    admin = gw.env["ROUTER_ADMIN_KEY"]
    r = manage_call(gw.base, admin, "POST", "/access-list", json={"name": "chat-only", "models": ["openai/gpt-4o"]})
    assert r.status_code in (200, 201), r.text
    limited = _key(gw, access_list="chat-only")
    with (
        openai.OpenAI(base_url=f"{gw.base}/v1", api_key=limited, max_retries=0) as client,
        pytest.raises(openai.PermissionDeniedError) as denied,
    ):
        client.images.generate(model="openai/gpt-image-1", prompt="a fox")
    assert denied.value.code == "model_not_allowed"
    assert mock.count() == 0


def test_spend_limit_reserves_the_images(gw: Server, mock: MockControl) -> None:
    # Five high-quality 1536x1024 images may cost $1.25: more than this key's $1.
    limited = _key(gw, monthly_limit=1.0)
    with openai.OpenAI(base_url=f"{gw.base}/v1", api_key=limited, max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as refused:
            client.images.generate(model="openai/gpt-image-1", prompt="a fox", n=5, size="1536x1024", quality="high")
        assert refused.value.status_code == 402
        assert mock.count() == 0
        assert client.images.generate(model="openai/gpt-image-1", prompt="a fox", n=1, quality="low").data


def test_guardrails_mask_the_prompt(oai: openai.OpenAI, mock: MockControl) -> None:
    oai.images.generate(model="openai/gpt-image-1", prompt="badge for EMP-123456 in blue")
    prompt = _upstream(mock, "/v1/images")[0]["body"]["prompt"]
    assert "EMP-123456" not in prompt and "badge for" in prompt


def test_upstream_429_stays_429(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        oai.images.generate(model="openai/throttled-image", prompt="a fox")
    assert limited.value.code == "upstream_rate_limited"


def test_models_list_shows_image_capability_and_prices(oai: openai.OpenAI) -> None:
    listed = {m.id: m for m in oai.models.list().data}
    image = listed["openai/gpt-image-1"].model_dump()
    assert "images" in image["capabilities"]
    assert image["pricing"]["images"]["1024x1024/high"] == 0.167
    assert json.dumps(image["pricing"])


IMAGEN = "google/imagen-4.0-generate-001"


def test_imagen_on_the_gemini_api_predict(gw: Server, oai: openai.OpenAI, mock: MockControl) -> None:
    """Imagen on AI Studio: `:predict` with the API key, `n` as `sampleCount`, priced per image."""
    raw = oai.images.with_raw_response.generate(model=IMAGEN, prompt="a robot with a red skateboard", n=2)
    result = raw.parse()
    assert len(result.data) == 2
    assert all(base64.b64decode(image.b64_json or "").startswith(PNG) for image in result.data)
    (sent,) = _upstream(mock, "/v1beta/")
    assert sent["path"] == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert sent["headers"]["x-goog-api-key"] == mock_gemini.API_KEY
    assert sent["body"] == {
        "instances": [{"prompt": "a robot with a red skateboard"}],
        "parameters": {"includeRaiReason": True, "sampleCount": 2},
    }
    row = _row(gw, raw.headers["x-request-id"])
    assert row["status"] == 200 and row["cost"] == pytest.approx(2 * 0.04, abs=1e-9)


def test_imagen_refusals_on_the_gemini_api(oai: openai.OpenAI, mock: MockControl) -> None:
    # The Gemini API returns PNG only (no `outputOptions`): JPEG is refused before anything goes upstream.
    with pytest.raises(openai.BadRequestError) as jpeg:
        oai.images.generate(model=IMAGEN, prompt="a logo", output_format="jpeg")
    assert jpeg.value.param == "output_format" and "imagen-4.0-generate-001" in jpeg.value.message
    with pytest.raises(openai.BadRequestError) as size:
        oai.images.generate(model=IMAGEN, prompt="a logo", size="1024x1536")
    assert size.value.param == "size" and "1024x1536" in size.value.message
    assert _upstream(mock, "/v1beta/") == []
    with pytest.raises(openai.BadRequestError) as refused:
        oai.images.generate(model=IMAGEN, prompt="please refuse this")
    assert refused.value.code == "content_policy_violation" and "filtered out" in refused.value.message
