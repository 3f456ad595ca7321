"""Load benchmark: the gateway (1 worker) vs the bare forwarding proxy vs direct-to-mock, in one run.

Starts an upstream (the bundled mock provider, or the baseline's nginx with a fixed answer), the gateway in
front of it (with its default guardrails on, and again with them off), and the bare pyreqwest and aiohttp
forwarders in benches/baselines/ (pointed at the same upstream), then drives each with the same wrk load:
non-streaming at 32 connections (throughput) and at 1 connection (latency), and streaming likewise against the
mock. A baseline that cannot start is reported as not measured, with the reason. Everything shares the same
2 cores, so compare the rows of one run, not numbers across runs.

With `--policy fallback|load_balance|latency` it measures the gateway on a direct model route and on a
`policy/<type>` route over two models of the same upstream instead (no bare proxies): what a routing
policy costs per request.

    python benches/load.py [--upstream mock|nginx] [--duration 10] [--policy TYPE] [--json results.json]
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

BASELINES = ROOT / "benches" / "baselines"
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


def require_wrk() -> None:
    """Stop with the fix, not a traceback, where wrk is missing (`make bench-load` installs it)."""
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (or run `make bench-load`, which does)")


def wrk(
    url: str, body: str, key: str, connections: int, duration: int, workdir: Path, cpus: str | None = None
) -> dict[str, float]:
    """One wrk run; `cpus` pins it (`taskset -c`)."""
    script = workdir / f"wrk-{abs(hash((url, body)))}.lua"
    script.write_text(WRK_SCRIPT.format(body=body, key=key))
    pin = ["taskset", "-c", cpus] if cpus else []
    out = subprocess.run(
        [*pin, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
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


def start_baseline_proxy(name: str, upstream_url: str) -> Server:
    """One of the bare forwarders in benches/baselines/, forwarding to `upstream_url` (a chat-completions URL)."""
    source = BASELINES / name
    if not source.exists():
        raise RuntimeError(f"{source} is missing")
    port = free_port()
    interface = "asgi" if "asgi" in name else "rsgi"
    cmd = [sys.executable, "-m", "granian", "--interface", interface, "--loop", "uvloop", "--workers", "1"]
    cmd += ["--port", str(port), "--no-ws", f"{source.stem}:app"]
    env = {**os.environ, "BASELINE_UPSTREAM": upstream_url}
    return Server(cmd, env, None, f"http://127.0.0.1:{port}", cwd=BASELINES)


NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  server {{
    listen 127.0.0.1:{port};
    location /v1/chat/completions {{
      default_type application/json;
      return 200 '{body}';
    }}
  }}
}}
"""
NGINX_BODY = (
    '{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"gpt-4o","choices":[{"index":0,'
    '"message":{"role":"assistant","content":"The capital of France is Paris."},"finish_reason":"stop"}],'
    '"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}'
)


def start_nginx(workdir: Path) -> Server:
    """The baseline's upstream: nginx returning a fixed completion (~100k req/s, never the bottleneck)."""
    if shutil.which("nginx") is None:
        sys.exit("nginx is not installed: apt-get install -y nginx-light")
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, body=NGINX_BODY))
    return Server(["nginx", "-c", str(conf), "-g", "daemon off;"], {**os.environ}, None, f"http://127.0.0.1:{port}")


def _gateway_config(workdir: Path, upstream: str, guardrails: bool = True) -> Path:
    config = workdir / ("bench.yaml" if guardrails else "bench-no-guardrails.yaml")
    config.write_text(
        f"providers: {{up: {{base_url: '{upstream}/v1', api_key: bench}}}}\n"
        "models:\n"
        "  - {id: up/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming]}\n"
        "  - {id: up/gpt-4o-b, upstream_model: gpt-4o, capabilities: [streaming]}\n"
        "policies:\n"
        + "".join(
            f"  - {{name: bench-{kind}, type: {kind}, targets: [{{model: up/gpt-4o, weight: 70}}, "
            "{model: up/gpt-4o-b, weight: 30}]}\n"
            for kind in POLICY_TYPES
        )
        + ("" if guardrails else "guardrails: {enabled: false}\n")
    )
    return config


POLICY_TYPES = ("fallback", "load_balance", "latency")


def run(args: argparse.Namespace, workdir: Path) -> dict[str, dict[str, dict[str, float]]]:
    upstream = start_mock() if args.upstream == "mock" else start_nginx(workdir)
    env = gateway_env(workdir / "router.db", upstream.base, _gateway_config(workdir, upstream.base))
    servers = [upstream]
    results: dict[str, dict[str, dict[str, float]]] = {}
    skipped: list[str] = []
    try:
        gateway = start_gateway(env, workers=1)
        servers.append(gateway)
        key = create_key(env, "bench")["key"]
        targets = [(f"direct to {args.upstream}", upstream.base, "gpt-4o")]
        for name, label in BARE_PROXIES if not args.policy else ():
            try:
                proxy = start_baseline_proxy(name, f"{upstream.base}/v1/chat/completions")
            except RuntimeError as exc:
                # Say so instead of printing a table that silently lacks the row.
                print(f"comparison with {label} cannot run: {exc}", file=sys.stderr, flush=True)
                skipped.append(label)
                continue
            servers.append(proxy)
            targets.append((label, proxy.base, "gpt-4o"))
        targets.append(("router gateway", gateway.base, "up/gpt-4o"))
        if args.policy:
            targets.append((f"router gateway, policy/bench-{args.policy}", gateway.base, f"policy/bench-{args.policy}"))
        # The same gateway with guardrails off (the prompt holds an email, so "on" masks it on every request).
        plain_env = gateway_env(workdir / "router.db", upstream.base, _gateway_config(workdir, upstream.base, False))
        plain = start_gateway(plain_env, workers=1)
        servers.append(plain)
        targets.append(("router gateway, guardrails off", plain.base, "up/gpt-4o"))
        # Only the mock streams, and the bare proxies buffer whole answers.
        # With several rounds the targets take turns, and each cell reports its median round: on a shared
        # machine a neighbour's burst then hits every target alike instead of whichever ran at that moment.
        rounds: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for label, base, model in targets:
                streams = args.upstream == "mock" and not label.startswith("bare")
                for mode in ("unary", "stream") if streams else ("unary",):
                    url, body = f"{base}/v1/chat/completions", _body(model, mode == "stream")
                    wrk(url, body, key, 8, 2, workdir)  # warm up pools and caches
                    rounds.setdefault((label, f"{mode}_c32"), []).append(
                        wrk(url, body, key, 32, args.duration, workdir)
                    )
                    rounds.setdefault((label, f"{mode}_c1"), []).append(wrk(url, body, key, 1, args.duration, workdir))
        for (label, cell), measured in rounds.items():
            ranked = sorted(measured, key=lambda m: m["rps"])
            results.setdefault(label, {})[cell] = ranked[len(ranked) // 2]
    finally:
        for server in reversed(servers):
            server.stop()
    for label in skipped:
        results[label] = {}
    return results


BARE_PROXIES = (
    ("proxy_pr.py", "bare proxy (RSGI, pyreqwest)"),
    ("proxy_rsgi.py", "bare proxy (RSGI, aiohttp)"),
    ("proxy_asgi.py", "bare proxy (ASGI, aiohttp)"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument(
        "--upstream",
        choices=["mock", "nginx"],
        default="mock",
        help="mock: the bundled mock provider (streams too); nginx: the baseline's fixed-answer upstream",
    )
    parser.add_argument(
        "--policy", choices=POLICY_TYPES, help="compare the gateway's direct-model route with a policy/ route"
    )
    parser.add_argument("--rounds", type=int, default=1, help="measure each cell this many times, interleaved")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    require_wrk()
    results = run(args, Path(tempfile.mkdtemp(prefix="router-bench-")))

    direct = results[f"direct to {args.upstream}"]
    print(f"\nLoad benchmark, upstream {args.upstream}, {os.cpu_count()} cores, 1 worker each, wrk -t1, "
          f"{args.duration}s per cell, median of {args.rounds} interleaved round(s)\n")  # fmt: skip
    print("| target | mode | req/s @32 conns | p50 @1 conn | p99 @1 conn | added p50 vs direct | non-2xx |")
    print("|---|---|---|---|---|---|---|")
    for label, row in results.items():
        if not row:
            print(f"| {label} | — | not measured: the baseline could not start (see above) | | | | |")
            continue
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
