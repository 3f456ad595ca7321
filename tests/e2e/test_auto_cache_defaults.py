"""`requesty.auto_cache` defaults as users meet them: request > key > organisation > config, with the
anthropic SDK against an Anthropic-kind upstream (the mock reports cache reads up to the last breakpoint)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from servers import MockControl, Server, gateway_env, manage_call, start_gateway

CONFIG = """
caching: {auto_cache: true}
providers:
  anthropic: {kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: mock-upstream-key}
models:
  - {id: anthropic/claude-sonnet-4-5, upstream_model: claude-sonnet-4-5}
"""
MODEL = "anthropic/claude-sonnet-4-5"
LONG_SYSTEM = "You are a careful assistant. " * 200  # above Anthropic's cacheable minimum
HELLO = [{"role": "user", "content": "Say hello to the gateway"}]


class Gateway:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.base = server.base
        self.db = Path(server.env["ROUTER_DB"])

    def manage(self, method: str, path: str, body: dict | None = None, secret: str | None = None) -> httpx.Response:
        return manage_call(self.base, secret or self.server.env["ROUTER_ADMIN_KEY"], method, path, json=body)

    def ok(self, method: str, path: str, body: dict | None = None, secret: str | None = None) -> dict:
        r = self.manage(method, path, body, secret)
        assert r.status_code in (200, 201), r.text
        return r.json()


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("autocache")
    (root / "config.yaml").write_text(CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, root / "config.yaml"))
    yield Gateway(server)
    server.stop()


def _ask(secret: str, base: str, **extra) -> anthropic.types.Message:
    client = anthropic.Anthropic(base_url=base, api_key=secret, max_retries=0, timeout=20)
    return client.messages.create(model=MODEL, max_tokens=10, system=LONG_SYSTEM, messages=HELLO, **extra)


def _cached(message: anthropic.types.Message) -> bool:
    return (message.usage.cache_read_input_tokens or 0) > 1000


def _breakpoints(seen: dict) -> bool:
    return isinstance(seen["body"]["system"], list) and "cache_control" in seen["body"]["system"][-1]


def test_request_beats_key_beats_org_beats_config(gw: Gateway, mock: MockControl) -> None:
    key = gw.ok("POST", "/apikey", {"name": "plain"})
    assert key["auto_cache"] is None and gw.ok("GET", "/org")["caching"] == {"auto_cache": None}
    # Config says true.
    assert _cached(_ask(key["key"], gw.base))
    # The organisation says false: it wins over the config.
    gw.ok("POST", "/org/caching", {"auto_cache": False})
    assert not _cached(_ask(key["key"], gw.base))
    # The key says true: it wins over the organisation.
    assert gw.ok("POST", f"/apikey/{key['id']}/settings", {"auto_cache": True})["auto_cache"] is True
    assert _cached(_ask(key["key"], gw.base))
    # The request says false: it wins over the key.
    assert not _cached(_ask(key["key"], gw.base, extra_body={"requesty": {"auto_cache": False}}))
    # Clearing the key's setting defers to the organisation again; a request can still ask.
    gw.ok("POST", f"/apikey/{key['id']}/settings", {"auto_cache": None})
    assert not _cached(_ask(key["key"], gw.base))
    assert _cached(_ask(key["key"], gw.base, extra_body={"requesty": {"auto_cache": True}}))
    # Clearing the organisation's setting brings back the config file's.
    gw.ok("POST", "/org/caching", {"auto_cache": None})
    assert _cached(_ask(key["key"], gw.base))
    assert [_breakpoints(s) for s in mock.requests()] == [True, False, True, False, False, True, True]
    assert all("requesty" not in s["body"] for s in mock.requests())


def test_key_setting_at_creation_and_by_its_owner_only(gw: Gateway, mock: MockControl) -> None:
    gw.ok("POST", "/org/caching", {"auto_cache": True})
    try:
        off = gw.ok("POST", "/apikey", {"name": "no-cache", "auto_cache": False})
        assert off["auto_cache"] is False
        assert not _cached(_ask(off["key"], gw.base))

        alice = gw.ok("POST", "/user", {"email": "alice@corp.test"})
        bob = gw.ok("POST", "/user", {"email": "bob@corp.test"})
        alice_key = gw.ok("POST", "/apikey", {"name": "alice", "owner": {"type": "user", "id": alice["id"]}})
        bob_key = gw.ok("POST", "/apikey", {"name": "bob", "owner": {"type": "user", "id": bob["id"]}})
        # The owner may change their own key; another standard user cannot see it; nobody else may set the org's.
        assert gw.ok("POST", f"/apikey/{alice_key['id']}/settings", {"auto_cache": False}, alice_key["key"])
        other = gw.manage("POST", f"/apikey/{alice_key['id']}/settings", {"auto_cache": True}, bob_key["key"])
        assert other.status_code == 404
        assert gw.manage("POST", "/org/caching", {"auto_cache": False}, alice_key["key"]).status_code == 403
        bad = gw.manage("POST", f"/apikey/{alice_key['id']}/settings", {"auto_cache": "yes"}, alice_key["key"])
        assert bad.status_code == 400 and "auto_cache" in bad.json()["error"]["message"]
        assert not _cached(_ask(alice_key["key"], gw.base))
        assert _cached(_ask(bob_key["key"], gw.base))
        # Streams get the same default.
        claude = anthropic.Anthropic(base_url=gw.base, api_key=bob_key["key"], max_retries=0, timeout=20)
        with claude.messages.stream(model=MODEL, max_tokens=10, system=LONG_SYSTEM, messages=HELLO) as stream:
            assert _cached(stream.get_final_message())
        alice = anthropic.Anthropic(base_url=gw.base, api_key=alice_key["key"], max_retries=0, timeout=20)
        with alice.messages.stream(model=MODEL, max_tokens=10, system=LONG_SYSTEM, messages=HELLO) as stream:
            assert not _cached(stream.get_final_message())
    finally:
        gw.ok("POST", "/org/caching", {"auto_cache": None})


def test_changes_are_audited(gw: Gateway) -> None:
    key = gw.ok("POST", "/apikey", {"name": "audited"})
    gw.ok("POST", f"/apikey/{key['id']}/settings", {"auto_cache": True})
    gw.ok("POST", "/org/caching", {"auto_cache": False})
    gw.ok("POST", "/org/caching", {"auto_cache": None})
    events = gw.ok("GET", "/audit?action=key.update_settings")["data"]
    mine = [e for e in events if e["target_id"] == key["id"]]
    assert len(mine) == 1 and mine[0]["actor"] == "admin"
    assert mine[0]["before"]["auto_cache"] is None and mine[0]["after"]["auto_cache"] is True
    org = gw.ok("GET", "/audit?action=org.update_caching")["data"]
    changes = [(e["before"]["auto_cache"], e["after"]["auto_cache"]) for e in org]
    assert (None, False) in changes and (False, None) in changes
    # The audit row never carries key material.
    assert key["key"] not in json.dumps(events)
