"""The rows the store reads and writes, shared by every backend."""

from __future__ import annotations

import msgspec


class KeyRecord(msgspec.Struct, frozen=True):
    """An API key as stored: never the secret itself, only its SHA-256 digest and a display prefix."""

    id: str
    name: str
    prefix: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class UsageRow(msgspec.Struct, array_like=True):
    """One proxied request. Field order is the usage_log column order (rows are written as tuples)."""

    request_id: str
    ts: float
    key_id: str | None
    endpoint: str
    model: str | None
    provider: str | None
    status: int
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    stream: bool = False
    error_type: str | None = None
    # 1 for the first upstream call of a request; a policy's retries and fallbacks get 2, 3, ...
    attempt: int = 1


USAGE_COLUMNS = UsageRow.__struct_fields__
