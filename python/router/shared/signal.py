"""The change epoch shared by replicas on several hosts: a Redis counter, bumped and published on every change.

Readers must stay as cheap as the memory-mapped counter they replace (`store.signal.ChangeSignal`): `read()`
returns a number held in this process, never a network call. A daemon thread subscribed to the channel moves
it when any replica publishes a change. Pub/sub rather than a stream: a subscriber needs only "something
changed", never the history (a reload rereads everything), so a missed message is repaired by a reload
rather than a replay; it costs no memory in Redis; and it needs no PostgreSQL, which the SQLite deployments
do not have.

Missed messages (Redis restarted, the connection dropped): the thread also reads the counter itself every
`check_interval` (1 s by default); a number that differs from the last one seen means a gap, and the local
number moves (caches reload). Every reconnection moves it too, since anything may have happened meanwhile.
So a worker serves a stale permission for at most about `check_interval` after it can reach Redis again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING

from ..config import RedisConfig
from .settings import PREFIX, safe_url, sync_client

if TYPE_CHECKING:
    import redis

log = logging.getLogger("router.shared")

EPOCH = PREFIX + "epoch"
CHANNEL = PREFIX + "changes"
# INCR and PUBLISH in one step, so the published number is the counter's.
_BUMP = "local n = redis.call('INCR', KEYS[1]) redis.call('PUBLISH', ARGV[1], n) return n"
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)


class RedisSignal:
    """Same interface as `store.signal.ChangeSignal`: `read()` (local, cheap), `bump()`, `close()`."""

    def __init__(self, settings: RedisConfig) -> None:
        self._settings = settings
        self._client: redis.Redis = sync_client(settings)
        self._bump = self._client.register_script(_BUMP)
        # What readers see: moves on every change seen, gap found or reconnection.
        self._value = 0
        # The shared counter's last value seen (None: not connected yet).
        self._remote: int | None = None
        self._lock = threading.Lock()
        self._pending = False  # a bump that could not be published: published on reconnection
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.gaps = 0  # reloads caused by a gap or a reconnection, not by a message

    def read(self) -> int:
        return self._value

    def bump(self) -> None:
        # This process sees its own change at once, whatever Redis does.
        with self._lock:
            self._value += 1
        try:
            number = int(self._bump(keys=[EPOCH], args=[CHANNEL]))
        except Exception as exc:  # redis.RedisError, OSError
            self._pending = True
            log.warning("could not publish a change to Redis (%s): retried on reconnection", type(exc).__name__)
            return
        self._observe(number, own=True)

    def start(self) -> None:
        """Subscribe (in a daemon thread). Only processes that serve requests need to; the CLI only bumps."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="router-redis-signal", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self._client.close()

    def _observe(self, number: int, own: bool = False, polled: bool = False) -> None:
        """A value of the shared counter: from a message, our own bump, or the periodic read (`polled`: any
        change found that way is one whose message never came)."""
        with self._lock:
            if number == self._remote:
                return
            if self._remote is None:  # the first number seen: the caches were loaded after it, nothing to do
                self._remote = number
                return
            in_sequence = number == self._remote + 1
            self._remote = number
            if own:
                return
            self._value += 1
            if polled or not in_sequence:
                self.gaps += 1

    def _moved(self) -> None:
        with self._lock:
            self._value += 1
            self.gaps += 1

    def _listen(self) -> None:
        failures = 0
        interval = self._settings.check_interval
        while not self._stop.is_set():
            pubsub = client = None
            try:
                # A connection of its own with no read timeout: it waits for messages.
                client = sync_client(self._settings)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                if self._pending:
                    self._pending = False
                    self._observe(int(self._bump(keys=[EPOCH], args=[CHANNEL])))
                # Read after subscribing: a change published in between is seen either way.
                self._observe(int(client.get(EPOCH) or 0))
                if failures:
                    self._moved()  # anything may have changed while disconnected
                    log.warning("Redis %s reachable again", safe_url(self._settings.url))
                failures = 0
                self.connected = True
                next_check = time.monotonic() + interval
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=max(next_check - time.monotonic(), 0.0))
                    if message is not None and message.get("type") == "message":
                        self._observe(int(message["data"]))
                    if time.monotonic() >= next_check:
                        self._observe(int(client.get(EPOCH) or 0), polled=True)
                        next_check = time.monotonic() + interval
            except Exception as exc:
                if self._stop.is_set():
                    break
                if self.connected or not failures:
                    log.warning("Redis %s unreachable (%s); retrying", safe_url(self._settings.url), exc)
                self.connected = False
                self._stop.wait(_BACKOFF[min(failures, len(_BACKOFF) - 1)])
                failures += 1
            finally:
                for closing in (pubsub, client):
                    if closing is not None:
                        with contextlib.suppress(Exception):
                            closing.close()
