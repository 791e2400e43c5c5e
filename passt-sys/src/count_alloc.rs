//! A counting global allocator, for the tests that prove the drivers
//! allocate nothing once running (installed by the drivers' `count-alloc`
//! feature only; never in a release).
//!
//! A driver built with its `count-alloc` feature installs [`Counting`] as
//! its global allocator: it hands every request to the system allocator
//! and, once [`arm`] was called (when setup is done, just before the event
//! loop), writes one line per allocation or reallocation to the file named
//! by the environment variable `PASST_ALLOC_LOG` (opened by [`open_log`]
//! at start, before the sandbox hides the filesystem):
//!
//! ```text
//! armed
//! alloc 64
//! ```
//!
//! The lines are written with one `write(2)` each, as they happen, so the
//! record survives however the process ends (a test kills it). A test reads
//! the file ([`allocations_after_setup`]) and expects no `alloc` line after
//! `armed`. With
//! `PASST_ALLOC_ABORT=1` the process aborts at the first allocation after
//! [`arm`] instead, for a core dump or debugger to show where it came from.
//! With `PASST_ALLOC_TRACE=1` (glibc only), each `alloc` line is followed
//! by the call stack's return addresses (glibc's `backtrace_symbols_fd`,
//! which writes without allocating: `pasta(+0x1234)[...]` lines, for
//! `addr2line -f -C -i -e BINARY 0x1234`).
//! Frees are not counted: memory given back is no risk.
//!
//! [`PerThread`] counts per thread instead, in memory, for tests that run
//! the translator and executor in their own process.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::alloc::{GlobalAlloc, Layout, System};
use std::os::fd::IntoRawFd;

/// The system allocator, counting what it is asked for once armed.
#[derive(Debug, Default)]
pub struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static ABORT: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicU64 = AtomicU64::new(0);
static FD: AtomicI32 = AtomicI32::new(-1);
static TRACE: AtomicBool = AtomicBool::new(false);
/// Set while a trace is written (its own allocations are not counted).
static IN_TRACE: AtomicBool = AtomicBool::new(false);

/// Open the file `PASST_ALLOC_LOG` names, if set (append, close-on-exec);
/// read `PASST_ALLOC_ABORT`. Call at start, after closing inherited
/// descriptors and before the sandbox.
pub fn open_log() {
    ABORT.store(
        std::env::var_os("PASST_ALLOC_ABORT").is_some_and(|v| v == "1"),
        Ordering::Relaxed,
    );
    let trace =
        cfg!(target_env = "gnu") && std::env::var_os("PASST_ALLOC_TRACE").is_some_and(|v| v == "1");
    if trace {
        // The first backtrace loads the unwinder (a file to open, memory to
        // allocate): now, before the sandbox and the count.
        write_trace(-1);
    }
    TRACE.store(trace, Ordering::Relaxed);
    let Some(path) = std::env::var_os("PASST_ALLOC_LOG") else {
        return;
    };
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let old = FD.swap(f.into_raw_fd(), Ordering::Relaxed);
        if old >= 0 {
            // SAFETY: `old` was ours (from `into_raw_fd`), and is no longer
            // reachable through `FD`.
            unsafe { libc::close(old) };
        }
    }
}

/// Setup is done: count (and log) every allocation from now on.
pub fn arm() {
    let mut line = Line::new();
    line.push(b"armed");
    line.write();
    ARMED.store(true, Ordering::SeqCst);
}

/// Allocations since [`arm`].
pub fn count() -> u64 {
    COUNT.load(Ordering::Relaxed)
}

/// The sizes of the allocations an allocation log's text records after
/// its last `armed` line; `None` if the process was never armed (it did
/// not get that far, or was built without the counter).
pub fn allocations_after_setup(log: &str) -> Option<Vec<u64>> {
    let (_, after) = log.rsplit_once("armed\n")?;
    Some(
        after
            .lines()
            .filter_map(|l| l.strip_prefix("alloc ")?.parse().ok())
            .collect(),
    )
}

/// Check the allocation log at `path` of a daemon (`what`): `Err` with a
/// message if it allocated more than `allowed.0` times after setup
/// (`allowed.1` says why any are expected).
///
/// # Errors
/// The message, naming the count and sizes.
pub fn check_log(path: &std::path::Path, what: &str, allowed: (usize, &str)) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match allocations_after_setup(&text) {
        Some(sizes) if sizes.len() > allowed.0 => Err(format!(
            "{what} allocated {} times after setup (sizes {sizes:?}; allowed: {} for {:?}); \
             PASST_ALLOC_TRACE=1 logs where (see passt_sys::count_alloc)",
            sizes.len(),
            allowed.0,
            allowed.1
        )),
        _ => Ok(()),
    }
}

/// One log line, built on the stack (the allocator must not allocate).
struct Line {
    buf: [u8; 64],
    len: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            buf: [0; 64],
            len: 0,
        }
    }

    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn num(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    fn write(mut self) {
        self.push(b"\n");
        let fd = FD.load(Ordering::Relaxed);
        if fd >= 0 {
            // SAFETY: `fd` is the log file we opened and never close while
            // armed; the buffer is ours, `len` bytes long.
            let _ = unsafe { libc::write(fd, self.buf.as_ptr().cast(), self.len) };
        }
    }
}

/// Write the call stack's return addresses to `fd` (none if `fd` < 0).
fn write_trace(fd: i32) {
    #[cfg(target_env = "gnu")]
    {
        let mut frames = [core::ptr::null_mut::<libc::c_void>(); 32];
        // SAFETY: `frames` has room for the 32 entries asked for;
        // `backtrace_symbols_fd` reads the `n` filled and writes to `fd`
        // without allocating (glibc's backtrace(3)).
        unsafe {
            let n = libc::backtrace(frames.as_mut_ptr(), 32);
            if fd >= 0 && n > 0 {
                libc::backtrace_symbols_fd(frames.as_ptr(), n, fd);
            }
        }
    }
    #[cfg(not(target_env = "gnu"))]
    let _ = fd;
}

fn note(size: usize) {
    if ARMED.load(Ordering::Relaxed) && !IN_TRACE.load(Ordering::Relaxed) {
        allocated_after_setup(size);
    }
}

/// An allocation after [`arm`]: counted, logged, and the process aborted
/// if asked. Never inlined, so that a debugger's breakpoint on it shows
/// each one's caller.
#[inline(never)]
pub fn allocated_after_setup(size: usize) {
    COUNT.fetch_add(1, Ordering::Relaxed);
    let mut line = Line::new();
    line.push(b"alloc ");
    line.num(size as u64);
    line.write();
    if TRACE.load(Ordering::Relaxed) && !IN_TRACE.swap(true, Ordering::Relaxed) {
        write_trace(FD.load(Ordering::Relaxed));
        IN_TRACE.store(false, Ordering::Relaxed);
    }
    if ABORT.load(Ordering::Relaxed) {
        std::process::abort();
    }
}

// SAFETY: every call is passed to `System` unchanged; counting touches only
// atomics and a stack buffer, and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The system allocator, counting the allocations and reallocations of
/// each thread ([`thread_allocs`]), for in-process tests that run in
/// parallel (passt-core's `tests/alloc.rs`: the counter of the test's own
/// thread moves only with what that test does).
#[derive(Debug, Default)]
pub struct PerThread;

thread_local! {
    static THREAD_ALLOCS: core::cell::Cell<u64> = const { core::cell::Cell::new(0) };
}

/// Allocations and reallocations the calling thread made through
/// [`PerThread`] so far.
pub fn thread_allocs() -> u64 {
    THREAD_ALLOCS.with(|c| c.get())
}

// SAFETY: defers every call to the system allocator unchanged; the counter is
// a const-initialised thread-local that never allocates.
unsafe impl GlobalAlloc for PerThread {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = THREAD_ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_read_from_the_last_arming() {
        assert_eq!(allocations_after_setup("alloc 5\n"), None);
        let log = "alloc 5\narmed\nalloc 64\nalloc 7\n";
        assert_eq!(allocations_after_setup(log), Some(vec![64, 7]));
        let dir = std::env::temp_dir().join(format!("count-alloc-{}", std::process::id()));
        std::fs::write(&dir, log).unwrap();
        assert!(check_log(&dir, "x", (2, "two")).is_ok());
        let e = check_log(&dir, "x", (1, "one")).unwrap_err();
        assert!(
            e.contains("x allocated 2 times") && e.contains("[64, 7]"),
            "{e}"
        );
        std::fs::remove_file(&dir).unwrap();
        assert!(check_log(&dir, "x", (0, "none")).is_ok());
    }

    #[test]
    fn lines_are_built_without_the_formatting_machinery() {
        let mut l = Line::new();
        l.push(b"alloc ");
        l.num(0);
        l.push(b" ");
        l.num(18_446_744_073_709_551_615);
        assert_eq!(&l.buf[..l.len], b"alloc 0 18446744073709551615");
        let mut long = Line::new();
        long.push(&[b'x'; 100]);
        assert_eq!(long.len, 64);
    }
}
