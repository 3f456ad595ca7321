"""Automatic session reconstruction end to end: conversations through chat, Messages and Responses with the
official SDKs, interleaved across keys and end users, forks, explicit ids, and the management API's views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from servers import ADMIN_KEY, Server, create_key, gateway_env, manage_call, start_gateway, usage_rows

ADMIN = ADMIN_KEY
CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: mock-upstream-key}
  anthropic: {kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}
  openai-responses: {kind: openai-responses, base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming, tools], prices: {input: 2.5, output: 10}}
  - {id: mock/broken, upstream_model: gpt-4o@fail=500}
  - {id: anthropic/claude-sonnet-4-5, upstream_model: claude-sonnet-4-5, capabilities: [streaming, tools]}
  - {id: openai-responses/gpt-4o, upstream_model: gpt-4o, capabilities: [streaming, tools]}
"""
SYSTEM = {"role": "system", "content": "You are terse."}


@pytest.fixture(scope="module")
def gateway(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("sessions")
    config = root / "router.yaml"
    config.write_text(CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, config, admin_key=ADMIN))
    yield server
    server.stop()


def _openai(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base}/v1", api_key=key, max_retries=0, timeout=20)


def _rows(server: Server, key_id: str, expect: int) -> list:
    rows = usage_rows(server, f"key_id = '{key_id}'", expect=expect)
    assert len(rows) == expect, [dict(r) for r in rows]
    return rows


def _chat_turns(client: openai.OpenAI, history: list[dict], questions: list[str], stream: bool = False, **kw) -> None:
    """Asks each question in turn, echoing every answer into the history as an application would."""
    for question in questions:
        history.append({"role": "user", "content": question})
        if stream:
            text = "".join(
                c.choices[0].delta.content or ""
                for c in client.chat.completions.create(model="mock/gpt-4o", messages=history, stream=True, **kw)
                if c.choices
            )
            history.append({"role": "assistant", "content": text})
        else:
            answer = client.chat.completions.create(model="mock/gpt-4o", messages=history, **kw)
            history.append(answer.choices[0].message.model_dump(exclude_none=True))


def test_chat_conversation_is_one_session_unary_and_streamed(gateway: Server) -> None:
    key = create_key(gateway.env, "chat-turns")
    client = _openai(gateway, key["key"])
    history: list[dict] = [SYSTEM]
    _chat_turns(client, history, ["What is the capital of France?", "Its population?"])
    _chat_turns(client, history, ["And its mayor?"], stream=True)
    _chat_turns(client, history, ["Thanks."])
    rows = _rows(gateway, key["id"], 4)
    assert len({r["session_id"] for r in rows}) == 1 and rows[0]["session_id"].startswith("ses_")
    assert [r["session_branch"] for r in rows] == [0, 0, 0, 0]
    assert [r["session_parent"] for r in rows] == [None, *[r["request_id"] for r in rows[:3]]]


def test_fork_starts_a_branch_and_a_retry_does_not(gateway: Server) -> None:
    key = create_key(gateway.env, "chat-fork")
    client = _openai(gateway, key["key"])
    history: list[dict] = [SYSTEM]
    _chat_turns(client, history, ["Plan a trip."])
    base = list(history)
    _chat_turns(client, list(base), ["To Rome."])
    _chat_turns(client, list(base), ["To Rome."])  # the same turn again: a retry
    _chat_turns(client, list(base), ["To Oslo instead."])  # an edited follow-up: a fork
    rows = _rows(gateway, key["id"], 4)
    assert len({r["session_id"] for r in rows}) == 1
    assert [r["session_branch"] for r in rows] == [0, 0, 0, 1]
    assert {r["session_parent"] for r in rows[1:]} == {rows[0]["request_id"]}


def test_identical_first_turns_never_merge(gateway: Server) -> None:
    one, two = create_key(gateway.env, "same-a"), create_key(gateway.env, "same-b")
    histories = {}
    # Interleaved: two keys, and on one key two end users (requesty.user_id and chat's `user`).
    callers = [
        (one, {"extra_body": {"requesty": {"user_id": "alice"}}}),
        (one, {"extra_body": {"requesty": {"user_id": "bob"}}}),
        (one, {"user": "carol"}),
        (two, {}),
    ]
    for turn in ("Hello", "Tell me more"):
        for i, (key, kw) in enumerate(callers):
            history = histories.setdefault(i, [SYSTEM])
            _chat_turns(_openai(gateway, key["key"]), history, [turn], **kw)
    rows = list(_rows(gateway, one["id"], 6)) + list(_rows(gateway, two["id"], 2))
    by_caller: dict[str, set[str]] = {}
    for row in rows:
        by_caller.setdefault(f"{row['key_id']}:{row['end_user']}", set()).add(row["session_id"])
    assert len(by_caller) == 4 and all(len(s) == 1 for s in by_caller.values()), by_caller
    assert len({s for ss in by_caller.values() for s in ss}) == 4


def test_explicit_session_id_and_trace_id_are_honoured(gateway: Server) -> None:
    key = create_key(gateway.env, "explicit")
    client = _openai(gateway, key["key"])
    _chat_turns(client, [SYSTEM], ["a"], extra_body={"requesty": {"session_id": "my-session"}})
    _chat_turns(client, [SYSTEM], ["b"], extra_body={"requesty": {"trace_id": "my-trace"}})
    rows = _rows(gateway, key["id"], 2)
    assert [r["session_id"] for r in rows] == ["my-session", "my-trace"]


def test_messages_conversation_with_tool_use(gateway: Server) -> None:
    key = create_key(gateway.env, "messages")
    client = anthropic.Anthropic(base_url=gateway.base, api_key=key["key"], max_retries=0, timeout=20)
    tools = [{"name": "get_weather", "description": "w", "input_schema": {"type": "object", "properties": {}}}]
    history: list[dict] = [{"role": "user", "content": "Weather in Paris? call:get_weather"}]
    first = client.messages.create(
        model="anthropic/claude-sonnet-4-5", max_tokens=100, system="Be brief.", messages=history, tools=tools
    )
    history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]})
    uses = [b for b in first.content if b.type == "tool_use"]
    follow = [{"type": "tool_result", "tool_use_id": u.id, "content": "sunny"} for u in uses] or "Go on."
    history.append({"role": "user", "content": follow})
    with client.messages.stream(
        model="anthropic/claude-sonnet-4-5", max_tokens=100, system="Be brief.", messages=history, tools=tools
    ) as stream:
        second = stream.get_final_message()
    history.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in second.content]})
    history.append({"role": "user", "content": "Thanks"})
    client.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=100, system="Be brief.", messages=history)
    # A different system prompt is another conversation.
    client.messages.create(model="anthropic/claude-sonnet-4-5", max_tokens=100, system="Be long.", messages=history)
    rows = _rows(gateway, key["id"], 4)
    assert len({r["session_id"] for r in rows[:3]}) == 1
    assert rows[3]["session_id"] != rows[0]["session_id"]
    assert [r["session_parent"] for r in rows[:3]] == [None, rows[0]["request_id"], rows[1]["request_id"]]


def test_responses_input_items_and_previous_response_id(gateway: Server) -> None:
    key = create_key(gateway.env, "responses")
    client = _openai(gateway, key["key"])
    model = "openai-responses/gpt-4o"
    first = client.responses.create(model=model, instructions="Be brief.", input="Hello")
    # Replaying the whole conversation, output items included.
    items: list = [{"role": "user", "content": "Hello"}, *[o.model_dump(exclude_none=True) for o in first.output]]
    items.append({"role": "user", "content": "More"})
    client.responses.create(model=model, instructions="Be brief.", input=items)
    # Chaining by id, unary then streamed, then from the streamed one.
    chained = client.responses.create(model=model, input="Again", previous_response_id=first.id)
    with client.responses.stream(model=model, input="And again", previous_response_id=chained.id) as stream:
        streamed = stream.get_final_response()
    client.responses.create(model=model, input="Last", previous_response_id=streamed.id)
    rows = _rows(gateway, key["id"], 5)
    assert len({r["session_id"] for r in rows}) == 1, [dict(r) for r in rows]
    parents = [r["session_parent"] for r in rows]
    ids = [r["request_id"] for r in rows]
    assert parents == [None, ids[0], ids[0], ids[2], ids[3]]
    # Two requests naming the same previous response with different input: a fork.
    client.responses.create(model=model, input="Other", previous_response_id=first.id)
    assert _rows(gateway, key["id"], 6)[5]["session_branch"] == 1


def test_management_api_lists_timelines_and_analytics(gateway: Server) -> None:
    key, other = create_key(gateway.env, "manage-a"), create_key(gateway.env, "manage-b")
    client = _openai(gateway, key["key"])
    history: list[dict] = [SYSTEM]
    _chat_turns(client, history, ["one", "two"])
    history.append({"role": "user", "content": "three"})
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="mock/broken", messages=history)
    _chat_turns(_openai(gateway, other["key"]), [SYSTEM], ["solo"])
    rows = _rows(gateway, key["id"], 3)
    _rows(gateway, other["id"], 1)  # flushed too, before the analytics read them
    session = rows[0]["session_id"]
    assert rows[2]["session_id"] == session and rows[2]["status"] == 502

    listed = manage_call(gateway.base, ADMIN, "GET", "/sessions", params={"key": key["id"]}).json()
    assert [s["session_id"] for s in listed["data"]] == [session]
    entry = listed["data"][0]
    assert entry["requests"] == 3 and entry["errors"] == 1 and entry["last_failed"] is True
    assert entry["models"] == ["mock/broken", "mock/gpt-4o"] and entry["cost"] > 0

    timeline = manage_call(gateway.base, ADMIN, "GET", f"/sessions/{session}").json()
    assert [t["request_id"] for t in timeline["timeline"]] == [r["request_id"] for r in rows]
    assert [t["status"] for t in timeline["timeline"]] == [200, 200, 502]
    assert timeline["timeline"][0]["latency_ms"] > 0 and timeline["requests"] == 3

    both = {"key": f"{key['id']},{other['id']}", "idle_minutes": 0}
    stats = manage_call(gateway.base, ADMIN, "GET", "/sessions/analytics", params=both).json()
    assert stats["sessions"] == 2 and stats["requests"] == 4 and stats["single_turn"] == 1
    assert stats["turns"]["max"] == 3 and stats["abandoned"] == 1 and stats["abandonment_rate"] == 0.5
    # A key's own holder sees its sessions, not another key's.
    assert manage_call(gateway.base, other["key"], "GET", f"/sessions/{session}").status_code in (403, 404)
    assert manage_call(gateway.base, ADMIN, "GET", "/sessions/nope").status_code == 404
    bad = manage_call(gateway.base, ADMIN, "GET", "/sessions/analytics", params={"idle_minutes": "-1"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "idle_minutes"
