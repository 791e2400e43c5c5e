//! Start-up, in order, from a [`Setup`] to the running event loop.
//!
//! 1. Check the configuration (before anything else happens) and, with `--config-net`, read the host routes to copy.
//! 2. Find the target: spawn mode forks the child that makes the new
//!    namespaces ([`crate::spawn`]); `pasta PID` checks the process exists;
//!    `--netns` takes the path. Refuse pasta's own namespace.
//! 3. Join the target's user namespace if that is what it takes to enter
//!    its network namespace (no `CAP_SYS_ADMIN` of our own, and not
//!    `--netns-only`); open the network namespace.
//! 4. Set up the quit watch (unless `--no-netns-quit`): the spawned child,
//!    the target process, or the namespace file's directory.
//! 5. Inside the target (on a thread, [`NetNs::run_in`]): create the tap
//!    device, bring `lo` up, set the tap's MAC (`--ns-mac-addr`) and, with
//!    `--config-net`, its MTU, addresses and routes ([`configure`]); bring it
//!    up. Without `--config-net` the namespace's own DHCP, SLAAC and DHCPv6
//!    clients get their configuration from the translator. Make the
//!    translator, sending TCP super-frames if the tap has virtio-net
//!    headers ([`Tap::vnet`]).
//! 6. Open the capture file (`--pcap`).
//! 7. Unless spawning or `-f`, go to the background ([`passt_core::host::daemon`]).
//! 8. Start the namespace thread; check the host ports of `-t`/`-u` and
//!    the namespace ports of `-T`/`-U` port lists are free (a taken one is
//!    an error naming it), open the translator's listeners (the `-T`/`-U`
//!    ones inside the namespace, on that thread), prepare the `auto` scans
//!    ([`crate::fwd`]). Spawn mode: only now let the command run, so that
//!    its forwarded ports are there from its first instruction. Write the
//!    PID file (in the background, the parent does, once told all went
//!    well): in every mode it appears only once the forwarded ports are
//!    open, so it is what a script should wait for (the namespace is
//!    configured at step 5 already, before the listeners exist). Drop
//!    privileges ([`crate::privs`]), set up the loop; in the background,
//!    tell the waiting parent that all went well (it exits 0 then); run the
//!    loop.
//!
//! A failure at any step is an error message and exit status 1, and leaves
//! nothing behind: the child of spawn mode exits unstarted, the tap device
//! goes with its descriptor, files created by then are removed.

use core::convert::Infallible;
use core::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use passt_core::config::Config;
use passt_core::host::HostNet;
use passt_core::Translator;
use rustix::io::Errno;

use crate::config::{Setup, Target};
use crate::fwd::Forwarder;
use crate::netlink::{Netlink, Route};
use crate::netns::{have_sys_admin, join_userns, NetNs, NsThread};
use crate::run::{now, Driver};
use crate::spawn::{self, Spawned};
use crate::tap::Tap;
use crate::watch::{proc_pid, ChildExit, FileGone, ProcessExit, Watch};
use crate::{debug, info, privs, warning, Error};
use passt_core::host::conf::ConfSocket;
use passt_core::host::daemon;
use passt_core::host::pcap::Pcap;

/// What `--config-net` puts in the namespace besides the addresses the
/// translator hands out.
#[derive(Debug, Default)]
struct NetConfig {
    /// Further addresses of the host's template interfaces.
    extra_addrs: Vec<(IpAddr, u8)>,
    /// The host's routes through its template interfaces, to copy.
    routes: Vec<Route>,
}

/// Files made during start-up, removed if start-up fails.
#[derive(Debug, Default)]
struct Made {
    files: Vec<PathBuf>,
}

impl Made {
    fn keep(&mut self) {
        self.files.clear();
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Set everything up from `setup` and run until the end.
///
/// `started_as_root`: whether the effective UID was 0 when pasta started.
///
/// # Errors
/// The fatal error, for `main` to print.
pub(crate) fn start(setup: Setup, started_as_root: bool) -> Result<Infallible, Error> {
    for line in &setup.summary {
        info!("{line}");
    }
    let core = setup.core.clone();
    // Refuse a bad configuration before touching any namespace; the
    // translator is made once the tap says whether it takes offloads.
    core.validate()
        .map_err(|e| Error::msg(format!("invalid configuration: {e}")))?;
    let opts = &setup.opts;
    let net_config = if opts.config_net {
        host_net_config(
            &setup.host,
            &core,
            CopyFromHost {
                addrs4: opts.addr4.is_none() && !opts.no_copy_addrs,
                addrs6: opts.addr6.is_none() && !opts.no_copy_addrs,
                routes4: opts.gateway4.is_none() && !opts.no_copy_routes,
                routes6: opts.gateway6.is_none() && !opts.no_copy_routes,
            },
        )
    } else {
        NetConfig::default()
    };

    let home = NetNs::current()?;
    let mut spawned: Option<Spawned> = None;
    let (netns_path, userns, pid) = match &setup.target {
        Target::Spawn(command) => {
            let s = spawn::spawn(command)?;
            let paths = (s.netns_path(), Some(s.userns_path()), None);
            spawned = Some(s);
            paths
        }
        Target::Pid(pid) => {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(Error::msg(format!("no process with PID {pid}")));
            }
            (
                PathBuf::from(format!("/proc/{pid}/ns/net")),
                setup.userns.clone(),
                Some(*pid),
            )
        }
        Target::Path(p) => (p.clone(), setup.userns.clone(), proc_pid(p)),
    };

    let mut joined_userns = false;
    if let Some(u) = &userns {
        if !have_sys_admin() {
            joined_userns = join_userns(u)?;
            if joined_userns {
                debug!("joined user namespace {}", u.display());
            }
        }
    }
    let target = NetNs::open(&netns_path).map_err(|e| match pid {
        Some(pid) if !Path::new(&format!("/proc/{pid}")).exists() => {
            Error::msg(format!("no process with PID {pid}"))
        }
        _ => e,
    })?;
    if target.same_as(&home) {
        return Err(Error::msg(format!(
            "{} is the network namespace pasta runs in: give another one",
            netns_path.display()
        )));
    }

    let watch: Option<Box<dyn Watch>> = match (&spawned, pid) {
        (Some(s), _) => Some(Box::new(ChildExit::new(
            s.pid(),
            s.pidfd()?,
            s.name().to_owned(),
        ))),
        _ if opts.no_netns_quit => None,
        (None, Some(pid)) => Some(Box::new(ProcessExit::new(pid)?)),
        (None, None) => Some(Box::new(FileGone::new(&netns_path)?)),
    };

    let ifname = setup.ifname.as_str();
    let mac = core.guest_mac;
    let config_net = opts.config_net;
    let tap = target.run_in(|| {
        let tap = Tap::create(ifname)?;
        configure(&tap, &core, mac, config_net.then_some(&net_config))?;
        Ok(tap)
    })?;
    info!(
        "namespace interface {} in {}{}",
        tap.name(),
        target.path().display(),
        mac.map(|m| format!(", MAC {m}")).unwrap_or_default()
    );

    if !tap.vnet() {
        info!(
            "tap {} without a virtio-net header: no offloads",
            tap.name()
        );
    }
    let mut config = Config {
        guest_gso: tap.vnet(),
        ..setup.core
    };
    if opts.conf_path.is_some() {
        // Room in the listener tables for run-time changes.
        config.limits.change_listeners = passt_core::config::CHANGE_LISTENERS_ANY;
    }
    let translator = Translator::new(config, now())
        .map_err(|e| Error::msg(format!("invalid configuration: {e}")))?;

    let mut made = Made::default();
    let pcap = match opts.pcap.as_deref() {
        Some(p) => {
            let pcap = Pcap::create(Path::new(p)).map_err(|e| match e.raw_os_error() {
                Some(n) => Error::sys(
                    format!("creating capture file {p}"),
                    rustix::io::Errno::from_raw_os_error(n),
                ),
                None => Error::msg(format!("creating capture file {p}: {e}")),
            })?;
            made.files.push(PathBuf::from(p));
            info!("capturing frames to {p}");
            Some(pcap)
        }
        None => None,
    };
    let conf = match opts.conf_path.as_deref() {
        Some(p) => {
            let conf = ConfSocket::open(Path::new(p))?;
            made.files.push(PathBuf::from(p));
            info!("configuration socket at {p}");
            Some(conf)
        }
        None => None,
    };

    let pid_file = opts.pid_file.as_deref().map(Path::new);
    let mut detached = None;
    // A spawned command is started once the forwarded ports are open
    // (below), and a foreground pasta writes its PID file then: the
    // namespace looks configured from here on, but a `-u` datagram sent
    // before its listener is bound meets a closed port.
    if spawned.is_none() && !opts.foreground {
        // The parent waits here until the child is ready, writes the PID
        // file and exits 0.
        detached = Some(daemon::daemonise(pid_file)?);
    }

    // Listening sockets of forwarded ports while privileges last (ports
    // below 1024): `-t` and `-u` in pasta's own namespace, `-T` and `-U`
    // inside the target one, made on the namespace thread, which stays for
    // the namespace side of spliced connections and the `auto` scans.
    let ns_thread = NsThread::start(&target)?;
    crate::fwd::check_host_ports(&core)?;
    crate::fwd::check_ns_ports(&ns_thread, &core)?;
    let mut driver = Driver::new(translator, tap, pcap)?;
    if let Some(c) = conf {
        driver.set_conf(c)?;
    }
    driver.set_ns_thread(ns_thread.clone());
    driver.open_listeners()?;

    // The `auto` scans (the namespace's `/proc/net` files are opened now).
    let fwd = Forwarder::new(ns_thread.clone(), driver.translator().config(), now())?;
    driver.set_forwarder(fwd);

    // Every mode's sign of readiness: the PID file exists once the
    // forwarded ports are open (the background parent writes it once told).
    if spawned.is_some() || opts.foreground {
        write_own_pid(pid_file, &mut made)?;
    }
    if let Some(w) = watch {
        driver.add_watch(w)?;
    }
    // Everything is open: into the sandbox, before the command can run.
    privs::lock_down(
        &ns_thread,
        started_as_root,
        joined_userns,
        opts.runas.as_ref(),
        &crate::seccomp::filter(
            opts.pcap.is_some(),
            opts.log_file.is_some(),
            opts.conf_path.is_some(),
        ),
    )?;

    // The command starts with its forwarded ports already open: a `-T` or
    // `-U` port it uses at once is there to take it.
    if let Some(s) = spawned {
        // It runs in the foreground with pasta as its parent: keyboard
        // interrupts are for it.
        passt_sys::process::ignore_signal(libc::SIGINT, true);
        passt_sys::process::ignore_signal(libc::SIGQUIT, true);
        let pid = s.start()?;
        debug!("command started, PID {}", pid.as_raw_nonzero());
    }
    if let Some(d) = detached {
        d.ready()?;
    }
    made.keep();
    // Setup is done: from here on, nothing is allocated.
    #[cfg(feature = "count-alloc")]
    passt_sys::count_alloc::arm();
    driver.run()
}

/// Write pasta's own PID to `path`, if given.
fn write_own_pid(path: Option<&Path>, made: &mut Made) -> Result<(), Error> {
    if let Some(p) = path {
        daemon::write_pid_file(p, rustix::process::getpid().as_raw_nonzero().get() as u32)?;
        made.files.push(p.to_owned());
    }
    Ok(())
}

/// What [`host_net_config`] copies from the host, per family.
struct CopyFromHost {
    /// The host's further IPv4 addresses: not with `-a` for IPv4 or
    /// `--no-copy-addrs`.
    addrs4: bool,
    /// The same for IPv6.
    addrs6: bool,
    /// The host's IPv4 routes: not with `-g` for IPv4 (the namespace gets
    /// its default route through the given gateway only, as the
    /// original's) or `--no-copy-routes`.
    routes4: bool,
    /// The same for IPv6.
    routes6: bool,
}

/// The host's further addresses and its routes to copy with
/// `--config-net`, read in the host's namespace, as `copy` says. Failing
/// to read routes is not fatal: the namespace still gets its default
/// route.
fn host_net_config(host: &HostNet, core: &Config, copy: CopyFromHost) -> NetConfig {
    let mut out = NetConfig::default();
    let mut nl = match Netlink::open() {
        Ok(nl) => nl,
        Err(e) => {
            warning!("cannot read the host's routes: {e}");
            return out;
        }
    };
    if let (Some(h), Some(ip4)) = (&host.ip4, &core.ip4) {
        if copy.addrs4 {
            for a in h.addrs.iter().filter(|a| a.addr != ip4.addr) {
                out.extra_addrs.push((IpAddr::V4(a.addr), a.prefix_len));
            }
        }
        match nl.routes(false, h.link.index) {
            Ok(r) if copy.routes4 => out.routes.extend(r),
            Ok(_) => {}
            Err(e) => warning!("cannot read the host's IPv4 routes: {e}"),
        }
    }
    if let (Some(h), Some(ip6)) = (&host.ip6, &core.ip6) {
        if copy.addrs6 {
            for a in h.addrs.iter().filter(|a| a.addr != ip6.addr) {
                out.extra_addrs.push((IpAddr::V6(a.addr), a.prefix_len));
            }
        }
        match nl.routes(true, h.link.index) {
            Ok(r) if copy.routes6 => out.routes.extend(r),
            Ok(_) => {}
            Err(e) => warning!("cannot read the host's IPv6 routes: {e}"),
        }
    }
    // The kernel makes the prefix route of each address itself.
    let mut addrs = out.extra_addrs.clone();
    if let Some(ip4) = &core.ip4 {
        addrs.push((IpAddr::V4(ip4.addr), ip4.prefix_len));
    }
    if let Some(ip6) = &core.ip6 {
        addrs.push((IpAddr::V6(ip6.addr), ip6.prefix_len));
    }
    out.routes.retain(|r| {
        let prefix_route = r.gateway.is_none()
            && r.dst
                .is_some_and(|d| addrs.iter().any(|&(a, len)| d == (network(a, len), len)));
        !prefix_route
    });
    out
}

/// The network of `addr/len`: its first `len` bits, the rest zero.
fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(core::net::Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

/// Whether `e` says IPv6 is off in the namespace (disabled by sysctl or not
/// built): IPv6 settings are then skipped with a warning.
fn ipv6_off(e: Errno) -> bool {
    matches!(
        e,
        Errno::ACCESS | Errno::AFNOSUPPORT | Errno::OPNOTSUPP | Errno::PERM
    )
}

/// How long [`wait_dad`] waits for the tap's IPv6 addresses to leave the
/// tentative state: long enough for a full duplicate address detection
/// (RFC 4862 §5.4: up to `MAX_RTR_SOLICITATION_DELAY`, 1 s, then one probe
/// and `RetransTimer`, 1 s) should `accept_dad` not be writable.
const DAD_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// Turn duplicate address detection off for link `name` before it comes
/// up (`/proc/sys/net/ipv6/conf/NAME/accept_dad`, the sysctl of the
/// namespace we are in): nobody else is on the tap's link, and the
/// kernel's link-local address would otherwise stay tentative for a second
/// or two after we return (a router solicitation then fails with
/// `EADDRNOTAVAIL`, a DHCPv6 client cannot bind to port 546). The flag of
/// the `all` settings counts too, but it is 0 in a new namespace. Best
/// effort: without IPv6, or with a read-only `/proc/sys`, [`wait_dad`]
/// still waits for the detection to end.
fn no_dad(name: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{name}/accept_dad");
    if let Err(e) = std::fs::write(&path, "0") {
        debug!("{path}: {e}");
    }
}

/// Wait (at most [`DAD_WAIT`]) until no IPv6 address of link `index` is
/// tentative, so that the namespace can use them as soon as we return.
fn wait_dad(nl: &mut Netlink, index: u32, name: &str) {
    let until = std::time::Instant::now() + DAD_WAIT;
    loop {
        match nl.tentative_addrs(index) {
            Ok(0) => return,
            Ok(n) if std::time::Instant::now() >= until => {
                warning!("{n} IPv6 address(es) of {name} still tentative");
                return;
            }
            Ok(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Err(e) => {
                debug!("listing the addresses of {name}: {e}");
                return;
            }
        }
    }
}

/// Inside the target namespace: bring `lo` up; set the tap's MAC, and with
/// `net` (`--config-net`) its MTU, addresses and routes; bring it up with
/// duplicate address detection off, and return once none of its IPv6
/// addresses is tentative ([`no_dad`], [`wait_dad`]).
///
/// # Errors
/// Netlink failures, naming what was being set. Further host addresses and
/// copied routes that do not fit are warnings; so is IPv6 being disabled
/// in the namespace.
fn configure(
    tap: &Tap,
    core: &Config,
    mac: Option<passt_core::addr::MacAddr>,
    net: Option<&NetConfig>,
) -> Result<(), Error> {
    let name = tap.name();
    let mut nl = Netlink::open().map_err(|e| Error::sys("opening netlink socket", e))?;
    let lo = nl
        .link_index("lo")
        .map_err(|e| Error::sys("looking up lo", e))?;
    nl.link_up(lo, None)
        .map_err(|e| Error::sys("bringing lo up", e))?;
    let index = nl
        .link_index(name)
        .map_err(|e| Error::sys(format!("looking up {name}"), e))?;
    // With `-m 0` no MTU is assigned: the tap keeps the kernel's.
    if net.is_some() && core.assign_mtu {
        nl.set_mtu(index, u32::from(core.mtu))
            .map_err(|e| Error::sys(format!("setting MTU {} on {name}", core.mtu), e))?;
    }
    if core.ip6.is_some() {
        no_dad(name);
    }
    nl.link_up(index, mac)
        .map_err(|e| Error::sys(format!("setting up {name}"), e))?;
    let Some(net) = net else {
        if core.ip6.is_some() {
            wait_dad(&mut nl, index, name);
        }
        return Ok(());
    };

    if let Some(ip4) = &core.ip4 {
        nl.add_addr(index, IpAddr::V4(ip4.addr), ip4.prefix_len)
            .map_err(|e| {
                Error::sys(
                    format!("adding {}/{} to {name}", ip4.addr, ip4.prefix_len),
                    e,
                )
            })?;
    }
    let mut ip6_on = true;
    if let Some(ip6) = core.ip6.as_ref().filter(|ip6| !ip6.addr.is_unspecified()) {
        match nl.add_addr(index, IpAddr::V6(ip6.addr), ip6.prefix_len) {
            Ok(()) => {}
            Err(e) if ipv6_off(e) => {
                warning!(
                    "IPv6 is disabled in the namespace ({}): not configured",
                    passt_core::host::error::errno_text(e)
                );
                ip6_on = false;
            }
            Err(e) => {
                return Err(Error::sys(
                    format!("adding {}/{} to {name}", ip6.addr, ip6.prefix_len),
                    e,
                ))
            }
        }
    }
    for &(a, len) in &net.extra_addrs {
        if a.is_ipv6() && !ip6_on {
            continue;
        }
        match nl.add_addr(index, a, len) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => warning!("adding {a}/{len} to {name}: {e}"),
        }
    }

    if let Some(ip4) = core
        .ip4
        .as_ref()
        .filter(|c| c.gateway != Ipv4Addr::UNSPECIFIED)
    {
        let r = Route::default_via(IpAddr::V4(ip4.gateway));
        nl.add_route(index, &r)
            .map_err(|e| Error::sys(format!("adding route {r} on {name}"), e))?;
    }
    if let Some(ip6) = core.ip6.as_ref().filter(|_| ip6_on) {
        let r = Route::default_via(IpAddr::V6(ip6.gateway));
        match nl.add_route(index, &r) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) if ipv6_off(e) => warning!("IPv6 route {r} not added: {e}"),
            Err(e) => return Err(Error::sys(format!("adding route {r} on {name}"), e)),
        }
    }
    for r in &net.routes {
        if (r.ipv6 && (!ip6_on || core.ip6.is_none())) || (!r.ipv6 && core.ip4.is_none()) {
            continue;
        }
        match nl.add_route(index, r) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => warning!("copying route {r} to {name}: {e}"),
        }
    }
    if ip6_on && core.ip6.is_some() {
        wait_dad(&mut nl, index, name);
    }
    debug!(
        "{name} configured: MTU {}, {} further address(es), {} copied route(s)",
        core.mtu,
        net.extra_addrs.len(),
        net.routes.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_of_addresses() {
        let n = |a: &str, len| network(a.parse().unwrap(), len).to_string();
        assert_eq!(n("203.0.113.2", 24), "203.0.113.0");
        assert_eq!(n("203.0.113.2", 0), "0.0.0.0");
        assert_eq!(n("203.0.113.2", 32), "203.0.113.2");
        assert_eq!(n("2001:db8:2::2", 64), "2001:db8:2::");
        assert_eq!(n("2001:db8:2::2", 128), "2001:db8:2::2");
        assert_eq!(n("2001:db8:2::2", 0), "::");
    }
}
