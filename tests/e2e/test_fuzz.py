"""Fuzzing a live gateway (guardrails on, one unlimited and one limited key) with hypothesis-generated requests:
every proxy endpoint, and every operation of the management API as its served OpenAPI document describes it.

Every answer must be an HTTP answer (no reset), below 500, with an error body in the endpoint's API shape, and a
refused request must not have reached the upstream (the mock counts what does). The budget is bounded:
800 requests, well under a minute. `benches/fuzz.py` runs the same generators with a larger budget and counts.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings

import fuzzing

from servers import Server, gateway_env, manage_call, start_gateway

# Derandomized: the suite replays the same cases on every run, so a red CI always names a reproducible case;
# `benches/fuzz.py` explores new ones with a seed of its own.
FUZZ = settings(
    max_examples=100,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Target:
    def __init__(self, server: Server, mock_base: str) -> None:
        self.server = server
        admin = server.env["ROUTER_ADMIN_KEY"]

        def key(**spec) -> str:
            r = manage_call(server.base, admin, "POST", "/apikey", json={"name": "fuzz", **spec})
            assert r.status_code == 201, r.text
            return r.json()["key"]

        self.keys = {"admin": admin, "key": key(), "limited": key(monthly_limit=0.01)}
        self.client = httpx.Client(timeout=30)
        self.upstream = fuzzing.Upstream(self.client, mock_base)
        self.upstream.calls()
        self.document = self.client.get(f"{server.base}/v1/manage/openapi.json").json()

    def check(self, case: fuzzing.Case) -> None:
        outcome = fuzzing.send(self.client, self.server.base, case, self.keys)
        problems = list(outcome.problems)
        forwarded = fuzzing.forwarded_when_refused(case, outcome, self.upstream.calls())
        if forwarded is not None:
            problems.append(forwarded)
        assert not problems, f"{problems} for {fuzzing.describe(case)}"


@pytest.fixture(scope="module")
def target(mock_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    root = tmp_path_factory.mktemp("fuzz")
    config = root / "config.yaml"
    config.write_text(fuzzing.CONFIG)
    server = start_gateway(gateway_env(root / "router.db", mock_server.base, config))
    fuzz = Target(server, mock_server.base)
    yield fuzz
    fuzz.client.close()
    log = server.stop()
    # No answer hid a traceback behind a 4xx.
    assert "Traceback" not in log, log[-4000:]


@pytest.mark.parametrize("path", fuzzing.PROXY)
def test_proxy_endpoints_survive_hostile_requests(target: Target, path: str) -> None:
    @FUZZ
    @given(case=fuzzing.proxy_cases(path))
    def run(case: fuzzing.Case) -> None:
        target.check(case)

    run()


def test_management_api_survives_hostile_requests(target: Target) -> None:
    @settings(FUZZ, max_examples=300)
    @given(case=fuzzing.management_cases(target.document))
    def run(case: fuzzing.Case) -> None:
        target.check(case)

    run()
    # The gateway still serves after the management fuzz changed what it may (limits, approvals, guardrails).
    assert target.client.get(f"{target.server.base}/healthz").status_code == 200


def test_the_generators_reach_every_management_operation(target: Target) -> None:
    operations = fuzzing.management_operations(target.document)
    assert len(operations) > 60
    assert {method for method, _, _ in operations} >= {"GET", "POST", "PUT", "PATCH", "DELETE"}
