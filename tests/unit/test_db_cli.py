"""`router db upgrade`, `router db copy` and the schema checks at start, on both engines."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pg
from router.governance.keys import KeyCache, create_key
from router.store import LATEST, SchemaError, UsageRow, open_store
from router.store.migrations import MIGRATIONS
from router.store.records import AuditEvent

from servers import authenticate_now

ROOT = Path(__file__).resolve().parents[2]


def router(env_db: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ROUTER_DB": env_db, "PYTHONPATH": str(ROOT / "python")}
    return subprocess.run([sys.executable, "-m", "router", *args], env=env, capture_output=True, text=True, timeout=60)


def test_postgres_refuses_an_unmigrated_database_until_db_upgrade() -> None:
    url = pg.server().fresh(migrated=False)
    refused = router(url, "keys", "list")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "`router db upgrade`" in refused.stderr and "empty" in refused.stderr
    done = router(url, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"applied {LATEST}:" in done.stdout and f"to {LATEST}" in done.stdout
    again = router(url, "db", "upgrade")
    assert "up to date" in again.stdout and "applied" not in again.stdout
    assert router(url, "keys", "list").returncode == 0


def test_a_schema_newer_than_the_code_is_refused_on_both_engines(db_url: str) -> None:
    store = open_store(db_url)
    store._conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (LATEST + 1, time.time()))
    store.close()
    with pytest.raises(SchemaError, match=f"version {LATEST + 1}, newer than this router"):
        open_store(db_url)
    with pytest.raises(SchemaError, match="newer"):
        open_store(db_url, migrate=True)
    result = router(db_url, "keys", "list")
    assert result.returncode == 2 and "newer than this router" in result.stderr and "Traceback" not in result.stderr


def test_replicas_starting_together_migrate_once() -> None:
    url = pg.server().fresh(migrated=False)
    results: list[object] = []

    def start() -> None:
        try:
            store = open_store(url, migrate=True)
            results.append(store.schema_version())
            store.close()
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [LATEST] * 4
    store = open_store(url)
    assert store._conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
    store.close()


def test_an_old_postgres_schema_is_upgraded_keeping_its_rows() -> None:
    url = pg.server().fresh(migrated=False)
    from router.store.postgres import PostgresStore

    raw = PostgresStore(url)
    raw._conn.execute(raw._ddl("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)"))
    for statement in MIGRATIONS[0][2]:
        raw._conn.execute(raw._ddl(statement))
    raw._conn.execute("INSERT INTO schema_migrations VALUES (1, 0)")
    raw._conn.execute(
        "INSERT INTO usage_log VALUES ('req_old', 1.0, 'key_a', 'chat', 'mock/gpt-4o', 'mock', 200, 1, 2, 0, 3.5,"
        " NULL, 0, NULL)"
    )
    raw.close()
    with pytest.raises(SchemaError, match="at schema version 1"):
        open_store(url)
    store = open_store(url, migrate=True)
    (old,) = store.recent_usage()
    assert (old.request_id, old.attempt, old.completion_tokens, old.stream) == ("req_old", 1, 2, False)
    store.close()


def _usage(i: int, key_id: str) -> UsageRow:
    return UsageRow(
        request_id=f"req_{i}", ts=1_790_000_000.0 + i * 60, key_id=key_id, endpoint="chat", model="mock/gpt-4o",
        provider="mock", status=200 if i % 7 else 502, prompt_tokens=3, completion_tokens=5, latency_ms=10.0 + i,
        cost=0.001, period=202609, budgets=f"key:{key_id} org", attempt=1,
    )  # fmt: skip


def test_copy_from_sqlite_to_postgres_moves_every_table_once(tmp_path: Path) -> None:
    sqlite = str(tmp_path / "router.db")
    source = open_store(sqlite)
    record, secret = create_key(source, "moved")
    source.write_usage([_usage(i, record.id) for i in range(300)])
    source.set_org_limit(250.0)
    with source.transaction():
        source.append_audit([AuditEvent(1.0, "cli", "key.created", "key", record.id)])
    audit_before = len(source.query_audit(limit=1000))
    source.close()

    target = pg.server().fresh(migrated=False)
    done = router(sqlite, "db", "copy", "--from", f"sqlite:///{sqlite}", "--to", target)
    assert done.returncode == 0, done.stderr
    assert "usage_log: 300 rows" in done.stdout and "api_keys: 1 rows" in done.stdout

    store = open_store(target)
    cache = KeyCache(store, admin_key=None)
    assert authenticate_now(cache, secret).key_id == record.id
    assert store.count_usage() == 300
    assert store.org_limit() == 250.0
    assert dict((b, a) for b, _p, a in store.spend_for_period(202609)) == {f"key:{record.id}": 300_000, "org": 300_000}
    assert len(store.query_audit(limit=1000)) == audit_before
    # Identity columns continue after the copied ids: new audit rows do not collide.
    with store.transaction():
        store.append_audit([AuditEvent(2.0, "cli", "key.revoked", "key", record.id)])
    assert [e.action for e in store.query_audit(limit=1000)][-2:] == ["key.created", "key.revoked"]
    store.close()

    again = router(sqlite, "db", "copy", "--from", sqlite, "--to", target)
    assert again.returncode == 2 and "already holds data" in again.stderr and "Traceback" not in again.stderr


def test_serve_refuses_an_unmigrated_postgres_and_migrates_with_the_flag(tmp_path: Path) -> None:
    from servers import ROUTER, Server, free_port

    url = pg.server().fresh(migrated=False)
    port = str(free_port())
    refused = router(url, "serve", "--port", port, "--workers", "1")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr + refused.stdout
    assert "run `router db upgrade` (or start with `router serve --migrate`)" in refused.stderr
    env = {**os.environ, "ROUTER_DB": url, "PYTHONPATH": str(ROOT / "python"), "XDG_DATA_HOME": str(tmp_path)}
    env.pop("ROUTER_CONFIG", None)
    server = Server(
        [*ROUTER, "serve", "--migrate", "--port", port, "--workers", "1"],
        env,
        f"http://127.0.0.1:{port}/healthz",
        f"http://127.0.0.1:{port}",
    )
    try:
        store = open_store(url)
        assert store.schema_version() == LATEST
        store.close()
    finally:
        server.stop()
