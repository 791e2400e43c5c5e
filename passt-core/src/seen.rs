//! The addresses the guest was seen using: where flows from forwarded
//! ports (`-t`, `-u`) are delivered.
//!
//! The configured address ([`crate::config::Ip4Config::addr`],
//! [`crate::config::Ip6Config::addr`]) is only what DHCP or DHCPv6 hand
//! out. A guest configured by SLAAC (RFC 4862 §5.5.3) forms its global
//! address from the advertised prefix and an interface identifier of its
//! own choosing (modified EUI-64, RFC 4291 Appendix A; stable privacy,
//! RFC 7217; temporary, RFC 8981), and its link-local address
//! (RFC 4862 §5.3) likewise: we learn them only when the guest sends from
//! them. So the translator records the source address of every IP packet
//! from the guest, per family, and for IPv6 the link-local scope apart
//! from the others, as the original passt does (`addr_seen`,
//! `addr_ll_seen`).
//!
//! An inbound flow goes to the address of the scope that matches the
//! source the guest will see ([`GuestAddrs::dst_for`]): a link-local peer
//! (the default for the host's loopback and own address, mapped to our
//! link-local gateway) needs the guest's link-local address, any other the
//! guest's global one; each falls back to the other scope and then to the
//! configured address, so nothing changes before the guest has spoken.
//!
//! Unspecified (`::`, `0.0.0.0`, as in duplicate address detection),
//! multicast and broadcast sources are never recorded. Recording is a
//! constant amount of work per frame.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::addr::InAny;
use crate::config::Config;

/// Whether `a` is an IPv6 unicast link-local address (fe80::/10,
/// RFC 4291 §2.5.6).
pub(crate) fn is_link_local6(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// The guest's source addresses as last seen, per family and scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GuestAddrs {
    /// The last IPv4 source.
    pub(crate) v4: Option<Ipv4Addr>,
    /// The last IPv6 source that was not link-local.
    pub(crate) v6: Option<Ipv6Addr>,
    /// The IPv6 source before [`GuestAddrs::v6`], when it changed: a reply
    /// from a second address must still find flows made for the first.
    pub(crate) v6_prev: Option<Ipv6Addr>,
    /// The last IPv6 link-local source.
    pub(crate) ll6: Option<Ipv6Addr>,
}

impl GuestAddrs {
    /// Record the source of an IP packet from the guest; whether it is the
    /// first address seen of its family and scope (worth one log line: a
    /// guest changing addresses all the time logs nothing more).
    pub(crate) fn note(&mut self, src: InAny) -> bool {
        match src.v4() {
            Some(a) => {
                if a.is_unspecified() || a.is_multicast() || a.is_broadcast() {
                    return false;
                }
                self.v4.replace(a).is_none()
            }
            None => {
                let a = src.0;
                if a.is_unspecified() || a.is_multicast() || a.is_loopback() {
                    return false;
                }
                if is_link_local6(&a) {
                    return self.ll6.replace(a).is_none();
                }
                if self.v6 == Some(a) {
                    return false;
                }
                self.v6_prev = self.v6;
                self.v6.replace(a).is_none()
            }
        }
    }

    /// The guest-side destination of an inbound flow whose source, as the
    /// guest sees it, is `remote`: the seen address of the same scope,
    /// else of the other scope, else the configured one; `None` if the
    /// guest has no address of that family we know of.
    pub(crate) fn dst_for(&self, config: &Config, remote: InAny) -> Option<InAny> {
        if remote.is_v4() {
            let c = config.ip4.as_ref()?;
            return Some(self.v4.unwrap_or(c.addr).into());
        }
        let c = config.ip6.as_ref()?;
        let configured = Some(c.addr).filter(|a| !a.is_unspecified());
        let global = self.v6.or(configured);
        let pick = if is_link_local6(&remote.0) {
            self.ll6.or(global)
        } else {
            global.or(self.ll6)
        };
        pick.map(InAny::from)
    }

    /// Other addresses of the guest than `used` that flows for it may be
    /// keyed by (the configured one, the seen ones), for a reply that
    /// comes from another of its addresses.
    pub(crate) fn others(&self, config: &Config, used: InAny) -> [Option<InAny>; 3] {
        let pick = |a: Option<InAny>| a.filter(|a| *a != used);
        if used.is_v4() {
            let configured = config.ip4.as_ref().map(|c| InAny::from(c.addr));
            let seen = pick(self.v4.map(InAny::from)).filter(|a| Some(*a) != configured);
            [pick(configured), seen, None]
        } else {
            let configured = config
                .ip6
                .as_ref()
                .map(|c| c.addr)
                .filter(|a| !a.is_unspecified())
                .map(InAny::from);
            let v6 = pick(self.v6.map(InAny::from)).filter(|a| Some(*a) != configured);
            let prev = pick(self.v6_prev.map(InAny::from))
                .filter(|a| Some(*a) != configured && Some(*a) != v6);
            [pick(configured), v6, prev]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> InAny {
        InAny::from(s.parse::<core::net::IpAddr>().unwrap())
    }

    fn config() -> Config {
        Config {
            ip6: Some(crate::testing::build::test_ip6()),
            ..crate::testing::build::test_config()
        }
    }

    #[test]
    fn scopes_are_kept_apart_and_fall_back_to_the_configured_address() {
        let c = config();
        let mut s = GuestAddrs::default();
        // Nothing seen: the configured addresses.
        assert_eq!(s.dst_for(&c, ip("fe80::1")), Some(ip("2001:db8::10")));
        assert_eq!(s.dst_for(&c, ip("192.0.2.1")), Some(ip("192.0.2.10")));
        for junk in [
            "::",
            "ff02::2",
            "::1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
        ] {
            assert!(!s.note(ip(junk)));
        }
        assert_eq!(s, GuestAddrs::default());
        assert!(s.note(ip("fe80::5054:ff:fe12:3456")));
        assert!(!s.note(ip("fe80::5054:ff:fe12:3456")));
        assert_eq!(
            s.dst_for(&c, ip("fe80::1")),
            Some(ip("fe80::5054:ff:fe12:3456"))
        );
        assert_eq!(s.dst_for(&c, ip("2001:db8:2::1")), Some(ip("2001:db8::10")));
        s.note(ip("2001:db8::5054:ff:fe12:3456"));
        assert_eq!(
            s.dst_for(&c, ip("2001:db8:2::1")),
            Some(ip("2001:db8::5054:ff:fe12:3456"))
        );
        assert_eq!(
            s.dst_for(&c, ip("fe80::1")),
            Some(ip("fe80::5054:ff:fe12:3456"))
        );
        s.note(ip("192.0.2.77"));
        assert_eq!(s.dst_for(&c, ip("192.0.2.1")), Some(ip("192.0.2.77")));
        // A second global address: the first is still another candidate.
        s.note(ip("2001:db8::99"));
        let used = ip("2001:db8::99");
        assert_eq!(
            s.others(&c, used),
            [
                Some(ip("2001:db8::10")),
                None,
                Some(ip("2001:db8::5054:ff:fe12:3456"))
            ]
        );
    }

    #[test]
    fn without_a_configured_address_the_link_local_serves_both_scopes() {
        let mut c = config();
        c.ip6.as_mut().unwrap().addr = Ipv6Addr::UNSPECIFIED;
        let mut s = GuestAddrs::default();
        assert_eq!(s.dst_for(&c, ip("2001:db8:2::1")), None);
        s.note(ip("fe80::2"));
        assert_eq!(s.dst_for(&c, ip("2001:db8:2::1")), Some(ip("fe80::2")));
    }
}
