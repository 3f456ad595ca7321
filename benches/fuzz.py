"""Fuzz a live gateway with a larger budget than the suite's `tests/e2e/test_fuzz.py`, and count the outcomes.

Starts the mock and a gateway (guardrails on, one unlimited and one limited key), then sends `--requests`
hypothesis-generated requests spread over the proxy endpoints and the management API (from its served OpenAPI
document), and prints: requests fuzzed, answers by status, 5xx, resets, non-API-shaped errors, upstream calls for
refused requests, and whether the gateway logged a traceback. Exits 1 if any of those is not zero.

    python benches/fuzz.py --requests 6000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import fuzzing

from servers import gateway_env, manage_call, start_gateway, start_mock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: random)")
    args = parser.parse_args()

    mock_server = start_mock()
    root = Path(tempfile.mkdtemp(prefix="router-fuzz-"))
    (root / "config.yaml").write_text(fuzzing.CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, root / "config.yaml"))
    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    samples: list[str] = []
    try:
        admin = server.env["ROUTER_ADMIN_KEY"]
        keys = {"admin": admin}
        for name, spec in (("key", {}), ("limited", {"monthly_limit": 0.01})):
            r = manage_call(server.base, admin, "POST", "/apikey", json={"name": f"fuzz-{name}", **spec})
            keys[name] = r.json()["key"]
        client = httpx.Client(timeout=30)
        upstream = fuzzing.Upstream(client, mock_server.base)
        upstream.calls()
        document = client.get(f"{server.base}/v1/manage/openapi.json").json()
        # Two in three requests go to the proxy endpoints, one to the management API.
        cases = st.one_of(fuzzing.proxy_cases(), fuzzing.proxy_cases(), fuzzing.management_cases(document))

        @settings(
            max_examples=args.requests,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def run(case: fuzzing.Case) -> None:
            outcome = fuzzing.send(client, server.base, case, keys)
            statuses["reset" if outcome.status is None else str(outcome.status)] += 1
            kinds["management" if case.path.startswith("/v1/manage") else "proxy"] += 1
            problems = list(outcome.problems)
            forwarded = fuzzing.forwarded_when_refused(case, outcome, upstream.calls())
            if forwarded is not None:
                problems.append(forwarded)
                statuses["forwarded_refused"] += 1
            for problem in problems:
                if "API shape" in problem or "not JSON" in problem:
                    statuses["unshaped"] += 1
                if len(samples) < 10:
                    samples.append(f"{problem} for {fuzzing.describe(case)}")

        if args.seed is not None:
            run = seed(args.seed)(run)
        started = time.perf_counter()
        run()
        elapsed = time.perf_counter() - started
        client.close()
    finally:
        log = server.stop()
        mock_server.stop()
    total = sum(v for k, v in statuses.items() if k.isdigit() or k == "reset")
    five = sum(v for k, v in statuses.items() if k.isdigit() and int(k) >= 500)
    print(f"requests fuzzed: {total} ({kinds['proxy']} proxy, {kinds['management']} management) in {elapsed:.0f} s")
    print("by status:", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()) if k.isdigit()))
    print(f"5xx: {five}")
    print(f"resets: {statuses['reset']}")
    print(f"errors not in the API shape: {statuses['unshaped']}")
    print(f"refused requests that reached the upstream: {statuses['forwarded_refused']}")
    tracebacks = log.count("Traceback")
    print(f"tracebacks in the gateway log: {tracebacks}")
    for sample in samples:
        print("  ", sample)
    bad = five + statuses["reset"] + statuses["unshaped"] + statuses["forwarded_refused"] + tracebacks
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
