"""Usage analytics queries: grouped reports (from the smallest rollup that can answer, else raw rows),
traces, streamed exports, request feedback and alert records."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from . import rollup, sketch

# The dimensions the rollup keeps; anything else (tags, trace, end user, status code, metadata) needs raw rows.
ROLLUP_DIMENSIONS = ("key", "user", "model", "provider", "endpoint")
RAW_DIMENSIONS = (*ROLLUP_DIMENSIONS, "status", "end_user", "trace", "prompt")
BUCKETS = ("hour", "day", "week", "month")
_COLUMN = {
    "key": "key_id", "user": "user_id", "model": "model", "provider": "provider", "endpoint": "endpoint",
    "status": "status", "end_user": "end_user", "trace": "trace_id", "prompt": "prompt",
}  # fmt: skip


def _bucket_sql(bucket: str | None, ts: str) -> str | None:
    if bucket is None:
        return None
    return {
        "hour": f"strftime('%Y-%m-%dT%H:00:00Z', {ts}, 'unixepoch')",
        "day": f"strftime('%Y-%m-%d', {ts}, 'unixepoch')",
        "week": f"strftime('%Y-W%W', {ts}, 'unixepoch')",
        "month": f"strftime('%Y-%m', {ts}, 'unixepoch')",
    }[bucket]


class Filters(msgspec.Struct):
    """Each set field narrows the report; lists mean "any of"."""

    start: float
    end: float
    keys: list[str] | None = None  # None: all; [] matches nothing (a standard user with no keys)
    users: list[str] | None = None
    models: list[str] | None = None
    providers: list[str] | None = None
    endpoint: str | None = None
    tag: str | None = None
    trace: str | None = None
    end_user: str | None = None
    status: str | None = None  # "ok", "error", or an HTTP status code
    extra: dict[str, str] = {}

    @property
    def needs_raw(self) -> bool:
        return bool(self.tag or self.trace or self.end_user or self.status or self.extra)


def _in(column: str, values: Sequence[str], clauses: list[str], params: list[Any]) -> None:
    if not values:
        clauses.append("1 = 0")
        return
    clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
    params.extend(values)


def _where(f: Filters, table: rollup.Rollup | None) -> tuple[str, list[Any]]:
    raw = table is None
    clauses: list[str] = []
    params: list[Any] = []
    if table is None:
        clauses += ["ts >= ?", "ts < ?"]
        params += [f.start, f.end]
    else:
        # Whole slots only: a range is widened to the hours (or days) it touches.
        clauses += ["slot >= ?", "slot < ?"]
        params += [int(f.start // table.seconds), int(-(-f.end // table.seconds))]
    for column, values in (("key_id", f.keys), ("user_id", f.users), ("model", f.models), ("provider", f.providers)):
        if values is not None:
            _in(column, values, clauses, params)
    if f.endpoint:
        clauses.append("endpoint = ?")
        params.append(f.endpoint)
    if raw:
        if f.tag:
            # Tags are stored as a JSON list; match the quoted element.
            clauses.append("instr(tags, ?) > 0")
            params.append(msgspec.json.encode(f.tag).decode())
        if f.trace:
            clauses.append("trace_id = ?")
            params.append(f.trace)
        if f.end_user:
            clauses.append("end_user = ?")
            params.append(f.end_user)
        if f.status == "ok":
            clauses.append("status < 400")
        elif f.status == "error":
            clauses.append("status >= 400")
        elif f.status:
            clauses.append("status = ?")
            params.append(int(f.status))
        for field, value in f.extra.items():
            clauses.append("json_extract(extra, ?) = ?")
            # Quoted: a field name with '.', ':' or '-' names one key, not a path.
            params += [f'$."{field}"', value]
    return " AND ".join(clauses), params


def _plan(f: Filters, group_by: Sequence[str], bucket: str | None) -> rollup.Rollup | None:
    """The smallest table that can answer: the daily rollup, the hourly one, or None for raw rows."""
    if f.needs_raw or any(g not in ROLLUP_DIMENSIONS for g in group_by):
        return None
    if f.keys is None and f.users is None and not {"key", "user"} & set(group_by) and bucket != "hour":
        return rollup.DAILY
    return rollup.HOURLY


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values.sort()
    return values[min(len(values) - 1, int(q * len(values)))]


# The percentiles every latency figure of a usage report carries.
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))


def _stats(values: list[float]) -> dict[str, float | None]:
    """Average and exact percentiles of raw values (`_quantile`'s ranks; sorted once, so each later sort is a
    linear pass over an already ordered list)."""
    out: dict[str, float | None] = {"avg": sum(values) / len(values) if values else None}
    out.update({name: _quantile(values, q) for name, q in PERCENTILES})
    return out


def _sketch_stats(blob: bytes | None, total: float, histogram: Sequence[float] | None) -> dict:
    """Average and percentiles from a rollup's sum and sketch (within sketch.ALPHA). Cells folded before the
    sketches existed have only the fixed histogram: their percentiles are read from it, with no average."""
    count, values = sketch.stored_quantiles(blob, [q for _, q in PERCENTILES])
    if not count and histogram is not None and sum(histogram):
        values = [rollup.percentile(histogram, q) for _, q in PERCENTILES]
    out: dict[str, float | None] = {"avg": total / count if count else None}
    out.update({name: v for (name, _), v in zip(PERCENTILES, values, strict=True)})
    return out


def _floats(joined: str | None) -> list[float]:
    return [float(v) for v in (joined or "").split(",") if v]


class AnalyticsQueries:
    _conn: sqlite3.Connection
    path: str

    def _streaming_conn(self) -> Any:  # the backend's
        raise NotImplementedError

    def usage_report(self, f: Filters, group_by: Sequence[str], bucket: str | None) -> tuple[list[dict], str]:
        """Grouped totals with error rate and p50/p95 latency and TTFT; also says which table answered."""
        table = _plan(f, group_by, bucket)
        raw = table is None
        where, params = _where(f, table)
        dims = [_COLUMN[g] for g in group_by]
        time_sql = _bucket_sql(bucket, "ts" if table is None else f"slot * {table.seconds}")
        select_dims = ([f"{time_sql} AS bucket"] if time_sql else []) + dims
        group = ", ".join(["bucket"] * bool(time_sql) + dims)
        labels = (["bucket"] if time_sql else []) + list(group_by)
        n = len(labels)
        if raw:
            sums = (
                "COUNT(*), SUM(status >= 400), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
                "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(cost), 0), COALESCE(SUM(cache_savings), 0), "
                "group_concat(latency_ms), group_concat(ttft_ms), "
                "COALESCE(SUM(reasoning_tokens), 0), COALESCE(SUM(CASE WHEN byok = 1 THEN cost ELSE 0 END), 0), "
                "SUM(status >= 400 AND status < 500), SUM(status >= 500), group_concat(overhead_ms)"
            )
            added_at = n + 9
        else:
            sums = ", ".join(
                [f"SUM({name})" for name in rollup.SUMS] + [f"sketch_sum({name})" for name in rollup.SKETCHES]
            )
            added_at = n + len(rollup.CREATED_SUMS)
        sql = f"SELECT {', '.join([*select_dims, sums])} FROM {table.table if table else 'usage_log'} WHERE {where}"
        if group:
            sql += f" GROUP BY {group} ORDER BY {group}"
        out = []
        for row in self._conn.execute(sql, params):
            if row[n] is None or row[n] == 0:
                continue
            entry: dict[str, Any] = dict(zip(labels, row[:n], strict=True))
            requests, errors, prompt, completion, cached, cost, savings = row[n : n + 7]
            reasoning, byok_cost = row[added_at : added_at + 2]
            entry |= {
                "requests": requests,
                "errors": errors,
                "error_rate": errors / requests if requests else 0.0,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "cached_tokens": cached,
                "reasoning_tokens": reasoning,
                "cost": cost,
                # BYOK: what the organisation's own provider keys paid (billed by the provider, not through
                # the gateway); gateway_cost is the rest.
                "byok_cost": byok_cost,
                "gateway_cost": cost - byok_cost,
                "cache_savings": savings,
            }
            if raw:
                e4, e5, overheads = row[n + 11 : n + 14]
                entry["latency_ms"] = _stats(_floats(row[n + 7]))
                entry["ttft_ms"] = _stats(_floats(row[n + 8]))
                entry["overhead_ms"] = _stats(_floats(overheads))
            else:
                size = rollup.HIST
                lat, ttft = row[n + 7 : n + 7 + size], row[n + 7 + size : n + 7 + 2 * size]
                at = added_at + len(rollup.ADDED_SUMS)
                lat_sum, ttft_sum, ovh_sum, e4, e5 = row[at : at + len(rollup.TIMING_SUMS)]
                lat_sk, ttft_sk, ovh_sk = row[at + len(rollup.TIMING_SUMS) :]
                entry["latency_ms"] = _sketch_stats(lat_sk, lat_sum, lat)
                entry["ttft_ms"] = _sketch_stats(ttft_sk, ttft_sum, ttft)
                entry["overhead_ms"] = _sketch_stats(ovh_sk, ovh_sum, None)
            entry["errors_by_class"] = {"4xx": e4 or 0, "5xx": e5 or 0}
            out.append(entry)
        return out, table.table if table else "usage_log"

    def trace(self, trace_id: str, keys: list[str] | None) -> list[dict[str, Any]]:
        """Every request of a trace in order, each with the tool calls its answer made and the tool results it
        sent back (decoded from their JSON columns)."""
        f = Filters(start=0, end=float("inf"), keys=keys, trace=trace_id)
        where, params = _where(f, None)
        rows = self._rows(f"SELECT * FROM usage_log WHERE {where} ORDER BY ts, request_id", params)
        for row in rows:
            row["tool_calls"] = msgspec.json.decode(row["tool_calls"]) if row["tool_calls"] else []
            row["tool_results"] = msgspec.json.decode(row["tool_results"]) if row["tool_results"] else []
        return rows

    def tool_report(self, f: Filters) -> list[dict[str, Any]]:
        """Per tool name: calls the answers made (and in how many requests), results sent back and how many were
        reported as errors, and p50/p95 latency of the requests whose answer called the tool. Raw rows only."""
        where, params = _where(f, None)
        tools: dict[str, dict[str, Any]] = {}

        def entry(name: str) -> dict[str, Any]:
            return tools.setdefault(
                name, {"tool": name, "calls": 0, "requests": 0, "results": 0, "errors": 0, "latencies": []}
            )

        # One row per (request, tool): a request calling a tool twice counts two calls, one latency.
        calls = self._conn.execute(
            "SELECT name, SUM(n), COUNT(*), group_concat(latency_ms) FROM ("
            "SELECT j.value AS name, COUNT(*) AS n, latency_ms FROM usage_log, json_each(usage_log.tool_calls) AS j "
            f"WHERE tool_calls IS NOT NULL AND {where} GROUP BY usage_log.rowid, latency_ms, j.value) AS per_row "
            "GROUP BY name",
            params,
        )
        for name, n, requests, latencies in calls:
            e = entry(name)
            e["calls"], e["requests"] = n, requests
            e["latencies"] = [float(v) for v in (latencies or "").split(",") if v]
        results = self._conn.execute(
            "SELECT json_extract(j.value, '$.name'), COUNT(*), SUM(json_extract(j.value, '$.is_error')) "
            "FROM usage_log, json_each(usage_log.tool_results) AS j "
            f"WHERE tool_results IS NOT NULL AND {where} GROUP BY 1",
            params,
        )
        for name, n, errors in results:
            e = entry(name)
            e["results"], e["errors"] = n, errors or 0
        out = []
        for name in sorted(tools):
            e = tools[name]
            latencies = e.pop("latencies")
            e["error_rate"] = e["errors"] / e["results"] if e["results"] else None
            e["latency_ms"] = {"p50": _quantile(latencies, 0.5), "p95": _quantile(latencies, 0.95)}
            out.append(e)
        return out

    def _rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        cur = self._conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur]

    def export_rows(self, f: Filters, batch: int = 1000) -> Iterator[tuple[list[str], list[tuple[Any, ...]]]]:
        """(column names, a batch of rows) at a time, oldest first: never the whole range in memory."""
        where, params = _where(f, None)
        # A connection of its own, so an export streaming for a while never holds the shared one's cursor.
        conn = self._streaming_conn()
        try:
            cur = conn.execute(f"SELECT * FROM usage_log WHERE {where} ORDER BY ts, request_id", params)
            names = [d[0] for d in cur.description]
            while chunk := cur.fetchmany(batch):
                yield names, chunk
        finally:
            if conn is not self._conn:
                conn.close()

    def add_feedback(
        self, request_id: str, key_id: str | None, rating: int | None, data: str | None, ts: float
    ) -> None:
        self._conn.execute(
            "INSERT INTO feedback (request_id, ts, key_id, rating, data) VALUES (?, ?, ?, ?, ?)",
            (request_id, ts, key_id, rating, data),
        )

    def feedback_for(self, request_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM feedback WHERE request_id = ? ORDER BY ts", (request_id,))

    def request_key(self, request_id: str) -> str | None:
        row = self._conn.execute("SELECT key_id FROM usage_log WHERE request_id = ?", (request_id,)).fetchone()
        return row[0] if row else None

    def request_logged(self, request_id: str) -> tuple[str | None] | None:
        """(the key that made it,) if the request has a usage row, else None (a row's key may be NULL)."""
        return self._conn.execute("SELECT key_id FROM usage_log WHERE request_id = ?", (request_id,)).fetchone()

    def claim_alert(self, alert: str, ts: float, payload: str) -> bool:
        """True for exactly one caller per alert id, across every process."""
        cur = self._conn.execute(
            "INSERT INTO alerts_fired (alert, ts, payload) VALUES (?, ?, ?) ON CONFLICT (alert) DO NOTHING",
            (alert, ts, payload),
        )
        return cur.rowcount == 1

    def log_delivery(
        self, alert: str, url: str, attempt: int, ts: float, status: int | None, error: str | None
    ) -> None:
        self._conn.execute(
            "INSERT INTO alert_deliveries (alert, url, attempt, ts, status, error) VALUES (?, ?, ?, ?, ?, ?)",
            (alert, url, attempt, ts, status, error),
        )

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        fired = self._rows("SELECT alert, ts, payload FROM alerts_fired ORDER BY ts DESC LIMIT ?", (limit,))
        for alert in fired:
            alert["deliveries"] = self._rows(
                "SELECT url, attempt, ts, status, error FROM alert_deliveries WHERE alert = ? ORDER BY seq",
                (alert["alert"],),
            )
        return fired

    def window_stats(self, since: float) -> tuple[int, int, float | None]:
        """(requests, errors, p95 latency in ms) of proxied requests since `since`."""
        count, errors = self._conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(status >= 400), 0) FROM usage_log WHERE ts >= ?", (since,)
        ).fetchone()
        if not count:
            return 0, 0, None
        row = self._conn.execute(
            "SELECT latency_ms FROM usage_log WHERE ts >= ? ORDER BY latency_ms LIMIT 1 OFFSET ?",
            (since, min(count - 1, int(count * 0.95))),
        ).fetchone()
        return count, errors, row[0] if row else None

    def rebuild_rollup(self) -> None:
        """Recompute every rollup from the usage log (after a bulk import, say)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for table in rollup.ROLLUPS:
                self._conn.execute(f"DELETE FROM {table.table}")
                self._conn.execute(table.rebuild_sql())
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
