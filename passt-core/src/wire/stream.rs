//! qemu's stream framing: a 4-byte big-endian length, then one Ethernet
//! frame, repeated over a byte stream (a UNIX or TCP stream socket).
//!
//! This is the format of qemu's `-netdev stream` and `-netdev socket`
//! back-ends (`net/stream.c`, `net/socket.c`: each packet is preceded by its
//! length as a 32-bit value in network byte order) and of passt's socket.
//! A stream socket keeps no message boundaries: one `recv` may return half a
//! length field, several frames, or a frame cut anywhere.
//!
//! # Decoding
//!
//! [`StreamDecoder`] works over a receive buffer the caller provides (any
//! `AsRef<[u8]> + AsMut<[u8]>` storage, allocated once): the driver reads
//! into [`StreamDecoder::read_buf`], reports how much arrived with
//! [`StreamDecoder::commit_read`], then takes complete frames with
//! [`StreamDecoder::next_frame`] as [`FrameDesc`]s into
//! [`StreamDecoder::data`], ready for [`crate::buf::RxBatch::new`]. Frames
//! are never copied out, and nothing is allocated per frame. Only bytes that
//! were reported as received are ever looked at.
//!
//! Frames stay where they were received until the next `read_buf` call,
//! which may move the unfinished tail of the stream (at most one partial
//! frame) to the front of the buffer when the room behind it could not hold
//! a frame of the largest size. The borrow checker enforces the order: a
//! batch borrowing `data()` must be gone before `read_buf` can be called.
//!
//! # Bad lengths
//!
//! - **0**: an empty record; its 4 bytes are skipped
//!   ([`StreamError::Empty`]).
//! - **1 to 13**: shorter than an Ethernet header; the record is skipped
//!   whole once it has arrived ([`StreamError::Runt`]).
//! - **above [`MAX_FRAME_LEN`]** (65535 bytes of IP packet plus an Ethernet
//!   header with two VLAN tags): the peer is not speaking this protocol, or
//!   the stream is out of step; skipping 4 GiB is not an option, so the
//!   decoder stops ([`StreamError::TooLong`], [`StreamError::is_fatal`]) and
//!   the driver closes the connection. Until [`StreamDecoder::reset`] it
//!   yields nothing more.
//!
//! Each case has a counter in [`StreamStats`]. A connection that ends in the
//! middle of a record leaves [`StreamDecoder::pending`] bytes behind, which
//! the driver may log and drops with `reset`.
//!
//! # Encoding
//!
//! Frames for the guest are built in a [`TxRing`] whose slots have at least
//! [`LEN_PREFIX`] bytes of headroom: [`fill_ring_prefixes`] writes each
//! frame's length into the last 4 bytes of its headroom, and [`framed`]
//! gives the prefix and the frame as one contiguous slice, so that a single
//! `writev`/`sendmsg` sends many records without copying. [`encode`] frames
//! one packet into a caller buffer, for tools and tests.

use zerocopy::byteorder::network_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Result, WireError};
use crate::buf::{FrameDesc, TxRing, TxStorage, TxView};

/// Length of the prefix in front of every frame.
pub const LEN_PREFIX: usize = 4;

/// Shortest frame accepted: an untagged Ethernet header.
pub const MIN_FRAME_LEN: usize = super::ethernet::HEADER_LEN;

/// Longest frame accepted: [`crate::buf::MAX_FRAME_LEN`].
pub const MAX_FRAME_LEN: usize = crate::buf::MAX_FRAME_LEN;

/// Smallest receive buffer a [`StreamDecoder`] works with: room for one
/// record of the largest size.
pub const MIN_BUFFER: usize = LEN_PREFIX + MAX_FRAME_LEN;

/// The length prefix as it sits in the stream.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct StreamHeader {
    /// Length of the frame that follows, in bytes.
    pub len: U32,
}

/// A record the decoder did not turn into a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A length of zero: skipped.
    #[error("empty record")]
    Empty,
    /// A frame shorter than an Ethernet header: skipped.
    #[error("frame of {len} bytes is shorter than an Ethernet header")]
    Runt {
        /// The length given.
        len: u32,
    },
    /// A length above [`MAX_FRAME_LEN`]: the stream cannot be followed any
    /// further; the connection should be reset.
    #[error("frame length {len} exceeds {MAX_FRAME_LEN} bytes")]
    TooLong {
        /// The length given.
        len: u32,
    },
}

impl StreamError {
    /// Whether the decoder stopped: the connection must be closed, and the
    /// decoder [`StreamDecoder::reset`] before it serves another.
    pub fn is_fatal(&self) -> bool {
        matches!(self, StreamError::TooLong { .. })
    }
}

/// Counters of a decoder, kept across [`StreamDecoder::reset`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Frames decoded.
    pub frames: u64,
    /// Bytes reported received.
    pub bytes: u64,
    /// Empty records skipped.
    pub empty: u64,
    /// Records shorter than an Ethernet header skipped.
    pub runts: u64,
    /// Records too long to follow (each ended a connection).
    pub too_long: u64,
    /// Resets with an unfinished record in the buffer.
    pub truncated: u64,
}

/// Why a decoder could not be built over the given storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("receive buffer of {have} bytes is below the {MIN_BUFFER}-byte minimum")]
pub struct BufferTooSmall {
    /// Bytes given.
    pub have: usize,
}

/// Incremental decoder of a length-prefixed frame stream over a receive
/// buffer it is given once (see the module docs).
#[derive(Debug)]
pub struct StreamDecoder<S = Box<[u8]>> {
    buf: S,
    /// First byte not yet decoded.
    start: usize,
    /// End of the bytes received.
    end: usize,
    /// Set by a fatal record; cleared by `reset`.
    stopped: bool,
    stats: StreamStats,
}

impl StreamDecoder<Box<[u8]>> {
    /// A decoder with a buffer of `capacity` bytes (at least
    /// [`MIN_BUFFER`]), allocated once.
    pub fn with_capacity(capacity: usize) -> Self {
        let cap = capacity.max(MIN_BUFFER);
        StreamDecoder {
            buf: vec![0u8; cap].into_boxed_slice(),
            start: 0,
            end: 0,
            stopped: false,
            stats: StreamStats::default(),
        }
    }
}

impl<S: AsRef<[u8]> + AsMut<[u8]>> StreamDecoder<S> {
    /// A decoder over storage the caller provides.
    ///
    /// # Errors
    /// [`BufferTooSmall`] if `buf` cannot hold a record of the largest size.
    pub fn new(buf: S) -> core::result::Result<Self, BufferTooSmall> {
        let have = buf.as_ref().len();
        if have < MIN_BUFFER {
            return Err(BufferTooSmall { have });
        }
        Ok(StreamDecoder {
            buf,
            start: 0,
            end: 0,
            stopped: false,
            stats: StreamStats::default(),
        })
    }

    /// Where the next read goes: the free space after the bytes received.
    ///
    /// If the unfinished record at the head of the buffer could not grow to
    /// the largest size in the room left, it is first moved to the front
    /// (a copy of less than one record). Never empty while the decoder has
    /// not stopped, because a complete record is always taken out by
    /// [`StreamDecoder::next_frame`] before more is read.
    pub fn read_buf(&mut self) -> &mut [u8] {
        let cap = self.buf.as_ref().len();
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if cap - self.start < MIN_BUFFER {
            self.buf.as_mut().copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let end = self.end;
        self.buf.as_mut().get_mut(end..).unwrap_or_default()
    }

    /// Report that `n` bytes were read into [`StreamDecoder::read_buf`].
    /// A count beyond the free space (a driver bug) is cut to it.
    pub fn commit_read(&mut self, n: usize) {
        let free = self.buf.as_ref().len() - self.end;
        let n = n.min(free);
        self.end += n;
        self.stats.bytes += n as u64;
    }

    /// The next complete frame, as a descriptor into
    /// [`StreamDecoder::data`]; `None` when the received bytes hold no
    /// complete record (or the decoder has stopped).
    ///
    /// A skipped record comes out as a non-fatal [`StreamError`]; a fatal
    /// one stops the decoder (see the module docs).
    pub fn next_frame(&mut self) -> Option<core::result::Result<FrameDesc, StreamError>> {
        if self.stopped {
            return None;
        }
        let avail = self.buf.as_ref().get(self.start..self.end)?;
        let (hdr, rest) = StreamHeader::ref_from_prefix(avail).ok()?;
        let len32 = hdr.len.get();
        let len = len32 as usize;
        if len > MAX_FRAME_LEN {
            self.stopped = true;
            self.stats.too_long += 1;
            self.start = self.end;
            return Some(Err(StreamError::TooLong { len: len32 }));
        }
        if rest.len() < len {
            return None;
        }
        let offset = self.start + LEN_PREFIX;
        self.start = offset + len;
        if len == 0 {
            self.stats.empty += 1;
            return Some(Err(StreamError::Empty));
        }
        if len < MIN_FRAME_LEN {
            self.stats.runts += 1;
            return Some(Err(StreamError::Runt { len: len32 }));
        }
        self.stats.frames += 1;
        // Both fit: the buffer index is below `offset + len`, checked
        // against the received bytes; a buffer beyond 4 GiB is refused.
        let offset = u32::try_from(offset).ok()?;
        Some(Ok(FrameDesc::new(offset, len32)))
    }

    /// The whole receive buffer, for [`crate::buf::RxBatch::new`] with the
    /// descriptors from [`StreamDecoder::next_frame`].
    pub fn data(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Bytes received but not yet decoded: an unfinished record.
    pub fn pending(&self) -> usize {
        self.end - self.start
    }

    /// Whether a fatal record stopped the decoder.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Forget everything received, for a new connection. An unfinished
    /// record left behind is counted in [`StreamStats::truncated`].
    pub fn reset(&mut self) {
        if self.start != self.end {
            self.stats.truncated += 1;
        }
        self.start = 0;
        self.end = 0;
        self.stopped = false;
    }

    /// Counters since the decoder was made.
    pub fn stats(&self) -> &StreamStats {
        &self.stats
    }
}

/// Write the length prefix of a `frame_len`-byte frame into the last
/// [`LEN_PREFIX`] bytes of `headroom`.
///
/// # Errors
/// [`WireError::BufferTooSmall`] if the headroom is shorter than the prefix;
/// [`WireError::BadLength`] if `frame_len` does not fit 32 bits.
pub fn write_prefix(headroom: &mut [u8], frame_len: usize) -> Result<()> {
    let len = u32::try_from(frame_len).map_err(|_| WireError::BadLength)?;
    let at = headroom
        .len()
        .checked_sub(LEN_PREFIX)
        .ok_or(WireError::BufferTooSmall)?;
    let hdr = StreamHeader { len: U32::new(len) };
    headroom
        .get_mut(at..)
        .ok_or(WireError::BufferTooSmall)?
        .copy_from_slice(hdr.as_bytes());
    Ok(())
}

/// Write the length prefix of every committed frame of `tx` into its
/// headroom, so that [`framed`] views can be sent as they are.
///
/// # Errors
/// [`WireError::BufferTooSmall`] if the ring's headroom is shorter than
/// [`LEN_PREFIX`] (nothing is written then).
pub fn fill_ring_prefixes<S: TxStorage>(tx: &mut TxRing<S>) -> Result<()> {
    if tx.headroom() < LEN_PREFIX {
        return Err(WireError::BufferTooSmall);
    }
    tx.fill_headroom(|hr, len, _| {
        // Cannot fail: the headroom is long enough and a slot's frame
        // length fits 32 bits (the ring checks its frame capacity).
        let _ = write_prefix(hr, len);
    });
    Ok(())
}

/// A committed frame with its length prefix in front, as one slice: the
/// last [`LEN_PREFIX`] bytes of the headroom and the frame. Meaningful after
/// [`fill_ring_prefixes`]; empty if the ring has less headroom than that.
pub fn framed<'a>(view: &TxView<'a>) -> &'a [u8] {
    let all = view.with_headroom;
    all.len()
        .checked_sub(view.frame.len() + LEN_PREFIX)
        .and_then(|at| all.get(at..))
        .unwrap_or_default()
}

/// Frame one packet: its length prefix then its bytes, into `buf`. Returns
/// the bytes written.
///
/// # Errors
/// [`WireError::BufferTooSmall`] if `buf` is short; [`WireError::BadLength`]
/// if `frame` is longer than a 32-bit length can say.
pub fn encode(frame: &[u8], buf: &mut [u8]) -> Result<usize> {
    let total = frame
        .len()
        .checked_add(LEN_PREFIX)
        .ok_or(WireError::BadLength)?;
    let out = buf.get_mut(..total).ok_or(WireError::BufferTooSmall)?;
    let (hdr, body) = out.split_at_mut(LEN_PREFIX);
    write_prefix(hdr, frame.len())?;
    body.copy_from_slice(frame);
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real ARP request of a Linux guest (see examples/conversation.rs).
    const ARP: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06, 0x00,
        0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 192, 0, 2,
        10, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
    ];

    fn record(frame: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; frame.len() + LEN_PREFIX];
        assert_eq!(encode(frame, &mut v), Ok(v.len()));
        v
    }

    /// What a decoder yields: frames, or the skip reasons.
    #[derive(Debug, PartialEq, Eq)]
    enum Out {
        Frame(Vec<u8>),
        Skip(StreamError),
    }

    /// Feed `stream` to a fresh decoder in reads cut at `cuts`, draining
    /// after each read.
    fn decode_in_reads(stream: &[u8], cuts: &[usize]) -> (Vec<Out>, usize) {
        let mut d = StreamDecoder::with_capacity(MIN_BUFFER);
        let mut out = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().chain(core::iter::once(&stream.len())) {
            let piece = &stream[at..cut.max(at)];
            at = cut.max(at);
            let mut piece = piece;
            while !piece.is_empty() {
                let room = d.read_buf();
                let n = room.len().min(piece.len());
                room[..n].copy_from_slice(&piece[..n]);
                d.commit_read(n);
                piece = &piece[n..];
                drain(&mut d, &mut out);
            }
        }
        (out, d.pending())
    }

    fn drain(d: &mut StreamDecoder, out: &mut Vec<Out>) {
        while let Some(r) = d.next_frame() {
            match r {
                Ok(desc) => {
                    let (o, l) = (desc.offset as usize, desc.len as usize);
                    out.push(Out::Frame(d.data()[o..o + l].to_vec()));
                }
                Err(e) => out.push(Out::Skip(e)),
            }
        }
    }

    #[test]
    fn prefix_is_big_endian_length() {
        let r = record(&ARP);
        assert_eq!(&r[..4], &[0, 0, 0, 42]);
        assert_eq!(&r[4..], &ARP);
        let mut short = [0u8; 45];
        assert_eq!(encode(&ARP, &mut short), Err(WireError::BufferTooSmall));
        let mut hr = [0xeeu8; 6];
        write_prefix(&mut hr, 0x0102_0304).unwrap();
        assert_eq!(hr, [0xee, 0xee, 1, 2, 3, 4]);
        assert_eq!(
            write_prefix(&mut hr[..3], 1),
            Err(WireError::BufferTooSmall)
        );
    }

    #[test]
    fn frames_split_at_every_offset_come_out_whole() {
        let big: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
        let mut stream = Vec::new();
        stream.extend(record(&ARP));
        stream.extend([0, 0, 0, 0]); // empty
        stream.extend(record(&big));
        stream.extend(record(&ARP[..13])); // runt
        stream.extend(record(&ARP[..14])); // header only: the shortest frame
        let want = vec![
            Out::Frame(ARP.to_vec()),
            Out::Skip(StreamError::Empty),
            Out::Frame(big.clone()),
            Out::Skip(StreamError::Runt { len: 13 }),
            Out::Frame(ARP[..14].to_vec()),
        ];
        // One read, then two reads cut at every offset.
        assert_eq!(decode_in_reads(&stream, &[]), (want_clone(&want), 0));
        for cut in 0..=stream.len() {
            assert_eq!(
                decode_in_reads(&stream, &[cut]),
                (want_clone(&want), 0),
                "cut at {cut}"
            );
        }
        // Three reads around the length field of the big frame.
        let big_at = 46 + 4;
        for a in big_at - 3..big_at + 6 {
            for b in a..big_at + 8 {
                assert_eq!(decode_in_reads(&stream, &[a, b]).0, want_clone(&want));
            }
        }
        // Byte by byte.
        let cuts: Vec<usize> = (1..stream.len()).collect();
        assert_eq!(decode_in_reads(&stream, &cuts), (want, 0));
    }

    fn want_clone(w: &[Out]) -> Vec<Out> {
        w.iter()
            .map(|o| match o {
                Out::Frame(f) => Out::Frame(f.clone()),
                Out::Skip(e) => Out::Skip(*e),
            })
            .collect()
    }

    #[test]
    fn unfinished_records_wait_and_nothing_past_the_data_is_read() {
        let r = record(&ARP);
        for n in 0..r.len() {
            let mut d = StreamDecoder::with_capacity(MIN_BUFFER);
            // Stale bytes past what was received must not count.
            let room = d.read_buf();
            room[..r.len()].copy_from_slice(&r);
            d.commit_read(n);
            assert!(d.next_frame().is_none(), "{n} bytes");
            assert_eq!(d.pending(), n);
            d.reset();
            assert_eq!(d.stats().truncated, u64::from(n > 0));
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn too_long_stops_until_reset() {
        for len in [MAX_FRAME_LEN as u32 + 1, u32::MAX] {
            let mut stream = len.to_be_bytes().to_vec();
            stream.extend(record(&ARP));
            let (out, pending) = decode_in_reads(&stream, &[2]);
            assert_eq!(out, vec![Out::Skip(StreamError::TooLong { len })]);
            assert_eq!(pending, 0);
            assert!(StreamError::TooLong { len }.is_fatal());
        }
        let mut d = StreamDecoder::with_capacity(MIN_BUFFER);
        let bad = (MAX_FRAME_LEN as u32 + 1).to_be_bytes();
        d.read_buf()[..4].copy_from_slice(&bad);
        d.commit_read(4);
        assert!(matches!(d.next_frame(), Some(Err(e)) if e.is_fatal()));
        assert!(d.is_stopped());
        let r = record(&ARP);
        d.read_buf()[..r.len()].copy_from_slice(&r);
        d.commit_read(r.len());
        assert!(d.next_frame().is_none());
        d.reset();
        d.read_buf()[..r.len()].copy_from_slice(&r);
        d.commit_read(r.len());
        let f = d.next_frame().unwrap().unwrap();
        assert_eq!((f.offset, f.len), (4, 42));
        assert_eq!(d.stats().too_long, 1);
        assert_eq!(d.stats().frames, 1);
        assert!(!StreamError::Empty.is_fatal());
    }

    #[test]
    fn largest_frame_fits_after_compaction() {
        let big = vec![0x5au8; MAX_FRAME_LEN];
        let small = record(&ARP);
        let mut stream = Vec::new();
        // Enough small records to push the big one past the buffer's end.
        for _ in 0..100 {
            stream.extend(&small);
        }
        stream.extend(record(&big));
        let mut d = StreamDecoder::with_capacity(MIN_BUFFER);
        let mut out = Vec::new();
        let mut at = 0;
        let mut reads = 0;
        while at < stream.len() {
            let room = d.read_buf();
            assert!(!room.is_empty());
            let n = room.len().min(stream.len() - at).min(5000);
            room[..n].copy_from_slice(&stream[at..at + n]);
            d.commit_read(n);
            at += n;
            reads += 1;
            drain(&mut d, &mut out);
        }
        assert!(reads > 2);
        assert_eq!(out.len(), 101);
        assert_eq!(out[100], Out::Frame(big));
        assert_eq!(d.stats().bytes, stream.len() as u64);
    }

    #[test]
    fn buffer_must_hold_the_largest_record() {
        assert_eq!(
            StreamDecoder::new(vec![0u8; MIN_BUFFER - 1]).err(),
            Some(BufferTooSmall {
                have: MIN_BUFFER - 1
            })
        );
        let mut mem = vec![0u8; MIN_BUFFER];
        let mut d = StreamDecoder::new(&mut mem[..]).unwrap();
        assert_eq!(d.read_buf().len(), MIN_BUFFER);
        d.commit_read(MIN_BUFFER + 10); // cut to the free space
        assert_eq!(d.pending(), MIN_BUFFER);
    }

    #[test]
    fn ring_frames_go_out_with_their_prefix() {
        let mut tx = TxRing::new(4, 128, 8);
        for n in [42usize, 60] {
            assert!(tx.push_with(|b| {
                b[..n].copy_from_slice(&[0xab; 128][..n]);
                Some(n)
            }));
        }
        fill_ring_prefixes(&mut tx).unwrap();
        let mut wire = Vec::new();
        for v in tx.iter() {
            wire.extend_from_slice(framed(&v));
        }
        let (out, pending) = decode_in_reads(&wire, &[3]);
        assert_eq!(
            out,
            vec![Out::Frame(vec![0xab; 42]), Out::Frame(vec![0xab; 60])]
        );
        assert_eq!(pending, 0);
        let mut no_room = TxRing::new(1, 64, 2);
        assert!(no_room.push_with(|_| Some(20)));
        assert_eq!(
            fill_ring_prefixes(&mut no_room),
            Err(WireError::BufferTooSmall)
        );
        assert!(framed(&no_room.front().unwrap()).is_empty());
    }

    #[test]
    fn fuzz_body_holds_on_handmade_inputs() {
        crate::fuzzing::stream(&[]);
        crate::fuzzing::stream(&[3, 7, 0, 0, 0, 42]);
        let mut s = vec![1u8, 2, 3, 4];
        s.extend(record(&ARP));
        s.extend([0, 0, 0, 5, 1, 2, 3, 4, 5]);
        s.extend([0xff, 0xff, 0xff, 0xff]);
        crate::fuzzing::stream(&s);
    }
}
