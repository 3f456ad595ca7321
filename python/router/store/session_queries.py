"""Session analytics over the usage log: the sessions in a range, one session's timeline, per-session totals."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from .analytics import Filters, _quantile, _where

# A request failed when it was answered with an error, or its stream ended with one.
_FAILED = "(status >= 400 OR error_type IS NOT NULL)"
_PER_SESSION = (
    "SELECT session_id, MIN(ts) AS started, MAX(ts) AS last, COUNT(*) AS requests, "
    "COUNT(DISTINCT session_branch) AS branches, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens, "
    "COALESCE(SUM(completion_tokens), 0) AS completion_tokens, COALESCE(SUM(cost), 0) AS cost, "
    f"COALESCE(SUM({_FAILED}), 0) AS errors, COALESCE(SUM(latency_ms), 0) AS latency_ms, "
    "group_concat(DISTINCT model) AS models, MIN(key_id) AS key_id, MIN(user_id) AS user_id, "
    "MIN(end_user) AS end_user, "
    # The last request's outcome, for abandonment: the row with the greatest (ts, request_id).
    f"(SELECT {_FAILED} FROM usage_log l WHERE l.session_id = usage_log.session_id "
    "ORDER BY l.ts DESC, l.request_id DESC LIMIT 1) AS last_failed "
    "FROM usage_log WHERE session_id IS NOT NULL AND {where} GROUP BY session_id"
)


def _session(row: dict[str, Any]) -> dict[str, Any]:
    row["models"] = sorted((row["models"] or "").split(",")) if row["models"] else []
    row["last_failed"] = bool(row["last_failed"])
    return row


class SessionQueries:
    _conn: sqlite3.Connection
    if TYPE_CHECKING:  # AnalyticsQueries's, beside it in the store's bases

        def _rows(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]: ...

    def sessions(self, f: Filters, limit: int, offset: int) -> list[dict[str, Any]]:
        """Sessions with a request in the filtered rows, most recently active first, with their totals."""
        where, params = _where(f, None)
        sql = _PER_SESSION.format(where=where) + " ORDER BY last DESC, session_id LIMIT ? OFFSET ?"
        return [_session(r) for r in self._rows(sql, [*params, limit, offset])]

    def session_timeline(self, session_id: str, keys: list[str] | None) -> list[dict[str, Any]]:
        """Every request of one session, in order, with what each cost and which tools it used."""
        f = Filters(start=0, end=float("inf"), keys=keys)
        where, params = _where(f, None)
        rows = self._rows(
            "SELECT request_id, ts, session_branch AS branch, session_parent AS parent, key_id, endpoint, model, "
            "provider, status, error_type, stream, prompt_tokens, completion_tokens, cached_tokens, "
            "reasoning_tokens, cost, latency_ms, ttft_ms, tool_calls, tool_results, end_user, prompt "
            f"FROM usage_log WHERE session_id = ? AND {where} ORDER BY ts, request_id",
            [session_id, *params],
        )
        for row in rows:
            row["stream"] = bool(row["stream"])
            row["tool_calls"] = msgspec.json.decode(row["tool_calls"]) if row["tool_calls"] else []
            row["tool_results"] = msgspec.json.decode(row["tool_results"]) if row["tool_results"] else []
        return rows

    def session_stats(self, f: Filters, idle_before: float) -> dict[str, Any]:
        """Turns, tokens and cost per session, and abandonment: sessions idle since before `idle_before` whose
        last request failed (status >= 400 or a stream that ended in an error) and was never followed."""
        where, params = _where(f, None)
        rows = [_session(r) for r in self._rows(_PER_SESSION.format(where=where), params)]
        count = len(rows)
        turns = [float(r["requests"]) for r in rows]
        tokens = [float(r["prompt_tokens"] + r["completion_tokens"]) for r in rows]
        costs = [float(r["cost"]) for r in rows]
        idle = [r for r in rows if r["last"] < idle_before]
        abandoned = sum(r["last_failed"] for r in idle)

        def summary(values: list[float]) -> dict[str, float | None]:
            return {
                "mean": sum(values) / len(values) if values else None,
                "p50": _quantile(values, 0.5),
                "p95": _quantile(values, 0.95),
                "max": max(values, default=None),
            }

        return {
            "sessions": count,
            "requests": int(sum(turns)),
            "single_turn": sum(1 for t in turns if t == 1),
            "forked": sum(1 for r in rows if r["branches"] > 1),
            "turns": summary(turns),
            "tokens": summary(tokens),
            "cost": {**summary(costs), "total": sum(costs)},
            "idle_sessions": len(idle),
            "abandoned": abandoned,
            "abandonment_rate": abandoned / len(idle) if idle else None,
        }
