//! Fixed-capacity arrays whose memory is touched only where written.
//!
//! Tables indexed by socket or flow slot are sized for the limits
//! ([`crate::config::Limits`]: 128 Ki entries by default), but a process
//! rarely uses more than a few of their entries. Filling such a table with
//! its initial value at start-up writes every page of it, and the process
//! pays for all of them in resident memory from then on.
//!
//! A [`LazyArray`] reserves room for its whole capacity at once (one
//! allocation, which the kernel backs with pages only when they are
//! written) and keeps a *touched prefix*: elements up to the highest index
//! ever written. Reading beyond the prefix gives the fill value; writing
//! there first extends the prefix with the fill value, inside the reserved
//! room, so it never allocates. Slot allocators hand out low indexes first,
//! so the prefix follows the high-water mark of what is in use.

use core::ops::{Index, IndexMut};

/// An array of `capacity` elements, all `fill` until written; see the
/// module docs.
#[derive(Debug)]
pub(crate) struct LazyArray<T> {
    touched: Vec<T>,
    cap: usize,
    /// What every element beyond the touched prefix reads as.
    fill: T,
    /// Makes the fill value, to extend the prefix.
    make: fn() -> T,
}

impl<T> LazyArray<T> {
    /// Reserve `cap` elements now (never again), each `make()` until
    /// written; none is written yet.
    pub(crate) fn new(cap: usize, make: fn() -> T) -> Self {
        LazyArray {
            touched: Vec::with_capacity(cap),
            cap,
            fill: make(),
            make,
        }
    }

    /// Element `i`; `None` beyond the capacity.
    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        match self.touched.get(i) {
            Some(v) => Some(v),
            None => (i < self.cap).then_some(&self.fill),
        }
    }

    /// Element `i`, to write; `None` beyond the capacity. Extends the
    /// touched prefix up to `i` (within the reserved room: no allocation).
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.cap {
            return None;
        }
        if i >= self.touched.len() {
            self.touched.resize_with(i + 1, self.make);
        }
        self.touched.get_mut(i)
    }

    // Used by the executor (feature `host`).
    #[cfg_attr(not(feature = "host"), allow(dead_code))]
    /// The touched prefix with the index of each element (what lies beyond
    /// is all `fill`).
    pub(crate) fn touched_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> + '_ {
        self.touched.iter_mut().enumerate()
    }

    // Used by the executor (feature `host`).
    #[cfg_attr(not(feature = "host"), allow(dead_code))]
    /// The touched prefix (what lies beyond is all `fill`).
    pub(crate) fn touched(&self) -> &[T] {
        &self.touched
    }

    // Used by the executor (feature `host`).
    #[cfg_attr(not(feature = "host"), allow(dead_code))]
    /// Set every element back to the fill value (only the touched prefix
    /// needs writing).
    pub(crate) fn reset(&mut self) {
        let make = self.make;
        self.touched.iter_mut().for_each(|v| *v = make());
    }
}

impl<T> Index<usize> for LazyArray<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        self.get(i).expect("LazyArray index within capacity")
    }
}

impl<T> IndexMut<usize> for LazyArray<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        self.get_mut(i).expect("LazyArray index within capacity")
    }
}

/// Slot numbers below a capacity, handed out lowest first until released
/// ones are there to reuse: the numbers in use stay below their high-water
/// mark, so arrays indexed by them ([`LazyArray`]) stay small. Room for the
/// whole capacity is reserved at once; nothing allocates afterwards.
#[derive(Debug)]
pub(crate) struct SlotAlloc {
    free: Vec<u32>,
    next: u32,
    cap: u32,
}

impl SlotAlloc {
    /// Slots `0..cap`, all free.
    pub(crate) fn new(cap: u32) -> Self {
        SlotAlloc {
            free: Vec::with_capacity(cap as usize),
            next: 0,
            cap,
        }
    }

    /// The slot [`SlotAlloc::take`] would give, without taking it.
    pub(crate) fn peek(&self) -> Option<u32> {
        match self.free.last() {
            Some(&s) => Some(s),
            None => (self.next < self.cap).then_some(self.next),
        }
    }

    /// Take a free slot; `None` if all are in use.
    pub(crate) fn take(&mut self) -> Option<u32> {
        if let Some(s) = self.free.pop() {
            return Some(s);
        }
        let s = self.next;
        (s < self.cap).then(|| {
            self.next += 1;
            s
        })
    }

    /// Give back a slot taken before (each at most once: the free list has
    /// room for every slot, so this never allocates).
    pub(crate) fn release(&mut self, slot: u32) {
        debug_assert!(slot < self.next);
        if self.free.len() < self.free.capacity() {
            self.free.push(slot);
        }
    }

    /// Whether every slot is in use.
    pub(crate) fn is_full(&self) -> bool {
        self.free.is_empty() && self.next == self.cap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_beyond_the_prefix_give_the_fill_and_writes_extend_it() {
        let mut a = LazyArray::new(8, || 7u32);
        let room = a.touched.capacity();
        assert_eq!(a[5], 7);
        assert!(a.touched().is_empty());
        a[2] = 1;
        assert_eq!(a.touched(), &[7, 7, 1]);
        assert_eq!(a.get(7), Some(&7));
        assert_eq!(a.get(8), None);
        assert!(a.get_mut(8).is_none());
        a[7] = 3;
        assert_eq!(a.touched().len(), 8);
        assert_eq!(a.touched.capacity(), room);
        for (i, v) in a.touched_mut() {
            *v = i as u32;
        }
        assert_eq!(a[6], 6);
        a.reset();
        assert_eq!((a[6], a.touched().len()), (7, 8));
    }

    #[test]
    fn slots_come_lowest_first_and_are_reused() {
        let mut s = SlotAlloc::new(3);
        let room = s.free.capacity();
        assert_eq!(s.peek(), Some(0));
        assert_eq!((s.take(), s.take()), (Some(0), Some(1)));
        s.release(0);
        assert_eq!(s.peek(), Some(0));
        assert_eq!(s.take(), Some(0));
        assert_eq!(s.take(), Some(2));
        assert!(s.is_full());
        assert_eq!(s.take(), None);
        assert_eq!(s.next, 3);
        for i in 0..3 {
            s.release(i);
        }
        assert_eq!(s.free.capacity(), room);
        assert!(!s.is_full());
    }
}
