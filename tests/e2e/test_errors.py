"""Every error class the SDK raises, and bad input that must never reach the upstream."""

from __future__ import annotations

import httpx
import openai
import pytest

from servers import usage_rows

HELLO = [{"role": "user", "content": "hello"}]


def _error(response: httpx.Response) -> dict:
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_authentication_error(gateway, mock) -> None:
    client = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key="rk-" + "x" * 43, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as err:
        client.chat.completions.create(model="mock/gpt-4o", messages=HELLO)
    assert err.value.code == "invalid_api_key"
    assert mock.count() == 0


def test_not_found_for_unknown_model(client, mock) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="mock/gpt-99", messages=HELLO)
    assert err.value.code == "model_not_found"
    assert "mock/gpt-99" in err.value.message and "GET /v1/models" in err.value.message
    assert mock.count() == 0


def test_bad_request_names_the_field(client, mock) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="mock/gpt-4o", messages=[{"role": "wizard", "content": "hi"}])
    assert err.value.param == "messages[0].role"
    assert "wizard" in err.value.message
    assert mock.count() == 0


def test_rate_limit_keeps_429_and_retry_after(client, mock, gateway) -> None:
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(
            model="mock/gpt-4o", messages=HELLO, extra_body={"mock": {"fail": "429", "retry_after": 7}}
        )
    assert err.value.status_code == 429
    assert err.value.response.headers["retry-after"] == "7"
    request_id = err.value.response.headers["x-request-id"]
    (row,) = usage_rows(gateway, f"request_id = '{request_id}'")
    assert row["status"] == 429 and row["error_type"] == "upstream_rate_limited"


@pytest.mark.parametrize("fail", ["500", "503"])
def test_upstream_5xx_becomes_502(client, fail) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="mock/gpt-4o", messages=HELLO, extra_body={"mock": {"fail": fail}})
    assert err.value.status_code == 502
    assert err.value.code == "upstream_error"


def test_model_name_knob_in_catalog(tight_client) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        tight_client.chat.completions.create(model="mock/flaky", messages=HELLO)
    assert err.value.status_code == 502


def test_upstream_first_byte_timeout_is_504(tight_client) -> None:
    with pytest.raises(openai.InternalServerError) as err:
        tight_client.chat.completions.create(model="mock/gpt-4o", messages=HELLO, extra_body={"mock": {"fail": "hang"}})
    assert err.value.status_code == 504
    assert err.value.code == "upstream_timeout"


def test_client_timeout_raises_api_timeout_error(tight_client) -> None:
    # The tight gateway's 1.5 s first-byte timeout then releases the hung upstream call on its side.
    with pytest.raises(openai.APITimeoutError):
        tight_client.with_options(timeout=0.5).chat.completions.create(
            model="mock/gpt-4o", messages=HELLO, extra_body={"mock": {"fail": "hang"}}
        )


def test_stream_failing_before_first_byte_is_a_json_error_not_a_200_stream(gateway, api_key) -> None:
    r = httpx.post(
        f"{gateway.base}/v1/chat/completions",
        headers={"authorization": f"Bearer {api_key}"},
        json={"model": "mock/gpt-4o", "messages": HELLO, "stream": True, "mock": {"fail": "503"}},
    )
    assert r.status_code == 502
    assert _error(r)["code"] == "upstream_error"


def test_stream_dropped_mid_way_raises_in_the_sdk(client, gateway) -> None:
    stream = client.chat.completions.create(
        model="mock/gpt-4o", messages=HELLO, stream=True, extra_body={"mock": {"fail": "drop"}}
    )
    received = []
    with pytest.raises(openai.APIError, match=r"ended the stream|broke"):
        received.extend(stream)
    assert received, "the chunks before the drop were delivered"


def test_malformed_upstream_event_is_never_forwarded(client) -> None:
    stream = client.chat.completions.create(
        model="mock/gpt-4o", messages=HELLO, stream=True, extra_body={"mock": {"fail": "malformed"}}
    )
    received = []
    with pytest.raises(openai.APIError, match="malformed stream event"):
        received.extend(stream)  # an APIError, not the JSONDecodeError a forwarded event would cause
    assert received and all(c.choices[0].delta.content is not None for c in received[1:])


def test_stream_idle_timeout_ends_with_an_error_event(tight_client) -> None:
    stream = tight_client.chat.completions.create(
        model="mock/gpt-4o",
        messages=HELLO,
        stream=True,
        extra_body={"mock": {"tokens": 3, "token_delay_ms": 4000}},
    )
    with pytest.raises(openai.APIError, match="timed out"):
        list(stream)


AUTH = {"authorization": "Bearer {key}"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "says"),
    [
        (b"{not json", {}, 400, "invalid_json", "not valid JSON"),
        (b"[1, 2]", {}, 400, "invalid_json", "must be a JSON object"),
        (b"", {}, 400, "invalid_json", "empty"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', {}, 400, "missing_required_parameter", "'model'"),
        (b'{"model": "mock/gpt-4o"}', {}, 400, "missing_required_parameter", "'messages'"),
        (b'{"model": "mock/gpt-4o", "messages": []}', {}, 400, "empty_array", "at least one"),
        (b'{"model": 4, "messages": []}', {}, 400, "invalid_type", "'model'"),
        (b'{"model": "mock/gpt-4o", "messages": "hi"}', {}, 400, "invalid_type", "'messages'"),
        (b'{"model": "mock/gpt-4o", "messages": [{"role": "user", "content": 5}]}', {}, 400, "invalid_type",
         "'messages[0].content'"),
        (b'{"model": "mock/gpt-4o", "messages": [{"role": "user"}], "stream": "yes"}', {}, 400, "invalid_type",
         "'stream'"),
        (b'{"model": "nope", "messages": [{"role": "user"}]}', {}, 404, "model_not_found", "'nope'"),
        (b"{}", {"content-type": "text/plain"}, 415, "unsupported_content_type", "text/plain"),
        (b"{}", {"authorization": ""}, 401, "missing_api_key", "Missing API key"),
        (b"{}", {"authorization": "Bearer"}, 401, "missing_api_key", "Missing API key"),
        (b"{}", {"authorization": "Basic dXNlcjpwYXNz"}, 401, "missing_api_key", "Missing API key"),
        (b"{}", {"authorization": "Bearer sk-openai-style"}, 401, "invalid_api_key", "Malformed"),
    ],
)  # fmt: skip
def test_bad_input_gets_a_clear_4xx_and_never_reaches_upstream(
    gateway, api_key, mock, body, headers, status, code, says
) -> None:
    sent = {"content-type": "application/json", "authorization": f"Bearer {api_key}", **headers}
    r = httpx.post(f"{gateway.base}/v1/chat/completions", content=body, headers=sent)
    assert r.status_code == status, r.text
    error = _error(r)
    assert error["code"] == code
    assert says in error["message"]
    assert mock.count() == 0


def test_body_over_the_limit_is_413(tight_gateway, mock) -> None:
    big = b'{"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "' + b"a" * 8000 + b'"}]}'
    headers = {"authorization": f"Bearer {tight_gateway.key}", "content-type": "application/json"}
    r = httpx.post(f"{tight_gateway.base}/v1/chat/completions", content=big, headers=headers)
    assert r.status_code == 413
    assert _error(r)["code"] == "request_too_large"

    def chunked():
        yield big[:3000]
        yield big[3000:]

    r = httpx.post(f"{tight_gateway.base}/v1/chat/completions", content=chunked(), headers=headers)
    assert r.status_code == 413
    assert mock.count() == 0


def test_unknown_route_and_wrong_method(gateway) -> None:
    r = httpx.get(f"{gateway.base}/v1/nothing-here")
    assert r.status_code == 404 and _error(r)["code"] == "unknown_route"
    r = httpx.get(f"{gateway.base}/v1/chat/completions")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
