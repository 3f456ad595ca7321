"""Unary throughput per core: one pinned gateway worker, plain vs everything on, vs the do-nothing forwarder.

Starts the Go upstream of `benches/concurrency` (an instant chat completion) and pins it and wrk to CPU 0; the
targets are pinned to CPU 1 (`taskset`), one worker each:
- the do-nothing forwarder (`benches/concurrency/forwarder.py`: granian RSGI, msgspec, pyreqwest);
- the issue's reference do-nothing forwarder (`benches/concurrency/forwarder_aiohttp.py`: granian RSGI, msgspec,
  aiohttp), the one the throughput-per-core goal (everything on at 0.8 times its requests/s) is measured against;
- for each build compared (this checkout, and `--baseline DIR`, another checkout with its own built extension
  in `DIR/python/router`, e.g. main's): the gateway with a plain key and its default config (guardrails screen
  the request and the answer), and a gateway with everything on: model approval (the approved list) and an
  access list on the key, a monthly limit on the key, request metadata (`x-router-metadata`: tags, user,
  trace) on every request, and the default guardrails masking the email address every prompt holds.
wrk (1 thread, 32 connections) drives each target for `--duration` seconds, the targets taking turns in every
round (the order rotates), and each target's worker CPU is read from /proc around its run: CPU µs per request
and requests/s are the medians of the rounds. On a 2-core machine shared with others, single rounds swing;
compare the rows of one run, and the ratios to the forwarders measured in the same rounds.

    python benches/load_pinned.py [--baseline /work/main] [--duration 3] [--rounds 5] [--json out.json]
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

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import concurrency as cc  # noqa: E402
from load import WRK_SCRIPT, require_wrk  # noqa: E402

PROMPT = "What is the capital of France? My email is jane.doe@example.com"
METADATA = json.dumps({"tags": ["bench", "load"], "user_id": "end-user-1", "trace_id": "trace-1"})
MODELS = ["bench/gpt-4o", *(f"bench/m{i:02d}" for i in range(9))]
FORWARDER = "do-nothing forwarder (pyreqwest)"
AIOHTTP_FORWARDER = "do-nothing forwarder (aiohttp, the issue's reference)"


def start_gateway(workdir: Path, build: Path, upstream: str) -> tuple[cc.Proc, str, dict[str, str]]:
    """One gateway worker of the checkout `build`, pinned to the target CPU, with a catalog of ten models."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "router.yaml"
    lines = ["providers:", f"  bench: {{base_url: 'http://{upstream}/v1', api_key: upstream-key}}", "models:"]
    lines += [f"  - {{id: {m}, upstream_model: gpt-4o, capabilities: [streaming]}}" for m in MODELS]
    config.write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "ROUTER_DB": str(workdir / "router.db"),
        "ROUTER_CONFIG": str(config),
        "ROUTER_ADMIN_KEY": cc.ADMIN,
        "PYTHONPATH": str(build / "python"),
    }
    port = cc.free_port()
    gw = cc.Proc([cc.PY, "-m", "router", "serve", "--port", str(port), "--workers", "1"], env)
    cc.wait_port(port)
    return gw, f"http://127.0.0.1:{port}", env


def plain_key(base: str) -> str:
    return _manage(base, "POST", "/apikey", {"name": "plain"})["key"]


def governed_key(base: str) -> str:
    """A key under model approval and an access list, with a monthly limit (reserved and settled per request)."""
    _manage(base, "POST", "/models/approved", {"models": MODELS[:6]})
    _manage(base, "POST", "/access-list", {"name": "key-list", "models": MODELS[:4], "providers": []})
    body = {"name": "governed", "access_list": "key-list", "monthly_limit": 1_000_000}
    return _manage(base, "POST", "/apikey", body)["key"]


def _manage(base: str, method: str, path: str, body: dict) -> dict:
    r = httpx.request(method, f"{base}/v1/manage{path}", json=body, headers={"authorization": f"Bearer {cc.ADMIN}"})
    r.raise_for_status()
    return r.json()


def wrk(url: str, key: str, model: str, metadata: bool, duration: int, workdir: Path) -> dict[str, float]:
    script = workdir / f"wrk-{abs(hash((url, key)))}.lua"
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": PROMPT}]})
    text = WRK_SCRIPT.format(body=body, key=key)
    if metadata:
        text += f'wrk.headers["x-router-metadata"] = [[{METADATA}]]\n'
    script.write_text(text)
    cmd = ["taskset", "-c", cc.LOAD_CPU, "wrk", "-t1", "-c32", f"-d{duration}s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    requests = int(out.split(" requests in ")[0].split()[-1])
    errors = 0
    if "Non-2xx or 3xx responses:" in out:
        errors = int(out.split("Non-2xx or 3xx responses:")[1].split()[0])
    rps = float(out.split("Requests/sec:")[1].split()[0])
    return {"requests": requests, "rps": rps, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (its python/ is run)")
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every target in turn (default 5)")
    parser.add_argument("--json", help="also write the per-round results to this file")
    args = parser.parse_args()
    require_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="bench-pinned-"))
    binary = workdir / "concurrency"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=HERE / "concurrency", check=True)
    up, upstream = cc.start_upstream(binary, chunks=1, interval_ms=0, delay_ms=0)  # an instant answer
    procs = [up]
    builds = {"this checkout": ROOT}
    if args.baseline:
        builds = {f"baseline ({args.baseline})": args.baseline.resolve(), **builds}
    # (label, process, URL, key, model, metadata header)
    targets: list[tuple[str, cc.Proc, str, str, str, bool]] = []
    try:
        fw, fw_url = cc.start_forwarder(upstream)
        procs.append(fw)
        targets.append((FORWARDER, fw, fw_url, "-", "gpt-4o", False))
        fw, fw_url = cc.start_forwarder(upstream, "forwarder_aiohttp")
        procs.append(fw)
        targets.append((AIOHTTP_FORWARDER, fw, fw_url, "-", "gpt-4o", False))
        for name, build in builds.items():
            slug = "base" if build != ROOT else "this"
            gw, base, _ = start_gateway(workdir / f"{slug}-plain", build, upstream)
            procs.append(gw)
            targets.append((f"{name}: plain key", gw, base, plain_key(base), MODELS[0], False))
            gw, base, _ = start_gateway(workdir / f"{slug}-on", build, upstream)
            procs.append(gw)
            label = f"{name}: everything on"
            targets.append((label, gw, base, governed_key(base), MODELS[0], True))
        workers = {label: proc.worker() for label, proc, *_ in targets}
        for label, _, base, key, model, metadata in targets:  # warm up pools and caches
            url = base if label.startswith("do-nothing") else f"{base}/v1/chat/completions"
            wrk(url, key, model, metadata, 1, workdir)
        print(f"targets pinned to CPU {cc.TARGET_CPU}; upstream and wrk to CPU {cc.LOAD_CPU}", flush=True)
        rounds: dict[str, list[tuple[float, float]]] = {label: [] for label, *_ in targets}
        for number in range(args.rounds):
            shift = number % len(targets)
            for label, _, base, key, model, metadata in targets[shift:] + targets[:shift]:
                url = base if label.startswith("do-nothing") else f"{base}/v1/chat/completions"
                before = cc.cpu_seconds(workers[label])
                r = wrk(url, key, model, metadata, args.duration, workdir)
                cpu = cc.cpu_seconds(workers[label]) - before
                if r["errors"]:
                    sys.exit(f"{label}: {r['errors']} non-2xx answers")
                rounds[label].append((r["rps"], cpu / max(r["requests"], 1) * 1e6))
                print(f"  round {number + 1} {label}: {r['rps']:,.0f} req/s, {rounds[label][-1][1]:.0f} µs", flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
    fw_rps = statistics.median(r for r, _ in rounds[FORWARDER])
    fw_cpu = statistics.median(c for _, c in rounds[FORWARDER])
    ai_rps = statistics.median(r for r, _ in rounds[AIOHTTP_FORWARDER])
    ai_cpu = statistics.median(c for _, c in rounds[AIOHTTP_FORWARDER])
    print(f"\nUnary @32 connections, instant upstream, one pinned worker; medians of {args.rounds} rounds of "
          f"{args.duration:g} s\n")  # fmt: skip
    print("| target | requests/s | vs pyreqwest forwarder | vs aiohttp forwarder | CPU per request | "
          "aiohttp forwarder's CPU ÷ this | pyreqwest forwarder's CPU ÷ this |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for label, measured in rounds.items():
        rps = statistics.median(r for r, _ in measured)
        cpu = statistics.median(c for _, c in measured)
        print(f"| {label} | {rps:,.0f} | {rps / fw_rps:.2f}x | {rps / ai_rps:.2f}x | {cpu:.0f} µs | "
              f"{ai_cpu / cpu:.2f}x | {fw_cpu / cpu:.2f}x |")  # fmt: skip
    if args.baseline:
        print()
        # Paired: each round's CPU per request against the baseline's in the same round, then the median.
        base, this = builds
        for case in ("plain key", "everything on"):
            diffs = [
                (mine[1] - theirs[1]) / theirs[1] * 100
                for theirs, mine in zip(rounds[f"{base}: {case}"], rounds[f"{this}: {case}"], strict=True)
            ]
            each = ", ".join(f"{d:+.0f}%" for d in diffs)
            print(f"{case}: CPU per request vs the baseline, median of the rounds' differences "
                  f"{statistics.median(diffs):+.1f}% (rounds: {each})")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rounds, indent=2))


if __name__ == "__main__":
    main()
