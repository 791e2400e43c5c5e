//! Command line to [`Config`]: the temporary options of this first driver.
//!
//! Until the real option parser (`passt_core::options`) and the host reader
//! (`passt_core::host`) land, the guest's addresses are given explicitly with
//! `--test-ip4`, `--test-ip6`, `--test-dns` and `--test-search` instead of
//! being copied from the host. Everything the rest of the binary needs is in
//! [`Setup`], built by [`from_env`] and nothing else: replacing this file is
//! all it takes to switch parsers.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use argh::FromArgs;
use passt_core::addr::MacAddr;
use passt_core::config::{Config, Ip4Config, Ip6Config, Mode, DEFAULT_MTU};

use crate::Error;

/// Directory where `ip netns add` keeps named namespaces.
const NETNS_RUN_DIR: &str = "/run/netns";

/// Tap device name when `-I` is not given.
pub(crate) const DEFAULT_IFNAME: &str = "tap0";

/// pasta: connects a network namespace, through a tap device, to the host's
/// network (first driver: local L2 services only, no host sockets yet).
#[derive(FromArgs)]
struct Args {
    /// network namespace to join: a path, or a name under /run/netns
    #[argh(option)]
    netns: Option<String>,

    /// name of the tap device in the namespace (default: tap0)
    #[argh(option, short = 'I', long = "ns-ifname")]
    ns_ifname: Option<String>,

    /// MAC address of the tap device (default: the kernel's)
    #[argh(option, long = "ns-mac-addr", from_str_fn(parse_mac))]
    ns_mac_addr: Option<MacAddr>,

    /// guest IPv4 as ADDR/PREFIX,GATEWAY (temporary option)
    #[argh(option, long = "test-ip4", from_str_fn(parse_ip4))]
    test_ip4: Option<(Ipv4Addr, u8, Ipv4Addr)>,

    /// guest IPv6 as ADDR/PREFIX,GATEWAY where the gateway is link-local
    /// (temporary option)
    #[argh(option, long = "test-ip6", from_str_fn(parse_ip6))]
    test_ip6: Option<(Ipv6Addr, u8, Ipv6Addr)>,

    /// DNS server offered to the guest, IPv4 or IPv6 (repeatable; temporary
    /// option)
    #[argh(option, long = "test-dns", from_str_fn(parse_ip))]
    test_dns: Vec<IpAddr>,

    /// DNS search domain offered to the guest (repeatable; temporary option)
    #[argh(option, long = "test-search")]
    test_search: Vec<String>,

    /// forward host TCP PORT to the namespace (repeatable; temporary option
    /// until -t is parsed here)
    #[argh(option, long = "test-tcp-fwd")]
    test_tcp_fwd: Vec<u16>,

    /// MTU offered to the guest (default: 65520)
    #[argh(option, short = 'm', long = "mtu", from_str_fn(parse_mtu))]
    mtu: Option<u16>,

    /// print debug messages to stderr
    #[argh(switch, short = 'd', long = "debug")]
    debug: bool,

    /// stay in the foreground (always the case in this build)
    #[argh(switch, short = 'f', long = "foreground")]
    foreground: bool,

    /// write every frame to FILE in pcap format
    #[argh(option, long = "pcap")]
    pcap: Option<PathBuf>,

    /// print the version and exit
    #[argh(switch)]
    version: bool,
}

/// Everything the driver needs, from the command line.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The translator's configuration, not yet validated (the translator
    /// does that).
    pub(crate) core: Config,
    /// The namespace to join: a path to a namespace file.
    pub(crate) netns: PathBuf,
    /// Tap device name.
    pub(crate) ifname: String,
    /// MAC address to give the tap device, if any.
    pub(crate) ns_mac: Option<MacAddr>,
    /// Debug messages on stderr.
    pub(crate) debug: bool,
    /// Capture file, if any.
    pub(crate) pcap: Option<PathBuf>,
}

/// Parse the process's command line into a [`Setup`].
///
/// `--help`, `--version` and syntax errors are handled here (argh prints
/// and exits: status 0 for help, 1 for errors).
///
/// # Errors
/// An [`Error`] for values that parse but do not fit together.
pub(crate) fn from_env() -> Result<Setup, Error> {
    let args: Args = argh::from_env();
    if args.version {
        println!("pasta {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
    build(args)
}

/// Turn parsed options into a [`Setup`].
fn build(args: Args) -> Result<Setup, Error> {
    let _ = args.foreground; // daemonising comes later: always foreground
    let netns = match args.netns {
        Some(n) if n.contains('/') => PathBuf::from(n),
        Some(n) if !n.is_empty() && n != "." && n != ".." => PathBuf::from(NETNS_RUN_DIR).join(n),
        Some(n) => return Err(Error::msg(format!("invalid namespace name {n:?}"))),
        None => {
            return Err(Error::msg(
                "--netns PATH|NAME is required (new namespaces come later)",
            ))
        }
    };
    let ifname = args.ns_ifname.unwrap_or_else(|| DEFAULT_IFNAME.to_owned());
    // IFNAMSIZ is 16 with the terminating NUL.
    if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ', '\0']) {
        return Err(Error::msg(format!("invalid interface name {ifname:?}")));
    }
    if let Some(mac) = args.ns_mac_addr {
        if mac.is_multicast() || mac.is_zero() {
            return Err(Error::msg(format!("--ns-mac-addr {mac} is not unicast")));
        }
    }

    let (dns4, dns6): (Vec<IpAddr>, Vec<IpAddr>) =
        args.test_dns.into_iter().partition(IpAddr::is_ipv4);
    let ip4 = args.test_ip4.map(|(addr, prefix_len, gateway)| Ip4Config {
        addr,
        prefix_len,
        gateway,
        map_host_loopback: Some(gateway),
        map_guest_addr: None,
        dns: dns4
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect(),
        dns_forward: None,
    });
    let ip6 = args.test_ip6.map(|(addr, prefix_len, gateway)| Ip6Config {
        addr,
        prefix_len,
        gateway,
        our_link_local: gateway,
        map_host_loopback: Some(gateway),
        map_guest_addr: None,
        dns: dns6
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(a) => Some(*a),
                IpAddr::V4(_) => None,
            })
            .collect(),
        dns_forward: None,
    });
    if ip4.is_none() && ip6.is_none() {
        return Err(Error::msg(
            "give --test-ip4 and/or --test-ip6 (host addresses are not read yet)",
        ));
    }
    if ip4.is_none() && !dns4.is_empty() {
        return Err(Error::msg("IPv4 --test-dns needs --test-ip4"));
    }
    if ip6.is_none() && !dns6.is_empty() {
        return Err(Error::msg("IPv6 --test-dns needs --test-ip6"));
    }

    let mut fwd = passt_core::config::Forwarding::default();
    for p in &args.test_tcp_fwd {
        fwd.tcp_in
            .add(&p.to_string())
            .map_err(|e| Error::msg(format!("--test-tcp-fwd {p}: {e}")))?;
    }
    let core = Config {
        mode: Mode::Pasta,
        fwd,
        guest_mac: args.ns_mac_addr,
        mtu: args.mtu.unwrap_or(DEFAULT_MTU),
        ip4,
        ip6,
        search: args.test_search,
        ..Config::default()
    };
    Ok(Setup {
        core,
        netns,
        ifname,
        ns_mac: args.ns_mac_addr,
        debug: args.debug,
        pcap: args.pcap,
    })
}

fn parse_mac(s: &str) -> Result<MacAddr, String> {
    s.parse::<MacAddr>()
        .map_err(|_| format!("{s:?} is not a MAC address (like 9a:55:9a:55:9a:55)"))
}

fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| format!("{s:?} is not an IP address"))
}

fn parse_mtu(s: &str) -> Result<u16, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an MTU (a number up to 65520)"))
}

/// Split `ADDR/PREFIX,GATEWAY` and check the prefix length against `max`.
fn split_spec(s: &str, max: u8) -> Result<(&str, u8, &str), String> {
    let bad = || format!("{s:?} is not ADDR/PREFIX,GATEWAY");
    let (net, gw) = s.split_once(',').ok_or_else(bad)?;
    let (addr, prefix) = net.split_once('/').ok_or_else(bad)?;
    let prefix: u8 = prefix
        .parse()
        .map_err(|_| format!("{prefix:?} is not a prefix length"))?;
    if prefix > max {
        return Err(format!("prefix length /{prefix} is longer than {max}"));
    }
    Ok((addr, prefix, gw))
}

fn parse_ip4(s: &str) -> Result<(Ipv4Addr, u8, Ipv4Addr), String> {
    let (addr, prefix, gw) = split_spec(s, 32)?;
    let addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
    let gw = gw
        .parse()
        .map_err(|_| format!("{gw:?} is not an IPv4 address"))?;
    Ok((addr, prefix, gw))
}

fn parse_ip6(s: &str) -> Result<(Ipv6Addr, u8, Ipv6Addr), String> {
    let (addr, prefix, gw) = split_spec(s, 128)?;
    let addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv6 address"))?;
    let gw: Ipv6Addr = gw
        .parse()
        .map_err(|_| format!("{gw:?} is not an IPv6 address"))?;
    // fe80::/10 (RFC 4291 §2.5.6).
    if gw.segments()[0] & 0xffc0 != 0xfe80 {
        return Err(format!("gateway {gw} is not link-local (fe80::/10)"));
    }
    Ok((addr, prefix, gw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Setup, String> {
        let a = Args::from_args(&["pasta"], list).map_err(|e| e.output)?;
        build(a).map_err(|e| e.to_string())
    }

    #[test]
    fn test_options_become_a_config() {
        let s = args(&[
            "--netns",
            "guest",
            "-I",
            "eth9",
            "--ns-mac-addr",
            "02:00:00:00:00:01",
            "--test-ip4",
            "192.0.2.2/24,192.0.2.1",
            "--test-ip6",
            "2001:db8::2/64,fe80::1",
            "--test-dns",
            "192.0.2.53",
            "--test-dns",
            "2001:db8::53",
            "--test-search",
            "example.com",
            "-m",
            "1400",
        ])
        .unwrap();
        assert_eq!(s.netns, PathBuf::from("/run/netns/guest"));
        assert_eq!(s.ifname, "eth9");
        let mac = MacAddr([2, 0, 0, 0, 0, 1]);
        assert_eq!(s.ns_mac, Some(mac));
        assert_eq!(s.core.guest_mac, Some(mac));
        assert_eq!(s.core.mtu, 1400);
        assert_eq!(s.core.mode, Mode::Pasta);
        let ip4 = s.core.ip4.as_ref().unwrap();
        assert_eq!(ip4.addr, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(ip4.prefix_len, 24);
        assert_eq!(ip4.gateway, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(ip4.dns, [Ipv4Addr::new(192, 0, 2, 53)]);
        let ip6 = s.core.ip6.as_ref().unwrap();
        assert_eq!(ip6.addr, "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip6.gateway, "fe80::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(ip6.our_link_local, ip6.gateway);
        assert_eq!(ip6.dns, ["2001:db8::53".parse::<Ipv6Addr>().unwrap()]);
        assert_eq!(s.core.search, ["example.com"]);
        assert_eq!(s.core.validate(), Ok(()));
    }

    #[test]
    fn defaults_and_paths() {
        let s = args(&[
            "--netns",
            "/proc/1/ns/net",
            "--test-ip4",
            "192.0.2.2/24,192.0.2.1",
        ])
        .unwrap();
        assert_eq!(s.netns, PathBuf::from("/proc/1/ns/net"));
        assert_eq!(s.ifname, "tap0");
        assert_eq!(s.core.mtu, 65520);
        assert_eq!(s.core.guest_mac, None);
        assert!(s.core.ip6.is_none());
    }

    #[test]
    fn bad_values_are_named() {
        let e = args(&["--netns", "x", "--test-ip4", "192.0.2.2/33,192.0.2.1"]).unwrap_err();
        assert!(e.contains("/33"), "{e}");
        let e = args(&["--netns", "x", "--test-ip4", "192.0.2.2,192.0.2.1"]).unwrap_err();
        assert!(e.contains("ADDR/PREFIX,GATEWAY"), "{e}");
        let e = args(&["--netns", "x", "--test-ip6", "2001:db8::2/64,2001:db8::1"]).unwrap_err();
        assert!(e.contains("not link-local"), "{e}");
        let e = args(&["--netns", "x", "--ns-mac-addr", "zz"]).unwrap_err();
        assert!(e.contains("not a MAC"), "{e}");
        let e = args(&["--netns", "x"]).unwrap_err();
        assert!(e.contains("--test-ip4"), "{e}");
        let e = args(&["--test-ip4", "192.0.2.2/24,192.0.2.1"]).unwrap_err();
        assert!(e.contains("--netns"), "{e}");
        let e = args(&["--netns", "x", "-I", "a-very-long-interface-name"]).unwrap_err();
        assert!(e.contains("interface name"), "{e}");
        let e = args(&[
            "--netns",
            "x",
            "--test-ip4",
            "192.0.2.2/24,192.0.2.1",
            "--test-dns",
            "2001:db8::53",
        ])
        .unwrap_err();
        assert!(e.contains("--test-ip6"), "{e}");
    }
}
