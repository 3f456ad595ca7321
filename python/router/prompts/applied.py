"""Applying the prompt library to requests: each key's system and vibe prompts, in each API's own field.

A key's own attachment wins over its groups'; among its groups (its own and its owner's), the first by group
id that has one. The worker keeps every attachment with its text (small tables) and re-reads them when the
change epoch moves, like the guardrail settings; a request without any attachment in the organisation pays
one truth test.

Where a prompt goes:

- chat: the system prompt into the first `system`/`developer` message (a new `system` message first when there
  is none); the vibe prompt into the last `user` message;
- Messages: `system` (a string or text blocks); the last `user` message;
- Responses: `instructions`; `input` (a string), or its last `user` item.

`prepend` and `append` join the texts with a blank line (or add a text part to a list of parts); `replace`
drops the caller's system prompt (every `system`/`developer` message in chat) for the library's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ..guardrails.stored import key_scope, principal_scopes
from ..store import Store

if TYPE_CHECKING:
    from ..governance.keys import Principal

_SEPARATOR = "\n\n"
# The text part type of each API's content lists.
_PART = {"chat": "text", "messages": "text", "responses": "input_text"}


class Piece(msgspec.Struct, frozen=True):
    text: str
    mode: str  # prepend | append | replace
    label: str  # name@version, as the usage row records it


class Applied(msgspec.Struct, frozen=True):
    system: Piece | None
    vibe: Piece | None


def _join(piece: Piece, existing: Any, part: str) -> Any:
    """The caller's content with the piece joined to it: a string, or a list of content parts."""
    if piece.mode == "replace" or existing is None or existing == "" or existing == []:
        return piece.text
    if isinstance(existing, str):
        return piece.text + _SEPARATOR + existing if piece.mode == "prepend" else existing + _SEPARATOR + piece.text
    if isinstance(existing, list):
        added = {"type": part, "text": piece.text}
        return [added, *existing] if piece.mode == "prepend" else [*existing, added]
    return existing  # a shape validation let through that holds no text: leave it to the upstream


def _last_user(messages: list) -> dict | None:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return message
    return None


def _chat_system(messages: list, piece: Piece) -> None:
    at = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") in ("system", "developer")]
    if piece.mode == "replace":
        for i in reversed(at):
            del messages[i]
        messages.insert(0, {"role": "system", "content": piece.text})
    elif not at:
        messages.insert(0, {"role": "system", "content": piece.text})
    else:
        target = messages[at[0] if piece.mode == "prepend" else at[-1]]
        target["content"] = _join(piece, target.get("content"), "text")


def _apply_user(message: dict | None, piece: Piece, part: str) -> None:
    if message is not None:
        message["content"] = _join(piece, message.get("content"), part)


def _decode(raw: msgspec.Raw | None) -> Any:
    return None if raw is None else msgspec.json.decode(raw)


def _raw(value: Any) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(value))


def apply(api: str, fields: dict[str, msgspec.Raw], applied: Applied) -> list[str]:
    """Put the prompts into a validated request's top-level `fields` (rewritten in place); the labels of the
    prompts that applied."""
    labels = []
    system, vibe = applied.system, applied.vibe
    if api == "chat":
        messages = _decode(fields.get("messages"))
        if not isinstance(messages, list):
            return []
        if system is not None:
            _chat_system(messages, system)
            labels.append(system.label)
        if vibe is not None and (user := _last_user(messages)) is not None:
            _apply_user(user, vibe, "text")
            labels.append(vibe.label)
        if labels:
            fields["messages"] = _raw(messages)
    elif api == "messages":
        if system is not None:
            fields["system"] = _raw(_join(system, _decode(fields.get("system")), "text"))
            labels.append(system.label)
        if vibe is not None:
            messages = _decode(fields.get("messages"))
            if isinstance(messages, list) and (user := _last_user(messages)) is not None:
                _apply_user(user, vibe, "text")
                fields["messages"] = _raw(messages)
                labels.append(vibe.label)
    elif api == "responses":
        if system is not None:
            fields["instructions"] = _raw(_join(system, _decode(fields.get("instructions")), "input_text"))
            labels.append(system.label)
        if vibe is not None:
            items = _decode(fields.get("input"))
            if isinstance(items, str):
                fields["input"] = _raw(_join(vibe, items, "input_text"))
                labels.append(vibe.label)
            elif isinstance(items, list) and (user := _last_user(items)) is not None:
                _apply_user(user, vibe, "input_text")
                fields["input"] = _raw(items)
                labels.append(vibe.label)
    return labels


class PromptSet:
    """A worker's attachments: scope → kind → the piece to apply, and each key's resolution, cached."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._by_scope: dict[str, dict[str, Piece]] = {}
        self._by_key: dict[str, Applied | None] = {}

    def refresh(self) -> None:
        self.load()()

    def load(self) -> Callable[[], None]:
        """Read the attachments (any thread); the returned function swaps them in (the event loop's thread)."""
        by_scope: dict[str, dict[str, Piece]] = {}
        for attachment, name, content, version in self._store.attached_prompt_contents():
            by_scope.setdefault(attachment.scope, {})[attachment.kind] = Piece(
                content, attachment.mode, f"{name}@{version}"
            )

        def apply() -> None:
            # Memberships may have changed with the epoch whether or not an attachment did.
            self._by_key.clear()
            self._by_scope = by_scope

        return apply

    def for_principal(self, principal: Principal) -> Applied | None:
        record = principal.record
        if not self._by_scope or record is None:
            return None
        if record.id in self._by_key:
            return self._by_key[record.id]
        scopes = principal_scopes(self._store, principal)
        own = self._by_scope.get(key_scope(record.id), {})
        groups = [self._by_scope[s] for s in scopes[:-1] if s in self._by_scope]

        def pick(kind: str) -> Piece | None:
            if kind in own:
                return own[kind]
            return next((g[kind] for g in groups if kind in g), None)

        system, vibe = pick("system"), pick("vibe")
        found = Applied(system, vibe) if system is not None or vibe is not None else None
        self._by_key[record.id] = found
        return found
