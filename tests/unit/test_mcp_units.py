"""MCP gateway units: tool naming, MCP access-list entries, sealing and master-key rotation."""

from __future__ import annotations

import os

import msgspec
import pytest

from router.errors import Conflict, InvalidRequest
from router.governance.rbac import CLI_ACTOR, Actor
from router.mcp import access
from router.mcp.admin import CredentialBody, McpAdmin, ServerSpec, ServerUpdate
from router.mcp.names import MAX_NAME, exposed_name
from router.providers.byok import MasterKey
from router.store import open_store
from router.store.records import Rules


def test_short_safe_names_are_kept_and_others_are_cut_and_hashed() -> None:
    assert exposed_name("github", "search_code") == "github__search_code"
    long = exposed_name("github", "x" * 100)
    assert len(long) == MAX_NAME and long.startswith("github__xxx")
    dotted = exposed_name("notion", "pages.search")
    assert dotted.startswith("notion__pages_search_") and len(dotted) <= MAX_NAME
    # Two names that rewrite to the same characters still differ (the hash covers the original).
    assert exposed_name("notion", "pages.search") != exposed_name("notion", "pages-search")
    assert exposed_name("a", "t" * 70) != exposed_name("a", "t" * 71)


@pytest.mark.parametrize("entry", ["mcp:*", "mcp:github", "mcp:github/search_code", "mcp:a-b/x.y"])
def test_valid_entries(entry: str) -> None:
    assert access.entry_error(entry) is None


@pytest.mark.parametrize("entry", ["github", "mcp:", "mcp:Git_Hub", "mcp:github/", "mcp:github/a b", "mcp:*/x"])
def test_invalid_entries(entry: str) -> None:
    assert access.entry_error(entry) is not None


def test_grants_follow_allows_denies_and_deny_by_default() -> None:
    plain = Rules(mcp=["mcp:plain"], deny=["mcp:plain/add"])
    tool_only = Rules(mcp=["mcp:authed/echo"])
    everything = Rules(mcp=["mcp:*"], deny=["mcp:secret"])
    assert access.grant_for([], org_restricted=False).permits("any", "tool")
    assert not access.grant_for([], org_restricted=True).permits("any", "tool")
    assert access.grant_for(None, org_restricted=True).permits("any", "tool")  # the bootstrap admin
    g = access.grant_for([plain, tool_only], org_restricted=True)
    assert g.permits("plain", "echo") and not g.permits("plain", "add")
    assert g.permits("authed", "echo") and not g.permits("authed", "other") and g.permits("authed")
    assert not g.permits("third", "x")
    e = access.grant_for([everything], org_restricted=True)
    assert e.permits("plain", "x") and not e.permits("secret", "x")
    assert access.restricted([Rules(models=["m"])]) is False
    assert access.restricted([Rules(deny=["mcp:x"])]) is True


def _admin(master: MasterKey | None) -> McpAdmin:
    return McpAdmin(open_store(":memory:"), master, lambda: 1_700_000_000.0)


def test_headers_are_sealed_and_shown_as_fingerprints_only() -> None:
    admin = _admin(MasterKey(os.urandom(32)))
    spec = ServerSpec(name="s1", url="https://mcp.example.com/mcp", headers={"Authorization": "Bearer sekrit-1"})
    record = admin.create(CLI_ACTOR, spec)
    assert b"sekrit-1" not in record.headers_sealed
    view = admin.server_view(record, CLI_ACTOR)
    assert "sekrit-1" not in msgspec.json.encode(view).decode() and set(view["headers"]) == {"Authorization"}
    assert admin.open_headers(record) == {"Authorization": "Bearer sekrit-1"}
    audit = admin.store.query_audit(limit=10)
    assert [a.action for a in audit] == ["mcp.server.create"]
    assert "sekrit-1" not in msgspec.json.encode(audit).decode()


def test_headers_need_the_master_key_and_valid_input() -> None:
    with pytest.raises(Conflict):
        _admin(None).create(CLI_ACTOR, ServerSpec(name="s", url="https://x/mcp", headers={"A": "b"}))
    admin = _admin(MasterKey(os.urandom(32)))
    for spec in (
        ServerSpec(name="s", url="ftp://x/mcp"),
        ServerSpec(name="s", url="https://user:pw@x/mcp"),
        ServerSpec(name="s", url="https://x/mcp", timeout=0),
        ServerSpec(name="s", url="https://x/mcp", headers={"Host": "x"}),
        ServerSpec(name="s", url="https://x/mcp", user_keys="required"),
    ):
        with pytest.raises(InvalidRequest):
            admin.create(CLI_ACTOR, spec)


def test_rotation_reseals_server_and_user_credentials() -> None:
    old, new = MasterKey(os.urandom(32)), MasterKey(os.urandom(32))
    admin = _admin(old)
    admin.create(
        CLI_ACTOR,
        ServerSpec(name="s", url="https://x/mcp", headers={"X-Org": "org-v"}, user_keys="optional",
                   user_headers=["X-User"]),
    )  # fmt: skip
    store = admin.store
    user = Actor(id="key:k", role="standard", user_id="u1")
    admin.set_credentials(user, "s", CredentialBody(headers={"X-User": "user-v"}))
    rotated = McpAdmin(store, new, admin.clock)
    with pytest.raises(Conflict):
        rotated.rotate(CLI_ACTOR, None)
    assert rotated.rotate(CLI_ACTOR, old) == {"rotated": 2, "already_current": 0}
    server = store.mcp_server("s")
    assert server is not None
    assert rotated.open_headers(server) == {"X-Org": "org-v"}
    assert rotated.user_headers(server, "u1") == {"X-User": "user-v"}
    assert rotated.rotate(CLI_ACTOR, old) == {"rotated": 0, "already_current": 2}


def test_users_manage_only_their_own_credentials_and_required_headers() -> None:
    admin = _admin(MasterKey(os.urandom(32)))
    admin.create(CLI_ACTOR, ServerSpec(name="s", url="https://x/mcp", user_keys="required", user_headers=["A", "B"]))
    user = Actor(id="key:k", role="standard", user_id="u1")
    with pytest.raises(InvalidRequest):
        admin.set_credentials(user, "s", CredentialBody(headers={"A": "1"}))  # B missing
    with pytest.raises(InvalidRequest):
        admin.set_credentials(user, "s", CredentialBody(headers={"A": "1", "B": "2", "C": "3"}))
    assert admin.set_credentials(user, "s", CredentialBody(headers={"A": "1", "B": "2"}))["status"] == "configured"
    other = Actor(id="key:o", role="standard", user_id="u2")
    assert admin.credentials(other, "s")["status"] == "missing"
    admin.update(CLI_ACTOR, "s", ServerUpdate(user_keys="off"))
    with pytest.raises(Conflict):
        admin.credentials(user, "s")


def test_replay_buffers_are_per_session_capped_and_expire(db_url: str) -> None:
    from router.mcp import replay as rp

    now = [1_700_000_000.0]
    buffers = rp.Replay(open_store(db_url), lambda: now[0])
    session, other = b"s" * 32, b"o" * 32
    stream = buffers.open(session, "call")
    seqs = [buffers.push(stream, msgspec.json.encode({"n": i})) for i in range(rp.MAX_EVENTS + 100)]
    assert seqs == sorted(set(seqs))  # ids never repeat
    found = buffers.resume(session, f"{stream.id}-{seqs[0]}")
    assert found is not None and found[0].key == stream.key and found[1] == seqs[0]
    kept = []
    after = 0
    while events := buffers.events_after(stream, after):
        kept += events
        after = events[-1][0]
    # The newest MAX_EVENTS (trimmed in steps, so at most an eighth more) are kept, in order.
    assert rp.MAX_EVENTS <= len(kept) <= rp.MAX_EVENTS + rp.MAX_EVENTS // 8
    assert [s for s, _ in kept] == seqs[-len(kept) :]
    # Another session naming the same stream finds nothing; nor does a malformed id.
    assert buffers.resume(other, f"{stream.id}-{seqs[0]}") is None
    for bad in ("", "x", f"{stream.id}", f"{stream.id}--1", f"q{stream.id[1:]}-1", f"{stream.id}-1 junk"):
        assert buffers.resume(session, bad) is None
    now[0] += rp.TTL + 1
    buffers.sweep()
    assert buffers.resume(session, f"{stream.id}-{seqs[-1]}") is None
