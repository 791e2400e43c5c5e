//! One [`crate::SockOp::Recv`] in flight: datagrams read by the driver
//! straight into the payload areas of pending tx slots, turned into frames
//! as their completions come back.
//!
//! The driver fills slot `k` of the range with the `k`-th datagram. The
//! ring publishes pending slots oldest first, so when a datagram is
//! dropped (too big, no flow) the next kept one is moved down into the
//! first unpublished slot before its headers are written: published frames
//! stay contiguous, and the copy happens only on the rare drop.

use crate::buf::{Offload, TxRing, TxSlots, TxStorage};
use crate::contract::SockId;

/// A receive operation whose completions are still coming.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecvBatch {
    /// The socket read.
    pub(crate) sock: SockId,
    /// The slots reserved for it.
    pub(crate) slots: TxSlots,
    /// Datagrams reported so far.
    received: u32,
    /// Frames published so far.
    committed: u32,
}

impl RecvBatch {
    /// Reserve up to `count` slots whose payload areas start at `offset`
    /// and hold `len` bytes; `None` if the ring has no room now.
    pub(crate) fn reserve<S: TxStorage>(
        tx: &mut TxRing<S>,
        sock: SockId,
        count: u32,
        offset: usize,
        len: usize,
    ) -> Option<Self> {
        let room = tx.frame_cap().checked_sub(offset)?;
        let len = u16::try_from(len.min(room)).unwrap_or(u16::MAX);
        // No more than the ring's byte budget (the driver's memory bound),
        // counting each slot as full: the rest waits in the socket.
        let fit = tx.budget_frames(offset + usize::from(len));
        let count = count.min(u32::try_from(fit).unwrap_or(u32::MAX));
        let offset = u16::try_from(offset).ok()?;
        let slots = tx.reserve_slots(count, offset, len)?;
        Some(RecvBatch {
            sock,
            slots,
            received: 0,
            committed: 0,
        })
    }

    /// The payload capacity of each slot.
    pub(crate) fn payload_len(&self) -> usize {
        usize::from(self.slots.payload_len)
    }

    /// Datagrams reported so far.
    #[cfg(test)]
    pub(crate) fn received(&self) -> u32 {
        self.received
    }

    /// Account for a reported datagram that will not become a frame.
    pub(crate) fn skip(&mut self) {
        self.received += 1;
    }

    /// Account for a reported datagram of `len` bytes that will become a
    /// frame: its payload is moved down to the next slot to publish if
    /// needed, and that slot's frame area is returned for the headers.
    /// `None` (and the datagram skipped) if it does not fit or the ring
    /// lost the pending range.
    pub(crate) fn place<'t, S: TxStorage>(
        &mut self,
        tx: &'t mut TxRing<S>,
        len: usize,
    ) -> Option<&'t mut [u8]> {
        let from = self.received;
        self.received += 1;
        if from >= self.slots.count || len > self.payload_len() {
            return None;
        }
        let to = self.committed;
        if from != to {
            let rest = TxSlots {
                first: self.slots.first + to,
                count: self.slots.count - to,
                ..self.slots
            };
            let mut areas = tx.payload_areas(rest);
            let dst = areas.next()?;
            let src = areas.nth((from - to - 1) as usize)?;
            dst.get_mut(..len)?.copy_from_slice(src.get(..len)?);
        }
        tx.pending_frame_mut(self.slots.first + to)
    }

    /// Publish the slot [`RecvBatch::place`] returned, as a frame of
    /// `frame_len` bytes.
    pub(crate) fn commit<S: TxStorage>(&mut self, tx: &mut TxRing<S>, frame_len: usize) -> bool {
        let ok = tx.commit_pending(frame_len, Offload::default());
        if ok {
            self.committed += 1;
        }
        ok
    }

    /// End the operation: give back the slots not published.
    pub(crate) fn finish<S: TxStorage>(self, tx: &mut TxRing<S>) {
        tx.cancel_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_datagrams_leave_no_hole() {
        let mut tx = TxRing::new(4, 64, 0);
        let sock = SockId::from_parts(0, 1);
        let mut b = RecvBatch::reserve(&mut tx, sock, 3, 10, 20).unwrap();
        assert_eq!(b.payload_len(), 20);
        for (i, area) in tx.payload_areas(b.slots).enumerate() {
            area.fill(b'a' + i as u8);
        }
        // First datagram too big: skipped; second kept, moved to slot 0.
        assert!(b.place(&mut tx, 21).is_none());
        let f = b.place(&mut tx, 5).unwrap();
        f[..10].fill(b'H');
        assert!(b.commit(&mut tx, 15));
        b.skip();
        assert_eq!(b.received(), 3);
        b.finish(&mut tx);
        let frames: Vec<Vec<u8>> = tx.iter().map(|v| v.frame.to_vec()).collect();
        assert_eq!(frames, [b"HHHHHHHHHHbbbbb".to_vec()]);
        assert_eq!(tx.pending(), 0);
        assert_eq!(tx.free(), 3);
    }
}
