//! Flows: one guest connection or datagram stream and the host socket(s)
//! that carry it.
//!
//! A flow has two sides. The *initiator* side is where it started (the
//! guest's tap for a connection the guest opened, a host socket for a
//! forwarded port), the *target* side where it goes. Each side is seen from
//! an interface ([`Pif`]: the guest's tap, the host's sockets, or a spliced
//! loopback socket pair) and has two addresses: the peer's (`endpoint`) and
//! ours on that interface (`ours`). Forwarding rules (`fwd.rs`, with the
//! transport modules) map one side to the other.
//!
//! Storage is fixed at start-up: a [`table::FlowTable`] per protocol holds the
//! flows in slots named by generation-checked [`FlowId`]s, and a
//! [`index::FlowIndex`] finds a flow from the addresses of a guest packet in
//! O(1), keyed with a secret the driver supplies so that a guest cannot
//! aim collisions at it.

pub mod fwd;
pub mod index;
pub mod siphash;
pub mod table;

use crate::addr::SockAddrAny;

/// A flow as the table names it; `gen` changes when the slot is reused, so
/// a stale id never reaches the slot's next flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowId {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl FlowId {
    /// The slot index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The slot's generation.
    pub fn gen(&self) -> u32 {
        self.gen
    }
}

/// Where a side of a flow lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pif {
    /// The guest, through frames on the tap or qemu's socket.
    Tap,
    /// The host, through an ordinary socket.
    Host,
    /// A loopback socket pair spliced to another one (pasta's fast path).
    Splice,
}

/// Which side of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Where the flow started.
    Initiator,
    /// Where the flow goes.
    Target,
}

/// One side of a flow: its interface, the peer's address and ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowSide {
    /// The interface this side lives on.
    pub pif: Pif,
    /// The peer's address and port on this side.
    pub endpoint: SockAddrAny,
    /// Our address and port on this side.
    pub ours: SockAddrAny,
}
