//! `-p/--pcap FILE` for both frontends: every frame to and from the guest,
//! in a capture file.
//!
//! Classic pcap format (draft-ietf-opsawg-pcap §4, §5): a 24-byte file
//! header (magic `0xa1b2c3d4` in host byte order, version 2.4, snap length,
//! link type 1 = Ethernet), then per frame a 16-byte record header
//! (seconds, microseconds of wall-clock time, captured and original length)
//! and the frame. Debugging aid only: each frame costs two `write(2)` calls.
//!
//! Syscalls: `open`, `write`, `clock_gettime(CLOCK_REALTIME)`.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use rustix::time::{clock_gettime, ClockId};

/// Largest frame recorded whole; longer ones are cut to this. A TCP
/// super-frame (virtio-net offloads) is a 64 KiB IP packet plus its
/// Ethernet header, so it fits whole.
const SNAPLEN: u32 = crate::buf::MAX_FRAME_LEN as u32;

/// An open capture file.
#[derive(Debug)]
pub struct Pcap {
    file: File,
}

impl Pcap {
    /// Create (or truncate) `path` and write the file header.
    ///
    /// # Errors
    /// If the file cannot be created or written.
    pub fn create(path: &Path) -> std::io::Result<Pcap> {
        let mut file = File::create(path)?;
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_ne_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_ne_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_ne_bytes());
        // thiszone and sigfigs stay 0.
        hdr[16..20].copy_from_slice(&SNAPLEN.to_ne_bytes());
        hdr[20..24].copy_from_slice(&1u32.to_ne_bytes());
        file.write_all(&hdr)?;
        Ok(Pcap { file })
    }

    /// Append one frame. Errors are reported once by the caller's log and
    /// otherwise ignored: a capture must not stop the data path.
    ///
    /// # Errors
    /// The write error.
    pub fn frame(&mut self, frame: &[u8]) -> std::io::Result<()> {
        let ts = clock_gettime(ClockId::Realtime);
        let caplen = frame.len().min(SNAPLEN as usize);
        let mut rec = [0u8; 16];
        rec[0..4].copy_from_slice(&(ts.tv_sec as u32).to_ne_bytes());
        rec[4..8].copy_from_slice(&((ts.tv_nsec / 1000) as u32).to_ne_bytes());
        rec[8..12].copy_from_slice(&(caplen as u32).to_ne_bytes());
        rec[12..16].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        self.file.write_all(&rec)?;
        self.file.write_all(&frame[..caplen])
    }
}
