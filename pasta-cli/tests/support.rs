//! Test support: tools, a guest namespace with pasta on it, and cleanup that
//! runs on failure too.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The `pasta` binary under test.
pub const PASTA: &str = env!("CARGO_BIN_EXE_pasta");

/// The MAC address pasta answers with (passt's default).
pub const OUR_MAC: &str = "9a:55:9a:55:9a:55";

/// Whether these tests can run here; says why not on stderr otherwise.
pub fn can_run(test: &str) -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("{test}: skipped: needs root for network namespaces and /dev/net/tun");
        return false;
    }
    if !Path::new("/dev/net/tun").exists() {
        eprintln!("{test}: skipped: no /dev/net/tun");
        return false;
    }
    ensure_tools();
    true
}

/// Install what the tests use, once per test binary.
fn ensure_tools() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let wanted = [
            ("busybox", "busybox"),
            ("ip", "iproute2"),
            ("dhclient", "isc-dhcp-client"),
            ("rdisc6", "ndisc6"),
        ];
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|(cmd, _)| {
                !Command::new("sh")
                    .args(["-c", &format!("command -v {cmd}")])
                    .stdout(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success())
            })
            .map(|(_, pkg)| *pkg)
            .collect();
        if missing.is_empty() {
            return;
        }
        eprintln!("installing {missing:?}");
        let ok = Command::new("apt-get")
            .args(["update", "-qq"])
            .status()
            .is_ok_and(|s| s.success())
            && Command::new("apt-get")
                .args(["install", "-y", "-qq"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "could not install {missing:?} with apt-get");
    });
}

/// Run a command, returning its output; panics if it cannot be started.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Text of a command's stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace made for one test, with pasta serving it. Dropping
/// it kills pasta (by PID), deletes the namespace and the scratch directory.
pub struct Guest {
    /// Namespace name (under /run/netns).
    pub name: String,
    /// Scratch directory for scripts, leases, pasta's log.
    pub dir: PathBuf,
    pasta: Option<Child>,
    ifname: String,
}

impl Guest {
    /// Create namespace `pastatap-<pid>-<tag>-guest` and a scratch directory.
    pub fn new(tag: &str) -> Guest {
        let name = format!("pastatap-{}-{tag}-guest", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory");
        // Any leftover of an earlier run with the same pid goes first.
        let _ = run("ip", &["netns", "del", &name]);
        let o = run("ip", &["netns", "add", &name]);
        assert!(o.status.success(), "ip netns add {name}: {o:?}");
        Guest {
            name,
            dir,
            pasta: None,
            ifname: "tap0".into(),
        }
    }

    /// Run something in the namespace before pasta starts.
    pub fn prepare(&self, args: &[&str]) {
        let o = self.exec(args);
        assert!(o.status.success(), "{args:?}: {o:?}");
    }

    /// Start pasta on the namespace with `args` (plus `--netns` and `-d`)
    /// and wait until its tap device is up.
    pub fn start_pasta(&mut self, args: &[&str]) {
        if let Some(i) = args.iter().position(|a| *a == "-I") {
            self.ifname = args[i + 1].to_owned();
        }
        let log = fs::File::create(self.dir.join("pasta.log")).expect("pasta log");
        let child = Command::new(PASTA)
            .args(["--netns", &self.name, "-d", "--pcap"])
            .arg(self.dir.join("pasta.pcap"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start pasta");
        self.pasta = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let link = self.link();
            if link.contains(",UP") {
                return;
            }
            if let Some(status) = self
                .pasta
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "pasta exited ({status}) before its tap came up:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "tap {} not up after 10 s: {link}\n{}",
                self.ifname,
                self.log()
            );
            sleep(Duration::from_millis(20));
        }
    }

    /// `ip -o link show` of the tap device ("" if absent).
    pub fn link(&self) -> String {
        stdout(&run(
            "ip",
            &["-n", &self.name, "-o", "link", "show", &self.ifname],
        ))
    }

    /// Run a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Spawn a command inside the namespace (`ip netns exec` execs it, so
    /// the child's PID is the command's).
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn in namespace")
    }

    /// Write an executable script into the scratch directory.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.join(name);
        fs::write(&p, body).expect("write script");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).expect("chmod script");
        p
    }

    /// pasta's stderr so far (it runs with `-d`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("pasta.log")).unwrap_or_default()
    }

    /// Whether pasta is still running.
    pub fn pasta_running(&mut self) -> bool {
        self.pasta
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Wait for pasta to exit by itself, at most `limit`; its exit code.
    pub fn wait_pasta(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let child = self.pasta.as_mut()?;
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

impl Drop for Guest {
    fn drop(&mut self) {
        if let Some(mut c) = self.pasta.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = run("ip", &["netns", "del", &self.name]);
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("kept {} (pasta.log, pasta.pcap)", self.dir.display());
        }
    }
}

/// Parse `key=value` lines.
pub fn key_values(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('\'').to_owned()))
        .collect()
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
