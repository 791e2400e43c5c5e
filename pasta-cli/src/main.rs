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
//! | [`fwd`] | `-T`/`-U` port checks, `auto` forwarding scans |
//! | [`privs`] | the sandbox: identity (`--runas`), capabilities, namespaces |
//! | [`seccomp`] | the system calls pasta makes once sandboxed |
//! | [`watch`] | what ends pasta: the command, the process, the netns file |
//! | [`run`] | the event loop: epoll, clock, batches, tx ring |
//! | [`passt_core::host::pcap`] | optional capture file of every frame (`--pcap`) |
//!
//! What pasta shares with passt, the driver layer, is passt-core's host
//! side: the command line ([`passt_core::host::options`]), messages
//! ([`passt_core::host::log`]: the [`error!`], [`warning!`], [`info!`],
//! [`debug!`] and [`trace!`] macros), the background and the PID file
//! ([`passt_core::host::daemon`]), the fatal [`Error`], the clock
//! ([`passt_core::host::clock`]) and the socket executor.
//!
//! Exit status: 0 on `--help` and `--version`, when the namespace goes away,
//! and in the parent once pasta went to the background; the command's
//! status in spawn mode; 1 for any error, with a message on standard error.

#![forbid(unsafe_code)]

mod config;
mod fwd;
mod netlink;
mod netns;
mod privs;
mod run;
mod seccomp;
mod setup;
mod spawn;
mod tap;
mod watch;

use passt_core::config::Mode;
use passt_core::host::log;
use passt_core::host::options::{usage, version, Options, Parsed};

pub(crate) use passt_core::host::error::Error;
pub(crate) use passt_core::{debug, error, info, trace, warning};

/// With `count-alloc`: every allocation after setup is logged (see
/// `passt_sys::count_alloc`).
#[cfg(feature = "count-alloc")]
#[global_allocator]
static ALLOC: passt_sys::count_alloc::Counting = passt_sys::count_alloc::Counting;

fn main() {
    log::set_program(Mode::Pasta);
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
    log::set_level(log::Level::of(opts.quiet, opts.debug, opts.trace));
    // Before the sandbox hides /dev/log: where messages go in the
    // background without a log file.
    log::open_syslog();
    if let Some(path) = &opts.log_file {
        if let Err(e) = log::open_file(path, opts.log_size) {
            fatal(&Error::io(format!("opening log file {path}"), &e));
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
