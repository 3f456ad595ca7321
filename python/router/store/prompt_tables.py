"""The prompt library: named system and vibe prompts, their immutable versions, and where they are attached.

A mixin over the SQLite connection like `guardrail_tables.py`. Writes go through `transaction()`, which bumps
the change epoch: every worker re-reads its attachments before its next request.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import msgspec

_PROMPT_COLUMNS = "id, name, kind, description, tags, latest, created_at, created_by, updated_at"
_VERSION_COLUMNS = "prompt_id, version, content, created_at, created_by, note"
_ATTACH_COLUMNS = "scope, kind, prompt_id, version, mode, updated_at, updated_by"
_decode_tags = msgspec.json.Decoder(list[str]).decode


class PromptRecord(msgspec.Struct, frozen=True):
    id: str
    name: str
    kind: str  # system | vibe
    description: str | None
    tags: list[str]
    latest: int  # the newest version's number
    created_at: float
    created_by: str | None
    updated_at: float


class PromptVersion(msgspec.Struct, frozen=True):
    prompt_id: str
    version: int
    content: str
    created_at: float
    created_by: str | None = None
    note: str | None = None


class PromptAttachment(msgspec.Struct, frozen=True):
    """A prompt applied to every request of a key (`key:<id>`) or of a group's keys (`group:<id>`)."""

    scope: str
    kind: str  # system | vibe: a scope has at most one of each
    prompt_id: str
    version: int | None  # None: the latest version
    mode: str  # prepend | append | replace
    updated_at: float
    updated_by: str | None = None


def _prompt(row: tuple) -> PromptRecord:
    ident, name, kind, description, tags, latest, created, by, updated = row
    return PromptRecord(ident, name, kind, description, _decode_tags(tags), latest, created, by, updated)


class PromptTables:
    _conn: sqlite3.Connection

    if TYPE_CHECKING:  # provided by GovernanceTables

        def transaction(self) -> AbstractContextManager[None]: ...

    # -- prompts and versions ----------------------------------------------------------------------------

    def get_prompt(self, id_or_name: str) -> PromptRecord | None:
        row = self._conn.execute(
            f"SELECT {_PROMPT_COLUMNS} FROM prompts WHERE id = ? OR name = ?", (id_or_name, id_or_name)
        ).fetchone()
        return None if row is None else _prompt(row)

    def list_prompts(
        self, limit: int = -1, offset: int = 0, ids: list[str] | None = None, tag: str | None = None
    ) -> list[PromptRecord]:
        clauses: list[str] = []
        params: list = []
        if ids is not None:
            clauses.append(f"id IN ({', '.join('?' * len(ids))})")
            params += ids
        if tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(prompts.tags) WHERE value = ?)")
            params.append(tag)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = self._conn.execute(
            f"SELECT {_PROMPT_COLUMNS} FROM prompts {where}ORDER BY name LIMIT ? OFFSET ?", (*params, limit, offset)
        )
        return [_prompt(r) for r in rows]

    def insert_prompt(self, record: PromptRecord, first: PromptVersion) -> None:
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO prompts ({_PROMPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id, record.name, record.kind, record.description, msgspec.json.encode(record.tags).decode(),
                    record.latest, record.created_at, record.created_by, record.updated_at,
                ),
            )  # fmt: skip
            self._insert_version(first)

    def update_prompt(self, record: PromptRecord) -> None:
        """Name, description and tags (versions are immutable; `add_prompt_version` makes new ones)."""
        with self.transaction():
            self._conn.execute(
                "UPDATE prompts SET name = ?, description = ?, tags = ?, updated_at = ? WHERE id = ?",
                (
                    record.name,
                    record.description,
                    msgspec.json.encode(record.tags).decode(),
                    record.updated_at,
                    record.id,
                ),
            )

    def add_prompt_version(self, version: PromptVersion) -> None:
        with self.transaction():
            self._insert_version(version)
            self._conn.execute(
                "UPDATE prompts SET latest = ?, updated_at = ? WHERE id = ?",
                (version.version, version.created_at, version.prompt_id),
            )

    def _insert_version(self, v: PromptVersion) -> None:
        self._conn.execute(
            f"INSERT INTO prompt_versions ({_VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            (v.prompt_id, v.version, v.content, v.created_at, v.created_by, v.note),
        )

    def prompt_version(self, prompt_id: str, version: int) -> PromptVersion | None:
        row = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = ? AND version = ?", (prompt_id, version)
        ).fetchone()
        return None if row is None else PromptVersion(*row)

    def prompt_versions(self, prompt_id: str) -> list[PromptVersion]:
        rows = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM prompt_versions WHERE prompt_id = ? ORDER BY version", (prompt_id,)
        )
        return [PromptVersion(*r) for r in rows]

    def delete_prompt(self, prompt_id: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM prompt_versions WHERE prompt_id = ?", (prompt_id,))
            self._conn.execute("DELETE FROM prompts WHERE id = ?", (prompt_id,))

    # -- attachments -------------------------------------------------------------------------------------

    def prompt_attachments(self, scope: str | None = None, prompt_id: str | None = None) -> list[PromptAttachment]:
        clauses, params = [], []
        if scope is not None:
            clauses.append("scope = ?")
            params.append(scope)
        if prompt_id is not None:
            clauses.append("prompt_id = ?")
            params.append(prompt_id)
        where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
        rows = self._conn.execute(
            f"SELECT {_ATTACH_COLUMNS} FROM prompt_attachments {where}ORDER BY scope, kind", params
        )
        return [PromptAttachment(*r) for r in rows]

    def attach_prompt(self, a: PromptAttachment) -> None:
        with self.transaction():
            self._conn.execute(
                f"INSERT INTO prompt_attachments ({_ATTACH_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (scope, kind) DO UPDATE SET prompt_id = excluded.prompt_id, version = excluded.version, "
                "mode = excluded.mode, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (a.scope, a.kind, a.prompt_id, a.version, a.mode, a.updated_at, a.updated_by),
            )

    def detach_prompt(self, scope: str, kind: str) -> None:
        with self.transaction():
            self._conn.execute("DELETE FROM prompt_attachments WHERE scope = ? AND kind = ?", (scope, kind))

    def attached_prompt_contents(self) -> list[tuple[PromptAttachment, str, str, int]]:
        """Every attachment with what it applies: (attachment, prompt name, content, version number)."""
        rows = self._conn.execute(
            f"SELECT {', '.join('a.' + c for c in _ATTACH_COLUMNS.split(', '))}, p.name, v.content, v.version "
            "FROM prompt_attachments a JOIN prompts p ON p.id = a.prompt_id "
            "JOIN prompt_versions v ON v.prompt_id = a.prompt_id AND v.version = COALESCE(a.version, p.latest) "
            "ORDER BY a.scope, a.kind"
        )
        return [(PromptAttachment(*r[:7]), r[7], r[8], r[9]) for r in rows]
