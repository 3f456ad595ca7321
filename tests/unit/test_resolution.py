"""The resolution rule, table-driven: key list > group union > approved > catalog, approved always a ceiling."""

from __future__ import annotations

import pytest

from router.governance.expiry import parse_expiry
from router.governance.resolve import APPROVED, CATALOG, GROUP_LISTS, KEY_LIST, resolve
from router.governance.rules import PRESETS, entry_error, preset_models, select
from router.store.records import Rules

CATALOG_MODELS = {
    "openai/gpt-4o": "openai",
    "openai/gpt-4o-mini": "openai",
    "openai/o1-preview": "openai",
    "openai/o1-mini": "openai",
    "anthropic/claude-sonnet-4-5": "anthropic",
    "anthropic/claude-haiku-4-5": "anthropic",
    "vertex/gemini-2.5-flash": "vertex",
}
ALL = frozenset(CATALOG_MODELS)


def R(*models: str, providers=(), patterns=(), deny=()) -> Rules:
    return Rules(list(models), list(providers), list(patterns), list(deny))


CASES = [
    # (name, key rules, group rules, approved, expected set, expected layer)
    ("nothing configured: full catalog", None, [], None, ALL, CATALOG),
    ("approved only", None, [], frozenset({"openai/gpt-4o"}), {"openai/gpt-4o"}, APPROVED),
    ("approval configured but empty: nothing", None, [], frozenset(), set(), APPROVED),
    (
        "key list wins over groups",
        R("openai/gpt-4o"),
        [R("anthropic/claude-haiku-4-5")],
        None,
        {"openai/gpt-4o"},
        KEY_LIST,
    ),
    (
        "group lists are a union",
        None,
        [R("openai/gpt-4o"), R("anthropic/claude-haiku-4-5")],
        None,
        {"openai/gpt-4o", "anthropic/claude-haiku-4-5"},
        GROUP_LISTS,
    ),
    (
        "approved is a ceiling on the key list",
        R("openai/gpt-4o", "openai/gpt-4o-mini"),
        [],
        frozenset({"openai/gpt-4o"}),
        {"openai/gpt-4o"},
        KEY_LIST,
    ),
    (
        "approved is a ceiling on group lists",
        None,
        [R(providers=["anthropic"])],
        frozenset({"anthropic/claude-haiku-4-5", "openai/gpt-4o"}),
        {"anthropic/claude-haiku-4-5"},
        GROUP_LISTS,
    ),
    ("an empty key list grants nothing", R(), [R("openai/gpt-4o")], None, set(), KEY_LIST),
    (
        "provider allow",
        R(providers=["openai"]),
        [],
        None,
        {"openai/gpt-4o", "openai/gpt-4o-mini", "openai/o1-preview", "openai/o1-mini"},
        KEY_LIST,
    ),
    (
        "pattern allow with a deny that wins",
        R(patterns=["openai/*"], deny=["openai/o1-*"]),
        [],
        None,
        {"openai/gpt-4o", "openai/gpt-4o-mini"},
        KEY_LIST,
    ),
    (
        "deny a whole provider",
        R(patterns=["*"], deny=["openai"]),
        [],
        None,
        ALL - {m for m in ALL if m.startswith("openai")},
        KEY_LIST,
    ),
    (
        "deny an exact id over a provider allow",
        R(providers=["anthropic"], deny=["anthropic/claude-sonnet-4-5"]),
        [],
        None,
        {"anthropic/claude-haiku-4-5"},
        KEY_LIST,
    ),
    ("suffix pattern", R(patterns=["*-mini"]), [], None, {"openai/gpt-4o-mini", "openai/o1-mini"}, KEY_LIST),
    ("unknown ids grant nothing", R("openai/gpt-9"), [], None, set(), KEY_LIST),
]


@pytest.mark.parametrize(
    ("key", "groups", "approved", "expected", "layer"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_resolution_rule(key, groups, approved, expected, layer) -> None:
    effective = resolve(CATALOG_MODELS, key, groups, approved)
    assert effective.models == frozenset(expected)
    assert effective.layer == layer


def test_denied_by_names_the_ceiling_when_the_model_is_unapproved() -> None:
    effective = resolve(CATALOG_MODELS, R("openai/gpt-4o", "openai/gpt-4o-mini"), [], frozenset({"openai/gpt-4o"}))
    assert effective.denied_by("openai/gpt-4o-mini") == APPROVED
    assert effective.denied_by("anthropic/claude-haiku-4-5") == APPROVED
    unrestricted = resolve(CATALOG_MODELS, R("openai/gpt-4o"), [], None)
    assert unrestricted.denied_by("anthropic/claude-haiku-4-5") == KEY_LIST


def test_a_model_added_to_the_catalog_later_is_not_approved() -> None:
    approved = frozenset({"openai/gpt-4o"})
    grown = {**CATALOG_MODELS, "openai/gpt-5": "openai"}
    assert "openai/gpt-5" not in resolve(grown, None, [], approved).models
    # ...even for a list whose pattern matches it.
    assert "openai/gpt-5" not in resolve(grown, R(patterns=["openai/*"]), [], approved).models


def test_pattern_metacharacters_are_literal() -> None:
    catalog = {"a/x.y": "a", "a/xzy": "a"}
    assert select(R(patterns=["a/x.*"]), catalog) == {"a/x.y"}


@pytest.mark.parametrize("entry", ["", "has space", "semi;colon", "x" * 201])
def test_bad_rule_entries_are_named(entry) -> None:
    assert entry_error(entry)


METADATA = {
    "a/eu": ("eu-central-1", False),
    "a/eu-zdr": ("eu-west-1", True),
    "a/us": ("us-east-1", False),
    "a/us-zdr": ("us", True),
    "a/global": ("global", False),
}


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("eu-only", ["a/eu", "a/eu-zdr"]),
        ("us-only", ["a/us", "a/us-zdr"]),
        ("zdr-only", ["a/eu-zdr", "a/us-zdr"]),
        ("eu-zdr", ["a/eu", "a/eu-zdr", "a/us-zdr"]),
    ],
)
def test_presets_follow_catalog_metadata(preset, expected) -> None:
    assert preset in PRESETS
    assert preset_models(preset, METADATA) == expected


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("90d", NOW + 90 * 86400), ("12h", NOW + 12 * 3600), ("30m", NOW + 1800), ("2w", NOW + 14 * 86400)],
)
def test_expiry_durations(value, expected) -> None:
    assert parse_expiry(value, NOW) == expected


def test_expiry_absolute_times() -> None:
    assert parse_expiry("2030-01-01T00:00:00Z", NOW) == 1_893_456_000.0
    assert parse_expiry("2030-01-01T01:00:00+01:00", NOW) == 1_893_456_000.0
    assert parse_expiry("2030-01-01", NOW) == 1_893_456_000.0


@pytest.mark.parametrize("value", ["0d", "soon", "2020-01-01T00:00:00Z", "-5d", NOW - 1, True])
def test_bad_expiry_is_refused(value) -> None:
    with pytest.raises(ValueError):
        parse_expiry(value, NOW)
