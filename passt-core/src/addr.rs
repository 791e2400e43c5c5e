//! Addresses: MAC addresses, and one type for IPv4 and IPv6 endpoints.
//!
//! Flows store IPv4 as v4-mapped IPv6 ([`InAny`]) so that one lookup path and
//! one table layout serve both families (as passt's `union inany_addr`).

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

/// An IEEE 802 MAC address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00, also "not known yet".
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Whether the group bit is set (broadcast or multicast).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 != 0
    }

    /// Whether this is ff:ff:ff:ff:ff:ff.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// Whether this is all zeroes.
    pub fn is_zero(&self) -> bool {
        *self == Self::ZERO
    }

    /// The multicast MAC address for an IPv6 multicast group (RFC 2464 §7).
    pub fn from_ipv6_multicast(group: &Ipv6Addr) -> MacAddr {
        let o = group.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// Why a MAC address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}: expected six hexadecimal octets separated by ':'")]
pub struct MacParseError(pub String);

impl FromStr for MacAddr {
    type Err = MacParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || MacParseError(s.to_owned());
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let p = parts.next().ok_or_else(err)?;
            if p.is_empty() || p.len() > 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

/// An IPv4 or IPv6 address, IPv4 stored v4-mapped (`::ffff:a.b.c.d`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InAny(pub Ipv6Addr);

impl InAny {
    /// The IPv6 unspecified address `::`.
    pub const UNSPECIFIED6: InAny = InAny(Ipv6Addr::UNSPECIFIED);
    /// The IPv4 unspecified address `0.0.0.0`, v4-mapped.
    pub const UNSPECIFIED4: InAny = InAny(Ipv4Addr::UNSPECIFIED.to_ipv6_mapped());

    /// The IPv4 address, if this is a v4-mapped one.
    pub fn v4(&self) -> Option<Ipv4Addr> {
        self.0.to_ipv4_mapped()
    }

    /// Whether this is an IPv4 address.
    pub fn is_v4(&self) -> bool {
        self.v4().is_some()
    }

    /// Back to a standard address.
    pub fn to_ip(&self) -> IpAddr {
        match self.v4() {
            Some(a) => IpAddr::V4(a),
            None => IpAddr::V6(self.0),
        }
    }

    /// Whether this is a loopback address of either family.
    pub fn is_loopback(&self) -> bool {
        self.to_ip().is_loopback()
    }

    /// Whether this is the unspecified address of either family.
    pub fn is_unspecified(&self) -> bool {
        self.to_ip().is_unspecified()
    }
}

impl From<Ipv4Addr> for InAny {
    fn from(a: Ipv4Addr) -> Self {
        InAny(a.to_ipv6_mapped())
    }
}

impl From<Ipv6Addr> for InAny {
    fn from(a: Ipv6Addr) -> Self {
        InAny(a)
    }
}

impl From<IpAddr> for InAny {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(a) => a.into(),
            IpAddr::V6(a) => a.into(),
        }
    }
}

impl fmt::Display for InAny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_ip().fmt(f)
    }
}

/// An address and port of either family, as flows and socket specs carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SockAddrAny {
    /// The address, IPv4 v4-mapped.
    pub addr: InAny,
    /// The port (or ICMP echo identifier).
    pub port: u16,
}

impl SockAddrAny {
    /// Build from parts.
    pub fn new(addr: impl Into<InAny>, port: u16) -> Self {
        SockAddrAny {
            addr: addr.into(),
            port,
        }
    }

    /// As a standard socket address.
    pub fn to_socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.addr.to_ip(), self.port)
    }
}

impl From<SocketAddr> for SockAddrAny {
    fn from(s: SocketAddr) -> Self {
        SockAddrAny::new(s.ip(), s.port())
    }
}

impl fmt::Display for SockAddrAny {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_socket_addr().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_parse_and_display() {
        let m: MacAddr = "9a:55:9A:55:9a:55".parse().unwrap();
        assert_eq!(m.0, [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]);
        assert_eq!(m.to_string(), "9a:55:9a:55:9a:55");
        for bad in [
            "",
            "9a:55:9a:55:9a",
            "9a:55:9a:55:9a:55:00",
            "9a:55:9a:55:9a:5g",
            "9a::9a:55:9a:55",
            "123:55:9a:55:9a:55",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        assert!(MacAddr::BROADCAST.is_multicast());
        assert!(!m.is_multicast());
    }

    #[test]
    fn inany_round_trips_both_families() {
        let v4 = InAny::from(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(v4.v4(), Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(v4.to_string(), "192.0.2.1");
        let v6 = InAny::from("2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert!(!v6.is_v4());
        assert!(InAny::from(Ipv4Addr::LOCALHOST).is_loopback());
        assert!(InAny::UNSPECIFIED4.is_unspecified());
        assert_eq!(
            MacAddr::from_ipv6_multicast(&"ff02::1:ff00:1".parse().unwrap()).0,
            [0x33, 0x33, 0xff, 0, 0, 1]
        );
    }
}
