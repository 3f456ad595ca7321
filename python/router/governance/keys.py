"""API keys: minting, hashing, and the in-memory cache the hot path authenticates against.

A key is `rk-` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 digest is stored:
with that much entropy a slow KDF adds nothing, and a fast digest keeps authentication at a dict hit.
The cache is keyed by digest, so neither the dict lookup nor the final `compare_digest` leaks how much
of a guessed key was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from ..errors import Unauthorized
from ..store import KeyRecord, Store

KEY_PREFIX = "rk-"
_SECRET_BYTES = 32
_KEY_LENGTH = len(KEY_PREFIX) + 43
_DISPLAY_CHARS = 8
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
ADMIN_KEY_ID = "admin"


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + _DISPLAY_CHARS]


def create_key(store: Store, name: str) -> tuple[KeyRecord, str]:
    """Mint a key, store its digest, and return the record with the secret (shown once, never stored)."""
    name = name.strip()
    if not name:
        raise ValueError("a key needs a non-empty name")
    secret = KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    record = KeyRecord(
        id="key_" + secrets.token_hex(8), name=name, prefix=display_prefix(secret), created_at=time.time()
    )
    store.insert_key(record, hash_key(secret))
    return record, secret


class Principal:
    """The authenticated caller of one request."""

    __slots__ = ("is_admin", "key_id", "name")

    def __init__(self, key_id: str, name: str, is_admin: bool = False) -> None:
        self.key_id = key_id
        self.name = name
        self.is_admin = is_admin


class KeyCache:
    """Digest → Principal, filled on first use and dropped whole when the store's key epoch moves.

    Invalidation is by event, not by TTL: a revocation in any process bumps the epoch, and the next
    request in every worker sees the new number before it trusts the cache.
    """

    def __init__(self, store: Store, admin_key: str | None) -> None:
        self._store = store
        self._admin_digest = hash_key(admin_key) if admin_key else None
        self._entries: dict[bytes, Principal] = {}
        self._epoch = store.keys_epoch()

    def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise Unauthorized(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="missing_api_key",
            )
        if len(key) > 256 or not key.isascii() or not key.isprintable():
            raise Unauthorized("Malformed API key.", code="invalid_api_key")
        digest = hash_key(key)
        epoch = self._store.keys_epoch()
        if epoch != self._epoch:
            self._entries.clear()
            self._epoch = epoch
        principal = self._entries.get(digest)
        if principal is not None:
            return principal
        if self._admin_digest is not None and hmac.compare_digest(digest, self._admin_digest):
            principal = Principal(ADMIN_KEY_ID, "bootstrap admin", is_admin=True)
        else:
            principal = self._lookup(key, digest)
        self._entries[digest] = principal
        return principal

    def _lookup(self, key: str, digest: bytes) -> Principal:
        if not (key.startswith(KEY_PREFIX) and len(key) == _KEY_LENGTH and _ALPHABET.issuperset(key[3:])):
            raise Unauthorized("Malformed API key: router keys start with 'rk-'.", code="invalid_api_key")
        found = self._store.find_key(digest)
        if found is None or not hmac.compare_digest(found[1], digest):
            raise Unauthorized("Invalid API key.", code="invalid_api_key")
        record = found[0]
        if not record.active:
            raise Unauthorized("This API key has been revoked.", code="revoked_api_key")
        return Principal(record.id, record.name)
