"""A worker's guardrail policies: the organisation's settings (the config file's, unless the management API
stored others) and each caller's, tightened by its key's and groups' overrides.

The API writes in a transaction that bumps the store's change epoch; `KeyCache.authenticate` notices it at the
start of the next request in every worker and calls `refresh`, which re-reads the (small) table. Compiled
policies are cached by their merged settings, and engines by their custom patterns (compiling one takes far
longer than a request), so a change recompiles only what it changed, and a request pays a dict lookup.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from .._core import Guardrails
from ..store import KeyRecord, Store
from ..store.guardrail_tables import ORG_SCOPE
from .overrides import GuardrailOverride, merge
from .policy import Policy
from .settings import GuardrailSettings, problems

if TYPE_CHECKING:
    from ..governance.keys import Principal

log = logging.getLogger("router.guardrails")

_decode_settings = msgspec.json.Decoder(GuardrailSettings).decode
_decode_override = msgspec.json.Decoder(GuardrailOverride).decode
_encode = msgspec.json.encode
# Distinct merged settings kept compiled; past this the cache starts over (each entry is small, engines shared).
_MAX_COMPILED = 256


def key_scope(key_id: str) -> str:
    return f"key:{key_id}"


def group_scope(group_id: str) -> str:
    return f"group:{group_id}"


def scopes_of(store: Store, record: KeyRecord) -> list[str]:
    """The override scopes that apply to a key: its groups (its own and its owner's), then the key itself."""
    groups = set(record.groups)
    if record.owner_type == "user" and record.owner_id:
        groups.update(store.memberships(record.owner_id))
    return [group_scope(g) for g in sorted(groups)] + [key_scope(record.id)]


def principal_scopes(store: Store, principal: Principal) -> list[str]:
    """`scopes_of` for an authenticated key: its groups were read with it (no store access on the request path)."""
    record = principal.record
    assert record is not None
    if principal.groups is None:
        return scopes_of(store, record)
    return [group_scope(g) for g in principal.groups] + [key_scope(record.id)]


class GuardrailPolicies:
    def __init__(self, store: Store, file_settings: GuardrailSettings) -> None:
        self._store = store
        self.file = file_settings
        self._engines: dict[tuple[tuple[str, str], ...], Guardrails] = {}
        self._compiled: dict[bytes, Policy] = {}
        self.org = self._policy(file_settings)
        self._overrides: dict[str, GuardrailOverride] = {}
        self._by_key: dict[str, Policy] = {}
        self._rows: list | None = None

    def refresh(self) -> None:
        self.load()()

    def load(self) -> Callable[[], None]:
        """Read the stored settings (any thread); the returned function swaps them in (the event loop's thread,
        so no request's per-key resolution lands between the clear and the swap)."""
        rows = self._store.guardrail_rows()
        if rows == self._rows:
            # Group memberships may have changed with the epoch, whether or not a guardrail row did.
            return self._by_key.clear
        org = self.file
        overrides: dict[str, GuardrailOverride] = {}
        for row in rows:
            try:
                if row.scope == ORG_SCOPE:
                    stored = _decode_settings(row.settings)
                    if problems(stored):
                        raise ValueError(problems(stored)[0][1])
                    org = stored
                else:
                    overrides[row.scope] = _decode_override(row.settings)
            except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
                # Written rows were checked on save; only an engine upgrade could break one. Say which.
                log.error("stored guardrail settings for %s are not in use until fixed: %s", row.scope, exc)

        def apply() -> None:
            self._by_key.clear()
            if org != self.org.settings:
                self.org = self._policy(org)
            self._overrides = overrides
            self._rows = rows

        return apply

    def for_principal(self, principal: Principal) -> Policy:
        """The caller's policy: the organisation's, tightened by its key's and its groups' overrides."""
        record = principal.record
        if not self._overrides or record is None:
            return self.org
        found = self._by_key.get(record.id)
        if found is None:
            applying = [self._overrides[s] for s in principal_scopes(self._store, principal) if s in self._overrides]
            found = self._policy(merge(self.org.settings, applying)) if applying else self.org
            self._by_key[record.id] = found
        return found

    def compiled(self, settings: GuardrailSettings) -> Policy:
        """`settings` compiled, from the cache when they were before."""
        return self._policy(settings)

    def _policy(self, settings: GuardrailSettings) -> Policy:
        signature = _encode(settings)
        found = self._compiled.get(signature)
        if found is None:
            if len(self._compiled) >= _MAX_COMPILED:
                self._compiled.clear()
                self._engines.clear()
            patterns = tuple((p.name, p.pattern) for p in settings.custom)
            engine = self._engines.get(patterns)
            if engine is None:
                engine = self._engines[patterns] = Guardrails(list(patterns))
            found = self._compiled[signature] = Policy(settings, engine)
        return found
