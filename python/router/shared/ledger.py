"""The budget ledger shared by replicas on several hosts: committed and reserved micro-dollars in Redis.

The same contract as the memory-mapped ledger (`spend.ledger`): checking every budget a request is charged
to and reserving its worst case against all of them is one atomic step, now across hosts: one Lua script,
one round trip, on the request path of a key with a limit (a key without one never reaches this module).
Settling (reserved → actual) is queued and sent in batches, one script call per batch, off the request path.

Keys (all under one hash tag): `<prefix><period>:<budget>` a hash {c: committed, r: reserved}, expiring
some weeks after its period; `<prefix>lane:<id>` what each worker process holds reserved per budget, with
a lease `<prefix>lease:<id>` the worker renews every 2 s. A worker that dies leaves its lease to expire; the
next heartbeat of any worker returns that lane's reservations (`_REAP`), as the file ledger's lanes do.

A reservation whose reply never came (Redis crashed or answered too late) may or may not have been counted.
The worker keeps what it believes its lane holds (reservations sent and not refused, settlements not yet sent);
while any outcome is in doubt, each heartbeat returns whatever its lane holds beyond that (`_RECONCILE`). It is
sent on the request path's connection, whose commands Redis runs in order, so a reservation sent after it is
never returned, and one sent before it is in the worker's figure: what it returns never exceeds what leaked.

Redis that lost its data (restarted without persistence): `<prefix>ready` is gone, the reserve script says
so instead of counting from zero, and the worker raises every budget to the spend the database has recorded
(`_RAISE`, idempotent, so replicas starting or recovering at once agree) before it reserves again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from ..config import RedisConfig
from .settings import PREFIX, async_client, safe_url, sync_client
from .wire import ReplyError, WireConnection, WireError, bulk, encode

if TYPE_CHECKING:
    import redis

log = logging.getLogger("router.shared")

READY = PREFIX + "ready"
LANES = PREFIX + "lanes"
# Budget hashes outlive their period by this much (seconds), for reports of the previous month.
TTL = 70 * 86400
LEASE_MS = 10_000
HEARTBEAT = 2.0
# Settlements waiting for Redis beyond this many are dropped oldest first (their spend is in the database).
MAX_PENDING = 100_000

# KEYS: ready, lane, lease, lanes, budget hashes…  ARGV: amount, lane id, ttl, lease ms, then per budget
# (limit, seed, field). → {0} reserved, {-1} Redis lost its data, {i, committed, reserved} budget i refuses.
_RESERVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local amount = tonumber(ARGV[1])
local n = #KEYS - 4
for i = 1, n do
  local k = KEYS[i + 4]
  local v = redis.call('HMGET', k, 'c', 'r')
  local c, r
  if v[1] == false then
    redis.call('HSET', k, 'c', ARGV[3 * i + 3], 'r', 0)
    redis.call('EXPIRE', k, ARGV[3])
    c, r = tonumber(ARGV[3 * i + 3]), 0
  else
    c, r = tonumber(v[1]), tonumber(v[2] or '0')
  end
  if c + r + amount > tonumber(ARGV[3 * i + 2]) then return {i, tostring(c), tostring(r)} end
end
for i = 1, n do
  redis.call('HINCRBY', KEYS[i + 4], 'r', ARGV[1])
  redis.call('HINCRBY', KEYS[2], ARGV[3 * i + 4], ARGV[1])
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], 1, 'PX', ARGV[4])
  redis.call('SADD', KEYS[4], ARGV[2])
end
return {0}
"""

# KEYS: lane.  ARGV: prefix, then per settlement (n, reserved, actual, n fields).
# → the committed spend of every budget settled, in order (-1: the budget's hash is gone).
_SETTLE = """
local prefix = ARGV[1]
local out = {}
local i = 2
while i <= #ARGV do
  local n, reserved, actual = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2]
  for j = 1, n do
    local field = ARGV[i + 2 + j]
    local k = prefix .. field
    local held = tonumber(redis.call('HGET', KEYS[1], field) or '0')
    local amount = tonumber(reserved)
    if amount > 0 and held >= amount then
      if held == amount then redis.call('HDEL', KEYS[1], field) else redis.call('HINCRBY', KEYS[1], field, -amount) end
      if redis.call('EXISTS', k) == 1 then redis.call('HINCRBY', k, 'r', -amount) end
    end
    if redis.call('EXISTS', k) == 1 then
      out[#out + 1] = redis.call('HINCRBY', k, 'c', actual)
    else
      out[#out + 1] = -1
    end
  end
  i = i + 3 + n
end
return out
"""

_SETTLE_SHA = hashlib.sha1(_SETTLE.encode()).hexdigest()

# KEYS: lanes.  ARGV: prefix.  Returns the reservations of every lane whose lease expired.
_REAP = """
local reaped = 0
for _, lane in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. 'lease:' .. lane) == 0 then
    local held = redis.call('HGETALL', ARGV[1] .. 'lane:' .. lane)
    for j = 1, #held, 2 do
      local k = ARGV[1] .. held[j]
      if redis.call('EXISTS', k) == 1 then redis.call('HINCRBY', k, 'r', -tonumber(held[j + 1])) end
    end
    redis.call('DEL', ARGV[1] .. 'lane:' .. lane)
    redis.call('SREM', KEYS[1], lane)
    reaped = reaped + 1
  end
end
return reaped
"""

# KEYS: lane.  ARGV: prefix, then (field, amount) pairs: what the worker believes it holds.  Whatever the lane
# holds beyond that goes back to its budgets.  → the amount returned.
_RECONCILE = """
local believed = {}
for i = 2, #ARGV, 2 do believed[ARGV[i]] = tonumber(ARGV[i + 1]) end
local held = redis.call('HGETALL', KEYS[1])
local returned = 0
for j = 1, #held, 2 do
  local field, amount = held[j], tonumber(held[j + 1])
  local keep = believed[field] or 0
  if amount > keep then
    if keep > 0 then redis.call('HSET', KEYS[1], field, keep) else redis.call('HDEL', KEYS[1], field) end
    local k = ARGV[1] .. field
    if redis.call('EXISTS', k) == 1 then redis.call('HINCRBY', k, 'r', keep - amount) end
    returned = returned + amount - keep
  end
end
return returned
"""

# KEYS: ready.  ARGV: prefix, ttl, then (field, committed) pairs. Every budget's committed spend raised to at
# least the database's (never lowered: Redis is ahead of the database by the spend not yet written).
_RAISE = """
for i = 3, #ARGV, 2 do
  local k = ARGV[1] .. ARGV[i]
  local c = redis.call('HGET', k, 'c')
  if not c then
    redis.call('HSET', k, 'c', ARGV[i + 1], 'r', 0)
    redis.call('EXPIRE', k, ARGV[2])
  elseif tonumber(c) < tonumber(ARGV[i + 1]) then
    redis.call('HSET', k, 'c', ARGV[i + 1])
  end
end
redis.call('SET', KEYS[1], 1)
return 1
"""


class LedgerUnavailable(Exception):
    """Redis could not be reached (or answered too late) for a reservation."""


class RemoteSet(msgspec.Struct, frozen=True):
    """The budgets one request is charged to in one period, prepared once per caller and period."""

    ids: tuple[str, ...]
    period: int
    fields: tuple[str, ...]  # "<period>:<budget>"
    keys: tuple[str, ...]  # ready, lane, lease, lanes, then the budget hashes
    args: tuple[str, ...]  # (limit, seed, field) per budget
    notify_from: tuple[int, ...]
    limits: tuple[int, ...]
    labels: tuple[str, ...]
    # The reserve command in RESP, split around the amount (the only part that changes per request).
    head: bytes = b""
    tail: bytes = b""

    def __len__(self) -> int:
        return len(self.ids)


# A settlement's outcome: (the set, committed spend per budget after it, the actual cost).
Settled = Callable[[RemoteSet, Sequence[int], int], None]


def _field(budget: str, period: int) -> str:
    return f"{period}:{budget}"


def raise_to(settings: RedisConfig, committed: Sequence[tuple[str, int, int]]) -> None:
    """At start (`router serve`, before workers run): every budget raised to at least the spend the database
    recorded, and the ledger marked ready. Safe while other replicas run or start: it never lowers anything."""
    client = sync_client(settings, timeout=max(settings.timeout, 5.0))
    try:
        args: list[object] = [PREFIX, TTL]
        for budget, period, amount in committed:
            args += [_field(budget, period), int(amount)]
        client.eval(_RAISE, 1, READY, *args)
    finally:
        client.close()


class RedisLedger:
    def __init__(
        self,
        settings: RedisConfig,
        committed: Callable[[int], Sequence[tuple[str, int, int]]],
        current_period: Callable[[], int],
    ) -> None:
        self.settings = settings
        # The database's committed spend of a period: what an emptied Redis is rebuilt from.
        self._committed = committed
        self._current_period = current_period
        self.lane = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._lane_key = PREFIX + "lane:" + self.lane
        self._lease_key = PREFIX + "lease:" + self.lane
        self._client: redis.asyncio.Redis = async_client(settings)
        self._sync: redis.Redis = sync_client(settings)
        self._reserve = self._client.register_script(_RESERVE)
        self._reserve_sha = hashlib.sha1(_RESERVE.encode()).hexdigest()
        # The request path's connection (pipelined, hiredis); TLS goes through redis-py instead.
        self._wire = None if settings.url.startswith("rediss://") else WireConnection(settings.url, settings.timeout)
        self._settle = self._client.register_script(_SETTLE)
        self._reap = self._client.register_script(_REAP)
        self._raise = self._client.register_script(_RAISE)
        self._pending: list[tuple[RemoteSet, int, int]] = []
        # What this worker believes its lane holds, per field: reservations sent and not refused, until their
        # settlement is sent. Never below the truth, except by reservations whose outcome is in doubt.
        self._held: dict[str, int] = {}
        # When the latest reservation with an unknown outcome failed (monotonic seconds); 0.0: none in doubt.
        self._doubt_since = 0.0
        self.returned = 0  # micro-dollars given back by reconciliations (reservations a crash left behind)
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # No reservation is tried before this (monotonic seconds): a down Redis costs one timeout, not one each.
        self._down_until = 0.0
        self.available = True
        self.on_settled: Settled | None = None

    def prepare(self, budgets: Sequence[tuple[str, int, int, str]], seeds: Sequence[int], period: int) -> RemoteSet:
        """(budget id, limit, notify threshold, label) with the database's committed spend of each (used when Redis
        has not counted that budget in this period yet)."""
        fields = tuple(_field(b[0], period) for b in budgets)
        args: list[str] = []
        for (_, limit, _, _), seed, field in zip(budgets, seeds, fields, strict=True):
            args += [str(limit), str(seed), field]
        keys = (READY, self._lane_key, self._lease_key, LANES, *(PREFIX + f for f in fields))
        before = ["EVALSHA", self._reserve_sha, len(keys), *keys]
        after = [self.lane, TTL, LEASE_MS, *args]
        head = b"*%d\r\n" % (len(before) + 1 + len(after)) + b"".join(bulk(p) for p in before)
        return RemoteSet(
            ids=tuple(b[0] for b in budgets),
            period=period,
            fields=fields,
            keys=keys,
            args=tuple(args),
            notify_from=tuple(b[2] for b in budgets),
            limits=tuple(b[1] for b in budgets),
            labels=tuple(b[3] for b in budgets),
            head=head,
            tail=b"".join(bulk(p) for p in after),
        )

    async def reserve(self, budgets: RemoteSet, amount: int) -> tuple[int, int, int] | None:
        """Reserve `amount` against every budget or none: None, or (index, committed, reserved) of the first
        budget that cannot take it. Raises LedgerUnavailable when Redis cannot answer."""
        if self._down_until and time.monotonic() < self._down_until:
            raise LedgerUnavailable("Redis is unavailable")
        for _ in range(2):
            self._hold(budgets.fields, amount)
            try:
                result = await self._call_reserve(budgets, amount)
            except Exception as exc:  # WireError, redis.RedisError, OSError, asyncio.TimeoutError
                self._hold(budgets.fields, -amount)
                self._doubt_since = time.monotonic()  # it may have been counted: the heartbeat reconciles
                self._failed(exc)
                raise LedgerUnavailable(str(exc) or type(exc).__name__) from None
            self._recovered()
            status = int(result[0])
            if status == 0:
                return None
            self._hold(budgets.fields, -amount)
            if status > 0:
                return status - 1, int(result[1]), int(result[2])
            await self.rebuild(budgets.period)
        raise LedgerUnavailable("Redis lost its data and could not be rebuilt")

    async def _call_reserve(self, budgets: RemoteSet, amount: int) -> list:
        if self._wire is None:
            return await self._reserve(keys=budgets.keys, args=[amount, self.lane, TTL, LEASE_MS, *budgets.args])
        return await self._call_script(self._wire, _RESERVE, budgets.head + bulk(amount) + budgets.tail)

    @staticmethod
    async def _call_script(wire: WireConnection, script: str, command: bytes) -> Any:
        """An EVALSHA of `script` on the pipelined connection; loaded and sent again when Redis restarted or
        its scripts were flushed (NOSCRIPT)."""
        reply = await wire.call(command)
        if isinstance(reply, ReplyError) and str(reply).startswith("NOSCRIPT"):
            loaded = await wire.call(encode("SCRIPT", "LOAD", script))
            if isinstance(loaded, ReplyError):
                raise WireError(str(loaded))
            reply = await wire.call(command)
        if isinstance(reply, ReplyError):
            raise WireError(str(reply))
        return reply

    async def rebuild(self, period: int) -> None:
        """Redis lost its data: raise every budget to the database's spend and mark it ready again."""
        committed = self._committed(period)
        args: list[object] = [PREFIX, TTL]
        for budget, p, amount in committed:
            args += [_field(budget, p), int(amount)]
        try:
            await self._raise(keys=[READY], args=args)
        except Exception as exc:
            self._failed(exc)
            raise LedgerUnavailable(str(exc) or type(exc).__name__) from None
        log.warning("Redis had no budget ledger; rebuilt it from the database's spend (%d budgets)", len(committed))

    def settle(self, budgets: RemoteSet, reserved: int, actual: int) -> None:
        """Queue the replacement of a reservation by the actual cost (sent in a batch, off the request path)."""
        if not reserved and not actual:
            return
        self._pending.append((budgets, reserved, actual))
        if len(self._pending) > MAX_PENDING:
            dropped = len(self._pending) - MAX_PENDING
            for lost, lost_reserved, _ in self._pending[:dropped]:
                self._hold(lost.fields, -lost_reserved)  # their reservations go back by reconciliation
            del self._pending[:dropped]
            self._doubt_since = time.monotonic()
        if self._wake is not None:
            self._wake.set()

    def usage(self, budget: str, period: int) -> tuple[int, int]:
        """(committed, reserved) as Redis counts them; (0, 0) when it cannot be asked."""
        try:
            c, r = self._sync.hmget(PREFIX + _field(budget, period), "c", "r")
        except Exception:
            return 0, 0
        return int(c or 0), int(r or 0)

    async def ping(self) -> bool:
        try:
            await asyncio.wait_for(self._client.ping(), self.settings.timeout)
        except Exception as exc:
            self._failed(exc)
            return False
        self._recovered()
        return True

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._tasks = [loop.create_task(self._flush_loop()), loop.create_task(self._heartbeat_loop())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if self._pending:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flush(), 5.0)
        with contextlib.suppress(Exception):
            # A graceful stop returns what this worker still holds at once rather than at lease expiry.
            await self._client.delete(self._lease_key)
            await self._reap(keys=[LANES], args=[PREFIX])
        await self._client.aclose(close_connection_pool=True)
        if self._wire is not None:
            await self._wire.close()
        self._sync.close()

    def _hold(self, fields: Sequence[str], amount: int) -> None:
        held = self._held
        for field in fields:
            value = held.get(field, 0) + amount
            if value:
                held[field] = value
            else:
                del held[field]

    async def reconcile(self) -> int:
        """Return what this worker's lane holds beyond what it believes it holds: reservations counted by Redis
        whose reply was lost. Only on the request path's connection (ordered with the reservations); with TLS
        (redis-py's pool, unordered) such reservations stay held until the worker stops. → the amount returned."""
        if self._wire is None:
            return 0

        def command() -> bytes:  # encoded at its place in the connection's order (see the module's docstring)
            parts: list[object] = ["EVAL", _RECONCILE, 1, self._lane_key, PREFIX]
            for field, amount in self._held.items():
                # Below zero cannot happen; if it ever did, that field is left alone rather than emptied.
                parts += [field, amount if amount >= 0 else 2**62]
            return encode(*parts)

        reply = await self._wire.call(command)
        if isinstance(reply, ReplyError):
            raise WireError(str(reply))
        returned = int(reply)
        if returned:
            self.returned += returned
            log.warning("returned %d micro-dollars of reservations whose outcome a Redis failure hid", returned)
        return returned

    def _failed(self, exc: BaseException) -> None:
        if self.available:
            log.warning("Redis %s unavailable for budgets: %s", safe_url(self.settings.url), exc)
        self.available = False
        self._down_until = time.monotonic() + 0.25

    def _recovered(self) -> None:
        if not self.available:
            log.warning("Redis %s available again for budgets", safe_url(self.settings.url))
        self.available = True
        self._down_until = 0.0

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        args: list[object] = [PREFIX]
        for budgets, reserved, actual in batch:
            args += [len(budgets.fields), reserved, actual, *budgets.fields]
        try:
            if self._wire is None:
                result = await self._settle(keys=[self._lane_key], args=args)
            else:
                # The pipelined connection: redis-py's ~80 µs of CPU per call was most of a limited key's cost
                # under load, where batches are small.
                command = encode("EVALSHA", _SETTLE_SHA, 1, self._lane_key, *args)
                result = await self._call_script(self._wire, _SETTLE, command)
        except BaseException:
            self._pending[:0] = batch
            raise
        for budgets, reserved, _ in batch:
            self._hold(budgets.fields, -reserved)
        if self.on_settled is None:
            return
        at = 0
        for budgets, _, actual in batch:
            n = len(budgets.fields)
            self.on_settled(budgets, [int(v) for v in result[at : at + n]], actual)
            at += n

    async def _flush_loop(self) -> None:
        assert self._wake is not None
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                try:
                    await self._flush()
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._failed(exc)
                    failures += 1
                    await asyncio.sleep(min(0.05 * 2**failures, 1.0))

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    pipe.set(self._lease_key, 1, px=LEASE_MS)
                    pipe.sadd(LANES, self.lane)
                    pipe.exists(READY)
                    _, _, ready = await pipe.execute()
                if not ready:
                    await self.rebuild(self._current_period())
                await self._reap(keys=[LANES], args=[PREFIX])
                if self._doubt_since:
                    since = self._doubt_since
                    await self.reconcile()
                    # A command Redis received before the failure runs within its timeout: once that has
                    # passed, this reconciliation saw every doubtful reservation's effect.
                    if self._doubt_since == since and time.monotonic() - since > self.settings.timeout + HEARTBEAT:
                        self._doubt_since = 0.0
                self._recovered()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(exc)
            await asyncio.sleep(HEARTBEAT)
