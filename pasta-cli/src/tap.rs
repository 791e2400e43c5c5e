//! The tap device: the namespace's side of the link.
//!
//! A tap device carries whole Ethernet frames between the kernel of the
//! namespace it lives in and the process holding its file descriptor
//! (Linux `Documentation/networking/tuntap.rst`). It is made by opening
//! `/dev/net/tun` and naming an interface with the `TUNSETIFF` ioctl,
//! `IFF_TAP | IFF_NO_PI`: frames without the 4-byte packet-information
//! prefix. The device appears in the network namespace the thread is in at
//! that moment, and stays there when the process moves on.
//!
//! Each `read(2)` returns one frame and each `write(2)` sends one; the
//! descriptor is non-blocking, so an empty queue is `EAGAIN`. A device
//! deleted under us (`ip link del`, or its namespace torn down) makes reads
//! and writes fail with `EBADFD`.
//!
//! # Offloads
//!
//! Unless `PASTA_OFFLOAD=0` is in the environment, the device is made with
//! `IFF_VNET_HDR` as well: every frame read or written is preceded by a
//! 10-byte `struct virtio_net_hdr` (`include/uapi/linux/virtio_net.h`;
//! virtio 1.2 §5.1.6, legacy layout in native byte order, the size set
//! with `TUNSETVNETHDRSZ`). `TUNSETOFFLOAD` with `TUN_F_CSUM`,
//! `TUN_F_TSO4` and `TUN_F_TSO6` then lets the namespace's kernel hand us
//! TCP super-frames of up to 64 KiB with partial checksums, whatever the
//! MTU, and we write super-frames back (the kernel takes them whether or
//! not offloads were enabled). The header becomes the frame's
//! [`Offload`] both ways ([`parse_vnet_hdr`], [`emit_vnet_hdr`]). A kernel
//! that refuses `TUNSETOFFLOAD` leaves the header in place with complete
//! checksums from its side; one that refuses `IFF_VNET_HDR` gets a plain
//! tap. UDP segmentation offloads are not enabled (a UDP super-frame from
//! the device is dropped).
//!
//! Syscalls: `open` (`/dev/net/tun`, `O_RDWR | O_NONBLOCK | O_CLOEXEC`),
//! `ioctl(TUNSETIFF, TUNSETVNETHDRSZ, TUNSETOFFLOAD)`, `read`, `write`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use passt_core::buf::{GsoType, Offload, OffloadFlags};
use passt_sys::tun;
use rustix::fs::{open, Mode, OFlags};
use rustix::io::{self, Errno};

use crate::Error;

/// Bytes of `struct virtio_net_hdr` in front of every frame with
/// `IFF_VNET_HDR`.
pub(crate) const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_GSO_*` values of the header's `gso_type`.
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: the super-frame has CWR set; ORed in.
const GSO_ECN: u8 = 0x80;

/// A tap device, open and non-blocking.
#[derive(Debug)]
pub(crate) struct Tap {
    fd: OwnedFd,
    name: String,
    /// Frames carry a virtio-net header (`IFF_VNET_HDR`).
    vnet: bool,
}

impl Tap {
    /// Create (or attach to) the tap device `name` in the current network
    /// namespace.
    ///
    /// # Errors
    /// If `/dev/net/tun` cannot be opened, or the kernel refuses the name
    /// (`EBUSY` for a device attached elsewhere, `EPERM` without
    /// `CAP_NET_ADMIN`, `EINVAL` for a non-tap device of that name).
    pub(crate) fn create(name: &str) -> Result<Tap, Error> {
        let fd = open(
            "/dev/net/tun",
            OFlags::RDWR | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys("opening /dev/net/tun", e))?;
        // Leave room for the NUL; the caller checked the length already.
        if name.is_empty() || name.len() >= tun::IFNAMSIZ || name.as_bytes().contains(&0) {
            return Err(Error::msg(format!("invalid interface name {name:?}")));
        }
        let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
        let want_vnet = !matches!(std::env::var_os("PASTA_OFFLOAD"), Some(v) if v == "0");
        // A refusal leaves the descriptor unattached: try plain. The
        // kernel gives back the name it chose (it may expand "%d").
        let with_vnet = want_vnet
            .then(|| {
                tun::set_iff(
                    fd.as_fd(),
                    name,
                    flags | libc::IFF_VNET_HDR as libc::c_short,
                )
            })
            .and_then(Result::ok);
        let vnet = with_vnet.is_some();
        let name = match with_vnet {
            Some(n) => n,
            None => tun::set_iff(fd.as_fd(), name, flags)
                .map_err(|e| Error::sys(format!("creating tap device {name}"), e))?,
        };
        if vnet {
            tun::set_vnet_hdr_sz(fd.as_fd(), VNET_HDR_LEN as libc::c_int)
                .map_err(|e| Error::sys(format!("setting the vnet header size of {name}"), e))?;
            let offloads = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
            if let Err(e) = tun::set_offload(fd.as_fd(), offloads) {
                crate::debug!("tap {name}: no TCP segmentation offload ({e})");
            }
        }
        Ok(Tap { fd, name, vnet })
    }

    /// Whether frames carry a virtio-net header: then the namespace's
    /// kernel takes (and may send) TCP super-frames.
    pub(crate) fn vnet(&self) -> bool {
        self.vnet
    }

    /// The interface name, as the kernel has it.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Read one frame into `buf`; `Ok(None)` if none is queued.
    ///
    /// A frame longer than `buf` is cut short by the kernel, so `buf` should
    /// hold the largest frame the link carries.
    ///
    /// # Errors
    /// The `read(2)` error, other than `EAGAIN` and `EINTR` (retried).
    pub(crate) fn read_frame(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        loop {
            match io::read(&self.fd, &mut *buf) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::AGAIN) => return Ok(None),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Send one frame to the namespace.
    ///
    /// # Errors
    /// The `write(2)` error, other than `EINTR` (retried).
    pub(crate) fn write_frame(&self, frame: &[u8]) -> io::Result<()> {
        loop {
            match io::write(&self.fd, frame) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The offload metadata of a received virtio-net header, or `None` for a
/// segmentation type we did not enable and do not handle (UDP, unknown).
///
/// Flags other than `NEEDS_CSUM` and `DATA_VALID` are ignored; `DATA_VALID`
/// is kept, as the kernel behind a tap is a trusted device (see
/// [`Offload`]). The offsets are copied as they are: the translator never
/// indexes with them, and a super-frame is taken as one large segment of
/// whatever length its IP header says.
pub(crate) fn parse_vnet_hdr(hdr: &[u8; VNET_HDR_LEN]) -> Option<Offload> {
    let u16_at = |i: usize| u16::from_ne_bytes([hdr[i], hdr[i + 1]]);
    let gso = match hdr[1] & !GSO_ECN {
        GSO_NONE => GsoType::None,
        GSO_TCPV4 => GsoType::TcpV4,
        GSO_TCPV6 => GsoType::TcpV6,
        _ => return None,
    };
    Some(Offload {
        flags: OffloadFlags::from_bits_truncate(hdr[0]),
        gso,
        hdr_len: u16_at(2),
        gso_size: u16_at(4),
        csum_start: u16_at(6),
        csum_offset: u16_at(8),
    })
}

/// The virtio-net header for a frame to the namespace with `offload`.
pub(crate) fn emit_vnet_hdr(offload: &Offload, hdr: &mut [u8; VNET_HDR_LEN]) {
    hdr[0] = offload.flags.bits();
    hdr[1] = match offload.gso {
        GsoType::None => GSO_NONE,
        GsoType::TcpV4 => GSO_TCPV4,
        GsoType::TcpV6 => GSO_TCPV6,
        GsoType::UdpL4 => GSO_UDP_L4,
    };
    for (i, v) in [
        offload.hdr_len,
        offload.gso_size,
        offload.csum_start,
        offload.csum_offset,
    ]
    .into_iter()
    .enumerate()
    {
        hdr[2 + 2 * i..4 + 2 * i].copy_from_slice(&v.to_ne_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnet_header_round_trips_and_hostile_ones_are_contained() {
        let off = Offload {
            flags: OffloadFlags::NEEDS_CSUM,
            gso: GsoType::TcpV6,
            hdr_len: 74,
            gso_size: 1440,
            csum_start: 54,
            csum_offset: 16,
        };
        let mut hdr = [0u8; VNET_HDR_LEN];
        emit_vnet_hdr(&off, &mut hdr);
        let mut want = vec![1u8, 4];
        for v in [74u16, 1440, 54, 16] {
            want.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(hdr.as_slice(), want.as_slice());
        assert_eq!(parse_vnet_hdr(&hdr), Some(off));
        emit_vnet_hdr(&Offload::default(), &mut hdr);
        assert_eq!(hdr, [0; VNET_HDR_LEN]);
        assert_eq!(parse_vnet_hdr(&hdr), Some(Offload::default()));
        // ECN on a TCP super-frame is still TCP; unknown flag bits drop.
        let mut h = [
            0xffu8,
            GSO_TCPV4 | GSO_ECN,
            0xff,
            0xff,
            0,
            0,
            0xff,
            0xff,
            0xff,
            0xff,
        ];
        let p = parse_vnet_hdr(&h).unwrap();
        assert_eq!(p.flags, OffloadFlags::NEEDS_CSUM | OffloadFlags::DATA_VALID);
        assert_eq!(
            (p.gso, p.hdr_len, p.gso_size, p.csum_start),
            (GsoType::TcpV4, 0xffff, 0, 0xffff)
        );
        // UDP segmentation (not enabled) and unknown types are refused.
        for t in [3u8, GSO_UDP_L4, 2, 6, 0x7f, 0xff] {
            h[1] = t;
            assert_eq!(parse_vnet_hdr(&h), None, "gso_type {t}");
        }
    }
}
