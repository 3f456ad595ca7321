"""OAuth2 access tokens for a Google service account: a signed JWT exchanged at the account's token URI.

https://developers.google.com/identity/protocols/oauth2/service-account#authorizingrequests (the JWT bearer
grant, RFC 7523). The RS256 signature uses `cryptography`, already a dependency. A token is cached until five
minutes before it expires (`oauth.TokenSource`). Tokens and keys are never logged.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import urlencode

import msgspec
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..errors import ConfigError
from .oauth import TokenSource

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
ASSERTION_LIFETIME = 3600


class ServiceAccount(msgspec.Struct, frozen=True):
    client_email: str
    private_key: str = msgspec.field(name="private_key")
    token_uri: str = DEFAULT_TOKEN_URI
    private_key_id: str | None = None
    type: str = "service_account"

    def __repr__(self) -> str:  # the key never reaches a log line or a traceback
        return f"ServiceAccount(client_email={self.client_email!r})"


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


def service_account_tokens(account: ServiceAccount, provider: str) -> TokenSource:
    """Access tokens for `account`: a signed JWT assertion exchanged at its token URI (RFC 7523)."""
    loaded = serialization.load_pem_private_key(account.private_key.encode(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise ConfigError(f"providers.{provider}: the service-account key is not an RSA key")

    def form(now: float) -> str:
        return urlencode({"grant_type": GRANT_TYPE, "assertion": signed_assertion(account, loaded, now)})

    return TokenSource(provider, account.token_uri, form, "the service account")
