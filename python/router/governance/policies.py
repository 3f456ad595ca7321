"""Routing policies managed through the API: checked, scoped and audited like every governance change.

Admins write, analysts read everything, standard users read the org-wide policies and those of their own
keys. A policy is checked together with the config file's policies and every other stored one (the same
`check_policies` the config loader runs: unknown models, bad weights, cycles named), so a policy that is
accepted is one every worker can compile. The config file's policies are listed but read-only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import msgspec

from ..config import Config, PolicyConfig, PolicyTarget
from ..errors import ConfigError, Conflict, InvalidRequest
from ..routing.policies import PREFIX, check_policies, check_scopes, reference
from ..store import Store
from ..store.records import AuditEvent
from ..store.routing_tables import StoredPolicy
from . import rbac
from .keys import iso_time
from .rbac import Actor

PolicyType = Literal["fallback", "load_balance", "latency"]
_SOURCE = "policy"
_LOCATION = re.compile(r"^.*?: at policies\[(\d+)\]([^:]*): (.*)$", re.DOTALL)


class PolicySpec(msgspec.Struct, forbid_unknown_fields=True):
    """`POST /v1/manage/policy`, and `PUT /v1/manage/policy/{name}` (where `name` may be left out)."""

    type: PolicyType
    targets: list[PolicyTarget]
    name: str | None = None
    key_id: str | None = None


def _target_view(target: PolicyTarget) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(target).items() if v is not None}


def policy_view(policy: StoredPolicy | PolicyConfig, source: str) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": PREFIX + policy.name,
        "name": policy.name,
        "type": policy.type,
        "targets": [_target_view(t) for t in policy.targets],
        "key_id": getattr(policy, "key_id", None),
        "source": source,
    }
    if isinstance(policy, StoredPolicy):
        view["created_at"] = iso_time(policy.created_at)
        view["updated_at"] = iso_time(policy.updated_at)
        view["created_by"] = policy.created_by
    return view


def _stored_view(policy: StoredPolicy) -> dict[str, Any]:
    return policy_view(policy, "api")


class PolicyAdmin:
    def __init__(self, store: Store, config: Config, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self._models = list(config.models)
        self._file = {p.name: p for p in config.policies}
        self.clock = clock

    # -- reads -------------------------------------------------------------------------------------

    def _visible_keys(self, actor: Actor) -> set[str] | None:
        """The key ids whose policies the actor may read; None: all of them."""
        rbac.require_user(actor)
        if actor.reads_all:
            return None
        return {k.id for k in self.store.keys_of_owner(actor.user_id or "", active_only=False)}

    def list(self, actor: Actor) -> list[dict[str, Any]]:
        keys = self._visible_keys(actor)
        views = [policy_view(p, "config") for p in self._file.values()]
        views += [_stored_view(p) for p in self.store.list_policies() if keys is None or p.key_id in (None, *keys)]
        return views

    def get(self, actor: Actor, name: str) -> dict[str, Any]:
        keys = self._visible_keys(actor)
        if name in self._file:
            return policy_view(self._file[name], "config")
        stored = self.store.get_policy(name)
        if stored is None or not (keys is None or stored.key_id is None or stored.key_id in keys):
            raise rbac.not_found("policy", name)
        return _stored_view(stored)

    # -- writes ------------------------------------------------------------------------------------

    def create(self, actor: Actor, spec: PolicySpec) -> dict[str, Any]:
        rbac.require_admin(actor, "create routing policies")
        if not spec.name:
            raise InvalidRequest("'name' is required.", param="name", code="invalid_value")
        name = spec.name
        if name in self._file or self.store.get_policy(name) is not None:
            where = "in the config file" if name in self._file else "already"
            raise Conflict(f"A policy named '{name}' exists {where}.", param="name", code="duplicate_name")
        now = self.clock()
        policy = StoredPolicy(name, self._key(spec.key_id), spec.type, spec.targets, now, now, actor.id)
        self._check(policy, self.store.list_policies())
        with self.store.transaction():
            self.store.put_policy(policy)
            self._audit(actor, "policy.create", name, after=_stored_view(policy))
        return _stored_view(policy)

    def replace(self, actor: Actor, name: str, spec: PolicySpec) -> dict[str, Any]:
        rbac.require_admin(actor, "change routing policies")
        if spec.name is not None and spec.name != name:
            raise InvalidRequest(
                f"'name' ({spec.name!r}) differs from the policy in the path ({name!r}); policies are not renamed.",
                param="name",
                code="invalid_value",
            )
        before = self._stored(name)
        policy = StoredPolicy(
            name, self._key(spec.key_id), spec.type, spec.targets, before.created_at, self.clock(), before.created_by
        )
        self._check(policy, [p for p in self.store.list_policies() if p.name != name])
        with self.store.transaction():
            self.store.put_policy(policy)
            self._audit(actor, "policy.update", name, before=_stored_view(before), after=_stored_view(policy))
        return _stored_view(policy)

    def delete(self, actor: Actor, name: str) -> dict[str, Any]:
        rbac.require_admin(actor, "delete routing policies")
        before = self._stored(name)
        users = [p.name for p in self.store.list_policies() if PREFIX + name in map(reference, p.targets)]
        if users:
            raise Conflict(
                f"Policy '{name}' is a target of {', '.join(repr(u) for u in users)}; change those first.",
                code="policy_in_use",
            )
        with self.store.transaction():
            self.store.delete_policy(name)
            self._audit(actor, "policy.delete", name, before=_stored_view(before))
        return {"id": PREFIX + name, "name": name, "deleted": True}

    # -- helpers -----------------------------------------------------------------------------------

    def _stored(self, name: str) -> StoredPolicy:
        if name in self._file:
            raise Conflict(
                f"Policy '{name}' comes from the config file and is read-only here; edit the file instead.",
                code="policy_read_only",
            )
        found = self.store.get_policy(name)
        if found is None:
            raise rbac.not_found("policy", name)
        return found

    def _key(self, key_id: str | None) -> str | None:
        if key_id is not None and self.store.get_key(key_id) is None:
            raise InvalidRequest(f"No API key with id '{key_id}'.", param="key_id", code="api_key_not_found")
        return key_id

    def _check(self, policy: StoredPolicy, others: Sequence[StoredPolicy]) -> None:
        """Check the whole set the workers will compile, the new policy first so that its errors point at it."""
        configs = [policy.config(), *self._file.values(), *(p.config() for p in others)]
        scopes = {p.name: p.key_id for p in (policy, *others) if p.key_id is not None}
        try:
            check_policies(configs, self._models, _SOURCE)
            check_scopes(configs, scopes, _SOURCE)
        except ConfigError as exc:
            raise _rejected(str(exc), policy.name, configs) from None

    def _audit(self, actor: Actor, action: str, name: str, **fields: Any) -> None:
        self.store.append_audit([AuditEvent(self.clock(), actor.id, action, "policy", name, **fields)])


def _rejected(message: str, name: str, configs: Sequence[PolicyConfig]) -> InvalidRequest | Conflict:
    """A 400 naming the field of the request at fault, or a 409 when the fault is in another policy."""
    found = _LOCATION.match(message)
    if found is None:
        return InvalidRequest(f"Policy '{name}': {message}", code="invalid_policy")
    index, path, problem = int(found.group(1)), found.group(2).lstrip("."), found.group(3)
    if index != 0:
        other = configs[index].name
        return Conflict(f"Policy '{name}' cannot be saved: policy '{other}' ({path}) {problem}", code="policy_conflict")
    # A cycle is reported at the policy itself; its targets made it.
    path = path or "targets"
    return InvalidRequest(f"Policy '{name}': {path}: {problem}", param=path, code="invalid_policy")
