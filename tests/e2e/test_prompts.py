"""The prompt library end to end: prompts created, versioned, diffed and attached through the management API
and the CLI, applied by the gateway in each API's own field (asserted on what the mock upstream received), and
recorded on the usage rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from servers import (
    ADMIN_KEY,
    MockControl,
    Server,
    create_key,
    gateway_env,
    manage_call,
    router_cli,
    start_gateway,
    usage_rows,
)

ADMIN = ADMIN_KEY
# Requests are scanned with the default categories: a prompt's secret is masked like the caller's own text.
CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: mock-upstream-key}
  anthropic: {kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}
  openai-responses: {kind: openai-responses, base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming, tools], prices: {input: 2.5, output: 10}}
  - {id: anthropic/claude-sonnet-4-5, upstream_model: claude-sonnet-4-5, capabilities: [streaming, tools]}
  - {id: openai-responses/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming, tools]}
guardrails:
  categories: {secrets: mask}
"""
AWS = "AKIAQWERTYUIOPASDFGH"


@pytest.fixture(scope="module")
def gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("prompts")
    config = root / "router.yaml"
    config.write_text(CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, config, admin_key=ADMIN))
    yield server
    server.stop()


def _manage(server: Server, method: str, path: str, **kwargs: object) -> dict:
    response = manage_call(server.base, ADMIN, method, path, **kwargs)  # type: ignore[arg-type]
    assert response.status_code < 300, response.text
    return response.json()


def _key(server: Server, name: str) -> dict:
    return create_key(server.env, name)


def _sent(mock: MockControl) -> dict:
    requests = mock.requests()
    assert len(requests) == 1, requests
    return requests[0]["body"]


def _chat(server: Server, key: str, messages: list[dict]) -> openai.types.chat.ChatCompletion:
    with openai.OpenAI(base_url=f"{server.base}/v1", api_key=key, max_retries=0, timeout=20) as client:
        return client.chat.completions.create(model="mock/gpt-4o", messages=messages)  # type: ignore[arg-type]


def test_versions_diff_rollback_and_duplicate(gateway: Server) -> None:
    created = _manage(gateway, "POST", "/prompts", json={"name": "coder", "content": "Be terse.\nUse Python.\n"})
    assert created["latest_version"] == 1 and created["kind"] == "system"
    _manage(gateway, "POST", "/prompts/coder/versions", json={"content": "Be terse.\nUse Rust.\n", "note": "rust"})
    versions = _manage(gateway, "GET", "/prompts/coder/versions")["data"]
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["note"] == "rust"
    diff = _manage(gateway, "GET", "/prompts/coder/diff", params={"from": 1, "to": 2})["diff"]
    expected = ["--- coder@1", "+++ coder@2", "@@ -1,2 +1,2 @@", " Be terse.", "-Use Python.", "+Use Rust."]
    assert diff.splitlines() == expected
    # A rollback is a new version with the old text: history only grows.
    rolled = _manage(gateway, "POST", "/prompts/coder/rollback", json={"version": 1})
    assert rolled["version"] == 3 and rolled["content"] == "Be terse.\nUse Python.\n"
    assert _manage(gateway, "GET", "/prompts/coder/versions/2")["content"] == "Be terse.\nUse Rust.\n"
    copy = _manage(gateway, "POST", "/prompts/coder/duplicate", json={"name": "coder-copy"})
    assert copy["latest_version"] == 1 and copy["content"] == "Be terse.\nUse Python.\n"
    # The same through the CLI.
    out = router_cli(gateway.env, "prompts", "diff", "coder", "2", "3").stdout
    assert "-Use Rust.\n+Use Python.\n" in out
    actions = [e["action"] for e in _manage(gateway, "GET", "/audit", params={"action": "prompt.*"})["data"]]
    assert {"prompt.create", "prompt.version", "prompt.rollback", "prompt.duplicate"} <= set(actions)


def test_bad_prompts_are_refused(gateway: Server) -> None:
    for body, param in (
        ({"name": "bad name", "content": "x"}, "name"),
        ({"name": "empty", "content": "  "}, "content"),
        ({"name": "big", "content": "x" * (128 * 1024 + 1)}, "content"),
        ({"name": "t", "content": "x", "tags": ["has space"]}, "tags[0]"),
    ):
        response = manage_call(gateway.base, ADMIN, "POST", "/prompts", json=body)
        assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text
    assert manage_call(gateway.base, ADMIN, "GET", "/prompts/nope/diff", params={"from": 1, "to": 2}).status_code == 404
    _manage(gateway, "POST", "/prompts", json={"name": "vibe-x", "kind": "vibe", "content": "Think."})
    key = _key(gateway, "vibe-replace")
    response = manage_call(
        gateway.base, ADMIN, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": "vibe-x", "mode": "replace"}
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "mode"
    response = manage_call(gateway.base, ADMIN, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": "vibe-x@9"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "prompt"


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("prepend", [{"role": "system", "content": "LIB\n\nMINE"}, {"role": "user", "content": "Hi"}]),
        ("append", [{"role": "system", "content": "MINE\n\nLIB"}, {"role": "user", "content": "Hi"}]),
        ("replace", [{"role": "system", "content": "LIB"}, {"role": "user", "content": "Hi"}]),
    ],
)
def test_chat_modes(gateway: Server, mock: MockControl, mode: str, expected: list[dict]) -> None:
    name = f"chat-{mode}"
    _manage(gateway, "POST", "/prompts", json={"name": name, "content": "LIB"})
    key = _key(gateway, name)
    _manage(gateway, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": name, "mode": mode})
    _chat(gateway, key["key"], [{"role": "system", "content": "MINE"}, {"role": "user", "content": "Hi"}])
    assert _sent(mock)["messages"] == expected
    row = usage_rows(gateway, f"key_id = '{key['id']}'")[0]
    assert row["prompt"] == f"{name}@1"


def test_a_chat_without_a_system_message_gets_one_and_a_vibe_prompt_joins_the_user_turn(
    gateway: Server, mock: MockControl
) -> None:
    _manage(gateway, "POST", "/prompts", json={"name": "sys-a", "content": "SYS"})
    _manage(gateway, "POST", "/prompts", json={"name": "vibe-a", "kind": "vibe", "content": "VIBE"})
    key = _key(gateway, "both")
    _manage(gateway, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": "sys-a"})
    _manage(gateway, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": "vibe-a", "mode": "append"})
    parts = [{"type": "text", "text": "Hello"}]
    _chat(gateway, key["key"], [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
                                {"role": "user", "content": parts}])  # fmt: skip
    assert _sent(mock)["messages"] == [
        {"role": "system", "content": "SYS"},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [*parts, {"type": "text", "text": "VIBE"}]},
    ]
    assert usage_rows(gateway, f"key_id = '{key['id']}'")[0]["prompt"] == "sys-a@1 vibe-a@1"


def test_messages_and_responses_use_their_own_fields(gateway: Server, mock: MockControl) -> None:
    _manage(gateway, "POST", "/prompts", json={"name": "sys-b", "content": "SYS"})
    key = _key(gateway, "apis")
    _manage(gateway, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": "sys-b", "mode": "prepend"})
    with anthropic.Anthropic(base_url=gateway.base, api_key=key["key"], max_retries=0, timeout=20) as client:
        client.messages.create(
            model="anthropic/claude-sonnet-4-5",
            max_tokens=50,
            system=[{"type": "text", "text": "MINE"}],
            messages=[{"role": "user", "content": "Hi"}],
        )
    assert _sent(mock)["system"] == [{"type": "text", "text": "SYS"}, {"type": "text", "text": "MINE"}]
    mock.reset()
    with openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=key["key"], max_retries=0, timeout=20) as client:
        client.responses.create(model="openai-responses/gpt-4o", instructions="MINE", input="Hi")
        assert _sent(mock)["instructions"] == "SYS\n\nMINE"
        mock.reset()
        # Translated to another API, the prompt still arrives: chat caller, Messages upstream.
        client.chat.completions.create(
            model="anthropic/claude-sonnet-4-5", messages=[{"role": "user", "content": "Hi"}], max_tokens=20
        )
    assert _sent(mock)["system"] == "SYS"


def test_a_key_attachment_wins_over_its_group_and_pins_hold(gateway: Server, mock: MockControl) -> None:
    _manage(gateway, "POST", "/prompts", json={"name": "team", "content": "TEAM v1"})
    _manage(gateway, "POST", "/prompts/team/versions", json={"content": "TEAM v2"})
    _manage(gateway, "POST", "/prompts", json={"name": "own", "content": "OWN"})
    group = _manage(gateway, "POST", "/group", json={"name": "prompted"})
    _manage(gateway, "POST", f"/group/{group['id']}/prompts", json={"prompt": "team@1", "mode": "replace"})
    key = json.loads(
        router_cli(gateway.env, "keys", "create", "--name", "grouped", "--group", "prompted", "--json").stdout
    )
    _chat(gateway, key["key"], [{"role": "user", "content": "Hi"}])
    assert _sent(mock)["messages"][0] == {"role": "system", "content": "TEAM v1"}  # pinned: not v2
    mock.reset()
    router_cli(gateway.env, "prompts", "attach", "own", "--key", key["id"], "--mode", "replace")
    _chat(gateway, key["key"], [{"role": "user", "content": "Hi"}])
    assert _sent(mock)["messages"][0] == {"role": "system", "content": "OWN"}
    mock.reset()
    router_cli(gateway.env, "prompts", "detach", "system", "--key", key["id"])
    _chat(gateway, key["key"], [{"role": "user", "content": "Hi"}])
    assert _sent(mock)["messages"][0] == {"role": "system", "content": "TEAM v1"}
    # Deleting an attached prompt is refused.
    assert manage_call(gateway.base, ADMIN, "DELETE", "/prompts/team").status_code == 409


def test_a_latest_attachment_follows_new_versions(gateway: Server, mock: MockControl) -> None:
    _manage(gateway, "POST", "/prompts", json={"name": "moving", "content": "ONE"})
    key = _key(gateway, "moving")
    _manage(gateway, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": "moving", "mode": "replace"})
    _manage(gateway, "POST", "/prompts/moving/versions", json={"content": "TWO"})
    _chat(gateway, key["key"], [{"role": "user", "content": "Hi"}])
    assert _sent(mock)["messages"][0] == {"role": "system", "content": "TWO"}
    usage_rows(gateway, f"key_id = '{key['id']}'")  # the usage writer flushes in the background
    usage = _manage(gateway, "GET", "/usage", params={"group_by": "prompt", "key": key["id"]})["data"]
    assert [(r["prompt"], r["requests"]) for r in usage] == [("moving@2", 1)]


def test_a_prompt_with_a_secret_is_masked_by_the_guardrails(gateway: Server, mock: MockControl) -> None:
    _manage(gateway, "POST", "/prompts", json={"name": "leaky", "content": f"Deploy with {AWS}."})
    key = _key(gateway, "leaky")
    _manage(gateway, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": "leaky", "mode": "replace"})
    _chat(gateway, key["key"], [{"role": "user", "content": "Hi"}])
    sent = json.dumps(_sent(mock))
    assert AWS not in sent and "[AWS_ACCESS_KEY_1]" in sent


def test_standard_users_see_only_what_is_attached_to_them(gateway: Server) -> None:
    user = _manage(gateway, "POST", "/user", json={"email": "prompt-user@example.com"})
    key = json.loads(
        router_cli(gateway.env, "keys", "create", "--name", "mine", "--owner", f"user:{user['id']}", "--json").stdout
    )
    _manage(gateway, "POST", "/prompts", json={"name": "theirs", "content": "A"})
    _manage(gateway, "POST", "/prompts", json={"name": "visible", "content": "B"})
    _manage(gateway, "POST", f"/apikey/{key['id']}/prompts", json={"prompt": "visible"})
    names = [p["name"] for p in manage_call(gateway.base, key["key"], "GET", "/prompts").json()["data"]]
    assert names == ["visible"]
    assert manage_call(gateway.base, key["key"], "GET", "/prompts/theirs").status_code == 404
    refused = manage_call(gateway.base, key["key"], "POST", "/prompts/visible/versions", json={"content": "C"})
    assert refused.status_code == 403
