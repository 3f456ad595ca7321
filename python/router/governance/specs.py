"""The shapes of governance changes, shared by the management API (decoded from JSON) and the CLI."""

from __future__ import annotations

import msgspec


class Owner(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: str  # user | service_account
    id: str  # id, or a user's email / a service account's name


class KeySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    owner: Owner | None = None
    groups: list[str] = []
    access_list: str | None = None
    labels: dict[str, str] = {}
    monthly_limit: float | None = None
    expires_at: str | float | None = None
    permission: str | None = None
    auto_cache: bool | None = None  # the key's `requesty.auto_cache` default; null: the organisation's


class UserSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    email: str
    name: str | None = None
    role: str = "standard"
    monthly_limit: float | None = None
    status: str = "active"


class UserUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str | None = None
    role: str | None = None
    monthly_limit: float | None = None
    status: str | None = None


class GroupSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    description: str | None = None
    access_list: str | None = None
    monthly_budget: float | None = None


class GroupUpdate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    description: str | None = None
    # UNSET keeps the current list; null detaches it.
    access_list: str | msgspec.UnsetType | None = msgspec.UNSET
    monthly_budget: float | msgspec.UnsetType | None = msgspec.UNSET


class MemberSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    user_id: str
    role: str = "member"


class AccessListSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    description: str | None = None
    models: list[str] = []
    providers: list[str] = []
    patterns: list[str] = []
    deny: list[str] = []
    mcp: list[str] = []


class ServiceAccountSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    description: str | None = None


class Attachment(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Bulk attach/detach of one access list: many keys and groups at once."""

    key_ids: list[str] = []
    group_ids: list[str] = []
