//! The sandbox of a running passt, read from `/proc/PID`: seccomp filter,
//! no new privileges, no capability in any set, identity, its own mount
//! namespace and an empty root, and (in the background) a PID namespace of
//! its own. Run as real root, as an unprivileged user, and as UID 0 of a
//! user namespace that maps only one ID; in the foreground and in the
//! background. Each one still serves a guest: an ARP request is answered.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::{Link, Scratch, PASST};

/// An unprivileged user of these tests (no entry in /etc/passwd needed).
const USER: &str = "12345";

/// Fields of a `/proc/.../status` file, by name.
fn status(path: &str) -> BTreeMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// Check the passt with `pid`: filter, no new privileges, no capability,
/// UID `uid`, a mount namespace not ours, an empty root; a PID namespace
/// of its own if `own_pidns`.
fn assert_sandboxed(pid: u32, uid: &str, own_pidns: bool, log: &str) {
    let s = status(&format!("/proc/{pid}/status"));
    assert_eq!(
        s.get("Seccomp").map(String::as_str),
        Some("2"),
        "{s:?}\n{log}"
    );
    assert_eq!(s.get("NoNewPrivs").map(String::as_str), Some("1"), "{s:?}");
    for f in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"] {
        assert_eq!(
            s.get(f).map(String::as_str),
            Some("0000000000000000"),
            "{f}: {s:?}"
        );
    }
    let uids: Vec<&str> = s["Uid"].split_whitespace().collect();
    assert_eq!(uids, [uid; 4], "{s:?}");
    let ours = fs::read_link("/proc/self/ns/mnt").unwrap();
    let mnt = fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_ne!(mnt, ours, "passt shares our mount namespace");
    let root: Vec<_> = fs::read_dir(format!("/proc/{pid}/root"))
        .expect("passt's root")
        .collect();
    assert!(root.is_empty(), "passt's root has {root:?}");
    let nspid: Vec<&str> = s["NSpid"].split_whitespace().collect();
    if own_pidns {
        assert_eq!(nspid.last(), Some(&"1"), "PID 1 of its own: {s:?}");
        let pidns = fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
        assert_ne!(pidns, fs::read_link("/proc/self/ns/pid").unwrap());
    }
}

/// An ARP request for the gateway on a fresh guest connection is answered
/// from passt's MAC address: the sandboxed daemon still serves.
fn assert_serves(sock: &Path) {
    let mut link = Link::connect(sock);
    let guest_mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    let mut arp = Vec::new();
    arp.extend_from_slice(&[0xff; 6]);
    arp.extend_from_slice(&guest_mac);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&guest_mac);
    arp.extend_from_slice(&[192, 0, 2, 2]);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[192, 0, 2, 1]);
    link.send(&arp);
    let reply = link.recv_type(0x0806).expect("ARP reply");
    assert!(reply.len() >= 42 && reply[20..22] == [0, 2], "{reply:?}");
    assert_eq!(&reply[22..28], &[0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55]);
    assert_eq!(&reply[28..32], &[192, 0, 2, 1]);
    assert_eq!(&reply[32..38], &guest_mac);
}

/// A copy of passt that any user can run (the build may sit under a
/// directory only root can read), in a scratch directory anyone may
/// write to.
fn public_passt(dir: &Scratch) -> String {
    fs::set_permissions(&dir.0, fs::Permissions::from_mode(0o777)).unwrap();
    let bin = dir.0.join("passt");
    fs::copy(PASST, &bin).expect("copy passt");
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    bin.to_str().unwrap().to_owned()
}

/// Run `wrap... passt ARGS` with the gateway 192.0.2.1; in the background
/// unless `foreground`; return its PID once the filter is on.
fn start(
    dir: &Scratch,
    wrap: &[&str],
    bin: &str,
    foreground: bool,
) -> (u32, Option<std::process::Child>) {
    start_with(dir, wrap, bin, foreground, &[])
}

/// As [`start`], with `extra` options.
fn start_with(
    dir: &Scratch,
    wrap: &[&str],
    bin: &str,
    foreground: bool,
    extra: &[&str],
) -> (u32, Option<std::process::Child>) {
    let sock = dir.0.join("s");
    let pidfile = dir.0.join("pid");
    let log = dir.0.join("log");
    let mut all: Vec<String> = wrap.iter().map(|s| s.to_string()).collect();
    all.push(bin.to_owned());
    for a in ["-a", "192.0.2.2", "-n", "24", "-g", "192.0.2.1", "-q", "-s"] {
        all.push(a.to_owned());
    }
    all.push(sock.display().to_string());
    all.push("-l".into());
    all.push(log.display().to_string());
    all.push("-P".into());
    all.push(pidfile.display().to_string());
    if foreground {
        all.push("-f".into());
    }
    all.extend(extra.iter().map(|s| s.to_string()));
    let child = Command::new(&all[0])
        .args(&all[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start passt");
    let mut child = Some(child);
    if !foreground {
        let st = child.take().unwrap().wait().unwrap();
        assert!(
            st.success(),
            "{st}: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pid = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok());
        if let Some(pid) = pid {
            let s = status(&format!("/proc/{pid}/status"));
            if s.get("Seccomp").is_some_and(|v| v == "2") {
                return (pid, child);
            }
        }
        assert!(
            Instant::now() < deadline,
            "passt not sandboxed: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        sleep(Duration::from_millis(20));
    }
}

/// Stop passt `pid` with SIGTERM and check that it went.
fn stop(pid: u32, child: Option<std::process::Child>) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    if let Some(mut c) = child {
        let deadline = Instant::now() + Duration::from_secs(5);
        while c.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "passt ignored SIGTERM");
            sleep(Duration::from_millis(20));
        }
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let state = status(&format!("/proc/{pid}/status"));
        if state.is_empty() || state.get("State").is_some_and(|s| s.starts_with('Z')) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "passt ignored SIGTERM: {state:?}"
        );
        sleep(Duration::from_millis(20));
    }
}

fn root() -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run passt as other users");
        return false;
    }
    true
}

#[test]
fn passt_as_root_ends_up_as_nobody_in_its_own_namespaces() {
    if !root() {
        return;
    }
    let dir = Scratch::new("sbx-root");
    let log = || fs::read_to_string(dir.0.join("log")).unwrap_or_default();
    let (pid, child) = start(&dir, &[], PASST, false);
    assert_sandboxed(pid, "65534", true, &log());
    assert_serves(&dir.0.join("s"));
    stop(pid, child);
    // In the foreground: the same, in the caller's PID namespace.
    let dir2 = Scratch::new("sbx-root-f");
    let (pid, child) = start(&dir2, &[], PASST, true);
    assert_sandboxed(pid, "65534", false, "");
    assert_serves(&dir2.0.join("s"));
    stop(pid, child);
}

#[test]
fn an_unprivileged_passt_is_sandboxed_in_a_user_namespace_of_its_own() {
    if !root() {
        return;
    }
    let dir = Scratch::new("sbx-user");
    let bin = public_passt(&dir);
    let who = [
        "setpriv",
        "--reuid",
        USER,
        "--regid",
        USER,
        "--clear-groups",
    ];
    let (pid, child) = start(&dir, &who, &bin, false);
    assert_sandboxed(pid, USER, true, "");
    assert_serves(&dir.0.join("s"));
    stop(pid, child);
    // With -1 it ends with its guest, and removes its socket file although
    // no path resolves in the sandbox.
    let dir = Scratch::new("sbx-user-1");
    let bin = public_passt(&dir);
    let (_, child) = start_with(&dir, &who, &bin, true, &["-1"]);
    let mut child = child.expect("foreground passt");
    assert_serves(&dir.0.join("s"));
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "passt -1 outlived its guest");
        sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert!(!dir.0.join("s").exists(), "socket file left behind");
}

#[test]
fn uid_0_of_a_single_id_user_namespace_keeps_its_identity() {
    if !root() {
        return;
    }
    let dir = Scratch::new("sbx-userns");
    let bin = public_passt(&dir);
    let wrap = [
        "setpriv",
        "--reuid",
        USER,
        "--regid",
        USER,
        "--clear-groups",
        "unshare",
        "-rUm",
    ];
    let (pid, child) = start(&dir, &wrap, &bin, true);
    // UID 0 inside, the user outside (as seen from here).
    assert_sandboxed(pid, USER, false, "");
    assert_serves(&dir.0.join("s"));
    stop(pid, child);
}
