//! ICMPv6 echo requests to our own link-local address, answered here
//! (RFC 4443 §4.2).
//!
//! # Why
//!
//! The guest learns our link-local address as the source of router
//! advertisements ([`crate::l2::ndp`]) and uses it as its default router,
//! so `ping fe80::...%eth0` to "the router" is a natural first check. That
//! address is ours, not the host's: no ping socket on the host can reach
//! it (a link-local destination needs a scope, and the host's interface
//! may not even own it), so without a local answer the request is lost.
//!
//! # What is answered
//!
//! An Echo Request (type 128, code 0; the dispatcher verified its checksum)
//! whose destination is `config.ip6.our_link_local`, unless that address
//! also stands for the host's loopback or the host's own address
//! (`map_host_loopback`, `map_guest_addr`, as in local mode where router
//! and mapped gateway are both fe80::1): then the request goes through a
//! ping socket like any other ([`crate::icmp`]) and the host answers, as
//! TCP and UDP to that address reach the host. `--no-icmp` turns the local
//! answer off too, like every echo (the translator checks it).
//!
//! The Echo Reply (type 129, code 0) carries the request's identifier,
//! sequence number and data unchanged (RFC 4443 §4.2), from our link-local
//! address (a unicast address of the link the request came on, §4.2) to
//! the request's source, hop limit 64, in a frame from our MAC address to
//! the requester's with the request's VLAN tags. The checksum covers the
//! new pseudo-header (§2.3).
//!
//! # Bad input and bounds
//!
//! A request from the unspecified or a multicast address has no one to
//! answer to: it is [`Outcome::Dropped`] with [`DropReason::Malformed`]. A
//! reply that would not fit the link MTU (a request larger than the MTU)
//! or a tx slot is dropped with [`DropReason::TooBig`] or
//! [`DropReason::TxFull`]. At most one frame is written per request;
//! nothing is allocated or kept.

use crate::buf::{TxRing, TxStorage};
use crate::config::Ip6Config;
use crate::contract::cx::Cx;
use crate::contract::DropReason;
use crate::l2::Outcome;
use crate::wire::ethernet::{ethertype, EthernetRepr};
use crate::wire::frame;
use crate::wire::icmpv6::Icmpv6Repr;
use crate::wire::ipv6::Ipv6Repr;

/// Hop limit of our echo replies.
pub const HOP_LIMIT: u8 = 64;
/// IPv6 fixed header length: what the MTU must hold besides the message.
const IPV6_HEADER_LEN: usize = 40;

/// Whether an echo request to `dst` is ours to answer: `dst` is our
/// link-local address and that address does not stand for the host.
pub fn is_for_us(ip6: &Ip6Config, dst: &core::net::Ipv6Addr) -> bool {
    *dst == ip6.our_link_local
        && ip6.map_host_loopback != Some(*dst)
        && ip6.map_guest_addr != Some(*dst)
}

/// Answer the ICMPv6 message `msg`, which came in `ip` and `eth`, if it is
/// an Echo Request to our link-local address (see [`is_for_us`]).
///
/// [`Outcome::Ignored`] for anything else (the caller forwards it as
/// usual), and with IPv6 off; [`Outcome::Replied`] once the reply is
/// queued; [`Outcome::Dropped`] as the module documentation says.
pub(crate) fn handle<S: TxStorage>(
    cx: &Cx<'_>,
    eth: &EthernetRepr,
    ip: &Ipv6Repr<'_>,
    msg: &Icmpv6Repr<'_>,
    tx: &mut TxRing<S>,
) -> Outcome {
    let config = cx.config;
    let Some(ip6) = &config.ip6 else {
        return Outcome::Ignored;
    };
    let Some(reply) = msg.echo_reply() else {
        return Outcome::Ignored;
    };
    if !is_for_us(ip6, &ip.dst) {
        return Outcome::Ignored;
    }
    if ip.src.is_unspecified() || ip.src.is_multicast() {
        return Outcome::Dropped(DropReason::Malformed);
    }
    if IPV6_HEADER_LEN + reply.buffer_len() > usize::from(config.mtu) {
        return Outcome::Dropped(DropReason::TooBig);
    }
    if tx.is_full() {
        return Outcome::Dropped(DropReason::TxFull);
    }
    let out = EthernetRepr {
        dst: eth.src,
        src: config.our_mac,
        ethertype: ethertype::IPV6,
        ..*eth
    };
    let pushed = tx.push_with(|buf| {
        frame::icmpv6(buf, &out, ip6.our_link_local, ip.src, HOP_LIMIT, |m| {
            // The frame builder fills the checksum over the new
            // pseudo-header: any partial sum will do here.
            reply.emit(m, 0)
        })
        .ok()
    });
    if pushed {
        Outcome::Replied
    } else {
        Outcome::Dropped(DropReason::TxFull)
    }
}
