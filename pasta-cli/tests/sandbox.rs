//! The sandbox of a running pasta, read from `/proc/PID`: seccomp filter,
//! no new privileges, capabilities, identity, its own mount namespace, an
//! empty root; and the spawned command kept apart from it (PID 1 of its
//! own PID namespace, unable to see pasta or read its memory). Run as real
//! root, as an unprivileged user, and as UID 0 of a user namespace that
//! maps only one ID.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use crate::support::*;

/// `CAP_NET_BIND_SERVICE`, the one capability pasta may keep.
const NET_BIND_SERVICE: u64 = 1 << 10;

/// An unprivileged user of these tests (no entry in /etc/passwd needed).
const USER: &str = "12345";

/// Run what follows as [`USER`].
const AS_USER: [&str; 6] = [
    "setpriv",
    "--reuid",
    USER,
    "--regid",
    USER,
    "--clear-groups",
];

/// Run what follows as UID 0 of a new user namespace of [`USER`]'s that
/// maps that one ID (`unshare -r`), with a mount namespace of its own.
const AS_USERNS_ROOT: [&str; 8] = [
    "setpriv",
    "--reuid",
    USER,
    "--regid",
    USER,
    "--clear-groups",
    "unshare",
    "-rUm",
];

/// Fields of `/proc/PID/status` (or of a task's), by name.
fn status(path: &str) -> BTreeMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// A capability mask field as a number.
fn caps(s: &BTreeMap<String, String>, field: &str) -> u64 {
    u64::from_str_radix(s.get(field).map_or("", String::as_str), 16)
        .unwrap_or_else(|_| panic!("{field} in {s:?}"))
}

/// Check every thread of the pasta with `pid`: filter, no new privileges,
/// at most `CAP_NET_BIND_SERVICE`, UID `uid`, a mount namespace not ours,
/// an empty root. The log is for messages.
fn assert_sandboxed(pid: u32, uid: &str, log: &dyn Fn() -> String) {
    let ours = fs::read_link("/proc/self/ns/mnt").unwrap();
    let tasks: Vec<_> = fs::read_dir(format!("/proc/{pid}/task"))
        .expect("pasta's tasks")
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!tasks.is_empty());
    for t in &tasks {
        let t = t.display().to_string();
        let s = status(&format!("{t}/status"));
        assert_eq!(
            s.get("Seccomp").map(String::as_str),
            Some("2"),
            "{t}: {s:?}\n{}",
            log()
        );
        assert_eq!(
            s.get("NoNewPrivs").map(String::as_str),
            Some("1"),
            "{t}: {s:?}"
        );
        for f in ["CapEff", "CapPrm", "CapInh"] {
            assert_eq!(caps(&s, f) & !NET_BIND_SERVICE, 0, "{t}: {f} in {s:?}");
        }
        assert_eq!(caps(&s, "CapInh"), 0, "{t}: {s:?}");
        assert_eq!(caps(&s, "CapBnd") & !NET_BIND_SERVICE, 0, "{t}: {s:?}");
        let uids: Vec<&str> = s["Uid"].split_whitespace().collect();
        assert_eq!(uids, [uid; 4], "{t}: {s:?}");
        let mnt = fs::read_link(format!("{t}/ns/mnt")).expect("mount namespace");
        assert_ne!(mnt, ours, "{t} shares our mount namespace");
        // Not dumpable: its /proc files belong to root, whoever it runs as,
        // and its root directory is empty.
        let root: Vec<_> = fs::read_dir(format!("{t}/root"))
            .expect("pasta's root")
            .collect();
        assert!(root.is_empty(), "{t}/root has {root:?}");
    }
}

/// A copy of pasta that any user can run (the build may sit under a
/// directory only root can read), removed when dropped.
struct PublicPasta(PathBuf);

impl PublicPasta {
    fn new(tag: &str) -> PublicPasta {
        let dir = std::env::temp_dir().join(format!("{}-bin", unique(tag)));
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("pasta");
        fs::copy(PASTA, &bin).expect("copy pasta");
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        // A distribution's /dev/net/tun is 0666; a fresh machine's is 0600.
        must("chmod", &["0666", "/dev/net/tun"]);
        PublicPasta(dir)
    }

    fn path(&self) -> String {
        self.0.join("pasta").display().to_string()
    }
}

impl Drop for PublicPasta {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The command run by pasta in spawn mode: it waits for pasta's PID (in
/// the file `pidfile`, written by the test), then reports what it can see
/// of pasta, and stays until `done` appears.
fn probe_script(pidfile: &str, done: &str) -> String {
    format!(
        "while [ ! -s {pidfile} ]; do sleep 0.05; done; p=$(cat {pidfile}); \
         echo self=$$; \
         n=0; for d in /proc/[0-9]*; do n=$((n+1)); done; echo procs=$n; \
         if [ -e /proc/$p/status ]; then echo sees-pasta; else echo no-pasta; fi; \
         if head -c1 /proc/$p/mem >/dev/null 2>&1; then echo mem-open; else echo mem-closed; fi; \
         umount /proc 2>/dev/null; \
         if head -c1 /proc/$p/mem >/dev/null 2>&1; then echo old-mem-open; else echo old-mem-closed; fi; \
         while [ ! -e {done} ]; do sleep 0.05; done"
    )
}

/// Run pasta in spawn mode through `wrap` on a bare simulated host, with
/// the probe as its command; check the sandbox while it runs, then what
/// the probe saw.
fn spawn_and_probe(tag: &str, wrap: &[&str], pasta: &str, uid: &str) {
    let host = SimHost::new(tag, HostKind::Bare);
    let dir = std::env::temp_dir().join(format!("{}-probe", unique(tag)));
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let pidfile = dir.join("pid");
    let done = dir.join("done");
    let out = dir.join("out");
    let err = dir.join("err");
    let script = probe_script(pidfile.to_str().unwrap(), done.to_str().unwrap());
    let mut all = wrap.to_vec();
    all.extend_from_slice(&[
        pasta,
        "--config-net",
        "-a",
        "192.0.2.2",
        "-n",
        "24",
        "-g",
        "192.0.2.1",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    let mut child: Child = host
        .command(&all)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("start pasta");
    let log = || fs::read_to_string(&err).unwrap_or_default();
    // `ip netns exec`, setpriv and unshare exec what follows: pasta is the
    // process whose command line starts with its path, a descendant of
    // the child.
    let pid = wait_for(Duration::from_secs(10), || {
        descendant(child.id(), |c| runs(c, pasta)).filter(|&p| {
            // Sandboxed once the filter is on.
            status(&format!("/proc/{p}/status"))
                .get("Seccomp")
                .is_some_and(|s| s == "2")
        })
    })
    .unwrap_or_else(|| panic!("no sandboxed pasta under {}:\n{}", child.id(), log()));
    assert_sandboxed(pid, uid, &log);
    fs::write(&pidfile, format!("{pid}\n")).unwrap();
    let report = wait_for(Duration::from_secs(10), || {
        let o = fs::read_to_string(&out).unwrap_or_default();
        o.contains("old-mem-").then_some(o)
    })
    .unwrap_or_else(|| panic!("probe did not report:\n{}", log()));
    fs::write(&done, "").unwrap();
    let status = wait_for(Duration::from_secs(10), || child.try_wait().ok().flatten());
    let _ = child.kill();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{report}\n{}",
        log()
    );
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "self=1", "the command is PID 1: {report}");
    let procs: u32 = lines[1].trim_start_matches("procs=").parse().unwrap();
    assert!(procs <= 4, "the command sees {procs} processes: {report}");
    assert_eq!(
        &lines[2..],
        ["no-pasta", "mem-closed", "old-mem-closed"],
        "{report}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn pasta_as_root_joins_a_namespace_sandboxed_as_nobody() {
    if !can_run("pasta_as_root_joins_a_namespace_sandboxed_as_nobody") {
        return;
    }
    let mut g = Guest::new("sbx-root");
    g.start_pasta(&[
        "--config-net",
        "-a",
        "192.0.2.2",
        "-n",
        "24",
        "-g",
        "192.0.2.1",
    ]);
    let pid = g.pasta_pid().unwrap();
    let pid = wait_for(Duration::from_secs(10), || {
        status(&format!("/proc/{pid}/status"))
            .get("Seccomp")
            .is_some_and(|s| s == "2")
            .then_some(pid)
    })
    .unwrap_or_else(|| panic!("pasta not sandboxed:\n{}", g.log()));
    assert_sandboxed(pid, "65534", &|| g.log());
    // Still serving: the namespace's ARP request for the gateway is
    // answered with pasta's MAC address.
    let _ = g.exec(&["ping", "-c", "1", "-W", "1", "192.0.2.1"]);
    let o = g.exec(&["ip", "neigh", "show", "192.0.2.1"]);
    assert!(
        stdout(&o).contains(&format!("lladdr {OUR_MAC}")),
        "{o:?}\n{}",
        g.log()
    );
    assert!(g.pasta_running(), "{}", g.log());
}

#[test]
fn pasta_as_root_spawns_a_command_that_cannot_reach_it() {
    if !can_run("pasta_as_root_spawns_a_command_that_cannot_reach_it") {
        return;
    }
    spawn_and_probe("sbx-rspawn", &[], PASTA, "65534");
}

#[test]
fn an_unprivileged_pasta_is_sandboxed_and_its_command_kept_apart() {
    if !can_run("an_unprivileged_pasta_is_sandboxed_and_its_command_kept_apart") {
        return;
    }
    let public = PublicPasta::new("sbx-user");
    let bin = &public.path();
    spawn_and_probe("sbx-user", &AS_USER, bin, USER);
}

/// Issue: started as UID 0 of a user namespace that maps only the caller's
/// ID (`unshare -r`), pasta tried to become `nobody`, which is not mapped,
/// and exited 1. It must keep its identity there, and still be sandboxed.
#[test]
fn uid_0_of_a_single_id_user_namespace_keeps_its_identity() {
    if !can_run("uid_0_of_a_single_id_user_namespace_keeps_its_identity") {
        return;
    }
    let public = PublicPasta::new("sbx-userns");
    let bin = &public.path();
    let host = SimHost::new("sbx-userns1", HostKind::Bare);
    let o = host
        .command(
            &[
                &AS_USERNS_ROOT[..],
                &[
                    bin,
                    "--config-net",
                    "-a",
                    "192.0.2.2",
                    "-n",
                    "24",
                    "-g",
                    "192.0.2.1",
                    "--",
                    "sh",
                    "-c",
                    "id -u; ip -o -4 addr show; exit 3",
                ],
            ]
            .concat(),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run pasta");
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    let out = stdout(&o);
    assert!(out.starts_with("0\n"), "{out}");
    assert!(out.contains("inet 192.0.2.2/24"), "{out}");
    assert!(!stderr(&o).contains("UID"), "{o:?}");
    drop(host);
    // And the sandbox holds there too; pasta's own UID is 0 (mapped to the
    // user outside), seen from here as the user.
    spawn_and_probe("sbx-userns2", &AS_USERNS_ROOT, bin, USER);
}

/// `--runas` naming a user that cannot be taken fails at once, with one
/// line that says what to do.
#[test]
fn a_runas_that_cannot_be_taken_is_one_clear_error() {
    if !can_run("a_runas_that_cannot_be_taken_is_one_clear_error") {
        return;
    }
    let public = PublicPasta::new("sbx-runas");
    let bin = public.path();
    let host = SimHost::new("sbx-runas", HostKind::Bare);
    let o = host
        .command(
            &[
                &AS_USERNS_ROOT[..],
                &[&bin, "--config-net", "--runas", "4242", "--", "true"],
            ]
            .concat(),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run pasta");
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = stderr(&o);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("pasta: changing to UID 4242, GID 4242") && last.contains("--runas"),
        "{err}"
    );
}
