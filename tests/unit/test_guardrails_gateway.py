"""Guardrails in the request path, without servers: settings, request screening, fail-closed behaviour and
the chat stream guard fed every split of an OpenAI stream."""

from __future__ import annotations

import json

import msgspec
import pytest

from router.config import parse_config
from router.errors import ConfigError, GuardrailUnavailable, GuardrailViolation
from router.guardrails import mask
from router.guardrails.chat_stream import ChatStreamGuard
from router.guardrails.policy import Policy, screen_chat_request, screen_chat_response, screen_request_fields
from router.guardrails.settings import CustomPattern, GuardrailSettings
from router.metrics import Metrics

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@acme-corp.io"
PROVIDERS = "providers: {mock: {base_url: 'http://127.0.0.1:1/v1'}}\nmodels: [{id: mock/m}]\n"


def fields(messages: list[dict]) -> dict[str, msgspec.Raw]:
    return {"model": msgspec.Raw(b'"m"'), "messages": msgspec.Raw(msgspec.json.encode(messages))}


def test_settings_decide_categories_and_actions() -> None:
    default = Policy(GuardrailSettings())
    assert set(default.categories) == {"pii", "pci", "banking", "secrets", "financial"}
    strict = Policy(GuardrailSettings(default_action="block", categories={"names": "mask", "financial": "off"}))
    assert "financial" not in strict.categories and strict.action("names", "PERSON") == "mask"
    assert strict.action("pci", "CARD") == "block"
    off = Policy(GuardrailSettings(enabled=False))
    assert not off.requests and not off.responses
    custom = Policy(GuardrailSettings(custom=[CustomPattern("ticket", "TCK-[0-9]{4}", action="block")]))
    assert custom.action("custom", "TICKET") == "block" and custom.action("pii", "EMAIL") == "mask"


def test_config_errors_name_the_guardrail_setting() -> None:
    with pytest.raises(ConfigError, match=r"at guardrails\.categories\.cards: unknown category 'cards'"):
        parse_config(PROVIDERS + "guardrails: {categories: {cards: block}}")
    with pytest.raises(ConfigError, match=r"at guardrails\.custom\[0\]\.pattern: .*not a valid regex"):
        parse_config(PROVIDERS + "guardrails: {custom: [{name: x, pattern: '('}]}")
    assert parse_config(PROVIDERS).guardrails == GuardrailSettings()


def test_request_is_masked_in_place_with_one_numbering() -> None:
    f = fields([{"role": "system", "content": f"cc {EMAIL}"}, {"role": "user", "content": f"I am {EMAIL}"}])
    screen_chat_request(Policy(GuardrailSettings()), Metrics(), f)
    messages = msgspec.json.decode(f["messages"])
    assert [m["content"] for m in messages] == ["cc [EMAIL_1]", "I am [EMAIL_1]"]


def test_clean_request_is_left_byte_for_byte() -> None:
    f = fields([{"role": "user", "content": "hello there, 42 apples"}])
    before = f["messages"]
    screen_chat_request(Policy(GuardrailSettings()), Metrics(), f)
    assert f["messages"] is before


def test_tool_schemas_and_tool_inputs_are_read_whatever_their_field_names() -> None:
    # A parameter called `name` has a description a model reads; its `required` entry is not text.
    schema = {"type": "object", "properties": {"name": {"type": "string", "description": f"e.g. {EMAIL}"}},
              "required": ["name"]}  # fmt: skip
    tools = [{"type": "function", "function": {"name": "lookup", "description": "find", "parameters": schema}}]
    f = {**fields([{"role": "user", "content": "hi"}]), "tools": msgspec.Raw(msgspec.json.encode(tools))}
    screen_chat_request(Policy(GuardrailSettings()), Metrics(), f)
    masked = msgspec.json.decode(f["tools"])[0]["function"]["parameters"]
    assert masked["properties"]["name"]["description"] == "e.g. [EMAIL_1]" and masked["required"] == ["name"]
    # An Anthropic tool_use input keeps the caller's field names (`id`, `data`): every string of it is read.
    call = {"type": "tool_use", "id": "toolu_1", "name": "send", "input": {"id": EMAIL, "data": [CARD]}}
    f = {"messages": msgspec.Raw(msgspec.json.encode([{"role": "assistant", "content": [call]}]))}
    changed, _ = screen_request_fields(Policy(GuardrailSettings()), Metrics(), f)
    block = msgspec.json.decode(f["messages"])[0]["content"][0]
    assert changed and block["input"] == {"id": "[EMAIL_1]", "data": ["[CARD_1]"]} and block["id"] == "toolu_1"


def test_a_document_the_rust_walk_gives_up_on_is_masked_the_same_in_python() -> None:
    # A key written with escapes (`"con\u0074ent"` is "content") sends the document to the Python walk.
    raw = b'[{"role": "user", "con\\u0074ent": "mail %s", "name": "%s"}]' % (EMAIL.encode(), EMAIL.encode())
    plain = b'[{"role": "user", "content": "mail %s", "name": "%s"}]' % (EMAIL.encode(), EMAIL.encode())
    escaped, direct = {"messages": msgspec.Raw(raw)}, {"messages": msgspec.Raw(plain)}
    screen_chat_request(Policy(GuardrailSettings()), Metrics(), escaped)
    screen_chat_request(Policy(GuardrailSettings()), Metrics(), direct)
    assert msgspec.json.decode(escaped["messages"]) == msgspec.json.decode(direct["messages"])
    assert msgspec.json.decode(direct["messages"]) == [{"role": "user", "content": "mail [EMAIL_1]", "name": EMAIL}]


def test_plain_text_documents_are_read_in_rust_and_in_python_and_base64_is_not() -> None:
    # The Rust walk reads a document's `data` once its `media_type` says text, wherever the keys stand; the
    # Python walk (a key spelled with escapes sends the whole field there) reads the same.
    pdf = "JVBERi0xLjQgamFuZUBhY21lLmlv"
    blocks = [
        {"type": "document", "source": {"data": f"mail {EMAIL}", "type": "text", "media_type": "text/plain"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}},
        {"type": "text", "text": f"card {CARD}"},
    ]
    plain = msgspec.json.encode([{"role": "user", "content": blocks}])
    escaped = plain.replace(b'"content"', b'"con\\u0074ent"')
    results = []
    for raw in (plain, escaped):
        f = {"messages": msgspec.Raw(raw)}
        changed, _ = screen_request_fields(Policy(GuardrailSettings()), Metrics(), f)
        assert changed
        results.append(msgspec.json.decode(f["messages"])[0]["content"])
    assert results[0] == results[1]
    assert results[0][0]["source"]["data"] == "mail [EMAIL_1]" and results[0][1]["source"]["data"] == pdf
    assert results[0][2]["text"] == "card [CARD_1]"


@pytest.mark.parametrize(
    ("name", "value", "masked"),
    [
        ("prediction", {"type": "content", "content": f"to {EMAIL}"}, {"type": "content", "content": "to [EMAIL_1]"}),
        ("response_format", {"type": "json_schema", "json_schema": {"name": "r", "description": EMAIL}},
         {"type": "json_schema", "json_schema": {"name": "r", "description": "[EMAIL_1]"}}),
        ("functions", [{"name": "f", "description": EMAIL}], [{"name": "f", "description": "[EMAIL_1]"}]),
    ],
)  # fmt: skip
def test_chat_prediction_schema_and_functions_are_masked(name: str, value: object, masked: object) -> None:
    f = {**fields([{"role": "user", "content": "hi"}]), name: msgspec.Raw(msgspec.json.encode(value))}
    screen_chat_request(Policy(GuardrailSettings()), Metrics(), f)
    assert msgspec.json.decode(f[name]) == masked


def test_one_field_the_rust_walk_gives_up_on_keeps_the_request_numbering() -> None:
    # The messages walk in Rust, the tools do not: the request is masked as one, with one numbering.
    other = "ops@example.org"
    tools = b'[{"type": "function", "function": {"name": "f", "descr\\u0069ption": "cc %s"}}]' % other.encode()
    f = {**fields([{"role": "user", "content": f"mail {EMAIL}"}]), "tools": msgspec.Raw(tools)}
    masker = screen_chat_request(Policy(GuardrailSettings(restore_placeholders=True)), Metrics(), f)
    assert msgspec.json.decode(f["messages"]) == [{"role": "user", "content": "mail [EMAIL_1]"}]
    assert msgspec.json.decode(f["tools"])[0]["function"]["description"] == "cc [EMAIL_2]"
    assert masker is not None and masker.found_count == 2
    # An answer the walk gives up on is masked decoded, continuing the numbering.
    policy = Policy(GuardrailSettings(restore_placeholders=True))
    answer = b'{"choices": [{"message": {"con\\u0074ent": "or bob@example.net, %s"}}]}' % CARD.encode()
    out = screen_chat_response(policy, Metrics(), answer, masker)
    assert msgspec.json.decode(out) == {"choices": [{"message": {"content": "or [EMAIL_3], [CARD_1]"}}]}
    # One that echoes a placeholder gets the value back.
    out = screen_chat_response(policy, Metrics(), b'{"choices": [{"message": {"content": "[EMAIL_2]"}}]}', masker)
    assert msgspec.json.decode(out) == {"choices": [{"message": {"content": other}}]}


def test_a_unary_answer_continues_the_request_numbering() -> None:
    policy = Policy(GuardrailSettings(restore_placeholders=True))
    metrics = Metrics()
    masker = screen_chat_request(policy, metrics, fields([{"role": "user", "content": f"mail {EMAIL}"}]))
    answer = b'{"choices": [{"message": {"role": "assistant", "content": "also ops@example.org"}}]}'
    out = screen_chat_response(policy, metrics, answer, masker)
    assert msgspec.json.decode(out)["choices"][0]["message"] == {"role": "assistant", "content": "also [EMAIL_2]"}
    text = metrics.render().decode()
    assert 'router_guardrail_findings_total{action="mask",category="pii",direction="response"} 1.0' in text
    blocked = Policy(GuardrailSettings(categories={"pii": "block"}))
    with pytest.raises(GuardrailViolation) as caught:
        screen_chat_response(blocked, metrics, answer)
    assert caught.value.code == "guardrail_violation" and "response contains pii" in caught.value.message
    assert "ops@" not in caught.value.message


def test_blocked_request_names_the_category_not_the_value() -> None:
    f = fields([{"role": "user", "content": f"pay with {CARD}"}])
    with pytest.raises(GuardrailViolation) as caught:
        screen_chat_request(Policy(GuardrailSettings(categories={"pci": "block"})), Metrics(), f)
    assert caught.value.status == 400 and caught.value.code == "guardrail_violation"
    assert "pci" in caught.value.message and "4111" not in caught.value.message


class Panic(BaseException):
    """What a panic in Rust code looks like from Python: pyo3's PanicException derives from BaseException."""


class BrokenEngine:
    def __init__(self, error: type[BaseException]) -> None:
        self.error = error

    def masker(self, categories: list[str]) -> None:
        raise self.error("scanner exploded")

    def fresh(self) -> None:
        raise self.error("scanner exploded")

    def stream(self, categories: list[str]) -> None:
        raise self.error("scanner exploded")

    def request(self, *args: object) -> None:
        raise self.error("scanner exploded")

    def answer(self, *args: object) -> None:
        raise self.error("scanner exploded")


@pytest.mark.parametrize("error", [RuntimeError, Panic])
def test_scanner_failure_fails_closed_with_503(error: type[BaseException]) -> None:
    policy = Policy(GuardrailSettings())
    # Maskers are copies of the policy's blank one, unary documents have a screen of their own: break all.
    policy.engine = policy._blank = policy.documents = BrokenEngine(error)  # type: ignore[assignment]
    with pytest.raises(GuardrailUnavailable) as caught:
        screen_chat_request(policy, Metrics(), fields([{"role": "user", "content": "hello"}]))
    assert caught.value.status == 503 and caught.value.code == "guardrail_unavailable"
    with pytest.raises(GuardrailUnavailable):
        screen_chat_response(policy, Metrics(), b'{"choices": []}')
    with pytest.raises(GuardrailUnavailable):
        ChatStreamGuard(policy, Metrics()).tap()


def test_metrics_count_by_category_direction_and_action() -> None:
    metrics = Metrics()
    screen_chat_request(Policy(GuardrailSettings()), metrics, fields([{"role": "user", "content": f"{EMAIL} {CARD}"}]))
    text = metrics.render().decode()
    assert 'router_guardrail_findings_total{action="mask",category="pii",direction="request"} 1.0' in text
    assert 'router_guardrail_findings_total{action="mask",category="pci",direction="request"} 1.0' in text


# -- the chat stream guard ---------------------------------------------------------------------------------


def _event(chunk: dict) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip


def _screened(guard: ChatStreamGuard, chunks: list[bytes], finish: bool = False) -> bytes:
    """What the chat proxy sends for these upstream reads (`finish`: the stream ends without [DONE])."""
    tap = guard.tap()
    out = []
    for chunk in chunks:
        out.append(tap.feed(chunk))
        guard.check(tap)
    if finish:
        out.append(tap.finish())
        guard.check(tap)
    return b"".join(out)


def _client_view(events: bytes) -> tuple[str, str]:
    """What an SDK assembles from the stream: content and the first tool call's arguments."""
    content, arguments = "", ""
    for block in events.split(b"\n\n"):
        data = block.removeprefix(b"data: ")
        if not data or data == b"[DONE]":
            continue
        for choice in json.loads(data)["choices"]:
            content += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls") or []:
                arguments += call["function"].get("arguments") or ""
    return content, arguments


TEXT = f"Charge {CARD} and mail {EMAIL}, IBAN GB29 NWBK 6016 1331 9268 19, key AKIAQWERTYUIOPASDFGH."
ARGS = json.dumps({"card": CARD, "to": EMAIL})


@pytest.mark.parametrize("done", [True, False], ids=["with-done", "cut-before-done"])
def test_every_split_of_content_and_tool_arguments_never_leaks(done: bool) -> None:
    policy = Policy(GuardrailSettings())
    for i in range(1, len(TEXT)):
        j = min(i, len(ARGS) - 1)
        events = [
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"content": TEXT[:i]}),
            _chunk({"content": TEXT[i:]}),
            _chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "t", "type": "function", "function": {"name": "f", "arguments": ARGS[:j]}}
                    ]
                }
            ),
            _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ARGS[j:]}}]}),
        ]
        stream = b"".join(_event(e) for e in events) + (b"data: [DONE]\n\n" if done else b"")
        # One read per event, and the whole stream cut into two reads at the i-th byte (mid-event).
        cut = len(stream) * i // len(TEXT)
        per_event = [_event(e) for e in events] + ([b"data: [DONE]\n\n"] if done else [])
        for reads in (per_event, [stream[:cut], stream[cut:]]):
            out = _screened(ChatStreamGuard(policy, Metrics()), reads, finish=not done)
            content, arguments = _client_view(out)
            assert content == mask(TEXT), i
            assert json.loads(arguments) == {"card": "[CARD_1]", "to": "[EMAIL_1]"}, j
            assert out.endswith(b"data: [DONE]\n\n") == done


def test_held_text_is_released_before_the_choice_finishes() -> None:
    tap = ChatStreamGuard(Policy(GuardrailSettings()), Metrics()).tap()
    first = tap.feed(_event(_chunk({"content": "card 4111 1111"})))
    assert b"4111" not in first
    last = tap.feed(_event(_chunk({"content": " 1111 1111 ok"}, finish="stop")))
    assert _client_view(first + last)[0] == "card [CARD_1] ok"
    # The released text comes in a chunk that takes over the finish_reason: nothing follows a finished choice.
    reasons = [json.loads(e.removeprefix(b"data: "))["choices"][0]["finish_reason"] for e in last.split(b"\n\n") if e]
    assert reasons == [None, "stop"]


# -- restoring placeholders the model echoes -----------------------------------------------------------------

RESTORE = GuardrailSettings(restore_placeholders=True)


def test_unary_answer_gets_request_values_back_and_new_values_masked() -> None:
    policy = Policy(RESTORE)
    request = screen_chat_request(policy, Metrics(), fields([{"role": "user", "content": f"I am {EMAIL}"}]))
    assert request is not None
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi [EMAIL_1], cc b@y.io"}}]}
    out = json.loads(screen_chat_response(policy, Metrics(), json.dumps(answer).encode(), request))
    assert out["choices"][0]["message"]["content"] == f"Hi {EMAIL}, cc [EMAIL_2]"


def test_streamed_answer_gets_request_values_back_across_chunks() -> None:
    policy = Policy(RESTORE)
    request = screen_chat_request(policy, Metrics(), fields([{"role": "user", "content": f"I am {EMAIL}"}]))
    guard = ChatStreamGuard(policy, Metrics(), request)
    pieces = ["Hi [EMA", "IL_1] and", " b@y.io ok"]
    out = _screened(guard, [_event(_chunk({"content": piece})) for piece in pieces] + [b"data: [DONE]\n\n"])
    assert _client_view(out)[0] == f"Hi {EMAIL} and [EMAIL_2] ok"


def test_without_restoring_no_masker_is_kept() -> None:
    f = fields([{"role": "user", "content": f"I am {EMAIL}"}])
    assert screen_chat_request(Policy(GuardrailSettings()), Metrics(), f) is None
