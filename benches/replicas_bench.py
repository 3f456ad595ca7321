"""One replica of a scaled-out deployment (PostgreSQL store + Redis shared state) against the single-host
default (SQLite + the memory-mapped ledger and signal), same machine, same config, 1 worker each. wrk drives
them in turns (which one goes first alternating) for an unlimited key and a key with a monthly limit; per pair
of runs: requests/s and p50, and the latency each adds over the mock provider alone (p50 through the gateway
minus p50 straight to the mock), and the gateway's CPU per request.

    python benches/replicas_bench.py [--duration 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from load import _body, require_wrk, wrk
from load_compare import _cpu_seconds
from pg import PostgresServer
from redis_server import RedisServer
from redis_shared import CONFIG, _key

from servers import Server, gateway_env, start_gateway, start_mock

CONNECTIONS = 32


def _gateway(root: Path, mock: Server, database: str | None, redis_url: str | None) -> Server:
    root.mkdir()
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock.base, root / "config.yaml")
    env["XDG_DATA_HOME"] = str(root / "data")
    env.pop("ROUTER_REDIS", None)
    if database:
        env["ROUTER_DB"] = database
    if redis_url:
        env["ROUTER_REDIS"] = redis_url
    return start_gateway(env, workers=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_wrk()
    with tempfile.TemporaryDirectory(prefix="router-replicas-bench-") as tmp:
        root = Path(tmp)
        postgres = PostgresServer()
        redis = RedisServer(root)
        mock = start_mock()
        gateways: dict[str, Server] = {}
        try:
            gateways["sqlite"] = _gateway(root / "sqlite", mock, None, None)
            gateways["pg+redis"] = _gateway(root / "pg", mock, postgres.fresh(), redis.url)
            run(args, root, mock, gateways)
        finally:
            for server in (*gateways.values(), mock):
                server.stop()
            redis.stop()
            postgres.stop()


def run(args: argparse.Namespace, root: Path, mock: Server, gateways: dict[str, Server]) -> None:
    url = "/v1/chat/completions"
    body = _body("mock/gpt-4o", False)
    direct = wrk(mock.base + url, body, "k", CONNECTIONS, args.duration, root)["p50_ms"]
    print(f"mock provider alone: p50 {direct:.2f} ms ({CONNECTIONS} connections, 1 worker per gateway)")
    modes = list(gateways)
    for label, spec in (("unlimited key", {}), ("limited key", {"monthly_limit": 1_000_000.0})):
        keys = {mode: _key(gw, **spec)["key"] for mode, gw in gateways.items()}
        results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for i in range(args.rounds):
            for mode in modes if i % 2 == 0 else modes[::-1]:
                gw = gateways[mode]
                cpu = _cpu_seconds(gw)
                result = wrk(gw.base + url, body, keys[mode], CONNECTIONS, args.duration, root)
                # The gateway's own CPU per request: the figure a busy shared machine disturbs least.
                result["cpu_us"] = (_cpu_seconds(gw) - cpu) / (result["rps"] * args.duration) * 1e6
                results[mode].append(result)
        base, scaled = results["sqlite"], results["pg+redis"]
        rps = [s["rps"] / b["rps"] - 1 for b, s in zip(base, scaled, strict=True)]
        p50 = [s["p50_ms"] - b["p50_ms"] for b, s in zip(base, scaled, strict=True)]
        med = {m: statistics.median(r["rps"] for r in results[m]) for m in modes}
        added = {m: statistics.median(r["p50_ms"] for r in results[m]) - direct for m in modes}
        print(
            f"{label}: req/s sqlite {med['sqlite']:.0f}, pg+redis {med['pg+redis']:.0f}; added p50 over the mock "
            f"sqlite {added['sqlite']:.2f} ms, pg+redis {added['pg+redis']:.2f} ms; paired: req/s "
            f"{statistics.median(rps):+.1%} (rounds {', '.join(f'{x:+.1%}' for x in rps)}), "
            f"p50 {statistics.median(p50):+.2f} ms"
        )
        cpu = {m: statistics.median(r["cpu_us"] for r in results[m]) for m in modes}
        print(f"  gateway CPU per request: sqlite {cpu['sqlite']:.0f} µs, pg+redis {cpu['pg+redis']:.0f} µs")
        errors = sum(r["non_2xx"] for m in modes for r in results[m])
        if errors:
            print(f"  non-2xx answers: {errors:.0f}")


if __name__ == "__main__":
    main()
