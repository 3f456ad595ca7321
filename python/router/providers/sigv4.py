"""AWS Signature Version 4 request signing (header form), for Bedrock and the mock that verifies it.

Follows https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html and is checked against
AWS's published test suite (tests/fixtures/sigv4, from awslabs/aws-c-auth) in tests/unit/test_sigv4.py.

Paths are canonicalised the way every AWS service but S3 expects: each character outside the unreserved set
is percent-encoded again, so a wire path `/model/a%3A0/converse` signs as `/model/a%253A0/converse`. The
signing key is derived once per (day, region, service) and cached: a request costs two SHA-256 and one HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import quote, unquote

__all__ = ["Credentials", "SigV4Signer", "canonical_path", "canonical_query", "payload_hash"]

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNRESERVED = "-_.~"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key pair, with the session token of temporary (STS) credentials."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 plus collapsing empty segments (AWS's `normalize`)."""
    out: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if out:
                out.pop()
            continue
        out.append(segment)
    normalized = "/" + "/".join(out)
    if out and path.endswith(("/", "/.", "/..")):
        normalized += "/"
    return normalized


# A pure function of the path, and a provider sends to a handful of paths: percent-encoding costs ~5 µs.
@lru_cache(maxsize=1024)
def canonical_path(path: str, normalize: bool = True) -> str:
    """The CanonicalURI of a wire path (non-S3 rules: normalised, then every byte encoded once more)."""
    if not path:
        return "/"
    if normalize:
        path = _remove_dot_segments(path)
    return quote(path, safe="/" + _UNRESERVED)


def canonical_query(query: str) -> str:
    """The CanonicalQueryString: pairs decoded, re-encoded strictly, sorted by key then value."""
    if not query:
        return ""
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((quote(unquote(key), safe=_UNRESERVED), quote(unquote(value), safe=_UNRESERVED)))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def _header_value(value: str) -> str:
    # Trim and squeeze runs of whitespace (folded multi-line values included) to one space.
    return " ".join(value.split())


class SigV4Signer:
    """Signs requests for one (credentials, region, service)."""

    __slots__ = ("_date", "_date_second", "_key", "_key_date", "credentials", "region", "scope_suffix", "service")

    def __init__(self, credentials: Credentials, region: str, service: str) -> None:
        self.credentials = credentials
        self.region = region
        self.service = service
        self.scope_suffix = f"/{region}/{service}/aws4_request"
        self._key_date = ""
        self._key = b""
        self._date_second = -1
        self._date = ""

    def signing_key(self, date: str) -> bytes:
        """kSigning for `date` (YYYYMMDD), cached for the day."""
        if date != self._key_date:
            key = hmac.digest(f"AWS4{self.credentials.secret_access_key}".encode(), date.encode(), "sha256")
            for part in (self.region, self.service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._key, self._key_date = key, date
        return self._key

    def canonical_request(
        self, method: str, path: str, query: str, headers: list[tuple[str, str]], body_hash: str, normalize: bool = True
    ) -> tuple[str, str]:
        """(canonical request, signed headers) for headers already holding everything to sign."""
        merged: dict[str, list[str]] = {}
        for name, value in headers:
            merged.setdefault(name.lower(), []).append(_header_value(value))
        names = sorted(merged)
        signed = ";".join(names)
        lines = "".join(f"{n}:{','.join(merged[n])}\n" for n in names)
        request = (
            f"{method}\n{canonical_path(path, normalize)}\n{canonical_query(query)}\n{lines}\n{signed}\n{body_hash}"
        )
        return request, signed

    def string_to_sign(self, amz_date: str, canonical_request: str) -> str:
        scope = amz_date[:8] + self.scope_suffix
        digest = hashlib.sha256(canonical_request.encode()).hexdigest()
        return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"

    def sign(
        self,
        method: str,
        host: str,
        path: str,
        query: str = "",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        *,
        amz_date: str | None = None,
        normalize: bool = True,
        sign_body_header: bool = False,
        sign_session_token: bool = True,
    ) -> dict[str, str]:
        """The headers to add to the request: `x-amz-date`, `x-amz-security-token` and `authorization`.

        `headers` are the request's other headers to sign (host is added); `amz_date` (YYYYMMDDTHHMMSSZ) defaults
        to now. `sign_body_header` also sends and signs `x-amz-content-sha256`.
        """
        if amz_date is None:
            second = int(time.time())
            if second != self._date_second:  # formatted once a second
                self._date_second, self._date = second, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            amz_date = self._date
        body_hash = payload_hash(body)
        added = {"x-amz-date": amz_date}
        token = self.credentials.session_token
        if token and sign_session_token:
            added["x-amz-security-token"] = token
        if sign_body_header:
            added["x-amz-content-sha256"] = body_hash
        signing = [("host", host), *(headers or ()), *added.items()]
        canonical, signed = self.canonical_request(method, path, query, signing, body_hash, normalize)
        to_sign = self.string_to_sign(amz_date, canonical)
        signature = hmac.digest(self.signing_key(amz_date[:8]), to_sign.encode(), "sha256").hex()
        scope = amz_date[:8] + self.scope_suffix
        added["authorization"] = (
            f"{ALGORITHM} Credential={self.credentials.access_key_id}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        if token and not sign_session_token:
            added["x-amz-security-token"] = token
        return added
