//! The Internet checksum (RFC 1071), its incremental update (RFC 1624) and
//! the IPv4/IPv6 pseudo-headers that TCP, UDP and ICMPv6 cover.
//!
//! Sums are carried as a `u32` "partial" in one's-complement arithmetic and
//! folded to 16 bits only at the end, so that pieces (pseudo-header, header,
//! payload) can be summed separately and combined. The bulk loop adds
//! native-order 32-bit words into a 64-bit accumulator: the carries collect
//! in the high half and fold back in at the end (RFC 1071 §2(B), "deferred
//! carries" and "byte order independence"), and the loop vectorises.

use core::net::{Ipv4Addr, Ipv6Addr};

/// Fold a 64-bit accumulator into a 16-bit one's-complement sum.
#[inline]
fn fold64(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

/// Add `data` to a running sum, as big-endian 16-bit words; an odd trailing
/// byte is padded with zero (RFC 1071 §1). Returns the new partial sum.
///
/// Pieces summed separately combine correctly only if every piece but the
/// last has an even length.
pub fn sum(initial: u32, data: &[u8]) -> u32 {
    // The bulk is summed as native-order 32-bit words, which the compiler
    // turns into wide vector additions: one's-complement addition does not
    // care about byte order as long as the folded result is swapped back
    // (RFC 1071 §2(B), "byte order independence").
    let mut words = data.chunks_exact(4);
    let mut native = 0u64;
    for w in &mut words {
        // At most 2^32 - 1 per step: 2^32 steps would be needed to overflow.
        native += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    // Stored in native order, the folded sum has the bytes of the
    // big-endian one.
    let folded = u16::from_be_bytes(fold64(native).to_ne_bytes());
    let mut acc = u64::from(initial) + u64::from(folded);
    let rest = words.remainder();
    if let [a, b, ..] = rest {
        acc += u64::from(u16::from_be_bytes([*a, *b]));
    }
    if let [_, _, last] | [last] = rest {
        acc += u64::from(*last) << 8;
    }
    u32::from(fold64(acc))
}

/// Fold a partial sum and complement it: the value for a checksum field.
pub fn finish(partial: u32) -> u16 {
    !fold64(u64::from(partial))
}

/// The checksum field value for `data` alone (e.g. an IPv4 header with its
/// checksum field zeroed).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// Whether `data`, which includes its checksum field, verifies (sums to
/// 0xffff), starting from `initial` (e.g. a pseudo-header sum).
pub fn verify(initial: u32, data: &[u8]) -> bool {
    fold64(u64::from(sum(initial, data))) == 0xffff
}

/// Partial sum of the IPv4 pseudo-header (RFC 9293 §3.1, RFC 768).
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4_len: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    let words = [
        u16::from_be_bytes([s[0], s[1]]),
        u16::from_be_bytes([s[2], s[3]]),
        u16::from_be_bytes([d[0], d[1]]),
        u16::from_be_bytes([d[2], d[3]]),
        u16::from(proto),
        l4_len,
    ];
    words.iter().map(|&w| u32::from(w)).sum()
}

/// Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1).
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, proto: u8, l4_len: u32) -> u32 {
    let acc = sum(0, &src.octets());
    let acc = sum(acc, &dst.octets());
    // Upper-layer length and next header as 32-bit fields.
    let acc = acc + (l4_len >> 16) + (l4_len & 0xffff);
    acc + u32::from(proto)
}

/// Incrementally update checksum field `old_csum` after a 16-bit word of the
/// covered data changed from `old` to `new`: `HC' = ~(~HC + ~m + m')`
/// (RFC 1624 §3, eqn. 3), which never yields the -0 of the older RFC 1141
/// formula.
pub fn update16(old_csum: u16, old: u16, new: u16) -> u16 {
    let acc = u64::from(!old_csum) + u64::from(!old) + u64::from(new);
    !fold64(acc)
}

/// Incrementally update a checksum after a 32-bit field (an IPv4 address, a
/// sequence number) changed from `old` to `new` (RFC 1624 §3).
pub fn update32(old_csum: u16, old: u32, new: u32) -> u16 {
    let c = update16(old_csum, (old >> 16) as u16, (new >> 16) as u16);
    update16(c, old as u16, new as u16)
}

/// Incrementally update a checksum after an arbitrary even-length field
/// changed from `old` to `new` (same length), e.g. an IPv6 address.
///
/// Returns `None` if the lengths differ or are odd.
pub fn update_bytes(old_csum: u16, old: &[u8], new: &[u8]) -> Option<u16> {
    if old.len() != new.len() || old.len() % 2 != 0 {
        return None;
    }
    let mut acc = u64::from(!old_csum);
    for (o, n) in old.chunks_exact(2).zip(new.chunks_exact(2)) {
        acc += u64::from(!u16::from_be_bytes([o[0], o[1]]));
        acc += u64::from(u16::from_be_bytes([n[0], n[1]]));
    }
    Some(!fold64(acc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Byte-at-a-time reference implementation, straight from RFC 1071 §4.1.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            acc += u32::from(w);
            while acc > 0xffff {
                acc = (acc & 0xffff) + (acc >> 16);
            }
        }
        !(acc as u16)
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold64(u64::from(sum(0, &data))), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // An IPv4 header from a capture (Wikipedia's worked example): the
        // checksum field (bytes 10..12) is b861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verify(0, &hdr));
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(checksum(&hdr), 0xb861);
    }

    #[test]
    fn matches_reference_on_every_length_and_alignment() {
        let mut x: u32 = 0x1234_5678;
        let data: Vec<u8> = (0..600)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        for start in 0..9 {
            for len in 0..(data.len() - start) {
                let d = &data[start..start + len];
                assert_eq!(checksum(d), reference(d), "start {start} len {len}");
            }
        }
        // All-ones input exercises the carry folding hardest.
        let ones = [0xffu8; 4096];
        assert_eq!(checksum(&ones), reference(&ones));
    }

    #[test]
    fn pieces_combine() {
        let a = [1u8, 2, 3, 4, 5, 6];
        let b = [7u8, 8, 9];
        let whole = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(finish(sum(sum(0, &a), &b)), checksum(&whole));
    }

    #[test]
    fn initial_partials_and_carries() {
        // All-ones words carry on every addition; odd lengths end in a
        // padded byte; the initial partial is a pseudo-header's sum.
        for len in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 1499, 1500, 65535] {
            let ones = vec![0xffu8; len];
            let mixed: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for initial in [0u32, 1, 0xffff, 0x1_fffe, 0x3_0000] {
                for d in [&ones, &mixed] {
                    let mut with = (initial >> 16).to_be_bytes()[2..].to_vec();
                    with.extend((initial & 0xffff).to_be_bytes()[2..].iter());
                    with.extend(d.iter());
                    assert_eq!(finish(sum(initial, d)), reference(&with), "len {len}");
                }
            }
        }
    }

    #[test]
    fn pseudo_headers() {
        // UDP datagram 192.0.2.1:1234 -> 192.0.2.2:53, payload "hi":
        // checksum computed by hand with the reference function.
        let src = Ipv4Addr::new(192, 0, 2, 1);
        let dst = Ipv4Addr::new(192, 0, 2, 2);
        let udp = [0x04, 0xd2, 0x00, 0x35, 0x00, 0x0a, 0x00, 0x00, b'h', b'i'];
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.extend_from_slice(&[0, 17, 0, 10]);
        pseudo.extend_from_slice(&udp);
        let expect = reference(&pseudo);
        assert_eq!(
            finish(sum(pseudo_header_v4(src, dst, 17, 10), &udp)),
            expect
        );

        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::1234:5678".parse().unwrap();
        let mut pseudo6 = Vec::new();
        pseudo6.extend_from_slice(&s6.octets());
        pseudo6.extend_from_slice(&d6.octets());
        pseudo6.extend_from_slice(&[0, 0, 0, 10, 0, 0, 0, 17]);
        pseudo6.extend_from_slice(&udp);
        assert_eq!(
            finish(sum(pseudo_header_v6(&s6, &d6, 17, 10), &udp)),
            reference(&pseudo6)
        );
    }

    #[test]
    fn incremental_updates_match_recomputation() {
        let mut data = [
            0x45u8, 0x00, 0x00, 0x73, 0x12, 0x34, 0x40, 0x00, 0xff, 0xff, 0x00, 0x01,
        ];
        let c0 = checksum(&data);
        // 16-bit change, including to and from 0xffff / 0x0000.
        for new in [0x0000u16, 0xffff, 0x8001, 0x1234] {
            let old = u16::from_be_bytes([data[4], data[5]]);
            let c = checksum(&data);
            data[4..6].copy_from_slice(&new.to_be_bytes());
            let updated = update16(c, old, new);
            // One's-complement has two zeroes: compare folded sums.
            assert!(
                verify(0, &[&data[..], &updated.to_be_bytes()].concat()),
                "{new:#x}"
            );
        }
        let old32 = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        let c = checksum(&data);
        data[8..12].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        assert_eq!(update32(c, old32, 0xdead_beef), checksum(&data));
        let before = data;
        data[0..4].copy_from_slice(&[9, 8, 7, 6]);
        let c2 = update_bytes(checksum(&before), &before[0..4], &data[0..4]).unwrap();
        assert_eq!(c2, checksum(&data));
        assert_eq!(update_bytes(c0, &[1, 2], &[1]), None);
    }
}
