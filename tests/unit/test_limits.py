"""The failed-authentication budget and the request-body limits, on a fake clock; their config checks."""

from __future__ import annotations

import asyncio

import pytest

from router.config import AuthFailuresConfig, parse_config
from router.errors import ConfigError, GatewayError
from router.server.exchange import RequestIds
from router.server.limits import BURST, AuthFailures, BodyReads, client_address, is_loopback

BASE = "providers: {mock: {base_url: 'http://127.0.0.1:1/v1'}}\nmodels: [{id: mock/m}]\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(**settings) -> tuple[AuthFailures, Clock]:
    clock = Clock()
    config = AuthFailuresConfig(**{"max_failures": 3, "window": 10.0, "backoff_max": 8.0, **settings})
    return AuthFailures(config, clock), clock


def retry_after(failures: AuthFailures, client: str) -> int | None:
    try:
        failures.check(client)
    except GatewayError as exc:
        assert exc.status == 429 and exc.code == "too_many_auth_failures"
        return int(dict(exc.headers)["retry-after"])
    return None


def test_the_budget_then_doubling_blocks_up_to_the_maximum() -> None:
    failures, clock = limiter()
    for _ in range(2):
        failures.failed("203.0.113.9:5000")
    assert not failures.blocked
    failures.failed("203.0.113.9:5001")  # the third: blocked for backoff_initial
    assert retry_after(failures, "203.0.113.9:6000") == 1
    assert retry_after(failures, "198.51.100.1:6000") is None  # another address is not affected
    waits = []
    for _ in range(5):
        clock.now = failures.blocked["203.0.113.9"]
        assert retry_after(failures, "203.0.113.9:1") is None
        failures.failed("203.0.113.9:1")
        waits.append(retry_after(failures, "203.0.113.9:1"))
    assert waits == [2, 4, 8, 8, 8]


def test_a_quiet_address_starts_afresh() -> None:
    failures, clock = limiter()
    for _ in range(3):
        failures.failed("203.0.113.9:1")
    clock.now += 1 + 10.5  # the block (1 s) and then the window passed without a failure
    failures.prune()
    assert not failures.blocked
    failures.failed("203.0.113.9:1")
    assert retry_after(failures, "203.0.113.9:1") is None


def test_memory_is_bounded_and_loopback_exempt() -> None:
    failures, _ = limiter(max_tracked=100)
    for i in range(1000):
        for _ in range(3):
            failures.failed(f"10.0.{i // 256}.{i % 256}:1")
    assert len(failures._failures) == 100 and len(failures.blocked) == 100
    for client in ("127.0.0.1:5", "[::1]:5", "::1:5"):
        for _ in range(10):
            failures.failed(client)
    assert not any(is_loopback(a) for a in failures.blocked)
    strict, _ = limiter(exempt_loopback=False)
    for _ in range(3):
        strict.failed("127.0.0.1:5")
    assert retry_after(strict, "127.0.0.1:6") == 1


def test_client_addresses() -> None:
    assert client_address("203.0.113.9:443") == "203.0.113.9"
    assert client_address("[2001:db8::1]:443") == "2001:db8::1"
    assert client_address("::1:443") == "::1"
    assert client_address("unix") == "unix"


def test_request_ids_are_distinct_and_random() -> None:
    ids = RequestIds()
    made = [ids.new() for _ in range(5000)]  # several refills of the pool
    assert len(set(made)) == 5000 and all(len(i) == 28 and i.startswith("req_") for i in made)
    int(made[0][4:], 16)


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("{body_read_timeout: 0}", "server.body_read_timeout"),
        ("{max_pending_bodies: 0}", "server.max_pending_bodies"),
        ("{auth_failures: {max_failures: 0}}", "server.auth_failures.max_failures"),
        ("{auth_failures: {window: -1}}", "server.auth_failures.window"),
        ("{auth_failures: {backoff_initial: 10, backoff_max: 5}}", "server.auth_failures.backoff_max"),
        ("{auth_failures: {nope: 1}}", "nope"),
    ],
)
def test_config_ranges(server: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse_config(BASE + f"server: {server}\n")


def test_config_defaults() -> None:
    config = parse_config(BASE)
    assert config.server.body_read_timeout == 30 and config.server.max_pending_bodies == 256
    assert config.server.auth_failures.exempt_loopback and config.metrics.require_key is False


class _SlowBody:
    """An exchange whose body arrives when `arrived` is set."""

    def __init__(self, arrived: asyncio.Event) -> None:
        self.arrived = arrived

    async def read_json_body(self, limit: int) -> bytes:
        await self.arrived.wait()
        return b"{}"


def test_a_burst_of_bodies_is_read_but_bodies_past_the_grace_are_capped() -> None:
    async def scenario() -> None:
        reads = BodyReads(timeout=30, cap=4)
        arrived = asyncio.Event()
        # A burst far beyond the cap, all within the grace: every one is read.
        burst = [asyncio.create_task(reads.read(_SlowBody(arrived), 100)) for _ in range(40)]  # type: ignore[arg-type]
        await asyncio.sleep(0)
        assert reads.pending == 40
        # Beyond BURST x cap even young bodies are refused.
        more = [asyncio.create_task(reads.read(_SlowBody(arrived), 100)) for _ in range(BURST * 4)]  # type: ignore[arg-type]
        await asyncio.sleep(0)
        refused = [t for t in more if t.done() and isinstance(t.exception(), GatewayError)]
        assert len(refused) == 40 and reads.pending == BURST * 4
        arrived.set()
        assert await asyncio.gather(*burst, *(t for t in more if t not in refused)) == [b"{}"] * BURST * 4

        # Bodies still unfinished after the grace count against the cap: the next one is refused.
        reads.grace = 0.05
        stuck = asyncio.Event()
        held = [asyncio.create_task(reads.read(_SlowBody(stuck), 100)) for _ in range(4)]  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        with pytest.raises(GatewayError) as refused_one:
            await reads.read(_SlowBody(stuck), 100)  # type: ignore[arg-type]
        assert refused_one.value.code == "too_many_pending_bodies" and refused_one.value.status == 503
        stuck.set()
        await asyncio.gather(*held)

    asyncio.run(scenario())
