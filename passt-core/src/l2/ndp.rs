//! Neighbour discovery and router advertisements (to be written: issue 3).

use crate::buf::{TxRing, TxStorage};
use crate::config::Config;
use crate::l2::{L2Context, Outcome};
use crate::time::Instant;
use crate::wire::ethernet::EthernetRepr;
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::ndp::NdpRepr;

/// The NDP responder's state.
#[derive(Debug)]
pub struct Ndp {}

impl Ndp {
    /// A responder for `config`, started at `now`.
    pub fn new(config: &Config, now: Instant) -> Self {
        let _ = (config, now);
        Ndp {}
    }

    /// Answer one NDP message from the guest (its ICMPv6 checksum already
    /// verified).
    pub fn handle<S: TxStorage>(
        &mut self,
        cx: &L2Context<'_>,
        eth: &EthernetRepr,
        ip: &Ipv6Repr<'_>,
        msg: &NdpRepr<'_>,
        tx: &mut TxRing<S>,
    ) -> Outcome {
        let _ = (cx, eth, ip, msg, tx);
        Outcome::Ignored
    }

    /// When [`Ndp::handle_timeout`] has work next (the periodic router
    /// advertisement).
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Do what is due at `cx.now`.
    pub fn handle_timeout<S: TxStorage>(&mut self, cx: &L2Context<'_>, tx: &mut TxRing<S>) {
        let _ = (cx, tx);
    }
}
