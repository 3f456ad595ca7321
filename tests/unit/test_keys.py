from __future__ import annotations

import hashlib

import pytest

from router.errors import ConfigError, Unauthorized
from router.governance.keys import KEY_PREFIX, KeyCache, admin_key_from_env, create_key, hash_key
from router.store import open_store

from servers import authenticate_now


@pytest.fixture
def store(tmp_path, db_url):
    s = open_store(db_url)
    yield s
    s.close()


def test_key_is_high_entropy_prefixed_and_stored_only_as_hash(store) -> None:
    record, secret = create_key(store, "ci")
    assert secret.startswith(KEY_PREFIX) and len(secret) == 46
    # 43 url-safe characters carry 256 bits; at least the 128 the spec asks for.
    assert len(secret) - len(KEY_PREFIX) >= 22
    assert record.prefix == secret[:11] and record.id.startswith("key_")
    raw = store._conn.execute("SELECT * FROM api_keys").fetchall()
    assert not any(secret in str(col) for row in raw for col in row)
    assert store.find_key(hashlib.sha256(secret.encode()).digest())[0].id == record.id


def test_keys_are_unique(store) -> None:
    secrets = {create_key(store, "k")[1] for _ in range(50)}
    assert len(secrets) == 50


def test_empty_name_refused(store) -> None:
    with pytest.raises(ValueError, match="non-empty name"):
        create_key(store, "  ")


def test_cache_authenticates_and_revocation_is_seen_at_once(store, tmp_path, db_url) -> None:
    record, secret = create_key(store, "app")
    cache = KeyCache(store, admin_key=None)
    assert authenticate_now(cache, secret).key_id == record.id
    # Revoke through a different connection, as the CLI in another process would.
    other = open_store(db_url)
    other.revoke_key(record.id)
    other.close()
    with pytest.raises(Unauthorized, match="revoked"):
        authenticate_now(cache, secret)


def test_cache_hit_needs_no_database(store) -> None:
    record, secret = create_key(store, "app")
    cache = KeyCache(store, admin_key=None)
    authenticate_now(cache, secret)
    store.find_key = None  # any lookup now would fail loudly
    assert authenticate_now(cache, secret).key_id == record.id


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "Missing API key"),
        ("", "Missing API key"),
        ("sk-not-ours", "Malformed API key"),
        ("rk-short", "Malformed API key"),
        ("rk-" + "A" * 43, "Invalid API key"),
        ("rk-" + "é" * 43, "Malformed API key"),
        ("x" * 1000, "Malformed API key"),
    ],
)
def test_bad_keys_are_refused_with_a_reason(store, key, message) -> None:
    with pytest.raises(Unauthorized, match=message):
        authenticate_now(KeyCache(store, admin_key=None), key)


BOOTSTRAP = "bootstrap-admin-secret-0123456789abcdef"


def test_admin_key_from_environment_is_admin(store) -> None:
    cache = KeyCache(store, admin_key=BOOTSTRAP)
    principal = authenticate_now(cache, BOOTSTRAP)
    assert principal.is_admin and principal.key_id == "admin"
    with pytest.raises(Unauthorized):
        authenticate_now(cache, BOOTSTRAP[:-1] + "F")


@pytest.mark.parametrize("weak", ["admin", "admin-test-key", "x" * 31])
def test_an_admin_key_under_32_characters_is_refused(store, weak: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"ROUTER_ADMIN_KEY is .* at least 32"):
        KeyCache(store, admin_key=weak)
    monkeypatch.setenv("ROUTER_ADMIN_KEY", weak)
    with pytest.raises(ConfigError, match="at least 32"):
        admin_key_from_env()
    monkeypatch.setenv("ROUTER_ADMIN_KEY", "x" * 32)
    assert admin_key_from_env() == "x" * 32


def test_hash_is_sha256() -> None:
    assert hash_key("rk-x") == hashlib.sha256(b"rk-x").digest()
