"""Per-request spend cost from Python: reserve the worst case and settle the actual, against 4 limited budgets
(key, user, group, org) vs a key with no limit anywhere (the no-op path)."""

from __future__ import annotations

import pytest

from router.config import Prices
from router.governance import specs
from router.governance.keys import KeyCache, create_key
from router.governance.rbac import CLI_ACTOR
from router.governance.service import Governance
from router.spend.budgets import Spend
from router.spend.ledger import Ledger, ledger_path
from router.store import open_store

CATALOG = {"m/a": "m"}
PRICES = Prices(input=2.5, output=10.0)
NOW = 1_795_000_000.0


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("spend") / "bench.db")
    store = open_store(path)
    gov = Governance(store, CATALOG, {"m/a": ("us", False)})
    store.set_org_limit(1e6)
    user = gov.create_user(CLI_ACTOR, specs.UserSpec("bench@corp.test", monthly_limit=1e6))
    gov.create_group(CLI_ACTOR, specs.GroupSpec("g", monthly_budget=1e6))
    gov.set_member(CLI_ACTOR, "g", specs.MemberSpec(user.id), must_exist=False)
    _, limited = gov.create_key(CLI_ACTOR, specs.KeySpec("k", owner=specs.Owner("user", user.id), monthly_limit=1e6))
    keys = KeyCache(store, None, CATALOG)
    spend = Spend(store, Ledger(ledger_path(path)), 1)
    spend.ledger.attach()
    # The no-limit case needs an organisation without a limit: a second database.
    plain_store = open_store(path + "-plain")
    _, plain = create_key(plain_store, "plain")
    plain_spend = Spend(plain_store, Ledger(ledger_path(path + "-plain")), 1)
    plain_spend.ledger.attach()
    yield {
        "limited": (spend, keys.authenticate(limited)),
        "no limits": (plain_spend, KeyCache(plain_store, None, CATALOG).authenticate(plain)),
    }
    store.close()
    plain_store.close()


@pytest.mark.parametrize("kind", ["no limits", "limited"])
def test_reserve_and_settle(benchmark, setup, kind) -> None:
    spend, principal = setup[kind]

    def request() -> None:
        hold, _, _ = spend.reserve(principal, [("m/a", PRICES, 100)], 400, NOW)
        if hold is not None:
            spend.settle(hold, 1000)

    benchmark(request)
