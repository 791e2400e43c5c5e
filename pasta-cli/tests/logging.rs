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
