//! ARP responder (RFC 826): every IPv4 address but the guest's own is at
//! our MAC address.
//!
//! A request is answered when it asks for any address other than the
//! guest's own (that one is the guest's, and answering would make duplicate
//! address detection fail, RFC 5227 §2.1.1) and is not a gratuitous
//! announcement (sender address equal to target address, RFC 5227 §3).
//! Replies and announcements from the guest need no answer. The reply goes
//! back with the same VLAN tags as the request, unicast to the requester.

use crate::buf::{TxRing, TxStorage};
use crate::config::Config;
use crate::wire::arp::{ArpOp, ArpRepr};
use crate::wire::ethernet::{ethertype, EthernetRepr};

/// What the responder did with an ARP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArpOutcome {
    /// A reply was queued to the guest.
    Replied,
    /// Nothing to answer (a reply, an announcement, a probe or request for
    /// the guest's own address, or IPv4 is off).
    Ignored,
    /// The reply could not be queued: the tx ring is full.
    TxFull,
}

/// Answer one ARP message from the guest.
///
/// Work bound: at most one frame written, constant time.
pub fn handle<S: TxStorage>(
    config: &Config,
    eth: &EthernetRepr,
    req: &ArpRepr,
    tx: &mut TxRing<S>,
) -> ArpOutcome {
    let Some(ip4) = &config.ip4 else {
        return ArpOutcome::Ignored;
    };
    if req.op != ArpOp::Request || req.is_gratuitous() || req.tpa == ip4.addr {
        return ArpOutcome::Ignored;
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
        ArpOutcome::Replied
    } else {
        ArpOutcome::TxFull
    }
}
