//! A minimal rtnetlink client: links up, MAC and MTU, addresses and routes
//! (`--config-net`), and the host's routes to copy.
//!
//! Requests go to the kernel on a `NETLINK_ROUTE` socket (RFC 3549
//! §2.3.3; Linux `rtnetlink(7)`): a `struct nlmsghdr`, a family header and
//! type-length-value attributes, all in host byte order, 4-byte aligned.
//!
//! | request | family header | attributes |
//! |---|---|---|
//! | `RTM_NEWLINK` | `ifinfomsg`: index, `IFF_UP` in flags and change mask | `IFLA_ADDRESS` (MAC), `IFLA_MTU` |
//! | `RTM_NEWADDR` | `ifaddrmsg`: family, prefix length, `IFA_F_NODAD` for IPv6, index | `IFA_LOCAL`, `IFA_ADDRESS`, `IFA_FLAGS` |
//! | `RTM_NEWROUTE` | `rtmsg`: family, destination length, main table, `RTPROT_BOOT`, scope, unicast, `RTNH_F_ONLINK` with a gateway | `RTA_DST`, `RTA_GATEWAY`, `RTA_OIF` |
//! | `RTM_GETROUTE` dump | `rtmsg`: family | none |
//! | `RTM_GETADDR` dump | `ifaddrmsg`: `AF_INET6` | none (tentative addresses are counted) |
//!
//! `NLM_F_ACK` asks for an `NLMSG_ERROR` reply whose error code is 0 on
//! success or a negative errno. A dump reply is parsed with
//! [`passt_core::host::netlink`]'s codec.
//!
//! IPv6 addresses are added with `IFA_F_NODAD` (usable at once: nobody else
//! is on the link; the kernel's own link-local address is kept out of
//! duplicate address detection by `setup::configure`, which waits until no
//! address of the tap is tentative), and routes through a gateway with `RTNH_F_ONLINK`, so
//! that a gateway outside the guest's prefix (`-g` with a narrow `-n`) is
//! accepted as reachable on the tap, as it is: everything is.
//!
//! A netlink socket acts in the namespace it was created in, so this is
//! opened in the namespace to change (or the host's, to read it).
//!
//! Syscalls: `socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)`,
//! `ioctl(SIOCGIFINDEX)` (through rustix), `sendto`, `recv`.

use core::net::IpAddr;
use std::os::fd::OwnedFd;

use passt_core::addr::MacAddr;
use passt_core::host::netlink::{self as codec, AddrRepr, NlErrRepr, NlMsgIter, RouteRepr};
use rustix::io::{self, Errno};
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{
    netdevice, recv, sendto, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags,
    SocketType,
};

/// `struct nlmsghdr`: length, type, flags, sequence number, port id.
const NLMSG_HDRLEN: usize = 16;
/// `struct nlattr` header: length, type.
const NLA_HDRLEN: usize = 4;
/// Link attribute: hardware address (`include/uapi/linux/if_link.h`).
const IFLA_ADDRESS: u16 = 1;
/// Link attribute: MTU.
const IFLA_MTU: u16 = 4;
/// Address attributes (`include/uapi/linux/if_addr.h`).
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
/// Skip duplicate address detection.
const IFA_F_NODAD: u32 = 0x02;
/// Route attributes (`include/uapi/linux/rtnetlink.h`).
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
/// Route flag: the gateway is on the link whatever the prefixes say.
const RTNH_F_ONLINK: u32 = 4;
/// `rtm_protocol` for routes set up at configuration time.
const RTPROT_BOOT: u8 = 3;
/// Datagrams read for one dump, at most.
const MAX_DUMP_DATAGRAMS: usize = 4096;

/// A `NETLINK_ROUTE` socket in the namespace it was opened in.
#[derive(Debug)]
pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// A netlink request being built: header, family header, attributes.
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    /// A request of `kind` with `flags`, followed by the family header
    /// `fixed`.
    fn new(kind: u16, flags: u16, seq: u32, fixed: &[u8]) -> Msg {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(fixed);
        Msg { buf }
    }

    /// Append an attribute, padded to 4 bytes.
    fn attr(mut self, kind: u16, data: &[u8]) -> Msg {
        let len = (NLA_HDRLEN + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        while self.buf.len() % 4 != 0 {
            self.buf.push(0);
        }
        self
    }

    /// The finished message, its length filled in.
    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// The bytes of an address.
fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `AF_INET` or `AF_INET6`.
fn family_of(a: IpAddr) -> u8 {
    match a {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// A route to add: destination (`None`: default), gateway, interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    /// Destination prefix, `None` for a default route.
    pub(crate) dst: Option<(IpAddr, u8)>,
    /// Gateway, `None` for a route on the link.
    pub(crate) gateway: Option<IpAddr>,
    /// Whether this is IPv6 (needed for a default route without gateway).
    pub(crate) ipv6: bool,
}

impl Route {
    /// The default route of a family through `gateway`.
    pub(crate) fn default_via(gateway: IpAddr) -> Route {
        Route {
            dst: None,
            gateway: Some(gateway),
            ipv6: gateway.is_ipv6(),
        }
    }
}

impl core::fmt::Display for Route {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.dst {
            Some((a, len)) => write!(f, "{a}/{len}")?,
            None => f.write_str("default")?,
        }
        match self.gateway {
            Some(g) => write!(f, " via {g}"),
            None => f.write_str(" on link"),
        }
    }
}

impl Netlink {
    /// Open a route netlink socket in the current namespace.
    ///
    /// # Errors
    /// The `socket(2)` error.
    pub(crate) fn open() -> io::Result<Netlink> {
        // Protocol 0 is NETLINK_ROUTE.
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// The index of the interface called `name`.
    ///
    /// # Errors
    /// `ENODEV` if there is none.
    pub(crate) fn link_index(&self, name: &str) -> io::Result<u32> {
        netdevice::name_to_index(&self.fd, name)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Set the MAC address of link `index` (if `mac` is given), then bring
    /// it up.
    ///
    /// # Errors
    /// The kernel's answer (`ENODEV`, `EPERM`, `EADDRNOTAVAIL`...) or a
    /// socket error.
    pub(crate) fn link_up(&mut self, index: u32, mac: Option<MacAddr>) -> io::Result<()> {
        self.link_set(index, mac, None, true)
    }

    /// Set the MTU of link `index`.
    ///
    /// # Errors
    /// As [`Netlink::link_up`] (`EINVAL` for an MTU the device refuses).
    pub(crate) fn set_mtu(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        self.link_set(index, None, Some(mtu), false)
    }

    /// `RTM_NEWLINK` on an existing link: MAC, MTU, and `IFF_UP` if `up`.
    fn link_set(
        &mut self,
        index: u32,
        mac: Option<MacAddr>,
        mtu: Option<u32>,
        up: bool,
    ) -> io::Result<()> {
        let seq = self.next_seq();
        let iff_up = if up { libc::IFF_UP as u32 } else { 0 };
        // struct ifinfomsg: AF_UNSPEC, pad, ARPHRD 0 (any), index, flags,
        // change mask.
        let mut ifi = [0u8; 16];
        ifi[4..8].copy_from_slice(&index.to_ne_bytes());
        ifi[8..12].copy_from_slice(&iff_up.to_ne_bytes());
        ifi[12..16].copy_from_slice(&iff_up.to_ne_bytes());
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let mut msg = Msg::new(libc::RTM_NEWLINK, flags, seq, &ifi);
        if let Some(mac) = mac {
            msg = msg.attr(IFLA_ADDRESS, &mac.0);
        }
        if let Some(mtu) = mtu {
            msg = msg.attr(IFLA_MTU, &mtu.to_ne_bytes());
        }
        self.request(&msg.finish(), seq)
    }

    /// Add `addr/prefix_len` to link `index` (IPv6 without duplicate
    /// address detection).
    ///
    /// # Errors
    /// The kernel's answer: `EEXIST` if it is there already, `EINVAL`...
    pub(crate) fn add_addr(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let seq = self.next_seq();
        let nodad = if addr.is_ipv6() { IFA_F_NODAD } else { 0 };
        // struct ifaddrmsg: family, prefix length, flags, scope (universe),
        // index.
        let mut ifa = [0u8; 8];
        ifa[0] = family_of(addr);
        ifa[1] = prefix_len;
        ifa[2] = nodad as u8;
        ifa[4..8].copy_from_slice(&index.to_ne_bytes());
        let flags =
            (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        let bytes = ip_bytes(addr);
        let msg = Msg::new(libc::RTM_NEWADDR, flags, seq, &ifa)
            .attr(IFA_LOCAL, &bytes)
            .attr(IFA_ADDRESS, &bytes)
            .attr(IFA_FLAGS, &nodad.to_ne_bytes());
        self.request(&msg.finish(), seq)
    }

    /// Add `route` through link `index`, in the main table.
    ///
    /// # Errors
    /// The kernel's answer: `EEXIST` if it is there already,
    /// `ENETUNREACH`...
    pub(crate) fn add_route(&mut self, index: u32, route: &Route) -> io::Result<()> {
        let seq = self.next_seq();
        let family = if route.ipv6 {
            libc::AF_INET6 as u8
        } else {
            libc::AF_INET as u8
        };
        let (scope, rt_flags) = match route.gateway {
            Some(_) => (libc::RT_SCOPE_UNIVERSE, RTNH_F_ONLINK),
            None => (libc::RT_SCOPE_LINK, 0),
        };
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
        // scope, type, flags.
        let mut rtm = [0u8; 12];
        rtm[0] = family;
        rtm[1] = route.dst.map_or(0, |(_, len)| len);
        rtm[4] = libc::RT_TABLE_MAIN;
        rtm[5] = RTPROT_BOOT;
        rtm[6] = scope;
        rtm[7] = libc::RTN_UNICAST;
        rtm[8..12].copy_from_slice(&rt_flags.to_ne_bytes());
        let flags =
            (libc::NLM_F_REQUEST | libc::NLM_F_ACK | libc::NLM_F_CREATE | libc::NLM_F_EXCL) as u16;
        let mut msg = Msg::new(libc::RTM_NEWROUTE, flags, seq, &rtm);
        if let Some((dst, _)) = route.dst {
            msg = msg.attr(RTA_DST, &ip_bytes(dst));
        }
        if let Some(gw) = route.gateway {
            msg = msg.attr(RTA_GATEWAY, &ip_bytes(gw));
        }
        msg = msg.attr(RTA_OIF, &index.to_ne_bytes());
        self.request(&msg.finish(), seq)
    }

    /// The routes of the main table through link `oif` (unicast only, the
    /// default route and multipath routes left out), IPv6 if `ipv6`, else
    /// IPv4.
    ///
    /// # Errors
    /// Socket errors, or `EPROTO` for a reply that does not parse.
    pub(crate) fn routes(&mut self, ipv6: bool, oif: u32) -> io::Result<Vec<Route>> {
        let mut rtm = [0u8; 12];
        rtm[0] = if ipv6 {
            libc::AF_INET6 as u8
        } else {
            libc::AF_INET as u8
        };
        let mut out = Vec::new();
        self.dump(libc::RTM_GETROUTE, &rtm, |kind, payload| {
            if kind != codec::msg_type::NEWROUTE {
                return;
            }
            if let Some(route) = RouteRepr::parse(payload)
                .ok()
                .and_then(|r| copyable(&r, oif))
            {
                out.push(route);
            }
        })?;
        Ok(out)
    }

    /// How many IPv6 addresses of link `index` are still tentative
    /// (duplicate address detection not finished, RFC 4862 §5.4: not
    /// usable as a source, nor to bind to).
    ///
    /// # Errors
    /// Socket errors, or `EPROTO` for a reply that does not parse.
    pub(crate) fn tentative_addrs(&mut self, index: u32) -> io::Result<usize> {
        // struct ifaddrmsg: AF_INET6, the rest zero (all links).
        let mut ifa = [0u8; 8];
        ifa[0] = libc::AF_INET6 as u8;
        let mut n = 0;
        self.dump(libc::RTM_GETADDR, &ifa, |kind, payload| {
            if kind != codec::msg_type::NEWADDR {
                return;
            }
            if let Ok(a) = AddrRepr::parse(payload) {
                if a.index == index && a.flags & codec::ifa::F_TENTATIVE != 0 {
                    n += 1;
                }
            }
        })?;
        Ok(n)
    }

    /// A dump request of `kind` with family header `fixed`; `each` sees
    /// the type and payload of every message of the reply.
    fn dump(
        &mut self,
        kind: u16,
        fixed: &[u8],
        mut each: impl FnMut(u16, &[u8]),
    ) -> io::Result<()> {
        let seq = self.next_seq();
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
        let msg = Msg::new(kind, flags, seq, fixed).finish();
        sendto(
            &self.fd,
            &msg,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..MAX_DUMP_DATAGRAMS {
            let n = recv_retry(&self.fd, &mut buf)?;
            for m in NlMsgIter::new(buf.get(..n).unwrap_or(&[])) {
                let m = m.map_err(|_| Errno::PROTO)?;
                if m.seq != seq {
                    continue;
                }
                match m.msg_type {
                    codec::msg_type::DONE => return Ok(()),
                    codec::msg_type::ERROR => {
                        let e = NlErrRepr::parse(m.payload).map_err(|_| Errno::PROTO)?;
                        return Err(Errno::from_raw_os_error(e.error.saturating_neg()));
                    }
                    kind => each(kind, m.payload),
                }
            }
        }
        Err(Errno::PROTO)
    }

    /// Send one request and wait for its acknowledgement.
    fn request(&self, msg: &[u8], seq: u32) -> io::Result<()> {
        sendto(
            &self.fd,
            msg,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        let mut buf = [0u8; 4096];
        // Bounded: each datagram is either our answer or skipped, and the
        // kernel answers every request with NLM_F_ACK.
        for _ in 0..64 {
            let n = recv_retry(&self.fd, &mut buf)?;
            if let Some(res) = ack_for(buf.get(..n).unwrap_or(&[]), seq) {
                return res;
            }
        }
        Err(Errno::PROTO)
    }
}

/// `recv(2)`, retried on `EINTR`.
fn recv_retry(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match recv(fd, &mut *buf, RecvFlags::empty()) {
            Err(Errno::INTR) => continue,
            r => return r.map(|(_, n)| n),
        }
    }
}

/// The route to copy into the namespace for host route `r`, if it is one:
/// main table, unicast, through `oif`, not a default route (the namespace
/// gets its own), not link-local nor multicast.
fn copyable(r: &RouteRepr, oif: u32) -> Option<Route> {
    if r.table != codec::rt::TABLE_MAIN
        || r.route_type != codec::rt::TYPE_UNICAST
        || r.oif != Some(oif)
        || r.nexthop.is_some()
    {
        return None;
    }
    let dst = r.dst?;
    if r.dst_len == 0 {
        return None;
    }
    let skip = match dst {
        IpAddr::V4(a) => a.is_link_local() || a.is_multicast() || a.is_loopback(),
        // fe80::/10 (RFC 4291 §2.5.6), multicast.
        IpAddr::V6(a) => a.segments()[0] & 0xffc0 == 0xfe80 || a.is_multicast(),
    };
    if skip {
        return None;
    }
    Some(Route {
        dst: Some((dst, r.dst_len)),
        gateway: r.gateway,
        ipv6: dst.is_ipv6(),
    })
}

/// Look through one netlink datagram for the `NLMSG_ERROR` answering
/// sequence number `seq`: `Some(Ok)` for an acknowledgement, `Some(Err)` for
/// a refusal, `None` if it is not there.
fn ack_for(mut data: &[u8], seq: u32) -> Option<io::Result<()>> {
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0)? as usize;
        let kind = u16::from_ne_bytes(data.get(4..6)?.try_into().ok()?);
        let msg = data.get(..len).filter(|_| len >= NLMSG_HDRLEN)?;
        if i32::from(kind) == libc::NLMSG_ERROR && u32_at(msg, 8)? == seq {
            let code = u32_at(msg, NLMSG_HDRLEN)? as i32;
            return Some(match code {
                0 => Ok(()),
                e => Err(Errno::from_raw_os_error(e.saturating_neg())),
            });
        }
        // Messages are aligned to 4 bytes.
        data = data.get(len.checked_add(3)? & !3..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn error_msg(seq: u32, code: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&code.to_ne_bytes());
        m.extend_from_slice(&[0; 16]); // the original header
        m
    }

    #[test]
    fn acks_are_matched_by_sequence_number() {
        assert!(matches!(ack_for(&error_msg(7, 0), 7), Some(Ok(()))));
        assert_eq!(
            ack_for(&error_msg(7, -libc::EPERM), 7)
                .unwrap()
                .unwrap_err(),
            Errno::PERM
        );
        let mut two = error_msg(6, -1);
        two.extend(error_msg(7, 0));
        assert!(matches!(ack_for(&two, 7), Some(Ok(()))));
        assert!(ack_for(&error_msg(6, 0), 7).is_none());
        let m = error_msg(7, 0);
        for cut in 0..m.len() {
            assert!(ack_for(&m[..cut], 7).is_none());
        }
        let mut bad = error_msg(7, 0);
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(ack_for(&bad, 7).is_none());
    }

    #[test]
    fn requests_are_laid_out_as_the_kernel_reads_them() {
        // RTM_NEWADDR for 192.0.2.2/24 on link 5: header, ifaddrmsg, three
        // 8-byte attributes.
        let m = Msg::new(libc::RTM_NEWADDR, 0x605, 9, &[2, 24, 0, 0, 5, 0, 0, 0])
            .attr(IFA_LOCAL, &[192, 0, 2, 2])
            .attr(IFA_ADDRESS, &[192, 0, 2, 2])
            .attr(IFA_FLAGS, &0u32.to_ne_bytes())
            .finish();
        assert_eq!(m.len(), 16 + 8 + 3 * 8);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().unwrap()), 48);
        assert_eq!(u16::from_ne_bytes(m[4..6].try_into().unwrap()), 20);
        assert_eq!(u32::from_ne_bytes(m[8..12].try_into().unwrap()), 9);
        assert_eq!(&m[24..32], &[8, 0, 2, 0, 192, 0, 2, 2][..]);
        // An odd-sized attribute (a MAC) is padded to 4 bytes.
        let m = Msg::new(libc::RTM_NEWLINK, 5, 1, &[0; 16])
            .attr(IFLA_ADDRESS, &[2, 0, 0, 0, 0, 1])
            .finish();
        assert_eq!(m.len(), 16 + 16 + 12);
        assert_eq!(&m[32..44], &[10, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 0][..]);
    }

    #[test]
    fn only_plain_routes_of_the_interface_are_copied() {
        let base = RouteRepr {
            family: 2,
            dst_len: 24,
            table: codec::rt::TABLE_MAIN,
            scope: 0,
            route_type: codec::rt::TYPE_UNICAST,
            dst: Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 0))),
            gateway: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1))),
            oif: Some(3),
            priority: 0,
            nexthop: None,
        };
        assert_eq!(
            copyable(&base, 3).map(|r| r.to_string()).as_deref(),
            Some("198.51.100.0/24 via 203.0.113.1")
        );
        assert!(copyable(&base, 4).is_none());
        assert!(copyable(&RouteRepr { table: 255, ..base }, 3).is_none());
        assert!(copyable(
            &RouteRepr {
                dst: None,
                dst_len: 0,
                ..base
            },
            3
        )
        .is_none());
        let ll = RouteRepr {
            family: 10,
            dst_len: 64,
            dst: Some("fe80::".parse().unwrap()),
            gateway: None,
            ..base
        };
        assert!(copyable(&ll, 3).is_none());
    }
}
