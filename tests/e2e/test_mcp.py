"""The MCP gateway end to end: real granian gateway, upstream MCP servers built with the official SDK's FastMCP
(Streamable HTTP and SSE), and the SDK's own client against `/v1/mcp`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError

from servers import ADMIN_KEY, Server, db_dump, db_query, free_port, gateway_env, manage_call, router_cli, start_gateway

UPSTREAM = str(Path(__file__).parent.parent / "mcp_upstream.py")
ADMIN = ADMIN_KEY
ORG_TOKEN = "org-token-7f3a9c"
ALICE_TOKEN = "alice-token-51be02"


def start_upstream(*args: str) -> Server:
    port = free_port()
    return Server([sys.executable, UPSTREAM, "--port", str(port), *args], {**os.environ}, None,
                  f"http://127.0.0.1:{port}")  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("mcp")
    record = root / "auth.log"
    events = root / "events.log"
    plain = start_upstream("--name", "plain", "--events", str(events))
    authed = start_upstream("--name", "authed", "--transport", "sse", "--require-header", "X-Api-Token",
                            "--accept", ORG_TOKEN, "--accept", ALICE_TOKEN, "--record", str(record))  # fmt: skip
    genv = gateway_env(root / "router.db", "http://127.0.0.1:9")
    genv["ROUTER_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    gateway = start_gateway(genv)
    state = {"gateway": gateway, "plain": plain, "authed": authed, "record": record, "env": genv, "events": events}
    try:
        yield state
    finally:
        for name in ("gateway", "plain", "authed"):
            if state[name].proc.returncode is None:
                state[name].stop()


def initialize(version: str) -> dict[str, Any]:
    client = {"name": "raw", "version": "1"}
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": client}
    return {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}


def manage(env: dict[str, Any], method: str, path: str, key: str = ADMIN, **kw: Any) -> httpx.Response:
    return manage_call(env["gateway"].base, key, method, path, **kw)


def ok(resp: httpx.Response, status: int = 200) -> Any:
    assert resp.status_code == status, resp.text
    return resp.json()


def user_key(env: dict[str, Any], email: str, access_list: str | None = None) -> str:
    user = ok(manage(env, "POST", "/user", json={"email": email, "name": email.split("@")[0]}), 201)
    spec: dict[str, Any] = {"name": email, "owner": {"type": "user", "id": user["id"]}}
    if access_list:
        spec["access_list"] = access_list
    return ok(manage(env, "POST", "/apikey", json=spec), 201)["key"]


async def session_call(base: str, key: str, fn: Any) -> Any:
    client = httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=httpx.Timeout(30, read=60))
    async with (
        client,
        streamable_http_client(f"{base}/v1/mcp", http_client=client) as (r, w, _),
        ClientSession(r, w) as session,
    ):
        await session.initialize()
        return await fn(session)


def run(base: str, key: str, fn: Any) -> Any:
    return asyncio.run(session_call(base, key, fn))


def names(base: str, key: str) -> set[str]:
    async def go(s: ClientSession) -> set[str]:
        return {t.name for t in (await s.list_tools()).tools}

    return run(base, key, go)


@pytest.fixture(scope="module")
def registered(env: dict[str, Any]) -> dict[str, Any]:
    """Two servers registered, explored and partly whitelisted."""
    ok(manage(env, "POST", "/mcp/servers", json={"name": "plain", "url": env["plain"].base + "/mcp",
                                                  "timeout": 3}), 201)  # fmt: skip
    ok(manage(env, "POST", "/mcp/servers", json={
        "name": "authed", "url": env["authed"].base + "/sse", "transport": "sse", "timeout": 5,
        "headers": {"X-Api-Token": ORG_TOKEN}, "user_keys": "optional", "user_headers": ["X-Api-Token"],
    }), 201)  # fmt: skip
    explored = ok(manage(env, "POST", "/mcp/servers/plain/explore"))
    assert {"echo", "add", "secret_tool", "slow", "crash", "count", "mutate"} <= set(explored["diff"]["added"])
    ok(manage(env, "POST", "/mcp/servers/authed/explore"))
    ok(manage(env, "POST", "/mcp/servers/plain/tools",
              json={"tools": ["echo", "add", "slow", "crash", "count", "fail", "mutate"]}))  # fmt: skip
    ok(manage(env, "POST", "/mcp/servers/authed/tools", json={"tools": ["echo"]}))
    return env


def test_unauthenticated_gets_401_with_a_bearer_challenge(env: dict[str, Any]) -> None:
    body = initialize("2025-06-18")
    for headers in ({}, {"authorization": "Bearer rk-wrong"}):
        resp = httpx.post(f"{env['gateway'].base}/v1/mcp", json=body, headers=headers)
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.json()["jsonrpc"] == "2.0" and "error" in resp.json()


def test_whitelisted_tools_are_listed_namespaced_and_callable(registered: dict[str, Any]) -> None:
    base = registered["gateway"].base

    async def go(s: ClientSession) -> tuple[set[str], str, str]:
        listed = {t.name: t for t in (await s.list_tools()).tools}
        assert listed["plain__echo"].description.startswith("[plain]")
        assert listed["plain__add"].inputSchema["properties"]["a"]["type"] == "integer"
        one = await s.call_tool("plain__echo", {"text": "hi"})
        two = await s.call_tool("authed__echo", {"text": "yo"})
        return set(listed), one.content[0].text, two.content[0].text

    listed, one, two = run(base, ADMIN, go)
    assert {"plain__echo", "plain__add", "authed__echo"} <= listed
    assert "plain__secret_tool" not in listed and "authed__add" not in listed
    assert (one, two) == ("plain:hi", "authed:yo")
    # The organisation's header reached the SSE upstream.
    assert ORG_TOKEN in registered["record"].read_text().split()


def test_a_non_whitelisted_tool_is_refused_without_reaching_upstream(registered: dict[str, Any]) -> None:
    async def go(s: ClientSession) -> Any:
        with pytest.raises(McpError) as raised:
            await s.call_tool("plain__secret_tool", {})
        return raised.value.error

    error = run(registered["gateway"].base, ADMIN, go)
    assert error.code == -32602 and "Unknown tool" in error.message


def test_upstream_tool_errors_and_progress_are_relayed(registered: dict[str, Any]) -> None:
    seen: list[float] = []

    async def go(s: ClientSession) -> Any:
        failed = await s.call_tool("plain__fail", {})
        assert failed.isError

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append(value)

        return await s.call_tool("plain__count", {"steps": 3}, progress_callback=progress)

    result = run(registered["gateway"].base, ADMIN, go)
    assert result.content[0].text == "counted 3"
    assert seen == [1, 2, 3]


def test_slow_and_crashing_upstreams_give_json_rpc_errors_within_the_timeout(registered: dict[str, Any]) -> None:
    async def go(s: ClientSession) -> list[tuple[int, float]]:
        out = []
        for name, args in (("plain__slow", {"seconds": 30}), ("plain__crash", {})):
            started = time.monotonic()
            with pytest.raises(McpError) as raised:
                await s.call_tool(name, args)
            out.append((raised.value.error.code, time.monotonic() - started))
        return out

    (slow_code, slow_s), (crash_code, crash_s) = run(registered["gateway"].base, ADMIN, go)
    assert slow_code == -32001 and slow_s < 10  # the server's timeout is 3 s
    # The gateway told the upstream to stop the call it gave up on.
    assert "slow cancelled" in registered["events"].read_text()
    assert crash_code in (-32001, -32002, -32004) and crash_s < 10
    # Restart the crashed upstream on the same port for the other tests.
    port = registered["plain"].base.rsplit(":", 1)[1]
    registered["plain"].stop()
    args = [sys.executable, UPSTREAM, "--port", port, "--name", "plain", "--events", str(registered["events"])]
    registered["plain"] = Server(args, {**os.environ}, None, f"http://127.0.0.1:{port}")


def test_json_answering_and_restarted_upstreams_are_served(registered: dict[str, Any]) -> None:
    """The gateway's own Streamable HTTP client: an upstream answering with JSON instead of SSE, and one that
    restarted and forgot the gateway's session (404: a fresh session, the call retried once)."""
    env = registered
    upstream = start_upstream("--name", "jsonup", "--json-response")
    try:
        ok(manage(env, "POST", "/mcp/servers", json={"name": "jsonup", "url": upstream.base + "/mcp", "timeout": 5}),
           201)  # fmt: skip
        ok(manage(env, "POST", "/mcp/servers/jsonup/explore"))
        ok(manage(env, "POST", "/mcp/servers/jsonup/tools", json={"tools": ["echo", "fail"]}))

        async def go(s: ClientSession) -> tuple[str, bool]:
            text = (await s.call_tool("jsonup__echo", {"text": "hi"})).content[0].text
            return text, (await s.call_tool("jsonup__fail", {})).isError

        assert run(env["gateway"].base, ADMIN, go) == ("jsonup:hi", True)
        port = upstream.base.rsplit(":", 1)[1]
        upstream.stop()
        upstream = Server([sys.executable, UPSTREAM, "--port", port, "--name", "jsonup", "--json-response"],
                          {**os.environ}, None, f"http://127.0.0.1:{port}")  # fmt: skip

        async def again(s: ClientSession) -> str:
            return (await s.call_tool("jsonup__echo", {"text": "back"})).content[0].text

        assert run(env["gateway"].base, ADMIN, again) == "jsonup:back"
        time.sleep(1.0)  # the usage writer flushes every 0.5 s
        rows = [
            tuple(r)
            for r in db_query(env["env"], "SELECT tool, status, error_type FROM mcp_usage WHERE server = 'jsonup'")
        ]
        assert sorted(rows) == [("echo", "ok", None), ("echo", "ok", None), ("fail", "error", "tool_error")]
    finally:
        manage(env, "DELETE", "/mcp/servers/jsonup")
        upstream.stop()


def test_access_lists_deny_servers_and_tools(registered: dict[str, Any]) -> None:
    env = registered
    base = env["gateway"].base
    ok(manage(env, "POST", "/access-list", json={"name": "plain-only", "mcp": ["mcp:plain"],
                                                   "deny": ["mcp:plain/add"]}), 201)  # fmt: skip
    key = user_key(env, "bob@example.com", "plain-only")
    listed = names(base, key)
    assert "plain__echo" in listed and "plain__add" not in listed
    assert not any(n.startswith("authed__") for n in listed)

    async def go(s: ClientSession) -> list[int]:
        codes = []
        for tool in ("authed__echo", "plain__add"):
            with pytest.raises(McpError) as raised:
                await s.call_tool(tool, {"text": "x"} if "echo" in tool else {"a": 1, "b": 2})
            codes.append(raised.value.error.code)
        return codes

    assert run(base, key, go) == [-32602, -32602]
    # Deny by default once an MCP entry exists: a key without any MCP grant sees nothing.
    other = user_key(env, "carol@example.com")
    assert names(base, other) == set()
    # Standard users list only the servers their key may use.
    servers = ok(manage(env, "GET", "/mcp/servers", key=key))["data"]
    assert [s["name"] for s in servers] == ["plain"] and "headers" not in servers[0]


def test_a_user_key_is_used_for_that_user_only(registered: dict[str, Any]) -> None:
    env = registered
    base = env["gateway"].base
    ok(manage(env, "POST", "/access-list", json={"name": "all-mcp", "mcp": ["mcp:*"]}), 201)
    alice = user_key(env, "alice@example.com", "all-mcp")
    dave = user_key(env, "dave@example.com", "all-mcp")
    status = ok(manage(env, "PUT", "/mcp/servers/authed/credentials", key=alice,
                       json={"headers": {"X-Api-Token": ALICE_TOKEN}}))  # fmt: skip
    assert status["status"] == "configured" and ALICE_TOKEN not in json.dumps(status)
    record = env["record"]
    record.write_text("")

    async def echo(s: ClientSession) -> str:
        return (await s.call_tool("authed__echo", {"text": "me"})).content[0].text

    assert run(base, alice, echo) == "authed:me"
    alice_seen = record.read_text().split()
    record.write_text("")
    assert run(base, dave, echo) == "authed:me"
    dave_seen = record.read_text().split()
    assert ALICE_TOKEN in alice_seen and ORG_TOKEN not in alice_seen
    assert ALICE_TOKEN not in dave_seen and ORG_TOKEN in dave_seen
    # Admins see the status, never the value.
    users = ok(manage(env, "GET", "/mcp/servers/authed/users"))["data"]
    assert any(u["status"] == "configured" for u in users) and ALICE_TOKEN not in json.dumps(users)


def test_required_user_keys_give_a_clear_error(registered: dict[str, Any]) -> None:
    env = registered
    ok(manage(env, "POST", "/mcp/servers/authed", json={"user_keys": "required"}))
    erin = user_key(env, "erin@example.com", "all-mcp")

    async def go(s: ClientSession) -> Any:
        with pytest.raises(McpError) as raised:
            await s.call_tool("authed__echo", {"text": "x"})
        return raised.value.error

    error = run(env["gateway"].base, erin, go)
    assert error.code == -32003 and "X-Api-Token" in error.message and "credentials" in error.message
    ok(manage(env, "POST", "/mcp/servers/authed", json={"user_keys": "optional"}))


def test_a_schema_change_upstream_holds_the_tool_back(registered: dict[str, Any]) -> None:
    env = registered
    base = env["gateway"].base

    async def mutate(s: ClientSession) -> None:
        await s.call_tool("plain__mutate", {})

    run(base, ADMIN, mutate)
    diff = ok(manage(env, "POST", "/mcp/servers/plain/explore"))["diff"]
    assert diff["changed"] == ["add"] and diff["held"] == ["add"]
    assert "plain__add" not in names(base, ADMIN)
    audit = ok(manage(env, "GET", "/audit", params={"limit": 200}))["data"]
    assert any(e["action"] == "mcp.tool.schema_changed" and e["target_id"] == "plain/add" for e in audit)
    ok(manage(env, "POST", "/mcp/servers/plain/tools/add/approve"))
    assert "plain__add" in names(base, ADMIN)


def test_one_hundred_concurrent_calls_over_several_sessions(registered: dict[str, Any]) -> None:
    base = registered["gateway"].base

    async def main() -> list[str]:
        async def one_session(n: int) -> list[str]:
            async def calls(s: ClientSession) -> list[str]:
                results = await asyncio.gather(*(s.call_tool("plain__echo", {"text": f"{n}-{i}"}) for i in range(20)))
                return [r.content[0].text for r in results]

            return await session_call(base, ADMIN, calls)

        parts = await asyncio.gather(*(one_session(n) for n in range(5)))
        return [x for p in parts for x in p]

    texts = asyncio.run(main())
    assert sorted(texts) == sorted(f"plain:{n}-{i}" for n in range(5) for i in range(20))


def test_sessions_are_bound_to_their_key_and_end_with_delete(registered: dict[str, Any]) -> None:
    env = registered
    url = env["gateway"].base + "/v1/mcp"
    init = initialize("2099-01-01")
    auth = {"authorization": f"Bearer {ADMIN}", "accept": "application/json, text/event-stream"}
    resp = httpx.post(url, json=init, headers=auth)
    assert resp.json()["result"]["protocolVersion"] == "2025-11-25"
    sid = resp.headers["mcp-session-id"]
    assert len(sid) >= 40
    ping = {"jsonrpc": "2.0", "id": 2, "method": "ping"}
    assert httpx.post(url, json=ping, headers=auth).status_code == 400  # no session id
    other = user_key(env, "mallory@example.com", "all-mcp")
    stolen = httpx.post(url, json=ping, headers={**auth, "authorization": f"Bearer {other}", "mcp-session-id": sid})
    assert stolen.status_code == 404
    assert httpx.post(url, json=ping, headers={**auth, "mcp-session-id": sid}).json()["result"] == {}
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    assert httpx.post(url, json=note, headers={**auth, "mcp-session-id": sid}).status_code == 202
    assert httpx.post(url, content=b"{nope", headers={**auth, "mcp-session-id": sid}).json()["error"]["code"] == -32700
    unknown = {"jsonrpc": "2.0", "id": 3, "method": "resources/list"}
    assert httpx.post(url, json=unknown, headers={**auth, "mcp-session-id": sid}).json()["error"]["code"] == -32601
    assert httpx.delete(url, headers={**auth, "mcp-session-id": sid}).status_code == 204
    assert httpx.post(url, json=ping, headers={**auth, "mcp-session-id": sid}).status_code == 404


def test_analytics_metrics_and_no_secret_anywhere(registered: dict[str, Any]) -> None:
    env = registered
    time.sleep(1.0)  # the usage writer flushes every 0.5 s
    report = ok(manage(env, "GET", "/mcp/analytics"))
    assert report["totals"]["requests"] >= 100
    tools = {(t["server"], t["tool"]): t for t in report["tools"]}
    assert tools[("plain", "echo")]["requests"] >= 100 and tools[("plain", "echo")]["success_rate"] == 1.0
    assert {e["error_type"] for e in report["errors"]} >= {"timeout", "unknown_tool"}
    metrics = httpx.get(env["gateway"].base + "/metrics").text
    assert 'router_mcp_calls_total{server="plain",status="ok",tool="echo"}' in metrics
    servers = ok(manage(env, "GET", "/mcp/servers"))
    dump = db_dump(env["env"])
    for secret in (ORG_TOKEN, ALICE_TOKEN):
        assert secret not in json.dumps(servers) and secret not in json.dumps(report)
        assert secret not in dump and secret not in metrics


def test_standard_users_read_their_own_mcp_analytics_only(registered: dict[str, Any]) -> None:
    env = registered
    base = env["gateway"].base
    ok(manage(env, "POST", "/access-list", json={"name": "plain-echo", "mcp": ["mcp:plain"]}), 201)
    people = {}
    for name, calls in (("mona", 3), ("nils", 2)):
        user = ok(manage(env, "POST", "/user", json={"email": f"{name}@example.com", "name": name}), 201)
        key = ok(manage(env, "POST", "/apikey", json={"name": name, "owner": {"type": "user", "id": user["id"]},
                                                      "access_list": "plain-echo"}), 201)  # fmt: skip
        people[name] = {"user": user["id"], "key": key["key"], "key_id": key["id"], "calls": calls}

        async def go(s: ClientSession, n: int = calls) -> None:
            for i in range(n):
                await s.call_tool("plain__echo", {"text": str(i)})

        run(base, key["key"], go)
    reader = ok(manage(env, "POST", "/apikey", json={"name": "mcp-analyst", "permission": "read"}), 201)["key"]
    time.sleep(1.0)  # the usage writer flushes every 0.5 s
    mona, nils = people["mona"], people["nils"]
    own = ok(manage(env, "GET", "/mcp/analytics", key=mona["key"]))
    assert own["scope"] == "own" and own["totals"]["requests"] == 3 and own["active_users"] == 1
    assert own["active_keys"] == 1 and [t["requests"] for t in own["tools"]] == [3]
    assert ok(manage(env, "GET", "/mcp/analytics?user=me", key=mona["key"]))["totals"]["requests"] == 3
    same = ok(manage(env, "GET", f"/mcp/analytics?user={mona['user']}&key={mona['key_id']}", key=mona["key"]))
    assert same["totals"]["requests"] == 3
    # Another user's or another user's key: refused, not an empty answer.
    for query in (f"user={nils['user']}", f"key={nils['key_id']}"):
        refused = manage(env, "GET", f"/mcp/analytics?{query}", key=mona["key"])
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_permissions"
    # Admins and analysts see everyone's, and can narrow to one user or key.
    for key in (ADMIN, reader):
        everyone = ok(manage(env, "GET", "/mcp/analytics", key=key))
        assert everyone["scope"] == "all" and everyone["totals"]["requests"] >= 5 and everyone["active_users"] >= 2
        assert ok(manage(env, "GET", f"/mcp/analytics?user={nils['user']}", key=key))["totals"]["requests"] == 2
        assert ok(manage(env, "GET", f"/mcp/analytics?key={mona['key_id']}", key=key))["totals"]["requests"] == 3


def test_cli_lists_servers_and_templates(registered: dict[str, Any]) -> None:
    listed = json.loads(router_cli(registered["env"], "mcp", "servers", "--json").stdout)
    assert {s["name"] for s in listed} >= {"plain", "authed"}
    templates = json.loads(router_cli(registered["env"], "mcp", "templates", "--json").stdout)
    assert {t["name"] for t in templates} == {"github", "notion", "linear", "context7", "asana"}


def test_the_legacy_sse_transport_serves_older_clients(registered: dict[str, Any]) -> None:
    from mcp.client.sse import sse_client

    base = registered["gateway"].base
    seen: list[float] = []

    async def go() -> tuple[set[str], str, str]:
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with sse_client(f"{base}/v1/mcp/sse", headers=headers) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            listed = {t.name for t in (await s.list_tools()).tools}
            echo = (await s.call_tool("plain__echo", {"text": "old"})).content[0].text

            async def progress(value: float, total: float | None, message: str | None) -> None:
                seen.append(value)

            counted = await s.call_tool("plain__count", {"steps": 2}, progress_callback=progress)
            return listed, echo, counted.content[0].text

    listed, echo, counted = asyncio.run(go())
    assert "plain__echo" in listed and (echo, counted) == ("plain:old", "counted 2") and seen == [1, 2]
    # Another key cannot post into the stream's session.
    resp = httpx.post(f"{base}/v1/mcp/messages?session_id=nope", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                      headers={"authorization": f"Bearer {ADMIN}"})  # fmt: skip
    assert resp.status_code == 404


def test_standard_users_cannot_manage_servers(registered: dict[str, Any]) -> None:
    env = registered
    key = user_key(env, "frank@example.com", "all-mcp")
    assert manage(env, "POST", "/mcp/servers", key=key, json={"name": "x", "url": "http://x/mcp"}).status_code == 403
    assert manage(env, "POST", "/mcp/servers/plain/explore", key=key).status_code == 403
    assert manage(env, "POST", "/mcp/servers/plain/tools", key=key, json={"tools": ["secret_tool"]}).status_code == 403
    tools = ok(manage(env, "GET", "/mcp/servers/plain/tools", key=key))["data"]
    assert "secret_tool" not in {t["name"] for t in tools} and "echo" in {t["name"] for t in tools}
    # MCP analytics: their own calls only (see test_standard_users_read_their_own_mcp_analytics_only).
    assert ok(manage(env, "GET", "/mcp/analytics", key=key))["scope"] == "own"


def test_templates_prefill_url_and_required_headers(registered: dict[str, Any]) -> None:
    env = registered
    created = ok(manage(env, "POST", "/mcp/servers", json={"name": "gh", "template": "github", "enabled": False}), 201)
    assert created["url"] == "https://api.githubcopilot.com/mcp/" and created["transport"] == "streamable-http"
    assert created["user_keys"] == "required" and created["user_headers"] == ["Authorization"]
    bad = manage(env, "POST", "/mcp/servers", json={"name": "Bad_Name", "url": "http://127.0.0.1:1/mcp"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "name"
    clash = manage(env, "POST", "/mcp/servers", json={"name": "gh", "template": "github"})
    assert clash.status_code == 409
    ok(manage(env, "DELETE", "/mcp/servers/gh"))


def test_health_checks_report_status_in_the_api_and_metrics(registered: dict[str, Any]) -> None:
    env = registered
    ok(manage(env, "POST", "/mcp/servers", json={"name": "gone", "url": "http://127.0.0.1:9/mcp", "timeout": 2}), 201)
    results = {h["server"]: h for h in ok(manage(env, "POST", "/mcp/health"))["data"]}
    assert results["plain"]["status"] == "healthy" and results["authed"]["status"] == "healthy"
    assert results["gone"]["status"] == "error"
    assert ok(manage(env, "GET", "/mcp/servers/gone"))["health"]["status"] == "error"
    metrics = httpx.get(env["gateway"].base + "/metrics").text
    assert 'router_mcp_server_status{server="gone",status="error"} 1.0' in metrics
    ok(manage(env, "DELETE", "/mcp/servers/gone"))


def test_servers_with_per_user_credentials_only_are_health_checked_accurately(registered: dict[str, Any]) -> None:
    """No organisation credential: the check runs without credentials and never borrows a user's. A server that
    then refuses (401) is `needs_user_credentials`, not degraded or error; one that lists anonymously is healthy."""
    env = registered
    per_user = start_upstream("--name", "peruser", "--require-header", "X-User-Token", "--accept", "u-token-93",
                              "--record", str(env["record"]))  # fmt: skip
    try:
        specs = {
            "peruser": {"url": per_user.base + "/mcp", "user_keys": "required", "user_headers": ["X-User-Token"]},
            "peruser-opt": {"url": per_user.base + "/mcp", "user_keys": "optional", "user_headers": ["X-User-Token"]},
            "anon-list": {"url": env["plain"].base + "/mcp", "user_keys": "required", "user_headers": ["X-User-Token"]},
            "peruser-off": {"url": per_user.base + "/mcp"},
        }
        for name, spec in specs.items():
            ok(manage(env, "POST", "/mcp/servers", json={"name": name, "timeout": 5, **spec}), 201)
        ok(manage(env, "POST", "/access-list", json={"name": "peruser-mcp", "mcp": ["mcp:peruser"]}), 201)
        gus = user_key(env, "gus@example.com", "peruser-mcp")
        ok(manage(env, "PUT", "/mcp/servers/peruser/credentials", key=gus,
                  json={"headers": {"X-User-Token": "u-token-93"}}))  # fmt: skip
        env["record"].write_text("")
        results = {h["server"]: h for h in ok(manage(env, "POST", "/mcp/health"))["data"]}
        assert results["peruser"]["status"] == "needs_user_credentials"
        assert results["peruser-opt"]["status"] == "needs_user_credentials"
        assert "401" in results["peruser"]["error"] and results["peruser"]["tools"] is None
        assert results["anon-list"]["status"] == "healthy" and results["anon-list"]["tools"] >= 7
        # Without per-user credentials a refusal is a fault.
        assert results["peruser-off"]["status"] == "error"
        assert "u-token-93" not in env["record"].read_text()  # a user's credential was never used by the check
        view = ok(manage(env, "GET", "/mcp/servers/peruser"))["health"]
        assert view["status"] == "needs_user_credentials"
        metrics = httpx.get(env["gateway"].base + "/metrics").text
        assert 'router_mcp_server_status{server="peruser",status="needs_user_credentials"} 1.0' in metrics
        assert 'router_mcp_server_status{server="peruser",status="degraded"} 0.0' in metrics
        assert 'router_mcp_server_status{server="anon-list",status="healthy"} 1.0' in metrics
    finally:
        for name in ("peruser", "peruser-opt", "anon-list", "peruser-off"):
            manage(env, "DELETE", f"/mcp/servers/{name}")
        per_user.stop()


def test_the_event_stream_announces_tool_list_changes(registered: dict[str, Any]) -> None:
    env = registered
    url = env["gateway"].base + "/v1/mcp"
    auth = {"authorization": f"Bearer {ADMIN}", "accept": "application/json, text/event-stream"}
    sid = httpx.post(url, json=initialize("2025-06-18"), headers=auth).headers["mcp-session-id"]
    headers = {**auth, "accept": "text/event-stream", "mcp-session-id": sid}
    with httpx.stream("GET", url, headers=headers, timeout=15) as stream:
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        ok(manage(env, "POST", "/mcp/servers/plain/tools", json={"tools": ["add"], "mode": "remove"}))
        for line in lines:
            if line.startswith("data:"):
                assert json.loads(line[5:])["method"] == "notifications/tools/list_changed"
                break
    ok(manage(env, "POST", "/mcp/servers/plain/tools", json={"tools": ["add"]}))


def test_a_client_cancellation_cancels_the_upstream_call(registered: dict[str, Any]) -> None:
    env = registered
    url = env["gateway"].base + "/v1/mcp"
    auth = {"authorization": f"Bearer {ADMIN}", "accept": "application/json, text/event-stream"}
    env["events"].write_text("")

    async def go() -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=20) as client:
            sid = (await client.post(url, json=initialize("2025-06-18"), headers=auth)).headers["mcp-session-id"]
            headers = {**auth, "mcp-session-id": sid}
            call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                    "params": {"name": "plain__slow", "arguments": {"seconds": 2.5}}}  # fmt: skip
            pending = asyncio.ensure_future(client.post(url, json=call, headers=headers))
            await asyncio.sleep(0.8)
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
            assert (await client.post(url, json=cancel, headers=headers)).status_code == 202
            return (await pending).json()

    answer = asyncio.run(go())
    # Not cancelled, the call would have answered "done" after 2.5 s (or -32001 at the server's 3 s timeout).
    assert answer["error"]["code"] == -32603 and "cancelled" in answer["error"]["message"]
    deadline = time.monotonic() + 5
    while "slow cancelled" not in env["events"].read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "slow cancelled" in env["events"].read_text()


def test_guardrails_mask_or_block_tool_arguments_when_the_server_enables_them(registered: dict[str, Any]) -> None:
    env = registered
    base = env["gateway"].base
    email = "jane.doe@acme-corp.io"

    async def echo(s: ClientSession) -> Any:
        return await s.call_tool("plain__echo", {"text": f"mail {email}"})

    assert run(base, ADMIN, echo).content[0].text == f"plain:mail {email}"  # the server has them off
    ok(manage(env, "PUT", "/guardrails", json={"categories": {"pii": "mask"}}))
    ok(manage(env, "POST", "/mcp/servers/plain", json={"guardrails": True}))
    try:
        assert run(base, ADMIN, echo).content[0].text == "plain:mail [EMAIL_1]"  # masked before it left
        ok(manage(env, "PUT", "/guardrails", json={"categories": {"pii": "block"}}))

        async def blocked(s: ClientSession) -> Any:
            with pytest.raises(McpError) as raised:
                await echo(s)
            return raised.value.error

        error = run(base, ADMIN, blocked)
        assert error.code == -32602 and "pii" in error.message and email not in error.message
    finally:
        ok(manage(env, "POST", "/mcp/servers/plain", json={"guardrails": False}))
        ok(manage(env, "DELETE", "/guardrails"))


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Events of an SSE stream as {field: value} (data lines joined), comments skipped."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            event[field] = event[field] + "\n" + value if field in event else value


def test_a_tools_call_stream_resumes_with_last_event_id_after_a_disconnect(registered: dict[str, Any]) -> None:
    env = registered
    url = env["gateway"].base + "/v1/mcp"
    auth = {"authorization": f"Bearer {ADMIN}", "accept": "application/json, text/event-stream"}
    sid = httpx.post(url, json=initialize("2025-11-25"), headers=auth).headers["mcp-session-id"]
    headers = {**auth, "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
    params = {"name": "plain__count", "arguments": {"steps": 12}, "_meta": {"progressToken": "tok"}}
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}
    seen: list[dict[str, str]] = []
    with httpx.stream("POST", url, json=call, headers=headers, timeout=15) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse_events(stream.iter_lines())
        priming = next(events)
        assert priming["id"] and priming["data"] == "" and priming["retry"] == "1000"
        seen.append(next(events))  # the first progress notification, then the client goes away
    first = json.loads(seen[0]["data"])
    assert first["method"] == "notifications/progress" and first["params"]["progress"] == 1
    time.sleep(0.6)  # the call keeps running meanwhile: a disconnection is not a cancellation
    get = {**headers, "accept": "text/event-stream", "last-event-id": seen[0]["id"]}
    with httpx.stream("GET", url, headers=get, timeout=15) as stream:
        rest = list(sse_events(stream.iter_lines()))  # ends after the response
    messages = [json.loads(e["data"]) for e in rest]
    assert [m["params"]["progress"] for m in messages[:-1]] == list(range(2, 13))
    assert messages[-1]["id"] == 5 and messages[-1]["result"]["content"][0]["text"] == "counted 12"
    ids = [priming["id"], seen[0]["id"], *(e["id"] for e in rest)]
    assert len(set(ids)) == len(ids) and all(i.startswith(priming["id"].split("-")[0]) for i in ids)
    # Resuming from the middle replays only what came after that id, again.
    with httpx.stream("GET", url, headers={**get, "last-event-id": rest[8]["id"]}, timeout=15) as stream:
        assert [e["id"] for e in sse_events(stream.iter_lines())] == [e["id"] for e in rest[9:]]

    # Another session (even of the same key) cannot read this stream: it gets a fresh stream of its own.
    other = httpx.post(url, json=initialize("2025-11-25"), headers=auth).headers["mcp-session-id"]
    with httpx.stream("GET", url, headers={**get, "mcp-session-id": other}, timeout=15) as stream:
        event = next(sse_events(stream.iter_lines()))
        assert event["data"] == "" and event["id"].startswith("g") and event["id"] not in ids


def test_the_get_stream_replays_what_the_client_missed(registered: dict[str, Any]) -> None:
    env = registered
    url = env["gateway"].base + "/v1/mcp"
    auth = {"authorization": f"Bearer {ADMIN}", "accept": "application/json, text/event-stream"}
    sid = httpx.post(url, json=initialize("2025-11-25"), headers=auth).headers["mcp-session-id"]
    headers = {**auth, "accept": "text/event-stream", "mcp-session-id": sid, "mcp-protocol-version": "2025-11-25"}
    with httpx.stream("GET", url, headers=headers, timeout=15) as stream:
        events = sse_events(stream.iter_lines())
        priming = next(events)
        assert priming["id"].startswith("g") and priming["data"] == ""
        ok(manage(env, "POST", "/mcp/servers/plain/tools", json={"tools": ["add"], "mode": "remove"}))
        notice = next(events)
        assert json.loads(notice["data"])["method"] == "notifications/tools/list_changed"
    ok(manage(env, "POST", "/mcp/servers/plain/tools", json={"tools": ["add"]}))
    # The client saw only the priming event (say): resuming from it replays the notice, on the same stream.
    with httpx.stream("GET", url, headers={**headers, "last-event-id": priming["id"]}, timeout=15) as stream:
        replayed = next(sse_events(stream.iter_lines()))
    assert replayed["id"] == notice["id"] and replayed["data"] == notice["data"]


def test_secrets_never_reach_the_gateway_log(registered: dict[str, Any]) -> None:
    """Last: stops the module's gateway to read everything it logged."""
    out = registered["gateway"].stop()
    assert "Traceback" not in out
    for secret in (ORG_TOKEN, ALICE_TOKEN):
        assert secret not in out


def test_sessions_work_across_workers(tmp_path: Path) -> None:
    """Sessions live in the database: with two granian workers, every request of a session is accepted
    whichever worker gets it."""
    upstream = start_upstream("--name", "multi")
    genv = gateway_env(tmp_path / "router.db", "http://127.0.0.1:9")
    gateway = start_gateway(genv, workers=2)
    try:
        ok(manage_call(gateway.base, ADMIN, "POST", "/mcp/servers",
                       json={"name": "multi", "url": upstream.base + "/mcp"}), 201)  # fmt: skip
        ok(manage_call(gateway.base, ADMIN, "POST", "/mcp/servers/multi/explore"))
        ok(manage_call(gateway.base, ADMIN, "POST", "/mcp/servers/multi/tools", json={"tools": ["add", "count"]}))

        async def go(s: ClientSession) -> list[str]:
            return [(await s.call_tool("multi__add", {"a": i, "b": 1})).content[0].text for i in range(30)]

        assert run(gateway.base, ADMIN, go) == [str(i + 1) for i in range(30)]
        # A fresh connection per request lands on either worker.
        url = gateway.base + "/v1/mcp"
        auth = {"authorization": f"Bearer {ADMIN}", "accept": "application/json, text/event-stream"}
        sid = httpx.post(url, json=initialize("2025-06-18"), headers=auth).headers["mcp-session-id"]
        for i in range(20):
            ping = {"jsonrpc": "2.0", "id": i, "method": "ping"}
            assert httpx.post(url, json=ping, headers={**auth, "mcp-session-id": sid}).json()["result"] == {}
        # Replay buffers live in the database too: a stream resumes whichever worker the reconnection reaches.
        params = {"name": "multi__count", "arguments": {"steps": 3}, "_meta": {"progressToken": 1}}
        call = {"jsonrpc": "2.0", "id": 99, "method": "tools/call", "params": params}
        with httpx.stream("POST", url, json=call, headers={**auth, "mcp-session-id": sid}, timeout=15) as stream:
            first = next(sse_events(stream.iter_lines()))
        get = {**auth, "accept": "text/event-stream", "mcp-session-id": sid, "last-event-id": first["id"]}
        for _ in range(6):
            with httpx.stream("GET", url, headers=get, timeout=15) as stream:
                rest = [json.loads(e["data"]) for e in sse_events(stream.iter_lines())]
            assert [m.get("params", {}).get("progress") for m in rest[:-1]] == [2, 3]
            assert rest[-1]["result"]["content"][0]["text"] == "counted 3"
    finally:
        gateway.stop()
        upstream.stop()
