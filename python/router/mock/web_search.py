"""Server-side web search as each provider reports it, with fixed results (the mock never leaves the machine).

- Anthropic: `server_tool_use` + `web_search_tool_result` blocks, text blocks with `web_search_result_location`
  citations, `usage.server_tool_use.web_search_requests`
  (https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-search-tool#response)
- OpenAI Responses: a `web_search_call` output item, then a message whose `output_text` carries `url_citation`
  annotations (https://platform.openai.com/docs/guides/tools-web-search#output-and-citations)
- Gemini: `groundingMetadata` with `webSearchQueries`, `groundingChunks` and `groundingSupports`
  (https://ai.google.dev/gemini-api/docs/google-search#understanding-the-grounding-response)
"""

from __future__ import annotations

from typing import Any

RESULTS = (
    ("https://news.example.org/london-today", "London News - Latest Updates"),
    ("https://weather.example.com/london", "London weather forecast"),
)
LEAD = "According to recent reports, "
CITED = "London had sunny weather today."
ANSWER = LEAD + CITED


def wanted(tools: Any) -> bool:
    return any(
        isinstance(t, dict) and (t.get("type") == "web_search" or str(t.get("type", "")).startswith("web_search_"))
        for t in tools or ()
    )


def _citation(url: str, title: str) -> dict[str, Any]:
    return {
        "type": "web_search_result_location",
        "url": url,
        "title": title,
        "encrypted_index": "",
        "cited_text": CITED,
    }


def anthropic_blocks(query: str, tool_id: str) -> list[dict[str, Any]]:
    results = [
        {"type": "web_search_result", "url": u, "title": t, "encrypted_content": "EqwBCioIARgB", "page_age": None}
        for u, t in RESULTS
    ]
    return [
        {"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query}},
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results},
        {"type": "text", "text": LEAD},
        {"type": "text", "text": CITED, "citations": [_citation(u, t) for u, t in RESULTS]},
    ]


def responses_items(query: str, base: str) -> list[dict[str, Any]]:
    notes = [
        {"type": "url_citation", "start_index": len(LEAD), "end_index": len(ANSWER), "url": u, "title": t}
        for u, t in RESULTS
    ]
    text = {"type": "output_text", "text": ANSWER, "annotations": notes, "logprobs": []}
    return [
        {
            "type": "web_search_call",
            "id": f"ws_{base}",
            "status": "completed",
            "action": {"type": "search", "query": query},
        },
        {"type": "message", "id": f"msg_{base}", "status": "completed", "role": "assistant", "content": [text]},
    ]


def gemini_grounding(query: str) -> dict[str, Any]:
    start = len(LEAD.encode())
    return {
        "webSearchQueries": [query],
        "searchEntryPoint": {"renderedContent": "<div>mock search chip</div>"},
        "groundingChunks": [{"web": {"uri": u, "title": t}} for u, t in RESULTS],
        "groundingSupports": [
            {
                "segment": {"startIndex": start, "endIndex": start + len(CITED.encode()), "text": CITED},
                "groundingChunkIndices": [0, 1],
            }
        ],
    }
