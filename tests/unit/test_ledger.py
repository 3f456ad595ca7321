"""The shared budget ledger: atomic multi-budget reservations across processes, dead lanes released."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import pytest

from router.config import Prices
from router.spend.budgets import period_end, period_of
from router.spend.cost import cost_micro, worst_case_micro
from router.spend.ledger import BudgetSet, Ledger, LedgerFull

P = 202611
NEVER = 2**63 - 1


def limits(*budgets: tuple[str, int], period: int = P) -> BudgetSet:
    """Budgets with limits and nothing to notify."""
    return BudgetSet([(b, limit, NEVER) for b, limit in budgets], period)


def test_reserve_is_all_or_nothing_across_budgets(tmp_path) -> None:
    ledger = Ledger(str(tmp_path / "l"))
    ledger.attach()
    budgets = limits(("key:a", 100), ("user:u", 250), ("org", 1000))
    assert budgets.ids == ["key:a", "user:u", "org"] and budgets.period == P and len(budgets) == 3
    assert ledger.reserve(budgets, 60) is None
    # The key's limit refuses the next one (index 0), and nothing is reserved on the others for it.
    assert ledger.reserve(budgets, 60) == 0
    assert ledger.usage("user:u", P) == (0, 60)
    assert ledger.settle(budgets, 60, 15) is None
    assert ledger.usage("key:a", P) == (15, 0) and ledger.usage("org", P) == (15, 0)
    assert ledger.reserve(budgets, 85) is None
    assert ledger.reserve(limits(("key:b", 1000), ("user:u", 250)), 200) == 1
    # Another period is another budget.
    assert ledger.usage("key:a", P + 1) == (0, 0)


def test_settling_names_the_budgets_at_their_notify_threshold(tmp_path) -> None:
    ledger = Ledger(str(tmp_path / "l"))
    ledger.attach()
    budgets = BudgetSet([("key:a", 100, 50), ("org", 1000, 500)], P)
    assert ledger.reserve(budgets, 40) is None
    assert ledger.settle(budgets, 40, 30) is None
    assert ledger.reserve(budgets, 40) is None
    assert ledger.settle(budgets, 40, 25) == [(0, 55)]


def _hammer(path: str, rounds: int, results, barrier) -> None:
    ledger = Ledger(path)
    ledger.attach()
    # All alive at once: a process that had exited would rightly have its reservations released.
    barrier.wait()
    granted = 0
    for _ in range(rounds):
        if ledger.reserve(limits(("key:shared", 5_000), ("org", 10**9)), 7) is None:
            granted += 1
    results.put(granted)
    barrier.wait()


def test_processes_racing_never_exceed_the_limit(tmp_path) -> None:
    path = str(tmp_path / "l")
    Ledger(path).close()
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    barrier = ctx.Barrier(5)
    procs = [ctx.Process(target=_hammer, args=(path, 400, results, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    barrier.wait(timeout=30)
    granted = sum(results.get(timeout=30) for _ in procs)
    assert granted == 5_000 // 7
    assert Ledger(path).usage("key:shared", P) == (0, granted * 7)
    barrier.wait(timeout=30)
    for p in procs:
        p.join(30)


def test_a_dead_processs_reservations_are_released_when_its_lane_is_taken(tmp_path) -> None:
    path = str(tmp_path / "l")
    code = (
        "import sys; from router.spend.ledger import BudgetSet, Ledger; l = Ledger(sys.argv[1]); l.attach();"
        f"assert l.reserve(BudgetSet([('key:a', 100, 2**63 - 1)], {P}), 80) is None"
    )
    subprocess.run([sys.executable, "-c", code, path], check=True)  # exits holding 80 in its lane
    ledger = Ledger(path)
    assert ledger.usage("key:a", P) == (0, 80)
    # Lanes are taken lowest first; the dead process held one, so take lanes until we get a used one.
    ledger.attach()
    assert ledger.usage("key:a", P) == (0, 0)
    assert ledger.reserve(limits(("key:a", 100)), 90) is None


def test_a_live_processs_lane_is_kept(tmp_path) -> None:
    ledger = Ledger(str(tmp_path / "l"))
    ledger.attach()
    assert ledger.reserve(limits(("key:a", 100)), 40) is None
    other = Ledger(str(tmp_path / "l"))
    assert other.attach(pid=os.getppid()) != ledger.lane
    assert other.usage("key:a", P) == (0, 40)


def test_rebuild_and_seed(tmp_path) -> None:
    ledger = Ledger(str(tmp_path / "l"))
    ledger.attach()
    ledger.reserve(limits(("key:a", 100)), 50)
    ledger.rebuild([("key:a", P, 30), ("org", P, 500)])
    assert ledger.usage("key:a", P) == (30, 0) and ledger.usage("org", P) == (500, 0)
    ledger.seed("key:a", P, 999)  # exists: unchanged
    ledger.seed("key:b", P, 20)
    assert ledger.usage("key:a", P) == (30, 0) and ledger.usage("key:b", P) == (20, 0)


def test_full_ledger_is_an_error_not_a_silent_pass() -> None:
    ledger = Ledger(None, n_slots=4, n_lanes=2)
    for i in range(4):
        ledger.seed(f"key:{i}", P, 0)
    with pytest.raises(LedgerFull):
        ledger.reserve(limits(("key:x", 10)), 1)


@pytest.mark.parametrize(
    ("ts", "reset_day", "period", "end"),
    [
        (1_795_000_000.0, 1, 202611, "2026-12-01"),  # 2026-11-18
        (1_795_000_000.0, 20, 202610, "2026-11-20"),
        (1_798_761_600.0, 1, 202701, "2027-02-01"),  # 2027-01-01 00:00 UTC
    ],
)
def test_periods(ts, reset_day, period, end) -> None:
    from datetime import UTC, datetime

    assert period_of(ts, reset_day) == period
    assert datetime.fromtimestamp(period_end(period, reset_day), UTC).date().isoformat() == end


def test_cost_arithmetic() -> None:
    prices = Prices(input=2.5, output=10.0, cached_input=1.25)
    # 1,000 prompt tokens of which 400 cached, 200 completion: 600*2.5 + 400*1.25 + 200*10 micro-dollars.
    assert cost_micro(prices, 1000, 200, 400) == 1500 + 500 + 2000
    assert cost_micro(Prices(input=1, output=1, per_request=0.01), 0, 0) == 10_000
    assert worst_case_micro(prices, body_bytes=100, max_output=50) == 250 + 500


def test_cost_without_cache_or_fee_is_the_full_sum() -> None:
    """The short path (nothing cached, no per-request fee) gives exactly what the full sum gives, including
    where rounding is at stake."""
    import random

    rnd = random.Random(7)
    for _ in range(2000):
        prices = Prices(input=rnd.choice([0.15, 2.5, 3.0, 0.075, rnd.random() * 20]), output=rnd.random() * 80)
        prompt, completion = rnd.randrange(0, 200_000), rnd.randrange(0, 50_000)
        full = round((prompt - 0) * prices.input + 0 * prices.input + 0 * prices.input + completion * prices.output)
        assert cost_micro(prices, prompt, completion) == full + round(prices.per_request * 1_000_000)
        assert cost_micro(prices, prompt, completion, 0, 0) == full
    fee = Prices(input=1, output=2, per_request=0.0005)
    assert cost_micro(fee, 10, 10) == 30 + 500
    assert worst_case_micro(fee, body_bytes=10, max_output=10) == 30 + 500
