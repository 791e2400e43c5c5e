//! `passt`: connects a qemu virtual machine, through a UNIX domain stream
//! socket, to the host's network.
//!
//! qemu (7.2 and later) connects to passt's socket by itself with
//! `-netdev stream,server=off,addr.type=unix,addr.path=PATH`; older ones run
//! under `qrap`, which connects and hands qemu the descriptor. Frames travel
//! as qemu's stream format ([`passt_core::wire::stream`]): a 4-byte
//! big-endian length, then the Ethernet frame.
//!
//! Start-up, in order: parse the command line (passt(1)'s options,
//! [`passt_core::options`]); `--help`, `--version` and
//! `--print-capabilities` answer and exit; read the host's configuration
//! and build the translator's ([`setup`]); bind the socket or take `-F`'s
//! descriptor ([`socket`]) and print how to start qemu; open the capture
//! file; go to the background and write the PID file ([`daemon`]); enter
//! the sandbox; then serve guests ([`run`]) until `-1` says stop.
//!
//! | module | part |
//! |---|---|
//! | [`setup`] | options and host configuration to a [`passt_core::config::Config`] |
//! | [`socket`] | the listening socket: default names, stale sockets, `-F` |
//! | [`daemon`] | background, PID file, the sandbox (`--runas`) |
//! | [`seccomp`] | the system calls passt makes once sandboxed |
//! | [`run`] | the event loop: epoll, stream decoding, batched writes |
//! | [`log`] | messages: standard error, `-l` log file, levels |
//! | [`passt_core::host::pcap`] | `-p` capture file |

#![forbid(unsafe_code)]

mod daemon;
mod log;
mod run;
mod seccomp;
mod setup;
mod socket;

use std::fmt;
use std::fs::OpenOptions;

use passt_core::config::Mode;
use passt_core::options::{self, Options, Parsed};
use passt_core::Translator;

use crate::log::{error, info, warning, Level};

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

    /// A failed `std::io` operation while doing `what`.
    pub(crate) fn io(what: impl Into<String>, e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(n) => Error::sys(what, rustix::io::Errno::from_raw_os_error(n)),
            None => Error::msg(format!("{}: {e}", what.into())),
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

/// What `--print-capabilities` answers. The option belongs to the vhost-user
/// back-end conventions (qemu `docs/interop/vhost-user.rst`, "Backend program
/// conventions"; the JSON is `VHostUserBackendCapabilities` of
/// `docs/interop/vhost-user.json`), which a management tool such as libvirt
/// runs to learn whether a program can serve a `vhostuser` interface. Any
/// JSON there (even the bare `{"type": "net"}`) claims a vhost-user `net`
/// back-end, and this passt has none (`--vhost-user` is refused): so it prints
/// no JSON, says why on stderr and exits with 1, and a tool reading it skips
/// passt as a vhost-user back-end instead of failing later on `--vhost-user`.
pub(crate) const NO_CAPABILITIES: &str =
    "passt: --print-capabilities: no vhost-user back-end in this build (--vhost-user is not supported)";

/// With `count-alloc`: every allocation after setup is logged (see
/// `passt_sys::count_alloc`).
#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOC: passt_sys::count_alloc::Counting = passt_sys::count_alloc::Counting;

fn main() {
    let o = match Options::parse(Mode::Passt, std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{}", options::usage(Mode::Passt));
            std::process::exit(0);
        }
        Ok(Parsed::Version) => {
            println!("{}", options::version(Mode::Passt));
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if o.print_capabilities {
        eprintln!("{NO_CAPABILITIES}");
        std::process::exit(1);
    }
    // What the caller left open is not ours; `-F`'s descriptor is.
    passt_sys::sandbox::close_inherited(&o.fd.into_iter().collect::<Vec<_>>());
    // The allocation log of the counting build, before the sandbox.
    #[cfg(feature = "count-alloc")]
    passt_sys::count_alloc::open_log();
    if let Err(e) = start(&o) {
        error!("{e}");
        std::process::exit(1);
    }
}

/// Set everything up from `o` and serve guests.
fn start(o: &Options) -> Result<(), Error> {
    let level = if o.trace {
        Level::Trace
    } else if o.debug {
        Level::Debug
    } else if o.quiet {
        Level::Warn
    } else {
        Level::Info
    };
    let log_file = match &o.log_file {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| Error::io(format!("opening log file {p}"), &e))?,
        ),
        None => None,
    };
    log::init(level, log_file, o.log_size);
    // Before the sandbox hides /dev/log: where messages go in the
    // background without a log file.
    log::open_syslog();
    for w in o.warnings() {
        warning!("{w}");
    }

    let (config, summary) = setup::config(o)?;
    for line in &summary {
        info!("{line}");
    }
    // Refuse a bad configuration before binding anything.
    let t = Translator::new(config, run::now())
        .map_err(|e| Error::msg(format!("invalid configuration: {e}")))?;

    let source = match o.fd {
        Some(fd) => run::Source::Connected(socket::adopt_fd(fd)?),
        None => {
            let (l, path) = socket::listen(o.socket.as_deref())?;
            info!("{}", socket::usage_hint(&path));
            run::Source::Listener(l, path)
        }
    };
    let pcap = o
        .pcap
        .as_deref()
        .map(|p| {
            passt_core::host::pcap::Pcap::create(std::path::Path::new(p))
                .map_err(|e| Error::io(format!("creating capture file {p}"), &e))
        })
        .transpose()?;

    let foreground = o.foreground || o.debug || o.trace;
    // Real root: UID 0 in the initial user namespace (UID 0 elsewhere is
    // confined by its namespace already, and keeps its identity).
    let root_here = rustix::process::geteuid().is_root() && passt_sys::sandbox::in_initial_userns();
    let new_pidns = !foreground && daemon::leave_pidns(root_here);
    daemon::daemonise(foreground, o.pid_file.as_deref())?;
    if new_pidns {
        passt_sys::sandbox::exit_on_signals();
    }
    let filter = seccomp::filter(pcap.is_some(), o.log_file.is_some());
    // Listening sockets of forwarded ports while privileges last (ports
    // below 1024).
    let driver = run::prepare(t, source, o.one_off, pcap)?;
    daemon::lock_down(o.runas.as_ref(), root_here, &filter)?;
    // Setup is done: from here on, nothing is allocated.
    #[cfg(feature = "count-alloc")]
    passt_sys::count_alloc::arm();
    run::run(driver)
}
