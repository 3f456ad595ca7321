"""Pacing a relayed stream: backpressure from a slow client to the upstream read, and the idle timer between
upstream chunks.

granian's RSGI `send_bytes` hands the bytes to an unbounded channel and returns at once: it never waits for the
client's socket. Relaying an upstream as fast as it answers would then hold everything a slow or stalled client
has not read in the worker's memory (a client that stopped reading a 24 MB answer made the worker hold all of it).

So a stream counts what it handed to granian and, every `STEP` bytes, looks at the client's socket itself (RSGI
has no API for it: the socket is found in the process's fd table by the client's address, as the mock's fault
injection does). While the kernel's send buffer is full, granian is holding back what it has not written yet; the
stream stops reading the upstream until the client drains it. The gateway's own buffering per stream is thereby
capped at about `STEP` bytes plus one chunk (plus the kernel's socket buffer, whose unsent part TCP_NOTSENT_LOWAT
caps at `STEP` too), and the upstream is held by TCP flow control, not by the gateway's memory.

A stream under `STEP` bytes (most LLM answers: 20 chunks/s of ~200 bytes for 15 s) never looks at its socket.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
import time
from types import TracebackType

from ..errors import GatewayError

# Bytes handed to granian between two looks at the client's socket: the cap on what the gateway itself holds
# for one stream (beyond the kernel's socket buffer) when its client stops reading.
STEP = 64 * 1024
# A connection accepted after the last scan of the fd table is found by the next one: scans (one syscall per
# open fd) run at most this often, so thousands of streams crossing STEP together cost one scan, not thousands.
RESCAN_SECONDS = 0.25
# How often a stream whose client is not reading looks again (doubling from the first up to the last).
_FIRST_WAIT = 0.005
_LONGEST_WAIT = 0.1
_FD_DIR = "/proc/self/fd"
_TCP_NOTSENT_LOWAT = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
_POLLOUT = select.POLLOUT
_GONE = select.POLLERR | select.POLLHUP | select.POLLNVAL


class ClientStalled(GatewayError):
    """The client read nothing of its stream for longer than the provider's idle timeout."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The client read nothing of the stream for {seconds:g} s.", status=408, code="client_stalled")


def _peer_key(host: str, port: int) -> tuple[str, int]:
    return host.removeprefix("::ffff:"), port


def client_peer(client: str) -> tuple[str, int] | None:
    """The RSGI scope's "host:port" (IPv6 hosts in brackets or not) as a lookup key; None for a unix socket."""
    host, sep, port = client.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return _peer_key(host.strip("[]"), int(port))


def _peer_of(fd: int) -> tuple[str, int] | None:
    """The peer of the TCP socket at `fd` without taking ownership of it (the fd stays granian's)."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError:  # closed meanwhile, or not a socket
        return None
    try:
        if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        peer = sock.getpeername()
        return _peer_key(str(peer[0]), int(peer[1]))
    except OSError:
        return None
    finally:
        sock.detach()


class ClientSockets:
    """This worker's client connections by peer address, found in its fd table; one per worker (on the App)."""

    def __init__(self) -> None:
        self._fds: dict[tuple[str, int], int] = {}
        self._scanned = -RESCAN_SECONDS
        self.scans = 0

    def find(self, peer: tuple[str, int], known: int | None) -> int | None:
        """The fd of the connection from `peer` (checked, fds are reused), or None until the next scan."""
        if known is not None and _peer_of(known) == peer:
            return known
        fd = self._fds.get(peer)
        if fd is not None and _peer_of(fd) == peer:
            return fd
        now = time.monotonic()
        if now - self._scanned < RESCAN_SECONDS:
            return None
        self._scanned = now
        self.scans += 1
        found: dict[tuple[str, int], int] = {}
        try:
            names = os.listdir(_FD_DIR)
        except OSError:  # no /proc: streams go without backpressure, as granian alone would
            return None
        for name in names:
            fd = int(name)
            key = _peer_of(fd)
            if key is not None:
                found[key] = fd
        self._fds = found
        return found.get(peer)


def _limit_unsent(fd: int) -> None:
    """Make the kernel call the socket full once STEP bytes wait unsent. Without it Linux grows a stalled
    client's send buffer up to `tcp_wmem`'s maximum (4 MiB by default) before it stops taking bytes: 2 GiB of
    kernel memory for 500 stalled clients. Bytes in flight to a reading client are not limited by it."""
    sock = socket.socket(fileno=fd)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_NOTSENT_LOWAT, STEP)
    except OSError:
        pass
    finally:
        sock.detach()


def _writable(fd: int) -> bool | None:
    """Whether the kernel takes more bytes for this socket; None when the connection is gone."""
    poller = select.poll()
    poller.register(fd, _POLLOUT)
    events = poller.poll(0)
    if not events:
        return False
    mask = events[0][1]
    if mask & _GONE:
        return None
    return bool(mask & _POLLOUT)


class ClientWindow:
    """One stream's view of its client's socket. `unchecked` counts bytes handed to granian since the last
    look; the relay adds to it and awaits `drain()` once it reaches STEP (an add and a compare per chunk)."""

    __slots__ = ("_fd", "_lowat_set", "_peer", "_sockets", "unchecked")

    def __init__(self, sockets: ClientSockets | None, client: str) -> None:
        self._sockets = sockets
        self._peer = client_peer(client) if sockets is not None else None
        self._fd: int | None = None
        self._lowat_set = False
        self.unchecked = 0

    async def drain(self, patience: float, timer: IdleTimer) -> None:
        """Return once the client's socket takes bytes again; ClientStalled after `patience` s without. The
        upstream's idle timer stops meanwhile: waiting on the client is not the upstream's silence."""
        timer.pause()
        try:
            await self._drain(patience)
        finally:
            timer.restart()

    async def _drain(self, patience: float) -> None:
        self.unchecked = 0
        if self._peer is None or self._sockets is None:
            return
        fd = self._fd = self._sockets.find(self._peer, self._fd)
        if fd is None:
            # Not found yet (accepted after the last scan): look again after a quarter step.
            self.unchecked = STEP - STEP // 4
            return
        if not self._lowat_set:
            _limit_unsent(fd)
            self._lowat_set = True
        writable = _writable(fd)
        if writable is not False:
            return  # room in the kernel's buffer, or the connection is gone (the disconnect watch cancels us)
        started = time.monotonic()
        wait = _FIRST_WAIT
        while True:
            await asyncio.sleep(wait)
            if self._sockets.find(self._peer, fd) != fd or _writable(fd) is not False:
                return
            if time.monotonic() - started > patience:
                raise ClientStalled(patience)
            wait = min(wait * 2, _LONGEST_WAIT)


class IdleTimer:
    """The upstream's idle timeout between chunks (`idle_read`): `async with IdleTimer(idle) as timer:` around the
    relay, which adds one to `timer.chunks` per chunk; the block raises TimeoutError once no chunk came for `idle`.

    Moving a deadline costs a timer handle (~1-2 µs), and even reading the clock per chunk costs a call; a stream
    at 20 chunks/s would pay either on every chunk for a deadline that only matters when the upstream goes silent.
    Instead a check runs every eighth of the timeout and looks whether the count moved: after eight checks in a
    row without a chunk the block's deadline is set to now. It fires between `idle` and `idle * 9/8` seconds after
    the last chunk, never sooner, for an attribute add per chunk and one timer callback per eighth of the timeout
    per stream."""

    __slots__ = ("_handle", "_loop", "_period", "_quiet", "_seen", "_timeout", "chunks")

    def __init__(self, idle: float) -> None:
        self._period = idle / 8
        self._loop = asyncio.get_running_loop()
        self._timeout = asyncio.timeout(None)
        self._handle: asyncio.TimerHandle | None = None
        self._seen = self._quiet = self.chunks = 0

    async def __aenter__(self) -> IdleTimer:
        await self._timeout.__aenter__()
        self.restart()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.pause()
        await self._timeout.__aexit__(kind, exc, tb)  # raises TimeoutError if the check ended the block

    def _check(self) -> None:
        if self.chunks != self._seen:
            self._seen = self.chunks
            self._quiet = 0
        else:
            self._quiet += 1
            if self._quiet >= 8:
                self._handle = None
                self._timeout.reschedule(self._loop.time())  # the block ends with TimeoutError
                return
        self._handle = self._loop.call_later(self._period, self._check)

    def pause(self) -> None:
        """Stop counting the upstream's silence (while the relay waits on the client)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def restart(self) -> None:
        """Count the upstream's silence from now."""
        self.pause()
        self._seen = self.chunks
        self._quiet = 0
        self._handle = self._loop.call_later(self._period, self._check)
