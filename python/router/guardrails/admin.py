"""Guardrail settings through the management API: checked, scoped and audited like every governance change.

The organisation's settings: admins write, admins and analysts read. A stored PUT replaces the config file's
settings until it is deleted (then the file's apply again). Overrides of a key or a group: admins write; the
key's owner and the group's members may read theirs. Every write is checked before it is stored (a bad
category or regex, or an override weaker than the organisation, is a 400 naming the field), so every worker
can compile what is stored; each write is audited with its before and after.

`test` answers what a text would get in a request (allow, mask or block), under the organisation's settings
or a key's or group's effective ones: types, categories and offsets of what was found, and the text masked.
The matched values are never logged, counted or audited: the caller already has the text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgspec

from ..errors import InvalidRequest, PayloadTooLarge
from ..governance import rbac
from ..governance.rbac import Actor
from ..store import KeyRecord, Store
from ..store.guardrail_tables import ORG_SCOPE, StoredGuardrails
from ..store.records import AuditEvent
from .overrides import GuardrailOverride, merge, weakening
from .policy import Policy
from .settings import GuardrailSettings, problems
from .stored import group_scope, key_scope, scopes_of

_decode_settings = msgspec.json.Decoder(GuardrailSettings).decode
_decode_override = msgspec.json.Decoder(GuardrailOverride).decode

# The largest text `test` scans (UTF-8 bytes): a prompt-sized sample, not a document store.
MAX_TEST_BYTES = 64 * 1024


class GuardrailTest(msgspec.Struct, forbid_unknown_fields=True):
    """A text to check, under the organisation's settings or one key's or group's effective settings."""

    text: str
    key_id: str | None = None
    group_id: str | None = None


def view(settings: GuardrailSettings | GuardrailOverride) -> dict[str, Any]:
    return msgspec.to_builtins(settings)


def _refuse(found: list[tuple[str, str]]) -> None:
    if found:
        path = found[0][0]
        raise InvalidRequest("; ".join(f"{p}: {m}" for p, m in found), param=path, code="invalid_guardrails")


class GuardrailAdmin:
    def __init__(
        self,
        store: Store,
        file_settings: GuardrailSettings,
        clock: Callable[[], float] = time.time,
        compiler: Callable[[GuardrailSettings], Policy] | None = None,
    ) -> None:
        self.store = store
        self.file = file_settings
        self.clock = clock
        # The worker's compiled-policy cache (`GuardrailPolicies.compiled`), so a test compiles no engine that
        # requests already did.
        self.compile = compiler or Policy

    # -- the organisation ------------------------------------------------------------------------

    def org(self) -> GuardrailSettings:
        row = self.store.get_guardrails(ORG_SCOPE)
        return self.file if row is None else _decode_settings(row.settings)

    def get(self, actor: Actor) -> dict[str, Any]:
        rbac.require_reader(actor, "read the guardrail settings")
        return view(self.org())

    def put(self, actor: Actor, settings: GuardrailSettings) -> dict[str, Any]:
        rbac.require_admin(actor, "change the guardrail settings")
        _refuse(problems(settings))
        before = self.org()
        with self.store.transaction():
            self._store(ORG_SCOPE, settings, actor)
            self._audit(actor, "guardrails.updated", "guardrails", ORG_SCOPE, before=view(before), after=view(settings))
        return view(settings)

    def reset(self, actor: Actor) -> dict[str, Any]:
        """Back to the config file's settings."""
        rbac.require_admin(actor, "change the guardrail settings")
        before = self.org()
        with self.store.transaction():
            self.store.delete_guardrails(ORG_SCOPE)
            self._audit(
                actor, "guardrails.updated", "guardrails", ORG_SCOPE, before=view(before), after=view(self.file),
                detail={"source": "config"},
            )  # fmt: skip
        return view(self.file)

    # -- overrides -------------------------------------------------------------------------------

    def _key(self, actor: Actor, key_id: str) -> KeyRecord:
        rbac.require_user(actor)
        record = self.store.get_key(key_id)
        if record is None or not (actor.reads_all or (actor.user_id and record.owner_id == actor.user_id)):
            raise rbac.not_found("API key", key_id)
        return record

    def _group(self, actor: Actor, ident: str) -> str:
        rbac.require_user(actor)
        group = self.store.get_group(ident)
        if group is None or not (actor.reads_all or group.id in actor.groups):
            raise rbac.not_found("group", ident)
        return group.id

    def _override(self, scope: str) -> GuardrailOverride | None:
        row = self.store.get_guardrails(scope)
        return None if row is None else _decode_override(row.settings)

    def _effective(self, scopes: list[str]) -> GuardrailSettings:
        org = self.org()
        applying = [o for s in scopes if (o := self._override(s)) is not None]
        return merge(org, applying) if applying else org

    def effective_of(self, record: KeyRecord) -> GuardrailSettings:
        """What the key's requests get: the organisation's settings, its groups' and its own overrides."""
        return self._effective(scopes_of(self.store, record))

    def get_key(self, actor: Actor, key_id: str) -> dict[str, Any]:
        record = self._key(actor, key_id)
        override = self._override(key_scope(record.id))
        return {
            "key_id": record.id,
            "override": None if override is None else view(override),
            "effective": view(self.effective_of(record)),
        }

    def get_group(self, actor: Actor, ident: str) -> dict[str, Any]:
        group_id = self._group(actor, ident)
        override = self._override(group_scope(group_id))
        return {
            "group_id": group_id,
            "override": None if override is None else view(override),
            "effective": view(self._effective([group_scope(group_id)])),
        }

    def put_key(self, actor: Actor, key_id: str, override: GuardrailOverride) -> dict[str, Any]:
        record = self._key(actor, key_id)
        rbac.require_admin(actor, "change guardrail overrides")
        self._put(actor, key_scope(record.id), "api_key", record.id, override)
        return self.get_key(actor, record.id)

    def put_group(self, actor: Actor, ident: str, override: GuardrailOverride) -> dict[str, Any]:
        group_id = self._group(actor, ident)
        rbac.require_admin(actor, "change guardrail overrides")
        self._put(actor, group_scope(group_id), "group", group_id, override)
        return self.get_group(actor, group_id)

    def delete_key(self, actor: Actor, key_id: str) -> dict[str, Any]:
        record = self._key(actor, key_id)
        rbac.require_admin(actor, "change guardrail overrides")
        self._delete(actor, key_scope(record.id), "api_key", record.id)
        return self.get_key(actor, record.id)

    def delete_group(self, actor: Actor, ident: str) -> dict[str, Any]:
        group_id = self._group(actor, ident)
        rbac.require_admin(actor, "change guardrail overrides")
        self._delete(actor, group_scope(group_id), "group", group_id)
        return self.get_group(actor, group_id)

    def _put(self, actor: Actor, scope: str, kind: str, ident: str, override: GuardrailOverride) -> None:
        _refuse(weakening(self.org(), override))
        before = self._override(scope)
        with self.store.transaction():
            self._store(scope, override, actor)
            self._audit(
                actor, "guardrails.override.updated", kind, ident,
                before=None if before is None else view(before), after=view(override),
            )  # fmt: skip

    def _delete(self, actor: Actor, scope: str, kind: str, ident: str) -> None:
        before = self._override(scope)
        if before is None:
            raise rbac.not_found("guardrail override", ident)
        with self.store.transaction():
            self.store.delete_guardrails(scope)
            self._audit(actor, "guardrails.override.deleted", kind, ident, before=view(before))

    # -- testing a text --------------------------------------------------------------------------

    def test(self, actor: Actor, body: GuardrailTest) -> dict[str, Any]:
        """What a request carrying `body.text` would get: allow, mask or block, with what was found where."""
        # Whoever may read the settings may test them: admins and analysts the organisation's and any key's
        # or group's; a standard user their own keys' and their groups'.
        if body.key_id is not None and body.group_id is not None:
            raise InvalidRequest("Give 'key_id' or 'group_id', not both.", param="group_id", code="invalid_value")
        if body.key_id is not None:
            settings = self.effective_of(self._key(actor, body.key_id))
        elif body.group_id is not None:
            settings = self._effective([group_scope(self._group(actor, body.group_id))])
        else:
            rbac.require_reader(actor, "test texts against the organisation's guardrail settings")
            settings = self.org()
        size = len(body.text.encode())
        if size > MAX_TEST_BYTES:
            raise PayloadTooLarge(
                f"'text' is {size} bytes; at most {MAX_TEST_BYTES} bytes may be tested at once.",
                param="text", code="text_too_large",
            )  # fmt: skip
        policy = self.compile(settings)
        found = policy.engine.scan(body.text, policy.categories) if policy.requests else []
        findings = [
            {
                "type": f.type,
                "category": f.category,
                "start": f.start,
                "end": f.end,
                "action": policy.action(f.category, f.type),
            }
            for f in found
        ]
        actions = {f["action"] for f in findings}
        return {
            "object": "guardrails.test",
            "action": "block" if "block" in actions else "mask" if findings else "allow",
            "masked_text": policy.masker().mask(body.text) if findings else body.text,
            "findings": findings,
            "scanned": policy.requests,
        }

    # -- helpers ---------------------------------------------------------------------------------

    def _store(self, scope: str, value: GuardrailSettings | GuardrailOverride, actor: Actor) -> None:
        self.store.put_guardrails(StoredGuardrails(scope, msgspec.json.encode(value).decode(), self.clock(), actor.id))

    def _audit(self, actor: Actor, action: str, target_type: str, ident: str, **fields: Any) -> None:
        self.store.append_audit([AuditEvent(self.clock(), actor.id, action, target_type, ident, **fields)])
