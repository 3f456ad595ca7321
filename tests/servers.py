"""Start real servers (the gateway under granian, the mock provider) as subprocesses on free loopback ports."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROUTER = [sys.executable, "-m", "router"]
# The bootstrap admin key of every test gateway (the gateway refuses one shorter than 32 characters).
ADMIN_KEY = "admin-test-key-0123456789abcdef-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out}")
        try:
            if httpx.get(url, timeout=0.5).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {url} did not come up in {timeout}s")


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout}s")


class Server:
    """A server subprocess in its own session, so stopping it stops its granian workers too."""

    def __init__(
        self, args: list[str], env: dict[str, str], health_url: str | None, base: str, cwd: Path | None = None
    ) -> None:
        self.base = base
        self.env = env
        self.proc = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            if health_url is None:
                wait_port(int(base.rsplit(":", 1)[1]), self.proc)
            else:
                wait_http(health_url, self.proc)
        except BaseException:
            # A server that never came up is stopped here, pipe closed: nobody will call stop() on it.
            self.stop(signal.SIGKILL, timeout=10)
            raise

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate()
        return out or ""


def start_mock(extra: list[str] | None = None) -> Server:
    port = free_port()
    env = {**os.environ}
    return Server(
        [*ROUTER, "mock", "--port", str(port), *(extra or [])],
        env,
        f"http://127.0.0.1:{port}/_mock/health",
        f"http://127.0.0.1:{port}",
    )


_pg_databases: dict[str, str] = {}


def local_files(env: dict[str, str]) -> Path:
    """Where the gateway keeps its host's files: the SQLite file (`<it>-spool`, `<it>-budgets` beside it), or
    for PostgreSQL their prefix in the data folder."""
    url = env["ROUTER_DB"]
    if url.startswith("postgresql://"):
        from router.store.postgres import state_path

        return Path(state_path(url, Path(env["XDG_DATA_HOME"]) / "router"))
    return Path(url)


def gateway_engine() -> str:
    """The engine test gateways store on: ROUTER_TEST_ENGINE=postgresql gives each a fresh database of the
    session's throwaway PostgreSQL server (tests/pg.py); the default is a SQLite file."""
    engine = os.environ.get("ROUTER_TEST_ENGINE", "sqlite")
    if engine not in ("sqlite", "postgresql"):
        raise ValueError(f"ROUTER_TEST_ENGINE: {engine!r} is neither sqlite nor postgresql")
    return engine


def gateway_env(db: Path, mock_base: str, config: Path | None = None, admin_key: str = ADMIN_KEY) -> dict:
    url = str(db)
    extra = {}
    if gateway_engine() == "postgresql":
        import pg

        # One database per SQLite path a test names, so a gateway restarted on the same path finds its data.
        url = _pg_databases.get(url) or _pg_databases.setdefault(url, pg.server().fresh())
        # The host's local files (ledger, spool, change signal) beside where the SQLite file would be.
        extra["XDG_DATA_HOME"] = str(Path(db).parent / "data")
    env = {**os.environ, **extra, "ROUTER_DB": url, "ROUTER_MOCK_URL": f"{mock_base}/v1", "ROUTER_ADMIN_KEY": admin_key}
    env.pop("ROUTER_METRICS_DIR", None)
    if config is not None:
        env["ROUTER_CONFIG"] = str(config)
    else:
        env.pop("ROUTER_CONFIG", None)
    return env


def start_gateway(env: dict[str, str], workers: int = 1) -> Server:
    port = free_port()
    return Server(
        [*ROUTER, "serve", "--port", str(port), "--workers", str(workers)],
        env,
        f"http://127.0.0.1:{port}/healthz",
        f"http://127.0.0.1:{port}",
    )


def requests_per_worker(tmpdir: Path) -> dict[int, float]:
    """Proxied requests each worker of a multi-worker gateway has counted, by pid, from the metrics files the
    workers share (rewritten once a second) in the directory `router serve` makes under the gateway's TMPDIR.
    Request ids are random, so they cannot tell the workers apart."""
    counts: dict[int, float] = {}
    for file in tmpdir.glob("router-metrics-*/router-*.json"):
        try:
            snapshot = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        counts[snapshot["pid"]] = sum(values[0] for _, values in snapshot["series"].get("router_requests", []))
    return counts


def workers_that_served(tmpdir: Path, before: dict[int, float], requests: int, timeout: float = 5.0) -> int:
    """How many workers served the `requests` made since `before` was read (waiting for their files)."""
    deadline = time.monotonic() + timeout
    while True:
        grown = {pid: n - before.get(pid, 0) for pid, n in requests_per_worker(tmpdir).items()}
        if sum(grown.values()) >= requests or time.monotonic() > deadline:
            return sum(1 for n in grown.values() if n > 0)
        time.sleep(0.1)


def router_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([*ROUTER, *args], env=env, capture_output=True, text=True, check=check, timeout=60)


def create_key(env: dict[str, str], name: str = "test") -> dict:
    return json.loads(router_cli(env, "keys", "create", "--name", name, "--json").stdout)


class MockControl:
    """The mock's counter endpoint: which requests reached the upstream."""

    def __init__(self, base: str) -> None:
        self.base = base

    def requests(self) -> list[dict]:
        return httpx.get(f"{self.base}/_mock/requests").json()["requests"]

    def count(self) -> int:
        return httpx.get(f"{self.base}/_mock/requests").json()["count"]

    def streams(self) -> tuple[int, int]:
        """(streams being sent now, streams cut short because the client went away)."""
        log = httpx.get(f"{self.base}/_mock/requests").json()
        return log["streams_active"], log["streams_aborted"]

    def reset(self) -> None:
        httpx.post(f"{self.base}/_mock/reset").raise_for_status()


def manage_call(base: str, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One management API call (`/v1/manage{path}`) with `key` as the bearer; kwargs go to httpx (json, params)."""
    headers = {"authorization": f"Bearer {key}", **kwargs.pop("headers", {})}
    return httpx.request(method, f"{base}/v1/manage{path}", headers=headers, timeout=20, **kwargs)


class Row(dict):
    """A result row read by column name or by position (as sqlite3.Row), whichever engine it came from."""

    def __init__(self, columns: list[str], values: Any) -> None:
        super().__init__(zip(columns, values, strict=True))
        self._values = tuple(values)

    def __getitem__(self, key: Any) -> Any:
        return self._values[key] if isinstance(key, int) else super().__getitem__(key)

    def __iter__(self) -> Any:
        return iter(self._values)


def db_query(env: dict[str, str], sql: str, params: tuple = ()) -> list[Row]:
    """Rows of a query on the gateway's database (SQLite file or PostgreSQL), `?` placeholders."""
    url = env["ROUTER_DB"]
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            cur = conn.execute(sql.replace("%", "%%").replace("?", "%s"), params)
            columns = [d.name for d in cur.description or ()]
            return [Row(columns, r) for r in cur.fetchall()]
    with sqlite3.connect(url) as conn:
        cur = conn.execute(sql, params)
        columns = [d[0] for d in cur.description or ()]
        return [Row(columns, r) for r in cur.fetchall()]


def db_dump(env: dict[str, str]) -> str:
    """Every row of every table of the gateway's database, as text (to prove a secret is not in it)."""
    if env["ROUTER_DB"].startswith("postgresql://"):
        tables = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        tables = "SELECT name FROM sqlite_master WHERE type = 'table'"
    out = []
    for (table,) in db_query(env, tables):
        out += [f"{table}: {tuple(r)}" for r in db_query(env, f"SELECT * FROM {table}")]
    return "\n".join(out)


def usage_rows(server: Server, where: str = "1=1", expect: int = 1, timeout: float = 5.0) -> list[Row]:
    """Rows of the gateway's usage log, waiting for the background writer to flush at least `expect`."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db_query(server.env, f"SELECT * FROM usage_log WHERE {where} ORDER BY ts")
        if len(rows) >= expect or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def authenticate_now(cache: Any, key: str) -> Any:
    """`KeyCache.authenticate` outside an event loop: a key read from PostgreSQL comes as an awaitable."""
    principal = cache.authenticate(key)
    return asyncio.run(principal) if inspect.isawaitable(principal) else principal
