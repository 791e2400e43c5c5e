//! Port forwarding besides the translator: `-U` (namespace to host)
//! relays, the start-up check of `-T` ports, and the scan behind `auto`
//! forwarding in all four directions.
//!
//! # `-T`
//! The translator does it, in the event loop: its listeners of `-T` ports
//! are made inside the namespace (on the [`NsThread`], through the
//! executor's namespace hook) on its loopback, and what they accept is
//! spliced (`splice(2)` through pipes) to a socket connected to the host's
//! loopback, as a flow of its table (see `passt_core::tcp`). Here only
//! [`check_ns_ports`] (a port of a port list that cannot be bound is an
//! error at start-up) and, for `-T auto`, the scan that opens and closes
//! them ([`Translator::set_auto_out_port`]).
//!
//! # `-U`
//! For each forwarded port `P` (target `T`), listening sockets inside the
//! namespace on its loopback (`127.0.0.1:P`, `[::1]:P`), made on the
//! [`NsThread`] (pasta itself stays in the host's namespace, possibly
//! without privileges by then). A datagram received there is sent to
//! `127.0.0.1:T` (or `[::1]:T`) on the host from a host socket of its own
//! per sender, whose replies go back to that sender. No frames and no
//! translation are involved. The copy path is deliberately minimal: a
//! thread per listener and one per sender; threads started from the event
//! loop's thread are in the host's namespace, so their sockets reach the
//! host's loopback.
//!
//! # `auto`
//! About once a second ([`SCAN_EVERY`]) [`Forwarder::tick`] reads
//! `/proc/net/{tcp,tcp6,udp,udp6}` of both sides: the namespace's files
//! are opened once on the [`NsThread`] (a `/proc/net` file stays bound to
//! the namespace of the thread that opened it) and read again from the
//! start each time; the host's are read in place. A port counts as bound
//! when a TCP socket listens on it (state `0A`) or an unconnected UDP socket
//! is bound to it (state `07`). Ports pasta bound itself on that side are
//! left out, so the two directions never chase each other.
//!
//! - `-t auto`/`-u auto`: forwarded host port `P` with target `T` is opened
//!   ([`Translator::set_auto_port`]) while `T` is bound in the namespace,
//!   closed when it no longer is.
//! - `-T auto`: the namespace listeners of port `P` are open while its
//!   target `T` is bound on the host (asked again each scan while none is
//!   open, so a port taken in the namespace is retried).
//! - `-U auto`: the relay of namespace port `P` runs while its target `T`
//!   is bound on the host.
//!
//! Ports bound with a spec of ports (not `auto`, not `all`) that cannot be
//! bound are an error at start-up, naming the port.

use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use passt_core::config::ports::{FwdMode, FwdSpec};
use passt_core::config::Config;
use passt_core::time::Instant;
use passt_core::{Proto, Translator};
use rustix::io::Errno;
use rustix::net::{bind, listen, socket_with, sockopt, AddressFamily, SocketFlags, SocketType};

use crate::netns::NsThread;
use crate::{debug, Error};

/// How often bound ports are scanned for `auto` forwarding.
pub(crate) const SCAN_EVERY: Duration = Duration::from_secs(1);

/// How long relay threads block before checking whether to stop.
const POLL: Duration = Duration::from_millis(500);

/// A UDP sender's host socket is given up after this long without traffic.
const UDP_IDLE: Duration = Duration::from_secs(180);

/// Largest datagram relayed.
const DGRAM_MAX: usize = 65536;

/// A set of ports.
type PortSet = Box<[u64; 1024]>;

fn empty_set() -> PortSet {
    Box::new([0u64; 1024])
}

fn set_has(s: &PortSet, p: u16) -> bool {
    s[usize::from(p >> 6)] & (1 << (p & 63)) != 0
}

fn set_add(s: &mut PortSet, p: u16) {
    s[usize::from(p >> 6)] |= 1 << (p & 63);
}

/// The `/proc/net` files of one side, for one protocol.
#[derive(Debug, Default)]
struct ProcFiles {
    files: Vec<File>,
}

impl ProcFiles {
    /// Open `/proc/thread-self/net/{name,name6}` (on the calling thread's
    /// namespace); a missing file (no IPv6) is skipped.
    fn open(name: &str) -> ProcFiles {
        let files = [name.to_owned(), format!("{name}6")]
            .iter()
            .filter_map(|n| File::open(format!("/proc/thread-self/net/{n}")).ok())
            .collect();
        ProcFiles { files }
    }

    /// Ports bound, read from the start of each file.
    fn scan(&mut self, proto: Proto, text: &mut String) -> PortSet {
        let mut set = empty_set();
        for f in &mut self.files {
            text.clear();
            if f.seek(SeekFrom::Start(0)).is_err() || f.read_to_string(text).is_err() {
                continue;
            }
            parse_proc_net(text, proto, &mut set);
        }
        set
    }
}

/// Add the ports bound in `text`, a `/proc/net/{tcp,udp}[6]` table, to
/// `set`: local port of TCP sockets in state `0A` (listen), of UDP sockets
/// in state `07` (unconnected).
fn parse_proc_net(text: &str, proto: Proto, set: &mut PortSet) {
    let want = if proto == Proto::Tcp { "0A" } else { "07" };
    for line in text.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(_), Some(local), Some(_), Some(state)) = (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if state != want {
            continue;
        }
        let Some((_, port)) = local.rsplit_once(':') else {
            continue;
        };
        if let Ok(p) = u16::from_str_radix(port, 16) {
            set_add(set, p);
        }
    }
}

/// One running relay (`-U` port): stopped when dropped.
#[derive(Debug)]
struct Relay {
    stop: Arc<AtomicBool>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Forwarding state that lives beside the translator in the event loop.
pub(crate) struct Forwarder {
    ns: NsThread,
    tcp_in: FwdSpec,
    udp_in: FwdSpec,
    tcp_out: FwdSpec,
    udp_out: FwdSpec,
    /// Namespace ports with a running relay (`-U`), by protocol.
    out: HashMap<(Proto, u16), Relay>,
    /// `-T auto` ports whose namespace listeners the translator was asked
    /// to open.
    tcp_out_on: HashSet<u16>,
    /// Host ports opened through [`Translator::set_auto_port`].
    in_on: HashSet<(Proto, u16)>,
    ns_tcp: ProcFiles,
    ns_udp: ProcFiles,
    host_tcp: ProcFiles,
    host_udp: ProcFiles,
    next_scan: Instant,
    text: String,
}

impl Forwarder {
    /// Start the static `-U` relays and prepare the `auto` scans (the
    /// static `-T` listeners are the translator's, opened with `-t`'s).
    ///
    /// # Errors
    /// A port of a `-U` port-list spec that cannot be bound in the
    /// namespace.
    pub(crate) fn new(ns: NsThread, config: &Config, now: Instant) -> Result<Forwarder, Error> {
        let f = &config.fwd;
        let auto_in = f.tcp_in.mode() == FwdMode::Auto || f.udp_in.mode() == FwdMode::Auto;
        let auto_out = f.tcp_out.mode() == FwdMode::Auto || f.udp_out.mode() == FwdMode::Auto;
        let (ns_tcp, ns_udp) = if auto_in {
            ns.run(|| (ProcFiles::open("tcp"), ProcFiles::open("udp")))?
        } else {
            Default::default()
        };
        let (host_tcp, host_udp) = if auto_out {
            (ProcFiles::open("tcp"), ProcFiles::open("udp"))
        } else {
            Default::default()
        };
        let mut fw = Forwarder {
            ns,
            tcp_in: f.tcp_in.clone(),
            udp_in: f.udp_in.clone(),
            tcp_out: f.tcp_out.clone(),
            udp_out: f.udp_out.clone(),
            out: HashMap::new(),
            tcp_out_on: HashSet::new(),
            in_on: HashSet::new(),
            ns_tcp,
            ns_udp,
            host_tcp,
            host_udp,
            next_scan: now,
            text: String::new(),
        };
        // Static `-U` relays.
        let spec = fw.udp_out.clone();
        let strict = match spec.mode() {
            FwdMode::Ports => true,
            FwdMode::All => false,
            FwdMode::Auto | FwdMode::None => return Ok(fw),
        };
        for port in spec.ports() {
            let Some((target, _)) = spec.lookup(port) else {
                continue;
            };
            match fw.start_relay(Proto::Udp, port, target) {
                Ok(()) => {}
                Err(e) if strict => return Err(e),
                Err(e) => debug!("{e}"),
            }
        }
        Ok(fw)
    }

    fn out_spec(&self, proto: Proto) -> &FwdSpec {
        if proto == Proto::Tcp {
            &self.tcp_out
        } else {
            &self.udp_out
        }
    }

    fn in_spec(&self, proto: Proto) -> &FwdSpec {
        if proto == Proto::Tcp {
            &self.tcp_in
        } else {
            &self.udp_in
        }
    }

    /// When [`Forwarder::tick`] wants to run next, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let auto = [&self.tcp_in, &self.udp_in, &self.tcp_out, &self.udp_out]
            .iter()
            .any(|s| s.mode() == FwdMode::Auto);
        auto.then_some(self.next_scan)
    }

    /// If a scan is due, scan both sides and open or close what `auto`
    /// forwarding asks for. Returns whether the translator queued
    /// operations (the caller runs them).
    pub(crate) fn tick(&mut self, now: Instant, t: &mut Translator) -> bool {
        if now < self.next_scan {
            return false;
        }
        self.next_scan = now + SCAN_EVERY;
        let mut queued = false;
        for proto in [Proto::Tcp, Proto::Udp] {
            if self.in_spec(proto).mode() == FwdMode::Auto {
                queued |= self.scan_in(proto, t);
            }
            if self.out_spec(proto).mode() == FwdMode::Auto {
                queued |= self.scan_out(proto, t);
            }
        }
        queued
    }

    /// `-t auto`/`-u auto`: host ports for what the namespace binds.
    fn scan_in(&mut self, proto: Proto, t: &mut Translator) -> bool {
        let files = if proto == Proto::Tcp {
            &mut self.ns_tcp
        } else {
            &mut self.ns_udp
        };
        let bound = files.scan(proto, &mut self.text);
        let spec = self.in_spec(proto).clone();
        let mut queued = false;
        for port in spec.ports() {
            let Some((target, _)) = spec.lookup(port) else {
                continue;
            };
            let ours = self.out_has(proto, target);
            let want = set_has(&bound, target) && !ours;
            let have = self.in_on.contains(&(proto, port));
            if want != have {
                debug!(
                    "{proto:?} port {target} {} in the namespace: {} host port {port}",
                    if want { "bound" } else { "released" },
                    if want {
                        "forwarding"
                    } else {
                        "no longer forwarding"
                    },
                );
                queued |= t.set_auto_port(proto, port, want);
                if want {
                    self.in_on.insert((proto, port));
                } else {
                    self.in_on.remove(&(proto, port));
                }
            }
        }
        queued
    }

    /// Whether namespace port `port` is forwarded to the host by us (a
    /// `-T` listener or a `-U` relay), so that `-t auto`/`-u auto` leave
    /// it alone.
    fn out_has(&self, proto: Proto, port: u16) -> bool {
        if proto != Proto::Tcp {
            return self.out.contains_key(&(proto, port));
        }
        match self.tcp_out.mode() {
            FwdMode::Ports | FwdMode::All => self.tcp_out.is_forwarded(port),
            FwdMode::Auto => self.tcp_out_on.contains(&port),
            FwdMode::None => false,
        }
    }

    /// `-T auto`/`-U auto`: namespace listeners or relays for what the
    /// host binds. Returns whether the translator queued operations.
    fn scan_out(&mut self, proto: Proto, t: &mut Translator) -> bool {
        let files = if proto == Proto::Tcp {
            &mut self.host_tcp
        } else {
            &mut self.host_udp
        };
        let bound = files.scan(proto, &mut self.text);
        let spec = self.out_spec(proto).clone();
        let static_in = self.in_spec(proto).mode() != FwdMode::Auto;
        let mut queued = false;
        for port in spec.ports() {
            let Some((target, _)) = spec.lookup(port) else {
                continue;
            };
            let ours = self.in_on.contains(&(proto, target))
                || (static_in && self.in_spec(proto).is_forwarded(target));
            let want = set_has(&bound, target) && !ours;
            if proto == Proto::Tcp {
                queued |= self.scan_out_tcp(t, port, target, want);
                continue;
            }
            let have = self.out.contains_key(&(proto, port));
            if want && !have {
                match self.start_relay(proto, port, target) {
                    Ok(()) => debug!(
                        "{proto:?} port {target} bound on the host: forwarding namespace port {port}"
                    ),
                    // Taken in the namespace: tried again next scan.
                    Err(e) => debug!("{e}"),
                }
            } else if !want && have {
                debug!(
                    "{proto:?} port {target} released on the host: namespace port {port} closed"
                );
                self.out.remove(&(proto, port));
            }
        }
        queued
    }

    /// `-T auto` for namespace port `port` (target `target`): have its
    /// listeners open if `want`, else closed. Returns whether queued.
    fn scan_out_tcp(&mut self, t: &mut Translator, port: u16, target: u16, want: bool) -> bool {
        let have = self.tcp_out_on.contains(&port);
        if want && !(have && t.tcp_out_listening(port)) {
            // New, or every listener failed (taken in the namespace):
            // (re)open.
            if !have {
                debug!("TCP port {target} bound on the host: forwarding namespace port {port}");
                self.tcp_out_on.insert(port);
            }
            t.set_auto_out_port(Proto::Tcp, port, true)
        } else if !want && have {
            debug!("TCP port {target} released on the host: namespace port {port} closed");
            self.tcp_out_on.remove(&port);
            t.set_auto_out_port(Proto::Tcp, port, false)
        } else {
            false
        }
    }

    /// Bind namespace UDP port `port` on its loopback (both families; IPv6
    /// may be off there) and relay to the host's loopback port `target`.
    fn start_relay(&mut self, proto: Proto, port: u16, target: u16) -> Result<(), Error> {
        let made = self.ns.run(move || {
            let v4 = ns_socket(proto, false, port);
            let v6 = ns_socket(proto, true, port);
            (v4, v6)
        })?;
        let (v4, v6) = made;
        let v4 = v4.map_err(|e| {
            Error::sys(
                format!("binding {proto:?} port {port} in the namespace (-U)"),
                e,
            )
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut socks = vec![(v4, SocketAddr::from((Ipv4Addr::LOCALHOST, target)))];
        match v6 {
            Ok(fd) => socks.push((fd, SocketAddr::from((Ipv6Addr::LOCALHOST, target)))),
            Err(e) => debug!("{proto:?} port {port} in the namespace, IPv6: {e}"),
        }
        for (fd, to) in socks {
            let stop = stop.clone();
            let r = thread::Builder::new()
                .name("pasta-fwd".into())
                .spawn(move || udp_relay(UdpSocket::from(fd), to, &stop));
            r.map_err(|e| Error::msg(format!("starting a thread: {e}")))?;
        }
        self.out.insert((proto, port), Relay { stop });
        Ok(())
    }
}

/// A socket bound to the loopback `port` of the calling thread's
/// namespace (listening, for TCP), with `SO_RCVTIMEO` of [`POLL`].
fn ns_socket(proto: Proto, ipv6: bool, port: u16) -> Result<OwnedFd, Errno> {
    let (fam, addr) = if ipv6 {
        (
            AddressFamily::INET6,
            SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        )
    } else {
        (
            AddressFamily::INET,
            SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        )
    };
    let ty = if proto == Proto::Tcp {
        SocketType::STREAM
    } else {
        SocketType::DGRAM
    };
    let fd = socket_with(fam, ty, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if ipv6 {
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    bind(&fd, &addr)?;
    if proto == Proto::Tcp {
        listen(&fd, 128)?;
    }
    sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(POLL))?;
    Ok(fd)
}

/// Relay datagrams from namespace socket `ns` to `to`, one host socket per
/// sender, until `stop`.
fn udp_relay(ns: UdpSocket, to: SocketAddr, stop: &Arc<AtomicBool>) {
    let mut senders: HashMap<SocketAddr, (UdpSocket, Arc<AtomicBool>)> = HashMap::new();
    let mut buf = vec![0u8; DGRAM_MAX];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match ns.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => {
                senders.retain(|_, (_, gone)| !gone.load(Ordering::Relaxed));
                continue;
            }
        };
        if senders
            .get(&from)
            .is_some_and(|(_, gone)| gone.load(Ordering::Relaxed))
        {
            senders.remove(&from);
        }
        #[allow(clippy::map_entry)] // The entry is made only if the socket is.
        if !senders.contains_key(&from) {
            let local: SocketAddr = if to.is_ipv4() {
                (Ipv4Addr::LOCALHOST, 0).into()
            } else {
                (Ipv6Addr::LOCALHOST, 0).into()
            };
            let Ok(h) = UdpSocket::bind(local) else {
                continue;
            };
            let (Ok(()), Ok(h2), Ok(ns2)) = (h.connect(to), h.try_clone(), ns.try_clone()) else {
                continue;
            };
            let gone = Arc::new(AtomicBool::new(false));
            let (gone2, stop2) = (gone.clone(), stop.clone());
            let _ = thread::Builder::new()
                .name("pasta-fwd".into())
                .spawn(move || udp_back(h2, ns2, from, &stop2, &gone2));
            senders.insert(from, (h, gone));
        }
        if let Some((h, _)) = senders.get(&from) {
            let _ = h.send(&buf[..n]);
        }
    }
}

/// Replies on `host` go back to `peer` through the namespace socket `ns`,
/// until `stop` or [`UDP_IDLE`] without any; then `gone`.
fn udp_back(
    host: UdpSocket,
    ns: UdpSocket,
    peer: SocketAddr,
    stop: &AtomicBool,
    gone: &AtomicBool,
) {
    let _ = host.set_read_timeout(Some(POLL));
    let mut buf = vec![0u8; DGRAM_MAX];
    let mut idle = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) && idle < UDP_IDLE {
        match host.recv(&mut buf) {
            Ok(n) => {
                idle = Duration::ZERO;
                let _ = ns.send_to(&buf[..n], peer);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                idle += POLL;
            }
            // ECONNREFUSED from an ICMP error: keep going.
            Err(_) => idle += POLL,
        }
    }
    gone.store(true, Ordering::Relaxed);
}

/// Check that the host ports of port-list specs (`-t 8080`, `-u 53`) are
/// free, before the translator's listeners are opened: a taken port is an
/// error naming it, where the translator would only count it.
///
/// # Errors
/// The first port that cannot be bound, with the reason.
pub(crate) fn check_host_ports(config: &Config) -> Result<(), Error> {
    for (proto, spec, opt) in [
        (Proto::Tcp, &config.fwd.tcp_in, 't'),
        (Proto::Udp, &config.fwd.udp_in, 'u'),
    ] {
        if spec.mode() != FwdMode::Ports {
            continue;
        }
        for r in spec.rules() {
            for port in r.first..=r.last {
                let mut fams = Vec::new();
                match r.addr {
                    Some(a) => fams.push(SocketAddr::new(a, port)),
                    None => {
                        if config.ip4.is_some() {
                            fams.push(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
                        }
                        if config.ip6.is_some() {
                            fams.push(SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)));
                        }
                    }
                }
                for a in fams {
                    if let Err(e) = probe(proto, a) {
                        return Err(Error::sys(
                            format!(
                                "-{opt}: {proto:?} port {port} cannot be bound on the host ({a})"
                            ),
                            e,
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Check that the namespace ports of a `-T` port list (`-T 8080`) are
/// free on its IPv4 loopback, before the translator's listeners are
/// opened there: a taken port is an error naming it, where the translator
/// would only count it. The IPv6 listener is optional (IPv6 may be off in
/// the namespace) and not checked.
///
/// # Errors
/// The first port that cannot be bound, with the reason.
pub(crate) fn check_ns_ports(ns: &NsThread, config: &Config) -> Result<(), Error> {
    let spec = &config.fwd.tcp_out;
    if spec.mode() != FwdMode::Ports {
        return Ok(());
    }
    let ports: Vec<u16> = spec.ports().collect();
    let taken = ns.run(move || {
        ports.into_iter().find_map(|port| {
            let a = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            probe(Proto::Tcp, a).err().map(|e| (port, e))
        })
    })?;
    match taken {
        Some((port, e)) => Err(Error::sys(
            format!("-T: TCP port {port} cannot be bound in the namespace (127.0.0.1)"),
            e,
        )),
        None => Ok(()),
    }
}

/// Bind (and release) a socket to `a`, as a forward's listener will.
fn probe(proto: Proto, a: SocketAddr) -> Result<(), Errno> {
    let fam = if a.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let ty = if proto == Proto::Tcp {
        SocketType::STREAM
    } else {
        SocketType::DGRAM
    };
    let fd = socket_with(fam, ty, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    if a.is_ipv6() {
        sockopt::set_ipv6_v6only(&fd, true)?;
    }
    match bind(&fd, &a) {
        // No IPv6 on the host: the translator skips that family too.
        Err(Errno::ADDRNOTAVAIL | Errno::AFNOSUPPORT) if a.is_ipv6() => Ok(()),
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n\
   1: 0100007F:0016 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n";
        let mut s = empty_set();
        parse_proc_net(tcp, Proto::Tcp, &mut s);
        assert!(set_has(&s, 8080));
        assert!(!set_has(&s, 22));
        let udp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  10: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0 0\n\
  11: 00000000000000000000000001000000:A000 00000000000000000000000001000000:0035 01 00000000:00000000 00:00000000 00000000     0        0 4 2 0 0\n";
        let mut s = empty_set();
        parse_proc_net(udp6, Proto::Udp, &mut s);
        assert!(set_has(&s, 53));
        assert!(!set_has(&s, 0xA000));
        // Garbage is skipped.
        parse_proc_net("x\n0: zz:zz 0A\n\n", Proto::Tcp, &mut s);
    }
}
