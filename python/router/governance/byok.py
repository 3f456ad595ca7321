"""The organisation's own provider keys (BYOK) through the API: admin only, sealed before they are stored,
audited without key material, and never returned: views carry the provider and a short fingerprint.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

import msgspec

from ..errors import Conflict, InvalidRequest
from ..providers.byok import MASTER_KEY_ENV, MasterKey, fingerprint
from ..store import Store
from ..store.records import AuditEvent
from ..store.routing_tables import SealedKey
from . import rbac
from .keys import iso_time
from .rbac import Actor

_MAX_KEY = 4096


class ProviderKeySpec(msgspec.Struct, forbid_unknown_fields=True):
    api_key: str


def byok_view(key: SealedKey) -> dict[str, Any]:
    return {
        "provider": key.provider,
        "fingerprint": key.fingerprint,
        "created_at": iso_time(key.created_at),
        "created_by": key.created_by,
    }


class ByokAdmin:
    def __init__(
        self, store: Store, master: MasterKey | None, providers: Collection[str], clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.master = master
        self.providers = providers
        self.clock = clock

    def _provider(self, provider: str) -> str:
        if provider not in self.providers:
            known = ", ".join(sorted(self.providers))
            raise InvalidRequest(
                f"'{provider}' is not a configured provider (configured: {known}).",
                param="provider",
                code="provider_not_found",
            )
        return provider

    def _find(self, provider: str) -> SealedKey | None:
        return next((k for k in self.store.provider_keys() if k.provider == provider), None)

    def get(self, actor: Actor, provider: str) -> dict[str, Any]:
        rbac.require_admin(actor, "read provider keys")
        found = self._find(self._provider(provider))
        if found is None:
            raise rbac.not_found("provider key", provider)
        return byok_view(found)

    def put(self, actor: Actor, provider: str, spec: ProviderKeySpec) -> tuple[bool, dict[str, Any]]:
        """Store (or replace) the key; True when it is new."""
        rbac.require_admin(actor, "store provider keys")
        self._provider(provider)
        secret = spec.api_key.strip()
        if not secret or len(secret) > _MAX_KEY or not secret.isprintable() or not secret.isascii():
            raise InvalidRequest(
                f"'api_key' must be 1-{_MAX_KEY} printable ASCII characters.", param="api_key", code="invalid_value"
            )
        if self.master is None:
            raise Conflict(
                f"Provider keys are sealed with a master key; start the gateway with {MASTER_KEY_ENV} set.",
                code="master_key_missing",
            )
        before = self._find(provider)
        key = SealedKey(
            provider, self.master.seal(provider, secret), self.master.id, fingerprint(secret), self.clock(), actor.id
        )
        with self.store.transaction():
            self.store.put_provider_key(key)
            self._audit(
                actor,
                "byok.replace" if before else "byok.create",
                provider,
                before=None if before is None else byok_view(before),
                after=byok_view(key),
            )
        return before is None, byok_view(key)

    def delete(self, actor: Actor, provider: str) -> dict[str, Any]:
        rbac.require_admin(actor, "delete provider keys")
        before = self._find(self._provider(provider))
        if before is None:
            raise rbac.not_found("provider key", provider)
        with self.store.transaction():
            self.store.delete_provider_key(provider)
            self._audit(actor, "byok.delete", provider, before=byok_view(before))
        return {"provider": provider, "deleted": True}

    def rotate(self, actor: Actor, previous: MasterKey | None) -> dict[str, int]:
        """Re-seal every key under the current master key (the CLI's `router byok rotate`), all or nothing.

        Rows already sealed under the current key are left alone, so an interrupted rotation can be re-run."""
        rbac.require_admin(actor, "rotate the master key")
        if self.master is None:
            raise Conflict(f"Set {MASTER_KEY_ENV} to the new master key.", code="master_key_missing")
        rotated = current = 0
        with self.store.transaction():
            for key in self.store.provider_keys():
                if key.master == self.master.id:
                    current += 1
                    continue
                if previous is None or key.master != previous.id:
                    raise Conflict(
                        f"The key for '{key.provider}' is sealed under master key {key.master}, which is neither the "
                        "current nor the previous one.",
                        code="unknown_master_key",
                    )
                secret = previous.open(key.provider, key.sealed)
                sealed = self.master.seal(key.provider, secret)
                self.store.put_provider_key(msgspec.structs.replace(key, sealed=sealed, master=self.master.id))
                rotated += 1
            self._audit(
                actor,
                "byok.rotate",
                None,
                detail={"rotated": rotated, "already_current": current, "master": self.master.id},
            )
        return {"rotated": rotated, "already_current": current}

    def _audit(self, actor: Actor, action: str, provider: str | None, **fields: Any) -> None:
        self.store.append_audit([AuditEvent(self.clock(), actor.id, action, "provider_key", provider, **fields)])
