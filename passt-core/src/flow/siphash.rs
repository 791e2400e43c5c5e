//! SipHash-1-3 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
//! 2012), the keyed hash behind the flow index.
//!
//! Keyed with a secret from the driver ([`crate::config::Limits`] has no
//! randomness of its own to offer), it keeps a guest from predicting which
//! flows share a bucket. One compression and three finalisation rounds, as
//! Rust's standard hasher uses.

/// A SipHash-1-3 state over 64-bit words.
#[derive(Clone, Debug)]
pub struct SipHasher13 {
    v: [u64; 4],
    tail: u64,
    ntail: usize,
    len: u64,
}

impl SipHasher13 {
    /// A hasher keyed with `key` (k0 is the first 8 bytes, little-endian).
    pub fn new(key: [u8; 16]) -> Self {
        let mut k0 = [0u8; 8];
        let mut k1 = [0u8; 8];
        k0.copy_from_slice(&key[..8]);
        k1.copy_from_slice(&key[8..]);
        let (k0, k1) = (u64::from_le_bytes(k0), u64::from_le_bytes(k1));
        SipHasher13 {
            v: [
                k0 ^ 0x736f_6d65_7073_6575,
                k1 ^ 0x646f_7261_6e64_6f6d,
                k0 ^ 0x6c79_6765_6e65_7261,
                k1 ^ 0x7465_6462_7974_6573,
            ],
            tail: 0,
            ntail: 0,
            len: 0,
        }
    }

    #[inline]
    fn round(&mut self) {
        let v = &mut self.v;
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }

    #[inline]
    fn compress(&mut self, m: u64) {
        self.v[3] ^= m;
        self.round();
        self.v[0] ^= m;
    }

    /// Absorb bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.len = self.len.wrapping_add(bytes.len() as u64);
        for &b in bytes {
            self.tail |= u64::from(b) << (8 * self.ntail);
            self.ntail += 1;
            if self.ntail == 8 {
                let m = self.tail;
                self.compress(m);
                self.tail = 0;
                self.ntail = 0;
            }
        }
    }

    /// The 64-bit hash of everything written.
    pub fn finish(&self) -> u64 {
        let mut s = self.clone();
        let b = ((s.len & 0xff) << 56) | s.tail;
        s.compress(b);
        s.v[2] ^= 0xff;
        s.round();
        s.round();
        s.round();
        s.v[0] ^ s.v[1] ^ s.v[2] ^ s.v[3]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // SipHash-1-3 with a zero key over the bytes 0, 1, 2, ... (values
        // from Rust's standard library hasher, which is SipHash-1-3 with a
        // zero key when made with `DefaultHasher::new`).
        let vectors: [(u8, u64); 7] = [
            (0, 0xd1fb_a762_150c_532c),
            (1, 0x68a9_1412_8e01_e473),
            (7, 0x2f09_8ab0_c751_325a),
            (8, 0xead4_11e6_7ebe_2eea),
            (15, 0xf30e_b725_bb91_c9ea),
            (16, 0x8972_1884_33a5_c5b7),
            (39, 0x6c76_b6d3_4bb6_d26b),
        ];
        for (len, want) in vectors {
            let data: Vec<u8> = (0..len).collect();
            let mut h = SipHasher13::new([0; 16]);
            h.write(&data);
            assert_eq!(h.finish(), want, "len {len}");
            // Written in pieces, the same.
            let mut h = SipHasher13::new([0; 16]);
            for chunk in data.chunks(3) {
                h.write(chunk);
            }
            assert_eq!(h.finish(), want, "len {len} in pieces");
        }
    }

    #[test]
    fn key_changes_the_hash() {
        let mut a = SipHasher13::new([0; 16]);
        let mut b = SipHasher13::new([1; 16]);
        a.write(b"flow");
        b.write(b"flow");
        assert_ne!(a.finish(), b.finish());
    }
}
