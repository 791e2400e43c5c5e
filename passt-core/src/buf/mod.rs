//! Frame buffers between the driver and the translator.
//!
//! The driver owns all frame memory; the translator names bytes by index.
//!
//! - **Ingress**: the driver reads frames from the tap, qemu's socket, or
//!   vhost-user descriptors into memory of its own (an arena, or a VMM's guest
//!   memory) and describes them with [`FrameDesc`]s. [`RxBatch::new`] checks
//!   every descriptor once; after that, frame access cannot go out of bounds.
//!   Socket operations that carry guest payload refer to it with an [`RxSpan`]
//!   instead of copying it, so the driver must run queued operations before it
//!   reuses the arena.
//! - **Egress**: frames for the guest are built in a [`TxRing`]: a fixed number
//!   of fixed-size slots allocated once, each with headroom in front of the
//!   frame so that a driver can add a 4-byte length (qemu's stream socket) or
//!   a virtio-net header and write the lot with one `writev`. The ring is
//!   generic over its storage ([`TxStorage`]), so a VMM can hand it a window of
//!   guest memory instead of a boxed slice.
//! - **Offloads**: both directions carry an [`Offload`] record mirroring the
//!   virtio-net header (`struct virtio_net_hdr`): a tap opened with
//!   `IFF_VNET_HDR` can hand in TCP/UDP super-frames of up to 64 KiB with a
//!   partial checksum, and can take them back.

mod tx;

pub use tx::{TxFrame, TxRing, TxRingError, TxSlots, TxStorage, TxView};

/// Largest frame we accept or build: a 64 KiB IP packet plus an Ethernet
/// header with two VLAN tags.
pub const MAX_FRAME_LEN: usize = 65535 + 22;

bitflags::bitflags! {
    /// Checksum state of a frame (virtio-net header `flags`).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct OffloadFlags: u8 {
        /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum is partial; the sum
        /// from `csum_start` must be folded into `csum_start + csum_offset`.
        const NEEDS_CSUM = 1;
        /// `VIRTIO_NET_HDR_F_DATA_VALID`: checksums were already verified.
        const DATA_VALID = 2;
    }
}

/// Segmentation offload of a super-frame (virtio-net header `gso_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum GsoType {
    /// An ordinary frame.
    #[default]
    None,
    /// TCP over IPv4, to be cut into `gso_size` segments.
    TcpV4,
    /// TCP over IPv6.
    TcpV6,
    /// UDP over IPv4 or IPv6, cut into `gso_size` datagrams (`UDP_L4`).
    UdpL4,
}

/// Offload metadata of one frame, as in the virtio-net header (virtio spec
/// 1.2 §5.1.6). `Offload::default()` is a plain, fully checksummed frame.
///
/// Received metadata is as untrusted as the frame it came with: offsets are
/// range-checked before use, and `DATA_VALID` skips checksum verification,
/// so a driver must clear it on frames from a virtio *driver* (a guest may
/// not set it, virtio 1.2 §5.1.6.2.1) and keep it only where a trusted
/// device set it (a tap opened with `IFF_VNET_HDR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Offload {
    /// Checksum state.
    pub flags: OffloadFlags,
    /// Segmentation requested, if any.
    pub gso: GsoType,
    /// Length of the headers to repeat in front of every segment.
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the partial checksum's coverage starts.
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

/// Where one received frame lies in the driver's memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameDesc {
    /// Byte offset of the frame (its Ethernet header) in the arena.
    pub offset: u32,
    /// Frame length in bytes.
    pub len: u32,
    /// Offload metadata (default for plain frames).
    pub offload: Offload,
}

impl FrameDesc {
    /// A plain frame at `offset`, `len` bytes long.
    pub const fn new(offset: u32, len: u32) -> Self {
        FrameDesc {
            offset,
            len,
            offload: Offload {
                flags: OffloadFlags::empty(),
                gso: GsoType::None,
                hdr_len: 0,
                gso_size: 0,
                csum_start: 0,
                csum_offset: 0,
            },
        }
    }
}

/// Part of a received frame, as socket operations carry guest payload.
///
/// Valid only for the batch it was issued against: the driver resolves it with
/// [`RxBatch::span`] before refilling its arena.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxSpan {
    /// Index of the frame in the batch.
    pub frame: u32,
    /// Offset within the frame.
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
}

/// Why a batch of frame descriptors was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// A descriptor points outside the arena.
    #[error("frame {index} ({offset}+{len}) lies outside the {arena}-byte arena")]
    OutOfBounds {
        /// Index of the bad descriptor.
        index: usize,
        /// Its offset.
        offset: u32,
        /// Its length.
        len: u32,
        /// The arena's length.
        arena: usize,
    },
    /// More descriptors than a `u32` index can name.
    #[error("too many frames in one batch")]
    TooMany,
}

/// A batch of received frames: an arena and validated descriptors.
#[derive(Clone, Copy, Debug)]
pub struct RxBatch<'a> {
    arena: &'a [u8],
    frames: &'a [FrameDesc],
}

impl<'a> RxBatch<'a> {
    /// A batch with no frames (for readiness or timer events).
    pub const EMPTY: RxBatch<'static> = RxBatch {
        arena: &[],
        frames: &[],
    };

    /// Check that every descriptor lies inside `arena`.
    ///
    /// # Errors
    /// [`BatchError::OutOfBounds`] naming the first bad descriptor.
    pub fn new(arena: &'a [u8], frames: &'a [FrameDesc]) -> Result<Self, BatchError> {
        if u32::try_from(frames.len()).is_err() {
            return Err(BatchError::TooMany);
        }
        for (index, d) in frames.iter().enumerate() {
            let end = u64::from(d.offset) + u64::from(d.len);
            if end > arena.len() as u64 {
                return Err(BatchError::OutOfBounds {
                    index,
                    offset: d.offset,
                    len: d.len,
                    arena: arena.len(),
                });
            }
        }
        Ok(RxBatch { arena, frames })
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the batch has no frames.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// The bytes of frame `i`; empty if `i` is out of range.
    pub fn frame(&self, i: usize) -> &'a [u8] {
        let Some(d) = self.frames.get(i) else {
            return &[];
        };
        let start = d.offset as usize;
        // Checked in `new`; `get` keeps this panic-free regardless.
        self.arena.get(start..start + d.len as usize).unwrap_or(&[])
    }

    /// The offload metadata of frame `i` (default if out of range).
    pub fn offload(&self, i: usize) -> Offload {
        self.frames.get(i).map(|d| d.offload).unwrap_or_default()
    }

    /// Iterate over `(index, bytes, offload)` of every frame.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &'a [u8], Offload)> + '_ {
        (0..self.frames.len()).map(|i| (i, self.frame(i), self.offload(i)))
    }

    /// The bytes a span names; `None` if it does not fit its frame.
    pub fn span(&self, s: RxSpan) -> Option<&'a [u8]> {
        let f = self.frame(usize::try_from(s.frame).ok()?);
        let start = usize::try_from(s.offset).ok()?;
        f.get(start..start.checked_add(usize::try_from(s.len).ok()?)?)
    }

    /// A span covering `sub`, which must be a sub-slice of frame `i`.
    pub fn span_of(&self, i: usize, sub: &[u8]) -> Option<RxSpan> {
        let f = self.frame(i);
        let off = (sub.as_ptr() as usize).checked_sub(f.as_ptr() as usize)?;
        if off.checked_add(sub.len())? > f.len() {
            return None;
        }
        Some(RxSpan {
            frame: u32::try_from(i).ok()?,
            offset: u32::try_from(off).ok()?,
            len: u32::try_from(sub.len()).ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_checks_descriptors_once() {
        let arena = [0u8, 1, 2, 3, 4, 5, 6, 7];
        let descs = [FrameDesc::new(0, 3), FrameDesc::new(3, 5)];
        let b = RxBatch::new(&arena, &descs).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(b.frame(0), &[0, 1, 2]);
        assert_eq!(b.frame(1), &[3, 4, 5, 6, 7]);
        assert_eq!(b.frame(2), &[] as &[u8]);
        let sub = &b.frame(1)[1..4];
        let s = b.span_of(1, sub).unwrap();
        assert_eq!(
            s,
            RxSpan {
                frame: 1,
                offset: 1,
                len: 3
            }
        );
        assert_eq!(b.span(s), Some(&[4u8, 5, 6][..]));
        assert_eq!(
            b.span(RxSpan {
                frame: 1,
                offset: 4,
                len: 2
            }),
            None
        );
        assert_eq!(
            b.span(RxSpan {
                frame: 1,
                offset: u32::MAX,
                len: u32::MAX
            }),
            None
        );
        assert_eq!(b.span_of(0, &arena[4..5]), None);

        let bad = [FrameDesc::new(6, 3)];
        assert_eq!(
            RxBatch::new(&arena, &bad).unwrap_err(),
            BatchError::OutOfBounds {
                index: 0,
                offset: 6,
                len: 3,
                arena: 8
            }
        );
        let huge = [FrameDesc::new(u32::MAX, u32::MAX)];
        assert!(RxBatch::new(&arena, &huge).is_err());
        assert!(RxBatch::EMPTY.is_empty());
    }
}
