//! A fixed-capacity table of flows, one per protocol.
//!
//! Room for every slot is reserved once and never grows; slots are handed
//! out lowest first and reused from a free list, in O(1), so only the slots
//! up to the high-water mark of live flows are ever written (the kernel
//! backs the rest of the reservation with no memory until it is written). A [`FlowId`] carries the slot's generation, bumped on every
//! reuse, so lookups with a stale id find nothing. New flows go through a
//! [`Vacant`] guard: it names the slot the flow will get (so sockets and
//! index entries can be prepared with its id) but takes nothing until
//! [`Vacant::insert`]; dropping the guard leaves the table as it was, so a
//! half-built flow can never be seen by anyone else.

use super::FlowId;
use crate::lazy::SlotAlloc;

struct Slot<T> {
    gen: u32,
    item: Option<T>,
}

/// Flows of one protocol, in fixed storage.
pub struct FlowTable<T> {
    /// The slots below the high-water mark (room reserved for all).
    slots: Vec<Slot<T>>,
    alloc: SlotAlloc,
    cap: usize,
    len: usize,
}

impl<T> FlowTable<T> {
    /// A table for at most `capacity` flows; allocates now, never again
    /// (and writes nothing until flows come).
    pub fn new(capacity: u32) -> Self {
        FlowTable {
            slots: Vec::with_capacity(capacity as usize),
            alloc: SlotAlloc::new(capacity),
            cap: capacity as usize,
            len: 0,
        }
    }

    /// Most flows the table holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Flows in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table holds no flow.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether no slot is free.
    pub fn is_full(&self) -> bool {
        self.alloc.is_full()
    }

    /// The next free slot, as a guard; `None` if the table is full.
    pub fn vacant(&mut self) -> Option<Vacant<'_, T>> {
        let index = self.alloc.peek()?;
        let gen = self
            .slots
            .get(index as usize)
            .map_or(0, |s| s.gen)
            .wrapping_add(1);
        Some(Vacant {
            table: self,
            id: FlowId { index, gen },
        })
    }

    /// Insert a flow in the next free slot, if any; gives it back if full.
    ///
    /// # Errors
    /// The item itself, when the table is full.
    pub fn insert(&mut self, item: T) -> Result<FlowId, T> {
        match self.vacant() {
            Some(v) => Ok(v.insert(item)),
            None => Err(item),
        }
    }

    fn slot(&self, id: FlowId) -> Option<&Slot<T>> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.gen == id.gen)
    }

    /// The flow `id` names, if it still exists.
    pub fn get(&self, id: FlowId) -> Option<&T> {
        self.slot(id)?.item.as_ref()
    }

    /// The flow `id` names, mutably, if it still exists.
    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut T> {
        let s = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.gen == id.gen)?;
        s.item.as_mut()
    }

    /// Remove the flow `id` names, returning it; its slot is free again.
    pub fn remove(&mut self, id: FlowId) -> Option<T> {
        let s = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.gen == id.gen)?;
        let item = s.item.take()?;
        self.alloc.release(id.index);
        self.len -= 1;
        Some(item)
    }

    /// Every flow with its id, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (FlowId, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let item = s.item.as_ref()?;
            Some((
                FlowId {
                    index: i as u32,
                    gen: s.gen,
                },
                item,
            ))
        })
    }

    /// The id of the flow in slot `index`, if one lives there (for sweeps
    /// that must not hold a borrow of the table).
    pub fn id_at(&self, index: usize) -> Option<FlowId> {
        let s = self.slots.get(index)?;
        s.item.as_ref().map(|_| FlowId {
            index: index as u32,
            gen: s.gen,
        })
    }
}

/// A slot about to receive a flow; see the module docs.
pub struct Vacant<'t, T> {
    table: &'t mut FlowTable<T>,
    id: FlowId,
}

impl<T> Vacant<'_, T> {
    /// The id the flow will have once inserted.
    pub fn id(&self) -> FlowId {
        self.id
    }

    /// Publish the flow.
    pub fn insert(self, item: T) -> FlowId {
        let index = self.table.alloc.take();
        debug_assert_eq!(index, Some(self.id.index));
        let i = self.id.index as usize;
        let slots = &mut self.table.slots;
        if i == slots.len() {
            // A slot never used: within the room reserved, no allocation.
            slots.push(Slot {
                gen: self.id.gen,
                item: Some(item),
            });
        } else {
            let slot = &mut slots[i];
            slot.gen = self.id.gen;
            slot.item = Some(item);
        }
        self.table.len += 1;
        self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_stale_when_slots_are_reused() {
        let mut t = FlowTable::new(2);
        let a = t.insert("a").unwrap();
        let b = t.insert("b").unwrap();
        assert_eq!(t.insert("c"), Err("c"));
        assert!(t.is_full());
        assert_eq!(t.remove(a), Some("a"));
        assert_eq!(t.remove(a), None);
        let c = t.insert("c").unwrap();
        assert_eq!(c.index(), a.index());
        assert_ne!(c, a);
        assert_eq!(t.get(a), None);
        assert_eq!(t.get(c), Some(&"c"));
        *t.get_mut(b).unwrap() = "B";
        let all: Vec<_> = t.iter().map(|(id, v)| (id, *v)).collect();
        assert_eq!(all, vec![(c, "c"), (b, "B")]);
        assert_eq!(t.id_at(1), Some(b));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn dropped_vacancy_takes_nothing() {
        let mut t: FlowTable<u8> = FlowTable::new(1);
        let id = {
            let v = t.vacant().unwrap();
            v.id()
        };
        assert!(t.is_empty());
        assert_eq!(t.get(id), None);
        let v = t.vacant().unwrap();
        assert_eq!(v.id(), id);
        assert_eq!(v.insert(7), id);
        assert_eq!(t.get(id), Some(&7));
        assert!(t.vacant().is_none());
    }
}
