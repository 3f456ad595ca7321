"""Routing policies: a named list of targets addressed as the model `policy/<name>`.

`check_policies` rejects a policy set that cannot work (unknown models or policies, bad weights or
retries, a cycle, chat and embeddings models mixed) with an error naming the file and key path, whether
the set comes from the config file or, later, the management API. `PolicySet` is the checked set compiled
for the hot path: targets resolved to catalog models or other policies, rendezvous balancers built once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import msgspec

from .._core import Rendezvous
from ..config import ModelConfig, PolicyConfig, PolicyTarget, RoutingConfig
from ..errors import ConfigError

if TYPE_CHECKING:
    from .catalog import Catalog, Model

PREFIX = "policy/"
MAX_RETRIES = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def is_policy(model_id: str) -> bool:
    return model_id.startswith(PREFIX)


def reference(target: PolicyTarget) -> str:
    """What a target points at: a model id, or `policy/<name>`."""
    if target.policy is not None:
        return PREFIX + target.policy
    assert target.model is not None
    return target.model


def _field(target: PolicyTarget) -> str:
    return "policy" if target.policy is not None else "model"


def check_routing(routing: RoutingConfig, where: str) -> None:
    positive = ("backoff_initial", "backoff_max", "breaker_cooldown")
    for name in positive:
        if not getattr(routing, name) > 0:
            raise ConfigError(f"{where}.{name}: expected a positive number of seconds")
    if not routing.backoff_factor >= 1:
        raise ConfigError(f"{where}.backoff_factor: expected a number >= 1")
    if not 0 <= routing.jitter < 1:
        raise ConfigError(f"{where}.jitter: expected a fraction in [0, 1)")
    if not routing.max_retry_after >= 0:
        raise ConfigError(f"{where}.max_retry_after: expected a non-negative number of seconds")
    if routing.breaker_failures < 1:
        raise ConfigError(f"{where}.breaker_failures: expected at least 1")
    if not 0 <= routing.explore <= 1:
        raise ConfigError(f"{where}.explore: expected a fraction in [0, 1]")
    if not 0 < routing.refresh < math.inf:
        raise ConfigError(f"{where}.refresh: expected a positive number of seconds")


def check_policies(policies: Sequence[PolicyConfig], models: Sequence[ModelConfig], source: str) -> None:
    """Raise ConfigError at the first policy that cannot work; `source` names the file (or the API call)."""
    kinds = {m.id: "embeddings" in m.capabilities for m in models}
    index: dict[str, int] = {}
    for i, policy in enumerate(policies):
        at = f"{source}: at policies[{i}].name"
        if not _NAME.match(policy.name):
            raise ConfigError(
                f"{at}: policy name {policy.name!r} must be letters, digits, '.', '_' or '-' (at most 128)"
            )
        if policy.name in index:
            raise ConfigError(f"{at}: duplicate policy name {policy.name!r} (also policies[{index[policy.name]}])")
        index[policy.name] = i
    for i, policy in enumerate(policies):
        _check_targets(policy, f"{source}: at policies[{i}]", kinds, index)
    cycle = _find_cycle(policies, index)
    if cycle is not None:
        path = " → ".join(PREFIX + name for name in cycle)
        raise ConfigError(f"{source}: at policies[{index[cycle[0]]}]: policies form a cycle: {path}")
    leaves = _leaf_kinds(policies, index, kinds)
    for i, policy in enumerate(policies):
        if len(leaves[policy.name]) > 1:
            raise ConfigError(
                f"{source}: at policies[{i}].targets: policy {policy.name!r} mixes chat and embeddings models; "
                "a request can only be served by one kind"
            )


def _check_targets(policy: PolicyConfig, at: str, kinds: dict[str, bool], index: dict[str, int]) -> None:
    if not policy.targets:
        raise ConfigError(f"{at}.targets: a policy needs at least one target")
    seen: dict[str, int] = {}
    for j, target in enumerate(policy.targets):
        where = f"{at}.targets[{j}]"
        if (target.model is None) == (target.policy is None):
            raise ConfigError(f"{where}: give exactly one of 'model' or 'policy'")
        ref = reference(target)
        if is_policy(ref):
            name = ref.removeprefix(PREFIX)
            if name not in index:
                defined = ", ".join(sorted(index)) or "none"
                raise ConfigError(f"{where}.{_field(target)}: unknown policy {ref!r} (defined: {defined})")
            if target.retries:
                raise ConfigError(f"{where}.retries: retries apply to model targets; {ref!r} retries its own targets")
            if target.key_strategy != "router":
                raise ConfigError(
                    f"{where}.key_strategy: a key strategy applies to model targets; set it on {ref!r}'s targets"
                )
        elif ref not in kinds:
            known = ", ".join(sorted(kinds)) or "none"
            raise ConfigError(f"{where}.model: unknown model {ref!r} (configured models: {known})")
        if ref in seen:
            raise ConfigError(f"{where}: {ref!r} is listed twice (also targets[{seen[ref]}])")
        seen[ref] = j
        if not 0 <= target.retries <= MAX_RETRIES:
            raise ConfigError(f"{where}.retries: expected 0 to {MAX_RETRIES}, got {target.retries}")
        if not (math.isfinite(target.weight) and target.weight > 0):
            raise ConfigError(f"{where}.weight: expected a positive number, got {target.weight}")


def check_scopes(policies: Sequence[PolicyConfig], scopes: Mapping[str, str], source: str) -> None:
    """A key's policy (`scopes`: name → key id) is usable only by that key, so only that key's policies may
    point at it: an org-wide policy, or another key's, would hand its targets to everyone."""
    for i, policy in enumerate(policies):
        owner = scopes.get(policy.name)
        for j, name in enumerate(_children(policy)):
            scope = scopes.get(name)
            if scope is not None and scope != owner:
                field = _field(policy.targets[j]) if len(policy.targets) > j else "policy"
                whose = "an org-wide policy" if owner is None else "another key's policy"
                raise ConfigError(
                    f"{source}: at policies[{i}].targets[{j}].{field}: {PREFIX + name!r} belongs to one API key; "
                    f"{whose} cannot use it"
                )


def _children(policy: PolicyConfig) -> Iterator[str]:
    for target in policy.targets:
        ref = reference(target)
        if is_policy(ref):
            yield ref.removeprefix(PREFIX)


def _find_cycle(policies: Sequence[PolicyConfig], index: dict[str, int]) -> list[str] | None:
    """The first cycle found, as names from its first policy back to it; None when the graph is acyclic."""
    done: set[str] = set()
    for start in policies:
        if start.name in done:
            continue
        # Iterative DFS; `path` holds the policies on the current branch, in order.
        path: list[str] = [start.name]
        on_path = {start.name}
        stack = [_children(start)]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
                continue
            if child in on_path:
                return [*path[path.index(child) :], child]
            if child in done:
                continue
            path.append(child)
            on_path.add(child)
            stack.append(_children(policies[index[child]]))
    return None


def _leaf_kinds(
    policies: Sequence[PolicyConfig], index: dict[str, int], kinds: dict[str, bool]
) -> dict[str, set[bool]]:
    """For each policy, the kinds (embeddings or not) of the models it can end up on. The graph is acyclic."""
    memo: dict[str, set[bool]] = {}

    def visit(name: str) -> set[bool]:
        if name not in memo:
            found: set[bool] = set()
            for target in policies[index[name]].targets:
                ref = reference(target)
                found |= visit(ref.removeprefix(PREFIX)) if is_policy(ref) else {kinds[ref]}
            memo[name] = found
        return memo[name]

    for policy in policies:
        visit(policy.name)
    return memo


# -- the compiled set ---------------------------------------------------------------------------------


class Target:
    """A policy target resolved against the catalog: exactly one of `model` and `policy` is set."""

    __slots__ = ("key_strategy", "model", "name", "policy", "retries", "weight")

    def __init__(self, name: str, model: Model | None, retries: int, weight: float, key_strategy: str) -> None:
        self.name = name
        self.model = model
        self.policy: Policy | None = None
        self.retries = retries
        self.weight = weight
        self.key_strategy = key_strategy


class Policy:
    __slots__ = ("balancer", "endpoints", "id", "key_id", "kind", "name", "names", "targets")

    def __init__(self, config: PolicyConfig, targets: list[Target], key_id: str | None = None) -> None:
        self.name = config.name
        # Set for a policy scoped to one API key: only that key sees and uses it.
        self.key_id = key_id
        self.id = PREFIX + config.name
        self.kind = config.type
        self.targets = tuple(targets)
        self.names = [t.name for t in targets]
        # The endpoint kinds its targets serve (routing.catalog.endpoints_of), filled in once targets are linked.
        self.endpoints: frozenset[str] = frozenset({"chat"})
        self.balancer = Rendezvous(self.names, [t.weight for t in targets]) if self.kind == "load_balance" else None

    def leaves(self) -> Iterator[Model]:
        for target in self.targets:
            if target.model is not None:
                yield target.model
            else:
                assert target.policy is not None
                yield from target.policy.leaves()


class PolicyInfo(msgspec.Struct, omit_defaults=False):
    """A policy's entry in `GET /v1/models`."""

    id: str
    created: int
    owned_by: str
    policy_type: str
    targets: list[str]
    capabilities: list[str]
    object: str = "model"


class PolicySet:
    """Checked policies, compiled. Immutable: a change builds a new set, swapped in whole."""

    def __init__(
        self,
        configs: Sequence[PolicyConfig],
        catalog: Catalog,
        created: int,
        scopes: Mapping[str, str] | None = None,
    ) -> None:
        scopes = scopes or {}
        compiled: dict[str, Policy] = {}
        for config in configs:
            targets = []
            for t in config.targets:
                ref = reference(t)
                model = None if is_policy(ref) else catalog.models[ref]
                targets.append(Target(ref, model, t.retries, t.weight, t.key_strategy))
            compiled[config.name] = Policy(config, targets, scopes.get(config.name))
        for policy in compiled.values():
            for target in policy.targets:
                if target.model is None:
                    target.policy = compiled[target.name.removeprefix(PREFIX)]
        for policy in compiled.values():
            policy.endpoints = frozenset().union(*(m.endpoints for m in policy.leaves()))
        self.configs = tuple(configs)
        self.by_id = {p.id: p for p in compiled.values()}
        self.infos = [
            PolicyInfo(
                id=p.id,
                created=created,
                owned_by="router",
                policy_type=p.kind,
                targets=p.names,
                capabilities=sorted({c for m in p.leaves() for c in m.config.capabilities}),
            )
            for p in compiled.values()
        ]

        self.scoped = frozenset(scopes.values())

    def get(self, policy_id: str, key_id: str | None = None) -> Policy | None:
        """The policy `key_id` may use: org-wide ones, and that key's own."""
        policy = self.by_id.get(policy_id)
        if policy is None or (policy.key_id is not None and policy.key_id != key_id):
            return None
        return policy

    def defined(self, key_id: str | None) -> str:
        """The policy ids `key_id` may use, for an error message (never another key's)."""
        names = sorted(p.id for p in self.by_id.values() if p.key_id is None or p.key_id == key_id)
        return ", ".join(names) or "none"
