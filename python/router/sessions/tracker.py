"""Which session each request belongs to, found by the Rust session index (`router._core.SessionIndex`).

The handlers call three hooks: `capture` keeps references to the conversation as the client sent it (before
the prompt library or the guardrails change anything), `place` puts the request in a session once its metadata
(explicit session id, end user) is known, and `finish` records the state after the answer when the answer
completed (so the next turn is matched against the earlier messages plus that answer).
"""

from __future__ import annotations

import os
import re
import time
from typing import TYPE_CHECKING

import msgspec

from .._core import SessionIndex

if TYPE_CHECKING:
    from ..config import SessionsConfig
    from ..server.exchange import Exchange
    from ..server.requests import Metadata

# Per endpoint: the field holding the conversation, and the one holding a system prompt kept apart from it.
_FIELDS = {
    "chat": ("messages", None),
    "messages": ("messages", "system"),
    "responses": ("input", "instructions"),
}
# A streamed Responses answer opens with `response.created`, which names the response.
_RESPONSE_ID = re.compile(rb'"response"\s*:\s*\{\s*"id"\s*:\s*"(resp_[A-Za-z0-9_\-]{1,200})"')


class Sessions:
    def __init__(self, config: SessionsConfig) -> None:
        self.enabled = config.enabled
        # A per-process prefix, like request ids: ids from several workers and restarts never collide.
        self.index = SessionIndex(config.max_entries, config.ttl_seconds, "ses_" + os.urandom(6).hex())

    def capture(self, ex: Exchange, fields: dict[str, msgspec.Raw]) -> None:
        where = _FIELDS.get(ex.endpoint)
        if where is None or not self.enabled:
            return
        items, system = where
        previous = fields.get("previous_response_id") if ex.endpoint == "responses" else None
        ex.conversation = (fields.get(items), fields.get(system) if system else None, previous)

    def place(self, ex: Exchange, metadata: Metadata | None) -> None:
        conversation = ex.conversation
        if conversation is None:
            return
        # Views into the client's body: read once here, not held for a stream's length.
        ex.conversation = None
        items, system, previous_raw = conversation
        explicit = user = previous = None
        if metadata is not None:
            explicit = metadata.session_id or metadata.trace_id
            user = metadata.user_id
        if previous_raw is not None:
            try:
                previous = msgspec.json.decode(previous_raw, type=str | None)
            except (msgspec.ValidationError, msgspec.DecodeError):
                previous = None
        ex.turn = self.index.place(
            ex.endpoint, ex.key_id or "", user or ex.end_user, system, items, ex.request_id, explicit, previous,
            time.monotonic(),
        )  # fmt: skip

    def finish(self, ex: Exchange) -> None:
        """After the request: the state with its answer, when the answer completed."""
        turn, answer = ex.turn, ex.answer
        if turn is None or answer is None or ex.status != 200 or ex.error_type is not None:
            return
        if not ex.stream:
            self.index.answered(turn, answer, time.monotonic())
        elif ex.endpoint == "responses" and (found := _RESPONSE_ID.search(answer)) is not None:
            self.index.response_id(turn, found.group(1).decode(), time.monotonic())
