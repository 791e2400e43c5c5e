//! Port forwarding besides the translator: the start-up check of `-T` and
//! `-U` ports, and the scan behind `auto` forwarding in all four
//! directions.
//!
//! # `-T` and `-U`
//! The translator does both, in the event loop: their sockets are made
//! inside the namespace (on the [`NsThread`], the executor's
//! `NsSockets`) on its loopback. What a `-T` listener accepts is
//! spliced (`splice(2)` through pipes) to a socket connected to the host's
//! loopback, as a flow of the TCP table (see `passt_core::tcp`); a
//! datagram a `-U` socket receives goes to the host's loopback from a host
//! socket of its own per sender, whose replies go back to that sender, as
//! a flow of the UDP table with its idle timeout and eviction (see
//! `passt_core::udp`), moved through the executor's held buffer: no
//! thread, no allocation per datagram or per sender. Here only
//! [`check_ns_ports`] (a port of a port list that cannot be bound is an
//! error at start-up) and, for `-T auto`/`-U auto`, the scan that opens
//! and closes them ([`Translator::set_auto_out_port`]).
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
//! - `-T auto`/`-U auto`: the namespace sockets of port `P` are open while
//!   its target `T` is bound on the host (asked again each scan while none
//!   is open, so a port taken in the namespace is retried); closing a `-U`
//!   port ends its flows.
//!
//! Ports bound with a spec of ports (not `auto`, not `all`) that cannot be
//! bound are an error at start-up, naming the port.

use core::time::Duration;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use passt_core::config::ports::{FwdMode, FwdSpec};
use passt_core::config::Config;
use passt_core::time::Instant;
use passt_core::{Proto, Translator};
use rustix::io::Errno;
use rustix::net::{bind, socket_with, sockopt, AddressFamily, SocketFlags, SocketType};

use crate::netns::NsThread;
use crate::{debug, Error};

/// How often bound ports are scanned for `auto` forwarding.
pub(crate) const SCAN_EVERY: Duration = Duration::from_secs(1);

/// A set of ports.
type PortSet = Box<[u64; 1024]>;

fn empty_set() -> PortSet {
    Box::new([0u64; 1024])
}

fn set_del(s: &mut PortSet, p: u16) {
    s[usize::from(p >> 6)] &= !(1 << (p & 63));
}

/// Room to read a `/proc/net` table in, a piece at a time (its lines are
/// about 150 bytes).
const READ_BUF: usize = 16 * 1024;

/// Index of a protocol's set in a pair of them.
fn pi(proto: Proto) -> usize {
    usize::from(proto != Proto::Tcp)
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

    /// Ports bound, into `set`, read from the start of each file a piece
    /// at a time through `buf` (a table of any size, no allocation).
    fn scan(&mut self, proto: Proto, buf: &mut [u8], set: &mut PortSet) {
        set.fill(0);
        for f in &mut self.files {
            if f.seek(SeekFrom::Start(0)).is_ok() {
                scan_lines(f, buf, |line, n| {
                    // The first line is the header.
                    if n > 0 {
                        parse_line(line, proto, set);
                    }
                });
            }
        }
    }
}

/// Feed each line of what `r` gives to `f` with its number, read through
/// `buf`; a line longer than `buf` is skipped, a last line without a
/// newline is fed too.
fn scan_lines(r: &mut impl Read, buf: &mut [u8], mut f: impl FnMut(&[u8], usize)) {
    let (mut have, mut n, mut skipping) = (0, 0, false);
    loop {
        let got = match r.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(got) => got,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        have += got;
        let mut start = 0;
        while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
            if !skipping {
                f(&buf[start..start + nl], n);
            }
            skipping = false;
            n += 1;
            start += nl + 1;
        }
        buf.copy_within(start..have, 0);
        have -= start;
        if have == buf.len() {
            // No newline in a whole buffer: drop that line.
            have = 0;
            skipping = true;
        }
    }
    if have > 0 && !skipping {
        f(&buf[..have], n);
    }
}

/// Add the ports bound in `text`, a whole `/proc/net` table (see
/// [`parse_line`]), to `set`.
#[cfg(test)]
fn parse_proc_net(text: &str, proto: Proto, set: &mut PortSet) {
    for line in text.lines().skip(1) {
        parse_line(line.as_bytes(), proto, set);
    }
}

/// Add the port bound in `line`, one line of a `/proc/net/{tcp,udp}[6]`
/// table, to `set`: the local port of a TCP socket in state `0A` (listen),
/// of a UDP socket in state `07` (unconnected).
fn parse_line(line: &[u8], proto: Proto, set: &mut PortSet) {
    let want = if proto == Proto::Tcp { "0A" } else { "07" };
    let Ok(line) = core::str::from_utf8(line) else {
        return;
    };
    let mut f = line.split_whitespace();
    let (Some(_), Some(local), Some(_), Some(state)) = (f.next(), f.next(), f.next(), f.next())
    else {
        return;
    };
    if state != want {
        return;
    }
    let Some((_, port)) = local.rsplit_once(':') else {
        return;
    };
    if let Ok(p) = u16::from_str_radix(port, 16) {
        set_add(set, p);
    }
}

/// Forwarding state that lives beside the translator in the event loop.
pub(crate) struct Forwarder {
    tcp_in: FwdSpec,
    udp_in: FwdSpec,
    tcp_out: FwdSpec,
    udp_out: FwdSpec,
    /// `-T auto`/`-U auto` ports whose namespace sockets the translator
    /// was asked to open (TCP, UDP).
    out_on: [PortSet; 2],
    /// Host ports opened through [`Translator::set_auto_port`] (TCP, UDP).
    in_on: [PortSet; 2],
    /// Ports found bound by the current scan.
    bound: PortSet,
    ns_tcp: ProcFiles,
    ns_udp: ProcFiles,
    host_tcp: ProcFiles,
    host_udp: ProcFiles,
    next_scan: Instant,
    /// Where `/proc/net` tables are read (allocated once).
    buf: Box<[u8]>,
}

impl Forwarder {
    /// Prepare the `auto` scans (the static `-T` and `-U` sockets are the
    /// translator's, opened with `-t`'s and `-u`'s).
    ///
    /// # Errors
    /// If the namespace's `/proc/net` files cannot be opened there.
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
        Ok(Forwarder {
            tcp_in: f.tcp_in.clone(),
            udp_in: f.udp_in.clone(),
            tcp_out: f.tcp_out.clone(),
            udp_out: f.udp_out.clone(),
            out_on: [empty_set(), empty_set()],
            in_on: [empty_set(), empty_set()],
            bound: empty_set(),
            ns_tcp,
            ns_udp,
            host_tcp,
            host_udp,
            next_scan: now,
            buf: vec![0; READ_BUF].into_boxed_slice(),
        })
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
        files.scan(proto, &mut self.buf, &mut self.bound);
        let spec = if proto == Proto::Tcp {
            &self.tcp_in
        } else {
            &self.udp_in
        };
        let out_spec = if proto == Proto::Tcp {
            &self.tcp_out
        } else {
            &self.udp_out
        };
        let (in_on, out_on) = (&mut self.in_on[pi(proto)], &self.out_on[pi(proto)]);
        let mut queued = false;
        for port in spec.ports() {
            let Some((target, _)) = spec.lookup(port) else {
                continue;
            };
            let ours = out_has(out_spec, out_on, target);
            let want = set_has(&self.bound, target) && !ours;
            let have = set_has(in_on, port);
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
                    set_add(in_on, port);
                } else {
                    set_del(in_on, port);
                }
            }
        }
        queued
    }

    /// `-T auto`/`-U auto`: namespace sockets for what the host binds.
    /// Returns whether the translator queued operations.
    fn scan_out(&mut self, proto: Proto, t: &mut Translator) -> bool {
        let files = if proto == Proto::Tcp {
            &mut self.host_tcp
        } else {
            &mut self.host_udp
        };
        files.scan(proto, &mut self.buf, &mut self.bound);
        let (spec, in_spec) = if proto == Proto::Tcp {
            (&self.tcp_out, &self.tcp_in)
        } else {
            (&self.udp_out, &self.udp_in)
        };
        let static_in = in_spec.mode() != FwdMode::Auto;
        let (in_on, out_on) = (&self.in_on[pi(proto)], &mut self.out_on[pi(proto)]);
        let mut queued = false;
        for port in spec.ports() {
            let Some((target, _)) = spec.lookup(port) else {
                continue;
            };
            let ours = set_has(in_on, target) || (static_in && in_spec.is_forwarded(target));
            let want = set_has(&self.bound, target) && !ours;
            queued |= scan_out_port(out_on, t, proto, port, target, want);
        }
        queued
    }
}

/// Whether namespace port `port` is forwarded to the host by us (a `-T`
/// listener or a `-U` socket: `spec`, or `out_on` for `auto`), so that `-t
/// auto`/`-u auto` leave it alone.
fn out_has(spec: &FwdSpec, out_on: &PortSet, port: u16) -> bool {
    match spec.mode() {
        FwdMode::Ports | FwdMode::All => spec.is_forwarded(port),
        FwdMode::Auto => set_has(out_on, port),
        FwdMode::None => false,
    }
}

/// `-T auto`/`-U auto` for namespace port `port` (target `target`): have
/// its sockets open if `want`, else closed (`out_on`: the ports open).
/// Returns whether queued.
fn scan_out_port(
    out_on: &mut PortSet,
    t: &mut Translator,
    proto: Proto,
    port: u16,
    target: u16,
    want: bool,
) -> bool {
    let have = set_has(out_on, port);
    let listening = match proto {
        Proto::Tcp => t.tcp_out_listening(port),
        _ => t.udp_out_listening(port),
    };
    if want && !(have && listening) {
        // New, or every socket failed (taken in the namespace): (re)open.
        if !have {
            debug!("{proto:?} port {target} bound on the host: forwarding namespace port {port}");
            set_add(out_on, port);
        }
        t.set_auto_out_port(proto, port, true)
    } else if !want && have {
        debug!("{proto:?} port {target} released on the host: namespace port {port} closed");
        set_del(out_on, port);
        t.set_auto_out_port(proto, port, false)
    } else {
        false
    }
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
                    if let Err(e) = probe(proto, a, config.outbound.freebind) {
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

/// Check that the namespace ports of `-T` and `-U` port lists (`-T 8080`,
/// `-U 53`) are free on its IPv4 loopback, before the translator's sockets
/// are opened there: a taken port is an error naming it, where the
/// translator would only count it. The IPv6 socket is optional (IPv6 may
/// be off in the namespace) and not checked.
///
/// # Errors
/// The first port that cannot be bound, with the reason.
pub(crate) fn check_ns_ports(ns: &NsThread, config: &Config) -> Result<(), Error> {
    for (proto, spec, opt) in [
        (Proto::Tcp, &config.fwd.tcp_out, 'T'),
        (Proto::Udp, &config.fwd.udp_out, 'U'),
    ] {
        if spec.mode() != FwdMode::Ports {
            continue;
        }
        let ports: Vec<u16> = spec.ports().collect();
        let taken = ns.run(move || {
            ports.into_iter().find_map(|port| {
                let a = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                probe(proto, a, false).err().map(|e| (port, e))
            })
        })?;
        if let Some((port, e)) = taken {
            return Err(Error::sys(
                format!(
                    "-{opt}: {proto:?} port {port} cannot be bound in the namespace (127.0.0.1)"
                ),
                e,
            ));
        }
    }
    Ok(())
}

/// Bind (and release) a socket to `a`, as a forward's listener will
/// (with `IP_FREEBIND` for `freebind`).
fn probe(proto: Proto, a: SocketAddr, freebind: bool) -> Result<(), Errno> {
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
    // `--freebind`: as the listener will be (`IP_FREEBIND`, ip(7)).
    if freebind && a.is_ipv6() {
        sockopt::set_ipv6_freebind(&fd, true)?;
    } else if freebind {
        sockopt::set_ip_freebind(&fd, true)?;
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

    #[test]
    fn lines_are_read_through_a_small_buffer() {
        let text = b"header\nline one\n0123456789abcdef too long\nlast";
        let mut buf = [0u8; 12];
        let mut got = Vec::new();
        scan_lines(&mut &text[..], &mut buf, |l, n| {
            got.push((n, String::from_utf8(l.to_vec()).unwrap()));
        });
        // The line longer than the buffer is skipped whole.
        assert_eq!(
            got,
            [
                (0, "header".into()),
                (1, "line one".into()),
                (3, "last".into())
            ]
        );
    }
}
