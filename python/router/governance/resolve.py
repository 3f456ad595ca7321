"""The resolution rule: which models one key may call.

1. the key's own access list, if it has one; otherwise
2. the union of the access lists of the key's groups and its owner's groups, if any; otherwise
3. the organisation's approved models, if approval is configured; otherwise
4. the full catalog.
Whatever layer wins is intersected with the approved models when approval is configured: an access list
narrows, it never grants past the organisation's ceiling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from ..store.records import Rules
from .rules import select

KEY_LIST = "key_access_list"
GROUP_LISTS = "group_access_lists"
APPROVED = "approved_models"
CATALOG = "catalog"


class Effective(msgspec.Struct, frozen=True):
    """A key's effective model set and the layer it came from."""

    models: frozenset[str]
    layer: str
    approved: frozenset[str] | None

    def denied_by(self, model_id: str) -> str:
        """The layer that refuses `model_id` (call only for a model outside `models`)."""
        if self.approved is not None and model_id not in self.approved:
            return APPROVED
        return self.layer


def resolve(
    catalog: Mapping[str, str],
    key_rules: Rules | None,
    group_rules: Sequence[Rules],
    approved: frozenset[str] | None,
) -> Effective:
    """`catalog` maps model id → provider; `approved` is None when approval is not configured."""
    if key_rules is not None:
        models, layer = select(key_rules, catalog), KEY_LIST
    elif group_rules:
        models, layer = frozenset().union(*(select(r, catalog) for r in group_rules)), GROUP_LISTS
    elif approved is not None:
        models, layer = frozenset(catalog), APPROVED
    else:
        models, layer = frozenset(catalog), CATALOG
    if approved is not None:
        models &= approved
    return Effective(models, layer, approved)
