//! The rtnetlink socket: one dump request at a time, its multi-part reply
//! checked and handed over message by message.
//!
//! System calls: `socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)`,
//! `bind` (the kernel picks our port id), `setsockopt(SO_RCVTIMEO)`, then per
//! request one `sendto` to the kernel (port id 0) and `recvfrom` with
//! `MSG_TRUNC` until `NLMSG_DONE` (netlink(7)). All through rustix's safe
//! wrappers.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::sockopt::Timeout;
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::netlink::{
    emit_dump_request, flags, msg_type, parse_done, NlErrRepr, NlMsgIter, NlMsgRepr,
};
use super::HostError;

/// Receive buffer: larger than the 32 KiB the kernel fills per datagram of a
/// dump, so `MSG_TRUNC` never fires in practice.
const RECV_BUF: usize = 64 * 1024;

/// Most datagrams read for one dump (a full Internet routing table is a few
/// thousand); the reply is an error beyond.
const MAX_DATAGRAMS: usize = 1 << 16;

/// How long a `recvfrom` may wait: the kernel answers dumps at once.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// A `NETLINK_ROUTE` socket.
pub(crate) struct RtNetlink {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
    /// Every datagram received, when recording (for test fixtures).
    #[cfg(test)]
    pub(crate) recorded: Option<Vec<Vec<u8>>>,
}

fn os(op: &'static str) -> impl FnOnce(rustix::io::Errno) -> HostError {
    move |e| HostError::Socket {
        op,
        source: e.into(),
    }
}

impl RtNetlink {
    /// Open and bind the socket.
    pub(crate) fn open() -> Result<Self, HostError> {
        let fd = net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(os("socket"))?;
        net::bind(&fd, &SocketAddrNetlink::new(0, 0)).map_err(os("bind"))?;
        net::sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(RECV_TIMEOUT))
            .map_err(os("setsockopt"))?;
        Ok(RtNetlink {
            fd,
            seq: 0,
            buf: vec![0; RECV_BUF],
            #[cfg(test)]
            recorded: None,
        })
    }

    /// Send a dump request for `req_type` ([`msg_type::GETLINK`],
    /// [`msg_type::GETADDR`], [`msg_type::GETROUTE`]) of family `fam` and
    /// pass every data message of the reply to `on_msg`, in order.
    ///
    /// Messages with another sequence number (a late reply to an earlier
    /// request) and datagrams not from the kernel are skipped; `NLMSG_NOOP`
    /// is skipped; the reply ends at `NLMSG_DONE`, at an acknowledgement, or
    /// after a message without `NLM_F_MULTI`.
    ///
    /// # Errors
    /// [`HostError::Socket`] for a failed system call (a timeout included),
    /// [`HostError::Kernel`] for an `NLMSG_ERROR` or a failed `NLMSG_DONE`,
    /// [`HostError::Malformed`] for bytes that do not parse,
    /// [`HostError::Interrupted`] if the kernel flags the dump
    /// `NLM_F_DUMP_INTR`, [`HostError::TooLong`] beyond the datagram limit or
    /// for a datagram larger than the buffer; `on_msg`'s own errors.
    pub(crate) fn dump(
        &mut self,
        request: &'static str,
        req_type: u16,
        fam: u8,
        on_msg: &mut dyn FnMut(&NlMsgRepr<'_>) -> Result<(), HostError>,
    ) -> Result<(), HostError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut req = [0u8; 64];
        let n = emit_dump_request(req_type, fam, seq, &mut req)
            .map_err(|source| HostError::Malformed { request, source })?;
        let kernel = SocketAddrNetlink::new(0, 0);
        let out = req.get(..n).unwrap_or(&[]);
        net::sendto(&self.fd, out, SendFlags::empty(), &kernel).map_err(os("sendto"))?;

        for _ in 0..MAX_DATAGRAMS {
            let (len, full, from) = net::recvfrom(&self.fd, &mut self.buf[..], RecvFlags::TRUNC)
                .map_err(os("recvfrom"))?;
            if full > len {
                return Err(HostError::TooLong { request });
            }
            let from_kernel = from
                .and_then(|a| SocketAddrNetlink::try_from(a).ok())
                .is_some_and(|a| a.pid() == 0);
            if !from_kernel {
                continue;
            }
            let datagram = self.buf.get(..len).unwrap_or(&[]);
            #[cfg(test)]
            if let Some(rec) = &mut self.recorded {
                rec.push(datagram.to_vec());
            }
            match handle_datagram(request, seq, datagram, on_msg)? {
                Step::More => {}
                Step::Done => return Ok(()),
            }
        }
        Err(HostError::TooLong { request })
    }
}

/// Whether a reply goes on after a datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Read another datagram.
    More,
    /// The reply is complete.
    Done,
}

/// Walk the messages of one reply datagram for the request numbered `seq`.
pub(crate) fn handle_datagram(
    request: &'static str,
    seq: u32,
    datagram: &[u8],
    on_msg: &mut dyn FnMut(&NlMsgRepr<'_>) -> Result<(), HostError>,
) -> Result<Step, HostError> {
    let malformed = |source| HostError::Malformed { request, source };
    for msg in NlMsgIter::new(datagram) {
        let msg = msg.map_err(malformed)?;
        if msg.seq != seq {
            continue;
        }
        if msg.flags & flags::DUMP_INTR != 0 {
            return Err(HostError::Interrupted { request });
        }
        match msg.msg_type {
            msg_type::NOOP => {}
            msg_type::DONE => {
                let status = parse_done(msg.payload).map_err(malformed)?;
                return match status {
                    0.. => Ok(Step::Done),
                    e => Err(kernel_error(request, e)),
                };
            }
            msg_type::ERROR => {
                let e = NlErrRepr::parse(msg.payload).map_err(malformed)?;
                return match e.error {
                    0 => Ok(Step::Done),
                    e => Err(kernel_error(request, e)),
                };
            }
            msg_type::OVERRUN => {
                return Err(HostError::Kernel {
                    request,
                    source: std::io::Error::other("netlink overrun"),
                })
            }
            _ => {
                on_msg(&msg)?;
                if msg.flags & flags::MULTI == 0 {
                    return Ok(Step::Done);
                }
            }
        }
    }
    Ok(Step::More)
}

fn kernel_error(request: &'static str, negative_errno: i32) -> HostError {
    let errno = negative_errno.checked_neg().unwrap_or(i32::MAX);
    HostError::Kernel {
        request,
        source: std::io::Error::from_raw_os_error(errno),
    }
}
