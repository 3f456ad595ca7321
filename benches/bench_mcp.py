"""Added latency of an MCP `tools/call` through the gateway vs straight to the upstream, and calls/s.

    PYTHONPATH=python python benches/bench_mcp.py [--calls 400] [--seconds 5] [--concurrency 32]

Starts a FastMCP upstream (Streamable HTTP) and the gateway with one granian worker on loopback, registers
and whitelists the upstream's `echo` tool, then with the official SDK client:
1. sequential calls straight to the upstream, and the same through `/v1/mcp`: p50/p95 of each and the
   difference of the p50s (the gateway's added latency: its own work plus its SDK hop to the upstream);
2. `--concurrency` calls in flight over 4 sessions for `--seconds` through the gateway: calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from servers import ADMIN_KEY, Server, free_port, gateway_env, manage_call, start_gateway

ADMIN = ADMIN_KEY


async def open_session(url: str, headers: dict[str, str], stack: Any) -> ClientSession:
    client = await stack.enter_async_context(httpx.AsyncClient(headers=headers, timeout=30))
    r, w, _ = await stack.enter_async_context(streamable_http_client(url, http_client=client))
    session = await stack.enter_async_context(ClientSession(r, w))
    await session.initialize()
    return session


async def sequential(url: str, headers: dict[str, str], tool: str, calls: int) -> list[float]:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        session = await open_session(url, headers, stack)
        for _ in range(20):  # warm up connections
            await session.call_tool(tool, {"text": "warm"})
        times = []
        for i in range(calls):
            started = time.perf_counter()
            await session.call_tool(tool, {"text": f"x{i}"})
            times.append((time.perf_counter() - started) * 1000)
        return times


async def throughput(url: str, headers: dict[str, str], tool: str, seconds: float, concurrency: int) -> float:
    from contextlib import AsyncExitStack

    async with AsyncExitStack() as stack:
        sessions = [await open_session(url, headers, stack) for _ in range(4)]
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(session: ClientSession) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await session.call_tool(tool, {"text": "t"})
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(sessions[i % 4]) for i in range(concurrency)))
        return done / (time.perf_counter() - started)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    port = free_port()
    upstream = Server(
        [sys.executable, str(Path(__file__).parent.parent / "tests" / "mcp_upstream.py"), "--port", str(port)],
        {**os.environ}, None, f"http://127.0.0.1:{port}",
    )  # fmt: skip
    env = gateway_env(root / "router.db", "http://127.0.0.1:9", admin_key=ADMIN)
    env["ROUTER_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    gateway = start_gateway(env, workers=1)
    try:
        manage_call(gateway.base, ADMIN, "POST", "/mcp/servers", json={"name": "up", "url": f"{upstream.base}/mcp"})
        manage_call(gateway.base, ADMIN, "POST", "/mcp/servers/up/explore").raise_for_status()
        manage_call(gateway.base, ADMIN, "POST", "/mcp/servers/up/tools", json={"tools": ["echo"]}).raise_for_status()
        direct = asyncio.run(sequential(f"{upstream.base}/mcp", {}, "echo", args.calls))
        auth = {"Authorization": f"Bearer {ADMIN}"}
        through = asyncio.run(sequential(f"{gateway.base}/v1/mcp", auth, "up__echo", args.calls))
        rate = asyncio.run(throughput(f"{gateway.base}/v1/mcp", auth, "up__echo", args.seconds, args.concurrency))
        time.sleep(1.0)  # the usage writer flushes twice a second
        with sqlite3.connect(root / "router.db") as conn:
            own = [r[0] for r in conn.execute("SELECT gateway_ms FROM mcp_usage WHERE status = 'ok'")]
    finally:
        gateway.stop()
        upstream.stop()
    d50, g50 = statistics.median(direct), statistics.median(through)
    print(f"tools/call, {args.calls} sequential calls each, official SDK client, loopback")
    print(f"  direct to upstream   p50 {d50:7.3f} ms   p95 {pct(direct, 0.95):7.3f} ms")
    print(f"  through the gateway  p50 {g50:7.3f} ms   p95 {pct(through, 0.95):7.3f} ms")
    print(f"  added by the gateway p50 {g50 - d50:7.3f} ms")
    print(
        f"  of which the gateway's own work (usage rows' gateway_ms, excluding its SDK hop upstream) "
        f"p50 {statistics.median(own):7.3f} ms"
    )
    print(f"throughput through the gateway (1 worker, {args.concurrency} in flight, 4 sessions): {rate:.0f} calls/s")


if __name__ == "__main__":
    main()
