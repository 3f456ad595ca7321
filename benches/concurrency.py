"""Long streams and thousands of requests in flight through one gateway worker (`make bench-concurrency`).

Starts the Go upstream (`benches/concurrency/main.go`: SSE streams at a fixed pace, each chunk stamped with its
send time; unary answers after a fixed delay), then for each target (the upstream directly, a do-nothing granian
forwarder, the gateway with its default config and a plain key) runs the Go load generator against it and reads
the target worker's CPU time and RSS from /proc. The target is pinned to CPU 1 with `taskset`, the upstream and the
load generator to CPU 0: on a 2-core machine an unpinned run measures the load generator as much as the gateway.

With `--peer bifrost` (`make bench-concurrency PEER=bifrost`) the same cases also run against Bifrost's HTTP
gateway, built from source by `benches/concurrency/build_bifrost.sh`, pinned the same way; without its binary the
peer is skipped with a message.

    python benches/concurrency.py            # 2,000 streams x 30 s at 20 chunks/s; 1,000/2,000/4,000 in flight
    python benches/concurrency.py --quick    # the same cases, shorter and smaller (< 1 minute)
    python benches/concurrency.py --peer bifrost --peer-bin PATH   # and Bifrost, side by side
    # streams only, a checkout of main side by side, medians of 3 rounds, 32 KiB prompts:
    python benches/concurrency.py --quick --no-unary --baseline /tmp/main --repeat 3 --prompt-bytes 32768
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
ADMIN = "bench-admin-key-0123456789abcdef-0123456789"
TICK = os.sysconf("SC_CLK_TCK")
TARGET_CPU, LOAD_CPU = "1", "0"
BIFROST_BIN = HERE / "concurrency" / "bin" / "bifrost-http"  # where build_bifrost.sh puts it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on {port}")


def descendants(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            for child in f.read().split():
                found += [int(child), *descendants(int(child))]
    return found


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


class Proc:
    def __init__(
        self, args: list[str], env: dict[str, str] | None = None, cpu: str = TARGET_CPU, log: Path | None = None
    ) -> None:
        # A chatty target writes to a file: nobody reads the pipe, and a full pipe would stall it mid-run.
        self.log = log.open("w") if log is not None else None
        self.proc = subprocess.Popen(
            ["taskset", "-c", cpu, *args],
            env=env,
            stdout=self.log or subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def worker(self) -> int:
        """The process that serves (granian's worker: the biggest descendant; the process itself for Go)."""
        kids = descendants(self.proc.pid)
        return max(kids, key=rss_kib) if kids else self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.log is not None:
            self.log.close()


def start_upstream(binary: Path, chunks: int, interval_ms: float, delay_ms: float) -> tuple[Proc, str]:
    # The stream's shape and the unary delay as defaults too: Bifrost forwards no unknown request field.
    # fmt: off
    up = Proc([str(binary), "upstream", "-addr", "127.0.0.1:0", "-chunks", str(chunks),
               "-interval-ms", str(interval_ms), "-delay-ms", str(delay_ms)], cpu=LOAD_CPU)
    # fmt: on
    assert up.proc.stdout is not None
    return up, up.proc.stdout.readline().strip()


def start_gateway(workdir: Path, upstream: str, extra: str = "", source: Path = ROOT) -> tuple[Proc, str, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "router.yaml"
    config.write_text(
        "providers:\n  bench: {base_url: 'http://" + upstream + "/v1', api_key: upstream-key}\n"
        "models:\n  - {id: bench/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming]}\n" + extra
    )
    env = {
        **os.environ,
        "ROUTER_DB": str(workdir / "router.db"),
        "ROUTER_CONFIG": str(config),
        "ROUTER_ADMIN_KEY": ADMIN,
        "PYTHONPATH": str(source / "python"),
    }
    key = json.loads(
        subprocess.run(
            [PY, "-m", "router", "keys", "create", "--name", "bench", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["key"]
    port = free_port()
    gw = Proc([PY, "-m", "router", "serve", "--port", str(port), "--workers", "1"], env)
    wait_port(port)
    return gw, f"http://127.0.0.1:{port}/v1/chat/completions", key


def start_forwarder(upstream: str, module: str = "forwarder") -> tuple[Proc, str]:
    """A do-nothing forwarder of `benches/concurrency`: `forwarder` (pyreqwest) or `forwarder_aiohttp` (the
    issue's reference)."""
    port = free_port()
    env = {**os.environ, "UPSTREAM": f"http://{upstream}/v1/chat/completions", "PYTHONPATH": str(HERE / "concurrency")}
    fw = Proc(
        [
            PY,
            "-m",
            "granian",
            "--interface",
            "rsgi",
            "--loop",
            "uvloop",
            "--workers",
            "1",
            "--no-ws",
            "--backlog",
            "4096",
            "--port",
            str(port),
            f"{module}:app",
        ],
        env,
    )
    wait_port(port)
    return fw, f"http://127.0.0.1:{port}/v1/chat/completions"


def start_bifrost(binary: Path, workdir: Path, upstream: str, logging: bool, in_flight: int) -> tuple[Proc, str]:
    """Bifrost's HTTP gateway with its defaults (no auth on inference; config and request-log stores in SQLite
    under `-app-dir`; governance and telemetry plugins) and the upstream as its `openai` provider. Three settings
    differ from its defaults: the provider's concurrency (default 1,000 workers, 5,000 queued), sized to the
    largest load so the provider queue is not what the run measures; the request timeout (default 30 s), which
    bounds a whole stream (its upstream read deadline), so a 30-s stream that fell behind would be cut; and,
    when not `logging`, the request log."""
    workdir.mkdir(parents=True, exist_ok=True)
    provider = {
        "keys": [{"name": "bench", "value": "upstream-key", "models": [], "weight": 1.0}],
        "network_config": {"base_url": f"http://{upstream}", "default_request_timeout_in_seconds": 600},
        "concurrency_and_buffer_size": {"concurrency": in_flight, "buffer_size": 2 * in_flight},
    }
    config = {"client": {"enable_logging": logging}, "providers": {"openai": provider}}
    (workdir / "config.json").write_text(json.dumps(config, indent=2))
    port = free_port()
    # fmt: off
    args = [str(binary), "-app-dir", str(workdir), "-host", "127.0.0.1", "-port", str(port), "-log-level", "warn"]
    # fmt: on
    proc = Proc(args, log=workdir / "bifrost.log")
    try:
        wait_port(port)
    except RuntimeError:
        proc.stop()
        raise RuntimeError(f"bifrost did not start; its log: {workdir / 'bifrost.log'}") from None
    return proc, f"http://127.0.0.1:{port}/v1/chat/completions"


Target = tuple[str, Proc | None, str, str, str]  # name, process, URL, model, API key
BIFROST_PLAIN, BIFROST_DEFAULT = "bifrost, request logs off", "bifrost (default config: request logs in SQLite)"


def start_targets(
    workdir: Path,
    upstream: str,
    procs: list[Proc],
    plain: bool = True,
    baseline: Path | None = None,
    bifrost: Path | None = None,
    in_flight: int = 0,
) -> list[Target]:
    """The do-nothing forwarder, the gateway with guardrails off (when `plain`) and with its default config; with a
    `baseline` checkout, its gateway runs next to this one in each configuration (rows marked "baseline"); then
    Bifrost with its request log off and with its default config (when its binary is given)."""
    fw, fw_url = start_forwarder(upstream)
    procs.append(fw)
    targets: list[Target] = [("do-nothing forwarder", fw, fw_url, "gpt-4o", "-")]
    sources = [(ROOT, "")] if baseline is None else [(baseline, " [baseline]"), (ROOT, " [this tree]")]
    configs = [("router (default config: guardrails screen the answer)", "default", "")]
    if plain:
        configs.insert(0, ("router, guardrails off (pass-through)", "plain", "guardrails: {enabled: false}\n"))
    for label, name, extra in configs:
        for source, mark in sources:
            proc, url, key = start_gateway(workdir / (name + mark.strip(" []")), upstream, extra, source)
            procs.append(proc)
            targets.append((label + mark, proc, url, "bench/gpt-4o", key))
    if bifrost is not None:
        # Both Bifrost rows in every case: its request log costs it more than guardrails cost the router.
        for name, logging in ((BIFROST_PLAIN, False), (BIFROST_DEFAULT, True)):
            where = workdir / ("bifrost-default" if logging else "bifrost-plain")
            proc, url = start_bifrost(bifrost, where, upstream, logging, in_flight)
            procs.append(proc)
            targets.append((name, proc, url, "openai/gpt-4o", "-"))
    return targets


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread group of a worker: "python" (the event loop's thread), "granian" (its runtime
    threads), "pyreqwest" (the upstream client's runtime), by the thread's id and name. In a Go process (Bifrost)
    the groups mean nothing on their own: only their sum is read."""
    groups: dict[str, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        group = "python" if tid == str(pid) else "pyreqwest" if name.startswith("pyreqwest") else "granian"
        groups[group] = groups.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return groups


def measure(
    binary: Path,
    target: Proc | None,
    args: list[str],
    idle_rss: dict[int, int],
    window: tuple[float, float] | None = None,
    steady: tuple[float, float] | None = None,
) -> dict[str, float]:
    """Run the load generator (pinned to the load CPU) while sampling the target worker's RSS and CPU time. Memory
    is read against the worker's RSS before its first run (`idle_rss`): the allocator keeps what a run freed.

    `core_share` is how much of its pinned core the target got (CPU seconds per second) over `window` (seconds
    after the start: the generator's measured part), or the whole run: on a shared machine the neighbours set
    latency and requests/s, while the CPU per chunk or request stays comparable.

    `steady` (seconds after the start, streams only): the window in which every stream is open and none starts
    or ends; the worker's CPU per thread group over it, so the relay's cost per chunk without the streams'
    setup (authentication, routing, accounting) is `steady_<group>_s` / `steady_chunks`."""
    pid = target.worker() if target is not None else None
    if pid:
        idle_rss.setdefault(pid, rss_kib(pid))
    before_rss = idle_rss[pid] if pid else 0
    before_cpu = cpu_seconds(pid) if pid else 0.0
    peak = [before_rss]
    cpu_at: list[tuple[float, float]] = []  # (seconds after the start, the worker's CPU seconds)
    steady_at: list[dict[str, float]] = []  # the thread groups' CPU seconds at the steady window's two ends
    done = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        marks = list(steady or ())
        while not done.wait(0.05):
            if not pid:
                continue
            peak[0] = max(peak[0], rss_kib(pid))
            cpu_at.append((time.monotonic() - started, cpu_seconds(pid)))
            if marks and time.monotonic() - started >= marks[0]:
                steady_at.append({**thread_cpu(pid), "at": time.monotonic()})
                marks.pop(0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = subprocess.run(["taskset", "-c", LOAD_CPU, str(binary), *args], capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    result = json.loads(out.stdout)
    if pid:
        result["cpu_s"] = cpu_seconds(pid) - before_cpu
        start, end = window or (0.0, wall)
        inside = [(t, c) for t, c in cpu_at if start <= t <= end]
        if len(inside) >= 2 and inside[-1][0] > inside[0][0]:
            result["core_share"] = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
        else:
            result["core_share"] = result["cpu_s"] / wall
        result["rss_growth_kib"] = peak[0] - before_rss
        if len(steady_at) == 2:
            first, last = steady_at
            result["steady_seconds"] = last["at"] - first["at"]
            for group in ("python", "granian", "pyreqwest"):
                result[f"steady_{group}_s"] = last.get(group, 0.0) - first.get(group, 0.0)
    return result


def median_row(runs: list[dict[str, float]]) -> dict[str, float]:
    """Per measure, the median over repeated runs (each measure on its own: a row mixes runs)."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], int | float)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter, smaller runs (under a minute)")
    parser.add_argument("--streams", type=int, help="concurrent streams (default 2000; --quick 500)")
    parser.add_argument("--stream-seconds", type=float, help="each stream's length (default 30; --quick 4)")
    parser.add_argument("--in-flight", default=None, help="unary connection counts (default 1000,2000,4000)")
    parser.add_argument("--unary-seconds", type=float, help="measured seconds per unary run (default 10)")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout of the project (e.g. `git worktree add /tmp/main main`) whose gateway runs next to "
        "this one's in every stream configuration",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="stream rounds on fresh processes; the table shows each measure's median"
    )
    parser.add_argument("--no-unary", action="store_true", help="long streams only")
    parser.add_argument(
        "--prompt-bytes",
        type=int,
        default=0,
        help='each stream\'s user message (default: "hi"; agents send tens of KiB)',
    )
    parser.add_argument(
        "--peer",
        choices=["bifrost"],
        default=os.environ.get("PEER") or None,
        help="also run the cases against this gateway, pinned the same way (default: $PEER)",
    )
    parser.add_argument("--peer-bin", help=f"the peer's binary (default: $BIFROST_BIN or {BIFROST_BIN})")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.prompt_bytes < 0:
        parser.error("--prompt-bytes must be 0 or more")
    n_streams = args.streams or (500 if args.quick else 2000)
    seconds = args.stream_seconds or (4.0 if args.quick else 30.0)
    levels = (
        []
        if args.no_unary
        else [int(x) for x in (args.in_flight or ("1000" if args.quick else "1000,2000,4000")).split(",")]
    )
    unary_s = args.unary_seconds or (3.0 if args.quick else 10.0)
    bifrost = None
    if args.peer == "bifrost":
        bifrost = Path(args.peer_bin or os.environ.get("BIFROST_BIN") or BIFROST_BIN)
        if not os.access(bifrost, os.X_OK):
            print(
                f"skipping the bifrost peer: no executable at {bifrost}; build it with "
                "benches/concurrency/build_bifrost.sh (needs git and Go), or give --peer-bin",
                flush=True,
            )
            bifrost = None
    interval_ms = 50.0  # 20 chunks/s
    chunks = int(seconds * 1000 / interval_ms)
    ramp = 2.0 if args.quick else 5.0
    baseline = args.baseline.resolve() if args.baseline else None
    # Every stream is open from the end of the ramp (plus a second for the last ones' setup) until the first ends.
    steady = (ramp + 1.0, seconds - 0.5) if seconds - 0.5 > ramp + 2.0 else None

    workdir = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    binary = workdir / "concurrency"
    subprocess.run(["go", "build", "-o", str(binary), "."], cwd=HERE / "concurrency", check=True)
    up, upstream = start_upstream(binary, chunks, interval_ms, 250)
    procs = [up]
    in_flight = max([n_streams, *levels])
    stream_runs: dict[str, list[dict[str, float]]] = {}
    rows = []
    try:
        print(f"target pinned to CPU {TARGET_CPU}; upstream and load generator to CPU {LOAD_CPU}", flush=True)
        load_before = os.getloadavg()
        direct_name = "upstream directly"
        direct = (direct_name, None, f"http://{upstream}/v1/chat/completions", "gpt-4o", "-")
        for round_ in range(args.repeat):
            # fmt: off
            targets = start_targets(workdir / f"streams{round_}", upstream, procs, baseline=baseline, bifrost=bifrost,
                                    in_flight=in_flight)
            # fmt: on
            idle_rss: dict[int, int] = {}
            for name, proc, url, model, api_key in (direct, *targets):
                # fmt: off
                load = ["streams", "-url", url, "-key", api_key, "-model", model, "-c", str(n_streams),
                        "-chunks", str(chunks), "-interval-ms", str(interval_ms), "-ramp-s", str(ramp),
                        "-prompt-bytes", str(args.prompt_bytes)]
                # fmt: on
                # Core share while every stream is open.
                r = measure(binary, proc, load, idle_rss, window=(ramp, ramp + seconds), steady=steady)
                if "steady_seconds" in r:
                    r["steady_chunks"] = n_streams * 1000 / interval_ms * r["steady_seconds"]
                stream_runs.setdefault(name, []).append(r)
                print(f"  streams {name}: {json.dumps(r)}", flush=True)
            # Fresh processes: the allocator keeps what the streams freed, which would read as memory per request.
            for _, proc, *_ in targets:
                if proc is not None:
                    proc.stop()
        if levels:
            # fmt: off
            targets = start_targets(workdir / "unary", upstream, procs, plain=False, bifrost=bifrost,
                                    in_flight=in_flight)
            # fmt: on
            idle_rss = {}
            for level in levels:
                for name, proc, url, model, api_key in targets:
                    # fmt: off
                    r = measure(binary, proc, ["unary", "-url", url, "-key", api_key, "-model", model,
                                               "-c", str(level), "-duration-s", str(unary_s), "-delay-ms", "250"],
                                idle_rss, window=(2.0, 2.0 + unary_s))  # the generator measures from 4 x 250 ms + 1 s
                    # fmt: on
                    rows.append((name, r))
                    print(f"  unary c{level} {name}: {json.dumps(r)}", flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    load_after = os.getloadavg()
    print()
    print(f"Load average (1 min, {os.cpu_count()} CPUs): {load_before[0]:.1f} at start, {load_after[0]:.1f} at end")
    rounds = f", median of {args.repeat} rounds" if args.repeat > 1 else ""
    print(
        f"Long streams: {n_streams} concurrent, {seconds:g} s each at 20 chunks/s ({chunks} chunks), "
        f"{args.prompt_bytes or 2:,}-byte prompts, one worker{rounds}"
    )
    print(
        "| target | chunks | errors | latency p50 / p99 | added p99 | CPU per chunk | steady CPU per chunk "
        "(event loop + granian + pyreqwest) | core share | KiB per stream | slowest stream's gap p99 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    direct_p99 = median_row(stream_runs[direct_name])["latency_p99_ms"]
    for name, runs in stream_runs.items():
        r = median_row(runs)
        cpu = f"{r['cpu_s'] / max(r['chunks'], 1) * 1e6:.1f} µs" if "cpu_s" in r else "—"
        mem = f"{r['rss_growth_kib'] / n_streams:.1f}" if "rss_growth_kib" in r else "—"
        added = f"{r['latency_p99_ms'] - direct_p99:.2f} ms" if "cpu_s" in r else "—"
        share = f"{r['core_share']:.0%}" if "core_share" in r else "—"
        split = "—"
        if "steady_chunks" in r:
            parts = [r[f"steady_{g}_s"] / r["steady_chunks"] * 1e6 for g in ("python", "granian", "pyreqwest")]
            split = f"{sum(parts):.1f} µs"
            if name not in (BIFROST_PLAIN, BIFROST_DEFAULT):  # a Go process: one runtime, no such threads
                split += f" ({' + '.join(f'{x:.1f}' for x in parts)})"
        print(
            f"| {name} | {r['chunks']:,.0f} | {r['errors']:.0f} | {r['latency_p50_ms']:.2f} / "
            f"{r['latency_p99_ms']:.2f} ms | {added} | {cpu} | {split} | {share} | {mem} "
            f"| {r['slowest_stream_gap_p99_ms']:.1f} ms |"
        )
    if not rows:
        return
    print()
    print(f"In flight: 250 ms upstream, closed loop, {unary_s:g} s measured per run (ceiling = connections / 0.25 s)")
    print(
        "| connections | target | requests/s | % of ceiling | p50 | p99 | errors | CPU per request | core share "
        "| KiB per in-flight request |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        ceiling = r["connections"] / 0.25
        print(
            f"| {r['connections']:,} | {name} | {r['rps']:,.0f} | {r['rps'] / ceiling:.0%} | {r['p50_ms']:.0f} ms "
            f"| {r['p99_ms']:.0f} ms | {r['errors']} | {r['cpu_s'] / max(r['completed'], 1) * 1e6:.0f} µs "
            f"| {r['core_share']:.0%} | {r['rss_growth_kib'] / r['connections']:.1f} |"
        )


if __name__ == "__main__":
    main()
