//! Command-line handling: help and version, glibc's error wording for
//! syntax errors, bad values and unusable targets named, exit status 1, and
//! nothing left behind.

use std::process::Command;

use crate::support::{can_run, run, stdout, Guest, HostKind, SimHost, PASTA};

fn pasta(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(PASTA).args(args).output().expect("run pasta");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn version_and_help_print_and_exit_0() {
    let (code, out, _) = pasta(&["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), format!("pasta {}", env!("CARGO_PKG_VERSION")));
    // rootlesskit probes options this way.
    let (code, out, _) = pasta(&["--host-lo-to-ns-lo", "--version"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("pasta "), "{out}");
    for help in ["-h", "--help"] {
        let (code, out, err) = pasta(&[help]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.starts_with("Usage: pasta [OPTION]..."), "{out}");
        assert!(out.contains("--config-net"), "{out}");
    }
}

#[test]
fn unknown_option_exits_1_with_glibc_wording() {
    let (code, out, err) = pasta(&["--foo"]);
    assert_eq!(code, Some(1));
    assert_eq!(out, "");
    assert_eq!(err, "pasta: unrecognized option '--foo'\n");
    // What podman matches to retry without the option.
    let (code, _, err) = pasta(&["--map-guest-adr=169.254.1.2"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "pasta: unrecognized option '--map-guest-adr=169.254.1.2'\n"
    );
    let (code, _, err) = pasta(&["-Z"]);
    assert_eq!(code, Some(1));
    assert_eq!(err, "pasta: invalid option -- 'Z'\n");
}

#[test]
fn bad_values_exit_1_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["-m", "70000"], "pasta: Invalid MTU: 70000"),
        (
            &["-a", "192.0.2.2/40"],
            "pasta: Invalid address: 192.0.2.2/40",
        ),
        (&["-n", "33"], "Invalid netmask: 33"),
        (&["--ns-mac-addr", "zz"], "Invalid"),
        (&["-t", "70000"], "70000"),
        (&["-4", "-6"], "mutually exclusive"),
        (&["--netns", "x", "42"], "Both --netns and PID"),
        (&["0"], "Invalid PID: 0"),
        (&["--log-size", "10"], "--log-size"),
        (&["-I", "a-very-long-interface-name"], "interface"),
        (&["--netns"], "option '--netns' requires an argument"),
    ];
    for (args, needle) in cases {
        let (code, _, err) = pasta(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn unusable_targets_exit_1_and_leave_nothing_behind() {
    if !can_run("unusable_targets_exit_1_and_leave_nothing_behind") {
        return;
    }
    let host = SimHost::new("badtgt", HostKind::Full);
    let guest = Guest::on(&host, "badtgt");
    let pcap = guest.dir.join("x.pcap");
    let pcap = pcap.to_str().unwrap();
    let missing = format!("{}/nonexistent/x.pcap", guest.dir.display());
    let guest_ns = format!("/run/netns/{}", guest.name);
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--netns", "/nonexistent/ns"],
            "opening network namespace /nonexistent/ns: No such file or directory".into(),
        ),
        (
            vec!["--netns", "/proc/self/stat"],
            "/proc/self/stat is not a network namespace".into(),
        ),
        // PIDs above the kernel's pid_max (at most 2^22) never exist.
        (vec!["2147483000"], "no process with PID 2147483000".into()),
        (
            vec!["--netns", "/proc/1/ns/net"],
            "is the network namespace pasta runs in".into(),
        ),
        // Fails after the tap device was made: it must go again.
        (
            vec!["--netns", &guest_ns, "--pcap", &missing],
            "creating capture file".into(),
        ),
        (
            vec!["--netns", &guest_ns, "-a", "192.0.2.2", "-m", "1000"],
            "too small for IPv6".into(),
        ),
        (
            vec!["--netns", &guest_ns, "-i", "nosuchif0"],
            "no interface named \"nosuchif0\"".into(),
        ),
        (
            vec![
                "--netns",
                &guest_ns,
                "--runas",
                "nosuchuser",
                "--pcap",
                pcap,
            ],
            "--runas: no user named \"nosuchuser\"".into(),
        ),
    ];
    for (args, needle) in &cases {
        // In the simulated host: /proc/1/ns/net is then not pasta's own, so
        // use the host's own namespace file for that case.
        let mut all: Vec<&str> = vec![PASTA, "-f"];
        let own = format!("/run/netns/{}", host.name);
        for a in args {
            all.push(if *a == "/proc/1/ns/net" { &own } else { a });
        }
        let o = host.command(&all).output().expect("run pasta");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(needle.as_str()),
            "{args:?}: {err:?} lacks {needle:?}"
        );
        let links = stdout(&run("ip", &["-n", &guest.name, "-o", "link"]));
        assert_eq!(links.lines().count(), 1, "{args:?} left a link: {links}");
        assert!(!std::path::Path::new(pcap).exists(), "{args:?} left {pcap}");
    }
    // The same failure after going to the background: the parent waits for
    // the child's start-up, so it still exits 1 with the child's message.
    let o = host
        .command(&[
            PASTA,
            "--netns",
            &guest_ns,
            "--runas",
            "nosuchuser",
            "--pcap",
            pcap,
        ])
        .output()
        .expect("run pasta");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("--runas: no user named"), "{err}");
    let links = stdout(&run("ip", &["-n", &guest.name, "-o", "link"]));
    assert_eq!(links.lines().count(), 1, "left a link: {links}");
    assert!(!std::path::Path::new(pcap).exists(), "left {pcap}");
}
