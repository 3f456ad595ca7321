"""What per-key guardrails and trigger auditing add to a request, side by side with the baseline.

- lookup: the old path read one org-wide policy (`app.guardrails`); the new one finds the caller's policy
  (org settings or its merged overrides, cached per key) and binds it to the request's audit trail;
- screening a chat request holding an email: unbound policy (no audit) vs bound (its trigger counted and
  encoded for the usage row, as `App._account` writes it);
- why the cache: compiling the merged policy on every request instead (what a per-request merge would cost);
- the bookkeeping of one finding (its action, the findings metric, the request's trigger, the usage row's
  JSON text): Rust `Actions.record` + `Triggers.encoded` against the Python loop they replaced, kept here as
  the baseline.
Run: `pytest benches/test_guardrail_overrides_bench.py --benchmark-only`.
"""

from __future__ import annotations

import msgspec
import pytest

from router._core import Actions, FindingCounts
from router.governance.keys import Principal
from router.governance.resolve import CATALOG, Effective
from router.guardrails.audit import Triggers
from router.guardrails.overrides import GuardrailOverride, merge
from router.guardrails.policy import Policy, screen_chat_request
from router.guardrails.settings import GuardrailSettings
from router.guardrails.stored import GuardrailPolicies, key_scope
from router.metrics import Metrics
from router.store import KeyRecord, open_store
from router.store.guardrail_tables import StoredGuardrails

ORG = GuardrailSettings(categories={"pci": "block"})
OVERRIDE = GuardrailOverride(categories={"pii": "block", "names": "mask"})
METRICS = Metrics()
EMAIL_MESSAGES = msgspec.json.encode(
    [{"role": "user", "content": "What is the capital of France? My email is jane.doe@example.com"}]
)

STORE = open_store(":memory:")
STORE.put_guardrails(StoredGuardrails(key_scope("k_strict"), msgspec.json.encode(OVERRIDE).decode(), 0.0))
POLICIES = GuardrailPolicies(STORE, ORG)
POLICIES.refresh()
PLAIN_ORG = Policy(ORG)
TRIGGERS: list[Triggers] = []


def principal(key_id: str) -> Principal:
    record = KeyRecord(id=key_id, name=key_id, prefix="rk-", created_at=0.0)
    return Principal(key_id, key_id, Effective(frozenset(), CATALOG, None), record)


PLAIN, STRICT = principal("k_plain"), principal("k_strict")


class _App:
    guardrails = PLAIN_ORG


APP = _App()


def bound(p: Principal) -> Policy:
    """What `App.guardrails_for` does."""
    TRIGGERS[:] = [Triggers()]
    return POLICIES.for_principal(p).for_request(TRIGGERS[0])


@pytest.mark.benchmark(group="guardrails-policy-lookup")
def test_lookup_baseline_org_attribute(benchmark) -> None:
    assert benchmark(lambda: APP.guardrails) is PLAIN_ORG


@pytest.mark.benchmark(group="guardrails-policy-lookup")
@pytest.mark.parametrize("who", [PLAIN, STRICT], ids=["no-override", "key-override"])
def test_lookup_per_key_and_bind(benchmark, who: Principal) -> None:
    policy = benchmark(bound, who)
    assert ("pii" in policy.blocking) == (who is STRICT)


@pytest.mark.benchmark(group="guardrails-screen-request-with-email")
def test_screen_unbound_baseline(benchmark) -> None:
    benchmark(lambda: screen_chat_request(PLAIN_ORG, METRICS, {"messages": msgspec.Raw(EMAIL_MESSAGES)}))


@pytest.mark.benchmark(group="guardrails-screen-request-with-email")
def test_screen_bound_with_audit_event(benchmark) -> None:
    def run() -> str | None:
        screen_chat_request(bound(PLAIN), METRICS, {"messages": msgspec.Raw(EMAIL_MESSAGES)})
        return TRIGGERS[0].encoded()

    assert benchmark(run) == '[["request","pii","EMAIL","mask",1]]'


@pytest.mark.benchmark(group="guardrails-policy-lookup")
def test_compile_merged_policy_per_request(benchmark) -> None:
    benchmark.pedantic(lambda: Policy(merge(ORG, [OVERRIDE])), rounds=3, iterations=1)


class _PythonTriggers:
    """The Python bookkeeping `Actions.record` and `Triggers` replaced (the baseline)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str, str], int] = {}

    def add(self, direction: str, category: str, kind: str, action: str, n: int) -> None:
        key = (direction, category, kind, action)
        self.counts[key] = self.counts.get(key, 0) + n

    def encoded(self) -> str | None:
        return msgspec.json.encode([(*key, n) for key, n in self.counts.items()]).decode() if self.counts else None


def _python_verdict(tally: list[tuple[str, str, int]], direction: str, triggers: _PythonTriggers) -> list[str]:
    blocked = []
    for category, kind, n in tally:
        action = "block" if category in PLAIN_ORG.blocking else "mask"
        METRICS._count("router_guardrail_findings", (category, direction, action), n)
        triggers.add(direction, category, kind, action, n)
        if action == "block":
            blocked.append(category)
    return sorted(set(blocked))


TALLY = [("pii", "EMAIL", 1)]
ACTIONS = Actions(sorted(PLAIN_ORG.blocking), [])
COUNTS = FindingCounts()
ENCODED = '[["request","pii","EMAIL","mask",1]]'


@pytest.mark.benchmark(group="guardrails-trigger-bookkeeping")
def test_bookkeeping_python_baseline(benchmark) -> None:
    def run() -> str | None:
        triggers = _PythonTriggers()
        assert not _python_verdict(TALLY, "request", triggers)
        return triggers.encoded()

    assert benchmark(run) == ENCODED


@pytest.mark.benchmark(group="guardrails-trigger-bookkeeping")
def test_bookkeeping_rust(benchmark) -> None:
    def run() -> str | None:
        triggers = Triggers()
        assert not ACTIONS.record(TALLY, "request", COUNTS, triggers)
        return triggers.encoded()

    assert benchmark(run) == ENCODED
