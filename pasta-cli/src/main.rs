//! `pasta`: connects a network namespace, through a tap device, to the host.
//!
//! This first driver joins an existing namespace, creates the tap device in
//! it, returns to the host's namespace and runs the [`passt_core::Translator`]
//! on the tap: the namespace's own DHCP, NDP and DHCPv6 clients are answered
//! by the translator's local services. There are no host sockets yet.
//!
//! | module | part |
//! |---|---|
//! | [`config`] | command line to [`passt_core::config::Config`] (temporary options) |
//! | [`netns`] | joining the target namespace and returning to the host's |
//! | [`tap`] | the tap device: `/dev/net/tun`, `TUNSETIFF`, frame I/O |
//! | [`netlink`] | bringing links up and setting their MAC (rtnetlink) |
//! | [`run`] | the event loop: epoll, clock, batches, tx ring |
//! | [`pcap`] | optional capture file of every frame (`--pcap`) |

#![deny(unsafe_op_in_unsafe_fn)]

mod config;
mod netlink;
mod netns;
mod pcap;
mod run;
mod tap;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether `-d` asked for debug messages on stderr.
static DEBUG: AtomicBool = AtomicBool::new(false);

/// Whether debug messages are on.
fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Print a debug message to stderr if `-d` was given.
macro_rules! debug {
    ($($arg:tt)*) => {
        if $crate::debug_enabled() {
            eprintln!("pasta: {}", format_args!($($arg)*));
        }
    };
}
pub(crate) use debug;

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
            Some(e) => write!(f, "{}: {}", self.what, e),
            None => f.write_str(&self.what),
        }
    }
}

fn main() {
    let setup = match config::from_env() {
        Ok(s) => s,
        Err(e) => fatal(&e),
    };
    DEBUG.store(setup.debug, Ordering::Relaxed);
    let e = match run::start(setup) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    fatal(&e)
}

/// Report `e` and exit with status 1.
fn fatal(e: &Error) -> ! {
    eprintln!("pasta: {e}");
    std::process::exit(1)
}
