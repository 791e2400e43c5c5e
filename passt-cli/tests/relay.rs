//! The relay helper: a tap device in a namespace made for the test,
//! connected to passt's socket, with the namespace's kernel as the guest.
//! busybox's DHCP client gets its lease through it and ARP resolves the
//! gateway; the relay ends when passt closes the connection.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{can_run_as_root, ensure_packages, run, sh, wait_for, Passt, RELAY};

/// Removes the namespace when dropped.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

#[test]
fn relay_carries_a_namespace_guest_through_passt() {
    if !can_run_as_root("relay_carries_a_namespace_guest_through_passt") {
        return;
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        eprintln!("relay_carries_a_namespace_guest_through_passt: skipped: no /dev/net/tun");
        return;
    }
    ensure_packages(&[("busybox", "busybox"), ("ip", "iproute2")]);
    let ns = Netns(format!("passtw3-{}-relay", std::process::id()));
    let _ = run("ip", &["netns", "del", &ns.0]);
    sh(&["ip", "netns", "add", &ns.0]);
    let passt = Passt::start(
        "relay",
        &[
            "-4",
            "-a",
            "192.0.2.10/24",
            "-g",
            "192.0.2.1",
            "-D",
            "192.0.2.53",
            "-1",
        ],
    );
    let mut relay = Command::new("ip")
        .args(["netns", "exec", &ns.0, RELAY, "--tap", "eth0"])
        .arg(&passt.sock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start relay");
    let mut line = String::new();
    BufReader::new(relay.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n", "{}", passt.log());
    sh(&[
        "ip",
        "-n",
        &ns.0,
        "link",
        "set",
        "eth0",
        "address",
        "02:00:00:00:00:0a",
    ]);
    sh(&["ip", "-n", &ns.0, "link", "set", "eth0", "up"]);

    let o = run(
        "ip",
        &[
            "netns",
            "exec",
            &ns.0,
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-t",
            "5",
            "-T",
            "1",
            "-s",
            "/bin/true",
        ],
    );
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success() && out.contains("lease of 192.0.2.10 obtained"),
        "{out}\n{}",
        passt.log()
    );
    sh(&[
        "ip",
        "-n",
        &ns.0,
        "addr",
        "add",
        "192.0.2.10/24",
        "dev",
        "eth0",
    ]);
    let o = run(
        "ip",
        &[
            "netns",
            "exec",
            &ns.0,
            "busybox",
            "arping",
            "-c",
            "1",
            "-w",
            "3",
            "-I",
            "eth0",
            "192.0.2.1",
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("[9a:55:9a:55:9a:55]"),
        "{out}\n{}",
        passt.log()
    );

    // passt going away ends the relay, with status 0.
    drop(passt);
    let status = wait_for(Duration::from_secs(5), || relay.try_wait().ok().flatten());
    let _ = relay.kill();
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}
