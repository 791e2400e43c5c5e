//! qrap end to end, with the test playing passt (a UNIX socket that
//! answers the probe) and a fake "qemu" script that records its arguments
//! and talks through the descriptor it was given.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

const QRAP: &str = env!("CARGO_BIN_EXE_qrap");

/// A scratch directory removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("qrap-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fake qemu: writes its arguments and what descriptor 5 is into
/// `out`, sends a framed 46-byte record through descriptor 5 and copies the
/// 4 + 6 bytes that come back, in hex, into `out` too.
fn fake_qemu(dir: &Path, fd: u32) -> PathBuf {
    let out = dir.join("out");
    let script = format!(
        "#!/bin/bash\n\
         exec >{out}\n\
         echo \"args: $*\"\n\
         echo \"fd: $(readlink /proc/$$/fd/{fd})\"\n\
         printf '\\x00\\x00\\x00\\x0e\\x01\\x02\\x03\\x04\\x05\\x06\\x02\\x00\\x00\\x00\\x00\\x01\\x88\\xb5' >&{fd}\n\
         echo \"reply: $(head -c 10 <&{fd} | od -An -tx1 | tr -d ' \\n')\"\n",
        out = out.display()
    );
    let p = dir.join("fake-qemu");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Serve one probe and one fake-qemu exchange at `path`; returns what the
/// fake qemu sent after the probe.
fn fake_passt(path: PathBuf) -> thread::JoinHandle<(Vec<u8>, Vec<u8>)> {
    let l = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut probe = [0u8; 46];
        s.read_exact(&mut probe).unwrap();
        // The ARP reply record, then a record for the fake qemu.
        let mut reply = vec![0, 0, 0, 42];
        reply.extend([0u8; 42]);
        s.write_all(&reply).unwrap();
        let mut from_qemu = [0u8; 18];
        s.read_exact(&mut from_qemu).unwrap();
        s.write_all(&[0, 0, 0, 6, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
            .unwrap();
        // Hold the connection until qemu is done with it.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        (probe.to_vec(), from_qemu.to_vec())
    })
}

fn run_qrap(sock: &Path, args: &[&str]) -> Output {
    Command::new(QRAP)
        .args(args)
        .env("QRAP_SOCKET", sock)
        .stdin(Stdio::null())
        .output()
        .expect("run qrap")
}

#[test]
fn qemu_gets_the_connected_socket_as_its_descriptor() {
    let dir = Scratch::new("fd");
    let sock = dir.0.join("passt.socket");
    let passt = fake_passt(sock.clone());
    let qemu = fake_qemu(&dir.0, 5);
    let o = run_qrap(
        &sock,
        &[
            "5",
            qemu.to_str().unwrap(),
            "-m",
            "256",
            "-net",
            "socket,fd=5",
            "-net",
            "nic,model=virtio",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("Connected to {}", sock.display()))
    );
    let out = std::fs::read_to_string(dir.0.join("out")).unwrap();
    // Arguments as given: they already use descriptor 5.
    assert!(
        out.contains("args: -m 256 -net socket,fd=5 -net nic,model=virtio\n"),
        "{out}"
    );
    assert!(out.contains("fd: socket:["), "{out}");
    // The probe's reply was consumed whole: qemu sees the next record.
    assert!(out.contains("reply: 00000006aabbccddeeff"), "{out}");
    let (probe, from_qemu) = passt.join().unwrap();
    assert_eq!(&probe[..4], &[0, 0, 0, 42]);
    assert_eq!(&probe[4 + 12..4 + 14], &[0x08, 0x06], "an ARP frame");
    assert_eq!(&probe[4 + 14 + 6..4 + 14 + 8], &[0, 1], "an ARP request");
    assert_eq!(&from_qemu[..4], &[0, 0, 0, 14]);
}

#[test]
fn a_netdev_is_added_when_the_command_line_has_none() {
    let dir = Scratch::new("add");
    let sock = dir.0.join("passt.socket");
    let passt = fake_passt(sock.clone());
    let qemu = fake_qemu(&dir.0, 7);
    let o = run_qrap(&sock, &["7", qemu.to_str().unwrap(), "-nographic"]);
    assert!(o.status.success(), "{o:?}");
    let out = std::fs::read_to_string(dir.0.join("out")).unwrap();
    assert!(
        out.contains(
            "args: -nographic -netdev socket,fd=7,id=hostnet0 -device virtio-net-pci,netdev=hostnet0\n"
        ),
        "{out}"
    );
    assert!(out.contains("fd: socket:["), "{out}");
    passt.join().unwrap();
}

#[test]
fn a_busy_or_absent_passt_is_an_error() {
    let dir = Scratch::new("busy");
    let sock = dir.0.join("passt.socket");
    let l = UnixListener::bind(&sock).unwrap();
    // A busy passt: accepts and closes at once.
    let t = thread::spawn(move || drop(l.accept().unwrap()));
    let o = run_qrap(&sock, &["5", "/bin/true"]);
    t.join().unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no passt serving at"),
        "{o:?}"
    );
    let o = run_qrap(&dir.0.join("absent"), &["5", "/bin/true"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
}
