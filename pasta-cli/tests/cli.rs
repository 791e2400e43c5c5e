//! Command-line handling: bad values are named and end with status 1.

use std::process::Command;

use crate::support::PASTA;

fn pasta(args: &[&str]) -> (Option<i32>, String, String) {
    let o = Command::new(PASTA).args(args).output().expect("run pasta");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn version_prints_and_exits_0() {
    let (code, out, _) = pasta(&["--version"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), format!("pasta {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_values_exit_1_with_a_message() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--netns", "x", "--test-ip4", "192.0.2.2/40,192.0.2.1"],
            "/40",
        ),
        (
            &["--netns", "x", "--test-ip4", "nonsense"],
            "ADDR/PREFIX,GATEWAY",
        ),
        (
            &["--netns", "x", "--test-ip6", "2001:db8::2/64,2001:db8::1"],
            "link-local",
        ),
        (
            &[
                "--netns",
                "x",
                "--ns-mac-addr",
                "01:00:00:00:00:01",
                "--test-ip4",
                "192.0.2.2/24,192.0.2.1",
            ],
            "not unicast",
        ),
        (
            &[
                "--netns",
                "x",
                "-m",
                "70000",
                "--test-ip4",
                "192.0.2.2/24,192.0.2.1",
            ],
            "MTU",
        ),
        (&["--netns", "x"], "--test-ip4"),
        (&["--test-ip4", "192.0.2.2/24,192.0.2.1"], "--netns"),
        (&["--no-such-option"], "no-such-option"),
        // Well-formed, refused when the translator checks the configuration.
        (
            &[
                "--netns",
                "x",
                "-m",
                "67",
                "--test-ip4",
                "192.0.2.2/24,192.0.2.1",
            ],
            "MTU 67",
        ),
        // Refused at start-up.
        (
            &[
                "--netns",
                "/nonexistent/ns",
                "--test-ip4",
                "192.0.2.2/24,192.0.2.1",
            ],
            "/nonexistent/ns",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, err) = pasta(args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    }
}
