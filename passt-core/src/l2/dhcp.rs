//! DHCPv4 server for the one guest on the link (RFC 2131, options RFC 2132,
//! domain search RFC 3397, long options RFC 3396, rapid commit RFC 4039).
//!
//! # Model
//!
//! There is exactly one client and exactly one address to hand out: the
//! guest's configured address (`config.ip4.addr`). The server keeps no
//! lease table; every answer is computed from the message and the
//! configuration alone. The lease is infinite (0xffffffff, RFC 2131 §3.3),
//! as the original passt grants it, so no renewal (T1, option 58) or
//! rebinding (T2, option 59) times are sent (RFC 2131 §4.4.5 derives them
//! from a finite lease).
//!
//! Our own address on the guest's link is the guest's gateway
//! (`config.ip4.gateway`): it is the server identifier (option 54) and the
//! IPv4 source of every reply, as in the original passt, and the guest can
//! reach it because the ARP responder answers for it.
//!
//! # Messages
//!
//! Input is parsed by [`crate::wire::dhcp::DhcpRepr`], which validates every
//! option area named by Option Overload (RFC 2132 §9.3) and reassembles
//! options split into several instances (RFC 3396), so a requested address
//! or server identifier carried in `file` or `sname` is honoured. A message
//! that does not parse, that is not a BOOTREQUEST, or whose hardware type is
//! not a 6-byte Ethernet address is [`DropReason::Malformed`]. A message
//! that came through a relay (`giaddr` set) cannot exist on this link and is
//! ignored.
//!
//! | from the guest | answer |
//! | --- | --- |
//! | DHCPDISCOVER | DHCPOFFER of the configured address (RFC 2131 §4.3.1) |
//! | DHCPDISCOVER with Rapid Commit (option 80) | DHCPACK with option 80 (RFC 4039 §3), as the original does |
//! | DHCPREQUEST naming another server (option 54) | nothing: the client chose that server (RFC 2131 §4.3.2) |
//! | DHCPREQUEST for the configured address | DHCPACK |
//! | DHCPREQUEST for any other address | DHCPNAK (RFC 2131 §4.3.2) |
//! | DHCPINFORM | DHCPACK without `yiaddr` and without lease time (RFC 2131 §3.4, §4.3.5) |
//! | DHCPDECLINE, DHCPRELEASE | nothing (RFC 2131 §4.3.3, §4.3.4: no reply is sent) |
//! | no message type (plain BOOTP) | BOOTREPLY without DHCP-only options (RFC 1534 §2) |
//! | any other type | nothing |
//!
//! The address a DHCPREQUEST asks for is the Requested IP Address option
//! (50) when present (SELECTING and INIT-REBOOT states), otherwise `ciaddr`
//! (RENEWING and REBINDING states, RFC 2131 §4.3.2). A request naming no
//! address at all is acknowledged with the configured one, as the original
//! does.
//!
//! # Options
//!
//! Replies carry, in this order: message type (53), server identifier (54),
//! lease time (51) in DHCPOFFER and DHCPACK to a DHCPDISCOVER or
//! DHCPREQUEST, rapid commit (80) when used, then the configuration: subnet
//! mask (1) from the prefix length, router (3), a classless static route
//! (121, RFC 3442) to the gateway and through it when the gateway lies
//! outside the guest's subnet (as the original does, since RFC 3442 §2 has
//! clients ignore option 3 then), interface MTU (26, RFC 2132 §5.1, clamped
//! to its 68..=65535 range; none with `-m 0`), host name (12, RFC 2132
//! §3.14) and client FQDN (81, RFC 4702 §2) when configured (`-H`,
//! `--fqdn`; sent whether or not the client asked, as the other
//! configuration), DNS servers (6) unless
//! [`Services::DHCP_DNS`] is off, and the domain search list (119, RFC 3397,
//! encoded once at start-up with compression) unless
//! [`Services::DHCP_SEARCH`] is off. A DHCPNAK carries only its type, the
//! server identifier and a short message (56), per RFC 2131 §4.3.1 table 3.
//! A BOOTP reply carries only the configuration options.
//!
//! # Size
//!
//! A reply fits in what the client accepts: the Maximum DHCP Message Size
//! option (57, RFC 2132 §9.10; values under 576 count as 576), or 576 bytes
//! without it (RFC 2131 §2), as an IPv4 datagram with its IP and UDP
//! headers, and never more than the link MTU. A BOOTP reply keeps to the
//! 300-byte BOOTP message (RFC 951, RFC 1542 §2.1). When the options do not
//! fit, the search list loses names from its end first (a prefix of an
//! RFC 3397 list is a valid list, as pointers only point backwards), then
//! the DNS list is left out; the other options always fit.
//!
//! # Addressing (RFC 2131 §4.1)
//!
//! - DHCPNAK: broadcast, to 255.255.255.255 and ff:ff:ff:ff:ff:ff.
//! - `ciaddr` set (renewing, rebinding, DHCPINFORM): unicast to `ciaddr`.
//! - Broadcast flag set (the client cannot receive unicast yet): broadcast.
//! - Otherwise: unicast to `yiaddr` (to the configured address for a
//!   DHCPINFORM that lacks `ciaddr`).
//!
//! Unicast goes to the Ethernet address in `chaddr`; every reply goes from
//! our MAC address, with the request's VLAN tags, from UDP port 67 to UDP
//! port 68, with TTL 255 like every frame the original sends to the guest.
//!
//! # Limits
//!
//! Work is bounded by the message length (option walks in the codec) and
//! the configured lists; at most one frame is written. Nothing is allocated
//! while handling a message: the search list is encoded in [`Dhcp::new`]
//! and the reply is built in place in the tx slot.

use core::net::Ipv4Addr;

use crate::addr::MacAddr;
use crate::buf::{TxRing, TxStorage};
use crate::config::{Config, Ip4Config, Services};
use crate::contract::cx::Cx;
use crate::contract::DropReason;
use crate::l2::Outcome;
use crate::wire::dhcp::{
    encode_search_list, opt, DhcpBuilder, DhcpHeader, DhcpMessageType, DhcpRepr, BOOTREQUEST,
    MIN_BOOTP_LEN,
};
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::frame;
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::udp::UdpRepr;
use crate::wire::{Result, WireError};

/// UDP port of DHCP servers (RFC 2131 §4.1).
pub const SERVER_PORT: u16 = 67;
/// UDP port of DHCP clients (RFC 2131 §4.1).
pub const CLIENT_PORT: u16 = 68;
/// Lease time granted: infinite (RFC 2131 §3.3), as in the original passt.
pub const LEASE_INFINITE: u32 = 0xffff_ffff;
/// IPv4 TTL of replies.
pub const REPLY_TTL: u8 = 255;
/// The smallest datagram every client accepts, IP and UDP headers included
/// (RFC 2131 §2; RFC 2132 §9.10 minimum for option 57).
pub const MIN_MAX_MESSAGE: u16 = 576;
/// Text of the Message option (56) in a DHCPNAK (RFC 2131 §4.3.2).
const NAK_MESSAGE: &[u8] = b"requested address not available";
/// IPv4 and UDP header lengths in a reply (no IP options).
const IP_UDP_LEN: usize = 20 + 8;
/// Smallest value option 26 may carry (RFC 2132 §5.1); its 16 bits bound
/// the largest.
const MTU_OPTION_MIN: u16 = 68;

/// The DHCPv4 server's state: the search list, encoded once.
#[derive(Debug)]
pub struct Dhcp {
    /// Value of option 119 for `config.search` (RFC 3397, compressed).
    search: Box<[u8]>,
    /// Where each name of `search` ends: the bytes up to any of these are a
    /// valid list of the names before it, since compression pointers only
    /// point backwards.
    search_ends: Box<[usize]>,
    /// Value of option 81 for `config.fqdn` (RFC 4702 §2): flags, the
    /// two deprecated RCODEs, the name in DNS wire format; empty without
    /// one.
    fqdn: Box<[u8]>,
}

/// What kind of reply a message gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    /// DHCPOFFER to a DHCPDISCOVER.
    Offer,
    /// DHCPACK to a DHCPREQUEST.
    Ack,
    /// DHCPACK to a DHCPDISCOVER with Rapid Commit (RFC 4039 §3).
    RapidAck,
    /// DHCPACK to a DHCPINFORM.
    InformAck,
    /// DHCPNAK to a DHCPREQUEST for another address.
    Nak,
    /// BOOTREPLY to a plain BOOTP request.
    Bootp,
}

impl Dhcp {
    /// A server for `config`: encodes the search list once (the only
    /// allocation this service makes).
    pub fn new(config: &Config) -> Self {
        let names: Vec<&str> = config.search.iter().map(String::as_str).collect();
        // A name takes at most its text length plus two bytes in wire form.
        let cap = names.iter().map(|n| n.len() + 2).sum();
        let mut search = vec![0; cap];
        let mut ends = Vec::with_capacity(names.len());
        // The encoder is deterministic and only appends, so the list of the
        // first k names is a prefix of the list of all of them.
        for k in 1..=names.len() {
            match encode_search_list(names.get(..k).unwrap_or(&[]), &mut search) {
                Ok(end) => ends.push(end),
                // A name the encoder refuses, and any after it, are left out.
                Err(_) => break,
            }
        }
        search.truncate(ends.last().copied().unwrap_or(0));
        Dhcp {
            search: search.into_boxed_slice(),
            search_ends: ends.into_boxed_slice(),
            fqdn: config.fqdn.as_deref().map(fqdn_option).unwrap_or_default(),
        }
    }

    /// Answer one datagram the guest sent to UDP port 67.
    ///
    /// [`Outcome::Replied`] when a reply was queued; [`Outcome::Ignored`]
    /// for messages that need none (see the module documentation), with
    /// IPv4 or the DHCP service off; [`DropReason::Malformed`] for a message
    /// that does not parse or is not an Ethernet BOOTREQUEST;
    /// [`DropReason::TxFull`] when the reply has no room in `tx`.
    ///
    /// The IPv4 header is not consulted: clients send from 0.0.0.0 or from
    /// their address, to the broadcast address or to ours, and all of these
    /// are for us on this link.
    ///
    /// Work bound: linear in the message and the configured lists; at most
    /// one frame written.
    pub(crate) fn handle<S: TxStorage>(
        &mut self,
        cx: &Cx<'_>,
        eth: &EthernetRepr,
        ip: &Ipv4Repr<'_>,
        udp: &UdpRepr<'_>,
        tx: &mut TxRing<S>,
    ) -> Outcome {
        let _ = ip;
        let config = cx.config;
        let Some(ip4) = &config.ip4 else {
            return Outcome::Ignored;
        };
        if !config.services.contains(Services::DHCP) {
            return Outcome::Ignored;
        }
        let Ok(msg) = DhcpRepr::parse(udp.payload) else {
            return Outcome::Dropped(DropReason::Malformed);
        };
        let hdr = msg.header();
        let Some(chaddr) = hdr.client_mac().filter(|_| hdr.op == BOOTREQUEST) else {
            return Outcome::Dropped(DropReason::Malformed);
        };
        if hdr.giaddr() != Ipv4Addr::UNSPECIFIED {
            return Outcome::Ignored;
        }
        let Some(reply) = choose_reply(&msg, ip4) else {
            return Outcome::Ignored;
        };

        // RFC 2131 §4.1: where the reply goes.
        let ciaddr = hdr.ciaddr();
        let (ip_dst, mac_dst) = if reply == Reply::Nak {
            (Ipv4Addr::BROADCAST, MacAddr::BROADCAST)
        } else if ciaddr != Ipv4Addr::UNSPECIFIED {
            (ciaddr, unicast_mac(chaddr, eth.src))
        } else if hdr.broadcast() {
            (Ipv4Addr::BROADCAST, MacAddr::BROADCAST)
        } else {
            (ip4.addr, unicast_mac(chaddr, eth.src))
        };
        let out_eth = EthernetRepr {
            dst: mac_dst,
            src: config.our_mac,
            ethertype: ethertype::IPV4,
            ..*eth
        };

        // What the client accepts, as an IPv4 datagram (RFC 2132 §9.10).
        let limit = if reply == Reply::Bootp {
            MIN_BOOTP_LEN
        } else {
            let accepted = msg
                .max_message_size()
                .map_or(MIN_MAX_MESSAGE, |m| m.max(MIN_MAX_MESSAGE));
            usize::from(accepted.min(config.mtu)).saturating_sub(IP_UDP_LEN)
        };

        let Some(mut slot) = tx.reserve() else {
            return Outcome::Dropped(DropReason::TxFull);
        };
        let built = frame::udp4(
            slot.buf(),
            &out_eth,
            ip4.gateway,
            SERVER_PORT,
            ip_dst,
            CLIENT_PORT,
            REPLY_TTL,
            |space| {
                let end = limit.min(space.len());
                let space = space.get_mut(..end).ok_or(WireError::BufferTooSmall)?;
                self.build(reply, hdr, config, ip4, space)
            },
        );
        match built {
            Ok(len) if slot.commit(len) => Outcome::Replied,
            // A slot too small for the reply: no room for it either way.
            _ => Outcome::Dropped(DropReason::TxFull),
        }
    }

    /// Write the DHCP message of `reply` to `request` into `buf`, whose
    /// length is the most the client accepts.
    fn build(
        &self,
        reply: Reply,
        request: &DhcpHeader,
        config: &Config,
        ip4: &Ip4Config,
        buf: &mut [u8],
    ) -> Result<usize> {
        let cap = buf.len();
        let mut b = DhcpBuilder::new(buf)?;
        // RFC 2131 §4.3.1 table 3: op, htype, hlen, xid, flags, giaddr and
        // chaddr from the request, the rest zero unless set below.
        b.header = DhcpHeader::reply_to(request);
        let assigns = matches!(
            reply,
            Reply::Offer | Reply::Ack | Reply::RapidAck | Reply::Bootp
        );
        if assigns {
            b.header.yiaddr = ip4.addr.octets();
        }
        if matches!(reply, Reply::Ack | Reply::InformAck | Reply::Bootp) {
            b.header.ciaddr = request.ciaddr;
        }

        let kind = match reply {
            Reply::Offer => Some(DhcpMessageType::Offer),
            Reply::Ack | Reply::RapidAck | Reply::InformAck => Some(DhcpMessageType::Ack),
            Reply::Nak => Some(DhcpMessageType::Nak),
            Reply::Bootp => None,
        };
        if let Some(kind) = kind {
            b.push_message_type(kind)?;
            b.push_ipv4s(opt::SERVER_ID, &[ip4.gateway])?;
        }
        if matches!(reply, Reply::Offer | Reply::Ack | Reply::RapidAck) {
            b.push_u32(opt::LEASE_TIME, LEASE_INFINITE)?;
        }
        if reply == Reply::RapidAck {
            b.push(opt::RAPID_COMMIT, &[])?;
        }
        if reply == Reply::Nak {
            b.push(opt::MESSAGE, NAK_MESSAGE)?;
            return b.finish();
        }

        let mask = subnet_mask(ip4.prefix_len);
        b.push_ipv4s(opt::SUBNET_MASK, &[mask])?;
        b.push_ipv4s(opt::ROUTER, &[ip4.gateway])?;
        if u32::from(ip4.addr) & u32::from(mask) != u32::from(ip4.gateway) & u32::from(mask) {
            // RFC 3442 §3: a host route to the gateway (router 0.0.0.0: on
            // link), then the default route through it.
            let gw = ip4.gateway.octets();
            let mut routes = [0u8; 14];
            routes[0] = 32;
            routes[1..5].copy_from_slice(&gw);
            routes[10..14].copy_from_slice(&gw);
            b.push(opt::CLASSLESS_STATIC_ROUTE, &routes)?;
        }
        if config.assign_mtu {
            b.push_u16(opt::INTERFACE_MTU, config.mtu.max(MTU_OPTION_MIN))?;
        }
        // RFC 2132 §3.14 and RFC 4702 §2, best effort as the lists below.
        if let Some(name) = &config.hostname {
            let _ = b.push(opt::HOSTNAME, name.as_bytes());
        }
        if !self.fqdn.is_empty() {
            let _ = b.push(opt::CLIENT_FQDN, &self.fqdn);
        }

        // Optional lists: a failed push leaves the message as it was.
        if config.services.contains(Services::DHCP_DNS) && !ip4.dns.is_empty() {
            let _ = b.push_ipv4s(opt::DNS_SERVERS, &ip4.dns);
        }
        if config.services.contains(Services::DHCP_SEARCH) {
            // Room left before `end`, for the value and its option headers
            // (one per 255 bytes, RFC 3396 §6).
            let room = cap.saturating_sub(b.len() + 1);
            let fits = |n: &usize| n + 2 * n.div_ceil(255) <= room;
            if let Some(&end) = self.search_ends.iter().rev().find(|n| fits(n)) {
                let value = self.search.get(..end).ok_or(WireError::BufferTooSmall)?;
                b.push(opt::DOMAIN_SEARCH, value)?;
            }
        }
        b.finish()
    }
}

/// The value of option 81 naming `name` (RFC 4702 §2): flags with only
/// `E` set (the name is in canonical wire format, §2.1; `S` clear: we
/// update no DNS records, §3.1), RCODE1 and RCODE2 255 as a server sends
/// them (§2.2), then the name (RFC 1035 §3.1, uncompressed). Empty if the
/// name does not encode.
fn fqdn_option(name: &str) -> Box<[u8]> {
    const FLAG_E: u8 = 0x04;
    let mut v = vec![0u8; 3 + name.len() + 2];
    v[..3].copy_from_slice(&[FLAG_E, 255, 255]);
    match crate::wire::dhcpv6::encode_domain_list(&[name], &mut v[3..]) {
        Ok(n) => {
            v.truncate(3 + n);
            v.into_boxed_slice()
        }
        Err(_) => Box::default(),
    }
}

/// Which reply `msg` gets, if any (RFC 2131 §4.3).
fn choose_reply(msg: &DhcpRepr<'_>, ip4: &Ip4Config) -> Option<Reply> {
    let Some(kind) = msg.message_type() else {
        return Some(Reply::Bootp);
    };
    match kind {
        DhcpMessageType::Discover if msg.rapid_commit() => Some(Reply::RapidAck),
        DhcpMessageType::Discover => Some(Reply::Offer),
        DhcpMessageType::Request => {
            // A server identifier that is not ours: the client took another
            // server's offer (RFC 2131 §4.3.2, SELECTING state).
            if msg.server_id().is_some_and(|id| id != ip4.gateway) {
                return None;
            }
            let ciaddr = msg.header().ciaddr();
            let asked = msg
                .requested_ip()
                .or((ciaddr != Ipv4Addr::UNSPECIFIED).then_some(ciaddr));
            match asked {
                Some(addr) if addr != ip4.addr => Some(Reply::Nak),
                _ => Some(Reply::Ack),
            }
        }
        DhcpMessageType::Inform => Some(Reply::InformAck),
        // RFC 2131 §4.3.3, §4.3.4: no reply to DHCPDECLINE or DHCPRELEASE;
        // server messages and unknown types are not for us.
        DhcpMessageType::Decline
        | DhcpMessageType::Release
        | DhcpMessageType::Offer
        | DhcpMessageType::Ack
        | DhcpMessageType::Nak
        | DhcpMessageType::Unknown(_) => None,
    }
}

/// The subnet mask of a prefix length (0 to 32; longer counts as 32).
fn subnet_mask(prefix_len: u8) -> Ipv4Addr {
    let host_bits = 32u32.saturating_sub(u32::from(prefix_len));
    Ipv4Addr::from(u32::MAX.checked_shl(host_bits).unwrap_or(0))
}

/// The Ethernet destination of a unicast reply: the client hardware
/// address, or the frame's source if `chaddr` is not a unicast address.
fn unicast_mac(chaddr: MacAddr, eth_src: MacAddr) -> MacAddr {
    if chaddr.is_multicast() || chaddr.is_zero() {
        eth_src
    } else {
        chaddr
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dhcp::DnsNameList;

    fn config(search: &[&str]) -> Config {
        let mut c = crate::testing::build::test_config();
        c.search = search.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn masks_of_every_prefix_length() {
        assert_eq!(subnet_mask(0), Ipv4Addr::UNSPECIFIED);
        assert_eq!(subnet_mask(1), Ipv4Addr::new(128, 0, 0, 0));
        assert_eq!(subnet_mask(20), Ipv4Addr::new(255, 255, 240, 0));
        assert_eq!(subnet_mask(24), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(subnet_mask(32), Ipv4Addr::BROADCAST);
        assert_eq!(subnet_mask(40), Ipv4Addr::BROADCAST);
    }

    #[test]
    fn search_list_prefixes_end_on_names() {
        let names = ["eng.apple.com", "marketing.apple.com", "example.org"];
        let d = Dhcp::new(&config(&names));
        let mut full = [0; 64];
        let n = encode_search_list(&names, &mut full).unwrap();
        assert_eq!(&*d.search, &full[..n]);
        // RFC 3397 §3 example, then "example.org" in full.
        assert_eq!(&*d.search_ends, &[15, 27, 40]);
        for (k, &end) in d.search_ends.iter().enumerate() {
            let mut list = DnsNameList::compressed(&d.search[..end]);
            let mut buf = [0; 253];
            for name in &names[..=k] {
                let len = list.next_name(&mut buf).unwrap().unwrap();
                assert_eq!(&buf[..len], name.as_bytes());
            }
            assert_eq!(list.next_name(&mut buf), Ok(None));
        }
        let empty = Dhcp::new(&config(&[]));
        assert!(empty.search.is_empty() && empty.search_ends.is_empty());
    }

    #[test]
    fn unicast_mac_falls_back_to_the_frame_source() {
        let src = MacAddr([2, 0, 0, 0, 0, 1]);
        let ch = MacAddr([2, 0, 0, 0, 0, 2]);
        assert_eq!(unicast_mac(ch, src), ch);
        assert_eq!(unicast_mac(MacAddr::ZERO, src), src);
        assert_eq!(unicast_mac(MacAddr::BROADCAST, src), src);
    }
}
