"""What a native provider costs: requests/s and latency of chat requests routed to Bedrock (SigV4 signing,
Converse translation) and Gemini (generateContent translation) against an OpenAI-compatible model, through one
gateway (1 worker) in front of the mock, in one run.

wrk drives each model in turn at 16 connections, alternating the order over several rounds so drift on a
shared machine hits all alike; the medians per model are reported with the ratio to the OpenAI-compatible one
(the issue's bar: within 15% of requests/s) and the added p50, with the CPU the gateway (and the mock) spent
per request, read from /proc: on a shared machine requests/s follow the neighbours, CPU per request much less.
An Anthropic model is measured too: a chat
request to it takes the same chat ↔ Messages translation the native providers build on, so the rows above it
and below it separate the cost of translation from that of Converse / Gemini mapping and signing. The mock
verifies every SigV4 signature, so its own CPU counts against the Bedrock rows too.

With `--pin` (the default where the machine has two or more CPUs) the gateway runs on the last CPU and the mock
and wrk on the others (`taskset`), so the gateway's own cost decides its requests/s. With `--baseline DIR` (a
`python/` directory of another checkout with its `_core` extension, e.g. `git archive main python | tar -x -C
/tmp/base` plus main's `_core*.so`), a second gateway runs that code against the same mock and both are
measured in the same rounds, side by side.

    python benches/native_overhead.py [--duration 5] [--rounds 3] [--stream] [--baseline DIR] [--no-pin]
                                       [--bedrock-api-key]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from load import require_wrk, wrk
from load_compare import _cpu_seconds
from router.mock import bedrock as mock_bedrock
from router.mock import gemini as mock_gemini

from servers import Server, create_key, gateway_env, start_gateway, start_mock

MODELS = {
    "openai-compatible": "mock/gpt-4o",
    # The same translation path as the native providers (chat ↔ Messages), without their own API.
    "anthropic": "anthropic/claude-sonnet-4-5",
    "bedrock": "bedrock/claude-sonnet-4-5@eu-central-1",
    "gemini": "google/gemini-2.5-flash",
}
CONFIG = f"""
providers:
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: k
  anthropic:
    kind: anthropic
    base_url: env:ROUTER_MOCK_URL
    api_key: k
  bedrock:
    kind: bedrock
    base_url: env:BENCH_MOCK_BASE
    aws_access_key_id: {mock_bedrock.ACCESS_KEY_ID}
    aws_secret_access_key: {mock_bedrock.SECRET_ACCESS_KEY}
  bedrock-key:
    kind: bedrock
    base_url: env:BENCH_MOCK_BASE
    api_key: {mock_bedrock.API_KEY}
  google:
    kind: gemini
    base_url: env:BENCH_GEMINI_URL
    api_key: {mock_gemini.API_KEY}
models:
  - id: mock/gpt-4o
    upstream_model: gpt-4o
  - id: anthropic/claude-sonnet-4-5
  - id: bedrock/claude-sonnet-4-5@eu-central-1
    upstream_model: eu.anthropic.claude-sonnet-4-5-20250929-v1:0@eu-central-1
  - id: google/gemini-2.5-flash
  - id: bedrock-key/claude-sonnet-4-5@eu-central-1
    upstream_model: eu.anthropic.claude-sonnet-4-5-20250929-v1:0@eu-central-1
"""
# With --bedrock-api-key: Bedrock with an API key, which the gateway does not sign and the mock only compares
# (it verifies every SigV4 signature, which slows the upstream the gateway waits for).
API_KEY_MODEL = {"bedrock-api-key": "bedrock-key/claude-sonnet-4-5@eu-central-1"}


def _pin(server: Server, cpus: str) -> None:
    """Every thread of `server`'s process tree onto `cpus` (granian forks its workers before it answers)."""
    pids = [str(server.proc.pid)]
    for pid in pids:  # grows as children are found
        pids += subprocess.run(["pgrep", "-P", pid], capture_output=True, text=True).stdout.split()
    for pid in pids:
        subprocess.run(["taskset", "-a", "-c", "-p", cpus, pid], capture_output=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--baseline", help="a python/ directory whose gateway is measured alongside")
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="leave CPU placement to the kernel")
    parser.add_argument("--json", help="write the per-round results here")
    parser.add_argument("--bedrock-api-key", action="store_true", help="also measure Bedrock with an API key")
    args = parser.parse_args()
    models = MODELS | API_KEY_MODEL if args.bedrock_api_key else MODELS
    require_wrk()
    cpus = sorted(os.sched_getaffinity(0))
    pinned = args.pin and len(cpus) >= 2
    gateway_cpu, load_cpus = (str(cpus[-1]), ",".join(map(str, cpus[:-1]))) if pinned else (None, None)
    builds = ["this"] + (["baseline"] if args.baseline else [])
    results: dict[str, dict[str, list[dict[str, float]]]] = {b: {name: [] for name in models} for b in builds}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "config.yaml").write_text(CONFIG)
        mock = start_mock()
        gateways: dict[str, Server] = {}
        try:
            if load_cpus:
                _pin(mock, load_cpus)
            keys = {}
            for build in builds:
                (workdir / build).mkdir()
                env = gateway_env(workdir / build / "router.db", mock.base, workdir / "config.yaml")
                env |= {"BENCH_MOCK_BASE": mock.base, "BENCH_GEMINI_URL": f"{mock.base}/v1beta"}
                if build == "baseline":
                    env["PYTHONPATH"] = str(Path(args.baseline).resolve())
                gateways[build] = start_gateway(env)
                if gateway_cpu:
                    _pin(gateways[build], gateway_cpu)
                keys[build] = create_key(env, "bench")["key"]
            names = list(models)
            for round_ in range(args.rounds):
                # Alternating model order and build order, so drift on a shared machine hits all alike.
                order = names[round_ % len(names) :] + names[: round_ % len(names)]
                for name in order:
                    body: dict = {"model": models[name], "messages": [{"role": "user", "content": "Hello there"}]}
                    if args.stream:
                        body["stream"] = True
                    for build in builds if round_ % 2 == 0 else builds[::-1]:
                        url = f"{gateways[build].base}/v1/chat/completions"
                        cpu = _cpu_seconds(gateways[build]), _cpu_seconds(mock)
                        run = wrk(url, json.dumps(body), keys[build], args.connections, args.duration, workdir,
                                  load_cpus)  # fmt: skip
                        served = run["rps"] * args.duration
                        run["gateway_us"] = (_cpu_seconds(gateways[build]) - cpu[0]) / served * 1e6
                        run["mock_us"] = (_cpu_seconds(mock) - cpu[1]) / served * 1e6
                        if run["non_2xx"]:
                            sys.exit(f"{build} {name}: {run['non_2xx']} non-2xx answers")
                        results[build][name].append(run)
        finally:
            for gateway in gateways.values():
                gateway.stop()
            mock.stop()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    where = f"gateway on CPU {gateway_cpu}, mock and wrk on {load_cpus}" if pinned else "unpinned"
    kind = "streamed" if args.stream else "unary"
    print(f"{kind} chat, {args.connections} connections, medians of {args.rounds} rounds of {args.duration} s, {where}")
    print(
        f"{'build':<10}{'provider':<19}{'req/s':>7}{'vs openai':>11}{'p50 ms':>8}{'added':>8}{'p99 ms':>8}"
        f"{'gw µs/req':>11}{'added':>8}{'mock µs':>9}"
    )
    for build in builds:
        runs = results[build]

        def median(name: str, field: str, runs: dict = runs) -> float:
            return statistics.median(r[field] for r in runs[name])

        base = {field: median("openai-compatible", field) for field in ("rps", "p50_ms", "gateway_us")}
        for name in models:
            rps, p50, gw = median(name, "rps"), median(name, "p50_ms"), median(name, "gateway_us")
            print(
                f"{build:<10}{name:<19}{rps:>7.0f}{rps / base['rps'] - 1:>+11.1%}{p50:>8.2f}"
                f"{p50 - base['p50_ms']:>+8.2f}{median(name, 'p99_ms'):>8.2f}"
                f"{gw:>11.0f}{gw - base['gateway_us']:>+8.0f}{median(name, 'mock_us'):>9.0f}"
            )


if __name__ == "__main__":
    main()
