"""Model governance as users meet it: the openai SDK against keys limited by lists, groups and approvals."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from servers import MockControl, Server, db_query, gateway_env, manage_call, router_cli, start_gateway

HELLO = [{"role": "user", "content": "Hello"}]

# Three providers, all served by the mock, with the seeds' model names and regions.
CONFIG = """
providers:
  openai: {base_url: env:ROUTER_MOCK_URL, api_key: k}
  anthropic: {base_url: env:ROUTER_MOCK_URL, api_key: k}
  vertex: {base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: openai/gpt-4.1, upstream_model: gpt-4o, region: us}
  - {id: openai/gpt-4.1-mini, upstream_model: gpt-4o-mini, region: us}
  - {id: openai/o1-preview, upstream_model: o1, region: us}
  - {id: openai/o1-mini, upstream_model: o1-mini, region: us}
  - {id: anthropic/claude-sonnet-4-5, upstream_model: claude-sonnet-4-5, region: us, zdr: true}
  - {id: anthropic/claude-haiku-4-5, upstream_model: claude-haiku-4-5, region: eu-west-1, zdr: true}
  - {id: vertex/gemini-2.5-flash, upstream_model: gemini-2.5-flash, region: eu-west-4}
  - {id: vertex/gemini-2.5-pro, upstream_model: gemini-2.5-pro, region: us}
  - {id: openai/text-embedding-3-small, upstream_model: text-embedding-3-small, capabilities: [embeddings]}
policies:
  - name: mixed
    type: fallback
    targets: [{model: openai/o1-mini}, {model: anthropic/claude-haiku-4-5}]
  - name: o1s
    type: load_balance
    targets: [{model: openai/o1-preview}, {model: openai/o1-mini}]
"""
ALL_CHAT = [
    "anthropic/claude-haiku-4-5",
    "anthropic/claude-sonnet-4-5",
    "openai/gpt-4.1",
    "openai/gpt-4.1-mini",
    "openai/o1-mini",
    "openai/o1-preview",
    "vertex/gemini-2.5-flash",
    "vertex/gemini-2.5-pro",
]


EMBEDDING = "openai/text-embedding-3-small"


class Gateway:
    def __init__(self, server: Server, clock_file: Path) -> None:
        self.server = server
        self.base = server.base
        self.env = server.env
        self.admin = server.env["ROUTER_ADMIN_KEY"]
        self.clock_file = clock_file

    def manage(self, method: str, path: str, key: str | None = None, **kwargs) -> httpx.Response:
        return manage_call(self.base, key or self.admin, method, path, **kwargs)

    def ok(self, method: str, path: str, key: str | None = None, **kwargs) -> dict:
        response = self.manage(method, path, key, **kwargs)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=key, max_retries=0, timeout=20)

    def cli(self, *args: str, check: bool = True):
        return router_cli(self.env, *args, check=check)

    def audit(self, expect: int = 0, until: Callable[[list[dict]], bool] | None = None, **query) -> list[dict]:
        """Audit events; waits (briefly) for at least `expect`, and for `until` to hold if given, since denials
        are written in the background (batched, flushed every half second)."""
        deadline = time.monotonic() + 5
        while True:
            events = self.ok("GET", "/audit", params={"limit": 500, **query})["data"]
            done = len(events) >= expect and (until is None or until(events))
            if done or time.monotonic() > deadline:
                return events
            time.sleep(0.05)

    def advance(self, seconds: float) -> None:
        self.clock_file.write_text(str(seconds))


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("governance")
    (root / "config.yaml").write_text(CONFIG)
    clock_file = root / "clock-offset"
    clock_file.write_text("0")
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env["ROUTER_TEST_CLOCK_OFFSET_FILE"] = str(clock_file)
    server = start_gateway(env)
    yield Gateway(server, clock_file)
    server.stop()


def model_ids(client: openai.OpenAI, policies: bool = False) -> list[str]:
    return sorted(m.id for m in client.models.list() if policies or not m.id.startswith("policy/"))


def test_unrestricted_until_approval_is_configured_then_deny_by_default(gw: Gateway, mock: MockControl) -> None:
    key = gw.ok("POST", "/apikey", json={"name": "early"})["key"]
    client = gw.client(key)
    assert "openai/o1-preview" in model_ids(client)
    gw.ok("POST", "/models/approved", json={"models": ALL_CHAT[:4]})
    # The very next request sees the ceiling.
    assert model_ids(client) == ALL_CHAT[:4]
    before = mock.count()
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.chat.completions.create(model="vertex/gemini-2.5-pro", messages=HELLO)
    assert mock.count() == before
    body = err.value.body
    assert err.value.code == "model_not_allowed"
    assert "vertex/gemini-2.5-pro" in body["message"] and "GET /v1/models" in body["message"]
    # Neutral: never a list of what is allowed.
    assert not any(m in body["message"] for m in ALL_CHAT[:4])
    gw.ok("POST", "/models/approved", json={"models": [*ALL_CHAT, EMBEDDING]})


def test_key_limited_to_a_list(gw: Gateway, mock: MockControl) -> None:
    gw.ok(
        "POST", "/access-list", json={"name": "two-models", "models": ["openai/gpt-4.1", "anthropic/claude-haiku-4-5"]}
    )
    created = gw.ok("POST", "/apikey", json={"name": "limited", "access_list": "two-models"})
    client = gw.client(created["key"])
    assert model_ids(client) == ["anthropic/claude-haiku-4-5", "openai/gpt-4.1"]
    assert client.chat.completions.create(model="openai/gpt-4.1", messages=HELLO).choices
    stream = client.chat.completions.create(model="anthropic/claude-haiku-4-5", messages=HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    before = mock.count()
    for model in ("openai/gpt-4.1-mini", "vertex/gemini-2.5-flash"):
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model=model, messages=HELLO)
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="openai/o1-mini", messages=HELLO, stream=True)
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="openai/text-embedding-3-small", input="x")
    assert mock.count() == before

    # The denial is audited with the layer that decided it.
    denied = gw.audit(expect=4, action="request.denied", actor=f"key:{created['id']}")
    assert {e["target_id"] for e in denied} >= {"openai/gpt-4.1-mini", "vertex/gemini-2.5-flash"}
    assert {e["detail"]["layer"] for e in denied} == {"key_access_list"}

    # ?view=all shows the catalog, marked, to managers only: a restricted key must not map the catalog.
    refused = httpx.get(f"{gw.base}/v1/models?view=all", headers={"authorization": f"Bearer {created['key']}"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_permissions"
    reader = gw.ok(
        "POST", "/apikey", json={"name": "limited-reader", "access_list": "two-models", "permission": "read"}
    )
    everything = httpx.get(
        f"{gw.base}/v1/models?view=all", headers={"authorization": f"Bearer {reader['key']}"}
    ).json()["data"]
    usable = {m["id"]: m["usable"] for m in everything}
    assert usable["openai/gpt-4.1"] is True and usable["openai/o1-mini"] is False
    assert len(everything) == 9
    assert {"provider", "region", "zdr", "pricing", "context_window", "capabilities"} <= set(everything[0])


def test_list_edit_and_unapproval_apply_on_the_next_request(gw: Gateway) -> None:
    gw.ok("POST", "/access-list", json={"name": "editable", "models": ["openai/gpt-4.1"]})
    client = gw.client(gw.ok("POST", "/apikey", json={"name": "edit", "access_list": "editable"})["key"])
    assert model_ids(client) == ["openai/gpt-4.1"]
    gw.ok("PUT", "/access-list/editable", json={"name": "editable", "models": ["openai/gpt-4.1", "openai/o1-mini"]})
    assert model_ids(client) == ["openai/gpt-4.1", "openai/o1-mini"]
    client.chat.completions.create(model="openai/o1-mini", messages=HELLO)

    gw.ok("POST", "/models/approved/remove", json={"models": ["openai/o1-mini"]})
    assert model_ids(client) == ["openai/gpt-4.1"]
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="openai/o1-mini", messages=HELLO)

    def by_approval(events: list[dict]) -> bool:
        return any(e["detail"]["layer"] == "approved_models" for e in events)

    assert by_approval(gw.audit(until=by_approval, action="request.denied", target="openai/o1-mini"))

    # A list cannot grant an unapproved model.
    refused = gw.manage("PUT", "/access-list/editable", json={"name": "editable", "models": ["openai/o1-mini"]})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "model_not_approved"
    assert refused.json()["error"]["param"] == "models[0]"
    gw.ok("POST", "/models/approved", json={"models": ["openai/o1-mini"]})
    assert model_ids(client) == ["openai/gpt-4.1", "openai/o1-mini"]


def test_patterns_providers_and_denies(gw: Gateway) -> None:
    gw.ok(
        "POST",
        "/access-list",
        json={"name": "openai-no-o1", "patterns": ["openai/*"], "deny": ["openai/o1-*", "openai/text-*"]},
    )
    gw.ok("POST", "/access-list", json={"name": "anthropic-all", "providers": ["anthropic"]})
    no_o1 = gw.client(gw.ok("POST", "/apikey", json={"name": "p1", "access_list": "openai-no-o1"})["key"])
    assert model_ids(no_o1) == ["openai/gpt-4.1", "openai/gpt-4.1-mini"]
    anthropic = gw.client(gw.ok("POST", "/apikey", json={"name": "p2", "access_list": "anthropic-all"})["key"])
    assert model_ids(anthropic) == ["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5"]
    bad = gw.manage("POST", "/access-list", json={"name": "bad", "providers": ["nosuch"]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "providers[0]"
    bad = gw.manage("POST", "/access-list", json={"name": "bad", "patterns": ["a b*"]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "patterns[0]"


def test_three_teams_from_the_seeds(gw: Gateway, mock: MockControl) -> None:
    """Frontend, Data Science, Production Agents and Support EU, wired as the governance seed describes."""
    lists = {
        "Chat Production": {"models": ["openai/gpt-4.1-mini", "anthropic/claude-haiku-4-5"]},
        "Research Wide": {"patterns": ["*"]},
        "Agent Strict": {"models": ["anthropic/claude-sonnet-4-5", "openai/gpt-4.1"]},
        "Support EU": {"models": ["vertex/gemini-2.5-flash", "anthropic/claude-haiku-4-5"]},
    }
    for name, rules in lists.items():
        gw.ok("POST", "/access-list", json={"name": name, **rules})
    users = {}
    for email, group, access_list in (
        ("fe@corp.test", "Frontend Eng", "Chat Production"),
        ("ds@corp.test", "Data Science", "Research Wide"),
        ("support@corp.test", "Support Ops", "Support EU"),
    ):
        users[email] = gw.ok("POST", "/user", json={"email": email})["id"]
        group_id = gw.ok("POST", "/group", json={"name": group, "access_list": access_list})["id"]
        gw.ok("POST", f"/group/{group_id}/members", json={"user_id": email})

    def key_for(email: str) -> openai.OpenAI:
        created = gw.ok("POST", "/apikey", json={"name": email, "owner": {"type": "user", "id": email}})
        return gw.client(created["key"])

    frontend, science, support = key_for("fe@corp.test"), key_for("ds@corp.test"), key_for("support@corp.test")
    assert model_ids(frontend) == ["anthropic/claude-haiku-4-5", "openai/gpt-4.1-mini"]
    # Research Wide is everything approved (the approved list is the ceiling; embeddings included).
    assert model_ids(science) == sorted([*ALL_CHAT, EMBEDDING])
    assert model_ids(support) == ["anthropic/claude-haiku-4-5", "vertex/gemini-2.5-flash"]

    # Production agents: three service-account keys with the strict list attached in one bulk call.
    gw.ok("POST", "/service-account", json={"name": "prod-agents"})
    agents = [
        gw.ok("POST", "/apikey", json={"name": f"agent-{i}", "owner": {"type": "service_account", "id": "prod-agents"}})
        for i in range(3)
    ]
    gw.ok("POST", "/access-list/Agent Strict/attach", json={"key_ids": [a["id"] for a in agents]})
    for agent in agents:
        client = gw.client(agent["key"])
        assert model_ids(client) == ["anthropic/claude-sonnet-4-5", "openai/gpt-4.1"]
        assert client.chat.completions.create(model="anthropic/claude-sonnet-4-5", messages=HELLO).choices

    before = mock.count()
    for client, model in ((frontend, "openai/gpt-4.1"), (support, "openai/gpt-4.1-mini")):
        with pytest.raises(openai.PermissionDeniedError):
            client.chat.completions.create(model=model, messages=HELLO)
    assert mock.count() == before
    assert frontend.chat.completions.create(model="openai/gpt-4.1-mini", messages=HELLO).choices
    assert support.chat.completions.create(model="vertex/gemini-2.5-flash", messages=HELLO).choices

    # Joining a second group widens a user's set at once: the union of both lists.
    gw.ok("POST", "/group/Support Ops/members", json={"user_id": "fe@corp.test"})
    assert model_ids(frontend) == ["anthropic/claude-haiku-4-5", "openai/gpt-4.1-mini", "vertex/gemini-2.5-flash"]
    gw.ok("DELETE", f"/group/Support Ops/members/{users['fe@corp.test']}")
    assert model_ids(frontend) == ["anthropic/claude-haiku-4-5", "openai/gpt-4.1-mini"]

    # A service account with active keys cannot be deleted.
    refused = gw.manage("DELETE", "/service-account/prod-agents")
    assert refused.status_code == 409


def test_contractor_key_expires_under_a_controllable_clock(gw: Gateway, mock: MockControl) -> None:
    gw.ok("POST", "/access-list", json={"name": "contractor", "models": ALL_CHAT[:3]})
    created = json.loads(
        gw.cli(
            "keys", "create", "--name", "contractor", "--access-list", "contractor", "--expires", "90d",
            "--label", "team=ext", "--limit", "500", "--json", "--config", gw.env["ROUTER_CONFIG"],
        ).stdout
    )  # fmt: skip
    assert created["labels"] == {"team": "ext"} and created["monthly_limit"] == 500
    client = gw.client(created["key"])
    assert model_ids(client) == ALL_CHAT[:3]
    assert client.chat.completions.create(model=ALL_CHAT[0], messages=HELLO).choices

    gw.advance(89 * 86400)
    assert client.chat.completions.create(model=ALL_CHAT[0], messages=HELLO).choices
    gw.advance(90 * 86400 + 5)
    before = mock.count()
    for _ in range(3):
        with pytest.raises(openai.AuthenticationError) as err:
            client.chat.completions.create(model=ALL_CHAT[0], messages=HELLO)
        assert err.value.code == "expired_api_key"
        assert (
            err.value.body["message"].startswith("API key expired at ")
            and created["expires_at"] in err.value.body["message"]
        )
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert mock.count() == before

    # The record stays visible for audit; the event is written exactly once; it cannot be un-expired.
    shown = gw.ok("GET", f"/apikey/{created['id']}")
    assert shown["status"] == "expired"
    events = gw.audit(action="key.expired", target=created["id"])
    assert len(events) == 1 and events[0]["actor"] == "system"
    refused = gw.manage("POST", f"/apikey/{created['id']}/expiry", json={"expires_at": None})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "key_expired"
    gw.advance(0)


def test_idle_key_expiry_is_logged_by_the_sweep(gw: Gateway) -> None:
    created = gw.ok("POST", "/apikey", json={"name": "idle", "expires_at": "1h"})
    gw.advance(3600 + 1)
    deadline = time.monotonic() + 15
    while not gw.audit(action="key.expired", target=created["id"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(gw.audit(action="key.expired", target=created["id"])) == 1
    gw.advance(0)


def test_revoke_and_delete_take_effect_on_the_next_request(gw: Gateway) -> None:
    for action in ("revoke", "delete"):
        created = gw.ok("POST", "/apikey", json={"name": action})
        client = gw.client(created["key"])
        assert client.models.list().data
        if action == "revoke":
            gw.ok("POST", f"/apikey/{created['id']}/revoke")
        else:
            gw.ok("DELETE", f"/apikey/{created['id']}")
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    assert gw.manage("GET", f"/apikey/{created['id']}").status_code == 404


def test_audit_log_has_before_after_and_never_key_material(gw: Gateway) -> None:
    created = gw.ok("POST", "/apikey", json={"name": "audited", "labels": {"env": "dev"}})
    gw.ok("POST", f"/apikey/{created['id']}/labels", json={"labels": {"env": "prod"}})
    gw.ok("POST", f"/apikey/{created['id']}/limit", json={"monthly_limit": 25})
    events = gw.audit(target=created["id"])
    assert [e["action"] for e in events] == ["key.create", "key.update_labels", "key.update_limit"]
    assert events[1]["before"]["labels"] == {"env": "dev"} and events[1]["after"]["labels"] == {"env": "prod"}
    assert events[2]["after"]["monthly_limit"] == 25
    assert all(e["actor"] == "admin" for e in events)
    dump = "\n".join(str(tuple(r)) for r in db_query(gw.env, "SELECT * FROM audit_log"))
    assert created["key"] not in dump and created["key"][11:] not in dump
    assert gw.audit(action="key.*", target=created["id"]) == events


def test_key_usage_by_day_and_model(gw: Gateway) -> None:
    created = gw.ok("POST", "/apikey", json={"name": "usage"})
    client = gw.client(created["key"])
    for _ in range(3):
        client.chat.completions.create(model="openai/gpt-4.1", messages=HELLO)
    client.chat.completions.create(model="openai/gpt-4.1-mini", messages=HELLO)
    deadline = time.monotonic() + 5
    while True:
        usage = gw.ok("GET", f"/apikey/{created['id']}")["usage"]
        if usage["totals"]["requests"] >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    by_model = {r["model"]: r for r in usage["data"]}
    assert by_model["openai/gpt-4.1"]["requests"] == 3 and by_model["openai/gpt-4.1-mini"]["requests"] == 1
    assert by_model["openai/gpt-4.1"]["prompt_tokens"] > 0
    assert usage["group_by"] == ["day", "model"]
    assert gw.manage("GET", f"/apikey/{created['id']}", params={"start": "nope"}).status_code == 400


def test_validation_errors_name_the_field_and_pagination_works(gw: Gateway) -> None:
    bad = gw.manage("POST", "/apikey", json={"name": "x", "monthly_limit": "lots"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "monthly_limit"
    bad = gw.manage("POST", "/apikey", json={"name": "x", "expires_at": "tomorrow"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "expires_at"
    bad = gw.manage("POST", "/apikey", json={"name": "x", "surprise": 1})
    assert bad.status_code == 400 and "surprise" in bad.json()["error"]["message"]
    bad = gw.manage("POST", "/apikey", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    assert gw.manage("GET", "/nope").status_code == 404
    assert gw.manage("PUT", "/apikey").status_code == 405

    for i in range(3):
        gw.ok("POST", "/apikey", json={"name": f"page-{i}"})
    first = gw.ok("GET", "/apikey", params={"limit": 2})
    assert len(first["data"]) == 2 and first["has_more"] and first["next_offset"] == 2
    seen = [k["id"] for k in first["data"]]
    offset = first["next_offset"]
    while offset is not None:
        page = gw.ok("GET", "/apikey", params={"limit": 2, "offset": offset})
        seen += [k["id"] for k in page["data"]]
        offset = page["next_offset"]
    assert len(seen) == len(set(seen)) == len(gw.ok("GET", "/apikey", params={"limit": 500})["data"])
    assert all("key" not in k for k in gw.ok("GET", "/apikey", params={"limit": 500})["data"])


def test_openapi_document_lists_every_route(gw: Gateway) -> None:
    spec = httpx.get(f"{gw.base}/v1/manage/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path, method in (
        ("/v1/manage/apikey", "post"),
        ("/v1/manage/apikey/{id}", "delete"),
        ("/v1/manage/apikey/{id}/expiry", "post"),
        ("/v1/manage/group/{id}/members/{user}", "patch"),
        ("/v1/manage/access-list/{id}/attach", "post"),
        ("/v1/manage/models/presets/{preset}", "post"),
        ("/v1/manage/audit", "get"),
        ("/v1/manage/org", "get"),
    ):
        assert method in paths[path], path
    assert "KeySpec" in spec["components"]["schemas"]


def test_cli_models_presets_and_groups(gw: Gateway) -> None:
    cfg = gw.env["ROUTER_CONFIG"]
    listed = json.loads(gw.cli("models", "list", "--json", "--config", cfg).stdout)
    assert {m["id"] for m in listed} >= set(ALL_CHAT)
    eu = json.loads(gw.cli("models", "preset", "eu-only", "--json", "--config", cfg).stdout)
    assert {"anthropic/claude-haiku-4-5", "vertex/gemini-2.5-flash"} <= set(eu["approved"])
    bad = gw.cli("models", "approve", "openai/nope", "--config", cfg, check=False)
    assert bad.returncode == 1 and "openai/nope" in bad.stderr
    gw.cli("access-lists", "create", "cli-list", "--model", "openai/gpt-4.1", "--config", cfg)
    gw.cli("groups", "create", "cli-group", "--access-list", "cli-list", "--config", cfg)
    shown = json.loads(gw.cli("groups", "show", "cli-group", "--json", "--config", cfg).stdout)
    assert shown["access_list_id"]
    audit = json.loads(gw.cli("audit", "--actor", "cli", "--json", "--config", cfg).stdout)
    assert {"models.preset", "access_list.create", "group.create"} <= {e["action"] for e in audit}


def test_policies_follow_the_effective_set(gw: Gateway, mock: MockControl) -> None:
    gw.ok("POST", "/access-list", json={"name": "haiku-only", "models": ["anthropic/claude-haiku-4-5"]})
    created = gw.ok("POST", "/apikey", json={"name": "policies", "access_list": "haiku-only"})
    client = gw.client(created["key"])
    listed = model_ids(client, policies=True)
    # A policy is listed when at least one of its targets is usable; its other targets are skipped, never called.
    assert "policy/mixed" in listed and "policy/o1s" not in listed
    before = mock.count()
    raw = client.chat.completions.with_raw_response.create(model="policy/mixed", messages=HELLO)
    assert raw.headers["x-router-model"] == "anthropic/claude-haiku-4-5" and raw.headers["x-router-attempts"] == "1"
    assert mock.count() == before + 1 and mock.requests()[-1]["model"] != "o1-mini"
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.chat.completions.create(model="policy/o1s", messages=HELLO)
    assert err.value.code == "model_not_allowed"
    assert mock.count() == before + 1
    assert gw.audit(expect=1, action="request.denied", target="policy/o1s")


def test_anthropic_callers_get_anthropic_shaped_denials(gw: Gateway, mock: MockControl) -> None:
    import anthropic

    gw.ok("POST", "/access-list", json={"name": "gpt-only", "models": ["openai/gpt-4.1"]})
    created = gw.ok("POST", "/apikey", json={"name": "claude-code", "access_list": "gpt-only"})
    client = anthropic.Anthropic(base_url=gw.base, api_key=created["key"], max_retries=0)
    before = mock.count()
    with pytest.raises(anthropic.PermissionDeniedError) as err:
        client.messages.create(model="anthropic/claude-haiku-4-5", max_tokens=50, messages=HELLO)
    assert err.value.body["type"] == "error" and err.value.body["error"]["type"] == "permission_error"
    assert "anthropic/claude-haiku-4-5" in err.value.body["error"]["message"]
    assert mock.count() == before
    # The same key reaches its allowed model through the Anthropic API, translated.
    answer = client.messages.create(model="openai/gpt-4.1", max_tokens=50, messages=HELLO)
    assert answer.content[0].text


def test_approval_switched_off_serves_the_whole_catalog_again(gw: Gateway, mock: MockControl) -> None:
    # Runs last in this module: it ends approval for every key.
    key = gw.ok("POST", "/apikey", json={"name": "after-approval"})["key"]
    gw.ok("POST", "/models/presets/eu-only", json={"mode": "replace"})
    with pytest.raises(openai.PermissionDeniedError):
        gw.client(key).chat.completions.create(model="openai/gpt-4.1", messages=HELLO)
    # Only an admin may switch it; a plain key gets 403 and nothing changes.
    assert gw.manage("POST", "/models/approval", key, json={"enabled": False}).status_code == 403
    assert gw.manage("POST", "/models/approval", json={"enabled": "no"}).status_code == 400
    off = gw.ok("POST", "/models/approval", json={"enabled": False})
    assert off == {"approval_configured": False, "models": []}
    assert gw.ok("GET", "/models/approved") == {"approval_configured": False, "models": []}
    assert set(ALL_CHAT) <= set(model_ids(gw.client(key)))
    assert gw.client(key).chat.completions.create(model="openai/gpt-4.1", messages=HELLO).choices[0].message.content
    (event,) = gw.audit(expect=1, action="models.approval")
    assert event["before"]["enabled"] is True and "anthropic/claude-haiku-4-5" in event["before"]["models"]
    assert event["after"] == {"enabled": False, "models": []}
    # Switched on again, nothing is approved yet: deny by default, as after a fresh `approve`.
    assert gw.ok("POST", "/models/approval", json={"enabled": True}) == {"approval_configured": True, "models": []}
    with pytest.raises(openai.PermissionDeniedError):
        gw.client(key).chat.completions.create(model="openai/gpt-4.1", messages=HELLO)
    gw.ok("POST", "/models/approval", json={"enabled": False})
    assert "/v1/manage/models/approval" in httpx.get(f"{gw.base}/v1/manage/openapi.json").json()["paths"]
