//! Command lines of passt and pasta: every option in every syntax
//! `getopt_long` accepts, the exact lines podman and rootlesskit run, glibc's
//! error wording, and what the options change in a host-derived `Config`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use passt_core::addr::MacAddr;
use passt_core::config::ports::{FwdMode, FwdSpec};
use passt_core::config::{Config, Ip4Config, Ip6Config, Mode, Services};
use passt_core::host::options::{
    usage, version, IdSpec, MapAddr, Options, OptionsErrorKind, Parsed, RunAs, DEFAULT_LOG_SIZE,
};

const PASST: Mode = Mode::Passt;
const PASTA: Mode = Mode::Pasta;

fn v4(a: &str) -> Ipv4Addr {
    a.parse().unwrap()
}

fn v6(a: &str) -> Ipv6Addr {
    a.parse().unwrap()
}

/// Parse a line that must run.
fn run(mode: Mode, args: &[&str]) -> Options {
    match Options::parse(mode, args) {
        Ok(Parsed::Run(o)) => *o,
        other => panic!("{args:?}: {other:?}"),
    }
}

/// Parse a line that must fail; its whole message.
fn fail(mode: Mode, args: &[&str]) -> String {
    match Options::parse(mode, args) {
        Err(e) => e.to_string(),
        other => panic!("{args:?} parsed: {other:?}"),
    }
}

/// Every way to write an option with a value: `--long v`, `--long=v`,
/// `-c v`, `-cv`, and after `-f` in a cluster; with whether `-f` is in.
fn value_forms(long: &str, short: Option<char>, value: &str) -> Vec<(Vec<String>, bool)> {
    let mut forms = vec![
        (vec![format!("--{long}"), value.to_owned()], false),
        (vec![format!("--{long}={value}")], false),
    ];
    if let Some(c) = short {
        forms.push((vec![format!("-{c}"), value.to_owned()], false));
        forms.push((vec![format!("-{c}{value}")], false));
        forms.push((vec![format!("-f{c}"), value.to_owned()], true));
        forms.push((vec![format!("-f{c}{value}")], true));
    }
    forms
}

/// Every way to write a flag: `--long`, `-c`, and in clusters `-fc`, `-cf`.
fn flag_forms(long: &str, short: Option<char>) -> Vec<(Vec<String>, bool)> {
    let mut forms = vec![(vec![format!("--{long}")], false)];
    if let Some(c) = short {
        forms.push((vec![format!("-{c}")], false));
        forms.push((vec![format!("-f{c}")], true));
        forms.push((vec![format!("-{c}f")], true));
    }
    forms
}

type Check = fn(&Options) -> bool;

/// Parse each form; `check` must hold, and `-f` must be seen exactly when
/// a cluster had it.
fn expect_forms(mode: Mode, forms: Vec<(Vec<String>, bool)>, check: Check) {
    for (form, with_f) in forms {
        let o = match Options::parse(mode, &form) {
            Ok(Parsed::Run(o)) => *o,
            other => panic!("{form:?}: {other:?}"),
        };
        assert!(check(&o), "{form:?}: {o:?}");
        if with_f {
            assert!(o.foreground, "{form:?}");
        } else if !form.iter().any(|a| a == "--foreground" || a == "-f") {
            assert!(!o.foreground, "{form:?}");
        }
    }
}

#[test]
fn every_option_with_a_value_in_every_syntax() {
    #[rustfmt::skip]
    let both: &[(&str, Option<char>, &str, Check)] = &[
        ("log-file", Some('l'), "/tmp/p.log", |o| o.log_file.as_deref() == Some("/tmp/p.log")),
        ("log-size", None, "2097152", |o| o.log_size == 2_097_152),
        ("runas", None, "1000:100", |o| o.runas == Some(RunAs { user: IdSpec::Id(1000), group: Some(IdSpec::Id(100)) })),
        ("runas", None, "nobody", |o| o.runas == Some(RunAs { user: IdSpec::Name("nobody".into()), group: None })),
        ("pid", Some('P'), "/run/p.pid", |o| o.pid_file.as_deref() == Some("/run/p.pid")),
        ("pcap", Some('p'), "/tmp/c.pcap", |o| o.pcap.as_deref() == Some("/tmp/c.pcap")),
        ("mtu", Some('m'), "1500", |o| o.mtu == Some(1500)),
        ("mtu", Some('m'), "65520", |o| o.mtu == Some(65520)),
        ("mtu", Some('m'), "0", |o| o.mtu == Some(0)),
        ("hostname", Some('H'), "vm1", |o| o.hostname.as_deref() == Some("vm1")),
        ("fqdn", None, "vm1.example.org.", |o| o.fqdn.as_deref() == Some("vm1.example.org")),
        ("address", Some('a'), "192.0.2.10", |o| o.addr4 == Some(v4("192.0.2.10")) && o.prefix_len4 == Some(24) && o.addr6.is_none()),
        ("address", Some('a'), "10.0.2.100/20", |o| o.addr4 == Some(v4("10.0.2.100")) && o.prefix_len4 == Some(20)),
        ("address", Some('a'), "2001:db8::10", |o| o.addr6 == Some(v6("2001:db8::10")) && o.prefix_len6.is_none() && o.addr4.is_none()),
        ("address", Some('a'), "2001:db8::10/56", |o| o.addr6 == Some(v6("2001:db8::10")) && o.prefix_len6 == Some(56)),
        ("netmask", Some('n'), "255.255.240.0", |o| o.prefix_len4 == Some(20) && o.addr4.is_none()),
        ("netmask", Some('n'), "24", |o| o.prefix_len4 == Some(24)),
        ("mac-addr", Some('M'), "02:00:5e:00:00:01", |o| o.our_mac == Some(MacAddr([2, 0, 0x5e, 0, 0, 1]))),
        ("gateway", Some('g'), "192.0.2.1", |o| o.gateway4 == Some(v4("192.0.2.1")) && o.gateway6.is_none()),
        ("gateway", Some('g'), "fe80::1", |o| o.gateway6 == Some(v6("fe80::1")) && o.gateway4.is_none()),
        ("interface", Some('i'), "eth0", |o| o.interface.as_deref() == Some("eth0")),
        ("outbound", Some('o'), "192.0.2.5", |o| o.outbound4 == Some(v4("192.0.2.5"))),
        ("outbound", Some('o'), "2001:db8::5", |o| o.outbound6 == Some(v6("2001:db8::5"))),
        ("outbound-if4", None, "eth1", |o| o.outbound_if4.as_deref() == Some("eth1")),
        ("outbound-if6", None, "eth2", |o| o.outbound_if6.as_deref() == Some("eth2")),
        ("dns", Some('D'), "192.0.2.53", |o| o.dns == Some(vec![IpAddr::V4(v4("192.0.2.53"))])),
        ("dns", Some('D'), "2001:db8::53", |o| o.dns == Some(vec![IpAddr::V6(v6("2001:db8::53"))])),
        ("dns", Some('D'), "none", |o| o.dns == Some(vec![])),
        ("dns-forward", None, "169.254.1.1", |o| o.dns_forward4 == Some(v4("169.254.1.1"))),
        ("dns-forward", None, "fd00::53", |o| o.dns_forward6 == Some(v6("fd00::53"))),
        ("dns-host", None, "192.0.2.53", |o| o.dns_host4 == Some(v4("192.0.2.53"))),
        ("dns-host", None, "2001:db8::53", |o| o.dns_host6 == Some(v6("2001:db8::53"))),
        ("search", Some('S'), "example.com", |o| o.search == Some(vec!["example.com".into()])),
        ("search", Some('S'), "none", |o| o.search == Some(vec![])),
        ("search", Some('S'), "none.", |o| o.search == Some(vec!["none.".into()])),
        ("map-host-loopback", None, "192.0.2.2", |o| o.map_host_loopback4 == MapAddr::To(v4("192.0.2.2")) && !o.no_map_gw),
        ("map-host-loopback", None, "fd00::2", |o| o.map_host_loopback6 == MapAddr::To(v6("fd00::2"))),
        ("map-host-loopback", None, "none", |o| o.map_host_loopback4 == MapAddr::Disabled && o.map_host_loopback6 == MapAddr::Disabled && o.no_map_gw),
        ("map-guest-addr", None, "169.254.1.2", |o| o.map_guest_addr4 == MapAddr::To(v4("169.254.1.2"))),
        ("map-guest-addr", None, "fd00::3", |o| o.map_guest_addr6 == MapAddr::To(v6("fd00::3"))),
        ("map-guest-addr", None, "none", |o| o.map_guest_addr4 == MapAddr::Disabled && o.map_guest_addr6 == MapAddr::Disabled),
        ("tcp-ports", Some('t'), "22,80:8080", |o| o.tcp_ports == FwdSpec::parse("22,80:8080").unwrap() && !o.udp_ports.is_given()),
        ("tcp-ports", Some('t'), "none", |o| o.tcp_ports.is_given() && o.tcp_ports.mode() == FwdMode::None),
        ("udp-ports", Some('u'), "192.0.2.1/53", |o| o.udp_ports == FwdSpec::parse("192.0.2.1/53").unwrap() && !o.tcp_ports.is_given()),
    ];
    for mode in [PASST, PASTA] {
        for &(long, short, value, check) in both {
            expect_forms(mode, value_forms(long, short, value), check);
        }
    }

    #[rustfmt::skip]
    let passt: &[(&str, Option<char>, &str, Check)] = &[
        ("socket", Some('s'), "/tmp/passt.sock", |o| o.socket.as_deref() == Some("/tmp/passt.sock")),
        ("socket-path", None, "/tmp/passt.sock", |o| o.socket.as_deref() == Some("/tmp/passt.sock")),
        ("fd", Some('F'), "5", |o| o.fd == Some(5) && o.one_off && o.socket.is_none()),
        ("fd", Some('F'), "0", |o| o.fd == Some(0)),
    ];
    for &(long, short, value, check) in passt {
        expect_forms(PASST, value_forms(long, short, value), check);
    }

    #[rustfmt::skip]
    let pasta: &[(&str, Option<char>, &str, Check)] = &[
        ("ns-ifname", Some('I'), "tap0", |o| o.ns_ifname.as_deref() == Some("tap0")),
        ("tcp-ns", Some('T'), "8080", |o| o.tcp_ns == FwdSpec::parse("8080").unwrap() && !o.tcp_ports.is_given()),
        ("udp-ns", Some('U'), "53,5353", |o| o.udp_ns == FwdSpec::parse("53,5353").unwrap()),
        ("tcp-ports", Some('t'), "auto", |o| o.tcp_ports.mode() == FwdMode::Auto),
        ("tcp-ports", Some('t'), "::1/8000-8010,auto", |o| o.tcp_ports.mode() == FwdMode::Auto && o.tcp_ports.rules().len() == 1),
        ("userns", None, "/proc/1/ns/user", |o| o.userns.as_deref() == Some("/proc/1/ns/user") && !o.netns_only),
        ("netns", None, "/run/user/1000/netns/x", |o| o.netns.as_deref() == Some("/run/user/1000/netns/x") && o.netns_only),
        ("netns", None, "x", |o| o.netns_path().as_deref() == Some("/run/netns/x")),
        ("nsrun-dir", None, "/tmp/ns", |o| o.nsrun_dir.as_deref() == Some("/tmp/ns")),
        ("ns-mac-addr", None, "02:00:00:00:00:07", |o| o.ns_mac_addr == Some(MacAddr([2, 0, 0, 0, 0, 7]))),
    ];
    for &(long, short, value, check) in pasta {
        expect_forms(PASTA, value_forms(long, short, value), check);
    }
}

#[test]
fn every_flag_in_every_syntax() {
    #[rustfmt::skip]
    let both: &[(&str, Option<char>, Check)] = &[
        ("debug", Some('d'), |o| o.debug && !o.trace && !o.quiet),
        ("trace", None, |o| o.trace && o.debug),
        ("quiet", Some('q'), |o| o.quiet && !o.debug),
        ("foreground", Some('f'), |o| o.foreground),
        // Accepted and ignored: everything stays at its default.
        ("stderr", Some('e'), |o| o.stderr && *o == Options { foreground: o.foreground, stderr: true, ..Options::new(o.mode) }),
        ("ipv4-only", Some('4'), |o| o.ipv4_only && !o.ipv6_only),
        ("ipv6-only", Some('6'), |o| o.ipv6_only && !o.ipv4_only),
        ("no-map-gw", None, |o| o.no_map_gw && o.map_host_loopback4 == MapAddr::Default),
        ("no-dhcp", None, |o| o.no_dhcp && !o.no_dhcpv6),
        ("no-ndp", None, |o| o.no_ndp),
        ("no-dhcpv6", None, |o| o.no_dhcpv6 && !o.no_dhcp),
        ("no-ra", None, |o| o.no_ra),
        ("freebind", None, |o| o.freebind),
        ("no-tcp", None, |o| o.no_tcp && !o.no_udp),
        ("no-udp", None, |o| o.no_udp && !o.no_tcp),
        ("no-icmp", None, |o| o.no_icmp),
    ];
    for mode in [PASST, PASTA] {
        for &(long, short, check) in both {
            expect_forms(mode, flag_forms(long, short), check);
        }
    }
    #[rustfmt::skip]
    let passt: &[(&str, Option<char>, Check)] = &[
        ("no-dhcp-dns", None, |o| o.dhcp_dns == Some(false) && !o.dhcp_dns() && o.dhcp_search()),
        ("no-dhcp-search", None, |o| o.dhcp_search == Some(false) && !o.dhcp_search() && o.dhcp_dns()),
        ("one-off", Some('1'), |o| o.one_off),
        ("print-capabilities", None, |o| o.print_capabilities),
    ];
    for &(long, short, check) in passt {
        expect_forms(PASST, flag_forms(long, short), check);
    }
    #[rustfmt::skip]
    let pasta: &[(&str, Option<char>, Check)] = &[
        ("dhcp-dns", None, |o| o.dhcp_dns == Some(true) && o.dhcp_dns() && !o.dhcp_search()),
        ("dhcp-search", None, |o| o.dhcp_search == Some(true) && o.dhcp_search() && !o.dhcp_dns()),
        ("netns-only", None, |o| o.netns_only),
        ("config-net", None, |o| o.config_net),
        ("no-netns-quit", None, |o| o.no_netns_quit),
        ("no-splice", None, |o| o.no_splice),
        ("host-lo-to-ns-lo", None, |o| o.host_lo_to_ns_lo),
        ("no-copy-routes", None, |o| o.no_copy_routes && !o.no_copy_addrs),
        ("no-copy-addrs", None, |o| o.no_copy_addrs && !o.no_copy_routes),
    ];
    for &(long, short, check) in pasta {
        expect_forms(PASTA, flag_forms(long, short), check);
    }

    // Defaults differ by frontend.
    let passt = Options::new(PASST);
    assert!(passt.dhcp_dns() && passt.dhcp_search());
    let pasta = Options::new(PASTA);
    assert!(!pasta.dhcp_dns() && !pasta.dhcp_search());
    assert_eq!(pasta.log_size, DEFAULT_LOG_SIZE);
}

#[test]
fn help_and_version_are_outcomes() {
    for mode in [PASST, PASTA] {
        for line in [
            &["-h"][..],
            &["--help"],
            &["--he"],
            &["-fh"],
            &["-d", "--help", "--bogus"],
        ] {
            assert_eq!(Options::parse(mode, line), Ok(Parsed::Help), "{line:?}");
        }
        for line in [
            &["--version"][..],
            &["--vers"],
            &["-4", "--version", "-6", "-x"],
        ] {
            assert_eq!(Options::parse(mode, line), Ok(Parsed::Version), "{line:?}");
        }
        // An error before them still counts.
        assert!(Options::parse(mode, ["--bogus", "--version"]).is_err());
    }
    // rootlesskit's probe for --host-lo-to-ns-lo.
    assert_eq!(
        Options::parse(PASTA, ["--host-lo-to-ns-lo", "--version"]),
        Ok(Parsed::Version)
    );
    assert_eq!(
        version(PASTA),
        format!("pasta {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        version(PASST),
        format!("passt {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_lists_each_frontends_options() {
    let common = [
        "-d, --debug",
        "--trace",
        "-q, --quiet",
        "-f, --foreground",
        "-e, --stderr",
        "-l, --log-file PATH",
        "--log-size SIZE",
        "--runas UID[:GID]",
        "-h, --help",
        "--version",
        "-p, --pcap FILE",
        "-P, --pid FILE",
        "-m, --mtu MTU",
        "-a, --address ADDR[/LEN]",
        "-n, --netmask MASK",
        "-M, --mac-addr ADDR",
        "-g, --gateway ADDR",
        "-i, --interface NAME",
        "-o, --outbound ADDR",
        "--outbound-if4 NAME",
        "--outbound-if6 NAME",
        "-D, --dns ADDR",
        "--dns-forward ADDR",
        "--dns-host ADDR",
        "-S, --search LIST",
        "--map-host-loopback ADDR",
        "--map-guest-addr ADDR",
        "--no-map-gw",
        "--no-dhcp ",
        "--no-ndp",
        "--no-dhcpv6",
        "--no-ra",
        "--freebind",
        "--no-tcp",
        "--no-udp",
        "--no-icmp",
        "-4, --ipv4-only",
        "-6, --ipv6-only",
        "-t, --tcp-ports SPEC",
        "-u, --udp-ports SPEC",
    ];
    let passt_only = [
        "-s, --socket PATH",
        "--socket-path PATH",
        "-F, --fd FD",
        "-1, --one-off",
        "--print-capabilities",
        "--no-dhcp-dns",
        "--no-dhcp-search",
    ];
    let pasta_only = [
        "-I, --ns-ifname NAME",
        "-T, --tcp-ns SPEC",
        "-U, --udp-ns SPEC",
        "--host-lo-to-ns-lo",
        "--userns PATH",
        "--netns PATH|NAME",
        "--netns-only",
        "--nsrun-dir PATH",
        "--no-netns-quit",
        "--config-net",
        "--ns-mac-addr ADDR",
        "--no-splice",
        "--dhcp-dns",
        "--dhcp-search",
    ];
    let passt = usage(PASST);
    let pasta = usage(PASTA);
    assert!(passt.starts_with("Usage: passt [OPTION]...\n"), "{passt}");
    assert!(
        pasta.starts_with("Usage: pasta [OPTION]... [COMMAND [ARG]...]\n"),
        "{pasta}"
    );
    for o in common {
        assert!(passt.contains(o), "passt lacks {o}");
        assert!(pasta.contains(o), "pasta lacks {o}");
    }
    for o in passt_only {
        assert!(passt.contains(o), "passt lacks {o}");
        assert!(!pasta.contains(o), "pasta has {o}");
    }
    for o in pasta_only {
        assert!(pasta.contains(o), "pasta lacks {o}");
    }
    assert!(!passt.contains("--netns"));
    assert!(!passt.contains("'auto'"));
    assert!(pasta.contains("'auto'"));
    assert!(passt.ends_with('\n') && pasta.ends_with('\n'));
}

#[test]
fn podman_command_line() {
    let line = [
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
        "/run/user/1000/netns/x",
        "--map-guest-addr",
        "169.254.1.2",
    ];
    let o = run(PASTA, &line);
    let mut expect = Options::new(PASTA);
    expect.config_net = true;
    expect.dns_forward4 = Some(v4("169.254.1.1"));
    let none = FwdSpec::parse("none").unwrap();
    expect.tcp_ports = none.clone();
    expect.udp_ports = none.clone();
    expect.tcp_ns = none.clone();
    expect.udp_ns = none.clone();
    expect.no_map_gw = true;
    expect.quiet = true;
    expect.netns = Some("/run/user/1000/netns/x".into());
    expect.netns_only = true;
    expect.map_guest_addr4 = MapAddr::To(v4("169.254.1.2"));
    assert_eq!(o, expect);
    assert_eq!(o.netns_path().as_deref(), Some("/run/user/1000/netns/x"));
    assert_eq!(o.userns_path(), None);

    let mut c = host_config();
    o.overrides(&mut c).unwrap();
    let ip4 = c.ip4.as_ref().unwrap();
    assert_eq!(ip4.dns_forward, Some(v4("169.254.1.1")));
    assert_eq!(ip4.map_guest_addr, Some(v4("169.254.1.2")));
    assert_eq!(ip4.map_host_loopback, None);
    assert_eq!(c.ip6.as_ref().unwrap().map_host_loopback, None);
    for spec in [&c.fwd.tcp_in, &c.fwd.udp_in, &c.fwd.tcp_out, &c.fwd.udp_out] {
        assert_eq!(spec.mode(), FwdMode::None);
        assert!(spec.rules().is_empty());
    }
    assert_eq!(c.mode, PASTA);
}

#[test]
fn rootlesskit_command_lines() {
    // With the child's PID.
    let line = [
        "--stderr",
        "--ns-ifname=tap0",
        "--mtu=65520",
        "--config-net",
        "--address=10.0.2.100",
        "--netmask=24",
        "--gateway=10.0.2.2",
        "--dns-forward=10.0.2.3",
        "--no-map-gw",
        "--ipv4-only",
        "--tcp-ports=none",
        "--udp-ports=none",
        "12345",
    ];
    let o = run(PASTA, &line);
    assert_eq!(o.ns_ifname.as_deref(), Some("tap0"));
    assert_eq!(o.mtu, Some(65520));
    assert!(o.config_net && o.no_map_gw && o.ipv4_only);
    assert_eq!(o.addr4, Some(v4("10.0.2.100")));
    assert_eq!(o.prefix_len4, Some(24));
    assert_eq!(o.gateway4, Some(v4("10.0.2.2")));
    assert_eq!(o.dns_forward4, Some(v4("10.0.2.3")));
    assert_eq!(o.tcp_ports.mode(), FwdMode::None);
    assert!(o.tcp_ports.is_given() && o.udp_ports.is_given());
    assert!(!o.tcp_ns.is_given() && !o.udp_ns.is_given());
    assert_eq!(o.pid, Some(12345));
    assert!(o.command.is_empty());
    assert!(!o.netns_only);
    assert_eq!(o.netns_path().as_deref(), Some("/proc/12345/ns/net"));
    assert_eq!(o.userns_path().as_deref(), Some("/proc/12345/ns/user"));

    let mut c = host_config();
    o.overrides(&mut c).unwrap();
    assert_eq!(c.ip6, None);
    let ip4 = c.ip4.as_ref().unwrap();
    assert_eq!(
        (
            ip4.addr,
            ip4.prefix_len,
            ip4.gateway,
            ip4.dns_forward,
            ip4.map_host_loopback
        ),
        (
            v4("10.0.2.100"),
            24,
            v4("10.0.2.2"),
            Some(v4("10.0.2.3")),
            None
        )
    );
    assert_eq!(c.mtu, 65520);
    // -t/-u none, -T/-U default to auto in pasta.
    assert_eq!(c.fwd.tcp_in.mode(), FwdMode::None);
    assert_eq!(c.fwd.udp_in.mode(), FwdMode::None);
    assert_eq!(c.fwd.tcp_out.mode(), FwdMode::Auto);
    assert_eq!(c.fwd.udp_out.mode(), FwdMode::Auto);
    assert_eq!(c.validate(), Ok(()));

    // With a detached network namespace, and implicit port forwarding.
    let o = run(
        PASTA,
        &[
            "--stderr",
            "--mtu=1500",
            "--config-net",
            "--address=10.0.2.100",
            "--netmask=24",
            "--tcp-ports=auto",
            "--udp-ports=auto",
            "--userns=/proc/42/ns/user",
            "--netns=/run/user/1000/rootlesskit/netns",
        ],
    );
    assert_eq!(o.userns.as_deref(), Some("/proc/42/ns/user"));
    assert_eq!(o.netns.as_deref(), Some("/run/user/1000/rootlesskit/netns"));
    assert!(!o.netns_only);
    assert_eq!(o.tcp_ports.mode(), FwdMode::Auto);
    assert_eq!(o.pid, None);

    // The separate-argument forms work alike.
    let a = run(
        PASTA,
        &[
            "--netmask",
            "24",
            "--mtu",
            "65520",
            "--address",
            "10.0.2.100",
            "1",
        ],
    );
    let b = run(
        PASTA,
        &["--netmask=24", "--mtu=65520", "--address=10.0.2.100", "1"],
    );
    assert_eq!(a, b);
    assert_eq!(a.prefix_len4, Some(24));
}

#[test]
fn abbreviations_resolve_or_are_ambiguous() {
    // As the original: `--conf` is --config-net or --conf-path.
    assert_eq!(
        fail(PASTA, &["--conf"]),
        "pasta: option '--conf' is ambiguous; possibilities: '--config-net' '--conf-path'"
    );
    assert!(run(PASTA, &["--config"]).config_net);
    assert_eq!(run(PASTA, &["--mt=1400"]).mtu, Some(1400));
    assert_eq!(run(PASST, &["--sock", "/s"]).socket.as_deref(), Some("/s"));
    assert!(run(PASTA, &["--host-lo"]).host_lo_to_ns_lo);
    assert!(run(PASTA, &["--no-dhcp"]).no_dhcp);
    assert_eq!(
        fail(PASTA, &["--n"]),
        "pasta: option '--n' is ambiguous; possibilities: '--netmask' '--no-map-gw' \
         '--no-dhcp' '--no-ndp' '--no-dhcpv6' '--no-ra' '--no-tcp' '--no-udp' '--no-icmp' \
         '--ns-ifname' '--netns' '--netns-only' '--nsrun-dir' '--no-netns-quit' \
         '--ns-mac-addr' '--no-splice' '--no-copy-routes' '--no-copy-addrs'"
    );
    assert_eq!(
        fail(PASST, &["--no-dhcp-"]),
        "passt: option '--no-dhcp-' is ambiguous; possibilities: '--no-dhcp-dns' '--no-dhcp-search'"
    );
    assert_eq!(
        fail(PASTA, &["--dns-=192.0.2.1"]),
        "pasta: option '--dns-=192.0.2.1' is ambiguous; possibilities: '--dns-forward' '--dns-host'"
    );
    let e = Options::parse(PASST, ["--no-d"]).unwrap_err();
    assert!(
        matches!(e.kind(), OptionsErrorKind::Ambiguous { possibilities, .. } if possibilities.len() == 4)
    );
    // passt-only names are no candidates in pasta.
    let e = Options::parse(PASTA, ["--no-d"]).unwrap_err();
    assert!(
        matches!(e.kind(), OptionsErrorKind::Ambiguous { possibilities, .. } if possibilities.len() == 2)
    );
}

#[test]
fn getopt_errors_have_glibcs_words() {
    let cases: &[(Mode, &[&str], &str)] = &[
        (
            PASTA,
            &["--map-guest"],
            "pasta: option '--map-guest-addr' requires an argument",
        ),
        (PASTA, &["--bogus"], "pasta: unrecognized option '--bogus'"),
        (
            PASTA,
            &["--bogus=1"],
            "pasta: unrecognized option '--bogus=1'",
        ),
        (
            PASST,
            &["--config-net-x"],
            "passt: unrecognized option '--config-net-x'",
        ),
        (
            PASST,
            &["--config"],
            "passt: unrecognized option '--config'",
        ),
        (PASTA, &["-t"], "pasta: option requires an argument -- 't'"),
        (PASTA, &["-ft"], "pasta: option requires an argument -- 't'"),
        (
            PASTA,
            &["--mtu"],
            "pasta: option '--mtu' requires an argument",
        ),
        (
            PASTA,
            &["--mt"],
            "pasta: option '--mtu' requires an argument",
        ),
        (PASTA, &["-x"], "pasta: invalid option -- 'x'"),
        (PASTA, &["-fdx"], "pasta: invalid option -- 'x'"),
        (PASST, &["-j", "host"], "passt: invalid option -- 'j'"),
        (
            PASTA,
            &["--no-dhcp=1"],
            "pasta: option '--no-dhcp' doesn't allow an argument",
        ),
        (
            PASTA,
            &["--no-dhcpv=1"],
            "pasta: option '--no-dhcpv6' doesn't allow an argument",
        ),
        (
            PASTA,
            &["--version=2"],
            "pasta: option '--version' doesn't allow an argument",
        ),
    ];
    for (mode, line, msg) in cases {
        assert_eq!(&fail(*mode, line), msg, "{line:?}");
    }
}

#[test]
fn options_of_the_other_frontend_are_named() {
    let cases: &[(Mode, &[&str], &str)] = &[
        (
            PASST,
            &["--netns", "x"],
            "passt: --netns is for pasta mode only",
        ),
        (
            PASST,
            &["--netns-only"],
            "passt: --netns-only is for pasta mode only",
        ),
        (
            PASST,
            &["--userns=/proc/1/ns/user"],
            "passt: --userns is for pasta mode only",
        ),
        (PASST, &["-T", "22"], "passt: -T is for pasta mode only"),
        (PASST, &["-U22"], "passt: -U is for pasta mode only"),
        (
            PASST,
            &["--tcp-ns", "22"],
            "passt: --tcp-ns is for pasta mode only",
        ),
        (PASST, &["-I", "tap0"], "passt: -I is for pasta mode only"),
        (
            PASST,
            &["--config-net"],
            "passt: --config-net is for pasta mode only",
        ),
        (
            PASST,
            &["--stderr", "--dhcp-dns"],
            "passt: --dhcp-dns is for pasta mode only",
        ),
        (PASTA, &["-s", "/tmp/s"], "pasta: -s is for passt mode only"),
        (PASTA, &["-1"], "pasta: -1 is for passt mode only"),
        (PASTA, &["-F", "5"], "pasta: -F is for passt mode only"),
        (
            PASTA,
            &["--no-dhcp-dns"],
            "pasta: --no-dhcp-dns is for passt mode only",
        ),
        (
            PASTA,
            &["--no-dhcp-search"],
            "pasta: --no-dhcp-search is for passt mode only",
        ),
        (
            PASTA,
            &["--print-capabilities"],
            "pasta: --print-capabilities is for passt mode only",
        ),
    ];
    for (mode, line, msg) in cases {
        assert_eq!(&fail(*mode, line), msg, "{line:?}");
    }
}

#[test]
fn bad_values_are_named() {
    let long = "x".repeat(108);
    let spec_err = |s: &str| format!("pasta: {}", FwdSpec::parse(s).unwrap_err());
    let cases: Vec<(Mode, Vec<&str>, String)> = vec![
        (
            PASTA,
            vec!["-m", "70000"],
            "pasta: Invalid MTU: 70000".into(),
        ),
        (
            PASTA,
            vec!["-m", "65521"],
            "pasta: Invalid MTU: 65521".into(),
        ),
        (PASTA, vec!["-m", "67"], "pasta: Invalid MTU: 67".into()),
        (
            PASTA,
            vec!["--mtu=1500x"],
            "pasta: Invalid MTU: 1500x".into(),
        ),
        (PASTA, vec!["--mtu="], "pasta: Invalid MTU: ".into()),
        (PASTA, vec!["-m", "-1"], "pasta: Invalid MTU: -1".into()),
        (
            PASTA,
            vec!["-a", "300.1.1.1"],
            "pasta: Invalid address: 300.1.1.1".into(),
        ),
        (
            PASTA,
            vec!["-a", "127.0.0.1"],
            "pasta: Invalid address: 127.0.0.1".into(),
        ),
        (
            PASTA,
            vec!["-a", "0.0.0.0"],
            "pasta: Invalid address: 0.0.0.0".into(),
        ),
        (
            PASTA,
            vec!["-a", "224.0.0.1"],
            "pasta: Invalid address: 224.0.0.1".into(),
        ),
        (
            PASTA,
            vec!["-a", "192.0.2.1/33"],
            "pasta: Invalid address: 192.0.2.1/33".into(),
        ),
        (
            PASTA,
            vec!["-a", "::1"],
            "pasta: Invalid address: ::1".into(),
        ),
        (
            PASTA,
            vec!["-n", "255.0.255.0"],
            "pasta: Invalid netmask: 255.0.255.0".into(),
        ),
        (PASTA, vec!["-n", "33"], "pasta: Invalid netmask: 33".into()),
        (
            PASTA,
            vec!["-M", "02:00"],
            "pasta: Invalid MAC address: 02:00".into(),
        ),
        (
            PASTA,
            vec!["--ns-mac-addr", "zz:00:00:00:00:00"],
            "pasta: Invalid MAC address: zz:00:00:00:00:00".into(),
        ),
        (
            PASTA,
            vec!["-g", "127.0.0.1"],
            "pasta: Invalid gateway address: 127.0.0.1".into(),
        ),
        (
            PASTA,
            vec!["-g", "gw"],
            "pasta: Invalid gateway address: gw".into(),
        ),
        (
            PASTA,
            vec!["-o", "224.0.0.1"],
            "pasta: Invalid outbound address: 224.0.0.1".into(),
        ),
        (
            PASTA,
            vec!["-D", "resolver"],
            "pasta: Invalid DNS address: resolver".into(),
        ),
        (
            PASTA,
            vec!["--dns-forward", "127.0.0.1"],
            "pasta: Invalid DNS forwarding address: 127.0.0.1".into(),
        ),
        (
            PASTA,
            vec!["--dns-host", "0.0.0.0"],
            "pasta: Invalid host nameserver address: 0.0.0.0".into(),
        ),
        (
            PASTA,
            vec!["--map-host-loopback", "x"],
            "pasta: Invalid address to map to the host's loopback: x".into(),
        ),
        (
            PASTA,
            vec!["--map-guest-addr", "::"],
            "pasta: Invalid address to map to the guest's: ::".into(),
        ),
        (
            PASTA,
            vec!["-i", "abcdefghijklmnop"],
            "pasta: Invalid interface name: abcdefghijklmnop".into(),
        ),
        (
            PASTA,
            vec!["-I", "a/b"],
            "pasta: Invalid interface name: a/b".into(),
        ),
        (
            PASTA,
            vec!["--outbound-if4="],
            "pasta: Invalid interface name: ".into(),
        ),
        (
            PASTA,
            vec!["--log-size", "100"],
            "pasta: Invalid --log-size: 100".into(),
        ),
        (
            PASTA,
            vec!["--log-size", "1M"],
            "pasta: Invalid --log-size: 1M".into(),
        ),
        (
            PASTA,
            vec!["--runas", "1000:"],
            "pasta: Invalid --runas: 1000:".into(),
        ),
        (PASTA, vec!["-l", ""], "pasta: Invalid log file: ".into()),
        (PASST, vec!["-F", "1"], "passt: Invalid --fd: 1".into()),
        (PASST, vec!["-F", "x"], "passt: Invalid --fd: x".into()),
        (
            PASST,
            vec!["-s", &long],
            format!("passt: Invalid socket path: {long}"),
        ),
        (PASTA, vec!["0"], "pasta: Invalid PID: 0".into()),
        (
            PASTA,
            vec!["4294967296"],
            "pasta: Invalid PID: 4294967296".into(),
        ),
        (PASTA, vec!["-t", "80-22"], spec_err("80-22")),
        (PASTA, vec!["--tcp-ports=ssh"], spec_err("ssh")),
        (PASTA, vec!["-u", "22", "-u", "none"], {
            let mut f = FwdSpec::parse("22").unwrap();
            format!("pasta: {}", f.add("none").unwrap_err())
        }),
    ];
    for (mode, line, msg) in &cases {
        assert_eq!(&fail(*mode, line), msg, "{line:?}");
    }
    // Port spec errors keep their type.
    let e = Options::parse(PASTA, ["-t", "80-22"]).unwrap_err();
    assert!(matches!(e.kind(), OptionsErrorKind::Ports(_)));
    assert_eq!(e.program(), "pasta");
}

#[test]
fn cross_option_rules() {
    let cases: &[(Mode, &[&str], &str)] = &[
        (
            PASTA,
            &["-46"],
            "pasta: Options ipv4-only and ipv6-only are mutually exclusive",
        ),
        (
            PASST,
            &["-6", "--ipv4-only"],
            "passt: Options ipv4-only and ipv6-only are mutually exclusive",
        ),
        (
            PASST,
            &["-t", "auto"],
            "passt: 'auto' port forwarding is only allowed for pasta",
        ),
        (
            PASST,
            &["-u", "8000-8010,auto"],
            "passt: 'auto' port forwarding is only allowed for pasta",
        ),
        (
            PASTA,
            &["-T", "192.0.2.1/22"],
            "pasta: Listening address not allowed for -T: 192.0.2.1/22",
        ),
        (
            PASTA,
            &["-U", "%eth0/53"],
            "pasta: Listening address not allowed for -U: %eth0/53",
        ),
        (
            PASTA,
            &["--netns", "x", "1234"],
            "pasta: Both --netns and PID or command given",
        ),
        (
            PASTA,
            &["--netns", "x", "sh"],
            "pasta: Both --netns and PID or command given",
        ),
        (
            PASTA,
            &["--no-splice", "--host-lo-to-ns-lo"],
            "pasta: --host-lo-to-ns-lo is incompatible with --no-splice",
        ),
        (
            PASTA,
            &["--no-tcp", "-t", "22"],
            "pasta: TCP port forwarding requested but TCP is disabled",
        ),
        (
            PASTA,
            &["-T", "22", "--no-tcp"],
            "pasta: TCP port forwarding requested but TCP is disabled",
        ),
        (
            PASST,
            &["--no-udp", "-u", "53"],
            "passt: UDP port forwarding requested but UDP is disabled",
        ),
        (
            PASTA,
            &["-4", "-t", "::1/22"],
            "pasta: IPv6 is disabled, can't use -t [::1]/22",
        ),
        (
            PASTA,
            &["-6", "-u", "192.0.2.1/53"],
            "pasta: IPv4 is disabled, can't use -u 192.0.2.1/53",
        ),
        (
            PASTA,
            &["-a", "192.0.2.1/24", "-n", "24"],
            "pasta: Redundant prefix length specification: both -n and -a ADDR/LEN",
        ),
        (
            PASTA,
            &["-n", "24", "-a", "192.0.2.1/24"],
            "pasta: Redundant prefix length specification: both -n and -a ADDR/LEN",
        ),
        (
            PASTA,
            &["-6", "-m", "1000"],
            "pasta: MTU 1000 is too small for IPv6 (minimum 1280); use -4 for IPv4 only",
        ),
        (PASST, &["foo"], "passt: Extra non-option argument: foo"),
        (
            PASST,
            &["-f", "--", "-d"],
            "passt: Extra non-option argument: -d",
        ),
    ];
    for (mode, line, msg) in cases {
        assert_eq!(&fail(*mode, line), msg, "{line:?}");
    }
    // Allowed combinations.
    assert_eq!(
        run(PASTA, &["--no-tcp", "-t", "none"]).tcp_ports.mode(),
        FwdMode::None
    );
    let o = run(PASTA, &["-a", "192.0.2.1", "-n", "16"]);
    assert_eq!(o.prefix_len4, Some(16));
    let o = run(PASTA, &["-n", "16", "-a", "10.1.2.3"]);
    assert_eq!((o.addr4, o.prefix_len4), (Some(v4("10.1.2.3")), Some(16)));
    let o = run(PASTA, &["-n", "24", "-a", "2001:db8::1/64"]);
    assert_eq!((o.prefix_len4, o.prefix_len6), (Some(24), Some(64)));
    assert_eq!(run(PASTA, &["-4", "-m", "576"]).mtu, Some(576));
    assert_eq!(run(PASTA, &["-m", "68"]).mtu, Some(68));
}

#[test]
fn repeated_options() {
    // Per family, last wins.
    let o = run(
        PASTA,
        &[
            "-a",
            "192.0.2.1",
            "-a",
            "2001:db8::1",
            "-a",
            "198.51.100.1/28",
        ],
    );
    assert_eq!(o.addr4, Some(v4("198.51.100.1")));
    assert_eq!(o.prefix_len4, Some(28));
    assert_eq!(o.addr6, Some(v6("2001:db8::1")));
    let o = run(
        PASTA,
        &["-g", "192.0.2.1", "-g", "fe80::1", "-g", "192.0.2.254"],
    );
    assert_eq!(
        (o.gateway4, o.gateway6),
        (Some(v4("192.0.2.254")), Some(v6("fe80::1")))
    );
    // The classful default follows the last -a.
    let o = run(PASTA, &["-a", "10.0.0.1/20", "-a", "172.16.0.1"]);
    assert_eq!(o.prefix_len4, Some(20));
    let o = run(PASTA, &["-a", "172.16.0.1"]);
    assert_eq!(o.prefix_len4, Some(16));
    // -D and -S add up; none clears what came before.
    let o = run(
        PASST,
        &[
            "-D",
            "192.0.2.53",
            "-D",
            "2001:db8::53",
            "-D",
            "198.51.100.53",
        ],
    );
    let dns: Vec<IpAddr> = ["192.0.2.53", "2001:db8::53", "198.51.100.53"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(o.dns, Some(dns));
    let o = run(
        PASST,
        &[
            "-D",
            "192.0.2.53",
            "--dns-forward",
            "192.0.2.3",
            "-D",
            "none",
            "-D",
            "2001:db8::53",
        ],
    );
    assert_eq!(o.dns, Some(vec!["2001:db8::53".parse().unwrap()]));
    assert_eq!(o.dns_forward4, None);
    let o = run(PASST, &["-D", "none", "--dns-forward", "192.0.2.3"]);
    assert_eq!(
        (o.dns, o.dns_forward4),
        (Some(vec![]), Some(v4("192.0.2.3")))
    );
    let o = run(PASST, &["-S", "a.example b.example", "-S", "c.example"]);
    assert_eq!(
        o.search,
        Some(vec![
            "a.example".into(),
            "b.example".into(),
            "c.example".into()
        ])
    );
    let o = run(PASST, &["-S", "a.example", "-S", "none"]);
    assert_eq!(o.search, Some(vec![]));
    // Port specs add up.
    let o = run(PASST, &["-t", "22", "-t80", "--tcp-ports=443:8443"]);
    let mut t = FwdSpec::parse("22").unwrap();
    t.add("80").unwrap();
    t.add("443:8443").unwrap();
    assert_eq!(o.tcp_ports, t);
    // Logging levels: the last one wins.
    let o = run(PASST, &["--trace", "-q"]);
    assert!(o.quiet && !o.debug && !o.trace);
    let o = run(PASST, &["-q", "-d"]);
    assert!(o.debug && !o.quiet);
    // -s and -F replace each other.
    let o = run(PASST, &["-F", "5", "-s", "/tmp/s"]);
    assert_eq!(
        (o.fd, o.socket.as_deref(), o.one_off),
        (None, Some("/tmp/s"), true)
    );
    // --userns and --netns-only replace each other.
    let o = run(PASTA, &["--userns", "/u", "--netns-only"]);
    assert_eq!((o.userns, o.netns_only), (None, true));
    let o = run(PASTA, &["--netns-only", "--userns", "/u", "--netns", "n"]);
    assert_eq!((o.userns.as_deref(), o.netns_only), (Some("/u"), false));
    // --map-host-loopback: an address after none is kept.
    let o = run(
        PASTA,
        &[
            "--map-host-loopback",
            "none",
            "--map-host-loopback",
            "192.0.2.9",
        ],
    );
    assert_eq!(o.map_host_loopback4, MapAddr::To(v4("192.0.2.9")));
    assert_eq!(o.map_host_loopback6, MapAddr::Disabled);
    assert!(o.no_map_gw);
}

#[test]
fn argument_order() {
    // passt: options anywhere (GNU permutation); non-options are refused.
    let o = run(PASST, &["-f", "-t", "22", "--quiet"]);
    assert!(o.foreground && o.quiet);
    assert_eq!(
        fail(PASST, &["-f", "x", "-q"]),
        "passt: Extra non-option argument: x"
    );
    assert_eq!(Options::parse(PASST, ["x", "--help"]), Ok(Parsed::Help));

    // pasta: the first non-option ends the options.
    let o = run(PASTA, &["--config-net", "ip", "-6", "addr", "show"]);
    assert!(o.config_net && !o.ipv6_only);
    assert_eq!(o.command, ["ip", "-6", "addr", "show"]);
    assert_eq!(o.pid, None);
    let o = run(PASTA, &["-f", "sh", "-c", "echo --version"]);
    assert_eq!(o.command, ["sh", "-c", "echo --version"]);
    let o = run(PASTA, &["1234", "--config-net"]);
    assert_eq!(
        (o.pid, o.command.clone(), o.config_net),
        (
            None,
            vec!["1234".to_owned(), "--config-net".to_owned()],
            false
        )
    );
    let o = run(PASTA, &["--config-net", "1234"]);
    assert_eq!((o.pid, o.command.len()), (Some(1234), 0));
    // After --, everything is the command, even a number or an option.
    let o = run(PASTA, &["--config-net", "--", "1234"]);
    assert_eq!((o.pid, o.command.clone()), (None, vec!["1234".to_owned()]));
    let o = run(PASTA, &["--", "-q", "x"]);
    assert_eq!(o.command, ["-q", "x"]);
    assert!(!o.quiet);
    // A lone "-" is an argument; "--" after the command belongs to it.
    assert_eq!(run(PASTA, &["-"]).command, ["-"]);
    assert_eq!(run(PASTA, &["env", "--", "x"]).command, ["env", "--", "x"]);
    // Nothing at all: the default shell.
    let o = run(PASTA, &[]);
    assert_eq!(o, Options::new(PASTA));
    assert_eq!(run(PASST, &[]), Options::new(PASST));
}

/// A dual-stack configuration as the host-defaults side would build it.
fn host_config() -> Config {
    Config {
        mode: PASST,
        ip4: Some(Ip4Config {
            addr: v4("192.0.2.10"),
            prefix_len: 24,
            gateway: v4("192.0.2.1"),
            map_host_loopback: Some(v4("192.0.2.1")),
            map_guest_addr: None,
            dns: vec![v4("192.0.2.53")],
            dns_forward: None,
            dns_host: None,
        }),
        ip6: Some(Ip6Config {
            addr: v6("2001:db8::10"),
            prefix_len: 64,
            gateway: v6("fe80::1"),
            our_link_local: v6("fe80::1"),
            map_host_loopback: Some(v6("fe80::1")),
            map_guest_addr: None,
            dns: vec![v6("2001:db8::53")],
            dns_forward: None,
            dns_host: None,
        }),
        search: vec!["host.example".into()],
        ..Config::default()
    }
}

/// `host_config()` after the options of `line`.
fn overridden(mode: Mode, line: &[&str]) -> Config {
    let mut c = host_config();
    run(mode, line).overrides(&mut c).unwrap();
    c
}

#[test]
fn no_options_change_only_defaults() {
    // passt: nothing changes but the mode.
    let c = overridden(PASST, &[]);
    assert_eq!(c, host_config());
    // pasta: DNS and search are not offered; all four directions are auto.
    let c = overridden(PASTA, &[]);
    let mut expect = host_config();
    expect.mode = PASTA;
    expect
        .services
        .remove(Services::DHCP_DNS | Services::DHCP_SEARCH);
    let auto = FwdSpec::parse("auto").unwrap();
    expect.fwd.tcp_in = auto.clone();
    expect.fwd.udp_in = auto.clone();
    expect.fwd.tcp_out = auto.clone();
    expect.fwd.udp_out = auto;
    // pasta splices loopback connections unless told not to.
    expect.fwd.splice = true;
    assert_eq!(c, expect);
    let c = overridden(PASTA, &["--no-splice"]);
    expect.fwd.splice = false;
    assert_eq!(c, expect);
}

#[test]
fn overrides_change_each_field() {
    let c = overridden(
        PASST,
        &[
            "-a",
            "198.51.100.7",
            "-a",
            "2001:db8:1::7/56",
            "-g",
            "198.51.100.1",
            "-g",
            "fe80::2",
            "-m",
            "9000",
            "-M",
            "02:00:00:00:00:aa",
            "-D",
            "198.51.100.53",
            "--dns-forward",
            "198.51.100.3",
            "--dns-forward",
            "fd00::3",
            "-S",
            "a.example b.example",
            "--map-guest-addr",
            "198.51.100.8",
            "--map-guest-addr",
            "fd00::8",
        ],
    );
    let ip4 = c.ip4.as_ref().unwrap();
    assert_eq!(ip4.addr, v4("198.51.100.7"));
    assert_eq!(ip4.prefix_len, 24, "class C default");
    assert_eq!(ip4.gateway, v4("198.51.100.1"));
    assert_eq!(
        ip4.map_host_loopback,
        Some(v4("198.51.100.1")),
        "follows -g"
    );
    assert_eq!(ip4.map_guest_addr, Some(v4("198.51.100.8")));
    assert_eq!(ip4.dns, [v4("198.51.100.53")]);
    assert_eq!(ip4.dns_forward, Some(v4("198.51.100.3")));
    let ip6 = c.ip6.as_ref().unwrap();
    assert_eq!(ip6.addr, v6("2001:db8:1::7"));
    assert_eq!(
        ip6.prefix_len, 64,
        "the man page: /64 whatever the length given"
    );
    assert_eq!(ip6.gateway, v6("fe80::2"));
    assert_eq!(ip6.our_link_local, v6("fe80::2"));
    assert_eq!(ip6.map_host_loopback, Some(v6("fe80::2")));
    assert_eq!(ip6.map_guest_addr, Some(v6("fd00::8")));
    assert_eq!(ip6.dns, [v6("2001:db8::53")], "no IPv6 -D: the host's stay");
    assert_eq!(ip6.dns_forward, Some(v6("fd00::3")));
    assert_eq!(c.mtu, 9000);
    assert_eq!(c.our_mac, MacAddr([2, 0, 0, 0, 0, 0xaa]));
    assert_eq!(c.search, ["a.example", "b.example"]);
    assert_eq!(c.guest_mac, None);
    assert_eq!(c.validate(), Ok(()));

    // A global IPv6 gateway is no RA source.
    let c = overridden(PASST, &["-g", "2001:db8::1"]);
    let ip6 = c.ip6.as_ref().unwrap();
    assert_eq!(
        (ip6.gateway, ip6.our_link_local),
        (v6("2001:db8::1"), v6("fe80::1"))
    );

    // -n alone changes the prefix of the host's address.
    let c = overridden(PASTA, &["-n", "255.255.0.0"]);
    assert_eq!(c.ip4.as_ref().unwrap().prefix_len, 16);
    assert_eq!(c.ip4.as_ref().unwrap().addr, v4("192.0.2.10"));

    // --ns-mac-addr is the guest's MAC address.
    let c = overridden(PASTA, &["--ns-mac-addr", "02:00:00:00:00:07"]);
    assert_eq!(c.guest_mac, Some(MacAddr([2, 0, 0, 0, 0, 7])));
    assert_eq!(c.our_mac, passt_core::config::DEFAULT_OUR_MAC);
}

#[test]
fn overrides_of_families() {
    let c = overridden(PASTA, &["-4"]);
    assert!(c.ip4.is_some() && c.ip6.is_none());
    let c = overridden(PASTA, &["--ipv6-only", "-a", "192.0.2.99"]);
    assert!(
        c.ip4.is_none() && c.ip6.is_some(),
        "IPv4 settings are ignored"
    );
    // An MTU below 1280 needs IPv4 only.
    let mut c = host_config();
    let o = run(PASTA, &["-m", "1000"]);
    assert_eq!(
        o.overrides(&mut c).unwrap_err().to_string(),
        "pasta: MTU 1000 is too small for IPv6 (minimum 1280); use -4 for IPv4 only"
    );
    let c = overridden(PASTA, &["-4", "-m", "1000"]);
    assert_eq!(c.mtu, 1000);
    // A port spec for a family the host lacks.
    let mut c = host_config();
    c.ip6 = None;
    let o = run(PASST, &["-t", "[2001:db8::1]/22"]);
    assert_eq!(
        o.overrides(&mut c).unwrap_err().to_string(),
        "passt: IPv6 is disabled, can't use -t [2001:db8::1]/22"
    );
}

#[test]
fn overrides_of_mappings() {
    let gw4 = Some(v4("192.0.2.1"));
    let c = overridden(PASST, &["--no-map-gw"]);
    assert_eq!(c.ip4.as_ref().unwrap().map_host_loopback, None);
    assert_eq!(c.ip6.as_ref().unwrap().map_host_loopback, None);
    let c = overridden(PASST, &["--map-host-loopback", "none"]);
    assert_eq!(c.ip4.as_ref().unwrap().map_host_loopback, None);
    assert_eq!(c.ip6.as_ref().unwrap().map_host_loopback, None);
    let c = overridden(PASST, &["--no-map-gw", "--map-host-loopback", "192.0.2.77"]);
    assert_eq!(
        c.ip4.as_ref().unwrap().map_host_loopback,
        Some(v4("192.0.2.77"))
    );
    assert_eq!(c.ip6.as_ref().unwrap().map_host_loopback, None);
    let c = overridden(PASST, &["--map-host-loopback", "fd00::77"]);
    assert_eq!(c.ip4.as_ref().unwrap().map_host_loopback, gw4);
    assert_eq!(
        c.ip6.as_ref().unwrap().map_host_loopback,
        Some(v6("fd00::77"))
    );
    // The host side found no gateway to map: without -g it stays so.
    let mut c = host_config();
    c.ip4.as_mut().unwrap().map_host_loopback = None;
    run(PASST, &["-a", "192.0.2.11"]).overrides(&mut c).unwrap();
    assert_eq!(c.ip4.as_ref().unwrap().map_host_loopback, None);
    // --map-guest-addr none clears what the host side set.
    let mut c = host_config();
    c.ip4.as_mut().unwrap().map_guest_addr = Some(v4("192.0.2.250"));
    run(PASST, &["--map-guest-addr", "none"])
        .overrides(&mut c)
        .unwrap();
    assert_eq!(c.ip4.as_ref().unwrap().map_guest_addr, None);
}

#[test]
fn overrides_of_dns() {
    let c = overridden(PASST, &["-D", "none"]);
    assert!(c.ip4.as_ref().unwrap().dns.is_empty());
    assert!(c.ip6.as_ref().unwrap().dns.is_empty());
    let c = overridden(PASST, &["-D", "2001:db8::99", "-D", "2001:db8::98"]);
    assert_eq!(c.ip4.as_ref().unwrap().dns, [v4("192.0.2.53")]);
    assert_eq!(
        c.ip6.as_ref().unwrap().dns,
        [v6("2001:db8::99"), v6("2001:db8::98")]
    );
    let c = overridden(PASST, &["-D", "none", "--dns-forward", "192.0.2.3"]);
    assert!(c.ip4.as_ref().unwrap().dns.is_empty());
    assert_eq!(c.ip4.as_ref().unwrap().dns_forward, Some(v4("192.0.2.3")));
    let c = overridden(PASST, &["-S", "none"]);
    assert!(c.search.is_empty());
}

#[test]
fn overrides_of_services() {
    let all = Services::all();
    let cases: &[(Mode, &[&str], Services)] = &[
        (PASST, &["--no-dhcp"], all - Services::DHCP),
        (PASST, &["--no-ndp"], all - Services::NDP - Services::RA),
        (PASST, &["--no-icmp"], all - Services::ICMP),
        (PASST, &["--no-tcp"], all - Services::TCP),
        (PASST, &["--no-udp"], all - Services::UDP),
        (PASST, &["--no-ra"], all - Services::RA),
        (PASST, &["--no-dhcpv6"], all - Services::DHCPV6),
        (PASST, &["--no-dhcp-dns"], all - Services::DHCP_DNS),
        (PASST, &["--no-dhcp-search"], all - Services::DHCP_SEARCH),
        (PASTA, &[], all - Services::DHCP_DNS - Services::DHCP_SEARCH),
        (PASTA, &["--dhcp-dns"], all - Services::DHCP_SEARCH),
        (PASTA, &["--dhcp-search", "--dhcp-dns"], all),
        (
            PASST,
            &[
                "--no-dhcp",
                "--no-ndp",
                "--no-dhcpv6",
                "--no-dhcp-dns",
                "--no-dhcp-search",
            ],
            Services::ARP | Services::TCP | Services::UDP | Services::ICMP,
        ),
    ];
    for (mode, line, expect) in cases {
        assert_eq!(overridden(*mode, line).services, *expect, "{line:?}");
    }
    // Services the host side switched off stay off.
    let mut c = host_config();
    c.services.remove(Services::DHCP);
    run(PASST, &[]).overrides(&mut c).unwrap();
    assert!(!c.services.contains(Services::DHCP));
}

#[test]
fn overrides_of_forwarding() {
    let c = overridden(PASST, &["-t", "22", "-u", "53"]);
    assert_eq!(c.fwd.tcp_in, FwdSpec::parse("22").unwrap());
    assert_eq!(c.fwd.udp_in, FwdSpec::parse("53").unwrap());
    assert_eq!(c.fwd.tcp_out, FwdSpec::default());
    assert_eq!(c.fwd.udp_out, FwdSpec::default());
    let c = overridden(PASST, &[]);
    assert_eq!(c.fwd.tcp_in.mode(), FwdMode::None);
    let c = overridden(PASTA, &["-t", "22", "-U", "none"]);
    assert_eq!(c.fwd.tcp_in, FwdSpec::parse("22").unwrap());
    assert_eq!(c.fwd.udp_in, FwdSpec::parse("auto").unwrap());
    assert_eq!(c.fwd.tcp_out, FwdSpec::parse("auto").unwrap());
    assert_eq!(c.fwd.udp_out, FwdSpec::parse("none").unwrap());
    // A protocol switched off gets no default.
    let c = overridden(PASTA, &["--no-tcp"]);
    assert_eq!(c.fwd.tcp_in.mode(), FwdMode::None);
    assert_eq!(c.fwd.tcp_out.mode(), FwdMode::None);
    assert_eq!(c.fwd.udp_in.mode(), FwdMode::Auto);
}

/// A valid value for an option's argument as `--help` names it.
fn sample_value(long: &str, arg: &str) -> &'static str {
    match (long, arg) {
        ("mac-addr" | "ns-mac-addr", _) => "02:00:00:00:00:07",
        (_, "ADDR" | "ADDR[/LEN]") => "192.0.2.10",
        (_, "MASK") => "24",
        (_, "MTU") => "1500",
        (_, "SIZE") => "4096",
        (_, "FD") => "5",
        (_, "SPEC") => "8080",
        (_, "NAME") => "eth0",
        (_, "LIST") => "example.org",
        (_, "UID[:GID]") => "1000",
        _ => "/tmp/some-path",
    }
}

/// Every option `--help` lists is accepted by the parser, in its long form
/// and its short one, with a valid value where it takes one: the help
/// describes only what the binaries take (the man page test,
/// tests/manpage.rs, checks that the page documents each of them).
#[test]
fn every_option_in_help_is_accepted_by_the_parser() {
    for mode in [PASST, PASTA] {
        let mut seen = 0;
        for line in usage(mode).lines() {
            if !line.trim_start().starts_with('-') {
                continue;
            }
            // The option and its argument, before the help text (which
            // starts after two spaces or more).
            let head = line.trim_start().split("  ").next().unwrap_or("");
            let words: Vec<&str> = head.split_whitespace().collect();
            let Some(at) = words.iter().position(|w| w.starts_with("--")) else {
                continue;
            };
            let long = words[at].trim_start_matches("--").trim_end_matches(',');
            let short = words[0]
                .strip_prefix('-')
                .filter(|w| w.len() == 2 && w.ends_with(','))
                .map(|w| &w[..1]);
            let arg = words.get(at + 1).copied();
            let mut forms = vec![vec![format!("--{long}")]];
            if let Some(c) = short {
                forms.push(vec![format!("-{c}")]);
            }
            for mut form in forms {
                if let Some(a) = arg {
                    form.push(sample_value(long, a).to_owned());
                }
                let r = Options::parse(mode, &form);
                assert!(r.is_ok(), "{mode:?} {form:?}: {r:?}");
                seen += 1;
            }
        }
        assert!(seen > 50, "{mode:?}: only {seen} options found in --help");
    }
}

/// Options of the original that are refused say so, naming the option
/// and why; they are not in `--help`.
#[test]
fn refused_options_name_themselves_and_the_reason() {
    for (mode, line, msg) in [
        (PASTA, vec!["--stats", "5"], "pasta: --stats is not supported by this implementation: no event statistics are kept per event type"),
        (PASST, vec!["--stats=5"], "passt: --stats is not supported by this implementation: no event statistics are kept per event type"),
        (PASTA, vec!["--splice-only"], "pasta: --splice-only is not supported by this implementation: pasta always creates its tap device"),
        (PASST, vec!["--vhost-user"], "passt: --vhost-user is not supported by this implementation: there is no vhost-user back-end yet (use the stream socket)"),
        (PASST, vec!["--repair-path", "/tmp/r"], "passt: --repair-path is not supported by this implementation: there is no live migration yet"),
        (PASST, vec!["--migrate-exit"], "passt: --migrate-exit is not supported by this implementation: there is no live migration yet"),
        (PASST, vec!["--migrate-no-linger"], "passt: --migrate-no-linger is not supported by this implementation: there is no live migration yet"),
        (PASTA, vec!["--chroot-fallback"], "pasta: --chroot-fallback is not supported by this implementation: a pivot_root the kernel refuses is skipped and logged, never replaced by chroot"),
    ] {
        assert_eq!(fail(mode, &line), msg, "{line:?}");
    }
    for mode in [PASST, PASTA] {
        let help = usage(mode);
        for name in [
            "--stats",
            "--splice-only",
            "--vhost-user",
            "--repair-path",
            "--migrate-exit",
            "--migrate-no-linger",
            "--chroot-fallback",
        ] {
            assert!(!help.contains(name), "{mode:?} --help lists {name}");
        }
    }
    // -c/--conf-path is accepted (the configuration socket), and listed.
    assert_eq!(
        run(PASST, &["-c", "/tmp/c"]).conf_path.as_deref(),
        Some("/tmp/c")
    );
    assert_eq!(
        run(PASTA, &["--conf-path", "/tmp/c"]).conf_path.as_deref(),
        Some("/tmp/c")
    );
    for mode in [PASST, PASTA] {
        assert!(usage(mode).contains("--conf-path"), "{mode:?}");
    }
    assert_eq!(
        fail(PASTA, &["-H", "two words"]),
        "pasta: Invalid hostname: two words"
    );
    assert_eq!(
        fail(PASTA, &["--fqdn", "a..b"]),
        "pasta: Invalid FQDN: a..b"
    );
    // A port spec's target address: -t and -u, not -T or -U (whose other
    // side is the host's loopback).
    assert_eq!(
        fail(PASTA, &["-U", "0.0.0.0/53:192.0.2.5"]),
        "pasta: Listening address not allowed for -U: 0.0.0.0/53:192.0.2.5"
    );
    // A listening interface is refused, not widened to every interface.
    assert_eq!(
        fail(PASTA, &["-t", "127.0.0.1%lo/8080"]),
        "pasta: Listening interface not supported by this implementation for -t: 127.0.0.1%lo/8080"
    );
    assert_eq!(
        fail(PASST, &["-u", "%eth0/53"]),
        "passt: Listening interface not supported by this implementation for -u: %eth0/53"
    );
    let o = run(PASTA, &["-u", "0.0.0.0/53:192.0.2.5"]);
    assert_eq!(o.udp_ports.rules().len(), 1);
    let o = run(
        PASST,
        &[
            "-t",
            "0.0.0.0/5000:192.0.2.5",
            "-t",
            "*/6000",
            "-t",
            "7000,~8000",
        ],
    );
    assert_eq!(o.tcp_ports.rules().len(), 3);
    let to = o.tcp_ports.lookup(5000).unwrap().1.to_addr;
    assert_eq!(to, Some(IpAddr::V4(v4("192.0.2.5"))));
    assert_eq!(o.tcp_ports.lookup(6000).unwrap().1.addr, None);
}

/// The options that used to be accepted and ignored reach the
/// configuration: `-o`, `--outbound-if4/6`, `--freebind`, `-H`,
/// `--fqdn`, `-m 0`, `--host-lo-to-ns-lo`; the deprecated ones warn.
#[test]
fn options_reach_the_configuration() {
    let c = overridden(
        PASTA,
        &[
            "-o",
            "192.0.2.77",
            "-o",
            "2001:db8::77",
            "--outbound-if4",
            "eth1",
            "--outbound-if6",
            "eth2",
            "--freebind",
            "-H",
            "vm1",
            "--fqdn",
            "vm1.example.org",
            "-m",
            "0",
            "--host-lo-to-ns-lo",
        ],
    );
    assert_eq!(c.outbound.addr4, Some(v4("192.0.2.77")));
    assert_eq!(c.outbound.addr6, Some(v6("2001:db8::77")));
    assert_eq!(c.outbound.ifname4.as_deref(), Some("eth1"));
    assert_eq!(c.outbound.ifname6.as_deref(), Some("eth2"));
    assert!(c.outbound.freebind);
    assert_eq!(c.hostname.as_deref(), Some("vm1"));
    assert_eq!(c.fqdn.as_deref(), Some("vm1.example.org"));
    assert!(!c.assign_mtu);
    assert_eq!(c.mtu, 65520, "the default still bounds frames");
    assert!(c.fwd.host_lo_to_ns_lo && c.fwd.splice);
    // --config-net: no router advertisements, as the original.
    assert!(!overridden(PASTA, &["--config-net"])
        .services
        .contains(Services::RA));
    assert!(overridden(PASTA, &[]).services.contains(Services::RA));
    let d = overridden(PASTA, &[]);
    assert!(d.assign_mtu && !d.fwd.host_lo_to_ns_lo && d.outbound == Default::default());
    assert_eq!(
        run(PASTA, &["--no-copy-routes", "--no-copy-addrs"]).warnings(),
        [
            "--no-copy-routes is deprecated and will be dropped soon",
            "--no-copy-addrs is deprecated and will be dropped soon"
        ]
    );
    assert_eq!(
        run(PASST, &["-e"]).warnings(),
        ["--stderr is deprecated and will be dropped soon"]
    );
    assert!(run(PASTA, &[]).warnings().is_empty());
}
