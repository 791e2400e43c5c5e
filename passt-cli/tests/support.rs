//! Test support: passt started on a socket in a scratch directory, a guest
//! link over that socket speaking the length-prefixed format, cleanup on
//! failure too.

#![allow(dead_code)]

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::thread::sleep;
use std::time::{Duration, Instant};

/// The `passt` binary under test.
pub const PASST: &str = env!("CARGO_BIN_EXE_passt");
/// The relay helper.
pub const RELAY: &str = env!("CARGO_BIN_EXE_passt-relay");

/// A scratch directory named after the test, removed when dropped (kept,
/// and named on stderr, when the test fails).
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// `/tmp/passt-w3-<pid>-<tag>`, empty.
    pub fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("passt-w3-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("scratch directory");
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// With the `count-alloc` feature: fail unless the daemon whose
/// allocation log is `log` allocated nothing once set up, or at most
/// `allowed.0` times for the reason `allowed.1` names
/// (`passt_sys::count_alloc`).
pub fn check_allocations(log: &std::path::Path, what: &str, allowed: (usize, &str)) {
    if cfg!(feature = "count-alloc") && !std::thread::panicking() {
        if let Err(e) = passt_sys::count_alloc::check_log(log, what, allowed) {
            panic!("{e}");
        }
    }
}

/// A passt process serving a socket in a scratch directory.
pub struct Passt {
    child: Option<Child>,
    /// Its socket.
    pub sock: PathBuf,
    /// Scratch directory: passt.log (stderr), passt.pcap.
    pub dir: Scratch,
}

impl Passt {
    /// Start `passt -f -d -s DIR/passt.socket -p DIR/passt.pcap ARGS` and
    /// wait until it accepts connections.
    pub fn start(tag: &str, args: &[&str]) -> Passt {
        Passt::start_in(None, tag, args)
    }

    /// [`Passt::start`] inside network namespace `netns`, if given
    /// (`ip netns exec` replaces itself with passt).
    pub fn start_in(netns: Option<&str>, tag: &str, args: &[&str]) -> Passt {
        Passt::start_wrapped(netns, &[], tag, args)
    }

    /// [`Passt::start_in`], passt run by `wrap` (a command that execs the
    /// rest, e.g. `prlimit --nofile=64:64`, so the PID stays passt's).
    pub fn start_wrapped(netns: Option<&str>, wrap: &[&str], tag: &str, args: &[&str]) -> Passt {
        let dir = Scratch::new(tag);
        let sock = dir.0.join("passt.socket");
        let log = fs::File::create(dir.0.join("passt.log")).expect("log file");
        let mut all: Vec<&str> = wrap.to_vec();
        all.push(PASST);
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(&all);
                c
            }
            None => {
                let mut c = Command::new(all[0]);
                c.args(&all[1..]);
                c
            }
        };
        let child = cmd
            .env("PASST_ALLOC_LOG", dir.0.join("alloc.log"))
            .args(["-f", "-d", "-s"])
            .arg(&sock)
            .arg("-p")
            .arg(dir.0.join("passt.pcap"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start passt");
        let mut p = Passt {
            child: Some(child),
            sock,
            dir,
        };
        p.wait_ready();
        p
    }

    /// Wait until the log says the socket is bound.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains("UNIX domain socket bound at") {
            if let Some(s) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("passt exited ({s}) before binding:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "passt not ready:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// passt's messages so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("passt.log")).unwrap_or_default()
    }

    /// Connect to passt as a guest.
    pub fn connect(&self) -> Link {
        Link::connect(&self.sock)
    }

    /// passt's process ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// CPU time passt has used so far, in clock ticks (user plus system,
    /// from `/proc/PID/stat`).
    pub fn cpu_ticks(&self) -> Option<u64> {
        let stat = fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the command name (which may hold spaces); utime and
        // stime are the 14th and 15th fields of the line.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }

    /// Whether passt is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Wait for passt to exit by itself, at most `limit`; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().ok().flatten() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Passt {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("passt log:\n{}", self.log());
        }
        check_allocations(&self.dir.0.join("alloc.log"), "passt", (0, "none"));
    }
}

/// The guest's side of passt's socket.
pub struct Link(pub UnixStream);

impl Link {
    /// Connect to `sock` (reads time out after 3 s).
    pub fn connect(sock: &std::path::Path) -> Link {
        let s = UnixStream::connect(sock).expect("connect to passt");
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Link(s)
    }

    /// Send one frame with its length prefix.
    pub fn send(&mut self, frame: &[u8]) {
        let mut rec = (frame.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(frame);
        self.0.write_all(&rec).expect("send to passt");
    }

    /// Send raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("send to passt");
    }

    /// The next record's frame; `None` on a timeout or at end of stream.
    pub fn recv(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        match self.0.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(_) => return None,
        }
        let mut f = vec![0u8; u32::from_be_bytes(len) as usize];
        self.0.read_exact(&mut f).ok()?;
        Some(f)
    }

    /// The next frame of EtherType `ethertype` (others, such as router
    /// advertisements, are passed over).
    pub fn recv_type(&mut self, ethertype: u16) -> Option<Vec<u8>> {
        for _ in 0..32 {
            let f = self.recv()?;
            if f.len() >= 14 && u16::from_be_bytes([f[12], f[13]]) == ethertype {
                return Some(f);
            }
        }
        None
    }

    /// Whether passt closed the connection (end of stream within 3 s).
    pub fn closed_by_peer(&mut self) -> bool {
        let mut b = [0u8; 4096];
        loop {
            match self.0.read(&mut b) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }
}

/// Whether tests that need root (namespaces, taps, qemu) can run here; says
/// why not on stderr.
pub fn can_run_as_root(test: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("{test}: skipped: needs root");
        return false;
    }
    true
}

/// Check that the commands (or paths) the test needs are there; name the
/// Debian packages of those that are not. Tests install nothing:
/// `scripts/test-all.sh` does, before `cargo test`.
pub fn ensure_packages(wanted: &[(&str, &str)]) {
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(path, _)| !std::path::Path::new(path).exists() && !on_path(path))
        .map(|(_, pkg)| *pkg)
        .collect();
    assert!(
        missing.is_empty(),
        "missing packages {missing:?}: install them (scripts/test-all.sh does)"
    );
}

/// Whether `cmd` is a command on `PATH`.
pub fn on_path(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Run a command, panicking if it cannot start; its output.
pub fn run(cmd: &str, args: &[&str]) -> std::process::Output {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Poll `f` every 50 ms until it returns `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        sleep(Duration::from_millis(50));
    }
}

/// The simulated host of doc/TESTING.md: namespace `host` (where passt runs)
/// connected by a veth pair to namespace `remote` ("the internet"), with
/// addresses from the documentation ranges and default routes through
/// `remote`, and a resolv.conf for `host` naming a resolver in `remote`.
/// Dropping it deletes both namespaces and the resolv.conf.
pub struct Topology {
    /// passt's namespace.
    pub host: String,
    /// The far side.
    pub remote: String,
}

/// The host's IPv4 address (the guest gets it too).
pub const HOST4: &str = "203.0.113.2";
/// The host's IPv4 gateway, in `remote`.
pub const REMOTE4: &str = "203.0.113.1";
/// The host's IPv6 address.
pub const HOST6: &str = "2001:db8:2::2";
/// The host's IPv6 gateway, in `remote`.
pub const REMOTE6: &str = "2001:db8:2::1";

impl Topology {
    /// Build it; names start with `passtw3-<pid>-<tag>`.
    pub fn new(tag: &str) -> Topology {
        let base = format!("passtw3-{}-{tag}", std::process::id());
        let t = Topology {
            host: format!("{base}-host"),
            remote: format!("{base}-remote"),
        };
        let (h, r) = (t.host.as_str(), t.remote.as_str());
        for ns in [h, r] {
            let _ = run("ip", &["netns", "del", ns]);
            sh(&["ip", "netns", "add", ns]);
        }
        sh(&[
            "ip", "-n", h, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
            "netns", r,
        ]);
        for (ns, addr4, addr6) in [(h, HOST4, HOST6), (r, REMOTE4, REMOTE6)] {
            let dev = if ns == h { "veth0" } else { "veth1" };
            sh(&["ip", "-n", ns, "link", "set", "lo", "up"]);
            sh(&["ip", "-n", ns, "link", "set", dev, "up"]);
            sh(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr4}/24"),
                "dev",
                dev,
            ]);
            sh(&[
                "ip",
                "-n",
                ns,
                "-6",
                "addr",
                "add",
                &format!("{addr6}/64"),
                "dev",
                dev,
                "nodad",
            ]);
        }
        sh(&["ip", "-n", h, "route", "add", "default", "via", REMOTE4]);
        sh(&[
            "ip", "-n", h, "-6", "route", "add", "default", "via", REMOTE6,
        ]);
        let etc = PathBuf::from("/etc/netns").join(h);
        fs::create_dir_all(&etc).expect("/etc/netns");
        fs::write(
            etc.join("resolv.conf"),
            format!("nameserver {REMOTE4}\nnameserver {REMOTE6}\nsearch example.org\n"),
        )
        .expect("resolv.conf");
        t
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.host, &self.remote] {
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = fs::remove_dir_all(PathBuf::from("/etc/netns").join(&self.host));
    }
}

/// Run a command that must succeed.
pub fn sh(args: &[&str]) {
    let o = run(args[0], &args[1..]);
    assert!(o.status.success(), "{args:?}: {o:?}");
}
