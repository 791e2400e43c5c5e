//! The option table: every option of passt(1) and pasta(1) that we accept,
//! with its long name, short letter, argument, frontend and help line.
//!
//! One row per long name; `--socket` and `--socket-path` are two rows for the
//! same [`Opt`]. The order of the rows is the order of `--help` and of the
//! possibilities listed for an ambiguous abbreviation.

use crate::config::Mode;

/// What an option does, independent of how it was spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opt {
    Debug,
    Trace,
    Quiet,
    Foreground,
    Stderr,
    LogFile,
    LogSize,
    Runas,
    Help,
    Version,
    Pcap,
    Pid,
    Mtu,
    Address,
    Netmask,
    MacAddr,
    Gateway,
    Interface,
    Outbound,
    OutboundIf4,
    OutboundIf6,
    Dns,
    DnsForward,
    DnsHost,
    Search,
    NoDhcpDns,
    DhcpDns,
    NoDhcpSearch,
    DhcpSearch,
    MapHostLoopback,
    MapGuestAddr,
    NoMapGw,
    NoDhcp,
    NoNdp,
    NoDhcpv6,
    NoRa,
    Freebind,
    NoTcp,
    NoUdp,
    NoIcmp,
    Ipv4Only,
    Ipv6Only,
    TcpPorts,
    UdpPorts,
    Socket,
    Fd,
    OneOff,
    PrintCapabilities,
    NsIfname,
    TcpNs,
    UdpNs,
    HostLoToNsLo,
    Userns,
    Netns,
    NetnsOnly,
    NsrunDir,
    NoNetnsQuit,
    ConfigNet,
    NsMacAddr,
    NoSplice,
    Hostname,
    Fqdn,
    NoCopyRoutes,
    NoCopyAddrs,
    Stats,
    SpliceOnly,
    ConfPath,
    VhostUser,
    RepairPath,
    MigrateExit,
    MigrateNoLinger,
    ChrootFallback,
}

/// Which frontends accept an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Only {
    /// passt and pasta.
    Both,
    /// passt only.
    Passt,
    /// pasta only.
    Pasta,
}

impl Only {
    /// Whether `mode` accepts the option.
    pub(crate) fn allows(self, mode: Mode) -> bool {
        matches!(
            (self, mode),
            (Only::Both, _) | (Only::Passt, Mode::Passt) | (Only::Pasta, Mode::Pasta)
        )
    }

    /// The frontend's name, for "is for ... mode only".
    pub(crate) fn name(self) -> &'static str {
        match self {
            Only::Both | Only::Passt => "passt",
            Only::Pasta => "pasta",
        }
    }
}

/// Heading an option is listed under in `--help`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Group {
    /// Logging, process, help.
    General,
    /// Addresses, DNS, local services, protocols.
    Guest,
    /// `-t`, `-u`.
    Forwarding,
    /// Options of one frontend only.
    Frontend,
    /// Options of the original that are recognised and refused
    /// ([`super::OptionsErrorKind::Unsupported`], the reason in the help
    /// text): not listed in `--help`; the man page's NOTES names them.
    Refused,
}

/// One row of the table.
#[derive(Debug)]
pub(crate) struct Spec {
    /// What the option does.
    pub(crate) opt: Opt,
    /// Long name, without the leading `--`.
    pub(crate) long: &'static str,
    /// Short letter, if any.
    pub(crate) short: Option<char>,
    /// Name of the argument in `--help`; `Some` if the option takes one
    /// (always a required argument: no option here has an optional one).
    pub(crate) value: Option<&'static str>,
    /// Frontends accepting it.
    pub(crate) only: Only,
    /// Heading in `--help`.
    pub(crate) group: Group,
    /// Help text, wrapped to fit by `usage` (a `\n` in it is a space).
    pub(crate) help: &'static str,
}

/// Shorthand for a table row.
const fn row(
    opt: Opt,
    long: &'static str,
    short: Option<char>,
    value: Option<&'static str>,
    only: Only,
    group: Group,
    help: &'static str,
) -> Spec {
    Spec {
        opt,
        long,
        short,
        value,
        only,
        group,
        help,
    }
}

use Group::{Forwarding as F, Frontend as X, General as G, Guest as N, Refused as R};
use Only::{Both, Passt, Pasta};

/// Every option, in `--help` order.
#[rustfmt::skip]
pub(crate) static TABLE: &[Spec] = &[
    row(Opt::Debug, "debug", Some('d'), None, Both, G, "be verbose"),
    row(Opt::Trace, "trace", None, None, Both, G, "be extra verbose, down to single packets; implies --debug"),
    row(Opt::Quiet, "quiet", Some('q'), None, Both, G, "print warnings and errors only"),
    row(Opt::Foreground, "foreground", Some('f'), None, Both, G, "stay in the foreground (default: go to background once ready)"),
    row(Opt::Stderr, "stderr", Some('e'), None, Both, G, "deprecated: accepted with a warning, does nothing"),
    row(Opt::LogFile, "log-file", Some('l'), Some("PATH"), Both, G, "write log messages to PATH only"),
    row(Opt::LogSize, "log-size", None, Some("SIZE"), Both, G, "size limit of the log file in bytes, oldest entries go first\n(default: 1048576)"),
    row(Opt::Runas, "runas", None, Some("UID[:GID]"), Both, G, "switch to this user, and group, given as numbers or names\n(default when started as root: nobody)"),
    row(Opt::Help, "help", Some('h'), None, Both, G, "print this help and exit"),
    row(Opt::Version, "version", None, None, Both, G, "print the version and exit"),
    row(Opt::Pcap, "pcap", Some('p'), Some("FILE"), Both, G, "record guest-side frames to FILE, in pcap format"),
    row(Opt::Pid, "pid", Some('P'), Some("FILE"), Both, G, "write our process ID to FILE once ready"),
    row(Opt::Mtu, "mtu", Some('m'), Some("MTU"), Both, N, "MTU announced by DHCP and NDP, 68 to 65520, at least 1280\nwith IPv6; 0 announces none (default: 65520)"),
    row(Opt::Address, "address", Some('a'), Some("ADDR[/LEN]"), Both, N, "address of the guest, IPv4 or IPv6, once per family\n(default: the host's address on the template interface)"),
    row(Opt::Netmask, "netmask", Some('n'), Some("MASK"), Both, N, "IPv4 netmask, dot-decimal or a prefix length (default: the\nhost's; with -a but no length, from the address class)"),
    row(Opt::MacAddr, "mac-addr", Some('M'), Some("ADDR"), Both, N, "our MAC address toward the guest (default: 9a:55:9a:55:9a:55)"),
    row(Opt::Gateway, "gateway", Some('g'), Some("ADDR"), Both, N, "default gateway of the guest, once per family (default: the\nhost's); an IPv6 link-local one is also our RA source"),
    row(Opt::Interface, "interface", Some('i'), Some("NAME"), Both, N, "host interface to take addresses and routes from"),
    row(Opt::Outbound, "outbound", Some('o'), Some("ADDR"), Both, N, "source address of outbound sockets, once per family"),
    row(Opt::OutboundIf4, "outbound-if4", None, Some("NAME"), Both, N, "bind IPv4 outbound sockets to interface NAME\n(SO_BINDTODEVICE); also the template interface"),
    row(Opt::OutboundIf6, "outbound-if6", None, Some("NAME"), Both, N, "bind IPv6 outbound sockets to interface NAME\n(SO_BINDTODEVICE); also the template interface"),
    row(Opt::Dns, "dns", Some('D'), Some("ADDR"), Both, N, "DNS server for the guest, repeatable; 'none' for no DNS\n(default: the servers in /etc/resolv.conf)"),
    row(Opt::DnsForward, "dns-forward", None, Some("ADDR"), Both, N, "guest-side address whose DNS queries go to the host's\nresolver, once per family"),
    row(Opt::DnsHost, "dns-host", None, Some("ADDR"), Both, N, "host resolver receiving --dns-forward queries, once per\nfamily (default: the first one in /etc/resolv.conf)"),
    row(Opt::Search, "search", Some('S'), Some("LIST"), Both, N, "space-separated DNS search domains; 'none' for no list\n(default: the list in /etc/resolv.conf)"),
    row(Opt::Hostname, "hostname", Some('H'), Some("NAME"), Both, N, "host name offered to the guest by DHCP (option 12)"),
    row(Opt::Fqdn, "fqdn", None, Some("NAME"), Both, N, "fully qualified domain name offered to the guest by DHCP\n(option 81) and DHCPv6 (option 39)"),
    row(Opt::NoDhcpDns, "no-dhcp-dns", None, None, Passt, N, "offer no DNS servers by DHCP, DHCPv6 or NDP"),
    row(Opt::DhcpDns, "dhcp-dns", None, None, Pasta, N, "offer DNS servers by DHCP, DHCPv6 and NDP"),
    row(Opt::NoDhcpSearch, "no-dhcp-search", None, None, Passt, N, "offer no search list by DHCP, DHCPv6 or NDP"),
    row(Opt::DhcpSearch, "dhcp-search", None, None, Pasta, N, "offer the search list by DHCP, DHCPv6 and NDP"),
    row(Opt::MapHostLoopback, "map-host-loopback", None, Some("ADDR"), Both, N, "guest-side address standing for the host's loopback, once\nper family; 'none' maps nothing (default: the gateway)"),
    row(Opt::MapGuestAddr, "map-guest-addr", None, Some("ADDR"), Both, N, "guest-side address standing for the host's own address,\nonce per family; 'none' maps nothing"),
    row(Opt::NoMapGw, "no-map-gw", None, None, Both, N, "don't map the gateway address to the host"),
    row(Opt::NoDhcp, "no-dhcp", None, None, Both, N, "turn the DHCP server off"),
    row(Opt::NoNdp, "no-ndp", None, None, Both, N, "ignore NDP messages, router solicitations included"),
    row(Opt::NoDhcpv6, "no-dhcpv6", None, None, Both, N, "turn the DHCPv6 server off"),
    row(Opt::NoRa, "no-ra", None, None, Both, N, "send no router advertisements"),
    row(Opt::Freebind, "freebind", None, None, Both, N, "allow -t, -u and -o to bind addresses the host lacks\n(IP_FREEBIND)"),
    row(Opt::NoTcp, "no-tcp", None, None, Both, N, "turn TCP off"),
    row(Opt::NoUdp, "no-udp", None, None, Both, N, "turn UDP off"),
    row(Opt::NoIcmp, "no-icmp", None, None, Both, N, "turn ICMP and ICMPv6 off; implies --no-ndp"),
    row(Opt::Ipv4Only, "ipv4-only", Some('4'), None, Both, N, "IPv4 only"),
    row(Opt::Ipv6Only, "ipv6-only", Some('6'), None, Both, N, "IPv6 only"),
    row(Opt::TcpPorts, "tcp-ports", Some('t'), Some("SPEC"), Both, F, "forward TCP ports from the host to the guest, repeatable"),
    row(Opt::UdpPorts, "udp-ports", Some('u'), Some("SPEC"), Both, F, "forward UDP ports from the host to the guest, repeatable"),
    row(Opt::Socket, "socket", Some('s'), Some("PATH"), Passt, X, "UNIX domain socket for qemu (default: the first free one\nof /tmp/passt_1.socket to /tmp/passt_64.socket)"),
    row(Opt::Socket, "socket-path", None, Some("PATH"), Passt, X, "the same as --socket"),
    row(Opt::Fd, "fd", Some('F'), Some("FD"), Passt, X, "use the connected socket FD, inherited; implies --one-off"),
    row(Opt::OneOff, "one-off", Some('1'), None, Passt, X, "quit once the first client disconnects"),
    row(Opt::PrintCapabilities, "print-capabilities", None, None, Passt, X, "no vhost-user back-end here: says so and exits 1"),
    row(Opt::NsIfname, "ns-ifname", Some('I'), Some("NAME"), Pasta, X, "name of the tap interface in the namespace (default: the\nname of the host's template interface, or tap0)"),
    row(Opt::TcpNs, "tcp-ns", Some('T'), Some("SPEC"), Pasta, X, "forward TCP ports from the namespace to the host, repeatable"),
    row(Opt::UdpNs, "udp-ns", Some('U'), Some("SPEC"), Pasta, X, "forward UDP ports from the namespace to the host, repeatable"),
    row(Opt::HostLoToNsLo, "host-lo-to-ns-lo", None, None, Pasta, X, "deliver forwards from the host's loopback to the\nnamespace's loopback"),
    row(Opt::Userns, "userns", None, Some("PATH"), Pasta, X, "user namespace to join"),
    row(Opt::Netns, "netns", None, Some("PATH|NAME"), Pasta, X, "network namespace to join, a path or a name under the\nnamespace directory (/run/netns)"),
    row(Opt::NetnsOnly, "netns-only", None, None, Pasta, X, "join the network namespace only, no user namespace"),
    row(Opt::NsrunDir, "nsrun-dir", None, Some("PATH"), Pasta, X, "directory of named network namespaces (default: /run/netns)"),
    row(Opt::NoNetnsQuit, "no-netns-quit", None, None, Pasta, X, "keep running when the namespace goes away"),
    row(Opt::ConfigNet, "config-net", None, None, Pasta, X, "configure addresses and routes in the namespace, bring the\ntap interface up; no router advertisements then"),
    row(Opt::NsMacAddr, "ns-mac-addr", None, Some("ADDR"), Pasta, X, "MAC address of the tap interface in the namespace"),
    row(Opt::NoSplice, "no-splice", None, None, Pasta, X, "no socket-to-socket bypass for local traffic"),
    row(Opt::NoCopyRoutes, "no-copy-routes", None, None, Pasta, X, "deprecated: with --config-net, copy no host route but the\ndefault one"),
    row(Opt::NoCopyAddrs, "no-copy-addrs", None, None, Pasta, X, "deprecated: with --config-net, copy no host address but the\nguest's one"),
    row(Opt::Stats, "stats", None, Some("DELAY"), Both, R, "no event statistics are kept per event type"),
    row(Opt::SpliceOnly, "splice-only", None, None, Pasta, R, "pasta always creates its tap device"),
    row(Opt::ConfPath, "conf-path", Some('c'), Some("PATH"), Both, G, "configuration socket at PATH: forwarding rules changed at run time\n(see passt-ctl)"),
    row(Opt::VhostUser, "vhost-user", None, None, Passt, R, "there is no vhost-user back-end yet (use the stream socket)"),
    row(Opt::RepairPath, "repair-path", None, Some("PATH"), Passt, R, "there is no live migration yet"),
    row(Opt::MigrateExit, "migrate-exit", None, None, Passt, R, "there is no live migration yet"),
    row(Opt::MigrateNoLinger, "migrate-no-linger", None, None, Passt, R, "there is no live migration yet"),
    row(Opt::ChrootFallback, "chroot-fallback", None, None, Both, R, "a pivot_root the kernel refuses is skipped and logged, never replaced by chroot"),
];

/// The row of a short option letter.
pub(crate) fn by_short(c: char) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.short == Some(c))
}

/// The row of an exact long name.
pub(crate) fn by_long(name: &str) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.long == name)
}
