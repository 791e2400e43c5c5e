//! What the translator reports besides frames and operations: why an input
//! was dropped ([`DropReason`], one counter each) and the [`Event`]s a
//! driver logs.

use core::net::{Ipv4Addr, Ipv6Addr};

use crate::addr::MacAddr;
use crate::wire::WireError;

use super::sock::{Errno, Proto};

/// Names one run-time forwarding change
/// ([`crate::Translator::begin_forward_change`]) in the [`Event`] that
/// reports its end; numbered from 1 by each translator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChangeId(pub u32);

/// Why a frame (or an input) was dropped; each has a counter in [`crate::Stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum DropReason {
    /// Shorter than its headers or length fields say.
    Truncated,
    /// Length fields that disagree.
    BadLength,
    /// A checksum that does not verify.
    BadChecksum,
    /// A field value the protocol forbids.
    Malformed,
    /// A protocol or variant we don't translate.
    Unsupported,
    /// An IP fragment (never reassembled).
    Fragment,
    /// Too many VLAN tags, options or extension headers.
    TooMany,
    /// A source MAC address that is not unicast.
    BadSourceMac,
    /// The frame's address family is turned off (`-4`/`-6`).
    FamilyDisabled,
    /// No translation for this protocol yet in this build.
    NoHandler,
    /// The tx ring had no room for a reply.
    TxFull,
    /// The operation queue was full.
    OpQueueFull,
    /// A completion or readiness for a socket that no longer exists.
    StaleSocket,
    /// No room for a new flow: the table (or the socket slots) is full of
    /// flows active too recently to be evicted.
    FlowTableFull,
    /// A host datagram larger than the guest's MTU allows (see
    /// [`crate::udp`]).
    TooBig,
    /// A protocol turned off by `--no-tcp`, `--no-udp` or `--no-icmp`.
    ProtocolDisabled,
}

impl DropReason {
    /// Number of reasons (the length of [`crate::Stats::drops`]).
    pub const COUNT: usize = DropReason::ProtocolDisabled as usize + 1;

    /// Every reason, in counter order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::Truncated,
        DropReason::BadLength,
        DropReason::BadChecksum,
        DropReason::Malformed,
        DropReason::Unsupported,
        DropReason::Fragment,
        DropReason::TooMany,
        DropReason::BadSourceMac,
        DropReason::FamilyDisabled,
        DropReason::NoHandler,
        DropReason::TxFull,
        DropReason::OpQueueFull,
        DropReason::StaleSocket,
        DropReason::FlowTableFull,
        DropReason::TooBig,
        DropReason::ProtocolDisabled,
    ];
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::BadLength => DropReason::BadLength,
            WireError::BadChecksum => DropReason::BadChecksum,
            WireError::Malformed => DropReason::Malformed,
            WireError::Fragment => DropReason::Fragment,
            WireError::TooMany => DropReason::TooMany,
            WireError::Unsupported | WireError::BufferTooSmall => DropReason::Unsupported,
        }
    }
}

/// Something the driver may log or count, drained with
/// [`crate::Translator::poll_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A frame from the guest was dropped.
    Dropped {
        /// Why.
        reason: DropReason,
        /// Its length.
        len: u32,
    },
    /// Something from the host side was dropped: a datagram a host socket
    /// delivered (too big for a frame, no flow for it, no room in the tx
    /// ring or the operation queue), or a ping reply. Counted in
    /// [`crate::Stats::drops`] too; one event per drop, so that a driver's debug
    /// log names the reason of each.
    HostDropped {
        /// Why.
        reason: DropReason,
    },
    /// The guest's MAC address was learned or changed.
    GuestMac(MacAddr),
    /// The guest's IPv4 address was seen for the first time (the source
    /// of its packets; later changes are used but not reported).
    GuestAddr4(Ipv4Addr),
    /// The guest's IPv6 address, link-local or not, was seen for the first
    /// time (the source of its packets; later changes are used but not
    /// reported).
    GuestAddr6(Ipv6Addr),
    /// Opening a ping socket was refused (`EACCES`/`EPERM`): the host's
    /// `net.ipv4.ping_group_range` does not include our group, so ICMP
    /// echo requests of this family are dropped. Reported once per family.
    PingDenied {
        /// Whether it was an ICMPv6 socket.
        ipv6: bool,
    },
    /// A run-time forwarding change is in force: every listener it
    /// added opened, those it removed are being closed, and new
    /// connections follow the new rules.
    ForwardChanged {
        /// The change.
        id: ChangeId,
        /// Its protocol.
        proto: Proto,
    },
    /// A run-time forwarding change failed: a listener it needed could
    /// not be opened. The listeners opened for it are being closed; the
    /// rules and listeners in force before it stay.
    ForwardChangeFailed {
        /// The change.
        id: ChangeId,
        /// Its protocol.
        proto: Proto,
        /// The first port whose listener failed.
        port: u16,
        /// Why (`EADDRINUSE`, `EACCES`; `EMFILE` when no socket slot was
        /// left, `ENOBUFS` when the listener table had no room).
        errno: Errno,
    },
}
