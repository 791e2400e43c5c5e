//! The handler set every transport exposes ([`Transport`]): the
//! translator dispatches guest items, readiness, completions and time to
//! TCP, UDP and echo through it, the same way for each.

use crate::buf::{TxRing, TxStorage};
use crate::contract::cx::Cx;
use crate::contract::{Completion, DropReason, Ready, SockId};
use crate::time::Instant;

/// A transport: what it takes from the guest, and the inputs of the
/// sockets it owns.
pub(crate) trait Transport {
    /// A classified guest packet for it ([`crate::ingress`]).
    type Input<'a>;

    /// A packet from the guest.
    fn handle_tap<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        input: &Self::Input<'_>,
        tx: &mut TxRing<S>,
    ) -> Result<(), DropReason>;

    /// Readiness of socket `id`, whose owner token carries `tag`.
    fn handle_ready<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        id: SockId,
        tag: u32,
        ready: Ready,
        tx: &mut TxRing<S>,
    );

    /// The result of an operation on one of its sockets (`tag` as above).
    fn handle_completion<S: TxStorage>(
        &mut self,
        cx: &mut Cx<'_>,
        tag: u32,
        done: Completion,
        tx: &mut TxRing<S>,
    );

    /// Let time pass: whatever is due at `cx.now`.
    fn handle_timeout<S: TxStorage>(&mut self, cx: &mut Cx<'_>, tx: &mut TxRing<S>);

    /// Its earliest deadline.
    fn poll_timeout(&self) -> Option<Instant>;
}
