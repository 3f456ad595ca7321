"""BYOK provider keys: sealing, the worker keyring, rotation, and the key strategies' order."""

from __future__ import annotations

import base64
import os
import sqlite3

import pytest
from cryptography.exceptions import InvalidTag

from router.config import ProviderConfig, Timeouts
from router.errors import ConfigError, Conflict, PermissionDenied, UpstreamError
from router.governance.byok import ByokAdmin, ProviderKeySpec
from router.governance.rbac import ADMIN, ANALYST, Actor
from router.providers import AnthropicProvider, OpenAICompatProvider
from router.providers.byok import MasterKey, OwnKeyring, fingerprint
from router.routing.credentials import ROUTER, Credential, credentials_for, switches_key
from router.store import open_store

from servers import router_cli

SECRET = "sk-org-own-3f9a1c7e5b2d4a6c8e0f1a3b"
ADMIN_ACTOR = Actor(id="admin", role=ADMIN)


def master() -> MasterKey:
    return MasterKey(os.urandom(32))


def providers() -> dict[str, OpenAICompatProvider]:
    timeouts = Timeouts()
    return {
        "openai": OpenAICompatProvider("openai", ProviderConfig(base_url="http://x", api_key="router"), timeouts),
        "anthropic": AnthropicProvider("anthropic", ProviderConfig(base_url="http://x", kind="anthropic"), timeouts),
    }


def test_master_key_parsing_accepts_base64_and_hex_and_names_the_variable() -> None:
    raw = os.urandom(32)
    assert MasterKey.parse(base64.b64encode(raw).decode(), "X").id == MasterKey(raw).id
    assert MasterKey.parse(base64.urlsafe_b64encode(raw).decode().rstrip("="), "X").id == MasterKey(raw).id
    assert MasterKey.parse(raw.hex(), "X").id == MasterKey(raw).id
    with pytest.raises(ConfigError, match="ROUTER_MASTER_KEY: expected 32 random bytes"):
        MasterKey.parse("too-short", "ROUTER_MASTER_KEY")
    assert MasterKey.from_env({}) is None


def test_sealed_keys_open_only_with_the_same_master_and_provider() -> None:
    key = master()
    sealed = key.seal("openai", SECRET)
    assert SECRET.encode() not in sealed
    assert key.seal("openai", SECRET) != sealed  # a fresh nonce every time
    assert key.open("openai", sealed) == SECRET
    with pytest.raises(InvalidTag):
        key.open("anthropic", sealed)  # moved to another provider's row
    with pytest.raises(InvalidTag):
        master().open("openai", sealed)


def test_admin_stores_sealed_never_returns_the_key_and_audits_without_it(tmp_path) -> None:
    db = tmp_path / "router.db"
    store = open_store(str(db))
    key = master()
    admin = ByokAdmin(store, key, {"openai", "anthropic"})
    created, view = admin.put(ADMIN_ACTOR, "openai", ProviderKeySpec(api_key=SECRET))
    assert created and view["provider"] == "openai" and view["fingerprint"] == fingerprint(SECRET)
    assert SECRET not in str(view) and SECRET not in str(admin.get(ADMIN_ACTOR, "openai"))
    assert admin.put(ADMIN_ACTOR, "openai", ProviderKeySpec(api_key=SECRET + "x"))[0] is False
    with pytest.raises(PermissionDenied):
        admin.get(Actor(id="key:a", role=ANALYST), "openai")
    with pytest.raises(Exception, match="not a configured provider"):
        admin.put(ADMIN_ACTOR, "nope", ProviderKeySpec(api_key=SECRET))
    store.close()
    everything = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert SECRET.encode() not in everything
    with sqlite3.connect(db) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert actions == ["byok.create", "byok.replace"]


def test_without_a_master_key_nothing_is_stored() -> None:
    admin = ByokAdmin(open_store(":memory:"), None, {"openai"})
    with pytest.raises(Conflict, match="ROUTER_MASTER_KEY"):
        admin.put(ADMIN_ACTOR, "openai", ProviderKeySpec(api_key=SECRET))


def test_keyring_builds_each_providers_credential_header() -> None:
    store = open_store(":memory:")
    key = master()
    admin = ByokAdmin(store, key, {"openai", "anthropic"})
    admin.put(ADMIN_ACTOR, "openai", ProviderKeySpec(api_key=SECRET))
    admin.put(ADMIN_ACTOR, "anthropic", ProviderKeySpec(api_key="sk-ant-own"))
    ring = OwnKeyring(store, key, providers())
    ring.refresh()
    openai_key, anthropic_key = ring.get("openai"), ring.get("anthropic")
    assert openai_key is not None and openai_key.byok and openai_key.headers == {"authorization": f"Bearer {SECRET}"}
    assert anthropic_key is not None and anthropic_key.headers == {"x-api-key": "sk-ant-own"}
    # A worker started with another master key uses none of them (and logs why).
    other = OwnKeyring(store, master(), providers())
    other.refresh()
    assert other.get("openai") is None
    admin.delete(ADMIN_ACTOR, "openai")
    ring.refresh()
    assert ring.get("openai") is None and ring.get("anthropic") is not None


def test_rotation_reseals_every_key_and_can_be_rerun() -> None:
    store = open_store(":memory:")
    old, new = master(), master()
    ByokAdmin(store, old, {"openai"}).put(ADMIN_ACTOR, "openai", ProviderKeySpec(api_key=SECRET))
    rotator = ByokAdmin(store, new, {"openai"})
    with pytest.raises(Conflict, match="neither the current nor the previous"):
        rotator.rotate(ADMIN_ACTOR, None)
    assert rotator.rotate(ADMIN_ACTOR, old) == {"rotated": 1, "already_current": 0}
    assert rotator.rotate(ADMIN_ACTOR, old) == {"rotated": 0, "already_current": 1}
    ring = OwnKeyring(store, new, providers())
    ring.refresh()
    credential = ring.get("openai")
    assert credential is not None and credential.headers == {"authorization": f"Bearer {SECRET}"}


def test_key_strategies_order_the_keys_and_fall_back_to_the_router_key() -> None:
    own = Credential({"authorization": "Bearer own"}, True)

    def lookup(provider: str) -> Credential | None:
        return own if provider == "openai" else None

    assert credentials_for("router", "openai", lookup) == (ROUTER,)
    assert credentials_for("own", "openai", lookup) == (own,)
    assert credentials_for("own_then_router", "openai", lookup) == (own, ROUTER)
    assert credentials_for("router_then_own", "openai", lookup) == (ROUTER, own)
    # No own key stored: `own` cannot be served; the mixed strategies use the gateway's key alone.
    assert credentials_for("own", "anthropic", lookup) == ()
    assert credentials_for("own_then_router", "anthropic", lookup) == (ROUTER,)
    assert credentials_for("own", "openai", None) == ()


@pytest.mark.parametrize(("status", "switches"), [(401, True), (403, True), (429, True), (400, False), (503, False)])
def test_which_upstream_errors_try_the_other_key(status: int, switches: bool) -> None:
    error = UpstreamError("x")
    error.upstream_status = status
    assert switches_key(error) is switches


def test_the_rotate_command_reseals_under_the_new_master_key(tmp_path) -> None:
    db = tmp_path / "router.db"
    old, new = os.urandom(32), os.urandom(32)
    store = open_store(str(db))
    ByokAdmin(store, MasterKey(old), {"openai"}).put(ADMIN_ACTOR, "openai", ProviderKeySpec(api_key=SECRET))
    env = {**os.environ, "ROUTER_DB": str(db), "ROUTER_MASTER_KEY": base64.b64encode(new).decode()}
    env.pop("ROUTER_MASTER_KEY_PREVIOUS", None)
    refused = router_cli(env, "byok", "rotate", check=False)
    assert refused.returncode == 1 and "neither the current nor the previous" in refused.stderr
    env["ROUTER_MASTER_KEY_PREVIOUS"] = old.hex()
    done = router_cli(env, "byok", "rotate", "--json")
    assert done.stdout.strip() == '{"rotated":1,"already_current":0}'
    ring = OwnKeyring(store, MasterKey(new), providers())
    ring.refresh()
    credential = ring.get("openai")
    assert credential is not None and credential.headers == {"authorization": f"Bearer {SECRET}"}
    assert SECRET not in done.stdout + done.stderr
