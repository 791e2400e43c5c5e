//! Where pasta's messages go: the system log once in the background
//! without a log file, and one `--trace` line per frame.
//!
//! The tests cannot replace the machine's `/dev/log`: they bind a datagram
//! socket of their own and name it in `PASST_SYSLOG_SOCKET`.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::{can_run, run, Guest, HostKind, PASTA};

#[test]
fn background_pasta_without_a_log_file_logs_to_syslog_with_its_pid() {
    if !can_run("background_pasta_without_a_log_file_logs_to_syslog_with_its_pid") {
        return;
    }
    let g = Guest::on_own("syslog", HostKind::Full);
    let path = g.dir.join("log");
    let sock = UnixDatagram::bind(&path).expect("bind the fake /dev/log");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let pid_file = g.dir.join("pasta.pid");
    let o = g
        .host()
        .command(&[
            PASTA,
            "--netns",
            &g.name,
            "--config-net",
            "-P",
            pid_file.to_str().unwrap(),
        ])
        .env("PASST_SYSLOG_SOCKET", &path)
        .output()
        .expect("start pasta");
    assert!(o.status.success(), "{o:?}");
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .expect("PID file")
        .trim()
        .parse()
        .expect("a PID");
    // Its namespace goes: pasta quits, and says so to the system log.
    let _ = run("ip", &["netns", "del", &g.name]);
    let want = format!(
        "<30>pasta[{pid}]: namespace file /run/netns/{} was deleted, quitting",
        g.name
    );
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && !got.contains(&want) {
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    assert!(got.contains(&want), "syslog got {got:?}, want {want:?}");
    // Every line: facility daemon, the program and its PID.
    let prefix = format!("pasta[{pid}]: ");
    for l in &got {
        assert!(l.starts_with("<2") || l.starts_with("<3"), "{l}");
        assert!(l.contains(&prefix), "{l}");
    }
}

/// Send `count` UDP datagrams of `len` bytes from the guest to `dst`.
fn send_udp(g: &Guest<'_>, dst: &str, len: usize, count: usize) {
    let py = format!(
        "import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
         [s.sendto(b'x'*{len}, ('{dst}', 9)) for _ in range({count})]"
    );
    let o = g.exec(&["python3", "-c", &py]);
    assert!(o.status.success(), "{o:?}");
}

#[test]
fn trace_logs_a_line_per_frame_both_ways_rate_limited() {
    if !can_run("trace_logs_a_line_per_frame_both_ways_rate_limited") {
        return;
    }
    let mut g = Guest::on_own("trace", HostKind::Full);
    g.start_pasta(&["--config-net", "--trace"]);
    // Past the start-up burst (NDP, DHCP): the limiter lets lines through.
    std::thread::sleep(Duration::from_millis(2500));
    // One datagram of 100 bytes (a 142-byte frame); the remote's port
    // unreachable comes back quoting it (14 + 20 + 8 + 20 + 8 + 100).
    // Sent again until both lines show: other frames of the namespace (its
    // own NDP, say) may use up the second's few lines.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        send_udp(&g, "203.0.113.1", 100, 1);
        std::thread::sleep(Duration::from_millis(400));
        let log = g.log();
        if log.contains("frame from namespace, 142 bytes")
            && log.contains("frame to namespace, 170 bytes")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{log}");
    }
    let seen = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if g.log().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    // A burst of 300 frames within a second: a few lines, the rest counted
    // and said at the next line let through.
    std::thread::sleep(Duration::from_millis(1100));
    let before = g.log().matches("frame from namespace, 77 bytes").count();
    send_udp(&g, "203.0.113.1", 35, 300);
    std::thread::sleep(Duration::from_millis(1100));
    send_udp(&g, "203.0.113.1", 35, 1);
    assert!(seen("similar messages suppressed"), "{}", g.log());
    let lines = g.log().matches("frame from namespace, 77 bytes").count() - before;
    assert!((1..=20).contains(&lines), "{lines} lines for 301 frames");
}
