"""Per-key and per-group guardrail overrides: stricter only.

An override may turn more categories on, switch one from mask to block, and add custom patterns. It can
never weaken the organisation's settings: a category the organisation scans can not be turned off, and a
block can not become a mask. Writes that try are refused naming the field (`weakening`); and since the
organisation's settings may change after an override was saved, the merge itself also only ever keeps the
strictest action (`merge`), so no order of changes can open a gap.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from .._core import Guardrails
from .settings import CategoryAction, CustomPattern, GuardrailSettings

_RANK = {"off": 0, "mask": 1, "block": 2}


class GuardrailOverride(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`PUT /v1/manage/apikey/{id}/guardrails` and `PUT /v1/manage/group/{id}/guardrails`."""

    # Per category: mask or block (never weaker than the organisation's action); checked by `weakening`.
    categories: dict[str, str] = {}
    # Extra named regexes; each may set its own action (default: the organisation's default action).
    custom: list[CustomPattern] = []


def org_actions(org: GuardrailSettings) -> dict[str, CategoryAction]:
    """Every built-in category and what the organisation does with it (off included)."""
    on = org.actions()
    return {c: on.get(c, "off") for c in Guardrails.categories() if c != "custom"}


def weakening(org: GuardrailSettings, override: GuardrailOverride) -> list[tuple[str, str]]:
    """(path, message) for every part of `override` that is unknown, invalid or weaker than `org`."""
    current = org_actions(org)
    out: list[tuple[str, str]] = []
    for name, action in override.categories.items():
        path = f"categories.{name}"
        if name not in current:
            out.append((path, f"unknown category {name!r}; expected one of {', '.join(sorted(current))}"))
        elif action not in ("mask", "block"):
            why = "it cannot turn a category off" if action == "off" else f"unknown action {action!r}"
            out.append((path, f"an override may only set mask or block: {why}"))
        elif _RANK[action] < _RANK[current[name]]:
            out.append((path, f"the organisation blocks {name}; an override can make it stricter, never mask it"))
    taken = {p.name.upper() for p in org.custom} if org.enabled else set()
    for i, p in enumerate(override.custom):
        if p.name.upper() in taken:
            out.append((f"custom[{i}].name", f"a custom pattern named {p.name!r} already exists"))
        taken.add(p.name.upper())
        try:
            Guardrails([(p.name, p.pattern)])
        except ValueError as exc:
            out.append((f"custom[{i}].pattern", str(exc)))
    return out


def merge(org: GuardrailSettings, overrides: Sequence[GuardrailOverride]) -> GuardrailSettings:
    """The organisation's settings tightened by every override: the strictest action of each category wins,
    and custom patterns are the union (a name taken twice with different patterns keeps both, renamed)."""
    categories = org_actions(org)
    own = org.custom if org.enabled else []
    custom = [msgspec.structs.replace(p, action=p.action or org.default_action) for p in own]
    for override in overrides:
        for name, action in override.categories.items():
            if _RANK.get(action, 0) > _RANK[categories.get(name, "off")]:
                categories[name] = action
        for p in override.custom:
            p = msgspec.structs.replace(p, action=p.action or org.default_action)
            same = next((i for i, q in enumerate(custom) if q.name.upper() == p.name.upper()), None)
            if same is None:
                custom.append(p)
            elif custom[same].pattern == p.pattern:
                if _RANK[p.action or "mask"] > _RANK[custom[same].action or "mask"]:
                    custom[same] = p
            else:
                custom.append(msgspec.structs.replace(p, name=f"{p.name}_{len(custom) + 1}"))
    return GuardrailSettings(
        enabled=True,
        default_action=org.default_action,
        categories=categories,
        custom=custom,
        scan_requests=org.scan_requests,
        scan_responses=org.scan_responses,
        restore_placeholders=org.restore_placeholders,
    )
