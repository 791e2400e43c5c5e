//! The socket slots: every [`SockId`] the translator hands out, with its
//! generation and an opaque owner token, so that readiness and completions
//! reach the module (and the object in it) that opened the socket in O(1),
//! and late ones for a closed socket are recognised.
//!
//! The token's [`Module`] is all the dispatcher reads; its `tag` means
//! whatever that module wants (a flow slot, a listener index) and only that
//! module interprets it.

use crate::contract::sock::SockId;
use crate::lazy::{LazyArray, SlotAlloc};

/// The transport module a socket belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Module {
    /// A free slot: no owner recorded.
    #[default]
    None,
    /// [`crate::tcp`].
    Tcp,
    /// [`crate::udp`].
    Udp,
    /// [`crate::icmp`].
    Icmp,
}

/// Who owns a socket: the module, and a tag only that module interprets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) module: Module,
    pub(crate) tag: u32,
}

impl Owner {
    /// An owner token of `module` carrying `tag`.
    pub(crate) const fn new(module: Module, tag: u32) -> Self {
        Owner { module, tag }
    }
}

/// Socket slots with generations; room for the socket limit is reserved
/// once, and only the slots up to the most sockets open at once are
/// written ([`crate::lazy`]).
pub(crate) struct SockSlots {
    gens: LazyArray<u32>,
    live: LazyArray<bool>,
    owner: LazyArray<Owner>,
    /// Lowest slots first, so descriptor tables stay dense.
    free: SlotAlloc,
}

impl SockSlots {
    /// Room for `max` sockets at once.
    pub(crate) fn new(max: u32) -> Self {
        SockSlots {
            gens: LazyArray::new(max as usize, || 0),
            live: LazyArray::new(max as usize, || false),
            owner: LazyArray::new(max as usize, Owner::default),
            free: SlotAlloc::new(max),
        }
    }

    /// A new id whose readiness and completions go to `owner`.
    pub(crate) fn alloc_owned(&mut self, owner: Owner) -> Option<SockId> {
        let slot = self.free.take()?;
        let i = slot as usize;
        self.gens[i] = self.gens[i].wrapping_add(1);
        self.live[i] = true;
        self.owner[i] = owner;
        Some(SockId::from_parts(slot, self.gens[i]))
    }

    /// The owner of a live socket; `None` if `id` is stale.
    pub(crate) fn owner(&self, id: SockId) -> Option<Owner> {
        self.is_live(id)
            .then(|| self.owner.get(id.slot() as usize).copied())
            .flatten()
    }

    /// Whether `id` names a socket that is open now (not a closed one
    /// whose slot was reused).
    pub(crate) fn is_live(&self, id: SockId) -> bool {
        let i = id.slot() as usize;
        self.live.get(i).copied().unwrap_or(false) && self.gens.get(i) == Some(&id.gen())
    }

    /// Give the slot of `id` back (a no-op if it is stale).
    pub(crate) fn release(&mut self, id: SockId) {
        if self.is_live(id) {
            self.live[id.slot() as usize] = false;
            self.free.release(id.slot());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sock_ids_carry_generations() {
        let mut s = SockSlots::new(2);
        let a = s.alloc_owned(Owner::default()).unwrap();
        let b = s.alloc_owned(Owner::default()).unwrap();
        assert_eq!((a.slot(), b.slot()), (0, 1));
        assert!(s.alloc_owned(Owner::default()).is_none());
        s.release(a);
        s.release(a); // twice: no double free
        let c = s.alloc_owned(Owner::new(Module::Udp, 7)).unwrap();
        assert_eq!(c.slot(), 0);
        assert_ne!(c, a);
        assert!(!s.is_live(a) && s.is_live(c));
        assert_eq!(s.owner(c), Some(Owner::new(Module::Udp, 7)));
        assert_eq!(s.owner(a), None);
        assert!(s.alloc_owned(Owner::default()).is_none());
        assert_eq!(SockId::from_u64(c.to_u64()), c);
        assert!(!s.is_live(SockId::from_parts(7, 1)));
    }
}
