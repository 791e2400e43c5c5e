//! Spawn mode: `pasta [OPTION]... [COMMAND]` makes a new user and network
//! namespace, runs the command in it with the tap device ready, and exits
//! with the command's status. Run inside the simulated host, as root and as
//! an unprivileged user.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::support::{can_run, spawn_in, stderr, stdout, HostKind, SimHost, PASTA};

/// Run pasta with `args` in `host`.
fn pasta(host: &SimHost, args: &[&str]) -> Output {
    let mut all = vec![PASTA];
    all.extend_from_slice(args);
    host.command(&all)
        .stdin(Stdio::null())
        .output()
        .expect("run pasta")
}

#[test]
fn the_commands_exit_status_is_pastas() {
    if !can_run("the_commands_exit_status_is_pastas") {
        return;
    }
    let host = SimHost::new("sp-status", HostKind::Full);
    let cases: &[(&[&str], i32)] = &[
        (&["--config-net", "--", "sh", "-c", "exit 7"], 7),
        (&["--config-net", "--", "true"], 0),
        (&["--", "false"], 1),
        // Options end at the first argument that is not one.
        (&["--config-net", "sh", "-c", "exit 9"], 9),
    ];
    for (args, want) in cases {
        let o = pasta(&host, args);
        assert_eq!(o.status.code(), Some(*want), "{args:?}: {o:?}");
    }
    // Killed by a signal: 128 + its number, as shells report it. The
    // command is PID 1 of its own PID namespace, where it ignores signals
    // it has no handler for, even its own `kill -TERM $$`: only SIGKILL
    // from outside ends it.
    let o = pasta(&host, &["--", "sh", "-c", "kill -TERM $$; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    let mut child = host
        .command(&[PASTA, "--", "sleep", "29.5"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pasta");
    let sleep = crate::support::wait_for(std::time::Duration::from_secs(10), || {
        crate::support::descendant(child.id(), |c| crate::support::runs(c, "sleep"))
    })
    .expect("the command runs");
    let _ = Command::new("kill")
        .args(["-KILL", &sleep.to_string()])
        .status();
    let status = crate::support::wait_for(std::time::Duration::from_secs(10), || {
        child.try_wait().ok().flatten()
    });
    let _ = child.kill();
    assert_eq!(status.and_then(|s| s.code()), Some(137), "{status:?}");
    // The command does not inherit Rust's ignored SIGPIPE (signal 13: bit
    // 12 of the mask), nor pasta's ignored SIGINT and SIGQUIT (2, 3).
    let o = pasta(&host, &["--", "grep", "SigIgn", "/proc/self/status"]);
    let mask = stdout(&o);
    let mask = mask.trim().strip_prefix("SigIgn:").map(str::trim);
    let mask = mask.and_then(|m| u64::from_str_radix(m, 16).ok());
    assert_eq!(
        mask.map(|m| m & (1 << 12 | 1 << 1 | 1 << 2)),
        Some(0),
        "{o:?}"
    );
    let o = pasta(&host, &["--", "/nonexistent/command"]);
    assert_eq!(o.status.code(), Some(127), "{o:?}");
    assert!(
        stderr(&o).contains("cannot run \"/nonexistent/command\""),
        "{o:?}"
    );
}

/// The command starts with its `-T` and `-U` ports already open inside
/// the namespace: its very first connection and datagram reach the host's
/// loopback (pasta opens them before letting it run).
#[test]
fn forwarded_ports_are_open_when_the_command_starts() {
    if !can_run("forwarded_ports_are_open_when_the_command_starts") {
        return;
    }
    let host = SimHost::new("sp-fwd", HostKind::Full);
    // On the host's loopback: a TCP server that greets and closes, a UDP
    // one that answers each datagram with its bytes reversed.
    let (l, u) = spawn_in(&host.name, || {
        (
            std::net::TcpListener::bind("127.0.0.1:5422").unwrap(),
            std::net::UdpSocket::bind("127.0.0.1:5424").unwrap(),
        )
    })
    .join()
    .unwrap();
    let tcp = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        c.write_all(b"greetings from the host\n").unwrap();
    });
    let udp = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = u.recv_from(&mut buf).unwrap();
        buf[..n].reverse();
        u.send_to(&buf[..n], from).unwrap();
    });
    // bash's /dev/tcp and /dev/udp: connect, at once.
    let script = "exec 3<>/dev/tcp/127.0.0.1/5421 && cat <&3 && \
                  exec 4<>/dev/udp/127.0.0.1/5423 && printf 'ping-from-ns' >&4 && \
                  timeout 5 head -c 12 <&4";
    let o = pasta(
        &host,
        &[
            "--config-net",
            "-T",
            "5421:5422",
            "-U",
            "5423:5424",
            "--",
            "bash",
            "-c",
            script,
        ],
    );
    assert_eq!(stdout(&o), "greetings from the host\nsn-morf-gnip", "{o:?}");
    assert!(o.status.success(), "{o:?}");
    tcp.join().unwrap();
    udp.join().unwrap();
}

#[test]
fn the_command_sees_the_hosts_configuration() {
    if !can_run("the_command_sees_the_hosts_configuration") {
        return;
    }
    let host = SimHost::new("sp-conf", HostKind::Full);
    let o = pasta(
        &host,
        &[
            "--config-net",
            "--",
            "sh",
            "-c",
            "ip -j addr show veth0; echo; ip -o link show lo; ip route; \
             ip -6 route; echo mtu6=$(cat /proc/sys/net/ipv6/conf/veth0/mtu); id -u",
        ],
    );
    let out = stdout(&o);
    assert!(o.status.success(), "{o:?}");
    // The host's own addresses, as the host has them.
    let host_addrs = host.ip(&["-j", "addr", "show", "veth0"]);
    for addr in [
        "\"local\":\"203.0.113.2\",\"prefixlen\":24",
        "\"local\":\"2001:db8:2::2\",\"prefixlen\":64",
    ] {
        assert!(host_addrs.contains(addr), "host lacks {addr}: {host_addrs}");
        assert!(out.contains(addr), "namespace lacks {addr}: {out}");
    }
    let lines: Vec<&str> = out.lines().collect();
    assert!(out.contains("\"ifname\":\"veth0\""), "{out}");
    assert!(out.contains("\"mtu\":65520"), "{out}");
    // /proc/sys/net is the reader's namespace's (unlike /sys, which shows
    // the devices of the namespace that mounted it: the host's here).
    assert!(lines.contains(&"mtu6=65520"), "{out}");
    assert!(out.contains("lo: <LOOPBACK,UP,LOWER_UP>"), "{out}");
    for route in [
        "default via 203.0.113.1 dev veth0",
        "198.51.100.0/24 via 203.0.113.1 dev veth0",
        "203.0.113.0/24 dev veth0 proto kernel scope link src 203.0.113.2",
        "default via 2001:db8:2::1 dev veth0",
    ] {
        assert!(out.contains(route), "no route {route:?}: {out}");
    }
    // Root in its own user namespace.
    assert_eq!(lines.last(), Some(&"0"), "{out}");
}

#[test]
fn without_a_command_the_shell_runs() {
    if !can_run("without_a_command_the_shell_runs") {
        return;
    }
    let host = SimHost::new("sp-shell", HostKind::Full);
    let mut child = host
        .command(&[PASTA, "--config-net", "--quiet"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run pasta");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"ip -o -4 addr show veth0\nexit 4\n")
        .expect("write to the shell");
    let o = child.wait_with_output().expect("wait for pasta");
    assert_eq!(o.status.code(), Some(4), "{o:?}");
    assert!(stdout(&o).contains("inet 203.0.113.2/24"), "{o:?}");
    // --quiet: nothing of pasta's own.
    assert_eq!(stderr(&o), "");
}

#[test]
fn an_unprivileged_user_spawns_a_namespace() {
    if !can_run("an_unprivileged_user_spawns_a_namespace") {
        return;
    }
    // A distribution's /dev/net/tun is 0666; a fresh machine's is 0600.
    let _ = Command::new("chmod")
        .args(["0666", "/dev/net/tun"])
        .status();
    let nobody_can_run = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            PASTA,
            "--version",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nobody_can_run {
        eprintln!("an_unprivileged_user_spawns_a_namespace: skipped: nobody cannot run {PASTA}");
        return;
    }
    let host = SimHost::new("sp-user", HostKind::Full);
    let o = host
        .command(&[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            PASTA,
            "--config-net",
            "--",
            "sh",
            "-c",
            "id -u; ip -o -4 addr show veth0; exit 5",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run pasta");
    if stderr(&o).contains("creating a user and network namespace") {
        eprintln!("an_unprivileged_user_spawns_a_namespace: skipped: no user namespaces here");
        return;
    }
    assert_eq!(o.status.code(), Some(5), "{o:?}");
    let out = stdout(&o);
    assert!(out.starts_with("0\n"), "{out}");
    assert!(out.contains("inet 203.0.113.2/24"), "{out}");
}
