//! The flow index: from the addresses of a packet to its flow, in O(1).
//!
//! Open addressing with linear probing over a power-of-two array at least
//! twice the flow capacity (load factor at most 1/2), keyed with SipHash-1-3
//! and a secret key. Removal shifts later entries of the cluster back
//! (Knuth, TAOCP vol. 3, §6.4, Algorithm R) instead of leaving tombstones, so
//! lookups stay short however many flows come and go. Storage is allocated
//! once; an insert into a full index is refused. Entries live in a dense
//! array beside the probe array (see [`FlowIndex`]), so that memory follows
//! the flows there are, not the capacity.

use super::siphash::SipHasher13;
use super::FlowId;

/// What a flow is looked up by: the protocol module defines the key (its
/// addresses and ports) and how it feeds the hash.
pub trait FlowKey: Copy + Eq {
    /// Feed every field of the key to the hasher.
    fn hash_into(&self, h: &mut SipHasher13);
}

#[derive(Clone, Copy)]
struct Entry<K> {
    key: K,
    id: FlowId,
    /// The entry's home position in the probe array.
    home: u32,
    /// Where in the probe array the entry is now.
    at: u32,
}

/// A keyed hash index from flow keys to flow ids.
///
/// Two arrays: the probe array of the open addressing holds, per
/// position, 0 for empty or one more than the entry's place in a dense
/// array of entries (key, id, positions). The probe array, four bytes a
/// position, is zero-filled by the allocator and so costs no memory until
/// written; the dense one only grows (within the room reserved at start)
/// to the most keys ever held at once. A table sized for 128 Ki flows thus
/// costs about a megabyte with few flows, not the dozen its entries would
/// take in place.
pub struct FlowIndex<K: FlowKey> {
    probe: Box<[u32]>,
    entries: Vec<Entry<K>>,
    mask: usize,
    max: usize,
    key: [u8; 16],
}

impl<K: FlowKey> FlowIndex<K> {
    /// An index for up to `max` keys, hashed with the secret `key`.
    pub fn new(max: u32, key: [u8; 16]) -> Self {
        let size = (max as usize * 2).max(2).next_power_of_two();
        FlowIndex {
            // Zeroed memory the kernel maps lazily (calloc).
            probe: vec![0u32; size].into_boxed_slice(),
            entries: Vec::with_capacity(max as usize),
            mask: size - 1,
            max: max as usize,
            key,
        }
    }

    fn home(&self, k: &K) -> usize {
        let mut h = SipHasher13::new(self.key);
        k.hash_into(&mut h);
        (h.finish() as usize) & self.mask
    }

    /// Keys in the index.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry at probe position `i`, if any.
    fn at(&self, i: usize) -> Option<&Entry<K>> {
        let e = *self.probe.get(i)?;
        self.entries.get((e as usize).checked_sub(1)?)
    }

    /// The probe position of `k`, if present.
    fn find(&self, k: &K) -> Option<usize> {
        let mut i = self.home(k);
        // At most every position once; in practice a few.
        for _ in 0..self.probe.len() {
            match self.at(i) {
                None => return None,
                Some(e) if e.key == *k => return Some(i),
                Some(_) => i = (i + 1) & self.mask,
            }
        }
        None
    }

    /// The flow for `k`, if any.
    pub fn get(&self, k: &K) -> Option<FlowId> {
        self.find(k).and_then(|i| self.at(i)).map(|e| e.id)
    }

    /// Map `k` to `id`; `false` if `k` is already present or the index is
    /// full.
    pub fn insert(&mut self, k: K, id: FlowId) -> bool {
        if self.entries.len() >= self.max || self.find(&k).is_some() {
            return false;
        }
        let home = self.home(&k);
        let mut i = home;
        while self.probe[i] != 0 {
            i = (i + 1) & self.mask;
        }
        // Within the room reserved for `max` entries: no allocation.
        self.entries.push(Entry {
            key: k,
            id,
            home: home as u32,
            at: i as u32,
        });
        self.probe[i] = self.entries.len() as u32;
        true
    }

    /// Remove `k`, returning the flow it named.
    pub fn remove(&mut self, k: &K) -> Option<FlowId> {
        let mut hole = self.find(k)?;
        let d = self.probe[hole] as usize - 1;
        let id = self.entries.swap_remove(d).id;
        // The last entry moved into place `d`: point its position there.
        if let Some(moved) = self.entries.get(d) {
            self.probe[moved.at as usize] = d as u32 + 1;
        }
        self.probe[hole] = 0;
        // Shift back every later entry of the cluster whose home is not
        // cyclically in (hole, j].
        let mut j = hole;
        loop {
            j = (j + 1) & self.mask;
            let p = self.probe[j];
            let Some(e) = (p as usize)
                .checked_sub(1)
                .and_then(|n| self.entries.get_mut(n))
            else {
                break;
            };
            let home = e.home as usize;
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                e.at = hole as u32;
                self.probe[hole] = p;
                self.probe[j] = 0;
                hole = j;
            }
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    struct K(u32);
    impl FlowKey for K {
        fn hash_into(&self, h: &mut SipHasher13) {
            h.write(&self.0.to_le_bytes());
        }
    }

    fn id(i: u32) -> FlowId {
        FlowId { index: i, gen: 1 }
    }

    #[test]
    fn insert_get_remove_under_churn() {
        let mut ix = FlowIndex::new(64, [7; 16]);
        let mut live = std::collections::BTreeMap::new();
        let mut x: u32 = 12345;
        for step in 0..20_000u32 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let k = x % 200;
            if x & 1 == 0 && live.len() < 64 {
                let inserted = ix.insert(K(k), id(step));
                assert_eq!(inserted, !live.contains_key(&k), "step {step}");
                if inserted {
                    live.insert(k, id(step));
                }
            } else {
                assert_eq!(ix.remove(&K(k)), live.remove(&k), "step {step}");
            }
            assert_eq!(ix.len(), live.len());
            if step % 97 == 0 {
                for k in 0..200 {
                    assert_eq!(ix.get(&K(k)), live.get(&k).copied(), "step {step} key {k}");
                }
            }
        }
    }

    #[test]
    fn full_index_refuses() {
        let mut ix = FlowIndex::new(2, [0; 16]);
        assert!(ix.insert(K(1), id(1)));
        assert!(!ix.insert(K(1), id(2)));
        assert!(ix.insert(K(2), id(2)));
        assert!(!ix.insert(K(3), id(3)));
        assert_eq!(ix.remove(&K(1)), Some(id(1)));
        assert!(ix.insert(K(3), id(3)));
        assert_eq!(ix.get(&K(3)), Some(id(3)));
        assert_eq!(ix.get(&K(1)), None);
    }
}
