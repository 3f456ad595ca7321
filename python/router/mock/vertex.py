"""Google Vertex AI: the OAuth token endpoint of a test service account, Gemini `generateContent` /
`streamGenerateContent`, Imagen `predict` and Claude `rawPredict` / `streamRawPredict` on Vertex paths.

Authentication as Google does it: `POST /oauth2/token` checks the service account's signed JWT (RS256, against
the test key below) and issues an access token; the Vertex paths accept only unexpired tokens it issued (401
UNAUTHENTICATED otherwise). Tokens are stateless (an HMAC of their expiry), so any mock worker accepts them.

- https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests
- https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/projects.locations.publishers.models
- https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from . import anthropic_messages as messages
from . import gemini
from .errors import ANTHROPIC_FAULT_RESPONSES, anthropic_error
from .knobs import KnobError

if TYPE_CHECKING:
    from .app import MockApp

# A throwaway RSA key made for these tests only: it signs nothing but mock token requests.
TEST_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCykeHx0h4nmUrn
yH0iEDMPnqXZT4Rx1XJgnUkz1aKJJEHR3h/SNm2qxnR5rRMixSBa9zd162DR9+P3
c4BAJfpWA88jHZ1WoCM7fx3hPkIKJuARnyUFRRTKDajUV1wLGIuUr/WshbEoKE0e
1aKwyEyGmfgiT+7aKiNsDBeZZIt1AMad+uJ6yyl18dwzYYGawI8L7cNfRs4wQzQx
WTnmHK4RIffKv0XPZlQgwZFZx/SDJEr/s9Kq4m/lu3FRttq/uClqjJuGKzjNsK7z
uMiXjBYJm2ezg9AVI7aFLyiI/NhFYWM4HV3kVaKYea7CShQg+QGE7AziGKb2MWNl
HsEIpexlAgMBAAECggEABw25p9h1rflBavXxsXCD39RTt0mLkQaOKdBUtao07Sdk
PTLBvYc+Xj5QGAVU6ezw+f7lbzBAxxJ8bAghMwd9A7xLSJcRIbyaH63GA6F2sNl3
xOJtLy/bIh8XgenAfkS2MMWhlfLC/HPZFgR41HRZB4EZ+tr+85myBADXRs0gsBqq
atNtmQoNBT2m/1YLz3k1mPV6xA5p6CfNe0uwG/lJWBUcDp+mm1LUNA5MEu2uuxqd
L2cDioSvnClyJTcbs8uzsSUN+QpgAlg1K8AE+RBjuqCVNjbNYcrJm8xMTs46rbbZ
dICisK2OytXIUTmoPaxofCXScj3kgad8iZksPQEWoQKBgQD3qfHfys6iQB9zLLc+
+9iMwBD1irDQ819if0Aoe84SnJH/Bk34gpJLb3DMqU4rUykZSeLVZN7lZ8Qc7JHP
CKAr/pqHdSs0jCW49gvqlup2lb42m1Yihmg51c0T5PLE4vOMWSQXIuHIwYax14Iy
FcTyP1GdCNQq0zJOZCj8hVN6BQKBgQC4lJKfZ9tLoA+/YeLieTo6f5L1+dl1zUwV
n31s6+Mh6JBzz+r8wdh045nJCvvPSk0YcT3Y9AMVUrigy8RQuYz6Mr0JjMzJeCIP
+nFJ+0FmMabE4Usc33vJkCsDctBAbyiGnLV3+LtgKrN8YoOBGXQTLCiIHqeF2RPH
yZX8EkJW4QKBgEOaNvSwZkDxoeQNY6OkmRKqZraved4/YF0BgSDL0o9P/6YOMYBR
G9/NdovW9whqdcB6Y5l+JD2YWnbOuGo734TCxamN+RIp4y4es1gAg9WEwFwlgJiB
+bc3vffdOcs2a+Z2epx6IAltkfe/bMGBIbZCRGPKAigCaCvvuSRcvFGFAoGBAKJn
XwbQe3vzzkdG2jkIDvqvit/QQMzMoJgZ52Kxvfv0wzyTAR/5cvmN1J62gk6mAmVy
JcfBEwFs8jPQdd/NEsSFZhyD/R97CwViBtHgN2+yWhi6Xbt+y0zTA3WaTK+U3mRq
d6SifkMj7x6PE0PA4IeJ//OcfStgj23m6YeLjUEhAoGAA8Dif9Y1ZJLvi9tmMoaz
KJRdJwypDEzLahTVvtbA5G71hyYeu/vsoKHgzz8kJsqJbBOsldoi6akV/M+s1+f0
Q5tcO1zj/6lo2UirHgOxWOLFnX0IdvrJ8ca2ggOTwiLbkMHtM1HHeLJNetU2XEMR
Kdzguw8WkCJqjYMfn85+RUI=
-----END PRIVATE KEY-----
"""
CLIENT_EMAIL = "router-mock@router-test.iam.gserviceaccount.com"
ANTHROPIC_VERSION = "vertex-2023-10-16"
_TOKEN_SECRET = b"router-mock-vertex-token"
TOKEN_LIFETIME = 3600
PATH_RE = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/(google|anthropic)/models/([^/:]+):"
    r"(generateContent|streamGenerateContent|predict|rawPredict|streamRawPredict)$"
)
_VERSION = re.compile(r"@\d{8}(?=@|$)")
JSON_HEADERS = [("content-type", "application/json")]
SSE_HEADERS = [("content-type", "text/event-stream")]


def service_account(token_uri: str) -> dict[str, str]:
    """The test service-account key file, pointing at this mock's token endpoint."""
    return {
        "type": "service_account",
        "project_id": "router-test",
        "private_key_id": "mock-key-1",
        "private_key": TEST_PRIVATE_KEY,
        "client_email": CLIENT_EMAIL,
        "token_uri": token_uri,
    }


def _public_key() -> rsa.RSAPublicKey:
    key = serialization.load_pem_private_key(TEST_PRIVATE_KEY.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.public_key()


_PUBLIC_KEY = _public_key()


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _token_error(proto: Any, description: str) -> None:
    body = msgspec.json.encode({"error": "invalid_grant", "error_description": description})
    proto.response_bytes(400, JSON_HEADERS, body)


def issue_token(exp: int) -> str:
    mac = hmac.new(_TOKEN_SECRET, str(exp).encode(), hashlib.sha256).hexdigest()[:32]
    return f"ya29.mock.{exp}.{mac}"


def token_valid(token: str, now: float | None = None) -> bool:
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != "ya29" or parts[1] != "mock" or not parts[2].isdigit():
        return False
    expected = issue_token(int(parts[2]))
    return hmac.compare_digest(expected.encode(), token.encode()) and int(parts[2]) > (now or time.time())


async def token(app: MockApp, scope: Any, proto: Any) -> None:
    """`POST /oauth2/token`: the JWT bearer grant (RFC 7523) for the test service account."""
    body = await proto()
    app._record(scope, None, False, b"")  # the assertion is a credential: not recorded
    if scope.method != "POST" or scope.path != "/oauth2/token":
        return proto.response_bytes(404, JSON_HEADERS, b'{"error":"not_found"}')
    form = parse_qs(body.decode(errors="replace"))
    if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"]:
        return _token_error(proto, "Invalid grant_type.")
    assertion = (form.get("assertion") or [""])[0]
    try:
        header_b64, claims_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(claims_b64))
        signature = _b64decode(signature_b64)
    except ValueError:
        return _token_error(proto, "Invalid JWT: malformed.")
    if header.get("alg") != "RS256":
        return _token_error(proto, "Invalid JWT: alg must be RS256.")
    try:
        signed = f"{header_b64}.{claims_b64}".encode()
        _PUBLIC_KEY.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return _token_error(proto, "Invalid JWT Signature.")
    now = time.time()
    if claims.get("iss") != CLIENT_EMAIL:
        return _token_error(proto, "Invalid JWT: unknown issuer.")
    if not str(claims.get("aud", "")).endswith("/oauth2/token"):
        return _token_error(proto, "Invalid JWT: audience must be the token URI.")
    if "https://www.googleapis.com/auth/cloud-platform" not in str(claims.get("scope", "")).split():
        return _token_error(proto, "Invalid JWT: the cloud-platform scope is required.")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int) or exp <= now or iat > now + 60 or exp - iat > 3600:
        return _token_error(
            proto, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        )
    expires = int(now) + TOKEN_LIFETIME
    answer = {"access_token": issue_token(expires), "expires_in": TOKEN_LIFETIME, "token_type": "Bearer"}
    proto.response_bytes(200, JSON_HEADERS, msgspec.json.encode(answer))


def _unauthenticated(proto: Any) -> None:
    message = "Request had invalid authentication credentials. Expected OAuth 2 access token."
    body = gemini.error_body(401, "UNAUTHENTICATED", message, "ACCESS_TOKEN_TYPE_UNSUPPORTED")
    proto.response_bytes(401, JSON_HEADERS, body)


async def handle(app: MockApp, scope: Any, proto: Any) -> None:
    """Vertex `.../publishers/{google|anthropic}/models/{model}:{method}`; other `/v1/` paths are unknown."""
    match = PATH_RE.match(scope.path)
    if match is None:
        return app._not_found(scope, proto)
    body = await proto()
    _, _, publisher, model_name, method = match.groups()
    model_name = unquote(model_name)
    stream = method.startswith("stream")
    app._record(scope, model_name, stream, body)
    auth = scope.headers.get("authorization") or ""
    if not auth.startswith("Bearer ") or not token_valid(auth[7:]):
        return _unauthenticated(proto)
    if publisher == "google" and method == "predict":
        return await gemini.predict(app, scope, proto, body, model_name, vertex=True)
    if publisher == "google":
        if method not in ("generateContent", "streamGenerateContent"):
            return gemini._error(proto, 400, "INVALID_ARGUMENT", f"{method} is not a Gemini method.")
        return await _gemini(app, scope, proto, body, model_name, stream)
    if method not in ("rawPredict", "streamRawPredict"):
        return gemini._error(proto, 400, "INVALID_ARGUMENT", f"{method} is not a Claude method.")
    return await _claude(app, scope, proto, body, model_name, stream)


async def _gemini(app: MockApp, scope: Any, proto: Any, body: bytes, model_name: str, stream: bool) -> None:
    try:
        decoded = msgspec.json.decode(body)
        if not isinstance(decoded, dict):
            raise gemini.InvalidGemini("Invalid JSON payload received.")
        model, knobs = app._resolve(scope.headers, None, model_name)
        request = gemini.as_messages_request(decoded, model)
    except (msgspec.DecodeError, gemini.InvalidGemini, KnobError, AttributeError, TypeError) as exc:
        return gemini._error(proto, 400, "INVALID_ARGUMENT", str(exc))
    fail = app._failure(knobs, model_name)
    if await app._before_reply(proto, knobs, fail, {}):
        return None
    fault = gemini.FAULTS.get(fail)
    if fault is not None:
        return gemini._error(proto, *fault)
    image = gemini.image_reply(decoded, model)
    if image is not None:
        return proto.response_bytes(image[0], gemini.JSON_HEADERS, image[1])
    if gemini.grounded(decoded):
        return await gemini.send_grounded(app, scope, proto, decoded, model, stream, knobs, fail)
    plan = messages.plan_reply(request, knobs)
    if stream:
        events = gemini.stream_events(request, plan, model)
        return await app._counted_stream(scope, proto, events, knobs, fail, SSE_HEADERS)
    if knobs.token_delay_ms:
        await asyncio.sleep(knobs.token_delay_ms * plan.completion_tokens / 1000)
    await app._send_json(scope, proto, gemini.reply_body(request, plan, model), fail)


async def _claude(app: MockApp, scope: Any, proto: Any, body: bytes, model_name: str, stream: bool) -> None:
    try:
        decoded = msgspec.json.decode(body)
        if not isinstance(decoded, dict):
            raise ValueError("the body must be a JSON object")
        if decoded.get("anthropic_version") != ANTHROPIC_VERSION:
            raise ValueError(f"anthropic_version: expected {ANTHROPIC_VERSION!r}")
        if "model" in decoded:
            raise ValueError("model: Extra inputs are not permitted (the model is in the URL)")
        decoded["model"] = model_name
        request = messages.REQUEST_DECODER.decode(msgspec.json.encode(decoded))
        # Claude's Vertex names carry a version (`claude-3-7-sonnet@20250219`): not a mock knob.
        model, knobs = app._resolve(scope.headers, request.mock, _VERSION.sub("", model_name))
    except (msgspec.DecodeError, ValueError, KnobError) as exc:
        return proto.response_bytes(400, JSON_HEADERS, anthropic_error(f"Invalid request: {exc}"))
    fail = app._failure(knobs, model_name)
    if await app._before_reply(proto, knobs, fail, ANTHROPIC_FAULT_RESPONSES):
        return None
    plan = messages.plan_reply(request, knobs)
    message_id = app._new_id("msg_vrtx_")
    if stream:
        events = messages.stream_events(request, plan, message_id, model)
        return await app._counted_stream(scope, proto, events, knobs, fail)
    if knobs.token_delay_ms:
        await asyncio.sleep(knobs.token_delay_ms * plan.completion_tokens / 1000)
    await app._send_json(scope, proto, messages.message_body(request, plan, message_id, model), fail)
