"""`router mcp ...`: the MCP gateway's servers, tools and health on the command line, as the `cli` actor
(an admin), against the database like the other governance commands. Output is JSON with `--json`."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from ..admin.cli import _command, _group
from ..governance.rbac import CLI_ACTOR
from ..governance.service import Governance
from ..providers.byok import MASTER_KEY_ENV, PREVIOUS_MASTER_KEY_ENV, MasterKey
from .admin import TEMPLATES, McpAdmin, ServerSpec, ServerUpdate, WhitelistBody


def _admin(gov: Governance) -> McpAdmin:
    return McpAdmin(gov.store, MasterKey.from_env(), gov.clock)


def _headers(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep:
            raise SystemExit(f"router: error: --header expects Name:value, got '{name}'")
        out[name.strip()] = value.strip()
    return out


def templates(gov: Governance, a: argparse.Namespace) -> Any:
    return [{"name": t.name, "url": t.url, "transport": t.transport, "headers": t.headers} for t in TEMPLATES.values()]


def servers(gov: Governance, a: argparse.Namespace) -> Any:
    admin = _admin(gov)
    return [admin.server_view(s, CLI_ACTOR) for s in gov.store.mcp_servers()]


def add(gov: Governance, a: argparse.Namespace) -> Any:
    spec = ServerSpec(
        name=a.name, url=a.url, transport=a.transport, description=a.description, enabled=not a.disabled,
        timeout=a.timeout, headers=_headers(a.header), user_keys=a.user_keys, user_headers=a.user_header or None,
        template=a.template, guardrails=a.guardrails,
    )  # fmt: skip
    admin = _admin(gov)
    return admin.server_view(admin.create(CLI_ACTOR, spec), CLI_ACTOR)


def update(gov: Governance, a: argparse.Namespace) -> Any:
    enabled = True if a.enable else False if a.disable else None
    spec = ServerUpdate(
        url=a.url, transport=a.transport, description=a.description, enabled=enabled, timeout=a.timeout,
        headers=_headers(a.header) if a.header or a.clear_headers else None, user_keys=a.user_keys,
        user_headers=a.user_header or None, guardrails=True if a.guardrails else False if a.no_guardrails else None,
    )  # fmt: skip
    admin = _admin(gov)
    return admin.server_view(admin.update(CLI_ACTOR, a.name, spec), CLI_ACTOR)


def remove(gov: Governance, a: argparse.Namespace) -> Any:
    return _admin(gov).delete(CLI_ACTOR, a.name)


def explore(gov: Governance, a: argparse.Namespace) -> Any:
    return asyncio.run(_admin(gov).explore(CLI_ACTOR, a.name))


def tools(gov: Governance, a: argparse.Namespace) -> Any:
    return [{k: v for k, v in t.items() if k != "input_schema" or a.json} for t in _admin(gov).tools(CLI_ACTOR, a.name)]


def whitelist(gov: Governance, a: argparse.Namespace) -> Any:
    return _admin(gov).whitelist(CLI_ACTOR, a.name, WhitelistBody(tools=a.tools, mode=a.mode))


def approve(gov: Governance, a: argparse.Namespace) -> Any:
    return _admin(gov).approve(CLI_ACTOR, a.name, a.tool)


def users(gov: Governance, a: argparse.Namespace) -> Any:
    return _admin(gov).user_statuses(CLI_ACTOR, a.name)


def rotate(gov: Governance, a: argparse.Namespace) -> Any:
    return _admin(gov).rotate(CLI_ACTOR, MasterKey.from_env(name=PREVIOUS_MASTER_KEY_ENV))


def add_commands(sub: Any) -> None:
    mcp = _group(sub, "mcp", "the MCP gateway: servers, exploration, tool whitelists")
    _command(mcp, "templates", "well-known servers: URL, transport and the headers each needs", templates)
    _command(mcp, "servers", "registered servers (header fingerprints only)", servers)
    for name, fn, help in (("add", add, "register a server"), ("update", update, "change a server")):
        p = _command(mcp, name, help, fn)
        p.add_argument("name")
        p.add_argument("--url")
        p.add_argument("--transport", choices=["streamable-http", "sse"])
        p.add_argument("--description")
        p.add_argument("--timeout", type=float, default=30.0 if name == "add" else None)
        p.add_argument("--header", action="append", default=[], help="Name:value, sealed (repeatable)")
        p.add_argument("--user-keys", choices=["required", "optional", "off"])
        p.add_argument("--user-header", action="append", default=[], help="a header users supply (repeatable)")
        p.add_argument("--guardrails", action="store_true", help="apply the guardrails to tool arguments and results")
        if name == "add":
            p.add_argument("--template", choices=sorted(TEMPLATES))
            p.add_argument("--disabled", action="store_true")
        else:
            p.add_argument("--enable", action="store_true")
            p.add_argument("--disable", action="store_true")
            p.add_argument("--clear-headers", action="store_true", help="remove every organisation-wide header")
            p.add_argument("--no-guardrails", action="store_true")
    _command(mcp, "remove", "delete a server with its tools and users' credentials", remove).add_argument("name")
    _command(mcp, "explore", "connect, list tools, show what changed", explore).add_argument("name")
    _command(mcp, "tools", "a server's tools with their state", tools).add_argument("name")
    p = _command(mcp, "whitelist", "whitelist tools of a server", whitelist)
    p.add_argument("name")
    p.add_argument("tools", nargs="+")
    p.add_argument("--mode", choices=["add", "replace", "remove"], default="add")
    p = _command(mcp, "approve", "approve a tool's current schema (a held tool)", approve)
    p.add_argument("name")
    p.add_argument("tool")
    _command(mcp, "users", "users' credential status for a server", users).add_argument("name")
    _command(mcp, "rotate", f"re-seal MCP headers under {MASTER_KEY_ENV} (old key: {PREVIOUS_MASTER_KEY_ENV})", rotate)
