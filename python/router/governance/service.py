"""Every governance operation, checked and audited in one place: the management API and the CLI both call these.

Each change runs in one store transaction together with its audit row (before/after, never key material),
and the transaction bumps the change epoch, so every worker's next request sees it.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from ..errors import Conflict, InvalidRequest, PermissionDenied
from ..mcp import access as mcp_access
from ..store import KeyRecord, Store
from ..store.records import (
    KEY_PERMISSIONS,
    MEMBER_ROLES,
    USER_ROLES,
    AccessListRecord,
    AuditEvent,
    GroupRecord,
    Rules,
    ServiceAccountRecord,
    UserRecord,
)
from . import rbac
from .expiry import parse_expiry
from .keys import effective_for, group_rules, hash_key, mint_key
from .rbac import Actor
from .resolve import resolve
from .rules import PRESETS, entry_error, is_pattern, is_provider, preset_models
from .specs import (
    AccessListSpec,
    Attachment,
    GroupSpec,
    GroupUpdate,
    KeySpec,
    MemberSpec,
    Owner,
    ServiceAccountSpec,
    UserSpec,
    UserUpdate,
)
from .views import access_list_view, group_view, key_view, service_account_view, user_view

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9_.\-/]{1,64}$")
_MAX_LABELS = 32
_MAX_NAME = 100


def _bad(message: str, param: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _name(value: str, param: str = "name") -> str:
    value = value.strip()
    if not value:
        raise _bad(f"'{param}' must not be empty.", param)
    if len(value) > _MAX_NAME:
        raise _bad(f"'{param}' is longer than {_MAX_NAME} characters.", param)
    return value


def _amount(value: float | None, param: str) -> float | None:
    if value is not None and not (value >= 0 and value < 1e12):
        raise _bad(f"'{param}' must be a non-negative number of US dollars.", param)
    return value


def _labels(labels: Mapping[str, str]) -> dict[str, str]:
    if len(labels) > _MAX_LABELS:
        raise _bad(f"At most {_MAX_LABELS} labels per key.", "labels")
    for k, v in labels.items():
        if not _LABEL_KEY.match(k):
            raise _bad(f"Label name '{k}' must be 1-64 characters of letters, digits and _ . - /.", f"labels.{k}")
        if len(v) > 256:
            raise _bad(f"Label '{k}' has a value longer than 256 characters.", f"labels.{k}")
    return dict(labels)


def _setter(actor: Actor) -> str:
    """Who a key's limit or expiry is recorded as set by: the acting user for a non-admin, else the actor."""
    return actor.id if actor.is_admin or not actor.user_id else f"user:{actor.user_id}"


def _tighten_only(
    actor: Actor, current: float | None, wanted: float | None, set_by: str | None, param: str
) -> str | None:
    """The new value's setter, after refusing a non-admin's loosening of a ceiling someone else set.

    Both a monthly limit and an expiry are ceilings where None means "none": lowering (or adding) one tightens,
    raising or removing it loosens. A non-admin owner may loosen only a value they set themselves; a value an
    admin set, and anything they tighten it to, stays the admin's, so it can never be raised back past it."""
    if actor.is_admin or current is None or set_by == _setter(actor):
        return None if wanted is None else _setter(actor)
    if wanted is None or wanted > current:
        what = "monthly limit" if param == "monthly_limit" else "expiry"
        raise PermissionDenied(
            f"This key's {what} was set by an admin: you may lower it, but only an admin may raise or remove it.",
            param=param,
            code="limit_set_by_admin",
        )
    return set_by


class Governance:
    """The store, the catalog it governs (model id → provider, and region/ZDR metadata) and a clock."""

    def __init__(
        self,
        store: Store,
        catalog: Mapping[str, str],
        metadata: Mapping[str, tuple[str, bool]],
        clock: Callable[[], float] = time.time,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.metadata = metadata
        # Model id → its catalog entry (ModelInfo: context, capabilities, prices), shown by `GET /models`.
        self.details = details or {}
        self.clock = clock

    def _audit(self, actor: Actor, action: str, target_type: str, target_id: str | None, **fields: Any) -> None:
        self.store.append_audit([AuditEvent(self.clock(), actor.id, action, target_type, target_id, **fields)])

    # -- lookups with visibility ------------------------------------------------------------------

    def _visible_key(self, actor: Actor, key_id: str) -> KeyRecord:
        rbac.require_user(actor)
        record = self.store.get_key(key_id)
        if record is None or not (actor.reads_all or (actor.user_id and record.owner_id == actor.user_id)):
            raise rbac.not_found("API key", key_id)
        return record

    def _changeable_key(self, actor: Actor, key_id: str) -> KeyRecord:
        record = self._visible_key(actor, key_id)
        if actor.role == rbac.ANALYST:
            raise PermissionDenied("A read-only analyst cannot change API keys.", code="insufficient_permissions")
        return record

    def _access_list(self, ident: str, param: str) -> AccessListRecord:
        found = self.store.get_access_list(ident)
        if found is None:
            raise _bad(f"No access list with id or name '{ident}'.", param, "access_list_not_found")
        return found

    def _group_ref(self, ident: str, param: str) -> GroupRecord:
        found = self.store.get_group(ident)
        if found is None:
            raise _bad(f"No group with id or name '{ident}'.", param, "group_not_found")
        return found

    def _approved(self) -> frozenset[str] | None:
        configured, ids = self.store.approval()
        return ids if configured else None

    # -- API keys ---------------------------------------------------------------------------------

    def list_keys(
        self, actor: Actor, limit: int, offset: int, status: tuple[str, float, float] | None = None
    ) -> list[KeyRecord]:
        rbac.require_user(actor)
        if actor.reads_all:
            return self.store.list_keys(limit=limit, offset=offset, status=status)
        return self.store.list_keys(owner_id=actor.user_id or "", limit=limit, offset=offset, status=status)

    def get_key(self, actor: Actor, key_id: str) -> KeyRecord:
        return self._visible_key(actor, key_id)

    def _owner(self, actor: Actor, owner: Owner | None) -> tuple[str | None, str | None]:
        if owner is None:
            return ("user", actor.user_id) if actor.user_id else (None, None)
        if owner.type == "user":
            user = self.store.find_user(owner.id)
            if user is None:
                raise _bad(f"No user with id or email '{owner.id}'.", "owner.id", "user_not_found")
            return "user", user.id
        if owner.type == "service_account":
            account = self.store.get_service_account(owner.id)
            if account is None:
                raise _bad(f"No service account with id or name '{owner.id}'.", "owner.id", "service_account_not_found")
            return "service_account", account.id
        raise _bad("'owner.type' must be 'user' or 'service_account'.", "owner.type")

    def create_key(self, actor: Actor, spec: KeySpec) -> tuple[KeyRecord, str]:
        rbac.require_user(actor)
        if actor.role == rbac.ANALYST:
            raise PermissionDenied("A read-only analyst cannot create API keys.", code="insufficient_permissions")
        now = self.clock()
        owner_type, owner_id = self._owner(actor, spec.owner)
        groups = [self._group_ref(g, f"groups[{i}]").id for i, g in enumerate(spec.groups)]
        access_list = self._access_list(spec.access_list, "access_list") if spec.access_list else None
        if spec.permission is not None and spec.permission not in KEY_PERMISSIONS:
            raise _bad("'permission' must be 'read', 'write' or null.", "permission")
        expires_at = None
        if spec.expires_at is not None:
            try:
                expires_at = parse_expiry(spec.expires_at, now)
            except ValueError as exc:
                raise _bad(f"'expires_at': {exc}.", "expires_at") from None
        monthly_limit = _amount(spec.monthly_limit, "monthly_limit")
        fields = dict(
            owner_type=owner_type,
            owner_id=owner_id,
            access_list_id=access_list.id if access_list else None,
            labels=_labels(spec.labels),
            monthly_limit=monthly_limit,
            expires_at=expires_at,
            limit_set_by=None if monthly_limit is None else _setter(actor),
            expiry_set_by=None if expires_at is None else _setter(actor),
            created_by=actor.id,
            permission=spec.permission,
            auto_cache=spec.auto_cache,
            groups=tuple(groups),
        )
        try:
            record, secret = mint_key(spec.name, **fields)
        except ValueError:
            raise _bad("'name' must not be empty.", "name") from None
        if not actor.is_admin:
            self._check_standard_key(actor, record)
        with self.store.transaction():
            self.store.insert_key(record, hash_key(secret))
            self._audit(actor, "key.create", "api_key", record.id, after=key_view(record, now))
        return record, secret

    def _check_standard_key(self, actor: Actor, record: KeyRecord) -> None:
        """A standard user's key stays inside what their groups grant them, and belongs to them."""
        if record.owner_type != "user" or record.owner_id != actor.user_id:
            raise PermissionDenied("You may only create API keys owned by yourself.", code="insufficient_permissions")
        if record.permission is not None:
            raise PermissionDenied("Only an admin may create management keys.", code="insufficient_permissions")
        foreign = [g for g in record.groups if g not in actor.groups]
        if foreign:
            raise PermissionDenied(f"You are not a member of group '{foreign[0]}'.", code="insufficient_permissions")
        own = self._user_grant(actor.user_id or "")
        wanted = effective_for(self.store, record, self.catalog).models
        outside = sorted(wanted - own)
        if outside:
            raise PermissionDenied(
                f"The access list would grant {len(outside)} model(s) your groups do not grant you, "
                f"e.g. '{outside[0]}'.",
                param="access_list",
                code="access_list_exceeds_grant",
            )

    def _user_grant(self, user_id: str) -> frozenset[str]:
        return resolve(
            self.catalog, None, group_rules(self.store, self.store.memberships(user_id)), self._approved()
        ).models

    def _update_key(self, actor: Actor, record: KeyRecord, action: str, **fields: Any) -> KeyRecord:
        now = self.clock()
        with self.store.transaction():
            if fields:
                self.store.update_key(record.id, **{k: v for k, v in fields.items() if k != "groups"})
            if "groups" in fields:
                self.store.set_key_groups(record.id, fields["groups"])
            after = self.store.get_key(record.id)
            assert after is not None
            self._audit(actor, action, "api_key", record.id, before=key_view(record, now), after=key_view(after, now))
        return after

    def set_key_limit(self, actor: Actor, key_id: str, monthly_limit: float | None) -> KeyRecord:
        record = self._changeable_key(actor, key_id)
        limit = _amount(monthly_limit, "monthly_limit")
        set_by = _tighten_only(actor, record.monthly_limit, limit, record.limit_set_by, "monthly_limit")
        return self._update_key(actor, record, "key.update_limit", monthly_limit=limit, limit_set_by=set_by)

    def set_key_auto_cache(self, actor: Actor, key_id: str, auto_cache: bool | None) -> KeyRecord:
        """The key's `requesty.auto_cache` default (None defers to the organisation's): its owner or an admin."""
        record = self._changeable_key(actor, key_id)
        return self._update_key(actor, record, "key.update_settings", auto_cache=auto_cache)

    def set_key_labels(self, actor: Actor, key_id: str, labels: Mapping[str, str]) -> KeyRecord:
        record = self._changeable_key(actor, key_id)
        return self._update_key(actor, record, "key.update_labels", labels=_labels(labels))

    def set_key_expiry(self, actor: Actor, key_id: str, expires_at: str | float | None) -> KeyRecord:
        record = self._changeable_key(actor, key_id)
        now = self.clock()
        if record.expires_at is not None and record.expires_at <= now:
            raise Conflict(
                "This API key has already expired; an expired key cannot be un-expired. Create a new key.",
                param="expires_at",
                code="key_expired",
            )
        at = None
        if expires_at is not None:
            try:
                at = parse_expiry(expires_at, now)
            except ValueError as exc:
                raise _bad(f"'expires_at': {exc}.", "expires_at") from None
        set_by = _tighten_only(actor, record.expires_at, at, record.expiry_set_by, "expires_at")
        return self._update_key(actor, record, "key.update_expiry", expires_at=at, expiry_set_by=set_by)

    def set_key_access_list(self, actor: Actor, key_id: str, access_list: str | None) -> KeyRecord:
        record = self._changeable_key(actor, key_id)
        rbac.require_admin(actor, "attach access lists to keys")
        list_id = self._access_list(access_list, "access_list").id if access_list else None
        return self._update_key(actor, record, "key.update_access_list", access_list_id=list_id)

    def set_key_groups(self, actor: Actor, key_id: str, groups: Sequence[str]) -> KeyRecord:
        record = self._changeable_key(actor, key_id)
        rbac.require_admin(actor, "change the groups of a key")
        ids = [self._group_ref(g, f"groups[{i}]").id for i, g in enumerate(groups)]
        return self._update_key(actor, record, "key.update_groups", groups=ids)

    def revoke_key(self, actor: Actor, key_id: str) -> KeyRecord:
        record = self._changeable_key(actor, key_id)
        with self.store.transaction():
            after = self.store.revoke_key(record.id)
            assert after is not None
            now = self.clock()
            self._audit(
                actor, "key.revoke", "api_key", record.id, before=key_view(record, now), after=key_view(after, now)
            )
        return after

    def delete_key(self, actor: Actor, key_id: str) -> KeyRecord:
        record = self._changeable_key(actor, key_id)
        with self.store.transaction():
            self.store.delete_key(record.id)
            self._audit(actor, "key.delete", "api_key", record.id, before=key_view(record, self.clock()))
        return record

    def key_usage(self, actor: Actor, key_id: str, start: float, end: float) -> tuple[KeyRecord, list[dict[str, Any]]]:
        record = self._visible_key(actor, key_id)
        rows = self.store.key_usage(record.id, start, end)
        return record, [
            {"day": d, "model": m, "requests": n, "prompt_tokens": p, "completion_tokens": c, "errors": e, "cost": usd}
            for d, m, n, p, c, e, usd in rows
        ]

    # -- approved models --------------------------------------------------------------------------

    def approved(self, actor: Actor) -> tuple[bool, list[str]]:
        rbac.require_user(actor)
        configured, ids = self.store.approval()
        return configured, sorted(ids)

    def _known_models(self, models: Sequence[str], param: str) -> list[str]:
        for i, m in enumerate(models):
            if m not in self.catalog:
                raise _bad(f"'{m}' is not a model in the catalog.", f"{param}[{i}]", "model_not_found")
        return list(dict.fromkeys(models))

    def approve(self, actor: Actor, models: Sequence[str]) -> list[str]:
        rbac.require_admin(actor, "approve models")
        ids = self._known_models(models, "models")
        with self.store.transaction():
            before = sorted(self.store.approval()[1])
            self.store.approve_models(ids, self.clock())
            after = sorted(self.store.approval()[1])
            self._audit(
                actor, "models.approve", "approved_models", None, before={"models": before}, after={"models": after}
            )
        return after

    def unapprove(self, actor: Actor, models: Sequence[str]) -> list[str]:
        rbac.require_admin(actor, "remove approved models")
        with self.store.transaction():
            before = sorted(self.store.approval()[1])
            missing = [m for m in models if m not in before]
            if missing:
                raise _bad(f"'{missing[0]}' is not an approved model.", "models", "model_not_approved")
            self.store.remove_approved(models)
            after = sorted(self.store.approval()[1])
            self._audit(
                actor, "models.remove", "approved_models", None, before={"models": before}, after={"models": after}
            )
        return after

    def set_approval(self, actor: Actor, enabled: bool) -> tuple[bool, list[str]]:
        """Switch approval on (only the approved models are served; none yet means none) or off (the whole
        catalog again, the approved list emptied). Audited as `models.approval`."""
        rbac.require_admin(actor, "switch model approval")
        with self.store.transaction():
            configured, ids = self.store.approval()
            before = {"enabled": configured, "models": sorted(ids)}
            if enabled:
                self.store.require_approval()
            else:
                self.store.disable_approval()
            configured, ids = self.store.approval()
            after = {"enabled": configured, "models": sorted(ids)}
            self._audit(actor, "models.approval", "approved_models", None, before=before, after=after)
        return configured, sorted(ids)

    def apply_preset(self, actor: Actor, preset: str, replace: bool) -> list[str]:
        rbac.require_admin(actor, "apply approval presets")
        if preset not in PRESETS:
            raise _bad(
                f"Unknown preset '{preset}'; presets are {', '.join(sorted(PRESETS))}.", "preset", "unknown_preset"
            )
        selected = preset_models(preset, self.metadata)
        with self.store.transaction():
            before = sorted(self.store.approval()[1])
            if replace:
                self.store.remove_approved([m for m in before if m not in selected])
            self.store.approve_models(selected, self.clock())
            after = sorted(self.store.approval()[1])
            self._audit(
                actor,
                "models.preset",
                "approved_models",
                preset,
                before={"models": before},
                after={"models": after},
                detail={"preset": preset, "mode": "replace" if replace else "add"},
            )
        return after

    # -- access lists -----------------------------------------------------------------------------

    def _rules(self, spec: AccessListSpec) -> Rules:
        approved = self._approved()
        self._known_models(spec.models, "models")
        if approved is not None:
            for i, m in enumerate(spec.models):
                if m not in approved:
                    raise _bad(
                        f"'{m}' is not an approved model; approve it first (an access list cannot grant past the "
                        "organisation's approved models).",
                        f"models[{i}]",
                        "model_not_approved",
                    )
        providers = set(self.catalog.values())
        for i, p in enumerate(spec.providers):
            if not is_provider(p) or p not in providers:
                raise _bad(f"'{p}' is not a configured provider.", f"providers[{i}]", "provider_not_found")
        for field, entries in (("patterns", spec.patterns), ("deny", spec.deny), ("mcp", spec.mcp)):
            for i, entry in enumerate(entries):
                mcp = field == "mcp" or (field == "deny" and mcp_access.is_mcp(entry))
                problem = mcp_access.entry_error(entry) if mcp else entry_error(entry)
                if problem is None and field == "patterns" and not is_pattern(entry):
                    problem = "has no '*'; put model ids in 'models' and providers in 'providers'"
                if problem:
                    raise _bad(f"'{field}[{i}]' {problem}.", f"{field}[{i}]", "invalid_rule")
        return Rules(
            list(dict.fromkeys(spec.models)),
            list(dict.fromkeys(spec.providers)),
            spec.patterns,
            spec.deny,
            list(dict.fromkeys(spec.mcp)),
        )

    def _applicable_lists(self, actor: Actor) -> list[str] | None:
        """The access lists that govern the actor's own key (its own and its groups', the owner's groups
        included): all a non-manager may see, so a key cannot map the organisation's policy. None: every list."""
        if actor.reads_all:
            return None
        ids = {g.access_list_id for g in self.store.list_groups(ids=sorted(actor.groups))}
        record = self.store.get_key(actor.id.removeprefix("key:")) if actor.id.startswith("key:") else None
        if record is not None:
            ids.add(record.access_list_id)
            ids.update(g.access_list_id for g in self.store.list_groups(ids=sorted(record.groups)))
        return sorted(i for i in ids if i is not None)

    def list_access_lists(self, actor: Actor, limit: int, offset: int) -> list[AccessListRecord]:
        rbac.require_user(actor)
        return self.store.list_access_lists(limit=limit, offset=offset, ids=self._applicable_lists(actor))

    def get_access_list(self, actor: Actor, ident: str) -> AccessListRecord:
        rbac.require_user(actor)
        found = self.store.get_access_list(ident)
        visible = self._applicable_lists(actor)
        if found is None or (visible is not None and found.id not in visible):
            raise rbac.not_found("access list", ident)
        return found

    def create_access_list(self, actor: Actor, spec: AccessListSpec) -> AccessListRecord:
        rbac.require_admin(actor, "create access lists")
        name = _name(spec.name)
        if self.store.get_access_list(name) is not None:
            raise Conflict(f"An access list named '{name}' already exists.", param="name", code="duplicate_name")
        now = self.clock()
        record = AccessListRecord("al_" + secrets.token_hex(6), name, spec.description, self._rules(spec), now, now)
        with self.store.transaction():
            self.store.insert_access_list(record)
            self._audit(actor, "access_list.create", "access_list", record.id, after=access_list_view(record))
        return record

    def update_access_list(self, actor: Actor, ident: str, spec: AccessListSpec) -> AccessListRecord:
        rbac.require_admin(actor, "change access lists")
        before = self.get_access_list(actor, ident)
        name = _name(spec.name)
        clash = self.store.get_access_list(name)
        if clash is not None and clash.id != before.id:
            raise Conflict(f"An access list named '{name}' already exists.", param="name", code="duplicate_name")
        with self.store.transaction():
            self.store.update_access_list(before.id, name, spec.description, self._rules(spec), self.clock())
            after = self.store.get_access_list(before.id)
            assert after is not None
            self._audit(
                actor,
                "access_list.update",
                "access_list",
                before.id,
                before=access_list_view(before),
                after=access_list_view(after),
            )
        return after

    def delete_access_list(self, actor: Actor, ident: str) -> AccessListRecord:
        rbac.require_admin(actor, "delete access lists")
        record = self.get_access_list(actor, ident)
        groups, keys = self.store.access_list_users(record.id)
        if groups or keys:
            raise Conflict(
                f"The access list is attached to {len(groups)} group(s) and {len(keys)} key(s); detach it first.",
                code="access_list_in_use",
            )
        with self.store.transaction():
            self.store.delete_access_list(record.id)
            self._audit(actor, "access_list.delete", "access_list", record.id, before=access_list_view(record))
        return record

    def attach(self, actor: Actor, ident: str, targets: Attachment, detach: bool = False) -> dict[str, int]:
        """Attach (or detach) one access list to many keys and groups at once, all or nothing."""
        rbac.require_admin(actor, "attach access lists")
        record = self.get_access_list(actor, ident)
        keys = []
        for i, key_id in enumerate(targets.key_ids):
            key = self.store.get_key(key_id)
            if key is None:
                raise _bad(f"No API key with id '{key_id}'.", f"key_ids[{i}]", "api_key_not_found")
            keys.append(key)
        groups = [self._group_ref(g, f"group_ids[{i}]") for i, g in enumerate(targets.group_ids)]
        value = None if detach else record.id
        action = "access_list.detach" if detach else "access_list.attach"
        now = self.clock()
        with self.store.transaction():
            for key in keys:
                if detach and key.access_list_id != record.id:
                    continue
                self.store.update_key(key.id, access_list_id=value)
                self._audit(
                    actor,
                    action,
                    "api_key",
                    key.id,
                    before={"access_list_id": key.access_list_id},
                    after={"access_list_id": value},
                    detail={"access_list_id": record.id, "at": now},
                )
            for group in groups:
                if detach and group.access_list_id != record.id:
                    continue
                self.store.update_group(group.id, access_list_id=value)
                self._audit(
                    actor,
                    action,
                    "group",
                    group.id,
                    before={"access_list_id": group.access_list_id},
                    after={"access_list_id": value},
                    detail={"access_list_id": record.id},
                )
        return {"keys": len(keys), "groups": len(groups)}

    # -- groups -----------------------------------------------------------------------------------

    def _visible_group(self, actor: Actor, ident: str) -> GroupRecord:
        rbac.require_user(actor)
        group = self.store.get_group(ident)
        if group is None or not (actor.reads_all or group.id in actor.groups):
            raise rbac.not_found("group", ident)
        return group

    def list_groups(self, actor: Actor, limit: int, offset: int) -> list[GroupRecord]:
        rbac.require_user(actor)
        if actor.reads_all:
            return self.store.list_groups(limit=limit, offset=offset)
        return self.store.list_groups(limit=limit, offset=offset, ids=sorted(actor.groups))

    def get_group(self, actor: Actor, ident: str) -> GroupRecord:
        return self._visible_group(actor, ident)

    def create_group(self, actor: Actor, spec: GroupSpec) -> GroupRecord:
        rbac.require_admin(actor, "create groups")
        name = _name(spec.name)
        if self.store.get_group(name) is not None:
            raise Conflict(f"A group named '{name}' already exists.", param="name", code="duplicate_name")
        list_id = self._access_list(spec.access_list, "access_list").id if spec.access_list else None
        record = GroupRecord(
            "grp_" + secrets.token_hex(6),
            name,
            spec.description,
            list_id,
            _amount(spec.monthly_budget, "monthly_budget"),
            self.clock(),
        )
        with self.store.transaction():
            self.store.insert_group(record)
            self._audit(actor, "group.create", "group", record.id, after=group_view(record))
        return record

    def update_group(self, actor: Actor, ident: str, spec: GroupUpdate) -> GroupRecord:
        before = self._visible_group(actor, ident)
        rbac.require_admin(actor, "change groups")
        fields: dict[str, Any] = {}
        if spec.description is not None:
            fields["description"] = spec.description
        if spec.access_list is not msgspec.UNSET:
            fields["access_list_id"] = (
                self._access_list(spec.access_list, "access_list").id if spec.access_list else None
            )
        if spec.monthly_budget is not msgspec.UNSET:
            fields["monthly_budget"] = _amount(spec.monthly_budget, "monthly_budget")
        if not fields:
            return before
        with self.store.transaction():
            self.store.update_group(before.id, **fields)
            after = self.store.get_group(before.id)
            assert after is not None
            self._audit(actor, "group.update", "group", before.id, before=group_view(before), after=group_view(after))
        return after

    def delete_group(self, actor: Actor, ident: str) -> GroupRecord:
        group = self._visible_group(actor, ident)
        rbac.require_admin(actor, "delete groups")
        with self.store.transaction():
            self.store.delete_group(group.id)
            self._audit(actor, "group.delete", "group", group.id, before=group_view(group))
        return group

    def _manage_members(self, actor: Actor, ident: str) -> GroupRecord:
        group = self._visible_group(actor, ident)
        if not (actor.is_admin or actor.groups.get(group.id) == "admin"):
            raise PermissionDenied(
                "Only an organisation admin or an admin of this group may manage its members.",
                code="insufficient_permissions",
            )
        return group

    def set_member(self, actor: Actor, ident: str, spec: MemberSpec, *, must_exist: bool) -> GroupRecord:
        group = self._manage_members(actor, ident)
        if spec.role not in MEMBER_ROLES:
            raise _bad("'role' must be 'member' or 'admin'.", "role")
        user = self.store.find_user(spec.user_id)
        if user is None:
            raise _bad(f"No user with id or email '{spec.user_id}'.", "user_id", "user_not_found")
        current = {m.user_id: m for m in group.members}
        if must_exist and user.id not in current:
            raise rbac.not_found("group member", spec.user_id)
        if not must_exist and user.id in current:
            raise Conflict(f"'{user.email}' is already a member of this group.", param="user_id", code="already_member")
        with self.store.transaction():
            self.store.upsert_member(group.id, user.id, spec.role, self.clock())
            old = current.get(user.id)
            self._audit(
                actor,
                "group.member_update" if must_exist else "group.member_add",
                "group",
                group.id,
                before=None if old is None else {"user_id": user.id, "role": old.role},
                after={"user_id": user.id, "role": spec.role},
            )
        after = self.store.get_group(group.id)
        assert after is not None
        return after

    def remove_member(self, actor: Actor, ident: str, user_ref: str) -> GroupRecord:
        group = self._manage_members(actor, ident)
        user = self.store.find_user(user_ref)
        current = {m.user_id: m for m in group.members}
        if user is None or user.id not in current:
            raise rbac.not_found("group member", user_ref)
        with self.store.transaction():
            self.store.remove_member(group.id, user.id)
            self._audit(
                actor,
                "group.member_remove",
                "group",
                group.id,
                before={"user_id": user.id, "role": current[user.id].role},
                after=None,
            )
        after = self.store.get_group(group.id)
        assert after is not None
        return after

    # -- users ------------------------------------------------------------------------------------

    def _visible_user(self, actor: Actor, ident: str) -> UserRecord:
        rbac.require_user(actor)
        if ident == "me" and actor.user_id:
            ident = actor.user_id
        user = self.store.find_user(ident)
        if user is None or not (actor.reads_all or user.id == actor.user_id):
            raise rbac.not_found("user", ident)
        return user

    def list_users(self, actor: Actor, limit: int, offset: int) -> list[UserRecord]:
        rbac.require_reader(actor, "list users")
        return self.store.list_users(limit=limit, offset=offset)

    def get_user(self, actor: Actor, ident: str) -> tuple[UserRecord, dict[str, str]]:
        user = self._visible_user(actor, ident)
        return user, self.store.memberships(user.id)

    def create_user(self, actor: Actor, spec: UserSpec) -> UserRecord:
        rbac.require_admin(actor, "create users")
        email = spec.email.strip().lower()
        if not _EMAIL.match(email):
            raise _bad(f"'{spec.email}' is not an email address.", "email")
        if spec.role not in USER_ROLES:
            raise _bad("'role' must be one of admin, standard, analyst.", "role")
        if spec.status not in ("active", "inactive"):
            raise _bad("'status' must be 'active' or 'inactive'.", "status")
        if self.store.find_user(email) is not None:
            raise Conflict(f"A user with email '{email}' already exists.", param="email", code="duplicate_email")
        user = UserRecord(
            "usr_" + secrets.token_hex(6),
            email,
            _name(spec.name or email.split("@")[0]),
            spec.role,
            _amount(spec.monthly_limit, "monthly_limit"),
            spec.status,
            self.clock(),
        )
        with self.store.transaction():
            self.store.insert_user(user)
            self._audit(actor, "user.create", "user", user.id, after=user_view(user))
        return user

    def update_user(self, actor: Actor, ident: str, spec: UserUpdate) -> UserRecord:
        before = self._visible_user(actor, ident)
        # Only admins change users, so nobody can raise their own role.
        rbac.require_admin(actor, "change users")
        fields: dict[str, Any] = {}
        if spec.name is not None:
            fields["name"] = _name(spec.name)
        if spec.role is not None:
            if spec.role not in USER_ROLES:
                raise _bad("'role' must be one of admin, standard, analyst.", "role")
            fields["role"] = spec.role
        if spec.monthly_limit is not None:
            fields["monthly_limit"] = _amount(spec.monthly_limit, "monthly_limit")
        if spec.status is not None:
            if spec.status not in ("active", "inactive"):
                raise _bad("'status' must be 'active' or 'inactive'.", "status")
            fields["status"] = spec.status
        if not fields:
            return before
        with self.store.transaction():
            self.store.update_user(before.id, **fields)
            after = self.store.get_user(before.id)
            assert after is not None
            self._audit(actor, "user.update", "user", before.id, before=user_view(before), after=user_view(after))
        return after

    def delete_user(self, actor: Actor, ident: str) -> UserRecord:
        user = self._visible_user(actor, ident)
        rbac.require_admin(actor, "delete users")
        active = self.store.keys_of_owner(user.id)
        if active:
            raise Conflict(
                f"The user owns {len(active)} active API key(s); revoke or delete them first.", code="user_has_keys"
            )
        with self.store.transaction():
            self.store.delete_user(user.id)
            self._audit(actor, "user.delete", "user", user.id, before=user_view(user))
        return user

    # -- service accounts -------------------------------------------------------------------------

    def list_service_accounts(self, actor: Actor, limit: int, offset: int) -> list[ServiceAccountRecord]:
        rbac.require_reader(actor, "list service accounts")
        return self.store.list_service_accounts(limit=limit, offset=offset)

    def get_service_account(self, actor: Actor, ident: str) -> tuple[ServiceAccountRecord, int]:
        rbac.require_user(actor)
        account = self.store.get_service_account(ident)
        if account is None or not actor.reads_all:
            raise rbac.not_found("service account", ident)
        return account, len(self.store.keys_of_owner(account.id))

    def create_service_account(self, actor: Actor, spec: ServiceAccountSpec) -> ServiceAccountRecord:
        rbac.require_admin(actor, "create service accounts")
        name = _name(spec.name)
        if self.store.get_service_account(name) is not None:
            raise Conflict(f"A service account named '{name}' already exists.", param="name", code="duplicate_name")
        account = ServiceAccountRecord("sa_" + secrets.token_hex(6), name, spec.description, self.clock())
        with self.store.transaction():
            self.store.insert_service_account(account)
            self._audit(
                actor, "service_account.create", "service_account", account.id, after=service_account_view(account)
            )
        return account

    def delete_service_account(self, actor: Actor, ident: str) -> ServiceAccountRecord:
        account, active = self.get_service_account(actor, ident)
        rbac.require_admin(actor, "delete service accounts")
        if active:
            raise Conflict(
                f"The service account has {active} active API key(s); revoke or delete them first.",
                code="service_account_has_keys",
            )
        with self.store.transaction():
            self.store.delete_service_account(account.id)
            self._audit(
                actor, "service_account.delete", "service_account", account.id, before=service_account_view(account)
            )
        return account

    # -- usage visibility -------------------------------------------------------------------------

    def usage_scope(self, actor: Actor) -> list[str] | None:
        """The key ids whose usage the actor may read: None for all (admins, analysts), else their own keys."""
        rbac.require_user(actor)
        if actor.reads_all:
            return None
        return [k.id for k in self.store.keys_of_owner(actor.user_id or "", active_only=False)]

    # -- organisation -----------------------------------------------------------------------------

    def set_org_limit(self, actor: Actor, monthly_limit: float | None) -> float | None:
        rbac.require_admin(actor, "set the organisation's monthly limit")
        limit = _amount(monthly_limit, "monthly_limit")
        with self.store.transaction():
            before = self.store.org_limit()
            self.store.set_org_limit(limit)
            self._audit(
                actor,
                "org.update_limit",
                "org",
                "org",
                before={"monthly_limit": before},
                after={"monthly_limit": limit},
            )
        return limit

    def set_org_auto_cache(self, actor: Actor, auto_cache: bool | None) -> bool | None:
        """The organisation's `requesty.auto_cache` default; None falls back to the config file's."""
        rbac.require_admin(actor, "change the organisation's caching default")
        with self.store.transaction():
            before = self.store.org_auto_cache()
            self.store.set_org_auto_cache(auto_cache)
            change = {"before": {"auto_cache": before}, "after": {"auto_cache": auto_cache}}
            self._audit(actor, "org.update_caching", "org", "org", **change)
        return auto_cache

    # -- audit ------------------------------------------------------------------------------------

    def audit_log(self, caller: Actor, **filters: Any) -> list[AuditEvent]:
        rbac.require_reader(caller, "read the audit log")
        return self.store.query_audit(**filters)
