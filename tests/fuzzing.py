"""Hypothesis strategies for hostile requests, and the checks every answer must pass, shared by the fuzz test
(`tests/e2e/test_fuzz.py`, a bounded budget in the suite) and `benches/fuzz.py` (a larger one, counted).

A case is one HTTP request: method, path, query, headers and body bytes. Proxy cases start from a valid body of
their endpoint and mutate it (parameters set to any JSON value, unknown fields, broken bytes: invalid UTF-8, lone
surrogate escapes, deep nesting, truncation); management cases are generated from the served OpenAPI document
(every operation: path parameters, query parameters, JSON bodies from the operation's schema or anything else).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx
from hypothesis import strategies as st

CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
PROXY = (CHAT, MESSAGES, COUNT, RESPONSES, EMBEDDINGS)
ANTHROPIC_SHAPED = (MESSAGES, COUNT)
# Endpoints that never call an upstream, even when they answer 200.
LOCAL = (COUNT,)

# A gateway config for fuzzing: every API on the mock, priced (so limited keys reserve), guardrails on by default.
CONFIG = """
providers:
  mock: {base_url: env:ROUTER_MOCK_URL, api_key: k}
  anthropic: {kind: anthropic, base_url: env:ROUTER_MOCK_URL, api_key: k}
  openai-responses: {kind: openai-responses, base_url: env:ROUTER_MOCK_URL, api_key: k}
models:
  - {id: mock/gpt-4o, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0}, max_output_tokens: 16384,
     capabilities: [streaming, tools]}
  - {id: anthropic/claude, upstream_model: claude-sonnet-4-5, prices: {input: 1.0, output: 1.0},
     max_output_tokens: 64000, capabilities: [streaming, tools]}
  - {id: openai-responses/gpt-4o, upstream_model: gpt-4o, prices: {input: 1.0, output: 1.0},
     max_output_tokens: 16384, capabilities: [streaming, tools]}
  - {id: mock/embed, upstream_model: text-embedding-3-small, prices: {input: 1.0}, capabilities: [embeddings]}
guardrails:
  categories: {pci: block}
"""

MODELS = {
    CHAT: "mock/gpt-4o",
    MESSAGES: "anthropic/claude",
    COUNT: "anthropic/claude",
    RESPONSES: "openai-responses/gpt-4o",
    EMBEDDINGS: "mock/embed",
}


def base_body(path: str) -> dict[str, Any]:
    model = MODELS[path]
    if path == CHAT:
        return {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 16}
    if path == MESSAGES:
        return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}
    if path == COUNT:
        return {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    if path == RESPONSES:
        return {"model": model, "input": "hello", "max_output_tokens": 16}
    return {"model": model, "input": "hello"}


# Parameters each endpoint reads or range-checks: set far more often than a random name would be.
PARAMS = {
    CHAT: ["max_tokens", "max_completion_tokens", "n", "temperature", "top_p", "top_k", "frequency_penalty",
           "presence_penalty", "logprobs", "top_logprobs", "seed", "reasoning_effort", "stream", "stream_options",
           "tools", "user", "messages", "model", "requesty", "prediction", "logit_bias"],
    MESSAGES: ["max_tokens", "temperature", "top_p", "top_k", "thinking", "stream", "system", "tools", "tool_choice",
               "stop_sequences", "messages", "model", "requesty", "metadata"],
    COUNT: ["thinking", "system", "tools", "messages", "model"],
    RESPONSES: ["max_output_tokens", "max_tool_calls", "temperature", "top_p", "top_logprobs", "stream", "reasoning",
                "text", "tools", "tool_choice", "instructions", "input", "model", "requesty"],
    EMBEDDINGS: ["dimensions", "input", "model", "encoding_format", "user", "requesty"],
}  # fmt: skip

short_text = st.text(max_size=12)
numbers = st.one_of(
    st.integers(-3, 300),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([2**64 - 1, 2**63, -(2**63) - 1, -1_000_000_000_000, 0, 1, -1, 1024, 0.5, 2.5, 1e300]),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, short_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(short_text, inner, max_size=4)),
    max_leaves=10,
)
roles = st.one_of(st.sampled_from(["user", "assistant", "system", "developer", "tool"]), short_text)
part_types = st.one_of(
    st.sampled_from(["text", "image_url", "input_text", "image", "tool_use", "tool_result", "thinking"]), short_text
)
parts = st.fixed_dictionaries(
    {"type": part_types}, optional={"text": st.text(max_size=40), "extra": json_values, "source": json_values}
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": roles},
        optional={
            "content": st.one_of(st.text(max_size=60), st.lists(parts, max_size=3), json_values),
            "name": short_text,
            "x_unknown": json_values,
        },
    ),
    max_size=3,
)


@st.composite
def proxy_body(draw: st.DrawFn, path: str) -> dict[str, Any]:
    body = base_body(path)
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.sampled_from(["param", "param", "param", "unknown", "drop", "messages"]))
        if action == "param":
            body[draw(st.sampled_from(PARAMS[path]))] = draw(st.one_of(numbers, json_values))
        elif action == "unknown":
            body[draw(short_text)] = draw(json_values)
        elif action == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif action == "messages":
            key = "input" if path in (RESPONSES, EMBEDDINGS) else "messages"
            body[key] = draw(messages)
    return body


# Byte-level damage: a JSON text that is not UTF-8, a lone surrogate, nesting far past any limit, cut short.
BAD_BYTES = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\x80"]


@st.composite
def damaged(draw: st.DrawFn, raw: bytes) -> bytes:
    kind = draw(st.sampled_from(["none"] * 5 + ["utf8", "surrogate", "deep", "truncate", "junk", "not_object"]))
    if kind == "utf8":
        quotes = [i for i, b in enumerate(raw) if b == 0x22]
        at = draw(st.sampled_from(quotes)) + 1 if quotes else 0
        return raw[:at] + draw(st.sampled_from(BAD_BYTES)) + raw[at:]
    if kind == "surrogate":
        return raw.replace(b'"hello"', b'"he\\udc80llo"', 1) if b'"hello"' in raw else raw + b'"\\ud800"'
    if kind == "deep":
        depth = draw(st.sampled_from([127, 129, 500, 975, 5000]))
        where = draw(st.sampled_from(["x_deep", "messages", "input", "tools", "metadata"]))
        return raw[:-1] + b', "' + where.encode() + b'": ' + b"[" * depth + b"1" + b"]" * depth + b"}"
    if kind == "truncate" and raw:
        return raw[: draw(st.integers(0, len(raw) - 1))]
    if kind == "junk":
        return draw(st.binary(max_size=64))
    if kind == "not_object":
        return json.dumps(draw(json_values)).encode()
    return raw


class Case(NamedTuple):
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str | bytes]
    body: bytes | None
    # "admin", "key", "limited", "none" or "bad": which credential the request carries.
    auth: str


ascii_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
# Header bytes HTTP/1.1 allows in a value (obs-text included: not UTF-8, nor meant to be).
header_values = st.one_of(
    ascii_text.map(str.strip),
    st.lists(st.integers(0x21, 0xFF).filter(lambda b: b != 0x7F), min_size=1, max_size=24).map(bytes),
)


@st.composite
def headers(draw: st.DrawFn, anthropic: bool) -> dict[str, str | bytes]:
    out: dict[str, str | bytes] = {}
    content_type = draw(
        st.sampled_from(["application/json"] * 5 + ["application/json; charset=utf-8", "text/plain", None, "x/y;;"])
    )
    if content_type is not None:
        out["content-type"] = content_type
    if draw(st.booleans()):
        out["x-router-metadata"] = draw(
            st.one_of(header_values, json_values.map(lambda v: json.dumps(v)), st.just('{"tags": ["a"]}'))
        )
    if anthropic and draw(st.booleans()):
        out["anthropic-version"] = draw(st.one_of(st.just("2023-06-01"), ascii_text))
    if draw(st.integers(0, 4)) == 0:
        out[draw(st.sampled_from(["x-request-id", "accept", "x-weird", "anthropic-beta"]))] = draw(header_values)
    return out


auth_kinds = st.sampled_from(["key", "key", "key", "limited", "limited", "none", "bad"])


@st.composite
def proxy_cases(draw: st.DrawFn, path: str | None = None) -> Case:
    path = path or draw(st.sampled_from(PROXY))
    raw = json.dumps(draw(proxy_body(path)), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    body = draw(damaged(raw))
    return Case("POST", path, [], draw(headers(path in ANTHROPIC_SHAPED)), body, draw(auth_kinds))


# -- management: cases from the OpenAPI document -------------------------------------------------------------------

# Query names the management routes read (`limit`/`offset` are in the document; filters are in summaries only).
QUERY_NAMES = ["start", "end", "key", "user", "group", "model", "provider", "endpoint", "tag", "trace", "end_user",
               "status", "bucket", "group_by", "format", "actor", "action", "target", "view", "limit", "offset",
               "meta.team", "meta.a[", 'meta.a"b', "meta.$", "meta."]  # fmt: skip


def schema_values(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values that mostly follow a JSON schema (as msgspec writes them), sometimes anything at all."""
    if depth > 4:
        return json_values
    if "$ref" in schema:
        return schema_values(components[schema["$ref"].rsplit("/", 1)[-1]], components, depth + 1)
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([schema_values(s, components, depth + 1) for s in schema.get("anyOf", schema.get("oneOf"))])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([schema_values({**schema, "type": k}, components, depth) for k in kind])
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fields = {k: schema_values(v, components, depth + 1) for k, v in props.items()}
        return st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={**{k: v for k, v in fields.items() if k not in required}, "x_unknown": json_values},
        )
    if kind == "array":
        return st.lists(schema_values(schema.get("items", {}), components, depth + 1), max_size=3)
    if kind == "string":
        return st.one_of(short_text, st.sampled_from(["2026-01-01", "mock/gpt-4o", "admin", "standard", "*"]))
    if kind == "integer":
        return numbers.filter(lambda v: isinstance(v, int))
    if kind == "number":
        return numbers
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return json_values


def management_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) for every operation of the document, including the document's own."""
    out = [("GET", "/openapi.json", {})]
    for template, item in document["paths"].items():
        for method, op in item.items():
            out.append((method.upper(), template, op))
    return out


path_segments = st.one_of(
    st.sampled_from(["me", "mock", "openai", "1", "0", "-1", "k_" + "0" * 12, "x" * 300]), st.text(max_size=20)
)


@st.composite
def management_cases(draw: st.DrawFn, document: dict[str, Any], prefix: str = "/v1/manage") -> Case:
    components = document.get("components", {}).get("schemas", {})
    method, template, op = draw(st.sampled_from(management_operations(document)))
    path = template
    for param in op.get("parameters", []):
        if param.get("in") == "path":
            path = path.replace("{" + param["name"] + "}", quote(draw(path_segments), safe=""))
    query = [
        (p["name"], str(draw(st.one_of(numbers, short_text))))
        for p in op.get("parameters", [])
        if p.get("in") == "query" and draw(st.booleans())
    ]
    query += [
        (draw(st.one_of(st.sampled_from(QUERY_NAMES), short_text)), draw(short_text))
        for _ in range(draw(st.integers(0, 3)))
    ]
    body = None
    if method in ("POST", "PUT", "PATCH"):
        schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        value = draw(schema_values(schema, components) if schema else json_values)
        body = draw(damaged(json.dumps(value).encode()))
    auth = draw(st.sampled_from(["admin", "admin", "admin", "key", "none", "bad"]))
    return Case(method, prefix + path, query, draw(headers(False)), body, auth)


# -- sending a case and judging its answer -------------------------------------------------------------------------


class Outcome(NamedTuple):
    status: int | None  # None: the connection was reset or refused, or the answer was cut
    problems: list[str]
    message: str | None = None  # an error answer's message


def api_shaped(path: str, data: bytes) -> str | None:
    """Why an error body is not in the endpoint's API shape (None: it is)."""
    try:
        body = json.loads(data)
    except ValueError:
        return f"error body is not JSON: {data[:200]!r}"
    if path in ANTHROPIC_SHAPED:
        ok = (
            isinstance(body, dict)
            and body.get("type") == "error"
            and isinstance(body.get("error"), dict)
            and isinstance(body["error"].get("type"), str)
            and isinstance(body["error"].get("message"), str)
        )
    else:
        error = body.get("error") if isinstance(body, dict) else None
        ok = isinstance(error, dict) and isinstance(error.get("message"), str) and isinstance(error.get("type"), str)
        ok = ok and "param" in error and "code" in error
    return None if ok else f"error body not in the endpoint's API shape: {data[:200]!r}"


def send(client: httpx.Client, base: str, case: Case, keys: dict[str, str]) -> Outcome:
    headers: dict[str, str | bytes] = dict(case.headers)
    if case.auth == "bad":
        headers["authorization"] = "Bearer rk_" + "0" * 40
    elif case.auth != "none":
        headers["authorization"] = f"Bearer {keys[case.auth]}"
    url = base + case.path
    try:
        r = client.request(case.method, url, params=case.query, headers=headers, content=case.body)
    except httpx.LocalProtocolError:
        # The client itself refused to send it (e.g. a header value of only spaces): it never reached the gateway.
        return Outcome(None, [])
    except httpx.TransportError as exc:
        return Outcome(None, [f"transport error: {type(exc).__name__}: {exc}"])
    problems = []
    if r.status_code >= 500:
        problems.append(f"{r.status_code}: {r.content[:300]!r}")
    message = None
    if r.status_code >= 400:
        shaped = api_shaped(case.path, r.content)
        if shaped is not None:
            problems.append(shaped)
        else:
            message = json.loads(r.content)["error"]["message"]
    return Outcome(r.status_code, problems, message)


class Upstream:
    """The mock's request count, read over one kept-alive connection (a fresh client per call costs more than
    the request being judged); reset only after something reached it."""

    def __init__(self, client: httpx.Client, base: str) -> None:
        self.client = client
        self.base = base

    def calls(self) -> int:
        """Requests that reached the mock since the last call, which starts the count again."""
        count = self.client.get(f"{self.base}/_mock/requests").json()["count"]
        if count:
            self.client.post(f"{self.base}/_mock/reset").raise_for_status()
        return count


def forwarded_when_refused(case: Case, outcome: Outcome, upstream_calls: int) -> str | None:
    """An upstream call made for a request the gateway refused (an upstream's own refusal, relayed, is not one)."""
    if outcome.status is None or outcome.status < 400 or not upstream_calls:
        return None
    if outcome.message is not None and outcome.message.startswith("Upstream provider"):
        return None
    return f"{upstream_calls} upstream call(s) for a request answered {outcome.status}: {outcome.message}"


def describe(case: Case) -> str:
    body = case.body if case.body is None or len(case.body) < 400 else case.body[:400] + b"..."
    return f"{case.method} {case.path} query={case.query} headers={case.headers} auth={case.auth} body={body!r}"
