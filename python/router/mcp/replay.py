"""Resumable event streams of the Streamable HTTP endpoint (`Last-Event-ID`).

Every SSE stream the endpoint opens (the GET stream, and the SSE answer of a `tools/call` with a progress
token) is a replay buffer in the store: each event is appended before it is sent, and its SSE id is
`<stream>-<seq>` (`seq` is unique across all streams, so ids are unique within a session). A client that
lost the connection sends GET with `Last-Event-ID` and gets the events after that id on that stream, and
then the stream goes on: a GET stream carries on as one; a tools/call stream delivers the rest of the call
(which kept running: a disconnection is not a cancellation) up to its response, then ends. The buffer is in
the database, so a reconnection served by another worker replays it too.

Bounds: a stream keeps its newest `MAX_EVENTS` events; events expire `TTL` seconds after they were written;
a worker tracks at most `MAX_TRACKED` streams for expiry (the oldest are dropped first). A `Last-Event-ID`
that is malformed, of another session, or whose stream has expired, opens a fresh stream (the spec lets a
server decline to replay).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from ..store import Store

TTL = 300.0
MAX_EVENTS = 512
MAX_TRACKED = 4096
# The end of a tools/call stream; an empty payload is a priming event (an id and no message).
END = b"end"
_EVENT_ID = re.compile(r"([pg][0-9a-f]{16})-([0-9]{1,18})")


class Stream:
    __slots__ = ("id", "key", "kind")

    def __init__(self, session: bytes, stream_id: str) -> None:
        self.id = stream_id
        self.kind = "call" if stream_id[0] == "p" else "listen"
        self.key = hashlib.sha256(b"mcp-events\0" + session + stream_id.encode()).digest()

    def frame(self, seq: int, payload: bytes) -> bytes:
        if not payload:  # priming: the client learns an id to resume from, and how soon to retry
            return f"id: {self.id}-{seq}\nretry: 1000\ndata: \n\n".encode()
        return f"id: {self.id}-{seq}\nevent: message\ndata: ".encode() + payload + b"\n\n"


class Replay:
    """This worker's side of the replay buffers: appends, wakes local readers, expires what it wrote."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._tracked: OrderedDict[bytes, float] = OrderedDict()  # stream key -> last write
        self._counts: dict[bytes, int] = {}
        self._wake: dict[bytes, set[asyncio.Event]] = {}  # readers in this worker waiting for a stream

    def open(self, session: bytes, kind: str) -> Stream:
        return Stream(session, ("p" if kind == "call" else "g") + secrets.token_hex(8))

    def push(self, stream: Stream, payload: bytes) -> int:
        now = self.clock()
        seq = self.store.push_mcp_event(stream.key, payload, now)
        count = self._counts.get(stream.key, 0) + 1
        if count > MAX_EVENTS + MAX_EVENTS // 8:  # trimmed in steps, not on every event
            self.store.trim_mcp_events(stream.key, MAX_EVENTS)
            count = MAX_EVENTS
        self._counts[stream.key] = count
        self._tracked[stream.key] = now
        self._tracked.move_to_end(stream.key)
        while len(self._tracked) > MAX_TRACKED:
            old, _ = self._tracked.popitem(last=False)
            self._counts.pop(old, None)
            self.store.expire_mcp_events(old, float("inf"))
        for reader in self._wake.get(stream.key, ()):
            reader.set()
        return seq

    def resume(self, session: bytes, last_event_id: str) -> tuple[Stream, int] | None:
        """The stream a `Last-Event-ID` names within this session and the sequence to replay after, if held."""
        found = _EVENT_ID.fullmatch(last_event_id.strip())
        if found is None:
            return None
        stream = Stream(session, found.group(1))
        if not self.store.mcp_stream_known(stream.key):
            return None
        return stream, int(found.group(2))

    def events_after(self, stream: Stream, after: int) -> list[tuple[int, bytes]]:
        return self.store.mcp_events_after(stream.key, after)

    async def wait(self, stream: Stream, poll: float) -> None:
        """Until this worker appends to the stream, or `poll` seconds (another worker's appends are polled)."""
        event = asyncio.Event()
        readers = self._wake.setdefault(stream.key, set())
        readers.add(event)
        try:
            async with asyncio.timeout(poll):
                await event.wait()
        except TimeoutError:
            pass
        finally:
            readers.discard(event)
            if not readers:
                self._wake.pop(stream.key, None)

    def sweep(self) -> None:
        """Drop events older than TTL from the streams this worker wrote to."""
        cutoff = self.clock() - TTL
        for key, last in list(self._tracked.items()):
            self.store.expire_mcp_events(key, cutoff)
            if last < cutoff:
                del self._tracked[key]
                self._counts.pop(key, None)
