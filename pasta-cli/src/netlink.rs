//! A minimal rtnetlink client: set a link's MAC address and bring it up.
//!
//! Links are changed with an `RTM_NEWLINK` request on a `NETLINK_ROUTE`
//! socket (RFC 3549 §2.3.3.1; Linux `rtnetlink(7)`): a `struct nlmsghdr`,
//! a `struct ifinfomsg` naming the interface by index, with `ifi_change`
//! masking the flags to set, and an optional `IFLA_ADDRESS` attribute
//! carrying the new hardware address. `NLM_F_ACK` asks for an
//! `NLMSG_ERROR` reply whose error code is 0 on success or a negative
//! errno. Netlink headers are in host byte order.
//!
//! A netlink socket acts in the namespace it was created in, so this is used
//! while the driver is inside the target namespace.
//!
//! Syscalls: `socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)`,
//! `ioctl(SIOCGIFINDEX)` (through rustix), `sendto`, `recv`.

use std::os::fd::OwnedFd;

use passt_core::addr::MacAddr;
use rustix::io::{self, Errno};
use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{
    netdevice, recv, sendto, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags,
    SocketType,
};

/// `struct nlmsghdr`: length, type, flags, sequence number, port id.
const NLMSG_HDRLEN: usize = 16;
/// `struct ifinfomsg`: family, pad, type, index, flags, change.
const IFINFOMSG_LEN: usize = 16;
/// `struct nlattr` header: length, type.
const NLA_HDRLEN: usize = 4;
/// Link attribute: hardware address (`include/uapi/linux/if_link.h`).
const IFLA_ADDRESS: u16 = 1;

/// A `NETLINK_ROUTE` socket in the namespace it was opened in.
#[derive(Debug)]
pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// Open a route netlink socket in the current namespace.
    ///
    /// # Errors
    /// The `socket(2)` error.
    pub(crate) fn open() -> io::Result<Netlink> {
        // Protocol 0 is NETLINK_ROUTE.
        let fd = socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok(Netlink { fd, seq: 0 })
    }

    /// The index of the interface called `name`.
    ///
    /// # Errors
    /// `ENODEV` if there is none.
    pub(crate) fn link_index(&self, name: &str) -> io::Result<u32> {
        netdevice::name_to_index(&self.fd, name)
    }

    /// Set the MAC address of link `index` (if `mac` is given), then bring
    /// it up.
    ///
    /// # Errors
    /// The kernel's answer (`ENODEV`, `EPERM`, `EADDRNOTAVAIL`...) or a
    /// socket error.
    pub(crate) fn link_up(&mut self, index: u32, mac: Option<MacAddr>) -> io::Result<()> {
        let mut msg = [0u8; NLMSG_HDRLEN + IFINFOMSG_LEN + NLA_HDRLEN + 8];
        let mut len = NLMSG_HDRLEN + IFINFOMSG_LEN;
        self.seq = self.seq.wrapping_add(1);
        let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
        let iff_up = libc::IFF_UP as u32;
        // struct ifinfomsg: AF_UNSPEC, pad, ARPHRD 0 (any), index, flags,
        // change mask.
        msg[NLMSG_HDRLEN + 4..NLMSG_HDRLEN + 8].copy_from_slice(&index.to_ne_bytes());
        msg[NLMSG_HDRLEN + 8..NLMSG_HDRLEN + 12].copy_from_slice(&iff_up.to_ne_bytes());
        msg[NLMSG_HDRLEN + 12..NLMSG_HDRLEN + 16].copy_from_slice(&iff_up.to_ne_bytes());
        if let Some(mac) = mac {
            // IFLA_ADDRESS: 4-byte attribute header, 6 bytes, padded to 8.
            let attr_len = (NLA_HDRLEN + 6) as u16;
            msg[len..len + 2].copy_from_slice(&attr_len.to_ne_bytes());
            msg[len + 2..len + 4].copy_from_slice(&IFLA_ADDRESS.to_ne_bytes());
            msg[len + 4..len + 10].copy_from_slice(&mac.0);
            len += NLA_HDRLEN + 8;
        }
        msg[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&libc::RTM_NEWLINK.to_ne_bytes());
        msg[6..8].copy_from_slice(&flags.to_ne_bytes());
        msg[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        self.request(&msg[..len])
    }

    /// Send one request and wait for its acknowledgement.
    fn request(&self, msg: &[u8]) -> io::Result<()> {
        sendto(
            &self.fd,
            msg,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )?;
        let mut buf = [0u8; 4096];
        // Bounded: each datagram is either our answer or skipped, and the
        // kernel answers every request with NLM_F_ACK.
        for _ in 0..64 {
            let (_, n) = loop {
                match recv(&self.fd, &mut buf, RecvFlags::empty()) {
                    Err(Errno::INTR) => continue,
                    r => break r?,
                }
            };
            if let Some(res) = ack_for(buf.get(..n).unwrap_or(&[]), self.seq) {
                return res;
            }
        }
        Err(Errno::PROTO)
    }
}

/// Look through one netlink datagram for the `NLMSG_ERROR` answering
/// sequence number `seq`: `Some(Ok)` for an acknowledgement, `Some(Err)` for
/// a refusal, `None` if it is not there.
fn ack_for(mut data: &[u8], seq: u32) -> Option<io::Result<()>> {
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0)? as usize;
        let kind = u16::from_ne_bytes(data.get(4..6)?.try_into().ok()?);
        let msg = data.get(..len).filter(|_| len >= NLMSG_HDRLEN)?;
        if i32::from(kind) == libc::NLMSG_ERROR && u32_at(msg, 8)? == seq {
            let code = u32_at(msg, NLMSG_HDRLEN)? as i32;
            return Some(match code {
                0 => Ok(()),
                e => Err(Errno::from_raw_os_error(e.saturating_neg())),
            });
        }
        // Messages are aligned to 4 bytes.
        data = data.get(len.checked_add(3)? & !3..).unwrap_or(&[]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_msg(seq: u32, code: i32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&36u32.to_ne_bytes());
        m.extend_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&code.to_ne_bytes());
        m.extend_from_slice(&[0; 16]); // the original header
        m
    }

    #[test]
    fn acks_are_matched_by_sequence_number() {
        assert!(matches!(ack_for(&error_msg(7, 0), 7), Some(Ok(()))));
        assert_eq!(
            ack_for(&error_msg(7, -libc::EPERM), 7)
                .unwrap()
                .unwrap_err(),
            Errno::PERM
        );
        let mut two = error_msg(6, -1);
        two.extend(error_msg(7, 0));
        assert!(matches!(ack_for(&two, 7), Some(Ok(()))));
        assert!(ack_for(&error_msg(6, 0), 7).is_none());
        let m = error_msg(7, 0);
        for cut in 0..m.len() {
            assert!(ack_for(&m[..cut], 7).is_none());
        }
        let mut bad = error_msg(7, 0);
        bad[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert!(ack_for(&bad, 7).is_none());
    }
}
