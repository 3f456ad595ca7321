"""Tests of the `router._core` routing bindings: `Rendezvous` and `LatencyTracker`."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router._core import LatencyTracker, Rendezvous

from routing_reference import PyLatencyWindow, PyRendezvous

NAMES = [f"provider-{i}/model-{i}" for i in range(10)]
WEIGHTS = [30.0, 20.0, 10.0, 10.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_pick_matches_the_python_reference() -> None:
    rust, python = Rendezvous(NAMES, WEIGHTS), PyRendezvous(NAMES, WEIGHTS)
    keys = [f"trace-{i}" for i in range(5000)]
    assert [rust.pick(k) for k in keys] == [python.pick(k) for k in keys]


@given(st.text(max_size=64))
def test_rank_starts_with_the_pick_and_is_a_permutation(key: str) -> None:
    r = Rendezvous(NAMES, WEIGHTS)
    rank = r.rank(key)
    assert rank[0] == r.pick(key) and sorted(rank) == list(range(10))


def test_distribution_and_normalised_weights() -> None:
    r = Rendezvous(["a", "b", "c"], [7, 2, 1])
    assert r.weights == pytest.approx([0.7, 0.2, 0.1]) and len(r) == 3
    counts = Counter(r.pick(f"user-{i}") for i in range(10_000))
    for index, share in enumerate((0.7, 0.2, 0.1)):
        assert abs(counts[index] / 10_000 - share) <= 0.02


@pytest.mark.parametrize(
    ("targets", "weights", "message"),
    [
        ([], [], "at least one target is needed"),
        (["a"], [1, 2], "1 targets but 2 weights"),
        (["a", "b"], [1, 0], "weight of target 1 is 0: weights must be finite and positive"),
        (["a", "b"], [1, float("nan")], "weight of target 1 is NaN: weights must be finite and positive"),
        (["a", "a"], [1, 1], 'target "a" is listed twice'),
    ],
)
def test_rendezvous_rejects_bad_input(targets: list[str], weights: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rendezvous(targets, weights)


def test_window_matches_the_python_reference() -> None:
    rust, python = LatencyTracker(), PyLatencyWindow()
    for i in range(300):
        value = 0.05 + (i * 7919 % 97) / 1000
        rust.record("m", value, float(i))
        python.record("m", value, float(i))
        assert rust.score("m", float(i)) == pytest.approx(python.scores["m"])
    assert rust.samples("m", 299.0) == 100


def test_tracker_defaults_to_a_monotonic_clock_and_rejects_bad_values() -> None:
    t = LatencyTracker(seed=1)
    t.record("m", 0.25)
    assert t.samples("m") == 1 and t.score("m") == 0.25 and t.min_samples == 5
    assert t.score("unknown") is None and t.samples("unknown") == 0
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="latency must be a finite, non-negative number of seconds"):
            t.record("m", bad)
    with pytest.raises(ValueError, match="explore must be between 0 and 1"):
        LatencyTracker(explore=2.0)
    with pytest.raises(ValueError, match="window must hold at least one sample"):
        LatencyTracker(window=0)


def test_failures_record_the_penalty() -> None:
    t = LatencyTracker(failure_penalty=12.0)
    t.record_failure("m", 0.5, 1.0)
    assert t.score("m", 1.0) == 12.0


def test_tracker_is_safe_to_share_between_threads() -> None:
    t = LatencyTracker(window=50, seed=3)
    names = ["a", "b", "c"]
    errors: list[BaseException] = []

    def hammer(worker: int) -> None:
        try:
            for i in range(3000):
                t.record(names[(i + worker) % 3], 0.01 * (1 + i % 7), float(i))
                order = t.order(names, float(i))
                assert sorted(order) == [0, 1, 2]
        except BaseException as exc:  # reported below: an assert in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [t.samples(n, 3000.0) for n in names] == [50, 50, 50]
