"""Knob parsing and precedence (no server)."""

from __future__ import annotations

import argparse

import msgspec
import pytest

from router.mock import add_arguments
from router.mock.knobs import (
    KnobError,
    Knobs,
    Resolved,
    from_env,
    from_headers,
    from_strings,
    resolve,
    split_model,
    to_env,
)
from router.mock.server import knobs_from_args

from mock_harness import run_mock


def test_headers_absent_is_none():
    assert from_headers({"content-type": "application/json"}) is None


def test_headers_are_converted_from_strings():
    knobs = from_headers(
        {
            "x-mock-tokens": "5",
            "x-mock-ttft-ms": "2.5",
            "x-mock-token-delay-ms": "1",
            "x-mock-fail": "HANG",
            "x-mock-retry-after": "7",
            "x-mock-echo": "1",
            "x-mock-tool-calls": "0",
        }
    )
    assert knobs == Knobs(
        tokens=5, ttft_ms=2.5, token_delay_ms=1.0, fail="hang", retry_after=7, echo=True, tool_calls=0
    )


@pytest.mark.parametrize(
    "headers",
    [
        {"x-mock-tokens": "many"},
        {"x-mock-tokens": "-1"},
        {"x-mock-tokens": "100001"},
        {"x-mock-tool-calls": "129"},
        {"x-mock-fail": "404"},
        {"x-mock-fail-rate": "1.5"},
    ],
)
def test_bad_header_values_raise(headers):
    with pytest.raises(KnobError, match="invalid mock knob in x-mock-"):
        from_headers(headers)


def test_body_knobs_decode_and_reject_unknown_names():
    assert msgspec.json.decode(b'{"tokens": 3, "fail": 429}', type=Knobs) == Knobs(tokens=3, fail="429")
    with pytest.raises(msgspec.ValidationError, match="unknown field `tokenz`"):
        msgspec.json.decode(b'{"tokenz": 3}', type=Knobs)


def test_split_model():
    assert split_model("gpt-4o") == ("gpt-4o", None)
    assert split_model("gpt-4o@fail=503@tokens=4") == ("gpt-4o", Knobs(fail="503", tokens=4))
    assert split_model("m@token-delay-ms=5@") == ("m", Knobs(token_delay_ms=5.0))
    assert split_model("m@") == ("m", None)
    with pytest.raises(KnobError) as info:
        split_model("m@tokens")
    assert info.value.param == "model"
    with pytest.raises(KnobError, match="unknown field `bogus`"):
        split_model("m@bogus=1")


def test_precedence_header_body_model_process():
    header = Knobs(tokens=1)
    body = Knobs(tokens=2, ttft_ms=20.0)
    model = Knobs(tokens=3, ttft_ms=30.0, token_delay_ms=3.0)
    process = Knobs(tokens=4, ttft_ms=40.0, token_delay_ms=4.0, retry_after=9)
    assert resolve([header, body, model, process]) == Resolved(
        tokens=1, ttft_ms=20.0, token_delay_ms=3.0, retry_after=9
    )
    assert resolve([None, None, None, Knobs()]) == Resolved()


def test_fail_rate_travels_with_fail():
    process = Knobs(fail="500", fail_rate=0.1)
    assert resolve([None, None, None, process]).fail_rate == 0.1
    # A request that asks for a failure gets it every time, whatever the process rate.
    merged = resolve([Knobs(fail="429"), None, None, process])
    assert (merged.fail, merged.fail_rate) == ("429", 1.0)
    # ... and can switch the process failure off.
    assert resolve([Knobs(fail="none"), None, None, process]).fail == "none"
    # A rate without a failure mode in the same source does nothing.
    assert resolve([Knobs(fail_rate=0.5), None, None, Knobs()]) == Resolved()


def test_env_round_trip():
    knobs = Knobs(tokens=3, ttft_ms=1.5, fail="drop", fail_rate=0.25, echo=True)
    env = to_env(knobs)
    assert env == {
        "ROUTER_MOCK_TOKENS": "3",
        "ROUTER_MOCK_TTFT_MS": "1.5",
        "ROUTER_MOCK_FAIL": "drop",
        "ROUTER_MOCK_FAIL_RATE": "0.25",
        "ROUTER_MOCK_ECHO": "1",
    }
    assert from_env({**env, "PATH": "/bin"}) == knobs
    with pytest.raises(KnobError, match="ROUTER_MOCK_"):
        from_env({"ROUTER_MOCK_TOKENS": "x"})


def test_from_strings_accepts_bool_spellings():
    assert from_strings({"echo": "true"}, "test").echo is True
    assert from_strings({"echo": "0"}, "test").echo is False


def test_cli_arguments():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.workers) == ("127.0.0.1", 9090, 1)
    assert knobs_from_args(args) == Knobs()
    args = parser.parse_args(["--tokens", "4", "--ttft-ms", "10", "--fail", "503", "--fail-rate", "0.5"])
    assert knobs_from_args(args) == Knobs(tokens=4, ttft_ms=10.0, fail="503", fail_rate=0.5)
    # --fail-rate alone is meaningless and dropped.
    assert knobs_from_args(parser.parse_args(["--fail-rate", "0.5"])) == Knobs()
    for bad in (["--fail", "404"], ["--fail-rate", "2"], ["--tokens", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_bad_env_fails_at_startup(tmp_path):
    bad_env = {"ROUTER_MOCK_FAIL": "sometimes"}
    with pytest.raises(RuntimeError, match="ROUTER_MOCK_"), run_mock(tmp_path, env=bad_env):
        pass
