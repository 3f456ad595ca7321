"""OAuth2 access tokens for a Google service account: a signed JWT exchanged at the account's token URI.

https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests (the JWT bearer
grant, RFC 7523). The RS256 signature uses `cryptography`, already a dependency. A token is cached until five
minutes before it expires; a background task refreshes it then, so requests wait for a token only when none is
valid (the first request, or after the token endpoint failed). Tokens and keys are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import ConfigError, UpstreamError

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
# Refresh this long before expiry; and retry this soon after a failed refresh.
REFRESH_MARGIN = 300.0
RETRY_AFTER_FAILURE = 10.0
ASSERTION_LIFETIME = 3600


class ServiceAccount(msgspec.Struct, frozen=True):
    client_email: str
    private_key: str = msgspec.field(name="private_key")
    token_uri: str = DEFAULT_TOKEN_URI
    private_key_id: str | None = None
    type: str = "service_account"

    def __repr__(self) -> str:  # the key never reaches a log line or a traceback
        return f"ServiceAccount(client_email={self.client_email!r})"


class TokenAnswer(msgspec.Struct):
    access_token: str
    expires_in: float = 3600.0


def load_service_account(value: str, where: str) -> ServiceAccount:
    """`value` is the JSON itself (e.g. from an `env:` reference) or the path of a JSON key file."""
    text = value if value.lstrip().startswith("{") else None
    if text is None:
        try:
            text = Path(value).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the service-account file: {exc.strerror}") from None
    try:
        account = msgspec.json.decode(text, type=ServiceAccount)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{where}: not a service-account JSON key ({exc})") from None
    if account.type != "service_account":
        raise ConfigError(f"{where}: expected a key of type service_account, got {account.type!r}")
    return account


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_assertion(account: ServiceAccount, key: rsa.RSAPrivateKey, now: float) -> str:
    header = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    claims = {
        "iss": account.client_email,
        "scope": SCOPE,
        "aud": account.token_uri,
        "iat": int(now),
        "exp": int(now) + ASSERTION_LIFETIME,
    }
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


Post = Callable[[str, dict[str, str], bytes], Awaitable[tuple[int, bytes]]]


class TokenSource:
    """The current access token of one service account, refreshed before it expires."""

    def __init__(self, account: ServiceAccount, provider: str) -> None:
        self.account = account
        self._provider = provider
        loaded = serialization.load_pem_private_key(account.private_key.encode(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ConfigError(f"providers.{provider}: the service-account key is not an RSA key")
        self._key = loaded
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._post: Post | None = None

    def start(self, post: Post) -> None:
        self._post = post
        self._task = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def token(self) -> str:
        if self._token is not None and time.time() < self._expires - REFRESH_MARGIN / 2:
            return self._token
        async with self._lock:
            if self._token is None or time.time() >= self._expires - REFRESH_MARGIN / 2:
                await self._fetch()
        assert self._token is not None
        return self._token

    async def _refresh_loop(self) -> None:
        while True:
            wait = self._expires - REFRESH_MARGIN - time.time() if self._token is not None else 0.0
            await asyncio.sleep(max(wait, 0.0))
            try:
                async with self._lock:
                    await self._fetch()
            except UpstreamError:
                await asyncio.sleep(RETRY_AFTER_FAILURE)

    async def _fetch(self) -> None:
        assert self._post is not None
        now = time.time()
        form = urlencode({"grant_type": GRANT_TYPE, "assertion": signed_assertion(self.account, self._key, now)})
        headers = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
        try:
            status, body = await self._post(self.account.token_uri, headers, form.encode())
        except Exception as exc:  # a transport failure of any kind: report it, never the assertion
            raise UpstreamError(
                f"Upstream provider '{self._provider}': the OAuth token endpoint is unreachable "
                f"({type(exc).__name__}).",
                code="upstream_auth_failed",
            ) from None
        if status != 200:
            raise UpstreamError(
                f"Upstream provider '{self._provider}': the OAuth token endpoint refused the service account "
                f"(HTTP {status}).",
                code="upstream_auth_failed",
            )
        try:
            answer = msgspec.json.decode(body, type=TokenAnswer)
        except msgspec.DecodeError:
            raise UpstreamError(
                f"Upstream provider '{self._provider}': the OAuth token endpoint sent an invalid answer.",
                code="upstream_auth_failed",
            ) from None
        self._token = answer.access_token
        self._expires = now + answer.expires_in
