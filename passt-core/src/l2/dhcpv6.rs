//! DHCPv6 server for one client (to be written: issue 3).

use crate::buf::{TxRing, TxStorage};
use crate::config::Config;
use crate::l2::{L2Context, Outcome};
use crate::wire::ethernet::EthernetRepr;
use crate::wire::ipv6::Ipv6Repr;
use crate::wire::udp::UdpRepr;

/// The DHCPv6 server's state.
#[derive(Debug)]
pub struct Dhcpv6 {}

impl Dhcpv6 {
    /// A server for `config`.
    pub fn new(config: &Config) -> Self {
        let _ = config;
        Dhcpv6 {}
    }

    /// Answer one datagram the guest sent to UDP port 547.
    pub fn handle<S: TxStorage>(
        &mut self,
        cx: &L2Context<'_>,
        eth: &EthernetRepr,
        ip: &Ipv6Repr<'_>,
        udp: &UdpRepr<'_>,
        tx: &mut TxRing<S>,
    ) -> Outcome {
        let _ = (cx, eth, ip, udp, tx);
        Outcome::Ignored
    }
}
