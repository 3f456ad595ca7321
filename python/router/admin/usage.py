"""Usage analytics routes: grouped reports, traces, streamed exports and feedback, scoped by role
(admins and analysts see everything; standard users only their own keys)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec

from ..errors import InvalidRequest
from ..governance import rbac
from ..store.analytics import BUCKETS, RAW_DIMENSIONS, Filters
from .routing import Call, Streamed, route, when

_LIST_PARAMS = {"key": "keys", "user": "users", "model": "models", "provider": "providers"}


# A `meta.<field>` filter's field name: what `requesty.extra` keys look like in practice. Anything else (quotes,
# brackets, `$`) would not name one field of the stored JSON.
_META_FIELD = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def _meta_filters(q: dict[str, str]) -> dict[str, str]:
    """The `meta.<field>=<value>` filters; 400 for a field name outside `_META_FIELD`."""
    out = {}
    for name, value in q.items():
        if not name.startswith("meta."):
            continue
        field = name[5:]
        if not _META_FIELD.fullmatch(field):
            raise InvalidRequest(
                f"Invalid filter '{name[:140]}': a metadata field name is 1-128 letters, digits, '_', '.', ':' or '-'.",
                param=name[:140],
                code="invalid_value",
            )
        out[field] = value
    return out


def _filters(call: Call) -> Filters:
    q = call.query
    now = call.now()
    start_of_month = datetime.fromtimestamp(now, UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = when(q, "end", now + 1)
    start = when(q, "start", start_of_month.timestamp())
    if start >= end:
        raise InvalidRequest("'start' must be before 'end'.", param="start", code="invalid_value")
    lists: dict[str, list[str] | None] = {
        field: q[name].split(",") if q.get(name) else None for name, field in _LIST_PARAMS.items()
    }
    if q.get("group"):
        group = call.gov.get_group(call.actor, q["group"])
        in_group = call.gov.store.keys_of_group(group.id)
        lists["keys"] = [k for k in lists["keys"] if k in in_group] if lists["keys"] is not None else in_group
    scope = call.gov.usage_scope(call.actor)
    if scope is not None:
        lists["keys"] = [k for k in (lists["keys"] if lists["keys"] is not None else scope) if k in scope]
    status = q.get("status")
    if status is not None and status not in ("ok", "error") and not (status.isdigit() and len(status) == 3):
        raise InvalidRequest("'status' must be ok, error or an HTTP status code.", param="status", code="invalid_value")
    return Filters(
        start=start,
        end=end,
        endpoint=q.get("endpoint"),
        tag=q.get("tag"),
        trace=q.get("trace"),
        end_user=q.get("end_user"),
        status=status,
        extra=_meta_filters(q),
        **lists,
    )


@route(
    "GET",
    "/usage",
    "Usage grouped by time (bucket=hour|day|week|month) and group_by=key,user,model,provider,endpoint,status,"
    "end_user,trace; filters start, end, key, user, group, model, provider, endpoint, tag, trace, end_user, status, "
    "meta.<field>",
)
def usage(call: Call) -> tuple[int, Any]:
    filters = _filters(call)
    bucket = call.query.get("bucket") or None
    if bucket is not None and bucket not in BUCKETS:
        raise InvalidRequest(f"'bucket' must be one of {', '.join(BUCKETS)}.", param="bucket", code="invalid_value")
    group_by = [g for g in (call.query.get("group_by") or "").split(",") if g]
    for g in group_by:
        if g not in RAW_DIMENSIONS:
            raise InvalidRequest(
                f"Cannot group by '{g}'; use {', '.join(RAW_DIMENSIONS)}.", param="group_by", code="invalid_value"
            )
    rows, source = call.gov.store.usage_report(filters, group_by, bucket)
    return 200, {"object": "list", "source": source, "bucket": bucket, "group_by": group_by, "data": rows}


@route("GET", "/traces/{trace}", "Every request of one trace (requesty.trace_id), in order")
def trace(call: Call) -> tuple[int, Any]:
    rows = call.gov.store.trace(call.params["trace"], call.gov.usage_scope(call.actor))
    if not rows:
        raise rbac.not_found("trace", call.params["trace"])
    return 200, {"trace_id": call.params["trace"], "requests": rows}


@route(
    "GET",
    "/tools",
    "Tool-call analytics per tool name: calls, requests, results, errors, error rate, p50/p95 latency of the "
    "requests whose answer called it; filters as /usage (start, end, key, user, group, model, provider, trace, ...)",
)
def tools(call: Call) -> tuple[int, Any]:
    return 200, {"object": "list", "data": call.gov.store.tool_report(_filters(call))}


@route("GET", "/feedback/{request}", "Feedback given on one request")
def feedback(call: Call) -> tuple[int, Any]:
    request_id = call.params["request"]
    scope = call.gov.usage_scope(call.actor)
    if scope is not None and call.gov.store.request_key(request_id) not in scope:
        raise rbac.not_found("request", request_id)
    return 200, {"request_id": request_id, "data": call.gov.store.feedback_for(request_id)}


def _csv(batches: Iterator[tuple[list[str], list[tuple[Any, ...]]]]) -> Iterator[bytes]:
    header_sent = False
    for names, rows in batches:
        out = io.StringIO()
        writer = csv.writer(out)
        if not header_sent:
            writer.writerow(names)
            header_sent = True
        writer.writerows(rows)
        yield out.getvalue().encode()


def _jsonl(batches: Iterator[tuple[list[str], list[tuple[Any, ...]]]]) -> Iterator[bytes]:
    for names, rows in batches:
        yield b"".join(msgspec.json.encode(dict(zip(names, r, strict=True))) + b"\n" for r in rows)


@route("GET", "/usage/export", "Usage rows for a range, streamed as CSV (format=csv) or JSON lines (format=jsonl)")
def export(call: Call) -> tuple[int, Any]:
    fmt = call.query.get("format", "jsonl")
    if fmt not in ("csv", "jsonl"):
        raise InvalidRequest("'format' must be csv or jsonl.", param="format", code="invalid_value")
    batches = call.gov.store.export_rows(_filters(call))
    if fmt == "csv":
        return 200, Streamed(
            "text/csv; charset=utf-8", _csv(batches), [("content-disposition", "attachment; filename=usage.csv")]
        )
    return 200, Streamed("application/x-ndjson", _jsonl(batches))


@route("GET", "/alerts", "Alerts that fired, newest first, each with its webhook delivery attempts")
def alerts(call: Call) -> tuple[int, Any]:
    rbac.require_reader(call.actor, "read alerts")
    fired = call.gov.store.alerts()
    for alert in fired:
        alert["payload"] = msgspec.json.decode(alert["payload"])
    return 200, {"object": "list", "data": fired}
