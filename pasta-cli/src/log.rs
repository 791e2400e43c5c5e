//! Messages: levels, where they go, and `--log-file` with its size limit.
//!
//! | level | shown | macro |
//! |---|---|---|
//! | error, warning | always | [`crate::error!`], [`crate::warning!`] |
//! | information | unless `-q/--quiet` | [`crate::info!`] |
//! | debug | with `-d/--debug` or `--trace` | [`crate::debug!`] |
//! | trace (per packet) | with `--trace` | [`crate::trace!`] |
//!
//! Where: standard error, as `pasta: message`, until pasta runs in the
//! background (standard error is then `/dev/null`); with `-l/--log-file`,
//! also the file, each line stamped with the seconds since start. With a log
//! file, only errors and warnings still go to standard error ("log to file,
//! not to standard error", passt(1)), so that a caller still sees why start-up
//! failed.
//!
//! In the background without a log file (how podman runs pasta, with
//! `--quiet`), messages go to the system log instead ([`open_syslog`]:
//! `/dev/log`, connected at start before the sandbox, as
//! `<PRI>pasta[PID]: message`); without `/dev/log` they are lost, as
//! standard error is then `/dev/null`.
//!
//! The log file never grows past `--log-size` bytes: when a line would not
//! fit, the oldest lines are dropped, keeping the newest half, as passt(1)
//! describes ("make room for new entries by removing old ones at the
//! beginning"). The file is rewritten through its descriptor, so this keeps
//! working after privileges are dropped.
//!
//! Logging never fails the caller: write errors are ignored.
//!
//! Errors, warnings and information are rate-limited per call site
//! ([`RateLimit`]: a few a second), so that a failure repeating on every
//! wake-up (descriptors ran out, say) cannot flood the log; the next message
//! of that site that gets through is preceded by the number held back.
//! Debug messages, asked for, are not limited; trace messages (a line per
//! frame from and to the namespace with `--trace`) are, like errors.
//!
//! Syscalls: `write` (standard error, log file), `pread`, `ftruncate`,
//! `clock_gettime(CLOCK_MONOTONIC)`.

use core::fmt::Write as _;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use passt_core::host::limits::LogLine;
pub(crate) use passt_core::host::limits::RateLimit;

/// Longest line written (longer messages are cut).
const LINE_MAX: usize = 2048;

/// How important a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    /// Something failed.
    Error = 0,
    /// Something is odd but pasta goes on.
    Warn = 1,
    /// What pasta is doing, for its user.
    Info = 2,
    /// Details for debugging.
    Debug = 3,
    /// Per-packet details.
    Trace = 4,
}

/// The most detailed level shown.
static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
/// Whether standard error is still ours to write to.
static STDERR: AtomicBool = AtomicBool::new(true);
/// The log file, if any.
static FILE: Mutex<Option<LogFile>> = Mutex::new(None);
/// The system log, if `/dev/log` was there at start.
static SYSLOG: Mutex<Option<passt_core::host::syslog::Syslog>> = Mutex::new(None);

/// Connect to the system log (call before the sandbox hides `/dev/log`).
pub(crate) fn open_syslog() {
    *SYSLOG.lock().unwrap_or_else(|p| p.into_inner()) =
        passt_core::host::syslog::Syslog::connect("pasta");
}

/// After a fork: system-log messages carry `pid`.
pub(crate) fn set_syslog_pid(pid: u32) {
    if let Some(s) = SYSLOG.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        s.set_pid(pid);
    }
}

/// An open log file with its size limit.
struct LogFile {
    file: File,
    size: u64,
    limit: u64,
    start: Instant,
    /// Where the newest lines are kept while the file is started over
    /// (half the limit; allocated with the file, zeroed: no memory until
    /// used, and no allocation when rotating).
    tail: Box<[u8]>,
}

/// Whether messages at `level` are shown.
pub(crate) fn enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Set what is shown: `quiet` hides information, `debug` and `trace` add
/// detail (`trace` implies `debug`).
pub(crate) fn set_level(quiet: bool, debug: bool, trace: bool) {
    let level = if trace {
        Level::Trace
    } else if debug {
        Level::Debug
    } else if quiet {
        Level::Warn
    } else {
        Level::Info
    };
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Stop writing to standard error (pasta went to the background).
pub(crate) fn detach_stderr() {
    STDERR.store(false, Ordering::Relaxed);
}

/// Log to `file` too, keeping it under `limit` bytes.
///
/// # Errors
/// If the file's size cannot be read.
pub(crate) fn set_file(file: File, limit: u64) -> std::io::Result<()> {
    let size = file.metadata()?.len();
    let mut f = FILE.lock().unwrap_or_else(|p| p.into_inner());
    *f = Some(LogFile {
        file,
        size,
        limit,
        start: Instant::now(),
        tail: rotation_buffer(limit),
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
pub(crate) fn emit(level: Level, args: core::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let mut f = FILE.lock().unwrap_or_else(|p| p.into_inner());
    let to_stderr = STDERR.load(Ordering::Relaxed) && (f.is_none() || level <= Level::Warn);
    // Formatted on the stack: logging never allocates.
    let mut line = LogLine::<LINE_MAX>::new();
    if to_stderr {
        let _ = write!(line, "pasta: {args}");
        line.end_line();
        let _ = std::io::stderr().write_all(line.as_str().as_bytes());
    } else if f.is_none() && !STDERR.load(Ordering::Relaxed) {
        if let Some(s) = SYSLOG.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            use passt_core::host::syslog::Severity;
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
        let secs = log.start.elapsed().as_secs_f64();
        let tag = match level {
            Level::Error => "ERROR: ",
            Level::Warn => "WARNING: ",
            _ => "",
        };
        line.clear();
        let _ = write!(line, "{secs:.4}: {tag}{args}");
        line.end_line();
        log.write_line(line.as_str());
    }
}

/// Write one message of a call site limited by `rl` (called by the
/// macros), with a note of the messages it held back before.
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

impl LogFile {
    /// Append `line`, first dropping old lines if it would not fit.
    fn write_line(&mut self, line: &str) {
        let len = line.len() as u64;
        if self.size + len > self.limit {
            self.rotate(len);
        }
        if len > self.limit {
            return;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    #[test]
    fn levels_follow_the_options() {
        set_level(true, false, false);
        assert!(enabled(Level::Warn) && !enabled(Level::Info));
        set_level(false, false, false);
        assert!(enabled(Level::Info) && !enabled(Level::Debug));
        set_level(true, true, false);
        assert!(enabled(Level::Debug) && !enabled(Level::Trace));
        set_level(false, false, true);
        assert!(enabled(Level::Trace));
        set_level(false, false, false);
    }

    #[test]
    fn the_log_file_keeps_its_newest_lines_within_the_limit() {
        let path = std::env::temp_dir().join(format!("pasta-log-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut log = LogFile {
            file,
            size: 0,
            limit: 4096,
            start: Instant::now(),
            tail: rotation_buffer(4096),
        };
        for i in 0..1000 {
            log.write_line(&format!("line {i:04} of the test log\n"));
            assert!(log.size <= 4096);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(text.len() as u64, log.size);
        assert!(text.ends_with("line 0999 of the test log\n"), "{text}");
        assert!(text.starts_with("line "), "{text}");
        // Consecutive, newest kept.
        let nums: Vec<u32> = text.lines().map(|l| l[5..9].parse().unwrap()).collect();
        assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{nums:?}");
        assert!(nums.len() > 50);
    }
}
