//! Messages: standard error while in the foreground, and a log file with
//! `-l/--log-file` (kept under `--log-size` by starting it over).
//!
//! Levels as passt(1) has them: errors and warnings always, information
//! unless `-q`, debug messages with `-d`, per-frame ones with `--trace`.
//! Once daemonised, standard error is `/dev/null` and only the log file
//! gets messages, or without one the system log (`/dev/log`, connected at
//! start before the sandbox: `<PRI>passt[PID]: message`, see
//! [`passt_core::host::syslog`]).
//!
//! Errors, warnings and information are rate-limited per call site
//! ([`RateLimit`]: a few a second, on `CLOCK_MONOTONIC`), so that a failure
//! repeating on every wake-up (descriptors ran out, a client reconnecting
//! in a loop) cannot flood the log; the next message of that site that
//! gets through is preceded by the number held back. Debug messages, asked
//! for with `-d`, are not limited; trace messages (a line per frame from
//! and to the guest with `--trace`) are, like errors.
//!
//! Syscalls: `write` (standard error, the file), `open`, `ftruncate`,
//! `clock_gettime(CLOCK_MONOTONIC)`.

use core::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::sync::Mutex;

use passt_core::host::limits::LogLine;
pub(crate) use passt_core::host::limits::RateLimit;

/// Longest line written (longer messages are cut).
const LINE_MAX: usize = 2048;

/// How much to say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Something failed.
    Error,
    /// Something odd.
    Warn,
    /// What a user wants to know (start-up summary, clients).
    Info,
    /// What a developer wants to know (`-d`).
    Debug,
    /// Every frame (`--trace`).
    Trace,
}

struct Logger {
    max: Level,
    stderr: bool,
    file: Option<File>,
    file_len: u64,
    file_max: u64,
}

/// The system log, if `/dev/log` was there at start: where messages go in
/// the background without a log file (`<PRI>passt[PID]: message`).
static SYSLOG: Mutex<Option<passt_core::host::syslog::Syslog>> = Mutex::new(None);

/// Connect to the system log (call before the sandbox hides `/dev/log`).
pub(crate) fn open_syslog() {
    *SYSLOG.lock().unwrap_or_else(|p| p.into_inner()) =
        passt_core::host::syslog::Syslog::connect("passt");
}

/// After a fork: system-log messages carry `pid`.
pub(crate) fn set_syslog_pid(pid: u32) {
    if let Some(s) = SYSLOG.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        s.set_pid(pid);
    }
}

static LOGGER: Mutex<Logger> = Mutex::new(Logger {
    max: Level::Info,
    stderr: true,
    file: None,
    file_len: 0,
    file_max: u64::MAX,
});

/// Set the level and the log file (`None`: standard error only).
pub(crate) fn init(max: Level, file: Option<File>, file_max: u64) {
    let mut l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    l.max = max;
    l.file_len = file
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map_or(0, |m| m.len());
    l.file = file;
    l.file_max = file_max;
}

/// Stop writing to standard error (after daemonising).
pub(crate) fn detach_stderr() {
    LOGGER.lock().unwrap_or_else(|e| e.into_inner()).stderr = false;
}

/// Whether messages of `level` go anywhere.
pub(crate) fn enabled(level: Level) -> bool {
    level <= LOGGER.lock().unwrap_or_else(|e| e.into_inner()).max
}

/// Emit one message.
pub(crate) fn emit(level: Level, args: core::fmt::Arguments<'_>) {
    let mut l = LOGGER.lock().unwrap_or_else(|e| e.into_inner());
    if level > l.max {
        return;
    }
    // Formatted on the stack: logging never allocates.
    let mut line = LogLine::<LINE_MAX>::new();
    let _ = write!(line, "passt: {args}");
    line.end_line();
    let line = line.as_str();
    if l.stderr {
        let _ = std::io::stderr().write_all(line.as_bytes());
    } else if l.file.is_none() {
        if let Some(s) = SYSLOG.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            use passt_core::host::syslog::Severity;
            let sev = match level {
                Level::Error => Severity::Error,
                Level::Warn => Severity::Warning,
                Level::Info => Severity::Info,
                _ => Severity::Debug,
            };
            s.send(sev, args);
        }
    }
    let (len, max) = (l.file_len, l.file_max);
    if let Some(f) = &mut l.file {
        let mut written = len;
        if len + line.len() as u64 > max {
            // Start over rather than grow past --log-size.
            if f.set_len(0).is_ok() {
                written = 0;
                let note = b"passt: log file full, started over\n";
                if f.write_all(note).is_ok() {
                    written += note.len() as u64;
                }
            }
        }
        if f.write_all(line.as_bytes()).is_ok() {
            written += line.len() as u64;
        }
        l.file_len = written;
    }
}

/// Emit one message of a call site limited by `rl`, with a note of the
/// messages it held back before.
pub(crate) fn emit_limited(rl: &RateLimit, level: Level, args: core::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let secs = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic).tv_sec;
    match rl.admit(secs as u64) {
        None => {}
        Some(0) => emit(level, args),
        Some(n) => {
            emit(level, format_args!("({n} similar messages suppressed)"));
            emit(level, args);
        }
    }
}

/// Log at a level, rate-limited per call site.
macro_rules! limited {
    ($level:expr, $($arg:tt)*) => {{
        static RL: $crate::log::RateLimit = $crate::log::RateLimit::new();
        $crate::log::emit_limited(&RL, $level, format_args!($($arg)*))
    }};
}
pub(crate) use limited;

/// Log at a level.
macro_rules! log {
    ($level:expr, $($arg:tt)*) => {
        $crate::log::emit($level, format_args!($($arg)*))
    };
}
pub(crate) use log;

/// Log an error (rate-limited).
macro_rules! error { ($($arg:tt)*) => { $crate::log::limited!($crate::log::Level::Error, $($arg)*) }; }
/// Log a warning (rate-limited).
macro_rules! warning { ($($arg:tt)*) => { $crate::log::limited!($crate::log::Level::Warn, $($arg)*) }; }
/// Log information (rate-limited).
macro_rules! info { ($($arg:tt)*) => { $crate::log::limited!($crate::log::Level::Info, $($arg)*) }; }
/// Log a debug message (checked first: arguments are not formatted for
/// nothing).
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::log!($crate::log::Level::Debug, $($arg)*)
        }
    };
}
/// Log a per-frame message.
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Trace) {
            $crate::log::limited!($crate::log::Level::Trace, $($arg)*)
        }
    };
}
pub(crate) use {debug, error, info, trace, warning};
