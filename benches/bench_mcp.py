"""Added latency of an MCP `tools/call` through the gateway vs straight to the upstream, and calls/s.

    PYTHONPATH=python python benches/bench_mcp.py [--calls 400] [--seconds 5] [--concurrency 32]
        [--baseline DIR]

Starts a FastMCP upstream (Streamable HTTP) and the gateway with one granian worker on loopback, registers
and whitelists the upstream's `echo` tool, then with the official SDK client:
1. sequential calls straight to the upstream, and the same through `/v1/mcp`: p50/p95/p99 of each and the
   difference of the p50s and p99s (the gateway's added latency: its own work plus its hop to the upstream);
2. `--concurrency` calls in flight over 4 sessions for `--seconds` through the gateway: calls/s.

With `--baseline DIR` (a `python/` directory of another checkout, e.g. `git archive main python | tar -x -C
/tmp/base`, plus its `_core` extension), a second gateway runs that code against the same upstream and both
are measured in the same run, rounds interleaved, side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
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
from pyreqwest.client import ClientBuilder

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


async def raw_session(client: Any, url: str, headers: dict[str, str]) -> dict[str, str]:
    """initialize + notifications/initialized as plain POSTs; the headers of the session's requests."""
    base = {**headers, "accept": "application/json, text/event-stream", "content-type": "application/json"}
    params = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}
    response = await client.post(url).headers(base).body_bytes(json.dumps(init).encode()).build().send()
    await response.bytes()
    session = {**base, "mcp-session-id": response.get_header("mcp-session-id") or "",
               "mcp-protocol-version": "2025-06-18"}  # fmt: skip
    note = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'
    await (await client.post(url).headers(session).body_bytes(note).build().send()).bytes()
    return session


async def raw_call(client: Any, url: str, session: dict[str, str], tool: str, i: int) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                       "params": {"name": tool, "arguments": {"text": f"x{i}"}}}).encode()  # fmt: skip
    response = await client.post(url).headers(session).body_bytes(body).build().send()
    data = bytes(await response.bytes())
    assert response.status == 200 and b'"result"' in data, data[:200]


async def raw_sequential(url: str, headers: dict[str, str], tool: str, calls: int) -> list[float]:
    """The same calls as plain JSON-RPC POSTs on a lean keep-alive client (pyreqwest), reading the whole answer
    (JSON from the gateway, SSE from the FastMCP upstream): no SDK cost on the client side, so the difference
    between direct and through the gateway is what the gateway adds."""
    client = ClientBuilder().tcp_nodelay(True).build()
    try:
        session = await raw_session(client, url, headers)
        times = []
        for i in range(calls + 20):
            started = time.perf_counter()
            await raw_call(client, url, session, tool, i)
            if i >= 20:  # the first ones warm up connections
                times.append((time.perf_counter() - started) * 1000)
        return times
    finally:
        await client.close()


async def raw_throughput(url: str, headers: dict[str, str], tool: str, seconds: float, concurrency: int) -> float:
    client = ClientBuilder().tcp_nodelay(True).build()
    try:
        sessions = [await raw_session(client, url, headers) for _ in range(4)]
        done = 0
        deadline = time.perf_counter() + seconds

        async def worker(k: int) -> None:
            nonlocal done
            i = k * 1_000_000  # request ids unique within each session
            while time.perf_counter() < deadline:
                await raw_call(client, url, sessions[k % 4], tool, i)
                i += 1
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return done / (time.perf_counter() - started)
    finally:
        await client.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def launch(root: Path, upstream: str, python_path: str | None) -> Server:
    env = gateway_env(root / "router.db", "http://127.0.0.1:9", admin_key=ADMIN)
    env["ROUTER_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    if python_path is not None:
        env["PYTHONPATH"] = python_path
    gateway = start_gateway(env, workers=1)
    manage_call(gateway.base, ADMIN, "POST", "/mcp/servers", json={"name": "up", "url": f"{upstream}/mcp"})
    manage_call(gateway.base, ADMIN, "POST", "/mcp/servers/up/explore").raise_for_status()
    manage_call(gateway.base, ADMIN, "POST", "/mcp/servers/up/tools", json={"tools": ["echo"]}).raise_for_status()
    return gateway


def own_work(db: Path) -> list[float]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT gateway_ms FROM mcp_usage WHERE status = 'ok'")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--baseline", help="a python/ directory whose gateway is measured alongside")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of --calls each")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-mcp-"))
    port = free_port()
    upstream = Server(
        [sys.executable, str(Path(__file__).parent.parent / "tests" / "mcp_upstream.py"), "--port", str(port)],
        {**os.environ}, None, f"http://127.0.0.1:{port}",
    )  # fmt: skip
    gateways: dict[str, tuple[Server, Path]] = {}
    auth = {"Authorization": f"Bearer {ADMIN}"}
    latencies: dict[str, list[float]] = {"direct": []}
    raw: dict[str, list[float]] = {"direct": []}
    rates: dict[str, float] = {}
    raw_rates: dict[str, float] = {}
    try:
        names = ["this"] + (["baseline"] if args.baseline else [])
        for name in names:
            (root / name).mkdir()
            path = str(Path(args.baseline).resolve()) if name == "baseline" else None
            gateways[name] = (launch(root / name, upstream.base, path), root / name / "router.db")
            latencies[name] = []
            raw[name] = []
        for _ in range(args.rounds):  # interleaved, so drift on a shared machine hits every variant alike
            raw["direct"] += asyncio.run(raw_sequential(f"{upstream.base}/mcp", {}, "echo", args.calls))
            for name in reversed(names):
                base = gateways[name][0].base
                raw[name] += asyncio.run(raw_sequential(f"{base}/v1/mcp", auth, "up__echo", args.calls))
            latencies["direct"] += asyncio.run(sequential(f"{upstream.base}/mcp", {}, "echo", args.calls))
            for name in reversed(names):
                base = gateways[name][0].base
                latencies[name] += asyncio.run(sequential(f"{base}/v1/mcp", auth, "up__echo", args.calls))
        rates["direct"] = asyncio.run(throughput(f"{upstream.base}/mcp", {}, "echo", args.seconds, args.concurrency))
        raw_rates["direct"] = asyncio.run(
            raw_throughput(f"{upstream.base}/mcp", {}, "echo", args.seconds, args.concurrency)
        )
        for name in reversed(names):
            base = gateways[name][0].base
            raw_rates[name] = asyncio.run(
                raw_throughput(f"{base}/v1/mcp", auth, "up__echo", args.seconds, args.concurrency)
            )
            rates[name] = asyncio.run(throughput(f"{base}/v1/mcp", auth, "up__echo", args.seconds, args.concurrency))
        time.sleep(1.0)  # the usage writer flushes twice a second
        own = {name: own_work(db) for name, (_, db) in gateways.items()}
    finally:
        for gateway, _ in gateways.values():
            gateway.stop()
        upstream.stop()
    labels = {"direct": "direct to upstream", "baseline": "gateway (baseline)", "this": "gateway (this tree)"}
    order = ["direct", *reversed(list(gateways))]
    for title, table in (("plain JSON-RPC POSTs (pyreqwest client)", raw), ("official SDK client", latencies)):
        d50, d99 = statistics.median(table["direct"]), pct(table["direct"], 0.99)
        print(f"tools/call, {len(table['direct'])} sequential calls each, {title}, loopback, one gateway worker")
        print(f"  {'':22} {'p50':>8} {'p95':>8} {'p99':>8} {'added p50':>10} {'added p99':>10}")
        for name in order:
            v = table[name]
            added = "" if name == "direct" else f" {statistics.median(v) - d50:10.3f} {pct(v, 0.99) - d99:10.3f}"
            print(f"  {labels[name]:22} {statistics.median(v):8.3f} {pct(v, 0.95):8.3f} {pct(v, 0.99):8.3f}{added}")
    print(f"calls/s, {args.concurrency} in flight over 4 sessions for {args.seconds:g} s:")
    print(f"  {'':22} {'plain':>8} {'SDK':>8}")
    for name in order:
        extra = "" if name == "direct" else f"   own work p50 {statistics.median(own[name]):.3f} ms (usage gateway_ms)"
        print(f"  {labels[name]:22} {raw_rates[name]:8.0f} {rates[name]:8.0f}{extra}")


if __name__ == "__main__":
    main()
