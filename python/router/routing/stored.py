"""A worker's policy set: the config file's policies plus those stored through the management API.

The API writes policies in a transaction that bumps the store's change epoch; `KeyCache.authenticate` notices
the new epoch at the start of the next request in every worker and calls `refresh`, which re-reads the
(small) table and swaps in a new compiled set only when a row actually changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ..config import PolicyConfig
from ..errors import ConfigError
from ..store import Store
from .executor import Routing

log = logging.getLogger("router.routing")

SOURCE = "stored policies"


class StoredPolicies:
    def __init__(self, store: Store, routing: Routing, file_policies: Sequence[PolicyConfig]) -> None:
        self._store = store
        self._routing = routing
        self._file = list(file_policies)
        self._rows: list[tuple] | None = None

    def refresh(self) -> None:
        self.load()()

    def load(self) -> Callable[[], None]:
        """Read the store (any thread); the returned function swaps the new set in (the event loop's thread)."""
        rows = self._store.policy_rows()
        if rows == self._rows:
            return _nothing
        stored = self._store.list_policies()

        def apply() -> None:
            scopes = {p.name: p.key_id for p in stored if p.key_id is not None}
            try:
                self._routing.replace_policies([*self._file, *(p.config() for p in stored)], SOURCE, scopes)
            except ConfigError as exc:
                # Written policies were checked against this config; a config edit since (a model removed) can
                # break them. Serve the file's policies rather than none, and say why.
                log.error("the policies stored through the API are not in use until fixed: %s", exc)
                self._routing.replace_policies(self._file, SOURCE)
            self._rows = rows

        return apply


def _nothing() -> None:
    pass
