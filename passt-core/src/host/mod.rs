//! The drivers' host side (feature `host`): everything `passt` and `pasta`
//! do besides translating, apart from the sans-IO modules of the crate
//! (which never import from here), and the host's network configuration
//! as they read it at start-up.
//!
//! Unlike the rest of the crate this module does I/O; its few system calls
//! without a safe rustix wrapper are passt-sys's (a dependency of this
//! feature: the crate stays `#![forbid(unsafe_code)]`).
//!
//! | module | what |
//! |---|---|
//! | [`exec`], [`exec_dgram`], [`splice`] | the socket executor: the translator's operations on host sockets |
//! | [`options`] | the command line of both programs (GNU `getopt_long` syntax) |
//! | [`log`], [`syslog`] | messages: levels, standard error, `--log-file`, the system log; the `error!` ... `trace!` macros |
//! | [`daemon`] | going to the background, the PID file, whom the sandbox makes the process |
//! | [`error`] | the drivers' fatal error |
//! | [`clock`] | the drivers' clock (`CLOCK_MONOTONIC`) |
//! | [`conf`] | the configuration socket (`-c/--conf-path`): run-time forwarding changes |
//! | [`limits`] | the descriptor limit, rate limits, fixed log lines |
//! | [`pcap`] | the `--pcap` capture file |
//! | [`setup`] | the configuration-building steps both drivers take |
//! | [`driver`] | the shared steps of the drivers' event loops: setup, wait, timers, idle trimming, events to the log |
//! | this module, [`netlink`], [`resolv`], [`defaults`] | the host's network configuration (below) |
//!
//! The layering, with no cycle: `limits` and `syslog` use nothing here
//! but `limits`; `log` uses them and `clock`; `error` uses `log` (for the program's
//! style); `daemon` uses `error`, `log` and `options`; `options` and
//! `clock` use only the sans-IO crate; `setup` uses `options`, `defaults`
//! and this module; `driver` uses `clock`, `error`, `exec`, `limits`,
//! `log` and `pcap`, and only `conf` uses it; `conf` uses `clock`,
//! `driver`, `error`, `exec` and `log`; the executor uses only `splice`
//! and passt-sys.
//!
//! # The host's network configuration
//!
//! It is read once, before the [`crate::Translator`] exists, and its result
//! feeds [`crate::config::Config`]: rtnetlink to the kernel and
//! `/etc/resolv.conf`.
//!
//! ## Theory of operation
//!
//! 1. [`read_host_net`] dumps links, routes and addresses over rtnetlink
//!    (RFC 3549 §2.3, rtnetlink(7); codec in [`netlink`]) and picks, per IP
//!    family, the *template interface* passt copies its guest's addresses
//!    from: the one named by the caller (`-i/--interface`,
//!    `--outbound-if4`, `--outbound-if6`), else the one carrying the default
//!    route of the lowest metric in the main table, else (as the original
//!    does) the first interface with any other non-link-local route. Routes
//!    that are not unicast (`unreachable default`...), outside the main table
//!    or through a loopback device do not count. A family without such an
//!    interface is `None`: that is an offline host or disabled IPv6, not an
//!    error.
//! 2. [`resolv::ResolvConf`] parses `/etc/resolv.conf`.
//! 3. [`defaults::guest_defaults`] turns both, with the command-line
//!    overrides, into the guest-side [`crate::config::Ip4Config`] and
//!    [`crate::config::Ip6Config`], as the original passt does (its man page,
//!    options `-a`, `-n`, `-g`, `-D`, `--map-host-loopback`, `--no-map-gw`,
//!    `--dns-forward`, and the "local mode" of its NOTES).
//!
//! ## Choices
//!
//! - Among default routes the lowest metric wins, ties going to the first
//!   the kernel lists. The original takes the first listed, which is the same
//!   thing: the kernel keeps routes to one prefix sorted by metric.
//! - For a multipath default route, the first next hop of the highest weight
//!   gives both interface and gateway.
//! - Deprecated addresses are left out, as the original does, and so are
//!   DAD-failed ones; tentative ones are kept. IPv4 uses `IFA_LOCAL` (the local end of a
//!   point-to-point link), IPv6 `IFA_LOCAL` when present, else `IFA_ADDRESS`.
//! - The whole read is tried up to three times when the kernel reports a dump
//!   was interrupted by a concurrent change (`NLM_F_DUMP_INTR`).

pub mod clock;
pub mod conf;
pub mod daemon;
pub mod defaults;
pub mod driver;
pub mod error;
pub mod exec;
pub mod exec_dgram;
pub mod limits;
pub mod log;
pub mod netlink;
pub mod options;
pub mod pcap;
pub mod resolv;
pub mod setup;
mod socket;
pub mod splice;
pub mod syslog;

#[cfg(test)]
mod fixtures;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[cfg(test)]
use netlink::NLMSG_HDR_LEN;
use netlink::{family, ifa, ifla, msg_type, rt, AddrRepr, LinkRepr, NlMsgRepr, RouteRepr};
use socket::RtNetlink;

use crate::addr::MacAddr;
use crate::wire::WireError;

/// Most links read from the kernel; more is an error.
pub const MAX_LINKS: usize = 1 << 16;
/// Most default routes considered per family; further ones are ignored.
pub const MAX_DEFAULT_ROUTES: usize = 1024;
/// Most addresses kept per family on the template interface; further ones
/// are ignored.
pub const MAX_ADDRS: usize = 1024;

/// Why the host's configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A system call on the netlink socket failed.
    #[error("netlink socket: {op} failed")]
    Socket {
        /// The system call.
        op: &'static str,
        /// What it returned.
        #[source]
        source: std::io::Error,
    },
    /// The kernel answered a request with an error.
    #[error("netlink {request} request refused by the kernel")]
    Kernel {
        /// The request ("links", "IPv4 routes"...).
        request: &'static str,
        /// The errno.
        #[source]
        source: std::io::Error,
    },
    /// The kernel's reply did not parse.
    #[error("netlink {request} reply malformed")]
    Malformed {
        /// The request.
        request: &'static str,
        /// What was wrong.
        #[source]
        source: WireError,
    },
    /// The dump kept being interrupted by concurrent changes.
    #[error("netlink {request} dump interrupted by concurrent changes")]
    Interrupted {
        /// The request.
        request: &'static str,
    },
    /// A reply beyond our limits (datagrams, links).
    #[error("netlink {request} reply too long")]
    TooLong {
        /// The request.
        request: &'static str,
    },
    /// An interface named by the caller does not exist.
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
}

/// A network interface of the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLink {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// MTU (0 if the kernel gave none).
    pub mtu: u32,
    /// Hardware address, if it is a 6-byte one.
    pub mac: Option<MacAddr>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// A loopback device (`IFF_LOOPBACK`).
    pub loopback: bool,
}

impl HostLink {
    fn from_repr(l: &LinkRepr<'_>) -> Self {
        HostLink {
            index: l.index,
            name: l.name.unwrap_or_default().to_owned(),
            mtu: l.mtu.unwrap_or(0),
            mac: l.mac(),
            up: l.flags & ifla::F_UP != 0,
            loopback: l.flags & ifla::F_LOOPBACK != 0,
        }
    }
}

/// An address with its prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostAddr<A> {
    /// The address.
    pub addr: A,
    /// Prefix length of its subnet.
    pub prefix_len: u8,
}

/// How the template interface of a family was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Named by the caller.
    Named,
    /// It carries the default route of the lowest metric.
    DefaultRoute,
    /// No default route: the first interface with any route.
    AnyRoute,
}

/// IPv4 on the template interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostIp4 {
    /// The interface.
    pub link: HostLink,
    /// How it was chosen.
    pub selection: Selection,
    /// Gateway of its default route of the lowest metric, if any.
    pub gateway: Option<Ipv4Addr>,
    /// Metric of that route.
    pub metric: Option<u32>,
    /// Its addresses, in the kernel's order.
    pub addrs: Vec<HostAddr<Ipv4Addr>>,
}

impl HostIp4 {
    /// The address the original passt copies: the one with the longest
    /// prefix, the first listed among equals.
    pub fn primary(&self) -> Option<HostAddr<Ipv4Addr>> {
        longest_prefix(&self.addrs)
    }
}

/// IPv6 on the template interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostIp6 {
    /// The interface.
    pub link: HostLink,
    /// How it was chosen.
    pub selection: Selection,
    /// Gateway of its default route of the lowest metric, if any (usually a
    /// link-local address, on [`HostIp6::link`]).
    pub gateway: Option<Ipv6Addr>,
    /// Metric of that route.
    pub metric: Option<u32>,
    /// Global-scope addresses (global unicast and unique-local), in the
    /// kernel's order.
    pub addrs: Vec<HostAddr<Ipv6Addr>>,
    /// Link-local addresses, in the kernel's order.
    pub link_local: Vec<HostAddr<Ipv6Addr>>,
}

impl HostIp6 {
    /// The global address the original passt copies: the longest prefix, the
    /// first listed among equals.
    pub fn primary(&self) -> Option<HostAddr<Ipv6Addr>> {
        longest_prefix(&self.addrs)
    }

    /// The link-local address chosen the same way.
    pub fn primary_link_local(&self) -> Option<HostAddr<Ipv6Addr>> {
        longest_prefix(&self.link_local)
    }
}

fn longest_prefix<A: Copy>(addrs: &[HostAddr<A>]) -> Option<HostAddr<A>> {
    let mut best: Option<HostAddr<A>> = None;
    for a in addrs {
        if best.map_or(true, |b| a.prefix_len > b.prefix_len) {
            best = Some(*a);
        }
    }
    best
}

/// What was read of the host's network configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostNet {
    /// IPv4, or `None` without a usable interface.
    pub ip4: Option<HostIp4>,
    /// IPv6, or `None` without a usable interface.
    pub ip6: Option<HostIp6>,
}

/// Interfaces named on the command line instead of the default route's.
///
/// `-i/--interface NAME` sets both; `--outbound-if4` / `--outbound-if6` set
/// one each, unless `-i` was given (the original's precedence).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfaceChoice<'a> {
    /// Template interface for IPv4.
    pub ip4: Option<&'a str>,
    /// Template interface for IPv6.
    pub ip6: Option<&'a str>,
}

/// Read the host's interfaces, routes and addresses over rtnetlink and pick
/// the template interface of each family (see the module docs).
///
/// Reads the network namespace of the calling thread.
///
/// # Errors
/// [`HostError::NoSuchInterface`] if a named interface does not exist; the
/// other [`HostError`]s if the socket or the kernel fail.
pub fn read_host_net(choice: &InterfaceChoice<'_>) -> Result<HostNet, HostError> {
    let mut nl = RtNetlink::open()?;
    let mut attempts = 0;
    loop {
        match read_with(&mut nl, choice) {
            Err(HostError::Interrupted { .. }) if attempts < 2 => attempts += 1,
            r => return r,
        }
    }
}

fn read_with(nl: &mut RtNetlink, choice: &InterfaceChoice<'_>) -> Result<HostNet, HostError> {
    let links = dump_links(nl)?;
    let named4 = named_index(&links, choice.ip4)?;
    let named6 = named_index(&links, choice.ip6)?;

    let mut routes4 = RouteSet::default();
    dump_family(
        nl,
        "IPv4 routes",
        msg_type::GETROUTE,
        family::INET,
        &mut |m| routes4.offer_msg(m, &links, family::INET),
    )?;
    let mut routes6 = RouteSet::default();
    dump_family(
        nl,
        "IPv6 routes",
        msg_type::GETROUTE,
        family::INET6,
        &mut |m| routes6.offer_msg(m, &links, family::INET6),
    )?;

    let ip4 = match routes4.choose(named4) {
        None => None,
        Some(pick) => {
            let mut addrs = Vec::new();
            dump_family(
                nl,
                "IPv4 addresses",
                msg_type::GETADDR,
                family::INET,
                &mut |m| collect_addr(m, pick.ifindex, &mut addrs, "IPv4 addresses"),
            )?;
            Some(ip4_view(&links, &pick, &addrs))
        }
    };
    let ip6 = match routes6.choose(named6) {
        None => None,
        Some(pick) => {
            let mut addrs = Vec::new();
            dump_family(
                nl,
                "IPv6 addresses",
                msg_type::GETADDR,
                family::INET6,
                &mut |m| collect_addr(m, pick.ifindex, &mut addrs, "IPv6 addresses"),
            )?;
            Some(ip6_view(&links, &pick, &addrs))
        }
    };
    Ok(HostNet { ip4, ip6 })
}

fn dump_links(nl: &mut RtNetlink) -> Result<Vec<HostLink>, HostError> {
    let mut links = Vec::new();
    nl.dump("links", msg_type::GETLINK, family::UNSPEC, &mut |m| {
        collect_link(m, &mut links)
    })?;
    Ok(links)
}

pub(crate) fn collect_link(m: &NlMsgRepr<'_>, links: &mut Vec<HostLink>) -> Result<(), HostError> {
    if m.msg_type != msg_type::NEWLINK {
        return Ok(());
    }
    let l = LinkRepr::parse(m.payload).map_err(|source| HostError::Malformed {
        request: "links",
        source,
    })?;
    if links.len() >= MAX_LINKS {
        return Err(HostError::TooLong { request: "links" });
    }
    links.push(HostLink::from_repr(&l));
    Ok(())
}

/// Dump one family; a kernel without the family (`EAFNOSUPPORT`) gives an
/// empty reply.
fn dump_family(
    nl: &mut RtNetlink,
    request: &'static str,
    req_type: u16,
    fam: u8,
    on_msg: &mut dyn FnMut(&NlMsgRepr<'_>) -> Result<(), HostError>,
) -> Result<(), HostError> {
    match nl.dump(request, req_type, fam, on_msg) {
        Err(HostError::Kernel { source, .. })
            if source.raw_os_error() == Some(rustix::io::Errno::AFNOSUPPORT.raw_os_error()) =>
        {
            Ok(())
        }
        r => r,
    }
}

fn named_index(links: &[HostLink], name: Option<&str>) -> Result<Option<u32>, HostError> {
    let Some(name) = name else { return Ok(None) };
    match links.iter().find(|l| l.name == name) {
        Some(l) => Ok(Some(l.index)),
        None => Err(HostError::NoSuchInterface(name.to_owned())),
    }
}

/// A default route, reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DefaultRoute {
    pub(crate) ifindex: u32,
    pub(crate) gateway: Option<IpAddr>,
    pub(crate) metric: u32,
}

/// The routes of one family that matter for choosing a template interface:
/// default routes, and the first interface with any other route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RouteSet {
    pub(crate) defaults: Vec<DefaultRoute>,
    pub(crate) first_any: Option<u32>,
}

/// The interface picked for a family, and its default route if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pick {
    pub(crate) ifindex: u32,
    pub(crate) selection: Selection,
    pub(crate) default: Option<DefaultRoute>,
}

impl RouteSet {
    /// Take in one message of a route dump.
    pub(crate) fn offer_msg(
        &mut self,
        m: &NlMsgRepr<'_>,
        links: &[HostLink],
        fam: u8,
    ) -> Result<(), HostError> {
        if m.msg_type != msg_type::NEWROUTE {
            return Ok(());
        }
        let request = if fam == family::INET {
            "IPv4 routes"
        } else {
            "IPv6 routes"
        };
        let r = match RouteRepr::parse(m.payload) {
            Ok(r) => r,
            // Another family (the kernel filters by family; be safe).
            Err(WireError::Unsupported) => return Ok(()),
            Err(source) => return Err(HostError::Malformed { request, source }),
        };
        if r.family == fam {
            self.offer(&r, links);
        }
        Ok(())
    }

    /// Take in one route.
    pub(crate) fn offer(&mut self, r: &RouteRepr, links: &[HostLink]) {
        if r.table != rt::TABLE_MAIN || r.route_type != rt::TYPE_UNICAST {
            return;
        }
        let (Some(ifindex), gateway) = r.via() else {
            return;
        };
        let wanted = if r.dst_len == 0 {
            self.defaults.len() < MAX_DEFAULT_ROUTES
        } else {
            self.first_any.is_none() && !is_link_local_prefix(r)
        };
        // Most routes of a large table end here, before the link lookup.
        if !wanted || ifindex == 0 || links.iter().any(|l| l.index == ifindex && l.loopback) {
            return;
        }
        if r.dst_len == 0 {
            self.defaults.push(DefaultRoute {
                ifindex,
                gateway,
                metric: r.priority,
            });
        } else {
            self.first_any = Some(ifindex);
        }
    }

    /// The default route of the lowest metric (the first among equals),
    /// among those through `only` if given.
    fn best_default(&self, only: Option<u32>) -> Option<DefaultRoute> {
        let mut best: Option<DefaultRoute> = None;
        for d in &self.defaults {
            if only.is_some_and(|i| i != d.ifindex) {
                continue;
            }
            if best.map_or(true, |b| d.metric < b.metric) {
                best = Some(*d);
            }
        }
        best
    }

    /// Pick the template interface: the named one, else the default route's,
    /// else the first with any route.
    pub(crate) fn choose(&self, named: Option<u32>) -> Option<Pick> {
        if let Some(ifindex) = named {
            return Some(Pick {
                ifindex,
                selection: Selection::Named,
                default: self.best_default(Some(ifindex)),
            });
        }
        if let Some(d) = self.best_default(None) {
            return Some(Pick {
                ifindex: d.ifindex,
                selection: Selection::DefaultRoute,
                default: Some(d),
            });
        }
        self.first_any.map(|ifindex| Pick {
            ifindex,
            selection: Selection::AnyRoute,
            default: None,
        })
    }
}

/// A route to 169.254.0.0/16 or fe80::/10 (or inside them).
fn is_link_local_prefix(r: &RouteRepr) -> bool {
    match r.dst {
        Some(IpAddr::V4(a)) => r.dst_len >= 16 && a.octets()[..2] == [169, 254],
        Some(IpAddr::V6(a)) => r.dst_len >= 10 && a.segments()[0] & 0xffc0 == 0xfe80,
        None => false,
    }
}

/// Keep the usable addresses of interface `ifindex` from an address dump.
pub(crate) fn collect_addr(
    m: &NlMsgRepr<'_>,
    ifindex: u32,
    addrs: &mut Vec<AddrRepr>,
    request: &'static str,
) -> Result<(), HostError> {
    if m.msg_type != msg_type::NEWADDR {
        return Ok(());
    }
    let a = match AddrRepr::parse(m.payload) {
        Ok(a) => a,
        Err(WireError::Unsupported) => return Ok(()),
        Err(source) => return Err(HostError::Malformed { request, source }),
    };
    let unusable = a.flags & (ifa::F_DEPRECATED | ifa::F_DADFAILED) != 0;
    if a.index == ifindex && !unusable && addrs.len() < MAX_ADDRS {
        addrs.push(a);
    }
    Ok(())
}

fn link_of(links: &[HostLink], ifindex: u32) -> HostLink {
    links
        .iter()
        .find(|l| l.index == ifindex)
        .cloned()
        .unwrap_or(HostLink {
            index: ifindex,
            name: String::new(),
            mtu: 0,
            mac: None,
            up: false,
            loopback: false,
        })
}

pub(crate) fn ip4_view(links: &[HostLink], pick: &Pick, addrs: &[AddrRepr]) -> HostIp4 {
    let addrs = addrs
        .iter()
        .filter(|a| a.index == pick.ifindex)
        .filter_map(|a| match a.own() {
            Some(IpAddr::V4(addr)) => Some(HostAddr {
                addr,
                prefix_len: a.prefix_len,
            }),
            _ => None,
        })
        .collect();
    HostIp4 {
        link: link_of(links, pick.ifindex),
        selection: pick.selection,
        gateway: pick.default.and_then(|d| match d.gateway {
            Some(IpAddr::V4(g)) => Some(g),
            _ => None,
        }),
        metric: pick.default.map(|d| d.metric),
        addrs,
    }
}

pub(crate) fn ip6_view(links: &[HostLink], pick: &Pick, addrs: &[AddrRepr]) -> HostIp6 {
    let mut global = Vec::new();
    let mut link_local = Vec::new();
    for a in addrs.iter().filter(|a| a.index == pick.ifindex) {
        let Some(IpAddr::V6(addr)) = a.own() else {
            continue;
        };
        let entry = HostAddr {
            addr,
            prefix_len: a.prefix_len,
        };
        match a.scope {
            rt::SCOPE_UNIVERSE => global.push(entry),
            rt::SCOPE_LINK => link_local.push(entry),
            _ => {}
        }
    }
    HostIp6 {
        link: link_of(links, pick.ifindex),
        selection: pick.selection,
        gateway: pick.default.and_then(|d| match d.gateway {
            Some(IpAddr::V6(g)) => Some(g),
            _ => None,
        }),
        metric: pick.default.map(|d| d.metric),
        addrs: global,
        link_local,
    }
}

#[cfg(test)]
mod tests {
    use super::netlink::{
        flags, IfAddrMsgHeader, IfInfoMsgHeader, NlMsgIter, RtAttrIter, RtAttrRepr, RtMsgHeader,
    };
    use super::socket::{handle_datagram, Step};
    use super::*;
    use core::mem::size_of;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Every message of a datagram, as (offset, bytes).
    fn messages(d: &[u8]) -> Vec<(usize, Vec<u8>)> {
        let mut out = Vec::new();
        let mut off = 0;
        for m in NlMsgIter::new(d) {
            let m = m.unwrap();
            let mut buf = vec![0; m.buffer_len()];
            m.emit(&mut buf).unwrap();
            let len = NLMSG_HDR_LEN + m.payload.len();
            out.push((off, d[off..off + len].to_vec()));
            off += buf.len();
        }
        out
    }

    /// Run captured datagrams through the reply loop with `seq`.
    fn feed(
        datagrams: &[&str],
        seq: u32,
        on_msg: &mut dyn FnMut(&NlMsgRepr<'_>) -> Result<(), HostError>,
    ) -> Step {
        let mut step = Step::More;
        for d in datagrams {
            step = handle_datagram("test", seq, &unhex(d), on_msg).unwrap();
        }
        step
    }

    fn fixture_links() -> Vec<HostLink> {
        let mut links = Vec::new();
        let step = feed(&[fixtures::LINKS, fixtures::LINKS_DONE], 1, &mut |m| {
            collect_link(m, &mut links)
        });
        assert_eq!(step, Step::Done);
        links
    }

    fn hi0() -> HostLink {
        HostLink {
            index: 2,
            name: "hi0".into(),
            mtu: 1400,
            mac: Some(MacAddr([2, 0, 0, 0, 0, 1])),
            up: true,
            loopback: false,
        }
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn captured_dump_gives_the_configured_interface() {
        let links = fixture_links();
        assert_eq!(
            links,
            vec![
                HostLink {
                    index: 1,
                    name: "lo".into(),
                    mtu: 65536,
                    mac: Some(MacAddr([0; 6])),
                    up: false,
                    loopback: true,
                },
                hi0()
            ]
        );
        let mut r4 = RouteSet::default();
        let step = feed(&[fixtures::ROUTES4, fixtures::ROUTES4_DONE], 2, &mut |m| {
            r4.offer_msg(m, &links, family::INET)
        });
        assert_eq!(step, Step::Done);
        let gw4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            r4,
            RouteSet {
                defaults: vec![DefaultRoute {
                    ifindex: 2,
                    gateway: Some(gw4),
                    metric: 100
                }],
                first_any: Some(2),
            }
        );
        let mut r6 = RouteSet::default();
        feed(&[fixtures::ROUTES6, fixtures::ROUTES6_DONE], 3, &mut |m| {
            r6.offer_msg(m, &links, family::INET6)
        });
        let gw6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            r6.defaults,
            [DefaultRoute {
                ifindex: 2,
                gateway: Some(IpAddr::V6(gw6)),
                metric: 1024
            }]
        );
        assert_eq!(r6.first_any, Some(2), "2001:db8::/64, not fe80::/64");

        let pick4 = r4.choose(None).unwrap();
        let mut a4 = Vec::new();
        feed(&[fixtures::ADDRS4, fixtures::ADDRS4_DONE], 4, &mut |m| {
            collect_addr(m, pick4.ifindex, &mut a4, "test")
        });
        assert_eq!(
            ip4_view(&links, &pick4, &a4),
            HostIp4 {
                link: hi0(),
                selection: Selection::DefaultRoute,
                gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
                metric: Some(100),
                addrs: vec![HostAddr {
                    addr: Ipv4Addr::new(192, 0, 2, 2),
                    prefix_len: 24
                }],
            }
        );
        let pick6 = r6.choose(None).unwrap();
        let mut a6 = Vec::new();
        // The last datagram of this dump carries NLMSG_DONE itself.
        let step = feed(&[fixtures::ADDRS6], 5, &mut |m| {
            collect_addr(m, pick6.ifindex, &mut a6, "test")
        });
        assert_eq!(step, Step::Done);
        let v6 = ip6_view(&links, &pick6, &a6);
        assert_eq!(
            v6,
            HostIp6 {
                link: hi0(),
                selection: Selection::DefaultRoute,
                gateway: Some(gw6),
                metric: Some(1024),
                addrs: vec![HostAddr {
                    addr: "2001:db8::2".parse().unwrap(),
                    prefix_len: 64
                }],
                link_local: vec![HostAddr {
                    addr: "fe80::ff:fe00:1".parse().unwrap(),
                    prefix_len: 64
                }],
            }
        );
        // Naming lo picks it with no default route; an unknown name fails.
        assert_eq!(named_index(&links, Some("lo")).unwrap(), Some(1));
        let named = r4.choose(Some(1)).unwrap();
        assert_eq!((named.selection, named.default), (Selection::Named, None));
        assert!(matches!(
            named_index(&links, Some("eth9")),
            Err(HostError::NoSuchInterface(n)) if n == "eth9"
        ));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn captured_multipath_default_route() {
        let links = fixture_links();
        let mut r4 = RouteSet::default();
        feed(&[fixtures::ROUTES4_MULTIPATH], 2, &mut |m| {
            r4.offer_msg(m, &links, family::INET)
        });
        let via = |last| DefaultRoute {
            ifindex: 2,
            gateway: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))),
            metric: if last == 3 { 50 } else { 100 },
        };
        assert_eq!(r4.defaults, [via(3), via(1)]);
        let pick = r4.choose(None).unwrap();
        assert_eq!(pick.default, Some(via(3)), "weight 3 over weight 1");
    }

    #[test]
    fn routes_that_do_not_lead_out_are_ignored() {
        let mut links = vec![hi0()];
        links.push(HostLink {
            index: 1,
            name: "lo".into(),
            mtu: 65536,
            mac: None,
            up: true,
            loopback: true,
        });
        let base = RouteRepr {
            family: family::INET6,
            dst_len: 0,
            table: rt::TABLE_MAIN,
            scope: rt::SCOPE_UNIVERSE,
            route_type: rt::TYPE_UNICAST,
            dst: None,
            gateway: Some(IpAddr::V6("fe80::1".parse().unwrap())),
            oif: Some(2),
            priority: 1024,
            nexthop: None,
        };
        let mut set = RouteSet::default();
        // `unreachable default` (RTN_UNREACHABLE), another table, through
        // lo, without interface, to fe80::/64.
        set.offer(
            &RouteRepr {
                route_type: 7,
                ..base
            },
            &links,
        );
        set.offer(&RouteRepr { table: 100, ..base }, &links);
        set.offer(
            &RouteRepr {
                oif: Some(1),
                ..base
            },
            &links,
        );
        set.offer(&RouteRepr { oif: None, ..base }, &links);
        let ll = RouteRepr {
            dst_len: 64,
            dst: Some(IpAddr::V6("fe80::".parse().unwrap())),
            gateway: None,
            ..base
        };
        set.offer(&ll, &links);
        assert_eq!(set, RouteSet::default());
        assert_eq!(set.choose(None), None);
        // Equal metrics: the first listed wins.
        set.offer(&base, &links);
        set.offer(
            &RouteRepr {
                oif: Some(3),
                ..base
            },
            &links,
        );
        assert_eq!(set.choose(None).map(|p| p.ifindex), Some(2));
    }

    #[test]
    fn replies_to_other_requests_are_skipped() {
        let mut n = 0;
        let step = feed(&[fixtures::ROUTES4, fixtures::ROUTES4_DONE], 9, &mut |_| {
            n += 1;
            Ok(())
        });
        assert_eq!((step, n), (Step::More, 0));
    }

    #[test]
    fn captured_messages_round_trip() {
        let all = [
            fixtures::LINKS,
            fixtures::LINKS_DONE,
            fixtures::ROUTES4,
            fixtures::ROUTES6,
            fixtures::ADDRS4,
            fixtures::ADDRS6,
            fixtures::ROUTES4_MULTIPATH,
        ];
        for d in all {
            let d = unhex(d);
            let mut out = Vec::new();
            for m in NlMsgIter::new(&d) {
                let m = m.unwrap();
                let mut buf = vec![0xee; m.buffer_len()];
                assert_eq!(m.emit(&mut buf), Ok(buf.len()));
                assert_eq!(
                    m.emit(&mut buf[..m.buffer_len() - 1]),
                    Err(WireError::BufferTooSmall)
                );
                // Attributes after the family header round-trip too.
                let hdr = match m.msg_type {
                    msg_type::NEWLINK => size_of::<IfInfoMsgHeader>(),
                    msg_type::NEWADDR => size_of::<IfAddrMsgHeader>(),
                    msg_type::NEWROUTE => size_of::<RtMsgHeader>(),
                    _ => m.payload.len(),
                };
                let attrs = &m.payload[hdr..];
                let mut re = Vec::new();
                for a in RtAttrIter::new(attrs) {
                    let a = a.unwrap();
                    let mut buf = vec![0xee; a.buffer_len()];
                    a.emit(&mut buf).unwrap();
                    re.extend(buf);
                }
                assert_eq!(re, attrs);
                out.extend(buf);
            }
            assert_eq!(out, d);
        }
    }

    /// Offsets at which a list of attributes may end (padding after the last
    /// one may be missing, in whole or in part).
    fn attr_boundaries(attrs: &[u8]) -> Vec<usize> {
        let mut b = vec![0];
        let mut off = 0;
        let mut rest = attrs;
        while !rest.is_empty() {
            let (a, r) = RtAttrRepr::parse(rest).unwrap();
            off += attrs.len() - off - r.len();
            let pad = a.buffer_len() - 4 - a.data.len();
            b.extend(off - pad..=off);
            rest = r;
        }
        b
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let data = [
            (fixtures::LINKS, size_of::<IfInfoMsgHeader>()),
            (fixtures::ROUTES4, size_of::<RtMsgHeader>()),
            (fixtures::ROUTES6, size_of::<RtMsgHeader>()),
            (fixtures::ROUTES4_MULTIPATH, size_of::<RtMsgHeader>()),
            (fixtures::ADDRS4, size_of::<IfAddrMsgHeader>()),
            (fixtures::ADDRS6, size_of::<IfAddrMsgHeader>()),
        ];
        for (d, hdr_len) in data {
            let d = unhex(d);
            let msgs = messages(&d);
            // Whole datagrams: cut inside a message is malformed, cut at a
            // message boundary is a shorter valid datagram.
            let ends: Vec<usize> = msgs.iter().map(|(o, m)| o + m.len()).collect();
            for n in 0..d.len() {
                let r = handle_datagram("test", 0, &d[..n], &mut |_| Ok(()));
                let at_boundary = n == 0 || ends.contains(&n);
                assert_eq!(r.is_ok(), at_boundary, "cut at {n}");
                if let Err(e) = r {
                    assert!(
                        matches!(
                            e,
                            HostError::Malformed {
                                source: WireError::Truncated,
                                ..
                            }
                        ),
                        "{e:?}"
                    );
                }
            }
            for (_, m) in msgs {
                for n in 0..m.len() {
                    assert_eq!(NlMsgRepr::parse(&m[..n]), Err(WireError::Truncated));
                }
                let (msg, _) = NlMsgRepr::parse(&m).unwrap();
                let p = msg.payload;
                if msg.msg_type == msg_type::DONE {
                    continue;
                }
                let bounds = attr_boundaries(&p[hdr_len..]);
                for n in 0..p.len() {
                    let cut = &p[..n];
                    let results = [
                        LinkRepr::parse(cut).map(|_| ()),
                        RouteRepr::parse(cut).map(|_| ()),
                        AddrRepr::parse(cut).map(|_| ()),
                    ];
                    let r = match msg.msg_type {
                        msg_type::NEWLINK => results[0],
                        msg_type::NEWROUTE => results[1],
                        _ => results[2],
                    };
                    if n < hdr_len || !bounds.contains(&(n - hdr_len)) {
                        assert!(r.is_err(), "payload cut at {n} accepted");
                    }
                }
            }
        }
    }

    /// The payload of the first message of `d` of type `t`, and its offset.
    fn first_of(d: &[u8], t: u16) -> usize {
        let mut off = 0;
        for m in NlMsgIter::new(d) {
            let m = m.unwrap();
            if m.msg_type == t {
                return off + NLMSG_HDR_LEN;
            }
            off += m.buffer_len();
        }
        panic!("no message of type {t}");
    }

    /// Offset in `payload` of the first attribute of `kind` after `hdr_len`.
    fn attr_at(payload: &[u8], hdr_len: usize, kind: u16) -> usize {
        let mut off = hdr_len;
        for a in RtAttrIter::new(&payload[hdr_len..]) {
            let a = a.unwrap();
            if a.kind() == kind {
                return off;
            }
            off += a.buffer_len();
        }
        panic!("no attribute {kind}");
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn malformed_messages_are_refused_with_the_right_error() {
        use super::netlink::rta;
        let d = unhex(fixtures::ROUTES4);
        let start = first_of(&d, msg_type::NEWROUTE);
        let len = 60 - NLMSG_HDR_LEN;
        let route = &d[start..start + len];
        assert!(RouteRepr::parse(route).is_ok());
        let hdr = size_of::<RtMsgHeader>();
        let oif = attr_at(route, hdr, rta::OIF);
        let gw = attr_at(route, hdr, rta::GATEWAY);

        let mutate = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut m = route.to_vec();
            f(&mut m);
            RouteRepr::parse(&m)
        };
        // An OIF of 2 bytes, an attribute shorter than its header, one
        // longer than the message, a gateway of 3 bytes, a /33 destination,
        // an unknown family.
        assert_eq!(mutate(&|m| m[oif] = 6), Err(WireError::BadLength));
        assert_eq!(mutate(&|m| m[oif] = 3), Err(WireError::BadLength));
        assert_eq!(mutate(&|m| m[oif] = 200), Err(WireError::Truncated));
        assert_eq!(mutate(&|m| m[gw] = 7), Err(WireError::BadLength));
        assert_eq!(mutate(&|m| m[1] = 33), Err(WireError::Malformed));
        assert_eq!(mutate(&|m| m[0] = 7), Err(WireError::Unsupported));

        // The nlmsghdr: shorter than itself, longer than the datagram.
        let mut bad = d.clone();
        bad[0] = 15;
        assert_eq!(NlMsgRepr::parse(&bad), Err(WireError::BadLength));
        bad[0] = 0;
        bad[1] = 0x10;
        assert_eq!(NlMsgRepr::parse(&bad), Err(WireError::Truncated));

        // Links: no NUL in the name, index 0, a 17-byte name.
        let d = unhex(fixtures::LINKS);
        let start = first_of(&d, msg_type::NEWLINK);
        let link_len = u32::from_le_bytes(d[start - 16..start - 12].try_into().unwrap()) as usize;
        let link = d[start..start - NLMSG_HDR_LEN + link_len].to_vec();
        let name = attr_at(&link, size_of::<IfInfoMsgHeader>(), ifla::IFNAME);
        assert_eq!(LinkRepr::parse(&link).unwrap().name, Some("lo"));
        let mut m = link.clone();
        m[name + 6] = b'x';
        assert_eq!(LinkRepr::parse(&m), Err(WireError::Malformed));
        let mut m = link.clone();
        m[4..8].fill(0);
        assert_eq!(LinkRepr::parse(&m), Err(WireError::Malformed));
        let mut m = link.clone();
        m[4..8].fill(0xff);
        assert_eq!(LinkRepr::parse(&m), Err(WireError::Malformed));
        let long = RtAttrRepr {
            attr_type: ifla::IFNAME,
            data: b"abcdefghijklmnop\0",
        };
        let mut m = link[..size_of::<IfInfoMsgHeader>()].to_vec();
        let mut buf = vec![0; long.buffer_len()];
        long.emit(&mut buf).unwrap();
        m.extend(buf);
        assert_eq!(LinkRepr::parse(&m), Err(WireError::Malformed));

        // Addresses: an IFA_LOCAL of 16 bytes in an IPv4 message, /33.
        let d = unhex(fixtures::ADDRS4);
        let addr = d[NLMSG_HDR_LEN..].to_vec();
        let local = attr_at(&addr, size_of::<IfAddrMsgHeader>(), ifa::LOCAL);
        let mut m = addr.clone();
        m[local] = 20;
        assert_eq!(AddrRepr::parse(&m), Err(WireError::BadLength));
        let mut m = addr.clone();
        m[1] = 33;
        assert_eq!(AddrRepr::parse(&m), Err(WireError::Malformed));
    }

    /// A datagram of one message of `msg_type` with `payload`, seq 1.
    fn datagram(msg_type: u16, fl: u16, payload: &[u8]) -> Vec<u8> {
        let m = NlMsgRepr {
            msg_type,
            flags: fl,
            seq: 1,
            pid: 0,
            payload,
        };
        let mut buf = vec![0; m.buffer_len()];
        m.emit(&mut buf).unwrap();
        buf
    }

    #[test]
    fn errors_done_and_interrupted_dumps() {
        let mut orig = [0u8; 20];
        orig[..4].copy_from_slice(&(-1i32).to_ne_bytes()); // -EPERM
        let d = datagram(netlink::msg_type::ERROR, 0, &orig);
        let r = handle_datagram("test", 1, &d, &mut |_| Ok(()));
        match r {
            Err(HostError::Kernel { source, .. }) => assert_eq!(source.raw_os_error(), Some(1)),
            other => panic!("{other:?}"),
        }
        // An acknowledgement ends the reply.
        orig[..4].fill(0);
        let d = datagram(netlink::msg_type::ERROR, 0, &orig);
        assert_eq!(
            handle_datagram("test", 1, &d, &mut |_| Ok(())).unwrap(),
            Step::Done
        );
        // A truncated error message.
        let d = datagram(netlink::msg_type::ERROR, 0, &orig[..8]);
        assert!(matches!(
            handle_datagram("test", 1, &d, &mut |_| Ok(())),
            Err(HostError::Malformed {
                source: WireError::Truncated,
                ..
            })
        ));
        // NLMSG_DONE carrying -EINTR... and one carrying 0.
        let d = datagram(
            netlink::msg_type::DONE,
            flags::MULTI,
            &(-4i32).to_ne_bytes(),
        );
        assert!(matches!(
            handle_datagram("test", 1, &d, &mut |_| Ok(())),
            Err(HostError::Kernel { .. })
        ));
        let d = datagram(netlink::msg_type::DONE, flags::MULTI, &0i32.to_ne_bytes());
        assert_eq!(
            handle_datagram("test", 1, &d, &mut |_| Ok(())).unwrap(),
            Step::Done
        );
        // NLM_F_DUMP_INTR.
        let d = datagram(
            netlink::msg_type::NEWLINK,
            flags::MULTI | flags::DUMP_INTR,
            &[0; 16],
        );
        assert!(matches!(
            handle_datagram("test", 1, &d, &mut |_| Ok(())),
            Err(HostError::Interrupted { .. })
        ));
        // Overrun; NOOP is skipped; a data message without NLM_F_MULTI is
        // the whole reply.
        let d = datagram(netlink::msg_type::OVERRUN, 0, &[]);
        assert!(handle_datagram("test", 1, &d, &mut |_| Ok(())).is_err());
        let d = datagram(netlink::msg_type::NOOP, 0, &[]);
        assert_eq!(
            handle_datagram("test", 1, &d, &mut |_| Ok(())).unwrap(),
            Step::More
        );
        let d = datagram(netlink::msg_type::NEWROUTE, 0, &[]);
        assert_eq!(
            handle_datagram("test", 1, &d, &mut |_| Ok(())).unwrap(),
            Step::Done
        );
    }

    /// Print every datagram of a full read, for refreshing [`fixtures`]:
    /// `ip netns exec NS cargo test -p passt-core capture_fixtures -- --ignored --nocapture`.
    #[test]
    #[ignore = "prints the kernel's replies in the calling namespace"]
    fn capture_fixtures() {
        let mut nl = RtNetlink::open().unwrap();
        nl.recorded = Some(Vec::new());
        let net = read_with(&mut nl, &InterfaceChoice::default()).unwrap();
        for d in nl.recorded.take().unwrap() {
            let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
            println!("DATAGRAM {hex}");
        }
        println!("{net:#?}");
    }
}
