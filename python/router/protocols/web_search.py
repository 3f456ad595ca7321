"""Web search, standardised: one tool definition for every API, run by the provider's own server-side search.

A caller asks with `{"type": "web_search"}` (chat), Anthropic's `web_search_20250305` server tool (Messages) or
Responses' `web_search` / `web_search_preview` (Responses). In the chat hub it is `{"type": "web_search", ...}`
with the options every provider understands in some form, and it reaches the upstream as:

- Anthropic: `{"type": "web_search_20250305", "name": "web_search", "max_uses", "allowed_domains", ...}`
  (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool)
- OpenAI Responses: `{"type": "web_search", "filters": {"allowed_domains"}, "user_location", ...}`
  (https://platform.openai.com/docs/guides/tools-web-search)
- Gemini / Vertex: `{"google_search": {}}` (https://ai.google.dev/gemini-api/docs/google-search), translated in
  `providers.gemini_content` from the Anthropic form.
- OpenAI-compatible chat (search models such as gpt-4o-search-preview): `web_search_options`.

Citations come back in the hub as OpenAI's `message.annotations` (`url_citation` with character offsets into
`content`), and from there as Anthropic `web_search_result_location` citations or Responses annotations.
The number of searches the provider ran travels as `usage.server_tool_use.web_search_requests` (Anthropic's
name; a hub extension for chat) and is billed at the model's `per_search` price.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..errors import InvalidRequest

Json = dict[str, Any]

ANTHROPIC_TYPE = "web_search_20250305"
# Options of the hub tool, by Anthropic's names (the richest set); each upstream takes what it can express.
_OPTIONS = ("max_uses", "allowed_domains", "blocked_domains", "user_location")
# Web search requests in a tool list larger than this are refused (one is all any provider takes).
MAX_SEARCH_TOOLS = 1


def is_search_tool(tool: Any) -> bool:
    """`web_search` (chat, Responses), `web_search_preview[_…]` (Responses), `web_search_2025…` (Anthropic)."""
    if not isinstance(tool, dict):
        return False
    kind = tool.get("type")
    return isinstance(kind, str) and (kind == "web_search" or kind.startswith("web_search_"))


def requested(fields: dict[str, msgspec.Raw]) -> bool:
    """Whether the request's `tools` ask for web search (a byte search first: most requests have no tools)."""
    raw = fields.get("tools")
    if raw is None or b'"web_search' not in bytes(raw):
        return False
    try:
        tools = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return False
    return isinstance(tools, list) and any(is_search_tool(t) for t in tools)


def check_model(model_id: str, capabilities: list[str]) -> None:
    if "web_search" not in capabilities:
        raise InvalidRequest(
            f"The model '{model_id}' cannot search the web: remove the web_search tool or choose a model with "
            "the 'web_search' capability (GET /v1/models lists them).",
            param="tools",
            code="web_search_not_supported",
        )


def to_hub(tool: Json) -> Json:
    """Any caller's web search tool as the hub's."""
    hub: Json = {"type": "web_search"}
    for key in _OPTIONS:
        if tool.get(key) is not None:
            hub[key] = tool[key]
    filters = tool.get("filters") or {}
    if filters.get("allowed_domains"):
        hub["allowed_domains"] = filters["allowed_domains"]
    if tool.get("search_context_size") is not None:
        hub["search_context_size"] = tool["search_context_size"]
    return hub


def to_anthropic(tool: Json) -> Json:
    out: Json = {"type": ANTHROPIC_TYPE, "name": "web_search"}
    for key in _OPTIONS:
        if tool.get(key) is not None:
            out[key] = tool[key]
    return out


def to_responses(tool: Json) -> Json:
    out: Json = {"type": "web_search"}
    if tool.get("allowed_domains"):
        out["filters"] = {"allowed_domains": tool["allowed_domains"]}
    location = tool.get("user_location")
    if isinstance(location, dict):
        out["user_location"] = {"type": "approximate", **{k: v for k, v in location.items() if k != "type"}}
    if tool.get("search_context_size") is not None:
        out["search_context_size"] = tool["search_context_size"]
    return out


def chat_upstream(chat: Json) -> None:
    """For an OpenAI-compatible chat upstream: the hub tool becomes `web_search_options` (OpenAI's search models
    take no tool for it)."""
    tools = chat.get("tools") or []
    search = [t for t in tools if is_search_tool(t)]
    if not search:
        return
    rest = [t for t in tools if not is_search_tool(t)]
    if rest:
        chat["tools"] = rest
    else:
        chat.pop("tools", None)
        chat.pop("tool_choice", None)
    options: Json = {}
    location = search[0].get("user_location")
    if isinstance(location, dict):
        options["user_location"] = {
            "type": "approximate",
            "approximate": {k: v for k, v in location.items() if k != "type"},
        }
    if search[0].get("search_context_size") is not None:
        options["search_context_size"] = search[0]["search_context_size"]
    chat["web_search_options"] = options


def chat_upstream_fields(fields: dict[str, msgspec.Raw]) -> None:
    """`chat_upstream` on a chat request kept as raw top-level fields (the untranslated path)."""
    chat = {name: msgspec.json.decode(fields[name]) for name in ("tools", "tool_choice") if name in fields}
    chat_upstream(chat)
    for name in ("tools", "tool_choice"):
        if name in chat:
            fields[name] = msgspec.Raw(msgspec.json.encode(chat[name]))
        else:
            fields.pop(name, None)
    fields["web_search_options"] = msgspec.Raw(msgspec.json.encode(chat["web_search_options"]))


# --- citations ---


def url_citation(url: str, title: str | None, start: int, end: int) -> Json:
    return {
        "type": "url_citation",
        "url_citation": {"url": url, "title": title or "", "start_index": start, "end_index": end},
    }


def searches_of(reply: Json, api: str) -> int:
    """How many searches the provider ran for this answer (0 when it ran none or does not say)."""
    if api == "responses":
        return sum(1 for item in reply.get("output") or () if item.get("type") == "web_search_call")
    server = (reply.get("usage") or {}).get("server_tool_use") or {}
    count = server.get("web_search_requests") if isinstance(server, dict) else None
    return count if isinstance(count, int) and count > 0 else 0


def anthropic_text_blocks(text: str, annotations: list[Json]) -> list[Json]:
    """A hub message's text and `url_citation`s as Anthropic text blocks: each cited span its own block with
    `web_search_result_location` citations, as Anthropic answers."""
    spans: dict[tuple[int, int], list[Json]] = {}
    for annotation in annotations:
        cite = annotation.get("url_citation") or {}
        start, end = cite.get("start_index", 0), cite.get("end_index", 0)
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(text)):
            start, end = 0, len(text)
        spans.setdefault((start, end), []).append(
            {
                "type": "web_search_result_location",
                "url": cite.get("url", ""),
                "title": cite.get("title") or None,
                "cited_text": text[start:end],
                "encrypted_index": "",
            }
        )
    blocks: list[Json] = []
    at = 0
    for (start, end), citations in sorted(spans.items()):
        if start < at:  # overlapping spans: cite the rest of the overlap's span
            start = at
        if start > at:
            blocks.append({"type": "text", "text": text[at:start]})
        blocks.append({"type": "text", "text": text[start:end], "citations": citations})
        at = max(at, end)
    if at < len(text) or not blocks:
        blocks.append({"type": "text", "text": text[at:]})
    return blocks


def search_result_blocks(annotations: list[Json], tool_id: str) -> list[Json]:
    """`server_tool_use` + `web_search_tool_result` blocks listing the cited pages, for Messages callers of a
    provider that does not report its searches as Anthropic does."""
    seen: dict[str, Json] = {}
    for annotation in annotations:
        cite = annotation.get("url_citation") or {}
        url = cite.get("url")
        if url and url not in seen:
            seen[url] = {
                "type": "web_search_result",
                "url": url,
                "title": cite.get("title") or url,
                "encrypted_content": "",
                "page_age": None,
            }
    return [
        {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": ""}},
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": list(seen.values())},
    ]


# --- streams ---

_SERVER_BLOCKS = frozenset({"server_tool_use", "web_search_tool_result"})


class SearchStream:
    """An upstream stream that searched, on its way to a caller of another API (`router._core.Transcoder`):
    Anthropic's server-tool blocks are taken out (they are the provider's calls, not the caller's tool calls),
    and the citations are collected as `url_citation`s with offsets into the answer's text.

    `feed` returns the upstream events, re-framed one by one, each with the annotations it completed (so the
    caller-side chunk carrying them follows the text it cites and precedes the final chunk) and, when it ends
    one of the provider's searches, that search's query (Responses callers get a `web_search_call` item)."""

    __slots__ = (
        "_api", "_at", "_inputs", "_parser", "_pending", "_skipped", "_starts", "_strip", "_text", "searches",
    )  # fmt: skip

    def __init__(self, upstream_api: str, strip: bool = True) -> None:
        from .._core import SseParser  # the extension is loaded by then; keeps this module importable alone

        self._api = upstream_api
        # False when the caller speaks the upstream's API: every event goes through, searches are only counted.
        self._strip = strip
        self.searches = 0
        self._parser = SseParser()
        self._skipped: set[int] = set()
        self._inputs: dict[int, str] = {}  # server_tool_use blocks' input JSON so far, by index
        self._starts: dict[int, int] = {}
        self._pending: dict[int, list[Json]] = {}
        self._text = ""
        self._at = 0  # Responses: where the current content part starts in the answer

    def feed(self, chunk: bytes) -> list[tuple[bytes, list[Json], str | None]]:
        out: list[tuple[bytes, list[Json], str | None]] = []
        for event in self._parser.feed(chunk):
            framed = (b"event: " + event.event.encode() + b"\n" if event.event else b"") + b"data: "
            framed += event.data.encode() + b"\n\n"
            try:
                data = msgspec.json.decode(event.data)
            except msgspec.DecodeError:
                out.append((framed, [], None))  # the transcoder reports it
                continue
            if not isinstance(data, dict):
                out.append((framed, [], None))
                continue
            query = None
            if self._api == "messages":
                keep, found = self._messages(data)
                query = self._search_query(data)
            else:
                keep, found = self._responses(data)
            if keep or not self._strip:
                out.append((framed, found, query))
            elif found or query is not None:
                out.append((b"", found, query))
        return out

    def _search_query(self, data: Json) -> str | None:
        """The query of a `server_tool_use` block (a search) when the event ends it, else None."""
        kind, index = data.get("type"), data.get("index")
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "server_tool_use" and block.get("name") == "web_search":
                self._inputs[index] = ""
        elif index in self._inputs and kind == "content_block_delta":
            self._inputs[index] += (data.get("delta") or {}).get("partial_json") or ""
        elif index in self._inputs and kind == "content_block_stop":
            try:
                arguments = msgspec.json.decode(self._inputs.pop(index) or "{}")
            except msgspec.DecodeError:
                arguments = {}
            query = arguments.get("query") if isinstance(arguments, dict) else None
            return query if isinstance(query, str) else ""
        return None

    def _messages(self, data: Json) -> tuple[bool, list[Json]]:
        kind, index = data.get("type"), data.get("index")
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") in _SERVER_BLOCKS:
                self._skipped.add(index)
                return False, []
            self._starts[index] = len(self._text)
        elif index in self._skipped and kind in ("content_block_delta", "content_block_stop"):
            return False, []
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                self._text += delta.get("text") or ""
            elif delta.get("type") == "citations_delta":
                self._pending.setdefault(index, []).append(delta.get("citation") or {})
                return False, []
        elif kind == "message_delta":
            server = (data.get("usage") or {}).get("server_tool_use") or {}
            count = server.get("web_search_requests") if isinstance(server, dict) else None
            self.searches = count if isinstance(count, int) and count > 0 else self.searches
        elif kind == "content_block_stop":
            start = self._starts.pop(index, len(self._text))
            found = []
            for cite in self._pending.pop(index, ()):
                if not cite.get("url"):
                    continue
                begin, end = start, len(self._text)
                if begin == end:  # an empty block quoting the text it supports (Gemini grounding)
                    quoted = cite.get("cited_text") or ""
                    begin = self._text.find(quoted) if quoted else -1
                    begin, end = (begin, begin + len(quoted)) if begin >= 0 else (0, len(self._text))
                found.append(url_citation(cite["url"], cite.get("title"), begin, end))
            return True, found
        return True, []

    def _responses(self, data: Json) -> tuple[bool, list[Json]]:
        kind = data.get("type")
        if kind == "response.content_part.added":
            self._at = len(self._text)
        elif kind == "response.output_item.added" and (data.get("item") or {}).get("type") == "web_search_call":
            self.searches += 1
        elif kind == "response.output_text.delta":
            self._text += data.get("delta") or ""
        elif kind == "response.output_text.annotation.added":
            note = data.get("annotation") or {}
            if note.get("type") == "url_citation" and note.get("url"):
                start, end = self._at + (note.get("start_index") or 0), self._at + (note.get("end_index") or 0)
                return False, [url_citation(note["url"], note.get("title"), start, end)]
            return False, []
        return True, []


def citation_tuples(annotations: list[Json]) -> list[tuple[str, str, int, int]]:
    """Hub `url_citation`s as `Transcoder.annotate` takes them."""
    out = []
    for annotation in annotations:
        cite = annotation.get("url_citation") or {}
        out.append((cite.get("url", ""), cite.get("title") or "", cite.get("start_index", 0), cite.get("end_index", 0)))
    return out


def annotations_chunk(first_chunk: bytes, annotations: list[Json]) -> bytes:
    """A chat stream chunk with `delta.annotations`, with the id, created and model of the stream's first chunk."""
    head: Json = {}
    if first_chunk.startswith(b"data: "):
        try:
            head = msgspec.json.decode(first_chunk[6:].split(b"\n", 1)[0])
        except msgspec.DecodeError:
            head = {}
    chunk = {
        "id": head.get("id", ""),
        "object": "chat.completion.chunk",
        "created": head.get("created", 0),
        "model": head.get("model", ""),
        "choices": [{"index": 0, "delta": {"annotations": annotations}, "logprobs": None, "finish_reason": None}],
    }
    return b"data: " + msgspec.json.encode(chunk) + b"\n\n"
