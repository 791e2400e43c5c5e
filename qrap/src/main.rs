//! `qrap`: starts a qemu that cannot connect to a UNIX socket itself,
//! handing it passt's socket as a descriptor.
//!
//! ```text
//! qrap FDNUM QEMU_CMD [QEMU_ARG]...
//! qrap [QEMU_ARG]...
//! ```
//!
//! As qrap(1) describes it: a running passt is found by probing the
//! default socket names `/tmp/passt_1.socket` to `/tmp/passt_64.socket` in
//! order; a name counts when something accepts the connection and it does
//! not close it at once (passt closes a second client, so a busy passt is
//! passed over). The probe is a dummy ARP request, framed as passt expects
//! ([`passt_core::wire::stream`]); its reply (one whole record, so that
//! qemu's stream starts at a record boundary) is read and discarded. A
//! passt that stays silent for [`PROBE_TIMEOUT`] (IPv4 disabled) is taken
//! too. The environment variable `QRAP_SOCKET=PATH` (an extension) names
//! the socket instead of probing.
//!
//! The connected socket becomes descriptor `FDNUM` (5 when not given), and
//! qemu is executed in qrap's place:
//!
//! - **`FDNUM QEMU_CMD`** given: the command line is qemu's as written when
//!   it already uses the descriptor (`-net socket,fd=FDNUM` or
//!   `-netdev socket,fd=FDNUM,...`); otherwise a back-end and a device are
//!   added: `-netdev socket,fd=FDNUM,id=hostnet0 -device
//!   virtio-net-pci,netdev=hostnet0`.
//! - **Without them**, qrap looks for a qemu binary in `PATH`
//!   (`qemu-system-<arch>`, `kvm`, `qemu-kvm`) and patches the command
//!   line: every `-net`, `-netdev` and `-nic` option goes, and so does
//!   every `-device` whose argument starts with `virtio-net-pci,`,
//!   `virtio-net-ccw,`, `e1000,`, `e1000e,` or `rtl8139,`; then the back-end
//!   and device above are added (`virtio-net-ccw` on s390x).
//!
//! Exit status: qemu's (qrap is replaced by it), or 1 if no passt was found
//! or qemu could not be started.
//!
//! Syscalls: `socket`, `connect`, `sendto`, `recvfrom`, `setsockopt`,
//! `dup2` (or `fcntl(F_SETFD)`: [`passt_sys::process::hand_on_as`]), `execve`.

#![forbid(unsafe_code)]

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use passt_core::addr::MacAddr;
use passt_core::wire::arp::{ArpOp, ArpRepr};
use passt_core::wire::ethernet::{ethertype, EthernetRepr};
use passt_core::wire::stream::{encode, LEN_PREFIX, MAX_FRAME_LEN};

/// Descriptor qemu gets when none is named.
const DEFAULT_FD: i32 = 5;
/// How many default socket names are probed.
const DEFAULT_SOCKETS: u32 = 64;
/// How long a probe waits for passt's ARP reply.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Network devices a patched command line loses (qrap(1)).
const NET_DEVICES: [&str; 5] = [
    "virtio-net-pci,",
    "virtio-net-ccw,",
    "e1000,",
    "e1000e,",
    "rtl8139,",
];
/// The probe's source: locally administered, unicast.
const PROBE_MAC: MacAddr = MacAddr([0x02, 0x71, 0x72, 0x61, 0x70, 0x00]);

fn fail(msg: impl std::fmt::Display) -> ! {
    eprintln!("qrap: {msg}");
    std::process::exit(1)
}

/// The dummy ARP request of a probe, framed: who has 192.0.2.1, asked by
/// an unconfigured host (an RFC 5227 probe, which passt answers too).
fn probe_record() -> Vec<u8> {
    let arp = ArpRepr {
        op: ArpOp::Request,
        sha: PROBE_MAC,
        spa: core::net::Ipv4Addr::UNSPECIFIED,
        tha: MacAddr::ZERO,
        tpa: core::net::Ipv4Addr::new(192, 0, 2, 1),
    };
    let eth = EthernetRepr::new(MacAddr::BROADCAST, PROBE_MAC, ethertype::ARP);
    let mut frame = [0u8; 42];
    let hl = eth.emit(&mut frame).unwrap_or(14);
    let _ = arp.emit(&mut frame[hl..]);
    let mut rec = vec![0u8; frame.len() + LEN_PREFIX];
    let n = encode(&frame, &mut rec).unwrap_or(0);
    rec.truncate(n);
    rec
}

/// Connect to `path` and check that a passt serves us there.
fn probe(path: &Path) -> Option<UnixStream> {
    let mut s = UnixStream::connect(path).ok()?;
    s.write_all(&probe_record()).ok()?;
    s.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    let mut len = [0u8; LEN_PREFIX];
    match s.read_exact(&mut len) {
        Ok(()) => {}
        // Silent but open: take it.
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            s.set_read_timeout(None).ok()?;
            return Some(s);
        }
        // Closed at once: a busy passt, or not one at all.
        Err(_) => return None,
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME_LEN {
        return None;
    }
    let mut reply = vec![0u8; len];
    s.read_exact(&mut reply).ok()?;
    s.set_read_timeout(None).ok()?;
    Some(s)
}

/// The socket of a running passt, and its path.
fn find_passt() -> (UnixStream, PathBuf) {
    if let Some(p) = std::env::var_os("QRAP_SOCKET") {
        let p = PathBuf::from(p);
        return match probe(&p) {
            Some(s) => (s, p),
            None => fail(format!("no passt serving at {}", p.display())),
        };
    }
    for n in 1..=DEFAULT_SOCKETS {
        let p = PathBuf::from(format!("/tmp/passt_{n}.socket"));
        if let Some(s) = probe(&p) {
            return (s, p);
        }
    }
    fail("no running passt found at /tmp/passt_1.socket to /tmp/passt_64.socket")
}

/// Whether `args` already give qemu descriptor `fd` as a socket back-end.
fn uses_fd(args: &[String], fd: i32) -> bool {
    let want = format!("fd={fd}");
    args.windows(2).any(|w| {
        matches!(w[0].as_str(), "-net" | "-netdev")
            && w[1].starts_with("socket")
            && w[1].split(',').any(|p| p == want)
    })
}

/// The back-end and device qrap adds for descriptor `fd`.
fn net_args(fd: i32, qemu: &str) -> [String; 4] {
    let dev = if qemu.contains("s390x") {
        "virtio-net-ccw"
    } else {
        "virtio-net-pci"
    };
    [
        "-netdev".into(),
        format!("socket,fd={fd},id=hostnet0"),
        "-device".into(),
        format!("{dev},netdev=hostnet0"),
    ]
}

/// A command line without the network options that would conflict.
fn strip_net(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-net" | "-netdev" | "-nic" => {
                it.next();
            }
            "-device" => match it.next() {
                Some(d) if NET_DEVICES.iter().any(|p| d.starts_with(p)) => {}
                Some(d) => {
                    out.push(a.clone());
                    out.push(d.clone());
                }
                None => out.push(a.clone()),
            },
            _ => out.push(a.clone()),
        }
    }
    out
}

/// A qemu binary in `PATH`, for this machine's architecture first.
fn find_qemu() -> Option<String> {
    let arch = std::env::consts::ARCH;
    let names = [
        format!("qemu-system-{arch}"),
        "kvm".into(),
        "qemu-kvm".into(),
    ];
    let path = std::env::var_os("PATH")?;
    names.into_iter().find(|n| {
        std::env::split_paths(&path).any(|d| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(d.join(n))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// qemu's command and arguments from qrap's.
fn command_line(args: &[String]) -> Result<(i32, String, Vec<String>), String> {
    let explicit = match args {
        [fd, qemu, ..] => fd
            .parse::<i32>()
            .ok()
            .filter(|&fd| fd > 2)
            .map(|fd| (fd, qemu.clone())),
        _ => None,
    };
    match explicit {
        Some((fd, qemu)) => {
            let mut rest = args[2..].to_vec();
            if !uses_fd(&rest, fd) {
                rest.extend(net_args(fd, &qemu));
            }
            Ok((fd, qemu, rest))
        }
        None => {
            let qemu = find_qemu().ok_or("no qemu binary found in PATH")?;
            let mut rest = strip_net(args);
            rest.extend(net_args(DEFAULT_FD, &qemu));
            Ok((DEFAULT_FD, qemu, rest))
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--version") => {
            println!("qrap {}", env!("CARGO_PKG_VERSION"));
            return;
        }
        Some("-h" | "--help") | None => {
            println!("Usage: qrap [FDNUM QEMU_CMD] [QEMU_ARG]...");
            return;
        }
        _ => {}
    }
    let (fd, qemu, qemu_args) = command_line(&args).unwrap_or_else(|e| fail(e));
    let (sock, path) = find_passt();
    eprintln!("Connected to {}", path.display());
    if let Err(e) = passt_sys::process::hand_on_as(sock.as_fd(), fd) {
        fail(format!("dup2: {}", std::io::Error::from(e)));
    }
    let e = Command::new(&qemu).args(&qemu_args).exec();
    fail(format!("cannot run {qemu}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn explicit_command_lines_are_kept_when_they_use_the_fd() {
        let a = v(&[
            "5",
            "kvm",
            "disk.qcow2",
            "-net",
            "socket,fd=5",
            "-net",
            "nic,model=virtio",
        ]);
        let (fd, q, rest) = command_line(&a).unwrap();
        assert_eq!((fd, q.as_str()), (5, "kvm"));
        assert_eq!(
            rest,
            v(&[
                "disk.qcow2",
                "-net",
                "socket,fd=5",
                "-net",
                "nic,model=virtio"
            ])
        );
        let a = v(&["7", "qemu-system-x86_64", "-m", "256"]);
        let (fd, _, rest) = command_line(&a).unwrap();
        assert_eq!(fd, 7);
        assert_eq!(
            rest,
            v(&[
                "-m",
                "256",
                "-netdev",
                "socket,fd=7,id=hostnet0",
                "-device",
                "virtio-net-pci,netdev=hostnet0"
            ])
        );
        let a = v(&["6", "qemu-system-s390x", "-netdev", "socket,id=n,fd=5"]);
        let (_, _, rest) = command_line(&a).unwrap();
        assert_eq!(rest[rest.len() - 1], "virtio-net-ccw,netdev=hostnet0");
    }

    #[test]
    fn patched_command_lines_lose_conflicting_devices() {
        let a = v(&[
            "-m",
            "256",
            "-netdev",
            "user,id=n0",
            "-device",
            "e1000,netdev=n0",
            "-device",
            "virtio-blk-pci,drive=d",
            "-nic",
            "user",
            "-net",
            "nic",
        ]);
        assert_eq!(
            strip_net(&a),
            v(&["-m", "256", "-device", "virtio-blk-pci,drive=d"])
        );
        assert!(uses_fd(&v(&["-netdev", "socket,fd=5,id=x"]), 5));
        assert!(!uses_fd(&v(&["-netdev", "socket,fd=51,id=x"]), 5));
        assert!(!uses_fd(&v(&["-device", "socket,fd=5"]), 5));
    }

    #[test]
    fn probe_is_a_framed_arp_request() {
        let r = probe_record();
        assert_eq!(&r[..4], &[0, 0, 0, 42]);
        let (eth, body) = EthernetRepr::parse(&r[4..]).unwrap();
        assert_eq!(eth.src, PROBE_MAC);
        let arp = ArpRepr::parse(body).unwrap();
        assert_eq!(arp.op, ArpOp::Request);
    }
}
