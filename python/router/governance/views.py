"""Records as the management API shows them (and as the audit log stores them: never key material)."""

from __future__ import annotations

from typing import Any

from ..store.records import AccessListRecord, GroupRecord, KeyRecord, ServiceAccountRecord, UserRecord
from .keys import iso_time


def _time(ts: float | None) -> str | None:
    return None if ts is None else iso_time(ts)


def key_view(k: KeyRecord, now: float) -> dict[str, Any]:
    return {
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "status": k.status(now),
        "owner": None if k.owner_type is None else {"type": k.owner_type, "id": k.owner_id},
        "groups": list(k.groups),
        "access_list_id": k.access_list_id,
        "labels": dict(k.labels),
        "monthly_limit": k.monthly_limit,
        "monthly_limit_set_by": k.limit_set_by,
        "permission": k.permission,
        "auto_cache": k.auto_cache,
        "expires_at": _time(k.expires_at),
        "expires_at_set_by": k.expiry_set_by,
        "created_by": k.created_by,
        "created_at": _time(k.created_at),
        "last_used_at": _time(k.last_used_at),
        "revoked_at": _time(k.revoked_at),
    }


def user_view(u: UserRecord, groups: dict[str, str] | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": u.id,
        "email": u.email,
        "name": u.name,
        "role": u.role,
        "monthly_limit": u.monthly_limit,
        "status": u.status,
        "created_at": _time(u.created_at),
    }
    if groups is not None:
        view["groups"] = [{"group_id": g, "role": r} for g, r in sorted(groups.items())]
    return view


def group_view(g: GroupRecord) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "access_list_id": g.access_list_id,
        "monthly_budget": g.monthly_budget,
        "created_at": _time(g.created_at),
        "members": [{"user_id": m.user_id, "role": m.role, "added_at": _time(m.added_at)} for m in g.members],
    }


def access_list_view(a: AccessListRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "description": a.description,
        "models": list(a.rules.models),
        "providers": list(a.rules.providers),
        "patterns": list(a.rules.patterns),
        "deny": list(a.rules.deny),
        "mcp": list(a.rules.mcp),
        "created_at": _time(a.created_at),
        "updated_at": _time(a.updated_at),
    }


def service_account_view(s: ServiceAccountRecord, active_keys: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "created_at": _time(s.created_at),
    }
    if active_keys is not None:
        view["active_keys"] = active_keys
    return view
