"""The key cache and the store together: effective sets precomputed, invalidated by any change, expiry once."""

from __future__ import annotations

import pytest

from router.errors import Unauthorized
from router.governance import specs
from router.governance.keys import KeyCache, log_expiry
from router.governance.rbac import CLI_ACTOR, Actor
from router.governance.service import Governance
from router.store import open_store

from servers import authenticate_now

CATALOG = {"a/x": "a", "a/y": "a", "b/z": "b"}
METADATA = {"a/x": ("eu-west-1", False), "a/y": ("us", True), "b/z": ("us", False)}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(tmp_path, db_url):
    path = db_url
    store = open_store(path)
    clock = Clock()
    gov = Governance(store, CATALOG, METADATA, clock)
    yield path, store, gov, clock
    store.close()


def test_effective_set_is_cached_and_any_change_invalidates_it(setup) -> None:
    path, _, gov, clock = setup
    _, secret = gov.create_key(CLI_ACTOR, specs.KeySpec("k"))
    worker = open_store(path)  # another process's connection, as a granian worker has
    cache = KeyCache(worker, None, CATALOG, clock)
    assert authenticate_now(cache, secret).allowed == frozenset(CATALOG)
    # A cache hit needs no query at all.
    worker.find_key = worker.approval = None
    assert authenticate_now(cache, secret).allowed == frozenset(CATALOG)
    del worker.find_key, worker.approval
    gov.approve(CLI_ACTOR, ["a/x", "b/z"])
    assert authenticate_now(cache, secret).allowed == {"a/x", "b/z"}
    gov.create_access_list(CLI_ACTOR, specs.AccessListSpec("l", providers=["a"]))
    gov.attach(CLI_ACTOR, "l", specs.Attachment(key_ids=[authenticate_now(cache, secret).key_id]))
    assert authenticate_now(cache, secret).allowed == {"a/x"}
    worker.close()


def test_require_approval_denies_everything_until_approved(setup) -> None:
    _, store, gov, clock = setup
    _, secret = gov.create_key(CLI_ACTOR, specs.KeySpec("k"))
    store.require_approval()
    store.require_approval()
    cache = KeyCache(store, None, CATALOG, clock)
    assert authenticate_now(cache, secret).allowed == frozenset()
    gov.apply_preset(CLI_ACTOR, "eu-only", replace=False)
    assert authenticate_now(cache, secret).allowed == {"a/x"}
    gov.apply_preset(CLI_ACTOR, "zdr-only", replace=True)
    assert authenticate_now(cache, secret).allowed == {"a/y"}


def test_expiry_event_is_written_once_however_many_workers_race(setup) -> None:
    path, store, gov, clock = setup
    record, secret = gov.create_key(CLI_ACTOR, specs.KeySpec("k", expires_at="1h"))
    workers = [KeyCache(open_store(path), None, CATALOG, clock) for _ in range(3)]
    for w in workers:
        assert authenticate_now(w, secret).key_id == record.id
    clock.now += 3601
    for w in workers * 2:
        with pytest.raises(Unauthorized, match="API key expired at 2027-01-15T09:00:00Z"):
            authenticate_now(w, secret)
    assert not log_expiry(store, record.id, record.expires_at, clock.now)
    events = store.query_audit(action="key.expired")
    assert len(events) == 1 and events[0].target_id == record.id
    assert store.get_key(record.id).status(clock.now) == "expired"


def test_standard_users_cannot_escape_their_groups(setup) -> None:
    _, store, gov, _ = setup
    gov.approve(CLI_ACTOR, list(CATALOG))
    user = gov.create_user(CLI_ACTOR, specs.UserSpec("dev@corp.test"))
    gov.create_access_list(CLI_ACTOR, specs.AccessListSpec("team", models=["a/x"]))
    gov.create_access_list(CLI_ACTOR, specs.AccessListSpec("wider", providers=["a"]))
    gov.create_group(CLI_ACTOR, specs.GroupSpec("devs", access_list="team"))
    gov.set_member(CLI_ACTOR, "devs", specs.MemberSpec(user.id), must_exist=False)

    actor = Actor(id="key:x", role="standard", user_id=user.id, groups=store.memberships(user.id))
    record, _ = gov.create_key(actor, specs.KeySpec("mine", access_list="team"))
    assert record.owner_id == user.id
    with pytest.raises(Exception, match="do not grant you") as err:
        gov.create_key(actor, specs.KeySpec("wide", access_list="wider"))
    assert err.value.status == 403
    with pytest.raises(Exception, match="admin may change users") as err:
        gov.update_user(actor, user.id, specs.UserUpdate(role="admin"))
    assert err.value.status == 403


def test_a_dangling_access_list_grants_nothing(setup) -> None:
    _, store, gov, clock = setup
    gov.create_access_list(CLI_ACTOR, specs.AccessListSpec("l", models=["a/x"]))
    _, secret = gov.create_key(CLI_ACTOR, specs.KeySpec("k", access_list="l"))
    # Deleting an attached list is refused...
    with pytest.raises(Exception, match="detach it first"):
        gov.delete_access_list(CLI_ACTOR, "l")
    # ...and if a row vanished anyway, the key falls to nothing, not to a wider layer.
    store._conn.execute("DELETE FROM access_lists")
    with store.transaction():
        pass
    assert authenticate_now(KeyCache(store, None, CATALOG, clock), secret).allowed == frozenset()
