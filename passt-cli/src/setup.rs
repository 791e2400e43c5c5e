//! Command line and host to [`Config`]: what the guest will see.
//!
//! 1. The host's template interfaces, routes and addresses over rtnetlink
//!    ([`passt_core::host::read_host_net`], `-i`, `--outbound-if4`,
//!    `--outbound-if6`) and `/etc/resolv.conf`
//!    ([`passt_core::host::resolv::ResolvConf`]);
//! 2. the guest's addresses, gateway and resolvers derived from them, with
//!    the command line's addresses taking precedence
//!    ([`passt_core::host::defaults::guest_defaults`]);
//! 3. every option laid over the result ([`Options::overrides`]), and the
//!    flow hash key from the kernel's random source (`getrandom(2)`).
//!
//! A host that cannot be read (no netlink, say) is reported and treated as
//! an offline one: the guest gets the local-mode addresses, as the original
//! does without a default route. A named interface that does not exist is
//! an error.
//!
//! Syscalls: those of `passt_core::host` (netlink socket, `/etc/resolv.conf`),
//! `getrandom`.

use std::path::Path;

use passt_core::config::{Config, Mode, Services};
use passt_core::host::defaults::{guest_defaults, DnsChoice, GuestOverrides, LoopbackMap};
use passt_core::host::options::{MapAddr, Options};
use passt_core::host::resolv::{ResolvConf, RESOLV_CONF};
use passt_core::host::{read_host_net, HostError, HostNet, InterfaceChoice};

use crate::Error;
use crate::{debug, warning};

/// The translator's configuration for `o`, read from the host.
///
/// # Errors
/// A named interface that does not exist; options that conflict with what
/// the host has (`Options::overrides`); no random source.
pub(crate) fn config(o: &Options) -> Result<(Config, Vec<String>), Error> {
    let choice = InterfaceChoice {
        ip4: o.interface.as_deref().or(o.outbound_if4.as_deref()),
        ip6: o.interface.as_deref().or(o.outbound_if6.as_deref()),
    };
    let host = match read_host_net(&choice) {
        Ok(h) => h,
        Err(e @ HostError::NoSuchInterface(_)) => return Err(Error::msg(e.to_string())),
        Err(e) => {
            warning!("cannot read the host's network configuration ({e}); local mode");
            HostNet::default()
        }
    };
    let resolv = match ResolvConf::read(Path::new(RESOLV_CONF)) {
        Ok(r) => Some(r),
        Err(e) => {
            warning!("cannot read {RESOLV_CONF} ({e}): no DNS servers from the host");
            None
        }
    };
    let d = guest_defaults(&host, resolv.as_ref(), &overrides_of(o));
    debug!("host: {host:?}");
    let mut config = Config {
        mode: Mode::Passt,
        ip4: d.ip4,
        ip6: d.ip6,
        search: d.search,
        ..Config::default()
    };
    if d.no_dhcp {
        config.services.remove(Services::DHCP);
    }
    o.overrides(&mut config)
        .map_err(|e| Error::msg(e.to_string()))?;
    rustix::rand::getrandom(&mut config.secret, rustix::rand::GetRandomFlags::empty())
        .map_err(|e| Error::sys("reading random bytes for the flow hash key", e))?;
    Ok((config, vec![d.summary4, d.summary6]))
}

/// The command-line values `guest_defaults` takes precedence from.
fn overrides_of(o: &Options) -> GuestOverrides {
    let map = |m: &MapAddr<_>| match *m {
        MapAddr::Default => LoopbackMap::Default,
        MapAddr::Disabled => LoopbackMap::Off,
        MapAddr::To(a) => LoopbackMap::To(a),
    };
    let map6 = |m: &MapAddr<_>| match *m {
        MapAddr::Default => LoopbackMap::Default,
        MapAddr::Disabled => LoopbackMap::Off,
        MapAddr::To(a) => LoopbackMap::To(a),
    };
    GuestOverrides {
        ipv4_only: o.ipv4_only,
        ipv6_only: o.ipv6_only,
        addr4: o.addr4,
        prefix_len4: o.prefix_len4,
        gateway4: o.gateway4,
        addr6: o.addr6,
        gateway6: o.gateway6,
        map_host_loopback4: map(&o.map_host_loopback4),
        map_host_loopback6: map6(&o.map_host_loopback6),
        no_map_gw: o.no_map_gw,
        map_guest_addr4: match o.map_guest_addr4 {
            MapAddr::To(a) => Some(a),
            _ => None,
        },
        map_guest_addr6: match o.map_guest_addr6 {
            MapAddr::To(a) => Some(a),
            _ => None,
        },
        dns: match &o.dns {
            None => DnsChoice::FromHost,
            Some(v) if v.is_empty() => DnsChoice::None,
            Some(v) => DnsChoice::Given(v.clone()),
        },
        dns_forward4: o.dns_forward4,
        dns_forward6: o.dns_forward6,
        dns_host4: o.dns_host4,
        dns_host6: o.dns_host6,
        search: o.search.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use passt_core::host::options::Parsed;

    fn opts(args: &[&str]) -> Options {
        match Options::parse(Mode::Passt, args).unwrap() {
            Parsed::Run(o) => *o,
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn command_line_values_reach_the_defaults() {
        let o = opts(&[
            "-a",
            "192.0.2.10/24",
            "-g",
            "192.0.2.1",
            "-D",
            "192.0.2.53",
            "--map-host-loopback",
            "none",
            "-S",
            "example.com",
        ]);
        let ov = overrides_of(&o);
        assert_eq!(ov.addr4, Some("192.0.2.10".parse().unwrap()));
        assert_eq!(ov.prefix_len4, Some(24));
        assert_eq!(ov.gateway4, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            ov.dns,
            DnsChoice::Given(vec!["192.0.2.53".parse().unwrap()])
        );
        assert_eq!(ov.map_host_loopback4, LoopbackMap::Off);
        assert_eq!(ov.search, Some(vec!["example.com".to_owned()]));
        let ov = overrides_of(&opts(&["-D", "none"]));
        assert_eq!(ov.dns, DnsChoice::None);
        // An offline host with explicit addresses: the guest gets them.
        let d = guest_defaults(&HostNet::default(), None, &overrides_of(&o));
        let ip4 = d.ip4.unwrap();
        assert_eq!(
            ip4.addr,
            "192.0.2.10".parse::<core::net::Ipv4Addr>().unwrap()
        );
        assert_eq!(
            ip4.dns,
            ["192.0.2.53".parse::<core::net::Ipv4Addr>().unwrap()]
        );
    }
}
