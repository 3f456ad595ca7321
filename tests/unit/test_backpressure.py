"""A stream's view of its client's socket, on real loopback sockets: found by the client's address, full while
the client reads nothing, free again once it reads; a client that never reads is given up on. And the upstream's
idle timer: it ends a silent relay, never one that keeps sending, never while paused."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from router.server.backpressure import STEP, ClientSockets, ClientStalled, ClientWindow, IdleTimer, client_peer


class Timer:
    """Records what the relay's idle timer is told."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")

    def restart(self) -> None:
        self.calls.append("restart")


@pytest.fixture
def connection() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(the gateway's side, the client's side) of one loopback TCP connection; the client reads nothing."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(listener.getsockname())
        served, _ = listener.accept()
    served.setblocking(False)
    yield served, client
    served.close()
    client.close()


def _fill(sock: socket.socket) -> int:
    sent = 0
    while True:
        try:
            sent += sock.send(b"x" * 65536)
        except BlockingIOError:
            return sent


def _address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def test_client_addresses_parse() -> None:
    assert client_peer("127.0.0.1:5678") == ("127.0.0.1", 5678)
    assert client_peer("[::1]:5678") == ("::1", 5678)
    assert client_peer("::ffff:10.0.0.1:80") == ("10.0.0.1", 80)
    assert client_peer("unix-socket") is None


def test_a_full_socket_holds_the_stream_until_the_client_reads(connection) -> None:
    served, client = connection

    async def scenario() -> None:
        window = ClientWindow(ClientSockets(), _address(client))
        timer = Timer()
        await window.drain(5, timer)  # an empty socket: nothing to wait for (and TCP_NOTSENT_LOWAT is set now)
        assert served.getsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT) == STEP
        sent = _fill(served)
        # The kernel stops taking bytes after about STEP unsent plus what the client's window took, not MiBs.
        assert sent < 8 * STEP
        waiting = asyncio.create_task(window.drain(5, timer))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # held while the client reads nothing
        received = 0
        client.setblocking(False)
        while received < sent:
            try:
                received += len(client.recv(1 << 20))
            except BlockingIOError:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(waiting, 5)
        # The upstream's idle timer stops while the client is waited on, and starts again after.
        assert timer.calls == ["pause", "restart", "pause", "restart"]

    asyncio.run(scenario())


def test_a_client_that_never_reads_is_given_up_on(connection) -> None:
    served, client = connection

    async def scenario() -> None:
        window = ClientWindow(ClientSockets(), _address(client))
        await window.drain(5, Timer())
        _fill(served)
        with pytest.raises(ClientStalled) as stalled:
            await window.drain(0.3, Timer())
        assert stalled.value.code == "client_stalled"

    asyncio.run(scenario())


def test_unknown_clients_and_closed_sockets_never_block(connection) -> None:
    served, client = connection

    async def scenario() -> None:
        # A client this process has no socket for (another worker's, or gone): the stream goes on.
        stranger = ClientWindow(ClientSockets(), "127.0.0.1:1")
        await asyncio.wait_for(stranger.drain(5, Timer()), 1)
        assert stranger.unchecked > 0  # looked for again after a quarter step, not on every chunk
        window = ClientWindow(ClientSockets(), _address(client))
        await window.drain(5, Timer())
        _fill(served)
        client.close()  # the client goes away: its socket reports the hang-up, the stream is not held
        await asyncio.sleep(0.1)
        await asyncio.wait_for(window.drain(5, Timer()), 2)

    asyncio.run(scenario())


IDLE = 0.2


def test_a_silent_upstream_ends_the_block_no_sooner_than_the_idle_timeout() -> None:
    async def silent() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            async with IdleTimer(IDLE) as timer:
                timer.chunks += 1
                await asyncio.sleep(IDLE / 2)
                timer.chunks += 1  # the last chunk
                last = loop.time()
                await asyncio.sleep(60)
        assert loop.time() - started < 30  # ended by the timer, not by the sleep
        return loop.time() - last

    assert asyncio.run(silent()) >= IDLE


def test_chunks_keep_the_block_alive_and_a_pause_stops_the_count() -> None:
    async def relay() -> str:
        async with IdleTimer(IDLE) as timer:
            for _ in range(12):  # three times the timeout, a chunk every quarter of it
                await asyncio.sleep(IDLE / 4)
                timer.chunks += 1
            timer.pause()  # waiting on the client is not the upstream's silence
            await asyncio.sleep(IDLE * 2)
            timer.restart()
            await asyncio.sleep(IDLE / 2)
        return "done"

    assert asyncio.run(relay()) == "done"


def test_the_timer_stops_with_its_block() -> None:
    async def relay() -> None:
        async with IdleTimer(IDLE):
            pass
        await asyncio.sleep(IDLE * 2)  # no check may run on the finished block (it would raise in the loop)

    loop = asyncio.new_event_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        loop.run_until_complete(relay())
    finally:
        loop.close()
    assert errors == []
