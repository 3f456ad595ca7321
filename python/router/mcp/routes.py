"""The MCP gateway's management routes (`/v1/manage/mcp/...`): servers, tools, credentials, analytics, health.

Admins manage everything; analysts read everything but credentials; standard users list the servers and
tools their keys may use and manage only their own credentials.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from ..admin.routing import Call, route, when
from ..errors import InvalidRequest, PermissionDenied
from ..governance import rbac
from ..governance.keys import iso_time
from ..store.mcp_tables import McpUsageRow
from .admin import TEMPLATES, CredentialBody, ServerSpec, ServerUpdate, WhitelistBody
from .names import exposed_name

_MAX_ROWS = 200_000


def _admin(call: Call) -> Any:
    return call.mcp.admin


@route("GET", "/mcp/templates", "MCP server templates: URL, transport and the headers each needs")
def templates(call: Call) -> tuple[int, Any]:
    rbac.require_user(call.actor)
    data = [
        {"name": t.name, "title": t.title, "url": t.url, "transport": t.transport, "description": t.description,
         "headers": t.headers}
        for t in TEMPLATES.values()
    ]  # fmt: skip
    return 200, {"object": "list", "data": data}


def _visible(call: Call, name: str) -> Any:
    """The server, if the actor may see it (readers: all; others: servers their key may use)."""
    gateway = call.mcp
    server = gateway.admin.server(name)
    if call.actor.reads_all:
        return server
    rbac.require_user(call.actor)
    principal = call.principal
    if not server.enabled or principal is None or not gateway.grant(principal).permits(name):
        raise rbac.not_found("MCP server", name)
    return server


@route("GET", "/mcp/servers", "List MCP servers (standard users: the ones their key may use)")
def list_servers(call: Call) -> tuple[int, Any]:
    rbac.require_user(call.actor)
    gateway = call.mcp
    out = []
    for s in gateway.admin.store.mcp_servers():
        if not call.actor.reads_all and (
            not s.enabled or call.principal is None or not gateway.grant(call.principal).permits(s.name)
        ):
            continue
        out.append(gateway.admin.server_view(s, call.actor))
    return 200, {"object": "list", "data": out}


@route("POST", "/mcp/servers", "Register an MCP server (from a template or custom); headers are sealed", ServerSpec)
def create_server(call: Call) -> tuple[int, Any]:
    record = _admin(call).create(call.actor, call.body)
    return 201, _admin(call).server_view(record, call.actor)


@route("GET", "/mcp/servers/{name}", "An MCP server: configuration, health, tool counts, your credential status")
def get_server(call: Call) -> tuple[int, Any]:
    return 200, _admin(call).server_view(_visible(call, call.params["name"]), call.actor)


@route("POST", "/mcp/servers/{name}", "Change an MCP server (given fields only; headers replace all)", ServerUpdate)
def update_server(call: Call) -> tuple[int, Any]:
    record = _admin(call).update(call.actor, call.params["name"], call.body)
    return 200, _admin(call).server_view(record, call.actor)


@route("DELETE", "/mcp/servers/{name}", "Delete an MCP server, its tools and users' credentials for it")
def delete_server(call: Call) -> tuple[int, Any]:
    return 200, _admin(call).delete(call.actor, call.params["name"])


@route("POST", "/mcp/servers/{name}/explore", "Connect, list the server's tools, and report what changed")
async def explore(call: Call) -> tuple[int, Any]:
    return 200, await _admin(call).explore(call.actor, call.params["name"])


@route("GET", "/mcp/servers/{name}/tools", "Tools of a server (readers: all with state; others: what they may call)")
def list_tools(call: Call) -> tuple[int, Any]:
    name = call.params["name"]
    if call.actor.reads_all:
        return 200, {"object": "list", "data": _admin(call).tools(call.actor, name)}
    _visible(call, name)
    gateway = call.mcp
    data = [
        {"name": t.upstream, "exposed_name": t.name, "description": t.listing.get("description"),
         "input_schema": t.listing["inputSchema"], "state": "enabled"}
        for t in gateway.visible_tools(call.principal)
        if t.server == name
    ]  # fmt: skip
    return 200, {"object": "list", "data": data}


@route("POST", "/mcp/servers/{name}/tools", "Whitelist tools (mode add, replace or remove)", WhitelistBody)
def whitelist(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": _admin(call).whitelist(call.actor, call.params["name"], call.body)}


@route("POST", "/mcp/servers/{name}/tools/{tool}/approve", "Approve a tool's current schema (re-approve a held tool)")
def approve(call: Call) -> tuple[int, Any]:
    return 200, _admin(call).approve(call.actor, call.params["name"], call.params["tool"])


@route("GET", "/mcp/servers/{name}/credentials", "Your own credentials for a server: status and fingerprints")
def get_credentials(call: Call) -> tuple[int, Any]:
    _visible(call, call.params["name"])
    return 200, _admin(call).credentials(call.actor, call.params["name"])


@route("PUT", "/mcp/servers/{name}/credentials", "Store or rotate your own credentials (sealed)", CredentialBody)
def put_credentials(call: Call) -> tuple[int, Any]:
    _visible(call, call.params["name"])
    return 200, _admin(call).set_credentials(call.actor, call.params["name"], call.body)


@route("DELETE", "/mcp/servers/{name}/credentials", "Delete your own credentials for a server")
def delete_credentials(call: Call) -> tuple[int, Any]:
    _visible(call, call.params["name"])
    return 200, _admin(call).delete_credentials(call.actor, call.params["name"])


@route("GET", "/mcp/servers/{name}/users", "Users' credential status for a server (never values)")
def user_statuses(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": _admin(call).user_statuses(call.actor, call.params["name"])}


@route("POST", "/mcp/health", "Check every enabled MCP server now (initialize + tools/list)")
async def check_health(call: Call) -> tuple[int, Any]:
    rbac.require_admin(call.actor, "run MCP health checks")
    results = await call.mcp.check_health(force=True)
    return 200, {
        "object": "list",
        "data": [
            {"server": h.server, "status": h.status, "checked_at": iso_time(h.checked_at),
             "latency_ms": h.latency_ms, "error": h.error, "tools": h.tools}
            for h in results.values()
        ],
    }  # fmt: skip


# -- analytics ----------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(int(q * len(ordered)), len(ordered) - 1)], 3)


def _stats(rows: list[McpUsageRow]) -> dict[str, Any]:
    latencies = [r.latency_ms for r in rows]
    ok = sum(1 for r in rows if r.status == "ok")
    return {
        "requests": len(rows),
        "errors": len(rows) - ok,
        "success_rate": round(ok / len(rows), 4) if rows else None,
        "p50_ms": _pct(latencies, 0.5),
        "p95_ms": _pct(latencies, 0.95),
        "gateway_p50_ms": _pct([r.gateway_ms for r in rows], 0.5),
        "server_p50_ms": _pct([r.server_ms for r in rows], 0.5),
        "request_bytes": sum(r.request_bytes for r in rows),
        "response_bytes": sum(r.response_bytes for r in rows),
        "users": len({r.user_id for r in rows if r.user_id}),
    }


def _usage_scope(call: Call) -> tuple[list[str] | None, str | None]:
    """The keys and user whose MCP calls the actor may read, narrowed by the `key` and `user` filters.

    Admins and analysts read everyone's; a standard user reads the calls made with their own keys, and asking
    for another user's or another key's is refused (403), never silently answered with nothing."""
    q = call.query
    user = q.get("user") or None
    key = q.get("key") or None
    scope = call.gov.usage_scope(call.actor)
    if scope is None:
        return ([key] if key else None), user
    if user == "me":
        user = call.actor.user_id
    if user is not None and user != call.actor.user_id:
        raise PermissionDenied(
            "Standard users may read only their own MCP analytics; leave out 'user' or pass your own id.",
            code="insufficient_permissions",
        )
    if key is not None:
        if key not in scope:
            raise PermissionDenied("Standard users may read MCP analytics of their own keys only.",
                                   code="insufficient_permissions")  # fmt: skip
        return [key], user
    return scope, user


@route(
    "GET", "/mcp/analytics",
    "MCP usage: over time, per server and tool (p50/p95, success), users, errors; filters start, end, group_by, "
    "server, user, key (standard users: their own calls only)",
)  # fmt: skip
def analytics(call: Call) -> tuple[int, Any]:
    rbac.require_user(call.actor)
    keys, user = _usage_scope(call)
    q = call.query
    now = call.now()
    end = when(q, "end", now + 1)
    start = when(q, "start", end - 7 * 86400)
    if start >= end:
        raise InvalidRequest("'start' must be before 'end'.", param="start", code="invalid_value")
    group_by = q.get("group_by", "day")
    if group_by not in ("hour", "day"):
        raise InvalidRequest("'group_by' must be hour or day.", param="group_by", code="invalid_value")
    rows = call.mcp.admin.store.mcp_usage_rows(start, end, q.get("server") or None, _MAX_ROWS, keys=keys, user=user)
    fmt = "%Y-%m-%dT%H:00:00Z" if group_by == "hour" else "%Y-%m-%d"
    buckets: dict[str, list[McpUsageRow]] = defaultdict(list)
    servers: dict[str, list[McpUsageRow]] = defaultdict(list)
    tools: dict[tuple[str, str], list[McpUsageRow]] = defaultdict(list)
    for r in rows:
        buckets[datetime.fromtimestamp(r.ts, UTC).strftime(fmt)].append(r)
        if r.server is not None:
            servers[r.server].append(r)
            if r.tool is not None:
                tools[(r.server, r.tool)].append(r)
    return 200, {
        "start": iso_time(start),
        "end": iso_time(end),
        "group_by": group_by,
        "scope": "all" if call.actor.reads_all else "own",
        "truncated": len(rows) >= _MAX_ROWS,
        "totals": _stats(rows),
        "over_time": [{"bucket": b, **_stats(v)} for b, v in sorted(buckets.items())],
        "servers": [{"server": s, **_stats(v)} for s, v in sorted(servers.items())],
        "tools": sorted(
            ({"server": s, "tool": t, "exposed_name": exposed_name(s, t), **_stats(v)} for (s, t), v in tools.items()),
            key=lambda x: -x["requests"],
        ),
        "errors": [
            {"error_type": e, "count": n} for e, n in Counter(r.error_type for r in rows if r.error_type).most_common()
        ],
        "active_users": len({r.user_id for r in rows if r.user_id}),
        "active_keys": len({r.key_id for r in rows if r.key_id}),
    }
