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
//! [`passt_core::host::options`]); `--help`, `--version` and
//! `--print-capabilities` answer and exit; read the host's configuration
//! and build the translator's ([`setup`]); bind the socket or take `-F`'s
//! descriptor ([`socket`]) and print how to start qemu; open the capture
//! file; go to the background and write the PID file
//! ([`passt_core::host::daemon`]); enter the sandbox ([`privs`]); then
//! serve guests ([`run`]) until `-1` says stop.
//!
//! What passt shares with pasta, the driver layer, is passt-core's host
//! side: the command line ([`passt_core::host::options`]), messages
//! ([`passt_core::host::log`]: the [`error!`], [`warning!`], [`info!`],
//! [`debug!`] and [`trace!`] macros), the background and the PID file
//! ([`passt_core::host::daemon`]), the fatal [`Error`], the clock
//! ([`passt_core::host::clock`]) and the socket executor.
//!
//! | module | part |
//! |---|---|
//! | [`setup`] | options and host configuration to a [`passt_core::config::Config`] |
//! | [`socket`] | the listening socket: default names, stale sockets, `-F` |
//! | [`privs`] | leaving the PID namespace, the sandbox (`--runas`) |
//! | [`seccomp`] | the system calls passt makes once sandboxed |
//! | [`run`] | the event loop: epoll, stream decoding, batched writes |
//! | [`passt_core::host::pcap`] | `-p` capture file |

#![forbid(unsafe_code)]

mod privs;
mod run;
mod seccomp;
mod setup;
mod socket;

use std::path::Path;

use passt_core::config::Mode;
use passt_core::host::options::{self, Options, Parsed};
use passt_core::host::{clock, daemon, log};
use passt_core::Translator;

pub(crate) use passt_core::host::error::Error;
pub(crate) use passt_core::{debug, error, info, trace, warning};

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
    log::set_program(Mode::Passt);
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
    log::set_level(log::Level::of(o.quiet, o.debug, o.trace));
    if let Some(p) = &o.log_file {
        log::open_file(p, o.log_size)
            .map_err(|e| Error::io(format!("opening log file {p}"), &e))?;
    }
    // Before the sandbox hides /dev/log: where messages go in the
    // background without a log file.
    log::open_syslog();
    for w in o.warnings() {
        warning!("{w}");
    }

    let (mut config, summary) = setup::config(o)?;
    if o.conf_path.is_some() {
        // Room in the listener tables for run-time changes.
        config.limits.change_listeners = passt_core::config::CHANGE_LISTENERS_ANY;
    }
    for line in &summary {
        info!("{line}");
    }
    // Refuse a bad configuration before binding anything.
    let t = Translator::new(config, clock::now())
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
    let conf = o
        .conf_path
        .as_deref()
        .map(|p| {
            let c = passt_core::host::conf::ConfSocket::open(Path::new(p))?;
            info!("configuration socket at {p}");
            Ok::<_, Error>(c)
        })
        .transpose()?;

    let foreground = o.foreground || o.debug || o.trace;
    // Real root: UID 0 in the initial user namespace (UID 0 elsewhere is
    // confined by its namespace already, and keeps its identity).
    let root_here = rustix::process::geteuid().is_root() && passt_sys::sandbox::in_initial_userns();
    let new_pidns = !foreground && privs::leave_pidns(root_here);
    let pid_file = o.pid_file.as_deref().map(Path::new);
    if foreground {
        if let Some(p) = pid_file {
            daemon::write_pid_file(p, std::process::id())?;
        }
    } else {
        daemon::detach(pid_file)?;
    }
    if new_pidns {
        passt_sys::sandbox::exit_on_signals();
    }
    let filter = seccomp::filter(pcap.is_some(), o.log_file.is_some());
    // Listening sockets of forwarded ports while privileges last (ports
    // below 1024).
    let driver = run::prepare(t, source, o.one_off, pcap, conf)?;
    privs::lock_down(o.runas.as_ref(), root_here, &filter)?;
    // Setup is done: from here on, nothing is allocated.
    #[cfg(feature = "count-alloc")]
    passt_sys::count_alloc::arm();
    run::run(driver)
}
