"""AWS Signature Version 4 request signing (header form), for Bedrock and the mock that verifies it.

Follows https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html and is checked against
AWS's published test suite (tests/fixtures/sigv4, from awslabs/aws-c-auth) in tests/unit/test_sigv4.py.

Paths are canonicalised the way every AWS service but S3 expects: each character outside the unreserved set
is percent-encoded again, so a wire path `/model/a%3A0/converse` signs as `/model/a%253A0/converse`. The
signing key is derived once per (day, region, service) and cached: a request costs two SHA-256 and one HMAC.
What does not change between a provider's requests (the canonical path, query and the fixed headers, the
signed-header list) is assembled once per target, so signing a request only fills in its date and body hash.
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
# Headers `sign` fills in per request; everything else a target signs is fixed.
_DYNAMIC = ("x-amz-content-sha256", "x-amz-date")
# Distinct (method, host, path, query, headers, options) targets a signer keeps templates for.
_MAX_TEMPLATES = 256
_BLOCK = 64  # SHA-256's block size, for HMAC


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

    __slots__ = (
        "_credential", "_date", "_date_second", "_inner", "_key", "_key_date", "_outer", "_templates", "credentials",
        "region", "scope_suffix", "service",
    )  # fmt: skip

    def __init__(self, credentials: Credentials, region: str, service: str) -> None:
        self.credentials = credentials
        self.region = region
        self.service = service
        self.scope_suffix = f"/{region}/{service}/aws4_request"
        self._key_date = ""
        self._key = b""
        # HMAC-SHA256 with the day's key, its padded key blocks already hashed: hmac.digest sets up OpenSSL's MAC
        # on every call, several times what the two short hashes themselves cost.
        self._inner = hashlib.sha256()
        self._outer = hashlib.sha256()
        self._date_second = -1
        self._date = ""
        self._credential = f"{ALGORITHM} Credential={credentials.access_key_id}/"
        # Target → (canonical-request pieces around the per-request values, their header names, signed headers).
        self._templates: dict[tuple, tuple[tuple[str, ...], tuple[str, ...], str] | None] = {}

    def signing_key(self, date: str) -> bytes:
        """kSigning for `date` (YYYYMMDD), cached for the day."""
        if date != self._key_date:
            key = hmac.digest(f"AWS4{self.credentials.secret_access_key}".encode(), date.encode(), "sha256")
            for part in (self.region, self.service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._key, self._key_date = key, date
            block = key.ljust(_BLOCK, b"\0")  # a SHA-256 output is shorter than the block: padded, never hashed
            self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
            self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))
        return self._key

    def _signature(self, date: str, string_to_sign: str) -> str:
        """Hex HMAC-SHA256 of `string_to_sign` under the signing key of `date`."""
        self.signing_key(date)
        inner = self._inner.copy()
        inner.update(string_to_sign.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

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
        token = self.credentials.session_token
        signs_token = bool(token) and sign_session_token
        key = (method, host, path, query, tuple(headers) if headers else (), normalize, sign_body_header, signs_token)
        try:
            template = self._templates[key]
        except KeyError:
            template = self._template(key)
        added = {"x-amz-date": amz_date}
        if signs_token:
            added["x-amz-security-token"] = token  # type: ignore[assignment]
        if sign_body_header:
            added["x-amz-content-sha256"] = body_hash
        if template is None:  # a caller's header shares a name with one `sign` adds: merged the general way
            signing = [("host", host), *(headers or ()), *added.items()]
            canonical, signed = self.canonical_request(method, path, query, signing, body_hash, normalize)
        else:
            pieces, slots, signed = template
            values = [added[name] for name in slots]
            values.append(body_hash)
            canonical = pieces[0] + "".join(value + piece for value, piece in zip(values, pieces[1:], strict=True))
        date = amz_date[:8]
        scope = date + self.scope_suffix
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
        signature = self._signature(date, to_sign)
        added["authorization"] = f"{self._credential}{scope}, SignedHeaders={signed}, Signature={signature}"
        if token and not sign_session_token:
            added["x-amz-security-token"] = token
        return added

    def _template(self, key: tuple) -> tuple[tuple[str, ...], tuple[str, ...], str] | None:
        """The canonical request of target `key` cut around its per-request values (the dynamic headers' values
        and the body hash, in that order); None where a caller's header collides with a dynamic one."""
        method, host, path, query, headers, normalize, sign_body_header, signs_token = key
        dynamic = ("x-amz-date", "x-amz-content-sha256") if sign_body_header else ("x-amz-date",)
        fixed = [("host", host), *headers]
        if signs_token:
            fixed.append(("x-amz-security-token", self.credentials.session_token or ""))
        merged: dict[str, list[str]] = {}
        for name, value in fixed:
            merged.setdefault(name.lower(), []).append(_header_value(value))
        template = None
        if not any(name in merged for name in _DYNAMIC):
            names = sorted([*merged, *dynamic])
            signed = ";".join(names)
            pieces = [f"{method}\n{canonical_path(path, normalize)}\n{canonical_query(query)}\n"]
            slots = []
            for name in names:
                if name in merged:
                    pieces[-1] += f"{name}:{','.join(merged[name])}\n"
                else:
                    pieces[-1] += f"{name}:"
                    slots.append(name)
                    pieces.append("\n")
            pieces[-1] += f"\n{signed}\n"
            pieces.append("")
            template = (tuple(pieces), tuple(slots), signed)
        if len(self._templates) >= _MAX_TEMPLATES:
            self._templates.clear()
        self._templates[key] = template
        return template
