"""The budget ledger every worker shares: spent and reserved micro-dollars per budget and period.

The ledger itself is Rust (`rust/src/ledger.rs`): a memory-mapped file beside the database
(`<db>-budgets`) under a process-shared robust mutex, so checking every applicable budget and reserving
against all of them is one atomic step across worker processes that costs well under a microsecond, with
no system call and no database on the path.

Crash safety: each worker owns a lane and records its reservations in it. A worker killed while holding
the lock hands the next one `EOWNERDEAD`, which recounts the reserved totals from the lanes of the living;
a worker killed outside the lock has its lane released when the next worker attaches. Committed spend is
written behind to the database's `spend` table by the usage writer; `router serve` rebuilds the ledger
from that table at start (`Ledger.rebuild`), which is how the two are reconciled.
"""

from __future__ import annotations

from pathlib import Path

from .._core import BudgetSet, Ledger, LedgerFull

__all__ = ["BudgetSet", "Ledger", "LedgerFull", "ledger_path"]


def ledger_path(db_path: str) -> str | None:
    return None if db_path == ":memory:" else str(Path(db_path)) + "-budgets"
