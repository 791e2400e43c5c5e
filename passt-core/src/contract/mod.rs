//! The driver contract and the handlers' common ground, below every
//! transport and above the wire layer.
//!
//! | file | part |
//! |---|---|
//! | [`sock`] | host sockets ([`SockId`], [`SockSpec`]) and the work on them: [`SockOp`], [`Completion`], [`Done`], [`Ready`], [`Errno`], [`TcpInfo`] |
//! | [`event`] | [`DropReason`], [`Event`] and the [`ChangeId`] of run-time forwarding changes |
//! | `slots` | the socket slots: generations and an opaque owner token per socket |
//! | `cx` | the one context type handlers get (`Cx`), and the reports (events, drop counters) |
//! | `transport` | the handler set every transport exposes (`Transport`) |
//!
//! Nothing here imports a transport or the translator: `tcp`, `udp`,
//! `icmp` and `l2` build on this, and the translator on them.

pub(crate) mod cx;
pub mod event;
pub(crate) mod slots;
pub mod sock;
pub(crate) mod transport;

pub use event::{ChangeId, DropReason, Event};
pub use sock::{
    Completion, Done, Errno, HostError, Proto, Ready, SockFlags, SockId, SockOp, SockSpec, TcpInfo,
};
