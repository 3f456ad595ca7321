"""The rows the store reads and writes, shared by every backend."""

from __future__ import annotations

import msgspec

# Who a key belongs to: a person (role-bearing) or a non-human service account.
OWNER_TYPES = ("user", "service_account")
USER_ROLES = ("admin", "standard", "analyst")
MEMBER_ROLES = ("member", "admin")
KEY_PERMISSIONS = ("read", "write")


class KeyRecord(msgspec.Struct, frozen=True):
    """An API key as stored: never the secret itself, only its SHA-256 digest and a display prefix."""

    id: str
    name: str
    prefix: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None
    owner_type: str | None = None
    owner_id: str | None = None
    access_list_id: str | None = None
    labels: dict[str, str] = {}
    monthly_limit: float | None = None
    expires_at: float | None = None
    expired_logged_at: float | None = None
    created_by: str | None = None
    permission: str | None = None
    # The key's `requesty.auto_cache` default; None defers to the organisation's.
    auto_cache: bool | None = None
    # Who set `monthly_limit` / `expires_at`: 'user:<id>' for the key's own (non-admin) owner, else the admin
    # actor. The owner may loosen only what they set themselves (governance/service.py).
    limit_set_by: str | None = None
    expiry_set_by: str | None = None
    groups: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"


class UserRecord(msgspec.Struct, frozen=True):
    id: str
    email: str
    name: str
    role: str
    monthly_limit: float | None
    status: str
    created_at: float


class ServiceAccountRecord(msgspec.Struct, frozen=True):
    id: str
    name: str
    description: str | None
    created_at: float


class Rules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What an access list grants: model ids, whole providers and `*` patterns, minus denies (which win)."""

    models: list[str] = []
    providers: list[str] = []
    patterns: list[str] = []
    deny: list[str] = []
    # MCP gateway entries (`mcp:<server>`, `mcp:<server>/<tool>`, `mcp:*`); MCP denies go in `deny`.
    mcp: list[str] = []


class AccessListRecord(msgspec.Struct, frozen=True):
    id: str
    name: str
    description: str | None
    rules: Rules
    created_at: float
    updated_at: float


class GroupMember(msgspec.Struct, frozen=True):
    user_id: str
    role: str
    added_at: float


class GroupRecord(msgspec.Struct, frozen=True):
    id: str
    name: str
    description: str | None
    access_list_id: str | None
    monthly_budget: float | None
    created_at: float
    members: tuple[GroupMember, ...] = ()


class AuditEvent(msgspec.Struct, frozen=True):
    """One append-only audit row. `before`/`after` are the changed record's public fields, never key material."""

    ts: float
    actor: str
    action: str
    target_type: str
    target_id: str | None = None
    before: dict | None = None
    after: dict | None = None
    detail: dict | None = None
    seq: int | None = None


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
    cost: float | None = None
    cost_estimated: bool = False
    cache_savings: float | None = None
    period: int | None = None
    # Every budget the request was charged to, space-separated (key:<id> user:<id> group:<id> org).
    budgets: str | None = None
    user_id: str | None = None
    end_user: str | None = None
    trace_id: str | None = None
    tags: str | None = None  # JSON list
    extra: str | None = None  # JSON object
    # 1 for the first upstream call of a request; a policy's retries and fallbacks get 2, 3, ...
    attempt: int = 1
    # The organisation's own (BYOK) provider key paid for this call, not the gateway's.
    byok: bool = False
    tool_calls: str | None = None  # JSON list of the tool names the answer called, in order
    tool_results: str | None = None  # JSON list of {"name", "is_error"}: results the request sent back
    reasoning_tokens: int | None = None  # inside completion_tokens (billed as output); None: not reported
    # JSON list of [direction, category, type, action, count]: what the guardrails found (audit events).
    guardrails: str | None = None
    prompt: str | None = None  # the prompt library versions applied ("name@3", space-separated)
    overhead_ms: float | None = None  # time spent in the gateway itself (x-router-overhead-ms)
    # The session (explicit, or reconstructed from the conversation), its branch (0: the main line) and the
    # request this one continued.
    session_id: str | None = None
    session_branch: int | None = None
    session_parent: str | None = None


USAGE_COLUMNS = UsageRow.__struct_fields__
