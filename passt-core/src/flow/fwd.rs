//! Forwarding policy: where a guest's packet goes on the host, and how a
//! host peer appears to the guest. Pure functions of the configuration,
//! shared by TCP, UDP and ICMP (passt(1): `--map-host-loopback`,
//! `--map-guest-addr`, `--dns-forward`, `--dns-host`, `--no-map-gw`).
//!
//! From the guest (the destination it used, to the host socket's peer):
//!
//! | guest destination              | host peer                                |
//! |--------------------------------|------------------------------------------|
//! | `dns_forward`, port 53         | `dns_host`, port 53 (TCP and UDP)        |
//! | `map_host_loopback`            | the host's loopback, same port           |
//! | `map_guest_addr`               | the host's own address (the guest's)     |
//! | anything else                  | itself                                   |
//!
//! Toward the guest (the host peer, to the source address the guest sees):
//!
//! | host peer                      | guest-side source                        |
//! |--------------------------------|------------------------------------------|
//! | loopback                       | `map_host_loopback`, else none           |
//! | the host's own (guest's) addr  | `map_guest_addr`, else `map_host_loopback` |
//! | unspecified, multicast, bcast  | none                                     |
//! | anything else                  | itself                                   |
//!
//! "None" means the packet has no address to come from: UDP drops it, TCP
//! presents the connection as coming from the gateway
//! ([`host_to_guest_or_gateway`]) since a connection needs a source. The
//! replies of a flow use the addresses the flow recorded, so a redirected
//! DNS query is answered from the address the guest asked.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::addr::{InAny, SockAddrAny};
use crate::config::Config;

/// The DNS port, redirected for `dns_forward` (RFC 1035 §4.2: UDP and TCP).
pub const DNS_PORT: u16 = 53;

/// Where a packet the guest sends to `dst` goes on the host (see the
/// module table). ICMP passes port 0, which no DNS rule matches.
pub fn guest_to_host(config: &Config, dst: SockAddrAny) -> SockAddrAny {
    let port = dst.port;
    if let Some(a) = dst.addr.v4() {
        let Some(ip4) = &config.ip4 else {
            return dst;
        };
        if port == DNS_PORT && ip4.dns_forward == Some(a) {
            if let Some(h) = ip4.dns_host {
                return SockAddrAny::new(h, DNS_PORT);
            }
        }
        if ip4.map_host_loopback == Some(a) {
            SockAddrAny::new(Ipv4Addr::LOCALHOST, port)
        } else if ip4.map_guest_addr == Some(a) {
            SockAddrAny::new(ip4.addr, port)
        } else {
            dst
        }
    } else {
        let a = dst.addr.0;
        let Some(ip6) = &config.ip6 else {
            return dst;
        };
        if port == DNS_PORT && ip6.dns_forward == Some(a) {
            if let Some(h) = ip6.dns_host {
                return SockAddrAny::new(h, DNS_PORT);
            }
        }
        if ip6.map_host_loopback == Some(a) {
            SockAddrAny::new(Ipv6Addr::LOCALHOST, port)
        } else if ip6.map_guest_addr == Some(a) {
            SockAddrAny::new(ip6.addr, port)
        } else {
            dst
        }
    }
}

/// How the guest sees a host peer `from` (see the module table); `None`
/// if it has no address to stand for it, or the guest has no address of
/// that family.
pub fn host_to_guest(config: &Config, from: InAny) -> Option<InAny> {
    if let Some(a) = from.v4() {
        let ip4 = config.ip4.as_ref()?;
        if a.is_loopback() {
            ip4.map_host_loopback.map(InAny::from)
        } else if a == ip4.addr {
            ip4.map_guest_addr
                .or(ip4.map_host_loopback)
                .map(InAny::from)
        } else if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
            None
        } else {
            Some(from)
        }
    } else {
        let ip6 = config.ip6.as_ref()?;
        let a = from.0;
        if a.is_loopback() {
            ip6.map_host_loopback.map(InAny::from)
        } else if a == ip6.addr {
            ip6.map_guest_addr
                .or(ip6.map_host_loopback)
                .map(InAny::from)
        } else if a.is_unspecified() || a.is_multicast() {
            None
        } else {
            Some(from)
        }
    }
}

/// [`host_to_guest`] for a connection, which needs a source: where no
/// address stands for the peer (`--no-map-gw`), the gateway of its family.
/// `None` only if the guest has no address of that family.
pub fn host_to_guest_or_gateway(config: &Config, from: InAny) -> Option<InAny> {
    host_to_guest(config, from).or_else(|| {
        if from.is_v4() {
            config.ip4.as_ref().map(|c| c.gateway.into())
        } else {
            config.ip6.as_ref().map(|c| c.gateway.into())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Ip4Config, Ip6Config};

    fn v4(s: &str) -> InAny {
        InAny::from(s.parse::<Ipv4Addr>().unwrap())
    }
    fn v6(s: &str) -> InAny {
        InAny::from(s.parse::<Ipv6Addr>().unwrap())
    }

    /// The host is 192.0.2.10 / 2001:db8::10, gateway 192.0.2.1 / fe80::1,
    /// `--map-guest-addr` 192.0.2.3 / 2001:db8::3, `--dns-forward`
    /// 192.0.2.53 / 2001:db8::53 to the resolver 198.51.100.1 / 2001:db8:1::1.
    fn config(map_gw: bool) -> Config {
        let mut c = Config::default();
        let ip4 = c.ip4.get_or_insert_with(|| Ip4Config {
            addr: Ipv4Addr::UNSPECIFIED,
            prefix_len: 24,
            gateway: Ipv4Addr::UNSPECIFIED,
            map_host_loopback: None,
            map_guest_addr: None,
            dns: Vec::new(),
            dns_forward: None,
            dns_host: None,
        });
        ip4.addr = "192.0.2.10".parse().unwrap();
        ip4.gateway = "192.0.2.1".parse().unwrap();
        ip4.map_host_loopback = map_gw.then_some(ip4.gateway);
        ip4.map_guest_addr = Some("192.0.2.3".parse().unwrap());
        ip4.dns_forward = Some("192.0.2.53".parse().unwrap());
        ip4.dns_host = Some("198.51.100.1".parse().unwrap());
        let gw6: Ipv6Addr = "fe80::1".parse().unwrap();
        c.ip6 = Some(Ip6Config {
            addr: "2001:db8::10".parse().unwrap(),
            prefix_len: 64,
            gateway: gw6,
            our_link_local: gw6,
            map_host_loopback: map_gw.then_some(gw6),
            map_guest_addr: Some("2001:db8::3".parse().unwrap()),
            dns: Vec::new(),
            dns_forward: Some("2001:db8::53".parse().unwrap()),
            dns_host: Some("2001:db8:1::1".parse().unwrap()),
        });
        c
    }

    #[test]
    fn from_the_guest_each_rule() {
        let c = config(true);
        let s = SockAddrAny::new;
        // (destination, port) -> (host peer, port); each row one rule.
        let rows: [(InAny, u16, InAny, u16); 12] = [
            // --dns-forward: port 53 to the resolver, other ports not.
            (v4("192.0.2.53"), 53, v4("198.51.100.1"), 53),
            (v4("192.0.2.53"), 853, v4("192.0.2.53"), 853),
            (v6("2001:db8::53"), 53, v6("2001:db8:1::1"), 53),
            (v6("2001:db8::53"), 80, v6("2001:db8::53"), 80),
            // --map-host-loopback (the gateway by default).
            (v4("192.0.2.1"), 80, v4("127.0.0.1"), 80),
            (v6("fe80::1"), 80, v6("::1"), 80),
            // --map-guest-addr: the host's own address.
            (v4("192.0.2.3"), 22, v4("192.0.2.10"), 22),
            (v6("2001:db8::3"), 22, v6("2001:db8::10"), 22),
            // Anything else: itself.
            (v4("203.0.113.7"), 443, v4("203.0.113.7"), 443),
            (v6("2001:db8:2::7"), 443, v6("2001:db8:2::7"), 443),
            // ICMP (port 0) to the DNS address is not redirected.
            (v4("192.0.2.53"), 0, v4("192.0.2.53"), 0),
            (v6("2001:db8::53"), 0, v6("2001:db8::53"), 0),
        ];
        for (dst, port, host, hport) in rows {
            assert_eq!(
                guest_to_host(&c, s(dst, port)),
                s(host, hport),
                "{dst}:{port}"
            );
        }
        // --no-map-gw: the gateway is itself.
        let c = config(false);
        assert_eq!(
            guest_to_host(&c, s(v4("192.0.2.1"), 80)),
            s(v4("192.0.2.1"), 80)
        );
        // Without a resolver, no redirect.
        let mut c = config(true);
        c.ip4.as_mut().unwrap().dns_host = None;
        assert_eq!(
            guest_to_host(&c, s(v4("192.0.2.53"), 53)),
            s(v4("192.0.2.53"), 53)
        );
    }

    #[test]
    fn toward_the_guest_each_rule() {
        let c = config(true);
        let rows: [(InAny, Option<InAny>); 11] = [
            (v4("127.0.0.1"), Some(v4("192.0.2.1"))),
            (v4("127.0.0.5"), Some(v4("192.0.2.1"))),
            (v6("::1"), Some(v6("fe80::1"))),
            (v4("192.0.2.10"), Some(v4("192.0.2.3"))),
            (v6("2001:db8::10"), Some(v6("2001:db8::3"))),
            (v4("203.0.113.7"), Some(v4("203.0.113.7"))),
            (v6("2001:db8:2::7"), Some(v6("2001:db8:2::7"))),
            (v4("0.0.0.0"), None),
            (v4("224.0.0.1"), None),
            (v4("255.255.255.255"), None),
            (v6("ff02::1"), None),
        ];
        for (from, want) in rows {
            assert_eq!(host_to_guest(&c, from), want, "{from}");
        }
        // Without --map-guest-addr, the host's address is the gateway's.
        let mut c2 = config(true);
        c2.ip4.as_mut().unwrap().map_guest_addr = None;
        assert_eq!(host_to_guest(&c2, v4("192.0.2.10")), Some(v4("192.0.2.1")));
        // --no-map-gw: loopback has no address; a connection gets the
        // gateway's.
        let c = config(false);
        assert_eq!(host_to_guest(&c, v4("127.0.0.1")), None);
        assert_eq!(host_to_guest(&c, v6("::1")), None);
        assert_eq!(
            host_to_guest_or_gateway(&c, v4("127.0.0.1")),
            Some(v4("192.0.2.1"))
        );
        assert_eq!(host_to_guest_or_gateway(&c, v6("::1")), Some(v6("fe80::1")));
        // A family the guest does not have.
        let mut c = config(true);
        c.ip6 = None;
        assert_eq!(host_to_guest_or_gateway(&c, v6("::1")), None);
    }
}
