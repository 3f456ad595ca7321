"""Managing the MCP gateway: servers (from templates or custom), exploration, tool whitelists, the
organisation's sealed headers and each user's own sealed credentials.

Every change is audited and runs in a store transaction, which bumps the change epoch: every worker rebuilds
its view of servers and tools before its next request. Header values are sealed with the BYOK master key
(AES-GCM, the server's name as associated data) and never returned: views carry fingerprints only. Users'
credentials are sealed per user and server; no API returns them, not even to an admin.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import msgspec

from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied
from ..governance import rbac
from ..governance.keys import iso_time
from ..governance.rbac import Actor
from ..providers.byok import MASTER_KEY_ENV, MasterKey, fingerprint
from ..store import Store
from ..store.mcp_tables import McpCredentialRecord, McpServerRecord, McpToolRecord
from ..store.records import AuditEvent
from .names import SERVER_NAME, exposed_name
from .upstream import UpstreamError, one_shot

TRANSPORTS = ("streamable-http", "sse")
USER_KEYS = ("required", "optional", "off")
_MAX_HEADERS = 16
_MAX_HEADER_VALUE = 8192
_MAX_TIMEOUT = 600.0
_DEFAULT_TIMEOUT = 30.0
_HEADER_NAME = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
# Hop-by-hop and transport headers the MCP client sets itself.
_RESERVED = frozenset(
    {"host", "content-length", "content-type", "accept", "connection", "transfer-encoding", "mcp-session-id",
     "mcp-protocol-version", "last-event-id"}
)  # fmt: skip


class Template(msgspec.Struct, frozen=True):
    name: str
    title: str
    url: str
    transport: str
    description: str
    # Header name → what its value looks like (the user or admin supplies it).
    headers: dict[str, str]


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template(
            "github", "GitHub", "https://api.githubcopilot.com/mcp/", "streamable-http",
            "Repository management, code search, pull requests and issues.",
            {"Authorization": "Bearer <GitHub personal access token>"},
        ),
        Template(
            "notion", "Notion", "https://mcp.notion.com/mcp", "streamable-http",
            "Pages, databases and content search in a Notion workspace.",
            {"Authorization": "Bearer <Notion integration token>"},
        ),
        Template(
            "linear", "Linear", "https://mcp.linear.app/sse", "sse",
            "Issue tracking and project management.",
            {"Authorization": "Bearer <Linear API key>"},
        ),
        Template(
            "context7", "Context7", "https://mcp.context7.com/mcp", "streamable-http",
            "Up-to-date library documentation and code examples for prompts.",
            {"CONTEXT7_API_KEY": "<Context7 API key>"},
        ),
        Template(
            "asana", "Asana", "https://mcp.asana.com/sse", "sse",
            "Tasks, projects and team coordination.",
            {"Authorization": "Bearer <Asana personal access token>"},
        ),
    )
}  # fmt: skip


class ServerSpec(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    url: str | None = None
    transport: str | None = None
    description: str | None = None
    enabled: bool = True
    timeout: float = _DEFAULT_TIMEOUT
    headers: dict[str, str] = {}
    user_keys: str | None = None
    user_headers: list[str] | None = None
    template: str | None = None
    guardrails: bool = False


class ServerUpdate(msgspec.Struct, forbid_unknown_fields=True):
    url: str | None = None
    transport: str | None = None
    description: str | None = None
    enabled: bool | None = None
    timeout: float | None = None
    # Replaces every organisation-wide header when given ({} removes them all).
    headers: dict[str, str] | None = None
    user_keys: str | None = None
    user_headers: list[str] | None = None
    guardrails: bool | None = None


class WhitelistBody(msgspec.Struct, forbid_unknown_fields=True):
    tools: list[str]
    mode: str = "add"  # add | replace | remove


class CredentialBody(msgspec.Struct, forbid_unknown_fields=True):
    headers: dict[str, str]


def schema_hash(description: str | None, input_schema: str) -> str:
    return hashlib.sha256(f"{description or ''}\0{input_schema}".encode()).hexdigest()[:16]


def canonical(value: Any) -> str:
    return msgspec.json.encode(value, order="sorted").decode()


def _bad(message: str, param: str | None = None, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def check_headers(headers: dict[str, str], param: str) -> dict[str, str]:
    if len(headers) > _MAX_HEADERS:
        raise _bad(f"At most {_MAX_HEADERS} headers.", param)
    out = {}
    for name, value in headers.items():
        if not name or not _HEADER_NAME.issuperset(name) or len(name) > 100:
            raise _bad(f"'{name}' is not a valid header name (letters, digits, - and _).", param)
        if name.lower() in _RESERVED:
            raise _bad(f"'{name}' is set by the gateway's MCP client and cannot be configured.", param)
        if not value or len(value) > _MAX_HEADER_VALUE or not value.isprintable() or not value.isascii():
            raise _bad(f"The value of header '{name}' must be 1-{_MAX_HEADER_VALUE} printable ASCII characters.", param)
        out[name] = value
    return out


def _tool_view(t: McpToolRecord) -> dict[str, Any]:
    schema = msgspec.json.decode(t.input_schema)
    return {
        "name": t.name,
        "exposed_name": exposed_name(t.server, t.name),
        "description": t.description,
        "input_schema": schema,
        "schema_hash": t.schema_hash,
        "state": t.state,
        "whitelisted": t.approved_hash is not None,
        "approved_at": None if t.approved_at is None else iso_time(t.approved_at),
        "approved_by": t.approved_by,
        "seen_at": iso_time(t.seen_at),
    }


class McpAdmin:
    def __init__(self, store: Store, master: MasterKey | None, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.master = master
        self.clock = clock

    # -- views --------------------------------------------------------------------------------------

    def server_view(self, s: McpServerRecord, actor: Actor) -> dict[str, Any]:
        tools = self.store.mcp_tools(s.name)
        health = self.store.mcp_health().get(s.name)
        view: dict[str, Any] = {
            "name": s.name,
            "url": s.url,
            "transport": s.transport,
            "description": s.description,
            "enabled": s.enabled,
            "timeout": s.timeout,
            "user_keys": s.user_keys,
            "user_headers": s.user_headers,
            "guardrails": s.guardrails,
            "template": s.template,
            "tools": {
                "discovered": sum(1 for t in tools if t.removed_at is None),
                "enabled": sum(1 for t in tools if t.state == "enabled"),
                "held": sum(1 for t in tools if t.state == "held"),
            },
            "health": health_view(s, health),
            "created_at": iso_time(s.created_at),
            "updated_at": iso_time(s.updated_at),
        }
        if actor.reads_all:
            view["headers"] = dict(s.header_fingerprints)
            view["created_by"] = s.created_by
            view["explored_at"] = None if s.explored_at is None else iso_time(s.explored_at)
            view["last_diff"] = s.last_diff
        if s.user_keys != "off" and actor.user_id is not None:
            view["your_credentials"] = self._credential_status(s, actor.user_id)
        return view

    def _credential_status(self, s: McpServerRecord, user_id: str) -> dict[str, Any]:
        cred = self.store.mcp_credential(s.name, user_id)
        if cred is None:
            return {"status": "missing", "headers": {}, "required": s.user_keys == "required"}
        return {
            "status": cred.status,
            "headers": dict(cred.header_fingerprints),
            "updated_at": iso_time(cred.updated_at),
            "required": s.user_keys == "required",
        }

    # -- servers ------------------------------------------------------------------------------------

    def server(self, name: str) -> McpServerRecord:
        found = self.store.mcp_server(name)
        if found is None:
            raise NotFound(f"No MCP server named '{name}'.", code="mcp_server_not_found")
        return found

    def _seal(self, name: str, headers: dict[str, str]) -> tuple[bytes | None, str | None, dict[str, str]]:
        if not headers:
            return None, None, {}
        if self.master is None:
            raise Conflict(
                f"MCP headers are sealed with the master key; start the gateway with {MASTER_KEY_ENV} set.",
                code="master_key_missing",
            )
        sealed = self.master.seal(f"mcp:{name}", canonical(headers))
        return sealed, self.master.id, {k: fingerprint(v) for k, v in headers.items()}

    def open_headers(self, s: McpServerRecord) -> dict[str, str]:
        if s.headers_sealed is None:
            return {}
        if self.master is None or s.master != self.master.id:
            raise UpstreamError("config", "The server's headers are sealed under another master key.")
        return msgspec.json.decode(self.master.open(f"mcp:{s.name}", s.headers_sealed))

    def _validate(self, url: str, transport: str, timeout: float, user_keys: str, user_headers: list[str]) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
            raise _bad("'url' must be an http(s) URL.", "url")
        if parts.username or parts.password:
            raise _bad("'url' must not carry credentials: configure them as headers.", "url")
        if transport not in TRANSPORTS:
            raise _bad(f"'transport' must be one of: {', '.join(TRANSPORTS)}.", "transport")
        if not 1 <= timeout <= _MAX_TIMEOUT:
            raise _bad(f"'timeout' must be 1-{_MAX_TIMEOUT:g} seconds.", "timeout")
        if user_keys not in USER_KEYS:
            raise _bad(f"'user_keys' must be one of: {', '.join(USER_KEYS)}.", "user_keys")
        check_headers(dict.fromkeys(user_headers, "x"), "user_headers")
        if user_keys != "off" and not user_headers:
            raise _bad("Name the headers users supply in 'user_headers' when 'user_keys' is not off.", "user_headers")

    def create(self, actor: Actor, spec: ServerSpec) -> McpServerRecord:
        rbac.require_admin(actor, "register MCP servers")
        if not SERVER_NAME.match(spec.name):
            raise _bad("'name' must be 1-32 lowercase letters, digits and '-' (no leading or trailing '-').", "name")
        template = None
        if spec.template is not None:
            template = TEMPLATES.get(spec.template)
            if template is None:
                raise _bad(f"Unknown template '{spec.template}' (known: {', '.join(TEMPLATES)}).", "template")
        url = spec.url or (template.url if template else None)
        if url is None:
            raise _bad("'url' is required (or use a template).", "url")
        transport = spec.transport or (template.transport if template else "streamable-http")
        headers = check_headers(spec.headers, "headers")
        user_headers = spec.user_headers
        if user_headers is None:
            user_headers = list(template.headers) if template else []
        user_keys = spec.user_keys
        if user_keys is None:
            # A template's headers are personal tokens: unless the admin set them org-wide, users bring their own.
            missing = template is not None and not set(template.headers) <= set(headers)
            user_keys = "required" if missing else "off"
        if user_keys == "off":
            user_headers = [] if spec.user_headers is None else user_headers
        self._validate(url, transport, spec.timeout, user_keys, user_headers)
        if self.store.mcp_server(spec.name) is not None:
            raise Conflict(f"An MCP server named '{spec.name}' already exists.", code="mcp_server_exists")
        now = self.clock()
        sealed, master, fps = self._seal(spec.name, headers)
        record = McpServerRecord(
            spec.name, url, transport, spec.description or (template.description if template else None), spec.enabled,
            spec.timeout, user_keys, user_headers, sealed, master, fps, spec.template, now, now, actor.id,
            guardrails=spec.guardrails,
        )  # fmt: skip
        with self.store.transaction():
            if self.store.mcp_server(spec.name) is not None:
                raise Conflict(f"An MCP server named '{spec.name}' already exists.", code="mcp_server_exists")
            self.store.put_mcp_server(record)
            self._audit(actor, "mcp.server.create", spec.name, after=self._public(record))
        return record

    def update(self, actor: Actor, name: str, spec: ServerUpdate) -> McpServerRecord:
        rbac.require_admin(actor, "change MCP servers")
        before = self.server(name)
        changes: dict[str, Any] = {
            f: getattr(spec, f)
            for f in (
                "url",
                "transport",
                "description",
                "enabled",
                "timeout",
                "user_keys",
                "user_headers",
                "guardrails",
            )
            if getattr(spec, f) is not None
        }
        after = msgspec.structs.replace(before, **changes, updated_at=self.clock())
        if spec.headers is not None:
            sealed, master, fps = self._seal(name, check_headers(spec.headers, "headers"))
            after = msgspec.structs.replace(after, headers_sealed=sealed, master=master, header_fingerprints=fps)
        self._validate(after.url, after.transport, after.timeout, after.user_keys, after.user_headers)
        with self.store.transaction():
            self.store.put_mcp_server(after)
            self._audit(actor, "mcp.server.update", name, before=self._public(before), after=self._public(after))
        return after

    def delete(self, actor: Actor, name: str) -> dict[str, Any]:
        rbac.require_admin(actor, "delete MCP servers")
        before = self.server(name)
        with self.store.transaction():
            self.store.delete_mcp_server(name)
            self._audit(actor, "mcp.server.delete", name, before=self._public(before))
        return {"name": name, "deleted": True}

    @staticmethod
    def _public(s: McpServerRecord) -> dict[str, Any]:
        return {
            "url": s.url, "transport": s.transport, "description": s.description, "enabled": s.enabled,
            "timeout": s.timeout, "user_keys": s.user_keys, "user_headers": s.user_headers,
            "headers": dict(s.header_fingerprints), "guardrails": s.guardrails,
        }  # fmt: skip

    # -- exploration and whitelisting ---------------------------------------------------------------

    async def explore(self, actor: Actor, name: str) -> dict[str, Any]:
        """Connect with the configured credentials (plus the admin's own, for a server with user keys), list
        the tools, record them, and report what changed since the last exploration."""
        rbac.require_admin(actor, "explore MCP servers")
        s = self.server(name)
        headers = self.open_headers(s)
        if s.user_keys != "off" and actor.user_id is not None:
            headers.update(self.user_headers(s, actor.user_id) or {})
        try:
            listed = await one_shot(s.url, s.transport, headers, s.timeout, list_all_tools)
        except UpstreamError as exc:
            self._audit_now(
                actor, "mcp.server.explore_failed", name, detail={"error": exc.kind, "message": exc.message}
            )
            raise Conflict(f"Exploring '{name}' failed: {exc.message}", code=f"mcp_{exc.kind}") from None
        diff = self.record_tools(actor, s, listed)
        return {"server": name, "diff": diff, "tools": [_tool_view(t) for t in self.store.mcp_tools(name)]}

    def record_tools(self, actor: Actor, s: McpServerRecord, listed: list[Any]) -> dict[str, Any]:
        """Store what the upstream lists now; approved tools whose description or schema changed are held back
        (the gateway keeps serving nothing for them) until an admin approves them again."""
        now = self.clock()
        known = {t.name: t for t in self.store.mcp_tools(s.name)}
        seen: dict[str, McpToolRecord] = {}
        added, changed, held = [], [], []
        for tool in listed:
            schema = canonical(tool.inputSchema)
            digest = schema_hash(tool.description, schema)
            old = known.get(tool.name)
            if old is None or old.removed_at is not None:
                added.append(tool.name)
            elif old.schema_hash != digest:
                changed.append(tool.name)
            if old is not None and old.approved_hash is not None and old.approved_hash != digest:
                held.append(tool.name)
            base = old or McpToolRecord(s.name, tool.name, None, "{}", "", now, None, None, None, None, None, None)
            seen[tool.name] = msgspec.structs.replace(
                base, description=tool.description, input_schema=schema, schema_hash=digest, seen_at=now,
                removed_at=None,
            )  # fmt: skip
        removed = [n for n, t in known.items() if n not in seen and t.removed_at is None]
        gone = [msgspec.structs.replace(known[n], removed_at=now) for n in removed]
        diff = {"added": sorted(added), "removed": sorted(removed), "changed": sorted(changed), "held": sorted(held)}
        newly_held = [n for n in held if known[n].schema_hash != seen[n].schema_hash]
        with self.store.transaction():
            self.store.put_mcp_tools([*seen.values(), *gone])
            self.store.put_mcp_server(msgspec.structs.replace(s, explored_at=now, last_diff=diff))
            self._audit(actor, "mcp.server.explore", s.name, detail=diff)
            for n in newly_held:
                self._audit(
                    actor, "mcp.tool.schema_changed", f"{s.name}/{n}",
                    before={"schema_hash": known[n].approved_hash}, after={"schema_hash": seen[n].schema_hash},
                    detail={"held": True},
                )  # fmt: skip
        return diff

    def tools(self, actor: Actor, name: str) -> list[dict[str, Any]]:
        rbac.require_reader(actor, "see every tool of an MCP server")
        self.server(name)
        return [_tool_view(t) for t in self.store.mcp_tools(name) if t.removed_at is None or t.approved_hash]

    def whitelist(self, actor: Actor, name: str, body: WhitelistBody) -> list[dict[str, Any]]:
        rbac.require_admin(actor, "whitelist MCP tools")
        if body.mode not in ("add", "replace", "remove"):
            raise _bad("'mode' must be add, replace or remove.", "mode")
        self.server(name)
        tools = {t.name: t for t in self.store.mcp_tools(name)}
        for i, tool in enumerate(body.tools):
            t = tools.get(tool)
            if t is None or (t.removed_at is not None and body.mode != "remove"):
                raise _bad(f"'{tool}' is not a tool of '{name}' (explore the server first).", f"tools[{i}]",
                           "mcp_tool_not_found")  # fmt: skip
        wanted = set(body.tools)
        now = self.clock()
        changed = []
        for t in tools.values():
            approve = t.name in wanted if body.mode != "remove" else False
            revoke = (body.mode == "remove" and t.name in wanted) or (body.mode == "replace" and t.name not in wanted)
            if approve and t.approved_hash != t.schema_hash:
                changed.append(self._approved(t, actor, now))
            elif revoke and t.approved_hash is not None:
                changed.append(msgspec.structs.replace(
                    t, approved_hash=None, approved_at=None, approved_by=None, approved_schema=None,
                    approved_description=None,
                ))  # fmt: skip
        with self.store.transaction():
            self.store.put_mcp_tools(changed)
            self._audit(
                actor, "mcp.tools.whitelist", name,
                detail={"mode": body.mode, "tools": sorted(wanted),
                        "enabled": sorted(t.name for t in changed if t.approved_hash),
                        "disabled": sorted(t.name for t in changed if not t.approved_hash)},
            )  # fmt: skip
        return [_tool_view(t) for t in self.store.mcp_tools(name) if t.removed_at is None or t.approved_hash]

    def approve(self, actor: Actor, name: str, tool: str) -> dict[str, Any]:
        """Re-approve a held tool (its current description and schema) — also a way to whitelist one tool."""
        rbac.require_admin(actor, "approve MCP tools")
        self.server(name)
        t = next((t for t in self.store.mcp_tools(name) if t.name == tool and t.removed_at is None), None)
        if t is None:
            raise NotFound(f"No tool '{tool}' on MCP server '{name}'.", code="mcp_tool_not_found")
        after = self._approved(t, actor, self.clock())
        with self.store.transaction():
            self.store.put_mcp_tools([after])
            self._audit(
                actor, "mcp.tool.approve", f"{name}/{tool}",
                before={"schema_hash": t.approved_hash}, after={"schema_hash": after.approved_hash},
            )  # fmt: skip
        return _tool_view(after)

    @staticmethod
    def _approved(t: McpToolRecord, actor: Actor, now: float) -> McpToolRecord:
        return msgspec.structs.replace(
            t, approved_hash=t.schema_hash, approved_at=now, approved_by=actor.id, approved_schema=t.input_schema,
            approved_description=t.description,
        )  # fmt: skip

    # -- users' own credentials ---------------------------------------------------------------------

    def _user_server(self, actor: Actor, name: str) -> McpServerRecord:
        if actor.user_id is None:
            raise PermissionDenied(
                "MCP credentials belong to a user: use an API key owned by a user.", code="insufficient_permissions"
            )
        s = self.server(name)
        if s.user_keys == "off":
            raise Conflict(f"MCP server '{name}' does not take users' own credentials.", code="mcp_user_keys_off")
        return s

    def credentials(self, actor: Actor, name: str) -> dict[str, Any]:
        s = self._user_server(actor, name)
        assert actor.user_id is not None
        return {"server": name, "user_headers": s.user_headers, **self._credential_status(s, actor.user_id)}

    def set_credentials(self, actor: Actor, name: str, body: CredentialBody) -> dict[str, Any]:
        s = self._user_server(actor, name)
        assert actor.user_id is not None
        headers = check_headers(body.headers, "headers")
        unknown = sorted(set(headers) - set(s.user_headers))
        if unknown:
            raise _bad(f"MCP server '{name}' takes only these headers: {', '.join(s.user_headers)}.", "headers")
        if s.user_keys == "required" and set(headers) != set(s.user_headers):
            missing = ", ".join(sorted(set(s.user_headers) - set(headers)))
            raise _bad(f"MCP server '{name}' requires every one of its headers; missing: {missing}.", "headers")
        if self.master is None:
            raise Conflict(
                f"Credentials are sealed with the master key; start the gateway with {MASTER_KEY_ENV} set.",
                code="master_key_missing",
            )
        before = self.store.mcp_credential(name, actor.user_id)
        record = McpCredentialRecord(
            name, actor.user_id, self.master.seal(f"mcp:{name}:user:{actor.user_id}", canonical(headers)),
            self.master.id, {k: fingerprint(v) for k, v in headers.items()}, "configured", self.clock(),
        )  # fmt: skip
        with self.store.transaction():
            self.store.put_mcp_credential(record)
            self._audit(
                actor, "mcp.credentials.rotate" if before else "mcp.credentials.create", f"{name}/{actor.user_id}",
                after={"headers": record.header_fingerprints},
            )  # fmt: skip
        return self.credentials(actor, name)

    def delete_credentials(self, actor: Actor, name: str) -> dict[str, Any]:
        self._user_server(actor, name)
        assert actor.user_id is not None
        with self.store.transaction():
            if not self.store.delete_mcp_credential(name, actor.user_id):
                raise NotFound(
                    f"You have no credentials stored for MCP server '{name}'.", code="mcp_credentials_not_found"
                )
            self._audit(actor, "mcp.credentials.delete", f"{name}/{actor.user_id}")
        return {"server": name, "deleted": True}

    def user_statuses(self, actor: Actor, name: str) -> list[dict[str, Any]]:
        """Which users configured their credentials (status and fingerprints, never values)."""
        rbac.require_reader(actor, "see users' MCP credential status")
        self.server(name)
        return [
            {"user_id": c.user_id, "status": c.status, "headers": c.header_fingerprints,
             "updated_at": iso_time(c.updated_at)}
            for c in self.store.mcp_credentials(server=name)
        ]  # fmt: skip

    def user_headers(self, s: McpServerRecord, user_id: str) -> dict[str, str] | None:
        cred = self.store.mcp_credential(s.name, user_id)
        if cred is None or self.master is None or cred.master != self.master.id:
            return None
        return msgspec.json.decode(self.master.open(f"mcp:{s.name}:user:{user_id}", cred.sealed))

    def rotate(self, actor: Actor, previous: MasterKey | None) -> dict[str, int]:
        """Re-seal every MCP header set (servers' and users') under the current master key, all or nothing;
        rows already under it are left alone, so an interrupted rotation can be re-run."""
        rbac.require_admin(actor, "rotate the master key")
        if self.master is None:
            raise Conflict(f"Set {MASTER_KEY_ENV} to the new master key.", code="master_key_missing")
        master = self.master
        rotated = current = 0

        def reseal(label: str, row_master: str | None, sealed: bytes) -> bytes | None:
            nonlocal rotated, current
            if row_master == master.id:
                current += 1
                return None
            if previous is None or row_master != previous.id:
                raise Conflict(
                    f"'{label}' is sealed under master key {row_master}, neither the current nor the previous one.",
                    code="unknown_master_key",
                )
            rotated += 1
            return master.seal(label, previous.open(label, sealed))

        with self.store.transaction():
            for s in self.store.mcp_servers():
                if s.headers_sealed is not None:
                    fresh = reseal(f"mcp:{s.name}", s.master, s.headers_sealed)
                    if fresh is not None:
                        self.store.put_mcp_server(msgspec.structs.replace(s, headers_sealed=fresh, master=master.id))
            for c in self.store.mcp_credentials():
                fresh = reseal(f"mcp:{c.server}:user:{c.user_id}", c.master, c.sealed)
                if fresh is not None:
                    self.store.put_mcp_credential(msgspec.structs.replace(c, sealed=fresh, master=master.id))
            self._audit(actor, "mcp.rotate", None, detail={"rotated": rotated, "already_current": current})
        return {"rotated": rotated, "already_current": current}

    # -- audit --------------------------------------------------------------------------------------

    def _audit(self, actor: Actor, action: str, target: str | None, **fields: Any) -> None:
        self.store.append_audit([AuditEvent(self.clock(), actor.id, action, "mcp_server", target, **fields)])

    def _audit_now(self, actor: Actor, action: str, target: str | None, **fields: Any) -> None:
        with self.store.transaction():
            self._audit(actor, action, target, **fields)


def health_view(s: McpServerRecord, h: Any) -> dict[str, Any]:
    if not s.enabled:
        return {"status": "disabled"}
    if h is None:
        return {"status": "unknown"}
    return {
        "status": h.status,
        "checked_at": iso_time(h.checked_at),
        "latency_ms": h.latency_ms,
        "error": h.error,
        "tools": h.tools,
    }


async def list_all_tools(session: Any) -> list[Any]:
    """Every tool, following pagination (bounded: a server listing more than 5000 tools is cut off)."""
    tools: list[Any] = []
    cursor = None
    for _ in range(50):
        result = await session.list_tools(cursor=cursor) if cursor else await session.list_tools()
        tools.extend(result.tools)
        cursor = result.nextCursor
        if not cursor or len(tools) >= 5000:
            break
    return tools
