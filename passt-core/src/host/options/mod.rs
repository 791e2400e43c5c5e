//! Command-line options of `passt` and `pasta`, shared by both frontends.
//!
//! [`Options::parse`] turns a command line into an [`Options`] value (or a
//! request for `--help` / `--version`, see [`Parsed`]); the frontend then
//! builds a [`Config`] from what it finds on the host and lays the options
//! over it with [`Options::overrides`]. Option names, short letters,
//! arguments and defaults are those of the passt(1) man page (which covers
//! pasta too). Every option is in one table (`host/options/table.rs`), with
//! the frontends that accept it.
//!
//! Recognised but refused, with the reason
//! ([`OptionsErrorKind::Unsupported`]; not in `--help`, listed in the man
//! page's NOTES): `--stats`, `--splice-only`,
//! `--vhost-user`, `--repair-path`, `--migrate-exit`,
//! `--migrate-no-linger`, `--chroot-fallback`. The deprecated `--no-copy-routes`
//! and `--no-copy-addrs` work, with a warning ([`Options::warnings`]).
//! `-m 0` assigns no MTU ([`Config::assign_mtu`]).
//!
//! # Syntax: GNU `getopt_long`, not argh
//!
//! The original parses its command line with glibc's `getopt_long`, and the
//! programs that start pasta rely on its forms: rootlesskit passes
//! `--mtu=65520` and `--netmask=24`, users write `-t22`, `-fd` or
//! abbreviations such as `--config`, and podman matches glibc's error
//! wording (`unrecognized option '--map-guest-addr'` tells it an old pasta
//! lacks an option). argh, the workspace's argument parser, cannot give that
//! behaviour: it compares each argument with the option names as a whole,
//! so it has no `--name=value`, no `-tVALUE`, no clusters of short flags and
//! no abbreviations; it takes the positional word `help` as a request for
//! help (`pasta help` must run a command named `help`); and its messages are
//! its own. So the parse is done by `options/getopt.rs`, a small `getopt_long`
//! work-alike over the option table, and argh is not used here at all.
//!
//! Syntax errors are glibc's messages, prefixed with the program name
//! ([`OptionsError`]); wrong values are named with the value
//! (`pasta: Invalid MTU: 70000`).
//!
//! # Order of arguments
//!
//! - **passt** takes no non-option arguments. Options may come in any order
//!   (GNU permutation); any non-option argument is an error.
//! - **pasta** takes `[OPTION]... [COMMAND [ARG]...]` or `[OPTION]... PID`.
//!   The first non-option argument ends the options, as in the original
//!   (its optstring starts with `+`): otherwise `pasta ip -6 addr` would
//!   take `-6` for itself. A single all-digit argument is a PID; anything
//!   else is the command. After `--`, everything is the command, even a
//!   single number.
//!
//! `--help` and `--version` end the parse where they stand: what follows
//! is not looked at, and cross-option checks are skipped (rootlesskit probes
//! for an option with `pasta --host-lo-to-ns-lo --version`).
//!
//! # Repeated and conflicting options
//!
//! As the man page says, the last of repeated or conflicting options wins,
//! except where it says otherwise: `-a`, `-g`, `-o`, `--dns-forward`,
//! `--dns-host`, `--map-host-loopback` and `--map-guest-addr` keep one
//! value per address family; `-D` and `-S` add up (`none` clears what was
//! given before it); `-t`, `-u`, `-T` and `-U` add up through
//! [`FwdSpec::add`]. Refused combinations: `-4` with `-6`; `-n` with an
//! IPv4 `-a ADDR/LEN`; `--netns` with a PID or command;
//! `--host-lo-to-ns-lo` with `--no-splice`; `auto` port specs in passt;
//! listening addresses in `-T`/`-U`; port specs for a disabled protocol or
//! address family; an MTU below 1280 with IPv6 on. Options of the other
//! frontend are refused by name (`--netns is for pasta mode only`).

mod error;
mod getopt;
mod table;
mod usage;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use error::{OptionsError, OptionsErrorKind};
pub use usage::{usage, version};

use crate::addr::MacAddr;
use crate::config::ports::{FwdMode, FwdSpec};
use crate::config::{Config, Mode, Services};
use getopt::{Getopt, Ordering, Spelled, Token};
use table::{Opt, Spec};

/// Default of `--log-size`: 1 MiB.
pub const DEFAULT_LOG_SIZE: u64 = 1024 * 1024;

/// Smallest `--log-size` accepted: room for a few lines.
pub const MIN_LOG_SIZE: u64 = 4096;

/// Smallest MTU accepted by `-m`: the IPv4 minimum (RFC 791).
pub const MIN_MTU: u16 = 68;

/// Largest MTU accepted by `-m`, also the default.
pub const MAX_MTU: u16 = crate::config::DEFAULT_MTU;

/// Smallest MTU when IPv6 is on (RFC 8200 §5).
pub const MIN_MTU_IPV6: u16 = 1280;

/// Directory of named network namespaces, as ip-netns(8) keeps them.
pub const DEFAULT_NSRUN_DIR: &str = "/run/netns";

/// Longest interface name: `IFNAMSIZ - 1` bytes.
const MAX_IFNAME: usize = 15;

/// Longest path accepted (`PATH_MAX - 1`).
const MAX_PATH: usize = 4095;

/// Longest UNIX domain socket path (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The name a frontend reports itself by.
pub fn program_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Passt => "passt",
        Mode::Pasta => "pasta",
    }
}

/// What a command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run with these options.
    Run(Box<Options>),
    /// `-h`/`--help`: print [`usage()`] to standard output and exit 0.
    Help,
    /// `--version`: print [`version`] to standard output and exit 0.
    Version,
}

/// A guest-side address mapping (`--map-host-loopback`,
/// `--map-guest-addr`) for one address family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MapAddr<T> {
    /// Not given: the default applies.
    #[default]
    Default,
    /// `none`: map nothing.
    Disabled,
    /// Map this address.
    To(T),
}

/// A user or group as given to `--runas`: a number or a name, resolved by
/// the frontend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdSpec {
    /// A numeric ID.
    Id(u32),
    /// A login or group name.
    Name(String),
}

/// The argument of `--runas UID|UID:GID|LOGIN|LOGIN:GROUP`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user.
    pub user: IdSpec,
    /// The group, if given; otherwise the user's.
    pub group: Option<IdSpec>,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
impl RunAs {
    /// The user and group as passt-sys's sandbox looks them up
    /// (`passt_sys::sandbox::target_ids`).
    pub fn who(
        &self,
    ) -> (
        passt_sys::sandbox::Who<'_>,
        Option<passt_sys::sandbox::Who<'_>>,
    ) {
        fn who(s: &IdSpec) -> passt_sys::sandbox::Who<'_> {
            match s {
                IdSpec::Id(i) => passt_sys::sandbox::Who::Id(*i),
                IdSpec::Name(n) => passt_sys::sandbox::Who::Name(n.as_str()),
            }
        }
        (who(&self.user), self.group.as_ref().map(who))
    }
}

/// Every option of both frontends, parsed and checked. Fields hold what
/// was given; `None`, `false` or an ungiven [`FwdSpec`] mean "not given",
/// and [`Options::overrides`] leaves the host-derived value alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Which frontend parsed the line.
    pub mode: Mode,

    /// `-d/--debug` (also set by `--trace`, cleared by `-q`).
    pub debug: bool,
    /// `--trace`.
    pub trace: bool,
    /// `-q/--quiet` (cleared by `-d` and `--trace`).
    pub quiet: bool,
    /// `-f/--foreground`.
    pub foreground: bool,
    /// `-l/--log-file PATH`.
    pub log_file: Option<String>,
    /// `--log-size SIZE`, in bytes ([`DEFAULT_LOG_SIZE`] if not given).
    pub log_size: u64,
    /// `--runas UID[:GID]`.
    pub runas: Option<RunAs>,
    /// `-P/--pid FILE`.
    pub pid_file: Option<String>,
    /// `-c/--conf-path PATH`: the configuration socket
    /// (`passt_core::control`, `host::conf`).
    pub conf_path: Option<String>,
    /// `-p/--pcap FILE`.
    pub pcap: Option<String>,

    /// `-4/--ipv4-only`.
    pub ipv4_only: bool,
    /// `-6/--ipv6-only`.
    pub ipv6_only: bool,
    /// `-m/--mtu MTU`.
    pub mtu: Option<u16>,
    /// `-a/--address` for IPv4 (IPv4-mapped IPv6 addresses count as IPv4).
    pub addr4: Option<Ipv4Addr>,
    /// IPv4 prefix length: from `-n/--netmask`, from `-a ADDR/LEN`, or,
    /// with `-a ADDR` alone, from the class of the address.
    pub prefix_len4: Option<u8>,
    /// `-a/--address` for IPv6.
    pub addr6: Option<Ipv6Addr>,
    /// Prefix length given with an IPv6 `-a ADDR/LEN`; as the man page
    /// says, the guest gets a /64 anyway.
    pub prefix_len6: Option<u8>,
    /// `-M/--mac-addr ADDR`.
    pub our_mac: Option<MacAddr>,
    /// `-g/--gateway` for IPv4.
    pub gateway4: Option<Ipv4Addr>,
    /// `-g/--gateway` for IPv6.
    pub gateway6: Option<Ipv6Addr>,
    /// `-i/--interface NAME`.
    pub interface: Option<String>,
    /// `-o/--outbound` for IPv4.
    pub outbound4: Option<Ipv4Addr>,
    /// `-o/--outbound` for IPv6.
    pub outbound6: Option<Ipv6Addr>,
    /// `--outbound-if4 NAME`.
    pub outbound_if4: Option<String>,
    /// `--outbound-if6 NAME`.
    pub outbound_if6: Option<String>,

    /// `-D/--dns`: `None` if not given, empty after `-D none`, otherwise
    /// the addresses in the order given.
    pub dns: Option<Vec<IpAddr>>,
    /// `--dns-forward` for IPv4.
    pub dns_forward4: Option<Ipv4Addr>,
    /// `--dns-forward` for IPv6.
    pub dns_forward6: Option<Ipv6Addr>,
    /// `--dns-host` for IPv4.
    pub dns_host4: Option<Ipv4Addr>,
    /// `--dns-host` for IPv6.
    pub dns_host6: Option<Ipv6Addr>,
    /// `-S/--search`: `None` if not given, empty after `-S none`,
    /// otherwise the domains in the order given.
    pub search: Option<Vec<String>>,
    /// `--no-dhcp-dns` (passt, `Some(false)`) or `--dhcp-dns` (pasta,
    /// `Some(true)`); see [`Options::dhcp_dns`].
    pub dhcp_dns: Option<bool>,
    /// `--no-dhcp-search` (passt, `Some(false)`) or `--dhcp-search`
    /// (pasta, `Some(true)`); see [`Options::dhcp_search`].
    pub dhcp_search: Option<bool>,

    /// `--map-host-loopback` for IPv4.
    pub map_host_loopback4: MapAddr<Ipv4Addr>,
    /// `--map-host-loopback` for IPv6.
    pub map_host_loopback6: MapAddr<Ipv6Addr>,
    /// `--no-map-gw`, or `--map-host-loopback none`.
    pub no_map_gw: bool,
    /// `--map-guest-addr` for IPv4.
    pub map_guest_addr4: MapAddr<Ipv4Addr>,
    /// `--map-guest-addr` for IPv6.
    pub map_guest_addr6: MapAddr<Ipv6Addr>,

    /// `--no-dhcp`.
    pub no_dhcp: bool,
    /// `--no-ndp`.
    pub no_ndp: bool,
    /// `--no-dhcpv6`.
    pub no_dhcpv6: bool,
    /// `--no-ra`.
    pub no_ra: bool,
    /// `--freebind`.
    pub freebind: bool,
    /// `--no-tcp`.
    pub no_tcp: bool,
    /// `--no-udp`.
    pub no_udp: bool,
    /// `--no-icmp`.
    pub no_icmp: bool,

    /// `-t/--tcp-ports`, all specs added up.
    pub tcp_ports: FwdSpec,
    /// `-u/--udp-ports`.
    pub udp_ports: FwdSpec,
    /// `-T/--tcp-ns` (pasta).
    pub tcp_ns: FwdSpec,
    /// `-U/--udp-ns` (pasta).
    pub udp_ns: FwdSpec,

    /// `-s/--socket PATH` (passt).
    pub socket: Option<String>,
    /// `-F/--fd FD` (passt).
    pub fd: Option<i32>,
    /// `-1/--one-off` (passt; also implied by `-F`).
    pub one_off: bool,
    /// `--print-capabilities` (passt).
    pub print_capabilities: bool,

    /// `-I/--ns-ifname NAME` (pasta).
    pub ns_ifname: Option<String>,
    /// `--userns PATH` (pasta).
    pub userns: Option<String>,
    /// `--netns PATH|NAME` (pasta), as given; see [`Options::netns_path`].
    pub netns: Option<String>,
    /// `--netns-only` (pasta), also implied by `--netns` without
    /// `--userns`.
    pub netns_only: bool,
    /// `--nsrun-dir PATH` (pasta).
    pub nsrun_dir: Option<String>,
    /// `--config-net` (pasta).
    pub config_net: bool,
    /// `--no-netns-quit` (pasta).
    pub no_netns_quit: bool,
    /// `--ns-mac-addr ADDR` (pasta).
    pub ns_mac_addr: Option<MacAddr>,
    /// `--no-splice` (pasta).
    pub no_splice: bool,
    /// `--host-lo-to-ns-lo` (pasta).
    pub host_lo_to_ns_lo: bool,
    /// `-H/--hostname NAME`.
    pub hostname: Option<String>,
    /// `--fqdn NAME`.
    pub fqdn: Option<String>,
    /// `--no-copy-routes` (pasta, deprecated).
    pub no_copy_routes: bool,
    /// `--no-copy-addrs` (pasta, deprecated).
    pub no_copy_addrs: bool,
    /// `-e/--stderr` (deprecated, no effect: messages go to standard
    /// error whenever they are not logged elsewhere).
    pub stderr: bool,

    /// Positional `PID` (pasta): join this process's namespaces.
    pub pid: Option<u32>,
    /// Positional `COMMAND [ARG]...` (pasta): run it in a new namespace;
    /// empty for the default shell.
    pub command: Vec<String>,
}

/// Facts about the parse that are not options themselves.
#[derive(Default)]
struct Seen {
    /// `-n` was given.
    netmask: bool,
    /// The last IPv4 `-a` had a `/LEN`.
    addr4_has_len: bool,
}

impl Options {
    /// Options as if none were given, for `mode`.
    pub fn new(mode: Mode) -> Self {
        Options {
            mode,
            debug: false,
            trace: false,
            quiet: false,
            foreground: false,
            log_file: None,
            log_size: DEFAULT_LOG_SIZE,
            runas: None,
            pid_file: None,
            conf_path: None,
            pcap: None,
            ipv4_only: false,
            ipv6_only: false,
            mtu: None,
            addr4: None,
            prefix_len4: None,
            addr6: None,
            prefix_len6: None,
            our_mac: None,
            gateway4: None,
            gateway6: None,
            interface: None,
            outbound4: None,
            outbound6: None,
            outbound_if4: None,
            outbound_if6: None,
            dns: None,
            dns_forward4: None,
            dns_forward6: None,
            dns_host4: None,
            dns_host6: None,
            search: None,
            dhcp_dns: None,
            dhcp_search: None,
            map_host_loopback4: MapAddr::Default,
            map_host_loopback6: MapAddr::Default,
            no_map_gw: false,
            map_guest_addr4: MapAddr::Default,
            map_guest_addr6: MapAddr::Default,
            no_dhcp: false,
            no_ndp: false,
            no_dhcpv6: false,
            no_ra: false,
            freebind: false,
            no_tcp: false,
            no_udp: false,
            no_icmp: false,
            tcp_ports: FwdSpec::default(),
            udp_ports: FwdSpec::default(),
            tcp_ns: FwdSpec::default(),
            udp_ns: FwdSpec::default(),
            socket: None,
            fd: None,
            one_off: false,
            print_capabilities: false,
            ns_ifname: None,
            userns: None,
            netns: None,
            netns_only: false,
            nsrun_dir: None,
            config_net: false,
            no_netns_quit: false,
            ns_mac_addr: None,
            no_splice: false,
            host_lo_to_ns_lo: false,
            hostname: None,
            fqdn: None,
            no_copy_routes: false,
            no_copy_addrs: false,
            stderr: false,
            pid: None,
            command: Vec::new(),
        }
    }

    /// Parse the command line of `mode`'s program; `args` excludes the
    /// program name (`std::env::args().skip(1)`).
    ///
    /// ```
    /// use passt_core::config::Mode;
    /// use passt_core::host::options::{Options, Parsed};
    /// let Ok(Parsed::Run(o)) = Options::parse(Mode::Pasta, ["--mtu=1500", "-fq", "42"]) else {
    ///     panic!()
    /// };
    /// assert_eq!((o.mtu, o.foreground, o.quiet, o.pid), (Some(1500), true, true, Some(42)));
    /// ```
    ///
    /// # Errors
    /// An [`OptionsError`] for the first problem found: a syntax error
    /// (glibc's wording), a bad value, an option of the other frontend, or
    /// contradicting options.
    pub fn parse<I>(mode: Mode, args: I) -> Result<Parsed, OptionsError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let err = |kind| OptionsError::new(mode, kind);
        let ordering = match mode {
            Mode::Passt => Ordering::Permute,
            Mode::Pasta => Ordering::RequireOrder,
        };

        let mut o = Options::new(mode);
        let mut seen = Seen::default();
        let mut positional: Vec<(&str, bool)> = Vec::new();
        for token in Getopt::new(&args, mode, ordering) {
            match token.map_err(err)? {
                Token::Opt {
                    spec,
                    spelled,
                    value,
                } => {
                    if !spec.only.allows(mode) {
                        return Err(err(OptionsErrorKind::WrongMode {
                            option: spelling(spec, spelled),
                            only: spec.only.name(),
                        }));
                    }
                    let value = value.unwrap_or_default();
                    match spec.opt {
                        Opt::Help => return Ok(Parsed::Help),
                        Opt::Version => return Ok(Parsed::Version),
                        _ => o.apply(spec, value, &mut seen).map_err(err)?,
                    }
                }
                Token::Arg {
                    arg,
                    after_double_dash,
                } => positional.push((arg, after_double_dash)),
            }
        }
        o.positional(&positional).map_err(err)?;
        o.finish(&seen).map_err(err)?;
        Ok(Parsed::Run(Box::new(o)))
    }

    /// Take in one option and its value (empty for flags).
    fn apply(&mut self, spec: &Spec, v: &str, seen: &mut Seen) -> Result<(), OptionsErrorKind> {
        use OptionsErrorKind as E;
        let invalid = |what: &'static str| E::InvalidValue {
            what,
            value: v.to_owned(),
        };
        match spec.opt {
            // Handled by the caller.
            Opt::Help | Opt::Version => {}
            Opt::Debug => {
                self.debug = true;
                self.quiet = false;
            }
            Opt::Trace => {
                self.trace = true;
                self.debug = true;
                self.quiet = false;
            }
            Opt::Quiet => {
                self.quiet = true;
                self.debug = false;
                self.trace = false;
            }
            Opt::Foreground => self.foreground = true,
            Opt::Stderr => self.stderr = true,
            Opt::LogFile => self.log_file = Some(path(v, MAX_PATH).ok_or(invalid("log file"))?),
            Opt::LogSize => {
                self.log_size = decimal::<u64>(v)
                    .filter(|&n| n >= MIN_LOG_SIZE)
                    .ok_or(invalid("--log-size"))?;
            }
            Opt::Runas => self.runas = Some(parse_runas(v).ok_or(invalid("--runas"))?),
            Opt::Pcap => self.pcap = Some(path(v, MAX_PATH).ok_or(invalid("pcap path"))?),
            Opt::Pid => self.pid_file = Some(path(v, MAX_PATH).ok_or(invalid("PID file"))?),
            Opt::ConfPath => {
                self.conf_path =
                    Some(path(v, MAX_PATH).ok_or(invalid("configuration socket path"))?)
            }
            Opt::Mtu => {
                self.mtu = Some(
                    decimal::<u16>(v)
                        .filter(|m| *m == 0 || (MIN_MTU..=MAX_MTU).contains(m))
                        .ok_or(invalid("MTU"))?,
                );
            }
            Opt::Address => {
                let (addr, len) = parse_addr_len(v).ok_or(invalid("address"))?;
                match addr {
                    IpAddr::V4(a) => {
                        self.addr4 = Some(a);
                        seen.addr4_has_len = len.is_some();
                        if len.is_some() {
                            self.prefix_len4 = len;
                        }
                    }
                    IpAddr::V6(a) => {
                        self.addr6 = Some(a);
                        self.prefix_len6 = len;
                    }
                }
            }
            Opt::Netmask => {
                self.prefix_len4 = Some(parse_netmask(v).ok_or(invalid("netmask"))?);
                seen.netmask = true;
            }
            Opt::MacAddr => self.our_mac = Some(v.parse().map_err(|_| invalid("MAC address"))?),
            Opt::NsMacAddr => {
                self.ns_mac_addr = Some(v.parse().map_err(|_| invalid("MAC address"))?);
            }
            Opt::Gateway => match parse_ip(v).filter(|a| usable(a) && !is_broadcast(a)) {
                Some(IpAddr::V4(a)) => self.gateway4 = Some(a),
                Some(IpAddr::V6(a)) => self.gateway6 = Some(a),
                None => return Err(invalid("gateway address")),
            },
            Opt::Interface => self.interface = Some(ifname(v).ok_or(invalid("interface name"))?),
            Opt::OutboundIf4 => {
                self.outbound_if4 = Some(ifname(v).ok_or(invalid("interface name"))?);
            }
            Opt::OutboundIf6 => {
                self.outbound_if6 = Some(ifname(v).ok_or(invalid("interface name"))?);
            }
            Opt::NsIfname => self.ns_ifname = Some(ifname(v).ok_or(invalid("interface name"))?),
            Opt::Outbound => {
                let ok = |a: &IpAddr| usable(a) && !a.is_multicast() && !is_broadcast(a);
                match parse_ip(v).filter(ok) {
                    Some(IpAddr::V4(a)) => self.outbound4 = Some(a),
                    Some(IpAddr::V6(a)) => self.outbound6 = Some(a),
                    None => return Err(invalid("outbound address")),
                }
            }
            Opt::Dns => {
                if v == "none" {
                    // Drops every DNS setting given so far.
                    self.dns = Some(Vec::new());
                    self.dns_forward4 = None;
                    self.dns_forward6 = None;
                    self.dns_host4 = None;
                    self.dns_host6 = None;
                } else {
                    let a = v.parse::<IpAddr>().map_err(|_| invalid("DNS address"))?;
                    self.dns.get_or_insert_with(Vec::new).push(a);
                }
            }
            Opt::DnsForward => match parse_ip(v).filter(|a| usable(a) && !is_broadcast(a)) {
                Some(IpAddr::V4(a)) => self.dns_forward4 = Some(a),
                Some(IpAddr::V6(a)) => self.dns_forward6 = Some(a),
                None => return Err(invalid("DNS forwarding address")),
            },
            Opt::DnsHost => match parse_ip(v).filter(|a| !a.is_unspecified() && !is_broadcast(a)) {
                Some(IpAddr::V4(a)) => self.dns_host4 = Some(a),
                Some(IpAddr::V6(a)) => self.dns_host6 = Some(a),
                None => return Err(invalid("host nameserver address")),
            },
            Opt::Search => {
                if v == "none" {
                    self.search = Some(Vec::new());
                } else {
                    let list = self.search.get_or_insert_with(Vec::new);
                    list.extend(v.split_ascii_whitespace().map(str::to_owned));
                }
            }
            Opt::NoDhcpDns => self.dhcp_dns = Some(false),
            Opt::DhcpDns => self.dhcp_dns = Some(true),
            Opt::NoDhcpSearch => self.dhcp_search = Some(false),
            Opt::DhcpSearch => self.dhcp_search = Some(true),
            Opt::MapHostLoopback => {
                if v == "none" {
                    self.map_host_loopback4 = MapAddr::Disabled;
                    self.map_host_loopback6 = MapAddr::Disabled;
                    self.no_map_gw = true;
                } else {
                    match parse_ip(v).filter(|a| !a.is_unspecified()) {
                        Some(IpAddr::V4(a)) => self.map_host_loopback4 = MapAddr::To(a),
                        Some(IpAddr::V6(a)) => self.map_host_loopback6 = MapAddr::To(a),
                        None => return Err(invalid("address to map to the host's loopback")),
                    }
                }
            }
            Opt::MapGuestAddr => {
                if v == "none" {
                    self.map_guest_addr4 = MapAddr::Disabled;
                    self.map_guest_addr6 = MapAddr::Disabled;
                } else {
                    match parse_ip(v).filter(|a| !a.is_unspecified()) {
                        Some(IpAddr::V4(a)) => self.map_guest_addr4 = MapAddr::To(a),
                        Some(IpAddr::V6(a)) => self.map_guest_addr6 = MapAddr::To(a),
                        None => return Err(invalid("address to map to the guest's")),
                    }
                }
            }
            Opt::NoMapGw => self.no_map_gw = true,
            Opt::NoDhcp => self.no_dhcp = true,
            Opt::NoNdp => self.no_ndp = true,
            Opt::NoDhcpv6 => self.no_dhcpv6 = true,
            Opt::NoRa => self.no_ra = true,
            Opt::Freebind => self.freebind = true,
            Opt::NoTcp => self.no_tcp = true,
            Opt::NoUdp => self.no_udp = true,
            Opt::NoIcmp => self.no_icmp = true,
            Opt::Ipv4Only => self.ipv4_only = true,
            Opt::Ipv6Only => self.ipv6_only = true,
            Opt::TcpPorts => self.tcp_ports.add(v)?,
            Opt::UdpPorts => self.udp_ports.add(v)?,
            Opt::TcpNs => self.tcp_ns.add(v)?,
            Opt::UdpNs => self.udp_ns.add(v)?,
            Opt::Socket => {
                self.socket = Some(path(v, MAX_SOCKET_PATH).ok_or(invalid("socket path"))?);
                self.fd = None;
            }
            Opt::Fd => {
                // Not standard output or error: those are for messages.
                let fd = decimal::<i32>(v)
                    .filter(|&fd| fd == 0 || fd > 2)
                    .ok_or(invalid("--fd"))?;
                self.fd = Some(fd);
                self.socket = None;
                self.one_off = true;
            }
            Opt::OneOff => self.one_off = true,
            Opt::PrintCapabilities => self.print_capabilities = true,
            Opt::Userns => {
                self.userns = Some(path(v, MAX_PATH).ok_or(invalid("user namespace path"))?);
                self.netns_only = false;
            }
            Opt::Netns => {
                if v.is_empty() || v.len() > MAX_PATH {
                    return Err(invalid("network namespace"));
                }
                self.netns = Some(v.to_owned());
            }
            Opt::NetnsOnly => {
                self.netns_only = true;
                self.userns = None;
            }
            Opt::NsrunDir => {
                self.nsrun_dir = Some(path(v, MAX_PATH).ok_or(invalid("namespace directory"))?);
            }
            Opt::NoNetnsQuit => self.no_netns_quit = true,
            Opt::ConfigNet => self.config_net = true,
            Opt::NoSplice => self.no_splice = true,
            Opt::HostLoToNsLo => self.host_lo_to_ns_lo = true,
            Opt::Hostname => {
                // Option 12: at least one octet (RFC 2132 §3.14); a DNS
                // name's length at most.
                self.hostname = Some(dns_name(v, false).ok_or(invalid("hostname"))?);
            }
            Opt::Fqdn => self.fqdn = Some(dns_name(v, true).ok_or(invalid("FQDN"))?),
            Opt::NoCopyRoutes => self.no_copy_routes = true,
            Opt::NoCopyAddrs => self.no_copy_addrs = true,
            Opt::Stats
            | Opt::SpliceOnly
            | Opt::VhostUser
            | Opt::RepairPath
            | Opt::MigrateExit
            | Opt::MigrateNoLinger
            | Opt::ChrootFallback => {
                return Err(OptionsErrorKind::Unsupported {
                    option: format!("--{}", spec.long),
                    why: spec.help,
                });
            }
        }
        Ok(())
    }

    /// Warnings about the options given, one line each, for the frontend
    /// to log at start: deprecated options.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        for (on, name) in [
            (self.stderr, "--stderr"),
            (self.no_copy_routes, "--no-copy-routes"),
            (self.no_copy_addrs, "--no-copy-addrs"),
        ] {
            if on {
                w.push(format!("{name} is deprecated and will be dropped soon"));
            }
        }
        w
    }

    /// Take in the non-option arguments: `(argument, after "--")`.
    fn positional(&mut self, args: &[(&str, bool)]) -> Result<(), OptionsErrorKind> {
        let Some(&(first, after_double_dash)) = args.first() else {
            return Ok(());
        };
        match self.mode {
            Mode::Passt => Err(OptionsErrorKind::ExtraArgument(first.to_owned())),
            Mode::Pasta => {
                let is_number = !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit());
                if args.len() == 1 && !after_double_dash && is_number {
                    let pid = decimal::<u32>(first)
                        .filter(|&p| p > 0 && p <= i32::MAX as u32)
                        .ok_or_else(|| OptionsErrorKind::InvalidValue {
                            what: "PID",
                            value: first.to_owned(),
                        })?;
                    self.pid = Some(pid);
                } else {
                    self.command = args.iter().map(|(a, _)| (*a).to_owned()).collect();
                }
                Ok(())
            }
        }
    }

    /// Checks across options, and what is implied by others.
    fn finish(&mut self, seen: &Seen) -> Result<(), OptionsErrorKind> {
        let conflict = |s: &str| Err(OptionsErrorKind::Conflict(s.to_owned()));
        if self.ipv4_only && self.ipv6_only {
            return conflict("Options ipv4-only and ipv6-only are mutually exclusive");
        }
        if seen.netmask && seen.addr4_has_len {
            return conflict("Redundant prefix length specification: both -n and -a ADDR/LEN");
        }
        if let (Some(a), None) = (self.addr4, self.prefix_len4) {
            self.prefix_len4 = Some(classful_prefix_len(a));
        }
        if self.ipv6_only {
            if let Some(mtu) = self.mtu.filter(|&m| m != 0 && m < MIN_MTU_IPV6) {
                return Err(mtu_too_small(mtu));
            }
        }
        if self.netns.is_some() && (self.pid.is_some() || !self.command.is_empty()) {
            return conflict("Both --netns and PID or command given");
        }
        if self.netns.is_some() && self.userns.is_none() {
            self.netns_only = true;
        }
        if self.host_lo_to_ns_lo && self.no_splice {
            return conflict("--host-lo-to-ns-lo is incompatible with --no-splice");
        }
        for (spec, name, _) in self.fwd_specs() {
            if self.mode == Mode::Passt && spec.mode() == FwdMode::Auto {
                return conflict("'auto' port forwarding is only allowed for pasta");
            }
            let bound = spec
                .rules()
                .iter()
                .find(|r| r.addr.is_some() || r.ifname.is_some());
            // An interface in a listening address (`ADDR%IFACE/PORT`): no
            // listener is bound to a device yet, and listening on every
            // interface instead would expose more than was asked.
            if let Some(rule) = spec.rules().iter().find(|r| r.ifname.is_some()) {
                if matches!(name, 't' | 'u') {
                    return Err(OptionsErrorKind::Conflict(format!(
                        "Listening interface not supported by this implementation for -{name}: {rule}"
                    )));
                }
            }
            if let (Some(rule), 'T' | 'U') = (bound, name) {
                return Err(OptionsErrorKind::Conflict(format!(
                    "Listening address not allowed for -{name}: {rule}"
                )));
            }
            // Target addresses are for -t and -u (as in the original: the
            // other side of -T/-U is the host's loopback).
            if let (Some(rule), 'T' | 'U') =
                (spec.rules().iter().find(|r| r.to_addr.is_some()), name)
            {
                return Err(OptionsErrorKind::Conflict(format!(
                    "Target address not supported for -{name}: {rule}"
                )));
            }
        }
        self.check_fwd(!self.ipv6_only, !self.ipv4_only)
    }

    /// The four forwarding specs, with their option letter and whether
    /// their protocol is switched off.
    fn fwd_specs(&self) -> [(&FwdSpec, char, bool); 4] {
        [
            (&self.tcp_ports, 't', self.no_tcp),
            (&self.udp_ports, 'u', self.no_udp),
            (&self.tcp_ns, 'T', self.no_tcp),
            (&self.udp_ns, 'U', self.no_udp),
        ]
    }

    /// Port specs must fit the enabled protocols and address families.
    fn check_fwd(&self, v4: bool, v6: bool) -> Result<(), OptionsErrorKind> {
        for (spec, name, proto_off) in self.fwd_specs() {
            if proto_off && spec.mode() != FwdMode::None {
                let proto = if name.eq_ignore_ascii_case(&'t') {
                    "TCP"
                } else {
                    "UDP"
                };
                return Err(OptionsErrorKind::Conflict(format!(
                    "{proto} port forwarding requested but {proto} is disabled"
                )));
            }
            for rule in spec.rules() {
                let (family, off) = match rule.addr {
                    Some(IpAddr::V4(_)) if !v4 => ("IPv4", true),
                    Some(IpAddr::V6(_)) if !v6 => ("IPv6", true),
                    _ => ("", false),
                };
                if off {
                    return Err(OptionsErrorKind::Conflict(format!(
                        "{family} is disabled, can't use -{name} {rule}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether DNS servers go out in DHCP, DHCPv6 and NDP: yes for passt
    /// unless `--no-dhcp-dns`, no for pasta unless `--dhcp-dns`.
    pub fn dhcp_dns(&self) -> bool {
        self.dhcp_dns.unwrap_or(self.mode == Mode::Passt)
    }

    /// Whether the search list goes out in DHCP, DHCPv6 and NDP: yes for
    /// passt unless `--no-dhcp-search`, no for pasta unless
    /// `--dhcp-search`.
    pub fn dhcp_search(&self) -> bool {
        self.dhcp_search.unwrap_or(self.mode == Mode::Passt)
    }

    /// The network namespace to join as a path: `--netns` as given if it
    /// contains a `/`, otherwise a name under `--nsrun-dir`
    /// ([`DEFAULT_NSRUN_DIR`]); for a positional PID, `/proc/PID/ns/net`.
    pub fn netns_path(&self) -> Option<String> {
        if let Some(ns) = &self.netns {
            if ns.contains('/') {
                return Some(ns.clone());
            }
            let dir = self.nsrun_dir.as_deref().unwrap_or(DEFAULT_NSRUN_DIR);
            return Some(format!("{}/{ns}", dir.trim_end_matches('/')));
        }
        self.pid.map(|pid| format!("/proc/{pid}/ns/net"))
    }

    /// The user namespace to join: `--userns`, or for a positional PID
    /// without `--userns`, `/proc/PID/ns/user`.
    pub fn userns_path(&self) -> Option<String> {
        self.userns
            .clone()
            .or_else(|| self.pid.map(|pid| format!("/proc/{pid}/ns/user")))
    }

    /// The forwarding spec for one direction: as given, or the frontend's
    /// default (passt: none; pasta: `auto`, unless the protocol is off).
    fn fwd_or_default(&self, spec: &FwdSpec, proto_off: bool) -> Result<FwdSpec, OptionsError> {
        if spec.is_given() || self.mode == Mode::Passt || proto_off {
            return Ok(spec.clone());
        }
        FwdSpec::parse("auto").map_err(|e| OptionsError::new(self.mode, e.into()))
    }

    /// Lay the options over `config`, whose addresses, routes and DNS
    /// servers the frontend has already filled from the host.
    ///
    /// - `-4`/`-6` drop the other family; settings for a family the
    ///   configuration lacks are ignored, as in the original.
    /// - `-a`, `-n` (or the prefix length of `-a`), `-g`, `--dns-forward`,
    ///   `--map-guest-addr`, `-m`, `-M`, `--ns-mac-addr` (the guest's MAC
    ///   address) replace what is there; an IPv6 `-a` gets a /64 and an
    ///   IPv6 link-local `-g` becomes our link-local address too (the
    ///   source of router advertisements, RFC 4861 §4.2).
    /// - `--map-host-loopback ADDR` sets the mapping; `none` and
    ///   `--no-map-gw` remove it; otherwise, if `-g` was given, the mapping
    ///   follows the new gateway (the man page's default).
    /// - `-D` replaces the servers of each family it names (`none` clears
    ///   both and drops `--dns-forward` given before it); `-S` replaces the
    ///   search list.
    /// - `--no-dhcp`, `--no-ndp` (and `--no-icmp`, which implies it; with
    ///   NDP off no router solicitation is answered, so RA goes too),
    ///   `--no-ra`, `--no-dhcpv6` switch services off, never on;
    ///   [`Options::dhcp_dns`] and [`Options::dhcp_search`] set
    ///   [`Services::DHCP_DNS`] and [`Services::DHCP_SEARCH`].
    /// - Forwarding: what `-t`, `-u`, `-T`, `-U` gave, or the defaults of
    ///   the man page: none for passt; `auto` for all four in pasta (except
    ///   for a protocol switched off by `--no-tcp`/`--no-udp`).
    ///
    /// - `--dns-host` sets [`crate::config::Ip4Config::dns_host`] /
    ///   [`crate::config::Ip6Config::dns_host`] of its family.
    ///
    /// Options with no [`Config`] field (logging, `-o`, `-i`,
    /// namespaces, ...) are for the frontend to read from
    /// `self`. `config.validate()` is still to be called afterwards.
    ///
    /// # Errors
    /// [`OptionsErrorKind::Conflict`] if an MTU below 1280 meets an enabled
    /// IPv6, or a port spec listens on an address of a family the
    /// configuration lacks.
    pub fn overrides(&self, config: &mut Config) -> Result<(), OptionsError> {
        let err = |kind| OptionsError::new(self.mode, kind);
        config.mode = self.mode;
        if self.ipv4_only {
            config.ip6 = None;
        }
        if self.ipv6_only {
            config.ip4 = None;
        }
        match self.mtu {
            // `-m 0`: no MTU assigned; the default only bounds frames.
            Some(0) => config.assign_mtu = false,
            Some(mtu) => {
                if config.ip6.is_some() && mtu < MIN_MTU_IPV6 {
                    return Err(err(mtu_too_small(mtu)));
                }
                config.mtu = mtu;
            }
            None => {}
        }
        self.check_fwd(config.ip4.is_some(), config.ip6.is_some())
            .map_err(err)?;
        if let Some(mac) = self.our_mac {
            config.our_mac = mac;
        }
        if let Some(mac) = self.ns_mac_addr {
            config.guest_mac = Some(mac);
        }

        let dns_none = self.dns.as_ref().is_some_and(Vec::is_empty);
        let dns4: Vec<Ipv4Addr> = self.dns.iter().flatten().filter_map(v4).collect();
        let dns6: Vec<Ipv6Addr> = self.dns.iter().flatten().filter_map(v6).collect();

        if let Some(ip4) = &mut config.ip4 {
            if let Some(a) = self.addr4 {
                ip4.addr = a;
            }
            if let Some(len) = self.prefix_len4 {
                ip4.prefix_len = len;
            }
            if let Some(gw) = self.gateway4 {
                ip4.gateway = gw;
            }
            ip4.map_host_loopback = match self.map_host_loopback4 {
                MapAddr::To(a) => Some(a),
                MapAddr::Disabled => None,
                MapAddr::Default if self.no_map_gw => None,
                MapAddr::Default => self.gateway4.or(ip4.map_host_loopback),
            };
            ip4.map_guest_addr = match self.map_guest_addr4 {
                MapAddr::To(a) => Some(a),
                MapAddr::Disabled => None,
                MapAddr::Default => ip4.map_guest_addr,
            };
            if dns_none {
                ip4.dns.clear();
                ip4.dns_forward = None;
            }
            if !dns4.is_empty() {
                ip4.dns = dns4;
            }
            if let Some(a) = self.dns_forward4 {
                ip4.dns_forward = Some(a);
            }
            if let Some(a) = self.dns_host4 {
                ip4.dns_host = Some(a);
            }
        }

        if let Some(ip6) = &mut config.ip6 {
            if let Some(a) = self.addr6 {
                ip6.addr = a;
                ip6.prefix_len = 64;
            }
            if let Some(gw) = self.gateway6 {
                ip6.gateway = gw;
                // fe80::/10 (RFC 4291 §2.5.6).
                if gw.segments()[0] & 0xffc0 == 0xfe80 {
                    ip6.our_link_local = gw;
                }
            }
            ip6.map_host_loopback = match self.map_host_loopback6 {
                MapAddr::To(a) => Some(a),
                MapAddr::Disabled => None,
                MapAddr::Default if self.no_map_gw => None,
                MapAddr::Default => self.gateway6.or(ip6.map_host_loopback),
            };
            ip6.map_guest_addr = match self.map_guest_addr6 {
                MapAddr::To(a) => Some(a),
                MapAddr::Disabled => None,
                MapAddr::Default => ip6.map_guest_addr,
            };
            if dns_none {
                ip6.dns.clear();
                ip6.dns_forward = None;
            }
            if !dns6.is_empty() {
                ip6.dns = dns6;
            }
            if let Some(a) = self.dns_forward6 {
                ip6.dns_forward = Some(a);
            }
            if let Some(a) = self.dns_host6 {
                ip6.dns_host = Some(a);
            }
        }

        if let Some(search) = &self.search {
            config.search.clone_from(search);
        }

        let s = &mut config.services;
        if self.no_dhcp {
            s.remove(Services::DHCP);
        }
        if self.no_ndp {
            s.remove(Services::NDP | Services::RA);
        }
        if self.no_tcp {
            s.remove(Services::TCP);
        }
        if self.no_udp {
            s.remove(Services::UDP);
        }
        if self.no_icmp {
            s.remove(Services::ICMP);
        }
        // With --config-net pasta configures the namespace itself, and, as
        // the original, advertises no router there.
        if self.no_ra || (self.mode == Mode::Pasta && self.config_net) {
            s.remove(Services::RA);
        }
        if self.no_dhcpv6 {
            s.remove(Services::DHCPV6);
        }
        s.set(Services::DHCP_DNS, self.dhcp_dns());
        s.set(Services::DHCP_SEARCH, self.dhcp_search());

        config.fwd.tcp_in = self.fwd_or_default(&self.tcp_ports, self.no_tcp)?;
        config.fwd.udp_in = self.fwd_or_default(&self.udp_ports, self.no_udp)?;
        config.fwd.tcp_out = self.fwd_or_default(&self.tcp_ns, self.no_tcp)?;
        config.fwd.udp_out = self.fwd_or_default(&self.udp_ns, self.no_udp)?;
        config.fwd.splice = self.mode == Mode::Pasta && !self.no_splice;
        config.fwd.host_lo_to_ns_lo = config.fwd.splice && self.host_lo_to_ns_lo;
        config.outbound = crate::config::Outbound {
            addr4: self.outbound4,
            addr6: self.outbound6,
            ifname4: self.outbound_if4.clone(),
            ifname6: self.outbound_if6.clone(),
            freebind: self.freebind,
        };
        config.hostname.clone_from(&self.hostname);
        config.fqdn.clone_from(&self.fqdn);
        Ok(())
    }
}

/// How an option was written, for "is for ... mode only".
fn spelling(spec: &Spec, spelled: Spelled) -> String {
    match spelled {
        Spelled::Short(c) => format!("-{c}"),
        Spelled::Long => format!("--{}", spec.long),
    }
}

/// The error for an MTU too small for IPv6.
fn mtu_too_small(mtu: u16) -> OptionsErrorKind {
    OptionsErrorKind::Conflict(format!(
        "MTU {mtu} is too small for IPv6 (minimum {MIN_MTU_IPV6}); use -4 for IPv4 only"
    ))
}

/// A host name (`fqdn` false: option 12, RFC 2132 §3.14) or a fully
/// qualified one (option 81, RFC 4702 §2.3.1; DHCPv6 option 39, RFC 4704
/// §4.1, in DNS wire format): labels of 1 to 63 octets, at most 253
/// octets in all (one trailing dot allowed), no NUL or space. Returned
/// without the trailing dot.
fn dns_name(v: &str, fqdn: bool) -> Option<String> {
    let name = v.strip_suffix('.').unwrap_or(v);
    let labels_ok = name.split('.').all(|l| !l.is_empty() && l.len() <= 63);
    let chars_ok = name.bytes().all(|b| b.is_ascii_graphic());
    let fits = !name.is_empty() && name.len() <= 253;
    // A host name alone need not be a valid DNS name but must fit one
    // option (255 octets) and a label-free check.
    (fits && chars_ok && (labels_ok || !fqdn)).then(|| name.to_owned())
}

/// A plain decimal number: digits only, no sign, no spaces.
fn decimal<T: core::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A non-empty path of at most `max` bytes, without NUL.
fn path(s: &str, max: usize) -> Option<String> {
    (!s.is_empty() && s.len() <= max && !s.contains('\0')).then(|| s.to_owned())
}

/// An interface name as Linux accepts it: 1 to 15 bytes, no `/`, `:`,
/// whitespace or NUL, and not `.` or `..`.
fn ifname(s: &str) -> Option<String> {
    let bad = |c: char| c == '/' || c == ':' || c == '\0' || c.is_whitespace();
    let ok = !s.is_empty() && s.len() <= MAX_IFNAME && !s.contains(bad) && s != "." && s != "..";
    ok.then(|| s.to_owned())
}

/// An IP address; IPv4-mapped IPv6 addresses become IPv4.
fn parse_ip(s: &str) -> Option<IpAddr> {
    Some(s.parse::<IpAddr>().ok()?.to_canonical())
}

/// `ADDR` or `ADDR/LEN` for `-a`: a unicast address that is not
/// unspecified, loopback, broadcast or IPv4-compatible IPv6.
fn parse_addr_len(s: &str) -> Option<(IpAddr, Option<u8>)> {
    let (a, len) = match s.split_once('/') {
        Some((a, len)) => (a, Some(decimal::<u8>(len)?)),
        None => (s, None),
    };
    let addr = parse_ip(a)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    if len.is_some_and(|l| l > max) || !usable(&addr) || addr.is_multicast() || is_broadcast(&addr)
    {
        return None;
    }
    if let IpAddr::V6(a6) = addr {
        // ::a.b.c.d (RFC 4291 §2.5.5.1, deprecated).
        if a6.segments()[..6] == [0; 6] {
            return None;
        }
    }
    Some((addr, len))
}

/// `-n`: a dot-decimal netmask with contiguous ones, or a length 0-32.
fn parse_netmask(s: &str) -> Option<u8> {
    if let Ok(mask) = s.parse::<Ipv4Addr>() {
        let bits = u32::from(mask);
        let len = bits.leading_ones();
        return (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8);
    }
    decimal::<u8>(s).filter(|&l| l <= 32)
}

/// The prefix length of an IPv4 address's class (RFC 791 §3.2): A /8,
/// B /16, C /24, anything else /32.
fn classful_prefix_len(a: Ipv4Addr) -> u8 {
    match a.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        192..=223 => 24,
        _ => 32,
    }
}

/// Neither unspecified nor loopback.
fn usable(a: &IpAddr) -> bool {
    !a.is_unspecified() && !a.is_loopback()
}

/// 255.255.255.255.
fn is_broadcast(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V4(a) if a.is_broadcast())
}

/// `UID`, `UID:GID`, `LOGIN` or `LOGIN:GROUP`.
fn parse_runas(s: &str) -> Option<RunAs> {
    let id = |p: &str| -> Option<IdSpec> {
        if p.is_empty() || p.contains('\0') {
            return None;
        }
        if p.bytes().all(|b| b.is_ascii_digit()) {
            return decimal::<u32>(p).map(IdSpec::Id);
        }
        Some(IdSpec::Name(p.to_owned()))
    };
    match s.split_once(':') {
        Some((user, group)) => Some(RunAs {
            user: id(user)?,
            group: Some(id(group)?),
        }),
        None => Some(RunAs {
            user: id(s)?,
            group: None,
        }),
    }
}

/// The IPv4 address of `a`, if it is one.
fn v4(a: &IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(*a),
        IpAddr::V6(_) => None,
    }
}

/// The IPv6 address of `a`, if it is one.
fn v6(a: &IpAddr) -> Option<Ipv6Addr> {
    match a {
        IpAddr::V6(a) => Some(*a),
        IpAddr::V4(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmasks() {
        assert_eq!(parse_netmask("255.255.255.0"), Some(24));
        assert_eq!(parse_netmask("255.255.255.255"), Some(32));
        assert_eq!(parse_netmask("0.0.0.0"), Some(0));
        assert_eq!(parse_netmask("255.0.255.0"), None);
        assert_eq!(parse_netmask("24"), Some(24));
        assert_eq!(parse_netmask("0"), Some(0));
        assert_eq!(parse_netmask("33"), None);
        assert_eq!(parse_netmask("-1"), None);
        assert_eq!(parse_netmask(""), None);
    }

    #[test]
    fn addresses() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(parse_addr_len("192.0.2.1"), Some((v4, None)));
        assert_eq!(parse_addr_len("192.0.2.1/24"), Some((v4, Some(24))));
        assert_eq!(parse_addr_len("::ffff:192.0.2.1"), Some((v4, None)));
        assert_eq!(parse_addr_len("192.0.2.1/33"), None);
        assert_eq!(parse_addr_len("192.0.2.1/"), None);
        assert_eq!(parse_addr_len("2001:db8::1/129"), None);
        assert!(parse_addr_len("2001:db8::1/64").is_some());
        for bad in [
            "0.0.0.0",
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "ff02::1",
            "::192.0.2.1",
            "x",
        ] {
            assert_eq!(parse_addr_len(bad), None, "{bad}");
        }
    }

    #[test]
    fn classes() {
        assert_eq!(classful_prefix_len(Ipv4Addr::new(10, 0, 0, 1)), 8);
        assert_eq!(classful_prefix_len(Ipv4Addr::new(172, 16, 0, 1)), 16);
        assert_eq!(classful_prefix_len(Ipv4Addr::new(192, 0, 2, 1)), 24);
        assert_eq!(classful_prefix_len(Ipv4Addr::new(240, 0, 0, 1)), 32);
    }

    #[test]
    fn runas_forms() {
        assert_eq!(
            parse_runas("1000:100"),
            Some(RunAs {
                user: IdSpec::Id(1000),
                group: Some(IdSpec::Id(100))
            })
        );
        assert_eq!(
            parse_runas("nobody"),
            Some(RunAs {
                user: IdSpec::Name("nobody".into()),
                group: None
            })
        );
        assert_eq!(
            parse_runas("alice:wheel"),
            Some(RunAs {
                user: IdSpec::Name("alice".into()),
                group: Some(IdSpec::Name("wheel".into()))
            })
        );
        for bad in ["", ":", "1000:", ":100", "99999999999"] {
            assert_eq!(parse_runas(bad), None, "{bad}");
        }
    }

    #[test]
    fn interface_names() {
        assert_eq!(ifname("eth0").as_deref(), Some("eth0"));
        assert_eq!(
            ifname("abcdefghijklmno").as_deref(),
            Some("abcdefghijklmno")
        );
        for bad in ["", "abcdefghijklmnop", "a/b", "a:b", "a b", ".", ".."] {
            assert_eq!(ifname(bad), None, "{bad}");
        }
    }
}
