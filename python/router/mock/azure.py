"""Azure OpenAI deployment paths: `POST /openai/deployments/{deployment}/chat/completions?api-version=…` (and
`/embeddings`, `/images/generations`), answered like the OpenAI endpoints with the deployment as the model, after
checking `api-version` and the `api-key` (or an Entra ID bearer token) as Azure does; and the token endpoints
that issue those bearer tokens: Entra ID's client-credentials grant and a managed identity's (the Instance
Metadata Service at `/metadata/identity/oauth2/token`, App Service / Container Apps at `/msi/token`).

- https://learn.microsoft.com/azure/ai-services/openai/reference
- https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http
- https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

import msgspec

if TYPE_CHECKING:
    from .app import MockApp

API_KEY = "azure-api-key-mock"
ENTRA_TOKEN = "azure-entra-token-mock"
# The app registration the token endpoint knows (client-credentials grant), and one whose tokens live just past
# the gateway's refresh margin, so tests see a refresh within seconds.
CLIENT_ID = "00000000-0000-0000-0000-00000000c1d0"
SHORT_LIVED_CLIENT_ID = "00000000-0000-0000-0000-0000000005e7"
CLIENT_SECRET = "entra-client-secret-mock"
SCOPE = "https://cognitiveservices.azure.com/.default"
# A user-assigned managed identity assigned to the mock's "resource" (the system-assigned one needs no id), and
# the secret App Service / Container Apps hand their apps in IDENTITY_HEADER.
MANAGED_CLIENT_ID = "00000000-0000-0000-0000-0000000000a1"
IDENTITY_HEADER = "mock-identity-header-secret"
RESOURCE = "https://cognitiveservices.azure.com"
TOKEN_LIFETIME = 3599
SHORT_LIFETIME = 302
_TOKEN_SECRET = b"mock-entra-token-signing"
PATH_RE = re.compile(r"^/openai/deployments/([^/]+)/(chat/completions|embeddings|images/generations)$")
TOKEN_PATH_RE = re.compile(r"^/entra/([^/]+)/oauth2/v2\.0/token$")
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


def issue_token(exp: int) -> str:
    mac = hmac.new(_TOKEN_SECRET, str(exp).encode(), hashlib.sha256).hexdigest()[:32]
    return f"eyJ0eXAiOiJKV1Qi.mock.{exp}.{mac}"


def token_valid(token: str, now: float | None = None) -> bool:
    """A token this endpoint issued and that has not expired (or the fixed test token)."""
    if hmac.compare_digest(token.encode(), ENTRA_TOKEN.encode()):
        return True
    parts = token.split(".")  # issued tokens end with a nonce
    if len(parts) != 5 or not parts[2].isdigit():
        return False
    signed = ".".join(parts[:4])
    return hmac.compare_digest(issue_token(int(parts[2])).encode(), signed.encode()) and int(parts[2]) > (
        now or time.time()
    )


async def token(app: MockApp, scope: Any, proto: Any) -> None:
    """`POST /entra/{tenant}/oauth2/v2.0/token`: Entra ID's client-credentials grant, answered as Entra does
    (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow)."""
    body = await proto()
    app._record(scope, None, False, b"")  # the client secret is a credential: not recorded
    if scope.method != "POST" or TOKEN_PATH_RE.match(scope.path) is None:
        return _error(proto, 404, "404", "Resource not found")
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}

    def refuse(code: str, description: str, status: int = 400) -> None:
        error = {"error": code, "error_description": description}
        proto.response_bytes(status, JSON_HEADERS, msgspec.json.encode(error))

    if form.get("grant_type") != "client_credentials":
        return refuse("unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
    client = form.get("client_id", "")
    if client not in (CLIENT_ID, SHORT_LIVED_CLIENT_ID):
        return refuse("unauthorized_client", "AADSTS700016: Application not found in the directory.")
    if not hmac.compare_digest(form.get("client_secret", "").encode(), CLIENT_SECRET.encode()):
        return refuse("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401)
    if form.get("scope") != SCOPE:
        return refuse("invalid_scope", "AADSTS1002012: The provided value for scope is not valid.")
    lifetime = SHORT_LIFETIME if client == SHORT_LIVED_CLIENT_ID else TOKEN_LIFETIME
    # Distinct per issue (the issue time is in the token) so tests can tell a refreshed token from the first.
    access = issue_token(int(time.time()) + lifetime) + f".{time.monotonic_ns()}"
    answer = {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": access}
    proto.response_bytes(200, JSON_HEADERS, msgspec.json.encode(answer))


async def managed_identity(app: MockApp, scope: Any, proto: Any) -> None:
    """`GET /metadata/identity/oauth2/token` (IMDS, `Metadata: true`, api-version 2018-02-01) and `GET /msi/token`
    (App Service, `X-IDENTITY-HEADER`, api-version 2019-08-01): a token for `resource` for the system-assigned
    identity, or the user-assigned one `client_id` names, shaped as each endpoint answers (string numbers; App
    Service sends only `expires_on`)."""
    await proto()
    query = {k: v[0] for k, v in parse_qs(scope.query_string).items()}
    # The query (api-version, resource, client_id) holds nothing secret: recorded as the body, for tests.
    app._record(scope, None, False, msgspec.json.encode(query))
    imds = scope.path == "/metadata/identity/oauth2/token"
    if scope.method != "GET" or not (imds or scope.path.rstrip("/") == "/msi/token"):
        return _error(proto, 404, "404", "Resource not found")

    def refuse(status: int, code: str, description: str) -> None:
        body = {"error": code, "error_description": description}
        proto.response_bytes(status, JSON_HEADERS, msgspec.json.encode(body))

    if imds:
        if scope.headers.get("metadata") != "true":
            return refuse(400, "invalid_request", "Required metadata header not specified")
        if query.get("api-version") != "2018-02-01":
            return refuse(400, "invalid_request", "Invalid api-version")
    else:
        secret = scope.headers.get("x-identity-header") or ""
        if not hmac.compare_digest(secret.encode(), IDENTITY_HEADER.encode()):
            return refuse(401, "unauthorized", "X-IDENTITY-HEADER is missing or invalid")
        if query.get("api-version") != "2019-08-01":
            return refuse(400, "invalid_request", "Invalid api-version")
    if query.get("resource", "").rstrip("/") != RESOURCE:
        return refuse(400, "invalid_resource", "AADSTS500011: The resource principal was not found in the tenant.")
    client = query.get("client_id")
    if client not in (None, MANAGED_CLIENT_ID, SHORT_LIVED_CLIENT_ID):
        return refuse(400, "invalid_request", "Identity not found")
    lifetime = SHORT_LIFETIME if client == SHORT_LIVED_CLIENT_ID else TOKEN_LIFETIME
    expires = int(time.time()) + lifetime
    answer = {
        "access_token": issue_token(expires) + f".{time.monotonic_ns()}",
        "expires_on": str(expires),
        "resource": query["resource"],
        "token_type": "Bearer",
    }
    if imds:
        answer |= {"refresh_token": "", "expires_in": str(lifetime), "not_before": str(expires - lifetime)}
    else:
        answer["client_id"] = client or "00000000-0000-0000-0000-00000000517e"
    proto.response_bytes(200, JSON_HEADERS, msgspec.json.encode(answer))


def _authorized(proto: Any, scope: Any) -> bool:
    key = scope.headers.get("api-key")
    bearer = scope.headers.get("authorization") or ""
    if key is not None:
        if not hmac.compare_digest(key.encode(), API_KEY.encode()):
            message = "Access denied due to invalid subscription key or wrong API endpoint."
            _error(proto, 401, "401", message)
            return False
    elif not (bearer.startswith("Bearer ") and token_valid(bearer[7:])):
        _error(proto, 401, "401", "Unauthorized. Access token is missing, invalid, audience is incorrect.")
        return False
    return True


async def handle(app: MockApp, scope: Any, proto: Any) -> None:
    responses = scope.path == "/openai/responses"
    match = PATH_RE.match(scope.path)
    if (match is None and not responses) or scope.method != "POST":
        return _error(proto, 404, "404", "Resource not found")
    if not parse_qs(scope.query_string).get("api-version"):
        return _error(proto, 404, "404", "Resource not found")  # what Azure answers without api-version
    if not _authorized(proto, scope):
        return None
    if responses:
        # The Responses API takes the deployment as `model`, like OpenAI's.
        return await app._responses(scope, proto)
    assert match is not None
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
