"""Guardrails on answers in every API, without servers.

The property the issue demands: whatever the upstream API (OpenAI chat, Anthropic Messages, OpenAI Responses)
and whatever the caller's, a text holding a value of each category, split at every point across deltas (text,
thinking and tool-call arguments alike), reaches the client masked: the client never receives a matched value,
not even in part, and texts the caller's events repeat (Responses `.done` events and `response.completed`)
carry the same placeholders as the deltas.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from router._core import AnswerScreen, StreamTap, Transcoder
from router.errors import GuardrailUnavailable, GuardrailViolation
from router.guardrails import default, mask, scan
from router.guardrails.answers import AnswerGuard
from router.guardrails.policy import Policy
from router.guardrails.settings import GuardrailSettings
from router.metrics import Metrics

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@acme-corp.io"
IBAN = "GB29 NWBK 6016 1331 9268 19"
AWS = "AKIAQWERTYUIOPASDFGH"
SSN = "536-22-8174"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
# One value of each category (PII, PCI, banking, secrets, financial wording) in one answer.
TEXT = (
    f"Charge {CARD}, mail {EMAIL}, wire to IBAN {IBAN}, SSN {SSN}, key {AWS} and token {GITHUB}. "
    "My account balance is $12,400 and I hold 300 shares of ACME. Done."
)
THINK = f"The user {EMAIL} wants card {CARD} used"
ARGS = json.dumps({"card": CARD, "to": EMAIL, "note": f"iban {IBAN}"})
VALUES = [TEXT[f.start : f.end] for f in scan(TEXT)] + [CARD, EMAIL, IBAN, AWS, SSN, GITHUB]
# Parts of values long enough to identify them: none may reach the client either.
FRAGMENTS = ["4111 1111", "acme-corp", "NWBK", "AKIAQW", "22-8174", "ghp_A1b2"]


def test_the_text_holds_every_category() -> None:
    assert {f.category for f in scan(TEXT)} == {"pii", "pci", "banking", "secrets", "financial"}


# -- upstream streams ------------------------------------------------------------------------------------------


def _sse(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def _chat_upstream(text: list[str], think: list[str], args: list[str]) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})  # fmt: skip

    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"reasoning_content": t}) for t in think]
    out += [chunk({"content": t}) for t in text]
    out.append(chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                      "function": {"name": "pay", "arguments": ""}}]}))  # fmt: skip
    out += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": a}}]}) for a in args]
    out.append(chunk({}, "tool_calls"))
    out.append(_sse({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                     "usage": {"prompt_tokens": 5, "completion_tokens": 9}}))  # fmt: skip
    return [*out, b"data: [DONE]\n\n"]


def _messages_upstream(text: list[str], think: list[str], args: list[str]) -> list[bytes]:
    def ev(data: dict[str, Any]) -> bytes:
        return _sse(data, data["type"])

    def delta(index: int, kind: str, key: str, value: str) -> bytes:
        return ev({"type": "content_block_delta", "index": index, "delta": {"type": kind, key: value}})

    out = [ev({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}})]  # fmt: skip
    out.append(ev({"type": "content_block_start", "index": 0,
                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))  # fmt: skip
    out += [delta(0, "thinking_delta", "thinking", t) for t in think]
    out += [delta(0, "signature_delta", "signature", "sig=="), ev({"type": "content_block_stop", "index": 0})]
    out.append(ev({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}))
    out.append(ev({"type": "ping"}))
    out += [delta(1, "text_delta", "text", t) for t in text]
    out.append(ev({"type": "content_block_stop", "index": 1}))
    out.append(ev({"type": "content_block_start", "index": 2,
                   "content_block": {"type": "tool_use", "id": "toolu_1", "name": "pay", "input": {}}}))  # fmt: skip
    out += [delta(2, "input_json_delta", "partial_json", a) for a in args]
    out.append(ev({"type": "content_block_stop", "index": 2}))
    out.append(ev({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}))
    return [*out, ev({"type": "message_stop"})]


def _responses_upstream(text: list[str], think: list[str], args: list[str]) -> list[bytes]:
    seq = iter(range(1000))

    def ev(data: dict[str, Any]) -> bytes:
        return _sse({"type": data["type"], "sequence_number": next(seq), **data}, data["type"])

    full_text, full_think, full_args = "".join(text), "".join(think), "".join(args)
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": full_think}]}
    message = {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant",
               "content": [{"type": "output_text", "text": full_text, "annotations": []}]}  # fmt: skip
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "pay", "arguments": full_args,
            "status": "completed"}  # fmt: skip
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "model": "m", "output": []}
    out = [ev({"type": "response.created", "response": response})]
    out.append(ev({"type": "response.output_item.added", "output_index": 0, "item": {**reasoning, "summary": []}}))
    out += [ev({"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "output_index": 0,
                "summary_index": 0, "delta": t}) for t in think]  # fmt: skip
    out.append(ev({"type": "response.reasoning_summary_text.done", "item_id": "rs_1", "output_index": 0,
                   "summary_index": 0, "text": full_think}))  # fmt: skip
    out.append(ev({"type": "response.output_item.done", "output_index": 0, "item": reasoning}))
    out.append(ev({"type": "response.output_item.added", "output_index": 1,
                   "item": {**message, "status": "in_progress", "content": []}}))  # fmt: skip
    out += [ev({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0,
                "delta": t, "logprobs": []}) for t in text]  # fmt: skip
    out.append(ev({"type": "response.output_text.done", "item_id": "msg_1", "output_index": 1, "content_index": 0,
                   "text": full_text, "logprobs": []}))  # fmt: skip
    out.append(ev({"type": "response.content_part.done", "item_id": "msg_1", "output_index": 1, "content_index": 0,
                   "part": message["content"][0]}))  # fmt: skip
    out.append(ev({"type": "response.output_item.done", "output_index": 1, "item": message}))
    out.append(ev({"type": "response.output_item.added", "output_index": 2,
                   "item": {**call, "arguments": "", "status": "in_progress"}}))  # fmt: skip
    out += [ev({"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2,
                "delta": a}) for a in args]  # fmt: skip
    out.append(ev({"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 2,
                   "arguments": full_args}))  # fmt: skip
    out.append(ev({"type": "response.output_item.done", "output_index": 2, "item": call}))
    done = {**response, "status": "completed", "output": [reasoning, message, call], "output_text": full_text,
            "usage": {"input_tokens": 5, "output_tokens": 9}}  # fmt: skip
    return [*out, ev({"type": "response.completed", "response": done})]


UPSTREAMS = {"chat": _chat_upstream, "messages": _messages_upstream, "responses": _responses_upstream}


# -- what a client assembles -------------------------------------------------------------------------------------


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        data = "\n".join(line.removeprefix("data: ") for line in block.split("\n") if line.startswith("data: "))
        if data and data != "[DONE]":
            out.append(json.loads(data))
    return out


def _client_view(caller: str, raw: bytes) -> dict[str, Any]:
    """Text, thinking and tool arguments as the caller's SDK assembles them from deltas; `repeated`: the
    texts the caller's events repeat (Responses only)."""
    view: dict[str, Any] = {"text": "", "think": "", "args": "", "repeated": []}
    for e in _events(raw):
        assert "error" not in e and e.get("type") != "error", e
        if caller == "chat":
            for choice in e["choices"]:
                delta = choice["delta"]
                view["text"] += delta.get("content") or ""
                view["think"] += delta.get("reasoning_content") or ""
                for call in delta.get("tool_calls") or ():
                    view["args"] += call["function"].get("arguments") or ""
        elif caller == "messages":
            delta = e.get("delta") or {}
            view["text"] += delta.get("text", "") if delta.get("type") == "text_delta" else ""
            view["think"] += delta.get("thinking", "") if delta.get("type") == "thinking_delta" else ""
            view["args"] += delta.get("partial_json", "") if delta.get("type") == "input_json_delta" else ""
        else:
            kind = e["type"]
            view["text"] += e["delta"] if kind == "response.output_text.delta" else ""
            view["think"] += e["delta"] if kind == "response.reasoning_summary_text.delta" else ""
            view["args"] += e["delta"] if kind == "response.function_call_arguments.delta" else ""
            if kind == "response.output_text.done":
                view["repeated"].append(("text", e["text"]))
            if kind == "response.function_call_arguments.done":
                view["repeated"].append(("args", e["arguments"]))
            if kind == "response.completed":
                for item in e["response"]["output"]:
                    if item["type"] == "message":
                        view["repeated"].append(("text", item["content"][0]["text"]))
                    elif item["type"] == "function_call":
                        view["repeated"].append(("args", item["arguments"]))
                    else:
                        view["repeated"] += [("think", s["text"]) for s in item["summary"]]
    return view


def _run(upstream: str, caller: str, chunks: list[bytes]) -> bytes:
    transcoder = Transcoder(upstream, caller, "m", 1, screen=AnswerScreen(default()))
    out = b"".join(transcoder.feed(c) for c in chunks)
    assert transcoder.done and not transcoder.malformed
    return out


def _split(text: str, i: int) -> list[str]:
    return [text[:i], text[i:]] if 0 < i < len(text) else [text]


def _check(caller: str, out: bytes) -> None:
    for value in VALUES + FRAGMENTS:
        assert value.encode() not in out, value
    view = _client_view(caller, out)
    masker = default().masker()
    # One numbering for the answer: what the deltas carry is what masking the whole texts in order gives.
    expected = {"think": masker.mask(THINK), "text": masker.mask(TEXT), "args": masker.mask(ARGS)}
    assert view["text"] == expected["text"]
    assert json.loads(view["args"]) == json.loads(expected["args"])
    assert view["think"] == expected["think"]
    for field, repeated in view["repeated"]:
        assert repeated == view[field], field


@pytest.mark.parametrize("caller", ["chat", "messages", "responses"])
@pytest.mark.parametrize("upstream", ["chat", "messages", "responses"])
def test_every_split_never_leaks_in_any_protocol(upstream: str, caller: str) -> None:
    build = UPSTREAMS[upstream]
    for i in range(1, len(TEXT)):
        j, k = min(i, len(ARGS) - 1), min(i, len(THINK) - 1)
        _check(caller, _run(upstream, caller, build(_split(TEXT, i), _split(THINK, k), _split(ARGS, j))))


@pytest.mark.parametrize("caller", ["chat", "messages", "responses"])
@pytest.mark.parametrize("upstream", ["chat", "messages", "responses"])
def test_one_character_deltas_never_leak(upstream: str, caller: str) -> None:
    _check(caller, _run(upstream, caller, UPSTREAMS[upstream](list(TEXT), list(THINK), list(ARGS))))


@pytest.mark.parametrize("upstream", ["chat", "messages", "responses"])
def test_same_api_streams_keep_the_upstream_events(upstream: str) -> None:
    """Passed through, an event whose text is clean reaches the client byte for byte."""
    chunks = UPSTREAMS[upstream](["Hello there, nothing secret here. "], ["plain thinking "], ['{"a": 1}'])
    out = _run(upstream, upstream, chunks)
    events = _events(out)
    assert len(events) >= len([c for c in chunks if c != b"data: [DONE]\n\n"])
    if upstream == "responses":
        seqs = [e["sequence_number"] for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert b"ping" in out or upstream != "messages"


def test_responses_sequence_numbers_stay_consecutive_after_a_release() -> None:
    out = _run("responses", "responses", _responses_upstream(_split(TEXT, 40), [THINK], [ARGS]))
    seqs = [e["sequence_number"] for e in _events(out)]
    assert seqs == list(range(len(seqs)))


@pytest.mark.parametrize("screened", ["tap", "feed_chat"])
def test_chat_proxy_stream_never_leaks_reasoning_or_arguments(screened: str) -> None:
    for i in range(1, len(TEXT), 7):
        chunks = _chat_upstream(_split(TEXT, i), _split(THINK, min(i, len(THINK) - 1)), _split(ARGS, 3))
        if screened == "tap":
            tap = StreamTap(screen=AnswerScreen(default()))
            # The upstream's reads rarely match its events: cut the stream at every 97th byte as well.
            stream = b"".join(chunks)
            reads = [stream[k : k + 97] for k in range(0, len(stream), 97)]
            out = b"".join(tap.feed(c) for c in reads) + tap.finish()
        else:
            screen = AnswerScreen(default())
            out = b"".join(screen.feed_chat(c) for c in chunks)
        _check("chat", out)


# -- blocking and failing closed on streams ----------------------------------------------------------------------


class _Source:
    def __init__(self, found: list[tuple[str, str, int]]) -> None:
        self.found = found

    @property
    def has_findings(self) -> bool:
        return bool(self.found)

    def take_found(self) -> list[tuple[str, str, int]]:
        out, self.found = self.found, []
        return out


def test_a_blocked_category_in_a_stream_raises_naming_the_category() -> None:
    guard = AnswerGuard(Policy(GuardrailSettings(categories={"pci": "block"})), Metrics())
    transcoder = Transcoder("chat", "messages", "m", 1, screen=guard.screen())
    transcoder.feed(b"".join(_chat_upstream([f"pay {CARD} now"], [], ['{"a": 1}'])[:3]))
    with pytest.raises(GuardrailViolation) as caught:
        guard.check(transcoder)
    assert "pci" in caught.value.message and "4111" not in caught.value.message
    # The caller's stream ends with an error event in its own shape.
    end = json.loads(transcoder.fail("guardrail_violation", caught.value.message).split(b"data: ")[1])
    assert end == {"type": "error", "error": {"type": "invalid_request_error", "message": caught.value.message}}


def test_masked_categories_only_count() -> None:
    metrics = Metrics()
    AnswerGuard(Policy(GuardrailSettings()), metrics).check(_Source([("pii", "EMAIL", 1)]))
    assert 'router_guardrail_findings_total{action="mask",category="pii",direction="response"} 1.0' in (
        metrics.render().decode()
    )


def test_a_broken_scanner_fails_closed() -> None:
    policy = Policy(GuardrailSettings())
    policy.engine = policy._blank = object()  # type: ignore[assignment]
    guard = AnswerGuard(policy, Metrics())
    with pytest.raises(GuardrailUnavailable):
        guard.screen()
    with pytest.raises(GuardrailUnavailable):
        guard.reply({"content": [{"type": "text", "text": "hi"}]}, "messages")


# -- unary bodies --------------------------------------------------------------------------------------------------


def test_messages_body_masks_text_thinking_and_tool_input_with_one_numbering() -> None:
    reply = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
        "content": [
            {"type": "thinking", "thinking": THINK, "signature": "sig"},
            {"type": "text", "text": TEXT},
            {"type": "tool_use", "id": "toolu_1", "name": "pay", "input": json.loads(ARGS)},
        ],
    }  # fmt: skip
    assert AnswerGuard(Policy(GuardrailSettings()), Metrics()).reply(reply, "messages")
    body = json.dumps(reply)
    assert not any(v in body for v in VALUES + FRAGMENTS)
    masker = default().masker()
    assert reply["content"][0]["thinking"] == masker.mask(THINK)
    assert reply["content"][1]["text"] == masker.mask(TEXT)
    assert reply["content"][2]["input"] == {"card": "[CARD_1]", "to": "[EMAIL_1]", "note": "iban [IBAN_1]"}
    assert reply["content"][2]["id"] == "toolu_1" and reply["content"][0]["signature"] == "sig"


def test_responses_body_masks_output_items_and_output_text() -> None:
    reply = {
        "id": "resp_1", "object": "response", "status": "completed",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": THINK}]},
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": TEXT, "annotations": []}]},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "pay", "arguments": ARGS},
        ],
        "output_text": TEXT,
    }  # fmt: skip
    assert AnswerGuard(Policy(GuardrailSettings()), Metrics()).reply(reply, "responses")
    body = json.dumps(reply)
    assert not any(v in body for v in VALUES + FRAGMENTS)
    assert (
        reply["output_text"]
        == reply["output"][1]["content"][0]["text"]
        == mask(f"{THINK} {TEXT}")[len(mask(THINK)) + 1 :]
    )
    assert json.loads(reply["output"][2]["arguments"])["card"] == "[CARD_1]"


def test_clean_body_is_unchanged_and_blocked_body_raises() -> None:
    reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "all fine"}}]}
    assert not AnswerGuard(Policy(GuardrailSettings()), Metrics()).reply(reply, "chat")
    blocked = {"content": [{"type": "text", "text": f"use {CARD}"}]}
    with pytest.raises(GuardrailViolation):
        AnswerGuard(Policy(GuardrailSettings(categories={"pci": "block"})), Metrics()).reply(blocked, "messages")
