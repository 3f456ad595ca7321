"""Routing policies and BYOK provider keys through the management API, against a real two-worker gateway.

Each write goes to whichever worker the connection lands on; every request after it, on any worker, must
see it. Requests open a fresh connection each (httpx.post) so that both workers serve them; the workers'
metrics files show that they did.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from servers import (
    MockControl,
    Server,
    create_key,
    db_dump,
    db_query,
    gateway_env,
    manage_call,
    requests_per_worker,
    router_cli,
    start_gateway,
    usage_rows,
    workers_that_served,
)

MESSAGES = [{"role": "user", "content": "Say hello"}]
ROUTER_KEY = "mock-upstream-key"
OWN_KEY = "sk-org-own-" + "7c1e" * 8

CONFIG = f"""
providers:
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: {ROUTER_KEY}
routing: {{backoff_initial: 0.001, backoff_max: 0.004}}
models:
  - {{id: mock/a, upstream_model: "gpt-4o@tokens=3", capabilities: [streaming]}}
  - {{id: mock/b, upstream_model: "gpt-4o@tokens=4", capabilities: [streaming]}}
  - {{id: mock/own-only, upstream_model: "gpt-4o@tokens=2"}}
  - {{id: mock/auth-once, upstream_model: "gpt-4o@fail=401@fail_first=1"}}
  - {{id: mock/limited-once, upstream_model: "gpt-4o@fail=429@fail_first=1@retry_after=0"}}
policies:
  - name: file-chain
    type: fallback
    targets: [{{model: mock/a}}]
"""


def fp(secret: str) -> str:
    """The fingerprint the API shows and the mock records: sha256, 12 hex digits."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


class Gateway:
    def __init__(self, server: Server, root: Path) -> None:
        self.server = server
        self.base = server.base
        self.root = root
        self.admin = server.env["ROUTER_ADMIN_KEY"]
        self.keys: dict[str, str] = {}  # role → secret
        self.key_ids: dict[str, str] = {}

    def manage(self, method: str, path: str, body: dict | None = None, role: str | None = None) -> httpx.Response:
        return manage_call(self.base, self.admin if role is None else self.keys[role], method, path, json=body)

    def ok(self, method: str, path: str, body: dict | None = None, role: str | None = None) -> dict:
        response = self.manage(method, path, body, role)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def chat(self, model: str, role: str = "caller") -> httpx.Response:
        """One chat request on a new connection (so either worker may serve it)."""
        return httpx.post(
            f"{self.base}/v1/chat/completions",
            json={"model": model, "messages": MESSAGES},
            headers={"authorization": f"Bearer {self.keys[role]}"},
            timeout=20,
        )

    def client(self, role: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base}/v1", api_key=self.keys[role], max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("policy-api")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env["ROUTER_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
    env["TMPDIR"] = str(root)  # where the workers' metrics files are: which worker served (workers_that_served)
    server = start_gateway(env, workers=2)
    g = Gateway(server, root)
    g.keys["caller"] = create_key(env, "caller")["key"]
    for name, role in (("analyst", "analyst"), ("alice", "standard"), ("bob", "standard")):
        user = g.ok("POST", "/user", {"email": f"{name}@corp.test", "role": role})
        created = g.ok("POST", "/apikey", {"name": f"{name}-key", "owner": {"type": "user", "id": user["id"]}})
        g.keys[name], g.key_ids[name] = created["key"], created["id"]
    account = g.ok("POST", "/service-account", {"name": "bot"})
    created = g.ok("POST", "/apikey", {"name": "bot-key", "owner": {"type": "service_account", "id": account["id"]}})
    g.keys["none"] = created["key"]
    yield g
    server.stop()


def error_of(response: httpx.Response) -> dict:
    return response.json()["error"]


def test_crud_rbac_statuses_and_audit(gw: Gateway) -> None:
    spec = {
        "name": "api-chain",
        "type": "fallback",
        "targets": [{"model": "mock/a"}, {"model": "mock/b", "retries": 1}],
    }
    created = gw.ok("POST", "/policy", spec)
    assert (created["id"], created["source"], created["key_id"]) == ("policy/api-chain", "api", None)
    assert created["targets"][1] == {"model": "mock/b", "weight": 1.0, "retries": 1, "key_strategy": "router"}

    listed = {p["name"]: p["source"] for p in gw.ok("GET", "/policy")["data"]}
    assert listed == {"file-chain": "config", "api-chain": "api"}
    update = {"type": "load_balance", "targets": [{"model": "mock/a", "weight": 3}, {"model": "mock/b"}]}
    for role in ("analyst", "alice"):
        assert gw.manage("GET", "/policy/api-chain", role=role).status_code == 200
        assert gw.manage("POST", "/policy", {**spec, "name": "x"}, role=role).status_code == 403
        assert gw.manage("PUT", "/policy/api-chain", update, role=role).status_code == 403
        assert gw.manage("DELETE", "/policy/api-chain", role=role).status_code == 403
    assert gw.manage("GET", "/policy", role="none").status_code == 403

    assert gw.manage("POST", "/policy", spec).status_code == 409
    assert error_of(gw.manage("POST", "/policy", {**spec, "name": "file-chain"}))["code"] == "duplicate_name"
    for method in ("PUT", "DELETE"):
        response = gw.manage(method, "/policy/file-chain", update if method == "PUT" else None)
        assert response.status_code == 409 and error_of(response)["code"] == "policy_read_only"
    renamed = gw.manage("PUT", "/policy/api-chain", {**update, "name": "other"})
    assert renamed.status_code == 400 and error_of(renamed)["param"] == "name"
    assert gw.manage("GET", "/policy/nope").status_code == 404

    replaced = gw.ok("PUT", "/policy/api-chain", update)
    assert replaced["type"] == "load_balance" and replaced["targets"][0]["weight"] == 3
    assert gw.ok("DELETE", "/policy/api-chain")["deleted"] is True
    assert gw.manage("GET", "/policy/api-chain").status_code == 404

    paths = httpx.get(f"{gw.base}/v1/manage/openapi.json").json()["paths"]
    assert {"get", "put", "delete"} <= set(paths["/v1/manage/policy/{name}"])
    assert {"get", "put", "delete"} <= set(paths["/v1/manage/byok/{provider}"])

    events = gw.ok("GET", "/audit?target=api-chain")["data"]
    by_action = {e["action"]: e for e in events}
    assert set(by_action) == {"policy.create", "policy.update", "policy.delete"}
    assert by_action["policy.create"]["after"]["type"] == "fallback"
    assert by_action["policy.update"]["before"]["type"] == "fallback"
    assert by_action["policy.update"]["after"]["type"] == "load_balance"
    assert by_action["policy.delete"]["before"]["name"] == "api-chain" and by_action["policy.delete"]["after"] is None


def test_validation_names_the_field_and_the_cycle(gw: Gateway) -> None:
    def rejected(spec: dict, method: str = "POST", path: str = "/policy") -> dict:
        response = gw.manage(method, path, spec)
        assert response.status_code == 400, response.text
        return error_of(response)

    bad = rejected({"name": "v1", "type": "fallback", "targets": [{"model": "mock/nope"}]})
    assert bad["param"] == "targets[0].model" and "unknown model 'mock/nope'" in bad["message"]
    assert rejected({"name": "v1", "type": "fastest", "targets": [{"model": "mock/a"}]})["param"] == "type"
    too_many = rejected({"name": "v1", "type": "fallback", "targets": [{"model": "mock/a", "retries": 11}]})
    assert too_many["param"] == "targets[0].retries"
    assert rejected({"name": "v1", "type": "fallback", "targets": []})["param"] == "targets"
    nowhere = rejected({"name": "v1", "type": "fallback", "targets": [{"model": "mock/a"}], "key_id": "key_nope"})
    assert nowhere["param"] == "key_id"

    gw.ok("POST", "/policy", {"name": "c1", "type": "fallback", "targets": [{"model": "mock/a"}]})
    gw.ok("POST", "/policy", {"name": "c2", "type": "load_balance", "targets": [{"policy": "c1"}, {"model": "mock/b"}]})
    cycle = rejected({"type": "fallback", "targets": [{"policy": "c2"}]}, "PUT", "/policy/c1")
    assert cycle["param"] == "targets"
    assert "policy/c1 → policy/c2 → policy/c1" in cycle["message"]
    itself = rejected({"name": "c3", "type": "fallback", "targets": [{"model": "policy/c3"}]})
    assert "policy/c3 → policy/c3" in itself["message"]
    strategy = rejected({"name": "c4", "type": "fallback", "targets": [{"policy": "c1", "key_strategy": "own"}]})
    assert strategy["param"] == "targets[0].key_strategy"
    # The rejected change left the stored policy as it was, and a policy another one targets cannot go.
    assert gw.ok("GET", "/policy/c1")["targets"] == [{"model": "mock/a", "weight": 1.0, "retries": 0,
                                                      "key_strategy": "router"}]  # fmt: skip
    in_use = gw.manage("DELETE", "/policy/c1")
    assert in_use.status_code == 409 and error_of(in_use)["code"] == "policy_in_use"
    gw.ok("DELETE", "/policy/c2")
    gw.ok("DELETE", "/policy/c1")


def test_a_change_is_used_by_the_very_next_request_in_every_worker(gw: Gateway) -> None:
    before = requests_per_worker(gw.root)
    for step, target in enumerate(["mock/a", "mock/b", "mock/a"]):
        spec = {"type": "fallback", "targets": [{"model": target}]}
        if step == 0:
            gw.ok("POST", "/policy", {"name": "live", **spec})
        else:
            gw.ok("PUT", "/policy/live", spec)
        for _ in range(12):
            response = gw.chat("policy/live")
            assert response.status_code == 200, response.text
            assert response.headers["x-router-model"] == target
    assert workers_that_served(gw.root, before, 36) == 2  # both workers served, and each switched at once
    gw.ok("DELETE", "/policy/live")
    for _ in range(6):
        gone = gw.chat("policy/live")
        assert gone.status_code == 404 and "does not exist" in error_of(gone)["message"]


def test_a_key_scoped_policy_is_invisible_to_other_keys(gw: Gateway) -> None:
    alice = gw.key_ids["alice"]
    gw.ok("POST", "/policy", {"name": "alice-only", "type": "fallback", "targets": [{"model": "mock/b"}],
                              "key_id": alice})  # fmt: skip
    assert "policy/alice-only" in [m.id for m in gw.client("alice").models.list()]
    served = gw.chat("policy/alice-only", role="alice")
    assert served.status_code == 200 and served.headers["x-router-model"] == "mock/b"

    for other in ("bob", "caller"):
        assert "policy/alice-only" not in [m.id for m in gw.client(other).models.list()]
        refused = gw.chat("policy/alice-only", role=other)
        assert refused.status_code == 404
        assert "alice-only" not in error_of(refused)["message"].split("(defined:")[1]
    assert "alice-only" not in [p["name"] for p in gw.ok("GET", "/policy", role="bob")["data"]]
    assert gw.manage("GET", "/policy/alice-only", role="bob").status_code == 404
    assert gw.ok("GET", "/policy/alice-only", role="alice")["key_id"] == alice
    assert "alice-only" in [p["name"] for p in gw.ok("GET", "/policy", role="analyst")["data"]]
    # An org-wide policy cannot hand a key's policy to everyone.
    leak = gw.manage("POST", "/policy", {"name": "leak", "type": "fallback", "targets": [{"policy": "alice-only"}]})
    assert leak.status_code == 400 and error_of(leak)["param"] == "targets[0].policy"
    gw.ok("DELETE", "/policy/alice-only")


def credentials(mock: MockControl, upstream_model: str) -> list[str]:
    return [r["credential"] for r in mock.requests() if r["model"] == upstream_model]


def test_byok_round_trip_and_key_strategies(gw: Gateway, mock: MockControl) -> None:
    for role in ("analyst", "alice"):
        assert gw.manage("PUT", "/byok/mock", {"api_key": OWN_KEY}, role=role).status_code == 403
        assert gw.manage("GET", "/byok/mock", role=role).status_code == 403
    assert gw.manage("GET", "/byok/mock").status_code == 404
    unknown = gw.manage("PUT", "/byok/nope", {"api_key": OWN_KEY})
    assert unknown.status_code == 400 and error_of(unknown)["param"] == "provider"

    stored = gw.manage("PUT", "/byok/mock", {"api_key": OWN_KEY})
    assert stored.status_code == 201
    assert set(stored.json()) == {"provider", "fingerprint", "created_at", "created_by"}
    assert stored.json()["fingerprint"] == fp(OWN_KEY)
    shown = gw.ok("GET", "/byok/mock")
    assert shown["fingerprint"] == fp(OWN_KEY) and OWN_KEY not in str(shown)
    # Sealed at rest: the plaintext is nowhere in the database files, nor in the audit log
    # (nor in the usage spool's files, in the `router.db-spool` directory; on PostgreSQL: nor in any table,
    # nor in the host's files in the data folder).
    beside = [p for p in gw.root.iterdir() if p.name.startswith("router.db")]
    beside += [p for p in (gw.root / "data").rglob("*") if p.is_file()] if (gw.root / "data").exists() else []
    files = b"".join(f.read_bytes() for p in beside for f in (p.iterdir() if p.is_dir() else [p]))
    if gw.server.env["ROUTER_DB"].startswith("postgresql://"):
        files += db_dump(gw.server.env).encode()
    assert OWN_KEY.encode() not in files and fp(OWN_KEY).encode() in files
    assert OWN_KEY not in gw.manage("GET", "/audit?action=byok.*").text

    policies = {
        "own-pays": [{"model": "mock/own-only", "key_strategy": "own"}],
        "own-first": [{"model": "mock/auth-once", "key_strategy": "own_then_router"}],
        "router-first": [{"model": "mock/limited-once", "key_strategy": "router_then_own"}],
    }
    for name, targets in policies.items():
        gw.ok("POST", "/policy", {"name": name, "type": "fallback", "targets": targets})

    paid = gw.chat("policy/own-pays")
    assert paid.status_code == 200 and paid.headers["x-router-attempts"] == "1"
    assert credentials(mock, "gpt-4o@tokens=2") == [fp(OWN_KEY)]

    # The org's key is refused (401): the gateway's key is tried next, at once.
    fallback = gw.chat("policy/own-first")
    assert fallback.status_code == 200, fallback.text
    assert fallback.headers["x-router-attempts"] == "2"
    assert credentials(mock, "gpt-4o@fail=401@fail_first=1") == [fp(OWN_KEY), fp(ROUTER_KEY)]
    rows = usage_rows(gw.server, f"request_id = '{fallback.headers['x-request-id']}'", expect=2)
    assert sorted((r["attempt"], r["status"], r["byok"]) for r in rows) == [(1, 401, 1), (2, 200, 0)]

    # The gateway's key is rate limited (429): the org's key pays instead.
    limited = gw.chat("policy/router-first")
    assert limited.status_code == 200 and limited.headers["x-router-attempts"] == "2"
    assert credentials(mock, "gpt-4o@fail=429@fail_first=1@retry_after=0") == [fp(ROUTER_KEY), fp(OWN_KEY)]
    rows = usage_rows(gw.server, f"request_id = '{limited.headers['x-request-id']}'", expect=2)
    assert sorted((r["attempt"], r["status"], r["byok"]) for r in rows) == [(1, 429, 0), (2, 200, 1)]

    # Deleted: an `own` target has no key left, so it is skipped without a call.
    assert gw.ok("DELETE", "/byok/mock")["deleted"] is True
    mock.reset()
    skipped = gw.chat("policy/own-pays")
    assert skipped.status_code == 400 and "needs the organisation's own key" in error_of(skipped)["message"]
    assert mock.count() == 0
    audit = "SELECT action FROM audit_log WHERE target_type = 'provider_key' ORDER BY seq"
    actions = [r[0] for r in db_query(gw.server.env, audit)]
    assert actions == ["byok.create", "byok.delete"]
    for name in policies:
        gw.ok("DELETE", f"/policy/{name}")


def test_a_malformed_master_key_stops_the_start_with_its_name(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "router.db", "http://127.0.0.1:1")
    env["ROUTER_MASTER_KEY"] = "not-32-bytes"
    done = router_cli(env, "serve", "--port", "1", check=False)
    assert done.returncode != 0
    assert "ROUTER_MASTER_KEY: expected 32 random bytes" in done.stderr
    assert "not-32-bytes" not in done.stderr
