"""The prompt library through the management API and the CLI: named system and vibe prompts, versioned,
diffed, rolled back, duplicated, and attached to keys and groups.

Every edit makes a new immutable version; a rollback is a new version equal to an old one, so history only
grows and a usage row's "name@3" always means the same text. Admins write; admins and analysts read
everything; a standard user reads the prompts attached to their own keys and groups (as with access lists).
Every write is audited and bumps the change epoch, so every worker applies it from its next request.
"""

from __future__ import annotations

import difflib
import re
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec

from ..errors import Conflict, InvalidRequest
from ..governance import rbac
from ..governance.rbac import Actor
from ..guardrails.stored import group_scope, key_scope
from ..store import Store
from ..store.prompt_tables import PromptAttachment, PromptRecord, PromptVersion
from ..store.records import AuditEvent

# A prompt rides on every request of the keys it is attached to: large enough for agent system prompts
# (Claude Code's is ~15 KB), small enough that it cannot inflate every request without bound.
MAX_CONTENT_BYTES = 128 * 1024
_MAX_TAGS = 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TAG = re.compile(r"^[^\s,]{1,64}$")

Kind = Literal["system", "vibe"]
Mode = Literal["prepend", "append", "replace"]


class PromptSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    content: str
    kind: Kind = "system"
    description: str | None = None
    tags: list[str] = []


class PromptEdit(msgspec.Struct, forbid_unknown_fields=True):
    """A new version's text (the prompt's previous versions stay as they were)."""

    content: str
    note: str | None = None


class PromptUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Name, description and tags: not versioned (they change no request)."""

    name: str | None = None
    description: str | None = None
    tags: list[str] | None = None


class Rollback(msgspec.Struct, forbid_unknown_fields=True):
    version: int


class Duplicate(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class Attach(msgspec.Struct, forbid_unknown_fields=True):
    """`prompt` is a name (the latest version, followed as it changes) or `name@3` (pinned)."""

    prompt: str
    mode: Mode = "prepend"


def prompt_view(record: PromptRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "prompt",
        "name": record.name,
        "kind": record.kind,
        "description": record.description,
        "tags": record.tags,
        "latest_version": record.latest,
        "created_at": record.created_at,
        "created_by": record.created_by,
        "updated_at": record.updated_at,
    }


def version_view(record: PromptRecord, version: PromptVersion, content: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {
        "prompt": record.name,
        "version": version.version,
        "created_at": version.created_at,
        "created_by": version.created_by,
        "note": version.note,
        "bytes": len(version.content.encode()),
    }
    if content:
        view["content"] = version.content
    return view


def attachment_view(a: PromptAttachment, name: str) -> dict[str, Any]:
    return {
        "kind": a.kind,
        "prompt": name,
        "version": a.version if a.version is not None else "latest",
        "mode": a.mode,
        "updated_at": a.updated_at,
        "updated_by": a.updated_by,
    }


def _check_content(content: str, param: str) -> None:
    if not content.strip():
        raise InvalidRequest("A prompt's content cannot be empty.", param=param, code="invalid_value")
    if len(content.encode()) > MAX_CONTENT_BYTES:
        raise InvalidRequest(
            f"A prompt's content is limited to {MAX_CONTENT_BYTES // 1024} KiB.", param=param, code="invalid_value"
        )


def _check_name(name: str, param: str = "name") -> None:
    if not _NAME.match(name):
        raise InvalidRequest(
            "A prompt name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            param=param,
            code="invalid_value",
        )


def _check_tags(tags: list[str]) -> None:
    if len(tags) > _MAX_TAGS:
        raise InvalidRequest(f"At most {_MAX_TAGS} tags.", param="tags", code="invalid_value")
    for i, tag in enumerate(tags):
        if not _TAG.match(tag):
            raise InvalidRequest(
                "A tag is 1-64 characters without spaces or commas.", param=f"tags[{i}]", code="invalid_value"
            )


class PromptAdmin:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock

    # -- reading -------------------------------------------------------------------------------------

    def _visible_ids(self, actor: Actor) -> set[str] | None:
        """None: every prompt. Otherwise the ids attached to the actor's own keys and groups."""
        if actor.reads_all:
            return None
        scopes = {group_scope(g) for g in actor.groups}
        if actor.user_id:
            scopes.update(key_scope(k.id) for k in self.store.list_keys(owner_id=actor.user_id))
        return {a.prompt_id for a in self.store.prompt_attachments() if a.scope in scopes}

    def _prompt(self, actor: Actor, ident: str) -> PromptRecord:
        rbac.require_user(actor)
        record = self.store.get_prompt(ident)
        visible = self._visible_ids(actor)
        if record is None or (visible is not None and record.id not in visible):
            raise rbac.not_found("prompt", ident)
        return record

    def list(self, actor: Actor, limit: int, offset: int, tag: str | None = None) -> list[PromptRecord]:
        rbac.require_user(actor)
        visible = self._visible_ids(actor)
        return self.store.list_prompts(limit, offset, None if visible is None else sorted(visible), tag)

    def get(self, actor: Actor, ident: str) -> dict[str, Any]:
        record = self._prompt(actor, ident)
        latest = self.store.prompt_version(record.id, record.latest)
        assert latest is not None
        return {**prompt_view(record), "content": latest.content}

    def versions(self, actor: Actor, ident: str) -> list[dict[str, Any]]:
        record = self._prompt(actor, ident)
        return [version_view(record, v, content=False) for v in self.store.prompt_versions(record.id)]

    def _version(self, record: PromptRecord, number: int, param: str = "version") -> PromptVersion:
        found = self.store.prompt_version(record.id, number)
        if found is None:
            raise InvalidRequest(
                f"Prompt '{record.name}' has versions 1-{record.latest}, not {number}.",
                param=param,
                code="invalid_value",
            )
        return found

    def version(self, actor: Actor, ident: str, number: int) -> dict[str, Any]:
        record = self._prompt(actor, ident)
        return version_view(record, self._version(record, number))

    def diff(self, actor: Actor, ident: str, older: int, newer: int) -> dict[str, Any]:
        """A unified diff between two versions (line based, as `diff -u` prints it)."""
        record = self._prompt(actor, ident)
        a, b = self._version(record, older, "from"), self._version(record, newer, "to")
        lines = difflib.unified_diff(
            a.content.splitlines(keepends=True),
            b.content.splitlines(keepends=True),
            fromfile=f"{record.name}@{older}",
            tofile=f"{record.name}@{newer}",
        )
        text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)
        return {"prompt": record.name, "from": older, "to": newer, "diff": text}

    # -- writing -------------------------------------------------------------------------------------

    def create(self, actor: Actor, spec: PromptSpec, source: str | None = None) -> dict[str, Any]:
        rbac.require_admin(actor, "change the prompt library")
        _check_name(spec.name)
        _check_content(spec.content, "content")
        _check_tags(spec.tags)
        if self.store.get_prompt(spec.name) is not None:
            raise Conflict(f"A prompt named '{spec.name}' already exists.", param="name", code="prompt_exists")
        now = self.clock()
        record = PromptRecord(
            "pr_" + secrets.token_hex(6), spec.name, spec.kind, spec.description, spec.tags, 1, now, actor.id, now
        )
        note = f"duplicated from {source}" if source else None
        first = PromptVersion(record.id, 1, spec.content, now, actor.id, note)
        with self.store.transaction():
            self.store.insert_prompt(record, first)
            self._audit(
                actor, "prompt.duplicate" if source else "prompt.create", record.id,
                after=prompt_view(record), detail={"version": 1, **({"source": source} if source else {})},
            )  # fmt: skip
        return {**prompt_view(record), "content": spec.content}

    def edit(self, actor: Actor, ident: str, edit: PromptEdit, rollback_of: int | None = None) -> dict[str, Any]:
        rbac.require_admin(actor, "change the prompt library")
        record = self._prompt(actor, ident)
        _check_content(edit.content, "content")
        version = PromptVersion(record.id, record.latest + 1, edit.content, self.clock(), actor.id, edit.note)
        with self.store.transaction():
            self.store.add_prompt_version(version)
            detail: dict[str, Any] = {"version": version.version, "previous": record.latest}
            if rollback_of is not None:
                detail["rollback_to"] = rollback_of
            self._audit(actor, "prompt.rollback" if rollback_of else "prompt.version", record.id, detail=detail)
        return version_view(record, version)

    def rollback(self, actor: Actor, ident: str, number: int) -> dict[str, Any]:
        """A new version whose text is version `number`'s: history is never rewritten."""
        rbac.require_admin(actor, "change the prompt library")
        record = self._prompt(actor, ident)
        old = self._version(record, number)
        return self.edit(actor, record.id, PromptEdit(old.content, f"rollback to version {number}"), number)

    def duplicate(self, actor: Actor, ident: str, name: str) -> dict[str, Any]:
        rbac.require_admin(actor, "change the prompt library")
        record = self._prompt(actor, ident)
        latest = self._version(record, record.latest)
        spec = PromptSpec(name, latest.content, record.kind, record.description, list(record.tags))  # type: ignore[arg-type]
        return self.create(actor, spec, source=f"{record.name}@{record.latest}")

    def update(self, actor: Actor, ident: str, change: PromptUpdate) -> dict[str, Any]:
        rbac.require_admin(actor, "change the prompt library")
        record = self._prompt(actor, ident)
        if change.name is not None and change.name != record.name:
            _check_name(change.name)
            if self.store.get_prompt(change.name) is not None:
                raise Conflict(f"A prompt named '{change.name}' already exists.", param="name", code="prompt_exists")
        if change.tags is not None:
            _check_tags(change.tags)
        after = msgspec.structs.replace(
            record,
            name=change.name if change.name is not None else record.name,
            description=change.description if change.description is not None else record.description,
            tags=change.tags if change.tags is not None else record.tags,
            updated_at=self.clock(),
        )
        with self.store.transaction():
            self.store.update_prompt(after)
            self._audit(actor, "prompt.update", record.id, before=prompt_view(record), after=prompt_view(after))
        return prompt_view(after)

    def delete(self, actor: Actor, ident: str) -> dict[str, Any]:
        rbac.require_admin(actor, "change the prompt library")
        record = self._prompt(actor, ident)
        attached = self.store.prompt_attachments(prompt_id=record.id)
        if attached:
            raise Conflict(
                f"Prompt '{record.name}' is attached to {', '.join(a.scope for a in attached)}; detach it first.",
                code="prompt_in_use",
            )
        with self.store.transaction():
            self.store.delete_prompt(record.id)
            self._audit(actor, "prompt.delete", record.id, before=prompt_view(record))
        return {**prompt_view(record), "deleted": True}

    # -- attachments ---------------------------------------------------------------------------------

    def _resolve(self, ref: str) -> tuple[PromptRecord, int | None]:
        name, sep, pinned = ref.partition("@")
        record = self.store.get_prompt(name)
        if record is None:
            raise InvalidRequest(f"No prompt named '{name}'.", param="prompt", code="prompt_not_found")
        if not sep:
            return record, None
        if not pinned.isdigit() or self.store.prompt_version(record.id, int(pinned)) is None:
            raise InvalidRequest(
                f"Prompt '{name}' has versions 1-{record.latest}; pin one as '{name}@N'.",
                param="prompt",
                code="invalid_value",
            )
        return record, int(pinned)

    def attachments(self, actor: Actor, scope: str) -> list[dict[str, Any]]:
        """What is attached to a key or group scope (the caller already checked it may see that scope)."""
        rbac.require_user(actor)
        out = []
        for a in self.store.prompt_attachments(scope=scope):
            record = self.store.get_prompt(a.prompt_id)
            out.append(attachment_view(a, record.name if record is not None else a.prompt_id))
        return out

    def attach(self, actor: Actor, scope: str, spec: Attach) -> list[dict[str, Any]]:
        rbac.require_admin(actor, "attach prompts")
        record, version = self._resolve(spec.prompt)
        if record.kind == "vibe" and spec.mode == "replace":
            raise InvalidRequest(
                "A vibe prompt adds context to the user's turn: use mode 'prepend' or 'append'.",
                param="mode",
                code="invalid_value",
            )
        attachment = PromptAttachment(scope, record.kind, record.id, version, spec.mode, self.clock(), actor.id)
        replaced = [a for a in self.store.prompt_attachments(scope=scope) if a.kind == record.kind]
        with self.store.transaction():
            self.store.attach_prompt(attachment)
            self._audit(
                actor, "prompt.attach", scope, target_type=scope.partition(":")[0],
                before=msgspec.to_builtins(replaced[0]) if replaced else None,
                after=attachment_view(attachment, record.name),
            )  # fmt: skip
        return self.attachments(actor, scope)

    def detach(self, actor: Actor, scope: str, kind: str) -> list[dict[str, Any]]:
        rbac.require_admin(actor, "detach prompts")
        if kind not in ("system", "vibe"):
            raise InvalidRequest("'kind' must be 'system' or 'vibe'.", param="kind", code="invalid_value")
        before = [a for a in self.store.prompt_attachments(scope=scope) if a.kind == kind]
        if before:
            with self.store.transaction():
                self.store.detach_prompt(scope, kind)
                self._audit(
                    actor, "prompt.detach", scope, target_type=scope.partition(":")[0],
                    before=msgspec.to_builtins(before[0]),
                )  # fmt: skip
        return self.attachments(actor, scope)

    def _audit(self, actor: Actor, action: str, ident: str, target_type: str = "prompt", **fields: Any) -> None:
        self.store.append_audit([AuditEvent(self.clock(), actor.id, action, target_type, ident, **fields)])
