"""The `router` command: serve the gateway, run the mock provider, manage API keys, check guardrails."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import msgspec

from . import mock
from .config import config_path, load_config
from .errors import ConfigError
from .governance.keys import create_key
from .guardrails import cli as guardrails_cli
from .metrics import METRICS_DIR_ENV
from .store import database_url, open_store


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
    db = database_url(config.database)
    open_store(db).close()  # migrate once here, not racing in every worker
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
        ]
        return _serve(args, banner)
    finally:
        child.terminate()
        child.wait(timeout=10)


# -- keys -------------------------------------------------------------------------------------------

_json = msgspec.json.Encoder()


def _keys_create(args: argparse.Namespace) -> int:
    store = open_store(_db_url())
    try:
        record, secret = create_key(store, args.name)
    except ValueError as exc:
        return _fail(str(exc))
    finally:
        store.close()
    if args.json:
        print(_json.encode({**msgspec.structs.asdict(record), "key": secret}).decode())
    else:
        print(f"created key {record.id} ({record.name})")
        print(f"key: {secret}")
        print("Store it now: it is shown only once.")
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    store = open_store(_db_url())
    try:
        records = store.list_keys()
    finally:
        store.close()
    if args.json:
        print(_json.encode([{**msgspec.structs.asdict(r), "active": r.active} for r in records]).decode())
        return 0
    print(f"{'ID':<22} {'NAME':<24} {'PREFIX':<14} {'STATUS':<8} CREATED")
    for r in records:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.created_at))
        print(f"{r.id:<22} {r.name[:24]:<24} {r.prefix + '…':<14} {'active' if r.active else 'revoked':<8} {created}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    store = open_store(_db_url())
    try:
        record = store.revoke_key(args.id)
    finally:
        store.close()
    if record is None:
        return _fail(f"no key with id {args.id!r}", 1)
    print(f"revoked key {record.id} ({record.name})")
    return 0


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

    keys = sub.add_parser("keys", help="create, list and revoke API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="mint a key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--json", action="store_true", help="print one JSON object with id and key")
    create.set_defaults(func=_keys_create)
    listing = keys.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key; every worker refuses it on the next request")
    revoke.add_argument("id")
    revoke.set_defaults(func=_keys_revoke)

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
