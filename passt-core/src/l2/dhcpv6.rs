//! DHCPv6 server for the one guest on the link (RFC 8415, DNS options RFC
//! 3646): stateful assignment of the guest's configured address, and
//! stateless configuration (DNS servers, search list).
//!
//! # Theory of operation
//!
//! The guest's link has one client (the guest) and one server (us), and the
//! configuration never changes while we run, so the server keeps no
//! bindings: every answer is computed from the configuration and the
//! message alone. The one address we hand out is `config.ip6.addr`, the
//! host's own address as a rule, with infinite T1, T2 and lifetimes
//! (RFC 8415 §7.7), as the original passt does: the guest never has
//! to renew, and if it does, it gets the same answer.
//!
//! A message is looked at only if it comes from UDP port 546 to port 547
//! (RFC 8415 §7.2) and goes to All_DHCP_Relay_Agents_and_Servers, ff02::1:2
//! (§7.1), or to our link-local address. Relay messages (§9) are ignored:
//! nothing relays on a link with one client. Messages are validated as in
//! RFC 8415 §16, silently ignoring those a server must discard:
//!
//! | received | condition to answer (§16) | answer |
//! |---|---|---|
//! | SOLICIT | client ID, no server ID | ADVERTISE (§18.3.1); REPLY with Rapid Commit if the client sent Rapid Commit and an IA_NA (§18.3.1, §21.14) |
//! | REQUEST, RENEW | client ID, our server ID | REPLY with the address (§18.3.2, §18.3.4) |
//! | REBIND | client ID, no server ID | REPLY with the address (§18.3.5) |
//! | CONFIRM | client ID, no server ID, at least one address | REPLY, status Success if every address is on the guest's prefix, NotOnLink otherwise (§18.3.3) |
//! | RELEASE, DECLINE | client ID, our server ID | REPLY, status Success (§18.3.7, §18.3.8) |
//! | INFORMATION-REQUEST | no IA option, no server ID but ours | REPLY with configuration, no IA (§18.3.6) |
//!
//! Anything else (ADVERTISE, REPLY or RECONFIGURE sent by the guest, unknown
//! types) is ignored.
//!
//! # Replies
//!
//! Every reply carries the client's Client Identifier when it sent one
//! (§21.2) and our Server Identifier, a DUID-LL of our MAC address (§11.4;
//! the original passt uses a DUID-LLT, whose time part only matters to
//! servers that change interfaces). In answers that assign addresses:
//!
//! - the first IA_NA of the message gets one IAADDR with `config.ip6.addr`,
//!   T1, T2 and both lifetimes infinite (0xffffffff), under the client's
//!   IAID (§21.4, §21.6); the client's T1/T2 and lifetime hints are ignored,
//!   as §21.4 allows. In a REPLY, any other address the client listed in
//!   that IA_NA comes back with lifetimes 0, so that it stops using it
//!   (§18.3.4, §18.3.5);
//! - further IA_NAs (up to [`MAX_IAS`]) get a NoAddrsAvail status inside
//!   (§18.3.2): there is one address, already given;
//! - a SOLICIT with no IA_NA gets a top-level NoAddrsAvail (§18.3.1);
//! - an ADVERTISE carries Preference 255 (§21.8): we are the only server,
//!   so the client need not wait for others (§18.2.1). The original passt
//!   sends no preference; this only saves the guest its first timeout.
//!
//! IA_TA and IA_PD are not answered: we have no temporary addresses nor
//! prefixes to delegate.
//!
//! Answers to SOLICIT, REQUEST, RENEW, REBIND and INFORMATION-REQUEST carry
//! the DNS Recursive Name Server option (23, RFC 3646 §3) with
//! `config.ip6.dns`, unless [`Services::DHCP_DNS`] is off or the list is
//! empty, the Client FQDN option (39, RFC 4704 §4.1, flags 0: we update
//! no DNS records) with `config.fqdn` if given (`--fqdn`; sent whether or
//! not the client included one, as the rest of the configuration), and
//! the Domain Search List option (24, RFC 3646 §4) with
//! `config.search`, unless [`Services::DHCP_SEARCH`] is off or the list is
//! empty. Like the original passt, they are sent whether or not the
//! client's Option Request option asks for them (a server may send options
//! it was not asked for, RFC 8415 §21.7). Answers to CONFIRM, RELEASE and
//! DECLINE carry only the identifiers and the status (§18.3.3, §18.3.7,
//! §18.3.8). An answer to an INFORMATION-REQUEST whose Option Request
//! option asks for the Information Refresh Time (32) carries it, infinite
//! (§21.23: the configuration never changes while we run); no other
//! answer does.
//!
//! The reply goes from our link-local address (`config.ip6.our_link_local`),
//! UDP port 547, to the client's source address, port 546, hop limit 255, in
//! an Ethernet frame from our MAC address to the requester's, with the
//! request's VLAN tags. The DHCPv6 message is limited to what fits the
//! link's MTU: DNS servers or search domains that would not fit are left
//! out (the configuration check keeps them far smaller in practice).
//!
//! # Errors and bounds
//!
//! A message that does not parse ([`Dhcpv6Repr::parse`]) is
//! [`Outcome::Dropped`] with [`DropReason::Malformed`] ([`DropReason::TooMany`]
//! past the parser's option limits) and the next one is served as usual. At
//! most one frame is written per message; the work is bounded by the
//! message length (walks over its options) and by the configuration's DNS
//! and search lists. Nothing is allocated.

use core::net::Ipv6Addr;

use crate::buf::{TxRing, TxStorage};
use crate::config::{Config, Ip6Config, Services};
use crate::contract::cx::Cx;
use crate::contract::DropReason;
use crate::l2::Outcome;
use crate::wire::dhcpv6::{
    duid_ll, encode_domain_list, opt, status, Dhcpv6Builder, Dhcpv6MsgType, Dhcpv6Repr, DUID_LL_LEN,
};
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::frame;
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::udp::UdpRepr;
use crate::wire::{self, WireError};

/// UDP port clients listen on (RFC 8415 §7.2).
pub const CLIENT_PORT: u16 = 546;
/// UDP port servers and relay agents listen on (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers, ff02::1:2 (RFC 8415 §7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// The "infinity" value of T1, T2 and lifetimes (RFC 8415 §7.7).
pub const INFINITY: u32 = 0xffff_ffff;
/// Server preference in an ADVERTISE: the highest, so that the client goes
/// on at once (RFC 8415 §18.2.1, §21.8).
pub const PREFERENCE: u8 = 255;
/// Most IA_NA options answered in one message; further ones are left out.
pub const MAX_IAS: usize = 4;
/// Most addresses of the client's own echoed back with lifetimes 0 in one
/// IA_NA; further ones are left out.
pub const MAX_RETURNED_ADDRS: usize = 4;
/// Hop limit of our replies.
const HOP_LIMIT: u8 = 255;
/// IPv6 fixed header and UDP header: what the MTU must hold besides the
/// DHCPv6 message.
const IP_UDP_LEN: usize = 40 + 8;
/// Status message of a NoAddrsAvail status code.
const NO_ADDRS_TEXT: &str = "no address available";
/// Status message of a NotOnLink status code.
const NOT_ON_LINK_TEXT: &str = "address not on link";

/// What a message gets back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Addresses: ADVERTISE to a SOLICIT, REPLY to a SOLICIT with Rapid
    /// Commit, REQUEST, RENEW or REBIND.
    Lease {
        /// ADVERTISE or REPLY.
        msg_type: Dhcpv6MsgType,
        /// Include Rapid Commit (a committed answer to a SOLICIT).
        rapid_commit: bool,
    },
    /// Only a top-level status: CONFIRM, RELEASE, DECLINE.
    Status(u16, &'static str),
    /// Configuration only: INFORMATION-REQUEST.
    Information,
}

/// The DHCPv6 server's state: only our DUID, fixed at start-up (the
/// server keeps no bindings, see the module documentation).
#[derive(Debug)]
pub struct Dhcpv6 {
    /// Our Server Identifier, a DUID-LL of our MAC address.
    duid: [u8; DUID_LL_LEN],
}

impl Dhcpv6 {
    /// A server for `config`.
    pub fn new(config: &Config) -> Self {
        Dhcpv6 {
            duid: duid_ll(config.our_mac),
        }
    }

    /// Our Server Identifier: a DUID-LL of our MAC address (RFC 8415 §11.4).
    pub fn server_duid(&self) -> &[u8] {
        &self.duid
    }

    /// Answer one datagram the guest sent to UDP port 547.
    ///
    /// [`Outcome::Ignored`] with DHCPv6 or IPv6 off, for a datagram not
    /// from port 546 or not to ff02::1:2 or our link-local address, from
    /// the unspecified or a multicast address, for relay messages and for
    /// messages RFC 8415 §16 has a server discard (see the module
    /// documentation); [`Outcome::Dropped`] for a malformed message or a
    /// full tx ring. Work bound: at most one frame written, linear in the
    /// message and configuration lengths.
    pub(crate) fn handle<S: TxStorage>(
        &mut self,
        cx: &Cx<'_>,
        eth: &EthernetRepr,
        ip: &Ipv6Repr<'_>,
        udp: &UdpRepr<'_>,
        tx: &mut TxRing<S>,
    ) -> Outcome {
        let config = cx.config;
        let Some(ip6) = &config.ip6 else {
            return Outcome::Ignored;
        };
        if !config.services.contains(Services::DHCPV6)
            || udp.src_port != CLIENT_PORT
            || udp.dst_port != SERVER_PORT
            || !(ip.dst == ALL_DHCP_RELAY_AGENTS_AND_SERVERS || ip.dst == ip6.our_link_local)
            || ip.src.is_unspecified()
            || ip.src.is_multicast()
        {
            return Outcome::Ignored;
        }
        let msg = match Dhcpv6Repr::parse(udp.payload) {
            Ok(msg) => msg,
            // Relay-forward and relay-reply (RFC 8415 §9).
            Err(WireError::Unsupported) => return Outcome::Ignored,
            Err(WireError::TooMany) => return Outcome::Dropped(DropReason::TooMany),
            Err(_) => return Outcome::Dropped(DropReason::Malformed),
        };
        let Some(answer) = self.answer(&msg, ip6) else {
            return Outcome::Ignored;
        };
        if tx.is_full() {
            return Outcome::Dropped(DropReason::TxFull);
        }
        let out_eth = EthernetRepr {
            dst: eth.src,
            src: config.our_mac,
            ethertype: ethertype::IPV6,
            ..*eth
        };
        let cap = usize::from(config.mtu).saturating_sub(IP_UDP_LEN);
        let pushed = tx.push_with(|buf| {
            frame::udp6(
                buf,
                &out_eth,
                ip6.our_link_local,
                SERVER_PORT,
                ip.src,
                CLIENT_PORT,
                HOP_LIMIT,
                |space| {
                    let n = space.len().min(cap);
                    let space = space.get_mut(..n).ok_or(WireError::BufferTooSmall)?;
                    self.write(&msg, answer, config, ip6, space)
                },
            )
            .ok()
        });
        if pushed {
            Outcome::Replied
        } else {
            // The slot could not hold even the mandatory part of the reply.
            Outcome::Dropped(DropReason::TxFull)
        }
    }

    /// Decide the answer to a parsed message, `None` to ignore it
    /// (RFC 8415 §16, §18.3).
    fn answer(&self, msg: &Dhcpv6Repr<'_>, ip6: &Ip6Config) -> Option<Answer> {
        let has_client_id = msg.client_id().is_some();
        let server_id = msg.server_id();
        let ours = server_id == Some(&self.duid[..]);
        let reply = Answer::Lease {
            msg_type: Dhcpv6MsgType::Reply,
            rapid_commit: false,
        };
        match msg.msg_type() {
            // §16.2.
            Dhcpv6MsgType::Solicit if has_client_id && server_id.is_none() => {
                // Rapid Commit commits an address (§18.3.1): without an
                // IA_NA there is nothing to commit, so advertise.
                let rapid_commit = msg.rapid_commit() && msg.ia_na().is_some();
                let msg_type = if rapid_commit {
                    Dhcpv6MsgType::Reply
                } else {
                    Dhcpv6MsgType::Advertise
                };
                Some(Answer::Lease {
                    msg_type,
                    rapid_commit,
                })
            }
            // §16.4, §16.6.
            Dhcpv6MsgType::Request | Dhcpv6MsgType::Renew if has_client_id && ours => Some(reply),
            // §16.7.
            Dhcpv6MsgType::Rebind if has_client_id && server_id.is_none() => Some(reply),
            // §16.5, §18.3.3: no Reply to a CONFIRM without addresses.
            Dhcpv6MsgType::Confirm if has_client_id && server_id.is_none() => {
                let mut addrs = msg.ia_nas().flat_map(|ia| ia.addresses()).peekable();
                addrs.peek()?;
                let on_link = addrs.all(|a| on_link(a.addr, ip6));
                Some(if on_link {
                    Answer::Status(status::SUCCESS, "")
                } else {
                    Answer::Status(status::NOT_ON_LINK, NOT_ON_LINK_TEXT)
                })
            }
            // §16.8, §16.9.
            Dhcpv6MsgType::Release | Dhcpv6MsgType::Decline if has_client_id && ours => {
                Some(Answer::Status(status::SUCCESS, ""))
            }
            // §16.12.
            Dhcpv6MsgType::InformationRequest
                if (server_id.is_none() || ours)
                    && msg
                        .options()
                        .all(|o| !matches!(o.code, opt::IA_NA | opt::IA_TA | opt::IA_PD)) =>
            {
                Some(Answer::Information)
            }
            _ => None,
        }
    }

    /// Write the DHCPv6 message answering `msg` into `out`; returns its
    /// length.
    fn write(
        &self,
        msg: &Dhcpv6Repr<'_>,
        answer: Answer,
        config: &Config,
        ip6: &Ip6Config,
        out: &mut [u8],
    ) -> wire::Result<usize> {
        let msg_type = match answer {
            Answer::Lease { msg_type, .. } => msg_type,
            Answer::Status(..) | Answer::Information => Dhcpv6MsgType::Reply,
        };
        let mut b = Dhcpv6Builder::new(out, msg_type, msg.xid())?;
        if let Some(id) = msg.client_id() {
            b.push_client_id(id)?;
        }
        b.push(opt::SERVERID, &self.duid)?;
        match answer {
            Answer::Lease {
                msg_type,
                rapid_commit,
            } => {
                if rapid_commit {
                    b.push_rapid_commit()?;
                }
                let commit = msg_type == Dhcpv6MsgType::Reply;
                let mut first = true;
                for ia in msg.ia_nas().take(MAX_IAS) {
                    b.begin_ia_na(ia.iaid, INFINITY, INFINITY)?;
                    if first {
                        b.begin_ia_addr(ip6.addr, INFINITY, INFINITY)?;
                        b.end()?;
                        if commit {
                            let others = ia.addresses().filter(|a| a.addr != ip6.addr);
                            for a in others.take(MAX_RETURNED_ADDRS) {
                                b.begin_ia_addr(a.addr, 0, 0)?;
                                b.end()?;
                            }
                        }
                    } else {
                        b.push_status_code(status::NO_ADDRS_AVAIL, NO_ADDRS_TEXT)?;
                    }
                    b.end()?;
                    first = false;
                }
                if first && msg.msg_type() == Dhcpv6MsgType::Solicit {
                    b.push_status_code(status::NO_ADDRS_AVAIL, NO_ADDRS_TEXT)?;
                }
                if msg_type == Dhcpv6MsgType::Advertise {
                    b.push_preference(PREFERENCE)?;
                }
                push_configuration(&mut b, config, ip6);
            }
            Answer::Status(code, text) => b.push_status_code(code, text)?,
            Answer::Information => {
                push_configuration(&mut b, config, ip6);
                // RFC 8415 §21.23: SHOULD be sent when the ORO asks for
                // it, in a REPLY to an INFORMATION-REQUEST only. Our
                // configuration never changes while we run: infinity.
                if msg.requests(opt::INFORMATION_REFRESH_TIME) {
                    b.push(opt::INFORMATION_REFRESH_TIME, &INFINITY.to_be_bytes())?;
                }
            }
        }
        b.finish()
    }
}

/// Append the DNS servers and the search list as the configuration allows.
/// Best effort: an option that does not fit is left out (the builder
/// undoes a failed push).
fn push_configuration(b: &mut Dhcpv6Builder<'_>, config: &Config, ip6: &Ip6Config) {
    if config.services.contains(Services::DHCP_DNS) && !ip6.dns.is_empty() {
        let _ = b.push_dns_servers(&ip6.dns);
    }
    // Client FQDN (RFC 4704 §4.1): flags 0 (we update no DNS records:
    // `S` clear, §4.1), the name in DNS wire format, uncompressed.
    if let Some(name) = &config.fqdn {
        let _ = b.push_with(opt::CLIENT_FQDN, |out| {
            let (flags, rest) = out.split_first_mut().ok_or(WireError::BufferTooSmall)?;
            *flags = 0;
            Ok(1 + encode_domain_list(&[name.as_str()], rest)?)
        });
    }
    if config.services.contains(Services::DHCP_SEARCH) && !config.search.is_empty() {
        let _ = b.push_with(opt::DOMAIN_LIST, |out| {
            config.search.iter().try_fold(0, |at, name| {
                let rest = out.get_mut(at..).ok_or(WireError::BufferTooSmall)?;
                Ok(at + encode_domain_list(&[name.as_str()], rest)?)
            })
        });
    }
}

/// Whether `addr` is on the guest's prefix (RFC 8415 §18.3.3).
fn on_link(addr: Ipv6Addr, ip6: &Ip6Config) -> bool {
    let host_bits = 128u32.saturating_sub(u32::from(ip6.prefix_len));
    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
    u128::from(addr) & mask == u128::from(ip6.addr) & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip6(prefix_len: u8) -> Ip6Config {
        Ip6Config {
            addr: "2001:db8::10".parse().unwrap(),
            prefix_len,
            gateway: "fe80::1".parse().unwrap(),
            our_link_local: "fe80::1".parse().unwrap(),
            map_host_loopback: None,
            map_guest_addr: None,
            dns: vec![],
            dns_forward: None,
            dns_host: None,
        }
    }

    /// The captured SOLICIT of `tests/vectors/dhcpv6.pcap` given straight
    /// to the service, with services or IPv6 off in its own configuration
    /// (the translator checks both before dispatching, too).
    #[test]
    fn handle_checks_its_own_configuration() {
        let frames =
            crate::testing::pcap::read_pcap(include_bytes!("../../tests/vectors/dhcpv6.pcap"))
                .unwrap();
        let (eth, rest) = EthernetRepr::parse(&frames[0].data).unwrap();
        let (ip, l4) = Ipv6Repr::parse(rest).unwrap();
        let udp = UdpRepr::parse(l4, None, true).unwrap();
        let mut config = crate::testing::build::test_config();
        config.ip6 = Some(ip6(64));
        let mut tx = TxRing::new(1, 2048, 0);
        let run = |config: &Config, tx: &mut TxRing| {
            let mut shared = crate::contract::cx::shared_for_test(config);
            let cx = shared.cx(config, crate::time::Instant::ZERO);
            Dhcpv6::new(config).handle(&cx, &eth, &ip, &udp, tx)
        };
        assert_eq!(run(&config, &mut tx), Outcome::Replied);
        // The only slot is taken now.
        assert_eq!(run(&config, &mut tx), Outcome::Dropped(DropReason::TxFull));
        tx.clear();
        let mut off = config.clone();
        off.services.remove(Services::DHCPV6);
        assert_eq!(run(&off, &mut tx), Outcome::Ignored);
        off = config.clone();
        off.ip6 = None;
        assert_eq!(run(&off, &mut tx), Outcome::Ignored);
        assert!(tx.is_empty());
        // A slot too small for the reply is no room either.
        let mut small = TxRing::new(1, 100, 0);
        assert_eq!(
            run(&config, &mut small),
            Outcome::Dropped(DropReason::TxFull)
        );
    }

    #[test]
    fn on_link_honours_the_prefix_length() {
        let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert!(on_link(a("2001:db8::ffff:1"), &ip6(64)));
        assert!(!on_link(a("2001:db8:0:1::10"), &ip6(64)));
        assert!(on_link(a("2001:db8:0:1::10"), &ip6(48)));
        assert!(on_link(a("2001:db8::10"), &ip6(128)));
        assert!(!on_link(a("2001:db8::11"), &ip6(128)));
        assert!(on_link(a("fe80::1"), &ip6(0)));
        assert!(!on_link(a("fe80::1"), &ip6(200)));
    }
}
