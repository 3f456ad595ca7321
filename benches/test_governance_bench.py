"""Per-request governance cost from Python: authenticate + effective-set check, governed key vs plain key.

The governed key has everything the resolution rule reads (approved list, owner in three groups with lists,
its own list and group, an expiry); the plain key has none of it. Both are cache hits, as in steady state.
"""

from __future__ import annotations

import pytest

from router.governance import specs
from router.governance.keys import KeyCache, create_key
from router.governance.rbac import CLI_ACTOR
from router.governance.service import Governance
from router.store import open_store

CATALOG = {f"up/m{i:02d}": "up" for i in range(60)}
MODEL = "up/m59"


@pytest.fixture(scope="module")
def cache_and_keys(tmp_path_factory):
    store = open_store(str(tmp_path_factory.mktemp("gov") / "bench.db"))
    gov = Governance(store, CATALOG, {m: ("us", False) for m in CATALOG})
    gov.approve(CLI_ACTOR, list(CATALOG)[-50:])
    user = gov.create_user(CLI_ACTOR, specs.UserSpec("bench@corp.test"))
    for i in range(3):
        gov.create_access_list(CLI_ACTOR, specs.AccessListSpec(f"l{i}", patterns=[f"up/m{i}*"]))
        gov.create_group(CLI_ACTOR, specs.GroupSpec(f"g{i}", access_list=f"l{i}"))
        gov.set_member(CLI_ACTOR, f"g{i}", specs.MemberSpec(user.id), must_exist=False)
    gov.create_access_list(CLI_ACTOR, specs.AccessListSpec("key", models=list(CATALOG)[-20:]))
    spec = specs.KeySpec(
        "governed", owner=specs.Owner("user", user.id), groups=["g0"], access_list="key", expires_at="30d"
    )
    _, governed = gov.create_key(CLI_ACTOR, spec)
    _, plain = create_key(store, "plain")
    cache = KeyCache(store, None, CATALOG)
    yield cache, {"plain": plain, "governed": governed}
    store.close()


@pytest.mark.parametrize("kind", ["plain", "governed"])
def test_authenticate_and_check(benchmark, cache_and_keys, kind) -> None:
    cache, keys = cache_and_keys
    key = keys[kind]

    def governed_request() -> bool:
        return MODEL in cache.authenticate(key).allowed

    assert benchmark(governed_request) is True
