"""The `router` command: serve the gateway, run the mock provider, govern keys, models, lists and groups, and
check guardrails."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from . import mock
from .admin import cli as admin_cli
from .config import config_path, load_config
from .errors import ConfigError
from .governance.keys import admin_key_from_env, create_key
from .guardrails import cli as guardrails_cli
from .mcp import cli as mcp_cli
from .metrics import METRICS_DIR_ENV
from .providers.byok import MasterKey
from .spend.budgets import period_of
from .spend.ledger import Ledger, ledger_path
from .store import database_url, open_store
from .store.spool import replay, spool_dir


def _fail(message: str, code: int = 2) -> int:
    print(f"router: error: {message}", file=sys.stderr)
    return code


def _db_url(config: str | None = None) -> str:
    # ROUTER_DB first without reading the config: key management must work even when the config does not.
    if os.environ.get("ROUTER_DB"):
        return os.environ["ROUTER_DB"]
    return database_url(load_config(config).database)


# -- serve ------------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, banner: Sequence[str] = ()) -> int:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    path = config_path(args.config)
    config = load_config(path)
    MasterKey.from_env()  # a malformed ROUTER_MASTER_KEY stops the start here, named, not in every worker
    admin_key_from_env()  # so does a ROUTER_ADMIN_KEY too short to be safe
    db = database_url(config.database)
    store = open_store(db)  # migrate once here, not racing in every worker
    if config.governance.require_approval:
        store.require_approval()
    if config.spend.org_monthly_limit is not None:
        store.set_org_limit(config.spend.org_monthly_limit)
    # Usage rows of answers sent before a process was killed, committed before the ledger is rebuilt from them.
    replay(spool_dir(store.path), store)
    # Reconcile before any worker runs: the shared ledger restarts from the spend the database recorded,
    # which also drops reservations a crashed process may have left behind.
    ledger = Ledger(ledger_path(store.path))
    ledger.rebuild(store.spend_for_period(period_of(time.time(), config.spend.reset_day)))
    ledger.close()
    store.close()
    # Workers are separate processes that rebuild the app from these.
    os.environ["ROUTER_CONFIG"] = str(path.resolve())
    os.environ["ROUTER_DB"] = db if db == ":memory:" or "://" in db else os.path.abspath(db)
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
        backlog=2048,
        workers_kill_timeout=30,
        # A worker that dies is replaced while the others keep serving (granian stops everything otherwise).
        respawn_failed_workers=True,
    )
    try:
        server.serve()
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _demo(args: argparse.Namespace) -> int:
    """The README's one command: a mock upstream, a fresh demo key, and the gateway in front of it."""
    mock_url = f"http://127.0.0.1:{args.mock_port}/v1"
    os.environ.setdefault("ROUTER_MOCK_URL", mock_url)
    child = subprocess.Popen([sys.executable, "-m", "router", "mock", "--port", str(args.mock_port)])
    try:
        time.sleep(0.5)
        if child.poll() is not None:
            return _fail(f"the mock provider could not start on port {args.mock_port}")
        store = open_store(_db_url(args.config))
        record, secret = create_key(store, "demo")
        store.close()
        base = f"http://{args.host}:{args.port}/v1"
        banner = [
            f"  demo API key (shown once, id {record.id}): {secret}",
            "  try it:",
            f"    curl {base}/chat/completions -H 'Authorization: Bearer {secret}' \\",
            "      -H 'Content-Type: application/json' \\",
            """      -d '{"model":"mock/gpt-4o","messages":[{"role":"user","content":"Hello"}]}'""",
            "  or as Anthropic Messages (any model works on any endpoint):",
            f"    curl {base}/messages -H 'x-api-key: {secret}' -H 'anthropic-version: 2023-06-01' \\",
            "      -H 'Content-Type: application/json' \\",
            """      -d '{"model":"anthropic/claude-sonnet-4-5","max_tokens":99,""",
            """           "messages":[{"role":"user","content":"Hi"}]}'""",
        ]
        return _serve(args, banner)
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
    serve.set_defaults(func=_serve)

    demo = sub.add_parser("demo", help="run the mock provider, mint a demo key, and serve the gateway")
    _server_arguments(demo)
    demo.add_argument("--mock-port", type=int, default=9090, help="port of the bundled mock (default: 9090)")
    demo.set_defaults(func=_demo)

    mock_parser = sub.add_parser("mock", help="run the bundled mock provider (an OpenAI-compatible upstream)")
    mock.add_arguments(mock_parser)
    mock_parser.set_defaults(func=lambda a: mock.run(a) or 0)

    admin_cli.add_commands(sub)
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
