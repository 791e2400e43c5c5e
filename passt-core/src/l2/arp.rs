//! ARP responder (RFC 826): every IPv4 address but the guest's own is at
//! our MAC address.
//!
//! A request is answered when it asks for any address other than the
//! guest's own (that one is the guest's, and answering would make duplicate
//! address detection fail, RFC 5227 §2.1.1) and is not a gratuitous
//! announcement (sender address equal to target address, RFC 5227 §3). A
//! probe (sender address 0.0.0.0) for any other address is answered like a
//! request, to the probing MAC address.
//! Replies and announcements from the guest need no answer. The reply goes
//! back with the same VLAN tags as the request, unicast to the requester.

use crate::buf::{TxRing, TxStorage};
use crate::contract::cx::Cx;
use crate::contract::DropReason;
use crate::l2::Outcome;
use crate::wire::arp::{ArpOp, ArpRepr};
use crate::wire::ethernet::{ethertype, EthernetRepr};

/// Answer one ARP message from the guest: [`Outcome::Ignored`] for a reply,
/// an announcement, a request or probe for the guest's own address, or with
/// IPv4 off.
///
/// Work bound: at most one frame written, constant time.
pub(crate) fn handle<S: TxStorage>(
    cx: &Cx<'_>,
    eth: &EthernetRepr,
    req: &ArpRepr,
    tx: &mut TxRing<S>,
) -> Outcome {
    let config = cx.config;
    let Some(ip4) = &config.ip4 else {
        return Outcome::Ignored;
    };
    if req.op != ArpOp::Request || req.is_gratuitous() || req.tpa == ip4.addr {
        return Outcome::Ignored;
    }
    let reply = ArpRepr {
        op: ArpOp::Reply,
        sha: config.our_mac,
        spa: req.tpa,
        tha: req.sha,
        tpa: req.spa,
    };
    // Unicast to the requester, as RFC 826 prescribes; fall back to the
    // Ethernet source if the sender hardware address is not unicast.
    let dst = if req.sha.is_multicast() || req.sha.is_zero() {
        eth.src
    } else {
        req.sha
    };
    let out_eth = EthernetRepr {
        dst,
        src: config.our_mac,
        ethertype: ethertype::ARP,
        ..*eth
    };
    let pushed = tx.push_with(|buf| {
        let hl = out_eth.emit(buf).ok()?;
        let al = reply.emit(buf.get_mut(hl..)?).ok()?;
        Some(hl + al)
    });
    if pushed {
        Outcome::Replied
    } else {
        Outcome::Dropped(DropReason::TxFull)
    }
}
