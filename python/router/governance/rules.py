"""Model rules: what an access list grants, and the catalog presets an admin can approve in one step.

An entry is read by its shape, so one list can mix all three kinds:
- `openai/gpt-4o`   a model id (exact);
- `openai/*`, `*-mini`   a pattern (`*` matches any run of characters, nothing else is special);
- `openai`          a whole provider (no `/` and no `*`).
Denies use the same shapes and always win over allows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from ..store.records import Rules

_PATTERN_CHARS = re.compile(r"^[A-Za-z0-9._:@/*-]+$")


def is_pattern(entry: str) -> bool:
    return "*" in entry


def is_provider(entry: str) -> bool:
    return "/" not in entry and "*" not in entry


def entry_error(entry: str) -> str | None:
    """Why an entry cannot be a rule, or None if it can."""
    if not entry:
        return "must not be empty"
    if len(entry) > 200:
        return "is longer than 200 characters"
    if not _PATTERN_CHARS.match(entry):
        return "may only contain letters, digits and . _ : @ / * -"
    return None


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def _matcher(entries: Iterable[str]) -> Callable[[str, str], bool]:
    ids: set[str] = set()
    providers: set[str] = set()
    globs: list[re.Pattern[str]] = []
    for entry in entries:
        if is_pattern(entry):
            globs.append(_glob(entry))
        elif is_provider(entry):
            providers.add(entry)
        else:
            ids.add(entry)

    def match(model_id: str, provider: str) -> bool:
        return model_id in ids or provider in providers or any(g.match(model_id) for g in globs)

    return match


def select(rules: Rules, catalog: Mapping[str, str]) -> frozenset[str]:
    """The catalog models (id → provider) the rules grant."""
    allow = _matcher([*rules.models, *rules.providers, *rules.patterns])
    deny = _matcher(rules.deny)
    return frozenset(m for m, p in catalog.items() if allow(m, p) and not deny(m, p))


# -- presets: computed from catalog metadata, so they follow the catalog as it grows ------------------


# Azure names its regions after places, not continents: the EU ones, and the US ones' pattern (eastus2, westus3,
# southcentralus, usgovvirginia, ...). AWS (`eu-central-1`) and Google (`europe-west4`, `us-central1`) start with
# their continent.
_AZURE_EU = frozenset({
    "westeurope", "northeurope", "francecentral", "francesouth", "germanywestcentral", "germanynorth",
    "swedencentral", "swedensouth", "italynorth", "polandcentral", "spaincentral",
})  # fmt: skip
_AZURE_US = re.compile(r"^(?:(?:east|west|central|northcentral|southcentral|westcentral)us\d?|usgov[a-z]+)$")


def is_eu(region: str) -> bool:
    region = region.lower()
    return region.startswith("eu") or region in _AZURE_EU


def is_us(region: str) -> bool:
    region = region.lower()
    return region.startswith("us") or _AZURE_US.match(region) is not None


PRESETS: dict[str, tuple[str, Callable[[str, bool], bool]]] = {
    "eu-only": ("models hosted in EU regions", lambda region, _zdr: is_eu(region)),
    "us-only": ("models hosted in US regions", lambda region, _zdr: is_us(region)),
    "zdr-only": ("models with zero data retention, in any region", lambda _region, zdr: zdr),
    # As the seeds define it: EU models plus any model with zero data retention.
    "eu-zdr": (
        "EU models plus models with zero data retention",
        lambda region, zdr: is_eu(region) or zdr,
    ),
}


def preset_models(preset: str, metadata: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Model ids (sorted) the preset selects from `id → (region, zdr)`; KeyError for an unknown preset."""
    _, wanted = PRESETS[preset]
    return sorted(m for m, (region, zdr) in metadata.items() if wanted(region, zdr))
