"""The dashboard in a real browser: Playwright driving Debian's Chromium headless (never Playwright's own browser
download), against a fresh gateway on the mock for each journey.

Screenshots of every page go to a folder under pytest's temporary directory, or to the folder named by
ROUTER_DASHBOARD_SCREENSHOTS (`docs/assets/dashboard` refreshes the documentation's images).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from servers import ADMIN_KEY, Server, gateway_env, manage_call, start_gateway

sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra installs playwright")

CHROMIUM = "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[2] / "ui" / "node_modules" / "axe-core" / "axe.min.js"
PAGES = ["overview", "models", "access-lists", "groups", "users", "keys", "policies", "guardrails", "usage", "audit",
         "mcp", "prompts"]  # fmt: skip

pytestmark = pytest.mark.browser


# Module scope, not session: Playwright's sync API keeps its event loop running in the main thread while it is
# open, and every later test that calls asyncio.run() would fail ("cannot be called from a running event loop").
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make services` installs Debian's chromium")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def gateway(mock_server: Server, tmp_path: Path) -> Iterator[Server]:
    server = start_gateway(gateway_env(tmp_path / "router.db", mock_server.base))
    yield server
    server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.errors = errors
    yield pg
    context.close()
    assert not errors, errors  # no uncaught script error on any page


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("ROUTER_DASHBOARD_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("dashboard-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/ui/")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("nav.side")


def wait_loaded(page: Any) -> None:
    # A locator, not wait_for_function: the dashboard's CSP (no 'unsafe-eval') refuses evaluated strings.
    page.locator("main .state[role=status]").first.wait_for(state="detached")


def open_page(page: Any, base: str, route: str) -> None:
    page.goto(f"{base}/ui/#/{route}")
    page.wait_for_selector("main h1")
    wait_loaded(page)


def test_admin_journey_preset_group_user_key_sdk_usage_revoke(gateway: Server, page: Any, shots: Path) -> None:
    base = gateway.base
    sign_in(page, base, ADMIN_KEY)
    page.get_by_role("link", name="Models").click()
    page.get_by_role("button", name="Presets…").click()
    page.get_by_label("Preset", exact=True).select_option("eu-zdr")
    page.get_by_label("Mode", exact=True).select_option("replace")
    preview = page.locator(".preview")
    assert "mock/gpt-4o-mini" in preview.inner_text()
    page.screenshot(path=shots / "models-preset.png")
    page.get_by_role("button", name="Apply preset").click()
    page.wait_for_selector("text=Approval is on")
    approved = manage_call(base, ADMIN_KEY, "GET", "/models/approved").json()
    assert approved == {"approval_configured": True, "models": ["mock/gpt-4o-mini"]}

    # An access list, then a group using it.
    open_page(page, base, "access-lists")
    page.get_by_role("button", name="New access list").click()
    page.get_by_label("Name", exact=True).fill("eu-models")
    page.get_by_label("Models", exact=True).fill("mock/gpt-4o-mini")
    page.get_by_role("button", name="Create").click()
    page.wait_for_selector("td:has-text('eu-models')")
    open_page(page, base, "groups")
    page.get_by_role("button", name="New group").click()
    page.get_by_label("Name", exact=True).fill("research")
    page.get_by_label("Access list", exact=True).select_option(label="eu-models")
    page.get_by_label("Monthly budget (USD)", exact=True).fill("25")
    page.get_by_role("button", name="Create group").click()
    page.wait_for_selector("td:has-text('research')")
    group = manage_call(base, ADMIN_KEY, "GET", "/group").json()["data"][0]
    assert group["name"] == "research" and group["access_list_id"] and group["monthly_budget"] == 25

    # A user, and a key for them in the group; the secret is shown once.
    open_page(page, base, "users")
    page.get_by_role("button", name="New user").click()
    page.get_by_label("Email", exact=True).fill("ana@example.com")
    page.get_by_label("Name", exact=True).fill("Ana")
    page.get_by_role("button", name="Create user").click()
    page.wait_for_selector("td:has-text('ana@example.com')")
    open_page(page, base, "keys")
    page.get_by_role("button", name="New key").click()
    page.get_by_label("Name", exact=True).fill("ana-laptop")
    page.get_by_label("Owner type", exact=True).select_option("user")
    page.get_by_label("Owner", exact=True).fill("ana@example.com")
    page.get_by_label("Groups", exact=True).fill("research")
    page.get_by_label("Labels", exact=True).fill("team=research")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("The new key", exact=True).input_value()
    assert secret.startswith("rk-")
    page.screenshot(path=shots / "keys-secret-once.png")
    page.keyboard.press("Escape")
    page.wait_for_selector("td:has-text('ana-laptop')")

    # The key works with the official SDK, within its group's access list.
    with openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0, timeout=20) as sdk:
        answer = sdk.chat.completions.create(model="mock/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        with pytest.raises(openai.PermissionDeniedError):
            sdk.chat.completions.create(model="mock/gpt-4o", messages=[{"role": "user", "content": "hi"}])

    # The request shows in the usage page with its cost.
    key_id = manage_call(base, ADMIN_KEY, "GET", "/apikey").json()["data"][0]["id"]
    open_page(page, base, "usage")
    page.get_by_label("Group by", exact=True).select_option("key")
    for _ in range(50):
        page.get_by_role("button", name="Show", exact=True).click()
        wait_loaded(page)
        # The page's three reports are read in parallel while the usage rows land: the grouped table can show
        # a row the time series, read a moment earlier, did not have yet (its chart then says "No requests").
        if page.locator(f"td:has-text('{key_id}')").count() and page.locator(".chart canvas").count():
            break
        page.wait_for_timeout(200)
    row = page.locator(f"tr:has(td:has-text('{key_id}'))")
    cells = row.locator("td").all_inner_texts()
    assert cells[1:3] == ["2", "1"]  # two requests, one refused by the access list
    assert cells[5].startswith("$0.0000") and cells[5] != "$0.000000"
    page.wait_for_selector(".chart canvas")
    page.screenshot(path=shots / "usage.png", full_page=True)
    csv = page.locator("a:has-text('Export CSV')").get_attribute("href")
    assert csv and csv.startswith("/v1/manage/usage/export?")

    # Revoke it in the UI: the next SDK call is refused.
    open_page(page, base, "keys")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Revoke ana-laptop").click()
    page.wait_for_selector("td:has-text('revoked')")
    with (
        openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0, timeout=20) as sdk,
        pytest.raises(openai.AuthenticationError),
    ):
        sdk.chat.completions.create(model="mock/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    audit = manage_call(base, ADMIN_KEY, "GET", "/audit", params={"action": "key.revoke"}).json()["data"]
    assert [e["target_id"] for e in audit] == [key_id]


def test_standard_user_sees_only_their_own(gateway: Server, page: Any, shots: Path) -> None:
    base = gateway.base
    for email in ("bo@example.com", "cy@example.com"):
        manage_call(base, ADMIN_KEY, "POST", "/user", json={"email": email}).raise_for_status()
    keys = {}
    for name, email in (("bo-key", "bo@example.com"), ("cy-key", "cy@example.com")):
        spec = {"name": name, "owner": {"type": "user", "id": email}}
        keys[name] = manage_call(base, ADMIN_KEY, "POST", "/apikey", json=spec).json()
    mine = keys["bo-key"]
    sign_in(page, base, mine["key"])
    nav = page.locator("nav.side").inner_text()
    for hidden in ("Users", "Audit log", "Guardrails", "Access lists", "Routing policies"):
        assert hidden not in nav
    open_page(page, base, "keys")
    # Waits for the table: coming from another page by its address, the previous page's title and loaded state
    # can satisfy open_page before this list has arrived.
    sync_api.expect(page.locator("td:has-text('bo-key')")).to_have_count(1)
    assert page.locator("td:has-text('cy-key')").count() == 0
    page.screenshot(path=shots / "standard-user-keys.png")
    # Typing an admin page's address: the page shows the API's refusal, and the API refuses a direct call too.
    open_page(page, base, "users")
    assert "may list users" in page.locator("main [role=alert]").first.inner_text()
    open_page(page, base, "audit")
    assert page.locator("main [role=alert]").count() == 1
    direct = page.request.get(f"{base}/v1/manage/user")
    assert direct.status == 403
    assert page.request.get(f"{base}/v1/manage/audit").status == 403
    listed = page.request.get(f"{base}/v1/manage/apikey").json()["data"]
    assert [k["name"] for k in listed] == ["bo-key"]


def test_forged_cross_site_post_is_refused(gateway: Server, browser: Any) -> None:
    base = gateway.base
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, base, ADMIN_KEY)
    made = manage_call(base, ADMIN_KEY, "POST", "/apikey", json={"name": "victim"}).json()
    target = f"{base}/v1/manage/apikey/{made['id']}/revoke"
    evil = (
        "<html><body><form id=f method=POST action='" + target + "' enctype='text/plain'>"
        "<input name='{\"a\":' value='1}'></form>"
        "<script>fetch('" + target + "', {method: 'POST', credentials: 'include', mode: 'no-cors', "
        "body: '{}'}).finally(() => document.getElementById('f').submit())</script></body></html>"
    )
    context.route("http://evil.test/**", lambda route: route.fulfill(status=200, content_type="text/html", body=evil))
    attacker = context.new_page()
    with attacker.expect_navigation(url=target):
        attacker.goto("http://evil.test/page")
    assert attacker.locator("body").inner_text().count("error") >= 1
    key = manage_call(base, ADMIN_KEY, "GET", f"/apikey/{made['id']}").json()
    assert key["status"] == "active"
    # The same request from the dashboard's own page, with its CSRF token, goes through.
    page.goto(f"{base}/ui/#/keys")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Revoke victim").click()
    page.wait_for_selector("td:has-text('revoked')")
    assert manage_call(base, ADMIN_KEY, "GET", f"/apikey/{made['id']}").json()["status"] == "revoked"
    context.close()


def test_every_page_renders_screenshots_and_passes_axe(gateway: Server, page: Any, shots: Path) -> None:
    base = gateway.base
    # Some content, so pages show tables rather than only their empty states.
    manage_call(base, ADMIN_KEY, "POST", "/user", json={"email": "dee@example.com", "name": "Dee"}).raise_for_status()
    manage_call(base, ADMIN_KEY, "POST", "/group", json={"name": "platform"}).raise_for_status()
    spec = {"name": "ci", "labels": {"env": "ci"}, "monthly_limit": 5}
    made = manage_call(base, ADMIN_KEY, "POST", "/apikey", json=spec).json()
    manage_call(base, ADMIN_KEY, "POST", "/access-list", json={"name": "eu", "providers": ["mock"]}).raise_for_status()
    manage_call(base, ADMIN_KEY, "POST", "/prompts", json={"name": "tone", "content": "Be brief."}).raise_for_status()
    with openai.OpenAI(base_url=f"{base}/v1", api_key=made["key"], max_retries=0, timeout=20) as sdk:
        for i in range(3):
            sdk.chat.completions.create(
                model="mock/gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"requesty": {"trace_id": "trace-ui"}} if i else None,
            )
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make ui` installs the dashboard's npm packages")
    axe = AXE.read_text()
    sign_in(page, base, ADMIN_KEY)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for route in PAGES:
            open_page(page, base, route)
            suffix = "" if width == 1280 else "-narrow"
            if route == "usage" and width == 1280:
                budget = page.locator("tr:has(td:text-is('ci'))").first
                budget.wait_for()
                cells = budget.locator("td").all_inner_texts()
                assert cells[1] == "$5.00" and cells[2].startswith("$0.000") and cells[2] != "$0.000000", cells
                page.get_by_label("Trace id", exact=True).fill("trace-ui")
                page.get_by_role("button", name="Show trace").click()
                page.locator("caption:text-is('Trace trace-ui')").wait_for()
                assert page.locator("table:has(caption:text-is('Trace trace-ui')) tbody tr").count() == 2
            if route == "guardrails" and width == 1280:
                # The "test a text" box, keyboard only: under the key's effective settings, Ctrl+Enter submits.
                page.get_by_label("Settings of", exact=True).select_option("apikey")
                page.get_by_label("Key or group to test with", exact=True).fill(made["id"])
                page.get_by_label("Text to test", exact=True).fill("Write to dee@example.com, key AKIAQWERTYUIOPASDFGH")
                page.get_by_label("Text to test", exact=True).press("Control+Enter")
                masked = page.locator("pre.masked-text")
                masked.wait_for()
                assert masked.inner_text() == "Write to [EMAIL_1], key [AWS_ACCESS_KEY_1]"
                assert page.locator(".verdict").inner_text().startswith("MASK")
                rows = page.locator("table:has(caption:text-is('Findings')) tbody tr").all_inner_texts()
                assert [r.split("\t") for r in rows] == [
                    ["EMAIL", "pii", "9\u201324", "mask"],
                    ["AWS_ACCESS_KEY", "secrets", "30\u201350", "mask"],
                ]
            page.screenshot(path=shots / f"{route}{suffix}.png", full_page=True)
            if width != 1280:
                continue
            page.evaluate(axe)  # evaluated through the debugging protocol: the page's CSP still applies to it
            found = page.evaluate(
                "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
                ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 3)}))"
            )
            serious = [v for v in found if v["impact"] in ("serious", "critical")]
            assert not serious, (route, serious)
    # The API's validation errors show beside the field they name.
    page.set_viewport_size({"width": 1280, "height": 900})
    open_page(page, base, "policies")
    page.get_by_role("button", name="New policy").click()
    page.get_by_label("Name", exact=True).fill("chain")
    page.get_by_label("Target 1 model", exact=True).fill("mock/gpt-4o")
    page.get_by_role("button", name="Add target").click()
    page.get_by_label("Target 2 model", exact=True).fill("nope/missing")
    page.get_by_role("button", name="Save policy").click()
    error = page.locator("small.field-error[data-for='targets[1]']")
    error.wait_for()
    assert "nope/missing" in error.inner_text() or "targets[1]" in error.inner_text()
    page.get_by_role("button", name="Move target 2 up").click()
    assert page.get_by_label("Target 1 model", exact=True).input_value() == "nope/missing"
    page.get_by_label("Target 1 model", exact=True).fill("mock/gpt-4o-mini")
    page.get_by_role("button", name="Save policy").click()
    page.wait_for_selector("td:text-is('chain')")
    saved = manage_call(base, ADMIN_KEY, "GET", "/policy/chain").json()
    assert [t["model"] for t in saved["targets"]] == ["mock/gpt-4o-mini", "mock/gpt-4o"]
    page.set_viewport_size({"width": 390, "height": 900})
    # The narrow layout hides the navigation behind a menu button that keyboard users can reach.
    page.get_by_role("button", name="Toggle navigation").focus()
    page.keyboard.press("Enter")
    assert page.locator("nav.side").is_visible()
    assert httpx.get(f"{base}/ui/").status_code == 200
