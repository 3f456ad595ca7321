"""Redis shared state (ROUTER_REDIS): what it costs and how fast changes travel. One mode per run:

- propagation: two gateways (separate processes, 1 worker each) on one SQLite file and one Redis. Each round
  creates a key through A's management API, has B cache it, revokes it through A, then asks B until it
  refuses: the time from A's 200 to B's first 401, p50/p99 over the rounds (the issue's bar: p99 < 100 ms).
- load: the same gateway config twice (1 worker each, each its own database), Redis off and on, driven by wrk
  in turns (which one goes first alternating) for an unlimited key and a key with a monthly limit (the
  limited one reserves and settles through Redis on every request); requests/s and p50 per pair of runs, and
  the gateway's CPU per request (read from /proc), the figure a busy shared machine disturbs least.
- client: the reserve script from asyncio: the gateway's pipelined hiredis connection (`shared/wire.py`) vs
  redis-py with the hiredis parser and with its pure-Python parser; round trip, and wall and CPU per call.

    python benches/redis_shared.py propagation [--rounds 100]
    python benches/redis_shared.py load [--duration 5] [--rounds 3]
    python benches/redis_shared.py client [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from load import _body, require_wrk, wrk
from load_compare import _cpu_seconds
from redis_server import RedisServer

from servers import Server, gateway_env, manage_call, start_gateway, start_mock

CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0}}
"""


def _gateway(root: Path, mock: Server, redis_url: str | None, name: str) -> Server:
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / f"{name}.db", mock.base, root / "config.yaml")
    if redis_url:
        env["ROUTER_REDIS"] = redis_url
    else:
        env.pop("ROUTER_REDIS", None)
    return start_gateway(env, workers=1)


def _key(gateway: Server, **spec: object) -> dict:
    r = manage_call(gateway.base, gateway.env["ROUTER_ADMIN_KEY"], "POST", "/apikey", json={"name": "b", **spec})
    r.raise_for_status()
    return r.json()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def propagation(args: argparse.Namespace, root: Path) -> None:
    redis = RedisServer(root)
    mock = start_mock()
    a = _gateway(root, mock, redis.url, "shared")
    b = _gateway(root, mock, redis.url, "shared")
    body = {"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    latencies: list[float] = []
    try:
        with httpx.Client(timeout=10) as client:
            admin = {"authorization": f"Bearer {a.env['ROUTER_ADMIN_KEY']}"}
            for _ in range(args.rounds):
                key = _key(a)
                auth = {"authorization": f"Bearer {key['key']}"}
                assert client.post(f"{b.base}/v1/chat/completions", json=body, headers=auth).status_code == 200
                r = client.delete(f"{a.base}/v1/manage/apikey/{key['id']}", headers=admin)
                assert r.status_code == 200, r.text
                start = time.perf_counter()
                while client.post(f"{b.base}/v1/chat/completions", json=body, headers=auth).status_code != 401:
                    if time.perf_counter() - start > 5:
                        raise RuntimeError("B never refused the revoked key")
                latencies.append((time.perf_counter() - start) * 1000)
    finally:
        for server in (a, b, mock):
            server.stop()
        redis.stop()
    print(f"propagation over {len(latencies)} revocations, A's 200 to B's first 401 (ms):")
    print(f"  p50 {_pct(latencies, 0.5):.2f}  p99 {_pct(latencies, 0.99):.2f}  max {max(latencies):.2f}")


def load_compare(args: argparse.Namespace, root: Path) -> None:
    require_wrk()
    redis = RedisServer(root)
    mock = start_mock()
    (root / "off").mkdir()
    (root / "on").mkdir()
    gateways = {"off": _gateway(root / "off", mock, None, "off"), "on": _gateway(root / "on", mock, redis.url, "on")}
    url = "/v1/chat/completions"
    body = _body("mock/gpt-4o", False)
    try:
        for label, spec in (("unlimited key", {}), ("limited key", {"monthly_limit": 1_000_000.0})):
            keys = {mode: _key(gw, **spec)["key"] for mode, gw in gateways.items()}
            results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
            for i in range(args.rounds):
                for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                    gw = gateways[mode]
                    cpu = _cpu_seconds(gw)
                    result = wrk(gw.base + url, body, keys[mode], 32, args.duration, root)
                    # The gateway's own CPU per request: what load on a shared machine disturbs least.
                    result["cpu_us"] = (_cpu_seconds(gw) - cpu) / (result["rps"] * args.duration) * 1e6
                    results[mode].append(result)
            rps = [on["rps"] / off["rps"] - 1 for off, on in zip(results["off"], results["on"], strict=True)]
            p50 = [on["p50_ms"] - off["p50_ms"] for off, on in zip(results["off"], results["on"], strict=True)]
            med = {m: statistics.median(r["rps"] for r in results[m]) for m in results}
            p50s = {m: statistics.median(r["p50_ms"] for r in results[m]) for m in results}
            print(
                f"{label}: req/s off {med['off']:.0f}, on {med['on']:.0f}; p50 off {p50s['off']:.2f} ms, on "
                f"{p50s['on']:.2f} ms; paired: req/s {statistics.median(rps):+.1%} "
                f"(rounds {', '.join(f'{x:+.1%}' for x in rps)}), added p50 {statistics.median(p50):+.2f} ms"
            )
            cpu = {m: statistics.median(r["cpu_us"] for r in results[m]) for m in results}
            print(f"  gateway CPU per request: off {cpu['off']:.0f} µs, on {cpu['on']:.0f} µs")
            errors = sum(r["non_2xx"] for m in results for r in results[m])
            if errors:
                print(f"  non-2xx answers: {errors:.0f}")
    finally:
        for server in (*gateways.values(), mock):
            server.stop()
        redis.stop()


def client(args: argparse.Namespace, root: Path) -> None:
    import redis.asyncio
    from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

    from router.config import RedisConfig
    from router.shared.ledger import RedisLedger, raise_to

    server = RedisServer(root)
    settings = RedisConfig(url=server.url)
    raise_to(settings, [])

    async def run(kind: str) -> tuple[float, float, float]:
        """(sequential round trip, wall and CPU per call at 32 in flight), microseconds."""
        ledger = RedisLedger(settings, lambda period: [], lambda: 202601)
        if kind != "pipelined":
            parser = _AsyncHiredisParser if kind == "redis-py + hiredis" else _AsyncRESP2Parser
            await ledger._client.aclose(close_connection_pool=True)
            pool = redis.asyncio.ConnectionPool.from_url(server.url, parser_class=parser)
            ledger._client = redis.asyncio.Redis(connection_pool=pool)
            ledger._reserve = ledger._client.register_script(ledger._reserve.script)
            ledger._wire = None
        budgets = ledger.prepare([("key:k", 10**15, 2**62, "k"), ("org", 10**15, 2**62, "org")], [0, 0], 202601)
        await ledger.reserve(budgets, 1)
        start = time.perf_counter()
        for _ in range(args.calls):
            await ledger.reserve(budgets, 1)
        sequential = (time.perf_counter() - start) / args.calls * 1e6
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.calls // 32):
            await asyncio.gather(*[ledger.reserve(budgets, 1) for _ in range(32)])
        calls = args.calls // 32 * 32
        wall = (time.perf_counter() - start) / calls * 1e6
        cpu = (time.process_time() - cpu) / calls * 1e6
        await ledger.close()
        return sequential, wall, cpu

    kinds = ("pipelined", "redis-py + hiredis", "redis-py + python parser")
    try:
        results: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
        for _ in range(3):
            for kind in kinds:
                results[kind].append(asyncio.run(run(kind)))
    finally:
        server.stop()
    print("reserve script (2 budgets), median of 3 runs, µs: round trip; at 32 in flight: wall, CPU per call")
    for kind, values in results.items():
        seq, wall, cpu = (statistics.median(v[i] for v in values) for i in range(3))
        print(f"  {kind:26s} {seq:6.1f}  {wall:6.1f}  {cpu:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["propagation", "load", "client"])
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="router-redis-bench-") as tmp:
        root = Path(tmp)
        if args.mode == "propagation":
            args.rounds = args.rounds or 100
            propagation(args, root)
        elif args.mode == "load":
            args.rounds = args.rounds or 3
            load_compare(args, root)
        else:
            client(args, root)


if __name__ == "__main__":
    main()
