"""The dashboard's sessions over raw HTTP: login, cookie flags, security headers, CSRF and same-origin checks on
cookie-authenticated management calls, idle and absolute timeouts, logout, and a revoked key ending its session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from servers import ADMIN_KEY, Server, gateway_env, manage_call, start_gateway

CONFIG = """
providers:
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: mock-upstream-key
models:
  - id: mock/gpt-4o
    upstream_model: gpt-4o
dashboard:
  session_idle_timeout: 600
  session_max_age: 3600
"""


@pytest.fixture(scope="module")
def gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("dash-sessions")
    config = root / "router.yaml"
    config.write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, config)
    env["ROUTER_TEST_CLOCK_OFFSET_FILE"] = str(root / "clock")
    server = start_gateway(env)
    server.clock = root / "clock"  # type: ignore[attr-defined]
    yield server
    server.stop()


_OPEN: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def login(base: str, key: str = ADMIN_KEY, **headers: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=20)
    _OPEN.append(client)
    r = client.post("/ui/login", json={"key": key}, headers=headers)
    assert r.status_code == 200, r.text
    client.csrf = r.json()["csrf_token"]  # type: ignore[attr-defined]
    return client


def set_clock(server: Server, seconds: float) -> None:
    Path(server.clock).write_text(str(seconds))  # type: ignore[attr-defined]


def test_login_sets_a_strict_httponly_cookie_and_security_headers(gateway: Server) -> None:
    r = httpx.post(f"{gateway.base}/ui/login", json={"key": ADMIN_KEY})
    assert r.status_code == 200
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("router_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback: a Secure cookie would never come back
    assert r.json()["you"]["role"] == "admin"
    assert r.headers["cache-control"] == "no-store"
    behind_tls = httpx.post(f"{gateway.base}/ui/login", json={"key": ADMIN_KEY}, headers={"x-forwarded-proto": "https"})
    assert "; Secure" in behind_tls.headers["set-cookie"]
    page = httpx.get(f"{gateway.base}/ui/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(f"{gateway.base}/ui/js/app.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(f"{gateway.base}/ui/vendor/uPlot.esm.js").status_code == 200
    cached = httpx.get(f"{gateway.base}/ui/js/app.js", headers={"if-none-match": page.headers["etag"]})
    assert cached.status_code == 200  # another file's tag
    again = httpx.get(f"{gateway.base}/ui/", headers={"if-none-match": page.headers["etag"]})
    assert again.status_code == 304


def test_unknown_files_and_traversal_are_404(gateway: Server) -> None:
    for path in ("/ui/../pyproject.toml", "/ui/js/../../sessions.py", "/ui/nope.js", "/ui/%2e%2e/serve.py"):
        assert httpx.get(f"{gateway.base}{path}").status_code == 404, path
    assert httpx.get(f"{gateway.base}/ui", follow_redirects=False).status_code == 308


def test_wrong_key_is_refused_like_the_management_api(gateway: Server) -> None:
    r = httpx.post(f"{gateway.base}/ui/login", json={"key": "rk-" + "x" * 43})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert "set-cookie" not in r.headers
    assert httpx.post(f"{gateway.base}/ui/login", json={"nope": 1}).status_code == 400
    assert httpx.post(f"{gateway.base}/ui/login", content=b"{").status_code == 400
    assert httpx.get(f"{gateway.base}/ui/session").json()["error"]["code"] == "session_missing"


def test_cookie_authenticates_management_reads_and_csrf_guards_writes(gateway: Server) -> None:
    client = login(gateway.base)
    assert client.get("/v1/manage/org").json()["you"]["role"] == "admin"
    body = {"email": "csrf@example.com"}
    missing = client.post("/v1/manage/user", json=body)
    assert missing.status_code == 403 and missing.json()["error"]["code"] == "csrf_token_invalid"
    wrong = client.post("/v1/manage/user", json=body, headers={"x-csrf-token": "x" * 43})
    assert wrong.status_code == 403
    token = {"x-csrf-token": client.csrf}  # type: ignore[attr-defined]
    cross = client.post("/v1/manage/user", json=body, headers={**token, "origin": "https://evil.example"})
    assert cross.status_code == 403 and cross.json()["error"]["code"] == "cross_site_request"
    site = client.post("/v1/manage/user", json=body, headers={**token, "sec-fetch-site": "cross-site"})
    assert site.status_code == 403
    ok = client.post("/v1/manage/user", json=body, headers={**token, "origin": gateway.base})
    assert ok.status_code == 201, ok.text
    # Behind a proxy that rewrites Host, its X-Forwarded-Host names the browser's origin.
    proxied = {**token, "origin": "https://gw.example.com", "x-forwarded-host": "gw.example.com"}
    ok = client.post("/v1/manage/user", json={"email": "proxied@example.com"}, headers=proxied)
    assert ok.status_code == 201, ok.text
    # The token belongs to its session: another session's token does not work.
    a, b = login(gateway.base), login(gateway.base)
    r = a.post("/v1/manage/user", json={"email": "x@example.com"}, headers={"x-csrf-token": b.csrf})  # type: ignore[attr-defined]
    assert r.status_code == 403
    users = manage_call(gateway.base, ADMIN_KEY, "GET", "/user").json()["data"]
    assert "csrf@example.com" in [u["email"] for u in users]
    assert "x@example.com" not in [u["email"] for u in users]


def test_session_ends_on_logout_idle_and_absolute_timeouts(gateway: Server) -> None:
    set_clock(gateway, 0)
    client = login(gateway.base)
    r = client.post("/ui/logout", json={})
    assert r.status_code == 403  # logout is state-changing too: CSRF token required
    r = client.post("/ui/logout", json={}, headers={"x-csrf-token": client.csrf})  # type: ignore[attr-defined]
    assert r.status_code == 200 and "Max-Age=0" in r.headers["set-cookie"]
    events = manage_call(gateway.base, ADMIN_KEY, "GET", "/audit", params={"action": "ui.*"}).json()["data"]
    assert {"ui.login", "ui.logout"} <= {e["action"] for e in events}
    assert all(e["actor"] == "admin" and e["detail"]["client"] == "127.0.0.1" for e in events)
    old = client.cookies.get("router_session")
    gone = httpx.get(f"{gateway.base}/v1/manage/org", cookies={"router_session": old or "x"})
    assert gone.status_code == 401 and gone.json()["error"]["code"] in ("session_expired", "session_missing")

    client = login(gateway.base)
    set_clock(gateway, 300)
    assert client.get("/v1/manage/org").status_code == 200  # 5 min idle < 10 min
    set_clock(gateway, 300 + 601)
    idle = client.get("/v1/manage/org")
    assert idle.status_code == 401 and idle.json()["error"]["code"] == "session_expired"

    set_clock(gateway, 0)
    client = login(gateway.base)
    for minutes in range(5, 61, 5):  # active every 5 minutes, yet the 1 h absolute limit ends it
        set_clock(gateway, minutes * 60 - 1)
        assert client.get("/v1/manage/org").status_code == 200
    set_clock(gateway, 3601)
    assert client.get("/v1/manage/org").json()["error"]["code"] == "session_expired"
    set_clock(gateway, 0)


def test_revoking_the_key_ends_its_session_and_a_bearer_key_wins(gateway: Server) -> None:
    manage_call(gateway.base, ADMIN_KEY, "POST", "/user", json={"email": "owner@example.com"}).raise_for_status()
    spec = {"name": "ui-user", "owner": {"type": "user", "id": "owner@example.com"}}
    made = manage_call(gateway.base, ADMIN_KEY, "POST", "/apikey", json=spec).json()
    client = login(gateway.base, made["key"])
    assert client.get("/v1/manage/org").json()["you"]["role"] == "standard"
    manage_call(gateway.base, ADMIN_KEY, "POST", f"/apikey/{made['id']}/revoke").raise_for_status()
    r = client.get("/v1/manage/org")
    assert r.status_code == 401 and r.json()["error"]["code"] == "revoked_api_key"
    # A request with both a key and a cookie is the key's: the cookie never widens a bearer call.
    r = client.get("/v1/manage/user", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200
    # The cookie is accepted by the management API only, never by the proxy endpoints.
    admin = login(gateway.base)
    body = {"model": "mock/gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    chat = admin.post("/v1/chat/completions", json=body)
    assert chat.status_code == 401


def test_key_list_filters_by_status_server_side(gateway: Server) -> None:
    """The dashboard's expiring-soon and expired filters are the API's, so they page over every key."""
    set_clock(gateway, 0)

    def make(name: str, **fields: object) -> str:
        r = manage_call(gateway.base, ADMIN_KEY, "POST", "/apikey", json={"name": name, **fields})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    soon, later, never, revoked = (
        make("f-soon", expires_at="3d"),
        make("f-later", expires_at="30d"),
        make("f-never"),
        make("f-rev"),
    )
    manage_call(gateway.base, ADMIN_KEY, "POST", f"/apikey/{revoked}/revoke").raise_for_status()

    def listed(**params: object) -> set[str]:
        r = manage_call(gateway.base, ADMIN_KEY, "GET", "/apikey", params={"limit": 500, **params})
        assert r.status_code == 200, r.text
        return {k["id"] for k in r.json()["data"]} & {soon, later, never, revoked}

    assert listed() == {soon, later, never, revoked}
    assert listed(status="active") == {soon, later, never}
    assert listed(status="revoked") == {revoked}
    assert listed(status="expiring") == {soon}
    assert listed(status="expiring", within_days=31) == {soon, later}
    assert listed(status="expired") == set()
    set_clock(gateway, 4 * 86400)
    assert listed(status="expired") == {soon}
    assert listed(status="active") == {later, never}
    set_clock(gateway, 0)
    for bad in ({"status": "gone"}, {"status": "expiring", "within_days": "0"}, {"within_days": "x"}):
        r = manage_call(gateway.base, ADMIN_KEY, "GET", "/apikey", params=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_value", bad
