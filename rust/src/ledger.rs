//! The budget ledger every worker shares: committed and reserved micro-dollars per budget and period.
//!
//! A memory-mapped file (`<db>-budgets`) holds a header, a lane table and an open-addressing table of
//! slots. A slot is one budget in one period: its key hash, the period, committed spend, the amount
//! reserved by requests in flight, and that reservation split by lane. Every worker process takes a lane.
//!
//! Reserving checks every applicable budget and reserves against all of them or none, under one lock: a
//! process-shared *robust* pthread mutex that lives in the file. Uncontended it is an atomic
//! compare-and-swap, with no system call, which is what makes a limit on every budget nearly free.
//!
//! Crash safety comes from the robust mutex and the lanes:
//! - A process killed while holding the mutex hands the next locker `EOWNERDEAD`. That locker releases
//!   the lanes of dead processes and recomputes every slot's reserved total from the lanes, which are
//!   the source of truth, then marks the mutex consistent.
//! - A process killed outside the lock leaves its reservations in its lane; `attach` releases the lanes
//!   of every dead process, so a restarted worker frees them.
//!
//! Writes are ordered so that a crash between two of them can only over-count committed spend for a
//! moment, never under-count it: settle adds the actual cost before it drops the reservation.
use std::ffi::CString;
use std::io;
use std::ptr;

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError, PyRuntimeError};
use pyo3::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

create_exception!(
    _core,
    LedgerFull,
    PyException,
    "More budget-and-period entries (or worker processes) than the ledger has room for."
);

const MAGIC: i64 = 0x3230_4E4F_5255_4F52; // "ROUONR02", little-endian
/// Header words: magic, n_slots, n_lanes, spare, then the mutex.
const HEADER_WORDS: usize = 4;
/// `pthread_mutex_t` is 40 bytes on x86-64 glibc and 48 on aarch64; 64 leaves room everywhere.
const MUTEX_WORDS: usize = 8;
// Per slot: key hash, period, committed, reserved (all lanes), then one reserved counter per lane.
const HASH: usize = 0;
const PERIOD: usize = 1;
const COMMITTED: usize = 2;
const RESERVED: usize = 3;
const LANES: usize = 4;

/// The slot key of a budget in a period: never 0, which marks an empty slot.
pub fn budget_hash(budget: &str, period: i64) -> i64 {
    let mut buf = Vec::with_capacity(budget.len() + 12);
    buf.extend_from_slice(budget.as_bytes());
    buf.push(b'|');
    buf.extend_from_slice(period.to_string().as_bytes());
    ((xxh3_64(&buf) & 0x7FFF_FFFF_FFFF_FFFF) | 1) as i64
}

/// The budgets one request is charged to in one period, prepared once per caller and period: each
/// budget's slot key is hashed here, not on every request.
#[derive(Debug, Clone)]
pub struct BudgetSet {
    period: i64,
    budgets: Vec<SetBudget>,
}

#[derive(Debug, Clone)]
struct SetBudget {
    id: String,
    hash: i64,
    limit: i64,
    /// Committed spend from which settling reports the budget (its lowest alert threshold).
    notify_from: i64,
}

impl BudgetSet {
    /// `budgets`: (id, limit, notify from), all micro-dollars.
    pub fn new(budgets: &[(String, i64, i64)], period: i64) -> Self {
        let budgets = budgets
            .iter()
            .map(|(id, limit, notify_from)| SetBudget {
                id: id.clone(),
                hash: budget_hash(id, period),
                limit: *limit,
                notify_from: *notify_from,
            })
            .collect();
        Self { period, budgets }
    }
}

#[derive(Debug)]
pub enum LedgerError {
    Full(String),
    Os(io::Error),
    Lock(String),
}

impl From<LedgerError> for PyErr {
    fn from(err: LedgerError) -> PyErr {
        match err {
            LedgerError::Full(msg) => LedgerFull::new_err(msg),
            LedgerError::Os(e) => PyOSError::new_err(e.to_string()),
            LedgerError::Lock(msg) => PyRuntimeError::new_err(msg),
        }
    }
}

fn os_error() -> LedgerError {
    LedgerError::Os(io::Error::last_os_error())
}

/// A mapped ledger. The mapping is shared with other processes; every access to it goes through
/// `Locked`, which holds the mutex.
pub struct Ledger {
    base: *mut i64,
    len_bytes: usize,
    fd: i32,
    n_slots: usize,
    n_lanes: usize,
    lane: usize,
}

// The raw pointer is into a MAP_SHARED mapping guarded by a process-shared mutex.
unsafe impl Send for Ledger {}
unsafe impl Sync for Ledger {}

fn pid_alive(pid: i64) -> bool {
    // Signal 0 checks existence; EPERM means it exists but belongs to someone else.
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

impl Ledger {
    pub fn open(path: Option<&str>, n_slots: usize, n_lanes: usize) -> Result<Ledger, LedgerError> {
        if n_slots == 0 || n_lanes == 0 {
            return Err(LedgerError::Full(
                "a ledger needs at least one slot and one lane".into(),
            ));
        }
        let words = HEADER_WORDS + MUTEX_WORDS + n_lanes + n_slots * (LANES + n_lanes);
        let len_bytes = words * 8;
        let fd = match path {
            None => -1,
            Some(p) => {
                let c = CString::new(p)
                    .map_err(|_| LedgerError::Os(io::Error::from(io::ErrorKind::InvalidInput)))?;
                let fd = unsafe {
                    libc::open(
                        c.as_ptr(),
                        libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
                        0o600,
                    )
                };
                if fd < 0 {
                    return Err(os_error());
                }
                fd
            }
        };
        let opened = Self::map(fd, len_bytes);
        let base = match opened {
            Ok(base) => base,
            Err(e) => {
                if fd >= 0 {
                    unsafe { libc::close(fd) };
                }
                return Err(e);
            }
        };
        let ledger = Ledger {
            base,
            len_bytes,
            fd,
            n_slots,
            n_lanes,
            lane: 0,
        };
        // Two processes may open a fresh file at once: the file lock (taken only here, never on the hot
        // path) makes exactly one of them lay out the header and the mutex.
        ledger.file_lock(true)?;
        let fresh = ledger.word(0) != MAGIC
            || ledger.word(1) != n_slots as i64
            || ledger.word(2) != n_lanes as i64;
        let initialised = if fresh { ledger.initialise() } else { Ok(()) };
        ledger.file_lock(false)?;
        initialised?;
        Ok(ledger)
    }

    /// Map the file (sized under the file lock by the caller's `open`) or anonymous memory.
    fn map(fd: i32, len_bytes: usize) -> Result<*mut i64, LedgerError> {
        let flags = if fd < 0 {
            libc::MAP_SHARED | libc::MAP_ANONYMOUS
        } else {
            libc::MAP_SHARED
        };
        if fd >= 0 {
            if unsafe { libc::flock(fd, libc::LOCK_EX) } != 0 {
                return Err(os_error());
            }
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            let sized = unsafe { libc::fstat(fd, &mut st) } == 0
                && (st.st_size as usize == len_bytes
                    || unsafe { libc::ftruncate(fd, len_bytes as libc::off_t) } == 0);
            let err = (!sized).then(os_error);
            unsafe { libc::flock(fd, libc::LOCK_UN) };
            if let Some(e) = err {
                return Err(e);
            }
        }
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os_error());
        }
        Ok(p.cast())
    }

    fn file_lock(&self, on: bool) -> Result<(), LedgerError> {
        if self.fd >= 0
            && unsafe { libc::flock(self.fd, if on { libc::LOCK_EX } else { libc::LOCK_UN }) } != 0
        {
            return Err(os_error());
        }
        Ok(())
    }

    fn word(&self, i: usize) -> i64 {
        unsafe { ptr::read_volatile(self.base.add(i)) }
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        unsafe { self.base.add(HEADER_WORDS).cast() }
    }

    /// Zero everything and create the mutex; the magic goes last so a half-done layout is redone.
    fn initialise(&self) -> Result<(), LedgerError> {
        unsafe {
            ptr::write_bytes(self.base.cast::<u8>(), 0, self.len_bytes);
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            let mut rc = libc::pthread_mutexattr_init(&mut attr);
            if rc == 0 {
                rc = libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
            }
            if rc == 0 {
                rc = libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
            }
            if rc == 0 {
                rc = libc::pthread_mutex_init(self.mutex(), &attr);
            }
            libc::pthread_mutexattr_destroy(&mut attr);
            if rc != 0 {
                return Err(LedgerError::Os(io::Error::from_raw_os_error(rc)));
            }
            *self.base.add(1) = self.n_slots as i64;
            *self.base.add(2) = self.n_lanes as i64;
            ptr::write_volatile(self.base, MAGIC);
        }
        Ok(())
    }

    /// Take the mutex; if its holder died, repair what it may have left half-done first.
    fn lock(&mut self) -> Result<Locked<'_>, LedgerError> {
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex()) };
        let guard = Locked { ledger: self };
        match rc {
            0 => Ok(guard),
            libc::EOWNERDEAD => {
                guard.release_dead_lanes();
                guard.recount_reserved();
                unsafe { libc::pthread_mutex_consistent(guard.ledger.mutex()) };
                Ok(guard)
            }
            _ => {
                std::mem::forget(guard);
                Err(LedgerError::Lock(format!(
                    "the budget ledger's lock is unusable ({}); restart `router serve` to rebuild it",
                    io::Error::from_raw_os_error(rc)
                )))
            }
        }
    }

    pub fn lane(&self) -> usize {
        self.lane
    }

    /// Take a lane for this process (the one it already holds, else a free one), first releasing the
    /// reservations of every process that died holding a lane.
    pub fn attach(&mut self, pid: i64) -> Result<usize, LedgerError> {
        let lane = {
            let l = self.lock()?;
            l.release_dead_lanes();
            let owners = l.ledger.lanes_at();
            let mine = (0..l.ledger.n_lanes).find(|&i| l.get(owners + i) == pid);
            let lane = mine.or_else(|| (0..l.ledger.n_lanes).find(|&i| l.get(owners + i) == 0));
            let Some(lane) = lane else {
                return Err(LedgerError::Full(format!(
                    "all {} ledger lanes are held by live processes",
                    l.ledger.n_lanes
                )));
            };
            l.set(owners + lane, pid);
            lane
        };
        self.lane = lane;
        Ok(lane)
    }

    /// Reserve `amount` against every budget of the set or none: the index of the first budget that
    /// cannot take it, or None when all did.
    pub fn reserve(&mut self, set: &BudgetSet, amount: i64) -> Result<Option<usize>, LedgerError> {
        let column = LANES + self.lane;
        let l = self.lock()?;
        let mut bases = Vec::with_capacity(set.budgets.len());
        for (i, budget) in set.budgets.iter().enumerate() {
            let base = l.slot_of(budget.hash, set.period, true)?.expect("created");
            if l.get(base + COMMITTED) + l.get(base + RESERVED) + amount > budget.limit {
                return Ok(Some(i));
            }
            bases.push(base);
        }
        for base in bases {
            l.add(base + column, amount);
            l.add(base + RESERVED, amount);
        }
        Ok(None)
    }

    /// Replace a reservation by the actual cost (zero for a failed request): (index, committed spend) of
    /// every budget of the set whose committed spend is now at or over its notify threshold.
    pub fn settle(
        &mut self,
        set: &BudgetSet,
        reserved: i64,
        actual: i64,
    ) -> Result<Vec<(usize, i64)>, LedgerError> {
        let column = LANES + self.lane;
        let l = self.lock()?;
        let mut over = Vec::new();
        for (i, budget) in set.budgets.iter().enumerate() {
            let base = l.slot_of(budget.hash, set.period, true)?.expect("created");
            l.add(base + COMMITTED, actual);
            l.add(base + column, -reserved);
            l.add(base + RESERVED, -reserved);
            let committed = l.get(base + COMMITTED);
            if committed >= budget.notify_from {
                over.push((i, committed));
            }
        }
        Ok(over)
    }

    /// Create the slot with this committed spend unless it exists (then it is left alone).
    pub fn seed(&mut self, budget: &str, period: i64, committed: i64) -> Result<(), LedgerError> {
        let l = self.lock()?;
        if l.slot(budget, period, false)?.is_none() {
            let base = l.slot(budget, period, true)?.expect("created");
            l.set(base + COMMITTED, committed);
        }
        Ok(())
    }

    /// (committed, reserved) micro-dollars.
    pub fn usage(&mut self, budget: &str, period: i64) -> Result<(i64, i64), LedgerError> {
        let l = self.lock()?;
        Ok(match l.slot(budget, period, false)? {
            Some(base) => (l.get(base + COMMITTED), l.get(base + RESERVED)),
            None => (0, 0),
        })
    }

    /// Start afresh from the stored spend: every slot, reservation and lane dropped, and the mutex made
    /// anew, so even one left unrecoverable (a holder and then its repairer both killed) is usable again.
    /// Only for `router serve` before any worker runs: it takes the file lock, not the mutex.
    pub fn rebuild(&mut self, committed: &[(String, i64, i64)]) -> Result<(), LedgerError> {
        self.file_lock(true)?;
        let done = self.initialise().and_then(|()| {
            let l = Locked { ledger: self };
            let seeded = committed.iter().try_for_each(|(budget, period, amount)| {
                let base = l.slot(budget, *period, true)?.expect("created");
                l.set(base + COMMITTED, *amount);
                Ok(())
            });
            // Not locked: nothing to unlock.
            std::mem::forget(l);
            seeded
        });
        self.file_lock(false)?;
        self.lane = 0;
        done
    }

    fn width(&self) -> usize {
        LANES + self.n_lanes
    }

    fn lanes_at(&self) -> usize {
        HEADER_WORDS + MUTEX_WORDS
    }

    fn slots_at(&self) -> usize {
        self.lanes_at() + self.n_lanes
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        unsafe {
            libc::munmap(self.base.cast(), self.len_bytes);
            if self.fd >= 0 {
                libc::close(self.fd);
            }
        }
    }
}

/// The ledger with its mutex held; unlocks on drop.
struct Locked<'a> {
    ledger: &'a Ledger,
}

impl Locked<'_> {
    fn get(&self, i: usize) -> i64 {
        unsafe { *self.ledger.base.add(i) }
    }

    fn set(&self, i: usize, v: i64) {
        unsafe { *self.ledger.base.add(i) = v }
    }

    fn add(&self, i: usize, v: i64) {
        unsafe { *self.ledger.base.add(i) += v }
    }

    /// The slot's base word index; None when absent and not asked to create it.
    fn slot(&self, budget: &str, period: i64, create: bool) -> Result<Option<usize>, LedgerError> {
        self.slot_of(budget_hash(budget, period), period, create)
    }

    /// `slot` for a budget whose key is already hashed (`budget_hash`).
    fn slot_of(&self, h: i64, period: i64, create: bool) -> Result<Option<usize>, LedgerError> {
        let (n, w, at) = (
            self.ledger.n_slots,
            self.ledger.width(),
            self.ledger.slots_at(),
        );
        let start = (h as u64 % n as u64) as usize;
        for probe in 0..n {
            let base = at + ((start + probe) % n) * w;
            match self.get(base + HASH) {
                found if found == h => return Ok(Some(base)),
                0 if create => {
                    self.set(base + HASH, h);
                    self.set(base + PERIOD, period);
                    return Ok(Some(base));
                }
                0 => return Ok(None),
                _ => {}
            }
        }
        Err(LedgerError::Full(format!(
            "the budget ledger has no free slot among {n}"
        )))
    }

    fn release_dead_lanes(&self) {
        let owners = self.ledger.lanes_at();
        for lane in 0..self.ledger.n_lanes {
            let pid = self.get(owners + lane);
            if pid != 0 && !pid_alive(pid) {
                self.release_lane(lane);
                self.set(owners + lane, 0);
            }
        }
    }

    fn release_lane(&self, lane: usize) {
        let (w, at, column) = (self.ledger.width(), self.ledger.slots_at(), LANES + lane);
        for slot in 0..self.ledger.n_slots {
            let base = at + slot * w;
            let held = self.get(base + column);
            if held != 0 {
                self.add(base + RESERVED, -held);
                self.set(base + column, 0);
            }
        }
    }

    /// After a holder died mid-update: each reserved total is the sum of its lanes again.
    fn recount_reserved(&self) {
        let (w, at, lanes) = (
            self.ledger.width(),
            self.ledger.slots_at(),
            self.ledger.n_lanes,
        );
        for slot in 0..self.ledger.n_slots {
            let base = at + slot * w;
            let total = (0..lanes).map(|lane| self.get(base + LANES + lane)).sum();
            self.set(base + RESERVED, total);
        }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        unsafe { libc::pthread_mutex_unlock(self.ledger.mutex()) };
    }
}

/// Python binding: `router.spend.ledger.BudgetSet`.
#[pyclass(name = "BudgetSet", module = "router._core", frozen)]
pub struct PyBudgetSet(BudgetSet);

#[pymethods]
impl PyBudgetSet {
    #[new]
    fn new(budgets: Vec<(String, i64, i64)>, period: i64) -> Self {
        Self(BudgetSet::new(&budgets, period))
    }

    #[getter]
    fn ids(&self) -> Vec<String> {
        self.0.budgets.iter().map(|b| b.id.clone()).collect()
    }

    #[getter]
    fn period(&self) -> i64 {
        self.0.period
    }

    fn __len__(&self) -> usize {
        self.0.budgets.len()
    }
}

/// Python binding: `router.spend.ledger.Ledger`.
#[pyclass(name = "Ledger", module = "router._core")]
pub struct PyLedger {
    inner: Option<Ledger>,
}

impl PyLedger {
    fn get(&mut self) -> PyResult<&mut Ledger> {
        self.inner
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("the ledger is closed"))
    }
}

#[pymethods]
impl PyLedger {
    #[new]
    #[pyo3(signature = (path, n_slots = 16384, n_lanes = 32))]
    fn new(path: Option<&str>, n_slots: usize, n_lanes: usize) -> PyResult<Self> {
        Ok(PyLedger {
            inner: Some(Ledger::open(path, n_slots, n_lanes)?),
        })
    }

    #[getter]
    fn lane(&mut self) -> PyResult<usize> {
        Ok(self.get()?.lane())
    }

    #[pyo3(signature = (pid = None))]
    fn attach(&mut self, pid: Option<i64>) -> PyResult<usize> {
        let pid = pid.unwrap_or_else(|| i64::from(std::process::id()));
        Ok(self.get()?.attach(pid)?)
    }

    fn reserve(&mut self, budgets: &PyBudgetSet, amount: i64) -> PyResult<Option<usize>> {
        Ok(self.get()?.reserve(&budgets.0, amount)?)
    }

    fn settle(
        &mut self,
        budgets: &PyBudgetSet,
        reserved: i64,
        actual: i64,
    ) -> PyResult<Option<Vec<(usize, i64)>>> {
        let over = self.get()?.settle(&budgets.0, reserved, actual)?;
        Ok((!over.is_empty()).then_some(over))
    }

    fn seed(&mut self, budget: &str, period: i64, committed: i64) -> PyResult<()> {
        Ok(self.get()?.seed(budget, period, committed)?)
    }

    fn usage(&mut self, budget: &str, period: i64) -> PyResult<(i64, i64)> {
        Ok(self.get()?.usage(budget, period)?)
    }

    fn rebuild(&mut self, committed: Vec<(String, i64, i64)>) -> PyResult<()> {
        Ok(self.get()?.rebuild(&committed)?)
    }

    fn close(&mut self) {
        self.inner = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Limits only: nothing to notify.
    fn set(budgets: &[(&str, i64)], period: i64) -> BudgetSet {
        let budgets: Vec<_> = budgets
            .iter()
            .map(|&(id, limit)| (id.to_string(), limit, i64::MAX))
            .collect();
        BudgetSet::new(&budgets, period)
    }

    #[test]
    fn reserve_is_all_or_nothing() {
        let mut l = Ledger::open(None, 64, 2).unwrap();
        l.attach(i64::from(std::process::id())).unwrap();
        let budgets = set(&[("key:a", 100), ("org", 1000)], 1);
        assert_eq!(l.reserve(&budgets, 60).unwrap(), None);
        assert_eq!(l.reserve(&budgets, 60).unwrap(), Some(0));
        assert_eq!(l.usage("org", 1).unwrap(), (0, 60));
        assert_eq!(l.settle(&budgets, 60, 15).unwrap(), vec![]);
        assert_eq!(l.usage("key:a", 1).unwrap(), (15, 0));
    }

    #[test]
    fn settling_reports_the_budgets_at_their_notify_threshold() {
        let mut l = Ledger::open(None, 64, 1).unwrap();
        let budgets = [
            ("key:a".to_string(), 100, 50),
            ("org".to_string(), 1000, 500),
        ];
        let budgets = BudgetSet::new(&budgets, 1);
        l.reserve(&budgets, 40).unwrap();
        assert_eq!(l.settle(&budgets, 40, 30).unwrap(), vec![]);
        l.reserve(&budgets, 40).unwrap();
        assert_eq!(l.settle(&budgets, 40, 20).unwrap(), vec![(0, 50)]);
        assert_eq!(l.usage("org", 1).unwrap(), (50, 0));
    }

    #[test]
    fn many_budgets_at_once() {
        let mut l = Ledger::open(None, 64, 1).unwrap();
        let names: Vec<String> = (0..12).map(|i| format!("group:{i}")).collect();
        let budgets: Vec<(&str, i64)> = names.iter().map(|n| (n.as_str(), 10)).collect();
        assert_eq!(l.reserve(&set(&budgets, 1), 4).unwrap(), None);
        assert!(names.iter().all(|n| l.usage(n, 1).unwrap() == (0, 4)));
    }

    #[test]
    fn a_full_table_is_an_error() {
        let mut l = Ledger::open(None, 2, 1).unwrap();
        l.seed("a", 1, 0).unwrap();
        l.seed("b", 1, 0).unwrap();
        assert!(matches!(
            l.reserve(&set(&[("c", 10)], 1), 1),
            Err(LedgerError::Full(_))
        ));
    }

    #[test]
    fn recount_restores_totals_from_lanes() {
        let mut l = Ledger::open(None, 8, 2).unwrap();
        l.reserve(&set(&[("k", 100)], 1), 30).unwrap();
        let g = l.lock().unwrap();
        let base = g.slot("k", 1, false).unwrap().unwrap();
        g.set(base + RESERVED, 999); // as if a holder died between the two writes
        g.recount_reserved();
        assert_eq!(g.get(base + RESERVED), 30);
    }

    #[test]
    fn a_holder_killed_inside_the_lock_is_repaired() {
        let mut l = Ledger::open(None, 8, 2).unwrap();
        l.attach(i64::from(std::process::id())).unwrap();
        l.reserve(&set(&[("k", 100)], 1), 10).unwrap();
        match unsafe { libc::fork() } {
            0 => {
                // The child takes a lane, reserves, and dies mid-update with the mutex held.
                l.attach(i64::from(std::process::id())).unwrap();
                let column = LANES + l.lane;
                let g = l.lock().unwrap();
                let base = g.slot("k", 1, false).unwrap().unwrap();
                g.add(base + column, 50);
                g.add(base + RESERVED, 50);
                std::mem::forget(g);
                unsafe { libc::_exit(0) };
            }
            child => {
                let mut status = 0;
                unsafe { libc::waitpid(child, &mut status, 0) };
            }
        }
        // The dead child's 50 is released; this process's 10 stays.
        assert_eq!(l.usage("k", 1).unwrap(), (0, 10));
        assert_eq!(l.reserve(&set(&[("k", 100)], 1), 90).unwrap(), None);
    }

    #[test]
    fn rebuild_makes_an_unrecoverable_lock_usable_again() {
        let mut l = Ledger::open(None, 8, 2).unwrap();
        match unsafe { libc::fork() } {
            0 => {
                unsafe { libc::pthread_mutex_lock(l.mutex()) };
                unsafe { libc::_exit(0) };
            }
            child => {
                let mut status = 0;
                unsafe { libc::waitpid(child, &mut status, 0) };
            }
        }
        // The next holder is told EOWNERDEAD and gives up without repairing: the lock is now unrecoverable.
        assert_eq!(
            unsafe { libc::pthread_mutex_lock(l.mutex()) },
            libc::EOWNERDEAD
        );
        unsafe { libc::pthread_mutex_unlock(l.mutex()) };
        assert!(matches!(l.usage("k", 1), Err(LedgerError::Lock(_))));
        l.rebuild(&[("k".to_string(), 1, 7)]).unwrap();
        assert_eq!(l.usage("k", 1).unwrap(), (7, 0));
    }
}
