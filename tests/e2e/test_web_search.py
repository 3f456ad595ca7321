"""Web search, standardised: `{"type": "web_search"}` (and Anthropic's / Responses' own tool types) on chat,
Messages and Responses, run by Anthropic's web search tool, OpenAI Responses' web search and Gemini's Google Search
grounding on the mock; citations asserted on what the official SDKs parse; search fees in the usage row."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from router.mock import gemini as mock_gemini
from router.mock import web_search as canned

from servers import MockControl, Server, create_key, gateway_env, start_gateway, usage_rows

CONFIG = f"""
providers:
  anthropic: {{kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}}
  openai-responses: {{kind: openai-responses, base_url: env:ROUTER_MOCK_URL, api_key: k}}
  google:
    kind: gemini
    base_url: env:TEST_GEMINI_URL
    api_key: {mock_gemini.API_KEY}
  mock: {{base_url: env:ROUTER_MOCK_URL, api_key: k}}
models:
  - {{id: anthropic/claude-sonnet-4-5, capabilities: [streaming, tools, web_search]}}
  - {{id: openai-responses/gpt-4.1, capabilities: [streaming, tools, web_search]}}
  - {{id: google/gemini-2.5-pro, capabilities: [streaming, tools, web_search]}}
  - {{id: mock/gpt-4o-mini, capabilities: [streaming, tools]}}
"""
CLAUDE, RESPONSES, GEMINI = "anthropic/claude-sonnet-4-5", "openai-responses/gpt-4.1", "google/gemini-2.5-pro"
SEARCH_PRICE = {CLAUDE: 0.01, RESPONSES: 0.025, GEMINI: 0.035}
URLS = {url for url, _ in canned.RESULTS}
QUESTION = [{"role": "user", "content": "What are the news in London today?"}]


@pytest.fixture(scope="module")
def gw(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("websearch")
    (root / "config.yaml").write_text(CONFIG)
    env = gateway_env(root / "router.db", mock_server.base, root / "config.yaml")
    env["TEST_GEMINI_URL"] = f"{mock_server.base}/v1beta"
    server = start_gateway(env)
    server.key = create_key(server.env, "search")["key"]  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture
def oai(gw: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gw.base}/v1", api_key=gw.key, max_retries=0, timeout=20) as client:  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def claude(gw: Server) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gw.base, api_key=gw.key, max_retries=0, timeout=20) as client:  # type: ignore[attr-defined]
        yield client


def _cost(gw: Server, request_id: str) -> float:
    rows = usage_rows(gw, f"request_id = '{request_id}'")
    assert rows and rows[0]["status"] == 200
    return rows[0]["cost"]


def _upstream_tools(mock: MockControl) -> list:
    return mock.requests()[-1]["body"]["tools"]


@pytest.mark.parametrize("model", [CLAUDE, RESPONSES, GEMINI])
def test_chat_annotations_from_every_provider(gw: Server, oai: openai.OpenAI, mock: MockControl, model: str) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=model,
        messages=QUESTION,
        tools=[{"type": "web_search"}],  # type: ignore[list-item]
    )
    reply = raw.parse()
    message = reply.choices[0].message
    assert message.content is not None and canned.CITED in message.content
    annotations = message.annotations or []
    assert {a.url_citation.url for a in annotations} == URLS
    for a in annotations:
        assert a.type == "url_citation"
        assert message.content[a.url_citation.start_index : a.url_citation.end_index] == canned.CITED
    tools = _upstream_tools(mock)
    expected = {
        CLAUDE: [{"type": "web_search_20250305", "name": "web_search"}],
        RESPONSES: [{"type": "web_search"}],
        GEMINI: [{"google_search": {}}],
    }[model]
    assert tools == expected
    rows_cost = _cost(gw, raw.headers["x-request-id"])
    usage = reply.usage
    assert usage is not None
    # One search, billed at the model's per-search price on top of the tokens.
    assert rows_cost >= SEARCH_PRICE[model]
    assert rows_cost < SEARCH_PRICE[model] + 0.01


@pytest.mark.parametrize("model", [CLAUDE, GEMINI, RESPONSES])
def test_messages_citations(claude: anthropic.Anthropic, mock: MockControl, model: str) -> None:
    reply = claude.messages.create(
        model=model,
        max_tokens=200,
        messages=QUESTION,  # type: ignore[arg-type]
        tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
    )
    kinds = [b.type for b in reply.content]
    assert "web_search_tool_result" in kinds and "server_tool_use" in kinds
    results = next(b for b in reply.content if b.type == "web_search_tool_result")
    assert {r.url for r in results.content} == URLS  # type: ignore[union-attr]
    cited = [b for b in reply.content if b.type == "text" and b.citations]
    assert cited and cited[0].text == canned.CITED
    assert {c.url for c in cited[0].citations or ()} == URLS  # type: ignore[union-attr]
    assert "".join(b.text for b in reply.content if b.type == "text") == canned.ANSWER
    assert reply.usage.server_tool_use is not None and reply.usage.server_tool_use.web_search_requests == 1
    if model == CLAUDE:
        assert _upstream_tools(mock) == [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]


@pytest.mark.parametrize("model", [RESPONSES, CLAUDE, GEMINI])
@pytest.mark.parametrize("tool", ["web_search", "web_search_preview"])
def test_responses_annotations(oai: openai.OpenAI, mock: MockControl, model: str, tool: str) -> None:
    response = oai.responses.create(model=model, input="What are the news in London today?", tools=[{"type": tool}])  # type: ignore[list-item]
    assert any(item.type == "web_search_call" for item in response.output)
    message = next(item for item in response.output if item.type == "message")
    text = message.content[0]
    assert text.type == "output_text" and canned.CITED in text.text
    assert {a.url for a in text.annotations} == URLS  # type: ignore[union-attr]
    for a in text.annotations:
        assert text.text[a.start_index : a.end_index] == canned.CITED  # type: ignore[union-attr]
    if model == CLAUDE:
        assert _upstream_tools(mock) == [{"type": "web_search_20250305", "name": "web_search"}]


def test_a_model_that_cannot_search_is_refused(gw: Server, oai: openai.OpenAI, mock: MockControl) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model="mock/gpt-4o-mini", messages=QUESTION, tools=[{"type": "web_search"}])  # type: ignore[list-item]
    assert "mock/gpt-4o-mini" in refused.value.message and refused.value.code == "web_search_not_supported"
    headers = {"authorization": f"Bearer {gw.key}", "anthropic-version": "2023-06-01"}  # type: ignore[attr-defined]
    body = {
        "model": "mock/gpt-4o-mini",
        "max_tokens": 10,
        "messages": QUESTION,
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    r = httpx.post(f"{gw.base}/v1/messages", json=body, headers=headers)
    assert r.status_code == 400 and "mock/gpt-4o-mini" in r.json()["error"]["message"]
    assert mock.count() == 0


def test_search_options_reach_anthropic(oai: openai.OpenAI, mock: MockControl) -> None:
    tool = {"type": "web_search", "max_uses": 2, "allowed_domains": ["example.org"]}
    oai.chat.completions.create(model=CLAUDE, messages=QUESTION, tools=[tool])  # type: ignore[list-item]
    assert _upstream_tools(mock) == [
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2, "allowed_domains": ["example.org"]}
    ]


@pytest.mark.parametrize("model", [CLAUDE, RESPONSES, GEMINI])
def test_chat_stream_annotations_and_no_bogus_tool_calls(gw: Server, oai: openai.OpenAI, model: str) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=model,
        messages=QUESTION,
        tools=[{"type": "web_search"}],
        stream=True,  # type: ignore[list-item]
    )
    text, annotations, calls = "", [], []
    for chunk in raw.parse():
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        text += delta.content or ""
        calls += delta.tool_calls or []
        annotations += (delta.model_extra or {}).get("annotations") or []
    # The provider's own search is not a tool call the caller must run.
    assert calls == []
    assert text == canned.ANSWER
    assert {a["url_citation"]["url"] for a in annotations} == URLS
    for a in annotations:
        cite = a["url_citation"]
        assert a["type"] == "url_citation" and text[cite["start_index"] : cite["end_index"]] == canned.CITED
    assert _cost(gw, raw.headers["x-request-id"]) >= SEARCH_PRICE[model]


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_messages_stream_citations(gw: Server, claude: anthropic.Anthropic, model: str) -> None:
    with claude.messages.stream(
        model=model,
        max_tokens=200,
        messages=QUESTION,  # type: ignore[arg-type]
        tools=[{"type": "web_search_20250305", "name": "web_search"}],
    ) as stream:
        message = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]
    kinds = [b.type for b in message.content]
    assert "server_tool_use" in kinds and "web_search_tool_result" in kinds
    urls = {c.url for b in message.content if b.type == "text" for c in b.citations or ()}  # type: ignore[union-attr]
    assert urls == URLS
    assert _cost(gw, request_id) >= SEARCH_PRICE[model]


def _check_cited(text: str, annotations: list) -> None:
    assert {a.url for a in annotations} == URLS
    for a in annotations:
        assert a.type == "url_citation" and text[a.start_index : a.end_index] == canned.CITED


@pytest.mark.parametrize("model", [CLAUDE, GEMINI, RESPONSES])
def test_responses_stream_annotations(gw: Server, oai: openai.OpenAI, model: str) -> None:
    """The SDK's stream helper: annotation events as OpenAI sends them, and the annotations on the finished
    message, its content part and the final response, whatever the provider."""
    with oai.responses.stream(model=model, input=QUESTION[0]["content"], tools=[{"type": "web_search"}]) as stream:
        events = list(stream)
        final = stream.get_final_response()
        request_id = stream._response.headers["x-request-id"]  # type: ignore[attr-defined]
    assert final.output_text == canned.ANSWER
    kinds = [item.type for item in final.output]
    assert "web_search_call" in kinds and kinds.count("message") == 1
    message = next(item for item in final.output if item.type == "message")
    text = message.content[0]
    assert text.type == "output_text"
    _check_cited(text.text, text.annotations)
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert added and all(e.item_id == message.id and e.content_index == 0 for e in added)
    assert [e.annotation_index for e in added] == list(range(len(added)))
    _check_cited(text.text, [e.annotation for e in added])
    part_done = next(e for e in events if e.type == "response.content_part.done")
    _check_cited(part_done.part.text, part_done.part.annotations)  # type: ignore[union-attr]
    item_done = next(e for e in events if e.type == "response.output_item.done" and e.item.type == "message")
    _check_cited(item_done.item.content[0].text, item_done.item.content[0].annotations)  # type: ignore[union-attr]
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert _cost(gw, request_id) >= SEARCH_PRICE[model]


@pytest.mark.parametrize("model", [CLAUDE, GEMINI])
def test_responses_stream_events_parse_as_typed_models(oai: openai.OpenAI, model: str) -> None:
    """`create(stream=True)`: every event is one of the SDK's typed events, the search a `web_search_call` item
    with its lifecycle events, the citations typed `url_citation`s."""
    from openai.types.responses import ResponseOutputTextAnnotationAddedEvent, ResponseWebSearchCallCompletedEvent

    events = list(
        oai.responses.create(
            model=model,
            input=QUESTION[0]["content"],
            tools=[{"type": "web_search_preview"}],  # type: ignore[list-item]
            stream=True,
        )
    )
    added = [e for e in events if isinstance(e, ResponseOutputTextAnnotationAddedEvent)]
    assert all(type(e.annotation).__name__ == "AnnotationURLCitation" for e in added)
    assert {e.annotation.url for e in added} == URLS  # type: ignore[union-attr]
    assert any(isinstance(e, ResponseWebSearchCallCompletedEvent) for e in events)
    search = next(e.item for e in events if e.type == "response.output_item.done" and e.item.type == "web_search_call")
    assert search.status == "completed" and search.action.type == "search"  # type: ignore[union-attr]
    completed = events[-1]
    assert completed.type == "response.completed"
    message = next(item for item in completed.response.output if item.type == "message")
    _check_cited(message.content[0].text, message.content[0].annotations)  # type: ignore[union-attr]
