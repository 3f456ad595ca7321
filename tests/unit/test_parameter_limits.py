"""Parameter ranges, the whole-body JSON check, and the spend reservation's floor and ceiling."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router._core import json_fault
from router.config import Prices
from router.errors import InvalidRequest
from router.protocols import limits
from router.protocols.validation import MAX_JSON_DEPTH, check_json
from router.spend.budgets import AMOUNT_CAP, Spend, reservation
from router.spend.cost import cost_micro
from router.spend.ledger import Ledger
from router.store import open_store

from servers import authenticate_now


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_tokens", True), ("max_tokens", 1.0), ("max_tokens", 0), ("max_tokens", 2**31), ("n", 129),
     ("temperature", 2.0001), ("temperature", False), ("top_p", -1e-9), ("seed", 2**63), ("logprobs", 0),
     ("top_logprobs", 21), ("frequency_penalty", "0"), ("reasoning_effort", -1), ("reasoning_effort", [])],
)  # fmt: skip
def test_chat_values_out_of_range_name_the_parameter(name: str, value: object) -> None:
    with pytest.raises(InvalidRequest) as err:
        limits.check_fields({name: msgspec.Raw(msgspec.json.encode(value))}, limits.CHAT)
    assert err.value.param == name and err.value.status == 400


def test_values_in_range_and_null_pass() -> None:
    fields = {"temperature": 2, "top_p": 0.5, "seed": -(2**63), "n": None, "logprobs": False, "reasoning_effort": "x"}
    limits.check_fields({k: msgspec.Raw(msgspec.json.encode(v)) for k, v in fields.items()}, limits.CHAT)
    limits.check_fields({"temperature": msgspec.Raw(b"1")}, limits.MESSAGES)
    with pytest.raises(InvalidRequest):
        limits.check_fields({"temperature": msgspec.Raw(b"1.01")}, limits.MESSAGES)


def test_a_number_out_of_float_range_is_refused_not_raised() -> None:
    with pytest.raises(InvalidRequest) as err:
        limits.check_fields({"temperature": msgspec.Raw(b"1e400")}, limits.CHAT)
    assert err.value.param == "temperature"


def test_output_limit_refuses_only_above_every_known_limit() -> None:
    limits.check_output_limit(1000, "max_tokens", [100, 1000])
    limits.check_output_limit(10**9, "max_tokens", [100, None])
    limits.check_output_limit(None, "max_tokens", [100])
    with pytest.raises(InvalidRequest) as err:
        limits.check_output_limit(1001, "max_output_tokens", [100, 1000])
    assert err.value.param == "max_output_tokens" and "1000" in err.value.message


def test_json_fault_kinds_and_offsets() -> None:
    assert json_fault(b'{"a": [1, {"b": "x"}]}', 3) is None
    assert json_fault(b'{"a": "\xff"}', 8) == ("utf8", 7)
    assert json_fault(b"[" * 5 + b"]" * 5, 4) is None  # an empty container opens no level
    assert json_fault(b"[" * 10 + b"1" + b"]" * 10, 4) == ("depth", 4)
    assert json_fault(b'{"a": 1,}', 8)[0] == "syntax"
    assert json_fault(b"[" * 100_000, 100_000) == ("depth", 1024)


def test_check_json_limit_is_documented_depth() -> None:
    at_limit = b"[" * MAX_JSON_DEPTH + b"1" + b"]" * MAX_JSON_DEPTH
    check_json(at_limit)
    with pytest.raises(InvalidRequest) as err:
        check_json(b"[" + at_limit + b"]")
    assert err.value.code == "json_too_deep"
    with pytest.raises(InvalidRequest) as err:
        check_json(b'{"x": "\xc3\x28"}')
    assert err.value.code == "invalid_json" and "byte 7" in err.value.message
    # A syntax error is left for the decoder to describe.
    check_json(b'{"a": }')


prices_st = st.builds(
    Prices,
    input=st.floats(0, 1000, allow_nan=False),
    output=st.floats(0, 1000, allow_nan=False),
    per_request=st.floats(0, 10, allow_nan=False),
)
any_int = st.one_of(
    st.integers(), st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 2**63 - 1, 2**64 - 1, -(2**63), 10**30])
)


@given(prices=prices_st, body_bytes=st.integers(0, 64 * 2**20), max_output=st.one_of(st.none(), any_int))
def test_reservation_is_never_below_the_input_cost_and_never_overflows(
    prices: Prices, body_bytes: int, max_output: int | None
) -> None:
    amount = reservation(prices, body_bytes, max_output)
    assert isinstance(amount, int)
    assert min(cost_micro(prices, body_bytes, 0), AMOUNT_CAP) <= amount <= AMOUNT_CAP


@pytest.fixture(scope="module")
def limited_spend(tmp_path_factory: pytest.TempPathFactory):
    from router.governance.keys import KeyCache, create_key

    path = str(tmp_path_factory.mktemp("limits") / "r.db")
    store = open_store(path)
    _, plain = create_key(store, "k")
    store.set_org_limit(1_000_000.0)
    spend = Spend(store, Ledger(path + "-budgets"), 1)
    spend.ledger.attach()
    yield spend, authenticate_now(KeyCache(store, None, {"m/a": "m"}), plain)
    store.close()


@given(body_bytes=st.integers(0, 2**24), max_output=any_int, prices=prices_st)
def test_the_ledger_reserves_at_least_the_input_and_settles_back(limited_spend, body_bytes, max_output, prices):
    """Through the real ledger: a reservation is the clamped worst case (or a 402), never negative, never an
    OverflowError, and settling it to 0 leaves nothing reserved."""
    spend, principal = limited_spend
    from router.spend.budgets import BudgetExceeded

    try:
        hold, _, period = spend.reserve(principal, [("m/a", prices, max_output)], body_bytes, 1_795_000_000.0)
    except BudgetExceeded:
        return
    assert hold is not None
    assert hold.amount >= min(cost_micro(prices, body_bytes, 0), AMOUNT_CAP)
    spend.settle(hold, 0)
    assert spend.ledger.usage("org", period)[1] == 0
