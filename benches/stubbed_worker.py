"""The gateway worker's own Python per request, with the upstream call stubbed out: no sockets, no granian.

Builds the App in this process (the `load_pinned.py` catalog: ten models of one provider), replaces every
provider's `post` with an instant chat completion, and drives `App.__rsgi__` with a minimal RSGI scope and
protocol from 32 tasks, as `wrk -c32` does. The case is `load_pinned.py`'s "everything on" (model approval, an
access list and a monthly limit on the key, `x-router-metadata` on every request, the default guardrails masking
an email address) or, with `--plain`, a plain key. Reports the process CPU (every thread: the event loop and the
usage writer) per request over `--segments` segments of `--requests` requests: the minimum and the median.
`--account` times `App._account` (metrics, settling, sessions, the usage row; spool off) on one request.

Compare two checkouts by running each in turn, pinned to the same CPU, several times (single runs swing by a few
µs on a shared machine):

    PYTHONPATH=python taskset -c 1 python benches/stubbed_worker.py [--plain] [--account]
    PYTHONPATH=/other/checkout/python taskset -c 1 python benches/stubbed_worker.py ...
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import tempfile
import time
import timeit

MODELS = ["bench/gpt-4o", *(f"bench/m{i:02d}" for i in range(9))]
PROMPT = "What is the capital of France? My email is jane.doe@example.com"
METADATA = json.dumps({"tags": ["bench", "load"], "user_id": "end-user-1", "trace_id": "trace-1"})
ADMIN = "sk-admin-" + "x" * 40
ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    }
).encode()
TASKS = 32


class Scope:
    __slots__ = ("client", "headers", "method", "path", "proto", "query_string")

    def __init__(self, method: str, path: str, headers: dict[str, str]) -> None:
        self.proto, self.method, self.path, self.headers = "http", method, path, headers
        self.client, self.query_string = "127.0.0.1:5555", ""


class Proto:
    """The RSGI protocol's part a JSON request uses: the body (already received) and a whole answer."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.answer: tuple[int, bytes] | None = None

    def __call__(self) -> asyncio.Future[bytes]:
        read = asyncio.get_running_loop().create_future()
        read.set_result(self.body)
        return read

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, body)


class Response:
    status = 200

    def get_header(self, name: str) -> None:
        return None


async def instant_post(url: str, body: bytes, request_id: str, extra: dict[str, str] | None = None):
    await asyncio.sleep(0)  # one loop turn, as an upstream answer arrives on a later one
    return Response(), ANSWER


async def call(app, path: str, key: str, body: bytes, metadata: str | None = None) -> tuple[int, bytes]:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json", "content-length": str(len(body))}
    if metadata:
        headers["x-router-metadata"] = metadata
    proto = Proto(body)
    await app.__rsgi__(Scope("POST", path, headers), proto)
    assert proto.answer is not None
    return proto.answer


async def main(args: argparse.Namespace) -> None:
    from router.server.app import create_app

    app = create_app()
    await app.startup()
    # As `App.__rsgi_init__` sets up a worker.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    for provider in app.catalog.providers.values():
        provider.post = instant_post

    async def manage(path: str, body: dict) -> dict:
        status, answer = await call(app, "/v1/manage" + path, ADMIN, json.dumps(body).encode())
        assert status < 300, answer
        return json.loads(answer)

    if args.plain:
        key, metadata = (await manage("/apikey", {"name": "plain"}))["key"], None
    else:
        await manage("/models/approved", {"models": MODELS[:6]})
        await manage("/access-list", {"name": "key-list", "models": MODELS[:4], "providers": []})
        limited = {"name": "governed", "access_list": "key-list", "monthly_limit": 1_000_000}
        key, metadata = (await manage("/apikey", limited))["key"], METADATA
    body = json.dumps({"model": MODELS[0], "messages": [{"role": "user", "content": PROMPT}]}).encode()
    status, answer = await call(app, "/v1/chat/completions", key, body, metadata)
    assert status == 200, answer
    if args.account:
        seen = []
        account = app._account
        app._account = lambda ex: (seen.append(ex), account(ex))
        await call(app, "/v1/chat/completions", key, body, metadata)
        app._account = account
        ex = seen[0]
        ex.hold = None  # settling the same hold again and again would drift the ledger
        assert app.usage is not None
        app.usage._spool = None  # the spool's write is the kernel's: measured by the load benchmarks
        runs = []
        for _ in range(args.segments):
            app.usage._pending.clear()
            runs.append(timeit.timeit(lambda: account(ex), number=2000) / 2000 * 1e6)
        print(f"App._account: min {min(runs):.2f} µs, median {statistics.median(runs):.2f} µs")
    else:
        each = args.requests // TASKS

        async def client() -> None:
            for _ in range(each):
                await call(app, "/v1/chat/completions", key, body, metadata)

        runs = []
        for _ in range(args.segments):
            started = time.process_time()
            await asyncio.gather(*(client() for _ in range(TASKS)))
            runs.append((time.process_time() - started) / (each * TASKS) * 1e6)
        case = "plain key" if args.plain else "everything on"
        print(f"{case}: CPU per request min {min(runs):.1f} µs, median {statistics.median(runs):.1f} µs")
    await app.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", action="store_true", help="a plain key, no metadata (default: everything on)")
    parser.add_argument("--account", action="store_true", help="time App._account alone")
    parser.add_argument("--segments", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2048)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="bench-stubbed-")
    config = os.path.join(workdir, "router.yaml")
    lines = ["providers:", "  bench: {base_url: 'http://127.0.0.1:9/v1', api_key: upstream-key}", "models:"]
    lines += [f"  - {{id: {m}, upstream_model: gpt-4o, capabilities: [streaming]}}" for m in MODELS]
    with open(config, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.environ.update(ROUTER_DB=os.path.join(workdir, "router.db"), ROUTER_CONFIG=config, ROUTER_ADMIN_KEY=ADMIN)
    import uvloop

    uvloop.run(main(args))
