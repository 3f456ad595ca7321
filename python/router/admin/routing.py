"""The management API's machinery: the route table, the per-call context, paging, and the dispatcher.

Each route is declared once (in `api.py` for governance, `usage.py` for usage analytics), with its summary
and body type; the dispatcher and the OpenAPI document (`GET /v1/manage/openapi.json`) are both built from
the same table.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import msgspec

from ..errors import GatewayError, InvalidRequest, NotFound
from ..governance.byok import ByokAdmin
from ..governance.keys import awaited
from ..governance.policies import PolicyAdmin
from ..governance.rbac import Actor, actor_for
from ..governance.service import Governance
from ..guardrails.admin import GuardrailAdmin
from ..prompts.library import PromptAdmin
from ..protocols.validation import check_json
from ..spend.budgets import Spend
from ..ui.sessions import session_cookie

if TYPE_CHECKING:
    from ..server.app import App
    from ..server.exchange import Exchange

PREFIX = "/v1/manage"
_MAX_PAGE = 500
_DEFAULT_PAGE = 100


class Call(msgspec.Struct):
    """One management request, as a handler sees it."""

    gov: Governance
    actor: Actor
    params: dict[str, str]
    query: dict[str, str]
    spend: Spend
    policies: PolicyAdmin
    byok: ByokAdmin
    guardrails: GuardrailAdmin
    prompts: PromptAdmin
    body: Any = None
    mcp: Any = None  # the worker's McpGateway (routes in router/mcp/routes.py)
    principal: Any = None  # the caller's key (the MCP routes show standard users what their key may use)

    def now(self) -> float:
        return self.gov.clock()


class Streamed(msgspec.Struct):
    """A response sent in pieces as they are produced (exports), instead of one JSON body."""

    content_type: str
    chunks: Iterator[bytes]
    headers: list[tuple[str, str]] = []


Handler = Callable[[Call], tuple[int, Any] | Awaitable[tuple[int, Any]]]


class Route(msgspec.Struct):
    method: str
    template: str
    pattern: re.Pattern[str]
    summary: str
    body: type | None
    handler: Handler
    tag: str


ROUTES: list[Route] = []


def route(method: str, template: str, summary: str, body: type | None = None) -> Callable[[Handler], Handler]:
    pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", PREFIX + template) + "$")
    tag = template.strip("/").split("/")[0] or "org"

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, PREFIX + template, pattern, summary, body, handler, tag))
        return handler

    return register


# -- query helpers ------------------------------------------------------------------------------------


def page(query: dict[str, str]) -> tuple[int, int]:
    try:
        limit = int(query.get("limit", _DEFAULT_PAGE))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise InvalidRequest("'limit' and 'offset' must be integers.", param="limit", code="invalid_value") from None
    if not 1 <= limit <= _MAX_PAGE or offset < 0:
        raise InvalidRequest(f"'limit' must be 1-{_MAX_PAGE} and 'offset' ≥ 0.", param="limit", code="invalid_value")
    return limit, offset


def paged(call: Call, fetch: Callable[[int, int], list[Any]], view: Callable[[Any], Any]) -> tuple[int, Any]:
    limit, offset = page(call.query)
    rows = fetch(limit + 1, offset)
    more = len(rows) > limit
    return 200, {
        "object": "list",
        "data": [view(r) for r in rows[:limit]],
        "has_more": more,
        "next_offset": offset + limit if more else None,
    }


def when(query: dict[str, str], name: str, default: float) -> float:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC).timestamp()
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidRequest(
            f"'{name}' must be a date (2026-11-01) or an ISO 8601 time.", param=name, code="invalid_value"
        ) from None


# -- dispatch -------------------------------------------------------------------------------------------------

_PARAM_AT = re.compile(r"at `\$\.?([^`]*)`")


def decode_body(raw: bytes, kind: type) -> Any:
    if raw:
        check_json(raw)
    try:
        return msgspec.json.decode(raw or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        found = _PARAM_AT.search(str(exc))
        raise InvalidRequest(
            f"Invalid request body: {exc}.", param=found.group(1) if found else None, code="invalid_value"
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}.", code="invalid_json") from None


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed = []
    for r in ROUTES:
        match = r.pattern.match(path)
        if match is None:
            continue
        if r.method == method:
            return r, match.groupdict()
        allowed.append(r.method)
    if allowed:
        raise GatewayError(
            f"Method {method} is not allowed on {path}; use {', '.join(sorted(set(allowed)))}.",
            status=405,
            type="invalid_request_error",
            code="method_not_allowed",
            headers=[("allow", ", ".join(sorted(set(allowed))))],
        )
    raise NotFound(f"Unknown route: {method} {path}.", code="unknown_route")


async def dispatch(app: App, ex: Exchange) -> None:
    scope = ex.scope
    if scope.method == "GET" and scope.path == PREFIX + "/openapi.json":
        ex.send_bytes(200, app.openapi_body)
        return
    r, params = find_route(scope.method, scope.path)
    # The dashboard's session cookie stands in for the key only when no key is sent (ui/sessions.py: timeouts,
    # CSRF token, same origin); the session's key is then authenticated exactly like a bearer key.
    sessions = app.ui_sessions
    if sessions is not None and ex.api_key() is None and session_cookie(ex) is not None:
        principal = await awaited(sessions.authenticate(ex))
    else:
        principal = await awaited(app.authenticate(ex))
    ex.key_id = principal.key_id
    body = None
    if r.body is not None or scope.method in ("POST", "PUT", "PATCH"):
        raw = await app.read_body(ex)
        if r.body is not None:
            body = decode_body(raw, r.body)
    query = dict(parse_qsl(scope.query_string, keep_blank_values=True))
    call = Call(
        app.governance, actor_for(principal, app.store), params, query, app.spend, app.policy_admin, app.byok,
        app.guardrail_admin, app.prompt_admin, body, app.mcp, principal,
    )  # fmt: skip
    answer = r.handler(call)
    # A few handlers talk to other servers (MCP exploration): those return an awaitable.
    status, payload = await answer if inspect.isawaitable(answer) else answer
    if isinstance(payload, Streamed):
        transport = ex.start_stream(status, payload.headers, payload.content_type)
        for chunk in payload.chunks:
            await transport.send_bytes(chunk)
        return
    ex.send_bytes(status, msgspec.json.encode(payload))
