//! Least-recently-used order of flow slots, in O(1) per operation.
//!
//! A doubly-linked list threaded through two arrays indexed by flow slot,
//! allocated once with the table's capacity. Datagram flows have no end
//! but silence, so both their idle timeout and the eviction of the idlest
//! flow when the table is full read the list's front: the sweep stops at
//! the first flow that has not expired, and the next deadline is the
//! front's.

use core::time::Duration;

use crate::flow::table::FlowTable;
use crate::flow::FlowId;
use crate::time::Instant;

/// No slot.
const NIL: u32 = u32::MAX;

/// Flow slots from least to most recently active.
pub(crate) struct Lru {
    prev: Box<[u32]>,
    next: Box<[u32]>,
    linked: Box<[bool]>,
    head: u32,
    tail: u32,
}

impl Lru {
    /// An empty order over `capacity` slots.
    pub(crate) fn new(capacity: u32) -> Self {
        let n = capacity as usize;
        Lru {
            prev: vec![NIL; n].into_boxed_slice(),
            next: vec![NIL; n].into_boxed_slice(),
            linked: vec![false; n].into_boxed_slice(),
            head: NIL,
            tail: NIL,
        }
    }

    /// The least recently active slot.
    pub(crate) fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The least recently active flow of `flows`, if `last` says it has been
    /// silent for at least `min_idle` at `now`: the one to evict when the
    /// table is full. A front slot whose flow is gone is dropped from the
    /// order on the way.
    pub(crate) fn idle_front<T>(
        &mut self,
        flows: &FlowTable<T>,
        now: Instant,
        min_idle: Duration,
        last: impl Fn(&T) -> Instant,
    ) -> Option<FlowId> {
        let front = self.front()?;
        let Some(fid) = flows.id_at(front as usize) else {
            self.remove(front);
            return None;
        };
        flows
            .get(fid)
            .is_some_and(|f| now.saturating_since(last(f)) >= min_idle)
            .then_some(fid)
    }

    /// Take `slot` out of the order (nothing if it is not in it).
    pub(crate) fn remove(&mut self, slot: u32) {
        let i = slot as usize;
        if !self.linked.get(i).copied().unwrap_or(false) {
            return;
        }
        let (p, n) = (self.prev[i], self.next[i]);
        match self.prev.get(p as usize) {
            Some(_) => self.next[p as usize] = n,
            None => self.head = n,
        }
        match self.next.get(n as usize) {
            Some(_) => self.prev[n as usize] = p,
            None => self.tail = p,
        }
        self.prev[i] = NIL;
        self.next[i] = NIL;
        self.linked[i] = false;
    }

    /// Make `slot` the most recently active (inserting it if needed).
    pub(crate) fn touch(&mut self, slot: u32) {
        let i = slot as usize;
        if i >= self.linked.len() || (self.linked[i] && self.tail == slot) {
            return;
        }
        self.remove(slot);
        self.prev[i] = self.tail;
        self.next[i] = NIL;
        match self.next.get_mut(self.tail as usize) {
            Some(n) => *n = slot,
            None => self.head = slot,
        }
        self.tail = slot;
        self.linked[i] = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(l: &Lru) -> Vec<u32> {
        let mut v = Vec::new();
        let mut i = l.head;
        while i != NIL {
            v.push(i);
            i = l.next[i as usize];
        }
        v
    }

    #[test]
    fn touch_moves_to_the_back_and_remove_unlinks() {
        let mut l = Lru::new(4);
        assert_eq!(l.front(), None);
        for s in [2, 0, 3] {
            l.touch(s);
        }
        assert_eq!(order(&l), [2, 0, 3]);
        l.touch(2);
        assert_eq!(order(&l), [0, 3, 2]);
        l.touch(2);
        assert_eq!(order(&l), [0, 3, 2]);
        l.remove(3);
        l.remove(3);
        assert_eq!(order(&l), [0, 2]);
        l.remove(0);
        assert_eq!(l.front(), Some(2));
        l.remove(2);
        assert_eq!(l.front(), None);
        l.touch(1);
        l.touch(9); // out of range: ignored
        assert_eq!(order(&l), [1]);
        assert_eq!(l.tail, 1);
    }
}
