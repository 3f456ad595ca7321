"""Load benchmark: the gateway (1 worker) vs the bare forwarding proxy vs direct-to-mock, in one run.

Starts the bundled mock provider, the gateway on the bundled demo config, and the bare pyreqwest and aiohttp
forwarders from ../shared/perf-baseline (patched to point at the mock), then drives each with the same wrk
load: non-streaming at 32 connections (throughput) and at 1 connection (latency), and streaming likewise.
Everything shares the same 2 cores, so compare the rows of one run, not numbers across runs.

    python benches/load.py [--duration 10] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import Server, create_key, free_port, gateway_env, start_gateway, start_mock  # noqa: E402

BASELINE = ROOT.parent / "shared" / "perf-baseline"
PROMPT = "What is the capital of France? My email is jane.doe@example.com"

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = [[{body}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {key}"
"""


def _body(model: str, stream: bool) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
    return json.dumps(body)


def _to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, body: str, key: str, connections: int, duration: int, workdir: Path) -> dict[str, float]:
    script = workdir / f"wrk-{abs(hash((url, body)))}.lua"
    script.write_text(WRK_SCRIPT.format(body=body, key=key))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        result[f"p{pct}_ms"] = _to_ms(re.search(rf"\s{pct}%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    result["non_2xx"] = int(errors.group(1)) if errors else 0
    return result


def start_baseline_proxy(name: str, mock_url: str, workdir: Path) -> Server | None:
    """One of the bare forwarders from ../shared/perf-baseline, run from a scratch copy (never committed)."""
    source = BASELINE / name
    if not source.exists():
        return None
    # The baseline scripts forward to a fixed nginx address; point them at our mock instead.
    patched = source.read_text().replace("http://127.0.0.1:18080/v1/chat/completions", f"{mock_url}/chat/completions")
    module = workdir / name
    module.write_text(patched)
    port = free_port()
    interface = "asgi" if "asgi" in name else "rsgi"
    cmd = [sys.executable, "-m", "granian", "--interface", interface, "--loop", "uvloop", "--workers", "1"]
    cmd += ["--port", str(port), "--no-ws", f"{module.stem}:app"]
    return Server(cmd, {**os.environ}, None, f"http://127.0.0.1:{port}", cwd=workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")

    workdir = Path(tempfile.mkdtemp(prefix="router-bench-"))
    mock = start_mock()
    mock_base = mock.base
    env = gateway_env(workdir / "router.db", mock_base)
    gateway = start_gateway(env, workers=1)
    key = create_key(env, "bench")["key"]
    targets = [("direct to mock", f"{mock_base}/v1/chat/completions", "gpt-4o")]
    proxies = []
    bare = (
        ("proxy_pr.py", "bare proxy (RSGI, pyreqwest)"),
        ("proxy_rsgi.py", "bare proxy (RSGI, aiohttp)"),
        ("proxy_asgi.py", "bare proxy (ASGI, aiohttp)"),
    )
    for name, label in bare:
        proxy = start_baseline_proxy(name, f"{mock_base}/v1", workdir)
        if proxy is not None:
            proxies.append(proxy)
            targets.append((label, f"{proxy.base}/v1/chat/completions", "gpt-4o"))
    targets.append(("router gateway", f"{gateway.base}/v1/chat/completions", "mock/gpt-4o"))

    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for label, url, model in targets:
            streaming = label.startswith(("direct", "router"))  # the bare proxies buffer whole answers
            row = results[label] = {}
            for mode in ("unary", "stream") if streaming else ("unary",):
                body = _body(model, mode == "stream")
                wrk(url, body, key, 8, 2, workdir)  # warm up pools and caches
                row[f"{mode}_c32"] = wrk(url, body, key, 32, args.duration, workdir)
                row[f"{mode}_c1"] = wrk(url, body, key, 1, args.duration, workdir)
    finally:
        gateway.stop()
        for proxy in proxies:
            proxy.stop()
        mock.stop()

    direct = results["direct to mock"]
    print(f"\nLoad benchmark, {os.cpu_count()} cores, 1 worker each, wrk -t1, {args.duration}s per cell\n")
    print("| target | mode | req/s @32 conns | p50 @1 conn | p99 @1 conn | added p50 vs direct | non-2xx |")
    print("|---|---|---|---|---|---|---|")
    for label, row in results.items():
        for mode in ("unary", "stream"):
            if f"{mode}_c32" not in row:
                continue
            c32, c1 = row[f"{mode}_c32"], row[f"{mode}_c1"]
            added = c1["p50_ms"] - direct[f"{mode}_c1"]["p50_ms"]
            print(
                f"| {label} | {mode} | {c32['rps']:,.0f} | {c1['p50_ms']:.3f} ms | {c1['p99_ms']:.3f} ms "
                f"| {added:+.3f} ms | {c32['non_2xx'] + c1['non_2xx']} |"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
