//! Ethernet II framing (IEEE 802.3 clause 3.2.6 type field) with 802.1Q and
//! 802.1ad tags recognised and skipped.
//!
//! passt and pasta see untagged frames in practice, but a guest may tag its
//! traffic (a VLAN sub-interface on top of the virtio NIC): tags are parsed so
//! that the frame still dispatches on the inner EtherType, and kept for exact
//! re-emission. At most [`MAX_TAGS`] tags are walked. A type field below
//! 0x0600 is an IEEE 802.3 length (an LLC frame), which we don't translate.

use zerocopy::byteorder::network_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::{Result, WireError};
use crate::addr::MacAddr;

/// EtherType values we care about (IEEE Registration Authority).
pub mod ethertype {
    /// IPv4 (RFC 894).
    pub const IPV4: u16 = 0x0800;
    /// ARP (RFC 826).
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IPv6 (RFC 2464).
    pub const IPV6: u16 = 0x86dd;
    /// IEEE 802.1ad service VLAN tag (QinQ).
    pub const QINQ: u16 = 0x88a8;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of one 802.1Q/802.1ad tag.
pub const TAG_LEN: usize = 4;
/// How many VLAN tags we walk before giving up (QinQ is two).
pub const MAX_TAGS: usize = 2;

/// The untagged Ethernet II header as it sits in a frame.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned, Clone, Copy, Debug)]
#[repr(C)]
pub struct EthernetHeader {
    /// Destination MAC address.
    pub dst: [u8; 6],
    /// Source MAC address.
    pub src: [u8; 6],
    /// EtherType, or the first tag protocol identifier.
    pub ethertype: U16,
}

/// One VLAN tag: the tag protocol identifier and the tag control field
/// (priority, drop eligible, VLAN id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VlanTag {
    /// 0x8100 (802.1Q) or 0x88a8 (802.1ad).
    pub tpid: u16,
    /// Priority code point (3 bits), drop eligible (1 bit), VLAN id (12 bits).
    pub tci: u16,
}

impl VlanTag {
    /// The 12-bit VLAN identifier.
    pub fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }
}

/// A parsed Ethernet header, tags included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Destination MAC address.
    pub dst: MacAddr,
    /// Source MAC address.
    pub src: MacAddr,
    /// VLAN tags, outermost first; `tag_count` of them are valid.
    pub tags: [VlanTag; MAX_TAGS],
    /// How many entries of `tags` are in use; values above [`MAX_TAGS`] count
    /// as none.
    pub tag_count: u8,
    /// The EtherType of the payload (after any tags).
    pub ethertype: u16,
}

impl EthernetRepr {
    /// An untagged header.
    pub fn new(dst: MacAddr, src: MacAddr, ethertype: u16) -> Self {
        EthernetRepr {
            dst,
            src,
            tags: [VlanTag::default(); MAX_TAGS],
            tag_count: 0,
            ethertype,
        }
    }

    /// The tags present, outermost first.
    pub fn tags(&self) -> &[VlanTag] {
        self.tags.get(..usize::from(self.tag_count)).unwrap_or(&[])
    }

    /// Parse the header of `frame`, returning it and the payload.
    ///
    /// # Errors
    /// [`WireError::Truncated`] if the header or a tag is cut short,
    /// [`WireError::TooMany`] past [`MAX_TAGS`] tags, [`WireError::Unsupported`]
    /// for an 802.3 length field instead of an EtherType.
    pub fn parse(frame: &[u8]) -> Result<(EthernetRepr, &[u8])> {
        let (hdr, mut rest) =
            EthernetHeader::ref_from_prefix(frame).map_err(|_| WireError::Truncated)?;
        let mut repr = EthernetRepr::new(MacAddr(hdr.dst), MacAddr(hdr.src), hdr.ethertype.get());
        while matches!(repr.ethertype, ethertype::VLAN | ethertype::QINQ) {
            let slot = repr
                .tags
                .get_mut(usize::from(repr.tag_count))
                .ok_or(WireError::TooMany)?;
            let (tag, after) = rest.split_at_checked(TAG_LEN).ok_or(WireError::Truncated)?;
            let tci = u16::from_be_bytes([tag[0], tag[1]]);
            *slot = VlanTag {
                tpid: repr.ethertype,
                tci,
            };
            repr.tag_count += 1;
            repr.ethertype = u16::from_be_bytes([tag[2], tag[3]]);
            rest = after;
        }
        if repr.ethertype < 0x0600 {
            return Err(WireError::Unsupported);
        }
        Ok((repr, rest))
    }

    /// Length of the header with its tags.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + TAG_LEN * self.tags().len()
    }

    /// Write the header (and tags) at the start of `buf`; returns its length.
    ///
    /// # Errors
    /// [`WireError::BufferTooSmall`] if `buf` is shorter than
    /// [`EthernetRepr::buffer_len`].
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(WireError::BufferTooSmall)?;
        out[0..6].copy_from_slice(&self.dst.0);
        out[6..12].copy_from_slice(&self.src.0);
        let mut at = 12;
        for tag in self.tags() {
            out[at..at + 2].copy_from_slice(&tag.tpid.to_be_bytes());
            out[at + 2..at + 4].copy_from_slice(&tag.tci.to_be_bytes());
            at += TAG_LEN;
        }
        out[at..at + 2].copy_from_slice(&self.ethertype.to_be_bytes());
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An ARP request captured with tcpdump -xx on a veth between two test
    // namespaces: who-has 192.0.2.2 tell 192.0.2.1.
    const ARP_FRAME: &str =
        "ffffffffffff02000000000108060001080006040001020000000001c0000201000000000000c0000202";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn untagged_round_trip() {
        let f = hex(ARP_FRAME);
        let (e, payload) = EthernetRepr::parse(&f).unwrap();
        assert_eq!(e.dst, MacAddr::BROADCAST);
        assert_eq!(e.src, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(e.ethertype, ethertype::ARP);
        assert_eq!(e.tags(), &[]);
        assert_eq!(payload.len(), 28);
        let mut out = [0u8; 14];
        assert_eq!(e.emit(&mut out), Ok(14));
        assert_eq!(&out[..], &f[..14]);
        for cut in 0..HEADER_LEN {
            assert_eq!(EthernetRepr::parse(&f[..cut]), Err(WireError::Truncated));
        }
    }

    #[test]
    fn vlan_tags_skipped_and_kept() {
        // 802.1ad outer tag (vid 100) then 802.1Q (vid 10), then IPv4.
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x20, 0x0a, 0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0x00]);
        let (e, payload) = EthernetRepr::parse(&f).unwrap();
        assert_eq!(e.tags().len(), 2);
        assert_eq!(
            e.tags()[0],
            VlanTag {
                tpid: ethertype::QINQ,
                tci: 100
            }
        );
        assert_eq!(e.tags()[1].vid(), 10);
        assert_eq!(e.tags()[1].tci >> 13, 1);
        assert_eq!(e.ethertype, ethertype::IPV4);
        assert_eq!(payload, &[0x45, 0x00]);
        let mut out = [0u8; 22];
        assert_eq!(e.emit(&mut out), Ok(22));
        assert_eq!(&out[..], &f[..22]);
        assert_eq!(e.emit(&mut out[..21]), Err(WireError::BufferTooSmall));
        for cut in 0..22 {
            assert!(EthernetRepr::parse(&f[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn malformed_frames() {
        let mut three = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
        for _ in 0..3 {
            three.extend_from_slice(&[0x81, 0x00, 0x00, 0x01]);
        }
        three.extend_from_slice(&[0x08, 0x00]);
        assert_eq!(EthernetRepr::parse(&three), Err(WireError::TooMany));
        // 802.3 length field (an LLC/STP frame).
        let llc = [
            1, 0x80, 0xc2, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x00, 0x26, 0x42, 0x42, 3,
        ];
        assert_eq!(EthernetRepr::parse(&llc), Err(WireError::Unsupported));
    }
}
