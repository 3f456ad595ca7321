"""Whose provider key a policy target's call is made with: the gateway's configured key or the organisation's
own (BYOK), per the target's `key_strategy`.

    router           the provider's configured api_key (the default; the gateway pays)
    own              the organisation's stored key for that provider; without one the target is skipped
    router_then_own  the gateway's key, then the org's when the first is refused (401/403) or limited (429)
    own_then_router  the org's key first, then the gateway's on the same errors

A credential is the header(s) that override the provider's default credential on one request.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import GatewayError


class Credential:
    __slots__ = ("byok", "headers")

    def __init__(self, headers: dict[str, str] | None, byok: bool) -> None:
        self.headers = headers  # None: the transport's default headers carry the configured key
        self.byok = byok


ROUTER = Credential(None, False)
_ROUTER_ONLY = (ROUTER,)

# Provider name → the organisation's credential for it, or None when it stored none.
OwnKeys = Callable[[str], Credential | None]

# Refused or rate-limited: another key may still be served where this one was not.
_SWITCH_STATUSES = frozenset({401, 403, 429})


def credentials_for(strategy: str, provider: str, own_keys: OwnKeys | None) -> tuple[Credential, ...]:
    """The keys to try, in order; empty when the strategy needs an own key that is not stored."""
    if strategy == "router":
        return _ROUTER_ONLY
    own = own_keys(provider) if own_keys is not None else None
    if strategy == "own":
        return () if own is None else (own,)
    if own is None:
        return _ROUTER_ONLY
    return (ROUTER, own) if strategy == "router_then_own" else (own, ROUTER)


def switches_key(failure: GatewayError) -> bool:
    return failure.upstream_status in _SWITCH_STATUSES
