"""Routing policies in the config file: what is accepted, and the errors (file, key path, cycle) otherwise."""

from __future__ import annotations

import pytest

from router.config import parse_config
from router.errors import ConfigError

BASE = """
providers:
  p: {base_url: 'http://127.0.0.1:1/v1'}
models:
  - {id: p/a}
  - {id: p/b}
  - {id: p/c, capabilities: [streaming, tools]}
  - {id: p/emb, capabilities: [embeddings]}
"""


def config(policies: str):
    return parse_config(BASE + "policies:\n" + policies, "gw.yaml")


def error(policies: str) -> str:
    with pytest.raises(ConfigError) as err:
        config(policies)
    return str(err.value)


def test_issue_example_shape_is_accepted() -> None:
    cfg = config(
        """
  - name: rate-limit-safe
    type: fallback
    targets:
      - {model: p/a, retries: 2}
      - {model: policy/eu-spread}
  - name: eu-spread
    type: load_balance
    targets:
      - {model: p/b, weight: 70}
      - {policy: fast}
  - name: fast
    type: latency
    targets: [{model: p/a}, {model: p/c}]
"""
    )
    assert [p.name for p in cfg.policies] == ["rate-limit-safe", "eu-spread", "fast"]
    assert cfg.policies[0].targets[0].retries == 2
    assert cfg.policies[1].targets[1].policy == "fast"
    assert cfg.routing.backoff_initial == 0.5 and cfg.routing.backoff_max == 4.0 and cfg.routing.jitter == 0.1


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        (
            "  - {name: x, type: fallback, targets: [{model: p/a}, {model: p/zz}]}",
            "gw.yaml: at policies[0].targets[1].model: unknown model 'p/zz' (configured models: p/a, p/b, p/c, p/emb)",
        ),
        (
            "  - {name: x, type: fallback, targets: [{model: policy/nope}]}",
            "gw.yaml: at policies[0].targets[0].model: unknown policy 'policy/nope' (defined: x)",
        ),
        (
            "  - {name: x, type: fallback, targets: [{policy: nope}]}",
            "gw.yaml: at policies[0].targets[0].policy: unknown policy 'policy/nope' (defined: x)",
        ),
        (
            "  - {name: x, type: fallback, targets: [{model: p/a, policy: y}]}",
            "gw.yaml: at policies[0].targets[0]: give exactly one of 'model' or 'policy'",
        ),
        (
            "  - {name: x, type: fallback, targets: []}",
            "gw.yaml: at policies[0].targets: a policy needs at least one target",
        ),
        (
            "  - {name: x, type: fallback, targets: [{model: p/a, retries: 11}]}",
            "gw.yaml: at policies[0].targets[0].retries: expected 0 to 10, got 11",
        ),
        (
            "  - {name: x, type: load_balance, targets: [{model: p/a, weight: 0}]}",
            "gw.yaml: at policies[0].targets[0].weight: expected a positive number, got 0.0",
        ),
        (
            "  - {name: x, type: fallback, targets: [{model: p/a}, {model: p/a}]}",
            "gw.yaml: at policies[0].targets[1]: 'p/a' is listed twice (also targets[0])",
        ),
        (
            "  - {name: x, type: fallback, targets: [{model: p/a}]}\n"
            "  - {name: x, type: latency, targets: [{model: p/b}]}",
            "gw.yaml: at policies[1].name: duplicate policy name 'x' (also policies[0])",
        ),
        (
            "  - {name: 'bad name', type: fallback, targets: [{model: p/a}]}",
            "gw.yaml: at policies[0].name: policy name 'bad name' must be letters, digits, '.', '_' or '-' "
            "(at most 128)",
        ),
        (
            "  - {name: x, type: round_robin, targets: [{model: p/a}]}",
            "gw.yaml: at policies[0].type: Invalid enum value 'round_robin'",
        ),
        (
            "  - {name: x, type: fallback, targets: [{model: p/a}, {model: p/emb}]}",
            "gw.yaml: at policies[0].targets: policy 'x' mixes chat and embeddings models; "
            "a request can only be served by one kind",
        ),
        (
            "  - {name: x, type: fallback, targets: [{policy: y, retries: 1}]}\n"
            "  - {name: y, type: fallback, targets: [{model: p/a}]}",
            "gw.yaml: at policies[0].targets[0].retries: retries apply to model targets; "
            "'policy/y' retries its own targets",
        ),
    ],
)
def test_bad_policies_name_file_and_path(policies: str, expected: str) -> None:
    assert error(policies) == expected


def test_cycle_is_named() -> None:
    message = error(
        """
  - {name: top, type: fallback, targets: [{model: p/a}, {policy: a}]}
  - {name: a, type: load_balance, targets: [{model: p/b}, {policy: b}]}
  - {name: b, type: fallback, targets: [{policy: c}]}
  - {name: c, type: latency, targets: [{model: p/c}, {policy: a}]}
"""
    )
    assert message == "gw.yaml: at policies[1]: policies form a cycle: policy/a → policy/b → policy/c → policy/a"


def test_self_reference_is_a_cycle() -> None:
    assert error("  - {name: me, type: fallback, targets: [{model: p/a}, {policy: me}]}") == (
        "gw.yaml: at policies[0]: policies form a cycle: policy/me → policy/me"
    )


def test_diamond_is_not_a_cycle() -> None:
    cfg = config(
        """
  - {name: top, type: fallback, targets: [{policy: l}, {policy: r}]}
  - {name: l, type: fallback, targets: [{policy: shared}]}
  - {name: r, type: fallback, targets: [{policy: shared}]}
  - {name: shared, type: fallback, targets: [{model: p/a}]}
"""
    )
    assert len(cfg.policies) == 4


@pytest.mark.parametrize(
    ("routing", "expected"),
    [
        ("{backoff_initial: 0}", "gw.yaml: at routing.backoff_initial: expected a positive number of seconds"),
        ("{jitter: 1.5}", "gw.yaml: at routing.jitter: expected a fraction in [0, 1)"),
        ("{breaker_failures: 0}", "gw.yaml: at routing.breaker_failures: expected at least 1"),
        ("{explore: 2}", "gw.yaml: at routing.explore: expected a fraction in [0, 1]"),
        ("{refresh: 0}", "gw.yaml: at routing.refresh: expected a positive number of seconds"),
        ("{backoff_factor: 0.5}", "gw.yaml: at routing.backoff_factor: expected a number >= 1"),
    ],
)
def test_bad_routing_settings(routing: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE + f"routing: {routing}\n", "gw.yaml")
    assert str(err.value) == expected
