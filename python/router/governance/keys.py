"""API keys: minting, hashing, and the in-memory cache the hot path authenticates against.

A key is `rk-` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 digest is stored:
with that much entropy a slow KDF adds nothing, and a fast digest keeps authentication at a dict hit.
The cache is keyed by digest, so neither the dict lookup nor the final `compare_digest` leaks how much
of a guessed key was right.

Each cached principal carries the key's effective model set, computed once from the store, so a request
pays a set lookup for governance, not a query. Any governance change bumps the store's epoch and the
next request in every worker recomputes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ConfigError, DatabaseUnavailable, Unauthorized
from ..store import KeyRecord, Store
from ..store.records import AuditEvent, Rules
from .resolve import APPROVED, KEY_LIST, Effective, resolve

KEY_PREFIX = "rk-"
_SECRET_BYTES = 32
_KEY_LENGTH = len(KEY_PREFIX) + 43
_DISPLAY_CHARS = 8
_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
ADMIN_KEY_ID = "admin"
ADMIN_KEY_ENV = "ROUTER_ADMIN_KEY"
# The bootstrap admin key is compared as a fast digest, like every key: only its length keeps it from being
# guessed, so it must carry at least as much as a minted key's 43 characters would in a weaker alphabet.
ADMIN_KEY_MIN_LENGTH = 32


def check_admin_key(key: str | None) -> str | None:
    """The bootstrap admin key if it is strong enough; a start-up error naming the variable otherwise."""
    if not key:
        return None
    if len(key) < ADMIN_KEY_MIN_LENGTH:
        raise ConfigError(
            f"{ADMIN_KEY_ENV} is {len(key)} characters long; it must be at least {ADMIN_KEY_MIN_LENGTH} "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return key


def admin_key_from_env() -> str | None:
    """ROUTER_ADMIN_KEY, checked: unset or empty means no bootstrap admin key."""
    return check_admin_key(os.environ.get(ADMIN_KEY_ENV) or None)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + _DISPLAY_CHARS]


def iso_time(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def mint_key(name: str, **fields: Any) -> tuple[KeyRecord, str]:
    """A new key record and its secret (shown once, never stored); the caller stores the record."""
    name = name.strip()
    if not name:
        raise ValueError("a key needs a non-empty name")
    secret = KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    record = KeyRecord(
        id="key_" + secrets.token_hex(8), name=name, prefix=display_prefix(secret), created_at=time.time(), **fields
    )
    return record, secret


def create_key(store: Store, name: str, **fields: Any) -> tuple[KeyRecord, str]:
    """Mint a key and store its digest (no governance checks: the bootstrap path of `router keys create`)."""
    record, secret = mint_key(name, **fields)
    store.insert_key(record, hash_key(secret))
    return record, secret


def group_rules(store: Store, group_ids: Iterable[str]) -> list[Rules]:
    """The rules of the access lists attached to these groups (groups without one contribute nothing)."""
    groups = store.list_groups(ids=sorted(group_ids))
    lists = [store.get_access_list(g.access_list_id) for g in groups if g.access_list_id is not None]
    return [a.rules for a in lists if a is not None]


def key_groups(store: Store, record: KeyRecord) -> tuple[str, ...]:
    """The groups a key belongs to: its own and, for a user's key, its owner's (sorted)."""
    group_ids = set(record.groups)
    if record.owner_type == "user" and record.owner_id:
        group_ids.update(store.memberships(record.owner_id))
    return tuple(sorted(group_ids))


def key_access(
    store: Store, record: KeyRecord, catalog: Mapping[str, str], groups: Iterable[str]
) -> tuple[Effective, list[Rules]]:
    """Read every layer of the resolution rule for one key from the store and resolve it; also the access-list
    rules that apply to it (its own list's, none for a dangling one, else its groups'), for MCP grants."""
    configured, approved_ids = store.approval()
    approved = approved_ids if configured else None
    key_rules = None
    if record.access_list_id is not None:
        found = store.get_access_list(record.access_list_id)
        if found is None:
            # A dangling list id grants nothing rather than falling through to a wider layer.
            return Effective(frozenset(), KEY_LIST, approved), []
        key_rules = found.rules
    layers = group_rules(store, groups)
    return resolve(catalog, key_rules, layers, approved), [key_rules] if key_rules is not None else layers


def effective_for(store: Store, record: KeyRecord, catalog: Mapping[str, str]) -> Effective:
    return key_access(store, record, catalog, key_groups(store, record))[0]


class Principal:
    """The authenticated caller of one request: who it is and which models it may call."""

    __slots__ = (
        "effective", "expires_at", "expiry_logged", "groups", "is_admin", "key_id", "models_body", "name", "record",
        "rules",
    )  # fmt: skip

    def __init__(
        self,
        key_id: str,
        name: str,
        effective: Effective,
        record: KeyRecord | None = None,
        groups: tuple[str, ...] | None = None,
        rules: list[Rules] | None = None,
    ) -> None:
        """`groups` and `rules` are read with the key (`key_groups`, `key_access`), so per-key state built on the
        request path (guardrail and prompt overrides, MCP grants) needs no store access; None: not read."""
        self.key_id = key_id
        self.groups = groups
        self.rules = rules
        self.name = name
        self.is_admin = record is None
        self.record = record
        self.effective = effective
        self.expires_at = record.expires_at if record is not None else None
        self.expiry_logged = False
        # The caller's `GET /v1/models` body, built on first use.
        self.models_body: bytes | None = None

    @property
    def allowed(self) -> frozenset[str]:
        return self.effective.models


class KeyCache:
    """Digest → Principal, filled on first use and dropped whole when the store's epoch moves.

    Invalidation is by event, not by TTL: a revocation or any governance change in any process bumps the
    epoch, and the next request in every worker sees the new number before it trusts the cache.

    A cached key costs a dict lookup. A miss reads the store: on SQLite, in place (a local file, tens of
    microseconds); on a database server (`store.remote`), in a small thread pool with its own connections, so
    the event loop goes on serving other requests during the round trips (1-2 ms each), and the request that
    missed gets an awaitable instead of a Principal.
    """

    def __init__(
        self,
        store: Store,
        admin_key: str | None,
        catalog: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        refuse_without_database: bool = False,
    ) -> None:
        """`refuse_without_database` (`governance.on_database_failure: refuse`): while the store says its server
        is unreachable, every request gets 503, cached keys included; otherwise cached keys keep being served."""
        self._store = store
        self._refuse_without_database = refuse_without_database
        admin_key = check_admin_key(admin_key)
        self._admin_digest = hash_key(admin_key) if admin_key else None
        self._catalog = catalog or {}
        self._entries: dict[bytes, Principal] = {}
        self._epoch = store.keys_epoch()
        self.clock = clock
        # Called when the epoch moves, before the request that noticed it goes on (stored policies, BYOK keys,
        # guardrail and prompt settings, MCP servers): each reads the store and returns what swaps its state in.
        # On a database server the reads run in the lookup pool and the swaps on the event loop, all at once.
        self.on_change: list[Callable[[], Callable[[], None]]] = []
        # The reload under way off the loop: (its number, the epoch it is for, the reads' future).
        self._reloading: tuple[int, int, asyncio.Future[list[Callable[[], None]]]] | None = None
        self._reloads = 0
        self._applied = 0  # the number of the last reload swapped in
        self._remote = bool(getattr(store, "remote", False))
        self._pool: ThreadPoolExecutor | None = None
        # Misses being read off the loop, by digest and epoch: concurrent requests with one new key share one
        # read, and never one begun before a change they came after (a revocation is seen by the next request).
        self._reading: dict[tuple[bytes, int], asyncio.Future[Principal]] = {}

    def authenticate(self, key: str | None) -> Principal | Awaitable[Principal]:
        if not key:
            raise Unauthorized(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'.",
                code="missing_api_key",
            )
        if len(key) > 256 or not key.isascii() or not key.isprintable():
            raise Unauthorized("Malformed API key.", code="invalid_api_key")
        return self.authenticate_digest(hash_key(key), key)

    def authenticate_digest(self, digest: bytes, key: str | None = None) -> Principal | Awaitable[Principal]:
        """The key whose digest this is (a dashboard session holds only the digest): checked as `authenticate`
        checks a key, except its format, checked when the session was made."""
        if self._refuse_without_database and self._store.database_unreachable():
            raise DatabaseUnavailable()
        epoch = self._store.keys_epoch()
        if epoch != self._epoch:
            if self._remote:
                return self._reload_off_loop(digest, key, epoch)
            self._swap(epoch, [load() for load in self.on_change])
        principal = self._entries.get(digest)
        if principal is None:
            if self._remote:
                return self._read_off_loop(digest, key, epoch)
            principal = self._entries[digest] = self._resolve(self._store, digest, key)
        if principal.expires_at is not None and self.clock() >= principal.expires_at:
            self._expired(principal)
        return principal

    def _swap(self, epoch: int, applies: list[Callable[[], None]]) -> None:
        self._entries.clear()
        for apply in applies:
            apply()
        # Only once everything reloaded: after a failure (a locked database) the next request tries again.
        self._epoch = epoch

    def _load_all(self) -> list[Callable[[], None]]:
        return [load() for load in self.on_change]

    async def _reload_off_loop(self, digest: bytes, key: str | None, epoch: int) -> Principal:
        """The epoch moved: the store is read once in the lookup pool for every request that noticed, the new
        state swapped in on the loop (in one step, between requests), then this request authenticated."""
        reloading = self._reloading
        if reloading is None or reloading[1] != epoch:
            self._reloads += 1
            loop = asyncio.get_running_loop()
            future = asyncio.ensure_future(loop.run_in_executor(self._lookup_pool(), self._load_all))
            reloading = self._reloading = (self._reloads, epoch, future)

            def done(finished: asyncio.Future[list[Callable[[], None]]], this: tuple = reloading) -> None:
                if self._reloading is this:
                    self._reloading = None
                if not finished.cancelled():
                    finished.exception()

            future.add_done_callback(done)
        number, _, future = reloading
        applies = await asyncio.shield(future)
        if number > self._applied:  # the first waiter swaps; later ones, and older reloads, find it done
            self._applied = number
            self._swap(epoch, applies)
        principal = self.authenticate_digest(digest, key)
        return principal if isinstance(principal, Principal) else await principal

    def _lookup_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="key-lookup")
        return self._pool

    async def _read_off_loop(self, digest: bytes, key: str | None, epoch: int) -> Principal:
        reading = self._reading.get((digest, epoch))
        if reading is None:
            loop = asyncio.get_running_loop()
            pool = self._lookup_pool()
            reading = asyncio.ensure_future(loop.run_in_executor(pool, self._resolve, self._store, digest, key))
            self._reading[(digest, epoch)] = reading

            def done(future: asyncio.Future[Principal]) -> None:
                self._reading.pop((digest, epoch), None)
                if not future.cancelled():
                    future.exception()  # retrieved here: every waiter may have gone (clients disconnected)

            reading.add_done_callback(done)
        principal = await asyncio.shield(reading)
        # A change committed while the key was read: its epoch has moved, and the principal is not cached (the
        # next request reads it again); this request was already under way, as if it had come a moment earlier.
        if self._store.keys_epoch() == epoch == self._epoch:
            self._entries[digest] = principal
        if principal.expires_at is not None and self.clock() >= principal.expires_at:
            self._expired(principal)
        return principal

    def _resolve(self, store: Store, digest: bytes, key: str | None) -> Principal:
        if self._admin_digest is not None and hmac.compare_digest(digest, self._admin_digest):
            configured, approved = store.approval()
            models = approved & frozenset(self._catalog) if configured else frozenset(self._catalog)
            effective = Effective(models, APPROVED, approved if configured else None)
            return Principal(ADMIN_KEY_ID, "bootstrap admin", effective)
        return self._lookup(store, key, digest)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _lookup(self, store: Store, key: str | None, digest: bytes) -> Principal:
        if key is not None and not (
            key.startswith(KEY_PREFIX) and len(key) == _KEY_LENGTH and _ALPHABET.issuperset(key[3:])
        ):
            raise Unauthorized("Malformed API key: router keys start with 'rk-'.", code="invalid_api_key")
        found = store.find_key(digest)
        if found is None or not hmac.compare_digest(found[1], digest):
            raise Unauthorized("Invalid API key.", code="invalid_api_key")
        record = found[0]
        if not record.active:
            raise Unauthorized("This API key has been revoked.", code="revoked_api_key")
        if record.owner_type == "user" and record.owner_id:
            owner = store.get_user(record.owner_id)
            if owner is None or owner.status != "active":
                raise Unauthorized("The user who owns this API key is inactive.", code="inactive_owner")
        groups = key_groups(store, record)
        effective, rules = key_access(store, record, self._catalog, groups)
        principal = Principal(record.id, record.name, effective, record, groups, rules)
        principal.expiry_logged = record.expired_logged_at is not None
        return principal

    def _expired(self, principal: Principal) -> None:
        assert principal.expires_at is not None
        if not principal.expiry_logged:
            principal.expiry_logged = True
            log_expiry(self._store, principal.key_id, principal.expires_at, self.clock())
        raise Unauthorized(f"API key expired at {iso_time(principal.expires_at)}.", code="expired_api_key")


async def awaited(principal: Principal | Awaitable[Principal]) -> Principal:
    """What `KeyCache.authenticate` gave, awaited when it is a read still under way (off the hot path's
    handlers, which test with isinstance and skip the coroutine)."""
    return principal if isinstance(principal, Principal) else await principal


def log_expiry(store: Store, key_id: str, expires_at: float, now: float) -> bool:
    """Write the `key.expired` security event, exactly once per key however many workers race to it."""
    with store.transaction():
        if not store.claim_expiry_event(key_id, now):
            return False
        store.append_audit(
            [
                AuditEvent(
                    ts=now,
                    actor="system",
                    action="key.expired",
                    target_type="api_key",
                    target_id=key_id,
                    detail={"expires_at": iso_time(expires_at)},
                )
            ]
        )
    return True
