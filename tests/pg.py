"""A throwaway PostgreSQL server for the tests: initdb + postgres in a temp folder on a free loopback port,
started once per test session (per xdist worker under pytest-xdist) and stopped at its end. Each test gets a
fresh database cloned from a migrated template (CREATE DATABASE … TEMPLATE is a file copy: milliseconds).

PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (`runuser`), in a folder
owned by it. Missing binaries fail the tests that need them, loudly (`make services` installs them).
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from servers import free_port


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (initdb not found): run `make services`")
    return Path(found[-1]).parent


class PostgresServer:
    def __init__(self) -> None:
        bins = _bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="router-pg-"))
        self.port = free_port()
        data = self.dir / "data"
        as_root = os.geteuid() == 0
        prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
        if as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(
            [*prefix, str(bins / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.bins = bins
        self.data = data
        self.prefix = prefix
        self.log = open(self.dir / "postgres.log", "wb")  # noqa: SIM115
        self.proc: subprocess.Popen | None = None
        self.admin_url = self.url("postgres")
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        self._names = itertools.count(1)
        self._template: str | None = None

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def template(self) -> str:
        """A database at the current schema, to clone."""
        if self._template is None:
            from router.store import open_store

            self._admin("CREATE DATABASE router_template")
            open_store(self.url("router_template"), migrate=True).close()
            self._template = "router_template"
        return self._template

    def fresh(self, migrated: bool = True) -> str:
        """The URL of a new database: migrated (cloned from the template), or empty."""
        name = f"t{os.getpid()}_{next(self._names)}"
        template = self.template() if migrated else "template0"
        self._admin(f"CREATE DATABASE {name} TEMPLATE {template}")
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def start(self) -> None:
        """Start the server (again, after `halt`) on the same data and port; return once it accepts connections."""
        self.proc = subprocess.Popen(
            [*self.prefix, str(self.bins / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.dir),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=400", "-c", "shared_buffers=64MB"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.admin_url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {(self.dir / 'postgres.log').read_text()}") from None
                time.sleep(0.05)

    def halt(self) -> None:
        """Stop the server as an outage does, keeping its data for `start`: fast shutdown (SIGINT), which
        closes every client's connection at once."""
        if self.proc is not None and self.proc.poll() is None:
            # To the postmaster itself: `runuser` would pass on a SIGTERM (a smart shutdown, which waits for
            # every client to leave) instead.
            pid = int((self.data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


_server: PostgresServer | None = None


def server() -> PostgresServer:
    """The session's server, started on first use and stopped when the test process exits."""
    global _server
    if _server is None:
        _server = PostgresServer()
        atexit.register(_server.stop)
    return _server
