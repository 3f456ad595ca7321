"""A straightforward pure-Python stream transcoder: the reference for tests and benchmarks of
`router._core.Transcoder`.

Same contract and byte-identical output (dicts built in the Rust writer's key order, `json.dumps` compact),
written the obvious way: parse each event with `json.loads`, build the caller's events as dicts, `json.dumps`
them. The only copy in the repository.
"""

from __future__ import annotations

import json

from sse_reference import RefSseParser

END_TURN, STOP_SEQUENCE, PAUSE_TURN, MAX_TOKENS, TOOL_USE, CONTENT_FILTER = range(6)
_CHAT_STOP = {"length": MAX_TOKENS, "tool_calls": TOOL_USE, "function_call": TOOL_USE, "content_filter": CONTENT_FILTER}
_ANTHROPIC_STOP = {
    "max_tokens": MAX_TOKENS,
    "model_context_window_exceeded": MAX_TOKENS,
    "tool_use": TOOL_USE,
    "stop_sequence": STOP_SEQUENCE,
    "pause_turn": PAUSE_TURN,
    "refusal": CONTENT_FILTER,
}
_ANTHROPIC_ERRORS = {
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error", "request_too_large",
    "rate_limit_error", "api_error", "overloaded_error",
}  # fmt: skip


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Usage:
    def __init__(self) -> None:
        self.input = self.output = self.cache_read = self.cache_write = self.reasoning = None

    def merge(self, **values: int | None) -> None:
        for key, value in values.items():
            if value is not None:
                setattr(self, key, value)

    def prompt_total(self) -> int | None:
        if self.input is None:
            return None
        return self.input + (self.cache_read or 0) + (self.cache_write or 0)


class ChatOut:
    def __init__(self, model: str, created: int, include_usage: bool) -> None:
        self.model, self.created, self.include_usage = model, created, include_usage
        self.id = ""
        self.started = self.stopped = self.ended = False
        self.tool: int | None = None

    def _chunk(self, choices: list, usage: dict | None = None) -> str:
        chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}
        chunk["choices"] = choices
        if usage is not None:
            chunk["usage"] = usage
        return "data: " + _dumps(chunk) + "\n\n"

    def _choice(self, delta: dict) -> str:
        return self._chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}])

    def start(self, id: str, usage: Usage) -> str:
        if self.started:
            return ""
        self.started = True
        self.id = "chatcmpl-router" if not id else id if id.startswith("chatcmpl") else f"chatcmpl-{id}"
        return self._choice({"role": "assistant", "content": ""})

    def text(self, t: str) -> str:
        return self.start("", None) + self._choice({"content": t})

    def thinking(self, t: str) -> str:
        return self.start("", None) + self._choice({"reasoning_content": t})

    def signature(self, s: str) -> str:
        return ""

    def redacted(self, d: str) -> str:
        return ""

    def tool_start(self, id: str, name: str) -> str:
        out = self.start("", None)
        self.tool = 0 if self.tool is None else self.tool + 1
        call = {"index": self.tool, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}
        return out + self._choice({"tool_calls": [call]})

    def tool_args(self, a: str) -> str:
        out = self.start("", None)
        return out + self._choice({"tool_calls": [{"index": self.tool or 0, "function": {"arguments": a}}]})

    def block_end(self) -> str:
        return ""

    def _finish(self, reason: int) -> str:
        if self.stopped:
            return ""
        self.stopped = True
        out = self.start("", None)
        name = {MAX_TOKENS: "length", TOOL_USE: "tool_calls", CONTENT_FILTER: "content_filter"}.get(reason, "stop")
        return out + self._chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": name}])

    def stop(self, reason: int) -> str:
        return self._finish(reason)

    def end(self, usage: Usage) -> str:
        if self.ended:
            return ""
        self.ended = True
        out = self._finish(TOOL_USE if self.tool is not None else END_TURN)
        if self.include_usage:
            prompt = usage.prompt_total()
            total = prompt + usage.output if prompt is not None and usage.output is not None else None
            out += self._chunk(
                [],
                {
                    "prompt_tokens": prompt,
                    "completion_tokens": usage.output,
                    "total_tokens": total,
                    "prompt_tokens_details": {"cached_tokens": usage.cache_read or 0},
                    "completion_tokens_details": {"reasoning_tokens": usage.reasoning or 0},
                },
            )
        return out + "data: [DONE]\n\n"

    def error(self, kind: str, message: str) -> str:
        return "data: " + _dumps({"error": {"message": message, "type": kind, "param": None, "code": kind}}) + "\n\n"


def _event(name: str, data: dict) -> str:
    return f"event: {name}\ndata: " + _dumps({"type": name, **data}) + "\n\n"


class MessagesOut:
    def __init__(self, model: str, estimate: int) -> None:
        self.model, self.estimate = model, estimate
        self.started = self.ended = False
        self.open: str | None = None
        self.index = 0
        self.stop_reason = None

    def _usage(self, usage: Usage, input: int, output: int) -> dict:
        return {
            "input_tokens": input,
            "cache_creation_input_tokens": usage.cache_write or 0,
            "cache_read_input_tokens": usage.cache_read or 0,
            "output_tokens": output,
        }

    def start(self, id: str, usage: Usage | None) -> str:
        if self.started:
            return ""
        self.started = True
        usage = usage or Usage()
        message = {
            "id": id if id.startswith("msg_") else f"msg_{id}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(usage, usage.input if usage.input is not None else self.estimate, usage.output or 1),
        }
        return _event("message_start", {"message": message})

    def _close(self) -> str:
        if self.open is None:
            return ""
        self.open = None
        out = _event("content_block_stop", {"index": self.index})
        self.index += 1
        return out

    def _open(self, kind: str, block: dict, force: bool = False) -> str:
        out = self.start("", None)
        if self.open == kind and not force:
            return out
        out += self._close()
        out += _event("content_block_start", {"index": self.index, "content_block": block})
        self.open = kind
        return out

    def _delta(self, kind: str, key: str, value: str) -> str:
        return _event("content_block_delta", {"index": self.index, "delta": {"type": kind, key: value}})

    def text(self, t: str) -> str:
        return self._open("text", {"type": "text", "text": ""}) + self._delta("text_delta", "text", t)

    def thinking(self, t: str) -> str:
        out = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        return out + self._delta("thinking_delta", "thinking", t)

    def signature(self, s: str) -> str:
        out = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        return out + self._delta("signature_delta", "signature", s)

    def redacted(self, d: str) -> str:
        return self._open("thinking", {"type": "redacted_thinking", "data": d}, True) + self._close()

    def tool_start(self, id: str, name: str) -> str:
        return self._open("tool", {"type": "tool_use", "id": id, "name": name, "input": {}}, True)

    def tool_args(self, a: str) -> str:
        return self._delta("input_json_delta", "partial_json", a) if self.open == "tool" else ""

    def block_end(self) -> str:
        return self._close()

    def stop(self, reason: int) -> str:
        self.stop_reason = reason
        return ""

    def end(self, usage: Usage) -> str:
        if self.ended:
            return ""
        self.ended = True
        out = self.start("", usage) + self._close()
        reason = ["end_turn", "stop_sequence", "pause_turn", "max_tokens", "tool_use", "refusal"][
            END_TURN if self.stop_reason is None else self.stop_reason
        ]
        input = usage.input if usage.input is not None else self.estimate
        out += _event(
            "message_delta",
            {
                "delta": {"stop_reason": reason, "stop_sequence": None},
                "usage": self._usage(usage, input, usage.output or 0),
            },
        )
        return out + _event("message_stop", {})

    def error(self, kind: str, message: str) -> str:
        if kind not in _ANTHROPIC_ERRORS:
            kind = {
                "rate_limit_exceeded": "rate_limit_error",
                "upstream_rate_limited": "rate_limit_error",
                "server_is_overloaded": "overloaded_error",
                "service_unavailable": "overloaded_error",
                "overloaded": "overloaded_error",
            }.get(kind, "api_error")
        return _event("error", {"error": {"type": kind, "message": message}})


class ResponsesOut:
    def __init__(self, model: str, created: int) -> None:
        self.model, self.created = model, created
        self.id = ""
        self.seq = 0
        self.started = self.ended = False
        self.open: dict | None = None
        self.items: list[dict] = []
        self.stop_reason = None

    def _event(self, name: str, data: dict) -> str:
        out = f"event: {name}\ndata: " + _dumps({"type": name, "sequence_number": self.seq, **data}) + "\n\n"
        self.seq += 1
        return out

    def _response(self, status: str, usage: Usage | None) -> dict:
        incomplete = None
        if status == "incomplete":
            reason = "content_filter" if self.stop_reason == CONTENT_FILTER else "max_output_tokens"
            incomplete = {"reason": reason}
        body = {
            "id": self.id, "object": "response", "created_at": self.created, "status": status, "error": None,
            "incomplete_details": incomplete, "instructions": None, "model": self.model, "output": self.items,
            "parallel_tool_calls": True, "temperature": None, "tool_choice": "auto", "tools": [], "top_p": None,
            "metadata": {}, "usage": None,
        }  # fmt: skip
        if usage is not None:
            input, output = usage.prompt_total() or 0, usage.output or 0
            body["usage"] = {
                "input_tokens": input,
                "input_tokens_details": {"cached_tokens": usage.cache_read or 0},
                "output_tokens": output,
                "output_tokens_details": {"reasoning_tokens": usage.reasoning or 0},
                "total_tokens": input + output,
            }
        return body

    def start(self, id: str, usage: Usage | None) -> str:
        if self.started:
            return ""
        self.started = True
        self.id = id if id.startswith("resp_") else f"resp_{id}"
        return "".join(
            self._event(name, {"response": self._response("in_progress", None)})
            for name in ("response.created", "response.in_progress")
        )

    @staticmethod
    def _item(item: dict, done: bool) -> dict:
        status = "completed" if done else "in_progress"
        if item["kind"] == "message":
            content = [{"type": "output_text", "text": item["text"], "annotations": [], "logprobs": []}] if done else []
            return {"type": "message", "id": item["id"], "status": status, "role": "assistant", "content": content}
        if item["kind"] == "reasoning":
            summary = [{"type": "summary_text", "text": item["text"]}] if done and item["text"] else []
            out = {"type": "reasoning", "id": item["id"], "summary": summary}
            if done and item["encrypted"] is not None:
                out["encrypted_content"] = item["encrypted"]
            return out
        return {
            "type": "function_call", "id": item["id"], "call_id": item["call_id"], "name": item["name"],
            "arguments": item["text"] if done else "", "status": status,
        }  # fmt: skip

    def _head(self, item: dict) -> dict:
        return {"item_id": item["id"], "output_index": len(self.items)}

    def _open(self, kind: str, call: tuple[str, str] | None = None) -> str:
        out = self.start("", None)
        if call is None and self.open is not None and self.open["kind"] == kind:
            return out
        out += self._close()
        prefix = {"message": "msg", "reasoning": "rs", "call": "fc"}[kind]
        item = {
            "kind": kind, "id": f"{prefix}_{self.id.removeprefix('resp_')}_{len(self.items)}", "text": "",
            "call_id": call[0] if call else "", "name": call[1] if call else "", "encrypted": None,
        }  # fmt: skip
        out += self._event(
            "response.output_item.added", {"output_index": len(self.items), "item": self._item(item, False)}
        )
        if kind == "message":
            part = {"type": "output_text", "text": "", "annotations": []}
            out += self._event("response.content_part.added", {**self._head(item), "content_index": 0, "part": part})
        elif kind == "reasoning":
            part = {"type": "summary_text", "text": ""}
            out += self._event(
                "response.reasoning_summary_part.added", {**self._head(item), "summary_index": 0, "part": part}
            )
        self.open = item
        return out

    def _close(self) -> str:
        item, self.open = self.open, None
        if item is None:
            return ""
        head, text, out = self._head(item), item["text"], ""
        if item["kind"] == "message":
            out += self._event("response.output_text.done", {**head, "content_index": 0, "text": text, "logprobs": []})
            part = {"type": "output_text", "text": text, "annotations": []}
            out += self._event("response.content_part.done", {**head, "content_index": 0, "part": part})
        elif item["kind"] == "reasoning":
            out += self._event("response.reasoning_summary_text.done", {**head, "summary_index": 0, "text": text})
            part = {"type": "summary_text", "text": text}
            out += self._event("response.reasoning_summary_part.done", {**head, "summary_index": 0, "part": part})
        else:
            out += self._event("response.function_call_arguments.done", {**head, "arguments": text})
        done = self._item(item, True)
        out += self._event("response.output_item.done", {"output_index": len(self.items), "item": done})
        self.items.append(done)
        return out

    def _delta(self, name: str, index: dict, text: str) -> str:
        if self.open is None:
            return ""
        self.open["text"] += text
        extra = {"logprobs": []} if name == "response.output_text.delta" else {}
        return self._event(name, {**self._head(self.open), **index, "delta": text, **extra})

    def text(self, t: str) -> str:
        return self._open("message") + self._delta("response.output_text.delta", {"content_index": 0}, t)

    def thinking(self, t: str) -> str:
        return self._open("reasoning") + self._delta("response.reasoning_summary_text.delta", {"summary_index": 0}, t)

    def signature(self, s: str) -> str:
        out = self._open("reasoning")
        self.open["encrypted"] = s  # type: ignore[index]
        return out

    def redacted(self, d: str) -> str:
        return self._close() + self.signature(d) + self._close()

    def tool_start(self, id: str, name: str) -> str:
        return self._open("call", (id, name))

    def tool_args(self, a: str) -> str:
        if self.open is not None and self.open["kind"] == "call":
            return self._delta("response.function_call_arguments.delta", {}, a)
        return ""

    def block_end(self) -> str:
        # The next text block continues the message: another kind of item, or the end, closes it.
        if self.open is not None and self.open["kind"] != "message":
            return self._close()
        return ""

    def stop(self, reason: int) -> str:
        self.stop_reason = reason
        return ""

    def end(self, usage: Usage) -> str:
        if self.ended:
            return ""
        self.ended = True
        out = self.start("", None) + self._close()
        incomplete = self.stop_reason in (MAX_TOKENS, CONTENT_FILTER)
        name = "response.incomplete" if incomplete else "response.completed"
        return out + self._event(name, {"response": self._response("incomplete" if incomplete else "completed", usage)})

    def error(self, kind: str, message: str) -> str:
        return self._event("error", {"code": kind, "message": message, "param": None})


class RefTranscoder:
    """Same contract as `router._core.Transcoder` (without `fail`/`json_tool`)."""

    def __init__(
        self, upstream: str, caller: str, model: str, created: int, input_tokens: int = 0, include_usage: bool = True
    ) -> None:
        self.upstream = upstream
        self.passthrough = upstream == caller
        self.parser = RefSseParser()
        self.out = (
            ChatOut(model, created, include_usage)
            if caller == "chat"
            else MessagesOut(model, input_tokens)
            if caller == "messages"
            else ResponsesOut(model, created)
        )
        self.usage = Usage()
        self.done = self.malformed = False
        self.error: tuple[str, str] | None = None
        self.started = False
        self.tool: int | None = None
        self.tool_id = ""
        self.saw_tool = False
        self.deltas = 0

    def feed(self, chunk: bytes) -> bytes:
        parts: list[str] = []
        if self.done or self.malformed or self.error:
            return b""
        for event in self.parser.feed(chunk):
            if self.done or self.malformed or self.error:
                break
            translated: list[str] = []
            if self.upstream == "chat" and event.data == "[DONE]":
                self._finish(translated)
            else:
                try:
                    data = json.loads(event.data)
                except ValueError:
                    self.malformed = True
                    break
                getattr(self, "_" + self.upstream)(data, translated)
            if self.passthrough:
                # Same API: the event goes on as it came, only re-framed.
                name = f"event: {event.event}\n" if event.event else ""
                parts.append(name + "".join(f"data: {line}\n" for line in event.data.split("\n")) + "\n")
            else:
                parts.extend(translated)
        return "".join(parts).encode()

    def _start(self, id: str, parts: list[str]) -> None:
        if not self.started:
            self.started = True
            parts.append(self.out.start(id, self.usage))

    def _finish(self, parts: list[str]) -> None:
        self.done = True
        parts.append(self.out.end(self.usage))

    def _fail(self, kind: str, message: str, parts: list[str]) -> None:
        self.error = (kind, message)
        parts.append(self.out.error(kind, message))

    def _chat(self, chunk: dict, parts: list[str]) -> None:
        out = self.out
        error = chunk.get("error")
        if error is not None:
            if isinstance(error, str):
                return self._fail("api_error", error, parts)
            kind = error.get("type") or (str(error["code"]) if error.get("code") is not None else "api_error")
            return self._fail(kind, error.get("message") or "upstream error", parts)
        usage = chunk.get("usage")
        if usage:
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
            prompt = usage.get("prompt_tokens")
            self.usage.merge(
                input=None if prompt is None else max(prompt - (cached or 0), 0),
                output=usage.get("completion_tokens"),
                cache_read=cached,
                reasoning=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
            )
        self._start(chunk.get("id") or "", parts)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("reasoning_content"):
                self.deltas += 1
                parts.append(out.thinking(delta["reasoning_content"]))
            if delta.get("content"):
                self.deltas += 1
                parts.append(out.text(delta["content"]))
            for call in delta.get("tool_calls") or ():
                index = call.get("index") or 0
                function = call.get("function") or {}
                call_id = call.get("id") or ""
                if self.tool != index or (call_id and call_id != self.tool_id):
                    self.tool, self.tool_id = index, call_id
                    parts.append(out.tool_start(call.get("id") or "", function.get("name") or ""))
                if function.get("arguments"):
                    self.deltas += 1
                    parts.append(out.tool_args(function["arguments"]))
            if choice.get("finish_reason"):
                parts.append(out.stop(_CHAT_STOP.get(choice["finish_reason"], END_TURN)))

    def _messages(self, event: dict, parts: list[str]) -> None:
        out, kind = self.out, event["type"]
        if kind == "message_start":
            usage = event["message"].get("usage")
            if usage:
                self._anthropic_usage(usage)
            self._start(event["message"].get("id") or "", parts)
        elif kind == "content_block_start":
            block = event["content_block"]
            self._start("", parts)
            if block["type"] == "text" and block.get("text"):
                self.deltas += 1
                parts.append(out.text(block["text"]))
            elif block["type"] == "thinking":
                if block.get("thinking"):
                    self.deltas += 1
                    parts.append(out.thinking(block["thinking"]))
                if block.get("signature"):
                    parts.append(out.signature(block["signature"]))
            elif block["type"] == "redacted_thinking":
                parts.append(out.redacted(block.get("data") or ""))
            elif block["type"] in ("tool_use", "server_tool_use"):
                parts.append(out.tool_start(block.get("id") or "", block.get("name") or ""))
                if block.get("input"):
                    self.deltas += 1
                    parts.append(out.tool_args(_dumps(block["input"])))
        elif kind == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                self.deltas += 1
                parts.append(out.text(delta.get("text") or ""))
            elif delta["type"] == "input_json_delta" and delta.get("partial_json"):
                self.deltas += 1
                parts.append(out.tool_args(delta["partial_json"]))
            elif delta["type"] == "thinking_delta":
                self.deltas += 1
                parts.append(out.thinking(delta.get("thinking") or ""))
            elif delta["type"] == "signature_delta":
                parts.append(out.signature(delta.get("signature") or ""))
        elif kind == "content_block_stop":
            parts.append(out.block_end())
        elif kind == "message_delta":
            if event.get("usage"):
                self._anthropic_usage(event["usage"])
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason:
                parts.append(out.stop(_ANTHROPIC_STOP.get(reason, END_TURN)))
        elif kind == "message_stop":
            self._finish(parts)
        elif kind == "error":
            error = event["error"]
            self._fail(error.get("type") or "api_error", error.get("message") or "upstream error", parts)

    def _anthropic_usage(self, usage: dict) -> None:
        self.usage.merge(
            input=usage.get("input_tokens"),
            output=usage.get("output_tokens"),
            cache_read=usage.get("cache_read_input_tokens"),
            cache_write=usage.get("cache_creation_input_tokens"),
        )

    def _responses(self, event: dict, parts: list[str]) -> None:
        out, kind = self.out, event["type"]
        if kind in ("response.created", "response.in_progress"):
            self._start((event.get("response") or {}).get("id") or "", parts)
        elif kind == "response.output_item.added":
            item = event["item"]
            self._start("", parts)
            if item["type"] == "function_call":
                self.saw_tool = True
                parts.append(out.tool_start(item.get("call_id") or "", item.get("name") or ""))
                if item.get("arguments"):
                    self.deltas += 1
                    parts.append(out.tool_args(item["arguments"]))
        elif kind in ("response.output_text.delta", "response.refusal.delta"):
            self.deltas += 1
            parts.append(out.text(event.get("delta") or ""))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            self.deltas += 1
            parts.append(out.thinking(event.get("delta") or ""))
        elif kind == "response.function_call_arguments.delta":
            if event.get("delta"):
                self.deltas += 1
                parts.append(out.tool_args(event["delta"]))
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "reasoning" and item.get("encrypted_content"):
                parts.append(out.signature(item["encrypted_content"]))
            parts.append(out.block_end())
        elif kind in ("response.completed", "response.incomplete"):
            response = event["response"]
            usage = response.get("usage")
            if usage:
                cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
                input = usage.get("input_tokens")
                self.usage.merge(
                    input=None if input is None else max(input - (cached or 0), 0),
                    output=usage.get("output_tokens"),
                    cache_read=cached,
                    reasoning=(usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
                )
            reason = (response.get("incomplete_details") or {}).get("reason")
            if reason == "content_filter":
                stop = CONTENT_FILTER
            elif reason:
                stop = MAX_TOKENS
            else:
                stop = TOOL_USE if self.saw_tool else END_TURN
            parts.append(out.stop(stop))
            self._finish(parts)
        elif kind == "response.failed":
            error = (event.get("response") or {}).get("error") or {}
            self._fail(error.get("type") or error.get("code") or "api_error", error.get("message") or "", parts)
        elif kind == "error":
            self._fail(event.get("code") or "api_error", event.get("message") or "upstream error", parts)


def long_stream(upstream: str, n_events: int = 1000) -> bytes:
    """An upstream stream of about ``n_events`` events: a long text answer, then two tool calls, then usage."""
    words = [f" word{i} é" for i in range(n_events - 20)]
    if upstream == "chat":
        base = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":['
        lines = [base + '{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}']
        lines += [base + '{"index":0,"delta":{"content":' + _dumps(w) + '},"finish_reason":null}]}' for w in words]
        for i in range(2):
            call = f'{{"index":{i},"id":"call_{i}","type":"function","function":{{"name":"f{i}","arguments":""}}}}'
            lines.append(base + '{"index":0,"delta":{"tool_calls":[' + call + "]}}]}")
            for frag in ('{"a":', '"x"}'):
                call = f'{{"index":{i},"function":{{"arguments":{_dumps(frag)}}}}}'
                lines.append(base + '{"index":0,"delta":{"tool_calls":[' + call + "]}}]}")
        lines.append(base + '{"index":0,"delta":{},"finish_reason":"tool_calls"}]}')
        lines.append(
            base.replace('"choices":[', '"choices":[],')
            + '"usage":{"prompt_tokens":50,"completion_tokens":990,"prompt_tokens_details":{"cached_tokens":10}}}'
        )
        return "".join(f"data: {line}\n\n" for line in lines).encode() + b"data: [DONE]\n\n"
    if upstream == "messages":
        out = _event(
            "message_start",
            {"message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
                         "usage": {"input_tokens": 40, "cache_read_input_tokens": 10, "output_tokens": 1}}},
        )  # fmt: skip
        out += _event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        out += "".join(
            _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}}) for w in words
        )
        out += _event("content_block_stop", {"index": 0})
        for i in range(2):
            block = {"type": "tool_use", "id": f"toolu_{i}", "name": f"f{i}", "input": {}}
            out += _event("content_block_start", {"index": i + 1, "content_block": block})
            for frag in ('{"a":', '"x"}'):
                delta = {"type": "input_json_delta", "partial_json": frag}
                out += _event("content_block_delta", {"index": i + 1, "delta": delta})
            out += _event("content_block_stop", {"index": i + 1})
        out += _event("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 990}})
        return (out + _event("message_stop", {})).encode()
    seq = iter(range(10**6))

    def ev(name: str, data: dict) -> str:
        return f"event: {name}\ndata: " + _dumps({"type": name, **data, "sequence_number": next(seq)}) + "\n\n"

    response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    out = ev("response.created", {"response": response}) + ev("response.in_progress", {"response": response})
    out += ev("response.output_item.added", {"output_index": 0, "item": {"type": "message", "id": "m0", "content": []}})
    out += "".join(
        ev("response.output_text.delta", {"item_id": "m0", "output_index": 0, "content_index": 0, "delta": w})
        for w in words
    )
    out += ev("response.output_item.done", {"output_index": 0, "item": {"type": "message", "id": "m0"}})
    for i in range(2):
        item = {"type": "function_call", "id": f"fc{i}", "call_id": f"call_{i}", "name": f"f{i}", "arguments": ""}
        out += ev("response.output_item.added", {"output_index": i + 1, "item": item})
        for frag in ('{"a":', '"x"}'):
            out += ev(
                "response.function_call_arguments.delta", {"item_id": f"fc{i}", "output_index": i + 1, "delta": frag}
            )
        out += ev("response.output_item.done", {"output_index": i + 1, "item": item})
    usage = {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 10}, "output_tokens": 990}
    out += ev("response.completed", {"response": {**response, "status": "completed", "usage": usage}})
    return out.encode()
