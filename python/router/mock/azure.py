"""Azure OpenAI deployment paths: `POST /openai/deployments/{deployment}/chat/completions?api-version=…` (and
`/embeddings`, `/images/generations`), answered like the OpenAI endpoints with the deployment as the model, after
checking `api-version` and the `api-key` (or an Entra ID bearer token) as Azure does.

https://learn.microsoft.com/azure/ai-services/openai/reference
"""

from __future__ import annotations

import hmac
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import msgspec

if TYPE_CHECKING:
    from .app import MockApp

API_KEY = "azure-api-key-mock"
ENTRA_TOKEN = "azure-entra-token-mock"
PATH_RE = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|embeddings|images/generations)$")
JSON_HEADERS = [("content-type", "application/json")]


def _error(proto: Any, status: int, code: str, message: str) -> None:
    proto.response_bytes(status, JSON_HEADERS, msgspec.json.encode({"error": {"code": code, "message": message}}))


class _Body:
    """The request as the OpenAI handlers read it, with the body rewritten (the deployment is the model)."""

    def __init__(self, proto: Any, body: bytes) -> None:
        self._proto = proto
        self._body = body

    async def __call__(self) -> bytes:
        return self._body

    def __getattr__(self, name: str) -> Any:
        return getattr(self._proto, name)


async def handle(app: MockApp, scope: Any, proto: Any) -> None:
    match = PATH_RE.match(scope.path)
    if match is None or scope.method != "POST":
        return _error(proto, 404, "404", "Resource not found")
    if not parse_qs(scope.query_string).get("api-version"):
        return _error(proto, 404, "404", "Resource not found")  # what Azure answers without api-version
    key = scope.headers.get("api-key")
    bearer = scope.headers.get("authorization") or ""
    if key is not None:
        if not hmac.compare_digest(key.encode(), API_KEY.encode()):
            message = "Access denied due to invalid subscription key or wrong API endpoint."
            return _error(proto, 401, "401", message)
    elif not (bearer.startswith("Bearer ") and hmac.compare_digest(bearer[7:].encode(), ENTRA_TOKEN.encode())):
        return _error(proto, 401, "401", "Unauthorized. Access token is missing, invalid, audience is incorrect.")
    body = await proto()
    try:
        decoded = msgspec.json.decode(body)
    except msgspec.DecodeError:
        decoded = None
    if isinstance(decoded, dict):
        decoded["model"] = unquote(match.group(1))
        body = msgspec.json.encode(decoded)
    handler = {"chat/completions": app._chat, "embeddings": app._embeddings, "images/generations": app._images}[
        match.group(2)
    ]
    await handler(scope, _Body(proto, body))
