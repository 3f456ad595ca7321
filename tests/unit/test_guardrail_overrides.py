"""Per-key and per-group guardrail overrides: stricter only, merged as the strictest union; the per-worker
policy cache; and trigger audit events (never the value)."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from router.config import parse_config
from router.errors import ConfigError, GuardrailViolation
from router.governance.keys import Principal
from router.governance.resolve import CATALOG, Effective
from router.guardrails.audit import Triggers
from router.guardrails.overrides import GuardrailOverride, merge, org_actions, weakening
from router.guardrails.policy import Policy, screen_chat_request
from router.guardrails.settings import CustomPattern, GuardrailSettings
from router.guardrails.stored import GuardrailPolicies, group_scope, key_scope
from router.metrics import Metrics
from router.store import KeyRecord, SQLiteStore, open_store
from router.store.guardrail_tables import ORG_SCOPE, StoredGuardrails
from router.store.records import AuditEvent, UsageRow

EMAIL = "jane.doe@acme-corp.io"
ORG = GuardrailSettings(categories={"pci": "block"}, custom=[CustomPattern("ticket", "TCK-[0-9]{5}")])


def test_weakening_is_named_field_by_field() -> None:
    override = GuardrailOverride(
        categories={"pci": "mask", "pii": "off", "cards": "block", "banking": "loud", "names": "mask"},
        custom=[CustomPattern("Ticket", "X"), CustomPattern("emp", "(")],
    )
    found = dict(weakening(ORG, override))
    assert set(found) == {
        "categories.pci", "categories.pii", "categories.cards", "categories.banking", "custom[0].name",
        "custom[1].pattern",
    }  # fmt: skip
    assert "never mask" in found["categories.pci"] and "off" in found["categories.pii"]
    assert weakening(ORG, GuardrailOverride(categories={"pci": "block", "pii": "block", "names": "mask"})) == []


def test_merge_is_the_strictest_union_whatever_the_order() -> None:
    group = GuardrailOverride(categories={"names": "mask", "pii": "block"}, custom=[CustomPattern("emp", "E-[0-9]+")])
    key = GuardrailOverride(categories={"names": "block", "pii": "mask"}, custom=[CustomPattern("emp", "E-[0-9]+")])
    for order in ([group, key], [key, group]):
        merged = merge(ORG, order)
        assert org_actions(merged) == {**org_actions(ORG), "names": "block", "pii": "block"}
        assert [p.name for p in merged.custom] == ["ticket", "emp"]
    # The organisation tightened after an override was saved: the override cannot hold it back.
    later = GuardrailSettings(categories={"pci": "block", "pii": "block"})
    assert org_actions(merge(later, [GuardrailOverride(categories={"pii": "mask"})]))["pii"] == "block"
    # Guardrails off for the organisation: an override still turns its own categories on, and only those.
    off = merge(GuardrailSettings(enabled=False), [GuardrailOverride(categories={"secrets": "block"})])
    assert off.actions() == {"secrets": "block"}
    # Same name, different patterns: both kept.
    clash = merge(ORG, [GuardrailOverride(custom=[CustomPattern("ticket", "T#[0-9]+", action="block")])])
    assert [(p.name, p.action) for p in clash.custom] == [("ticket", "mask"), ("ticket_2", "block")]
    assert Policy(clash).blocked_custom == {"TICKET_2"}


@pytest.fixture
def store(db_url) -> Iterator[SQLiteStore]:
    s = open_store(db_url)
    yield s
    s.close()


def principal(key_id: str, groups: tuple[str, ...] = ()) -> Principal:
    record = KeyRecord(id=key_id, name=key_id, prefix="rk-", created_at=0.0, groups=groups)
    return Principal(key_id, key_id, Effective(frozenset(), CATALOG, None), record)


def put(store: SQLiteStore, scope: str, value: msgspec.Struct) -> None:
    store.put_guardrails(StoredGuardrails(scope, msgspec.json.encode(value).decode(), 0.0, "test"))


def test_policies_are_cached_per_key_and_compiled_once_per_signature(store: SQLiteStore) -> None:
    policies = GuardrailPolicies(store, ORG)
    policies.refresh()
    a, b, c = principal("k_a", ("g1",)), principal("k_b", ("g1",)), principal("k_c")
    assert policies.for_principal(a) is policies.org  # nothing stored: the organisation's, no lookups
    put(store, group_scope("g1"), GuardrailOverride(categories={"names": "mask"}))
    put(store, key_scope("k_c"), GuardrailOverride(categories={"names": "mask"}))
    policies.refresh()
    pa = policies.for_principal(a)
    assert "names" in pa.categories and policies.for_principal(a) is pa
    # Same merged settings: one compiled policy shared by every key that gets them.
    assert policies.for_principal(b) is pa and policies.for_principal(c) is pa
    # A different category set with the same custom patterns reuses the engine (compiling one is slow).
    put(store, key_scope("k_b"), GuardrailOverride(categories={"pii": "block"}))
    policies.refresh()
    pb = policies.for_principal(b)
    assert pb is not pa and pb.engine is pa.engine and pb.blocking >= {"pii", "pci"}


def test_the_stored_org_settings_replace_the_config_files_until_deleted(store: SQLiteStore) -> None:
    put(store, ORG_SCOPE, GuardrailSettings(categories={"pii": "block"}))
    policies = GuardrailPolicies(store, ORG)
    policies.refresh()  # what a starting worker does
    assert policies.org.blocking == frozenset({"pii"}) and not policies.org.blocked_custom
    store.delete_guardrails(ORG_SCOPE)
    policies.refresh()
    assert policies.org.settings == ORG


def test_each_trigger_is_an_audit_event_read_from_its_usage_row_without_the_value(db_url) -> None:
    policy = Policy(ORG)
    triggers = Triggers()
    bound = policy.for_request(triggers)
    assert policy.triggers is None  # binding copies; the shared policy is untouched
    f = {"messages": msgspec.Raw(msgspec.json.encode([{"role": "user", "content": f"{EMAIL} TCK-12345"}]))}
    screen_chat_request(bound, Metrics(), f)
    # Counts add up over the request (a stream finds values chunk by chunk), and go out with its usage row.
    f = {"messages": msgspec.Raw(msgspec.json.encode([{"role": "user", "content": f"and {EMAIL}"}]))}
    screen_chat_request(bound, Metrics(), f)
    card = {"messages": msgspec.Raw(b'[{"role":"user","content":"card 4111 1111 1111 1111"}]')}
    blocked = Triggers()
    with pytest.raises(GuardrailViolation):
        screen_chat_request(policy.for_request(blocked), Metrics(), card)
    assert Triggers().encoded() is None
    store = open_store(db_url)
    store.write_usage(
        [
            UsageRow("req_1", 5.0, "key_1", "chat", "m", "p", 200, guardrails=triggers.encoded()),
            UsageRow("req_2", 6.0, "key_1", "chat", None, None, 400, guardrails=blocked.encoded()),
            UsageRow("req_3", 7.0, "key_1", "chat", "m", "p", 200),
        ],
        [AuditEvent(5.5, "admin", "key.create", "key", "key_1")],
    )
    events = store.query_audit(action="guardrail.triggered")
    assert [(e.ts, e.actor, e.target_type, e.target_id) for e in events] == [
        (5.0, "key:key_1", "request", "req_1"), (5.0, "key:key_1", "request", "req_1"),
        (6.0, "key:key_1", "request", "req_2"),
    ]  # fmt: skip
    details = sorted((e.detail or {} for e in events), key=lambda d: (d["request_id"], d["category"]))
    assert details == [
        {"request_id": "req_1", "key_id": "key_1", "category": "custom", "type": "TICKET", "direction": "request",
         "action": "mask", "count": 1},
        {"request_id": "req_1", "key_id": "key_1", "category": "pii", "type": "EMAIL", "direction": "request",
         "action": "mask", "count": 2},
        {"request_id": "req_2", "key_id": "key_1", "category": "pci", "type": "CARD", "direction": "request",
         "action": "block", "count": 1},
    ]  # fmt: skip
    # In time order with the audit log's own events, and filtered like them.
    triggered = "guardrail.triggered"
    assert [e.action for e in store.query_audit()] == [triggered, triggered, "key.create", triggered]
    assert [e.target_id for e in store.query_audit(target="req_2")] == ["req_2"]
    assert [e.action for e in store.query_audit(actor="key:key_1", action="guardrail.*")] == [triggered] * 3
    assert store.query_audit(actor="admin", action="guardrail.triggered") == []
    assert [e.action for e in store.query_audit(action="key.*")] == ["key.create"]
    assert [e.target_id for e in store.query_audit(start=5.5, end=7.0)] == ["key_1", "req_2"]
    assert [e.detail and e.detail["category"] for e in store.query_audit(limit=1, offset=3)] == ["pci"]
    assert "4111" not in msgspec.json.encode(store.query_audit()).decode()


def test_a_bad_action_in_the_config_file_is_named_at_its_category() -> None:
    providers = "providers: {mock: {base_url: 'http://127.0.0.1:1/v1'}}\nmodels: [{id: mock/m}]\n"
    with pytest.raises(ConfigError, match=r"at guardrails\.categories\.pii: unknown action 'shout'"):
        parse_config(providers + "guardrails: {categories: {pii: shout}}")
