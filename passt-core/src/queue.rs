//! A FIFO of fixed capacity, allocated once: pushing past capacity fails
//! instead of growing, so queues on the data path never allocate. A queue
//! that empties starts again at the front of its storage, so that only as
//! much of it is ever written as was queued at once (the kernel backs the
//! rest of a large reservation with no memory).

use std::collections::VecDeque;

/// A bounded FIFO; `push` refuses items beyond the capacity given to `new`.
#[derive(Debug)]
pub(crate) struct FixedQueue<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T> FixedQueue<T> {
    /// Allocate room for `cap` items now; never again.
    pub(crate) fn new(cap: usize) -> Self {
        FixedQueue {
            items: VecDeque::with_capacity(cap),
            cap,
        }
    }

    /// Append, or give the item back if the queue is full.
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        if self.items.len() >= self.cap {
            return Err(item);
        }
        self.items.push_back(item);
        Ok(())
    }

    /// Take the oldest item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let item = self.items.pop_front();
        if self.items.is_empty() {
            // Back to the start of the storage (`clear` rewinds it).
            self.items.clear();
        }
        item
    }

    /// Items queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_capacity_without_growing() {
        let mut q = FixedQueue::new(2);
        let cap = q.items.capacity();
        assert_eq!(q.push(1), Ok(()));
        assert_eq!(q.push(2), Ok(()));
        assert_eq!(q.push(3), Err(3));
        assert_eq!(q.items.capacity(), cap);
        assert_eq!(q.pop(), Some(1));
        assert_eq!(q.len(), 1);
    }
}
