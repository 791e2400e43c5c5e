//! The system calls the drivers need and rustix does not wrap safely, each
//! one `unsafe` call with its `SAFETY` argument: what passt-core's socket
//! executor (`passt_core::host::exec`) calls where rustix has no safe
//! wrapper, the drivers' process and device calls, and the sandbox.
//!
//! This crate depends on libc and rustix only: passt-core (feature `host`)
//! depends on it, never the other way round, and every type its calls take
//! or fill is plain and its own ([`mmsg::RecvMeta`], [`errqueue::ErrMeta`],
//! the raw bytes of [`tcp_info`]). passt-core is `#![forbid(unsafe_code)]`
//! and the binaries (`passt`, `pasta`, `qrap`) forbid `unsafe` too: every
//! `unsafe` block of the project is here.
//!
//! | call | system call | what the executor does with it |
//! |---|---|---|
//! | [`set_peek_off`] | `setsockopt(SO_PEEK_OFF)` | peeks host data from the first byte not yet sent to the guest |
//! | [`outq`] | `ioctl(SIOCOUTQ)` | free send-buffer space: the window offered to the guest |
//! | [`tcp_info`] | `getsockopt(TCP_INFO)` | the path's rate, to keep that window to what the path takes |
//! | [`mmsg::recvmmsg`] | `recvmmsg(2)` | many datagrams per call |
//! | [`mmsg::udp_segment`] | `setsockopt(UDP_SEGMENT)` | a run of equal datagrams as one send |
//! | [`errqueue::enable`], [`errqueue::recv_err`] | `setsockopt(IP_RECVERR)`, `recvmsg(MSG_ERRQUEUE)` | ICMP errors of UDP and echo flows passed on to the guest (traceroute) |
//! | [`bind_device`] | `setsockopt(SO_BINDTODEVICE)` | `--outbound-if4`/`--outbound-if6` |
//!
//! and, for the drivers' buffers, [`release_pages`] (`madvise(MADV_DONTNEED)`):
//! a frame buffer's pages given back to the kernel after a burst;
//! [`ErrnoText`] (`strerror_r`): an error number's text without the
//! allocation of the standard library's; [`count_alloc`]: the counting
//! global allocator of the drivers' `count-alloc` test builds.
//!
//! Besides those, the drivers' process, device and sandbox calls live here:
//!
//! | module | calls | what for |
//! |---|---|---|
//! | [`process`] | `fork`, `execvp`, `_exit`, `signal`, `unshare`, `fcntl(F_GETFD)`, `dup2` | going to the background, spawning pasta's command, adopting a descriptor passed by number (passt's `--fd`), handing one on by number (qrap) |
//! | [`tun`] | `ioctl(TUNSETIFF)`, `ioctl(TUNSETVNETHDRSZ)`, `ioctl(TUNSETOFFLOAD)` | pasta's tap device |
//! | [`sandbox`] | `unshare`, `mount`, `pivot_root`, `prctl`, `capset`, `setresuid`, ... | namespaces, an empty root, capabilities, identity, `close_range` of inherited descriptors |
//! | [`seccomp`] | `prctl(PR_SET_NO_NEW_PRIVS)`, `seccomp(SECCOMP_SET_MODE_FILTER)` | an allow-list of the syscalls the running drivers make; any other kills the process (x86_64 and aarch64) |

#![deny(missing_docs)]

pub mod count_alloc;
pub mod errqueue;
pub mod process;
pub mod tun;

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

pub mod mmsg;
// The sandbox needs the filter, which knows these two architectures.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub mod sandbox;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub mod seccomp;

/// The system's text for error number `e` (strerror(3): "Broken pipe"),
/// formatted without allocating: the standard library's and rustix's
/// `Display` of an error number build a `String`, which the drivers' event
/// loops must not.
#[derive(Clone, Copy, Debug)]
pub struct ErrnoText(pub Errno);

impl core::fmt::Display for ErrnoText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut buf = [0u8; 128];
        let n = self.0.raw_os_error();
        // SAFETY: the buffer is ours, `buf.len()` bytes; the XSI
        // strerror_r(3) (the libc crate links glibc's `__xpg_strerror_r`)
        // writes a NUL-terminated text within it, or fails.
        let r = unsafe { libc::strerror_r(n, buf.as_mut_ptr().cast(), buf.len()) };
        let text = (r == 0)
            .then(|| core::ffi::CStr::from_bytes_until_nul(&buf).ok())
            .flatten()
            .and_then(|c| c.to_str().ok());
        match text {
            Some(t) => f.write_str(t),
            None => write!(f, "error {n}"),
        }
    }
}

/// [`ErrnoText`] for an I/O error that carries an error number; other
/// errors show as the standard library shows them.
pub fn io_error_text(e: &std::io::Error) -> impl core::fmt::Display + '_ {
    struct T<'a>(&'a std::io::Error);
    impl core::fmt::Display for T<'_> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self.0.raw_os_error() {
                Some(n) => ErrnoText(Errno::from_raw_os_error(n)).fmt(f),
                None => self.0.fmt(f),
            }
        }
    }
    T(e)
}

/// A field of `/proc/PID/status` counted in kB (`VmRSS`, `RssAnon`,
/// `VmHWM`), or a plain count (`Threads`); `None` if there is no such
/// process or field. For the footprint tests.
pub fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
}

/// Give the whole pages of `buf` back to the kernel
/// (`madvise(MADV_DONTNEED)`): they read as zeros afterwards, and cost no
/// memory until written again. For a frame buffer whose contents no longer
/// matter, after a burst. Failures are ignored (the pages merely stay).
pub fn release_pages(buf: &mut [u8]) {
    let page = rustix::param::page_size();
    let start = buf.as_mut_ptr() as usize;
    let first = start.next_multiple_of(page);
    let end = (start + buf.len()) & !(page - 1);
    if end <= first {
        return;
    }
    // SAFETY: [first, end) lies inside `buf`, which we borrow mutably, so no
    // one else reads or writes it meanwhile; on private anonymous memory
    // (the heap) MADV_DONTNEED only replaces its bytes with zeros (on a
    // file mapping, with the file's), which every `u8` may hold. Nothing is
    // unmapped.
    let _ = unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED) };
}

/// `SIOCOUTQ` for the socket executor (rustix has no wrapper): bytes in a
/// stream socket's send queue.
pub fn outq(fd: BorrowedFd<'_>) -> Result<u32, Errno> {
    let mut v: libc::c_int = 0;
    // SAFETY: `fd` is a live descriptor borrowed for the call; SIOCOUTQ
    // writes one `c_int` through the pointer, which points to `v`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCOUTQ, &mut v as *mut libc::c_int) };
    if r == 0 {
        Ok(u32::try_from(v).unwrap_or(0))
    } else {
        Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    }
}

/// Bytes of the Linux `struct tcp_info` [`tcp_info`] asks for: up to and
/// including `tcpi_snd_wnd` (Linux 5.4).
pub const TCP_INFO_LEN: usize = 232;

/// `TCP_INFO` for the socket executor (rustix has no wrapper): what the
/// kernel tells of a connection's path, as the raw bytes of its
/// `struct tcp_info` (native byte order) in `raw`; returns how many the
/// kernel wrote (fewer on an older kernel). passt-core parses them
/// (`passt_core::host::exec::tcp_info_from_raw`).
pub fn tcp_info(fd: BorrowedFd<'_>, raw: &mut [u8; TCP_INFO_LEN]) -> Result<usize, Errno> {
    let mut len = raw.len() as libc::socklen_t;
    // SAFETY: `fd` is a live descriptor borrowed for the call; the kernel
    // writes at most `len` bytes to `raw`, which has exactly that many, and
    // stores the length it wrote in `len`.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            raw.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ));
    }
    Ok((len as usize).min(TCP_INFO_LEN))
}

/// `SO_PEEK_OFF` for the socket executor (rustix has no wrapper).
pub fn set_peek_off(fd: BorrowedFd<'_>, off: i32) -> Result<(), Errno> {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, off)
}

/// `SO_BINDTODEVICE` for the socket executor (rustix has no wrapper): the
/// socket sends and receives through interface `name` only (socket(7)).
///
/// # Errors
/// `EINVAL` for a name that does not fit `IFNAMSIZ`, else the kernel's
/// (`ENODEV`: no such interface).
pub fn bind_device(fd: BorrowedFd<'_>, name: &str) -> Result<(), Errno> {
    let mut buf = [0u8; libc::IFNAMSIZ];
    if name.is_empty() || name.len() >= buf.len() || name.as_bytes().contains(&0) {
        return Err(Errno::INVAL);
    }
    buf[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: `fd` is a live descriptor borrowed for the call; the option
    // value points to `buf`, NUL-terminated within the length passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            buf.as_ptr().cast(),
            (name.len() + 1) as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    }
}

/// `setsockopt(fd, level, name, &value, sizeof(int))`, for the integer
/// options rustix has no wrapper for.
pub(crate) fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> Result<(), Errno> {
    // SAFETY: `fd` is a live descriptor borrowed for the call; the option
    // value points to a `c_int` on our stack with its exact size.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            core::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw_os_error(
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn our_own_status_is_read() {
        let me = std::process::id();
        assert!(super::proc_status(me, "VmRSS").is_some_and(|kb| kb > 0));
        assert!(super::proc_status(me, "Threads").is_some_and(|n| n >= 1));
        assert_eq!(super::proc_status(me, "NoSuchField"), None);
    }

    #[test]
    fn errno_texts_are_the_systems() {
        use super::{io_error_text, Errno, ErrnoText};
        assert_eq!(ErrnoText(Errno::PIPE).to_string(), "Broken pipe");
        assert_eq!(ErrnoText(Errno::MFILE).to_string(), "Too many open files");
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_error_text(&e).to_string(), "No such file or directory");
        let other = std::io::Error::other("odd");
        assert_eq!(io_error_text(&other).to_string(), "odd");
    }

    #[test]
    fn released_pages_read_as_zeros_and_the_edges_stay() {
        let page = rustix::param::page_size();
        let mut buf = vec![7u8; 8 * page + 100].into_boxed_slice();
        // Start inside a page: the partial pages at both ends are kept.
        let part = &mut buf[10..];
        super::release_pages(part);
        let first = (buf.as_ptr() as usize + 10).next_multiple_of(page) - buf.as_ptr() as usize;
        assert_eq!(buf[10], 7);
        assert!(buf[..first].iter().all(|&b| b == 7));
        assert!(buf[first..first + page].iter().all(|&b| b == 0));
        assert_eq!(buf[buf.len() - 1], 7);
        super::release_pages(&mut []);
    }
}
