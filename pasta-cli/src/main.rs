//! `pasta`: connects a network namespace, through a tap device, to the host.
//!
//! `pasta [OPTION]... [COMMAND [ARG]...]` runs COMMAND (default: a shell) in
//! a new user and network namespace; `pasta [OPTION]... PID` and
//! `pasta [OPTION]... --netns PATH|NAME` serve an existing namespace. pasta
//! creates a tap device in the namespace and runs the
//! [`passt_core::Translator`] on it from the host's namespace: the
//! namespace's DHCP, NDP and DHCPv6 clients are answered by the translator,
//! which mirrors the host's addresses, routes and resolvers; `--config-net`
//! configures the device directly instead.
//!
//! | module | part |
//! |---|---|
//! | [`config`] | command line and host to a [`config::Setup`] |
//! | [`setup`] | start-up, step by step, to the running loop |
//! | [`spawn`] | spawn mode: new namespaces, the command, its exit status |
//! | [`netns`] | entering namespaces from threads; user namespaces |
//! | [`tap`] | the tap device: `/dev/net/tun`, `TUNSETIFF`, frame I/O |
//! | [`netlink`] | links, addresses, routes (rtnetlink) |
//! | [`daemon`] | going to the background, PID file |
//! | [`fwd`] | `-T`/`-U` port checks, `auto` forwarding scans |
//! | [`privs`] | the sandbox: identity (`--runas`), capabilities, namespaces |
//! | [`seccomp`] | the system calls pasta makes once sandboxed |
//! | [`watch`] | what ends pasta: the command, the process, the netns file |
//! | [`run`] | the event loop: epoll, clock, batches, tx ring |
//! | [`passt_core::host::pcap`] | optional capture file of every frame (`--pcap`) |
//! | [`log`] | messages, levels, `--log-file` |
//!
//! Exit status: 0 on `--help` and `--version`, when the namespace goes away,
//! and in the parent once pasta went to the background; the command's
//! status in spawn mode; 1 for any error, with a message on standard error.

#![forbid(unsafe_code)]

mod config;
mod daemon;
mod fwd;
mod log;
mod netlink;
mod netns;
mod privs;
mod run;
mod seccomp;
mod setup;
mod spawn;
mod tap;
mod watch;

use std::fmt;
use std::fs::OpenOptions;

use passt_core::config::Mode;
use passt_core::options::{usage, version, Options, Parsed};

/// Log an error (always shown).
macro_rules! error {
    ($($arg:tt)*) => {{
        static RL: $crate::log::RateLimit = $crate::log::RateLimit::new();
        $crate::log::emit_limited(&RL, $crate::log::Level::Error, format_args!($($arg)*))
    }};
}
/// Log a warning (always shown).
macro_rules! warning {
    ($($arg:tt)*) => {{
        static RL: $crate::log::RateLimit = $crate::log::RateLimit::new();
        $crate::log::emit_limited(&RL, $crate::log::Level::Warn, format_args!($($arg)*))
    }};
}
/// Log information (hidden by `--quiet`).
macro_rules! info {
    ($($arg:tt)*) => {{
        static RL: $crate::log::RateLimit = $crate::log::RateLimit::new();
        $crate::log::emit_limited(&RL, $crate::log::Level::Info, format_args!($($arg)*))
    }};
}
/// Log a debug message (shown with `-d`).
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Debug) {
            $crate::log::emit($crate::log::Level::Debug, format_args!($($arg)*))
        }
    };
}
/// Log a per-packet message (shown with `--trace`), rate-limited per call
/// site as errors are: a flood of frames cannot flood the log.
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::log::enabled($crate::log::Level::Trace) {
            static RL: $crate::log::RateLimit = $crate::log::RateLimit::new();
            $crate::log::emit_limited(&RL, $crate::log::Level::Trace, format_args!($($arg)*))
        }
    };
}
pub(crate) use trace;
pub(crate) use {debug, error, info, warning};

/// A fatal error: what we were doing, and the system's reason if any.
#[derive(Debug)]
pub(crate) struct Error {
    what: String,
    cause: Option<rustix::io::Errno>,
}

impl Error {
    /// An error with a message only.
    pub(crate) fn msg(what: impl Into<String>) -> Self {
        Error {
            what: what.into(),
            cause: None,
        }
    }

    /// A failed system call while doing `what`.
    pub(crate) fn sys(what: impl Into<String>, cause: rustix::io::Errno) -> Self {
        Error {
            what: what.into(),
            cause: Some(cause),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cause {
            Some(e) => write!(f, "{}: {}", self.what, errno_text(e)),
            None => f.write_str(&self.what),
        }
    }
}

/// The system's text for `e`, as strerror(3) gives it ("Permission
/// denied"), without Rust's " (os error 13)".
pub(crate) fn errno_text(e: rustix::io::Errno) -> String {
    let text = std::io::Error::from_raw_os_error(e.raw_os_error()).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// An [`Error`] from a `std::io::Error`.
pub(crate) fn io_error(what: String, e: &std::io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::sys(what, rustix::io::Errno::from_raw_os_error(n)),
        None => Error::msg(format!("{what}: {e}")),
    }
}

/// With `count-alloc`: every allocation after setup is logged (see
/// `passt_sys::count_alloc`).
#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOC: passt_sys::count_alloc::Counting = passt_sys::count_alloc::Counting;

fn main() {
    // Whether pasta starts as root: it then drops to nobody after start-up
    // (read before any user namespace is joined, where IDs are mapped).
    let started_as_root = rustix::process::geteuid().is_root();
    // What the caller left open is not ours, nor the command's.
    passt_sys::sandbox::close_inherited(&[]);
    // The allocation log of the counting build, before the sandbox.
    #[cfg(feature = "count-alloc")]
    passt_sys::count_alloc::open_log();
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let opts = match Options::parse(Mode::Pasta, &args) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{}", usage(Mode::Pasta));
            std::process::exit(0)
        }
        Ok(Parsed::Version) => {
            println!("{}", version(Mode::Pasta));
            std::process::exit(0)
        }
        Err(e) => {
            // glibc's wording, program name first: callers match on it.
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    log::set_level(opts.quiet, opts.debug, opts.trace);
    // Before the sandbox hides /dev/log: where messages go in the
    // background without a log file.
    log::open_syslog();
    if let Some(path) = &opts.log_file {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| io_error(format!("opening log file {path}"), &e))
            .and_then(|f| {
                log::set_file(f, opts.log_size)
                    .map_err(|e| io_error(format!("opening log file {path}"), &e))
            });
        if let Err(e) = file {
            fatal(&e);
        }
    }
    for w in opts.warnings() {
        warning!("{w}");
    }
    let setup = config::read_host(&opts)
        .and_then(|(host, resolv)| config::build(opts, host, resolv.as_ref()));
    let setup = match setup {
        Ok(s) => s,
        Err(e) => fatal(&e),
    };
    let e = match setup::start(setup, started_as_root) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    fatal(&e)
}

/// Report `e` and exit with status 1.
fn fatal(e: &Error) -> ! {
    error!("{e}");
    std::process::exit(1)
}
