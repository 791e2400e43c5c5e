//! `passt-relay`: a stand-in for qemu that connects a tap device to
//! passt's socket, so that a network namespace's kernel plays the guest.
//!
//! ```text
//! ip netns exec NS passt-relay [--tap NAME] SOCKET
//! ```
//!
//! The tap device (default `passt0`) is created in the network namespace the
//! relay runs in; bring it up there (`ip link set NAME up`) and use it as a
//! guest's interface: DHCP, SLAAC, and whatever traffic passt translates.
//! Frames are copied both ways by two threads with blocking reads and
//! writes: a tap frame becomes a length-prefixed record on the socket, a
//! record becomes a tap frame. A write that cannot go on waits, so nothing
//! is dropped on the way (a lossless link, for throughput measurements).
//! Prints `ready` on standard output once connected and the tap exists;
//! exits 0 when passt closes the connection, 1 on errors.
//!
//! Syscalls: `open(/dev/net/tun)`, `ioctl(TUNSETIFF)` ([`passt_sys::tun`]), `socket`, `connect`,
//! `read`, `write`, `recvfrom`.

#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use passt_core::wire::stream::{encode, StreamDecoder, LEN_PREFIX, MAX_FRAME_LEN, MIN_BUFFER};

/// Create tap device `name` (`IFF_TAP | IFF_NO_PI`) in this namespace.
fn open_tap(name: &str) -> std::io::Result<File> {
    if name.is_empty() || name.len() >= passt_sys::tun::IFNAMSIZ {
        return Err(std::io::Error::other(format!(
            "bad interface name {name:?}"
        )));
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    let flags = (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short;
    passt_sys::tun::set_iff(f.as_fd(), name, flags)?;
    Ok(f)
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("passt-relay: {what}: {e}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (tap_name, socket) = match args.as_slice() {
        [s] => ("passt0".to_owned(), s.clone()),
        [flag, t, s] if flag == "--tap" => (t.clone(), s.clone()),
        _ => {
            eprintln!("usage: passt-relay [--tap NAME] SOCKET");
            std::process::exit(2);
        }
    };
    let tap = open_tap(&tap_name).unwrap_or_else(|e| fail("creating tap device", e));
    let sock = UnixStream::connect(&socket).unwrap_or_else(|e| fail(&socket, e));
    println!("ready");
    let _ = std::io::stdout().flush();

    // Tap to passt: one frame per read, one record per write.
    let mut tap_rx = tap.try_clone().unwrap_or_else(|e| fail("tap", e));
    let mut sock_tx = sock.try_clone().unwrap_or_else(|e| fail("socket", e));
    let up = std::thread::spawn(move || {
        let mut frame = vec![0u8; MAX_FRAME_LEN];
        let mut rec = vec![0u8; MAX_FRAME_LEN + LEN_PREFIX];
        loop {
            let n = match tap_rx.read(&mut frame) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => fail("reading tap", e),
            };
            let Ok(len) = encode(&frame[..n], &mut rec) else {
                continue;
            };
            if sock_tx.write_all(&rec[..len]).is_err() {
                return;
            }
        }
    });

    // passt to tap: records decoded in place, each written as one frame.
    let mut tap_tx = tap;
    let mut sock_rx = sock;
    let mut dec = StreamDecoder::with_capacity(MIN_BUFFER + 256 * 1024);
    let mut skipped = 0u64;
    loop {
        let n = match sock_rx.read(dec.read_buf()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => fail("reading socket", e),
        };
        dec.commit_read(n);
        while let Some(r) = dec.next_frame() {
            match r {
                Ok(d) => {
                    let (o, l) = (d.offset as usize, d.len as usize);
                    let f = &dec.data()[o..o + l];
                    loop {
                        match tap_tx.write(f) {
                            Ok(_) => break,
                            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                                std::thread::yield_now();
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            // Link down or a frame the tap refuses: lost.
                            Err(_) => {
                                skipped += 1;
                                break;
                            }
                        }
                    }
                }
                Err(e) if e.is_fatal() => fail("stream from passt", e),
                Err(_) => skipped += 1,
            }
        }
    }
    if skipped > 0 {
        eprintln!("passt-relay: {skipped} frames not delivered to the tap");
    }
    drop(up);
    std::process::exit(0);
}
