"""Tool names as the gateway's clients see them: `<server>__<tool>`, unique and at most 64 characters.

Server names are lowercase letters, digits and `-` (no `_`), so the first `__` always ends the server part.
Clients cap tool names at 64 characters of `[A-Za-z0-9_-]` (Claude's and OpenAI's tool-name rules), while
MCP allows 128 characters and `.` in upstream names. A name that fits is used as is; otherwise characters
outside the set become `_`, the name is cut to leave room, and `_` + the first 8 hex digits of the SHA-256 of
`<server>/<tool>` are appended, so two long or rewritten names never collide. The mapping back to the upstream
tool is a lookup in the gateway's table, never a parse, so a rewritten name still reaches the right tool.
"""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 64
SEPARATOR = "__"
SERVER_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_CLIENT_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_UNSAFE_CHAR = re.compile(r"[^A-Za-z0-9_-]")
_HASH_CHARS = 8


def exposed_name(server: str, tool: str) -> str:
    name = f"{server}{SEPARATOR}{tool}"
    if len(name) <= MAX_NAME and _CLIENT_SAFE.match(tool):
        return name
    digest = hashlib.sha256(f"{server}/{tool}".encode()).hexdigest()[:_HASH_CHARS]
    safe = _UNSAFE_CHAR.sub("_", name)
    return f"{safe[: MAX_NAME - _HASH_CHARS - 1]}_{digest}"
