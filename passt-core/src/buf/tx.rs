//! The egress ring: frames for the guest, built in place in fixed slots.
//!
//! Slot `i` occupies `[i * (headroom + frame_cap), ...)` of the storage:
//! `headroom` bytes the driver may fill (length prefix, virtio-net header),
//! then up to `frame_cap` bytes of Ethernet frame. The translator reserves the
//! next free slot, writes a frame into it and commits its length; the driver
//! looks at committed frames in order, writes them out and consumes what it
//! wrote. A full ring refuses reservations: the caller counts a drop or
//! applies backpressure, and nothing grows.
//!
//! # Memory
//! A ring sized for many frames of the largest size (64 KiB) is large, but
//! only the slots written cost memory: an emptied ring starts again from
//! its first slot, and [`TxRing::set_budget`] bounds the bytes of frames
//! socket reads queue at once, so that a burst of large frames writes a
//! few megabytes of the ring, not all of it. The driver may give the pages back to the
//! kernel when the ring is idle ([`TxRing::idle_storage`]).

use super::Offload;

/// Memory a [`TxRing`] can build frames in: a boxed slice, a `Vec`, or a
/// driver's own mapping (e.g. guest memory for vhost-user).
pub trait TxStorage: AsRef<[u8]> + AsMut<[u8]> {}
impl<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized> TxStorage for T {}

/// A contiguous range of ring slots, as a socket read may fill the payload
/// areas of several frames at once (`SockOp::Peek`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxSlots {
    /// First slot index.
    pub first: u32,
    /// Number of slots.
    pub count: u32,
    /// Offset of the payload area within each frame (after the headers).
    pub payload_offset: u16,
    /// Payload bytes each slot can take.
    pub payload_len: u16,
}

/// Why a ring could not be built over the given storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxRingError {
    /// Storage shorter than `slots * (headroom + frame_cap)`.
    #[error("storage of {have} bytes cannot hold {need} bytes of slots")]
    StorageTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// Zero slots, or a size that overflows.
    #[error("invalid ring geometry")]
    Geometry,
}

/// A committed frame as the driver sees it.
#[derive(Clone, Copy, Debug)]
pub struct TxView<'a> {
    /// The Ethernet frame.
    pub frame: &'a [u8],
    /// The slot's headroom immediately followed by the frame: contiguous, so
    /// a prefix written into the end of the headroom goes out in one piece.
    pub with_headroom: &'a [u8],
    /// Offload metadata of the frame.
    pub offload: Offload,
}

/// A preallocated ring of outgoing frames.
pub struct TxRing<S: TxStorage = Box<[u8]>> {
    storage: S,
    slots: usize,
    headroom: usize,
    frame_cap: usize,
    lens: Box<[u32]>,
    offload: Box<[Offload]>,
    head: usize,
    count: usize,
    pending: usize,
    /// Bytes of the committed frames.
    bytes: usize,
    /// Most bytes of committed and pending frames ([`TxRing::set_budget`]).
    budget: usize,
}

impl TxRing<Box<[u8]>> {
    /// A ring of `slots` frames of up to `frame_cap` bytes, each preceded by
    /// `headroom` bytes. Allocates once.
    ///
    /// # Panics
    /// If `slots` or `frame_cap` is zero, `frame_cap` exceeds `u32::MAX`, or
    /// the total size overflows `usize`: programming errors of the driver at
    /// start-up.
    pub fn new(slots: usize, frame_cap: usize, headroom: usize) -> Self {
        let total = geometry(slots, frame_cap, headroom).expect("TxRing geometry");
        Self::with_storage(
            vec![0u8; total].into_boxed_slice(),
            slots,
            frame_cap,
            headroom,
        )
        .expect("storage sized above")
    }
}

/// Bytes of storage a ring geometry needs, if the geometry is valid.
fn geometry(slots: usize, frame_cap: usize, headroom: usize) -> Option<usize> {
    headroom
        .checked_add(frame_cap)
        .and_then(|s| s.checked_mul(slots))
        .filter(|_| slots > 0 && frame_cap > 0 && u32::try_from(frame_cap).is_ok())
}

impl<S: TxStorage> TxRing<S> {
    /// A ring over memory the caller provides.
    ///
    /// # Errors
    /// [`TxRingError`] if the storage is too small or the geometry invalid.
    pub fn with_storage(
        storage: S,
        slots: usize,
        frame_cap: usize,
        headroom: usize,
    ) -> Result<Self, TxRingError> {
        let need = geometry(slots, frame_cap, headroom).ok_or(TxRingError::Geometry)?;
        let have = storage.as_ref().len();
        if have < need {
            return Err(TxRingError::StorageTooSmall { need, have });
        }
        Ok(TxRing {
            storage,
            slots,
            headroom,
            frame_cap,
            lens: vec![0; slots].into_boxed_slice(),
            offload: vec![Offload::default(); slots].into_boxed_slice(),
            head: 0,
            count: 0,
            pending: 0,
            bytes: 0,
            budget: usize::MAX,
        })
    }

    /// Aim to hold at most `bytes` of frames at once (no limit by
    /// default): what [`TxRing::budget_frames`] tells a producer before it
    /// reserves slots for a socket read (TCP and UDP: the data waits in the
    /// socket meanwhile). Reservations themselves are not limited.
    pub fn set_budget(&mut self, bytes: usize) {
        self.budget = bytes;
    }

    /// How many more frames of `frame_len` bytes fit in the budget
    /// ([`TxRing::set_budget`]): at least one while no frame is committed.
    pub fn budget_frames(&self, frame_len: usize) -> usize {
        let fit = self.budget.saturating_sub(self.bytes) / frame_len.max(1);
        if self.count == 0 {
            fit.max(1)
        } else {
            fit
        }
    }

    /// Bytes of the committed frames.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The whole storage, while no frame is committed or pending (for the
    /// driver to give its pages back to the kernel after a burst); `None`
    /// otherwise.
    pub fn idle_storage(&mut self) -> Option<&mut S> {
        (self.count == 0 && self.pending == 0).then_some(&mut self.storage)
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots
    }

    /// Committed frames waiting for the driver.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no frame is waiting.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Whether every slot holds a committed or pending frame.
    pub fn is_full(&self) -> bool {
        self.count + self.pending == self.slots
    }

    /// Slots neither committed nor pending.
    pub fn free(&self) -> usize {
        self.slots - self.count - self.pending
    }

    /// The largest frame a slot holds.
    pub fn frame_cap(&self) -> usize {
        self.frame_cap
    }

    /// Headroom in front of every frame.
    pub fn headroom(&self) -> usize {
        self.headroom
    }

    fn slot_start(&self, slot: usize) -> usize {
        slot * (self.headroom + self.frame_cap)
    }

    /// Reserve the next free slot for a new frame; `None` if the ring is
    /// full or slots are pending (see [`TxRing::reserve_slots`]).
    pub fn reserve(&mut self) -> Option<TxFrame<'_, S>> {
        if self.is_full() || self.pending > 0 {
            return None;
        }
        let slot = (self.head + self.count) % self.slots;
        Some(TxFrame { ring: self, slot })
    }

    /// Build a frame with `f`, which writes into the frame area and returns
    /// the length written (or `None` to abandon the slot).
    ///
    /// Returns `false` if the ring was full or `f` gave up.
    pub fn push_with(&mut self, f: impl FnOnce(&mut [u8]) -> Option<usize>) -> bool {
        let Some(mut frame) = self.reserve() else {
            return false;
        };
        match f(frame.buf()) {
            Some(len) => frame.commit(len),
            None => false,
        }
    }

    fn view(&self, slot: usize) -> TxView<'_> {
        let start = self.slot_start(slot);
        let len = self.lens[slot] as usize;
        let all = &self.storage.as_ref()[start..start + self.headroom + len];
        TxView {
            frame: &all[self.headroom..],
            with_headroom: all,
            offload: self.offload[slot],
        }
    }

    /// The oldest committed frame.
    pub fn front(&self) -> Option<TxView<'_>> {
        (self.count > 0).then(|| self.view(self.head))
    }

    /// Committed frames, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = TxView<'_>> + '_ {
        (0..self.count).map(move |i| self.view((self.head + i) % self.slots))
    }

    /// Let the driver fill the headroom of every committed frame, oldest
    /// first: `f(headroom, frame_len, offload)`.
    pub fn fill_headroom(&mut self, mut f: impl FnMut(&mut [u8], usize, &Offload)) {
        for i in 0..self.count {
            let slot = (self.head + i) % self.slots;
            let start = self.slot_start(slot);
            let (hr, len, off) = (self.headroom, self.lens[slot] as usize, self.offload[slot]);
            f(&mut self.storage.as_mut()[start..start + hr], len, &off);
        }
    }

    /// Reserve up to `count` consecutive free slots after the committed
    /// frames, for a socket read to fill their payload areas
    /// (`SockOp::Peek`). The range never wraps around the end of the ring,
    /// so it may be shorter than asked; `None` if no slot is free or slots
    /// are already pending. While slots are pending, [`TxRing::reserve`]
    /// refuses: pending slots are committed in order with
    /// [`TxRing::commit_pending`], and the rest given back with
    /// [`TxRing::cancel_pending`].
    pub fn reserve_slots(
        &mut self,
        count: u32,
        payload_offset: u16,
        payload_len: u16,
    ) -> Option<TxSlots> {
        if self.pending > 0 || self.is_full() || count == 0 {
            return None;
        }
        if usize::from(payload_offset) + usize::from(payload_len) > self.frame_cap {
            return None;
        }
        let first = (self.head + self.count) % self.slots;
        let room = (self.slots - first).min(self.free());
        let n = (count as usize).min(room);
        self.pending = n;
        Some(TxSlots {
            first: first as u32,
            count: n as u32,
            payload_offset,
            payload_len,
        })
    }

    /// Slots reserved and not yet committed or cancelled.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// The frame area of a pending slot, to write headers (translator) or
    /// payload (driver); `None` for a slot that is not pending.
    pub fn pending_frame_mut(&mut self, slot: u32) -> Option<&mut [u8]> {
        let first = (self.head + self.count) % self.slots;
        let slot = slot as usize;
        if self.pending == 0 || slot < first || slot >= first + self.pending {
            return None;
        }
        let start = self.slot_start(slot) + self.headroom;
        let cap = self.frame_cap;
        Some(&mut self.storage.as_mut()[start..start + cap])
    }

    /// The payload areas of `slots` (which must be the pending range), in
    /// order, for one vectored read.
    pub fn payload_areas(&mut self, slots: TxSlots) -> impl Iterator<Item = &mut [u8]> + '_ {
        let first = (self.head + self.count) % self.slots;
        let ok = self.pending > 0
            && slots.first as usize == first
            && slots.count as usize <= self.pending;
        let n = if ok { slots.count as usize } else { 0 };
        let size = self.headroom + self.frame_cap;
        let (hr, off, len) = (
            self.headroom,
            usize::from(slots.payload_offset),
            usize::from(slots.payload_len),
        );
        self.storage
            .as_mut()
            .chunks_exact_mut(size)
            .skip(first)
            .take(n)
            .map(move |slot| &mut slot[hr + off..hr + off + len])
    }

    /// Publish the oldest pending slot as a frame of `len` bytes; `false`
    /// (and nothing published) if none is pending or `len` is out of range.
    pub fn commit_pending(&mut self, len: usize, offload: Offload) -> bool {
        if self.pending == 0 || len == 0 || len > self.frame_cap {
            return false;
        }
        let slot = (self.head + self.count) % self.slots;
        self.lens[slot] = len as u32;
        self.offload[slot] = offload;
        self.count += 1;
        self.bytes += len;
        self.pending -= 1;
        true
    }

    /// Give back every pending slot.
    pub fn cancel_pending(&mut self) {
        self.pending = 0;
    }

    /// Drop the `n` oldest frames (they were written out); at most all.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.count);
        for i in 0..n {
            let len = self.lens[(self.head + i) % self.slots] as usize;
            self.bytes = self.bytes.saturating_sub(len);
        }
        self.head = (self.head + n) % self.slots;
        self.count -= n;
        if self.count == 0 && self.pending == 0 {
            // Empty: start again from the first slot, so that only as many
            // slots are ever written as were in flight at once (the rest of
            // a large ring costs no memory until written).
            self.head = 0;
        }
    }

    /// Drop every committed frame (pending slots stay pending).
    pub fn clear(&mut self) {
        self.consume(self.count);
    }
}

/// A reserved slot being filled; dropping it without [`TxFrame::commit`]
/// leaves the slot free.
pub struct TxFrame<'r, S: TxStorage> {
    ring: &'r mut TxRing<S>,
    slot: usize,
}

impl<S: TxStorage> TxFrame<'_, S> {
    /// The frame area of the slot, `frame_cap` bytes long. Stale bytes from an
    /// earlier frame may be present: write every byte you commit.
    pub fn buf(&mut self) -> &mut [u8] {
        let start = self.ring.slot_start(self.slot) + self.ring.headroom;
        let cap = self.ring.frame_cap;
        &mut self.ring.storage.as_mut()[start..start + cap]
    }

    /// Publish the first `len` bytes as a frame; `false` (and nothing
    /// published) if `len` is zero or exceeds the slot.
    pub fn commit(self, len: usize) -> bool {
        self.commit_with_offload(len, Offload::default())
    }

    /// Publish a frame with offload metadata.
    pub fn commit_with_offload(self, len: usize, offload: Offload) -> bool {
        if len == 0 || len > self.ring.frame_cap {
            return false;
        }
        self.ring.lens[self.slot] = len as u32;
        self.ring.offload[self.slot] = offload;
        self.ring.count += 1;
        self.ring.bytes += len;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_in_order_and_wrap() {
        let mut r = TxRing::new(3, 16, 4);
        for n in 1..=3u8 {
            assert!(r.push_with(|b| {
                b[..n as usize].fill(n);
                Some(n as usize)
            }));
        }
        assert!(r.is_full());
        assert!(!r.push_with(|_| Some(1)));
        let lens: Vec<usize> = r.iter().map(|v| v.frame.len()).collect();
        assert_eq!(lens, [1, 2, 3]);
        r.fill_headroom(|hr, len, _| hr.copy_from_slice(&(len as u32).to_be_bytes()));
        let v = r.front().unwrap();
        assert_eq!(v.with_headroom, &[0, 0, 0, 1, 1]);
        r.consume(2);
        assert_eq!(r.front().unwrap().frame, &[3, 3, 3]);
        // Wraps into slot 0 again.
        assert!(r.push_with(|b| {
            b[0] = 9;
            Some(1)
        }));
        let frames: Vec<Vec<u8>> = r.iter().map(|v| v.frame.to_vec()).collect();
        assert_eq!(frames, [vec![3, 3, 3], vec![9]]);
        r.clear();
        assert!(r.is_empty());
    }

    #[test]
    fn pending_slots_are_filled_in_place_then_committed_in_order() {
        let mut r = TxRing::new(4, 16, 2);
        assert!(r.push_with(|b| {
            b[0] = 1;
            Some(1)
        }));
        // Two slots, payload at offset 4, 8 bytes each.
        let s = r.reserve_slots(8, 4, 8).unwrap();
        assert_eq!((s.first, s.count), (1, 3));
        assert!(r.is_full());
        assert!(r.reserve().is_none());
        assert!(r.reserve_slots(1, 0, 1).is_none());
        r.pending_frame_mut(1).unwrap()[..4].copy_from_slice(b"HDR1");
        r.pending_frame_mut(2).unwrap()[..4].copy_from_slice(b"HDR2");
        assert!(r.pending_frame_mut(0).is_none());
        for (i, area) in r.payload_areas(s).enumerate() {
            assert_eq!(area.len(), 8);
            area.fill(b'a' + i as u8);
        }
        assert!(r.commit_pending(12, Offload::default()));
        assert!(r.commit_pending(6, Offload::default()));
        r.cancel_pending();
        let frames: Vec<Vec<u8>> = r.iter().map(|v| v.frame.to_vec()).collect();
        assert_eq!(frames[1], b"HDR1aaaaaaaa");
        assert_eq!(frames[2], b"HDR2bb");
        assert_eq!(r.len(), 3);
        assert_eq!(r.free(), 1);
        // The range never wraps: after consuming two, the tail has one slot
        // left.
        r.consume(2);
        let s = r.reserve_slots(4, 0, 16).unwrap();
        assert_eq!((s.first, s.count), (3, 1));
        assert!(!r.commit_pending(17, Offload::default()));
        r.cancel_pending();
        assert!(!r.commit_pending(1, Offload::default()));
        assert_eq!(r.reserve_slots(1, 10, 10), None);
        // Emptied, the ring starts again from its first slot.
        r.consume(1);
        assert_eq!(r.bytes(), 0);
        let s = r.reserve_slots(4, 0, 16).unwrap();
        assert_eq!((s.first, s.count), (0, 4));
    }

    #[test]
    fn the_budget_counts_the_bytes_held() {
        let mut r = TxRing::new(8, 100, 0);
        assert_eq!(r.budget_frames(100), usize::MAX / 100);
        r.set_budget(250);
        // 100-byte frames: two fit.
        assert_eq!(r.budget_frames(100), 2);
        let s = r.reserve_slots(8, 20, 80).unwrap();
        assert!(r.commit_pending(100, Offload::default()));
        assert!(r.commit_pending(90, Offload::default()));
        r.cancel_pending();
        assert_eq!(s.count, 8);
        assert_eq!(r.bytes(), 190);
        assert!(r.idle_storage().is_none());
        // 60 bytes left: no room for another 100-byte frame.
        assert_eq!(r.budget_frames(100), 0);
        assert!(r.push_with(|_| Some(70)));
        assert_eq!(r.bytes(), 260);
        r.consume(2);
        assert_eq!(r.bytes(), 70);
        assert_eq!(r.budget_frames(100), 1);
        r.clear();
        // An empty ring has room for one whatever the budget.
        r.set_budget(10);
        assert_eq!(r.budget_frames(100), 1);
        assert_eq!(r.idle_storage().map(|s| s.len()), Some(800));
    }

    #[test]
    fn bad_commits_publish_nothing() {
        let mut r = TxRing::new(2, 8, 0);
        assert!(!r.push_with(|_| Some(0)));
        assert!(!r.push_with(|_| Some(9)));
        assert!(!r.push_with(|_| None));
        {
            let mut f = r.reserve().unwrap();
            f.buf()[0] = 1;
            // dropped uncommitted
        }
        assert!(r.is_empty());
        assert_eq!(
            TxRing::with_storage(vec![0u8; 10], 2, 8, 0).err(),
            Some(TxRingError::StorageTooSmall { need: 16, have: 10 })
        );
        assert_eq!(
            TxRing::with_storage(vec![0u8; 10], 0, 8, 0).err(),
            Some(TxRingError::Geometry)
        );
        // Caller-provided storage, e.g. a window of guest memory.
        let mut mem = [0u8; 32];
        let mut r = TxRing::with_storage(&mut mem[..], 2, 16, 0).unwrap();
        assert!(r.push_with(|b| {
            b[..2].copy_from_slice(b"hi");
            Some(2)
        }));
        assert_eq!(r.front().unwrap().frame, b"hi");
    }
}
