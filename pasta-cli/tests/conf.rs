//! The configuration socket (`-c`) of a running pasta, end to end, with
//! `passt-ctl` (passt-cli's client): a `-t` forward added while a transfer
//! runs through another one, used, deleted (a new connection is refused,
//! an open one goes on), listed; a failing add (the port taken on the
//! host) leaves the rules; hostile bytes and too many clients leave pasta
//! forwarding; a peer of another user is refused (`SO_PEERCRED`). Every
//! transfer's content is compared. Ports 5500-5599.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Output;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::fwd::{pattern, topo};
use crate::support::{can_run, run, spawn_in, stderr, stdout, PASTA};

/// passt-ctl, built next to pasta (`cargo build -p passt-cli`).
fn ctl_path() -> PathBuf {
    std::path::Path::new(PASTA).with_file_name("passt-ctl")
}

fn ctl(sock: &str, args: &[&str]) -> Output {
    let ctl = ctl_path();
    let mut all = vec![sock];
    all.extend_from_slice(args);
    run(ctl.to_str().expect("utf-8 path"), &all)
}

/// Echo server in the namespace: each connection read to end of file,
/// written back, closed.
fn echo_server(l: TcpListener, conns: usize) {
    for _ in 0..conns {
        let (mut s, _) = l.accept().expect("accept");
        let mut v = Vec::new();
        s.read_to_end(&mut v).expect("server read");
        s.write_all(&v).expect("server write");
    }
}

/// A connection from the host namespace to `port` (on its loopback)
/// whose data goes in two halves: the first at once, the second when
/// told; then the echo is compared. The thread says "sent" after the
/// first half.
fn two_halves(
    host: String,
    port: u16,
    data: Vec<u8>,
) -> (
    mpsc::Receiver<()>,
    mpsc::Sender<()>,
    thread::JoinHandle<Result<(), String>>,
) {
    let (sent_tx, sent_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let h = spawn_in(&host, move || {
        let to = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5))
            .map_err(|e| format!("connect {to}: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let half = data.len() / 2;
        c.write_all(&data[..half])
            .map_err(|e| format!("write {to}: {e}"))?;
        let _ = sent_tx.send(());
        go_rx.recv().map_err(|e| format!("{e}"))?;
        let mut c2 = c.try_clone().unwrap();
        let rest = data[half..].to_vec();
        let w = thread::spawn(move || {
            c2.write_all(&rest).expect("client write");
            c2.shutdown(Shutdown::Write).unwrap();
        });
        let mut back = Vec::new();
        c.read_to_end(&mut back)
            .map_err(|e| format!("read {to}: {e}"))?;
        w.join().unwrap();
        if back == data {
            Ok(())
        } else {
            Err(format!(
                "{to}: echo of {} bytes differs ({} back)",
                data.len(),
                back.len()
            ))
        }
    });
    (sent_rx, go_tx, h)
}

/// A whole echo through `port`, from the host namespace.
fn echo(host: &str, port: u16, seed: u64) -> Result<(), String> {
    let (sent, go, h) = two_halves(host.to_owned(), port, pattern(seed, 256 << 10));
    sent.recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("first half: {e}"))?;
    go.send(()).unwrap();
    h.join().unwrap()
}

fn ok(o: &Output, what: &str, log: &str) {
    assert!(
        o.status.success(),
        "{what}: {:?}\n{}\n{log}",
        o.status,
        stderr(o)
    );
}

/// Rules `passt-ctl list tcp` prints.
fn tcp_rules(sock: &str) -> Vec<String> {
    let o = ctl(sock, &["list", "tcp"]);
    assert!(o.status.success(), "list: {}", stderr(&o));
    stdout(&o).lines().map(str::to_owned).collect()
}

#[test]
fn conf_socket_adds_and_deletes_forwards_at_run_time() {
    if !can_run("conf_socket_adds_and_deletes_forwards_at_run_time") {
        return;
    }
    if !ctl_path().exists() {
        // In CI the whole workspace is built first: a missing client is a
        // failure there, not a skip.
        assert!(
            std::env::var_os("CI").is_none(),
            "no {} in CI: build the workspace (cargo build -p passt-cli)",
            ctl_path().display()
        );
        eprintln!(
            "conf_socket_adds_and_deletes_forwards_at_run_time: skipped: no {} \
             (cargo build -p passt-cli)",
            ctl_path().display()
        );
        return;
    }
    let sock_path = std::env::temp_dir().join(format!(
        "passt-conf-test-{}.sock",
        crate::support::unique("c")
    ));
    let sock = sock_path.to_str().unwrap().to_owned();
    let mut g = topo(
        "conf",
        &["-t", "5501", "-c", &sock, "-T", "none", "-U", "none"],
    );
    g.allow_allocations(
        400,
        "the configuration socket's sessions (buffers, replies) and changes (rules, listener tables)",
    );
    let host = g.host().name.clone();
    let meta = std::fs::symlink_metadata(&sock_path).expect("socket file");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let (l1, l2) = spawn_in(&g.name, || {
        (
            TcpListener::bind("0.0.0.0:5501").unwrap(),
            TcpListener::bind("0.0.0.0:5502").unwrap(),
        )
    })
    .join()
    .unwrap();
    // 5501: the long transfer, then one more echo; 5502: one echo, and
    // the connection kept open across the delete.
    let srv1 = thread::spawn(move || echo_server(l1, 2));
    let srv2 = thread::spawn(move || echo_server(l2, 2));
    assert_eq!(tcp_rules(&sock), ["-t 5501"]);

    let (sent, go, long) = two_halves(host.clone(), 5501, pattern(1, 4 << 20));
    sent.recv_timeout(Duration::from_secs(10))
        .expect("first half of the long transfer");

    // Add 5502, use it.
    ok(&ctl(&sock, &["add", "-t", "5502"]), "add", &g.log());
    assert_eq!(tcp_rules(&sock), ["-t 5501", "-t 5502"]);
    let r = echo(&host, 5502, 2);
    assert!(r.is_ok(), "{r:?}\n{}", g.log());

    // A connection through 5502 stays open across its delete.
    let (sent2, go2, open) = two_halves(host.clone(), 5502, pattern(3, 1 << 20));
    sent2
        .recv_timeout(Duration::from_secs(10))
        .expect("first half through 5502");
    ok(&ctl(&sock, &["delete", "-t", "5502"]), "delete", &g.log());
    assert_eq!(tcp_rules(&sock), ["-t 5501"]);
    let refused = spawn_in(&host, || {
        TcpStream::connect_timeout(&"127.0.0.1:5502".parse().unwrap(), Duration::from_secs(5))
            .map(|_| ())
            .map_err(|e| e.kind())
    })
    .join()
    .unwrap();
    assert_eq!(refused, Err(ErrorKind::ConnectionRefused), "{}", g.log());
    go2.send(()).unwrap();
    let r = open.join().unwrap();
    assert!(
        r.is_ok(),
        "open connection after delete: {r:?}\n{}",
        g.log()
    );

    // The long transfer ends intact.
    go.send(()).unwrap();
    let r = long.join().unwrap();
    assert!(r.is_ok(), "long transfer: {r:?}\n{}", g.log());

    // A failing add: the port is taken on the host.
    let _taken = spawn_in(&host, || TcpListener::bind("0.0.0.0:5503").unwrap())
        .join()
        .unwrap();
    let o = ctl(&sock, &["add", "-t", "5503"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("port 5503") && stderr(&o).contains("errno 98"),
        "{}",
        stderr(&o)
    );
    assert_eq!(tcp_rules(&sock), ["-t 5501"]);
    // Bad specs and deletes of what is not there: errors, nothing changed.
    let o = ctl(&sock, &["add", "-t", "80-22"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("invalid port spec"), "{}", stderr(&o));
    let o = ctl(&sock, &["delete", "-t", "5599"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(tcp_rules(&sock), ["-t 5501"]);

    // Hostile clients: garbage, a header announcing a huge body, a
    // truncated request left hanging, more clients than slots.
    let mut garbage = pattern(4, 8192);
    garbage[..4].copy_from_slice(b"PCTL");
    let mut huge = b"PCTL\x01\x03\x00\x00".to_vec();
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    // A hello, then a request whose body is short of its spec.
    let mut short = b"PCTL\x01\x01\x00\x00\x00\x00\x00\x02\x01\x01".to_vec();
    short.extend_from_slice(b"PCTL\x01\x03\x00\x00\x00\x00\x00\x03\x06\x01\x00");
    for bytes in [&garbage, &huge, &pattern(5, 100), &short] {
        let mut s = UnixStream::connect(&sock_path).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(bytes);
        let _ = s.shutdown(Shutdown::Write);
        let mut back = Vec::new();
        let _ = s.read_to_end(&mut back);
    }
    let mut hanging = Vec::new();
    for _ in 0..6 {
        if let Ok(mut s) = UnixStream::connect(&sock_path) {
            let _ = s.write_all(b"PCTL\x01\x01\x00\x00\x00\x00\x00\x02\x01");
            hanging.push(s);
        }
    }
    drop(hanging);
    thread::sleep(Duration::from_millis(200));
    assert!(g.pasta_running(), "pasta died:\n{}", g.log());
    assert_eq!(tcp_rules(&sock), ["-t 5501"]);

    // A peer of another user is closed before anything is read (the
    // socket file opened to it for the test; nobody is UID 65534).
    std::fs::set_permissions(
        &sock_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let ctl = ctl_path();
    let o = run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            ctl.to_str().unwrap(),
            &sock,
            "list",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        g.log().contains("connection of user 65534 refused"),
        "{}\n{}",
        stderr(&o),
        g.log()
    );

    // 5501 still takes connections.
    let r = echo(&host, 5501, 6);
    assert!(r.is_ok(), "{r:?}\n{}", g.log());
    srv1.join().unwrap();
    srv2.join().unwrap();
    assert!(g.log().contains("forwarding change"), "{}", g.log());
    drop(g);
    let _ = std::fs::remove_file(&sock_path);
}
