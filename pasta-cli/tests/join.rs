//! Join mode: `pasta PID` and `pasta --netns PATH|NAME`, in the background
//! by default as podman runs it; `--config-net` asserted against the host;
//! PID file, capture file, log file, `--quiet`; pasta quitting when the
//! namespace goes away (and not with `--no-netns-quit`), also from a
//! directory it may no longer look into; privileges dropped.

use std::fs;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use crate::support::clients::udhcpc;
use crate::support::{
    alive, can_run, kill, run, stderr, stdout, wait_for, Guest, HostKind, SimHost, PASTA,
};

/// A pasta that went to the background, killed (by PID) when dropped if
/// still there.
struct Daemon {
    pid: u32,
}

impl Daemon {
    /// The PID file's process.
    fn from_pid_file(path: &Path) -> Daemon {
        let text = fs::read_to_string(path).expect("PID file");
        assert!(text.ends_with('\n'), "{text:?}");
        let pid = text.trim().parse().expect("a PID");
        Daemon { pid }
    }

    /// Wait at most `limit` for the process to end by itself.
    fn gone_within(&self, limit: Duration) -> bool {
        wait_for(limit, || (!alive(self.pid)).then_some(())).is_some()
    }

    /// A line of `/proc/PID/status`.
    fn status(&self, key: &str) -> String {
        fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
            .unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if alive(self.pid) {
            kill(self.pid);
        }
    }
}

/// Run pasta with `args` in `host` and wait for it (it goes to the
/// background unless `-f`).
fn pasta(host: &SimHost, args: &[&str]) -> Output {
    let mut all = vec![PASTA];
    all.extend_from_slice(args);
    host.command(&all)
        .stdin(Stdio::null())
        .output()
        .expect("run pasta")
}

/// `sleep` in a network namespace of its own (`unshare -n`, or with a user
/// namespace too), started in `host`.
fn holder(host: &SimHost, userns: bool) -> Child {
    let flags = if userns { "-rUn" } else { "-n" };
    host.command(&["unshare", flags, "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare")
}

/// `ip ARGS` in the network namespace of process `pid`.
fn ip_in(pid: u32, args: &[&str]) -> String {
    let pid = pid.to_string();
    let mut all = vec!["-t", pid.as_str(), "-n", "ip"];
    all.extend_from_slice(args);
    stdout(&run("nsenter", &all))
}

/// What `--config-net` must have set up on `ifname`, as `ip` shows it.
fn assert_configured(addrs: &str, routes: &str, routes6: &str, ifname: &str) {
    for want in [
        "inet 203.0.113.2/24".to_owned(),
        "inet6 2001:db8:2::2/64".to_owned(),
        format!("{ifname}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 65520"),
    ] {
        assert!(addrs.contains(&want), "no {want:?}: {addrs}");
    }
    assert!(addrs.contains("lo: <LOOPBACK,UP,LOWER_UP>"), "{addrs}");
    for want in [
        format!("default via 203.0.113.1 dev {ifname}"),
        format!("198.51.100.0/24 via 203.0.113.1 dev {ifname}"),
    ] {
        assert!(routes.contains(&want), "no {want:?}: {routes}");
    }
    let want = format!("default via 2001:db8:2::1 dev {ifname}");
    assert!(routes6.contains(&want), "no {want:?}: {routes6}");
}

#[test]
fn join_by_pid_configures_its_namespace_and_ends_with_the_process() {
    if !can_run("join_by_pid_configures_its_namespace_and_ends_with_the_process") {
        return;
    }
    let host = SimHost::new("j-pid", HostKind::Full);
    for userns in [false, true] {
        let mut sleeper = holder(&host, userns);
        let pid = sleeper.id();
        // The namespace exists once /proc shows one different from ours.
        let ours = fs::read_link("/proc/self/ns/net").expect("own netns");
        let theirs = wait_for(Duration::from_secs(5), || {
            fs::read_link(format!("/proc/{pid}/ns/net"))
                .ok()
                .filter(|l| *l != ours && ip_in(pid, &["-o", "link"]).lines().count() == 1)
        });
        assert!(theirs.is_some(), "unshare did not start");
        let pid_file = std::env::temp_dir().join(format!("pst-j-pid-{pid}.pid"));
        let pid_str = pid.to_string();
        let o = pasta(
            &host,
            &["--config-net", "-P", pid_file.to_str().unwrap(), &pid_str],
        );
        assert_eq!(o.status.code(), Some(0), "userns {userns}: {o:?}");
        let daemon = Daemon::from_pid_file(&pid_file);
        let _ = fs::remove_file(&pid_file);
        assert!(alive(daemon.pid));
        assert_configured(
            &ip_in(pid, &["addr"]),
            &ip_in(pid, &["route"]),
            &ip_in(pid, &["-6", "route"]),
            "veth0",
        );
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        assert!(
            daemon.gone_within(Duration::from_secs(10)),
            "pasta outlived process {pid}"
        );
    }
}

#[test]
fn join_by_path_and_by_name_and_quit_when_the_namespace_is_deleted() {
    if !can_run("join_by_path_and_by_name_and_quit_when_the_namespace_is_deleted") {
        return;
    }
    let host = SimHost::new("j-path", HostKind::Full);
    for (tag, by_name) in [("j-path-p", false), ("j-path-n", true)] {
        let guest = Guest::on(&host, tag);
        let pid_file = guest.dir.join("pasta.pid");
        let path = format!("/run/netns/{}", guest.name);
        let target = if by_name { guest.name.as_str() } else { &path };
        let o = pasta(
            &host,
            &[
                "--config-net",
                "-I",
                "eth7",
                "--ns-mac-addr",
                "02:00:00:00:00:07",
                "--netns",
                target,
                "-P",
                pid_file.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{target}: {o:?}");
        let daemon = Daemon::from_pid_file(&pid_file);
        let addrs = stdout(&guest.exec(&["ip", "addr"]));
        assert!(addrs.contains("link/ether 02:00:00:00:00:07"), "{addrs}");
        assert_configured(
            &addrs,
            &stdout(&guest.exec(&["ip", "route"])),
            &stdout(&guest.exec(&["ip", "-6", "route"])),
            "eth7",
        );
        // podman stops pasta by deleting the namespace file.
        let o = run("ip", &["netns", "del", &guest.name]);
        assert!(o.status.success(), "{o:?}");
        assert!(
            daemon.gone_within(Duration::from_secs(10)),
            "pasta outlived {target}"
        );
    }
}

#[test]
fn config_net_follows_mtu_address_and_gateway_options() {
    if !can_run("config_net_follows_mtu_address_and_gateway_options") {
        return;
    }
    let host = SimHost::new("j-opts", HostKind::Full);
    let mut guest = Guest::on(&host, "j-opts");
    guest.start_pasta(&[
        "--config-net",
        "-m",
        "1500",
        "-a",
        "192.0.2.7/25",
        "-g",
        "192.0.2.1",
        "-a",
        "2001:db8:9::7",
        "-g",
        "fe80::99",
    ]);
    let addrs = stdout(&guest.exec(&["ip", "addr", "show", "veth0"]));
    assert!(addrs.contains("mtu 1500"), "{addrs}");
    assert!(addrs.contains("inet 192.0.2.7/25"), "{addrs}");
    assert!(addrs.contains("inet6 2001:db8:9::7/64"), "{addrs}");
    // -a replaces the host's addresses.
    assert!(!addrs.contains("203.0.113.2"), "{addrs}");
    let routes = stdout(&guest.exec(&["ip", "route"]));
    assert!(
        routes.contains("default via 192.0.2.1 dev veth0"),
        "{routes}"
    );
    let routes6 = stdout(&guest.exec(&["ip", "-6", "route"]));
    assert!(
        routes6.contains("default via fe80::99 dev veth0"),
        "{routes6}"
    );
    assert!(guest.pasta_running(), "{}", guest.log());
}

#[test]
fn podmans_command_line_returns_0_and_pasta_stays_in_the_background() {
    if !can_run("podmans_command_line_returns_0_and_pasta_stays_in_the_background") {
        return;
    }
    let host = SimHost::new("j-podman", HostKind::Full);
    let guest = Guest::on(&host, "j-podman");
    let path = format!("/run/netns/{}", guest.name);
    // podman 5's exact command line.
    let o = pasta(
        &host,
        &[
            "--config-net",
            "--dns-forward",
            "169.254.1.1",
            "-t",
            "none",
            "-u",
            "none",
            "-T",
            "none",
            "-U",
            "none",
            "--no-map-gw",
            "--quiet",
            "--netns",
            &path,
            "--map-guest-addr",
            "169.254.1.2",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // --quiet: nothing at all.
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
    // Returned once configured.
    let addrs = stdout(&guest.exec(&["ip", "-o", "addr", "show", "veth0"]));
    assert!(addrs.contains("inet 203.0.113.2/24"), "{addrs}");
    // Find the background pasta by its unique namespace path.
    let daemon = find_pasta(&path).map(|pid| Daemon { pid });
    let daemon = daemon.expect("pasta runs in the background");
    // Its own session, and no longer root.
    let sid = fs::read_to_string(format!("/proc/{}/stat", daemon.pid)).unwrap_or_default();
    let sid: Vec<&str> = sid
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    assert_eq!(
        sid.get(3),
        Some(&daemon.pid.to_string().as_str()),
        "{sid:?}"
    );
    assert!(
        daemon.status("Uid:").starts_with("65534"),
        "{}",
        daemon.status("Uid:")
    );
    // The guest's DHCP client still gets its lease from it.
    let lease = udhcpc(&guest, 4).expect("a lease");
    assert_eq!(lease["ip"], "203.0.113.2");
    // Deleting the namespace ends it.
    drop(guest);
    assert!(daemon.gone_within(Duration::from_secs(10)));
}

/// The PID of the pasta whose command line names `netns`.
fn find_pasta(netns: &str) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_pasta = args.first()? == &PASTA.as_bytes();
        (is_pasta && args.contains(&netns.as_bytes()) && alive(pid)).then_some(pid)
    })
}

#[test]
fn pid_file_capture_and_log_file() {
    if !can_run("pid_file_capture_and_log_file") {
        return;
    }
    let host = SimHost::new("j-files", HostKind::Full);
    let guest = Guest::on(&host, "j-files");
    let pid_file = guest.dir.join("pasta.pid");
    let pcap = guest.dir.join("capture.pcap");
    let log = guest.dir.join("pasta.log");
    let o = pasta(
        &host,
        &[
            "--netns",
            &guest.name,
            "-P",
            pid_file.to_str().unwrap(),
            "-p",
            pcap.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "--runas",
            "1234:4321",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // With a log file, information goes there and not to stderr.
    assert_eq!(stderr(&o), "");
    let daemon = Daemon::from_pid_file(&pid_file);
    assert!(alive(daemon.pid));
    assert!(
        daemon.status("Uid:").starts_with("1234\t"),
        "{}",
        daemon.status("Uid:")
    );
    assert!(
        daemon.status("Gid:").starts_with("4321\t"),
        "{}",
        daemon.status("Gid:")
    );
    let lease = udhcpc(&guest, 4).expect("a lease");
    assert_eq!(lease["ip"], "203.0.113.2");
    kill(daemon.pid);
    assert!(daemon.gone_within(Duration::from_secs(10)));
    let o = run("tcpdump", &["-nn", "-e", "-r", pcap.to_str().unwrap()]);
    let dump = stdout(&o);
    assert!(o.status.success(), "{o:?}");
    assert!(dump.contains("BOOTP/DHCP, Request"), "{dump}");
    assert!(dump.contains("BOOTP/DHCP, Reply"), "{dump}");
    assert!(dump.contains("9a:55:9a:55:9a:55 >"), "{dump}");
    let text = fs::read_to_string(&log).expect("log file");
    assert!(text.contains(": IPv4: template veth0"), "{text}");
    assert!(text.contains(": IPv6: template veth0"), "{text}");
    assert!(text.contains("namespace interface veth0"), "{text}");
}

#[test]
fn quit_when_the_namespace_file_goes_from_a_directory_closed_to_pasta() {
    if !can_run("quit_when_the_namespace_file_goes_from_a_directory_closed_to_pasta") {
        return;
    }
    // podman's layout: the namespace file in $XDG_RUNTIME_DIR/netns, the
    // runtime directory 0700; pasta, started as root there, drops to
    // another user and can no longer look into it.
    let host = SimHost::new("j-closed", HostKind::Full);
    let guest = Guest::on(&host, "j-closed");
    let runtime = guest.dir.join("runtime");
    let nsdir = runtime.join("netns");
    fs::create_dir_all(&nsdir).unwrap();
    let mode = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    };
    mode(&runtime, 0o700);
    mode(&nsdir, 0o755);
    let file = nsdir.join("netns-test");
    fs::write(&file, b"").unwrap();
    let file = file.to_str().unwrap();
    let o = run(
        "mount",
        &["--bind", &format!("/run/netns/{}", guest.name), file],
    );
    assert!(o.status.success(), "{o:?}");
    let pid_file = guest.dir.join("pasta.pid");
    let o = pasta(
        &host,
        &[
            "--config-net",
            "--netns",
            file,
            "--runas",
            "1234:4321",
            "-P",
            pid_file.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let daemon = Daemon::from_pid_file(&pid_file);
    assert!(daemon.status("Uid:").starts_with("1234\t"));
    // Another file going does not end it.
    let other = nsdir.join("other");
    fs::write(&other, b"").unwrap();
    fs::remove_file(&other).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(alive(daemon.pid), "pasta quit when another file went");
    // podman stops pasta by unmounting and deleting the namespace file.
    let o = run("umount", &[file]);
    assert!(o.status.success(), "{o:?}");
    fs::remove_file(file).unwrap();
    assert!(
        daemon.gone_within(Duration::from_secs(10)),
        "pasta outlived {file}"
    );
}

#[test]
fn no_netns_quit_outlives_the_namespace_file() {
    if !can_run("no_netns_quit_outlives_the_namespace_file") {
        return;
    }
    let host = SimHost::new("j-noquit", HostKind::Full);
    let guest = Guest::on(&host, "j-noquit");
    let pid_file = guest.dir.join("pasta.pid");
    let o = pasta(
        &host,
        &[
            "--no-netns-quit",
            "--netns",
            &guest.name,
            "-P",
            pid_file.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let daemon = Daemon::from_pid_file(&pid_file);
    let o = run("ip", &["netns", "del", &guest.name]);
    assert!(o.status.success(), "{o:?}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(alive(daemon.pid), "pasta quit despite --no-netns-quit");
}

#[test]
fn an_unprivileged_user_joins_its_own_namespace_but_not_roots() {
    if !can_run("an_unprivileged_user_joins_its_own_namespace_but_not_roots") {
        return;
    }
    let _ = std::process::Command::new("chmod")
        .args(["0666", "/dev/net/tun"])
        .status();
    let nobody = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let can = std::process::Command::new(nobody[0])
        .args(&nobody[1..])
        .args([PASTA, "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !can {
        eprintln!("an_unprivileged_user_joins_its_own_namespace_but_not_roots: skipped: nobody cannot run {PASTA}");
        return;
    }
    let host = SimHost::new("j-user", HostKind::Full);
    // The rootless case: a user and network namespace of nobody's, joined
    // by PID (pasta joins its user namespace first).
    let mut args = nobody.to_vec();
    args.extend_from_slice(&["unshare", "-rUn", "sleep", "60"]);
    let mut sleeper = host
        .command(&args)
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare");
    let pid = sleeper.id();
    // Until unshare has made its namespaces, the process is in ours, whose
    // uid_map starts with 0 as well: wait for a user namespace of its own
    // with root mapped.
    let own_userns = fs::read_link("/proc/self/ns/user").unwrap();
    let ready = wait_for(Duration::from_secs(5), || {
        let userns = fs::read_link(format!("/proc/{pid}/ns/user")).ok()?;
        let uid_map = fs::read_to_string(format!("/proc/{pid}/uid_map")).ok()?;
        (userns != own_userns && uid_map.trim().starts_with('0')).then_some(())
    });
    assert!(ready.is_some(), "unshare did not start");
    let pid_file = std::env::temp_dir().join(format!("pst-j-user-{pid}.pid"));
    let _ = fs::remove_file(&pid_file);
    let pid_str = pid.to_string();
    let mut args = nobody.to_vec();
    args.extend_from_slice(&[
        PASTA,
        "--config-net",
        "-P",
        pid_file.to_str().unwrap(),
        &pid_str,
    ]);
    let o = host
        .command(&args)
        .stdin(Stdio::null())
        .output()
        .expect("pasta");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let daemon = Daemon::from_pid_file(&pid_file);
    let _ = fs::remove_file(&pid_file);
    assert_configured(
        &ip_in(pid, &["addr"]),
        &ip_in(pid, &["route"]),
        &ip_in(pid, &["-6", "route"]),
        "veth0",
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(daemon.gone_within(Duration::from_secs(10)));

    // A namespace of root's: refused, named, nothing left.
    let guest = Guest::on(&host, "j-user-root");
    let path = format!("/run/netns/{}", guest.name);
    let mut args = nobody.to_vec();
    args.extend_from_slice(&[PASTA, "--netns", &path]);
    let o = host
        .command(&args)
        .stdin(Stdio::null())
        .output()
        .expect("pasta");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stderr(&o).contains(&format!(
            "joining network namespace {path}: Operation not permitted"
        )),
        "{o:?}"
    );
    let links = stdout(&guest.exec(&["ip", "-o", "link"]));
    assert_eq!(links.lines().count(), 1, "{links}");
}
