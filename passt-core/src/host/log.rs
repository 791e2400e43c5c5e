//! The drivers' messages (feature `host`): levels, where they go, and
//! `-l/--log-file` with its `--log-size` limit; one logger for `passt` and
//! `pasta`, set up once at start ([`set_program`], [`set_level`],
//! [`open_syslog`], [`open_file`]) and used through the macros
//! [`error!`](crate::error), [`warning!`](crate::warning),
//! [`info!`](crate::info), [`debug!`](crate::debug) and
//! [`trace!`](crate::trace).
//!
//! | level | shown | macro |
//! |---|---|---|
//! | error, warning | always | [`error!`](crate::error), [`warning!`](crate::warning) |
//! | information | unless `-q/--quiet` | [`info!`](crate::info) |
//! | debug | with `-d/--debug` or `--trace` | [`debug!`](crate::debug) |
//! | trace (per packet) | with `--trace` | [`trace!`](crate::trace) |
//!
//! Where: standard error, as `passt: message` (or `pasta: message`), until
//! the program runs in the background ([`detach_stderr`]: standard error is
//! then `/dev/null`); with `-l/--log-file`, also the file. In the
//! background without a log file (how podman runs pasta, with `--quiet`),
//! messages go to the system log instead ([`open_syslog`]: `/dev/log`,
//! connected at start before the sandbox, as `<PRI>pasta[PID]: message`;
//! see [`super::syslog`]); without `/dev/log` they are lost.
//!
//! The two programs keep their own ways with the log file, as they always
//! had ([`set_program`] picks them):
//!
//! | | `passt` | `pasta` |
//! |---|---|---|
//! | a line in the file | `passt: message`, as on standard error | seconds since start, `ERROR: `/`WARNING: ` tags: `1.2345: WARNING: message` |
//! | standard error, with a log file | every message | errors and warnings only ("log to file, not to standard error", passt(1)), so a caller still sees why start-up failed |
//! | a line that would pass `--log-size` | the file starts over, with a note | the oldest lines are dropped, keeping the newest half ("make room for new entries by removing old ones at the beginning", passt(1)) |
//!
//! The file is rewritten through its descriptor, so rotation keeps working
//! after privileges are dropped. Logging never fails the caller: write
//! errors are ignored. It never allocates either: a line is formatted into
//! a fixed buffer on the stack ([`LogLine`], [`LINE_MAX`] bytes: longer
//! messages are cut), and pasta's rotation buffer is allocated with the
//! file.
//!
//! Errors, warnings and information are rate-limited per call site
//! ([`RateLimit`]: a few a second, on `CLOCK_MONOTONIC`), so that a failure
//! repeating on every wake-up (descriptors ran out, a client reconnecting
//! in a loop) cannot flood the log; the next message of that site that
//! gets through is preceded by the number held back. Debug messages, asked
//! for, are not limited; trace messages (a line per frame with `--trace`)
//! are, like errors.
//!
//! Syscalls: `write` (standard error, log file), `open`, `pread`,
//! `ftruncate`, `clock_gettime(CLOCK_MONOTONIC)`, and those of
//! [`super::syslog`].

use core::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;

use super::clock;
use super::limits::LogLine;
pub use super::limits::RateLimit;
use super::syslog::{Severity, Syslog};
use crate::config::Mode;
use crate::time::Instant;

/// Longest line written (longer messages are cut).
pub const LINE_MAX: usize = 2048;

/// How important a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 0,
    /// Something is odd but the program goes on.
    Warn = 1,
    /// What the program is doing, for its user (start-up summary, clients).
    Info = 2,
    /// Details for debugging (`-d`).
    Debug = 3,
    /// Per-packet details (`--trace`).
    Trace = 4,
}

impl Level {
    /// The level the options ask for: `quiet` hides information, `debug`
    /// and `trace` add detail (`trace` implies `debug`, and either wins
    /// over `quiet`).
    pub fn of(quiet: bool, debug: bool, trace: bool) -> Level {
        if trace {
            Level::Trace
        } else if debug {
            Level::Debug
        } else if quiet {
            Level::Warn
        } else {
            Level::Info
        }
    }
}

/// Which program logs: [`PASTA`] when set, else passt.
static PROGRAM: AtomicU8 = AtomicU8::new(PASST);
const PASST: u8 = 0;
const PASTA: u8 = 1;
/// The most detailed level shown.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
/// Whether standard error is still ours to write to.
static STDERR: AtomicBool = AtomicBool::new(true);
/// The log file, if any.
static FILE: Mutex<Option<LogFile>> = Mutex::new(None);
/// The system log, if `/dev/log` was there at start.
static SYSLOG: Mutex<Option<Syslog>> = Mutex::new(None);

/// Log as `mode`'s program (`passt` or `pasta`: the name on every line and
/// the log file's ways, see the module docs). Call first thing in `main`.
pub fn set_program(mode: Mode) {
    let p = match mode {
        Mode::Passt => PASST,
        Mode::Pasta => PASTA,
    };
    PROGRAM.store(p, Ordering::Relaxed);
}

/// Whether the program is pasta.
pub(crate) fn pasta() -> bool {
    PROGRAM.load(Ordering::Relaxed) == PASTA
}

/// The program's name, as messages carry it.
pub fn ident() -> &'static str {
    if pasta() {
        "pasta"
    } else {
        "passt"
    }
}

/// Show messages up to `level`.
pub fn set_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages at `level` are shown.
pub fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Connect to the system log (call before the sandbox hides `/dev/log`).
pub fn open_syslog() {
    *SYSLOG.lock().unwrap_or_else(|p| p.into_inner()) = Syslog::connect(ident());
}

/// After a fork: system-log messages carry `pid`.
pub fn set_syslog_pid(pid: u32) {
    if let Some(s) = SYSLOG.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        s.set_pid(pid);
    }
}

/// Stop writing to standard error (the program went to the background).
pub fn detach_stderr() {
    STDERR.store(false, Ordering::Relaxed);
}

/// What a full log file does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rotation {
    /// Truncate it, and say so on its first line (passt).
    StartOver,
    /// Keep its newest lines, up to half the limit (pasta).
    KeepNewest,
}

/// An open log file with its size limit.
struct LogFile {
    file: File,
    size: u64,
    limit: u64,
    rotation: Rotation,
    start: Instant,
    /// Where the newest lines are kept while the file is started over
    /// ([`Rotation::KeepNewest`]: half the limit; allocated with the file,
    /// zeroed: no memory until used, and no allocation when rotating).
    tail: Box<[u8]>,
}

/// Log to the file at `path` too (created if need be, appended to),
/// keeping it under `limit` bytes.
///
/// # Errors
/// If the file cannot be opened or its size read.
pub fn open_file(path: &str, limit: u64) -> std::io::Result<()> {
    // pasta reads its newest lines back when rotating.
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(pasta())
        .open(path)?;
    set_file(file, limit)
}

/// Log to `file` too (opened for appending; for reading as well with
/// pasta's rotation), keeping it under `limit` bytes.
///
/// # Errors
/// If the file's size cannot be read.
pub fn set_file(file: File, limit: u64) -> std::io::Result<()> {
    let size = file.metadata()?.len();
    let rotation = if pasta() {
        Rotation::KeepNewest
    } else {
        Rotation::StartOver
    };
    let tail = match rotation {
        Rotation::KeepNewest => rotation_buffer(limit),
        Rotation::StartOver => Box::default(),
    };
    *FILE.lock().unwrap_or_else(|p| p.into_inner()) = Some(LogFile {
        file,
        size,
        limit,
        rotation,
        start: clock::now(),
        tail,
    });
    Ok(())
}

/// Room for the lines a rotation keeps: half of `limit`, at most
/// [`ROTATION_MAX`].
fn rotation_buffer(limit: u64) -> Box<[u8]> {
    let n = usize::try_from(limit / 2).map_or(ROTATION_MAX, |n| n.min(ROTATION_MAX));
    vec![0u8; n].into_boxed_slice()
}

/// Most bytes a rotation of the log file keeps.
const ROTATION_MAX: usize = 64 << 20;

/// Write one message (called by the macros).
pub fn emit(level: Level, args: core::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let pasta = pasta();
    let mut f = FILE.lock().unwrap_or_else(|p| p.into_inner());
    let stderr = STDERR.load(Ordering::Relaxed);
    // With a log file pasta keeps only errors and warnings on standard
    // error; passt keeps all.
    let to_stderr = stderr && (f.is_none() || !pasta || level <= Level::Warn);
    // Formatted on the stack: logging never allocates.
    let mut line = LogLine::<LINE_MAX>::new();
    let _ = write!(line, "{}: {args}", ident());
    line.end_line();
    if to_stderr {
        let _ = std::io::stderr().write_all(line.as_str().as_bytes());
    } else if f.is_none() && !stderr {
        if let Some(s) = SYSLOG.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let sev = match level {
                Level::Error => Severity::Error,
                Level::Warn => Severity::Warning,
                Level::Info => Severity::Info,
                Level::Debug | Level::Trace => Severity::Debug,
            };
            s.send(sev, args);
        }
    }
    if let Some(log) = f.as_mut() {
        if pasta {
            let secs = clock::now().saturating_since(log.start).as_secs_f64();
            let tag = match level {
                Level::Error => "ERROR: ",
                Level::Warn => "WARNING: ",
                _ => "",
            };
            line.clear();
            let _ = write!(line, "{secs:.4}: {tag}{args}");
            line.end_line();
        }
        log.write_line(line.as_str());
    }
}

/// Write one message of a call site limited by `rl` (called by the
/// macros), with a note of the messages it held back before.
pub fn emit_limited(rl: &RateLimit, level: Level, args: core::fmt::Arguments<'_>) {
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

impl LogFile {
    /// Append `line`, first making room if it would pass the limit.
    fn write_line(&mut self, line: &str) {
        let len = line.len() as u64;
        match self.rotation {
            Rotation::StartOver => {
                if self.size + len > self.limit && self.file.set_len(0).is_ok() {
                    // Start over rather than grow past --log-size.
                    self.size = 0;
                    let note = b"passt: log file full, started over\n";
                    if self.file.write_all(note).is_ok() {
                        self.size += note.len() as u64;
                    }
                }
            }
            Rotation::KeepNewest => {
                if self.size + len > self.limit {
                    self.rotate(len);
                }
                if len > self.limit {
                    return;
                }
            }
        }
        if self.file.write_all(line.as_bytes()).is_ok() {
            self.size += len;
        }
    }

    /// Keep the newest whole lines that fill at most half the limit (less
    /// `room`), and nothing older.
    fn rotate(&mut self, room: u64) {
        let keep = (self.limit / 2)
            .saturating_sub(room)
            .min(self.size)
            .min(self.tail.len() as u64);
        let from = self.size - keep;
        let buf = &mut self.tail[..keep as usize];
        let n = self.file.read_at(buf, from).unwrap_or(0);
        let tail = &buf[..n];
        // Start at a line boundary.
        let cut = if from == 0 {
            0
        } else {
            tail.iter()
                .position(|&b| b == b'\n')
                .map_or(tail.len(), |p| p + 1)
        };
        // The file is in append mode: after truncating, writes go to its
        // new end.
        if self.file.set_len(0).is_err() {
            return;
        }
        self.size = 0;
        if self.file.write_all(&tail[cut..]).is_ok() {
            self.size = (tail.len() - cut) as u64;
        }
    }
}

/// Log at `$level` (a [`Level`] variant), rate-limited per call site: the
/// body of [`error!`](crate::error), [`warning!`](crate::warning),
/// [`info!`](crate::info) and [`trace!`](crate::trace).
#[doc(hidden)]
#[macro_export]
macro_rules! log_limited {
    ($level:ident, $($arg:tt)*) => {{
        static RL: $crate::host::log::RateLimit = $crate::host::log::RateLimit::new();
        $crate::host::log::emit_limited(&RL, $crate::host::log::Level::$level, format_args!($($arg)*))
    }};
}

/// Log an error (always shown; rate-limited per call site).
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log_limited!(Error, $($arg)*) };
}

/// Log a warning (always shown; rate-limited per call site).
#[macro_export]
macro_rules! warning {
    ($($arg:tt)*) => { $crate::log_limited!(Warn, $($arg)*) };
}

/// Log information (hidden by `--quiet`; rate-limited per call site).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log_limited!(Info, $($arg)*) };
}

/// Log a debug message (shown with `-d`; the level is checked first, so
/// the arguments are not formatted for nothing; not rate-limited).
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::host::log::enabled($crate::host::log::Level::Debug) {
            $crate::host::log::emit($crate::host::log::Level::Debug, format_args!($($arg)*))
        }
    };
}

/// Log a per-packet message (shown with `--trace`), rate-limited per call
/// site as errors are: a flood of frames cannot flood the log.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::host::log::enabled($crate::host::log::Level::Trace) {
            $crate::log_limited!(Trace, $($arg)*)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_options() {
        assert_eq!(Level::of(true, false, false), Level::Warn);
        assert_eq!(Level::of(false, false, false), Level::Info);
        assert_eq!(Level::of(true, true, false), Level::Debug);
        assert_eq!(Level::of(false, false, true), Level::Trace);
        set_level(Level::Warn);
        assert!(enabled(Level::Warn) && !enabled(Level::Info));
        set_level(Level::Debug);
        assert!(enabled(Level::Debug) && !enabled(Level::Trace));
        set_level(Level::Info);
    }

    /// A thousand numbered lines through a 4096-byte log file rotating
    /// as `rotation` says, checked against the limit as they go: the
    /// file's text at the end.
    fn fill(name: &str, rotation: Rotation) -> String {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        let tail = match rotation {
            Rotation::KeepNewest => rotation_buffer(4096),
            Rotation::StartOver => Box::default(),
        };
        let mut log = LogFile {
            file,
            size: 0,
            limit: 4096,
            rotation,
            start: clock::now(),
            tail,
        };
        for i in 0..1000 {
            log.write_line(&format!("line {i:04} of the test log\n"));
            assert!(log.size <= 4096);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.len() as u64, log.size);
        assert!(text.ends_with("line 0999 of the test log\n"), "{text}");
        text
    }

    #[test]
    fn pastas_log_file_keeps_its_newest_lines_within_the_limit() {
        let text = fill("pasta-log-test", Rotation::KeepNewest);
        assert!(text.starts_with("line "), "{text}");
        // Consecutive, newest kept.
        let nums: Vec<u32> = text.lines().map(|l| l[5..9].parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert!(nums.len() > 50);
    }

    #[test]
    fn passts_log_file_starts_over_with_a_note() {
        let text = fill("passt-log-test", Rotation::StartOver);
        assert!(
            text.starts_with("passt: log file full, started over\n"),
            "{text}"
        );
    }
}
