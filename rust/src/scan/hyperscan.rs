//! The wake-up pass on Hyperscan (feature `hyperscan`): the engine's anchors, cue words and digits as
//! one Hyperscan literal database, scanned over the whole text.
//!
//! A minimal `extern "C"` binding to the system `libhs` (Debian `libhyperscan-dev`, or Vectorscan):
//! compile, scratch and block scan are all the engine needs, and this avoids bindgen and libclang.
use std::ffi::{c_char, c_int, c_uint, c_ulonglong, c_void, CStr};
use std::ptr;
use std::sync::Mutex;

#[repr(C)]
struct CompileError {
    message: *const c_char,
    expression: c_int,
}

enum Database {}
enum Scratch {}

type OnMatch = unsafe extern "C" fn(
    id: c_uint,
    from: c_ulonglong,
    to: c_ulonglong,
    flags: c_uint,
    context: *mut c_void,
) -> c_int;

const HS_SUCCESS: c_int = 0;
const HS_FLAG_CASELESS: c_uint = 1;
const HS_MODE_BLOCK: c_uint = 1;

#[link(name = "hs")]
extern "C" {
    fn hs_compile_lit_multi(
        expressions: *const *const c_char,
        flags: *const c_uint,
        ids: *const c_uint,
        lens: *const usize,
        elements: c_uint,
        mode: c_uint,
        platform: *const c_void,
        db: *mut *mut Database,
        error: *mut *mut CompileError,
    ) -> c_int;
    fn hs_free_compile_error(error: *mut CompileError) -> c_int;
    fn hs_free_database(db: *mut Database) -> c_int;
    fn hs_alloc_scratch(db: *const Database, scratch: *mut *mut Scratch) -> c_int;
    fn hs_free_scratch(scratch: *mut Scratch) -> c_int;
    fn hs_scan(
        db: *const Database,
        data: *const c_char,
        length: c_uint,
        flags: c_uint,
        scratch: *mut Scratch,
        on_match: OnMatch,
        context: *mut c_void,
    ) -> c_int;
}

/// A compiled case-insensitive literal set, with a pool of scratch spaces (one per concurrent scan).
pub struct Literals {
    db: *mut Database,
    lens: Vec<usize>,
    scratch: Mutex<Vec<*mut Scratch>>,
}

// SAFETY: a compiled database is immutable and may be shared by threads; each scratch space is used by
// one scan at a time (taken out of the pool for the scan's duration).
unsafe impl Send for Literals {}
unsafe impl Sync for Literals {}

impl Literals {
    pub fn new(literals: &[String]) -> Result<Self, String> {
        let count = c_uint::try_from(literals.len()).map_err(|e| e.to_string())?;
        let ptrs: Vec<*const c_char> = literals.iter().map(|l| l.as_ptr().cast()).collect();
        let lens: Vec<usize> = literals.iter().map(String::len).collect();
        let flags = vec![HS_FLAG_CASELESS; literals.len()];
        let ids: Vec<c_uint> = (0..count).collect();
        let mut db = ptr::null_mut();
        let mut error = ptr::null_mut();
        // SAFETY: the arrays have `count` elements and outlive the call; literal lengths are given,
        // so the strings need no terminator.
        let rc = unsafe {
            hs_compile_lit_multi(
                ptrs.as_ptr(),
                flags.as_ptr(),
                ids.as_ptr(),
                lens.as_ptr(),
                count,
                HS_MODE_BLOCK,
                ptr::null(),
                &mut db,
                &mut error,
            )
        };
        if rc != HS_SUCCESS {
            // SAFETY: on failure Hyperscan hands back an error we own (its message a C string).
            let message = unsafe {
                let m = if error.is_null() || (*error).message.is_null() {
                    format!("error code {rc}")
                } else {
                    CStr::from_ptr((*error).message)
                        .to_string_lossy()
                        .into_owned()
                };
                hs_free_compile_error(error);
                m
            };
            return Err(format!("hyperscan literal database: {message}"));
        }
        Ok(Self {
            db,
            lens,
            scratch: Mutex::new(Vec::new()),
        })
    }

    /// Calls `f(pattern, start, end)` for every (overlapping) literal occurrence, in end order.
    /// An error (no scratch memory, a text over 4 GiB) is returned, never half-reported as success.
    pub fn for_each(
        &self,
        text: &str,
        mut f: impl FnMut(usize, usize, usize),
    ) -> Result<(), String> {
        let length = c_uint::try_from(text.len()).map_err(|_| "text too long for hyperscan")?;
        let pooled = self.scratch.lock().map_or(None, |mut pool| pool.pop());
        let scratch = match pooled {
            Some(s) => s,
            None => {
                let mut s = ptr::null_mut();
                // SAFETY: `db` is a valid database; a null `s` asks for a new scratch space.
                if unsafe { hs_alloc_scratch(self.db, &mut s) } != HS_SUCCESS {
                    return Err("hyperscan scratch allocation failed".into());
                }
                s
            }
        };
        let mut ctx: (&[usize], &mut dyn FnMut(usize, usize, usize)) = (&self.lens, &mut f);
        // SAFETY: the scratch belongs to this call alone; `ctx` outlives the scan and the callback
        // casts it back to its own type.
        let rc = unsafe {
            hs_scan(
                self.db,
                text.as_ptr().cast(),
                length,
                0,
                scratch,
                on_match,
                ptr::addr_of_mut!(ctx).cast(),
            )
        };
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(scratch);
        }
        if rc == HS_SUCCESS {
            Ok(())
        } else {
            Err(format!("hyperscan scan failed with code {rc}"))
        }
    }
}

type Context<'a> = (&'a [usize], &'a mut dyn FnMut(usize, usize, usize));

unsafe extern "C" fn on_match(
    id: c_uint,
    _from: c_ulonglong,
    to: c_ulonglong,
    _flags: c_uint,
    context: *mut c_void,
) -> c_int {
    // SAFETY: `context` is the `Context` that `for_each` passed to `hs_scan`.
    let (lens, f) = unsafe { &mut *context.cast::<Context>() };
    let (id, end) = (id as usize, to as usize);
    // A panic must not unwind into C: stop the scan instead, which `for_each` reports as an error.
    let call = std::panic::AssertUnwindSafe(|| f(id, end - lens[id], end));
    c_int::from(std::panic::catch_unwind(call).is_err())
}

impl Drop for Literals {
    fn drop(&mut self) {
        // SAFETY: the database and the pooled scratch spaces are ours and no scan is running (`&mut`).
        unsafe {
            for s in self
                .scratch
                .get_mut()
                .map(std::mem::take)
                .unwrap_or_default()
            {
                hs_free_scratch(s);
            }
            hs_free_database(self.db);
        }
    }
}
