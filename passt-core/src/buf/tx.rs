//! The egress ring: frames for the guest, built in place in fixed slots.
//!
//! Slot `i` occupies `[i * (headroom + frame_cap), ...)` of the storage:
//! `headroom` bytes the driver may fill (length prefix, virtio-net header),
//! then up to `frame_cap` bytes of Ethernet frame. The translator reserves the
//! next free slot, writes a frame into it and commits its length; the driver
//! looks at committed frames in order, writes them out and consumes what it
//! wrote. A full ring refuses reservations: the caller counts a drop or
//! applies backpressure, and nothing grows.

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
        })
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

    /// Whether every slot holds a committed frame.
    pub fn is_full(&self) -> bool {
        self.count == self.slots
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

    /// Reserve the next free slot for a new frame; `None` if the ring is full.
    pub fn reserve(&mut self) -> Option<TxFrame<'_, S>> {
        if self.is_full() {
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

    /// Drop the `n` oldest frames (they were written out); at most all.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.count);
        self.head = (self.head + n) % self.slots;
        self.count -= n;
    }

    /// Drop every committed frame.
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
