"""The budget ledger every worker shares: spent and reserved micro-dollars per budget and period.

A memory-mapped file beside the database (`<db>-budgets`) holds, per budget and period, the committed
spend and the amount reserved by requests in flight. Workers reserve and settle under an exclusive
`flock` on that file, so checking every applicable budget and reserving against all of them is one atomic
step across processes, and costs a few microseconds with no database on the path.

Crash safety: each worker owns a lane and also records its reservations in that lane. The kernel drops a
dead process's lock, and the next worker to take a lane whose owner is gone subtracts that lane's
reservations, so a `kill -9` mid-request leaks nothing. Committed spend is written behind to the
database's `spend` table by the usage writer; `router serve` rebuilds this file from that table at start
(see `rebuild`), which is how the two are reconciled.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..metrics import pid_alive

_MAGIC = 0x31304E4F52554F52  # "ROUONR01", little-endian
_HEADER = 4  # magic, n_slots, n_lanes, reserved
_N_SLOTS = 16384
_N_LANES = 32
# Per slot: key hash, period, committed, reserved (all lanes), then one reserved counter per lane.
_HASH, _PERIOD, _COMMITTED, _RESERVED, _LANES = range(5)


class LedgerFull(Exception):
    """More budgetxperiod entries than slots; `router serve` compacts at start."""


def budget_hash(budget: str, period: int) -> int:
    digest = hashlib.blake2b(f"{budget}|{period}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF) | 1


class Ledger:
    def __init__(self, path: str | None, n_slots: int = _N_SLOTS, n_lanes: int = _N_LANES) -> None:
        self.n_slots = n_slots
        self.n_lanes = n_lanes
        self._width = _LANES + n_lanes
        self._lanes_at = _HEADER
        self._slots_at = _HEADER + n_lanes
        size = (self._slots_at + n_slots * self._width) * 8
        self._fd: int | None = None
        if path is None:
            self._mm = mmap.mmap(-1, size)
        else:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            with self._locked():
                if os.fstat(self._fd).st_size != size:
                    os.ftruncate(self._fd, size)
            self._mm = mmap.mmap(self._fd, size)
        self._q = memoryview(self._mm).cast("q")
        with self._locked():
            if self._q[0] != _MAGIC:
                self._init_header()
        # (budget, period) → (slot base, key hash): skips hashing and probing on the hot path.
        self._slot_of: dict[tuple[str, int], tuple[int, int]] = {}
        self.lane = 0

    def close(self) -> None:
        self._q.release()
        self._mm.close()
        if self._fd is not None:
            os.close(self._fd)

    # -- locking ------------------------------------------------------------------------------------

    def _locked(self) -> _Lock:
        return _Lock(self._fd)

    def _init_header(self) -> None:
        q = self._q
        q[0 : len(q)] = memoryview(bytes(len(q) * 8)).cast("q")
        q[1], q[2] = self.n_slots, self.n_lanes
        q[0] = _MAGIC

    # -- lanes --------------------------------------------------------------------------------------

    def attach(self, pid: int | None = None) -> int:
        """Take a lane for this process, releasing the reservations of any dead owner first."""
        pid = pid or os.getpid()
        q = self._q
        with self._locked():
            free = None
            for lane in range(self.n_lanes):
                owner = q[self._lanes_at + lane]
                if owner == pid:
                    free = lane
                    break
                if free is None and (owner == 0 or not pid_alive(owner)):
                    free = lane
            if free is None:
                raise LedgerFull(f"all {self.n_lanes} ledger lanes are held by live processes")
            if q[self._lanes_at + free] != pid:
                self._release_lane(free)
                q[self._lanes_at + free] = pid
        self.lane = free
        return free

    def _release_lane(self, lane: int) -> None:
        q, w = self._q, self._width
        column = _LANES + lane
        for base in range(self._slots_at, self._slots_at + self.n_slots * w, w):
            held = q[base + column]
            if held:
                q[base + _RESERVED] -= held
                q[base + column] = 0

    # -- slots --------------------------------------------------------------------------------------

    def _slot(self, budget: str, period: int, create: bool) -> int | None:
        """The slot's base index (call with the lock held)."""
        q = self._q
        known = self._slot_of.get((budget, period))
        # Checked against the file: a rebuild by another process may have moved the slot.
        if known is not None and q[known[0] + _HASH] == known[1]:
            return known[0]
        h = budget_hash(budget, period)
        w = self._width
        start = h % self.n_slots
        for probe in range(self.n_slots):
            base = self._slots_at + ((start + probe) % self.n_slots) * w
            found = q[base + _HASH]
            if found == h:
                self._slot_of[(budget, period)] = (base, h)
                return base
            if found == 0:
                if not create:
                    return None
                q[base + _HASH], q[base + _PERIOD] = h, period
                self._slot_of[(budget, period)] = (base, h)
                return base
        raise LedgerFull(f"the budget ledger has no free slot among {self.n_slots}")

    # -- the operations the hot path uses -----------------------------------------------------------

    def reserve(self, budgets: Sequence[tuple[str, int]], period: int, amount: int) -> str | None:
        """Reserve `amount` against every (budget, limit) at once, or nothing: returns the first budget that
        cannot take it (None when reserved)."""
        q, column, slot, fd = self._q, _LANES + self.lane, self._slot, self._fd
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            bases = []
            for budget, limit in budgets:
                base = slot(budget, period, True)
                assert base is not None
                if q[base + _COMMITTED] + q[base + _RESERVED] + amount > limit:
                    return budget
                bases.append(base)
            for base in bases:
                q[base + _RESERVED] += amount
                q[base + column] += amount
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return None

    def settle(self, budgets: Iterable[str], period: int, reserved: int, actual: int) -> list[int]:
        """Replace a reservation by the actual cost (which may be zero for a failed request); returns each
        budget's committed spend after it."""
        q, column = self._q, _LANES + self.lane
        committed = []
        with self._locked():
            for budget in budgets:
                base = self._slot(budget, period, create=True)
                assert base is not None
                q[base + _RESERVED] -= reserved
                q[base + column] -= reserved
                q[base + _COMMITTED] += actual
                committed.append(q[base + _COMMITTED])
        return committed

    def seed(self, budget: str, period: int, committed: int) -> None:
        """Create the slot with this committed spend, unless it exists already (then it is left alone)."""
        with self._locked():
            if self._slot(budget, period, create=False) is None:
                base = self._slot(budget, period, create=True)
                assert base is not None
                self._q[base + _COMMITTED] = committed

    def usage(self, budget: str, period: int) -> tuple[int, int]:
        """(committed, reserved) micro-dollars."""
        with self._locked():
            base = self._slot(budget, period, create=False)
            if base is None:
                return 0, 0
            return self._q[base + _COMMITTED], self._q[base + _RESERVED]

    def rebuild(self, committed: Iterable[tuple[str, int, int]]) -> None:
        """Start afresh from the stored spend (budget, period, micro-dollars): every reservation dropped."""
        with self._locked():
            self._init_header()
            self._slot_of.clear()
            for budget, period, amount in committed:
                base = self._slot(budget, period, create=True)
                assert base is not None
                self._q[base + _COMMITTED] = amount


class _Lock:
    __slots__ = ("_fd",)

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    def __enter__(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)


def ledger_path(db_path: str) -> str | None:
    return None if db_path == ":memory:" else str(Path(db_path)) + "-budgets"
