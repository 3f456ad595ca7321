"""The `router` command: serve the gateway, run the mock provider, govern keys, models, lists and groups, and
check guardrails."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from . import mock
from .admin import cli as admin_cli
from .config import config_path, load_config
from .errors import ConfigError
from .governance.keys import admin_key_from_env, create_key
from .guardrails import cli as guardrails_cli
from .mcp import cli as mcp_cli
from .metrics import METRICS_DIR_ENV
from .providers.byok import MasterKey
from .shared import REDIS_ENV, redis_settings
from .shared.ledger import raise_to
from .shared.settings import safe_url
from .spend.budgets import period_of
from .spend.ledger import Ledger, ledger_path
from .store import database_url, db_cli, default_database, open_store, sqlite_path
from .store.spool import replay, spool_dir
from .worker_signals import stop_on_first_signal


def _fail(message: str, code: int = 2) -> int:
    print(f"router: error: {message}", file=sys.stderr)
    return code


def _db_url(config: str | None = None) -> str:
    # ROUTER_DB first without reading the config: key management must work even when the config does not.
    if os.environ.get("ROUTER_DB"):
        return os.environ["ROUTER_DB"]
    return database_url(load_config(config).database, config)


# -- serve ------------------------------------------------------------------------------------------


PR_SET_THP_DISABLE = 41


def _no_transparent_huge_pages() -> None:
    """Back the gateway's memory with 4 KiB pages, not 2 MiB transparent huge pages (the setting is inherited by
    the workers granian forks).

    pyreqwest's allocator (mimalloc) asks for huge pages on the arena its upstream connections live in, and a
    huge page is resident as a whole once touched: with 1,000 open streams that made ~16 KiB per stream of
    memory no connection used (93 -> 77 KiB per stream in one worker, docs/benchmarks-concurrency.md). The page
    faults huge pages save cost nothing measurable per relayed chunk. Linux only; elsewhere, or where the kernel
    refuses, nothing changes."""
    if sys.platform != "linux":
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)


def _serve(args: argparse.Namespace, banner: Sequence[str] = ()) -> int:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    path = config_path(args.config)
    config = load_config(path)
    MasterKey.from_env()  # a malformed ROUTER_MASTER_KEY stops the start here, named, not in every worker
    admin_key_from_env()  # so does a ROUTER_ADMIN_KEY too short to be safe
    db = database_url(config.database, path)
    # Migrate once here, not racing in every worker (SQLite always; PostgreSQL with --migrate, else the schema
    # must be current already: `router db upgrade`).
    store = open_store(db, announce=True, migrate=True if getattr(args, "migrate", True) else None)
    if config.governance.require_approval:
        store.require_approval()
    if config.spend.org_monthly_limit is not None:
        store.set_org_limit(config.spend.org_monthly_limit)
    # Usage rows of answers sent before a process was killed, committed before the ledger is rebuilt from them.
    replay(spool_dir(store.path), store)
    # Reconcile before any worker runs: the shared ledger restarts from the spend the database recorded,
    # which also drops reservations a crashed process may have left behind.
    committed = store.spend_for_period(period_of(time.time(), config.spend.reset_day))
    redis = redis_settings(config)
    if redis is not None:
        # Other replicas may be serving: raise Redis's counts to the database's, never reset them (a crashed
        # process's reservations come back when its lease expires).
        try:
            raise_to(redis, committed)
        except Exception as exc:
            where = safe_url(redis.url)
            print(f"router: warning: Redis {where} unreachable at start ({exc}); workers retry", flush=True)
    else:
        ledger = Ledger(ledger_path(store.path))
        ledger.rebuild(committed)
        ledger.close()
    store.close()
    # Workers are separate processes that rebuild the app from these.
    os.environ["ROUTER_CONFIG"] = str(path.resolve())
    os.environ["ROUTER_DB"] = db if db == ":memory:" or "://" in db else os.path.abspath(db)
    if redis is not None:
        os.environ[REDIS_ENV] = redis.url
    workers = args.workers or os.cpu_count() or 1
    metrics_dir = None
    if workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="router-metrics-")
        os.environ[METRICS_DIR_ENV] = metrics_dir
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"router gateway listening on http://{host}:{args.port}/v1", flush=True)
    print(f"  config: {path}  database: {db}  workers: {workers}", flush=True)
    for line in banner:
        print(line, flush=True)
    server = Server(
        "router.server:create_app",
        address=args.host,
        port=args.port,
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,
        workers=workers,
        factory=True,
        log_access=False,
        # Thousands of clients may connect at once (LLM traffic holds connections for seconds); the kernel caps
        # this at net.core.somaxconn (4096 by default on current kernels). 2048 made a burst of 4,000 wait on SYN
        # retries.
        backlog=8192,
        workers_kill_timeout=30,
        # A worker that dies is replaced while the others keep serving (granian stops everything otherwise).
        respawn_failed_workers=True,
    )
    stop_on_first_signal()
    _no_transparent_huge_pages()
    try:
        server.serve()
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _forget_database(url: str) -> None:
    """Delete the demo's SQLite database and every side file beside it (`-wal`, `-shm`, `-signal`, …).

    Only the bundled demo's own file (`demo.db` in the data folder) or one ROUTER_DB names explicitly: a real
    config's database is never deleted by a demo flag."""
    if url.startswith(("postgres://", "postgresql://")):
        # A server's database may be shared with other hosts: never emptied by a demo flag.
        raise ConfigError(
            "--fresh only deletes a SQLite demo database; ROUTER_DB names a PostgreSQL database: "
            "start the demo on a new database, or leave out --fresh"
        )
    path = sqlite_path(url)
    if path is None:
        return
    if not os.environ.get("ROUTER_DB") and path != Path(default_database(demo=True)).absolute():
        raise ConfigError(f"--fresh only deletes the bundled demo's database; {path} belongs to your config")
    for file in [path, *path.parent.glob(glob.escape(path.name) + "-*")]:
        if file.is_dir():  # the usage spool (`-spool/`): its files were replayed into the database being deleted
            shutil.rmtree(file, ignore_errors=True)
            continue
        with contextlib.suppress(FileNotFoundError):
            file.unlink()
    print(f"router: deleted the demo database {path}", flush=True)


def _command_hint() -> str | None:
    """How to get the `router` command in a new shell, when this one's is not on PATH (a virtualenv not active)."""
    here = Path(sys.executable).parent / "router"
    found = shutil.which("router")
    if not here.exists() or (found and Path(found).resolve() == here.resolve()):
        return None
    activate = here.parent / "activate"
    how = f"source {activate}" if activate.exists() else f"PATH={here.parent}:$PATH"
    return f"# the router command (keys, models, …) in another shell: {how}  (or run {here})"


def _demo_banner(base: str, secret: str, admin_key: str) -> list[str]:
    """Short and copy-pasteable: the two exports first, then one line per feature to try."""
    auth = '-H "Authorization: Bearer $ROUTER_API_KEY"'
    chat = f"curl -s {base}/v1/chat/completions {auth} -H 'content-type: application/json'"

    def ask(model: str, text: str, extra: str = "") -> str:
        return f"""{chat} -d '{{"model":"{model}",{extra}"messages":[{{"role":"user","content":"{text}"}}]}}'"""

    lines = [
        "",
        "# demo keys (new on every start; the API key is shown only here):",
        f"export ROUTER_API_KEY={secret}",
        f"export ROUTER_ADMIN_KEY={admin_key}",
        "# chat, OpenAI format:",
        ask("mock/gpt-4o", "Hello"),
        "# Anthropic Messages (any model works on any endpoint):",
        f"curl -s {base}/v1/messages -H \"x-api-key: $ROUTER_API_KEY\" -H 'anthropic-version: 2023-06-01' "
        """-H 'content-type: application/json' -d '{"model":"anthropic/claude-sonnet-4-5","max_tokens":99,"""
        """"messages":[{"role":"user","content":"Hi"}]}'""",
        "# routing policies (fallback over a flaky model, load balancing, latency): see the x-router-model and "
        "x-router-attempts headers",
        ask("policy/demo-fallback", "Hi").replace("curl -s ", "curl -si ", 1),
        ask("policy/demo-balance", "Hi"),
        ask("policy/demo-fastest", "Hi"),
        "# guardrails mask personal data and secrets before the model sees them (this mock echoes what it got):",
        ask("mock/gpt-4o", "Mail jane.doe@example.com, key AKIAQ3EGUSBJ5EXAMPLZ", '"mock":{"echo":true},'),
        "# management API (admin key):",
        f"""curl -s {base}/v1/manage/models -H "Authorization: Bearer $ROUTER_ADMIN_KEY\"""",
    ]
    hint = _command_hint()
    if hint:
        lines.append(hint)
    return lines


def _die_with_parent() -> None:
    """In the mock's process: get SIGTERM when the demo dies, even by SIGKILL (Linux; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_for_mock(child: subprocess.Popen, port: int, timeout: float = 30.0) -> bool:
    """Whether the mock answers its health check before `timeout`: the banner's first curl line must work the
    moment it is printed, even on a machine slow to start the mock's workers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and child.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_mock/health", timeout=1) as answer:
                if answer.status == 200:
                    return True
        except OSError:  # not listening yet (URLError and timeouts are OSErrors)
            time.sleep(0.05)
    return False


def _demo(args: argparse.Namespace) -> int:
    """The README's one command: a mock upstream, fresh demo keys, and the gateway in front of it."""
    mock_url = f"http://127.0.0.1:{args.mock_port}/v1"
    os.environ.setdefault("ROUTER_MOCK_URL", mock_url)
    url = _db_url(args.config)
    if args.fresh:
        _forget_database(url)
    # The demo's admin key: the user's own if set, else a fresh random one for this run only (never stored).
    admin_key = os.environ.get("ROUTER_ADMIN_KEY") or "rk-admin-" + secrets.token_urlsafe(32)
    os.environ["ROUTER_ADMIN_KEY"] = admin_key
    # The mock runs in its own session so that Ctrl-C reaches the gateway only: the gateway stops first and
    # closes its pooled connections, then the mock is stopped below with none open and exits at once (hit by
    # the same Ctrl-C, it would wait on the gateway's keep-alive connections until its kill timeout).
    child = subprocess.Popen(
        [sys.executable, "-m", "router", "mock", "--port", str(args.mock_port)],
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    try:
        if not _wait_for_mock(child, args.mock_port):
            return _fail(f"the mock provider could not start on port {args.mock_port}")
        # Migrated as `_serve` below migrates it: an empty PostgreSQL database named by ROUTER_DB works too.
        store = open_store(url, announce=True, migrate=True)
        _record, secret = create_key(store, "demo")
        store.close()
        host = f"[{args.host}]" if ":" in args.host else args.host
        return _serve(args, _demo_banner(f"http://{host}:{args.port}", secret, admin_key))
    finally:
        child.terminate()
        child.wait(timeout=10)


# -- parser -----------------------------------------------------------------------------------------


def _server_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config file (default: $ROUTER_CONFIG, else the bundled demo config)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="router", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    _server_arguments(serve)
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="apply pending schema migrations at start (PostgreSQL; SQLite always migrates at start)",
    )
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="run the mock provider, mint a demo key, and serve the gateway")
    _server_arguments(demo)
    demo.add_argument("--mock-port", type=int, default=9090, help="port of the bundled mock (default: 9090)")
    demo.add_argument(
        "--fresh", action="store_true", help="delete the demo's database first: no keys, no usage, approval off"
    )
    demo.set_defaults(func=_demo)

    mock_parser = sub.add_parser("mock", help="run the bundled mock provider (an OpenAI-compatible upstream)")
    mock.add_arguments(mock_parser)
    mock_parser.set_defaults(func=lambda a: mock.run(a) or 0)

    admin_cli.add_commands(sub)
    db_cli.add_commands(sub)
    mcp_cli.add_commands(sub)

    guardrails = sub.add_parser("guardrails", help="check the guardrails").add_subparsers(dest="action", required=True)
    check = guardrails.add_parser("test", help="show what the configured guardrails would mask or block in a text")
    guardrails_cli.add_arguments(check)
    check.set_defaults(func=guardrails_cli.test_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
