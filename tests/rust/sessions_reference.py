"""The session index in pure Python: the same units, byte stream, probes and LRU as `router._core.SessionIndex`
(rust/src/sessions), the baseline of benches/test_sessions_bench.py. Chat messages only (string or text-part
content, tool calls and tool results), which is what the benchmark sends."""

from __future__ import annotations

import itertools
from collections import OrderedDict

import msgspec
import xxhash

_ROLES = {"system": b"s", "developer": b"s", "user": b"u", "assistant": b"a", "tool": b"t", "function": b"t"}
END = b"\xff"


class PySessionIndex:
    def __init__(self, max_entries: int, ttl_seconds: float, prefix: str) -> None:
        self.states: OrderedDict[int, list] = OrderedDict()
        self.max, self.ttl, self.prefix = max_entries, ttl_seconds, prefix
        self.next = itertools.count(1).__next__

    def _get(self, key: int, now: float) -> list | None:
        node = self.states.get(key)
        if node is None:
            return None
        if now - node[4] > self.ttl:
            del self.states[key]
            return None
        node[4] = now
        self.states.move_to_end(key)
        return node

    def _units(self, key: str, user: str | None, items: bytes) -> list[tuple[bytes, int]]:
        hasher = xxhash.xxh3_64()
        for part in (key.encode(), (user or "").encode()):
            hasher.update(part)
            hasher.update(END)
        units: list[tuple[bytes, int]] = []
        open_role = b""
        for message in msgspec.json.decode(items):
            role = _ROLES.get(message.get("role"), b"x")
            if role != open_role:
                if open_role:
                    units.append((open_role, hasher.intdigest()))
                open_role = role
                hasher.update(role + b"\xfe")
            content = message.get("content")
            texts = [content] if isinstance(content, str) else [p.get("text") for p in content or ()]
            ids = [c["id"] for c in message.get("tool_calls") or ()]
            if message.get("tool_call_id"):
                ids.append(message["tool_call_id"])
            for tag, values in ((b"T", texts), (b"C", ids)):
                for value in values:
                    if value:
                        hasher.update(tag + value.encode() + END)
        if open_role:
            units.append((open_role, hasher.intdigest()))
        return units

    def place(self, key: str, user: str | None, items: bytes, request_id: str, now: float) -> tuple[str, int]:
        units = self._units(key, user, items)
        full = units[-1][1]
        parent = None
        last = next((i for i in range(len(units) - 2, -1, -1) if units[i][0] == b"a"), None)
        if last is not None:
            for i in (last, last - 1):
                if i >= 0 and (parent := self._get(units[i][1], now)) is not None:
                    break
        if parent is None:
            session, branch = f"{self.prefix}{self.next():08x}", 0
        else:
            session, branch = parent[0], parent[1]
            if parent[3] == 0:
                parent[3] = full
            elif parent[3] != full:
                branch = 1  # (the Rust index numbers forks per session; the benchmark never forks)
        self.states[full] = [session, branch, request_id, 0, now]
        self.states.move_to_end(full)
        while len(self.states) > self.max:
            self.states.popitem(last=False)
        return session, branch
