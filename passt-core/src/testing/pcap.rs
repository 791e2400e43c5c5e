//! Classic pcap files: a small reader and writer for tests.
//!
//! The real-frame vectors in `passt-core/tests/vectors/` are classic pcap files
//! (the libpcap "savefile" format, described in the IETF OPSAWG draft "PCAP
//! Capture File Format", draft-ietf-opsawg-pcap, sections 4 and 5). This module
//! reads them into owned [`Frame`]s and writes frames back, so tests can feed
//! captured frames to the parsers and compare emitted bytes with the originals.
//!
//! # Format
//!
//! A 24-byte file header (section 4): magic number, version 2.4, two reserved
//! words, snap length, link type. The magic number gives both the byte order of
//! every later field (the writer's native order) and the timestamp resolution:
//! `0xA1B2C3D4` for microseconds, `0xA1B23C4D` for nanoseconds. Then packet
//! records (section 5): seconds, fraction of a second, captured length,
//! original length (16 bytes), followed by the captured bytes.
//!
//! # Limits
//!
//! Only link type 1 (`LINKTYPE_ETHERNET`, Ethernet II frames without FCS) is
//! accepted; pcapng and the "modified" pcap variants are refused. Reading never
//! allocates more than the input holds: each record's bytes are taken from the
//! input before they are copied, and a record that runs past the end of the
//! input is an error. This is test support; it is not on any data path.

/// Link type number of Ethernet (`LINKTYPE_ETHERNET`, IEEE 802.3 with
/// Ethernet II framing and no FCS).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// Snap length written by [`write_pcap`], the same as tcpdump's default.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Length of the file header (draft-ietf-opsawg-pcap section 4).
const FILE_HEADER_LEN: usize = 24;

/// Length of a packet record header (draft-ietf-opsawg-pcap section 5).
const RECORD_HEADER_LEN: usize = 16;

/// Magic number of files with microsecond timestamps, as the writer stored it.
const MAGIC_MICRO: u32 = 0xA1B2_C3D4;

/// Magic number of files with nanosecond timestamps, as the writer stored it.
const MAGIC_NANO: u32 = 0xA1B2_3C4D;

/// Errors from reading or writing a pcap file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PcapError {
    /// The input is shorter than the 24-byte file header.
    #[error("pcap input of {0} bytes is shorter than the 24-byte file header")]
    TruncatedHeader(usize),
    /// The magic number is not one of classic pcap's (in either byte order).
    #[error("unknown pcap magic number {0:#010x}")]
    BadMagic(u32),
    /// The file format version is not 2.x.
    #[error("unsupported pcap version {major}.{minor}")]
    BadVersion {
        /// Major version found.
        major: u16,
        /// Minor version found.
        minor: u16,
    },
    /// The link type is not Ethernet (or carries FCS information).
    #[error("unsupported link type field {0:#x}: only Ethernet (1) is supported")]
    UnsupportedLinkType(u32),
    /// The input ends inside the record with this index (header or data).
    #[error("pcap record {index} is truncated")]
    TruncatedRecord {
        /// Zero-based index of the record.
        index: usize,
    },
    /// A record's captured length exceeds its original length or the snap length.
    #[error("pcap record {index}: captured length {captured} exceeds original length {original} or snap length {snaplen}")]
    BadRecordLength {
        /// Zero-based index of the record.
        index: usize,
        /// Captured length (bytes present in the file).
        captured: u32,
        /// Original length on the wire.
        original: u32,
        /// Snap length from the file header.
        snaplen: u32,
    },
    /// A record's fraction of a second is not below one second.
    #[error("pcap record {index}: timestamp fraction {frac} is not below one second")]
    BadTimestamp {
        /// Zero-based index of the record.
        index: usize,
        /// The fraction found, in the file's resolution.
        frac: u32,
    },
}

/// Resolution of the fractional part of record timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsResolution {
    /// Microseconds (magic `0xA1B2C3D4`), tcpdump's default.
    Micro,
    /// Nanoseconds (magic `0xA1B23C4D`).
    Nano,
}

impl TsResolution {
    /// Number of fraction units in one second.
    pub fn units_per_sec(self) -> u32 {
        match self {
            Self::Micro => 1_000_000,
            Self::Nano => 1_000_000_000,
        }
    }

    fn magic(self) -> u32 {
        match self {
            Self::Micro => MAGIC_MICRO,
            Self::Nano => MAGIC_NANO,
        }
    }
}

/// Byte order of a pcap file's header and record fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteOrder {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl ByteOrder {
    fn u16_at(self, bytes: &[u8], at: usize) -> Option<u16> {
        let raw: [u8; 2] = bytes.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(match self {
            Self::Little => u16::from_le_bytes(raw),
            Self::Big => u16::from_be_bytes(raw),
        })
    }

    fn u32_at(self, bytes: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(match self {
            Self::Little => u32::from_le_bytes(raw),
            Self::Big => u32::from_be_bytes(raw),
        })
    }
}

/// One captured Ethernet frame with its record metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Capture time, seconds since the Unix epoch.
    pub ts_sec: u32,
    /// Fraction of the second, in the file's [`TsResolution`].
    pub ts_frac: u32,
    /// The captured bytes, starting at the destination MAC address.
    pub data: Vec<u8>,
    /// Length of the frame on the wire (at least `data.len()`).
    pub orig_len: u32,
}

impl Frame {
    /// A complete (not snapped) frame captured at the given time.
    ///
    /// `orig_len` is `data.len()`, saturated at `u32::MAX`.
    pub fn new(ts_sec: u32, ts_frac: u32, data: Vec<u8>) -> Self {
        let orig_len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        Self {
            ts_sec,
            ts_frac,
            data,
            orig_len,
        }
    }

    /// The outermost EtherType (bytes 12 and 13), if the frame is that long.
    ///
    /// For a VLAN-tagged frame this is the tag protocol identifier (0x8100 or
    /// 0x88a8), IEEE 802.1Q section 9.
    pub fn ethertype(&self) -> Option<u16> {
        let raw: [u8; 2] = self.data.get(12..14)?.try_into().ok()?;
        Some(u16::from_be_bytes(raw))
    }
}

/// A whole pcap file: header fields and frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapFile {
    /// Byte order the file was written in.
    pub byte_order: ByteOrder,
    /// Timestamp resolution from the magic number.
    pub resolution: TsResolution,
    /// Format version (major, minor); 2.4 in current files.
    pub version: (u16, u16),
    /// Snap length: no record holds more captured bytes than this.
    pub snaplen: u32,
    /// The records, in file order.
    pub frames: Vec<Frame>,
}

/// Read the frames of a classic pcap file of Ethernet frames.
///
/// # Errors
///
/// As [`parse_pcap`].
pub fn read_pcap(bytes: &[u8]) -> Result<Vec<Frame>, PcapError> {
    parse_pcap(bytes).map(|file| file.frames)
}

/// Read a classic pcap file of Ethernet frames, keeping its header fields.
///
/// Trailing bytes after the last complete record are an error, not ignored:
/// test vectors are expected to be whole.
///
/// # Errors
///
/// [`PcapError::TruncatedHeader`] below 24 bytes, [`PcapError::BadMagic`] for
/// anything but the two classic magic numbers in either byte order,
/// [`PcapError::BadVersion`] unless major version 2,
/// [`PcapError::UnsupportedLinkType`] unless the link type field is exactly
/// [`LINKTYPE_ETHERNET`], [`PcapError::TruncatedRecord`] when the input ends
/// inside a record, [`PcapError::BadRecordLength`] when a captured length
/// exceeds the original length or a non-zero snap length, and
/// [`PcapError::BadTimestamp`] for a fraction of a second of one second or more.
pub fn parse_pcap(bytes: &[u8]) -> Result<PcapFile, PcapError> {
    let header = bytes
        .get(..FILE_HEADER_LEN)
        .ok_or(PcapError::TruncatedHeader(bytes.len()))?;
    let magic_le = ByteOrder::Little
        .u32_at(header, 0)
        .ok_or(PcapError::TruncatedHeader(bytes.len()))?;
    let (byte_order, resolution) = match magic_le {
        MAGIC_MICRO => (ByteOrder::Little, TsResolution::Micro),
        MAGIC_NANO => (ByteOrder::Little, TsResolution::Nano),
        m if m.swap_bytes() == MAGIC_MICRO => (ByteOrder::Big, TsResolution::Micro),
        m if m.swap_bytes() == MAGIC_NANO => (ByteOrder::Big, TsResolution::Nano),
        m => return Err(PcapError::BadMagic(m)),
    };
    let field16 = |at| {
        byte_order
            .u16_at(header, at)
            .ok_or(PcapError::TruncatedHeader(bytes.len()))
    };
    let field32 = |at| {
        byte_order
            .u32_at(header, at)
            .ok_or(PcapError::TruncatedHeader(bytes.len()))
    };
    let major = field16(4)?;
    let minor = field16(6)?;
    if major != 2 {
        return Err(PcapError::BadVersion { major, minor });
    }
    let snaplen = field32(16)?;
    let linktype = field32(20)?;
    if linktype != LINKTYPE_ETHERNET {
        return Err(PcapError::UnsupportedLinkType(linktype));
    }

    let mut frames = Vec::new();
    let mut rest = bytes.get(FILE_HEADER_LEN..).unwrap_or_default();
    // Each pass consumes at least RECORD_HEADER_LEN bytes, so the loop is
    // bounded by the input length.
    while !rest.is_empty() {
        let index = frames.len();
        let (record, after) = rest
            .split_at_checked(RECORD_HEADER_LEN)
            .ok_or(PcapError::TruncatedRecord { index })?;
        let field = |at| {
            byte_order
                .u32_at(record, at)
                .ok_or(PcapError::TruncatedRecord { index })
        };
        let ts_sec = field(0)?;
        let ts_frac = field(4)?;
        let captured = field(8)?;
        let original = field(12)?;
        if captured > original || (snaplen != 0 && captured > snaplen) {
            return Err(PcapError::BadRecordLength {
                index,
                captured,
                original,
                snaplen,
            });
        }
        if ts_frac >= resolution.units_per_sec() {
            return Err(PcapError::BadTimestamp {
                index,
                frac: ts_frac,
            });
        }
        let captured_len =
            usize::try_from(captured).map_err(|_| PcapError::TruncatedRecord { index })?;
        let (data, after) = after
            .split_at_checked(captured_len)
            .ok_or(PcapError::TruncatedRecord { index })?;
        frames.push(Frame {
            ts_sec,
            ts_frac,
            data: data.to_vec(),
            orig_len: original,
        });
        rest = after;
    }
    Ok(PcapFile {
        byte_order,
        resolution,
        version: (major, minor),
        snaplen,
        frames,
    })
}

/// Write Ethernet frames as a classic pcap file, version 2.4, little-endian,
/// snap length [`DEFAULT_SNAPLEN`], link type [`LINKTYPE_ETHERNET`].
///
/// With [`TsResolution::Micro`] the output for frames read from a tcpdump
/// capture made on a little-endian machine is byte-for-byte that capture.
///
/// # Errors
///
/// [`PcapError::BadRecordLength`] when a frame holds more than
/// [`DEFAULT_SNAPLEN`] bytes or more than its `orig_len`, and
/// [`PcapError::BadTimestamp`] when `ts_frac` is one second or more in the
/// chosen resolution. The index in the error is the frame's position.
pub fn write_pcap(frames: &[Frame], resolution: TsResolution) -> Result<Vec<u8>, PcapError> {
    let total = frames.iter().fold(FILE_HEADER_LEN, |acc, f| {
        acc.saturating_add(RECORD_HEADER_LEN)
            .saturating_add(f.data.len())
    });
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&resolution.magic().to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // reserved1 (was thiszone)
    out.extend_from_slice(&0u32.to_le_bytes()); // reserved2 (was sigfigs)
    out.extend_from_slice(&DEFAULT_SNAPLEN.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for (index, frame) in frames.iter().enumerate() {
        let captured = u32::try_from(frame.data.len())
            .ok()
            .filter(|&len| len <= DEFAULT_SNAPLEN && len <= frame.orig_len)
            .ok_or(PcapError::BadRecordLength {
                index,
                captured: u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
                original: frame.orig_len,
                snaplen: DEFAULT_SNAPLEN,
            })?;
        if frame.ts_frac >= resolution.units_per_sec() {
            return Err(PcapError::BadTimestamp {
                index,
                frac: frame.ts_frac,
            });
        }
        out.extend_from_slice(&frame.ts_sec.to_le_bytes());
        out.extend_from_slice(&frame.ts_frac.to_le_bytes());
        out.extend_from_slice(&captured.to_le_bytes());
        out.extend_from_slice(&frame.orig_len.to_le_bytes());
        out.extend_from_slice(&frame.data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARP: &[u8] = include_bytes!("../../tests/vectors/arp.pcap");
    const VLAN: &[u8] = include_bytes!("../../tests/vectors/vlan.pcap");
    const QINQ: &[u8] = include_bytes!("../../tests/vectors/qinq.pcap");
    const IPV4: &[u8] = include_bytes!("../../tests/vectors/ipv4.pcap");
    const TCP4: &[u8] = include_bytes!("../../tests/vectors/tcp4.pcap");
    const TCP6: &[u8] = include_bytes!("../../tests/vectors/tcp6.pcap");
    const UDP: &[u8] = include_bytes!("../../tests/vectors/udp.pcap");
    const IPV6: &[u8] = include_bytes!("../../tests/vectors/ipv6.pcap");
    const DHCP: &[u8] = include_bytes!("../../tests/vectors/dhcp.pcap");
    const DHCPV6: &[u8] = include_bytes!("../../tests/vectors/dhcpv6.pcap");

    /// Every vector with its expected frame count.
    const VECTORS: [(&str, &[u8], usize); 10] = [
        ("arp", ARP, 10),
        ("vlan", VLAN, 10),
        ("qinq", QINQ, 4),
        ("ipv4", IPV4, 16),
        ("tcp4", TCP4, 18),
        ("tcp6", TCP6, 18),
        ("udp", UDP, 12),
        ("ipv6", IPV6, 41),
        ("dhcp", DHCP, 10),
        ("dhcpv6", DHCPV6, 8),
    ];

    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
    const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];

    fn frames(bytes: &[u8]) -> Vec<Frame> {
        read_pcap(bytes).expect("committed vector parses")
    }

    fn be16(data: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([data[at], data[at + 1]])
    }

    /// Swap every header and record field of a little-endian file in place,
    /// giving the same file as a big-endian writer would have made it.
    fn to_big_endian(le: &[u8]) -> Vec<u8> {
        let mut out = le.to_vec();
        out[0..4].reverse();
        out[4..6].reverse();
        out[6..8].reverse();
        for at in [8, 12, 16, 20] {
            out[at..at + 4].reverse();
        }
        let mut at = FILE_HEADER_LEN;
        while at < out.len() {
            let captured = u32::from_le_bytes(out[at + 8..at + 12].try_into().unwrap());
            for field in 0..4 {
                out[at + 4 * field..at + 4 * field + 4].reverse();
            }
            at += RECORD_HEADER_LEN + captured as usize;
        }
        out
    }

    #[test]
    fn every_vector_is_whole_ethernet_with_expected_count() {
        for (name, bytes, count) in VECTORS {
            let file = parse_pcap(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(file.frames.len(), count, "{name}");
            assert_eq!(file.byte_order, ByteOrder::Little, "{name}");
            assert_eq!(file.resolution, TsResolution::Micro, "{name}");
            assert_eq!(file.version, (2, 4), "{name}");
            assert_eq!(file.snaplen, DEFAULT_SNAPLEN, "{name}");
            for (i, f) in file.frames.iter().enumerate() {
                // Captured with -s 0: nothing snapped; all between hosts A and B.
                assert_eq!(f.data.len() as u32, f.orig_len, "{name} frame {i}");
                let src: [u8; 6] = f.data[6..12].try_into().unwrap();
                assert!(src == MAC_A || src == MAC_B, "{name} frame {i}");
                assert!(f.ts_frac < 1_000_000, "{name} frame {i}");
            }
            // Timestamps never go backwards within a capture.
            let ts: Vec<_> = file.frames.iter().map(|f| (f.ts_sec, f.ts_frac)).collect();
            assert!(ts.windows(2).all(|w| w[0] <= w[1]), "{name}");
        }
    }

    #[test]
    fn writing_read_frames_reproduces_every_vector_exactly() {
        for (name, bytes, _) in VECTORS {
            let written = write_pcap(&frames(bytes), TsResolution::Micro).unwrap();
            assert_eq!(written, bytes, "{name}");
        }
    }

    #[test]
    fn arp_vector_holds_requests_replies_probe_and_gratuitous() {
        let f = frames(ARP);
        assert!(f.iter().all(|f| f.ethertype() == Some(0x0806)));
        let ops: Vec<u16> = f.iter().map(|f| be16(&f.data, 20)).collect();
        assert_eq!(ops, [1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);
        // Frame 0: kernel request, broadcast, unpadded 42 bytes.
        assert_eq!(f[0].data.len(), 42);
        assert_eq!(f[0].data[..6], [0xff; 6]);
        assert_eq!(f[0].data[28..32], [192, 0, 2, 1]);
        assert_eq!(f[0].data[38..42], [192, 0, 2, 2]);
        // Frame 4: RFC 5227 probe, sender protocol address 0.0.0.0.
        assert_eq!(f[4].data[28..32], [0, 0, 0, 0]);
        // Frames 6 and 7: gratuitous request and reply, sender IP = target IP.
        for g in &f[6..8] {
            assert_eq!(g.data[28..32], g.data[38..42]);
            assert_eq!(g.data[0..6], [0xff; 6]);
        }
        // arping pads its frames to 60 bytes less the FCS the kernel would add.
        assert_eq!(f[2].data.len(), 58);
    }

    #[test]
    fn vlan_vectors_carry_tags() {
        let f = frames(VLAN);
        assert!(f.iter().all(|f| f.ethertype() == Some(0x8100)));
        assert_eq!(be16(&f[0].data, 14), 10); // PCP 0, DEI 0, VID 10
        assert_eq!(be16(&f[1].data, 14), (5 << 13) | 10); // PCP 5
        let inner: Vec<u16> = f.iter().map(|f| be16(&f.data, 16)).collect();
        assert_eq!(
            inner,
            [0x0806, 0x0806, 0x0806, 0x0806, 0x0800, 0x0800, 0x86dd, 0x86dd, 0x86dd, 0x86dd]
        );

        let q = frames(QINQ);
        for f in &q {
            assert_eq!(f.ethertype(), Some(0x88a8));
            assert_eq!(be16(&f.data, 14), 20);
            assert_eq!(be16(&f.data, 16), 0x8100);
            assert_eq!(be16(&f.data, 18), 10);
        }
        let inner: Vec<u16> = q.iter().map(|f| be16(&f.data, 20)).collect();
        assert_eq!(inner, [0x0806, 0x0806, 0x0800, 0x0800]);
    }

    #[test]
    fn ipv4_vector_holds_options_fragments_and_port_unreachable() {
        let f = frames(IPV4);
        assert!(f.iter().all(|f| f.ethertype() == Some(0x0800)));
        let proto: Vec<u8> = f.iter().map(|f| f.data[23]).collect();
        assert_eq!(proto, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 17, 1]);
        // Record route (frames 4, 5) and timestamp (6, 7): 40 option bytes.
        for (i, opt) in f.iter().enumerate().take(8).skip(4) {
            assert_eq!(opt.data[14], 0x4f, "frame {i}");
        }
        assert_eq!(f[4].data[35], 7); // RR option type after a NOP
        assert_eq!(f[6].data[34], 68); // timestamp option type
                                       // Fragments: MF with offsets 0, 1480 and 2960 (units of 8 bytes).
        let frag: Vec<u16> = f[8..14].iter().map(|f| be16(&f.data, 20)).collect();
        assert_eq!(frag, [0x2000, 0x2000 | 185, 370, 0x2000, 0x2000 | 185, 370]);
        // ICMP destination unreachable, port unreachable.
        assert_eq!(f[15].data[34..36], [3, 3]);
    }

    #[test]
    fn tcp_vectors_hold_handshake_data_close_and_reset() {
        for (bytes, ip_len, ethertype, mss) in [(TCP4, 20, 0x0800, 1460), (TCP6, 40, 0x86dd, 1440)]
        {
            let f = frames(bytes);
            assert!(f.iter().all(|f| f.ethertype() == Some(ethertype)));
            let flags_at = 14 + ip_len + 13;
            let flags: Vec<u8> = f.iter().map(|f| f.data[flags_at]).collect();
            assert_eq!(
                flags,
                [
                    0x02, 0x12, 0x10, 0x18, 0x10, 0x10, 0x10, 0x10, 0x10, 0x18, 0x10, 0x11, 0x18,
                    0x10, 0x11, 0x10, 0x02, 0x14
                ]
            );
            // SYN options: MSS, SACK permitted, timestamps, NOP, window scale.
            let opts = &f[0].data[14 + ip_len + 20..];
            assert_eq!(opts[..4], [2, 4, (mss >> 8) as u8, mss as u8]);
            assert_eq!(opts[4..6], [4, 2]);
            assert_eq!(opts[6..8], [8, 10]);
            assert_eq!(opts[16..20], [1, 3, 3, 10]);
        }
    }

    #[test]
    fn udp_vector_holds_zero_checksum_and_empty_datagram() {
        let f = frames(UDP);
        let types: Vec<u16> = f.iter().map(|f| f.ethertype().unwrap()).collect();
        assert_eq!(
            types,
            [
                0x0800, 0x0800, 0x0800, 0x0800, 0x86dd, 0x86dd, 0x86dd, 0x86dd, 0x0800, 0x0800,
                0x86dd, 0x86dd
            ]
        );
        assert_ne!(be16(&f[0].data, 40), 0);
        assert_eq!(be16(&f[2].data, 40), 0); // SO_NO_CHECK: no checksum
        assert_eq!(be16(&f[6].data, 58), 8); // UDP length of an empty datagram
        assert_eq!(f[6].data.len(), 14 + 40 + 8);
    }

    #[test]
    fn ipv6_vector_holds_mld_ndp_fragments_and_extension_headers() {
        let f = frames(IPV6);
        assert!(f.iter().all(|f| f.ethertype() == Some(0x86dd)));
        // MLDv2 report: hop-by-hop header with Router Alert (RFC 2711), then
        // ICMPv6 type 143 (RFC 3810 section 5.2).
        assert_eq!(f[0].data[20], 0);
        assert_eq!(f[0].data[54..60], [58, 0, 5, 2, 0, 0]);
        assert_eq!(f[0].data[62], 143);
        // ICMPv6 type where the next header is ICMPv6 directly.
        let icmp = |i: usize| {
            assert_eq!(f[i].data[20], 58, "frame {i}");
            f[i].data[54]
        };
        assert_eq!(icmp(5), 135); // DAD NS ...
        assert_eq!(f[5].data[22..38], [0; 16]); // ... from the unspecified address
        assert_eq!(icmp(10), 133); // RS
        assert_eq!(icmp(12), 134); // RA
        assert_eq!(icmp(16), 135); // NS
        assert_eq!(icmp(17), 136); // NA
        assert_eq!((icmp(18), icmp(19)), (128, 129)); // echo
        assert_eq!(icmp(38), 134); // final RA ...
        assert_eq!(be16(&f[38].data, 60), 0); // ... with router lifetime 0
                                              // RA options: SLLA, MTU, prefix, RDNSS, DNSSL (radvd's order may vary;
                                              // all five must be there).
        let mut kinds = Vec::new();
        let mut at = 54 + 16;
        while let (Some(&kind), Some(&len)) = (f[12].data.get(at), f[12].data.get(at + 1)) {
            kinds.push(kind);
            assert_ne!(len, 0);
            at += usize::from(len) * 8;
        }
        kinds.sort_unstable();
        assert_eq!(kinds, [1, 3, 5, 25, 31]);
        // Fragment headers (next header 44) on the large echo both ways.
        assert!(f[24..30].iter().all(|f| f.data[20] == 44));
        // Port unreachable, then a Destination Options (60) and a Hop-by-Hop
        // (0) UDP datagram, each answered by port unreachable.
        assert_eq!(f[31].data[54..56], [1, 4]);
        assert_eq!((f[32].data[20], f[32].data[54]), (60, 17));
        assert_eq!((f[34].data[20], f[34].data[54]), (0, 17));
    }

    /// DHCP message type (option 53) of a DHCPv4 frame without IP options.
    fn dhcp_message_type(data: &[u8]) -> Option<u8> {
        let opts = data.get(14 + 20 + 8 + 236..)?;
        if opts.get(..4)? != [99, 130, 83, 99] {
            return None;
        }
        let mut at = 4;
        while let Some(&code) = opts.get(at) {
            match code {
                0 => at += 1,
                255 => return None,
                53 => return opts.get(at + 2).copied(),
                _ => at += 2 + usize::from(*opts.get(at + 1)?),
            }
        }
        None
    }

    #[test]
    fn dhcp_vectors_hold_full_exchanges() {
        let f = frames(DHCP);
        let types: Vec<Option<u8>> = f.iter().map(|f| dhcp_message_type(&f.data)).collect();
        let (discover, offer, request, ack, release) = (1, 2, 3, 5, 7);
        let one = [discover, offer, request, ack, release].map(Some);
        assert_eq!(types[..5], one);
        assert_eq!(types[5..], one);

        let f = frames(DHCPV6);
        let types: Vec<u8> = f.iter().map(|f| f.data[62]).collect();
        // SOLICIT, ADVERTISE, REQUEST, REPLY, RELEASE, REPLY,
        // INFORMATION-REQUEST, REPLY (RFC 8415 section 7.3).
        assert_eq!(types, [1, 2, 3, 7, 8, 7, 11, 7]);
        assert!(f.iter().all(|f| f.data[20] == 17));
    }

    #[test]
    fn big_endian_and_nanosecond_files_read_the_same_frames() {
        let le = parse_pcap(TCP4).unwrap();
        let be = parse_pcap(&to_big_endian(TCP4)).unwrap();
        assert_eq!(be.byte_order, ByteOrder::Big);
        assert_eq!(be.frames, le.frames);

        let nano: Vec<Frame> = le
            .frames
            .iter()
            .map(|f| Frame {
                ts_frac: f.ts_frac * 1000 + 999,
                ..f.clone()
            })
            .collect();
        let written = write_pcap(&nano, TsResolution::Nano).unwrap();
        assert_eq!(written[..4], [0x4d, 0x3c, 0xb2, 0xa1]);
        let back = parse_pcap(&written).unwrap();
        assert_eq!(back.resolution, TsResolution::Nano);
        assert_eq!(back.frames, nano);
        let back_be = parse_pcap(&to_big_endian(&written)).unwrap();
        assert_eq!(
            (back_be.byte_order, back_be.resolution),
            (ByteOrder::Big, TsResolution::Nano)
        );
        assert_eq!(back_be.frames, nano);
    }

    #[test]
    fn write_read_round_trip_keeps_snapped_frames() {
        let frames = vec![
            Frame::new(1, 999_999, vec![0xaa; 60]),
            Frame {
                ts_sec: u32::MAX,
                ts_frac: 0,
                data: vec![0x55; 14],
                orig_len: 1514,
            },
            Frame::new(2, 0, Vec::new()),
        ];
        let bytes = write_pcap(&frames, TsResolution::Micro).unwrap();
        assert_eq!(bytes.len(), 24 + 3 * 16 + 60 + 14);
        assert_eq!(read_pcap(&bytes).unwrap(), frames);
        assert_eq!(
            read_pcap(&write_pcap(&[], TsResolution::Micro).unwrap()).unwrap(),
            []
        );
    }

    #[test]
    fn every_truncation_is_rejected_or_ends_on_a_record_boundary() {
        let whole = frames(ARP);
        let mut boundaries = vec![FILE_HEADER_LEN];
        for f in &whole {
            boundaries.push(boundaries.last().unwrap() + RECORD_HEADER_LEN + f.data.len());
        }
        assert_eq!(*boundaries.last().unwrap(), ARP.len());
        for len in 0..ARP.len() {
            let got = read_pcap(&ARP[..len]);
            if len < FILE_HEADER_LEN {
                assert_eq!(got, Err(PcapError::TruncatedHeader(len)));
            } else if let Some(n) = boundaries.iter().position(|&b| b == len) {
                assert_eq!(got.unwrap(), whole[..n], "cut at {len}");
            } else {
                let index = boundaries.iter().filter(|&&b| b < len).count() - 1;
                assert_eq!(
                    got,
                    Err(PcapError::TruncatedRecord { index }),
                    "cut at {len}"
                );
            }
        }
    }

    #[test]
    fn malformed_headers_and_records_are_refused() {
        let mutate = |at: usize, bytes: &[u8]| {
            let mut v = ARP.to_vec();
            v[at..at + bytes.len()].copy_from_slice(bytes);
            v
        };
        // pcapng section header block
        assert_eq!(
            read_pcap(&mutate(0, &[0x0a, 0x0d, 0x0d, 0x0a])),
            Err(PcapError::BadMagic(0x0a0d_0d0a))
        );
        assert_eq!(
            read_pcap(&mutate(4, &[1, 0])),
            Err(PcapError::BadVersion { major: 1, minor: 4 })
        );
        // Linux cooked capture (113), and Ethernet with the FCS flag set.
        assert_eq!(
            read_pcap(&mutate(20, &113u32.to_le_bytes())),
            Err(PcapError::UnsupportedLinkType(113))
        );
        assert_eq!(
            read_pcap(&mutate(20, &0x1400_0001u32.to_le_bytes())),
            Err(PcapError::UnsupportedLinkType(0x1400_0001))
        );
        // First record: captured length 43 > original length 42.
        assert_eq!(
            read_pcap(&mutate(24 + 8, &43u32.to_le_bytes())),
            Err(PcapError::BadRecordLength {
                index: 0,
                captured: 43,
                original: 42,
                snaplen: DEFAULT_SNAPLEN
            })
        );
        // Snap length below the first frame's length.
        assert_eq!(
            read_pcap(&mutate(16, &40u32.to_le_bytes())),
            Err(PcapError::BadRecordLength {
                index: 0,
                captured: 42,
                original: 42,
                snaplen: 40
            })
        );
        // A huge captured length is bounded by the input, not allocated.
        let huge = mutate(24 + 8, &u32::MAX.to_le_bytes());
        let huge = {
            let mut v = huge;
            v[24 + 12..24 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
            v[16..20].copy_from_slice(&0u32.to_le_bytes());
            v
        };
        assert_eq!(
            read_pcap(&huge),
            Err(PcapError::TruncatedRecord { index: 0 })
        );
        assert_eq!(
            read_pcap(&mutate(24 + 4, &1_000_000u32.to_le_bytes())),
            Err(PcapError::BadTimestamp {
                index: 0,
                frac: 1_000_000
            })
        );
    }

    #[test]
    fn writer_refuses_what_it_cannot_represent() {
        let too_long = Frame::new(0, 0, vec![0; DEFAULT_SNAPLEN as usize + 1]);
        assert!(matches!(
            write_pcap(&[too_long], TsResolution::Micro),
            Err(PcapError::BadRecordLength { index: 0, .. })
        ));
        let short_orig = Frame {
            orig_len: 10,
            ..Frame::new(0, 0, vec![0; 11])
        };
        assert!(matches!(
            write_pcap(
                &[Frame::new(0, 0, vec![0; 60]), short_orig],
                TsResolution::Micro
            ),
            Err(PcapError::BadRecordLength { index: 1, .. })
        ));
        assert_eq!(
            write_pcap(
                &[Frame::new(0, 1_000_000, vec![0; 60])],
                TsResolution::Micro
            ),
            Err(PcapError::BadTimestamp {
                index: 0,
                frac: 1_000_000
            })
        );
        assert!(write_pcap(&[Frame::new(0, 1_000_000, vec![0; 60])], TsResolution::Nano).is_ok());
    }
}
