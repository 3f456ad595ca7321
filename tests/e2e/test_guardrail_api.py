"""Guardrail settings and overrides through the management API, against a real two-worker gateway.

Each write lands on whichever worker takes the connection; every request after it, on any worker, must use
it. Chat requests go through the openai SDK (or httpx on a fresh connection where both workers must serve).
The mock echoes the (screened) request back, so the reply shows what the upstream saw.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterator
from pathlib import Path

import httpx
import openai
import pytest

from servers import (
    MockControl,
    Server,
    create_key,
    db_query,
    gateway_env,
    manage_call,
    requests_per_worker,
    router_cli,
    start_gateway,
    workers_that_served,
)

MODEL = "mock/gpt-4o"
ECHO = {"mock": {"echo": True}}
EMAIL = "jane.doe@acme-corp.io"
CARD = "4111 1111 1111 1111"
NAME_TEXT = "Hello, my name is John Smith and I need help"

CONFIG = """
providers:
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: mock-upstream-key
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming]}
guardrails:
  categories: {pci: block}
"""
CONFIG_SETTINGS = {
    "enabled": True,
    "default_action": "mask",
    "categories": {"pci": "block"},
    "custom": [],
    "scan_requests": True,
    "scan_responses": True,
    "restore_placeholders": False,
}


class Gateway:
    def __init__(self, server: Server, root: Path) -> None:
        self.server = server
        self.base = server.base
        self.root = root
        self.admin = server.env["ROUTER_ADMIN_KEY"]
        self.keys: dict[str, str] = {}  # name → secret
        self.key_ids: dict[str, str] = {}

    def manage(self, method: str, path: str, body: dict | None = None, who: str | None = None) -> httpx.Response:
        return manage_call(self.base, self.admin if who is None else self.keys[who], method, path, json=body)

    def ok(self, method: str, path: str, body: dict | None = None, who: str | None = None) -> dict:
        response = self.manage(method, path, body, who)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def client(self, who: str) -> openai.OpenAI:
        # A client per call: the test that makes it closes it when it ends (tests/conftest.py).
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=self.keys[who], max_retries=0, timeout=20)

    def say(self, who: str, text: str) -> str:
        """The SDK's reply to `text`: what the upstream received, echoed."""
        reply = self.client(who).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}], extra_body=ECHO
        )
        return reply.choices[0].message.content or ""

    def post(self, who: str, text: str) -> httpx.Response:
        """One chat request on a new connection (so either worker may serve it)."""
        return httpx.post(
            f"{self.base}/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": text}], "mock": {"echo": True}},
            headers={"authorization": f"Bearer {self.keys[who]}"},
            timeout=20,
        )


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("guardrail-api")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env["TMPDIR"] = str(root)  # where the workers' metrics files are: which worker served (workers_that_served)
    server = start_gateway(env, workers=2)
    g = Gateway(server, root)
    g.keys["caller"] = create_key(env, "caller")["key"]
    for name, role in (("analyst", "analyst"), ("alice", "standard"), ("bob", "standard")):
        user = g.ok("POST", "/user", {"email": f"{name}@corp.test", "role": role})
        created = g.ok("POST", "/apikey", {"name": f"{name}-key", "owner": {"type": "user", "id": user["id"]}})
        g.keys[name], g.key_ids[name] = created["key"], created["id"]
        g.key_ids[f"user:{name}"] = user["id"]
    yield g
    server.stop()


@pytest.fixture
def org_reset(gw: Gateway) -> Iterator[None]:
    yield
    gw.ok("DELETE", "/guardrails")


def error_of(response: httpx.Response) -> dict:
    return response.json()["error"]


def audit(gw: Gateway, query: str, expect: int = 1, timeout: float = 5.0, targets: Collection[str] = ()) -> list[dict]:
    """Audit events, waiting for the background writer to flush at least `expect` of them, and one for each
    of `targets` (request ids) if given."""
    deadline = time.monotonic() + timeout
    while True:
        events = gw.ok("GET", f"/audit?limit=500&{query}")["data"]
        flushed = len(events) >= expect and set(targets) <= {e["target_id"] for e in events}
        if flushed or time.monotonic() > deadline:
            return events
        time.sleep(0.05)


def test_settings_rbac_validation_and_audit(gw: Gateway, org_reset: None) -> None:
    assert gw.ok("GET", "/guardrails") == CONFIG_SETTINGS  # the config file's, until something is stored
    assert gw.ok("GET", "/guardrails", who="analyst") == CONFIG_SETTINGS
    new = {"categories": {"pci": "block", "pii": "block"}, "custom": [{"name": "ticket", "pattern": "TCK-[0-9]{5}"}]}
    for who in ("alice", "caller"):  # a standard user; a key with no management role
        assert gw.manage("GET", "/guardrails", who=who).status_code == 403
    for who in ("alice", "analyst"):
        response = gw.manage("PUT", "/guardrails", new, who=who)
        assert response.status_code == 403 and error_of(response)["code"] == "insufficient_permissions"

    def rejected(body: dict) -> dict:
        response = gw.manage("PUT", "/guardrails", body)
        assert response.status_code == 400, response.text
        return error_of(response)

    bad_regex = rejected({"custom": [{"name": "ok", "pattern": "A+"}, {"name": "bad", "pattern": "(unclosed"}]})
    assert bad_regex["param"] == "custom[1].pattern" and "unclosed" in bad_regex["message"].lower()
    assert rejected({"categories": {"bogus": "mask"}})["param"] == "categories.bogus"
    assert rejected({"categories": {"pii": "shout"}})["param"] == "categories.pii"
    assert rejected({"custom": [{"name": "a", "pattern": "x"}, {"name": "A", "pattern": "y"}]})["param"] == (
        "custom[1].name"
    )
    assert "surprise" in rejected({"enabled": True, "surprise": 1})["message"]
    assert gw.ok("GET", "/guardrails") == CONFIG_SETTINGS  # nothing rejected was stored

    stored = gw.ok("PUT", "/guardrails", new)
    assert "block pii" in router_cli(gw.server.env, "guardrails", "test", f"mail {EMAIL}").stdout
    assert stored["categories"] == {"pci": "block", "pii": "block"} and stored["custom"][0]["name"] == "ticket"
    assert gw.ok("GET", "/guardrails", who="analyst") == stored
    assert gw.ok("DELETE", "/guardrails") == CONFIG_SETTINGS

    events = audit(gw, "action=guardrails.updated", expect=2)
    assert [e["actor"] for e in events] == ["admin", "admin"]
    put, reset = sorted(events, key=lambda e: e["seq"])
    assert put["before"] == CONFIG_SETTINGS and put["after"] == stored
    assert reset["before"] == stored and reset["after"] == CONFIG_SETTINGS

    paths = httpx.get(f"{gw.base}/v1/manage/openapi.json").json()["paths"]
    assert {"get", "put", "delete"} <= set(paths["/v1/manage/guardrails"])
    assert {"get", "put", "delete"} <= set(paths["/v1/manage/apikey/{id}/guardrails"])


def test_a_change_is_used_by_the_next_request_in_every_worker(gw: Gateway, org_reset: None) -> None:
    for action in ("block", "mask", "block"):
        gw.ok("PUT", "/guardrails", {"categories": {"pii": action}})
        before = requests_per_worker(gw.root)
        # Enough requests that both workers serve some (8 left one idle about once in a hundred runs).
        for _ in range(16):
            response = gw.post("caller", f"mail {EMAIL}")
            if action == "block":
                assert response.status_code == 400 and error_of(response)["code"] == "guardrail_violation"
            else:
                assert response.status_code == 200
                assert response.json()["choices"][0]["message"]["content"] == "mail [EMAIL_1]"
        assert workers_that_served(gw.root, before, 16) == 2  # both workers served, and each switched at once


def test_key_override_blocks_what_the_org_masks(gw: Gateway, mock: MockControl) -> None:
    alice = gw.key_ids["alice"]
    view = gw.ok("PUT", f"/apikey/{alice}/guardrails", {"categories": {"pii": "block"}})
    assert view["override"]["categories"] == {"pii": "block"} and view["effective"]["categories"]["pii"] == "block"
    try:
        with pytest.raises(openai.BadRequestError) as caught:
            gw.say("alice", f"mail {EMAIL}")
        assert caught.value.body["code"] == "guardrail_violation" and "pii" in caught.value.body["message"]
        assert EMAIL not in json.dumps(caught.value.body)
        # Every endpoint uses the caller's policy: the Anthropic and Responses shapes block too.
        for path, body in (
            ("/v1/messages", {"max_tokens": 20, "messages": [{"role": "user", "content": f"mail {EMAIL}"}]}),
            ("/v1/responses", {"input": f"mail {EMAIL}"}),
        ):
            response = httpx.post(
                f"{gw.base}{path}", json={"model": MODEL, **body},
                headers={"authorization": f"Bearer {gw.keys['alice']}"}, timeout=20,
            )  # fmt: skip
            assert response.status_code == 400 and "pii data" in response.text, response.text
            assert EMAIL not in response.text
        assert mock.count() == 0
        # Other keys keep the organisation's mask.
        assert gw.say("bob", f"mail {EMAIL}") == "mail [EMAIL_1]"
        # The owner may read their key's override; another standard user may not even see it.
        assert gw.ok("GET", f"/apikey/{alice}/guardrails", who="alice")["override"] == view["override"]
        assert gw.manage("GET", f"/apikey/{alice}/guardrails", who="bob").status_code == 404
        assert gw.manage("PUT", f"/apikey/{alice}/guardrails", {"categories": {}}, who="alice").status_code == 403
        # The CLI shows an admin what a key's requests get, overrides included.
        out = router_cli(gw.server.env, "guardrails", "test", "--key", alice, f"mail {EMAIL}").stdout
        assert out.splitlines()[0] == "mail [EMAIL_1]" and "block pii" in out
        assert "mask  pii" in router_cli(gw.server.env, "guardrails", "test", f"mail {EMAIL}").stdout
    finally:
        gw.ok("DELETE", f"/apikey/{alice}/guardrails")
    assert gw.say("alice", f"mail {EMAIL}") == "mail [EMAIL_1]"
    events = audit(gw, f"target={alice}&action=guardrails.override.*", expect=2)
    assert {e["action"] for e in events} == {"guardrails.override.updated", "guardrails.override.deleted"}


def test_group_override_turns_names_on_for_its_members(gw: Gateway) -> None:
    group = gw.ok("POST", "/group", {"name": "support"})
    gw.ok("POST", f"/group/{group['id']}/members", {"user_id": gw.key_ids["user:bob"], "role": "member"})
    assert gw.say("bob", NAME_TEXT) == NAME_TEXT  # names are opt-in: off for the organisation
    gw.ok("PUT", f"/group/{group['id']}/guardrails", {"categories": {"names": "mask"}})
    try:
        assert gw.say("bob", NAME_TEXT) == "Hello, my name is [PERSON_1] and I need help"
        assert gw.say("alice", NAME_TEXT) == NAME_TEXT  # not a member
        effective = gw.ok("GET", f"/apikey/{gw.key_ids['bob']}/guardrails")["effective"]
        assert effective["categories"]["names"] == "mask" and effective["categories"]["pci"] == "block"
        # A key override on top: the strictest union of group and key.
        gw.ok("PUT", f"/apikey/{gw.key_ids['bob']}/guardrails", {"categories": {"names": "block", "pii": "block"}})
        with pytest.raises(openai.BadRequestError):
            gw.say("bob", NAME_TEXT)
        gw.ok("DELETE", f"/apikey/{gw.key_ids['bob']}/guardrails")
        assert gw.say("bob", NAME_TEXT) == "Hello, my name is [PERSON_1] and I need help"
    finally:
        gw.ok("DELETE", f"/group/{group['id']}/guardrails")
    assert gw.say("bob", NAME_TEXT) == NAME_TEXT
    # Deleting a group takes its override with it.
    gw.ok("PUT", f"/group/{group['id']}/guardrails", {"categories": {"names": "mask"}})
    gw.ok("DELETE", f"/group/{group['id']}")
    assert db_query(gw.server.env, "SELECT scope FROM guardrail_settings") == []


def test_an_override_can_never_weaken_the_org(gw: Gateway) -> None:
    key = gw.key_ids["alice"]

    def rejected(body: dict) -> dict:
        response = gw.manage("PUT", f"/apikey/{key}/guardrails", body)
        assert response.status_code == 400, response.text
        return error_of(response)

    weaker = rejected({"categories": {"pci": "mask"}})
    assert weaker["param"] == "categories.pci" and "block" in weaker["message"]
    assert rejected({"categories": {"pii": "off"}})["param"] == "categories.pii"
    assert rejected({"categories": {"bogus": "block"}})["param"] == "categories.bogus"
    bad = rejected({"custom": [{"name": "x", "pattern": "[a-"}]})
    assert bad["param"] == "custom[0].pattern"
    assert gw.ok("GET", f"/apikey/{key}/guardrails")["override"] is None
    assert gw.manage("PUT", "/apikey/key_nope/guardrails", {"categories": {}}).status_code == 404
    # Blocking still blocks for this key whatever was tried.
    with pytest.raises(openai.BadRequestError):
        gw.say("alice", f"card {CARD}")


def test_triggers_are_audited_by_type_and_never_with_the_value(gw: Gateway) -> None:
    bob = gw.key_ids["bob"]
    masked = gw.post("bob", f"mail {EMAIL} and {EMAIL}")
    assert masked.status_code == 200
    blocked = gw.post("bob", f"card {CARD}")
    assert blocked.status_code == 400
    ids = {masked.headers["x-request-id"]: "request", blocked.headers["x-request-id"]: "block"}
    events = [e for e in audit(gw, "action=guardrail.triggered", targets=ids) if e["target_id"] in ids]
    details = sorted(
        ((d["request_id"], d["category"], d["type"], d["direction"], d["action"], d["count"]) for e in events
         for d in [e["detail"]]),
    )  # fmt: skip
    mask_id, block_id = masked.headers["x-request-id"], blocked.headers["x-request-id"]
    assert (mask_id, "pii", "EMAIL", "request", "mask", 2) in details
    assert (block_id, "pci", "CARD", "request", "block", 1) in details
    # The echoed answer carries only placeholders, so nothing more was found on the way out.
    assert all(d[0] in ids for d in details) and len([d for d in details if d[0] == mask_id]) == 1
    assert all(e["actor"] == f"key:{bob}" and e["detail"]["key_id"] == bob for e in events)

    everything = json.dumps(gw.ok("GET", "/audit?limit=500"))
    # Each worker keeps its own counters here (no shared metrics dir): scrape until both answered.
    metrics = "".join(httpx.get(f"{gw.base}/metrics").text for _ in range(6))
    assert "router_guardrail_findings_total{" in metrics
    for value in (EMAIL, CARD, CARD.replace(" ", "")):
        assert value not in everything and value not in metrics


@pytest.mark.parametrize("stream", [False, True])
def test_answers_follow_the_stored_settings_and_their_triggers_are_audited(
    gw: Gateway, org_reset: None, stream: bool
) -> None:
    # Requests unscanned: the mock echoes the raw value, so only the answer's screening can catch it.
    gw.ok("PUT", "/guardrails", {"scan_requests": False})
    client = gw.client("alice")
    text = f"write to {EMAIL} today"
    if stream:
        chunks = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": text}], extra_body=ECHO, stream=True
        )
        received = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        request_id = chunks.response.headers["x-request-id"]
    else:
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": text}], extra_body=ECHO
        )
        received, request_id = raw.parse().choices[0].message.content or "", raw.headers["x-request-id"]
    assert received == "write to [EMAIL_1] today"
    events = [e for e in audit(gw, f"target={request_id}&action=guardrail.triggered") if e["target_id"] == request_id]
    assert [
        {k: e["detail"][k] for k in ("category", "type", "direction", "action", "count", "key_id")} for e in events
    ] == [
        {"category": "pii", "type": "EMAIL", "direction": "response", "action": "mask", "count": 1,
         "key_id": gw.key_ids["alice"]},
    ]  # fmt: skip
    assert EMAIL not in json.dumps(events)
