//! Command line and host to [`Setup`]: what pasta will do, before it does
//! anything.
//!
//! 1. [`Options::parse`] reads the command line (GNU `getopt_long` syntax,
//!    glibc's error wording: `main` prints usage, version or the error).
//! 2. [`read_host`] reads the host's network configuration in the namespace
//!    pasta was started in, before any other namespace is entered:
//!    interfaces, routes and addresses over rtnetlink
//!    ([`passt_core::host::read_host_net`], with `-i`, `--outbound-if4` and
//!    `--outbound-if6`), and `/etc/resolv.conf` ([`ResolvConf`]).
//! 3. [`guest_defaults`] turns them into the guest's IPv4 and IPv6
//!    configuration: the host's own address, prefix and gateway, its
//!    resolvers (loopback ones mapped to the address that stands for the
//!    host), or "local mode" for a family without a usable route. That is
//!    never an error: each family gets one summary line in the log.
//! 4. [`Options::overrides`] lays the command line over the result, and the
//!    flow hash key ([`Config::secret`]) is read from the kernel's random
//!    source (`getrandom(2)`).
//!
//! Syscalls: those of [`passt_core::host::read_host_net`] (netlink),
//! `open`/`read` of `/etc/resolv.conf`, `getrandom`.

use std::path::{Path, PathBuf};

use passt_core::config::Config;
use passt_core::host::defaults::guest_defaults;
use passt_core::host::options::Options;
use passt_core::host::resolv::ResolvConf;
use passt_core::host::{read_host_net, setup, HostNet};

use crate::{debug, Error};

/// Where the host's resolvers are listed.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Tap device name when neither `-I` nor a host template interface gives
/// one.
pub(crate) const DEFAULT_IFNAME: &str = "tap0";

/// The namespace pasta serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// None given: make a new user and network namespace and run this
    /// command in it (empty: the user's shell).
    Spawn(Vec<String>),
    /// `pasta PID`: the namespaces of this process.
    Pid(u32),
    /// `--netns PATH|NAME`: a namespace file (a bind mount as `ip netns`
    /// makes, or a `/proc/PID/ns/net` link).
    Path(PathBuf),
}

/// Everything pasta will do, worked out before it does any of it.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The translator's configuration, not yet validated (the translator
    /// does that).
    pub(crate) core: Config,
    /// The command line, for what has no place in [`Config`] (logging,
    /// namespaces, files).
    pub(crate) opts: Box<Options>,
    /// The namespace to serve.
    pub(crate) target: Target,
    /// The user namespace to join first, if any (`--userns`, or the
    /// target process's).
    pub(crate) userns: Option<PathBuf>,
    /// Tap device name.
    pub(crate) ifname: String,
    /// What was read of the host (for `--config-net`).
    pub(crate) host: HostNet,
    /// One line per address family on what the guest gets.
    pub(crate) summary: [String; 2],
}

/// Where `opts` points pasta: a new namespace, a process or a file.
pub(crate) fn target(opts: &Options) -> Target {
    match (opts.pid, opts.netns_path()) {
        (Some(pid), _) => Target::Pid(pid),
        (None, Some(path)) => Target::Path(PathBuf::from(path)),
        (None, None) => Target::Spawn(opts.command.clone()),
    }
}

/// Read the host's interfaces, routes and resolvers in the current network
/// namespace. A missing or unreadable resolv.conf means no resolvers.
///
/// # Errors
/// An interface named by `-i`/`--outbound-if4`/`--outbound-if6` that does
/// not exist, or a netlink failure.
pub(crate) fn read_host(opts: &Options) -> Result<(HostNet, Option<ResolvConf>), Error> {
    let host = read_host_net(&setup::interface_choice(opts))
        .map_err(|e| Error::msg(format!("reading the host's network configuration: {e}")))?;
    let resolv = match ResolvConf::read(Path::new(RESOLV_CONF)) {
        Ok(r) => Some(r),
        Err(e) => {
            debug!("{RESOLV_CONF}: {e}: no host resolvers");
            None
        }
    };
    Ok((host, resolv))
}

/// Build the [`Setup`] from options and what was read of the host.
///
/// # Errors
/// Options that do not fit the host (an MTU too small for the IPv6 the host
/// has), or no random bytes for the hash key.
pub(crate) fn build(
    opts: Box<Options>,
    host: HostNet,
    resolv: Option<&ResolvConf>,
) -> Result<Setup, Error> {
    let d = guest_defaults(&host, resolv, &setup::guest_overrides(&opts));
    let mut core = setup::config(&d, &opts).map_err(|e| Error::msg(e.kind().to_string()))?;
    core.secret = setup::random_key().map_err(|e| Error::sys("reading random bytes", e))?;
    let ifname = opts
        .ns_ifname
        .clone()
        .or(d.template_if4)
        .or(d.template_if6)
        .unwrap_or_else(|| DEFAULT_IFNAME.to_owned());
    let target = target(&opts);
    let userns = if opts.netns_only {
        None
    } else {
        opts.userns_path().map(PathBuf::from)
    };
    Ok(Setup {
        core,
        target,
        userns,
        ifname,
        host,
        summary: [d.summary4, d.summary6],
        opts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use passt_core::config::{Mode, Services};
    use passt_core::host::options::Parsed;
    use passt_core::host::{HostAddr, HostIp4, HostIp6, HostLink, Selection};

    fn opts(args: &[&str]) -> Box<Options> {
        match Options::parse(Mode::Pasta, args) {
            Ok(Parsed::Run(o)) => o,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn link(name: &str) -> HostLink {
        HostLink {
            index: 2,
            name: name.into(),
            mtu: 1500,
            mac: None,
            up: true,
            loopback: false,
        }
    }

    /// The simulated host of doc/TESTING.md.
    fn host() -> HostNet {
        HostNet {
            ip4: Some(HostIp4 {
                link: link("eth0"),
                selection: Selection::DefaultRoute,
                gateway: Some(Ipv4Addr::new(203, 0, 113, 1)),
                metric: Some(0),
                addrs: vec![HostAddr {
                    addr: Ipv4Addr::new(203, 0, 113, 2),
                    prefix_len: 24,
                }],
            }),
            ip6: Some(HostIp6 {
                link: link("eth0"),
                selection: Selection::DefaultRoute,
                gateway: Some("fe80::1".parse().unwrap()),
                metric: Some(1024),
                addrs: vec![HostAddr {
                    addr: "2001:db8:2::2".parse().unwrap(),
                    prefix_len: 64,
                }],
                link_local: vec![HostAddr {
                    addr: "fe80::2".parse().unwrap(),
                    prefix_len: 64,
                }],
            }),
        }
    }

    fn resolv() -> ResolvConf {
        ResolvConf::parse(b"nameserver 127.0.0.53\nnameserver 198.51.100.53\nsearch example.com\n")
    }

    #[test]
    fn the_guest_mirrors_the_host() {
        let s = build(opts(&[]), host(), Some(&resolv())).unwrap();
        let ip4 = s.core.ip4.as_ref().unwrap();
        assert_eq!(ip4.addr, Ipv4Addr::new(203, 0, 113, 2));
        assert_eq!(ip4.prefix_len, 24);
        assert_eq!(ip4.gateway, Ipv4Addr::new(203, 0, 113, 1));
        // The loopback resolver is reached through the gateway.
        assert_eq!(
            ip4.dns,
            [
                Ipv4Addr::new(203, 0, 113, 1),
                Ipv4Addr::new(198, 51, 100, 53)
            ]
        );
        let ip6 = s.core.ip6.as_ref().unwrap();
        assert_eq!(ip6.addr, "2001:db8:2::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(s.core.search, ["example.com"]);
        assert_eq!(s.ifname, "eth0");
        assert_eq!(s.core.mode, Mode::Pasta);
        assert_eq!(s.core.mtu, 65520);
        // pasta passes neither resolvers nor search list unless asked.
        assert!(!s.core.services.contains(Services::DHCP_DNS));
        assert!(!s.core.services.contains(Services::DHCP_SEARCH));
        assert_ne!(s.core.secret, [0; 16]);
        assert_eq!(s.target, Target::Spawn(vec![]));
        assert!(
            s.summary[0].starts_with("IPv4: template eth0"),
            "{:?}",
            s.summary
        );
        assert!(
            s.summary[1].starts_with("IPv6: template eth0"),
            "{:?}",
            s.summary
        );
        assert_eq!(s.core.validate(), Ok(()));
    }

    #[test]
    fn options_override_the_host() {
        let s = build(
            opts(&[
                "-a",
                "192.0.2.7",
                "-n",
                "25",
                "-g",
                "192.0.2.1",
                "-D",
                "192.0.2.53",
                "-S",
                "example.org",
                "-m",
                "1400",
                "--ns-mac-addr",
                "02:00:00:00:00:01",
                "-I",
                "guest0",
                "--dhcp-dns",
                "--netns",
                "guest",
            ]),
            host(),
            Some(&resolv()),
        )
        .unwrap();
        let ip4 = s.core.ip4.as_ref().unwrap();
        assert_eq!(ip4.addr, Ipv4Addr::new(192, 0, 2, 7));
        assert_eq!(ip4.prefix_len, 25);
        assert_eq!(ip4.gateway, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(ip4.dns, [Ipv4Addr::new(192, 0, 2, 53)]);
        assert_eq!(s.core.search, ["example.org"]);
        assert_eq!(s.core.mtu, 1400);
        assert_eq!(
            s.core.guest_mac,
            Some(passt_core::addr::MacAddr([2, 0, 0, 0, 0, 1]))
        );
        assert_eq!(s.ifname, "guest0");
        assert!(s.core.services.contains(Services::DHCP_DNS));
        assert_eq!(s.target, Target::Path("/run/netns/guest".into()));
        assert_eq!(s.userns, None);
    }

    #[test]
    fn a_host_without_routes_gives_local_mode() {
        let s = build(opts(&["42"]), HostNet::default(), None).unwrap();
        let ip4 = s.core.ip4.as_ref().unwrap();
        assert_eq!(ip4.addr, Ipv4Addr::new(169, 254, 2, 1));
        assert_eq!(ip4.gateway, Ipv4Addr::new(169, 254, 2, 2));
        assert!(s.core.ip6.is_some());
        assert_eq!(s.ifname, DEFAULT_IFNAME);
        assert!(s.summary[0].contains("local mode"), "{:?}", s.summary);
        assert!(s.summary[1].contains("local mode"), "{:?}", s.summary);
        assert_eq!(s.target, Target::Pid(42));
        assert_eq!(s.userns, Some("/proc/42/ns/user".into()));
        assert_eq!(s.core.validate(), Ok(()));
    }

    #[test]
    fn no_ipv4_gateway_turns_dhcp_off() {
        let mut h = host();
        h.ip4.as_mut().unwrap().gateway = None;
        h.ip4.as_mut().unwrap().selection = Selection::AnyRoute;
        let s = build(opts(&[]), h, None).unwrap();
        assert!(!s.core.services.contains(Services::DHCP));
    }

    #[test]
    fn conflicts_with_the_host_are_errors() {
        let e = build(opts(&["-m", "1000"]), host(), None).unwrap_err();
        assert!(e.to_string().contains("too small for IPv6"), "{e}");
        // With -4 the same MTU is fine.
        assert!(build(opts(&["-m", "1000", "-4"]), host(), None).is_ok());
    }
}
