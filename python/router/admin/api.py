"""The governance routes of the management API: keys, groups, approved models, access lists, users, audit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from ..errors import InvalidRequest
from ..governance import specs
from ..governance.keys import iso_time
from ..governance.rules import PRESETS, preset_models
from ..governance.views import access_list_view, group_view, key_view, service_account_view, user_view
from ..spend.budgets import period_end, period_of
from ..spend.cost import MICRO
from .routing import Call, paged, route, when

# -- request bodies -------------------------------------------------------------------------------------


class LimitBody(msgspec.Struct, forbid_unknown_fields=True):
    monthly_limit: float | None


class LabelsBody(msgspec.Struct, forbid_unknown_fields=True):
    labels: dict[str, str]


class ExpiryBody(msgspec.Struct, forbid_unknown_fields=True):
    expires_at: str | float | None = None


class AccessListRef(msgspec.Struct, forbid_unknown_fields=True):
    access_list: str | None


class GroupsBody(msgspec.Struct, forbid_unknown_fields=True):
    groups: list[str]


class ModelsBody(msgspec.Struct, forbid_unknown_fields=True):
    models: list[str]


class ApprovalBody(msgspec.Struct, forbid_unknown_fields=True):
    enabled: bool


class PresetBody(msgspec.Struct, forbid_unknown_fields=True):
    mode: str = "add"


class CachingBody(msgspec.Struct, forbid_unknown_fields=True):
    auto_cache: bool | None


class RoleBody(msgspec.Struct, forbid_unknown_fields=True):
    role: str


# -- organisation ----------------------------------------------------------------------------------------


@route("GET", "/org", "The organisation: name, approval mode and counts")
def get_org(call: Call) -> tuple[int, Any]:
    configured, approved = call.gov.approved(call.actor)
    store = call.gov.store
    return 200, {
        "id": "org_default",
        "name": store.org_name(),
        "approval_configured": configured,
        "approved_models": len(approved),
        "catalog_models": len(call.gov.catalog),
        "counts": store.org_counts(),
        # null: the config file's `caching.auto_cache` decides.
        "caching": {"auto_cache": store.org_auto_cache()},
        "you": {"actor": call.actor.id, "role": call.actor.role, "user_id": call.actor.user_id},
    }


@route("POST", "/org/limit", "Set (or clear with null) the organisation's monthly budget in USD", LimitBody)
def org_limit(call: Call) -> tuple[int, Any]:
    return 200, {"monthly_limit": call.gov.set_org_limit(call.actor, call.body.monthly_limit)}


@route(
    "POST",
    "/org/caching",
    "Set the organisation's requesty.auto_cache default (null: the config file's caching.auto_cache)",
    CachingBody,
)
def org_caching(call: Call) -> tuple[int, Any]:
    return 200, {"auto_cache": call.gov.set_org_auto_cache(call.actor, call.body.auto_cache)}


# -- API keys -------------------------------------------------------------------------------------------


_KEY_STATUSES = ("active", "revoked", "expired", "expiring")


@route(
    "GET",
    "/apikey",
    "List API keys (standard users: their own); status=active|revoked|expired|expiring filters, expiring: active "
    "keys expiring within `within_days` (default 7, 1-365)",
)
def list_keys(call: Call) -> tuple[int, Any]:
    at = call.now()
    status = call.query.get("status") or None
    if status is not None and status not in _KEY_STATUSES:
        allowed = ", ".join(_KEY_STATUSES)
        raise InvalidRequest(f"'status' must be one of {allowed}.", param="status", code="invalid_value")
    try:
        days = float(call.query.get("within_days", 7))
    except ValueError:
        days = -1.0
    if not 1 <= days <= 365:
        raise InvalidRequest("'within_days' must be 1-365 days.", param="within_days", code="invalid_value")
    selected = (status, at, days * 86400) if status is not None else None
    return paged(call, lambda n, o: call.gov.list_keys(call.actor, n, o, selected), lambda k: key_view(k, at))


@route("POST", "/apikey", "Create an API key; the secret is returned once", specs.KeySpec)
def create_key(call: Call) -> tuple[int, Any]:
    record, secret = call.gov.create_key(call.actor, call.body)
    return 201, {**key_view(record, call.now()), "key": secret}


@route("GET", "/apikey/{id}", "An API key with its usage for a date range, grouped by day and model")
def get_key(call: Call) -> tuple[int, Any]:
    at = call.now()
    today = datetime.fromtimestamp(at, UTC).date()
    end = when(call.query, "end", datetime.combine(today + timedelta(days=1), datetime.min.time(), UTC).timestamp())
    start = when(call.query, "start", end - 30 * 86400)
    if start >= end:
        raise InvalidRequest("'start' must be before 'end'.", param="start", code="invalid_value")
    record, rows = call.gov.key_usage(call.actor, call.params["id"], start, end)
    totals = {f: sum(r[f] for r in rows) for f in ("requests", "prompt_tokens", "completion_tokens", "errors", "cost")}
    period = period_of(at, call.spend.reset_day)
    committed, reserved = call.spend.ledger.usage(f"key:{record.id}", period)
    if not committed and not reserved:
        committed = call.gov.store.spend_of(f"key:{record.id}", period)
    return 200, {
        **key_view(record, at),
        "budget": {
            "period": f"{period // 100}-{period % 100:02d}",
            "monthly_limit": record.monthly_limit,
            "spent": committed / MICRO,
            "reserved": reserved / MICRO,
            "resets_at": iso_time(period_end(period, call.spend.reset_day)),
        },
        "usage": {
            "start": iso_time(start),
            "end": iso_time(end),
            "group_by": ["day", "model"],
            "data": rows,
            "totals": totals,
        },
    }


@route("DELETE", "/apikey/{id}", "Delete an API key (refused on the next request)")
def delete_key(call: Call) -> tuple[int, Any]:
    record = call.gov.delete_key(call.actor, call.params["id"])
    return 200, {"id": record.id, "deleted": True}


@route(
    "POST",
    "/apikey/{id}/limit",
    "Set (or clear with null) the monthly spend limit in USD; a non-admin owner may only lower an admin's",
    LimitBody,
)
def key_limit(call: Call) -> tuple[int, Any]:
    return 200, key_view(call.gov.set_key_limit(call.actor, call.params["id"], call.body.monthly_limit), call.now())


@route("POST", "/apikey/{id}/labels", "Replace the labels ({} removes all)", LabelsBody)
def key_labels(call: Call) -> tuple[int, Any]:
    return 200, key_view(call.gov.set_key_labels(call.actor, call.params["id"], call.body.labels), call.now())


@route(
    "POST",
    "/apikey/{id}/expiry",
    "Set the expiry (ISO time or duration such as 90d; null removes it); a non-admin owner may only shorten an admin's",
    ExpiryBody,
)
def key_expiry(call: Call) -> tuple[int, Any]:
    return 200, key_view(call.gov.set_key_expiry(call.actor, call.params["id"], call.body.expires_at), call.now())


@route(
    "POST",
    "/apikey/{id}/settings",
    "Set the key's requesty.auto_cache default (null: the organisation's); its owner or an admin",
    CachingBody,
)
def key_settings(call: Call) -> tuple[int, Any]:
    record = call.gov.set_key_auto_cache(call.actor, call.params["id"], call.body.auto_cache)
    return 200, key_view(record, call.now())


@route("POST", "/apikey/{id}/revoke", "Revoke an API key (kept for audit)")
def key_revoke(call: Call) -> tuple[int, Any]:
    return 200, key_view(call.gov.revoke_key(call.actor, call.params["id"]), call.now())


@route("POST", "/apikey/{id}/access-list", "Attach an access list to the key (null detaches)", AccessListRef)
def key_access_list(call: Call) -> tuple[int, Any]:
    record = call.gov.set_key_access_list(call.actor, call.params["id"], call.body.access_list)
    return 200, key_view(record, call.now())


@route("POST", "/apikey/{id}/groups", "Replace the groups the key belongs to", GroupsBody)
def key_groups(call: Call) -> tuple[int, Any]:
    return 200, key_view(call.gov.set_key_groups(call.actor, call.params["id"], call.body.groups), call.now())


# -- groups ---------------------------------------------------------------------------------------------


@route("GET", "/group", "List groups (standard users: their own)")
def list_groups(call: Call) -> tuple[int, Any]:
    return paged(call, lambda n, o: call.gov.list_groups(call.actor, n, o), group_view)


@route("POST", "/group", "Create a group", specs.GroupSpec)
def create_group(call: Call) -> tuple[int, Any]:
    return 201, group_view(call.gov.create_group(call.actor, call.body))


@route("GET", "/group/{id}", "A group with its members")
def get_group(call: Call) -> tuple[int, Any]:
    return 200, group_view(call.gov.get_group(call.actor, call.params["id"]))


@route("PATCH", "/group/{id}", "Change a group's description, access list or monthly budget", specs.GroupUpdate)
def update_group(call: Call) -> tuple[int, Any]:
    return 200, group_view(call.gov.update_group(call.actor, call.params["id"], call.body))


@route("DELETE", "/group/{id}", "Delete a group")
def delete_group(call: Call) -> tuple[int, Any]:
    group = call.gov.delete_group(call.actor, call.params["id"])
    return 200, {"id": group.id, "deleted": True}


@route("POST", "/group/{id}/members", "Add a member (role member or admin)", specs.MemberSpec)
def add_member(call: Call) -> tuple[int, Any]:
    return 201, group_view(call.gov.set_member(call.actor, call.params["id"], call.body, must_exist=False))


@route("PATCH", "/group/{id}/members/{user}", "Change a member's role", RoleBody)
def update_member(call: Call) -> tuple[int, Any]:
    spec = specs.MemberSpec(user_id=call.params["user"], role=call.body.role)
    return 200, group_view(call.gov.set_member(call.actor, call.params["id"], spec, must_exist=True))


@route("DELETE", "/group/{id}/members/{user}", "Remove a member")
def remove_member(call: Call) -> tuple[int, Any]:
    return 200, group_view(call.gov.remove_member(call.actor, call.params["id"], call.params["user"]))


# -- approved models ---------------------------------------------------------------------------------------


@route(
    "GET",
    "/models",
    "The catalog, each model marked approved or not, with its context window, capabilities and prices per million "
    "tokens",
)
def catalog(call: Call) -> tuple[int, Any]:
    configured, approved = call.gov.approved(call.actor)
    ids = set(approved)
    return 200, {
        "object": "list",
        "approval_configured": configured,
        "data": [
            {"id": m, "provider": p, "region": call.gov.metadata[m][0], "zdr": call.gov.metadata[m][1],
             "approved": (m in ids) if configured else None, **_model_details(call.gov.details.get(m))}
            for m, p in sorted(call.gov.catalog.items())
        ],
    }  # fmt: skip


def _model_details(info: Any) -> dict[str, Any]:
    if info is None:
        return {}
    return {
        "context_window": info.context_window,
        "max_output_tokens": info.max_output_tokens,
        "capabilities": info.capabilities,
        "pricing": info.pricing,
        "description": info.description,
    }


@route("GET", "/models/approved", "The organisation's approved models")
def list_approved(call: Call) -> tuple[int, Any]:
    configured, approved = call.gov.approved(call.actor)
    return 200, {"approval_configured": configured, "models": approved}


@route("POST", "/models/approved", "Approve models (switches approval on: unapproved models are denied)", ModelsBody)
def approve(call: Call) -> tuple[int, Any]:
    return 200, {"approval_configured": True, "models": call.gov.approve(call.actor, call.body.models)}


@route(
    "POST", "/models/approved/remove", "Remove models from the approved list (every key loses them at once)", ModelsBody
)
def unapprove(call: Call) -> tuple[int, Any]:
    return 200, {"approval_configured": True, "models": call.gov.unapprove(call.actor, call.body.models)}


@route(
    "POST",
    "/models/approval",
    "Switch approval on or off (off: every key is back to the whole catalog, the approved list emptied)",
    ApprovalBody,
)
def set_approval(call: Call) -> tuple[int, Any]:
    configured, models = call.gov.set_approval(call.actor, call.body.enabled)
    return 200, {"approval_configured": configured, "models": models}


@route("GET", "/models/presets", "The approval presets and the models each would approve now")
def presets(call: Call) -> tuple[int, Any]:
    call.gov.approved(call.actor)
    return 200, {
        "data": [
            {"name": n, "description": d, "models": preset_models(n, call.gov.metadata)}
            for n, (d, _) in PRESETS.items()
        ]
    }


@route("POST", "/models/presets/{preset}", "Apply a preset (mode add, or replace the approved list)", PresetBody)
def apply_preset(call: Call) -> tuple[int, Any]:
    if call.body.mode not in ("add", "replace"):
        raise InvalidRequest("'mode' must be 'add' or 'replace'.", param="mode", code="invalid_value")
    models = call.gov.apply_preset(call.actor, call.params["preset"], replace=call.body.mode == "replace")
    return 200, {"approval_configured": True, "models": models}


# -- access lists -----------------------------------------------------------------------------------------


@route("GET", "/access-list", "List access lists (all for admins and analysts; else those governing the calling key)")
def list_access_lists(call: Call) -> tuple[int, Any]:
    return paged(call, lambda n, o: call.gov.list_access_lists(call.actor, n, o), access_list_view)


@route("POST", "/access-list", "Create an access list (models must be approved)", specs.AccessListSpec)
def create_access_list(call: Call) -> tuple[int, Any]:
    return 201, access_list_view(call.gov.create_access_list(call.actor, call.body))


@route("GET", "/access-list/{id}", "An access list")
def get_access_list(call: Call) -> tuple[int, Any]:
    return 200, access_list_view(call.gov.get_access_list(call.actor, call.params["id"]))


@route("PUT", "/access-list/{id}", "Replace an access list's rules", specs.AccessListSpec)
def update_access_list(call: Call) -> tuple[int, Any]:
    return 200, access_list_view(call.gov.update_access_list(call.actor, call.params["id"], call.body))


@route("DELETE", "/access-list/{id}", "Delete an access list (refused while attached)")
def delete_access_list(call: Call) -> tuple[int, Any]:
    record = call.gov.delete_access_list(call.actor, call.params["id"])
    return 200, {"id": record.id, "deleted": True}


@route("POST", "/access-list/{id}/attach", "Attach the list to many keys and groups at once", specs.Attachment)
def attach(call: Call) -> tuple[int, Any]:
    return 200, {"attached": call.gov.attach(call.actor, call.params["id"], call.body)}


@route("POST", "/access-list/{id}/detach", "Detach the list from keys and groups", specs.Attachment)
def detach(call: Call) -> tuple[int, Any]:
    return 200, {"detached": call.gov.attach(call.actor, call.params["id"], call.body, detach=True)}


# -- users and service accounts ------------------------------------------------------------------------------


@route("GET", "/user", "List users")
def list_users(call: Call) -> tuple[int, Any]:
    return paged(call, lambda n, o: call.gov.list_users(call.actor, n, o), user_view)


@route("POST", "/user", "Create a user (role admin, standard or analyst)", specs.UserSpec)
def create_user(call: Call) -> tuple[int, Any]:
    return 201, user_view(call.gov.create_user(call.actor, call.body))


@route("GET", "/user/{id}", "A user with their groups ('me' for yourself)")
def get_user(call: Call) -> tuple[int, Any]:
    user, groups = call.gov.get_user(call.actor, call.params["id"])
    return 200, user_view(user, groups)


@route("PATCH", "/user/{id}", "Change a user's name, role, monthly limit or status", specs.UserUpdate)
def update_user(call: Call) -> tuple[int, Any]:
    return 200, user_view(call.gov.update_user(call.actor, call.params["id"], call.body))


@route("DELETE", "/user/{id}", "Delete a user (refused while they own active keys)")
def delete_user(call: Call) -> tuple[int, Any]:
    user = call.gov.delete_user(call.actor, call.params["id"])
    return 200, {"id": user.id, "deleted": True}


@route("GET", "/service-account", "List service accounts")
def list_service_accounts(call: Call) -> tuple[int, Any]:
    return paged(call, lambda n, o: call.gov.list_service_accounts(call.actor, n, o), service_account_view)


@route("POST", "/service-account", "Create a service account", specs.ServiceAccountSpec)
def create_service_account(call: Call) -> tuple[int, Any]:
    return 201, service_account_view(call.gov.create_service_account(call.actor, call.body))


@route("GET", "/service-account/{id}", "A service account and its number of active keys")
def get_service_account(call: Call) -> tuple[int, Any]:
    account, active = call.gov.get_service_account(call.actor, call.params["id"])
    return 200, service_account_view(account, active)


@route("DELETE", "/service-account/{id}", "Delete a service account (refused while it has active keys)")
def delete_service_account(call: Call) -> tuple[int, Any]:
    account = call.gov.delete_service_account(call.actor, call.params["id"])
    return 200, {"id": account.id, "deleted": True}


# -- audit log ----------------------------------------------------------------------------------------------


@route("GET", "/audit", "The audit log: filter by start, end, actor, target, action (key.* for a family)")
def audit(call: Call) -> tuple[int, Any]:
    q = call.query
    start = when(q, "start", 0.0) if "start" in q else None
    end = when(q, "end", 0.0) if "end" in q else None

    def fetch(limit: int, offset: int) -> list[Any]:
        return call.gov.audit_log(
            call.actor, start=start, end=end, actor=q.get("actor"), target=q.get("target"), action=q.get("action"),
            limit=limit, offset=offset,
        )  # fmt: skip

    def view(e: Any) -> dict[str, Any]:
        return {**msgspec.structs.asdict(e), "time": iso_time(e.ts)}

    return paged(call, fetch, view)
