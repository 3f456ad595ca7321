"""`POST /v1/manage/guardrails/test` against a real gateway, with raw HTTP: what a text would get (allow, mask
or block) under the organisation's settings and under a key's or group's effective ones, the size cap, and who
may ask. The matched values must appear nowhere but in the masked-out spans of the caller's own text.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from servers import Server, gateway_env, manage_call, start_gateway

EMAIL = "jane.doe@acme-corp.io"
AWS = "AKIAQWERTYUIOPASDFGH"
CARD = "4111 1111 1111 1111"

CONFIG = """
providers:
  mock:
    base_url: env:ROUTER_MOCK_URL
    api_key: mock-upstream-key
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o}
guardrails:
  categories: {pci: block}
"""


class Gateway:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.admin = server.env["ROUTER_ADMIN_KEY"]
        self.keys: dict[str, str] = {}
        self.ids: dict[str, str] = {}

    def call(self, body: dict | None, who: str | None = None, path: str = "/guardrails/test") -> httpx.Response:
        key = self.admin if who is None else self.keys[who]
        return manage_call(self.server.base, key, "POST", path, json=body)

    def ok(self, method: str, path: str, body: dict | None = None) -> dict:
        r = manage_call(self.server.base, self.admin, method, path, json=body)
        assert r.status_code in (200, 201), r.text
        return r.json()

    def test(self, body: dict, who: str | None = None) -> dict:
        r = self.call(body, who)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("guardrail-test")
    (root / "config.yaml").write_text(CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, root / "config.yaml"))
    g = Gateway(server)
    for name, role in (("analyst", "analyst"), ("alice", "standard"), ("bob", "standard")):
        user = g.ok("POST", "/user", {"email": f"{name}@corp.test", "role": role})
        created = g.ok("POST", "/apikey", {"name": f"{name}-key", "owner": {"type": "user", "id": user["id"]}})
        g.keys[name], g.ids[name] = created["key"], created["id"]
    yield g
    log = server.stop()
    # Neither the values nor the texts carrying them reached the server's log.
    assert EMAIL not in log and AWS not in log and CARD not in log


def test_an_email_and_an_aws_key_are_masked_with_their_types_and_offsets(gw: Gateway) -> None:
    text = f"Mail {EMAIL} with key {AWS} today"
    answer = gw.test({"text": text})
    assert answer["action"] == "mask"
    found = answer["findings"]
    assert [(f["category"], f["type"], f["action"]) for f in found] == [
        ("pii", "EMAIL", "mask"),
        ("secrets", "AWS_ACCESS_KEY", "mask"),
    ]
    # The offsets are the values' places in the text (Python string indices).
    assert text[found[0]["start"] : found[0]["end"]] == EMAIL
    assert text[found[1]["start"] : found[1]["end"]] == AWS
    masked = answer["masked_text"]
    assert EMAIL not in masked and AWS not in masked
    assert masked == "Mail [EMAIL_1] with key [AWS_ACCESS_KEY_1] today"
    # Types and offsets only: no finding carries the value.
    assert all(set(f) == {"type", "category", "start", "end", "action"} for f in found)
    assert EMAIL not in str(found) and AWS not in str(found)


def test_a_clean_text_is_allowed_unchanged(gw: Gateway) -> None:
    answer = gw.test({"text": "Nothing sensitive here, just the weather."})
    assert answer == {
        "object": "guardrails.test",
        "action": "allow",
        "masked_text": "Nothing sensitive here, just the weather.",
        "findings": [],
        "scanned": True,
    }


def test_a_blocked_category_blocks_the_text(gw: Gateway) -> None:
    text = f"Card {CARD}, reply to {EMAIL}"
    answer = gw.test({"text": text})
    assert answer["action"] == "block"
    actions = {f["category"]: f["action"] for f in answer["findings"]}
    assert actions == {"pci": "block", "pii": "mask"}
    assert CARD not in answer["masked_text"]


def test_the_stored_organisation_policy_is_the_one_tested(gw: Gateway) -> None:
    gw.ok("PUT", "/guardrails", {"categories": {"pii": "block"}})
    try:
        assert gw.test({"text": f"to {EMAIL}"})["action"] == "block"
        gw.ok("PUT", "/guardrails", {"enabled": False})
        assert gw.test({"text": f"to {EMAIL}"}) == {
            "object": "guardrails.test", "action": "allow", "masked_text": f"to {EMAIL}", "findings": [],
            "scanned": False,
        }  # fmt: skip
    finally:
        gw.ok("DELETE", "/guardrails")
    assert gw.test({"text": f"to {EMAIL}"})["action"] == "mask"


def test_a_key_override_changes_the_outcome(gw: Gateway) -> None:
    key = gw.ids["alice"]
    text = f"Reach me at {EMAIL}"
    assert gw.test({"text": text, "key_id": key})["action"] == "mask"
    gw.ok("PUT", f"/apikey/{key}/guardrails", {"categories": {"pii": "block"}})
    try:
        answer = gw.test({"text": text, "key_id": key})
        assert answer["action"] == "block"
        assert answer["findings"][0]["action"] == "block"
        # The organisation's own policy, and another key, are unchanged.
        assert gw.test({"text": text})["action"] == "mask"
        assert gw.test({"text": text, "key_id": gw.ids["bob"]})["action"] == "mask"
        # The key's owner may test under their own key's policy; not under someone else's key.
        assert gw.test({"text": text, "key_id": key}, who="alice")["action"] == "block"
    finally:
        gw.ok("DELETE", f"/apikey/{key}/guardrails")


def test_a_group_override_changes_the_outcome(gw: Gateway) -> None:
    group = gw.ok("POST", "/group", {"name": "gt-secrets"})["id"]
    gw.ok(
        "PUT",
        f"/group/{group}/guardrails",
        {"custom": [{"name": "ticket", "pattern": r"TCK-\d{4}", "action": "block"}]},
    )
    answer = gw.test({"text": "see TCK-1234", "group_id": group})
    assert answer["action"] == "block"
    assert answer["findings"] == [{"type": "TICKET", "category": "custom", "start": 4, "end": 12, "action": "block"}]
    assert answer["masked_text"] == "see [TICKET_1]"
    assert gw.test({"text": "see TCK-1234"})["action"] == "allow"


def test_the_text_size_is_capped(gw: Gateway) -> None:
    assert gw.test({"text": "a" * 65536})["action"] == "allow"
    r = gw.call({"text": "é" * 32769})  # 65,538 bytes of UTF-8
    assert r.status_code == 413, r.text
    error = r.json()["error"]
    assert error["type"] == "request_too_large" and error["code"] == "text_too_large" and error["param"] == "text"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, None),
        ({"text": 5}, "text"),
        ({"text": "x", "extra": 1}, None),
        ({"text": "x", "key_id": "k", "group_id": "g"}, "group_id"),
    ],
)
def test_bad_bodies_are_400s(gw: Gateway, body: dict, param: str | None) -> None:
    r = gw.call(body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param


def test_unknown_key_or_group_is_404(gw: Gateway) -> None:
    assert gw.call({"text": "x", "key_id": "key_nope"}).status_code == 404
    assert gw.call({"text": "x", "group_id": "grp_nope"}).status_code == 404


def test_who_may_test(gw: Gateway) -> None:
    assert gw.test({"text": f"to {EMAIL}"}, who="analyst")["action"] == "mask"
    # Standard users read only their own key's settings: the organisation's test is refused...
    r = gw.call({"text": f"to {EMAIL}"}, who="alice")
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "insufficient_permissions"
    # ...and someone else's key is not visible to them.
    assert gw.call({"text": "x", "key_id": gw.ids["bob"]}, who="alice").status_code == 404
    no_key = httpx.post(f"{gw.server.base}/v1/manage/guardrails/test", json={"text": "x"}, timeout=20)
    assert no_key.status_code == 401


def test_the_openapi_document_describes_it(gw: Gateway) -> None:
    doc = httpx.get(f"{gw.server.base}/v1/manage/openapi.json", timeout=20).json()
    op = doc["paths"]["/v1/manage/guardrails/test"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/GuardrailTest"}
    assert "413" in op["responses"]
    schema = doc["components"]["schemas"]["GuardrailTest"]
    assert schema["required"] == ["text"] and set(schema["properties"]) == {"text", "key_id", "group_id"}
