"""Session routes of the management API: sessions in a range, one session's timeline, session analytics.
Scoped like usage analytics (admins and analysts see everything; standard users only their own keys)."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidRequest
from ..governance import rbac
from .routing import Call, paged, route
from .usage import _filters

_MAX_IDLE_MINUTES = 30 * 24 * 60


@route(
    "GET",
    "/sessions",
    "Sessions with requests in the range, most recently active first, with their totals; filters as /usage "
    "(start, end, key, user, group, model, provider, endpoint, end_user, ...), paged by limit and offset",
)
def list_sessions(call: Call) -> tuple[int, Any]:
    filters = _filters(call)
    return paged(call, lambda n, o: call.gov.store.sessions(filters, n, o), lambda row: row)


# Registered before /sessions/{id}, which would otherwise match it.
@route(
    "GET",
    "/sessions/analytics",
    "Per-session analytics: sessions, turns, tokens and cost per session (mean, p50, p95, max), forks, and "
    "abandonment (sessions idle for idle_minutes, default 30, whose last request failed); filters as /usage",
)
def session_analytics(call: Call) -> tuple[int, Any]:
    raw = call.query.get("idle_minutes", "30")
    if not raw.isdigit() or not 0 <= int(raw) <= _MAX_IDLE_MINUTES:
        raise InvalidRequest(
            f"'idle_minutes' must be a whole number of minutes from 0 to {_MAX_IDLE_MINUTES}.",
            param="idle_minutes",
            code="invalid_value",
        )
    idle_before = call.now() - int(raw) * 60
    return 200, {"object": "session_analytics", **call.gov.store.session_stats(_filters(call), idle_before)}


@route("GET", "/sessions/{id}", "One session as a timeline: its requests in order, with branch and parent")
def get_session(call: Call) -> tuple[int, Any]:
    session_id = call.params["id"]
    rows = call.gov.store.session_timeline(session_id, call.gov.usage_scope(call.actor))
    if not rows:
        raise rbac.not_found("session", session_id)
    return 200, {
        "object": "session",
        "id": session_id,
        "started": rows[0]["ts"],
        "last": rows[-1]["ts"],
        "requests": len(rows),
        "branches": sorted({r["branch"] for r in rows if r["branch"] is not None}),
        "cost": sum(r["cost"] or 0 for r in rows),
        "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in rows),
        "completion_tokens": sum(r["completion_tokens"] or 0 for r in rows),
        "timeline": rows,
    }
