"""A worker's policy set from config + store: reloads, key scopes, and a stored policy a config edit broke."""

from __future__ import annotations

import logging

import pytest

from router.config import PolicyTarget, parse_config
from router.metrics import Metrics
from router.routing import Catalog, Routing
from router.routing.stored import StoredPolicies
from router.store import open_store
from router.store.routing_tables import StoredPolicy

CONFIG = """
providers: {up: {base_url: 'http://127.0.0.1:1/v1'}}
models: [{id: up/a}, {id: up/b}]
policies: [{name: file, type: fallback, targets: [{model: up/a}]}]
"""


def policy(name: str, model: str, key_id: str | None = None) -> StoredPolicy:
    return StoredPolicy(name, key_id, "fallback", [PolicyTarget(model=model)], 0.0, 0.0)


def test_reload_scopes_and_a_broken_stored_policy(caplog: pytest.LogCaptureFixture, db_url) -> None:
    config = parse_config(CONFIG, "t.yaml")
    routing = Routing(config, Catalog(config, created=0), Metrics(), 0)
    store = open_store(db_url)
    stored = StoredPolicies(store, routing, config.policies)
    stored.refresh()
    assert sorted(routing.policies.by_id) == ["policy/file"]

    store.put_policy(policy("api", "up/b"))
    store.put_policy(policy("mine", "up/a", key_id="key_1"))
    stored.refresh()
    assert routing.policies.get("policy/api") is not None
    assert routing.policies.get("policy/mine", "key_1") is not None
    assert routing.policies.get("policy/mine", "key_2") is None and routing.policies.get("policy/mine") is None
    assert "mine" not in routing.policies.defined("key_2")
    listed = routing.models_list(None, "key_1").decode()
    assert "policy/mine" in listed and "policy/mine" not in routing.models_list(None, "key_2").decode()

    before = routing.policies
    stored.refresh()
    assert routing.policies is before  # nothing changed: nothing recompiled

    # Written when the model existed; the config no longer has it. Workers keep serving the file's policies.
    store.put_policy(policy("stale", "up/gone"))
    with caplog.at_level(logging.ERROR, "router.routing"):
        stored.refresh()
    assert sorted(routing.policies.by_id) == ["policy/file"]
    assert "unknown model 'up/gone'" in caplog.text
    store.delete_policy("stale")
    stored.refresh()
    assert sorted(routing.policies.by_id) == ["policy/api", "policy/file", "policy/mine"]
