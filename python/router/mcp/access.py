"""Which MCP servers and tools a key may use: access-list entries `mcp:<server>`, `mcp:<server>/<tool>` and
`mcp:*`, allowed in an access list's `mcp` field and denied in its `deny` field (denies win within a list).

The layers are the models' (see `governance/resolve.py`): the key's own access list if it has one, otherwise
the union of its groups' and its owner's groups' lists. MCP is open (every enabled server's whitelisted tools)
until any access list in the organisation carries an MCP entry; from then on it is deny by default: a key
reaches only what its layer grants. The bootstrap admin key reaches everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import msgspec

from ..store.records import Rules

PREFIX = "mcp:"
ALL = "mcp:*"
_ENTRY = re.compile(r"^mcp:(\*|[a-z0-9][a-z0-9-]{0,31}(/[A-Za-z0-9_.-]{1,128})?)$")


def entry_error(entry: str) -> str | None:
    """Why `entry` is not an MCP entry, or None if it is one."""
    if not _ENTRY.match(entry):
        return "must be 'mcp:*', 'mcp:<server>' or 'mcp:<server>/<tool>'"
    return None


def is_mcp(entry: str) -> bool:
    return entry.startswith(PREFIX)


def restricted(rules: Iterable[Rules]) -> bool:
    """True once any access list says anything about MCP: the switch from open to deny by default."""
    return any(r.mcp or any(is_mcp(d) for d in r.deny) for r in rules)


class _ListGrant(msgspec.Struct, frozen=True):
    all: bool
    servers: frozenset[str]
    tools: frozenset[str]
    deny_servers: frozenset[str]
    deny_tools: frozenset[str]

    def permits(self, server: str, tool: str | None) -> bool:
        if server in self.deny_servers or (tool is not None and f"{server}/{tool}" in self.deny_tools):
            return False
        if self.all or server in self.servers:
            return True
        if tool is None:  # the server is visible when any of its tools is granted
            return any(t.startswith(server + "/") for t in self.tools)
        return f"{server}/{tool}" in self.tools


def _list_grant(rules: Rules) -> _ListGrant:
    allows = [e[len(PREFIX) :] for e in rules.mcp]
    denies = [e[len(PREFIX) :] for e in rules.deny if is_mcp(e)]
    return _ListGrant(
        "*" in allows,
        frozenset(a for a in allows if "/" not in a and a != "*"),
        frozenset(a for a in allows if "/" in a),
        frozenset(d for d in denies if "/" not in d and d != "*") | ({"*"} if "*" in denies else set()),
        frozenset(d for d in denies if "/" in d),
    )


class McpGrant(msgspec.Struct, frozen=True):
    """A key's MCP reach: everything (`lists` None), or the union of what its layer's lists permit."""

    lists: tuple[_ListGrant, ...] | None

    def permits(self, server: str, tool: str | None = None) -> bool:
        if self.lists is None:
            return True
        return any("*" not in g.deny_servers and g.permits(server, tool) for g in self.lists)


EVERYTHING = McpGrant(None)
NOTHING = McpGrant(())


def grant_for(layer: list[Rules] | None, org_restricted: bool) -> McpGrant:
    """`layer`: the rules of the key's winning layer (its own list, else its groups' lists); None for the
    bootstrap admin."""
    if layer is None or not org_restricted:
        return EVERYTHING
    return McpGrant(tuple(_list_grant(r) for r in layer))
