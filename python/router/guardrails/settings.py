"""Organisation guardrail settings: which categories are on, and what each does (mask or block).

A msgspec Struct so the config file, and later the management API, load and replace it the same way
(`guardrails.stored.GuardrailPolicies`). Changes apply on the next request.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .._core import Guardrails

Action = Literal["mask", "block"]
CategoryAction = Literal["mask", "block", "off"]
CATEGORY_ACTIONS: tuple[CategoryAction, ...] = ("mask", "block", "off")

# Person names come from context cues and are far less precise than checksums: off unless asked for.
OPT_IN = frozenset({"names"})


class CustomPattern(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: str
    pattern: str
    action: Action | None = None


class GuardrailSettings(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    enabled: bool = True
    # What a category not listed in `categories` does.
    default_action: Action = "mask"
    # Per category: mask, block or off (pii, pci, banking, secrets, financial, names). Plain strings, checked
    # by `problems`, so that a bad value is reported at its category's name.
    categories: dict[str, str] = {}
    # Admin-defined named regexes (category "custom"); each may set its own action.
    custom: list[CustomPattern] = []
    scan_requests: bool = True
    scan_responses: bool = True
    # Answers get the original values back where the model echoes a placeholder masked in the request.
    restore_placeholders: bool = False

    def actions(self) -> dict[str, Action]:
        """The enabled categories and their action."""
        if not self.enabled:
            return {}
        out: dict[str, Action] = {}
        for category in Guardrails.categories():
            if category == "custom":
                continue
            chosen = self.categories.get(category, "off" if category in OPT_IN else self.default_action)
            if chosen != "off":
                out[category] = "block" if chosen == "block" else "mask"
        if self.custom:
            out["custom"] = self.default_action
        return out

    def blocked_custom_types(self) -> frozenset[str]:
        """Placeholder types of the custom patterns whose own action is block."""
        if not self.enabled:
            return frozenset()
        return frozenset(p.name.upper() for p in self.custom if (p.action or self.default_action) == "block")


def problems(settings: GuardrailSettings) -> list[tuple[str, str]]:
    """(path, message) for every setting that cannot be used; empty when the settings are valid."""
    known = set(Guardrails.categories()) - {"custom"}
    out = [
        (f"categories.{name}", f"unknown category {name!r}; expected one of {', '.join(sorted(known))}")
        for name in settings.categories
        if name not in known
    ]
    out += [
        (f"categories.{name}", f"unknown action {action!r}; expected one of {', '.join(CATEGORY_ACTIONS)}")
        for name, action in settings.categories.items()
        if action not in CATEGORY_ACTIONS
    ]
    seen: set[str] = set()
    for i, p in enumerate(settings.custom):
        if p.name.upper() in seen:
            out.append((f"custom[{i}].name", f"duplicate custom pattern name {p.name!r}"))
        seen.add(p.name.upper())
        try:
            Guardrails([(p.name, p.pattern)])
        except ValueError as exc:
            out.append((f"custom[{i}].pattern", str(exc)))
    return out
