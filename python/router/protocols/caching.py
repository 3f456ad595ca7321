"""``requesty.auto_cache``: Anthropic prompt-cache breakpoints the client did not place itself.

Whether a request gets them is decided by the first level that says: the request's own flag, its key's
setting, the organisation's setting (management API), the config file's ``caching.auto_cache``.

With ``{"requesty": {"auto_cache": true}}`` on a request to an Anthropic upstream, a long system prompt and the
conversation so far (the last block of the last message) get ``cache_control: {"type": "ephemeral"}``, so
the next turn reads them from the cache. ``false`` (or no flag) never adds breakpoints; the client's own are
always kept. OpenAI upstreams cache prefixes by themselves, so nothing is done for them. The ``requesty``
object is ours and is never forwarded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store import KeyRecord, Store

# Anthropic does not cache prompts shorter than 1,024 tokens (about 4 characters each).
MIN_CACHEABLE_CHARS = 4096
# Anthropic allows at most four breakpoints per request.
MAX_BREAKPOINTS = 4
EPHEMERAL = {"type": "ephemeral"}


class Defaults:
    """The default for requests that do not say: the key's setting, else the organisation's (stored, re-read
    only when a governance change bumps the epoch), else the config file's."""

    def __init__(self, store: Store, configured: bool) -> None:
        self._store = store
        self._configured = configured
        self._epoch = -1
        self._org = configured

    def org(self) -> bool:
        epoch = self._store.keys_epoch()
        if epoch != self._epoch:
            stored = self._store.org_auto_cache()
            self._org = self._configured if stored is None else stored
            self._epoch = epoch
        return self._org

    def resolve(self, asked: bool | None, key: KeyRecord | None) -> bool:
        """Request (`asked`: its `requesty.auto_cache`, None when it did not say) > key > organisation > config."""
        if asked is not None:
            return asked
        if key is not None and key.auto_cache is not None:
            return key.auto_cache
        return self.org()


def _blocks(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _chars(blocks: list[dict[str, Any]]) -> int:
    return sum(len(b.get("text") or "") for b in blocks if isinstance(b, dict))


def add_breakpoints(body: dict[str, Any]) -> None:
    """Mark the system prompt and the conversation prefix of an Anthropic request body as cacheable."""
    system = body.get("system")
    messages = body.get("messages") or []
    placed = sum(1 for b in _blocks(system or []) if "cache_control" in b)
    placed += sum(1 for m in messages for b in _blocks(m.get("content") or []) if "cache_control" in b)
    system_blocks = _blocks(system) if system else []
    total = _chars(system_blocks) + sum(_chars(_blocks(m.get("content") or [])) for m in messages)
    if total < MIN_CACHEABLE_CHARS:
        return
    if system_blocks and _chars(system_blocks) >= MIN_CACHEABLE_CHARS and placed < MAX_BREAKPOINTS:
        last = system_blocks[-1]
        if "cache_control" not in last:
            system_blocks[-1] = {**last, "cache_control": EPHEMERAL}
            body["system"] = system_blocks
            placed += 1
    if messages and placed < MAX_BREAKPOINTS:
        message = messages[-1]
        blocks = _blocks(message.get("content") or [])
        if (
            blocks
            and "cache_control" not in blocks[-1]
            and blocks[-1].get("type") not in ("thinking", "redacted_thinking")
        ):
            blocks[-1] = {**blocks[-1], "cache_control": EPHEMERAL}
            message["content"] = blocks
