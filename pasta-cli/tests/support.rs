//! Test support: tools, the simulated host of doc/TESTING.md, a guest namespace
//! with pasta on it, and cleanup that runs on failure too.

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

/// Check that the tools the tests use are there, once per test binary;
/// name the Debian packages of those that are not. Tests install nothing:
/// `scripts/test-all.sh` does, before `cargo test`.
fn ensure_tools() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        require(&[
            ("busybox", "busybox-static"),
            ("ip", "iproute2"),
            ("dhclient", "isc-dhcp-client"),
            ("rdisc6", "ndisc6"),
            ("tcpdump", "tcpdump"),
            ("setpriv", "util-linux"),
        ]);
    });
}

/// Check that each command of `wanted` (command, package) is on `PATH`.
///
/// # Panics
/// Naming the packages of the missing ones.
pub fn require(wanted: &[(&str, &str)]) {
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
    assert!(
        missing.is_empty(),
        "missing packages {missing:?}: install them (scripts/test-all.sh does)"
    );
}

/// Run a command, returning its output; panics if it cannot be started.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Run a command that must succeed.
pub fn must(cmd: &str, args: &[&str]) {
    let o = run(cmd, args);
    assert!(o.status.success(), "{cmd} {args:?}: {o:?}");
}

/// Text of a command's stdout.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Text of a command's stderr.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A unique namespace name prefix for one test.
pub fn unique(tag: &str) -> String {
    format!("pst{}-{tag}", std::process::id())
}

/// What the simulated host has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// doc/TESTING.md's host: 203.0.113.2/24 and 2001:db8:2::2/64 on `veth0`,
    /// default routes via the remote side (203.0.113.1, 2001:db8:2::1), a
    /// route to 198.51.100.0/24, and a resolv.conf with a loopback, a
    /// remote and an IPv6 loopback resolver and two search domains.
    Full,
    /// The same without any IPv6 address or route.
    NoIpv6,
    /// An address on `veth0` but no route at all (offline).
    NoRoutes,
    /// Only `lo`, up; an empty resolv.conf.
    Bare,
}

/// The resolv.conf of [`HostKind::Full`].
pub const HOST_RESOLV_CONF: &str = "nameserver 127.0.0.53\n\
                                    nameserver 198.51.100.53\n\
                                    nameserver ::1\n\
                                    search example.com example.org\n";

/// The simulated host of doc/TESTING.md: a "remote" namespace and a "host"
/// namespace where pasta runs, joined by a veth pair. Dropping it deletes
/// both and the host's `/etc/netns` directory.
pub struct SimHost {
    /// The host namespace's name.
    pub name: String,
    remote: Option<String>,
    etc: PathBuf,
    /// The interface the host's default routes use (pasta's default tap
    /// name), `tap0` without one.
    pub template_if: &'static str,
}

impl SimHost {
    /// Build a host of `kind` for test `tag`.
    pub fn new(tag: &str, kind: HostKind) -> SimHost {
        let name = format!("{}-h", unique(tag));
        let remote = format!("{}-r", unique(tag));
        let etc = PathBuf::from("/etc/netns").join(&name);
        let _ = run("ip", &["netns", "del", &name]);
        let _ = run("ip", &["netns", "del", &remote]);
        must("ip", &["netns", "add", &name]);
        let mut host = SimHost {
            name: name.clone(),
            remote: None,
            etc: etc.clone(),
            template_if: "tap0",
        };
        fs::create_dir_all(&etc).expect("/etc/netns directory");
        let resolv = if kind == HostKind::Bare {
            ""
        } else {
            HOST_RESOLV_CONF
        };
        fs::write(etc.join("resolv.conf"), resolv).expect("resolv.conf");
        must("ip", &["-n", &name, "link", "set", "lo", "up"]);
        if kind == HostKind::Bare {
            return host;
        }
        must("ip", &["netns", "add", &remote]);
        host.remote = Some(remote.clone());
        must(
            "ip",
            &[
                "link", "add", "veth0", "netns", &name, "type", "veth", "peer", "name", "veth1",
                "netns", &remote,
            ],
        );
        let h = |args: &[&str]| {
            let mut all = vec!["-n", name.as_str()];
            all.extend_from_slice(args);
            must("ip", &all);
        };
        let r = |args: &[&str]| {
            let mut all = vec!["-n", remote.as_str()];
            all.extend_from_slice(args);
            must("ip", &all);
        };
        r(&["link", "set", "lo", "up"]);
        r(&["link", "set", "veth1", "up"]);
        r(&["addr", "add", "203.0.113.1/24", "dev", "veth1"]);
        r(&["addr", "add", "2001:db8:2::1/64", "dev", "veth1", "nodad"]);
        h(&["link", "set", "veth0", "up"]);
        h(&["addr", "add", "203.0.113.2/24", "dev", "veth0"]);
        if kind != HostKind::NoIpv6 {
            h(&["addr", "add", "2001:db8:2::2/64", "dev", "veth0", "nodad"]);
        } else {
            must(
                "ip",
                &[
                    "netns",
                    "exec",
                    &name,
                    "sysctl",
                    "-qw",
                    "net.ipv6.conf.veth0.disable_ipv6=1",
                ],
            );
        }
        if kind == HostKind::NoRoutes {
            // The address's own prefix route goes too: no route at all.
            h(&["route", "del", "203.0.113.0/24", "dev", "veth0"]);
            if kind != HostKind::NoIpv6 {
                let _ = run(
                    "ip",
                    &[
                        "-n",
                        &name,
                        "-6",
                        "route",
                        "del",
                        "2001:db8:2::/64",
                        "dev",
                        "veth0",
                    ],
                );
            }
            return host;
        }
        host.template_if = "veth0";
        h(&["route", "add", "default", "via", "203.0.113.1"]);
        h(&["route", "add", "198.51.100.0/24", "via", "203.0.113.1"]);
        if kind == HostKind::Full {
            h(&["-6", "route", "add", "default", "via", "2001:db8:2::1"]);
        }
        host
    }

    /// A command line running `args` in the host namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// The remote namespace's name (none for [`HostKind::Bare`]).
    pub fn remote(&self) -> Option<&str> {
        self.remote.as_deref()
    }

    /// `ip -o ADDR-ARGS` in the host namespace.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        stdout(&run("ip", &all))
    }
}

impl Drop for SimHost {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name]);
        if let Some(r) = &self.remote {
            let _ = run("ip", &["netns", "del", r]);
        }
        let _ = fs::remove_dir_all(&self.etc);
    }
}

/// Where pasta runs for a [`Guest`].
enum HostRef<'a> {
    Own(SimHost),
    Shared(&'a SimHost),
}

/// A network namespace made for one test, with pasta serving it from a
/// simulated host. Dropping it kills pasta (by PID), deletes the namespace
/// and the scratch directory.
pub struct Guest<'a> {
    /// Namespace name (under /run/netns).
    pub name: String,
    /// Scratch directory for scripts, leases, pasta's log.
    pub dir: PathBuf,
    pasta: Option<Child>,
    /// The tap device's name.
    pub ifname: String,
    host: HostRef<'a>,
    /// Allocations after setup the test expects of pasta (a `count-alloc`
    /// build), and why ([`Guest::allow_allocations`]).
    allowed_allocations: (usize, &'static str),
}

impl Guest<'static> {
    /// A guest on a host of its own with nothing but `lo`: pasta's
    /// configuration then comes from the command line only.
    pub fn new(tag: &str) -> Guest<'static> {
        Guest::on_own(tag, HostKind::Bare)
    }

    /// A guest on a host of its own of `kind`.
    pub fn on_own(tag: &str, kind: HostKind) -> Guest<'static> {
        let host = SimHost::new(tag, kind);
        Guest::make(tag, HostRef::Own(host))
    }
}

impl<'a> Guest<'a> {
    /// A guest of `host`.
    pub fn on(host: &'a SimHost, tag: &str) -> Guest<'a> {
        Guest::make(tag, HostRef::Shared(host))
    }

    fn make(tag: &str, host: HostRef<'a>) -> Guest<'a> {
        let name = format!("{}-g", unique(tag));
        let dir = std::env::temp_dir().join(&name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory");
        // Any leftover of an earlier run with the same pid goes first.
        let _ = run("ip", &["netns", "del", &name]);
        must("ip", &["netns", "add", &name]);
        let ifname = match &host {
            HostRef::Own(h) => h.template_if,
            HostRef::Shared(h) => h.template_if,
        }
        .to_owned();
        Guest {
            name,
            dir,
            pasta: None,
            ifname,
            host,
            allowed_allocations: (0, "none"),
        }
    }

    /// The host pasta runs on.
    pub fn host(&self) -> &SimHost {
        match &self.host {
            HostRef::Own(h) => h,
            HostRef::Shared(h) => h,
        }
    }

    /// Run something in the namespace before pasta starts.
    pub fn prepare(&self, args: &[&str]) {
        let o = self.exec(args);
        assert!(o.status.success(), "{args:?}: {o:?}");
    }

    /// Start pasta in the host namespace on this namespace with `args` (plus
    /// `--netns`, `-f`, `-d` and `--pcap`) and wait until its tap device is
    /// up.
    pub fn start_pasta(&mut self, args: &[&str]) {
        self.start_pasta_capturing(args, true);
    }

    /// As [`Guest::start_pasta`]; `pcap`: whether to capture (bulk
    /// transfers would fill the scratch directory).
    pub fn start_pasta_capturing(&mut self, args: &[&str], capture: bool) {
        self.start_pasta_wrapped(&[], args, capture);
    }

    /// As [`Guest::start_pasta_capturing`], pasta run by `wrap` (a command
    /// that execs the rest, e.g. `prlimit --nofile=64:64`).
    pub fn start_pasta_wrapped(&mut self, wrap: &[&str], args: &[&str], capture: bool) {
        if let Some(i) = args.iter().position(|a| *a == "-I") {
            self.ifname = args[i + 1].to_owned();
        }
        let log = fs::File::create(self.dir.join("pasta.log")).expect("pasta log");
        let pcap = self.dir.join("pasta.pcap");
        let pcap = pcap.to_str().expect("utf-8 path");
        let mut all = wrap.to_vec();
        all.extend_from_slice(&[PASTA, "--netns", &self.name, "-f", "-d"]);
        if capture {
            all.extend_from_slice(&["--pcap", pcap]);
        }
        all.extend_from_slice(args);
        let child = self
            .host()
            .command(&all)
            .env("PASST_ALLOC_LOG", self.dir.join("alloc.log"))
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

    /// Let pasta allocate up to `n` times after setup, for the reason
    /// `why` (checked at the end with a `count-alloc` build; by default
    /// none is allowed).
    pub fn allow_allocations(&mut self, n: usize, why: &'static str) {
        self.allowed_allocations = (n, why);
    }

    /// pasta's process id, once started.
    pub fn pasta_pid(&self) -> Option<u32> {
        self.pasta.as_ref().map(Child::id)
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

impl Drop for Guest<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.pasta.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = run("ip", &["netns", "del", &self.name]);
        check_allocations(
            &self.dir.join("alloc.log"),
            "pasta",
            self.allowed_allocations,
        );
        // PASTA_TEST_KEEP=1 keeps passing tests' directories too.
        if !std::thread::panicking() && std::env::var_os("PASTA_TEST_KEEP").is_none() {
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

/// Run `f` on a thread inside the network namespace `ns` (a name under
/// `/run/netns`).
pub fn spawn_in<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    use std::os::fd::AsFd;
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).expect("namespace file");
        rustix::thread::move_into_link_name_space(
            fd.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns");
        f()
    })
}

/// The first process at or under `root` (depth first, through
/// `/proc/PID/task/PID/children`) whose `/proc/PID/cmdline` passes `pick`.
pub fn descendant(root: u32, pick: impl Fn(&[u8]) -> bool) -> Option<u32> {
    let mut todo = vec![root];
    while let Some(p) = todo.pop() {
        if pick(&fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default()) {
            return Some(p);
        }
        let children =
            fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        todo.extend(
            children
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok()),
        );
    }
    None
}

/// Whether a `/proc/PID/cmdline` runs `bin` (its first word).
pub fn runs(cmdline: &[u8], bin: &str) -> bool {
    cmdline.split(|&b| b == 0).next() == Some(bin.as_bytes())
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

/// Whether process `pid` exists (a zombie counts as gone).
pub fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Kill process `pid` (one the test started, found through its PID file).
pub fn kill(pid: u32) {
    let _ = run("kill", &["-KILL", &pid.to_string()]);
}

/// The clients the tests run, with their scripts.
pub mod clients {
    use super::*;

    /// The udhcpc script: print the lease's variables when bound.
    pub const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
[ "$1" = bound ] || exit 0
printf 'ip=%s\nsubnet=%s\nrouter=%s\ndns=%s\ndomain=%s\nsearch=%s\nmtu=%s\nserverid=%s\nlease=%s\n' \
    "$ip" "$subnet" "$router" "$dns" "$domain" "$search" "$mtu" "$serverid" "$lease"
"#;

    /// The dhclient script: keep the environment of the bound lease.
    pub const DHCLIENT_SCRIPT: &str = r#"#!/bin/sh
case "$reason" in
BOUND|REBOOT|BOUND6|REBOOT6) env > "$0.lease.tmp" && mv "$0.lease.tmp" "$0.lease" ;;
esac
exit 0
"#;

    /// busybox udhcpc on the guest's tap: the lease's variables, or
    /// `None` if no lease came within `tries` seconds.
    pub fn udhcpc(g: &Guest<'_>, tries: u32) -> Option<std::collections::BTreeMap<String, String>> {
        let script = g.script("udhcpc.sh", UDHCPC_SCRIPT);
        let script = script.to_str().expect("utf-8 path");
        let tries = tries.to_string();
        let o = g.exec(&[
            "busybox", "udhcpc", "-i", &g.ifname, "-f", "-n", "-q", "-t", &tries, "-T", "1", "-s",
            script, "-O", "mtu", "-O", "search", "-O", "domain", "-O", "dns", "-O", "router", "-O",
            "subnet",
        ]);
        let lease = key_values(&stdout(&o));
        (o.status.success() && lease.contains_key("ip")).then_some(lease)
    }

    /// ISC dhclient (`-4` or `-6`) on the guest's tap: the environment of
    /// the bound lease, or `None` within `limit`.
    pub fn dhclient(
        g: &Guest<'_>,
        family: &str,
        limit: Duration,
    ) -> Option<std::collections::BTreeMap<String, String>> {
        let script = g.script(&format!("dhclient{family}.sh"), DHCLIENT_SCRIPT);
        let lease_file = g.dir.join(format!("dhclient{family}.leases"));
        let pid_file = g.dir.join(format!("dhclient{family}.pid"));
        let mut client = g.spawn(&[
            "dhclient",
            family,
            "-1",
            "-d",
            "-sf",
            script.to_str().expect("utf-8 path"),
            "-lf",
            lease_file.to_str().expect("utf-8 path"),
            "-pf",
            pid_file.to_str().expect("utf-8 path"),
            &g.ifname,
        ]);
        let lease = wait_for(limit, || {
            fs::read_to_string(script.with_extension("sh.lease")).ok()
        });
        let _ = client.kill();
        let _ = client.wait();
        lease.map(|l| key_values(&l))
    }

    /// rdisc6's report of the router advertisement it solicited, as
    /// `(field, value)` pairs, or `None` without one.
    pub fn rdisc6(g: &Guest<'_>, tries: u32) -> Option<Vec<(String, String)>> {
        let tries = tries.to_string();
        let o = g.exec(&["rdisc6", "-1", "-w", "1000", "-r", &tries, &g.ifname]);
        if !o.status.success() {
            return None;
        }
        let out = stdout(&o);
        let mut fields: Vec<(String, String)> = out
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        if let Some(from) = out.lines().find_map(|l| l.trim().strip_prefix("from ")) {
            fields.push(("from".into(), from.trim().to_owned()));
        }
        Some(fields)
    }

    /// All values of `name` in an rdisc6 report.
    pub fn field(report: &[(String, String)], name: &str) -> Vec<String> {
        report
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}
