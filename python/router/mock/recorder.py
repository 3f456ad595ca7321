"""The request log behind ``GET /_mock/requests``.

Recording sits on the hot path, so it stores raw tuples (including the body bytes the request already holds) and
builds the JSON shape, parsing bodies, only when someone asks. Each granian worker has its own log: tests that count
requests run the mock with one worker.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

import msgspec

REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-identity-header"})
# Bodies above this are recorded as null (body_size still says how big they were): 1000 entries must stay cheap.
MAX_RECORDED_BODY = 256 * 1024


class RecordedRequest(msgspec.Struct):
    seq: int
    method: str
    path: str
    model: str | None
    stream: bool
    headers: dict[str, str]
    request_id: str | None
    body_size: int
    body: Any = None  # the parsed JSON body; null when absent, not JSON, or over MAX_RECORDED_BODY
    # sha256 of the credential (the bearer token, x-api-key or api-key), first 12 hex digits: which key was sent,
    # without recording it.
    credential: str | None = None


class RequestLog(msgspec.Struct):
    count: int
    total: int
    requests: list[RecordedRequest]
    streams_active: int = 0  # streamed responses being sent right now
    streams_aborted: int = 0  # streamed responses cut short because the client went away


def redact(name: str, value: str) -> str:
    if name == "authorization" and value.startswith("AWS4-HMAC-SHA256 "):
        # A SigV4 header's credential scope (key id, date, region, service) is not secret; its signature is.
        return value.partition(", Signature=")[0] + ", Signature=…"
    return value[:8] + "…" if name in REDACTED_HEADERS else value


def credential_fingerprint(headers: dict[str, str]) -> str | None:
    for name in ("authorization", "x-api-key", "api-key"):
        value = headers.get(name)
        if value:
            scheme, _, token = value.partition(" ")
            secret = token.strip() if name == "authorization" and scheme.lower() == "bearer" else value
            return hashlib.sha256(secret.encode()).hexdigest()[:12]
    return None


def parse_body(body: bytes) -> Any:
    if not body or len(body) > MAX_RECORDED_BODY:
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None


class Recorder:
    __slots__ = ("_entries", "_seq", "streams_aborted", "streams_active")

    def __init__(self, capacity: int = 1000) -> None:
        self._entries: deque[tuple] = deque(maxlen=capacity)
        self._seq = 0
        self.streams_active = 0
        self.streams_aborted = 0

    def record(
        self, method: str, path: str, headers: list[tuple[str, str]], model: str | None, stream: bool, body: bytes
    ) -> None:
        self._seq += 1
        self._entries.append((self._seq, method, path, headers, model, stream, body))

    def reset(self) -> int:
        cleared = len(self._entries)
        self._entries.clear()
        self._seq = 0
        self.streams_aborted = 0
        return cleared

    def snapshot(self) -> RequestLog:
        requests = []
        for seq, method, path, raw_headers, model, stream, body in self._entries:
            plain = {name.lower(): value for name, value in raw_headers}
            headers = {name: redact(name, value) for name, value in plain.items()}
            request_id = headers.get("x-request-id")
            requests.append(
                RecordedRequest(
                    seq,
                    method,
                    path,
                    model,
                    stream,
                    headers,
                    request_id,
                    len(body),
                    parse_body(body),
                    credential_fingerprint(plain),
                )
            )
        return RequestLog(len(requests), self._seq, requests, self.streams_active, self.streams_aborted)
