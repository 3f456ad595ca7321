"""The stream relay's per-chunk Python work, side by side. The upstream's idle timer: moved on every chunk, moved
once per eighth of the timeout after a clock read per chunk, and counted (an attribute add per chunk, checked by a
callback every eighth of the timeout: `IdleTimer`), all with the slow-client accounting of `ClientWindow`. And the
relay resumed through the handler's chain of awaiting coroutines (baseline) against the relay in a task of its own.

A realistic OpenAI stream (one ~190-byte `chat.completion.chunk` per upstream read, as a model at 20 tokens/s
sends them) through the real `StreamTap` on uvloop; granian's transport is an in-memory stand-in. In the timer
group the reader never suspends either, so what is timed is the loop body of `server/proxy.py`. In the resume
group the reader suspends on every chunk, as pyreqwest's does when the upstream has sent nothing more yet (a future
the event loop resolves), so each chunk resumes the relay from the event loop.
Run: `pytest benches/test_relay_bench.py --benchmark-only`.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import uvloop

from router._core import StreamTap
from router.server.backpressure import STEP, ClientWindow, IdleTimer

N = 2000
IDLE = 60.0
CHUNKS = [
    b"data: "
    + json.dumps(
        {"id": f"chatcmpl-{i}", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o",
         "choices": [{"index": 0, "delta": {"content": " token"}, "logprobs": None, "finish_reason": None}]},
        separators=(",", ":"),
    ).encode()
    + b"\n\n"
    for i in range(N)
] + [b'data: {"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
     b"data: [DONE]\n\n"]  # fmt: skip


class Reader:
    def __init__(self) -> None:
        self._chunks = iter(CHUNKS)

    async def read_chunk(self) -> bytes | None:
        return next(self._chunks, None)


class Transport:
    def __init__(self) -> None:
        self.sent = 0

    async def send_bytes(self, data: bytes) -> None:
        self.sent += len(data)


async def relay_baseline() -> int:
    loop = asyncio.get_running_loop()
    tap, reader, transport = StreamTap(strip_usage_chunk=False), Reader(), Transport()
    window = ClientWindow(None, "127.0.0.1:1")
    async with asyncio.timeout(IDLE) as deadline:
        while (chunk := await reader.read_chunk()) is not None:
            out = tap.feed(bytes(chunk))
            if out:
                await transport.send_bytes(out)
                window.unchecked += len(out)
                if window.unchecked >= STEP:
                    window.unchecked = 0
            deadline.reschedule(loop.time() + IDLE)
    return tap.data_events


class ClockTimer:
    """The deadline moved once per eighth of the timeout, after a clock read and a compare per chunk."""

    __slots__ = ("_deadline", "_idle", "_renew_at", "_slack", "_time")

    def __init__(self, deadline: asyncio.Timeout, idle: float) -> None:
        self._deadline = deadline
        self._idle = idle
        self._slack = idle / 8
        self._time = asyncio.get_running_loop().time
        self._renew_at = self._time()

    def chunk(self) -> None:
        now = self._time()
        if now > self._renew_at:
            self._deadline.reschedule(now + self._idle + self._slack)
            self._renew_at = now + self._slack


async def relay_clock_timer() -> int:
    tap, reader, transport = StreamTap(strip_usage_chunk=False), Reader(), Transport()
    window = ClientWindow(None, "127.0.0.1:1")
    async with asyncio.timeout(IDLE) as deadline:
        timer = ClockTimer(deadline, IDLE)
        while (chunk := await reader.read_chunk()) is not None:
            out = tap.feed(bytes(chunk))
            if out:
                await transport.send_bytes(out)
                window.unchecked += len(out)
                if window.unchecked >= STEP:
                    window.unchecked = 0
            timer.chunk()
    return tap.data_events


async def relay_idle_timer() -> int:
    tap, reader, transport = StreamTap(strip_usage_chunk=False), Reader(), Transport()
    window = ClientWindow(None, "127.0.0.1:1")
    async with IdleTimer(IDLE) as timer:
        while (chunk := await reader.read_chunk()) is not None:
            out = tap.feed(bytes(chunk))
            if out:
                await transport.send_bytes(out)
                window.unchecked += len(out)
                if window.unchecked >= STEP:
                    window.unchecked = 0
            timer.chunks += 1
    return tap.data_events


@pytest.fixture(scope="module")
def runner():
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        yield r


@pytest.mark.benchmark(group="relay-per-chunk")
def test_relay_timer_moved_every_chunk(benchmark, runner) -> None:
    assert benchmark(lambda: runner.run(relay_baseline())) == N + 1


@pytest.mark.benchmark(group="relay-per-chunk")
def test_relay_timer_moved_after_a_clock_read(benchmark, runner) -> None:
    assert benchmark(lambda: runner.run(relay_clock_timer())) == N + 1


@pytest.mark.benchmark(group="relay-per-chunk")
def test_relay_idle_timer_counted(benchmark, runner) -> None:
    assert benchmark(lambda: runner.run(relay_idle_timer())) == N + 1


class SuspendingReader:
    """Each read suspends the relay until the event loop's next iteration, as an upstream read does when the next
    chunk has not arrived yet (pyreqwest's waker resolves a future through the loop)."""

    def __init__(self) -> None:
        self._chunks = iter(CHUNKS)
        self._loop = asyncio.get_running_loop()

    def read_chunk(self) -> asyncio.Future[bytes | None]:
        future = self._loop.create_future()
        self._loop.call_soon(future.set_result, next(self._chunks, None))
        return future


# The coroutines awaiting the relay in the gateway: the RSGI entry, its runner, the handler, routing (run, direct),
# the pricing and the call closures.
DEPTH = 7


async def relay(reader: SuspendingReader) -> int:
    tap, transport = StreamTap(strip_usage_chunk=False), Transport()
    window = ClientWindow(None, "127.0.0.1:1")
    async with IdleTimer(IDLE) as timer:
        while (chunk := await reader.read_chunk()) is not None:
            out = tap.feed(bytes(chunk))
            if out:
                await transport.send_bytes(out)
                window.unchecked += len(out)
                if window.unchecked >= STEP:
                    window.unchecked = 0
            timer.chunks += 1
    return tap.data_events


async def nested(depth: int, own_task: bool) -> int:
    if depth:
        return await nested(depth - 1, own_task)
    if own_task:
        return await asyncio.create_task(relay(SuspendingReader()))
    return await relay(SuspendingReader())


@pytest.mark.benchmark(group="relay-resume")
def test_relay_resumed_through_the_handler_chain(benchmark, runner) -> None:
    assert benchmark(lambda: runner.run(nested(DEPTH, own_task=False))) == N + 1


@pytest.mark.benchmark(group="relay-resume")
def test_relay_in_its_own_task(benchmark, runner) -> None:
    assert benchmark(lambda: runner.run(nested(DEPTH, own_task=True))) == N + 1
