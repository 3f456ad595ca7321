"""Load benchmark: what a feature costs, off vs on, in one run.

Two gateways (1 worker each) in front of the same mock, same catalog of 60 models; `off` is a plain key on
an empty database, `on` depends on the scenario:
- governance: approval configured (50 approved), a key owned by a user who is in three groups with access
  lists, the key in a group of its own and carrying its own access list, with an expiry and labels;
- spend: a monthly limit on the key, its user, its group and the organisation (every request reserves and
  settles against all four), and request metadata (tags, user, trace, extra) on every request; `off` is the
  same organisation, user, group and key with no limit anywhere and no metadata (`--plain-off`: a plain key
  on an empty database, so the difference also holds charging usage to a user and a group);
- guardrails: every category on, person names included (`off`: guardrails disabled), scanning the request
  and the answer; `--prompt email` puts an address in every prompt, so every request is also masked and
  writes a trigger to the audit log, `--prompt clean` has nothing to find;
- spool: the usage spool on (`usage_log: {spool: true}`, the default: every usage row is also appended to a
  file before its answer leaves), `off` the same gateway with `usage_log: {spool: false}`.
wrk drives both with the same load at 32 connections (unary, or `--stream`), alternating off/on for several
rounds (and which one goes first) so that drift on a shared machine hits both alike, and the gateway's own
CPU per request is read from /proc. With `--together` both are driven at the same time instead, each round:
both then see exactly the same interference, and share the CPU. The difference is taken per round (on vs
the off run next to it) and its median reported with its spread: on a shared 2-core machine single rounds
swing by ±10%, so the ratio of two medians would say little. The issues' bars: within 5% of requests/s
(governance, spend), within 10% (guardrails), within 3% (spool).

    python benches/load_compare.py --scenario governance|spend|guardrails|spool [--stream] [--prompt clean|email]
                                   [--duration 10] [--rounds 3] [--together]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load
from load import _body, require_wrk, wrk

from servers import Server, create_key, gateway_env, start_gateway, start_mock

MODELS = [f"up/m{i:02d}" for i in range(59)] + ["up/gpt-4o"]


def _config(workdir: Path, upstream: str, name: str, guardrails: str, usage_log: str = "{}") -> Path:
    config = workdir / f"{name}.yaml"
    lines = [f"providers: {{up: {{base_url: '{upstream}/v1', api_key: bench}}}}", "models:"]
    lines += [f"  - {{id: {m}, upstream_model: gpt-4o, capabilities: [streaming]}}" for m in MODELS]
    config.write_text("\n".join([*lines, f"guardrails: {guardrails}", f"usage_log: {usage_log}"]) + "\n")
    return config


def _cpu_seconds(server: Server) -> float:
    """User + system CPU of every process in the server's session (granian's main process and its workers)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == server.proc.pid:  # process group id
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _manager(gateway: Server) -> Callable[[str, str, dict], dict]:
    """Management API calls as the bootstrap admin."""
    headers = {"authorization": f"Bearer {gateway.env['ROUTER_ADMIN_KEY']}"}

    def call(method: str, path: str, body: dict) -> dict:
        r = httpx.request(method, f"{gateway.base}/v1/manage{path}", json=body, headers=headers)
        r.raise_for_status()
        return r.json()

    return call


def _governed_key(gateway: Server) -> str:
    call = _manager(gateway)
    call("POST", "/models/approved", {"models": MODELS[-50:]})
    user = call("POST", "/user", {"email": "bench@corp.test"})["id"]
    for i in range(3):
        call("POST", "/access-list", {"name": f"team-{i}", "patterns": [f"up/m{i}*"], "deny": ["up/m00"]})
        group = call("POST", "/group", {"name": f"group-{i}", "access_list": f"team-{i}"})["id"]
        call("POST", f"/group/{group}/members", {"user_id": user})
    call("POST", "/access-list", {"name": "key-list", "models": ["up/gpt-4o", *MODELS[-20:-1]], "providers": []})
    call("POST", "/group", {"name": "key-group", "access_list": "key-list"})
    return call(
        "POST",
        "/apikey",
        {
            "name": "governed",
            "owner": {"type": "user", "id": user},
            "groups": ["key-group"],
            "access_list": "key-list",
            "expires_at": "30d",
            "labels": {"env": "bench", "team": "perf"},
        },
    )["key"]


def _owned_key(gateway: Server, limit: float | None = None) -> str:
    """A key owned by a user who is in a group; `limit` on all four budgets (key, user, group, org), if given."""
    call = _manager(gateway)
    if limit is not None:
        call("POST", "/org/limit", {"monthly_limit": limit})
    user = call("POST", "/user", {"email": "spender@corp.test", "monthly_limit": limit})["id"]
    group = call("POST", "/group", {"name": "budgeted", "monthly_budget": limit})["id"]
    call("POST", f"/group/{group}/members", {"user_id": user})
    return call("POST", "/apikey", {"name": "spender", "owner": {"type": "user", "id": user}, "monthly_limit": limit})[
        "key"
    ]


def _limited_key(gateway: Server) -> str:
    return _owned_key(gateway, 1_000_000)


METADATA = {"tags": ["bench", "load"], "user_id": "end-user-1", "trace_id": "trace-1", "extra": {"feature": "x"}}


def _plain_key(gateway: Server) -> str:
    return create_key(gateway.env, "plain")["key"]


# Guardrails of each gateway: the default ones (every category but person names), none, or every one.
DEFAULT = "{}"
NONE = "{enabled: false}"
ALL_ON = os.environ.get("BENCH_GUARDRAILS", "{categories: {names: mask}}")
SCENARIOS = {
    # name: (label of `on`, its key, `off`'s key, metadata on every request, guardrails off, guardrails on)
    "governance": (
        "governance on (approved + groups + key list + expiry)",
        _governed_key,
        _plain_key,
        False,
        DEFAULT,
        DEFAULT,
    ),
    "spend": ("limits on key, user, group and org + metadata", _limited_key, _owned_key, True, DEFAULT, DEFAULT),
    "guardrails": ("every guardrail category on, both directions", _plain_key, _plain_key, False, NONE, ALL_ON),
    "spool": ("usage spool on", _plain_key, _plain_key, False, DEFAULT, DEFAULT),
}
# The usage log settings of `off` and `on` (the spool scenario's only difference; the others keep the default).
USAGE_LOG = {"spool": ("{spool: false}", "{spool: true}")}
BARS = {"guardrails": 10, "spool": 3}
PROMPTS = {"email": load.PROMPT, "clean": "What is the capital of France? Answer in one short sentence."}


def _paired(values: dict[str, list[float]]) -> tuple[float, str]:
    """The median of the per-round differences on vs off (%), and their spread (quartiles, min..max)."""
    diffs = sorted((on - off) / off * 100 for off, on in zip(values["off"], values["on"], strict=True))
    quartiles = statistics.quantiles(diffs, n=4, method="inclusive") if len(diffs) > 1 else [diffs[0]] * 3
    spread = f"quartiles {quartiles[0]:+.1f}% .. {quartiles[2]:+.1f}%, all {diffs[0]:+.1f}% .. {diffs[-1]:+.1f}%"
    return statistics.median(diffs), spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="governance")
    parser.add_argument("--stream", action="store_true", help="streamed answers instead of unary ones")
    parser.add_argument("--prompt", choices=sorted(PROMPTS), default="email", help="email: every prompt holds one")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--together", action="store_true", help="drive both gateways at once in every round")
    parser.add_argument("--plain-off", action="store_true", help="spend: `off` is a plain key on an empty database")
    parser.add_argument(
        "--swap", action="store_true", help="start `on` first (the gateway started second has measured slower)"
    )
    parser.add_argument("--json")
    args = parser.parse_args()
    require_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="router-compare-bench-"))
    mock = start_mock()
    servers = [mock]
    rps: dict[str, list[float]] = {"off": [], "on": []}
    cpu_us: dict[str, list[float]] = {"off": [], "on": []}
    label, make_key, make_off_key, with_metadata, guard_off, guard_on = SCENARIOS[args.scenario]
    if args.plain_off:
        make_off_key = _plain_key
    load.PROMPT = PROMPTS[args.prompt]
    try:
        log_off, log_on = USAGE_LOG.get(args.scenario, ("{}", "{}"))
        off_config = _config(workdir, mock.base, "off", guard_off, log_off)
        on_config = _config(workdir, mock.base, "on", guard_on, log_on)
        if args.swap:
            on = start_gateway(gateway_env(workdir / "on.db", mock.base, on_config))
            off = start_gateway(gateway_env(workdir / "off.db", mock.base, off_config))
        else:
            off = start_gateway(gateway_env(workdir / "off.db", mock.base, off_config))
            on = start_gateway(gateway_env(workdir / "on.db", mock.base, on_config))
        servers += [off, on]
        keys = {"off": make_off_key(off), "on": make_key(on)}
        bases = {"off": off.base, "on": on.base}
        plain = _body("up/gpt-4o", stream=args.stream)
        bodies = {
            "off": plain,
            "on": json.dumps({**json.loads(plain), "requesty": METADATA}) if with_metadata else plain,
        }
        for mode in ("off", "on"):
            wrk(f"{bases[mode]}/v1/chat/completions", bodies[mode], keys[mode], 8, 2, workdir)
        gateways = {"off": off, "on": on}

        def run(mode: str) -> tuple[float, float]:
            """(req/s, gateway CPU µs per request) of one wrk run against one gateway."""
            cpu_before = _cpu_seconds(gateways[mode])
            result = wrk(f"{bases[mode]}/v1/chat/completions", bodies[mode], keys[mode], 32, args.duration, workdir)
            if result["non_2xx"]:
                sys.exit(f"{mode}: {result['non_2xx']} non-2xx answers")
            requests = result["rps"] * args.duration
            return result["rps"], (_cpu_seconds(gateways[mode]) - cpu_before) / requests * 1e6

        with ThreadPoolExecutor(2) as pool:
            for round_number in range(args.rounds):
                if args.together:
                    results = dict(zip(("off", "on"), pool.map(run, ("off", "on")), strict=True))
                else:
                    # Alternate which goes first, so that whatever drifts within a round hits both alike.
                    order = ("off", "on") if round_number % 2 == 0 else ("on", "off")
                    results = {mode: run(mode) for mode in order}
                for mode, (round_rps, round_cpu) in results.items():
                    rps[mode].append(round_rps)
                    cpu_us[mode].append(round_cpu)
    finally:
        for server in reversed(servers):
            server.stop()
    mode_name = "streamed" if args.stream else "unary"
    how = "rounds driving both at once" if args.together else "alternating rounds"
    print(
        f"\n{args.scenario}: {args.rounds} {how} of {args.duration}s, {mode_name} @32 conns, 1 worker, "
        f"{args.prompt} prompt{', on started first' if args.swap else ''}\n"
    )
    print("| gateway | req/s per round | median req/s | gateway CPU per request (median) |")
    print("|---|---|---|---|")
    for mode, name in (("off", f"{args.scenario} off"), ("on", label)):
        rounds = ", ".join(f"{r:,.0f}" for r in rps[mode])
        print(f"| {name} | {rounds} | {statistics.median(rps[mode]):,.0f} | {statistics.median(cpu_us[mode]):.0f} µs |")
    bar = BARS.get(args.scenario, 5)
    rps_diff, rps_spread = _paired(rps)
    cpu_diff, cpu_spread = _paired(cpu_us)
    print(f"\nreq/s difference, median of the rounds: {rps_diff:+.1f}% (rounds: {rps_spread}; bar: within -{bar}%)")
    print(f"CPU per request difference, median of the rounds: {cpu_diff:+.1f}% (rounds: {cpu_spread})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rps": rps, "cpu_us_per_request": cpu_us}, indent=2))


if __name__ == "__main__":
    main()
