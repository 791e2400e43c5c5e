//! Coalescing datagram sends: consecutive [`SockOp::Send`] or
//! [`SockOp::SendTo`] operations for one datagram socket, gathered so that
//! a driver can hand them to the kernel in one system call (`sendmmsg(2)`).
//!
//! # Why it is sound
//!
//! The translator queues one operation per guest datagram; a batch of
//! guest frames for the same flow yields a run of `Send`s (or `SendTo`s on
//! a forwarded port's listening socket) for the same socket. Each datagram
//! stands alone (no short writes, no ordering between sockets to keep), and
//! every operation of the run was queued before any of them ran, so sending
//! them together and then feeding back their completions in queue order is
//! indistinguishable, for the translator, from running them one by one:
//! completions only ever queue new operations *behind* the run.
//!
//! A [`SendBatch`] takes operations in order and refuses the first one that
//! does not continue the run (another socket, another kind, a full batch);
//! the driver runs the batch, then carries on with the refused operation.
//! Only datagram sockets may be batched: a stream `Send` has short-write
//! semantics ([`crate::tcp`]); a driver starts a batch only for a socket it
//! knows to be a datagram one, and a batch then takes only that socket's
//! operations.

use crate::addr::SockAddrAny;
use crate::buf::RxSpan;
use crate::{SockId, SockOp};

/// Most datagrams in one [`SendBatch`] (Linux caps `sendmmsg` at 1024).
pub const SEND_BATCH_MAX: usize = 64;

/// One datagram of a [`SendBatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DgramSend {
    /// Destination, for a [`SockOp::SendTo`]; `None` for a [`SockOp::Send`]
    /// on a connected socket.
    pub dst: Option<SockAddrAny>,
    /// The payload, in the rx batch of the operations.
    pub payload: RxSpan,
}

/// A run of datagram sends on one socket, in queue order. Fixed storage,
/// reused with [`SendBatch::clear`].
#[derive(Clone, Debug)]
pub struct SendBatch {
    id: SockId,
    msgs: [DgramSend; SEND_BATCH_MAX],
    len: usize,
}

impl Default for SendBatch {
    fn default() -> Self {
        let none = DgramSend {
            dst: None,
            payload: RxSpan {
                frame: 0,
                offset: 0,
                len: 0,
            },
        };
        SendBatch {
            id: SockId::from_parts(0, 0),
            msgs: [none; SEND_BATCH_MAX],
            len: 0,
        }
    }
}

impl SendBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forget every datagram.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Datagrams gathered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none was gathered.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The socket of the batch; `None` while it is empty.
    pub fn id(&self) -> Option<SockId> {
        (self.len > 0).then_some(self.id)
    }

    /// The datagrams, in queue order.
    pub fn msgs(&self) -> &[DgramSend] {
        self.msgs.get(..self.len).unwrap_or(&[])
    }

    /// Add `op` if it continues the run: a `Send` or `SendTo` (whichever
    /// the batch started with) for the batch's socket, with room left. An
    /// empty batch takes any `Send` or `SendTo`. Otherwise `op` comes back
    /// untouched.
    ///
    /// # Errors
    /// The operation, when it does not belong in this batch.
    pub fn push(&mut self, op: SockOp) -> Result<(), SockOp> {
        let (id, msg) = match op {
            SockOp::Send { id, payload } => (id, DgramSend { dst: None, payload }),
            SockOp::SendTo { id, dst, payload } => (
                id,
                DgramSend {
                    dst: Some(dst),
                    payload,
                },
            ),
            _ => return Err(op),
        };
        if let Some(first) = self.msgs().first() {
            if id != self.id || first.dst.is_some() != msg.dst.is_some() {
                return Err(op);
            }
        }
        let Some(slot) = self.msgs.get_mut(self.len) else {
            return Err(op);
        };
        *slot = msg;
        self.id = id;
        self.len += 1;
        Ok(())
    }

    /// Start a batch with `first` and keep taking operations from `next`
    /// while they continue the run. Returns the operation that ended the
    /// run, if one was taken and refused (the caller runs it after the
    /// batch). If `first` itself is refused (not a send), it is returned
    /// and the batch stays empty.
    pub fn gather(
        &mut self,
        first: SockOp,
        mut next: impl FnMut() -> Option<SockOp>,
    ) -> Option<SockOp> {
        self.clear();
        if let Err(op) = self.push(first) {
            return Some(op);
        }
        while self.len < SEND_BATCH_MAX {
            let op = next()?;
            if let Err(op) = self.push(op) {
                return Some(op);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn span(frame: u32) -> RxSpan {
        RxSpan {
            frame,
            offset: 42,
            len: 10,
        }
    }

    #[test]
    fn a_run_ends_at_another_socket_or_kind() {
        let a = SockId::from_parts(1, 1);
        let b = SockId::from_parts(2, 1);
        let dst = SockAddrAny::new(Ipv4Addr::new(192, 0, 2, 1), 53);
        let mut ops = vec![
            SockOp::Send {
                id: a,
                payload: span(1),
            },
            SockOp::Send {
                id: a,
                payload: span(2),
            },
            SockOp::SendTo {
                id: a,
                dst,
                payload: span(3),
            },
        ]
        .into_iter();
        let mut batch = SendBatch::new();
        let first = ops.next().unwrap();
        let left = batch.gather(first, || ops.next());
        assert_eq!(batch.id(), Some(a));
        assert_eq!(
            batch.msgs(),
            &[
                DgramSend {
                    dst: None,
                    payload: span(1)
                },
                DgramSend {
                    dst: None,
                    payload: span(2)
                }
            ]
        );
        assert!(matches!(left, Some(SockOp::SendTo { .. })));
        // Another socket ends the run too; a non-send never starts one.
        assert_eq!(
            batch.push(SockOp::Send {
                id: b,
                payload: span(4)
            }),
            Err(SockOp::Send {
                id: b,
                payload: span(4)
            })
        );
        let close = SockOp::Close { id: a };
        assert_eq!(batch.gather(close, || None), Some(close));
        assert!(batch.is_empty());
        assert_eq!(batch.id(), None);
    }

    #[test]
    fn a_full_batch_leaves_the_rest_queued() {
        let a = SockId::from_parts(0, 3);
        let mut n = 0u32;
        let mut batch = SendBatch::new();
        let left = batch.gather(
            SockOp::Send {
                id: a,
                payload: span(0),
            },
            || {
                n += 1;
                Some(SockOp::Send {
                    id: a,
                    payload: span(n),
                })
            },
        );
        assert_eq!(left, None);
        assert_eq!(batch.len(), SEND_BATCH_MAX);
        // Exactly the ops that fit were taken, in order.
        assert_eq!(n as usize, SEND_BATCH_MAX - 1);
        let frames: Vec<u32> = batch.msgs().iter().map(|m| m.payload.frame).collect();
        assert_eq!(frames, (0..SEND_BATCH_MAX as u32).collect::<Vec<_>>());
    }
}
