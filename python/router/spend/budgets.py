"""Spend limits that cannot be overrun: reserve the worst case before forwarding, settle the actual after.

Every request is charged to its budgets: the key, its owning user, each of its groups and the owner's
groups, and the organisation. Those that have a monthly limit are checked and reserved against together
(atomically, across workers, in the shared ledger) before anything goes upstream; the tightest one that
cannot take the request's worst-case cost refuses it with 402. On completion the reservation becomes the
actual cost. Overshoot is zero whenever the output is bounded (`max_tokens`, or the model's output limit),
because the reservation counts every body byte as a prompt token and every allowed output token.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import msgspec

from ..config import Prices
from ..errors import GatewayError, InvalidRequest
from ..governance.keys import Principal, iso_time
from ..shared.ledger import LedgerUnavailable, RedisLedger, RemoteSet
from ..store import Store
from .cost import DEFAULT_MAX_OUTPUT, MICRO, format_usd, worst_case_micro
from .ledger import BudgetSet, Ledger

# (budget id, label, period, limit, used, refused), all money in micro-dollars.
Notify = Callable[[str, str, int, int, int, bool], None]


log = logging.getLogger("router.spend")


class BudgetExceeded(GatewayError):
    status = 402
    type = "insufficient_quota"


class BudgetStoreUnavailable(GatewayError):
    """The shared ledger (Redis) cannot be reached and `redis.on_failure` is `closed`."""

    status = 503
    type = "api_error"


class Budget(msgspec.Struct, frozen=True):
    id: str  # key:<id>, user:<id>, group:<id>, org
    label: str  # for people: "key 'ci'", "user 'a@b.c'", "group 'Data Science'", "the organisation"
    limit_micro: int | None


class Hold(msgspec.Struct):
    """A reservation in flight, settled exactly once."""

    budgets: BudgetSet | RemoteSet
    limited: tuple[Budget, ...]  # the same budgets, in the same order
    amount: int


# A principal's budgets in a period: (the limited ones, those prepared for the ledger (None when there are
# none), every budget's id).
Plan = tuple[tuple[Budget, ...], BudgetSet | RemoteSet | None, tuple[str, ...]]
# What `Spend.reserve` returns: (hold or None, every budget id, period).
Charged = tuple[Hold | None, tuple[str, ...], int]
# The ledger never reports a budget whose threshold is this.
NEVER = 2**63 - 1
# Largest amount (micro-dollars, about $1.15 trillion) handed to the ledger, whose sums are signed 64-bit: above
# the largest limit the API accepts ($10^12), so a reservation this size is refused by any limit, and a budget's
# committed + reserved + one such amount stays far below 2^63.
AMOUNT_CAP = 2**60
# Largest output, in tokens, a reservation counts: request values are validated far below it
# (`protocols.limits`); this bounds the arithmetic whatever reaches `reserve`.
OUTPUT_CAP = 2**40


def period_of(ts: float, reset_day: int) -> int:
    """The budget period (YYYYMM of the month it started in) holding `ts`."""
    dt = datetime.fromtimestamp(ts, UTC)
    year, month = dt.year, dt.month
    if dt.day < reset_day:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return year * 100 + month


def period_start(period: int, reset_day: int) -> float:
    year, month = divmod(period, 100)
    return datetime(year, month, reset_day, tzinfo=UTC).timestamp()


def period_end(period: int, reset_day: int) -> float:
    year, month = divmod(period, 100)
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime(year, month, reset_day, tzinfo=UTC).timestamp()


def budgets_of(store: Store, principal: Principal) -> tuple[Budget, ...]:
    """Every budget a request of this principal is charged to, with its limit (None: counted, not limited)."""
    org_limit = store.org_limit()
    org = Budget("org", "the organisation", _micro(org_limit))
    record = principal.record
    if record is None:
        return (org,)
    out = [Budget(f"key:{record.id}", f"API key '{record.name}'", _micro(record.monthly_limit))]
    group_ids = set(record.groups)
    if record.owner_type == "user" and record.owner_id:
        user = store.get_user(record.owner_id)
        if user is not None:
            out.append(Budget(f"user:{user.id}", f"user '{user.email}'", _micro(user.monthly_limit)))
            group_ids.update(store.memberships(user.id))
    if group_ids:
        out.extend(
            Budget(f"group:{g.id}", f"group '{g.name}'", _micro(g.monthly_budget))
            for g in store.list_groups(ids=sorted(group_ids))
        )
    out.append(org)
    return tuple(out)


def _micro(usd: float | None) -> int | None:
    return None if usd is None else round(usd * MICRO)


class Spend:
    """The App's view of budgets: which apply to a principal, and the reserve/settle calls on the ledger."""

    def __init__(
        self,
        store: Store,
        ledger: Ledger | RedisLedger,
        reset_day: int,
        notify: Notify | None = None,
        notify_from_percent: float = 0.0,
        fail_open: bool = False,
    ) -> None:
        self.store = store
        self.ledger = ledger
        # Redis (several replicas) rather than the memory-mapped file (one host).
        self.remote = ledger if isinstance(ledger, RedisLedger) else None
        # With Redis: serve limited keys unchecked while it cannot be reached (`redis.on_failure: open`).
        self.fail_open = fail_open
        if self.remote is not None:
            self.remote.on_settled = self._settled
        self.reset_day = reset_day
        # Told about refusals, and about a limited budget's spend after a request settles once it reaches
        # `notify_from_percent` of its limit (the lowest alert threshold: below it there is nothing to say).
        self.notify = notify
        self.notify_from_percent = notify_from_percent
        # id(principal) → (principal, period, plan): the plan's ledger slots were seeded for that period.
        self._cache: dict[int, tuple[Principal, int, Plan]] = {}
        self._period = (0.0, 0.0, 0)

    def _plan(self, principal: Principal, period: int) -> Plan:
        """(the limited budgets, those prepared for the ledger, every budget's id), cached per principal and
        period."""
        cached = self._cache.get(id(principal))
        if cached is not None and cached[0] is principal and cached[1] == period:
            return cached[2]
        budgets = budgets_of(self.store, principal)
        limited = tuple(b for b in budgets if b.limit_micro is not None)
        # A limit set mid-period starts from what the database has recorded so far this period.
        seeds = [self.store.spend_of(b.id, period) for b in limited]
        prepared: BudgetSet | RemoteSet | None = None
        if limited:
            prepare = [(b.id, b.limit_micro or 0, self._notify_from(b)) for b in limited]
            if self.remote is not None:
                labelled = [(*p, b.label) for p, b in zip(prepare, limited, strict=True)]
                prepared = self.remote.prepare(labelled, seeds, period)
            else:
                for b, seed in zip(limited, seeds, strict=True):
                    self.ledger.seed(b.id, period, seed)
                prepared = BudgetSet(prepare, period)
        if len(self._cache) > 10_000:
            self._cache.clear()
        plan = (limited, prepared, tuple(b.id for b in budgets))
        self._cache[id(principal)] = (principal, period, plan)
        return plan

    def _notify_from(self, budget: Budget) -> int:
        """The spend from which settling tells `notify` about this budget."""
        if self.notify is None or not math.isfinite(self.notify_from_percent):
            return NEVER
        return math.ceil((budget.limit_micro or 0) * self.notify_from_percent / 100)

    def period(self, now: float) -> int:
        """The current budget period, recomputed only when `now` leaves the cached one."""
        start, end, period = self._period
        if not start <= now < end:
            period = period_of(now, self.reset_day)
            self._period = (period_start(period, self.reset_day), period_end(period, self.reset_day), period)
        return period

    def reserve(
        self,
        principal: Principal,
        candidates: Sequence[tuple[str, Prices | None, int | None]],
        body_bytes: int,
        now: float,
        fees: Callable[[Prices], int] | None = None,
    ) -> Charged | Awaitable[Charged]:
        """Reserve the worst case over every model that may serve the request, (id, prices, max output tokens),
        against every limited budget; returns (hold or None, every budget id, period). `fees` is what a model
        charges on top of tokens (micro-dollars: generated images, web searches). With Redis, for a principal
        with a limited budget, an awaitable of that (one round trip)."""
        period = self.period(now)
        limited, prepared, ids = self._plan(principal, period)
        if prepared is None:
            return None, ids, period
        amount = 0
        for model_id, prices, max_output in candidates:
            if prices is None:
                raise InvalidRequest(
                    f"The model '{model_id}' has no price in the catalog, and this API key has a spend limit: "
                    "it cannot be counted, so it is refused rather than treated as free.",
                    param="model",
                    code="model_not_priced",
                )
            extra = fees(prices) if fees is not None else 0
            amount = max(amount, min(reservation(prices, body_bytes, max_output) + extra, AMOUNT_CAP))
        if isinstance(prepared, RemoteSet):
            return self._reserve_remote(limited, prepared, ids, period, amount)
        refused = self.ledger.reserve(prepared, amount)
        if refused is not None:
            budget = limited[refused]
            committed, reserved = self.ledger.usage(budget.id, period)
            raise self._refuse(budget, period, committed + reserved, amount)
        return Hold(prepared, limited, amount), ids, period

    async def _reserve_remote(
        self, limited: tuple[Budget, ...], prepared: RemoteSet, ids: tuple[str, ...], period: int, amount: int
    ) -> Charged:
        assert self.remote is not None
        try:
            refused = await self.remote.reserve(prepared, amount)
        except LedgerUnavailable:
            if self.fail_open:
                # Nothing reserved; the actual cost is still counted when Redis answers again.
                return Hold(prepared, limited, 0), ids, period
            raise BudgetStoreUnavailable(
                "The budget ledger (Redis) cannot be reached, so spend limits cannot be checked; this API key has "
                "a spend limit, and requests of such keys are refused until it is back. Retry shortly.",
                code="budget_store_unavailable",
                headers=[("retry-after", "1")],
            ) from None
        if refused is not None:
            index, committed, reserved = refused
            raise self._refuse(limited[index], period, committed + reserved, amount)
        return Hold(prepared, limited, amount), ids, period

    def _refuse(self, budget: Budget, period: int, used: int, amount: int) -> BudgetExceeded:
        if self.notify is not None:
            self.notify(budget.id, budget.label, period, budget.limit_micro or 0, used, True)
        return BudgetExceeded(
            f"Monthly budget exceeded for {budget.label}: {format_usd(used)} of "
            f"{format_usd(budget.limit_micro or 0)} is spent or reserved, and this request may cost up to "
            f"{format_usd(amount)}. The budget resets at {iso_time(period_end(period, self.reset_day))}.",
            code="budget_exceeded",
        )

    def settle(self, hold: Hold, actual: int) -> None:
        # The ledger names only the budgets that reached their notify threshold: usually none.
        actual = min(max(actual, 0), AMOUNT_CAP)
        if isinstance(hold.budgets, RemoteSet):
            assert self.remote is not None
            self.remote.settle(hold.budgets, hold.amount, actual)
            return
        over = self.ledger.settle(hold.budgets, hold.amount, actual)
        if over is not None and actual and self.notify is not None:
            for index, used in over:
                budget = hold.limited[index]
                self.notify(budget.id, budget.label, hold.budgets.period, budget.limit_micro or 0, used, False)

    def _settled(self, budgets: RemoteSet, committed: Sequence[int], actual: int) -> None:
        """A batch of Redis settlements came back: tell `notify` about budgets at or over their threshold."""
        if self.notify is None or not actual:
            return
        for index, used in enumerate(committed):
            if used >= budgets.notify_from[index]:
                label, limit = budgets.labels[index], budgets.limits[index]
                self.notify(budgets.ids[index], label, budgets.period, limit, used, False)


def reservation(prices: Prices, body_bytes: int, max_output: int | None) -> int:
    """The worst-case cost of a request (micro-dollars) on one model: never below the cost of its input (every
    body byte a prompt token), never above `AMOUNT_CAP`, whatever `max_output` is (None: `DEFAULT_MAX_OUTPUT`;
    negative counts as 0, huge as `OUTPUT_CAP`)."""
    output = DEFAULT_MAX_OUTPUT if max_output is None else min(max(max_output, 0), OUTPUT_CAP)
    return min(worst_case_micro(prices, max(body_bytes, 0), output), AMOUNT_CAP)


def _resolve_budget(store: Store, name: str) -> tuple[str, float | None] | None:
    """An exported budget's configured name → (budget id, limit in USD), or None if it names nothing."""
    kind, _, ref = name.partition(":")
    if kind == "org" and not ref:
        return "org", store.org_limit()
    if kind == "group" and (group := store.get_group(ref)) is not None:
        return f"group:{group.id}", group.monthly_budget
    if kind == "user" and (user := store.find_user(ref)) is not None:
        return f"user:{user.id}", user.monthly_limit
    if kind == "key":
        key = next((k for k in store.list_keys() if k.name == ref or k.id == ref), None)
        if key is not None:
            return f"key:{key.id}", key.monthly_limit
    return None


def budget_gauges(
    store: Store, spend: Spend, names: list[str], now: float
) -> list[tuple[str, str, str, list[tuple[str, float]]]]:
    """Scrape-time gauges for the budgets the config exports: limit, spent (committed + reserved), remaining."""
    period = period_of(now, spend.reset_day)
    limits, spent, remaining = [], [], []
    for name in names:
        found = _resolve_budget(store, name)
        if found is None:
            continue
        budget, limit = found
        committed, reserved = spend.ledger.usage(budget, period)
        used = max(committed, store.spend_of(budget, period)) + reserved
        spent.append((name, used / MICRO))
        if limit is not None:
            limits.append((name, limit))
            remaining.append((name, max(limit - used / MICRO, 0.0)))
    return [
        ("router_budget_limit_usd", "Monthly limit of an exported budget.", "budget", limits),
        ("router_budget_spent_usd", "Spent or reserved this period on an exported budget.", "budget", spent),
        ("router_budget_remaining_usd", "What is left this period of an exported budget.", "budget", remaining),
    ]
